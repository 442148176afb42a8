"""pyc image prune: drop dangling images (no name), or with all=True every image no container
uses, then collect the blobs and layers they alone held."""

from __future__ import annotations

from pyc.store.gc import collect
from pyc.store.images import ImageStore
from pyc.store.usage import layer_sizes


def prune(store: ImageStore, in_use: set[str], container_layers: set[str], all: bool = False) -> tuple[list[str], int]:
    """Returns docker's `untagged: ...` / `deleted: ...` lines and the bytes reclaimed, as
    `system df` counts them: the layers no image left holds, and what interrupted commands left
    (besides, their unpacked copies and the manifests and configs go too)."""
    lines: list[str] = []
    with store.lock():
        index = store._read_index()
        entries = index.setdefault("manifests", [])
        images = list(store.all())
        doomed = [img for img in images if img.id not in in_use and (all or not img.refs and not img.digests)]
        for img in doomed:
            lines += [f"untagged: {r}" for r in img.refs + img.digests]
            lines.append(f"deleted: {img.id}")
        gone = {img.manifest_digest for img in doomed}
        if gone:
            entries[:] = [e for e in entries if e["digest"] not in gone]
            store._write_index(index)
        kept = layer_sizes([img for img in images if img.manifest_digest not in gone])
        layers = sum(size for digest, size in layer_sizes(doomed).items() if digest not in kept)
        tmp = collect(store, container_layers)[1]
    for img in doomed:
        store.log_removed(img, img.refs, True)
    return lines, layers + tmp
