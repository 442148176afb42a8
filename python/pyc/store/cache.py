"""The run path's view of the index: every name with its manifest, config and chain ids, in one
msgpack file. `pyc run` and `pyc images` read it instead of parsing index.json, manifests and
configs (and importing json); it is rebuilt whenever index.json changes (index writes are atomic
renames, so the index's inode, mtime and size tell)."""

from __future__ import annotations

import os

from pyc.store import atomic
from pyc.store.refs import with_tag
from pyc_core import packb, unpackb

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyc.store.images import Image, ImageStore


def _path(store: ImageStore) -> str:
    return os.path.join(store.paths.root, "images.cache")


def _current(store: ImageStore) -> dict[str, Any] | None:
    """The cache, rebuilt if the index changed since; None without an index."""
    try:
        st = os.stat(store.index_path)
    except FileNotFoundError:
        return None
    key = [st.st_ino, st.st_mtime_ns, st.st_size]
    data = _read(store)
    if data is None or data.get("key") != key:
        data = _rebuild(store, key)
    return data


def _image(digest: str, e: dict[str, Any]) -> Image:
    from pyc.store.images import Image

    return Image(digest, e["manifest"], e["config"], e["refs"], e["chains"], e.get("digests"))


def find(store: ImageStore, ref: str) -> Image | None:
    """The image named `ref` (name[:tag]), or None when no image has that name."""
    data = _current(store)
    digest = None if data is None else data["refs"].get(with_tag(ref))
    if data is None or digest is None:
        return None
    return _image(digest, data["images"][digest])


def all_images(store: ImageStore) -> list[Image]:
    """Every image of the index, named or not, in the index's order."""
    data = _current(store)
    return [] if data is None else [_image(digest, e) for digest, e in data["images"].items()]


def _read(store: ImageStore) -> dict[str, Any] | None:
    try:
        with open(_path(store), "rb") as f:
            data: dict[str, Any] = unpackb(f.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _rebuild(store: ImageStore, key: list[int]) -> dict[str, Any]:
    # `key` was taken before the index is read: if it changes meanwhile, the next look-up sees a
    # newer key than the one stored here and rebuilds again.
    images: dict[str, Any] = {}
    refs: dict[str, str] = {}
    for img in store.all():
        images[img.manifest_digest] = {"manifest": img.manifest, "config": img.config, "refs": img.refs, "digests": img.digests, "chains": img.chain_ids}
        refs.update((r, img.manifest_digest) for r in img.refs + img.digests)
    data = {"key": key, "images": images, "refs": refs}
    try:
        atomic.write_file(_path(store), packb(data), durable=False)
    except OSError:
        pass  # a cache that cannot be written is only slower
    return data
