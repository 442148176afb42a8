"""Collect what nothing references any more: blobs not named by any manifest in the index,
unpacked layers used by no image and no container, temp dirs of pyc processes that died."""

import os

from pyc.store import buildcache
from pyc.store.images import ImageStore, chain_ids


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlocked(path: str) -> bool:
    """True when no process holds the flock a live temp_dir keeps on its dir."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def leftovers(tmp: str) -> list[str]:
    """Temp dirs are named `<pid>-<random>` and locked while in use. One whose pid is dead and
    whose lock is free is a crash's leftover (the pid check covers the instant between mkdir and
    flock; the lock, a pid reused since)."""
    try:
        names = os.listdir(tmp)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        pid = name.partition("-")[0]
        path = os.path.join(tmp, name)
        if pid.isdigit() and int(pid) != os.getpid() and _unlocked(path) and not _pid_alive(int(pid)):
            out.append(path)
    return out


def collect_tmp(store: ImageStore) -> int:
    """Remove what crashed commands left; the bytes freed."""
    import pyc_core
    from pyc.store.usage import tree_size

    for directory in (store.paths.root, store.paths.oci, store.paths.blobs, buildcache.directory(store)):
        _collect_tmp_files(directory)
    freed = 0
    for path in leftovers(store.paths.tmp):
        freed += tree_size(path)
        pyc_core.remove_tree(path)
    return freed


def _collect_tmp_files(directory: str) -> None:
    """atomic.write_file's `<name>.tmp-<pid>` files left by a process killed mid-write."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        _, sep, pid = name.rpartition(".tmp-")
        if sep and pid.isdigit() and not _pid_alive(int(pid)):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass


def collect(store: ImageStore, container_layers: set[str]) -> tuple[int, int]:
    """Remove blobs and layers no image, container or build cache entry references, and what
    interrupted commands left; returns the bytes freed of each (blobs and unpacked layers;
    leftovers)."""
    import pyc_core
    from pyc.store import distribution
    from pyc.store.usage import tree_size

    freed = 0
    with store.lock():
        blobs, layers = buildcache.held(store)
        layers |= container_layers
        images = list(store.all())
        for img in images:
            blobs.add(img.manifest_digest)
            blobs.add(img.config_digest)
            blobs.update(layer["digest"] for layer in img.layers)
            layers.update(chain_ids(img.diff_ids))
        # The manifests images were pulled as (for push), while their images are here.
        blobs |= distribution.collect(store, {img.id for img in images}, {d for img in images for d in img.diff_ids})
        for name in os.listdir(store.paths.blobs):
            if f"sha256:{name}" not in blobs and ".tmp-" not in name:
                path = os.path.join(store.paths.blobs, name)
                freed += os.path.getsize(path)
                os.unlink(path)
        for name in os.listdir(store.paths.layers):
            if f"sha256:{name}" not in layers:
                path = os.path.join(store.paths.layers, name)
                freed += tree_size(path)
                pyc_core.remove_tree(path)
    return freed, collect_tmp(store)
