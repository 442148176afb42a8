"""Containers: a row each in pyc.db (containerdb.py: id, unique name, the record `ps` and
`inspect` show); containers/<id>/ holds the upper and work dirs of the overlay, the mount point,
the files pyc bind-mounts into /etc, and a detached container's monitor files and log.
A detached container also has state.msgpack, written by its pyc-monitor at every change: that,
checked against the monitor being alive, is its state, whatever a pyc command died doing.
Reading a container's state never writes: the monitor's last word goes into pyc.db with the
next write to that container (`ContainerStore.save`)."""

from __future__ import annotations

import os
import time

from pyc.errors import BadImage, Conflict, ContainerNotFound, InvalidArgument
from pyc.foreground import ForegroundRecords
from pyc.paths import Paths
from pyc.record import BadRecord
from pyc.records import DEFAULT_CGROUP_ROOT, ContainerRecord, ContainerState, HostConfig
from pyc_core import packb, unpackb

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    import sqlite3

    from pyc.records import VolumeRecord

MONITOR_STATE = "state.msgpack"
LIVE = ("running", "restarting")
__all__ = ["DEFAULT_CGROUP_ROOT", "LIVE", "Container", "ContainerStore"]

_ADJECTIVES = "brave calm eager fond gentle happy jolly keen lucid merry nifty proud quiet sharp sunny swift tender vivid witty zen".split()
_NOUNS = "ada babbage curie darwin euler fermi gauss hopper jobs knuth lovelace mccarthy noether pascal ritchie shannon turing wozniak".split()


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def check_name(name: str) -> None:
    if not (name[:1].isalnum() and all(c.isalnum() or c in "_.-" for c in name)):
        raise InvalidArgument(f"invalid container name {name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")


def _start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot): tells a live pid from a reused one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(b")", 1)[1].split()
    # A zombie has died: it waits only for a parent (maybe a subreaper, not init) to reap it.
    return None if fields[0] in (b"Z", b"X") else fields[19].decode()


class Container:
    """A container: its record, its directory, and the store that keeps it."""

    __slots__ = ("record", "dir", "store", "foreground")

    def __init__(self, record: ContainerRecord, directory: str, store: ContainerStore | None = None) -> None:
        self.record = record
        self.dir = directory
        self.store = store
        self.foreground = False  # its record is in foreground/, not pyc.db

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def status(self) -> str:
        """created, running, restarting or exited."""
        return self.current_state().status

    @property
    def state(self) -> ContainerState:
        return self.current_state()

    def current_state(self) -> ContainerState:
        """The recorded state (the monitor's, for a detached container), corrected for a holder
        (pyc-monitor, or the pyc of a foreground run) that died while the container ran: the
        kernel killed the container with it (SIGKILL, exit code 137). Nothing is written."""
        st = self.record.state
        monitor = self.monitor_state()
        if monitor is not None:
            st = st.overlaid(monitor)
        if st.status in LIVE and not holder_alive(st):
            st = st.replace(status="exited", exit_code=137, pid=0, error="its holder (pyc or pyc-monitor) was killed")
        return st

    def monitor_state(self) -> ContainerState | None:
        try:
            with open(self.path(MONITOR_STATE), "rb") as f:
                data = unpackb(f.read())
            return ContainerState.from_monitor(data) if isinstance(data, dict) else None
        except (FileNotFoundError, ValueError):
            return None  # BadRecord is a ValueError: a state file of another shape says nothing

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    @property
    def cgroup(self) -> str:
        """The container's cgroup, relative to each hierarchy under `cgroup_root`."""
        return f"{self.record.host_config.cgroup_parent or 'pyc'}/{self.id}"

    @property
    def cgroup_root(self) -> str:
        return self.record.cgroup_root or DEFAULT_CGROUP_ROOT


def holder_alive(st: ContainerState) -> bool:
    return bool(st.monitor_pid) and _start_time(st.monitor_pid) == st.monitor_start


def _decode(row: bytes) -> ContainerRecord:
    try:
        return ContainerRecord.load(unpackb(row))
    except (BadRecord, ValueError) as e:
        raise BadImage(f"a container record in pyc.db is corrupt: {e}") from None


class ContainerStore:
    """Every container's record: a row in pyc.db, or, for an unnamed foreground `--rm` run, a
    file in foreground/ (pyc/foreground.py); a Container knows which (`foreground`)."""

    def __init__(self, paths: Paths) -> None:
        from pyc.events import Journal

        self.paths = paths
        self.foreground = ForegroundRecords(paths.foreground)
        self.journal = Journal(paths.root)

    _db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            from pyc.containerdb import connect

            self._db = connect(self.paths.root, self.paths.containers)
        return self._db

    def new(self, name: str | None, image: str, image_id: str, layers: list[str], host_config: HostConfig, cgroup_root: str = DEFAULT_CGROUP_ROOT) -> Container:
        """A container in memory only: its id, name and paths, to validate a run against
        before anything is written."""
        cid = os.urandom(32).hex()
        if name is None:
            pick = os.urandom(2)
            name = f"{_ADJECTIVES[pick[0] % len(_ADJECTIVES)]}_{_NOUNS[pick[1] % len(_NOUNS)]}_{cid[:4]}"
        check_name(name)
        record = ContainerRecord(id=cid, name=name, created=_now(), image=image, image_id=image_id, layers=layers, host_config=host_config, cgroup_root=cgroup_root)
        return Container(record, self.paths.container(cid))

    def create(
        self, c: Container, files: dict[str, str | bytes], running: bool = False, foreground: bool = False, volumes: list[VolumeRecord] | None = None, uses: list[str] | None = None
    ) -> None:
        """Write the container: its record (the name is taken there), with the `volumes` it
        makes and the rows of those it `uses` in the same transaction, then its directories and
        `files` in its directory (its record already marked running when it is about to start:
        one write). `foreground`: its record goes to foreground/, not pyc.db (an unnamed
        `run --rm`, whose volumes, if it has any, its mounts name: pyc/volumes.py, `claim`)."""
        if running:
            self._set_running(c)
        made: list[str] = []  # volumes made with it
        if foreground:
            if volumes or uses:
                raise InvalidArgument("a foreground record makes no volume: its volumes are claimed (pyc/volumes.py)")
            if self.foreground.named(c.name):
                raise Conflict(f'the container name "{c.name}" is already in use')
            self.foreground.create(c.record)
            c.foreground = True
        else:
            import sqlite3

            rows: list[tuple[str, bytes]] = []
            try:
                with _Taking(self, c.name):
                    self.db.execute("INSERT INTO containers VALUES (?, ?, ?, ?)", (c.id, c.name, c.record.created, packb(c.record.to_dict())))
                    if volumes or uses:
                        from pyc.volumes import insert

                        rows, made = insert(self.db, self.paths, volumes or [])
                        self.db.executemany("INSERT OR IGNORE INTO volume_users VALUES (?, ?)", [(name, c.id) for name in uses or []])
            except sqlite3.IntegrityError as e:
                if "containers.name" in str(e):
                    raise Conflict(f'the container name "{c.name}" is already in use') from None
                raise Conflict(f"a volume of container {c.name} was removed while it was being made: {e}") from None
            if rows:
                from pyc.volumes import publish

                publish(self.paths, rows)  # used by this container now: no rm removes them meanwhile
        try:
            try:
                os.mkdir(c.dir)
            except FileNotFoundError:
                from pyc.store.placement import spread_children

                os.makedirs(self.paths.containers, exist_ok=True)
                spread_children(self.paths.containers)
                os.mkdir(c.dir)
            for sub in ("upper", "work"):
                os.mkdir(c.path(sub))
            try:
                os.mkdir(self.paths.rootfs, 0o755)
            except FileExistsError:
                pass
            for name, content in files.items():
                with open(c.path(name), "wb" if isinstance(content, bytes) else "w") as f:
                    f.write(content)
        except BaseException:
            self._forget(c)
            raise
        from pyc.events import container_attributes, volume_event

        self.journal.log_all([volume_event("create", name) for name in made] + [("container", "create", c.id, container_attributes(c))])

    def save(self, c: Container) -> None:
        """Write the record, with the monitor's last word on its state folded in (the only
        place it is: reading a state writes nothing)."""
        c.record.state = c.current_state()
        if c.foreground:
            saved = self.foreground.update(c.record)
        else:
            saved = self.db.execute("UPDATE containers SET record = ? WHERE id = ?", (packb(c.record.to_dict()), c.id)).rowcount > 0
        if not saved:
            raise ContainerNotFound(f"no such container: {c.name}")

    @staticmethod
    def _set_running(c: Container) -> None:
        pid = os.getpid()
        c.record.state = c.record.state.replace(status="running", started_at=_now(), monitor_pid=pid, monitor_start=_start_time(pid) or "")

    def mark_exited(self, c: Container, code: int, oom_killed: bool = False) -> None:
        """Record the end; a container removed meanwhile (`pyc rm -f`) has nothing to record."""
        c.record.state = c.record.state.replace(status="exited", exit_code=code, oom_killed=oom_killed, finished_at=_now(), monitor_pid=0)
        try:
            self.save(c)
        except ContainerNotFound:
            pass

    def rename(self, c: Container, new: str) -> None:
        import sqlite3

        check_name(new)
        c.record.state = c.current_state()
        old, c.record.name = c.record.name, new
        try:
            with _Taking(self, new):
                if not c.foreground:
                    self.db.execute("UPDATE containers SET name = ?, record = ? WHERE id = ?", (new, packb(c.record.to_dict()), c.id))
                elif self.db.execute("SELECT 1 FROM containers WHERE name = ?", (new,)).fetchone():
                    raise sqlite3.IntegrityError
                elif not self.foreground.update(c.record):
                    raise ContainerNotFound(f"no such container: {old}")
        except sqlite3.IntegrityError:
            c.record.name = old
            raise Conflict(f'the container name "{new}" is already in use') from None
        except BaseException:
            c.record.name = old
            raise
        self.journal.container(c, "rename", oldName=old)

    def get(self, ref: str) -> Container:
        """By name, full id or a unique id prefix."""
        rows = self.db.execute("SELECT id, record FROM containers WHERE name = ?", (ref,)).fetchall()
        if rows:
            return self._row(rows[0])
        fg = self.foreground.all()
        found = [r for r in fg if r.name == ref]
        if not found and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.db.execute("SELECT id, record FROM containers WHERE id >= ? AND id < ? LIMIT 2", (ref, ref + "g")).fetchall()
            found = [r for r in fg if r.id.startswith(ref)]
            if len(rows) + len(found) > 1:
                raise InvalidArgument(f"container id prefix {ref} is ambiguous")
            if rows:
                return self._row(rows[0])
        if not found:
            raise ContainerNotFound(f"no such container: {ref}")
        return self._foreground(found[0])

    def _row(self, row: tuple[str, bytes]) -> Container:
        return Container(_decode(row[1]), self.paths.container(row[0]), self)

    def _foreground(self, record: ContainerRecord) -> Container:
        c = Container(record, self.paths.container(record.id), self)
        c.foreground = True
        return c

    def reload(self, c: Container) -> ContainerRecord:
        """The record as it is now (another pyc may have changed it)."""
        if c.foreground:
            record = self.foreground.read(c.id)
            if record is None:
                raise ContainerNotFound(f"no such container: {c.name}")
            return record
        row = self.db.execute("SELECT record FROM containers WHERE id = ?", (c.id,)).fetchone()
        if row is None:
            raise ContainerNotFound(f"no such container: {c.name}")
        return _decode(row[0])

    def all(self) -> list[Container]:
        """Newest first."""
        rows = self.db.execute("SELECT id, record FROM containers ORDER BY created DESC").fetchall()
        kept = [self._row(row) for row in rows]
        fg = [self._foreground(r) for r in self.foreground.all()]
        if not fg:
            return kept
        return sorted(kept + fg, key=lambda c: c.record.created, reverse=True)

    def remove(self, c: Container, force: bool = False, cgroup: bool = True) -> None:
        """`cgroup=False` when the caller knows it is gone (a run that ended and removed it)."""
        import pyc_core

        if not force and c.status == "running":
            raise Conflict(f"container {c.name} is running: stop it first, or use -f")
        if cgroup:
            # Whatever still runs in the container's cgroup is killed with it.
            pyc_core.remove_cgroup(c.cgroup, c.cgroup_root)
        if not c.foreground and c.monitor_state() is not None:
            try:
                self.save(c)  # its monitor's last word into the row, which may outlive the files
            except ContainerNotFound:
                pass
        self._forget(c)
        self.journal.container(c, "destroy")

    def _forget(self, c: Container) -> None:
        import pyc_core

        # The directory is moved aside first, in one step, then the record goes: a crash
        # between leaves a record without files, which ps shows and rm removes; the directory
        # left in tmp/ is collected by the next import or rmi.
        doomed = os.path.join(self.paths.tmp, f"{os.getpid()}-rm-{c.id}")
        try:
            os.rename(c.dir, doomed)
        except FileNotFoundError:
            try:
                os.makedirs(self.paths.tmp, exist_ok=True)
                os.rename(c.dir, doomed)
            except FileNotFoundError:
                doomed = c.dir
        if c.foreground:
            self.foreground.delete(c.id)
        else:
            self.db.execute("DELETE FROM containers WHERE id = ?", (c.id,))
        pyc_core.remove_tree(doomed)


class _Taking:
    """A write transaction of pyc.db in which a name is taken: it fails (Conflict) when a
    foreground record holds the name, and it holds pyc.db's write lock, under which the rename
    of a foreground container checks pyc.db."""

    def __init__(self, store: ContainerStore, name: str) -> None:
        self.store, self.name = store, name

    def __enter__(self) -> None:
        self.store.db.execute("BEGIN IMMEDIATE")
        try:
            if self.store.foreground.named(self.name):
                raise Conflict(f'the container name "{self.name}" is already in use')
        except BaseException:
            self.store.db.execute("ROLLBACK")
            raise

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.store.db.execute("ROLLBACK" if kind else "COMMIT")
