"""`pyc ps --filter`: status=, name= (a substring, as docker), ancestor= (image name or id);
filters of one key are or-ed, keys and-ed."""

from __future__ import annotations

from collections.abc import Callable

from pyc.containers import Container
from pyc.errors import InvalidArgument

STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(given: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in given:
        key, eq, value = f.partition("=")
        if not eq or key not in ("status", "name", "ancestor"):
            raise InvalidArgument(f"invalid filter {f!r}: use status=, name= or ancestor=")
        if key == "status" and value not in STATUSES:
            raise InvalidArgument(f"invalid filter 'status={value}': one of {', '.join(STATUSES)}")
        out.setdefault(key, []).append(value)
    return out


def _ancestor(c: Container, ref: str) -> bool:
    image = c.record.image
    image_id = c.record.image_id.removeprefix("sha256:")
    name = ref.removesuffix(":latest")
    return image.removesuffix(":latest") == name or (len(ref) >= 4 and image_id.startswith(ref.removeprefix("sha256:")))


def matches(c: Container, filters: dict[str, list[str]]) -> bool:
    checks: dict[str, Callable[[str], bool]] = {
        "status": lambda v: c.current_state().shown_status == v,
        "name": lambda v: v in c.name,
        "ancestor": lambda v: _ancestor(c, v),
    }
    return all(any(checks[key](v) for v in values) for key, values in filters.items())
