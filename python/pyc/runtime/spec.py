"""Image config + run options -> an OCI runtime spec (config.json's shape), docker's defaults."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument
from pyc.runtime.devices import devices
from pyc.runtime.process_limits import group_ids, oom_score_adj, rlimits, sysctls
from pyc.runtime.security import SecurityOpts, capabilities, security_opts

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any

    from pyc.records import MountPoint

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# docker's, and (as podman) /sys/dev/block: the host's block devices by number, each a link to
# its sysfs directory.
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap", "/sys/dev/block",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

BASE_MOUNTS: list[dict[str, Any]] = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    # The container's own cgroup (pyc-core binds it from the directories it made).
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
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
        mounts: list[str] | None = None,
        volumes_from: list[str] | None = None,
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
        cap_add: list[str] | None = None,
        cap_drop: list[str] | None = None,
        privileged: bool = False,
        security_opts: list[str] | None = None,
        devices: list[str] | None = None,
        device_cgroup_rules: list[str] | None = None,
        ulimits: list[str] | None = None,
        sysctls: list[str] | None = None,
        oom_score_adj: int | None = None,
        group_add: list[str] | None = None,
        network: str | None = None,
        ip: str | None = None,
        network_aliases: list[str] | None = None,
        publish: list[str] | None = None,
        publish_all: bool = False,
        dns: list[str] | None = None,
        dns_search: list[str] | None = None,
        dns_options: list[str] | None = None,
        add_hosts: list[str] | None = None,
        domainname: str | None = None,
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
        self.volumes = volumes or []  # -v, --mount, --volumes-from, --tmpfs as given (runtime/mounts.py)
        self.mounts = mounts or []
        self.volumes_from = volumes_from or []
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
        # Confinement (runtime/security.py): docker's --cap-add, --cap-drop, --privileged, --security-opt.
        self.cap_add = cap_add or []
        self.cap_drop = cap_drop or []
        self.privileged = privileged
        self.security_opts = security_opts or []
        self.devices = devices or []  # --device (runtime/devices.py)
        self.device_cgroup_rules = device_cgroup_rules or []
        # Per process (runtime/process_limits.py): --ulimit, --sysctl, --oom-score-adj, --group-add.
        self.ulimits = ulimits or []
        self.sysctls = sysctls or []
        self.oom_score_adj = oom_score_adj
        self.group_add = group_add or []
        self._security: SecurityOpts | None = None
        # The network (pyc/network/): none, host, bridge, a network's name, container:NAME;
        # None for the default (PYC_DEFAULT_NETWORK, else bridge).
        self.network = network
        self.ip = ip
        self.network_aliases = network_aliases or []
        self.publish = publish or []
        self.publish_all = publish_all
        self.dns = dns or []
        self.dns_search = dns_search or []
        self.dns_options = dns_options or []
        self.add_hosts = add_hosts or []
        self.domainname = domainname
        # When to pull the image (docker's --pull: missing, always, never), for which platform,
        # and whether a pull draws its bars on a terminal (the CLI's run and create).
        self.pull = pull
        self.platform = platform
        self.progress = progress

    def security(self) -> SecurityOpts:
        """--security-opt, read once (a seccomp profile file among them)."""
        if self._security is None:
            self._security = security_opts(self.security_opts)
        return self._security

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


def _etc_entries(lowers: list[str], file: str) -> list[list[str]]:
    """The fields of each line of the image's /etc/passwd or /etc/group (the topmost layer that
    has it; a link there is not followed)."""
    for layer in lowers:
        path = os.path.join(layer, "etc", file)
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, errors="replace") as f:
                return [fields for line in f if len(fields := line.rstrip("\n").split(":")) >= 3 and fields[2].isdigit()]
        if os.path.lexists(path):
            return []
    return []


def _lookup_id(lowers: list[str], file: str, name: str) -> tuple[int, int | None] | None:
    """Find `name` in the image's /etc/passwd or /etc/group: (id, primary gid for users)."""
    for fields in _etc_entries(lowers, file):
        if fields[0] == name:
            gid = int(fields[3]) if file == "passwd" and len(fields) > 3 and fields[3].isdigit() else None
            return int(fields[2]), gid
    return None


def member_gids(lowers: list[str], uid: int, name: str | None) -> list[int]:
    """The groups of the image's /etc/group that list the user (`name`, or the name /etc/passwd
    gives `uid`) as a member: its supplementary groups, as runc gives them."""
    if name is None:
        name = next((f[0] for f in _etc_entries(lowers, "passwd") if int(f[2]) == uid), None)
        if name is None:
            return []
    gids = [int(f[2]) for f in _etc_entries(lowers, "group") if len(f) > 3 and name in f[3].split(",")]
    return [g for g in dict.fromkeys(gids) if g <= 0xFFFFFFFE]


def home_of(uid: int, lowers: list[str]) -> str:
    """The user's home in the image's /etc/passwd, else / (runc's, docker's: root too)."""
    return next((f[5] for f in _etc_entries(lowers, "passwd") if int(f[2]) == uid and len(f) > 5 and f[5]), "/")


def parse_user(user: str | None, lowers: list[str]) -> tuple[int, int]:
    """`-u UID[:GID]` or names from the image's /etc/passwd and /etc/group."""
    if not user:
        return 0, 0
    u, _, g = user.partition(":")
    uid: int
    gid: int | None = None
    if u.isdigit():
        uid = int(u)
        # A UID that /etc/passwd has runs as that user's group, as under docker.
        gid = next((int(f[3]) for f in _etc_entries(lowers, "passwd") if int(f[2]) == uid and len(f) > 3 and f[3].isdigit()), None)
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


def bind_options(readonly: bool, propagation: str = "", privileged: bool = False) -> list[str]:
    """A bind or a volume: recursive, private unless asked, and never a way to a device or a
    set-id program (nodev, nosuid, which pyc-core makes hold for the whole bound tree): what a
    container has of the host's files is data only; --privileged keeps them as on the host."""
    return ["rbind", propagation or "rprivate", *([] if privileged else ["nosuid", "nodev"]), "ro" if readonly else "rw"]


def tmpfs_options(options: list[str]) -> list[str]:
    """A tmpfs (--tmpfs, --mount type=tmpfs, a tmpfs volume): docker's defaults, then what was given."""
    return ["nosuid", "nodev", "noexec", *options]


def user_groups(user: str | None, uid: int, gid: int, group_add: list[str], lowers: list[str]) -> list[int]:
    """The supplementary groups, as docker gives them: the primary group (so that a file's
    group bits that refuse it hold: CVE-2022-36109), the groups of the image's /etc/group that
    list the user when it is given without a group (runc's rule), and --group-add's (names
    looked up in the same /etc/group)."""
    name = user if user and not user.isdigit() else None
    members = [] if user and ":" in user else member_gids(lowers, uid, name)
    added = group_ids(group_add, lambda g: (_lookup_id(lowers, "group", g) or (None, None))[0])
    return list(dict.fromkeys([gid, *members, *added]))


def user_mounts(points: list[MountPoint], etc: dict[str, str], readonly_root: bool, privileged: bool = False) -> list[dict[str, Any]]:
    """The OCI mounts of a container's volumes, binds and tmpfs, and of its /etc files (read-only
    with --read-only, as docker has them; left out where the user mounts something there), in
    order of depth: a mount goes on the ones above it."""
    mounts: list[tuple[str, dict[str, Any]]] = []
    for m in points:
        if m.type == "tmpfs" or m.driver_type == "tmpfs":
            opts = tmpfs_options(m.options + ([] if m.rw else ["ro"]))
            mounts.append((m.destination, {"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": opts}))
        else:
            mounts.append((m.destination, {"destination": m.destination, "type": "bind", "source": m.source, "options": bind_options(not m.rw, m.propagation, privileged)}))
    taken = {m.destination for m in points}
    for name, src in etc.items():
        dest = f"/etc/{name}"
        if dest not in taken:
            inert = [] if privileged else ["nosuid", "nodev"]
            mounts.append((dest, {"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate", *inert] + (["ro"] if readonly_root else [])}))
    mounts.sort(key=lambda m: m[0].count("/"))
    return [m for _, m in mounts]


HOSTNAME_MAX = 64  # the kernel's (HOST_NAME_MAX): sethostname refuses more


def check_hostname(hostname: str) -> str:
    """A host name the container can be given: at most 64 characters, no space or control
    character (it is written into the container's /etc/hosts)."""
    if len(hostname) > HOSTNAME_MAX:
        raise InvalidArgument(f"invalid hostname {hostname[:20]!r}…: longer than {HOSTNAME_MAX} characters ({len(hostname)})")
    if not hostname or not all(c.isascii() and c.isprintable() and not c.isspace() for c in hostname):
        raise InvalidArgument(f"invalid hostname {hostname!r}: use letters, digits, - and .")
    return hostname


def build(image_config: dict[str, Any], opts: RunOptions, rootfs: str, etc_files: dict[str, str], lowers: list[str], hostname: str, points: list[MountPoint] | None = None) -> dict[str, Any]:
    check_hostname(hostname)
    env = merge_env(list(image_config.get("Env") or []), opts, tty=opts.tty)
    if not any(e.startswith("HOSTNAME=") for e in env):
        env.append(f"HOSTNAME={hostname}")
    user_spec = opts.user or image_config.get("User") or None
    uid, gid = parse_user(user_spec, lowers)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home_of(uid, lowers)}")
    cwd = opts.workdir or image_config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory {cwd!r} is not an absolute path")
    caps = capabilities(opts.cap_add, opts.cap_drop, opts.privileged)
    security = opts.security()
    # --privileged: nothing masked, /sys and /proc writable (docker's); systempaths=unconfined:
    # nothing masked either.
    confined_paths = not (opts.privileged or security.unconfined_paths)
    mounts = BASE_MOUNTS if not opts.privileged else [dict(m, options=[o for o in m["options"] if o != "ro"]) for m in BASE_MOUNTS]
    nodes, device_rules = devices(opts.devices, opts.device_cgroup_rules, opts.privileged)
    resources = opts.resources()
    resources["devices"] = device_rules
    user: dict[str, Any] = {"uid": uid, "gid": gid, "additionalGids": user_groups(user_spec, uid, gid, opts.group_add, lowers)}
    extra: dict[str, Any] = {}
    if opts.ulimits:
        extra["rlimits"] = rlimits(opts.ulimits)
    if opts.oom_score_adj is not None:
        extra["oomScoreAdj"] = oom_score_adj(opts.oom_score_adj)
    linux_extra = {"sysctl": sysctls(opts.sysctls)} if opts.sysctls else {}
    return {
        "ociVersion": "1.0.2",
        "process": {
            **extra,
            "terminal": opts.tty,
            "user": user,
            "args": command_of(image_config, opts),
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": []},
            "noNewPrivileges": security.no_new_privileges,
        },
        "root": {"path": rootfs, "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": mounts + user_mounts(points or [], etc_files, opts.read_only, opts.privileged),
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "devices": nodes,
            "maskedPaths": MASKED_PATHS if confined_paths else [],
            "readonlyPaths": READONLY_PATHS if confined_paths else [],
            "resources": resources,
            **linux_extra,
        },
    }
