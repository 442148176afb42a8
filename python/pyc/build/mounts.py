"""RUN --mount: what a step's container gets besides its image, never kept in its layer.

    type=cache,target=DIR[,id=ID,mode=0755,uid=0,gid=0]  a directory kept across builds (by id)
    type=tmpfs,target=DIR[,size=64m]                      an empty tmpfs
    type=bind,target=DIR[,source=PATH,from=STAGE|IMAGE,rw]  the build context's PATH (or the
                                                          stage's or image's), read-only; rw: a
                                                          copy the step may write, thrown away
    type=secret,id=ID[,target=FILE,required=true]         --secret id=ID,src=FILE, read-only

A bind's files are in the step's cache key (their checksum); a secret's never are. A bind of a
stage or an image, or a rw one, is staged before the step runs (a read-only one as hardlinks of
the layers' files, a rw one as a copy: the step's writes reach neither the context nor the store)."""

from __future__ import annotations

import hashlib
import os
import stat

from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyc.build.context import Context
    from pyc.build.copy import FileDigests, Source
    from pyc.build.rootfs import Rootfs
    from pyc.store.images import ImageStore

KEYS = {
    "cache": ("type", "target", "id", "mode", "uid", "gid", "sharing", "readonly", "ro"),
    "tmpfs": ("type", "target", "size"),
    "bind": ("type", "target", "source", "from", "readonly", "ro", "rw", "readwrite"),
    "secret": ("type", "target", "id", "required", "mode", "uid", "gid"),
}


class Mounts:
    """The mounts of one RUN, as `pyc run` takes them (volumes, tmpfs), their targets, and what
    goes into the step's cache key."""

    def __init__(self) -> None:
        self.volumes: list[str] = []
        self.tmpfs: list[str] = []
        self.targets: list[str] = []
        self.key: list[object] = []
        # Binds laid out before the step runs: (sources, target, rw)
        self.views: list[tuple[list[Source], str, bool]] = []

    def stage(self, tmp: str) -> None:
        """Before the step runs (not on a cache hit): each bind that is not a context path as it
        is becomes a tree in `tmp`: a context directory that the ignore rules thin out (what they
        leave, as BuildKit's context holds no ignored file), a stage's or an image's path, and any
        rw bind. Read-only, hardlinks where the filesystem allows; rw, a copy."""
        for n, (sources, target, rw) in enumerate(self.views):
            root = os.path.join(tmp, f"bind-{n}")
            _view(sources, root, rw)
            self.volumes.append(f"{root}:{target}:{'rw' if rw else 'ro'}")


def parse(spec: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, eq, value = item.partition("=")
        key = {"dst": "target", "destination": "target", "src": "source"}.get(key, key)
        fields[key] = value if eq else "true"
    kind = fields.setdefault("type", "bind")
    if kind not in KEYS:
        raise InvalidArgument(f"RUN --mount type={kind} is not supported: use cache, tmpfs, bind or secret")
    unknown = sorted(set(fields) - set(KEYS[kind]))
    if unknown:
        raise InvalidArgument(f"RUN --mount type={kind} takes no {unknown[0]}= (it takes {', '.join(KEYS[kind][1:])})")
    return fields


def _target(fields: dict[str, str], default: str | None = None) -> str:
    target = fields.get("target") or default
    if not target or not target.startswith("/") or ":" in target or "," in target:
        raise InvalidArgument(f"RUN --mount type={fields['type']}: target= must be an absolute path (without : or ,)")
    return os.path.normpath(target)


def _int(fields: dict[str, str], key: str, default: int, base: int = 10) -> int:
    value = fields.get(key)
    if value is None:
        return default
    try:
        return int(value, base)
    except ValueError:
        raise InvalidArgument(f"RUN --mount {key}={value}: not a number") from None


def _flag(fields: dict[str, str], *keys: str) -> bool | None:
    """A boolean option (`rw`, `readonly=false`, ...): None when none of `keys` is given."""
    for key in keys:
        value = fields.get(key)
        if value is not None:
            if value not in ("true", "false"):
                raise InvalidArgument(f"RUN --mount {key}={value}: true or false")
            return value == "true"
    return None


def resolve(specs: list[str], ctx: Context, store: ImageStore, secrets: dict[str, str], digests: FileDigests, rootfs_of: Callable[[str], tuple[Rootfs, object]]) -> Mounts:
    """The mounts of `specs`; `rootfs_of(ref)` is a stage's or an image's files (for from=) and
    what stands for them in a key."""
    from pyc.build import copy
    from pyc.store import buildcache

    out = Mounts()
    for spec in specs:
        f = parse(spec)
        kind = f["type"]
        if kind == "tmpfs":
            target = _target(f)
            size = f.get("size")
            if size is not None and not size.rstrip("kmgKMG").isdigit():
                raise InvalidArgument(f"RUN --mount type=tmpfs size={size}: a size like 64m")
            out.tmpfs.append(f"{target}:exec" + (f",size={size}" if size else ""))
            out.key.append(["tmpfs", target, size])
        elif kind == "cache":
            target = _target(f)
            cache_id = f.get("id") or target
            path = os.path.join(buildcache.directory(store), "mounts", hashlib.sha256(cache_id.encode()).hexdigest()[:32])
            if not os.path.isdir(path):
                os.makedirs(path, exist_ok=True)
                os.chmod(path, _int(f, "mode", 0o755, 8))
                os.chown(path, _int(f, "uid", 0), _int(f, "gid", 0))
            ro = f.get("readonly") == "true" or f.get("ro") == "true"
            out.volumes.append(f"{path}:{target}:{'ro' if ro else 'rw'}")
            out.key.append(["cache", target, cache_id, ro])
        elif kind == "bind":
            target = _target(f)
            readonly, writes = _flag(f, "readonly", "ro"), _flag(f, "rw", "readwrite")
            if readonly is not None and writes is not None and readonly == writes:
                raise InvalidArgument("RUN --mount type=bind: readonly and rw say the opposite")
            rw = bool(writes) or readonly is False
            source = f.get("source") or "."
            ref = f.get("from")
            if ref is not None:
                if not ref:
                    raise InvalidArgument("RUN --mount type=bind,from= needs a stage or an image")
                fs, origin = rootfs_of(ref)
                groups = copy.from_rootfs(fs, [source], InvalidArgument)
            else:
                origin = "context"
                groups = copy.from_context(ctx, [source], InvalidArgument)
            first = groups[0][1][0]
            if ref is None and not rw and not (stat.S_ISDIR(first.st.st_mode) and ctx.ignore.patterns):
                out.volumes.append(f"{first.real}:{target}:ro")
            else:
                out.views.append((groups[0][1], target, rw))
            out.key.append(["bind", target, source, copy.checksum(groups, digests)] + ([origin] if ref is not None else []) + (["rw"] if rw else []))
        else:
            secret_id = f.get("id") or os.path.basename(f.get("target") or "")
            if not secret_id:
                raise InvalidArgument("RUN --mount type=secret needs id= (or target=)")
            target = _target(f, f"/run/secrets/{secret_id}")
            src = secrets.get(secret_id)
            if src is None:
                if f.get("required") == "true":
                    raise InvalidArgument(f"RUN --mount type=secret,id={secret_id}: no such secret (give --secret id={secret_id},src=FILE)")
                continue
            out.volumes.append(f"{src}:{target}:ro")
            out.key.append(["secret", target, secret_id])  # the name, never the content
        out.targets.append(target)
    return out


def _view(sources: list[Source], root: str, copies: bool = False) -> None:
    """`sources` (a directory's walk, itself first) laid out under `root`: directories made,
    files hardlinked (copied across filesystems, or `copies`), symlinks made again; owners and
    modes kept."""
    import shutil

    for src in sources:
        path = os.path.join(root, src.rel) if src.rel else root
        os.makedirs(os.path.dirname(path), exist_ok=True)  # a `!` exception's parents, left out themselves
        mode = src.st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(path)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src.real), path)
        elif stat.S_ISREG(mode):
            if not copies:
                try:
                    os.link(src.real, path, follow_symlinks=False)
                    continue  # the same inode: owner and mode are the file's
                except OSError:
                    pass
            shutil.copyfile(src.real, path, follow_symlinks=False)
        else:
            continue
        os.lchown(path, src.st.st_uid, src.st.st_gid)
        if not stat.S_ISLNK(mode):
            os.chmod(path, stat.S_IMODE(mode))
