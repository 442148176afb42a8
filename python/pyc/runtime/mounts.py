"""`-v`, `--mount`, `--tmpfs` and `--volumes-from` as docker reads them, with docker's words for
what is wrong. Parsing touches nothing on disk but a `--mount type=bind` source, which must
exist; pyc.volumes resolves the requests into a container's MountPoints."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument

PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")
_ACCESS = ("ro", "rw")
_LABEL = ("z", "Z")  # SELinux relabel: accepted, and nothing to do where SELinux is off
_CONSISTENCY = ("consistent", "cached", "delegated")  # docker for Mac's: accepted, ignored


class Request:
    """One mount a container asks for: `kind` volume, bind or tmpfs; `source` a volume's name
    ("" for an anonymous one) or a bind's host path; `mode` as -v gave it (inspect shows it);
    `options` a tmpfs's (size=, mode=, ...); `make_source`: a missing bind source is made
    (-v), else refused (--mount)."""

    __slots__ = ("kind", "source", "destination", "readonly", "mode", "nocopy", "propagation", "options", "make_source")

    def __init__(
        self,
        kind: str,
        destination: str,
        source: str = "",
        readonly: bool = False,
        mode: str = "",
        nocopy: bool = False,
        propagation: str = "",
        options: list[str] | None = None,
        make_source: bool = False,
    ) -> None:
        self.kind = kind
        self.destination = destination
        self.source = source
        self.readonly = readonly
        self.mode = mode
        self.nocopy = nocopy
        self.propagation = propagation
        self.options = options or []
        self.make_source = make_source

    def __repr__(self) -> str:
        return f"Request({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"


def check_volume_name(name: str) -> str:
    """docker's rule for a local volume's name: [a-zA-Z0-9][a-zA-Z0-9_.-]+."""
    if len(name) < 2 or not name[0].isascii() or not name[0].isalnum() or not all(c.isascii() and (c.isalnum() or c in "_.-") for c in name):
        raise InvalidArgument(
            f'"{name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed.'
            " If you intended to pass a host directory, use absolute path"
        )
    return name


def destination(kind: str, path: str, spec: str | None = None) -> str:
    """A destination: absolute, not `/`, clean."""
    where = f"invalid volume specification: '{spec}': " if spec is not None else ""
    if not path.startswith("/"):
        raise InvalidArgument(f"{where}invalid mount config for type \"{kind}\": invalid mount path: '{path}' mount path must be absolute")
    clean = "/" + os.path.normpath(path).lstrip("/")
    if clean == "/":
        raise InvalidArgument(f"{where}invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'")
    return clean


def _modes(mode: str, kind: str) -> tuple[bool, bool, str]:
    """(read-only, nocopy, propagation) of -v's mode list: one of each kind at most."""
    seen: dict[str, str] = {}
    for m in mode.split(","):
        group = "access" if m in _ACCESS else "label" if m in _LABEL else "copy" if m == "nocopy" else "propagation" if m in PROPAGATIONS else "consistency" if m in _CONSISTENCY else None
        if group is None or group in seen or (group == "copy" and kind != "volume") or (group == "propagation" and kind != "bind"):
            raise InvalidArgument(f"invalid mode: {mode}")
        seen[group] = m
    return seen.get("access") == "ro", "copy" in seen, seen.get("propagation", "")


def _is_mode(mode: str) -> bool:
    try:
        _modes(mode, "volume")
    except InvalidArgument:
        try:
            _modes(mode, "bind")
        except InvalidArgument:
            return False
    return True


def parse_volume(spec: str) -> Request:
    """-v: `/path` (an anonymous volume), `NAME:/path[:MODE]`, `/host:/path[:MODE]`."""
    parts = spec.split(":")
    if len(parts) == 1:
        source, dest, mode = "", parts[0], ""
    elif len(parts) == 2 and _is_mode(parts[1]):
        source, dest, mode = "", parts[0], parts[1]
    elif len(parts) == 2:
        source, dest, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        source, dest, mode = parts
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if (len(parts) > 1 and not source and not mode) or not dest:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    kind = "bind" if source.startswith("/") else "volume"
    dest = destination(kind, dest, spec)
    readonly, nocopy, propagation = _modes(mode, kind) if mode else (False, False, "")
    if kind == "volume" and source:
        check_volume_name(source)
    if kind == "bind":
        source = os.path.normpath(source)
    return Request(kind, dest, source, readonly, mode, nocopy, propagation or ("rprivate" if kind == "bind" else ""), make_source=True)


_TRUE = ("1", "true", "t", "True", "TRUE", "T")
_FALSE = ("0", "false", "f", "False", "FALSE", "F")


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgument(f"invalid value for {key}: {value}")


def parse_mount(spec: str) -> Request:
    """--mount type=volume|bind|tmpfs,source=,target=,readonly,volume-nocopy,tmpfs-size=,
    tmpfs-mode=,bind-propagation= (docker's keys and aliases)."""
    from pyc.runtime.resources import parse_bytes

    kind = "volume"
    source = target = propagation = ""
    readonly = nocopy = False
    tmpfs: list[str] = []
    given: set[str] = set()  # which option groups were given: volume, bind, tmpfs
    for field in spec.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "volume-nocopy"):
            raise InvalidArgument(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            kind = value
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("readonly", "ro"):
            readonly = _bool(key, value) if eq else True
        elif key == "volume-nocopy":
            nocopy = _bool(key, value) if eq else True
            given.add("volume")
        elif key == "tmpfs-size":
            tmpfs.append(f"size={parse_bytes('tmpfs-size', value)}")
            given.add("tmpfs")
        elif key == "tmpfs-mode":
            if not value or any(c not in "01234567" for c in value):
                raise InvalidArgument(f"invalid value for {key}: {value}")
            tmpfs.append(f"mode={int(value, 8):o}")
            given.add("tmpfs")
        elif key == "bind-propagation":
            if value not in PROPAGATIONS:
                raise InvalidArgument(f"invalid value for {key}: {value}")
            propagation = value
            given.add("bind")
        elif key == "consistency":
            continue
        else:
            raise InvalidArgument(f"unexpected key '{key}' in '{field}'")
    what = f'invalid mount config for type "{kind}"'
    if kind not in ("volume", "bind", "tmpfs"):
        raise InvalidArgument(f"{what}: mount type unknown")
    for group, field in (("volume", "VolumeOptions"), ("bind", "BindOptions"), ("tmpfs", "TmpfsOptions")):
        if group in given and group != kind:
            raise InvalidArgument(f"{what}: field {field} must not be specified")
    if not target:
        raise InvalidArgument(f"{what}: field Target must not be empty")
    target = destination(kind, target)
    if kind == "bind":
        if not source:
            raise InvalidArgument(f"{what}: field Source must not be empty")
        if not source.startswith("/"):
            raise InvalidArgument(f"{what}: invalid mount path: '{source}' mount path must be absolute")
        if not os.path.exists(source):
            raise InvalidArgument(f"{what}: bind source path does not exist: {source}")
        return Request("bind", target, os.path.normpath(source), readonly, propagation=propagation or "rprivate")
    if kind == "tmpfs":
        if source:
            raise InvalidArgument(f"{what}: field Source must not be specified")
        return Request("tmpfs", target, readonly=readonly, options=tmpfs)
    if source:
        check_volume_name(source)
    return Request("volume", target, source, readonly, nocopy=nocopy)


# The options a --tmpfs may take (docker's): flags, and key=value with the value's form.
TMPFS_FLAGS = ("rw", "ro", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime", "strictatime", "diratime", "nodiratime", "sync", "async")
TMPFS_VALUES = {"size": "0123456789kmgKMG%", "nr_inodes": "0123456789kmgKMG%", "mode": "01234567", "uid": "0123456789", "gid": "0123456789"}


def parse_tmpfs(spec: str) -> Request:
    """--tmpfs PATH[:OPTIONS], checked here: a bad option is one line before any container is
    made, not a failed mount at its start."""
    path, _, opts = spec.partition(":")
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid --tmpfs {spec!r}: the path must be absolute")
    given = [o for o in opts.split(",") if o]
    for o in given:
        key, eq, value = o.partition("=")
        digits = value.rstrip("kmgKMG%") if key in ("size", "nr_inodes") else value
        if not (key in TMPFS_FLAGS and not eq or key in TMPFS_VALUES and value and digits.isdigit() and all(c in TMPFS_VALUES[key] for c in value)):
            raise InvalidArgument(f"invalid --tmpfs {spec!r}: bad option {o!r} (size=64m, mode=1777, uid=N, gid=N, nr_inodes=N, ro, exec, ...)")
    return Request("tmpfs", destination("tmpfs", path), readonly="ro" in given, options=given)


def parse_volumes_from(spec: str) -> tuple[str, str]:
    """--volumes-from CONTAINER[:ro|rw]: (container, mode; "" to keep each mount's)."""
    ref, _, mode = spec.partition(":")
    if not ref or mode not in ("", "ro", "rw"):
        raise InvalidArgument(f"invalid mode: {mode}" if ref else f"invalid --volumes-from {spec!r}: use CONTAINER[:ro|rw]")
    return ref, mode


def parse_all(volumes: list[str], mounts: list[str], tmpfs: list[str]) -> list[Request]:
    """Every -v, --mount and --tmpfs, in that order; one destination once (docker: duplicate)."""
    requests = [parse_volume(v) for v in volumes] + [parse_mount(m) for m in mounts] + [parse_tmpfs(t) for t in tmpfs]
    seen: set[str] = set()
    for r in requests:
        if r.destination in seen:
            raise InvalidArgument(f"Duplicate mount point: {r.destination}")
        seen.add(r.destination)
    return requests
