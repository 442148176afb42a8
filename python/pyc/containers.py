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

import msgpack

from pyc.errors import BadImage, Conflict, ContainerNotFound, InvalidArgument
from pyc.paths import Paths
from pyc.record import BadRecord
from pyc.records import DEFAULT_CGROUP_ROOT, ContainerRecord, ContainerState, HostConfig

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    import sqlite3

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

    __slots__ = ("record", "dir", "store")

    def __init__(self, record: ContainerRecord, directory: str, store: ContainerStore | None = None) -> None:
        self.record = record
        self.dir = directory
        self.store = store

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
                data = msgpack.unpackb(f.read())
            return ContainerState.from_monitor(data) if isinstance(data, dict) else None
        except (FileNotFoundError, ValueError, msgpack.UnpackException):
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
        return ContainerRecord.load(msgpack.unpackb(row))
    except (BadRecord, ValueError, msgpack.UnpackException) as e:
        raise BadImage(f"a container record in pyc.db is corrupt: {e}") from None


class ContainerStore:
    def __init__(self, paths: Paths) -> None:
        from pyc.events import Journal

        self.paths = paths
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

    def create(self, c: Container, files: dict[str, str], running: bool = False) -> None:
        """Write the container: its row (the name is taken there), directories, `files` in its
        directory (its record already marked running when it is about to start: one write)."""
        import sqlite3

        if running:
            self._set_running(c)
        try:
            self.db.execute("INSERT INTO containers VALUES (?, ?, ?, ?)", (c.id, c.name, c.record.created, msgpack.packb(c.record.to_dict())))
        except sqlite3.IntegrityError:
            raise Conflict(f'the container name "{c.name}" is already in use') from None
        try:
            if not os.path.isdir(self.paths.containers):
                from pyc.store.placement import spread_children

                os.makedirs(self.paths.containers, exist_ok=True)
                spread_children(self.paths.containers)
            os.mkdir(c.dir)
            for sub in ("upper", "work", "rootfs"):
                os.mkdir(c.path(sub))
            for name, content in files.items():
                with open(c.path(name), "w") as f:
                    f.write(content)
        except BaseException:
            self._forget(c.id, c.name)
            raise
        self.journal.container(c, "create")

    def save(self, c: Container) -> None:
        """Write the record, with the monitor's last word on its state folded in (the only
        place it is: reading a state writes nothing)."""
        c.record.state = c.current_state()
        if self.db.execute("UPDATE containers SET record = ? WHERE id = ?", (msgpack.packb(c.record.to_dict()), c.id)).rowcount == 0:
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
            self.db.execute("UPDATE containers SET name = ?, record = ? WHERE id = ?", (new, msgpack.packb(c.record.to_dict()), c.id))
        except sqlite3.IntegrityError:
            c.record.name = old
            raise Conflict(f'the container name "{new}" is already in use') from None
        self.journal.container(c, "rename", oldName=old)

    def get(self, ref: str) -> Container:
        """By name, full id or a unique id prefix."""
        rows = self.db.execute("SELECT id, record FROM containers WHERE name = ?", (ref,)).fetchall()
        if not rows and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.db.execute("SELECT id, record FROM containers WHERE id >= ? AND id < ? LIMIT 2", (ref, ref + "g")).fetchall()
            if len(rows) > 1:
                raise InvalidArgument(f"container id prefix {ref} is ambiguous")
        if not rows:
            raise ContainerNotFound(f"no such container: {ref}")
        return Container(_decode(rows[0][1]), self.paths.container(rows[0][0]), self)

    def reload(self, c: Container) -> ContainerRecord:
        """The record as it is now (another pyc may have changed it)."""
        row = self.db.execute("SELECT record FROM containers WHERE id = ?", (c.id,)).fetchone()
        if row is None:
            raise ContainerNotFound(f"no such container: {c.name}")
        return _decode(row[0])

    def all(self) -> list[Container]:
        rows = self.db.execute("SELECT id, record FROM containers ORDER BY created DESC").fetchall()
        return [Container(_decode(record), self.paths.container(cid), self) for cid, record in rows]

    def remove(self, c: Container, force: bool = False, cgroup: bool = True) -> None:
        """`cgroup=False` when the caller knows it is gone (a run that ended and removed it)."""
        import pyc_core

        if c.status == "running" and not force:
            raise Conflict(f"container {c.name} is running: stop it first, or use -f")
        if cgroup:
            # Whatever still runs in the container's cgroup is killed with it.
            pyc_core.remove_cgroup(c.cgroup, c.cgroup_root)
        if c.monitor_state() is not None:
            try:
                self.save(c)  # its monitor's last word into the row, which may outlive the files
            except ContainerNotFound:
                pass
        self._forget(c.id, c.name)
        self.journal.container(c, "destroy")

    def _forget(self, cid: str, name: str) -> None:
        import pyc_core

        # The directory is moved aside first, in one step, then the row goes: a crash between
        # leaves a row without files, which ps shows and rm removes; the directory left in tmp/
        # is collected by the next import or rmi.
        doomed = os.path.join(self.paths.tmp, f"{os.getpid()}-rm-{cid}")
        try:
            os.makedirs(self.paths.tmp, exist_ok=True)
            os.rename(self.paths.container(cid), doomed)
        except FileNotFoundError:
            doomed = self.paths.container(cid)
        self.db.execute("DELETE FROM containers WHERE id = ?", (cid,))
        pyc_core.remove_tree(doomed)
