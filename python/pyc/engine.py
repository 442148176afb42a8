"""The engine: what the CLI does, as a Python API. The CLI is a thin client of this module.

    import pyc
    e = pyc.Engine()
    r = e.run("busybox", pyc.RunOptions(["echo", "hi"], remove=True))
    assert r.status == 0 and r.stdout == b"hi\\n"
"""

from __future__ import annotations

import os

import pyc_core
from pyc.containers import DEFAULT_CGROUP_ROOT, Container, ContainerStore
from pyc.errors import CommandFailed, Conflict, ImageNotFound, InvalidArgument, Kind, NotRunning, PycError, VolumeNotFound, convert, from_system
from pyc.paths import Paths
from pyc.programs import program
from pyc.records import CgroupPlace, ContainerConfig, DeviceMapping, EventActor, ExecConfig, HostConfig, MonitorConfig, Overlay, RunConfig, SeccompConfig, Ulimit
from pyc.runtime.process_limits import ULIMIT_NAMES
from pyc.runtime.spec import RunOptions, build
from pyc.store import atomic
from pyc.store.images import Image, ImageStore
from pyc.store.layers import lower_dirs

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator
    from typing import Any

    from pyc.build.builder import BuildOptions
    from pyc.network.attach import Attachment
    from pyc.network.store import NetworkStore
    from pyc.records import Endpoint, NetworkRecord, VolumeRecord
    from pyc.registry.options import PullOptions, PushOptions, RegistryOptions
    from pyc.results import BundleContent, DiskUsage, Event, HistoryEntry, LogRecord, PruneReport, PullResult, PushResult, Stats, SystemInfo, SystemPrune, Top
    from pyc.runtime.exec import ExecOptions
    from pyc.volumes import MountPlan, VolumeStore

BUILTIN_IMAGES = ("busybox", "debian")
RUN_CONFIG = "run.msgpack"


class RunResult:
    """How a container ended. `stdout` / `stderr` are bytes when they were captured."""

    __slots__ = ("container_id", "status", "signal", "stdout", "stderr", "oom_killed")

    def __init__(self, container_id: str, status: int, signal: int | None, stdout: bytes | None, stderr: bytes | None, oom_killed: bool = False) -> None:
        self.container_id = container_id
        self.status = status
        self.signal = signal
        self.stdout = stdout
        self.stderr = stderr
        self.oom_killed = oom_killed

    def __repr__(self) -> str:
        return f"RunResult(container_id={self.container_id[:12]!r}, status={self.status})"


def _signed(limit: int) -> int:
    """docker's -1 for an unlimited rlimit."""
    return -1 if limit == 2**64 - 1 else limit


def device_mapping(value: str) -> DeviceMapping:
    """docker's inspect form of a --device value (checked by runtime/devices.py)."""
    parts = value.split(":")
    perms = parts.pop() if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm") else "rwm"
    return DeviceMapping(path_on_host=parts[0], path_in_container=parts[1] if len(parts) > 1 else parts[0], cgroup_permissions=perms)


def seccomp_config(opts: RunOptions, cache: str) -> SeccompConfig | None:
    """The container's seccomp profile (None: none at all); compiled filters cached in `cache`."""
    profile = opts.security().seccomp
    if opts.privileged or profile == "unconfined":
        return None
    return SeccompConfig(profile=profile, cache=cache)


def run_config(c: Container, spec: dict[str, Any], lowers: list[str], opts: RunOptions, pyc_init: str | None, seccomp: SeccompConfig | None, journal: str | None = None) -> RunConfig:
    """What pyc_core.run (or the container's pyc-monitor) starts the container from; `pyc_init`
    the program of --init; `journal` the events journal its start, oom and die go to."""
    from pyc.events import container_attributes, volume_actors

    rootfs = Overlay(lower=lowers, upper=c.path("upper"), work=c.path("work"), volatile=opts.remove, dev=opts.privileged)
    events = EventActor(journal=journal, id=c.id, attributes=container_attributes(c), volumes=volume_actors(c)) if journal else None
    return RunConfig(spec=spec, rootfs=rootfs, cgroup=CgroupPlace(root=c.cgroup_root, path=c.cgroup), init=opts.init, pyc_init=pyc_init, events=events, seccomp=seccomp)


def run_config_of(c: Container) -> RunConfig | None:
    """The run config a container was started (or is to start) from: a foreground run's
    run.msgpack, or a detached one's monitor config; None when it has neither."""
    try:
        with open(c.path(RUN_CONFIG), "rb") as f:
            return RunConfig.from_dict(pyc_core.unpackb(f.read()))
    except FileNotFoundError:
        pass
    try:
        with open(c.path("monitor.msgpack"), "rb") as f:
            return MonitorConfig.from_dict(pyc_core.unpackb(f.read())).run
    except FileNotFoundError:
        return None


def _may_hold(lowers: list[str], path: str) -> bool:
    """Whether the image may have something at `path`: a layer has its first component. Only
    a quick way out (no mount) for the usual volume at a path the image lacks; the copy-up
    itself looks through the image as the container sees it."""
    first = path.strip("/").split("/", 1)[0]
    return any(os.path.lexists(os.path.join(layer, first)) for layer in lowers)


def exec_config(c: Container, process: dict[str, Any], opts: ExecOptions, pyc_init: str, seccomp: SeccompConfig | None) -> ExecConfig:
    """What pyc_core.exec_in starts a process in the running container `c` from, through the
    program `pyc_init`, under the container's `seccomp` profile."""
    return ExecConfig(process=process, cgroup=CgroupPlace(root=c.cgroup_root, path=c.cgroup), detach=opts.detach, pyc_init=pyc_init, seccomp=seccomp)


@convert  # every public method raises PycErrors only: pyc_core's and OSErrors are converted
class Engine:
    def __init__(self, root: str | None = None) -> None:
        self.paths = Paths(root)
        self.images = ImageStore(self.paths)
        self.containers = ContainerStore(self.paths)
        self._volume_store: VolumeStore | None = None

    @property
    def _volumes(self) -> VolumeStore:
        if self._volume_store is None:
            from pyc.volumes import VolumeStore

            self._volume_store = VolumeStore(self.paths, lambda: self.containers.db, self.containers.foreground, self.containers.journal)
        return self._volume_store

    _network_store: NetworkStore | None = None

    @property
    def _networks(self) -> NetworkStore:
        if self._network_store is None:
            from pyc.network.store import NetworkStore

            self._network_store = NetworkStore(self.containers)
        return self._network_store

    # -- images ---------------------------------------------------------------------------

    def image(self, ref: str) -> Image:
        return self.images.lookup(ref)

    def list_images(self, filters: list[str] | None = None) -> list[Image]:
        """Every image, or those that pass docker's `images --filter`s (dangling=, reference=,
        before=, since=, label=; under reference= each image with its matching names only)."""
        from pyc.store import cache

        images = cache.all_images(self.images)
        if not filters:
            return images
        from pyc.store import image_filter

        return image_filter.apply(self.images, images, image_filter.parse(filters))

    def image_for_run(self, ref: str, pull: str = "missing", platform: str | None = None, progress: bool = False) -> Image:
        """The image to run: the store's (a missing built-in, busybox or debian, is made here),
        else pulled as `pull` says (docker's --pull: missing, always, never); `progress`: its
        bars on a terminal."""
        if pull not in ("missing", "always", "never"):
            raise InvalidArgument(f"invalid --pull {pull!r}: missing, always or never")
        if pull != "always" or ref.removesuffix(":latest") in BUILTIN_IMAGES:
            try:
                return self.images.lookup(ref)
            except ImageNotFound:
                name = ref.removesuffix(":latest")
                if name in BUILTIN_IMAGES:
                    return self.bootstrap(name)
                if pull == "never":
                    raise ImageNotFound(f"no such image: {ref} (--pull never)") from None
        from pyc.registry.pull import for_run
        from pyc.registry.session import Options

        return for_run(self.images, ref, pull, platform, Options(), progress)

    def pull(self, ref: str, options: PullOptions | None = None) -> PullResult:
        """Pull `ref` (`[registry/]repo[:tag|@digest]`; a short name through registries.conf's
        aliases and search registries) into the store; only what it lacks travels."""
        from pyc.registry.options import PullOptions
        from pyc.registry.pull import check_pullable, pull

        o = options or PullOptions()
        check_pullable(ref)
        return pull(self.images, ref, o.session(), o.platform)

    def push(self, ref: str, dest: str | None = None, options: PushOptions | None = None) -> PushResult:
        """Push the image `ref` to `dest` (default: its own name, which must then name a
        registry); only the blobs the registry lacks are sent."""
        from pyc.registry.options import PushOptions
        from pyc.registry.push import push

        o = options or PushOptions()
        return push(self.images, ref, dest, o.session(), o.compression_format, o.compression_level)

    def login(self, registry: str, username: str, password: str, options: RegistryOptions | None = None) -> str:
        """Check the credentials against `registry` and keep them in the auth file podman,
        skopeo and docker read; the file's path."""
        from pyc.registry.login import login
        from pyc.registry.options import RegistryOptions

        return login(registry, username, password, (options or RegistryOptions()).session())

    def logout(self, registry: str | None, options: RegistryOptions | None = None) -> list[str]:
        """Forget the credentials for `registry` (None: for every registry); those forgotten."""
        from pyc.registry.login import logout
        from pyc.registry.options import RegistryOptions

        return logout(registry, (options or RegistryOptions()).session())

    def bootstrap(self, name: str, **kwargs: Any) -> Image:
        from pyc.bootstrap import bootstrap

        img = bootstrap(self.images, name, **kwargs)
        self._image_event(img, "import")
        return img

    def import_image(self, source: str | int, ref: str | None, changes: dict[str, Any] | None = None) -> Image:
        from pyc.store.importer import default_config, import_rootfs

        config = default_config()
        if changes:
            config["config"].update(changes)
        img = import_rootfs(self.images, source, ref, config)
        self._image_event(img, "import")
        return img

    def _image_event(self, img: Image, action: str, name: str | None = None) -> None:
        self.images.journal.log("image", action, img.id, {"name": name or (img.refs[0] if img.refs else img.id)})

    def save(self, refs: list[str], out: str | int, format: str = "docker-archive") -> None:
        """Write images to `out` (a path, or an fd for a tar stream): docker-archive, oci-archive or oci-dir."""
        from pyc.store.save import save

        save(self.images, refs, out, format)
        self.images.journal.log_all([("image", "save", self.images.lookup(ref).id, {"name": ref}) for ref in refs])

    def save_delta(self, refs: list[str], olds: list[str], out: str | int) -> BundleContent:
        """Write a delta bundle (a path, or an fd to stream it to) that rebuilds the images `refs`
        on a machine that has the images `olds`, carrying only what changed."""
        from pyc.store.bundle import create

        return create(self.images, refs, olds, out)

    def inspect_bundle(self, source: str | int) -> BundleContent:
        """What a delta bundle rebuilds, needs and carries, its digest checked."""
        from pyc.store.bundle import inspect

        return inspect(source)

    def load(self, source: str | int) -> list[str]:
        """Load the images of a docker-archive, oci-archive (either maybe gzip/zstd) or oci-dir, or
        apply a delta bundle;
        returns the names loaded (the image ID of one without a name)."""
        from pyc.store.load import load

        names = load(self.images, source)
        self.images.journal.log_all([("image", "load", self.images.lookup(name).id, {"name": name}) for name in names])
        return names

    def tag(self, src: str, dst: str) -> None:
        self.images.tag(src, dst)

    def remove_image(self, ref: str, force: bool = False) -> list[str]:
        from pyc.store.gc import collect

        in_use = {c.record.image_id for c in self.containers.all()}
        lines = self.images.untag_or_remove(ref, in_use, force)
        collect(self.images, self._container_layers())
        return lines

    def prune_images(self, all: bool = False) -> tuple[list[str], int]:
        """Remove dangling images (all=True: every image no container uses); returns docker's
        lines and the bytes reclaimed, counted as `system df` counts them."""
        from pyc.store.prune import prune

        in_use = {c.record.image_id for c in self.containers.all()}
        lines, reclaimed = prune(self.images, in_use, self._container_layers(), all)
        self.images.journal.log("image", "prune", "", {"reclaimed": str(reclaimed)})
        return lines, reclaimed

    def _container_layers(self) -> set[str]:
        return {layer for c in self.containers.all() for layer in c.record.layers}

    # -- containers -----------------------------------------------------------------------

    def _prepare(self, image: str | Image, opts: RunOptions) -> tuple[Container, dict[str, str], RunConfig, MountPlan | None]:
        """The container in memory, its /etc files, its run config and its mounts (None: it
        has none, and the run path imports nothing of volumes): everything checked, nothing
        written yet, so a bad flag leaves no container. `image`: a name, or an Image in no
        index (a build step's)."""
        if os.geteuid() != 0:
            raise PycError("pyc run needs root: namespaces, mounts and cgroups (rootless containers are not supported yet)", Kind.SYSTEM)
        asked = bool(opts.volumes or opts.mounts or opts.tmpfs or opts.volumes_from)
        if asked:
            from pyc.runtime.mounts import parse_all, parse_volumes_from

            requests = parse_all(opts.volumes, opts.mounts, opts.tmpfs)
            volumes_from = [(self.containers.get(ref).record, mode) for ref, mode in map(parse_volumes_from, opts.volumes_from)]
        img = image if isinstance(image, Image) else self.image_for_run(image, opts.pull, opts.platform, opts.progress)
        image = image if isinstance(image, str) else img.id
        lowers = lower_dirs(self.images, img)
        mounts = None
        if asked or img.run_config.get("Volumes"):
            from pyc.volumes import plan

            mounts = plan(self._volumes, requests if asked else [], volumes_from if asked else [], sorted(img.run_config.get("Volumes") or {}))
        points = mounts.points if mounts else []
        # Where the cgroup goes: for tests, a parent of their own and the host's cgroup2 mount
        # of a hybrid host (PYC_CGROUP_ROOT=/sys/fs/cgroup/unified) to run on v2.
        host_config = HostConfig(
            auto_remove=opts.remove,
            init=opts.init,
            readonly_rootfs=opts.read_only,
            binds=list(opts.volumes),
            tmpfs=list(opts.tmpfs),
            mounts=list(opts.mounts),
            volumes_from=list(opts.volumes_from),
            cgroup_parent=os.environ.get("PYC_CGROUP_PARENT") or "pyc",
            cap_add=list(opts.cap_add),
            cap_drop=list(opts.cap_drop),
            privileged=opts.privileged,
            security_opt=list(opts.security_opts),
            devices=[device_mapping(d) for d in opts.devices],
            device_cgroup_rules=list(opts.device_cgroup_rules),
            oom_score_adj=opts.oom_score_adj or 0,
            group_add=list(opts.group_add),
        )
        host_config = self._network_config(opts, host_config)
        c = self.containers.new(opts.name, image, img.id, img.chain_ids, host_config, os.environ.get("PYC_CGROUP_ROOT") or DEFAULT_CGROUP_ROOT)
        c.record.mounts = points
        mode = host_config.network_mode
        if mode == "host" and not opts.hostname:
            hostname = os.uname().nodename
        else:
            hostname = opts.hostname or c.id[:12]
        etc = self._etc_files(host_config, hostname, opts.domainname or "")
        spec = build(img.run_config, opts, self.paths.rootfs, {n: c.path(n) for n in etc}, lowers, hostname, points)
        if mode == "host":
            spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"]
        c.record.host_config = host_config.with_limits(spec["linux"]["resources"]).replace(
            ulimits=[Ulimit(name=ULIMIT_NAMES[r["type"]], soft=_signed(r["soft"]), hard=_signed(r["hard"])) for r in spec["process"].get("rlimits", [])],
            sysctls=dict(spec["linux"].get("sysctl", {})),
        )
        process = spec["process"]
        stop_signal = str(img.run_config.get("StopSignal") or "")
        exposed = sorted(img.run_config.get("ExposedPorts") or {})
        c.record.config = ContainerConfig(
            cmd=process["args"],
            env=process["env"],
            working_dir=process["cwd"],
            hostname=hostname,
            stop_signal=stop_signal,
            tty=opts.tty,
            domainname=opts.domainname or "",
            exposed_ports=exposed,
            user=opts.user or str(img.run_config.get("User") or ""),
        )
        seccomp = seccomp_config(opts, self.paths.seccomp)
        if seccomp is not None and seccomp.profile is not None:
            # A profile of the user's: compiled (and cached) now, so a bad one is one line.
            try:
                pyc_core.seccomp_filter(seccomp.profile, process["capabilities"]["bounding"], seccomp.cache)
            except pyc_core.PycCoreError as e:
                raise InvalidArgument(f"invalid --security-opt seccomp={opts.security().seccomp_file}: {e}") from None
        return c, etc, run_config(c, spec, lowers, opts, program("pyc-init") if opts.init else None, seccomp, self.containers.journal.path), mounts

    def _write(self, c: Container, files: dict[str, str | bytes], mounts: MountPlan | None, lowers: list[str], running: bool = False, foreground: bool = False) -> None:
        """Write a prepared container: the bind sources -v makes; its new and empty volumes
        filled from the image (copy-up, crash-safe: pyc/volumes.py), before the container
        exists, so a crash meanwhile leaves no container whose volume missed its copy-up; then
        its row with its volumes' rows, and its files. A `foreground` record claims its
        volumes (pyc/volumes.py); if one went meanwhile, the container goes to pyc.db, which
        makes the volume again."""
        if mounts is None:
            self.containers.create(c, files, running, foreground)
            return
        from pyc.volumes import is_empty, make_dirs

        for d in mounts.bind_dirs:
            os.makedirs(d, mode=0o755, exist_ok=True)
        while True:
            for name in mounts.volumes:
                self._volumes.settle(name)  # what a crash in another copy-up left, finished
            for name, path in mounts.copyups:
                if not _may_hold(lowers, path):
                    continue  # nothing to copy: a new volume's directories come with its row
                make_dirs(self.paths, name)
                if is_empty(self._volumes.data(name)):
                    self._volumes.fill(name, lowers, path)
            if not (foreground and mounts.volumes):
                break
            if self._volumes.claim(mounts.volumes, lambda: self.containers.create(c, files, running, True)):
                return
            foreground = False  # a volume was removed meanwhile: its copy-up again, then pyc.db
        self.containers.create(c, files, running, foreground, list(mounts.volumes.values()), list(mounts.volumes))

    def _network_config(self, opts: RunOptions, hc: HostConfig) -> HostConfig:
        """The network part of the HostConfig; `--network none` without network flags (the
        tests' default) takes no more than this test."""
        from pyc.network import default_network

        none = (opts.network or default_network()) == "none"
        if none and not (opts.publish or opts.publish_all or opts.ip or opts.network_aliases or opts.dns or opts.add_hosts or opts.dns_search or opts.dns_options):
            return hc.replace(network_mode="none")
        from pyc.network.attach import resolve

        return resolve(self._networks, self.containers, opts, hc)

    def _etc_files(self, hc: HostConfig, hostname: str, domainname: str, ip: str | None = None, resolver: str | None = None) -> dict[str, str]:
        """/etc/hostname, hosts and resolv.conf of a container; on another container's network,
        that container's."""
        if hc.network_mode.startswith("container:"):
            other = self.containers.get(hc.network_mode.partition(":")[2])
            files = {}
            for name in ("hostname", "hosts", "resolv.conf"):
                with open(other.path(name)) as f:
                    files[name] = f.read()
            return files
        from pyc.network.etc import files as etc_files

        return etc_files(hc, hostname, domainname, ip, resolver)

    def _join_network(self, c: Container, spec: dict[str, Any]) -> None:
        """`--network container:NAME`: the spec joins that container's network namespace, as it
        is now (it must run)."""
        mode = c.record.host_config.network_mode
        if not mode.startswith("container:"):
            return
        from pyc.network.attach import joined_pid

        pid = joined_pid(self.containers, mode)
        spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"] if ns["type"] != "network"] + [{"type": "network", "path": f"/proc/{pid}/ns/net"}]

    def _attach_network(self, c: Container, run: RunConfig) -> Attachment | None:
        """Before a start: the container's bridge networks set up, its /etc files written with its
        address, `run`'s network plan filled in (None: no bridge network)."""
        self._join_network(c, run.spec)
        if not c.record.host_config.endpoints:
            return None
        from pyc.network.attach import attach

        att = attach(self._networks, c, c.record.config.exposed_ports)
        try:
            net, first = att.endpoints[0]
            etc = self._etc_files(c.record.host_config, c.record.config.hostname, c.record.config.domainname, first.ip, net.gateway if net.dns else None)
            for name, content in etc.items():
                # Before the container starts, so no reader sees half of one: written in place.
                with open(c.path(name), "w") as f:
                    f.write(content)
            run.network = att.plan()
        except BaseException:
            att.release()
            raise
        return att

    def run(
        self, image: str | Image, opts: RunOptions, stdin: int | None = None, stdout: int | None = None, stderr: int | None = None, keep_upper: Callable[[str], None] | None = None
    ) -> RunResult:
        """Run a container to its end. fds for stdin/stdout/stderr; None for stdin is
        /dev/null (docker without -i), None for stdout/stderr captures them. `keep_upper`
        is given the container's upper dir once it ended, before an --rm removes the rest
        (a build step's layer is made of it)."""
        c, etc, run_config, mounts = self._prepare(image, opts)
        hc = c.record.host_config
        # On a bridge network its /etc files are written once its address is known, and its run
        # config once it holds the network's plan (or, for container:NAME, that one's namespace).
        late = bool(hc.endpoints) or hc.network_mode.startswith("container:")
        files: dict[str, str | bytes] = {} if hc.endpoints else {**etc}
        config = b""
        if not late:
            config = files[RUN_CONFIG] = pyc_core.packb(run_config.to_dict())  # what exec reads the container's process and cgroup from
        # An unnamed --rm container's record is a file while it runs, not a row in pyc.db.
        self._write(c, files, mounts, run_config.rootfs.lower, running=True, foreground=opts.remove and opts.name is None)
        code = 125
        ended = False  # pyc_core.run returned: the container's cgroup is gone already
        oom = False
        net: Attachment | None = None
        try:
            if late:
                net = self._attach_network(c, run_config)
                config = pyc_core.packb(run_config.to_dict())
                with open(c.path(RUN_CONFIG), "wb") as f:
                    f.write(config)
            r = pyc_core.run(config, stdin, stdout, stderr)
            code, ended, oom = r.status, True, r.oom_killed
            if keep_upper is not None:
                keep_upper(c.path("upper"))
            return RunResult(c.id, r.status, r.signal, r.stdout, r.stderr, r.oom_killed)
        except pyc_core.PycCoreError as e:
            code = pyc_core.ERROR_KINDS.get(e.kind, 125)  # what docker records: 127, 126, 125
            # pyc_core.run removed the cgroup it made (its failed removal is this error): a
            # second try could only fail the same way, and keep an --rm container's record.
            ended = True
            raise from_system(e) from None
        finally:
            if net is not None:
                net.release()
            if opts.remove:
                self.containers.remove(c, force=True, cgroup=not ended)
                if mounts is not None and any(v.anonymous for v in mounts.volumes.values()):
                    self._remove_anonymous(c)
            else:
                self.containers.mark_exited(c, code, oom)

    def exec(self, ref: str, opts: ExecOptions, stdin: int | None = None, stdout: int | None = None, stderr: int | None = None) -> RunResult:
        """Run a command in a running container; with `opts.detach`, return once it started
        (status 0). stdio as for run."""
        from pyc.runtime.exec import exec_process

        c = self._running(ref)
        run = run_config_of(c)
        if run is None:
            raise NotRunning(f"container {c.name} is not running")
        passwd_dirs = [c.path("upper")] + [self.paths.layer(chain) for chain in reversed(c.record.layers)]
        container_process = run.spec.get("process")
        if not isinstance(container_process, dict):
            raise PycError(f"container {c.name}: its run config has no process", Kind.BAD_INPUT)
        process = exec_process(container_process, opts, passwd_dirs, c.record.config.user, c.record.host_config.group_add)
        config = pyc_core.packb(exec_config(c, process, opts, program("pyc-init"), run.seccomp).to_dict())
        if c.current_state().is_paused:
            raise Conflict(f"container {c.name} is paused, unpause the container before exec")
        from pyc.events import container_attributes

        # docker's exec events: the action names the command; execID tells execs apart.
        attributes = container_attributes(c) | {"execID": os.urandom(32).hex()}
        command = " ".join(opts.command)
        self.containers.journal.log_all([("container", f"exec_create: {command}", c.id, attributes), ("container", f"exec_start: {command}", c.id, attributes)])
        try:
            r = pyc_core.exec_in(config, stdin, stdout, stderr)
        except pyc_core.PycCoreError as e:
            if c.status != "running":  # it ended meanwhile
                raise NotRunning(f"container {c.name} is not running") from None
            error = from_system(e)
            # Whatever failed before the command started is docker's 126 for exec.
            kind = error.kind if error.kind in (Kind.COMMAND_NOT_FOUND, Kind.COMMAND_NOT_EXECUTABLE) else Kind.START_FAILED
            raise CommandFailed(str(e), kind, error.errno) from None
        if not opts.detach:
            self.containers.journal.log("container", "exec_die", c.id, attributes | {"exitCode": str(r.status)})
        return RunResult(c.id, r.status, r.signal, r.stdout, r.stderr)

    def create(self, image: str, opts: RunOptions) -> Container:
        """A container ready to start (detached, held by pyc-monitor): `pyc create`."""
        from pyc.lifecycle import monitor_config

        c, etc, run, mounts = self._prepare(image, opts)
        monitor = monitor_config(c, opts, run)  # checks --restart and --log-opt
        c.record.host_config = c.record.host_config.replace(restart=monitor.restart, log=monitor.log)
        self._write(c, dict(etc), mounts, run.rootfs.lower)
        atomic.write_file(c.path("monitor.msgpack"), pyc_core.packb(monitor.to_dict()), durable=False)
        return c

    def run_detached(self, image: str, opts: RunOptions) -> Container:
        """`pyc run -d`: the container started and held by its own pyc-monitor; returns once its
        command runs (or with docker's 125/126/127 error when it cannot)."""
        c = self.create(image, opts)
        try:
            self.start(c.id)
        except PycError:
            if opts.remove:
                # docker removes an --rm container whose start failed, anonymous volumes too.
                self.remove_container(c.id, force=True, volumes=True)
            raise
        return c

    def start(self, ref: str) -> Container:
        from pyc.lifecycle import start

        c = self.containers.get(ref)
        for m in c.record.mounts:
            if m.type == "volume":
                self._volumes.settle(m.name)  # a copy-up a crash interrupted is finished first
        return start(self.containers, c, self._attach_network)

    def stop(self, ref: str, timeout: float | None = None) -> Container:
        from pyc.lifecycle import stop

        return stop(self.containers, self.containers.get(ref), timeout)

    def kill(self, ref: str, sig: str = "KILL") -> Container:
        from pyc.lifecycle import kill

        return kill(self.containers, self.containers.get(ref), sig)

    def restart(self, ref: str, timeout: float | None = None) -> Container:
        """Stop it (if it runs), then start it again."""
        from pyc.lifecycle import start, stop

        c = self.containers.get(ref)
        try:
            stop(self.containers, c, timeout)
        except NotRunning:
            pass
        start(self.containers, c)
        self.containers.journal.container(c, "restart")
        return c

    def pause(self, ref: str) -> Container:
        """Freeze every process of a running container (the cgroup freezer: v1's freezer
        hierarchy, v2's cgroup.freeze) until `unpause`."""
        from pyc.lifecycle import pause

        return pause(self.containers, self.containers.get(ref))

    def unpause(self, ref: str) -> Container:
        from pyc.lifecycle import unpause

        return unpause(self.containers, self.containers.get(ref))

    def top(self, ref: str, ps_args: list[str] | None = None) -> Top:
        """The container's processes as the host's `ps` shows them (`ps_args`, docker's
        default `-ef`), the rows of those in its cgroup."""
        from pyc.top import top

        c = self._running(ref)
        try:
            pids = pyc_core.cgroup_pids(c.cgroup, c.cgroup_root)
        except pyc_core.PycCoreError as e:
            raise from_system(e, f"top {c.name}") from None
        result = top(pids, ps_args or ["-ef"])
        self.containers.journal.container(c, "top")
        return result

    def _running(self, ref: str) -> Container:
        """The container `ref`, which must be running (exec, top, stats)."""
        c = self.containers.get(ref)
        if c.status != "running":
            raise NotRunning(f"container {c.name} is not running")
        return c

    def wait(self, ref: str) -> int:
        from pyc.lifecycle import wait

        return wait(self.containers.get(ref))

    def stats(self, ref: str) -> Stats:
        """What a running container uses now: cpu time, memory, pids, block I/O."""
        c = self._running(ref)
        from pyc.results import Stats

        try:
            s = pyc_core.cgroup_stats(c.cgroup, c.cgroup_root)
        except pyc_core.PycCoreError as e:
            raise from_system(e, f"stats of {c.name}") from None
        return Stats(
            id=c.id,
            name=c.name,
            cpu_usage_ns=s.cpu_usage_ns,
            memory_usage=s.memory_usage,
            memory_limit=s.memory_limit,
            pids=s.pids,
            pids_limit=s.pids_limit,
            io_read_bytes=s.io_read_bytes,
            io_write_bytes=s.io_write_bytes,
        )

    def update(self, ref: str, opts: RunOptions) -> None:
        """Change the limits of a running container (the limit fields of `opts`)."""
        c = self.containers.get(ref)
        resources = opts.resources()
        if not resources:
            raise InvalidArgument("nothing to update: give at least one limit (--memory, --cpus, ...)")
        if c.status != "running":
            raise NotRunning(f"container {c.name} is not running")
        try:
            pyc_core.update_cgroup(c.cgroup, pyc_core.packb(resources), c.cgroup_root)
        except pyc_core.PycCoreError as e:
            raise from_system(e, f"update {c.name}") from None
        c.record.host_config = c.record.host_config.with_limits(resources)
        self.containers.save(c)
        self.containers.journal.container(c, "update")

    def container(self, ref: str) -> Container:
        return self.containers.get(ref)

    def list_containers(self, all: bool = False) -> list[Container]:
        return [c for c in self.containers.all() if all or c.status == "running"]

    def rename(self, ref: str, new_name: str) -> None:
        from pyc.lifecycle import rename

        rename(self.containers, self.containers.get(ref), new_name)

    def prune_containers(self) -> PruneReport:
        """Remove every container that is not running: their ids, and the bytes of their
        writable layers (as `system df` counts them). One that cannot be removed (it started
        meanwhile) is left."""
        from pyc.prune import prune_containers

        return prune_containers(self)

    def system_prune(self, all: bool = False, volumes: bool = False) -> SystemPrune:
        """Each pruner of pyc.prune.PRUNERS in turn (stopped containers, then unused images:
        dangling ones, or with `all` every one no container uses; volumes with `volumes`)."""
        from pyc.prune import system_prune

        return system_prune(self, all, volumes)

    def logs(self, ref: str, tail: int | None = None, since: str | None = None) -> tuple[list[LogRecord], int]:
        """The container's log records, oldest first (the last `tail`, those `since` a time:
        RFC 3339, a Unix time or a duration like 10m), and where to `follow_logs` from."""
        from pyc import logs

        c = self.containers.get(ref)
        after = logs.parse_since(since) if since else None
        records, offset = logs.records(c)
        if after is not None:
            records = [r for r in records if r.time.rstrip("Z") >= after]
        if tail is not None:
            records = records[len(records) - tail :] if tail > 0 else []
        return records, offset

    def follow_logs(self, ref: str, offset: int | None = None) -> Iterator[LogRecord]:
        """Log records as the container writes them, from `offset` (None: from now on), until
        it ends."""
        from pyc import logs

        c = self.containers.get(ref)
        yield from logs.follow(c, logs.end(c) if offset is None else offset)

    def attach(self, ref: str) -> socket.socket:
        """A connection to the terminal of a running `-t` container, which its monitor serves
        (pyc.attach has the frames); NotRunning when it has none or does not run."""
        from pyc import attach

        return attach.connect(self.containers.get(ref))

    def events(self, since: str | None = None, until: str | None = None, filters: list[str] | None = None) -> Iterator[Event]:
        """The journal's events, as docker's `events` gives them: `since` and `until` are times
        (RFC 3339, Unix time, or a duration ago such as 10m); with neither, the events from now
        on, for ever; with `since` only, the kept ones from then and on for ever; with `until`,
        up to that time. `filters`: docker's key=value (container, image, event, type, label)."""
        from pyc import events
        from pyc.times import parse_time

        wanted = events.parse_filters(filters or [])
        start = parse_time(since, "--since") if since else None
        end = parse_time(until, "--until") if until else None
        yield from events.read(self.paths.root, start, end, wanted)

    def info(self) -> SystemInfo:
        """What `pyc info` says: the store, cgroups, the kernel's features, counts, the host."""
        from pyc.info import system_info

        return system_info(self)

    def disk_usage(self) -> DiskUsage:
        """What the store holds: images (shared layers once), containers' writable layers,
        volumes, the build cache, and what interrupted commands left in tmp/."""
        from pyc.results import VolumeUsage
        from pyc.store import buildcache, cache
        from pyc.store.usage import disk_usage

        images = cache.all_images(self.images)
        volumes = [VolumeUsage(name=v.name, size=self._volumes.size(v), links=len(users)) for v, users in self._volumes.all()]
        u = disk_usage(images, self.containers.all(), self.paths.tmp, volumes)
        u.build_cache, u.build_cache_size = buildcache.usage(self.images, {d for img in images for d in img.diff_ids})
        return u

    def remove_container(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        """`pyc rm [-f] [-v]`: `volumes` removes its anonymous volumes too (named ones stay)."""
        from pyc.lifecycle import remove

        c = self.containers.get(ref)
        remove(self.containers, c, force)
        if volumes:
            self._remove_anonymous(c)
        if c.record.host_config.endpoints:
            self._networks.collect(container=c.id)  # what its holder left, if it was killed
        return c.id

    def _remove_anonymous(self, c: Container) -> None:
        """The anonymous volumes of a removed container, but those another container uses
        (through --volumes-from)."""
        for m in c.record.mounts:
            if m.type != "volume":
                continue
            v = self._volumes.lookup(m.name)
            if v is not None and v.anonymous:
                try:
                    self._volumes.remove(m.name)
                except (Conflict, VolumeNotFound):
                    pass

    # -- volumes --------------------------------------------------------------------------

    def create_volume(self, name: str | None = None, labels: dict[str, str] | None = None, options: dict[str, str] | None = None) -> VolumeRecord:
        return self._volumes.create(name, labels or {}, options or {})

    def volume(self, name: str) -> VolumeRecord:
        return self._volumes.get(name)

    def list_volumes(self) -> list[tuple[VolumeRecord, list[str]]]:
        """Every volume, with the ids of the containers that use it."""
        return self._volumes.all()

    def remove_volume(self, name: str) -> None:
        self._volumes.remove(name)

    def prune_volumes(self, all: bool = False) -> tuple[list[str], int]:
        """Remove the volumes no container uses: anonymous ones (all=True: named ones too).
        Returns their names and the bytes freed."""
        removed, freed = [], 0
        for v, users in self._volumes.all():
            if users or not (all or v.anonymous):
                continue
            size = self._volumes.size(v)
            try:
                self._volumes.remove(v.name)
            except (Conflict, VolumeNotFound):
                continue  # taken by a container made meanwhile
            removed.append(v.name)
            freed += size
        self.containers.journal.log("volume", "prune", "", {"reclaimed": str(freed)})
        return removed, freed

    def export_volume(self, name: str, out_fd: int) -> None:
        """Write the volume's files (owners, modes, times, xattrs, hardlinks) as a tar to `out_fd`."""
        self._volumes.export(name, out_fd)

    def import_volume(self, name: str, source: str | int, force: bool = False) -> None:
        """Unpack a tar (plain, gzip, zstd; a path or fd) into a new or empty volume (`force`:
        into one with files, which the tar's replace)."""
        self._volumes.import_(name, source, force)

    def copy(self, source: str, dest: str, archive: bool = False, follow: bool = False, stdin: int = 0, stdout: int = 1) -> None:
        """`pyc cp`: `source` or `dest` is CONTAINER:PATH, the other a host path or `-` (a tar
        on `stdin` or to `stdout`). A running container is entered from the host side, through
        its root; a stopped one through a mount of its files (pyc/copy.py)."""
        from pyc.copy import copy

        copy(self, source, dest, archive, follow, stdin, stdout)

    def export(self, ref: str, out_fd: int) -> None:
        """Write the container's filesystem (image plus its changes) as a tar to `out_fd`."""
        c = self.containers.get(ref)
        self.containers.journal.container(c, "export")
        lowers = [c.path("upper")] + [self.paths.layer(chain) for chain in reversed(c.record.layers)]
        missing = [d for d in lowers if not os.path.isdir(d)]
        if missing:
            raise InvalidArgument(f"container {c.name}: its files are incomplete ({missing[0]} is missing)")
        mountpoint = os.path.join(self.paths.tmp, f"{os.getpid()}-export-{os.urandom(4).hex()}")
        os.makedirs(mountpoint)
        try:
            pyc_core.export_overlay(lowers, mountpoint, out_fd)
        except pyc_core.PycCoreError as e:
            raise from_system(e, f"export {c.name}") from None
        finally:
            os.rmdir(mountpoint)

    # -- networks -------------------------------------------------------------------------

    def create_network(self, name: str, subnet: str | None = None, gateway: str | None = None, internal: bool = False, labels: dict[str, str] | None = None) -> NetworkRecord:
        """A bridge network (`pyc network create`); its bridge is made with its first container."""
        return self._networks.create(name, subnet, gateway, internal, labels)

    def network(self, ref: str) -> NetworkRecord:
        return self._networks.get(ref)

    def list_networks(self) -> list[NetworkRecord]:
        """The bridge networks, the default `bridge` first."""
        return self._networks.all()

    def network_endpoints(self, ref: str) -> list[tuple[str, Endpoint]]:
        """The running containers on a network: (container name, endpoint)."""
        out = []
        for e in self._networks.endpoints(self._networks.get(ref)):
            out.append((self._networks.container_name(e.container), e))
        return out

    def container_endpoints(self, ref: str) -> list[tuple[str, Endpoint]]:
        """A running container's networks: (network name, endpoint), with its published ports."""
        c = self.containers.get(ref)
        if not c.record.host_config.endpoints:
            return []
        out = []
        for e in self._networks.of_container(c.id):
            net = self._networks.network_of(e)
            out.append((net.name if net else e.network, e))
        return out

    def remove_network(self, ref: str) -> str:
        """Remove a network and its bridge; refused while a container is on it. Its name."""
        net = self._networks.get(ref)
        self._networks.remove(net)
        return net.name

    def prune_networks(self) -> list[str]:
        """Remove every user-defined network no container is on; their names."""
        from pyc.network import PREDEFINED

        gone = []
        for net in self._networks.all():
            if net.name in PREDEFINED or self._networks.endpoints(net) or any(net.name in c.record.host_config.endpoints for c in self.containers.all()):
                continue
            self._networks.remove(net)
            gone.append(net.name)
        return gone

    def connect(self, network: str, container: str, ip: str | None = None, aliases: list[str] | None = None) -> None:
        """Put a container on a network: now if it runs (its next interface), and at its starts."""
        from pyc.network.attach import connect

        with self._container_lock(container) as c:
            connect(self._networks, self.containers, c, self._networks.get(network), ip or "", aliases or [])

    def disconnect(self, network: str, container: str) -> None:
        from pyc.network.attach import disconnect

        with self._container_lock(container) as c:
            disconnect(self._networks, self.containers, c, self._networks.get(network))

    def _container_lock(self, ref: str) -> Any:
        from pyc.lifecycle import locked_container

        return locked_container(self.containers, self.containers.get(ref))

    # -- changes: diff, commit, history ---------------------------------------------------

    def diff(self, ref: str) -> list[tuple[str, str]]:
        """The container's changes to its image: [(kind, path)], kind A(dded), C(hanged) or
        D(eleted), sorted by path. Read from its upper dir; the image's files are only stat'ed."""
        c = self.containers.get(ref)
        lowers = [self.paths.layer(chain) for chain in reversed(c.record.layers)]
        try:
            return pyc_core.diff_upper(c.path("upper"), lowers)
        except pyc_core.PycCoreError as e:
            raise from_system(e, f"diff {c.name}") from None

    def commit(self, ref: str, new_ref: str | None, changes: dict[str, Any] | None = None, message: str | None = None) -> Image:
        """A new image: the container's image plus its changes as one more layer."""
        from pyc.store.commit import commit_upper
        from pyc.store.refs import normalize

        if new_ref is not None:
            normalize(new_ref)  # a bad name fails before anything is read
        c = self.containers.get(ref)
        if c.status == "running":
            raise Conflict(f"container {c.name} is running: commit it once it has stopped")
        try:
            img = self.images.lookup(c.record.image_id)
        except ImageNotFound:
            raise ImageNotFound(f"the image of container {c.name} ({c.record.image}) was removed") from None
        created_by = " ".join(c.record.config.cmd)
        try:
            new = commit_upper(self.images, img, c.path("upper"), new_ref, changes or {}, created_by, message)
        except pyc_core.PycCoreError as e:
            raise from_system(e, f"commit {c.name}") from None
        named = normalize(new_ref) if new_ref else ""
        if named:
            self._image_event(new, "tag", named)
        self.containers.journal.container(c, "commit", comment=message or "", imageID=new.id, imageRef=named)
        return new

    def history(self, ref: str) -> list[HistoryEntry]:
        """The image's history, newest first: created, created_by, size (None for entries that
        made no layer), comment, and the image id on the top row."""
        from pyc.store.commit import history

        return history(self.images.lookup(ref))

    # -- build ------------------------------------------------------------------------------

    def build(self, context: str | int, opts: BuildOptions, dockerfile: str | None = None, text: str | None = None) -> Image:
        """Build the Dockerfile `dockerfile` (a path; default: Dockerfile or Containerfile in
        the context), or `text` when given. `context`: a directory, a tar file, or an fd to
        read a tar (or a Dockerfile, with an empty context) from."""
        from pyc.build import build

        return build(self, context, opts, dockerfile, text)

    def prune_build_cache(self) -> tuple[list[str], int]:
        """Drop the build cache: the keys of the entries dropped and the bytes freed."""
        from pyc.build import prune_cache

        return prune_cache(self)
