"""Containers: a row each in pyc.db (containerdb.py: id, unique name, the record `ps` and
`inspect` show); containers/<id>/ holds the upper and work dirs of the overlay, the mount point,
the files pyc bind-mounts into /etc, and a detached container's monitor files and log.
A detached container also has state.msgpack, written by its pyc-monitor at every change: that,
checked against the monitor being alive, is its state, whatever a pyc command died doing."""

from __future__ import annotations

import os
import time

import msgpack

from pyc.errors import Conflict, ContainerNotFound, InvalidArgument
from pyc.paths import Paths

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    import sqlite3
    from typing import Any

MONITOR_STATE = "state.msgpack"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"
LIVE = ("running", "restarting")

_ADJECTIVES = "brave calm eager fond gentle happy jolly keen lucid merry nifty proud quiet sharp sunny swift tender vivid witty zen".split()
_NOUNS = "ada babbage curie darwin euler fermi gauss hopper jobs knuth lovelace mccarthy noether pascal ritchie shannon turing wozniak".split()


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


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
    __slots__ = ("data", "dir", "store")

    def __init__(self, data: dict[str, Any], directory: str, store: ContainerStore | None = None) -> None:
        self.data = data
        self.dir = directory
        self.store = store

    @property
    def id(self) -> str:
        return str(self.data["Id"])

    @property
    def name(self) -> str:
        return str(self.data["Name"])

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.data["State"]
        return state

    @property
    def status(self) -> str:
        """created, running or exited."""
        return str(self.current_state()["Status"])

    def current_state(self) -> dict[str, Any]:
        """The recorded state (the monitor's, for a detached container), corrected for a holder
        (pyc-monitor, or the pyc of a foreground run) that died while the container ran: the
        kernel killed the container with it (SIGKILL, exit code 137)."""
        st = self.state
        monitor = self.monitor_state()
        if monitor is not None:
            st = dict(st, **{k: v for k, v in monitor.items() if v != "" or k == "Error"})
        if st["Status"] in LIVE and not self.holder_alive(st):
            st = dict(st, Status="exited", ExitCode=137, Pid=0, Error="its holder (pyc or pyc-monitor) was killed")
        if monitor is not None and st["Status"] == "exited" and st != self.state and self.store is not None and not self.holder_alive(st):
            # The monitor is done: its last word goes into pyc.db, which outlives its files.
            self.store.fold_state(self, st)
        return st

    def monitor_state(self) -> dict[str, Any] | None:
        try:
            with open(self.path(MONITOR_STATE), "rb") as f:
                data: dict[str, Any] = msgpack.unpackb(f.read())
                return data
        except (FileNotFoundError, ValueError, msgpack.UnpackException):
            return None

    @staticmethod
    def holder_alive(st: dict[str, Any]) -> bool:
        pid = st.get("MonitorPid") or 0
        return bool(pid) and _start_time(pid) == st.get("MonitorStart")

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    @property
    def cgroup(self) -> str:
        """The container's cgroup, relative to each hierarchy under `cgroup_root`."""
        return f"{self.data.get('HostConfig', {}).get('CgroupParent') or 'pyc'}/{self.id}"

    @property
    def cgroup_root(self) -> str:
        return str(self.data.get("CgroupRoot") or DEFAULT_CGROUP_ROOT)


class ContainerStore:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    _db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            from pyc.containerdb import connect

            self._db = connect(self.paths.root, self.paths.containers)
        return self._db

    def new(self, name: str | None, record: dict[str, Any]) -> Container:
        """A container in memory only: its id, name and paths, to validate a run against
        before anything is written."""
        cid = os.urandom(32).hex()
        if name is None:
            pick = os.urandom(2)
            name = f"{_ADJECTIVES[pick[0] % len(_ADJECTIVES)]}_{_NOUNS[pick[1] % len(_NOUNS)]}_{cid[:4]}"
        elif not (name[:1].isalnum() and all(c.isalnum() or c in "_.-" for c in name)):
            raise InvalidArgument(f"invalid container name {name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        data = {"Id": cid, "Name": name, "Created": _now(), **record, "State": {"Status": "created", "ExitCode": 0, "OOMKilled": False}}
        return Container(data, self.paths.container(cid))

    def create(self, c: Container, files: dict[str, str], running: bool = False) -> None:
        """Write the container: its row (the name is taken there), directories, `files` in its
        directory (its record already marked running when it is about to start: one write)."""
        import sqlite3

        if running:
            self._set_running(c)
        try:
            self.db.execute("INSERT INTO containers VALUES (?, ?, ?, ?)", (c.id, c.name, c.data["Created"], msgpack.packb(c.data)))
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

    def save(self, c: Container) -> None:
        if self.db.execute("UPDATE containers SET record = ? WHERE id = ?", (msgpack.packb(c.data), c.id)).rowcount == 0:
            raise ContainerNotFound(f"no such container: {c.name}")

    @staticmethod
    def _set_running(c: Container) -> None:
        pid = os.getpid()
        c.state.update(Status="running", StartedAt=_now(), MonitorPid=pid, MonitorStart=_start_time(pid))

    def mark_exited(self, c: Container, code: int, oom_killed: bool = False) -> None:
        """Record the end; a container removed meanwhile (`pyc rm -f`) has nothing to record."""
        c.state.update(Status="exited", ExitCode=code, OOMKilled=oom_killed, FinishedAt=_now(), MonitorPid=None)
        try:
            self.save(c)
        except ContainerNotFound:
            pass

    def rename(self, c: Container, new: str) -> None:
        import sqlite3

        self.new(new, {})  # checks the name's form
        c.data["Name"] = new
        try:
            self.db.execute("UPDATE containers SET name = ?, record = ? WHERE id = ?", (new, msgpack.packb(c.data), c.id))
        except sqlite3.IntegrityError:
            raise Conflict(f'the container name "{new}" is already in use') from None

    def get(self, ref: str) -> Container:
        """By name, full id or a unique id prefix."""
        rows = self.db.execute("SELECT id, record FROM containers WHERE name = ?", (ref,)).fetchall()
        if not rows and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.db.execute("SELECT id, record FROM containers WHERE id >= ? AND id < ? LIMIT 2", (ref, ref + "g")).fetchall()
            if len(rows) > 1:
                raise InvalidArgument(f"container id prefix {ref} is ambiguous")
        if not rows:
            raise ContainerNotFound(f"no such container: {ref}")
        return Container(msgpack.unpackb(rows[0][1]), self.paths.container(rows[0][0]), self)

    def fold_state(self, c: Container, state: dict[str, Any]) -> None:
        try:
            data = self.reload(c)
        except ContainerNotFound:
            return
        data["State"] = state
        self.db.execute("UPDATE containers SET record = ? WHERE id = ?", (msgpack.packb(data), c.id))

    def reload(self, c: Container) -> dict[str, Any]:
        """The record as it is now (another pyc may have changed it)."""
        row = self.db.execute("SELECT record FROM containers WHERE id = ?", (c.id,)).fetchone()
        if row is None:
            raise ContainerNotFound(f"no such container: {c.name}")
        data: dict[str, Any] = msgpack.unpackb(row[0])
        return data

    def all(self) -> list[Container]:
        rows = self.db.execute("SELECT id, record FROM containers ORDER BY created DESC").fetchall()
        return [Container(msgpack.unpackb(record), self.paths.container(cid), self) for cid, record in rows]

    def remove(self, c: Container, force: bool = False, cgroup: bool = True) -> None:
        """`cgroup=False` when the caller knows it is gone (a run that ended and removed it)."""
        import pyc_core

        if c.status == "running" and not force:
            raise Conflict(f"container {c.name} is running: stop it first, or use -f")
        if cgroup:
            # Whatever still runs in the container's cgroup is killed with it.
            pyc_core.remove_cgroup(c.cgroup, c.cgroup_root)
        self._forget(c.id, c.name)

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
