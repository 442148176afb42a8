"""Unpacked layers: layers/<chain id>/, each written under a temp name and renamed into place,
so a layer dir that exists is complete. Every image and container using a layer shares it."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyc.errors import BadImage
from pyc.store.images import Image, ImageStore, chain_ids


@contextmanager
def temp_dir(store: ImageStore) -> Iterator[str]:
    """A scratch dir under tmp/, named after our pid so a crashed run's leftovers are found."""
    import pyc_core

    os.makedirs(store.paths.tmp, exist_ok=True)
    path = os.path.join(store.paths.tmp, f"{os.getpid()}-{os.urandom(6).hex()}")
    os.mkdir(path)
    try:
        yield path
    finally:
        pyc_core.remove_tree(path)


def lower_dirs(store: ImageStore, image: Image) -> list[str]:
    """The image's layer dirs, top-most first (overlayfs' order), unpacking any that are missing."""
    chains = chain_ids(image.diff_ids)
    if len(chains) != len(image.layers):
        raise BadImage(f"image {image.id[7:19]} has {len(image.layers)} layers but {len(chains)} diff ids")
    dirs = [store.paths.layer(c) for c in chains]
    for layer, chain, path in zip(image.layers, chains, dirs):
        if not os.path.isdir(path):
            unpack_blob(store, layer, chain)
    dirs.reverse()
    return dirs


def unpack_blob(store: ImageStore, layer: dict[str, Any], chain: str) -> None:
    import pyc_core

    with temp_dir(store) as tmp:
        dest = os.path.join(tmp, "layer")
        os.mkdir(dest)
        pyc_core.unpack_layer(store.paths.blob(layer["digest"]), dest)
        commit_layer(store, dest, chain)


def commit_layer(store: ImageStore, unpacked: str, chain: str) -> None:
    """Move an unpacked layer into place; if another process got there first, keep theirs."""
    target = store.paths.layer(chain)
    os.makedirs(store.paths.layers, exist_ok=True)
    try:
        os.rename(unpacked, target)
    except OSError as e:
        if not os.path.isdir(target):
            raise BadImage(f"cannot store layer {chain}: {e.strerror}") from None
