"""pyc image prune: drop dangling images (no name), or with all=True every image no container
uses, then collect the blobs and layers they alone held."""

from __future__ import annotations

from pyc.store.gc import collect
from pyc.store.images import ImageStore


def prune(store: ImageStore, in_use: set[str], container_layers: set[str], all: bool = False) -> tuple[list[str], int]:
    """Returns docker's `untagged: ...` / `deleted: ...` lines and the bytes freed."""
    lines: list[str] = []
    with store.lock():
        index = store._read_index()
        entries = index.setdefault("manifests", [])
        doomed = [img for img in store.all() if img.id not in in_use and (all or not img.refs and not img.digests)]
        for img in doomed:
            lines += [f"untagged: {r}" for r in img.refs + img.digests]
            lines.append(f"deleted: {img.id}")
        gone = {img.manifest_digest for img in doomed}
        if gone:
            entries[:] = [e for e in entries if e["digest"] not in gone]
            store._write_index(index)
        freed = collect(store, container_layers)
    return lines, freed
