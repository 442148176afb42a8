"""Dockerfile instructions given with `-c/--change` (import, commit): CMD, ENTRYPOINT, ENV,
WORKDIR, USER, STOPSIGNAL, VOLUME, EXPOSE, turned into image config fields."""

from __future__ import annotations

import json

from pyc.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any


def parse_changes(changes: list[str]) -> dict[str, Any]:
    """`--change 'CMD ["sh"]'`-style instructions to config fields (Env as a list of K=V)."""
    out: dict[str, Any] = {}
    for change in changes:
        word, _, rest = change.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word in ("CMD", "ENTRYPOINT"):
            try:
                value = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            except ValueError:
                raise InvalidArgument(f"invalid --change {change!r}: not a JSON array") from None
            out["Cmd" if word == "CMD" else "Entrypoint"] = value
        elif word == "ENV" and "=" in rest:
            out.setdefault("Env", []).append(rest)
        elif word == "WORKDIR" and rest:
            out["WorkingDir"] = rest
        elif word == "USER" and rest:
            out["User"] = rest
        elif word == "STOPSIGNAL" and rest:
            out["StopSignal"] = rest
        elif word == "VOLUME" and rest:
            try:
                paths = json.loads(rest) if rest.startswith("[") else rest.split()
            except ValueError:
                raise InvalidArgument(f"invalid --change {change!r}: not a JSON array") from None
            if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
                raise InvalidArgument(f"invalid --change {change!r}: VOLUME takes absolute paths")
            out.setdefault("Volumes", {}).update({p: {} for p in paths})
        elif word == "EXPOSE" and rest:
            for port in rest.split():
                number, slash, proto = port.partition("/")
                if not (number.isdigit() and 0 < int(number) < 65536 and (not slash or proto in ("tcp", "udp"))):
                    raise InvalidArgument(f"invalid --change {change!r}: EXPOSE PORT[/tcp|udp]...")
                out.setdefault("ExposedPorts", {})[f"{number}/{proto or 'tcp'}"] = {}
        else:
            raise InvalidArgument(f"invalid --change {change!r}: use CMD, ENTRYPOINT, ENV K=V, WORKDIR, USER, STOPSIGNAL, VOLUME or EXPOSE")
    return out


def apply_changes(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`config` (an image's run config) with `changes` applied: ENV sets one variable and keeps
    the others, VOLUME adds to the image's, as in a Dockerfile; the other fields replace what
    was there."""
    out = dict(config)
    for key, value in changes.items():
        if key == "ExposedPorts":
            out[key] = {**(out.get(key) or {}), **value}
        elif key == "Env":
            env = list(out.get("Env") or [])
            for kv in value:
                name = kv.split("=", 1)[0]
                env = [e for e in env if e.split("=", 1)[0] != name] + [kv]
            out["Env"] = env
        elif key == "Volumes":
            out["Volumes"] = {**(out.get("Volumes") or {}), **value}
        else:
            out[key] = value
    return out
