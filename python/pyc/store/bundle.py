"""Delta bundles: `pyc save NEW --delta-from OLD -o upd.pycd`, `pyc load -i upd.pycd`,
`pyc bundle inspect upd.pycd`.

A bundle rebuilds images on a machine that has older versions of them, carrying only what
changed (pyc-core's bundle/ has the format and the recipes). Create reads the layer tars of the
new images and of the old ones from this store. Apply checks first that every old image and
layer the bundle draws on is here (one line naming what is missing, nothing written), rebuilds
each carried layer tar into the one ingest path (checked against its diff id before it enters the
store), reads the trailer (the bundle's digest over all its bytes), and only then commits: the
images get the same manifest and config bytes, so the same image ID and manifest digest as on
the machine that made the bundle. Bundles carry tars: an image whose layers are kept compressed
as pulled (kept.py) travels with a manifest naming its tars (the same config, so the same ID),
and the tars the bundle reads on either side are made from such blobs."""

from __future__ import annotations

import hashlib
import os

from pyc import progress
from pyc.errors import BadImage, InvalidArgument
from pyc.results import BundleContent, BundleImageContent, BundleLayerContent
from pyc.store import atomic
from pyc.store.images import Image, ImageStore
from pyc.store.ingest import Ingest, Layer, _chain
from pyc.store.refs import with_tag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ParamSpec, TypeVar

    P = ParamSpec("P")
    T = TypeVar("T")

MAGIC = b"PYCDELTA"


def is_bundle(head: bytes) -> bool:
    return head[: len(MAGIC)] == MAGIC


def _names(ref: str, img: Image) -> list[str]:
    """The names an image gets where the bundle is loaded: the one it was asked by, or all its
    names when asked by ID (as save does)."""
    return [with_tag(ref)] if with_tag(ref) in img.refs else list(img.refs)


def _layers(img: Image) -> list[tuple[str, dict[str, Any] | None]]:
    """The image's layers: (diff id, the descriptor it names it by)."""
    if len(img.diff_ids) != len(img.layers):
        raise BadImage(f"image {img.id[7:19]} has {len(img.layers)} layers but {len(img.diff_ids)} diff ids")
    return list(zip(img.diff_ids, img.layers, strict=True))


def _manifest(store: ImageStore, img: Image, tars: dict[str, str]) -> tuple[str, str]:
    """The manifest the image gets where the bundle is loaded, and its digest: the image's own,
    if it names its layers by their tars; else (layers kept as pulled, kept.py) one that does,
    as the loading store keeps them (the same config, so the same image ID)."""
    from pyc.store.images import tar_manifest

    if [str(layer["digest"]) for layer in img.layers] == img.diff_ids:
        return store.read_blob(img.manifest_digest).decode(), img.manifest_digest
    data = tar_manifest(store.read_blob(img.config_digest), [(d, os.path.getsize(tars[d])) for d in img.diff_ids])
    return data.decode(), "sha256:" + hashlib.sha256(data).hexdigest()


def create(store: ImageStore, refs: list[str], olds: list[str], out: str | int) -> BundleContent:
    """Write a bundle of the images `refs` for a machine that has the images `olds`."""
    if not olds:
        raise InvalidArgument("a delta bundle needs at least one --delta-from image")
    from pyc.store import kept
    from pyc.store.ingest import temp_dir

    news = [(ref, store.lookup(ref)) for ref in refs]
    old_images = [(ref, store.lookup(ref)) for ref in olds]
    every = [layer for _, img in [*news, *old_images] for layer in _layers(img)]
    # Create reads tars: those of layers kept compressed as pulled are made for it.
    with temp_dir(store) as scratch, kept.tars(store, every, scratch) as tars:
        return _create(store, news, old_images, tars, out)


def _create(store: ImageStore, news: list[tuple[str, Image]], old_images: list[tuple[str, Image]], tars: dict[str, str], out: str | int) -> BundleContent:
    import pyc_core

    images = []
    layers: list[tuple[str, str]] = []
    for ref, img in news:
        manifest, manifest_digest = _manifest(store, img, tars)
        images.append((_names(ref, img), manifest_digest, manifest, store.read_blob(img.config_digest).decode(), img.diff_ids))
        layers += [(d, tars[d]) for d in img.diff_ids]
    old_layers = [(d, tars[d]) for _, img in old_images for d in img.diff_ids]
    done = pyc_core.Counter()
    old_ids = {d for d, _ in old_layers}
    total = sum(os.path.getsize(path) for d, path in dict(layers).items() if d not in old_ids)

    def write(fd: int) -> tuple[str, list[tuple[str, int]]]:
        with progress.task("Creating the bundle", total or None, done.get):
            digest, carried = pyc_core.bundle_create(fd, images, [img.id for _, img in old_images], [ref for ref, _ in old_images], old_layers, layers, done)
        return digest, carried

    if isinstance(out, int):
        digest, carried = write(out)
    else:
        digest, carried = atomic.write_through(out, write)
    sizes = {d: os.path.getsize(path) for d, path in layers}
    requires = [f"{ref} ({img.id[7:19]})" for ref, img in old_images]
    return _content([(names, m, cfg, d) for names, m, _, cfg, d in images], sizes, dict(carried), requires, sorted(old_ids), digest, None)


ImageArgs = tuple[list[str], str, str, list[str]]


def _content(images: list[ImageArgs], sizes: dict[str, int], carried: dict[str, int], requires: list[str], required_layers: list[str], digest: str, size: int | None) -> BundleContent:
    """What a bundle holds: its images as (names, manifest digest, config, diff ids)."""
    import hashlib

    out = []
    for names, manifest_digest, config, diff_ids in images:
        layers = [BundleLayerContent(diff_id=d, size=sizes[d], carried=carried.get(d)) for d in diff_ids]
        out.append(BundleImageContent(names=names, id="sha256:" + hashlib.sha256(config.encode()).hexdigest(), manifest_digest=manifest_digest, layers=layers))
    return BundleContent(digest=digest, size=size, images=out, requires=requires, required_layers=required_layers)


def inspect(source: str | int) -> BundleContent:
    """Read a bundle whole, check its digest, and say what it carries."""
    import pyc_core

    header_bytes, carried, size, digest = _bad_bundle(pyc_core.bundle_inspect, source)
    header = pyc_core.unpackb(header_bytes)
    sizes = {entry["diff_id"]: entry["size"] for entry in header["layers"]}
    images = [(img["names"], img["manifest_digest"], img["config"], img["diff_ids"]) for img in header["images"]]
    req = header["requires"]
    requires = [f"{n} ({i[7:19]})" for i, n in zip(req["images"], req["names"], strict=True)]
    return _content(images, sizes, dict(carried), requires, list(req["layers"]), digest, size)


def _bad_bundle(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A pyc_core bundle call; its ArchiveError (a bundle cut short, corrupted, hostile) is a
    BadImage on one line."""
    import pyc_core

    try:
        return call(*args, **kwargs)
    except pyc_core.ArchiveError as e:
        raise BadImage(str(e)) from None


def _run_carried(ingest: Ingest) -> None:
    """Unpack a layer the bundle carries. The unpack reads it from the bundle as it goes, so
    what the bundle's reader refused midway (cut short, corrupted) surfaces as the layer's read
    error ("layer X: read archive: bundle: ..."): it is said as the bundle's, as when the
    reader meets it between layers."""
    try:
        ingest.run()
    except BadImage as e:
        words = str(e)
        at = words.find("bundle: ")
        if at < 0:
            raise
        raise BadImage(words[at:]) from None


def apply(store: ImageStore, source: str | int, head: bytes = b"") -> list[str]:
    """Rebuild the images of the bundle at `source` (a path, or an fd to read it from, whose
    first bytes `head` were read already) into the store. Returns the names loaded (an image ID
    for one without a name)."""
    import pyc_core

    reader = _bad_bundle(pyc_core.BundleReader, source, head)
    header = pyc_core.unpackb(reader.header())
    req = header["requires"]
    have = {img.id for img in store.all()}
    missing = [f"{n} ({i[7:19]})" for i, n in zip(req["images"], req["names"], strict=True) if i not in have]
    from pyc.store import kept

    missing_layers = [d[7:19] for d in req["layers"] if kept.find(store, d) is None]
    if missing or missing_layers:
        what = f"image {', '.join(missing)}" if missing else f"layer {', '.join(missing_layers)}"
        raise BadImage(f"this bundle applies to a store that has {what}, which this one lacks (it was made with --delta-from {', '.join(req['names'])})")
    with Ingest(store) as ingest, kept.tars(store, [(d, None) for d in req["layers"]], ingest.tmp) as tars:
        # The old layers are read as tars: those kept compressed as pulled are made for it.
        reader.set_sources([tars[d] for d in req["layers"]])
        return _apply(reader, header, ingest, tars)


def _apply(reader: Any, header: dict[str, Any], ingest: Ingest, tars: dict[str, str]) -> list[str]:
    """`apply` once the layers the bundle requires are here; `tars`: their tar files."""
    carried = {entry["diff_id"] for entry in header["layers"] if entry["carried"]}
    sizes = {entry["diff_id"]: entry["size"] for entry in header["layers"]}
    read: set[str] = set()  # carried layers taken from the bundle so far
    made: dict[str, Layer] = {}  # diff id -> the batch's layer that keeps its blob
    for img in header["images"]:
        below: list[str] = []
        for diff_id in img["diff_ids"]:
            chain = _chain(below[0] if below else None, diff_id)
            name = diff_id[7:19]
            if diff_id in carried and diff_id not in read:
                read.add(diff_id)
                got = _bad_bundle(reader.next_layer)
                if got is None or got[0] != diff_id:
                    raise BadImage(f"bundle: its layers are not the ones its header says (at {name})")
                if ingest.has_layer(chain) and ingest.has_blob(diff_id):
                    # Here already (a bundle applied twice): read through, for the digests.
                    if _bad_bundle(reader.digest_layer, got[1]) != diff_id:
                        raise BadImage(f"bundle: layer {name} does not match its diff id")
                else:
                    layer = ingest.add(got[1], name, diff_id=diff_id, below=below)
                    made[diff_id] = layer
                    layer.label, layer.total = f"{name}: Rebuilding", sizes[diff_id]
                    # One carried layer at a time: they follow each other in one stream.
                    _run_carried(ingest)
            elif not ingest.has_layer(chain):
                mine = made.get(diff_id)
                ingest.add(mine.blob if mine is not None else _required(tars, diff_id), name, diff_id=diff_id, below=below, keep=False)
            below.insert(0, chain)
    ingest.run()
    _bad_bundle(reader.finish)
    # The manifests name their layers by their tars: a layer this store keeps only as
    # pulled gets the tar made of it for the bundle.
    for d in dict.fromkeys(d for img in header["images"] for d in img["diff_ids"]):
        if not ingest.has_blob(d):
            ingest.add_tar(d, _required(tars, d))
    exact = [(img["manifest"].encode(), img["config"].encode(), img["names"]) for img in header["images"]]
    added = ingest.commit(exact=exact)
    return [img.refs[0] if img.refs else img.id for img in added]


def _required(tars: dict[str, str], diff_id: str) -> str:
    """The tar of a layer the bundle draws on (not carried: one of the layers it requires)."""
    if diff_id not in tars:
        raise BadImage(f"bundle: layer {diff_id[7:19]} is neither in the bundle nor among the layers it requires")
    return tars[diff_id]
