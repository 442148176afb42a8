"""Images in the OCI layout: index.json names manifests (annotation ref.name = `name:tag`),
each manifest names a config and its layers. The image ID is the config digest, as in docker."""

from __future__ import annotations

import os
import time

from pyc.errors import BadImage, Conflict, ImageNotFound
from pyc.paths import Paths
from pyc.store import atomic
from pyc.store.refs import normalize, with_tag

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any

REF_NAME = "org.opencontainers.image.ref.name"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


class Image:
    """A resolved image: its manifest and config, read from blobs; `refs` its names (`name:tag`),
    `digests` the names by digest a registry knows it by (`name@sha256:...`, docker's RepoDigests)."""

    __slots__ = ("manifest_digest", "manifest", "config_digest", "config", "refs", "digests", "_chains")

    def __init__(self, manifest_digest: str, manifest: dict[str, Any], config: dict[str, Any], refs: list[str], chains: list[str] | None = None, digests: list[str] | None = None) -> None:
        self.manifest_digest = manifest_digest
        self.manifest = manifest
        self.config_digest: str = manifest["config"]["digest"]
        self.config = config
        self.refs = refs
        self.digests = digests or []
        self._chains = chains

    @property
    def chain_ids(self) -> list[str]:
        if self._chains is None:
            self._chains = chain_ids(self.diff_ids)
        return self._chains

    @property
    def id(self) -> str:
        return self.config_digest

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers", []))

    @property
    def size(self) -> int:
        """The size of the layers' tars (docker's image size), however they are kept."""
        from pyc.store.kept import tar_size

        return sum(tar_size(layer) for layer in self.layers)

    @property
    def run_config(self) -> dict[str, Any]:
        """The `config` part of the image config: Env, Cmd, Entrypoint, WorkingDir, User."""
        return dict(self.config.get("config") or {})


def tar_manifest(config: bytes, layers: Sequence[tuple[str, int] | dict[str, Any]]) -> bytes:
    """The manifest pyc writes for an image: its layers named by their tars (digest, size) or
    by the descriptors given."""
    import hashlib
    import json

    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [layer if isinstance(layer, dict) else {"mediaType": LAYER_TAR, "digest": layer[0], "size": layer[1]} for layer in layers],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI chain ids: a layer's identity together with everything under it."""
    import hashlib

    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


class ImageStore:
    def __init__(self, paths: Paths) -> None:
        from pyc.events import Journal

        self.paths = paths
        self.index_path = os.path.join(paths.oci, "index.json")
        self.journal = Journal(paths.root)

    def log_removed(self, img: Image, untagged: list[str], deleted: bool) -> None:
        """docker's events for names taken off an image, and for the image gone."""
        events = [("image", "untag", img.id, {"name": ref}) for ref in untagged]
        if deleted:
            events.append(("image", "delete", img.id, {"name": img.id}))
        self.journal.log_all(events)

    # -- layout ---------------------------------------------------------------------------

    def ensure_layout(self) -> None:
        from pyc.store.placement import spread_children

        for d in (self.paths.blobs, self.paths.layers, self.paths.containers, self.paths.tmp):
            os.makedirs(d, exist_ok=True)
        # Layers are unpacked in tmp/ (then renamed into layers/), upper dirs made in containers/.
        spread_children(self.paths.tmp)
        spread_children(self.paths.containers)
        layout = os.path.join(self.paths.oci, "oci-layout")
        if not os.path.exists(layout):
            atomic.write_file(layout, b'{"imageLayoutVersion":"1.0.0"}')
        if not os.path.exists(self.index_path):
            self._write_index({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})

    def lock(self) -> Any:
        os.makedirs(self.paths.oci, exist_ok=True)
        return atomic.locked(os.path.join(self.paths.root, "store.lock"))

    def _read_index(self) -> dict[str, Any]:
        import json

        try:
            with open(self.index_path, "rb") as f:
                index: dict[str, Any] = json.loads(f.read())
        except FileNotFoundError:
            return {"schemaVersion": 2, "manifests": []}
        except ValueError as e:
            raise BadImage(f"store index {self.index_path} is corrupt: {e}") from None
        return index

    def _write_index(self, index: dict[str, Any]) -> None:
        import json

        atomic.write_file(self.index_path, json.dumps(index, indent=None, separators=(",", ":")).encode())

    # -- blobs ----------------------------------------------------------------------------

    def read_blob(self, digest: str) -> bytes:
        try:
            with open(self.paths.blob(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise BadImage(f"blob {digest} is missing from the store") from None

    def read_json_blob(self, digest: str) -> dict[str, Any]:
        import json

        try:
            value: dict[str, Any] = json.loads(self.read_blob(digest))
        except ValueError as e:
            raise BadImage(f"blob {digest} is not valid JSON: {e}") from None
        return value

    def write_blob(self, data: bytes) -> tuple[str, int]:
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.paths.blob(digest)
        if not os.path.exists(path):
            atomic.write_file(path, data)
        return digest, len(data)

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.paths.blob(digest))

    # -- names ----------------------------------------------------------------------------

    def _manifest_entries(self) -> list[dict[str, Any]]:
        return list(self._read_index().get("manifests", []))

    def lookup(self, ref: str) -> Image:
        """An image by `name[:tag]`, by ID (config digest, or a prefix of 12+ hex digits) or by
        manifest digest."""
        from pyc.store import cache

        found = cache.find(self, ref)
        if found is not None:
            return found
        entries = self._manifest_entries()
        wanted = with_tag(ref)
        for e in entries:
            if e.get("annotations", {}).get(REF_NAME) == wanted:
                return self._load(e["digest"], entries)
        hexpart = ref.removeprefix("sha256:")
        if len(hexpart) >= 12 and all(c in "0123456789abcdef" for c in hexpart):
            for e in entries:
                if e["digest"].removeprefix("sha256:").startswith(hexpart):
                    return self._load(e["digest"], entries)
                img = self._load(e["digest"], entries)
                if img.id.removeprefix("sha256:").startswith(hexpart):
                    return img
        if not ref.startswith("sha256:"):
            normalize(ref)  # a malformed reference is said so, as docker does, not "no such image"
        raise ImageNotFound(f"no such image: {ref}")

    def _load(self, manifest_digest: str, entries: list[dict[str, Any]]) -> Image:
        manifest = self.read_json_blob(manifest_digest)
        try:
            config = self.read_json_blob(manifest["config"]["digest"])
        except (KeyError, TypeError):
            raise BadImage(f"manifest {manifest_digest} has no config") from None
        names = [e["annotations"][REF_NAME] for e in entries if e["digest"] == manifest_digest and REF_NAME in e.get("annotations", {})]
        return Image(manifest_digest, manifest, config, [n for n in names if "@" not in n], digests=[n for n in names if "@" in n])

    def all(self) -> Iterator[Image]:
        entries = self._manifest_entries()
        seen: set[str] = set()
        for e in entries:
            if e["digest"] not in seen:
                seen.add(e["digest"])
                yield self._load(e["digest"], entries)

    def add(self, config: dict[str, Any] | bytes, layers: Sequence[tuple[str, int] | dict[str, Any]], ref: str | None) -> Image:
        """Write config and manifest for layers already in the store (their tar's digest and
        size, or a descriptor of a blob kept as pulled: kept.py), and name it.
        A config given as bytes is kept byte for byte (a pulled image keeps its ID). Under the
        store lock, so a concurrent collection never sees blobs without their index."""
        import json

        config_bytes = config if isinstance(config, bytes) else json.dumps(config, separators=(",", ":")).encode()
        return self.add_manifest(tar_manifest(config_bytes, layers), config_bytes, ref)

    def add_manifest(self, manifest: bytes, config: bytes, ref: str | None) -> Image:
        """Write a manifest and its config as they are (their digests are the image's identity:
        a delta bundle rebuilds them byte for byte), its layers already in the store, and name it."""
        with self.lock():
            self.write_blob(config)
            m_digest, m_size = self.write_blob(manifest)
            index = self._read_index()
            entries = index.setdefault("manifests", [])
            before = list(entries)
            full = normalize(ref) if ref else None
            if full:
                self._drop_ref(entries, full)
            entry: dict[str, Any] = {"mediaType": MANIFEST, "digest": m_digest, "size": m_size}
            if full:
                entry["annotations"] = {REF_NAME: full}
            if full:
                self._name(entries, entry)
            elif not any(e["digest"] == m_digest for e in entries):
                entries.append(entry)
            if entries != before:  # the image may have been there under that name already
                self._write_index(index)
        return self._load(m_digest, self._manifest_entries())

    @staticmethod
    def _drop_ref(entries: list[dict[str, Any]], full: str) -> None:
        """Take a name off its image. An image losing its last name stays, unnamed (dangling,
        as docker has it), until rmi or image prune removes it."""
        for i, e in enumerate(entries):
            if e.get("annotations", {}).get(REF_NAME) == full:
                del entries[i]
                if not any(other["digest"] == e["digest"] for other in entries):
                    entries.insert(i, {k: v for k, v in e.items() if k != "annotations"})
                return

    @staticmethod
    def _name(entries: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        """Add a named entry, dropping the unnamed one its image may have had."""
        entries[:] = [e for e in entries if e["digest"] != entry["digest"] or REF_NAME in e.get("annotations", {})]
        entries.append(entry)

    def tag(self, src: str, dst: str) -> None:
        img = self.lookup(src)
        full = normalize(dst)
        with self.lock():
            index = self._read_index()
            entries = index.setdefault("manifests", [])
            self._drop_ref(entries, full)
            size = len(self.read_blob(img.manifest_digest))
            self._name(entries, {"mediaType": MANIFEST, "digest": img.manifest_digest, "size": size, "annotations": {REF_NAME: full}})
            self._write_index(index)
        self.journal.log("image", "tag", img.id, {"name": full})

    def untag_or_remove(self, ref: str, in_use: set[str], force: bool = False) -> list[str]:
        """Remove one name; when it was the image's last tag (or `ref` is an ID), remove the
        image with its names by digest. Returns lines like docker's `Untagged: ...` / `Deleted: ...`."""
        img = self.lookup(ref)
        wanted = with_tag(ref)
        out: list[str] = []
        with self.lock():
            index = self._read_index()
            entries = index.setdefault("manifests", [])
            names = img.refs + img.digests
            by_name = wanted in names
            if by_name and (len(img.refs) > 1 or wanted in img.digests and len(names) > 1):
                self._drop_ref(entries, wanted)
                self._write_index(index)
                self.log_removed(img, [wanted], False)
                return [f"Untagged: {wanted}"]
            if not by_name and len(img.refs) > 1 and not force:
                raise Conflict(f"image {ref} is referenced by several names ({', '.join(img.refs)}): remove them by name, or use -f")
            if img.id in in_use and not force:
                raise Conflict(f"image {ref} is in use by a container: remove the container first, or use -f")
            out += [f"Untagged: {r}" for r in names]
            entries[:] = [e for e in entries if e["digest"] != img.manifest_digest]
            self._write_index(index)
            out.append(f"Deleted: {img.id}")
        self.log_removed(img, img.refs, True)
        return out

    def now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
