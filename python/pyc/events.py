"""The events journal, $PYC_ROOT/events.log: what happened to containers, images and volumes,
one JSON line per event in docker's shape (`docker events --format '{{json .}}'`), appended by
every pyc command and by pyc-monitor (a container's start, oom and die, and its volumes' mount
and unmount around them). pyc_core writes it
(rust/core/src/journal.rs): a batch of lines in one write(2) on an O_APPEND descriptor, so
concurrent writers never interleave; past its size bound the file is renamed to events.log.1
and a new one begun, and once that rename is done nothing more goes into the old file (writers
and the rotation take turns through a flock). A reader therefore finishes the file it follows
and goes on in the new one (`read`).

There is no daemon to ask: `pyc events` reads the journal, and follows it by polling."""

from __future__ import annotations

import os
import time

import pyc_core

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pyc.containers import Container
    from pyc.records import VolumeActor
    from pyc.results import Event

JOURNAL = "events.log"
POLL = 0.05  # seconds between looks at a journal being followed
FILTERS = ("container", "event", "image", "label", "network", "scope", "type", "volume")


class Journal:
    """The journal of one store: where it is, and writing to it."""

    __slots__ = ("path",)

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, JOURNAL)

    def log(self, type: str, action: str, id: str, attributes: dict[str, str] | None = None) -> None:
        self.log_all([(type, action, id, attributes or {})])

    def log_all(self, events: list[tuple[str, str, str, dict[str, str]]]) -> None:
        """Several events in one write. Best effort: a journal that cannot be written (a full
        disk, a store not made yet) does not fail the command that did the work."""
        try:
            pyc_core.log_events(self.path, events)
        except (pyc_core.PycCoreError, OSError):
            pass

    def container(self, c: Container, action: str, **extra: str) -> None:
        self.log("container", action, c.id, container_attributes(c) | extra)


def container_attributes(c: Container) -> dict[str, str]:
    """What every event of a container says of it, as docker: its image (as named) and name."""
    return {"image": c.record.image, "name": c.name}


def volume_actors(c: Container) -> list[VolumeActor]:
    """The container's volumes as their mount events say them (docker's attributes)."""
    from pyc.records import VolumeActor

    return [
        VolumeActor(
            name=m.name,
            attributes={"container": c.id, "destination": m.destination, "driver": "local", "propagation": m.propagation, "read/write": "true" if m.rw else "false"},
        )
        for m in c.record.mounts
        if m.type == "volume"
    ]


def volume_event(action: str, name: str) -> tuple[str, str, str, dict[str, str]]:
    """A volume's create or destroy (docker's attributes: its driver), for Journal.log_all."""
    return ("volume", action, name, {"driver": "local"})


# -- reading --------------------------------------------------------------------------------------


def parse_filters(given: list[str]) -> dict[str, list[str]]:
    """docker's `--filter key=value` of events; values of one key are or-ed, keys and-ed."""
    from pyc.errors import InvalidArgument

    out: dict[str, list[str]] = {}
    for f in given:
        key, eq, value = f.partition("=")
        if not eq or key not in FILTERS:
            raise InvalidArgument(f"invalid filter {f!r}: use {'=, '.join(FILTERS)}=")
        out.setdefault(key, []).append(value)
    return out


def _prefix_match(values: list[str] | None, *sources: str) -> bool:
    return values is None or any(s and (s == v or s.startswith(v)) for v in values for s in sources)


def _exact_match(values: list[str] | None, *sources: str) -> bool:
    return values is None or any(s == v for v in values for s in sources)


def matches(e: Event, filters: dict[str, list[str]]) -> bool:
    """docker's rules (daemon/events/filter.go): container, volume and network by id prefix or
    name; image by id or name, with or without tag; event by action (`exec_start` also matches
    `exec_start: sh`); label by `key` or `key=value` among the attributes."""
    if not filters:
        return True
    attrs = e.attributes
    name = attrs.get("name", "")
    events = filters.get("event")
    if events is not None and not any(e.action == v or (v in ("exec_create", "exec_start", "health_status") and e.action.startswith(v)) for v in events):
        return False
    if not _exact_match(filters.get("type"), e.type) or not _exact_match(filters.get("scope"), e.scope):
        return False
    for kind in ("container", "volume", "network"):
        if kind in filters and (e.type != kind or not _prefix_match(filters[kind], e.id, name)):
            return False
    if "image" in filters:
        image = name if e.type == "image" else attrs.get("image", "")
        if not _exact_match(filters["image"], e.id, image, _untagged(e.id), _untagged(image)):
            return False
    labels = filters.get("label")
    return labels is None or all(attrs.get(k) == v if eq else k in attrs for k, eq, v in (label.partition("=") for label in labels))


def _untagged(ref: str) -> str:
    name, colon, tag = ref.rpartition(":")
    return name if colon and "/" not in tag else ref


def _decode(line: bytes) -> Event | None:
    """An event from a journal line; None for one that is not (a hand edit, a torn file)."""
    import json

    from pyc.results import Event

    try:
        d = json.loads(line)
        actor = d["Actor"]
        attrs = actor.get("Attributes") or {}
        attributes = {str(k): str(v) for k, v in attrs.items()}
        return Event(type=str(d["Type"]), action=str(d["Action"]), id=str(actor["ID"]), attributes=attributes, scope=str(d.get("scope", "local")), time_nano=int(d["timeNano"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _open(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _open_pair(path: str) -> tuple[int | None, int | None]:
    """The rotated journal and the live one, as one pair: the live file is opened first, and if
    it was rotated before the other open (the two are then one file), both are opened again."""
    while True:
        live = _open(path)
        old = _open(path + ".1")
        if live is None or old is None or os.fstat(live).st_ino != os.fstat(old).st_ino:
            return old, live
        os.close(old)
        os.close(live)


class _Lines:
    """The complete lines of one open file, read as they come; a line still being written is
    kept until its end arrives."""

    __slots__ = ("fd", "pending")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = b""

    def read(self) -> list[bytes]:
        chunks = []
        while chunk := os.read(self.fd, 1 << 20):
            chunks.append(chunk)
        if not chunks:
            return []
        *lines, self.pending = (self.pending + b"".join(chunks)).split(b"\n")
        return lines


def _kept(lines: list[bytes], keep: Callable[[Event], bool]) -> Iterator[Event]:
    for line in lines:
        e = _decode(line)
        if e is not None and keep(e):
            yield e


def _rotated(path: str, fd: int) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(fd).st_ino
    except FileNotFoundError:
        return True  # renamed away, the next one not begun yet


def read(root: str, since: int | None = None, until: int | None = None, filters: dict[str, list[str]] | None = None) -> Iterator[Event]:
    """The events of the store at `root` (times in ns since the epoch), as docker's `events`
    gives them: with neither `since` nor `until`, those from now on, for ever; with `since`
    only, the kept ones from then, then on for ever; with `until`, up to that time (waiting for
    it when it is still to come)."""
    path = os.path.join(root, JOURNAL)
    wanted = filters or {}

    def keep(e: Event) -> bool:
        return (since is None or e.time_nano >= since) and (until is None or e.time_nano <= until) and matches(e, wanted)

    old, live = _open_pair(path)
    current = _Lines(live) if live is not None else None
    try:
        if since is not None or until is not None:
            if old is not None:
                yield from _kept(_Lines(old).read(), keep)
            if current is not None:
                yield from _kept(current.read(), keep)
        elif current is not None:
            os.lseek(current.fd, 0, os.SEEK_END)
        if old is not None:
            os.close(old)
            old = None
        while until is None or time.time_ns() <= until:
            if current is None:
                fd = _open(path)
                if fd is None:
                    time.sleep(POLL)
                    continue
                current = _Lines(fd)
            got = current.read()
            if got:
                yield from _kept(got, keep)
                continue
            if _rotated(path, current.fd):
                # Nothing more goes into a file once it is renamed: finish it, go on in the new one.
                yield from _kept(current.read(), keep)
                os.close(current.fd)
                current = None
                continue
            time.sleep(POLL)
    finally:
        if old is not None:
            os.close(old)
        if current is not None:
            os.close(current.fd)
