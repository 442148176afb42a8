"""Unpacked layers: layers/<chain id>/, each written under a temp name and renamed into place,
so a layer dir that exists is complete. Every image and container using a layer shares it."""

from __future__ import annotations

import os

from pyc.errors import BadImage
from pyc.store.images import Image, ImageStore

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any


class temp_dir:
    """A scratch dir under tmp/, removed when the block ends. It is named after our pid and
    flock'ed while in use, so a crashed run's leftovers are told from a live one's by the lock,
    whatever became of the pid (gc.collect_tmp)."""

    def __init__(self, store: ImageStore) -> None:
        os.makedirs(store.paths.tmp, exist_ok=True)
        self.path = os.path.join(store.paths.tmp, f"{os.getpid()}-{os.urandom(6).hex()}")
        self.fd = -1

    def __enter__(self) -> str:
        import fcntl

        os.mkdir(self.path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.path

    def __exit__(self, *exc: object) -> None:
        import pyc_core

        try:
            pyc_core.remove_tree(self.path)
        finally:
            os.close(self.fd)


def lower_dirs(store: ImageStore, image: Image) -> list[str]:
    """The image's layer dirs, top-most first (overlayfs' order), unpacking any that are missing."""
    chains = image.chain_ids
    if len(chains) != len(image.layers):
        raise BadImage(f"image {image.id[7:19]} has {len(image.layers)} layers but {len(chains)} diff ids")
    dirs = [store.paths.layer(c) for c in chains]
    for n, (layer, chain, path) in enumerate(zip(image.layers, chains, dirs, strict=False)):
        if not os.path.isdir(path):
            unpack_blob(store, layer, chain, dirs[n - 1 :: -1] if n else [])
    dirs.reverse()
    return dirs


def unpack_blob(store: ImageStore, layer: dict[str, Any], chain: str, lowers: list[str]) -> None:
    """Unpack a stored layer blob; `lowers` (the layers below, top-most first, already in the
    store) give the files its hardlinks to earlier layers copy."""
    import pyc_core

    with temp_dir(store) as tmp:
        dest = os.path.join(tmp, "layer")
        os.mkdir(dest)
        try:
            pyc_core.unpack_layer(store.paths.blob(layer["digest"]), dest, None, lowers)
        except pyc_core.ArchiveError as e:
            raise BadImage(f"layer {layer['digest']}: {e}") from None
        commit_layer(store, dest, chain)


def adopt_layer(store: ImageStore, blob: str, diff_id: str, unpacked: str, chain: str) -> None:
    """Move a checked layer into the store: its blob, named by its diff id, and its unpacked
    dir, by its chain id. Call it under the store lock, before store.add names them."""
    target = store.paths.blob(diff_id)
    if not os.path.exists(target):
        os.rename(blob, target)
    commit_layer(store, unpacked, chain)


def commit_layer(store: ImageStore, unpacked: str, chain: str) -> None:
    """Move an unpacked layer into place; if another process got there first, keep theirs."""
    target = store.paths.layer(chain)
    os.makedirs(store.paths.layers, exist_ok=True)
    try:
        os.rename(unpacked, target)
    except OSError as e:
        if not os.path.isdir(target):
            raise BadImage(f"cannot store layer {chain}: {e.strerror}") from None
