"""`pyc cp`: which side is the container, and how its files are reached (the copying itself,
with docker's rules for where things go, is rust/core/src/copy/).

A running container is reached from the host side, through its pid 1's root (/proc/<pid>/root,
held by a pidfd), every path beneath it resolved with openat2 RESOLVE_IN_ROOT: its volumes and
binds are there, as it sees them. Not by entering it as `pyc exec` does, which would mean a tar
unpacker in pyc-init, in the container's namespaces: the layer unpacker of pyc_core (the one
that unpacks image layers, checked against escapes) does the work here instead, and no process
of pyc's is ever inside for the container to see or trace. The price is that pyc's writes are
the host root's: the unpacker never follows a symlink at a name and resolves everything beneath
a descriptor, which is what CVE-2018-15664 (a symlink swapped during the copy) needs.

A stopped container is reached through a mount of its layers and upper dir (overlayfs, so
whiteouts and opaque directories stay right) in a mount namespace private to the copy, with its
volumes and binds mounted as at its start; its lock keeps `pyc start` out meanwhile."""

from __future__ import annotations

import os

import pyc_core
from pyc.errors import InvalidArgument, from_system
from pyc.records import CgroupPlace, CopyConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.containers import Container
    from pyc.engine import Engine

# The mounts every container gets: what they hold is the kernel's, not the container's files.
KERNEL_MOUNTS = ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys")


def split(arg: str) -> tuple[str | None, str]:
    """docker's reading of a cp argument: CONTAINER:PATH, or a local path (absolute, `./x:y`,
    or without a colon)."""
    if arg.startswith("/"):
        return None, arg
    ref, colon, path = arg.partition(":")
    if not colon or ref.startswith("."):
        return None, arg
    return ref, path


def copy(engine: Engine, source: str, dest: str, archive: bool, follow: bool, stdin: int, stdout: int) -> None:
    (src_ref, src_path), (dst_ref, dst_path) = split(source), split(dest)
    if src_ref is not None and dst_ref is not None:
        raise InvalidArgument("copying between containers is not supported")
    if src_ref is None and dst_ref is None:
        raise InvalidArgument("must specify at least one container source")
    into = dst_ref is not None
    ref, inside, host = (dst_ref, dst_path, src_path) if into else (src_ref, src_path, dst_path)
    assert ref is not None
    if not inside:
        raise InvalidArgument(f"no path in the container given: use {ref}:/PATH")
    c = engine.containers.get(ref)
    config = CopyConfig(view={}, container_path=inside if inside.startswith("/") else "/" + inside, host_path=None if host == "-" else host, into=into, follow=follow, archive=archive)
    stream = (stdin if into else stdout) if host == "-" else None
    if c.status == "running":
        config.view = {"running": {"cgroup": CgroupPlace(root=c.cgroup_root, path=c.cgroup).to_dict()}}
        _copy(config, stream, c)
        return
    from pyc.lifecycle import container_lock

    with container_lock(engine.containers, c):
        if c.status == "running":  # it started while we waited for its lock
            config.view = {"running": {"cgroup": CgroupPlace(root=c.cgroup_root, path=c.cgroup).to_dict()}}
            _copy(config, stream, c)
            return
        mountpoint = os.path.join(engine.paths.tmp, f"{os.getpid()}-cp-{os.urandom(4).hex()}")
        config.view = {"stopped": _stopped_view(engine, c, mountpoint)}
        os.makedirs(mountpoint)
        try:
            _copy(config, stream, c)
        finally:
            os.rmdir(mountpoint)


def _copy(config: CopyConfig, stream: int | None, c: Container) -> None:
    try:
        pyc_core.copy(pyc_core.packb(config.to_dict()), stream)
    except pyc_core.PycCoreError as e:
        raise from_system(e, f"cp {c.name}") from None


def _stopped_view(engine: Engine, c: Container, mountpoint: str) -> dict[str, object]:
    """Its layers and upper dir, and its mounts as its run config has them: binds (volumes
    among them) made again, tmpfs as empty read-only ones (what they held is gone)."""
    from pyc.engine import run_config_of

    run = run_config_of(c)
    if run is None or not os.path.isdir(c.path("upper")):
        raise InvalidArgument(f"container {c.name}: its files are incomplete")
    missing = [d for d in run.rootfs.lower if not os.path.isdir(d)]
    if missing:
        raise InvalidArgument(f"container {c.name}: its files are incomplete ({missing[0]} is missing)")
    mounts: list[dict[str, object]] = []
    spec_mounts = run.spec.get("mounts")
    for m in spec_mounts if isinstance(spec_mounts, list) else []:
        dest, kind, options = m.get("destination"), m.get("type"), m.get("options") or []
        if not isinstance(dest, str) or dest in KERNEL_MOUNTS:
            continue
        if kind == "tmpfs":
            mounts.append({"destination": dest, "tmpfs": True, "readonly": True})
        elif kind == "bind":
            mounts.append({"source": m.get("source"), "destination": dest, "readonly": "ro" in options})
    root = run.spec.get("root")
    readonly = isinstance(root, dict) and bool(root.get("readonly"))
    return {"lower": run.rootfs.lower, "upper": run.rootfs.upper, "work": run.rootfs.work, "mountpoint": mountpoint, "readonly": readonly, "mounts": mounts}
