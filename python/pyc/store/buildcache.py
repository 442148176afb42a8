"""The build cache: what each build step made, by the step's cache key (its parent's key and its
inputs, pyc.build.steps), in $PYC_ROOT/buildcache/<key hex>: the layer it made (diff id, size,
chain id) or none, and when. The layers an entry names are kept by the store's collection
(gc.collect) until `pyc builder prune` drops the entry.

Beside the entries, `files.msgpack`: the content digests of the build contexts' files, by
path, device, inode, size and times, so an unchanged file is not read again."""

from __future__ import annotations

import os

from pyc.store import atomic
from pyc.store.images import ImageStore

FILES = "files.msgpack"


class Entry:
    __slots__ = ("diff_id", "size", "chain", "created")

    def __init__(self, diff_id: str | None, size: int, chain: str | None, created: str) -> None:
        self.diff_id, self.size, self.chain, self.created = diff_id, size, chain, created

    def to_dict(self) -> dict[str, str | int | None]:
        return {"diff_id": self.diff_id, "size": self.size, "chain": self.chain, "created": self.created}


def directory(store: ImageStore) -> str:
    return os.path.join(store.paths.root, "buildcache")


def get(store: ImageStore, key: str, any_base: bool = False) -> Entry | None:
    """The entry of `key` whose layer is still in the store (blob and unpacked dir; the blob
    alone for `any_base`, a COPY --link layer, which goes on other layers than it was made on
    and is unpacked there when first used)."""
    entry = _read(store, key.removeprefix("sha256:"))
    if entry is None:
        return None
    if entry.diff_id is not None and (not store.has_blob(entry.diff_id) or (not any_base and (entry.chain is None or not os.path.isdir(store.paths.layer(entry.chain))))):
        return None
    return entry


def put(store: ImageStore, key: str, entry: Entry) -> None:
    """Record `entry`; call it under the store lock, in the same hold as the layer's adoption,
    so that no collection runs between them."""
    import pyc_core

    os.makedirs(directory(store), exist_ok=True)
    atomic.write_file(os.path.join(directory(store), key.removeprefix("sha256:")), pyc_core.packb(entry.to_dict()), durable=False)


def held(store: ImageStore) -> tuple[set[str], set[str]]:
    """The blobs (diff ids) and layer dirs (chain ids) the entries keep."""
    blobs: set[str] = set()
    chains: set[str] = set()
    for name in _names(store):
        entry = _read(store, name)
        if entry is not None and entry.diff_id and entry.chain:
            blobs.add(entry.diff_id)
            chains.add(entry.chain)
    return blobs, chains


def _names(store: ImageStore) -> list[str]:
    try:
        return [n for n in os.listdir(directory(store)) if len(n) == 64 and ".tmp-" not in n]
    except FileNotFoundError:
        return []


def _read(store: ImageStore, name: str) -> Entry | None:
    import pyc_core

    try:
        with open(os.path.join(directory(store), name), "rb") as f:
            d = pyc_core.unpackb(f.read())
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(d, dict):
        return None
    diff_id, chain = d.get("diff_id"), d.get("chain")
    return Entry(diff_id if isinstance(diff_id, str) else None, int(d.get("size") or 0), chain if isinstance(chain, str) else None, str(d.get("created") or ""))


def usage(store: ImageStore, in_images: set[str]) -> tuple[int, int]:
    """How many entries, and the bytes of the layer blobs they keep that no image has."""
    names = _names(store)
    sizes: dict[str, int] = {}
    for name in names:
        entry = _read(store, name)
        if entry is not None and entry.diff_id and entry.diff_id not in in_images:
            sizes[entry.diff_id] = entry.size
    return len(names), sum(sizes.values())


def drop_all(store: ImageStore) -> list[str]:
    """Remove every entry, the file digests, the cache mounts and ADD's kept downloads (under
    the store lock); the entries' keys."""
    names = _names(store)
    for name in names:
        try:
            os.unlink(os.path.join(directory(store), name))
        except FileNotFoundError:
            pass
    try:
        os.unlink(os.path.join(directory(store), FILES))
    except FileNotFoundError:
        pass
    for sub in ("mounts", "urls"):  # RUN --mount=type=cache's directories, ADD's downloads
        path = os.path.join(directory(store), sub)
        if os.path.isdir(path):
            import pyc_core

            pyc_core.remove_tree(path)
    return names


def load_files(store: ImageStore) -> dict[str, list[object]]:
    """path -> [dev, inode, size, mtime ns, ctime ns, digest] of the contexts' files."""
    import pyc_core

    try:
        with open(os.path.join(directory(store), FILES), "rb") as f:
            d = pyc_core.unpackb(f.read())
    except (FileNotFoundError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def save_files(store: ImageStore, files: dict[str, list[object]]) -> None:
    import pyc_core

    os.makedirs(directory(store), exist_ok=True)
    atomic.write_file(os.path.join(directory(store), FILES), pyc_core.packb(files), durable=False)
