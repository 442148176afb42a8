"""What the store knows of its images as registries hold them, beside pyc's own uncompressed
layers (whose blobs are named by their diff id):

- `distribution/layers/<diff id hex>`: the compressed forms of that layer seen in registries,
  each `{"digest", "mediaType", "size", "repositories"}` (the repositories known to hold it),
  and `tarSize` for a form pulled (whose blob the store may keep: kept.py); what lets a push
  skip a layer a registry has (HEAD) or mount it from another repository of the same
  registry, instead of compressing and sending it again.
- `distribution/images/<image id hex>`: the manifests the image was pulled as,
  `{"digest", "mediaType", "repository"}`, their bytes kept in blobs/: pushing an unchanged
  pulled image back sends the very manifest it came as (same digest), and no layer.

The names by digest (docker's RepoDigests, `repo@sha256:...`) are index.json's names like any
other. Written under the store lock, each file atomically; gc drops what no image needs."""

from __future__ import annotations

import json
import os

from pyc.paths import digest_hex
from pyc.store import atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyc.store.images import ImageStore


def _dir(store: ImageStore, kind: str) -> str:
    return os.path.join(store.paths.root, "distribution", kind)


def _read(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (FileNotFoundError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _write(path: str, entries: list[dict[str, Any]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic.write_file(path, json.dumps(entries, separators=(",", ":")).encode())


def layer_forms(store: ImageStore, diff_id: str) -> list[dict[str, Any]]:
    """The compressed forms known for the layer `diff_id`, most recently seen first."""
    return _read(os.path.join(_dir(store, "layers"), digest_hex(diff_id)))


def add_layer_form(store: ImageStore, diff_id: str, digest: str, media_type: str, size: int, repository: str | None, tar_size: int | None = None) -> None:
    """Remember that `digest` (compressed as `media_type`, `size` bytes; a tar of `tar_size`
    when known) is the layer `diff_id`, held by `repository` (`host/path`) when given. Under
    the store lock."""
    path = os.path.join(_dir(store, "layers"), digest_hex(diff_id))
    entries = _read(path)
    entry = next((e for e in entries if e.get("digest") == digest), None)
    if entry is None:
        entry = {"digest": digest, "mediaType": media_type, "size": size, "repositories": []}
    else:
        entries.remove(entry)
    repos: list[str] = [r for r in entry.get("repositories", []) if isinstance(r, str)]
    if repository and repository not in repos:
        repos.insert(0, repository)
    entry["repositories"] = repos
    if tar_size is not None:
        entry["tarSize"] = tar_size
    new = [entry, *entries]
    if new != _read(path):
        _write(path, new)


def image_manifests(store: ImageStore, image_id: str) -> list[dict[str, Any]]:
    """The manifests `image_id` was pulled as (their bytes in blobs/), most recent first."""
    return _read(os.path.join(_dir(store, "images"), digest_hex(image_id)))


def add_image_manifest(store: ImageStore, image_id: str, manifest: bytes, media_type: str, repository: str) -> str:
    """Keep the manifest `image_id` was pulled (or pushed) as from `repository`; its digest."""
    digest, _ = store.write_blob(manifest)
    path = os.path.join(_dir(store, "images"), digest_hex(image_id))
    entries = [e for e in _read(path) if not (e.get("digest") == digest and e.get("repository") == repository)]
    new = [{"digest": digest, "mediaType": media_type, "repository": repository}, *entries]
    if new != _read(path):
        _write(path, new)
    return digest


def collect(store: ImageStore, image_ids: set[str], diff_ids: set[str]) -> set[str]:
    """Drop the records of images and layers the store no longer has; the manifest blobs the
    others still need (gc keeps them)."""
    keep: set[str] = set()
    for kind, live in (("images", image_ids), ("layers", diff_ids)):
        d = _dir(store, kind)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            continue
        for name in names:
            path = os.path.join(d, name)
            if f"sha256:{name}" not in live:
                os.unlink(path)
            elif kind == "images":
                keep.update(str(e.get("digest")) for e in _read(path))
    return keep
