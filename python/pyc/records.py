"""The typed records pyc keeps and passes: a container's record (its row in pyc.db), its state,
and the structures that cross to the Rust side as msgpack (the run, exec and monitor configs;
the monitor's state file comes back). Field names are the stored and sent names: the Rust side
decodes `RunConfig`, `ExecConfig` and `MonitorConfig` by them (tests/golden/ holds their bytes,
checked on both sides). docker's inspect shape is made from these only at the edge
(pyc/inspect.py).

mypy checks this module with disallow_any_explicit: documents that are not pyc's own (an OCI
spec, a process) are `dict[str, object]`, never Any."""

from pyc.record import BadRecord, Record

DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"


class ContainerState(Record):
    """Where a container is in its life. A detached container's pyc-monitor writes it to
    state.msgpack at every change (`from_monitor`); pyc.db keeps the last one pyc saw."""

    status: str = "created"  # created, running, restarting or exited
    exit_code: int = 0
    oom_killed: bool = False
    pid: int = 0
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    restart_count: int = 0
    # Frozen by `pyc pause` (its cgroup's freezer): pyc's word, never the monitor's. It shows
    # only while the container runs (docker's State.Paused; `shown_status` is "paused").
    paused: bool = False
    # Its holder (pyc-monitor, or the pyc of a foreground run) and that process's start time,
    # which tells it from a process that took its pid after it died.
    monitor_pid: int = 0
    monitor_start: str = ""

    # state.msgpack's names (rust/monitor/src/state.rs) -> field
    _MONITOR_KEYS = {
        "Status": "status",
        "ExitCode": "exit_code",
        "OOMKilled": "oom_killed",
        "Pid": "pid",
        "StartedAt": "started_at",
        "FinishedAt": "finished_at",
        "Error": "error",
        "RestartCount": "restart_count",
        "MonitorPid": "monitor_pid",
        "MonitorStart": "monitor_start",
    }

    @classmethod
    def from_monitor(cls, data: dict[str, object]) -> "ContainerState":
        return cls.from_dict({field: data[key] for key, field in cls._MONITOR_KEYS.items() if key in data})

    def overlaid(self, monitor: "ContainerState") -> "ContainerState":
        """This state with the monitor's word on top (its empty strings, but for `error`, say
        nothing: the monitor writes every field but `paused`, which is pyc's)."""
        changes = {f: getattr(monitor, f) for f in type(self)._fields if f != "paused" and (getattr(monitor, f) != "" or f == "error")}
        return self.replace(**changes)

    @property
    def is_paused(self) -> bool:
        return self.paused and self.status == "running"

    @property
    def shown_status(self) -> str:
        """docker's State.Status: "paused" for a paused running container, else `status`."""
        return "paused" if self.is_paused else self.status


class ContainerConfig(Record):
    """The process a container runs (docker's Config)."""

    cmd: list[str] = []
    env: list[str] = []
    working_dir: str = "/"
    hostname: str = ""
    stop_signal: str = ""
    tty: bool = False  # its process has a terminal (-t), which its monitor serves to attach
    domainname: str = ""
    exposed_ports: list[str] = []  # the image's EXPOSE ("80/tcp"), what -P publishes


class Restart(Record):
    """docker's --restart: `policy` no, on-failure (at most `max` retries, 0: no limit), always
    or unless-stopped."""

    policy: str = "no"
    max: int = 0


class LogOptions(Record):
    """A detached container's log: bytes in the live file before it is rotated, files kept."""

    max_size: int = 10 << 20
    max_files: int = 2


class MountPoint(Record):
    """One volume, bind or tmpfs of a container, as resolved when it was made (docker's
    MountPoint, the `Mounts` of inspect)."""

    type: str  # volume, bind or tmpfs
    destination: str
    source: str = ""  # the host path: a bind's source, a volume's _data; "" for tmpfs
    name: str = ""  # a volume's
    mode: str = ""  # as given (-v's ro, z, nocopy ...), for inspect
    rw: bool = True
    propagation: str = ""  # a bind's: rprivate unless given
    options: list[str] = []  # a tmpfs's: size=, mode=
    driver_type: str = ""  # a volume's `type` option: "" (its own _data), tmpfs, none (a bind)


class DeviceMapping(Record):
    """A --device: docker's PathOnHost, PathInContainer, CgroupPermissions."""

    path_on_host: str
    path_in_container: str
    cgroup_permissions: str = "rwm"


class Ulimit(Record):
    """A --ulimit: docker's Name, Soft, Hard (-1: unlimited)."""

    name: str
    soft: int
    hard: int


class PortBinding(Record):
    """A published port (`-p`): `proto` tcp or udp, `host_ip` "" for every address of the host,
    `host_port` 0 for a free one the kernel picks (`-P`, `-p CTR`)."""

    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    container_port: int


class EndpointConfig(Record):
    """What a container asks of one network it is on: an address (`--ip`) and names
    (`--network-alias`)."""

    ip: str = ""
    aliases: list[str] = []


class HostConfig(Record):
    """How a container is set up on the host (docker's HostConfig); limits in docker's units."""

    auto_remove: bool = False
    init: bool = False
    readonly_rootfs: bool = False
    binds: list[str] = []  # -v, as given
    tmpfs: list[str] = []
    mounts: list[str] = []  # --mount, as given
    volumes_from: list[str] = []
    # The cgroup goes at <cgroup root>/<each hierarchy>/<cgroup_parent>/<id>.
    cgroup_parent: str = "pyc"
    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    pids_limit: int = 0
    blkio_weight: int = 0
    restart: Restart = Restart()
    log: LogOptions | None = None  # a detached container's; None: it has no log
    # Confinement, as given (runtime/security.py reads them).
    cap_add: list[str] = []
    cap_drop: list[str] = []
    privileged: bool = False
    security_opt: list[str] = []
    devices: list[DeviceMapping] = []
    device_cgroup_rules: list[str] = []
    ulimits: list[Ulimit] = []
    sysctls: dict[str, str] = {}
    oom_score_adj: int = 0
    group_add: list[str] = []
    # The network: none, host, container:<id>, or a network's name; "" from a pyc before networks
    # (none). Bridge networks are the keys of `endpoints`, in order (eth0, eth1, ...).
    network_mode: str = ""
    endpoints: dict[str, EndpointConfig] = {}
    port_bindings: list[PortBinding] = []
    publish_all: bool = False  # -P: every port the image exposes, to a free host port
    dns: list[str] = []
    dns_search: list[str] = []
    dns_options: list[str] = []
    extra_hosts: list[str] = []  # --add-host NAME:IP

    def with_limits(self, resources: dict[str, object]) -> "HostConfig":
        """These settings with the limits of an OCI `linux.resources` object."""
        mem, cpu = _map(resources.get("memory")), _map(resources.get("cpu"))
        quota, period = _int(cpu.get("quota")), _int(cpu.get("period"))
        return self.replace(
            memory=_int(mem.get("limit")),
            memory_swap=_int(mem.get("swap")),
            memory_reservation=_int(mem.get("reservation")),
            nano_cpus=quota * 1_000_000_000 // period if quota and period else 0,
            cpu_shares=_int(cpu.get("shares")),
            cpuset_cpus=str(cpu.get("cpus") or ""),
            pids_limit=_int(_map(resources.get("pids")).get("limit")),
            blkio_weight=_int(_map(resources.get("blockIO")).get("weight")),
        )


def _map(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


class ContainerRecord(Record):
    """A container as pyc.db keeps it (msgpack of `to_dict()`)."""

    id: str
    name: str
    created: str
    image: str  # as the user named it
    image_id: str
    layers: list[str] = []  # chain ids, bottom-most first
    config: ContainerConfig = ContainerConfig()
    host_config: HostConfig = HostConfig()
    cgroup_root: str = DEFAULT_CGROUP_ROOT
    state: ContainerState = ContainerState()
    mounts: list[MountPoint] = []

    @classmethod
    def load(cls, data: object) -> "ContainerRecord":
        """From a row's decoded msgpack: this shape, or the one pyc wrote before records were
        typed (docker's names: Id, Name, HostConfig, ...)."""
        if not isinstance(data, dict):
            raise BadRecord(f"a container record is a map, not {type(data).__name__}")
        return cls.from_dict(_from_docker_names(data) if "Id" in data else data)


def _from_docker_names(old: dict[str, object]) -> dict[str, object]:
    """A record of the first pyc.db (docker inspect's names, a free-form dict) in this shape."""
    config, host, state = _map(old.get("Config")), _map(old.get("HostConfig")), _map(old.get("State"))
    restart, log = _map(host.get("RestartPolicy")), _map(_map(host.get("LogConfig")).get("Config"))
    return {
        "id": old.get("Id"),
        "name": old.get("Name"),
        "created": old.get("Created"),
        "image": old.get("Image"),
        "image_id": old.get("ImageId"),
        "layers": old.get("Layers", []),
        "config": {
            "cmd": config.get("Cmd") or [],
            "env": config.get("Env") or [],
            "working_dir": config.get("WorkingDir") or "/",
            "hostname": config.get("Hostname") or "",
            "stop_signal": config.get("StopSignal") or "",
        },
        "host_config": {
            "auto_remove": bool(host.get("AutoRemove")),
            "init": bool(host.get("Init")),
            "readonly_rootfs": bool(host.get("ReadonlyRootfs")),
            "binds": host.get("Binds") or [],
            "tmpfs": host.get("Tmpfs") or [],
            "cgroup_parent": host.get("CgroupParent") or "pyc",
            "memory": host.get("Memory", 0),
            "memory_swap": host.get("MemorySwap", 0),
            "memory_reservation": host.get("MemoryReservation", 0),
            "nano_cpus": host.get("NanoCpus", 0),
            "cpu_shares": host.get("CpuShares", 0),
            "cpuset_cpus": host.get("CpusetCpus", ""),
            "pids_limit": host.get("PidsLimit", 0),
            "blkio_weight": host.get("BlkioWeight", 0),
            "restart": {"policy": restart.get("Name") or "no", "max": restart.get("MaximumRetryCount", 0)},
            "log": {"max_size": int(str(log["max-size"])), "max_files": int(str(log["max-file"]))} if "max-size" in log and "max-file" in log else None,
        },
        "cgroup_root": old.get("CgroupRoot") or DEFAULT_CGROUP_ROOT,
        "state": {
            "status": state.get("Status", "created"),
            "exit_code": state.get("ExitCode", 0),
            "oom_killed": bool(state.get("OOMKilled")),
            "pid": state.get("Pid") or 0,
            "started_at": state.get("StartedAt") or "",
            "finished_at": state.get("FinishedAt") or "",
            "error": state.get("Error") or "",
            "restart_count": state.get("RestartCount") or 0,
            "monitor_pid": state.get("MonitorPid") or 0,
            "monitor_start": state.get("MonitorStart") or "",
        },
    }


class VolumeRecord(Record):
    """A volume as pyc.db keeps it: docker's local driver, its files under
    $PYC_ROOT/volumes/<name>/_data, or (options) a tmpfs or a bind of a host directory."""

    name: str
    created: str
    driver: str = "local"
    labels: dict[str, str] = {}
    options: dict[str, str] = {}  # type=tmpfs|none, o=..., device=PATH
    anonymous: bool = False  # made for one container (-v /path, an image's VOLUME)


class NetworkRecord(Record):
    """A network as pyc.db keeps it: a bridge (`bridge`, with the gateway's address) over an
    IPv4 subnet; `dns`: a resolver at the gateway answers its containers' names."""

    id: str
    name: str
    created: str
    driver: str = "bridge"
    bridge: str
    subnet: str  # CIDR
    gateway: str
    mac: str  # the bridge's
    internal: bool = False
    dns: bool = True
    labels: dict[str, str] = {}


class Endpoint(Record):
    """A running container's place on a network (a file of the network's run directory while it lives):
    its interface, address, names and, on its first network, the ports published to it. Its
    holder (the pyc or pyc-monitor that holds the container) ending frees it."""

    network: str  # id
    container: str  # id
    ifname: str
    ip: str
    prefix: int
    mac: str
    gateway: str = ""
    aliases: list[str] = []
    ports: list[PortBinding] = []  # host_port as bound
    holder_pid: int = 0
    holder_start: str = ""


# -- what crosses to the Rust side (rust/core/src/container/config.rs, exec.rs; rust/monitor) ---


class Overlay(Record):
    """The container's root: read-only layers (top-most first) under its upper dir."""

    lower: list[str]
    upper: str
    work: str
    volatile: bool = False  # no syncs of the upper dir: for containers thrown away (--rm)


class CgroupPlace(Record):
    """Where a container's cgroup is: `path` under each hierarchy of `root`."""

    root: str
    path: str


class NetInterface(Record):
    """One veth pair of a container (rust/core/src/net/mod.rs, Interface)."""

    bridge: str
    name: str
    address: str
    prefix: int
    gateway: str | None = None
    mac: str
    hairpin: bool = False  # the container publishes ports: it may reach its own


class NetPort(Record):
    """One published port as the holder DNATs it (rust/core/src/net/mod.rs, Port)."""

    proto: str
    host_ip: str | None = None
    host_port: int
    container_ip: str
    container_port: int


class NetPlan(Record):
    """A container's network for one start: its interfaces and the ports its holder publishes."""

    interfaces: list[NetInterface] = []
    ports: list[NetPort] = []


class EventActor(Record):
    """Where a container's events go (the journal, pyc/events.py) and what each says of it:
    docker's Actor, its id and the attributes every event of it carries (image, name)."""

    journal: str
    id: str
    attributes: dict[str, str] = {}


class SeccompConfig(Record):
    """The seccomp profile of a container's processes: docker's JSON (None: docker's default),
    and where compiled filters are cached."""

    profile: str | None = None
    cache: str | None = None


class RunConfig(Record):
    """pyc_core.run's config, and the monitor's `run`: an OCI runtime spec plus what the spec
    has no words for."""

    spec: dict[str, object]
    rootfs: Overlay
    cgroup: CgroupPlace
    init: bool = False  # a reaper as pid 1 (--init)
    pyc_init: str | None = None  # the program of --init (pyc-init), run from a sealed copy
    network: NetPlan = NetPlan()
    events: EventActor | None = None  # its start, oom and die, which the Rust side logs
    seccomp: SeccompConfig | None = None  # None: unconfined (--privileged, seccomp=unconfined)


class ExecConfig(Record):
    """pyc_core.exec_in's config: the process to start in a running container."""

    process: dict[str, object]
    cgroup: CgroupPlace
    detach: bool = False
    pyc_init: str  # pyc-init, which enters the container and starts the process
    seccomp: SeccompConfig | None = None  # the container's


class CopyConfig(Record):
    """pyc_core.copy's config: one `pyc cp`. `view` is where the container's files are:
    {"running": {"cgroup": CgroupPlace}} or {"stopped": {lower, upper, work, mountpoint,
    readonly, mounts: [{source, destination, tmpfs, readonly}]}} (rust/core/src/copy/view.rs)."""

    view: dict[str, object]
    container_path: str
    host_path: str | None = None  # None: a tar on the stream given (`-`)
    into: bool  # into the container, else out of it
    follow: bool = False  # -L
    archive: bool = False  # -a


class MonitorConfig(Record):
    """monitor.msgpack in a detached container's directory, which its pyc-monitor reads."""

    run: RunConfig
    restart: Restart = Restart()
    log: LogOptions = LogOptions()
    on_end: list[str] = []  # run once the container has ended for good (`run -d --rm`: pyc rm)
