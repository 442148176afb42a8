"""`pyc push`: an image to a registry, sending only the blobs it lacks.

A layer pyc has seen in compressed form on this registry (pulled from it, or pushed there
before: store/distribution.py) is asked for first (HEAD) in the destination repository, and
mounted from the other repository that holds it when the destination lacks it; the others are
compressed on the fly (gzip at level 6 by default, as podman does; or zstd) and streamed to the
registry, several at once. A layer the store keeps compressed as it was pulled (kept.py) is
sent as it is when it is of the format asked and no level was asked: compressing the same tar
again would give the same kind of blob, at the cost of most of a push's time. An image pulled
from this registry and unchanged goes back as the very manifest it came as: no layer sent, the
same digest."""

from __future__ import annotations

import json
import os
import threading

from pyc.errors import BadImage, InvalidArgument, Kind
from pyc.registry import manifests
from pyc.registry.session import Options, RegistryError, Session
from pyc.results import PushResult
from pyc.store.images import Image, ImageStore
from pyc.store.refs import Reference, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    import pyc_core

COMPRESSIONS = {"gzip": (6, 0, 9, "application/vnd.oci.image.layer.v1.tar+gzip"), "zstd": (3, 1, 19, "application/vnd.oci.image.layer.v1.tar+zstd")}
UPLOADS_AT_ONCE = 4


def destination(src: str, dest: str | None) -> Reference:
    """Where to push: `dest`, else the image's own name; fully qualified (pyc has no default
    registry), with a tag (`latest` if none)."""
    ref = parse(dest or src)
    if ref.domain is None:
        raise InvalidArgument(f"{dest or src}: name the registry to push to, like localhost:5000/{ref.path}{':' + ref.tag if ref.tag else ''}")
    if ref.digest:
        raise InvalidArgument(f"{dest or src}: push to a tag, not a digest")
    return Reference(ref.domain, ref.path, ref.tag or "latest")


def push(store: ImageStore, src: str, dest: str | None, opts: Options, compression: str = "gzip", level: int | None = None) -> PushResult:
    from pyc.registry import config

    if compression not in COMPRESSIONS:
        raise InvalidArgument(f"unknown compression format {compression!r}: gzip or zstd")
    default, low, high, _ = COMPRESSIONS[compression]
    if level is not None and not low <= level <= high:
        raise InvalidArgument(f"--compression-level for {compression} is {low} to {high}, not {level}")
    ref = destination(src, dest)
    img = store.lookup(src)
    conf = config.load(opts.env)
    endpoint = conf.endpoints(ref, pull=False)[-1]
    session = Session(endpoint, opts, "pull,push", _mount_sources(store, img, endpoint.host))
    return _Push(store, img, ref, session, compression, default if level is None else level, as_kept=level is None).run()


def _mount_sources(store: ImageStore, img: Image, host: str) -> list[str]:
    """The repositories of `host` known to hold some of the image's layers (mount sources)."""
    from pyc.store import distribution

    repos: dict[str, None] = {}
    for diff_id in dict.fromkeys(img.diff_ids):
        for form in distribution.layer_forms(store, diff_id):
            repos.update((r.partition("/")[2], None) for r in form.get("repositories", []) if r.partition("/")[0] == host)
    return list(repos)[:8]  # a token's scopes are a URL's query: a few are enough


class _Push:
    def __init__(self, store: ImageStore, img: Image, ref: Reference, s: Session, compression: str, level: int, as_kept: bool) -> None:
        self.store, self.img, self.ref, self.s = store, img, ref, s
        self.compression, self.level = compression, level
        self.as_kept = as_kept  # a layer kept compressed in this format is sent as it is
        self.host = s.host
        self.sent = self.skipped = self.bytes = 0
        self.forms: dict[str, dict[str, Any]] = {}  # diff id: its descriptor on this registry

    def run(self) -> PushResult:
        from pyc.store import distribution

        self.s.open()
        digest = None
        try:
            pulled = self._as_pulled()
            if pulled is not None:
                data, media_type = pulled
            else:
                config, layers = self._config_beside(self._layers)
                doc = {"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST, "config": config, "layers": layers}
                data, media_type = json.dumps(doc, separators=(",", ":")).encode(), manifests.OCI_MANIFEST
            digest = self._put_manifest(data, media_type)
        finally:
            # What the registry now holds, in one take of the lock (also when the push failed
            # after some layers went up: a push again asks for them instead of sending them).
            if self.forms or digest:
                with self.store.lock():
                    for diff_id, d in self.forms.items():
                        distribution.add_layer_form(self.store, diff_id, d["digest"], d["mediaType"], d["size"], self.ref.name)
                    if digest:
                        distribution.add_image_manifest(self.store, self.img.id, data, media_type, self.ref.name)
        return PushResult(name=str(self.ref), digest=digest, layers_sent=self.sent, layers_skipped=self.skipped, bytes=self.bytes)

    # -- an unchanged pulled image ----------------------------------------------------------

    def _as_pulled(self) -> tuple[bytes, str] | None:
        """A manifest the image was pulled (or pushed) as whose blobs this registry has or can
        mount: sent back as it is."""
        from pyc.store import distribution

        for entry in distribution.image_manifests(self.store, self.img.id):
            repo = str(entry.get("repository", ""))
            if repo.partition("/")[0] != self.host:
                continue
            try:
                data = self.store.read_blob(str(entry["digest"]))
                m = manifests.Manifest(data, str(entry.get("mediaType")), str(entry["digest"]), repo)
                blobs = [m.config(repo), *m.layers(repo)]
            except Exception:
                continue
            source = repo.partition("/")[2]
            if all(self._have(str(d["digest"]), source) for d in blobs):
                self.skipped += len(blobs) - 1
                return data, m.media_type
        return None

    def _have(self, digest: str, source: str | None) -> bool:
        """Whether the destination repository has the blob, after mounting it from `source`
        (another repository of the registry) if it did not."""
        reply = self.s.request("HEAD", f"blobs/{digest}")
        if reply.status == 200:
            return True
        if reply.status != 404:
            raise self.s.error(reply, f"blob {digest}")
        if not source or source == self.s.repo:
            return False
        reply = self.s.request("POST", f"blobs/uploads/?mount={digest}&from={source}", body=b"")
        if reply.status == 201:
            return True
        if reply.status == 202 and reply.headers.get("location"):  # no mount: an upload was started instead
            self.s.request("DELETE", _absolute(self.s, reply.headers["location"]))
        return False

    # -- layers and config ------------------------------------------------------------------

    def _layers(self) -> list[dict[str, Any]]:
        """Each layer's descriptor on the registry: a known compressed form it has (or mounts),
        else one uploaded now, several at once."""
        from pyc.store import distribution

        out: dict[str, dict[str, Any]] = {}
        todo: list[str] = []
        for diff_id in dict.fromkeys(self.img.diff_ids):
            for form in distribution.layer_forms(self.store, diff_id):
                repos = [r.partition("/")[2] for r in form.get("repositories", []) if r.partition("/")[0] == self.host]
                if repos and self._have(str(form["digest"]), repos[0]):
                    out[diff_id] = {"mediaType": str(form["mediaType"]), "digest": str(form["digest"]), "size": int(form["size"])}
                    self.skipped += 1
                    break
            else:
                todo.append(diff_id)
        self.forms.update(out)
        self._upload_all(todo)
        return [self.forms[d] for d in self.img.diff_ids]

    def _config_beside(self, layers: Callable[[], list[dict[str, Any]]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The config sent on a thread of its own while `layers` runs: its round trips are
        not added to the layers' time."""
        got: list[dict[str, Any]] = []
        failed: list[BaseException] = []

        def config() -> None:
            try:
                got.append(self._config())
            except BaseException as e:
                failed.append(e)

        t = threading.Thread(target=config, daemon=True)
        t.start()
        try:
            descs = layers()
        finally:
            t.join()
        if failed:
            raise failed[0]
        return got[0], descs

    def _upload_all(self, diff_ids: list[str]) -> None:
        """Compress and send the layers `diff_ids`, several at once; each one sent goes into
        `forms` as soon as the registry has it."""
        import pyc_core
        from pyc import progress
        from pyc.paths import digest_hex
        from pyc.store.ingest import temp_dir

        media = COMPRESSIONS[self.compression][3]
        errors: list[BaseException] = []
        lock = threading.Lock()
        queue = list(diff_ids)
        with temp_dir(self.store) as tmp:

            def work() -> None:
                while True:
                    with lock:
                        if not queue or errors:
                            return
                        diff_id = queue.pop(0)
                    counter = pyc_core.RemoteProgress()
                    try:
                        path, compression, want = self._source(diff_id)
                        with progress.task(f"{digest_hex(diff_id)[:12]}: Pushing", os.path.getsize(path), _value(counter)):
                            got = self.s.upload(path, compression, self.level, os.path.join(tmp, digest_hex(diff_id)), counter)
                        if want is not None and got[0] != want:
                            raise BadImage(f"layer {diff_id[7:19]}: its blob in the store does not match its digest {want} (got {got[0]})")
                    except BaseException as e:
                        with lock:
                            errors.append(e)
                        return
                    with lock:
                        self.forms[diff_id] = {"mediaType": media, "digest": got[0], "size": got[1]}
                        self.sent += 1
                        self.bytes += got[1]

            threads = [threading.Thread(target=work, daemon=True) for _ in range(min(UPLOADS_AT_ONCE, len(queue)))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]

    def _source(self, diff_id: str) -> tuple[str, str, str | None]:
        """What to send of the layer `diff_id`: (file, compression, the digest the blob must
        have when it goes as it is, else None). A blob kept as pulled goes as it is if of the
        format asked; else the tar, or that blob decompressed, is compressed on the way."""
        from pyc.store import kept

        forms = kept.compressed(self.store, diff_id)
        if self.as_kept:
            for form in forms:
                if str(form["mediaType"]).endswith(self.compression):
                    return self.store.paths.blob(str(form["digest"])), "as-is", str(form["digest"])
        if self.store.has_blob(diff_id):
            return self.store.paths.blob(diff_id), self.compression, None
        if forms:
            return self.store.paths.blob(str(forms[0]["digest"])), self.compression, None
        raise BadImage(f"layer {diff_id[7:19]} is not in the store")

    def _config(self) -> dict[str, Any]:
        data = self.store.read_blob(self.img.config_digest)
        d = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.img.config_digest, "size": len(data)}
        if self._have(self.img.config_digest, None):
            return d
        reply = self.s.request("POST", "blobs/uploads/", body=b"")
        if reply.status != 202 or not reply.headers.get("location"):
            raise self.s.error(reply, "upload of the config")
        location = _absolute(self.s, reply.headers["location"])
        url = location + ("&" if "?" in location else "?") + "digest=" + self.img.config_digest.replace(":", "%3A")
        reply = self.s.request("PUT", url, [("content-type", "application/octet-stream")], data)
        if reply.status != 201:
            raise self.s.error(reply, "upload of the config")
        return d

    def _put_manifest(self, data: bytes, media_type: str) -> str:
        digest = manifests.digest_of(data)
        reply = self.s.request("PUT", f"manifests/{self.ref.tag}", [("content-type", media_type)], data)
        if reply.status != 201:
            raise self.s.error(reply, f"manifest {self.ref.tag}")
        said = reply.headers.get("docker-content-digest")
        if said and said != digest:
            raise RegistryError(f"{self.host}/{self.s.repo}: the registry stored the manifest as {said}, not {digest}", Kind.REGISTRY)
        return digest


def _absolute(s: Session, location: str) -> str:
    if "://" in location:
        return location
    return f"{s.scheme}://{s.host}{location}" if location.startswith("/") else s.url(f"blobs/uploads/{location}")


def _value(counter: pyc_core.RemoteProgress) -> Callable[[], int | None]:
    return lambda: counter.value
