"""What `pyc.Engine` returns besides containers and images: typed records the CLI formats and
API users read (mypy checks this module with disallow_any_explicit, as records.py)."""

from pyc.record import Record


class LogRecord(Record):
    """One record of a container's log: when, which stream, the bytes it wrote (with their
    newline when one followed)."""

    time: str
    stream: str  # stdout or stderr
    data: bytes


class Stats(Record):
    """What a running container uses now (its cgroup's counters)."""

    id: str
    name: str
    cpu_usage_ns: int
    memory_usage: int
    memory_limit: int | None  # None: no limit
    pids: int
    pids_limit: int | None
    io_read_bytes: int
    io_write_bytes: int


class HistoryEntry(Record):
    """A step of an image's history, newest first: the layer it made (`size`, None when it
    made none) and the image id on the top one."""

    id: str | None = None
    created: str | None = None
    created_by: str = ""
    size: int | None = None
    comment: str = ""
    empty_layer: bool = False


class ImageUsage(Record):
    """An image's disk use: its layers (`size`), those another image has too (`shared`), and
    how many containers use it."""

    id: str
    refs: list[str]
    created: str | None
    size: int
    shared: int
    containers: int


class ContainerUsage(Record):
    """A container's disk use: its writable layer."""

    id: str
    name: str
    image: str
    command: list[str]
    created: str
    status: str
    size: int


class VolumeUsage(Record):
    """A volume's disk use: the files in its directory (0 for a tmpfs or a bind of a host
    directory), and how many containers use it."""

    name: str
    size: int
    links: int


class DiskUsage(Record):
    """`pyc system df`: images (each layer blob counted once in `images_size`), containers,
    volumes, and what interrupted commands left in the store's tmp/ (freed by `pyc image prune`)."""

    images: list[ImageUsage]
    images_size: int
    images_reclaimable: int  # what only images no container uses hold
    containers: list[ContainerUsage]
    leftovers: int
    volumes: list[VolumeUsage] = []
    build_cache: int = 0  # build cache entries (pyc builder prune drops them)
    build_cache_size: int = 0  # the layers they alone keep


class PullResult(Record):
    """`pyc pull`: the name the image is stored under (fully qualified), its ID, the digest the
    registry knows it by (the index's, for an image picked from an index), and what was
    fetched (nothing but a manifest request when it was up to date)."""

    name: str
    image_id: str
    digest: str
    downloaded: bool
    layers: int  # layers downloaded
    bytes: int  # their compressed size


class PushResult(Record):
    """`pyc push`: where the image went, the digest of the manifest the registry has, the
    layers uploaded and those it had or mounted."""

    name: str
    digest: str
    layers_sent: int
    layers_skipped: int
    bytes: int  # the compressed size of the layers sent


class BundleLayerContent(Record):
    """A layer of an image in a delta bundle: its tar's size, and the bytes the bundle spends on
    it (None: not carried, the old image has it)."""

    diff_id: str
    size: int
    carried: int | None


class BundleImageContent(Record):
    """An image a delta bundle rebuilds."""

    names: list[str]
    id: str
    manifest_digest: str
    layers: list[BundleLayerContent]


class BundleContent(Record):
    """What a delta bundle holds: the images it rebuilds, the old images it needs (as they were
    named when it was made, with their IDs), its size (None while it is written) and digest."""

    digest: str
    size: int | None
    images: list[BundleImageContent]
    requires: list[str]
    required_layers: list[str]


class Event(Record):
    """One event of the journal (pyc/events.py), docker's message: what it happened to (`type`:
    container, image, ...; the actor's `id` and `attributes`), what happened (`action`), when
    (`time_nano`, ns since the epoch)."""

    type: str
    action: str
    id: str
    attributes: dict[str, str] = {}
    scope: str = "local"
    time_nano: int = 0


class Top(Record):
    """`pyc top`: the container's processes as `ps` shows them (docker's Titles, Processes)."""

    titles: list[str]
    processes: list[list[str]]


class PruneReport(Record):
    """What one pruner removed: docker's section (`title`, e.g. Deleted Containers), its lines,
    and the bytes reclaimed, counted as `pyc system df` counts them."""

    title: str
    deleted: list[str] = []
    reclaimed: int = 0


class SystemPrune(Record):
    """`pyc system prune`: each pruner's report, in order, and their total."""

    reports: list[PruneReport]
    reclaimed: int


class Feature(Record):
    """A kernel feature a container engine may use: whether this kernel has it, whether pyc
    uses it, and a word on how."""

    name: str
    kernel: bool
    used: bool
    note: str = ""


class SystemInfo(Record):
    """`pyc info`: the store, the cgroups, the kernel's features, what is there, the host."""

    containers: int
    containers_running: int
    containers_paused: int
    containers_stopped: int
    images: int
    version: str
    root: str  # $PYC_ROOT
    backing_filesystem: str
    store_placement: bool  # containers/ and tmp/ have ext4's T flag (pyc/store/placement.py)
    overlay_mount: str  # fsconfig (lowerdir+, Linux 6.8) or mount(2)
    cgroup_root: str
    cgroup_version: int
    features: list[Feature]
    security_options: list[str]
    kernel_version: str
    operating_system: str
    architecture: str
    cpus: int
    memory: int
    name: str
    warnings: list[str] = []


class Component(Record):
    """A part of pyc and its version (docker's version Components)."""

    name: str
    version: str
    details: dict[str, str] = {}


class Version(Record):
    """`pyc version`: the client (this Python package) and the engine's parts. There is no API
    yet, so no API version."""

    version: str
    python_version: str
    os: str
    arch: str
    kernel_version: str
    components: list[Component]
