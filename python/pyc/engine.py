"""The engine: what the CLI does, as a Python API. The CLI is a thin client of this module.

    import pyc
    e = pyc.Engine()
    r = e.run("busybox", pyc.RunOptions(["echo", "hi"], remove=True))
    assert r.status == 0 and r.stdout == b"hi\\n"
"""

from __future__ import annotations

import os

import msgpack

import pyc_core
from pyc.containers import DEFAULT_CGROUP_ROOT, Container, ContainerStore
from pyc.errors import Conflict, ImageNotFound, InvalidArgument, PycError
from pyc.paths import Paths
from pyc.programs import program
from pyc.runtime.spec import RunOptions, build
from pyc.store import atomic
from pyc.store.images import Image, ImageStore
from pyc.store.layers import lower_dirs

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any

    from pyc.runtime.exec import ExecOptions

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


class CommandFailed(PycError):
    """The command could not be started: 127 when not found, 126 when not executable."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _hosts(hostname: str) -> str:
    return f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def _resolv_conf() -> str:
    """The host's, without loopback resolvers: the container's loopback is its own."""
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    keep = [ln for ln in lines if not (ln.startswith("nameserver") and ln.split()[1:2] and (ln.split()[1].startswith("127.") or ln.split()[1] == "::1"))]
    return "\n".join(keep) + "\n"


def host_config_limits(resources: dict[str, Any]) -> dict[str, Any]:
    """docker inspect's names for the limits in an OCI `linux.resources` object."""
    mem, cpu = resources.get("memory", {}), resources.get("cpu", {})
    return {
        "Memory": mem.get("limit", 0),
        "MemorySwap": mem.get("swap", 0),
        "MemoryReservation": mem.get("reservation", 0),
        "NanoCpus": cpu["quota"] * 1_000_000_000 // cpu["period"] if "quota" in cpu else 0,
        "CpuShares": cpu.get("shares", 0),
        "CpusetCpus": cpu.get("cpus", ""),
        "PidsLimit": resources.get("pids", {}).get("limit", 0),
        "BlkioWeight": resources.get("blockIO", {}).get("weight", 0),
    }


class Engine:
    def __init__(self, root: str | None = None) -> None:
        self.paths = Paths(root)
        self.images = ImageStore(self.paths)
        self.containers = ContainerStore(self.paths)

    # -- images ---------------------------------------------------------------------------

    def image(self, ref: str) -> Image:
        return self.images.lookup(ref)

    def image_for_run(self, ref: str) -> Image:
        """The image, bootstrapped first when it is a missing built-in (busybox, debian)."""
        try:
            return self.images.lookup(ref)
        except ImageNotFound:
            name = ref.removesuffix(":latest")
            if name not in BUILTIN_IMAGES:
                raise ImageNotFound(f"no such image: {ref} (built-in images: {', '.join(BUILTIN_IMAGES)}; or pyc import)") from None
            return self.bootstrap(name)

    def bootstrap(self, name: str, **kwargs: Any) -> Image:
        from pyc.bootstrap import bootstrap

        return bootstrap(self.images, name, **kwargs)

    def import_image(self, source: str | int, ref: str | None, changes: dict[str, Any] | None = None) -> Image:
        from pyc.store.importer import default_config, import_rootfs

        config = default_config()
        if changes:
            config["config"].update(changes)
        return import_rootfs(self.images, source, ref, config)

    def save(self, refs: list[str], out: str | int, format: str = "docker-archive") -> None:
        """Write images to `out` (a path, or an fd for a tar stream): docker-archive, oci-archive or oci-dir."""
        from pyc.store.archive import save

        save(self.images, refs, out, format)

    def load(self, source: str | int) -> list[str]:
        """Load the images of a docker-archive, oci-archive (either maybe gzip/zstd) or oci-dir;
        returns the names loaded (the image ID of one without a name)."""
        from pyc.store.archive import load

        return load(self.images, source)

    def tag(self, src: str, dst: str) -> None:
        self.images.tag(src, dst)

    def remove_image(self, ref: str, force: bool = False) -> list[str]:
        from pyc.store.gc import collect

        in_use = {str(c.data.get("ImageId")) for c in self.containers.all()}
        lines = self.images.untag_or_remove(ref, in_use, force)
        collect(self.images, self._container_layers())
        return lines

    def prune_images(self, all: bool = False) -> tuple[list[str], int]:
        """Remove dangling images (all=True: every image no container uses); returns docker's
        lines and the bytes freed."""
        from pyc.store.prune import prune

        in_use = {str(c.data.get("ImageId")) for c in self.containers.all()}
        return prune(self.images, in_use, self._container_layers(), all)

    def _container_layers(self) -> set[str]:
        return {layer for c in self.containers.all() for layer in c.data.get("Layers", [])}

    # -- containers -----------------------------------------------------------------------

    def _prepare(self, image: str, opts: RunOptions) -> tuple[Container, dict[str, str], dict[str, Any]]:
        """The container in memory, its /etc files and its run config: everything checked,
        nothing written yet, so a bad flag leaves no container."""
        if os.geteuid() != 0:
            raise PycError("pyc run needs root: namespaces, mounts and cgroups (rootless containers are not supported yet)")
        img = self.image_for_run(image)
        lowers = lower_dirs(self.images, img)
        host_config = {
            "AutoRemove": opts.remove,
            "Init": opts.init,
            "ReadonlyRootfs": opts.read_only,
            "Binds": opts.volumes,
            "Tmpfs": opts.tmpfs,
            # Where the cgroup goes: for tests, a parent of their own and the host's cgroup2
            # mount of a hybrid host (PYC_CGROUP_ROOT=/sys/fs/cgroup/unified) to run on v2.
            "CgroupParent": os.environ.get("PYC_CGROUP_PARENT") or "pyc",
        }
        cgroup_root = os.environ.get("PYC_CGROUP_ROOT") or DEFAULT_CGROUP_ROOT
        record = {"Image": image, "ImageId": img.id, "Layers": img.chain_ids, "Config": {}, "HostConfig": host_config, "CgroupRoot": cgroup_root}
        c = self.containers.new(opts.name, record)
        hostname = opts.hostname or c.id[:12]
        etc = {"hostname": hostname + "\n", "hosts": _hosts(hostname), "resolv.conf": _resolv_conf()}
        spec = build(img.run_config, opts, c.path("rootfs"), {n: c.path(n) for n in etc}, lowers, hostname)
        host_config.update(host_config_limits(spec["linux"]["resources"]))
        c.data["Config"] = {"Cmd": spec["process"]["args"], "Env": spec["process"]["env"], "WorkingDir": spec["process"]["cwd"], "Hostname": hostname}
        if img.run_config.get("StopSignal"):
            c.data["Config"]["StopSignal"] = img.run_config["StopSignal"]
        config = {
            "spec": spec,
            "rootfs": {"lower": lowers, "upper": c.path("upper"), "work": c.path("work"), "volatile": opts.remove},
            "cgroup": {"root": c.cgroup_root, "path": c.cgroup},
            "init": opts.init,
        }
        if opts.init:
            config["pyc_init"] = program("pyc-init")
        return c, etc, config

    def run(self, image: str, opts: RunOptions, stdin: int | None = None, stdout: int | None = None, stderr: int | None = None) -> RunResult:
        """Run a container to its end. fds for stdin/stdout/stderr; None for stdin is
        /dev/null (docker without -i), None for stdout/stderr captures them."""
        c, etc, run_config = self._prepare(image, opts)
        config = msgpack.packb(run_config)
        self.containers.create(c, etc, running=True)
        with open(c.path(RUN_CONFIG), "wb") as f:
            f.write(config)  # what exec reads the container's process and cgroup from
        code = 125
        ended = False  # pyc_core.run returned: the container's cgroup is gone already
        oom = False
        try:
            r = pyc_core.run(config, stdin, stdout, stderr)
            code, ended, oom = r.status, True, r.oom_killed
            return RunResult(c.id, r.status, r.signal, r.stdout, r.stderr, r.oom_killed)
        except pyc_core.CommandNotFound as e:
            code = 127
            raise CommandFailed(str(e), 127) from None
        except pyc_core.CommandNotExecutable as e:
            code = 126
            raise CommandFailed(str(e), 126) from None
        except pyc_core.PycCoreError as e:
            raise PycError(str(e)) from None
        finally:
            if opts.remove:
                self.containers.remove(c, force=True, cgroup=not ended)
            else:
                self.containers.mark_exited(c, code, oom)

    def exec(self, ref: str, opts: ExecOptions, stdin: int | None = None, stdout: int | None = None, stderr: int | None = None) -> RunResult:
        """Run a command in a running container; with `opts.detach`, return once it started
        (status 0). stdio as for run."""
        from pyc.runtime.exec import exec_process

        c = self.containers.get(ref)
        if c.status != "running":
            raise Conflict(f"container {c.name} is not running")
        try:
            with open(c.path(RUN_CONFIG), "rb") as f:
                run_config = msgpack.unpackb(f.read())
        except FileNotFoundError:
            try:  # a detached container: its monitor's config holds the run config
                with open(c.path("monitor.msgpack"), "rb") as f:
                    run_config = msgpack.unpackb(f.read())["run"]
            except FileNotFoundError:
                raise Conflict(f"container {c.name} is not running") from None
        passwd_dirs = [c.path("upper")] + [self.paths.layer(chain) for chain in reversed(c.data.get("Layers", []))]
        process = exec_process(run_config["spec"]["process"], opts, passwd_dirs)
        config = msgpack.packb({"process": process, "cgroup": {"root": c.cgroup_root, "path": c.cgroup}, "detach": opts.detach, "pyc_init": program("pyc-init")})
        try:
            r = pyc_core.exec_in(config, stdin, stdout, stderr)
        except pyc_core.CommandNotFound as e:
            raise CommandFailed(str(e), 127) from None
        except pyc_core.CommandNotExecutable as e:
            raise CommandFailed(str(e), 126) from None
        except pyc_core.PycCoreError as e:
            if c.status != "running":  # it ended meanwhile
                raise Conflict(f"container {c.name} is not running") from None
            raise CommandFailed(str(e), 126) from None
        return RunResult(c.id, r.status, r.signal, r.stdout, r.stderr)

    def create(self, image: str, opts: RunOptions) -> Container:
        """A container ready to start (detached, held by pyc-monitor): `pyc create`."""
        from pyc.lifecycle import monitor_config

        c, etc, run_config = self._prepare(image, opts)
        extra = monitor_config(c, opts, self.paths)  # checks --restart and --log-opt
        c.data["HostConfig"].update(extra.pop("host_config"))
        self.containers.create(c, dict(etc))
        atomic.write_file(c.path("monitor.msgpack"), msgpack.packb({"run": run_config, **extra}), durable=False)
        return c

    def run_detached(self, image: str, opts: RunOptions) -> Container:
        """`pyc run -d`: the container started and held by its own pyc-monitor; returns once its
        command runs (or with docker's 125/126/127 error when it cannot)."""
        c = self.create(image, opts)
        self.start(c.id)
        return c

    def start(self, ref: str) -> Container:
        from pyc.lifecycle import start

        return start(self.containers, self.containers.get(ref))

    def stop(self, ref: str, timeout: float | None = None) -> Container:
        from pyc.lifecycle import stop

        return stop(self.containers, self.containers.get(ref), timeout)

    def kill(self, ref: str, sig: str = "KILL") -> Container:
        from pyc.lifecycle import kill

        return kill(self.containers, self.containers.get(ref), sig)

    def wait(self, ref: str) -> int:
        from pyc.lifecycle import wait

        return wait(self.containers.get(ref))

    def stats(self, ref: str) -> dict[str, Any]:
        """What a running container uses now: cpu time, memory, pids, block I/O."""
        c = self.containers.get(ref)
        if c.status != "running":
            raise Conflict(f"container {c.name} is not running")
        try:
            s = pyc_core.cgroup_stats(c.cgroup, c.cgroup_root)
        except pyc_core.PycCoreError as e:
            raise PycError(f"stats of {c.name}: {e}") from None
        return {
            "id": c.id,
            "name": c.name,
            "cpu_usage_ns": s.cpu_usage_ns,
            "memory_usage": s.memory_usage,
            "memory_limit": s.memory_limit,
            "pids": s.pids,
            "pids_limit": s.pids_limit,
            "io_read_bytes": s.io_read_bytes,
            "io_write_bytes": s.io_write_bytes,
        }

    def update(self, ref: str, opts: RunOptions) -> None:
        """Change the limits of a running container (the limit fields of `opts`)."""
        c = self.containers.get(ref)
        resources = opts.resources()
        if not resources:
            raise InvalidArgument("nothing to update: give at least one limit (--memory, --cpus, ...)")
        if c.status != "running":
            raise Conflict(f"container {c.name} is not running")
        try:
            pyc_core.update_cgroup(c.cgroup, msgpack.packb(resources), c.cgroup_root)
        except pyc_core.PycCoreError as e:
            raise PycError(f"update {c.name}: {e}") from None
        c.data.setdefault("HostConfig", {}).update(host_config_limits(resources))
        self.containers.save(c)

    def container(self, ref: str) -> Container:
        return self.containers.get(ref)

    def list_containers(self, all: bool = False) -> list[Container]:
        return [c for c in self.containers.all() if all or c.status == "running"]

    def remove_container(self, ref: str, force: bool = False) -> str:
        from pyc.lifecycle import remove

        c = self.containers.get(ref)
        remove(self.containers, c, force)
        return c.id

    def export(self, ref: str, out_fd: int) -> None:
        """Write the container's filesystem (image plus its changes) as a tar to `out_fd`."""
        c = self.containers.get(ref)
        lowers = [c.path("upper")] + [self.paths.layer(chain) for chain in reversed(c.data.get("Layers", []))]
        missing = [d for d in lowers if not os.path.isdir(d)]
        if missing:
            raise InvalidArgument(f"container {c.name}: its files are incomplete ({missing[0]} is missing)")
        mountpoint = os.path.join(self.paths.tmp, f"{os.getpid()}-export-{os.urandom(4).hex()}")
        os.makedirs(mountpoint)
        try:
            pyc_core.export_overlay(lowers, mountpoint, out_fd)
        except pyc_core.PycCoreError as e:
            raise PycError(f"export {c.name}: {e}") from None
        finally:
            os.rmdir(mountpoint)

    # -- changes: diff, commit, history ---------------------------------------------------

    def diff(self, ref: str) -> list[tuple[str, str]]:
        """The container's changes to its image: [(kind, path)], kind A(dded), C(hanged) or
        D(eleted), sorted by path. Read from its upper dir; the image's files are only stat'ed."""
        c = self.containers.get(ref)
        lowers = [self.paths.layer(chain) for chain in reversed(c.data.get("Layers", []))]
        try:
            return pyc_core.diff_upper(c.path("upper"), lowers)
        except pyc_core.PycCoreError as e:
            raise PycError(f"diff {c.name}: {e}") from None

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
            img = self.images.lookup(str(c.data.get("ImageId")))
        except ImageNotFound:
            raise ImageNotFound(f"the image of container {c.name} ({c.data.get('Image')}) was removed") from None
        created_by = " ".join(c.data.get("Config", {}).get("Cmd") or [])
        try:
            return commit_upper(self.images, img, c.path("upper"), new_ref, changes or {}, created_by, message)
        except pyc_core.PycCoreError as e:
            raise PycError(f"commit {c.name}: {e}") from None

    def history(self, ref: str) -> list[dict[str, Any]]:
        """The image's history, newest first: created, created_by, size (None for entries that
        made no layer), comment, and the image id on the top row."""
        from pyc.store.commit import history

        return history(self.images.lookup(ref))
