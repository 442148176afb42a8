"""docker's per-process settings: --ulimit, --sysctl, --oom-score-adj and --group-add, as the OCI
spec's process.rlimits, linux.sysctl, process.oomScoreAdj and user.additionalGids, checked before
anything is written.

What pyc itself cannot grant is refused on one line: raising a hard limit above pyc's own, or
lowering the OOM score, takes CAP_SYS_RESOURCE, which root lacks on some hosts (this one: hard
RLIMIT_NOFILE 20000)."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# docker's names -> RLIMIT_*
ULIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}  # fmt: skip
ULIMIT_NAMES = {kind: name for name, kind in ULIMITS.items()}
UNLIMITED = 2**64 - 1  # RLIM_INFINITY as the spec carries it

# Sysctls a container's own namespaces hold (runc's list): IPC, and net with its own network.
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def _cap_sys_resource() -> bool:
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff >> 24 & 1)


def _limit(value: str) -> int:
    if value in ("-1", "unlimited"):
        return UNLIMITED
    if not value.isdigit():
        raise ValueError(value)
    return int(value)


def rlimits(ulimits: list[str]) -> list[dict[str, object]]:
    """--ulimit NAME=SOFT[:HARD] -> process.rlimits."""
    import resource  # here: most runs give no --ulimit

    out: dict[str, dict[str, object]] = {}
    for u in ulimits:
        name, eq, values = u.partition("=")
        if not eq or name not in ULIMITS:
            raise InvalidArgument(f"invalid --ulimit {u!r}: use NAME=SOFT[:HARD] with a NAME of {', '.join(ULIMITS)}")
        soft_s, _, hard_s = values.partition(":")
        try:
            soft = _limit(soft_s)
            hard = _limit(hard_s) if hard_s else soft
        except ValueError:
            raise InvalidArgument(f"invalid --ulimit {u!r}: limits are whole numbers (or -1, unlimited)") from None
        if soft > hard:
            raise InvalidArgument(f"invalid --ulimit {u!r}: the soft limit is above the hard one")
        kind = ULIMITS[name]
        own = resource.getrlimit(getattr(resource, kind))[1]
        own = UNLIMITED if own == resource.RLIM_INFINITY else own
        if hard > own and not _cap_sys_resource():
            raise InvalidArgument(f"invalid --ulimit {u!r}: above this host's hard limit {own}, which pyc cannot raise (it lacks CAP_SYS_RESOURCE)")
        out[name] = {"type": kind, "soft": soft, "hard": hard}
    return list(out.values())


def sysctls(values: list[str], own_network: bool = True) -> dict[str, str]:
    """--sysctl NAME=VALUE -> linux.sysctl: namespaced ones only (IPC, fs.mqueue, and net.* with
    a network of its own), each one this kernel has."""
    out = {}
    for item in values:
        name, eq, value = item.partition("=")
        name = name.strip().replace("/", ".")
        if not eq or not name or not all(c.isalnum() or c in "._-" for c in name) or ".." in name or name.startswith("."):
            raise InvalidArgument(f"invalid --sysctl {item!r}: use NAME=VALUE, e.g. net.ipv4.ip_forward=1")
        if not (name in IPC_SYSCTLS or name.startswith("fs.mqueue.") or (name.startswith("net.") and own_network)):
            raise InvalidArgument(f"invalid --sysctl {item!r}: {name} is not namespaced (a container may set net.*, kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*)")
        if not os.path.exists("/proc/sys/" + name.replace(".", "/")):
            raise InvalidArgument(f"invalid --sysctl {item!r}: this kernel has no {name}")
        if "\n" in value or "\0" in value:
            raise InvalidArgument(f"invalid --sysctl {item!r}: the value is one line")
        out[name] = value
    return out


def oom_score_adj(value: int | None) -> int | None:
    if value is None:
        return None
    if not -1000 <= value <= 1000:
        raise InvalidArgument(f"invalid --oom-score-adj {value}: the range is -1000 to 1000")
    if value < 0 and not _cap_sys_resource():
        raise InvalidArgument(f"invalid --oom-score-adj {value}: lowering it below 0 takes CAP_SYS_RESOURCE, which pyc lacks on this host")
    return value


def group_ids(groups: list[str], lookup: Callable[[str], int | None]) -> list[int]:
    """--group-add GID or a group name of the image's /etc/group (`lookup(name)` -> gid or None)."""
    out: list[int] = []
    for g in groups:
        if g.isdigit():
            gid = int(g)
        else:
            found = lookup(g)
            if found is None:
                raise InvalidArgument(f"invalid --group-add {g!r}: no such group in the image (use a GID)")
            gid = found
        if gid > 0xFFFFFFFE:
            raise InvalidArgument(f"invalid --group-add {g!r}: out of range")
        if gid not in out:
            out.append(gid)
    return out
