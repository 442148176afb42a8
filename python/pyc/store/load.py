"""`pyc load`: the images of a docker-archive (docker save's layout), an oci-archive (a tar of an
OCI layout) or an oci-dir, plain or gzip/zstd, from a file or a pipe. Every blob is checked
against its digest and nothing lands in the store until all of it has checked out (ingest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import threading

from pyc import progress
from pyc.errors import BadImage, InvalidArgument
from pyc.paths import digest_hex
from pyc.store.images import REF_NAME, ImageStore, chain_ids
from pyc.store.ingest import Ingest, Layer
from pyc.store.refs import normalize

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import IO, Any

GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
BUF = 1 << 20  # tarfile copies in 16 KiB pieces by default; blobs are large
INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


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
    """The archive's layers into an Ingest batch: those that can be read in place wait to be
    unpacked side by side; a member that cannot is fed through a pipe, alone."""

    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest
        self.images: list[tuple[dict[str, Any], list[Layer | tuple[str, int]], list[str | None]]] = []

    def layer(self, src: _Source, name: str, diff_id: str, chains: list[str], blob_digest: str | None) -> Layer | tuple[str, int]:
        """Take in the layer `name` whose uncompressed digest must be `diff_id` (and whose
        digest as stored, when given, `blob_digest`); `chains` are the chain ids of the image's
        layers up to this one."""
        ingest = self.ingest
        chain, below = chains[-1], chains[-2::-1]
        label = f"{digest_hex(diff_id)[:12]}: Loading layer"
        have_blob = ingest.has_blob(diff_id)
        if have_blob and ingest.has_layer(chain):
            # Nothing to take in, but the archive must still be what it claims.
            with progress.task(label, src.size(name)) as bar:
                digest = _hash(src, name, bar)
            if digest in (blob_digest, diff_id):
                return ingest.stored(diff_id)
        in_place = src.in_place(name)
        if in_place is not None:
            layer = ingest.add(in_place, name, diff_id=diff_id, digest=blob_digest, below=below, keep=not have_blob)
            # Rust reads these at its own offsets: the bar follows the blob it writes (the
            # uncompressed layer, so its final size is only known up front for a plain tar).
            layer.label, layer.total = label, _plain_size(in_place)
            return layer
        ingest.run()  # the layers below first, for hardlinks to their files
        r, w = os.pipe()
        layer = ingest.add(r, name, diff_id=diff_id, digest=blob_digest, below=below, keep=not have_blob)
        layer.label, layer.total = label, None
        errors: list[BaseException] = []
        with progress.task(label, src.size(name)) as bar:

            def feed() -> None:
                try:
                    _feed(src, name, w, bar)
                except BaseException as e:  # reported after the join
                    errors.append(e)

            t = threading.Thread(target=feed, daemon=True)
            t.start()
            try:
                ingest.run()
            finally:
                os.close(r)
                t.join()
        if errors:
            e = errors[0]
            raise e if isinstance(e, BadImage) else BadImage(f"cannot read layer {name}: {e}")
        return layer

    def image(self, config: dict[str, Any], layers: list[Layer | tuple[str, int]], tags: list[str]) -> None:
        self.images.append((config, layers, list(tags) or [None]))

    def commit(self) -> list[str]:
        added = self.ingest.commit(self.images)
        names = [tag for _, _, tags in self.images for tag in tags]
        return [tag or img.id for tag, img in zip(names, added, strict=True)]


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


def _feed(src: _Source, name: str, fd: int, bar: progress.task) -> None:
    """Copy the member into the pipe; the reader (pyc_core) reads it to its end."""
    with src.open(name) as f, os.fdopen(fd, "wb", buffering=0) as out:
        while chunk := f.read(BUF):
            bar.advance(len(chunk))
            out.write(chunk)


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
        chains = chain_ids(diff_ids)
        layers = [loader.layer(src, name, diff_id, chains[: n + 1], None) for n, (name, diff_id) in enumerate(zip(layer_names, diff_ids, strict=False))]
        loader.image(config, layers, [normalize(t) for t in entry.get("RepoTags") or []])


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
        chains = chain_ids(diff_ids)
        layers = [loader.layer(src, _blob_name(desc["digest"]), diff_id, chains[: n + 1], desc["digest"]) for n, (desc, diff_id) in enumerate(zip(layer_descs, diff_ids, strict=False))]
        loader.image(config, layers, [normalize(n) for n in names])


class _Prefixed:
    """A stream whose first bytes were read already (`head`), then the rest of `f`."""

    def __init__(self, head: bytes, f: Any) -> None:
        self.head, self.f = head, f

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = (self.head, b"") if n < 0 or n >= len(self.head) else (self.head[:n], self.head[n:])
            return out
        data: bytes = self.f.read(n)
        return data

    def peek(self, n: int) -> bytes:
        return self.head or self.f.peek(n)

    def fileno(self) -> int:
        fd: int = self.f.fileno()
        return fd

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> _Prefixed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_head(fd: int, n: int) -> bytes:
    """The first `n` bytes of a stream (fewer at its end)."""
    head = b""
    while len(head) < n:
        chunk = os.read(fd, n - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _plain_tar(source: str | int, tmp: str, head: bytes = b"") -> str:
    """A path to the archive as a plain tar: the file itself, or (stdin, gzip, zstd) a copy in
    `tmp`, uncompressed, since loading reads the archive out of order. `head`: bytes of the fd
    `source` read already."""
    import gzip
    import subprocess

    f: Any = open(source, "rb", buffering=BUF) if isinstance(source, str) else _Prefixed(head, os.fdopen(os.dup(source), "rb", buffering=BUF))
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
    """Load every image in `source` (a tar path, an oci-dir, or an fd to read a tar from), or
    apply the delta bundle it is. Returns the names loaded (an image ID for an image without a
    name)."""
    from pyc.store import bundle

    if isinstance(source, str) and not os.path.exists(source):
        raise InvalidArgument(f"{source}: no such file or directory")
    head = b""
    if isinstance(source, str) and os.path.isfile(source):
        with open(source, "rb") as f:
            if bundle.is_bundle(f.read(len(bundle.MAGIC))):
                return bundle.apply(store, source)
    elif isinstance(source, int):
        head = _read_head(source, len(bundle.MAGIC))
        if bundle.is_bundle(head):
            return bundle.apply(store, source, head)
    with Ingest(store) as ingest:
        loader = _Loader(ingest)
        if isinstance(source, str) and os.path.isdir(source):
            src = _Source(None, source)
            if not src.has("oci-layout"):
                raise BadImage(f"{source} is not an OCI layout (no oci-layout file)")
            _load_oci(src, loader)
        else:
            path = _plain_tar(source, ingest.tmp, head)
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
