"""Volumes, docker's local driver: a row each in pyc.db (its record, and a row per container
that uses it: containerdb.py), files in $PYC_ROOT/volumes/<name>/_data. A volume may instead be
a tmpfs, or a bind of a host directory (`--opt type=tmpfs`, `--opt type=none --opt o=bind
--opt device=PATH`), mounted anew by each container that uses it.

A volume is removed with its row first and its directory moved aside in the same transaction:
a container made meanwhile finds no row (and makes a new volume), never a directory on its way
out. A volume used by a container cannot be removed (the foreign key says so too).

Copy-up (a new or empty volume filled with what the image has at its path) is crash-safe: the
image's files are unpacked into `copyup/` beside `_data` and synced, then `copyup.ready` is
written, then they are moved into `_data` by renames that keep what is there. A crash before
the mark leaves an empty volume (filled again on its next use); after it, the next use finishes
the moves (`settle`). A volume never looks filled when it is half filled.

Who uses a volume: the rows of volume_users, and the records of unnamed foreground `--rm`
containers (files in foreground/, pyc/foreground.py), which name their volumes in their mounts.
Such a run takes no SQLite at all: it reads each volume's record from a copy beside its files
(`volume.msgpack`, written once its row is committed; the record never changes), and writes
its own record under a shared flock of `volumes.lock` after checking that those copies are
still there. `rm` (and so prune) holds pyc.db's write lock and then that flock exclusively
while it looks for users in both places, deletes the row and moves the directory (the copy
with it) aside: either the run's record is there when rm looks, and rm refuses, or the volume
is gone when the run looks, and the run makes it again through pyc.db as any other run does.
The lock order is pyc.db, then volumes.lock; a foreground run takes volumes.lock only. A run
killed after its record was written leaves it (an exited container, 137), whose volumes stay
in use until `pyc rm`, as a row's would."""

from __future__ import annotations

import os
import time

from pyc.errors import Conflict, InvalidArgument, Kind, PycError, VolumeNotFound
from pyc.events import volume_event
from pyc.foreground import ForegroundRecords
from pyc.paths import Paths
from pyc.record import BadRecord
from pyc.records import MountPoint, VolumeRecord
from pyc.runtime.mounts import check_volume_name
from pyc_core import packb, unpackb

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

    from pyc.events import Journal
    from pyc.records import ContainerRecord
    from pyc.runtime.mounts import Request

DATA = "_data"
STAGE = "copyup"
READY = "copyup.ready"
RECORD = "volume.msgpack"  # the committed record, for the runs that read no pyc.db
LOCK = "volumes.lock"  # at the store's root: see the module's words


def now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def check_options(options: dict[str, str]) -> dict[str, str]:
    """docker's local driver options: none (a directory of pyc's), type=tmpfs [o=...] or
    type=none o=bind device=PATH. Anything else is one clear refusal."""
    for key in options:
        if key not in ("type", "o", "device"):
            raise InvalidArgument(f'invalid option "{key}" for the local volume driver: use type, o and device')
    kind, o, device = options.get("type", ""), options.get("o", ""), options.get("device", "")
    if not options:
        return options
    if kind == "tmpfs":
        from pyc.runtime.mounts import parse_tmpfs

        parse_tmpfs(f"/v:{o}")  # its options checked as --tmpfs checks them
    elif kind == "none":
        if "bind" not in o.split(",") and "rbind" not in o.split(","):
            raise InvalidArgument(f'invalid volume options: type=none needs o=bind (got o="{o}")')
        if not device.startswith("/") or not os.path.isdir(device):
            raise InvalidArgument(f"invalid volume options: device {device!r} is not a directory (an absolute path)")
    else:
        raise InvalidArgument(f'volume type "{kind}" is not supported: the local driver here makes a tmpfs (type=tmpfs) or binds a directory (type=none o=bind device=PATH)')
    return options


def _decode(row: bytes) -> VolumeRecord:
    try:
        data = unpackb(row)
        if not isinstance(data, dict):
            raise BadRecord("not a map")
        return VolumeRecord.from_dict(data)
    except (BadRecord, ValueError) as e:
        raise PycError(f"a volume record in pyc.db is corrupt: {e}", Kind.BAD_INPUT) from None


def make_dirs(paths: Paths, name: str) -> None:
    """A volume's directories (its `_data` empty, or as it was)."""
    if not os.path.isdir(paths.volumes):
        os.makedirs(paths.volumes, mode=0o700, exist_ok=True)
    os.makedirs(os.path.join(paths.volume(name), DATA), mode=0o755, exist_ok=True)


def insert(db: sqlite3.Connection, paths: Paths, records: list[VolumeRecord]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """Within the caller's transaction: the volumes' rows where missing, and their directories.
    Returns the rows as they are now, which the caller `publish`es once it committed, and the
    names of the volumes made (their create events)."""
    rows, made = [], []
    for v in records:
        if db.execute("INSERT OR IGNORE INTO volumes VALUES (?, ?, ?)", (v.name, v.created, packb(v.to_dict()))).rowcount:
            made.append(v.name)
        make_dirs(paths, v.name)
        rows.append((v.name, db.execute("SELECT record FROM volumes WHERE name = ?", (v.name,)).fetchone()[0]))
    return rows, made


def publish(paths: Paths, rows: list[tuple[str, bytes]]) -> None:
    """After the commit of `rows` (a volume's name and record), each volume's copy of its
    record beside its files, in one rename (a reader sees all of it or none). Never synced: a
    missing copy sends a run to pyc.db, whose next writer of the volume's users writes it again.
    A volume removed meanwhile has no directory, and gets no copy."""
    from pyc.store import atomic

    for name, record in rows:
        try:
            atomic.write_file(os.path.join(paths.volume(name), RECORD), record, durable=False, mode=0o600)
        except FileNotFoundError:
            continue


def cached(paths: Paths, name: str) -> VolumeRecord | None:
    """The volume's record from its copy beside its files; None when there is none (a volume
    that is not there, or one whose copy was never written)."""
    try:
        with open(os.path.join(paths.volume(name), RECORD), "rb") as f:
            data = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return _decode(data)
    except PycError:
        return None


def is_empty(path: str) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


class VolumeStore:
    """The volumes of one store, on the containers' database connection (`db`, a callable:
    pyc.db is opened on first use)."""

    def __init__(self, paths: Paths, db: Callable[[], sqlite3.Connection], foreground: ForegroundRecords, journal: Journal) -> None:
        self.paths = paths
        self._db = db
        self.foreground = foreground
        self.journal = journal

    @property
    def db(self) -> sqlite3.Connection:
        return self._db()

    def data(self, name: str) -> str:
        return os.path.join(self.paths.volume(name), DATA)

    def mountpoint(self, v: VolumeRecord) -> str:
        """Where a container's mount of it comes from: its `_data`, the directory it binds, or
        "" for a tmpfs."""
        kind = v.options.get("type", "")
        return self.data(v.name) if not kind else v.options.get("device", "") if kind == "none" else ""

    def get(self, name: str) -> VolumeRecord:
        row = self.db.execute("SELECT record FROM volumes WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise VolumeNotFound(f"no such volume: {name}")
        return _decode(row[0])

    def find(self, name: str) -> VolumeRecord | None:
        try:
            return self.get(name)
        except VolumeNotFound:
            return None

    def lookup(self, name: str) -> VolumeRecord | None:
        """`find`, through the volume's copy of its record when it has one (no pyc.db)."""
        return cached(self.paths, name) or self.find(name)

    def create(self, name: str | None, labels: dict[str, str], options: dict[str, str], anonymous: bool = False) -> VolumeRecord:
        """`pyc volume create`: a volume of that name (docker: an existing one of the same
        options is no error), or of a new random name."""
        check_options(options)
        if name is None:
            name = os.urandom(32).hex()
        check_volume_name(name)
        v = VolumeRecord(name=name, created=now(), labels=labels, options=options, anonymous=anonymous)
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT record FROM volumes WHERE name = ?", (name,)).fetchone()
            if row is not None:
                old = _decode(row[0])
                if (old.options, old.labels) != (options, labels) and (options or labels):
                    raise Conflict(f"a volume named {name} already exists with other options or labels")
                db.execute("COMMIT")
                return old
            rows, _ = insert(db, self.paths, [v])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        publish(self.paths, rows)
        self.journal.log_all([volume_event("create", name)])
        return v

    def all(self) -> list[tuple[VolumeRecord, list[str]]]:
        """Every volume with the ids of the containers that use it (pyc.db's and foreground
        ones), oldest first."""
        users: dict[str, list[str]] = {}
        for volume, cid in self.db.execute("SELECT volume, container FROM volume_users"):
            users.setdefault(volume, []).append(cid)
        for cid, volume in self._foreground_users():
            users.setdefault(volume, []).append(cid)
        rows = self.db.execute("SELECT name, record FROM volumes ORDER BY created").fetchall()
        return [(_decode(record), users.get(name, [])) for name, record in rows]

    def users(self, name: str) -> list[str]:
        """The ids of the containers that use the volume: rows of pyc.db, foreground records."""
        rows = [cid for (cid,) in self.db.execute("SELECT container FROM volume_users WHERE volume = ?", (name,))]
        return rows + [cid for cid, volume in self._foreground_users() if volume == name]

    def _foreground_users(self) -> list[tuple[str, str]]:
        return [(r.id, m.name) for r in self.foreground.all() for m in r.mounts if m.type == "volume"]

    def claim(self, volumes: dict[str, VolumeRecord], write: Callable[[], None]) -> bool:
        """Call `write` (which writes a foreground record naming these volumes) if every one is
        still the volume planned with, under the shared lock that `remove` takes exclusively;
        False (nothing written) when one was removed or made anew meanwhile."""
        from pyc.store import atomic

        with atomic.locked(os.path.join(self.paths.root, LOCK), shared=True):
            if any(cached(self.paths, name) != v for name, v in volumes.items()):
                return False
            write()
            return True

    def remove(self, name: str) -> None:
        """Remove a volume no container uses: its row, then its files (moved aside first, in the
        same transaction, so a new volume of its name starts empty)."""
        import pyc_core
        from pyc.store import atomic

        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            with atomic.locked(os.path.join(self.paths.root, LOCK)):  # no foreground run claims it meanwhile
                if db.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone() is None:
                    raise VolumeNotFound(f"no such volume: {name}")
                users = self.users(name)
                if users:
                    raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
                db.execute("DELETE FROM volumes WHERE name = ?", (name,))
                doomed = os.path.join(self.paths.tmp, f"{os.getpid()}-rmvolume-{name}")
                os.makedirs(self.paths.tmp, exist_ok=True)
                try:
                    os.rename(self.paths.volume(name), doomed)  # its record's copy with it
                except FileNotFoundError:
                    doomed = ""
                db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.journal.log_all([volume_event("destroy", name)])
        if doomed:
            pyc_core.remove_tree(doomed)

    def size(self, v: VolumeRecord) -> int:
        from pyc.store.usage import tree_size

        return tree_size(self.data(v.name)) if not v.options else 0

    # -- copy-up ------------------------------------------------------------------------

    def settle(self, name: str) -> None:
        """Finish or drop what a crashed copy-up left (see the module's words); cheap when there
        is nothing: two stats."""
        vdir = self.paths.volume(name)
        if not (os.path.lexists(os.path.join(vdir, READY)) or os.path.lexists(os.path.join(vdir, STAGE))):
            return
        from pyc.store import atomic

        with atomic.locked(os.path.join(vdir, "lock")):
            self._settle(vdir)

    def _settle(self, vdir: str) -> None:
        import pyc_core

        stage, ready = os.path.join(vdir, STAGE), os.path.join(vdir, READY)
        if os.path.exists(ready):
            pyc_core.merge_into(stage, os.path.join(vdir, DATA), keep=True)
            os.unlink(ready)
        pyc_core.remove_tree(stage)

    def fill(self, name: str, lowers: list[str], path: str) -> bool:
        """docker's copy-up: an empty volume takes what the image (its layer dirs, top-most
        first) has at `path`, with owners, modes and xattrs, the directory's own included.
        False when the volume is not empty or the image has no directory there."""
        import pyc_core
        from pyc.store import atomic

        vdir = self.paths.volume(name)
        with atomic.locked(os.path.join(vdir, "lock")):
            self._settle(vdir)
            if not is_empty(os.path.join(vdir, DATA)):
                return False
            stage = os.path.join(vdir, STAGE)
            os.mkdir(stage, 0o700)
            mountpoint = os.path.join(self.paths.tmp, f"{os.getpid()}-copyup-{os.urandom(4).hex()}")
            os.makedirs(mountpoint)
            try:
                view = packb({"image": {"lower": lowers, "mountpoint": mountpoint}})
                copied = pyc_core.copy_up(view, path, stage)
            except BaseException:
                pyc_core.remove_tree(stage)
                raise
            finally:
                os.rmdir(mountpoint)
            if not copied:
                os.rmdir(stage)
                return False
            atomic.write_file(os.path.join(vdir, READY), b"")
            self._settle(vdir)
            return True

    # -- export, import -----------------------------------------------------------------

    def local_dir(self, name: str) -> str:
        """The `_data` of a volume of pyc's own (not a tmpfs or a bind of a host directory)."""
        v = self.get(name)
        if v.options:
            raise InvalidArgument(f"volume {name} is a {v.options.get('type')} volume: it has no files of pyc's to export or import")
        self.settle(name)
        return self.data(name)

    def export(self, name: str, out_fd: int) -> None:
        import pyc_core

        pyc_core.tar_tree(self.local_dir(name), out_fd)

    def import_(self, name: str, source: str | int, force: bool) -> None:
        """Unpack a tar (plain, gzip, zstd) into the volume, made if missing; a volume with
        files is refused unless `force`. Owners, modes, xattrs and hardlinks as the tar has them."""
        import pyc_core

        if self.find(name) is None:
            self.create(name, {}, {})
        data = self.local_dir(name)
        from pyc.store import atomic

        with atomic.locked(os.path.join(self.paths.volume(name), "lock")):
            if not force and not is_empty(data):
                raise Conflict(f"volume {name} is not empty: import into a new or empty volume, or use --force")
            pyc_core.untar_into(source, data)


class MountPlan:
    """A container's mounts, resolved and not yet written: `points` in docker's order of
    mounting (parents before what is mounted in them), `volumes` every volume it uses (those
    to make among them: a volume removed meanwhile is made again, as docker makes a missing
    named one), `copyups` (volume, path) to fill from the image, `bind_dirs` the missing bind
    sources -v makes."""

    __slots__ = ("points", "volumes", "copyups", "bind_dirs")

    def __init__(self) -> None:
        self.points: list[MountPoint] = []
        self.volumes: dict[str, VolumeRecord] = {}
        self.copyups: list[tuple[str, str]] = []
        self.bind_dirs: list[str] = []


def plan(store: VolumeStore, requests: list[Request], volumes_from: list[tuple[ContainerRecord, str]], image_volumes: list[str]) -> MountPlan:
    """docker's precedence: what -v, --mount and --tmpfs give, then the mounts of
    --volumes-from containers at the other destinations, then the image's VOLUMEs at the rest
    (anonymous volumes, filled from the image)."""
    p = MountPlan()
    taken = {r.destination for r in requests}

    def volume(name: str, dest: str, readonly: bool, mode: str, copy: bool) -> None:
        v = (p.volumes.get(name) or store.lookup(name)) if name else None
        if v is None:
            v = VolumeRecord(name=name or os.urandom(32).hex(), created=now(), anonymous=not name)
        p.volumes[v.name] = v
        kind = v.options.get("type", "")
        options = [o for o in v.options.get("o", "").split(",") if o] if kind == "tmpfs" else []
        p.points.append(MountPoint(type="volume", destination=dest, source=store.mountpoint(v), name=v.name, mode=mode, rw=not readonly, driver_type=kind, options=options))
        if copy and not kind:
            p.copyups.append((v.name, dest))

    for r in requests:
        if r.kind == "volume":
            volume(r.source, r.destination, r.readonly, r.mode, not r.nocopy)
        elif r.kind == "bind":
            if not os.path.exists(r.source):
                p.bind_dirs.append(r.source)
            p.points.append(MountPoint(type="bind", destination=r.destination, source=r.source, mode=r.mode, rw=not r.readonly, propagation=r.propagation))
        else:
            p.points.append(MountPoint(type="tmpfs", destination=r.destination, rw=not r.readonly, options=r.options))
    for record, mode in volumes_from:
        for m in record.mounts:
            if m.type == "tmpfs" or m.destination in taken:
                continue
            taken.add(m.destination)
            rw = m.rw if not mode else mode == "rw"
            if m.type == "volume":
                volume(m.name, m.destination, not rw, m.mode, False)
            else:
                p.points.append(m.replace(rw=rw))
    for path in image_volumes:
        from pyc.runtime.mounts import destination

        dest = destination("volume", path)
        if dest not in taken:
            taken.add(dest)
            volume("", dest, False, "", True)
    # Parents first: a mount at /a/b goes on what is mounted at /a (docker sorts so too).
    p.points.sort(key=lambda m: m.destination.count("/"))
    return p
