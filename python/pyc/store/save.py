"""`pyc save`: images to docker-archive (docker save's layout), oci-archive (a tar of an OCI
layout) or oci-dir, each blob written once. load.py reads them back."""

from __future__ import annotations

import json
import os
import shutil
import tarfile

from pyc import progress
from pyc.errors import BadImage, InvalidArgument
from pyc.store import atomic
from pyc.store.images import MANIFEST, REF_NAME, Image, ImageStore
from pyc.store.refs import with_tag

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

FORMATS = ("docker-archive", "oci-archive", "oci-dir")
INDEX = "application/vnd.oci.image.index.v1+json"
LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def save(store: ImageStore, refs: list[str], out: str | int, fmt: str) -> None:
    """Write the images named `refs` to `out` (a path, or an fd to stream a tar to)."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    images = [(ref, store.lookup(ref)) for ref in refs]
    if fmt == "oci-dir":
        if not isinstance(out, str):
            raise InvalidArgument("oci-dir needs an output directory (-o DIR)")
        _save_oci_dir(store, images, out)
        return
    write = _write_docker if fmt == "docker-archive" else _write_oci

    def write_tar(fd: int) -> None:
        tar = _TarOut(fd)
        write(store, images, tar)
        tar.close()

    if isinstance(out, int):
        write_tar(out)
    else:
        atomic.write_through(out, write_tar)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class _TarOut:
    """A tar stream onto an fd, byte for byte what tarfile's PAX writer makes, but the blob
    bodies never pass through Python: the kernel copies them (pyc_core.copy_file_to), which
    also starts their writeback early so the final fsync is short."""

    def __init__(self, fd: int) -> None:
        self.fd, self.offset = fd, 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a pipe may take less than asked
            view = view[os.write(self.fd, view) :]
        self.offset += len(data)

    def header(self, name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
        info = tarfile.TarInfo(name)
        info.size, info.type, info.mtime = size, kind, 0
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")

    def add_bytes(self, name: str, data: bytes) -> None:
        self.write(self.header(name, len(data)) + data + _padding(len(data)))

    def add_dir(self, name: str) -> None:
        self.write(self.header(name, 0, tarfile.DIRTYPE))

    def add_file(self, name: str, path: str) -> None:
        import pyc_core

        size = os.path.getsize(path)
        self.write(self.header(name, size))
        with progress.task(f"{os.path.basename(path)[:12]}: Saving", size, _written_since(self.fd, self.offset)):
            copied = pyc_core.copy_file_to(path, self.fd)
        if copied != size:
            raise BadImage(f"{path} changed while it was saved")
        self.offset += size
        self.write(_padding(size))

    def close(self) -> None:
        """The end-of-archive blocks, padded to a whole record as tarfile does."""
        end = self.offset + 2 * tarfile.BLOCKSIZE
        self.write(tarfile.NUL * (2 * tarfile.BLOCKSIZE + -end % tarfile.RECORDSIZE))


def _padding(size: int) -> bytes:
    return tarfile.NUL * (-size % tarfile.BLOCKSIZE)


def _written_since(fd: int, start: int) -> Callable[[], int | None]:
    """A progress poll: bytes written to `fd` since `start` (None on a pipe, which has no offset)."""

    def get() -> int | None:
        try:
            return os.lseek(fd, 0, os.SEEK_CUR) - start
        except OSError:
            return None

    return get


def _write_docker(store: ImageStore, images: list[tuple[str, Image]], tar: _TarOut) -> None:
    from pyc.store import kept
    from pyc.store.ingest import temp_dir

    # A docker archive holds tars: a layer kept compressed as pulled is one once more here.
    with temp_dir(store) as scratch, kept.tars(store, [(d, desc) for _, img in images for d, desc in zip(img.diff_ids, img.layers, strict=False)], scratch) as tars:
        _write_docker_tars(store, images, tar, tars)


def _write_docker_tars(store: ImageStore, images: list[tuple[str, Image]], tar: _TarOut, tars: dict[str, str]) -> None:
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for ref, img in images:
        if len(img.diff_ids) != len(img.layers):
            raise BadImage(f"image {img.id[7:19]} has {len(img.layers)} layers but {len(img.diff_ids)} diff ids")
        hexes = [d.removeprefix("sha256:") for d in img.diff_ids]
        for h in hexes:
            if h not in written:
                written.add(h)
                tar.add_dir(h)
                tar.add_file(f"{h}/layer.tar", tars["sha256:" + h])
        cfg = img.config_digest.removeprefix("sha256:")
        if cfg + ".json" not in written:
            written.add(cfg + ".json")
            tar.add_bytes(cfg + ".json", store.read_blob(img.config_digest))
        tags = [with_tag(ref)] if with_tag(ref) in img.refs else list(img.refs)  # by ID: all its names
        manifest.append({"Config": cfg + ".json", "RepoTags": tags, "Layers": [f"{h}/layer.tar" for h in hexes]})
        for t in tags:
            name, _, tag = t.rpartition(":")
            if hexes:
                repositories.setdefault(name, {})[tag] = hexes[-1]
    tar.add_bytes("manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
    tar.add_bytes("repositories", json.dumps(repositories, separators=(",", ":")).encode())


def _oci_entries(store: ImageStore, images: list[tuple[str, Image]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The index entries (one per name) and the blobs to copy, each once."""
    entries: list[dict[str, Any]] = []
    blobs: dict[str, None] = {}
    for ref, img in images:
        size = os.path.getsize(store.paths.blob(img.manifest_digest))
        names: list[str | None] = [with_tag(ref)] if with_tag(ref) in img.refs else (list(img.refs) or [None])
        for name in names:
            e: dict[str, Any] = {"mediaType": MANIFEST, "digest": img.manifest_digest, "size": size}
            if name:
                e["annotations"] = {REF_NAME: name}
            entries.append(e)
        blobs.update(dict.fromkeys([img.manifest_digest, img.config_digest, *(layer["digest"] for layer in img.layers)]))
    return entries, list(blobs)


def _write_oci(store: ImageStore, images: list[tuple[str, Image]], tar: _TarOut) -> None:
    entries, blobs = _oci_entries(store, images)
    tar.add_bytes("oci-layout", LAYOUT)
    tar.add_bytes("index.json", json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}, separators=(",", ":")).encode())
    for d in ("blobs", "blobs/sha256"):
        tar.add_dir(d)
    for digest in blobs:
        tar.add_file("blobs/sha256/" + digest.removeprefix("sha256:"), store.paths.blob(digest))


def _save_oci_dir(store: ImageStore, images: list[tuple[str, Image]], out: str) -> None:
    if os.path.exists(out) and not (os.path.isdir(out) and not os.listdir(out)):
        raise InvalidArgument(f"{out} exists: oci-dir writes a new directory")
    entries, blobs = _oci_entries(store, images)
    tmp = atomic.temp_beside(out)
    try:
        os.makedirs(os.path.join(tmp, "blobs", "sha256"))
        for digest in blobs:
            dst = os.path.join(tmp, "blobs", "sha256", digest.removeprefix("sha256:"))
            with progress.task(f"{digest[7:19]}: Saving", os.path.getsize(store.paths.blob(digest)), progress.file_size(dst)):
                shutil.copyfile(store.paths.blob(digest), dst)
            with open(dst, "rb") as f:
                os.fsync(f.fileno())
        atomic.write_file(os.path.join(tmp, "oci-layout"), LAYOUT)
        atomic.write_file(os.path.join(tmp, "index.json"), json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}, separators=(",", ":")).encode())
        atomic.sync_dir(os.path.join(tmp, "blobs", "sha256"))
        if os.path.isdir(out):
            os.rmdir(out)
        os.rename(tmp, out)
    except BaseException:
        _remove(tmp)
        raise
    atomic.sync_dir(os.path.dirname(os.path.abspath(out)))
