"""`pyc save` / `pyc load`: images to and from docker-archive (docker save's layout), oci-archive
(a tar of an OCI layout) and oci-dir. Loading checks every blob against its digest and lands
nothing in the store until all of it has checked out."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tarfile
import threading

from pyc import progress
from pyc.errors import BadImage, InvalidArgument
from pyc.paths import digest_hex
from pyc.store import atomic
from pyc.store.gc import collect_tmp
from pyc.store.images import MANIFEST, REF_NAME, Image, ImageStore, chain_ids
from pyc.store.layers import commit_layer, temp_dir
from pyc.store.refs import normalize, with_tag

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

FORMATS = ("docker-archive", "oci-archive", "oci-dir")
GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
BUF = 1 << 20  # tarfile copies in 16 KiB pieces by default; blobs are large
INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'

# -- save ---------------------------------------------------------------------------------


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
    if isinstance(out, int):
        tar = _TarOut(out)
        write(store, images, tar)
        tar.close()
        return
    tmp = _temp_beside(out)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            tar = _TarOut(fd)
            write(store, images, tar)
            tar.close()
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, out)
    except BaseException:
        _remove(tmp)
        raise
    atomic.sync_dir(os.path.dirname(os.path.abspath(out)))


def _temp_beside(out: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(out)), f".{os.path.basename(out)}.tmp-{os.getpid()}")


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
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    for ref, img in images:
        hexes = [d.removeprefix("sha256:") for d in (layer["digest"] for layer in img.layers)]
        for h in hexes:  # pyc's layer blobs are uncompressed: blob digest == diff_id
            if h not in written:
                written.add(h)
                tar.add_dir(h)
                tar.add_file(f"{h}/layer.tar", store.paths.blob("sha256:" + h))
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
    tmp = _temp_beside(out)
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


# -- load ---------------------------------------------------------------------------------


class _Source:
    """What an archive holds, by name: members of a tar, or files of a directory."""

    def __init__(self, tar: tarfile.TarFile | None, root: str | None) -> None:
        self.tar, self.root = tar, root
        self.members: dict[str, tarfile.TarInfo] = {}
        if tar is not None:
            for m in tar.getmembers():
                self.members[os.path.normpath(m.name).lstrip("/")] = m

    def has(self, name: str) -> bool:
        if self.root is not None:
            return os.path.isfile(os.path.join(self.root, name))
        m = self.members.get(os.path.normpath(name))
        return m is not None and (m.isfile() or m.issym() or m.islnk())

    def open(self, name: str) -> IO[bytes]:
        if self.root is not None:
            try:
                return open(os.path.join(self.root, name), "rb", buffering=BUF)
            except FileNotFoundError:
                raise BadImage(f"{name} is missing from the archive") from None
        assert self.tar is not None
        m = self.members.get(os.path.normpath(name))
        f = self.tar.extractfile(m) if m is not None else None
        if f is None:
            raise BadImage(f"{name} is missing from the archive")
        return f

    def size(self, name: str) -> int | None:
        if self.root is not None:
            try:
                return os.path.getsize(os.path.join(self.root, name))
            except OSError:
                return None
        m = self.members.get(os.path.normpath(name))
        return m.size if m is not None else None

    def in_place(self, name: str) -> str | tuple[str, int, int] | None:
        """The member as pyc_core reads it without Python in the way: a file, or (the tar,
        offset, length); None when it is no plain file (a link in the tar, a sparse file)."""
        if self.root is not None:
            path = os.path.join(self.root, name)
            return path if os.path.isfile(path) else None
        m = self.members.get(os.path.normpath(name))
        if self.tar is None or not self.tar.name or m is None or not m.isreg() or m.issparse():
            return None
        return (str(self.tar.name), m.offset_data, m.size)

    def read(self, name: str, digest: str | None = None) -> bytes:
        with self.open(name) as f:
            data = f.read()
        if digest is not None and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise BadImage(f"{name} does not match its digest {digest}")
        return data

    def json(self, name: str, digest: str | None = None) -> Any:
        try:
            return json.loads(self.read(name, digest))
        except ValueError as e:
            raise BadImage(f"{name} is not valid JSON: {e}") from None


class _Loader:
    """Layers checked and unpacked under the temp dir; moved into the store by commit()."""

    def __init__(self, store: ImageStore, tmp: str) -> None:
        self.store, self.tmp = store, tmp
        self.blobs: dict[str, tuple[str, int]] = {}  # diff_id -> (temp blob path, size)
        self.layers: dict[str, str] = {}  # chain id -> temp unpacked dir
        self.images: list[tuple[dict[str, Any], list[tuple[str, int]], list[str]]] = []
        # (source, dest, blob, name, diff_id, blob digest, chain ids below, top-most first)
        self.pending: list[tuple[str | tuple[str, int, int], str, str, str, str, str | None, list[str]]] = []
        self.sizes: dict[str, int] = {}  # diff_id -> size, of the layers unpack_pending did
        self.made = 0

    def layer(self, src: _Source, name: str, diff_id: str, chains: list[str], blob_digest: str | None) -> int:
        """Take in the layer `name` whose uncompressed digest must be `diff_id` (and whose
        digest as stored, when given, `blob_digest`); `chains` are the chain ids of the image's
        layers up to this one. Returns the uncompressed size."""
        chain, below = chains[-1], chains[-2::-1]
        store = self.store
        have_blob = store.has_blob(diff_id) or diff_id in self.blobs
        have_dir = os.path.isdir(store.paths.layer(chain)) or chain in self.layers
        label = f"{digest_hex(diff_id)[:12]}: Loading layer"
        if have_blob and have_dir:
            # Nothing to take in, but the archive must still be what it claims.
            with progress.task(label, src.size(name)) as bar:
                digest = _hash(src, name, bar)
            if digest in (blob_digest, diff_id):
                return self._size(diff_id)
        n = self.made = self.made + 1  # a fresh name: several layers may be pending
        dest = os.path.join(self.tmp, f"layer-{n}")
        blob = os.path.join(self.tmp, f"blob-{n}")
        os.mkdir(dest)
        in_place = src.in_place(name)
        if in_place is None:
            self.unpack_pending()  # the layers below, for hardlinks to their files
            with progress.task(label, src.size(name)) as bar:
                got, size, raw = _unpack(src, name, dest, blob, bar, [self._dir(c) for c in below])
            _check(name, got, raw, diff_id, blob_digest)
        else:
            # Unpacked with the others by unpack_pending, side by side; the size is known then.
            self.pending.append((in_place, dest, blob, name, diff_id, blob_digest, below))
            size = -1
        if not have_blob:
            self.blobs[diff_id] = (blob, size)
        if not have_dir:
            self.layers[chain] = dest
        return size

    def _dir(self, chain: str) -> str:
        """The unpacked dir of a layer: taken in by this load, or in the store."""
        return self.layers.get(chain) or self.store.paths.layer(chain)

    def unpack_pending(self) -> None:
        import pyc_core

        if not self.pending:
            return
        with contextlib.ExitStack() as bars:
            for source, _, blob, _, diff_id, *_ in self.pending:
                # Rust reads these at its own offsets: the bar follows the blob it writes (the
                # uncompressed layer, so its final size is only known up front for a plain tar).
                total = _plain_size(source)
                bars.enter_context(progress.task(f"{digest_hex(diff_id)[:12]}: Loading layer", total, progress.file_size(blob)))
            # Jobs keep the archive's order, so a layer's lowers come before it (Rust makes the
            # hardlinks to their files in that order, after the batch).
            jobs = [(source, dest, blob, [self._dir(c) for c in below]) for source, dest, blob, *_, below in self.pending]
            results = pyc_core.unpack_layers(jobs)
        for (_, _, blob, name, diff_id, blob_digest, _), r in zip(self.pending, results, strict=False):
            if isinstance(r, pyc_core.ArchiveError):
                raise BadImage(f"layer {name}: {r}")
            if isinstance(r, Exception):
                raise r
            got, size, raw = r
            _check(name, got, raw, diff_id, blob_digest)
            self.sizes[diff_id] = size
            if self.blobs.get(diff_id, ("", 0))[0] == blob:
                self.blobs[diff_id] = (blob, size)
        self.pending = []

    def _size(self, diff_id: str) -> int:
        if diff_id in self.blobs:
            return self.blobs[diff_id][1]
        return os.path.getsize(self.store.paths.blob(diff_id))

    def image(self, config: dict[str, Any], layers: list[tuple[str, int]], tags: list[str]) -> None:
        self.images.append((config, layers, tags))

    def commit(self) -> list[str]:
        store = self.store
        loaded: list[str] = []
        self.unpack_pending()
        self.images = [(c, [(d, self.sizes[d] if s < 0 else s) for d, s in layers], t) for c, layers, t in self.images]
        with store.lock():
            for diff_id, (path, _) in self.blobs.items():
                if not store.has_blob(diff_id):
                    os.rename(path, store.paths.blob(diff_id))
            for chain, path in self.layers.items():
                commit_layer(store, path, chain)
            for config, layers, tags in self.images:
                for tag in tags or [""]:
                    img = store.add(config, layers, tag or None)
                    loaded.append(tag or img.id)
        return loaded


def _check(name: str, diff_id: str, raw: str, want_diff_id: str, want_digest: str | None) -> None:
    if want_digest is not None and raw != want_digest:
        raise BadImage(f"layer {name} does not match its digest {want_digest}")
    if diff_id != want_diff_id:
        raise BadImage(f"layer {name} does not match its diff id {want_diff_id} (got {diff_id})")


def _compressed(head: bytes) -> bool:
    """Whether the first four bytes of a stream are gzip's or zstd's magic."""
    return head[:2] == GZIP_MAGIC or head[:4] == ZSTD_MAGIC


def _plain_size(source: str | tuple[str, int, int]) -> int | None:
    """The size of an uncompressed layer member; None if it is gzip or zstd."""
    path, offset, size = (source, 0, os.path.getsize(source)) if isinstance(source, str) else source
    with open(path, "rb") as f:
        f.seek(offset)
        head = f.read(4)
    return None if _compressed(head) else size


def _feed(src: _Source, name: str, fd: int, hasher: Any, bar: progress.task) -> None:
    """Copy the member into the pipe, hashing it; keep hashing if the reader stops early."""
    with src.open(name) as f:
        out: IO[bytes] | None = os.fdopen(fd, "wb", buffering=0)
        try:
            while chunk := f.read(BUF):
                hasher.update(chunk)
                bar.advance(len(chunk))
                if out is not None:
                    try:
                        out.write(chunk)
                    except BrokenPipeError:
                        out.close()
                        out = None
        finally:
            if out is not None:
                try:
                    out.close()
                except BrokenPipeError:
                    pass


def _unpack(src: _Source, name: str, dest: str, blob: str, bar: progress.task, lowers: list[str]) -> tuple[str, int, str]:
    """unpack_layer on a tar member that cannot be read in place (a link in the tar, a sparse
    file), fed through a pipe: (diff id, uncompressed size, digest of the member)."""
    if src.root is not None:  # an OCI dir's blob is read in place whenever it is a file
        raise BadImage(f"{name} is missing from the archive")
    hasher = hashlib.sha256()
    r, w = os.pipe()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _feed(src, name, w, hasher, bar)
        except BaseException as e:  # reported after the join
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        diff_id, size = _unpack_layer(r, dest, blob, name, lowers)
    finally:
        os.close(r)
        t.join()
    if errors:
        e = errors[0]
        raise e if isinstance(e, BadImage) else BadImage(f"cannot read layer {name}: {e}")
    return diff_id, size, "sha256:" + hasher.hexdigest()


def _unpack_layer(source: str | int, dest: str, blob: str, name: str, lowers: list[str]) -> tuple[str, int]:
    import pyc_core

    try:
        return pyc_core.unpack_layer(source, dest, blob, lowers)
    except pyc_core.ArchiveError as e:
        raise BadImage(f"layer {name}: {e}") from None


def _hash(src: _Source, name: str, bar: progress.task) -> str:
    h = hashlib.sha256()
    with src.open(name) as f:
        while chunk := f.read(BUF):
            bar.advance(len(chunk))
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _diff_ids(config: Any, n: int, what: str) -> list[str]:
    try:
        diff_ids = [str(d) for d in config["rootfs"]["diff_ids"]]
    except (KeyError, TypeError):
        raise BadImage(f"{what}: the config has no rootfs.diff_ids") from None
    if len(diff_ids) != n:
        raise BadImage(f"{what}: {n} layers but {len(diff_ids)} diff ids")
    return diff_ids


def _load_docker(src: _Source, loader: _Loader) -> None:
    manifest = src.json("manifest.json")
    if not isinstance(manifest, list):
        raise BadImage("manifest.json is not a list")
    for entry in manifest:
        try:
            cfg_name, layer_names = str(entry["Config"]), [str(x) for x in entry["Layers"]]
        except (KeyError, TypeError):
            raise BadImage("manifest.json: an entry without Config or Layers") from None
        # The config's name is its digest: <hex>.json (docker < 25) or blobs/sha256/<hex>.
        hexpart = os.path.basename(cfg_name).removesuffix(".json")
        config = src.json(cfg_name, "sha256:" + hexpart if len(hexpart) == 64 else None)
        diff_ids = _diff_ids(config, len(layer_names), cfg_name)
        layers = []
        chains = chain_ids(diff_ids)
        for n, (name, diff_id) in enumerate(zip(layer_names, diff_ids, strict=False)):
            layers.append((diff_id, loader.layer(src, name, diff_id, chains[: n + 1], None)))
        tags = [normalize(t) for t in entry.get("RepoTags") or []]
        loader.image(config, layers, tags)


def _oci_manifests(src: _Source, index: Any, depth: int = 0) -> list[tuple[dict[str, Any], list[str]]]:
    """(manifest descriptor, names) for each image manifest, nested indexes followed."""
    out: list[tuple[dict[str, Any], list[str]]] = []
    for d in index.get("manifests") or []:
        ann = d.get("annotations") or {}
        name = ann.get("io.containerd.image.name") or ann.get(REF_NAME)
        if name and ":" not in name and "/" not in name and "." not in name:
            name = None  # a bare tag (skopeo's oci: transport) names no repository
        if d.get("mediaType") in (INDEX, DOCKER_MANIFEST_LIST) and depth < 2:
            nested = src.json(_blob_name(d["digest"]), d["digest"])
            for m, names in _oci_manifests(src, nested, depth + 1):
                out.append((m, names or ([name] if name else [])))
                break  # one platform: the first, as an engine for this machine
        else:
            out.append((d, [name] if name else []))
    return out


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{digest_hex(digest)}"


def _load_oci(src: _Source, loader: _Loader) -> None:
    index = src.json("index.json")
    merged: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for d, names in _oci_manifests(src, index):
        prev = merged.setdefault(d["digest"], (d, []))
        prev[1].extend(n for n in names if n not in prev[1])
    for digest, (_, names) in merged.items():
        manifest = src.json(_blob_name(digest), digest)
        try:
            cfg_digest, layer_descs = manifest["config"]["digest"], list(manifest["layers"])
        except (KeyError, TypeError):
            raise BadImage(f"manifest {digest} has no config or layers") from None
        config = src.json(_blob_name(cfg_digest), cfg_digest)
        diff_ids = _diff_ids(config, len(layer_descs), f"manifest {digest}")
        layers = []
        chains = chain_ids(diff_ids)
        for n, (desc, diff_id) in enumerate(zip(layer_descs, diff_ids, strict=False)):
            layers.append((diff_id, loader.layer(src, _blob_name(desc["digest"]), diff_id, chains[: n + 1], desc["digest"])))
        loader.image(config, layers, [normalize(n) for n in names])


def _plain_tar(source: str | int, tmp: str) -> str:
    """A path to the archive as a plain tar: the file itself, or (stdin, gzip, zstd) a copy in
    `tmp`, uncompressed, since loading reads the archive out of order."""
    import gzip
    import subprocess

    f: Any = open(source, "rb", buffering=BUF) if isinstance(source, str) else os.fdopen(os.dup(source), "rb", buffering=BUF)
    with f:
        head = f.peek(4)[:4]
        if isinstance(source, str) and not _compressed(head):
            return source
        out = os.path.join(tmp, "archive.tar")
        total = os.fstat(f.fileno()).st_size if isinstance(source, str) else None
        # The bar follows the compressed input: the fd's offset, shared with the reader.
        with open(out, "wb", buffering=BUF) as o, progress.task("Decompressing", total, progress.offset(f.fileno())):
            if head[:2] == GZIP_MAGIC:
                try:
                    with gzip.open(f) as g:
                        shutil.copyfileobj(g, o, BUF)
                except (OSError, EOFError) as e:
                    raise BadImage(f"the archive is not valid gzip: {e}") from None
            elif head == ZSTD_MAGIC:
                o.flush()
                p = subprocess.Popen(["zstd", "-dcq"], stdin=subprocess.PIPE, stdout=o, stderr=subprocess.PIPE)
                assert p.stdin is not None and p.stderr is not None
                try:
                    shutil.copyfileobj(f, p.stdin, BUF)
                except BrokenPipeError:
                    pass
                p.stdin.close()
                err = p.stderr.read().decode(errors="replace").strip().splitlines()
                if p.wait() != 0:
                    raise BadImage(f"the archive is not valid zstd: {err[-1] if err else 'zstd failed'}")
            else:
                shutil.copyfileobj(f, o, BUF)
        return out


def load(store: ImageStore, source: str | int) -> list[str]:
    """Load every image in `source` (a tar path, an oci-dir, or an fd to read a tar from).
    Returns the names loaded (an image ID for an image without a name)."""
    if isinstance(source, str) and not os.path.exists(source):
        raise InvalidArgument(f"{source}: no such file or directory")
    store.ensure_layout()
    collect_tmp(store)
    with temp_dir(store) as tmp:
        loader = _Loader(store, tmp)
        if isinstance(source, str) and os.path.isdir(source):
            src = _Source(None, source)
            if not src.has("oci-layout"):
                raise BadImage(f"{source} is not an OCI layout (no oci-layout file)")
            _load_oci(src, loader)
        else:
            path = _plain_tar(source, tmp)
            try:
                tar = tarfile.open(path, "r:", bufsize=BUF)
            except (tarfile.TarError, EOFError) as e:
                raise BadImage(f"not an image archive (docker-archive or oci-archive): {e}") from None
            with tar:
                try:
                    src = _Source(tar, None)
                    if src.has("manifest.json"):
                        _load_docker(src, loader)
                    elif src.has("oci-layout") and src.has("index.json"):
                        _load_oci(src, loader)
                    else:
                        raise BadImage("not an image archive: no manifest.json (docker-archive) nor oci-layout (oci-archive)")
                except (tarfile.TarError, EOFError) as e:
                    raise BadImage(f"the archive is truncated or malformed: {e}") from None
        if not loader.images:
            raise BadImage("the archive holds no image")
        return loader.commit()
