"""Image config + run options -> an OCI runtime spec (config.json's shape), docker's defaults."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's default capability set less CAP_MKNOD, as podman does: with it, root in a container
# could make a node for a host disk in its /dev, and pyc keeps no device cgroup on cgroup v2.
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# (path, major, minor): the devices every container gets in its private /dev.
DEVICES = [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)]

BASE_MOUNTS: list[dict[str, Any]] = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
]


class RunOptions:
    """What `pyc run` takes besides the image, with docker's meanings. Plain attributes, no
    dataclass: the run path does not import `dataclasses` (it pulls in `inspect`)."""

    def __init__(
        self,
        command: list[str] | None = None,
        *,
        entrypoint: str | None = None,
        env: list[str] | None = None,
        env_files: list[str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        hostname: str | None = None,
        name: str | None = None,
        read_only: bool = False,
        volumes: list[str] | None = None,
        tmpfs: list[str] | None = None,
        interactive: bool = False,
        remove: bool = False,
        init: bool = False,
        tty: bool = False,
        memory: str | None = None,
        memory_swap: str | None = None,
        memory_reservation: str | None = None,
        cpus: str | None = None,
        cpu_shares: str | None = None,
        cpuset_cpus: str | None = None,
        pids_limit: str | None = None,
        blkio_weight: str | None = None,
        device_read_bps: list[str] | None = None,
        device_write_bps: list[str] | None = None,
        detach: bool = False,
        restart: str | None = None,
        log_opts: list[str] | None = None,
        pull: str = "missing",
        platform: str | None = None,
        progress: bool = False,
    ) -> None:
        self.command = command or []
        self.entrypoint = entrypoint
        self.env = env or []
        self.env_files = env_files or []
        self.workdir = workdir
        self.user = user
        self.hostname = hostname
        self.name = name
        self.read_only = read_only
        self.volumes = volumes or []
        self.tmpfs = tmpfs or []
        self.interactive = interactive
        self.remove = remove
        self.init = init
        self.tty = tty
        # Limits, as docker's flags write them (checked by runtime/resources.py).
        self.memory = memory
        self.memory_swap = memory_swap
        self.memory_reservation = memory_reservation
        self.cpus = cpus
        self.cpu_shares = cpu_shares
        self.cpuset_cpus = cpuset_cpus
        self.pids_limit = pids_limit
        self.blkio_weight = blkio_weight
        self.device_read_bps = device_read_bps or []
        self.device_write_bps = device_write_bps or []
        # Detached containers: held by pyc-monitor (docker's --restart, --log-opt).
        self.detach = detach
        self.restart = restart
        self.log_opts = log_opts or []
        # When to pull the image (docker's --pull: missing, always, never), for which platform,
        # and whether a pull draws its bars on a terminal (the CLI's run and create).
        self.pull = pull
        self.platform = platform
        self.progress = progress

    def resources(self) -> dict[str, Any]:
        """The OCI `linux.resources` object for the limits given."""
        from pyc.runtime.resources import LIMIT_FLAGS, resources

        return resources(**{name: getattr(self, name) for name in LIMIT_FLAGS})


def merge_env(image_env: list[str], opts: RunOptions, tty: bool = False) -> list[str]:
    """Image env, then --env-file, then -e; `-e NAME` alone takes the value from pyc's env.
    With a terminal (`tty`), TERM=xterm unless one of those sets TERM, as docker does: bash,
    less and vim then know what they draw on."""
    env: dict[str, str] = {}
    for item in image_env:
        k, _, v = item.partition("=")
        env[k] = v
    extra: list[str] = []
    for path in opts.env_files:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError as e:
            raise InvalidArgument(f"--env-file {path}: {e.strerror}") from None
        extra += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    for item in extra + opts.env:
        k, eq, v = item.partition("=")
        if not k or " " in k:
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        if eq:
            env[k] = v
        elif k in os.environ:
            env[k] = os.environ[k]
    env.setdefault("PATH", DEFAULT_PATH)
    if tty:
        env.setdefault("TERM", "xterm")
    return [f"{k}={v}" for k, v in env.items()]


def command_of(image_config: dict[str, Any], opts: RunOptions) -> list[str]:
    """docker's rule: entrypoint + (command given, or the image's Cmd unless --entrypoint)."""
    if opts.entrypoint is not None:
        entry = [opts.entrypoint] if opts.entrypoint else []
        cmd = opts.command
    else:
        entry = list(image_config.get("Entrypoint") or [])
        cmd = opts.command or list(image_config.get("Cmd") or [])
    argv = entry + cmd
    if not argv:
        raise InvalidArgument("no command specified, and the image has none")
    return argv


def _lookup_id(lowers: list[str], file: str, name: str) -> tuple[int, int | None] | None:
    """Find `name` in the image's /etc/passwd or /etc/group: (id, primary gid for users)."""
    for layer in lowers:
        path = os.path.join(layer, "etc", file)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, errors="replace") as f:
                for line in f:
                    fields = line.rstrip("\n").split(":")
                    if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
                        gid = int(fields[3]) if file == "passwd" and len(fields) > 3 and fields[3].isdigit() else None
                        return int(fields[2]), gid
            return None
    return None


def parse_user(user: str | None, lowers: list[str]) -> tuple[int, int]:
    """`-u UID[:GID]` or names from the image's /etc/passwd and /etc/group."""
    if not user:
        return 0, 0
    u, _, g = user.partition(":")
    uid: int
    gid: int | None = None
    if u.isdigit():
        uid = int(u)
    else:
        found = _lookup_id(lowers, "passwd", u) if u else None
        if found is None:
            raise InvalidArgument(f"invalid user {user!r}: no user {u!r} in the image (use UID[:GID])")
        uid, gid = found
    if g:
        if g.isdigit():
            gid = int(g)
        else:
            group = _lookup_id(lowers, "group", g)
            if group is None:
                raise InvalidArgument(f"invalid user {user!r}: no group {g!r} in the image")
            gid = group[0]
    elif ":" in user:
        raise InvalidArgument(f"invalid user {user!r}: empty group")
    if uid > 0xFFFFFFFE or (gid is not None and gid > 0xFFFFFFFE):
        raise InvalidArgument(f"invalid user {user!r}: id out of range")
    # docker's rule: a user given without a group, and not in /etc/passwd, runs as group 0.
    return uid, gid if gid is not None else 0


def volume_mounts(volumes: list[str]) -> list[dict[str, Any]]:
    mounts = []
    for v in volumes:
        parts = v.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise InvalidArgument(f"invalid volume {v!r}: use HOST:CONTAINER[:ro|rw]")
        src, dst = parts[0], parts[1]
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise InvalidArgument(f"invalid volume {v!r}: mode must be ro or rw")
        if not os.path.isabs(src):
            raise InvalidArgument(f"invalid volume {v!r}: the host path must be absolute (named volumes come later)")
        if not os.path.isabs(dst):
            raise InvalidArgument(f"invalid volume {v!r}: the container path must be absolute")
        if not os.path.exists(src):
            raise InvalidArgument(f"bind source path does not exist: {src}")
        mounts.append({"destination": dst, "type": "bind", "source": os.path.realpath(src), "options": ["rbind", "rprivate", mode]})
    return mounts


# The options a --tmpfs may take (docker's): flags, and key=value with the value's form.
TMPFS_FLAGS = ("rw", "ro", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "strictatime", "diratime", "nodiratime", "sync", "async")
TMPFS_VALUES = {"size": "0123456789kmgKMG%", "nr_inodes": "0123456789kmgKMG%", "mode": "01234567", "uid": "0123456789", "gid": "0123456789"}


def tmpfs_mounts(tmpfs: list[str]) -> list[dict[str, Any]]:
    """--tmpfs PATH[:OPTIONS], checked here: a bad option is one line before any container is
    made, not a failed mount at its start."""
    mounts = []
    for t in tmpfs:
        path, _, opts = t.partition(":")
        if not os.path.isabs(path):
            raise InvalidArgument(f"invalid --tmpfs {t!r}: the path must be absolute")
        given = [o for o in opts.split(",") if o]
        for o in given:
            key, eq, value = o.partition("=")
            digits = value.rstrip("kmgKMG%") if key in ("size", "nr_inodes") else value
            if not (key in TMPFS_FLAGS and not eq or key in TMPFS_VALUES and value and digits.isdigit() and all(c in TMPFS_VALUES[key] for c in value)):
                raise InvalidArgument(f"invalid --tmpfs {t!r}: bad option {o!r} (size=64m, mode=1777, uid=N, gid=N, nr_inodes=N, ro, exec, ...)")
        mounts.append({"destination": path, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", *given]})
    return mounts


HOSTNAME_MAX = 64  # the kernel's (HOST_NAME_MAX): sethostname refuses more


def check_hostname(hostname: str) -> str:
    """A host name the container can be given: at most 64 characters, no space or control
    character (it is written into the container's /etc/hosts)."""
    if len(hostname) > HOSTNAME_MAX:
        raise InvalidArgument(f"invalid hostname {hostname[:20]!r}…: longer than {HOSTNAME_MAX} characters ({len(hostname)})")
    if not hostname or not all(c.isascii() and c.isprintable() and not c.isspace() for c in hostname):
        raise InvalidArgument(f"invalid hostname {hostname!r}: use letters, digits, - and .")
    return hostname


def build(image_config: dict[str, Any], opts: RunOptions, rootfs: str, etc_files: dict[str, str], lowers: list[str], hostname: str) -> dict[str, Any]:
    check_hostname(hostname)
    env = merge_env(list(image_config.get("Env") or []), opts, tty=opts.tty)
    if not any(e.startswith("HOSTNAME=") for e in env):
        env.append(f"HOSTNAME={hostname}")
    uid, gid = parse_user(opts.user or image_config.get("User") or None, lowers)
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=/root" if uid == 0 else "HOME=/")
    cwd = opts.workdir or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory {cwd!r} is not an absolute path")
    caps = list(DEFAULT_CAPS)
    etc = [{"destination": f"/etc/{name}", "type": "bind", "source": src, "options": ["rbind", "rprivate"]} for name, src in etc_files.items()]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": opts.tty,
            "user": {"uid": uid, "gid": gid},
            "args": command_of(image_config, opts),
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": []},
        },
        "root": {"path": rootfs, "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": BASE_MOUNTS + etc + volume_mounts(opts.volumes) + tmpfs_mounts(opts.tmpfs),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "devices": [{"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666, "uid": 0, "gid": 0} for p, ma, mi in DEVICES],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "resources": opts.resources(),
        },
    }
