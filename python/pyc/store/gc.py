"""Collect what nothing references any more: blobs not named by any manifest in the index,
unpacked layers used by no image and no container, temp dirs of pyc processes that died."""

import os

from pyc.store.images import ImageStore, chain_ids


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def collect_tmp(store: ImageStore) -> None:
    """Temp dirs are named `<pid>-<random>`: those of dead processes are leftovers of a crash."""
    import pyc_core

    try:
        names = os.listdir(store.paths.tmp)
    except FileNotFoundError:
        return
    for name in names:
        pid = name.partition("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            pyc_core.remove_tree(os.path.join(store.paths.tmp, name))


def collect(store: ImageStore, container_layers: set[str]) -> int:
    """Remove unreferenced blobs and layers; returns how many bytes were freed (blobs and
    unpacked layers)."""
    import pyc_core

    from pyc.store.usage import tree_size

    freed = 0
    with store.lock():
        blobs: set[str] = set()
        layers: set[str] = set(container_layers)
        for img in store.all():
            blobs.add(img.manifest_digest)
            blobs.add(img.config_digest)
            blobs.update(layer["digest"] for layer in img.layers)
            layers.update(chain_ids(img.diff_ids))
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
    collect_tmp(store)
    return freed
