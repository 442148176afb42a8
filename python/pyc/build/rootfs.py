"""An image's files as its container would see them, read from its unpacked layer dirs
(top-most first) without mounting anything: the top-most layer holding a path wins, a 0/0
character device there deletes it, a directory marked opaque hides what the layers below hold
in it. Symlinks are resolved inside the image's root, never outside."""

from __future__ import annotations

import os
import stat

OPAQUE_XATTR = "trusted.overlay.opaque"


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class Rootfs:
    def __init__(self, layers: list[str]) -> None:
        self.layers = layers  # top-most first

    def find(self, rel: str) -> tuple[str, os.stat_result] | None:
        """The real path of `rel` (a clean slash path, symlinks in it not resolved) in the
        layer that provides it, and its lstat; None when it does not exist. Each component is
        lstat'ed in turn, so no symlink of a layer is ever followed out of it."""
        parts = rel.split("/") if rel else []
        for layer in self.layers:
            found = _walk(layer, parts)
            if found is _BELOW:
                continue
            return found if isinstance(found, tuple) else None
        return None

    def resolve(self, rel: str, follow_last: bool = True) -> str:
        """`rel` with the symlinks in it (and in its last component when `follow_last`)
        resolved inside the root: a clean slash path."""
        todo = [p for p in rel.split("/") if p]
        done: list[str] = []
        hops = 0
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            cur = "/".join([*done, part])
            found = self.find(cur)
            if found is not None and stat.S_ISLNK(found[1].st_mode) and (todo or follow_last):
                hops += 1
                if hops > 40:
                    raise OSError(f"/{rel}: too many levels of symbolic links")
                target = os.readlink(found[0])
                if target.startswith("/"):
                    done = []
                todo = [p for p in target.split("/") if p] + todo
                continue
            done.append(part)
        return "/".join(done)

    def listdir(self, rel: str) -> list[str]:
        """The names in the directory `rel` (a clean path, resolved), merged across the layers."""
        names: set[str] = set()
        gone: set[str] = set()
        for layer in self.layers:
            found = _walk(layer, rel.split("/") if rel else [])
            if found is _BELOW:
                continue
            if not isinstance(found, tuple) or not stat.S_ISDIR(found[1].st_mode):
                break
            path = found[0]
            for name in os.listdir(path):
                if name in names or name in gone:
                    continue
                if _whiteout(os.lstat(os.path.join(path, name))):
                    gone.add(name)
                else:
                    names.add(name)
            if rel and opaque(path):
                break
        return sorted(names)


_BELOW = object()  # not in this layer: look in the one below
_GONE = object()  # deleted or hidden by this layer


def _walk(layer: str, parts: list[str]) -> tuple[str, os.stat_result] | object:
    """`parts` in one layer: (path, lstat), _BELOW, or _GONE (a whiteout, a non-directory
    where a directory was wanted, or an opaque directory without it)."""
    cur = layer
    if not parts:
        return (layer, os.lstat(layer))
    for k, part in enumerate(parts):
        path = os.path.join(cur, part)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return _GONE if k and opaque(cur) else _BELOW
        if _whiteout(st):
            return _GONE
        if k == len(parts) - 1:
            return (path, st)
        if not stat.S_ISDIR(st.st_mode):
            return _GONE
        cur = path
    return _BELOW
