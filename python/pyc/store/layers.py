"""Unpacked layers: layers/<chain id>/, the overlay lower dirs, each complete once it exists
(ingest.py puts them there). Every image and container using a layer shares it."""

from __future__ import annotations

import os

from pyc.errors import BadImage
from pyc.store.images import Image, ImageStore


def lower_dirs(store: ImageStore, image: Image) -> list[str]:
    """The image's layer dirs, top-most first (overlayfs' order), unpacking any that are missing."""
    chains = image.chain_ids
    if len(chains) != len(image.layers):
        raise BadImage(f"image {image.id[7:19]} has {len(image.layers)} layers but {len(chains)} diff ids")
    dirs = [store.paths.layer(c) for c in chains]
    missing = [n for n, path in enumerate(dirs) if not os.path.isdir(path)]
    if missing:
        from pyc.store.ingest import unpack_stored  # not on the run path of an image in place

        unpack_stored(store, image, missing)
    dirs.reverse()
    return dirs
