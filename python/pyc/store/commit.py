"""`pyc commit`: a container's changes (its overlayfs upper dir, and only that) as a new layer
on top of its image. The layer is stored like any other: blob, then unpacked from that blob."""

from __future__ import annotations

import os

from pyc import progress
from pyc.errors import InvalidArgument
from pyc.paths import digest_hex
from pyc.results import HistoryEntry
from pyc.store.changes import apply_changes
from pyc.store.images import Image, ImageStore
from pyc.store.ingest import Ingest, Layer
from pyc.store.kept import tar_size
from pyc.store.refs import normalize

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any


def commit_upper(store: ImageStore, image: Image, upper: str, ref: str | None, changes: dict[str, Any], created_by: str, comment: str | None) -> Image:
    """`image` plus the layer made of `upper`, with `changes` to its run config, named `ref`."""
    import copy

    import pyc_core

    if ref is not None:
        ref = normalize(ref)
    if not os.path.isdir(upper):
        raise InvalidArgument(f"{upper}: the container's files are missing")
    with Ingest(store) as ingest:
        blob = os.path.join(ingest.tmp, "layer.tar")
        with progress.task("Writing layer", None, progress.file_size(blob)):
            diff_id, size = pyc_core.tar_upper(upper, blob)
        below = image.chain_ids[::-1]
        # An unchanged container makes an empty layer, as in docker; unpack refuses empty tars.
        if os.listdir(upper):
            fd = os.open(blob, os.O_RDONLY | os.O_CLOEXEC)
            try:
                layer = ingest.add(fd, digest_hex(diff_id)[:12], diff_id=diff_id, below=below, tar=blob)
                layer.label, layer.total, layer.poll = f"{diff_id[7:19]}: Storing layer", size, progress.offset(fd)
                ingest.run()
            finally:
                os.close(fd)
        else:
            layer = ingest.add_empty(blob, diff_id, size, below)
        now = store.now()
        config = copy.deepcopy(image.config)
        config["config"] = apply_changes(image.run_config, changes)
        config["rootfs"] = {"type": "layers", "diff_ids": [*image.diff_ids, diff_id]}
        entry = {"created": now, "created_by": created_by}
        if comment:
            entry["comment"] = comment
        config["history"] = [*config.get("history", []), entry]
        config["created"] = now
        # The image's layers named as it names them (a blob kept as pulled stays so: kept.py).
        layers: list[dict[str, Any] | tuple[str, int] | Layer] = [*image.layers, (diff_id, size)]
        return ingest.commit([(config, layers, [ref])])[0]


def history(image: Image) -> list[HistoryEntry]:
    """One entry per history entry, newest first, with the size of the layer it made (None for
    entries that made none, `empty_layer`). Layers without an entry get one of their own."""
    layers = image.layers
    rows: list[HistoryEntry] = []
    n = 0
    for h in image.config.get("history") or []:
        empty = bool(h.get("empty_layer"))
        size = None if empty or n >= len(layers) else tar_size(layers[n])
        n += 0 if empty else 1
        created = h.get("created")
        rows.append(HistoryEntry(created=str(created) if created else None, created_by=str(h.get("created_by", "")), size=size, comment=str(h.get("comment", "")), empty_layer=empty))
    rows += [HistoryEntry(size=tar_size(layer)) for layer in layers[n:]]
    rows.reverse()
    if rows:
        rows[0].id = image.id
    return rows
