"""The one way layers enter the store, whatever brings them: import, load, commit, pull, and the
first run of an image whose layer blobs another tool wrote (skopeo copying into the store's OCI
layout).

A batch (`Ingest`) works in a temp dir of its own under $PYC_ROOT/tmp, flock'ed while in use, so
that what a killed command left is told from a live one's and collected (gc.collect_tmp). Its
layers are unpacked side by side through pyc_core.unpack_layers (the shared unpacker: a layer
is read once, decompressed, hashed and written as it streams in, from a file, a pipe or a
registry), each checked against the digests it must have: as it came (an archive's or a
registry's blob digest, compressed or not) and as a tar (its diff id). The uncompressed tar is
kept as the layer's blob, named by its diff id; but a pulled layer is kept as the registry sent
it, named by the registry's digest (store/kept.py): less to write than the tar, and what a push
can send again without compressing it anew. Nothing is visible before `commit`, which moves
the blobs and layer dirs into place and names the images under the store lock: a layer dir that
exists is complete, and a batch that fails leaves nothing."""

from __future__ import annotations

import os

from pyc import progress
from pyc.errors import BadImage
from pyc.paths import digest_hex
from pyc.store import atomic
from pyc.store.images import Image, ImageStore

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    Source = str | int | tuple[str, int, int] | Any  # Any: a pyc_core.RemoteBlob


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


class Layer:
    """One layer of a batch. Given: what to read (`source`), the name errors and bars use, the
    digests it must have (None: whatever it has), the chain ids of the layers under it (top-most
    first), whether its blob is to be kept, and how (`sent`: as it came rather than the tar).
    Known once unpacked: `diff_id`, `size` (of the tar), `digest` (of the source as it came),
    `chain`; and of a blob kept as it came, its `media_type` and `sent_size`."""

    __slots__ = (
        *("source", "name", "what", "want_diff_id", "want_digest", "below", "written", "sent", "media_type", "sent_size"),
        *("label", "total", "poll", "dir", "blob", "diff_id", "size", "digest", "chain"),
    )

    def __init__(self, source: Source, name: str, want_diff_id: str | None, want_digest: str | None, below: Sequence[str]) -> None:
        self.source, self.name = source, name
        self.what = f"layer {name}"  # what an error of its unpack starts with
        self.want_diff_id, self.want_digest = want_diff_id, want_digest
        self.below = list(below)
        self.written = False  # the blob is already written (by the caller: `tar`), not by the unpack
        self.sent = False
        self.media_type = ""
        self.sent_size = 0
        self.label = name
        self.total: int | None = None
        self.poll: Callable[[], int | None] | None = None
        self.dir = self.blob = ""
        self.diff_id = self.digest = self.chain = ""
        self.size = -1

    def check(self) -> None:
        if self.want_digest is not None and self.digest != self.want_digest:
            raise BadImage(f"layer {self.name} does not match its digest {self.want_digest}")
        if self.want_diff_id is not None and self.diff_id != self.want_diff_id:
            raise BadImage(f"layer {self.name} does not match its diff id {self.want_diff_id} (got {self.diff_id})")

    def entry(self) -> tuple[str, int] | dict[str, Any]:
        """How an image names this layer: by its tar, or by its blob as it came."""
        if not self.sent or self.digest == self.diff_id:
            return (self.diff_id, self.size)
        from pyc.store import kept

        return kept.descriptor(self.media_type, self.digest, self.sent_size, self.size)


class Ingest:
    """A batch of layers and the images made of them: `add` layers, `run` to unpack what was
    added (several at once), `commit` to make it all visible. Leaving the block without a commit
    removes everything."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self._temp = temp_dir(store)
        self.tmp = ""
        self.layers: list[Layer] = []
        self._chains: dict[str, Layer] = {}  # chain id -> the layer of this batch that makes it
        self._blobs: dict[str, Layer] = {}  # diff id -> the layer of this batch that keeps it
        self._sent: dict[str, Layer] = {}  # digest -> the layer of this batch that keeps it as it came
        self._tars: dict[str, str] = {}  # diff id -> a tar made in this batch's temp dir (add_tar)
        self._pending: list[Layer] = []

    def __enter__(self) -> Ingest:
        from pyc.store.gc import collect_tmp

        self.store.ensure_layout()
        collect_tmp(self.store)  # what a command killed midway left
        self.tmp = self._temp.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._temp.__exit__(*exc)

    # -- what is there ----------------------------------------------------------------------

    def has_layer(self, chain: str) -> bool:
        """Whether the layer dir `chain` is in the store or made by this batch."""
        return chain in self._chains or os.path.isdir(self.store.paths.layer(chain))

    def has_blob(self, diff_id: str) -> bool:
        """Whether the tar of the layer `diff_id` is in the store or kept by this batch."""
        return diff_id in self._blobs or diff_id in self._tars or self.store.has_blob(diff_id)

    def layer_dir(self, chain: str) -> str:
        """The dir of the layer `chain`: this batch's (unpacked or not yet) or the store's."""
        made = self._chains.get(chain)
        return made.dir if made is not None else self.store.paths.layer(chain)

    def stored(self, diff_id: str) -> Layer | tuple[str, int]:
        """The layer whose blob is `diff_id`, for an image's list: this batch's (its size known
        once unpacked), or (diff id, size) of the store's."""
        made = self._blobs.get(diff_id)
        return made if made is not None else (diff_id, os.path.getsize(self.store.paths.blob(diff_id)))

    def kept(self, diff_id: str) -> Layer | tuple[str, int] | dict[str, Any] | None:
        """How an image names the layer `diff_id`: this batch's layer, the store's tar, or the
        store's blob of it as pulled (kept.py); None if none of them has it."""
        from pyc.store import kept

        made = self._blobs.get(diff_id) or next((x for x in self.layers if x.sent and (x.want_diff_id or x.diff_id) == diff_id), None)
        return made if made is not None else kept.find(self.store, diff_id)

    # -- adding -----------------------------------------------------------------------------

    def add(self, source: Source, name: str, *, diff_id: str | None = None, digest: str | None = None, below: Sequence[str] = (), keep: bool = True, tar: str = "", sent: bool = False) -> Layer:
        """Queue a layer for the next `run`. `below`: the chain ids of the layers under it,
        top-most first; those of layers added before it in this batch too. With `diff_id` known
        in advance the layer's chain id is too, and a later layer may name it in its `below`.
        `keep`: keep the tar as the layer's blob; `tar`: the source is a plain tar already
        written in this batch's temp dir (`self.tmp`), kept as it is rather than copied;
        `sent`: keep the source as it came instead (a pulled layer)."""
        n = len(self.layers)
        layer = Layer(source, name, diff_id, digest, below)
        layer.dir = os.path.join(self.tmp, f"layer-{n}")
        layer.blob = tar or (os.path.join(self.tmp, f"blob-{n}") if keep or sent else "")
        layer.written = bool(tar)
        layer.sent = sent
        os.mkdir(layer.dir)
        if diff_id is not None:
            layer.chain = _chain(below[0] if below else None, diff_id)
            self._chains.setdefault(layer.chain, layer)
            if layer.blob and not layer.sent:
                self._blobs.setdefault(diff_id, layer)
        self.layers.append(layer)
        self._pending.append(layer)
        return layer

    def add_tar(self, diff_id: str, path: str) -> None:
        """Keep `path`, a tar in this batch's temp dir already checked to be the layer `diff_id`
        (made from a blob kept as pulled: kept.py), as the layer's blob."""
        self._tars.setdefault(diff_id, path)

    def add_empty(self, tar: str, diff_id: str, size: int, below: Sequence[str] = ()) -> Layer:
        """A layer whose tar (written in `self.tmp`) holds no files: docker's empty layer of a
        commit without changes. Nothing to unpack (unpack refuses a tar without files)."""
        layer = self.add(None, digest_hex(diff_id)[:12], diff_id=diff_id, below=below, tar=tar)
        self._pending.remove(layer)
        layer.diff_id, layer.size, layer.digest = diff_id, size, diff_id
        self._blobs.setdefault(diff_id, layer)
        return layer

    def run(self) -> None:
        """Unpack the layers added since the last run, side by side; raises BadImage for the first
        (in the order added) that fails or does not match its digests."""
        import contextlib

        import pyc_core

        batch, self._pending = self._pending, []
        if not batch:
            return
        with contextlib.ExitStack() as bars:
            for layer in batch:
                poll = layer.poll or (progress.file_size(layer.blob) if layer.blob and not layer.written else None)
                bars.enter_context(progress.task(layer.label, layer.total, poll))
            # Jobs keep the order they were added in, so a layer's lowers come before it (Rust
            # makes the hardlinks to their files in that order, after the batch).
            jobs = [(layer.source, layer.dir, None if layer.written else layer.blob or None, [self.layer_dir(c) for c in layer.below], layer.sent) for layer in batch]
            results = pyc_core.unpack_layers(jobs)
        for layer, r in zip(batch, results, strict=True):
            if isinstance(r, pyc_core.ArchiveError):
                raise BadImage(f"{layer.what}: {r}")
            if isinstance(r, Exception):
                raise r
            layer.diff_id, layer.size, layer.digest = r
            layer.check()
            if layer.written and layer.digest != layer.diff_id:
                raise BadImage(f"{layer.what}: a compressed tar cannot be kept as the layer's blob")
            if not layer.chain:
                layer.chain = _chain(layer.below[0] if layer.below else None, layer.diff_id)
                self._chains.setdefault(layer.chain, layer)
            if layer.sent:
                from pyc.store import kept

                layer.media_type, layer.sent_size = kept.media_type(layer.blob), os.path.getsize(layer.blob)
                self._sent.setdefault(layer.digest, layer)
            elif layer.blob:
                self._blobs.setdefault(layer.diff_id, layer)

    # -- making it visible ------------------------------------------------------------------

    def commit(
        self,
        images: Sequence[tuple[dict[str, Any] | bytes, Sequence[Layer | tuple[str, int] | dict[str, Any]], Sequence[str | None]]] = (),
        exact: Sequence[tuple[bytes, bytes, Sequence[str | None]]] = (),
    ) -> list[Image]:
        """Unpack what is left, move this batch's blobs and layer dirs into the store and add
        `images` (config: a document, or bytes kept as they are; layers: this batch's or
        (diff id, size) of the store's; names: None for an image without one) and `exact` ones
        (manifest and config bytes as they are, names), all under the store lock. Returns each
        image added, per name."""
        self.run()
        store = self.store
        added: list[Image] = []
        with store.lock():
            for diff_id, layer in self._blobs.items():
                if not store.has_blob(diff_id):
                    os.rename(layer.blob, store.paths.blob(diff_id))
            for digest, layer in self._sent.items():
                if not store.has_blob(digest):
                    os.rename(layer.blob, store.paths.blob(digest))
            for diff_id, path in self._tars.items():
                if not store.has_blob(diff_id):
                    os.rename(path, store.paths.blob(diff_id))
            for chain, layer in self._chains.items():
                commit_layer(store, layer.dir, chain)
            # The renames are durable before any name points at them.
            atomic.sync_dir(store.paths.blobs)
            atomic.sync_dir(store.paths.layers)
            for config, layers, names in images:
                sizes = [x.entry() if isinstance(x, Layer) else x for x in layers]
                for name in names or [None]:
                    added.append(store.add(config, sizes, name))
            for manifest, config_bytes, exact_names in exact:
                for exact_name in exact_names or [None]:
                    added.append(store.add_manifest(manifest, config_bytes, exact_name))
        return added


def _chain(parent: str | None, diff_id: str) -> str:
    """The chain id of a layer `diff_id` on the layer whose chain id is `parent`."""
    import hashlib

    return diff_id if parent is None else "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


def commit_layer(store: ImageStore, unpacked: str, chain: str) -> None:
    """Move an unpacked layer into place; if another process got there first, keep theirs."""
    target = store.paths.layer(chain)
    os.makedirs(store.paths.layers, exist_ok=True)
    try:
        os.rename(unpacked, target)
    except OSError as e:
        if not os.path.isdir(target):
            raise BadImage(f"cannot store layer {digest_hex(chain)[:12]}: {e.strerror}") from None


def unpack_stored(store: ImageStore, image: Image, missing: Sequence[int]) -> None:
    """Unpack the layers `missing` (indexes into the image's layers) from their blobs in the
    store: an image whose blobs another tool wrote (skopeo into the store's OCI layout, where
    they may be compressed), or whose layer dir was removed."""
    chains = image.chain_ids
    with Ingest(store) as ingest:
        for n in missing:
            desc = image.layers[n]
            digest = str(desc["digest"])
            layer = ingest.add(store.paths.blob(digest), digest_hex(digest)[:12], diff_id=image.diff_ids[n], digest=digest, below=chains[n - 1 :: -1] if n else [], keep=False)
            layer.label = f"{layer.name}: Unpacking"
        ingest.commit()
