"""Layers kept as a registry sent them. Pull keeps a layer's compressed blob, named by the
registry's digest, instead of writing its tar as well: a third of the bytes of a gzip layer to
write, and what a push sends on as it is, without compressing it again. An image names such a
layer by that blob, the tar's size in an annotation (sizes are shown as docker shows them, the
tars'); distribution/layers/ says which diff id the blob is. What must read the tar itself (a
docker-archive save, a delta bundle) has it made from the blob, checked against the diff id."""

from __future__ import annotations

import contextlib
import os

from pyc.errors import BadImage
from pyc.store import distribution
from pyc.store.images import LAYER_TAR

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

    from pyc.store.images import ImageStore

TAR_SIZE = "io.pyc.layer.tar.size"


def media_type(path: str) -> str:
    """The OCI media type of the layer file `path`, told by its first bytes, not by what a
    registry called it: the store's manifests are OCI's, which skopeo and umoci read."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        return f"{LAYER_TAR}+gzip"
    if head == b"\x28\xb5\x2f\xfd":
        return f"{LAYER_TAR}+zstd"
    return LAYER_TAR


def descriptor(media_type: str, digest: str, size: int, tar_size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, "annotations": {TAR_SIZE: str(tar_size)}}


def tar_size(desc: dict[str, Any]) -> int:
    """The size of the tar of the layer `desc` names."""
    try:
        return int((desc.get("annotations") or {}).get(TAR_SIZE, desc.get("size", 0)))
    except (TypeError, ValueError):
        return int(desc.get("size", 0))


def compressed(store: ImageStore, diff_id: str) -> list[dict[str, Any]]:
    """The blobs the store keeps of the layer `diff_id` as pulled, as an image names them."""
    out = []
    for form in distribution.layer_forms(store, diff_id):
        digest = str(form["digest"])
        if not isinstance(form.get("tarSize"), int):
            continue
        try:
            kind = media_type(store.paths.blob(digest))
        except FileNotFoundError:  # not kept (pushed, or the blob collected since)
            continue
        out.append(descriptor(kind, digest, int(form["size"]), int(form["tarSize"])))
    return out


def find(store: ImageStore, diff_id: str) -> tuple[str, int] | dict[str, Any] | None:
    """How an image names the layer `diff_id` the store keeps: (diff id, size) of its tar, else
    a blob of it as pulled; None if the store keeps neither."""
    if store.has_blob(diff_id):
        return (diff_id, os.path.getsize(store.paths.blob(diff_id)))
    forms = compressed(store, diff_id)
    return forms[0] if forms else None


def path(store: ImageStore, found: tuple[str, int] | dict[str, Any]) -> str:
    """The blob file of what `find` found."""
    return store.paths.blob(found[0] if isinstance(found, tuple) else str(found["digest"]))


@contextlib.contextmanager
def tars(store: ImageStore, layers: Iterable[tuple[str, dict[str, Any] | None]], scratch: str) -> Iterator[dict[str, str]]:
    """The tar file of each layer of `layers` (diff id, and the descriptor an image names it by,
    if any): the store's, or made in `scratch` from a blob of it the store keeps (as pulled, or
    as the image names it), checked against the diff id; what was made is removed when the
    block ends."""
    made: list[str] = []
    try:
        out: dict[str, str] = {}
        for diff_id, desc in layers:
            if diff_id in out:
                continue
            if store.has_blob(diff_id):
                out[diff_id] = store.paths.blob(diff_id)
            else:
                out[diff_id] = make_tar(store, diff_id, desc, scratch)
                made.append(out[diff_id])
        yield out
    finally:
        for f in made:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f)


def make_tar(store: ImageStore, diff_id: str, desc: dict[str, Any] | None, scratch: str) -> str:
    """The tar of the layer `diff_id` written in `scratch` from a compressed blob of it the store
    keeps (the one `desc` names, else one kept as pulled), checked against the diff id."""
    import pyc_core

    blobs = [str(desc["digest"])] if desc is not None and store.has_blob(str(desc["digest"])) else []
    blobs += [str(form["digest"]) for form in compressed(store, diff_id)]
    if not blobs:
        raise BadImage(f"layer {diff_id[7:19]} is not in the store")
    dst = os.path.join(scratch, f"tar-{diff_id.removeprefix('sha256:')}")
    try:
        got, _ = pyc_core.decompress_layer(store.paths.blob(blobs[0]), dst)
    except pyc_core.ArchiveError as e:
        raise BadImage(f"layer {diff_id[7:19]}: its blob {blobs[0][7:19]}: {e}") from None
    if got != diff_id:
        os.unlink(dst)
        raise BadImage(f"layer {diff_id[7:19]}: its blob {blobs[0][7:19]} does not match the diff id (got {got})")
    return dst
