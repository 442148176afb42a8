"""docker's devices: what every container's /dev has, --device, --device-cgroup-rule and the
host's devices under --privileged, as the OCI spec's `linux.devices` (nodes to make) and
`linux.resources.devices` (what the device cgroup lets the container use: v1's devices
controller, v2's BPF program; pyc-core's cgroup/devices.rs). Checked before anything is written."""

from __future__ import annotations

import os
import stat

from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# (path, major, minor): the devices every container gets in its private /dev.
DEVICES = [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)]


def _rule(allow: bool, kind: str, major: int | None, minor: int | None, access: str) -> dict[str, Any]:
    return {"allow": allow, "type": kind, "major": major, "minor": minor, "access": access}


# docker's device cgroup (as dockerd 20.10 sets it here): nothing, then mknod of any node (it is
# opening one that matters), and the devices above, console, ptmx, the ptys and tun.
DEFAULT_RULES = [
    _rule(False, "a", None, None, "rwm"),
    _rule(True, "c", None, None, "m"),
    _rule(True, "b", None, None, "m"),
    *(_rule(True, "c", major, minor, "rwm") for major, minor in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2), (10, 200)]),
    _rule(True, "c", 136, None, "rwm"),
]
ALLOW_ALL = [_rule(True, "a", None, None, "rwm")]

# What a privileged container does not get of the host's /dev: its own are mounted there, and
# /dev/ptmx stays the link to its own devpts' ptmx (docker's).
_NOT_HOST = ("/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console", "/dev/ptmx")


def _node(path: str, st: os.stat_result) -> dict[str, Any]:
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    return {"path": path, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}


def _is_device(mode: int) -> bool:
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def _under(src: str) -> list[tuple[str, os.stat_result]]:
    """The device nodes below a host directory (not following links)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in _NOT_HOST]
        for name in filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if _is_device(st.st_mode) and p not in _NOT_HOST:
                found.append((p, st))
    return sorted(found, key=lambda f: f[0])


def parse_device(value: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """--device HOST[:CONTAINER][:PERMISSIONS]: (nodes, cgroup rules). A directory brings every
    device below it."""
    parts = value.split(":")
    perms = "rwm"
    if len(parts) == 3:
        src, dst, perms = parts
    elif len(parts) == 2 and parts[1] and set(parts[1]) <= set("rwm"):
        src, dst, perms = parts[0], "", parts[1]
    elif len(parts) == 2:
        src, dst = parts
    elif len(parts) == 1:
        src, dst = parts[0], ""
    else:
        raise InvalidArgument(f"invalid --device {value!r}: use HOST[:CONTAINER][:rwm]")
    dst = dst or src
    if not perms or not set(perms) <= set("rwm") or len(set(perms)) != len(perms):
        raise InvalidArgument(f"invalid --device {value!r}: permissions are some of r, w and m")
    if not src.startswith("/") or not dst.startswith("/"):
        raise InvalidArgument(f"invalid --device {value!r}: paths must be absolute")
    try:
        st = os.stat(src)
    except OSError as e:
        raise InvalidArgument(f"invalid --device {value!r}: {src}: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        found = [(os.path.join(dst, os.path.relpath(p, src)), s) for p, s in _under(src)]
        if not found:
            raise InvalidArgument(f"invalid --device {value!r}: no device below {src}")
    elif _is_device(st.st_mode):
        found = [(dst, st)]
    else:
        raise InvalidArgument(f"invalid --device {value!r}: {src} is not a device")
    nodes = [_node(p, s) for p, s in found]
    return nodes, [_rule(True, n["type"], n["major"], n["minor"], perms) for n in nodes]


def parse_cgroup_rule(value: str) -> dict[str, Any]:
    """--device-cgroup-rule 'c 1:3 rwm' ('a', 'c' or 'b'; numbers or *; some of rwm)."""
    fields = value.split()
    bad = InvalidArgument(f"invalid --device-cgroup-rule {value!r}: use TYPE MAJOR:MINOR ACCESS, e.g. 'c 1:3 rwm' or 'b 7:* rm'")
    if len(fields) != 3 or fields[0] not in ("a", "c", "b"):
        raise bad
    major, sep, minor = fields[1].partition(":")
    numbers = []
    for n in (major, minor):
        if n != "*" and not (n.isdigit() and int(n) < 1 << 31):
            raise bad
        numbers.append(None if n == "*" else int(n))
    access = fields[2]
    if not sep or not set(access) <= set("rwm") or len(set(access)) != len(access):
        raise bad
    return _rule(True, fields[0], numbers[0], numbers[1], access)


def devices(device: list[str], rules: list[str], privileged: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The spec's nodes and device cgroup rules for these flags."""
    nodes = [{"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666, "uid": 0, "gid": 0} for p, ma, mi in DEVICES]
    cgroup = list(DEFAULT_RULES)
    if privileged:
        have = {n["path"] for n in nodes}
        nodes += [_node(p, s) for p, s in _under("/dev") if p not in have]
        cgroup = list(ALLOW_ALL)
    for value in device:
        more, allow = parse_device(value)
        nodes = [n for n in nodes if n["path"] not in {m["path"] for m in more}] + more
        cgroup += allow
    cgroup += [parse_cgroup_rule(r) for r in rules]
    return nodes, cgroup
