"""COPY and ADD: the files a step copies, staged in a directory laid out as the layer it makes
(parents included, with the metadata the image gives them), and their checksum, the step's
cache input: each path with its type, mode, owner where it is kept, link target and content
digest, never its mtime."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time

from pyc.build.context import Context, _clean
from pyc.build.rootfs import Rootfs
from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Source:
    """One path to copy: `real` where it is read, `rel` its name under the destination, its
    lstat, and whether its owner is kept (files of another stage or image) or not (the
    context's: root's unless --chown)."""

    __slots__ = ("real", "rel", "st", "keep_owner")

    def __init__(self, real: str, rel: str, st: os.stat_result, keep_owner: bool) -> None:
        self.real, self.rel, self.st, self.keep_owner = real, rel, st, keep_owner


class FileDigests:
    """Content digests of files, kept across builds by path, device, inode, size and times."""

    def __init__(self, known: dict[str, list[object]]) -> None:
        self.known = known
        self.changed = False

    def digest(self, path: str, st: os.stat_result) -> str:
        ident: list[object] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        got = self.known.get(path)
        if got is not None and got[:5] == ident:
            return str(got[5])
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = h.hexdigest()
        self.known[path] = [*ident, digest]
        self.changed = True
        return digest


def from_context(ctx: Context, patterns: list[str], where: Callable[[str], InvalidArgument]) -> list[tuple[str, list[Source]]]:
    """Each source pattern's matches, each match with what it copies: (match's base name,
    sources relative to what goes into the destination)."""
    out: list[tuple[str, list[Source]]] = []
    for pattern in patterns:
        if "://" in pattern:
            raise where(f"{pattern}: a URL is a source for ADD only, over http or https")
        matches = ctx.glob(pattern)
        if not matches:
            raise where(f"{pattern}: not found in the build context (or left out by .dockerignore)")
        for m in matches:
            full = os.path.join(ctx.root, m) if m else ctx.root
            real = os.path.realpath(full)
            if real != ctx.root and not real.startswith(ctx.root + "/"):
                raise where(f"{pattern}: {m} points outside the build context")
            st = os.stat(real)
            if stat.S_ISDIR(st.st_mode):
                srcs = []
                for rel in ctx.walk(os.path.relpath(real, ctx.root) if real != ctx.root else ""):
                    base = os.path.relpath(real, ctx.root) if real != ctx.root else ""
                    sub = rel[len(base) :].lstrip("/") if base else rel
                    p = os.path.join(ctx.root, rel) if rel else ctx.root
                    srcs.append(Source(p, sub, os.lstat(p) if sub else st, False))
                out.append((os.path.basename(m) or ".", srcs))
            else:
                out.append((os.path.basename(m), [Source(real, "", st, False)]))
    return out


def from_rootfs(fs: Rootfs, patterns: list[str], where: Callable[[str], InvalidArgument]) -> list[tuple[str, list[Source]]]:
    """The same from another stage's or image's files (owners kept)."""
    out: list[tuple[str, list[Source]]] = []
    for pattern in patterns:
        rel = fs.resolve(_clean(pattern))
        if any(ch in pattern for ch in "*?["):
            raise where(f"{pattern}: wildcards in COPY --from are not supported yet")
        found = fs.find(rel)
        if found is None:
            raise where(f"{pattern}: not found in the source stage")
        real, st = found
        if stat.S_ISDIR(st.st_mode):
            srcs = [Source(real, "", st, True)]
            stack = [""]
            while stack:
                sub = stack.pop()
                d = f"{rel}/{sub}".strip("/") if sub else rel
                for name in fs.listdir(d):
                    child = f"{sub}/{name}" if sub else name
                    hit = fs.find(f"{d}/{name}".strip("/"))
                    if hit is None:
                        continue
                    srcs.append(Source(hit[0], child, hit[1], True))
                    if stat.S_ISDIR(hit[1].st_mode):
                        stack.append(child)
            srcs.sort(key=lambda s: s.rel)
            out.append((os.path.basename(rel) or ".", srcs))
        else:
            out.append((os.path.basename(rel), [Source(real, "", st, True)]))
    return out


def checksum(groups: list[tuple[str, list[Source]]], digests: FileDigests) -> str:
    h = hashlib.sha256()
    for base, srcs in groups:
        h.update(f"group {base}\n".encode())
        for s in srcs:
            st = s.st
            owner = f"{st.st_uid}:{st.st_gid}" if s.keep_owner else "-"
            if stat.S_ISREG(st.st_mode):
                what = "f " + digests.digest(s.real, st)
            elif stat.S_ISLNK(st.st_mode):
                what = "l " + os.readlink(s.real)
            elif stat.S_ISDIR(st.st_mode):
                what = "d"
            else:
                what = f"o {st.st_mode:o} {st.st_rdev}"
            h.update(f"{s.rel}\0{stat.S_IMODE(st.st_mode):o}\0{owner}\0{what}\n".encode())
    return h.hexdigest()


class Stager:
    """Lays out a step's files in `stage` as the layer will hold them: the destination's
    parents as the image has them (or made 0755), each source with its mode (or --chmod), its
    owner (kept, --chown's or root's), its mtime clamped to `epoch` when given."""

    def __init__(self, stage: str, image: Rootfs, chown: tuple[int, int] | None, chmod: int | None, epoch: int | None) -> None:
        self.stage, self.image, self.chown, self.chmod, self.epoch = stage, image, chown, chmod, epoch
        self.made: list[tuple[str, os.stat_result | None]] = []
        self.real = os.path.realpath(stage)

    def parents(self, rel: str) -> None:
        """Make the directories `rel` (a resolved clean path) in the stage."""
        parts = rel.split("/") if rel else []
        for k in range(1, len(parts) + 1):
            sub = "/".join(parts[:k])
            path = self._path(sub)
            if os.path.isdir(path) and not os.path.islink(path):
                continue
            found = self.image.find(sub)
            if found is not None and not stat.S_ISDIR(found[1].st_mode):
                raise InvalidArgument(f"/{sub} is not a directory in the image")
            os.mkdir(path)
            st = found[1] if found is not None else None
            if st is not None:
                os.chmod(path, stat.S_IMODE(st.st_mode))
                os.lchown(path, st.st_uid, st.st_gid)
            else:
                os.chmod(path, 0o755)
                uid, gid = self.chown or (0, 0)
                os.lchown(path, uid, gid)
            self.made.append((path, st))

    def put(self, src: Source, dest: str) -> None:
        """Copy one source to `dest` (a clean path in the stage, its parent made)."""
        path = self._path(dest)
        st = src.st
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if os.path.islink(path) or not os.path.isdir(path):
                self._clear(path)
                os.mkdir(path)
        elif stat.S_ISLNK(st.st_mode):
            self._clear(path)
            os.symlink(os.readlink(src.real), path)
        elif stat.S_ISREG(st.st_mode):
            self._clear(path)
            shutil.copyfile(src.real, path, follow_symlinks=False)
        else:
            return  # devices, fifos and sockets of a context are not copied
        if self.chown is not None:
            uid, gid = self.chown
        elif src.keep_owner:
            uid, gid = st.st_uid, st.st_gid
        else:
            uid, gid = 0, 0
        os.lchown(path, uid, gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(path, self.chmod if self.chmod is not None else mode)
        mtime = st.st_mtime_ns
        if self.epoch is not None:
            mtime = min(mtime, self.epoch * 10**9)
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            self.made.append((path, st))

    def write(self, dest: str, content: bytes) -> None:
        """A file of `content` at `dest` (a here-document): 0644 (or --chmod), root's (or
        --chown's), its mtime the epoch's or now."""
        path = self._path(dest)
        self._clear(path)
        with open(path, "wb") as f:
            f.write(content)
        uid, gid = self.chown or (0, 0)
        os.lchown(path, uid, gid)
        os.chmod(path, self.chmod if self.chmod is not None else 0o644)
        mtime = self.epoch * 10**9 if self.epoch is not None else time.time_ns()
        os.utime(path, ns=(mtime, mtime))

    def _path(self, rel: str) -> str:
        """`rel` in the stage, refused where a symlink copied earlier in the step would lead
        the write out of it (COPY link-to-etc dir/ /x/ with dir/ holding link-to-etc/...)."""
        path = os.path.join(self.stage, rel)
        parent = os.path.realpath(os.path.dirname(path))
        if parent != self.real and not parent.startswith(self.real + "/"):
            raise InvalidArgument(f"/{rel}: a symlink copied in this step is in the way")
        return path

    @staticmethod
    def _clear(path: str) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)

    def finish(self) -> None:
        """Directories' times last, deepest first (writing in them changed them)."""
        for path, st in sorted(self.made, key=lambda m: m[0].count("/"), reverse=True):
            if st is not None:
                mtime = st.st_mtime_ns
            else:
                mtime = self.epoch * 10**9 if self.epoch is not None else time.time_ns()
            if self.epoch is not None:
                mtime = min(mtime, self.epoch * 10**9)
            os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
