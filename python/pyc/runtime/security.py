"""docker's confinement flags, checked before anything is written: --cap-add, --cap-drop,
--privileged and --security-opt (seccomp, no-new-privileges, apparmor, label, systempaths).

Capabilities follow docker 20.10: names with or without `CAP_`, any case, and `ALL`; with ALL
in --cap-add every capability but the dropped ones, with ALL in --cap-drop only the added ones,
else docker's default set less the dropped plus the added. "Every capability" is every one pyc
itself holds (its bounding set): a container cannot get what its starter does not have, and
this host's root, for one, lacks CAP_SYS_RESOURCE."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument

# Bit n of a capability mask is ALL_CAPS[n] (linux/capability.h).
ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

# docker's default set, in docker's order. CAP_MKNOD makes nodes only: the device cgroup
# (runtime/devices.py) decides which ones open.
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip


def _held() -> list[str]:
    """The capabilities pyc's own bounding set holds, in bit order."""
    with open("/proc/self/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return [c for i, c in enumerate(ALL_CAPS) if mask >> i & 1]


def _normalize(flag: str, names: list[str]) -> list[str]:
    out = []
    for name in names:
        n = name.strip().upper()
        if n != "ALL" and not n.startswith("CAP_"):
            n = "CAP_" + n
        if n != "ALL" and n not in ALL_CAPS:
            raise InvalidArgument(f"invalid {flag} {name!r}: unknown capability (e.g. NET_ADMIN, CAP_SYS_PTRACE, ALL)")
        out.append(n)
    return out


def capabilities(cap_add: list[str], cap_drop: list[str], privileged: bool) -> list[str]:
    """The container's capabilities (bounding, effective and permitted alike) for the flags."""
    add, drop = _normalize("--cap-add", cap_add), _normalize("--cap-drop", cap_drop)
    if privileged or "ALL" in add:
        held = _held()
        return [c for c in held if privileged or c not in drop]
    if "ALL" in drop:
        caps = list(dict.fromkeys(add))
    else:
        caps = [c for c in DEFAULT_CAPS if c not in drop] + [c for c in dict.fromkeys(add) if c not in DEFAULT_CAPS]
    if any(c not in DEFAULT_CAPS for c in caps):
        held = _held()
        missing = [c for c in caps if c not in held]
        if missing:
            raise InvalidArgument(f"invalid --cap-add {missing[0].removeprefix('CAP_')}: pyc itself does not hold {missing[0]}, so no container of it can")
    return caps


class SecurityOpts:
    """--security-opt, read: `seccomp` is None (the default profile), "unconfined", or a
    profile's JSON text (docker's format); `seccomp_file` the path it came from."""

    __slots__ = ("seccomp", "seccomp_file", "no_new_privileges", "unconfined_paths")

    def __init__(self) -> None:
        self.seccomp: str | None = None
        self.seccomp_file: str | None = None
        self.no_new_privileges = False
        self.unconfined_paths = False


def _lsm_present(path: str) -> bool:
    return os.path.exists(path)


def security_opts(values: list[str]) -> SecurityOpts:
    out = SecurityOpts()
    for value in values:
        key, sep, arg = value.partition("=")
        if not sep:  # docker's older spelling, seccomp:unconfined
            key, sep, arg = value.partition(":")
        if key == "no-new-privileges":
            if arg not in ("", "true", "false"):
                raise InvalidArgument(f"invalid --security-opt {value!r}: no-new-privileges takes true or false")
            out.no_new_privileges = arg != "false"
        elif key == "seccomp" and arg:
            if arg == "unconfined":
                out.seccomp, out.seccomp_file = "unconfined", None
                continue
            try:
                with open(arg) as f:
                    out.seccomp = f.read()
            except OSError as e:
                raise InvalidArgument(f"invalid --security-opt {value!r}: cannot read the seccomp profile: {e.strerror}") from None
            out.seccomp_file = arg
        elif key == "apparmor" and arg:
            # Nothing to apply where the host has no AppArmor; where it has, pyc would have to.
            if arg != "unconfined" and _lsm_present("/sys/kernel/security/apparmor"):
                raise InvalidArgument(f"invalid --security-opt {value!r}: pyc does not apply AppArmor profiles (only apparmor=unconfined)")
        elif key == "label" and arg:
            if arg != "disable" and _lsm_present("/sys/fs/selinux/enforce"):
                raise InvalidArgument(f"invalid --security-opt {value!r}: pyc does not apply SELinux labels (only label=disable)")
            if arg.partition(":")[0] not in ("disable", "user", "role", "type", "level", "filetype", "nested"):
                raise InvalidArgument(f"invalid --security-opt {value!r}: label takes disable, user:, role:, type: or level:")
        elif key == "systempaths" and arg == "unconfined":
            out.unconfined_paths = True
        else:
            raise InvalidArgument(
                f"invalid --security-opt {value!r}: use seccomp=unconfined|PROFILE.json, no-new-privileges, apparmor=..., label=..., systempaths=unconfined"
            )
    return out
