"""`pyc pull`: an image from a registry into the store, through the same ingest as load and
import. Only what the store lacks travels: a reference whose digest the store already knows is
one manifest request (a HEAD), a layer present (by its diff id, which the config names) is not
downloaded, and the others stream from the registry into the unpacker, side by side, each
decompressed, hashed and written as it arrives (a cut transfer picks up with a Range request).
Nothing is visible until every blob has matched its digest."""

from __future__ import annotations

from pyc.errors import BadImage, ImageNotFound, InvalidArgument, Kind, PycError
from pyc.registry import manifests
from pyc.registry.manifests import Manifest
from pyc.registry.session import Options, RegistryError, Session
from pyc.results import PullResult
from pyc.store.images import Image, ImageStore, chain_ids
from pyc.store.refs import Reference

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyc.registry.config import Endpoint, RegistriesConf

CONFIG_MAX = 32 << 20  # an image config is JSON, a few KiB; history can make it larger


def resolve(ref: str, conf: RegistriesConf) -> list[Reference]:
    """The fully qualified references `ref` may mean, in the order to try them."""
    return conf.candidates(ref)


def pull(store: ImageStore, ref: str, opts: Options, platform: str | None = None, conf: RegistriesConf | None = None) -> PullResult:
    """Pull `ref`; each place it may be (search registries, mirrors, then the registry itself)
    in turn until one has it."""
    from pyc.registry import config

    conf = conf or config.load(opts.env, _cache(store))
    want = manifests.parse_platform(platform) if platform else manifests.this_platform()
    failures: list[tuple[Reference, PycError]] = []
    for candidate in resolve(ref, conf):
        for endpoint in conf.endpoints(candidate):
            try:
                return _pull(store, candidate, endpoint, opts, want)
            except (RegistryError, ImageNotFound) as e:
                failures.append((candidate, e))
    if len(failures) == 1:
        raise failures[0][1]
    kinds = {e.kind for _, e in failures}
    kind = Kind.NOT_FOUND if kinds == {Kind.NOT_FOUND} else next(e.kind for _, e in failures if e.kind is not Kind.NOT_FOUND)
    raise PycError(f"{ref}: not pulled from any of {len(failures)} places: " + "; ".join(str(e) for _, e in failures), kind)


def _is_for(img: Image, want: tuple[str, str, str]) -> bool:
    """Whether the image is of the platform `want` (a variant asked must be the image's)."""
    c = img.config
    return (c.get("os"), c.get("architecture")) == want[:2] and (not want[2] or c.get("variant", want[2]) == want[2])


def _cache(store: ImageStore) -> str:
    """Where the parsed registries.conf is kept (see config.load)."""
    import os

    return os.path.join(store.paths.root, "registries.cache")


def _present(store: ImageStore, name: str) -> Image | None:
    try:
        return store.lookup(name)
    except ImageNotFound:
        return None


def _pull(store: ImageStore, ref: Reference, endpoint: Endpoint, opts: Options, want: tuple[str, str, str]) -> PullResult:
    name = ref.pinned()
    by_digest = f"{ref.name}@{ref.digest}" if ref.digest else None
    if by_digest is not None:
        have = _present(store, by_digest)
        if have is not None and _is_for(have, want):  # content-addressed: nothing to ask
            return PullResult(name=name, image_id=have.id, digest=str(ref.digest), downloaded=False, layers=0, bytes=0)
    s = Session(endpoint, opts)
    what = f"{endpoint.host}/{endpoint.path}:{ref.tag or 'latest'}" if not ref.digest else f"{endpoint.host}/{endpoint.path}@{ref.digest}"
    target = ref.digest or ref.tag or "latest"
    accept = [("accept", manifests.ACCEPT)]
    top_digest: str | None = ref.digest
    if top_digest is None:
        local = _present(store, name)
        if local is not None:
            head = s.request("HEAD", f"manifests/{target}", accept)
            if head.status != 200:
                raise s.error(head, f"manifest {target}")
            top_digest = head.headers.get("docker-content-digest")
            if top_digest and f"{ref.name}@{top_digest}" in local.digests and _is_for(local, want):
                return PullResult(name=name, image_id=local.id, digest=top_digest, downloaded=False, layers=0, bytes=0)
    reply = s.request("GET", f"manifests/{target}", accept)
    if reply.status != 200:
        raise s.error(reply, f"manifest {target}")
    top = Manifest(reply.body, reply.headers.get("content-type"), ref.digest or reply.headers.get("docker-content-digest"), what)
    image = top
    if top.is_index:
        d = manifests.pick(top, want, what)
        reply = s.request("GET", f"manifests/{d['digest']}", accept)
        if reply.status != 200:
            raise s.error(reply, f"manifest {d['digest']}")
        image = Manifest(reply.body, reply.headers.get("content-type"), str(d["digest"]), what)
        if image.is_index:
            raise BadImage(f"{what}: an index inside an index")
    return _fetch(store, ref, s, top, image, what)


def _fetch(store: ImageStore, ref: Reference, s: Session, top: Manifest, image: Manifest, what: str) -> PullResult:
    import json

    from pyc.paths import digest_hex
    from pyc.store import distribution, kept
    from pyc.store.ingest import Ingest, Layer

    cfg = image.config(what)
    layer_descs = image.layers(what)
    reply = s.request("GET", f"blobs/{cfg['digest']}", max_body=CONFIG_MAX)
    if reply.status != 200:
        raise s.error(reply, f"config {cfg['digest']}")
    config_bytes = reply.body
    if manifests.digest_of(config_bytes) != cfg["digest"]:
        raise BadImage(f"{what}: the config does not match its digest {cfg['digest']}")
    try:
        config = json.loads(config_bytes)
        diff_ids = [str(d) for d in config["rootfs"]["diff_ids"]]
    except (ValueError, KeyError, TypeError):
        raise BadImage(f"{what}: the config has no rootfs.diff_ids") from None
    for d in diff_ids:
        digest_hex(d)  # a diff id names a path in the store: it must be a digest
    if len(diff_ids) != len(layer_descs):
        raise BadImage(f"{what}: {len(layer_descs)} layers but {len(diff_ids)} diff ids")
    chains = chain_ids(diff_ids)
    fetched, sent = 0, 0
    with Ingest(store) as ingest:
        layers: list[Layer | tuple[str, int] | dict[str, Any]] = []
        for n, (desc, diff_id, chain) in enumerate(zip(layer_descs, diff_ids, chains, strict=True)):
            below = chains[n - 1 :: -1] if n else []
            digest, short = str(desc["digest"]), digest_hex(str(desc["digest"]))[:12]
            if ingest.has_layer(chain):
                have = ingest.kept(diff_id)
                if have is not None:
                    layers.append(have)
                    continue
            found = kept.find(store, diff_id)
            if found is not None:  # the same layer on other layers: unpacked from the store's blob
                ingest.add(kept.path(store, found), short, diff_id=diff_id, below=below, keep=False).label = f"{short}: Unpacking"
                layers.append(found)
                continue
            # Kept as it comes, compressed: not the tar too (kept.py).
            blob = s.blob(digest, int(desc["size"]))
            new = ingest.add(blob, short, diff_id=diff_id, digest=digest, below=below, keep=False, sent=True)
            new.label, new.total, new.poll = f"{short}: Downloading", int(desc["size"]), _received(blob)
            layers.append(new)
            fetched, sent = fetched + 1, sent + int(desc["size"])
        ingest.run()
        names = [ref.pinned()] if ref.digest else [ref.pinned(), f"{ref.name}@{top.digest}"]
        with store.lock():
            # The compressed form of each layer downloaded (and so checked): what push can skip.
            for desc, layer in zip(layer_descs, layers, strict=True):
                if isinstance(layer, Layer) and layer.want_digest is not None:
                    distribution.add_layer_form(store, layer.diff_id, str(desc["digest"]), str(desc.get("mediaType", manifests.LAYERS[1])), int(desc["size"]), ref.name, layer.size)
            distribution.add_image_manifest(store, str(cfg["digest"]), image.data, image.media_type, ref.name)
            ingest.commit([(config_bytes, layers, names)])
    return PullResult(name=ref.pinned(), image_id=str(cfg["digest"]), digest=top.digest, downloaded=True, layers=fetched, bytes=sent)


def _received(blob: Any) -> Any:
    return lambda: blob.received


def check_pullable(ref: str) -> None:
    """The built-in images are made here, never pulled (a qualified name pulls the registry's)."""
    from pyc.engine import BUILTIN_IMAGES

    if ref.split(":")[0].split("@")[0] in BUILTIN_IMAGES:
        raise InvalidArgument(f"{ref} is a built-in image, made on this machine (pyc image bootstrap {ref.split(':')[0].split('@')[0]}): pull a qualified name, like docker.io/library/{ref}")


def for_run(store: ImageStore, ref: str, policy: str, platform: str | None, opts: Options, bars: bool) -> Image:
    """The image `pyc run` and `pyc create` start from, when the store has none by that exact
    name: the store's under a name `ref` stands for (its alias or search registries), unless
    `policy` is `always`; else pulled (bars on a terminal if `bars`)."""
    from pyc import progress
    from pyc.registry import config

    conf = config.load(opts.env, _cache(store))
    try:
        candidates = conf.candidates(ref)
    except InvalidArgument:
        raise ImageNotFound(f"no such image: {ref} (built-in images: busybox, debian; pyc import; or pull it by a name with its registry, as localhost:5000/{ref})") from None
    if policy == "missing":
        for c in candidates:
            found = _present(store, c.pinned())
            if found is not None:
                return found
    with progress.bars() if bars else _Quiet():
        got = pull(store, ref, opts, platform, conf)
    return store.lookup(got.name)


class _Quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
