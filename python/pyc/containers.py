"""Container records: containers/<id>/ holds container.msgpack (what `ps` and `inspect` show),
the upper and work dirs of the overlay, the mount point, and the files pyc bind-mounts into
/etc. A name is a file names/<name> made with O_EXCL, so two commands never share one.
A detached container also has state.msgpack, written by its pyc-monitor at every change: that,
checked against the monitor being alive, is its state, whatever a pyc command died doing."""

from __future__ import annotations

import os
import time

import msgpack

from pyc.errors import Conflict, ContainerNotFound, InvalidArgument
from pyc.paths import Paths
from pyc.store import atomic

TYPE_CHECKING = False  # typing costs milliseconds at import; the run path skips it
if TYPE_CHECKING:
    from typing import Any

RECORD = "container.msgpack"
MONITOR_STATE = "state.msgpack"
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
    __slots__ = ("data", "dir")

    def __init__(self, data: dict[str, Any], directory: str) -> None:
        self.data = data
        self.dir = directory

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
            return dict(st, Status="exited", ExitCode=137, Pid=0, Error="its holder (pyc or pyc-monitor) was killed")
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
        return f"pyc/{self.id}"


class ContainerStore:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def _reserve_name(self, name: str, cid: str) -> None:
        path = os.path.join(self.paths.names, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            if not self._stale_name(name):
                raise Conflict(f'the container name "{name}" is already in use') from None
            # A pyc killed in the middle of rm left the name without its container.
            os.unlink(path)
            return self._reserve_name(name, cid)
        with os.fdopen(fd, "w") as f:
            f.write(cid)

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
        """Write the container: its name, directories, `files` in its directory, its record
        (already marked running when it is about to start, to save a write)."""
        os.makedirs(self.paths.names, exist_ok=True)
        self._reserve_name(c.name, c.id)
        try:
            os.makedirs(c.dir)
            for sub in ("upper", "work", "rootfs"):
                os.mkdir(c.path(sub))
            for name, content in files.items():
                with open(c.path(name), "w") as f:
                    f.write(content)
            if running:
                self._set_running(c)
            self.save(c)
        except BaseException:
            self._forget(c.id, c.name)
            raise

    def save(self, c: Container) -> None:
        atomic.write_file(c.path(RECORD), msgpack.packb(c.data), durable=False)

    @staticmethod
    def _set_running(c: Container) -> None:
        pid = os.getpid()
        c.state.update(Status="running", StartedAt=_now(), MonitorPid=pid, MonitorStart=_start_time(pid))

    def mark_exited(self, c: Container, code: int, oom_killed: bool = False) -> None:
        """Record the end; a container removed meanwhile (`pyc rm -f`) has nothing to record."""
        c.state.update(Status="exited", ExitCode=code, OOMKilled=oom_killed, FinishedAt=_now(), MonitorPid=None)
        try:
            self.save(c)
        except FileNotFoundError:
            if os.path.isdir(c.dir):
                raise

    def rename(self, c: Container, new: str) -> None:
        self.new(new, {})  # checks the name's form
        os.makedirs(self.paths.names, exist_ok=True)
        self._reserve_name(new, c.id)
        old = c.name
        c.data["Name"] = new
        try:
            self.save(c)
        except BaseException:
            os.unlink(os.path.join(self.paths.names, new))
            raise
        try:
            os.unlink(os.path.join(self.paths.names, old))
        except FileNotFoundError:
            pass
        # A `run -d --rm` monitor removes the container's name at its end: the new one now.
        try:
            with open(c.path("monitor.msgpack"), "rb") as f:
                cfg = msgpack.unpackb(f.read())
        except FileNotFoundError:
            return
        old_path = os.path.join(self.paths.names, old)
        if old_path in cfg.get("remove", []):
            cfg["remove"] = [os.path.join(self.paths.names, new) if p == old_path else p for p in cfg["remove"]]
            atomic.write_file(c.path("monitor.msgpack"), msgpack.packb(cfg), durable=False)

    def _stale_name(self, name: str) -> bool:
        try:
            with open(os.path.join(self.paths.names, name)) as f:
                cid = f.read().strip()
        except FileNotFoundError:
            return False
        # An empty file is a name being reserved right now by another pyc.
        return bool(cid) and not os.path.isdir(self.paths.container(cid))

    def forget_stale_name(self, name: str) -> bool:
        """Drop a name whose container is gone (a crash in rm); whether there was one."""
        if not self._stale_name(name):
            return False
        try:
            os.unlink(os.path.join(self.paths.names, name))
        except FileNotFoundError:
            pass
        return True

    def get(self, ref: str) -> Container:
        """By name, full id or a unique id prefix."""
        try:
            with open(os.path.join(self.paths.names, ref)) as f:
                return self._load(f.read().strip())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        if ref and all(c in "0123456789abcdef" for c in ref):
            matches = [cid for cid in self._ids() if cid.startswith(ref)]
            if len(matches) == 1:
                return self._load(matches[0])
            if len(matches) > 1:
                raise InvalidArgument(f"container id prefix {ref} is ambiguous")
        raise ContainerNotFound(f"no such container: {ref}")

    def _ids(self) -> list[str]:
        try:
            return os.listdir(self.paths.containers)
        except FileNotFoundError:
            return []

    def _load(self, cid: str) -> Container:
        directory = self.paths.container(cid)
        try:
            with open(os.path.join(directory, RECORD), "rb") as f:
                return Container(msgpack.unpackb(f.read()), directory)
        except (FileNotFoundError, ValueError, msgpack.UnpackException):
            raise ContainerNotFound(f"no such container: {cid}") from None

    @staticmethod
    def reload(c: Container) -> dict[str, Any]:
        """The record as it is on disk now (another pyc may have changed it)."""
        try:
            with open(c.path(RECORD), "rb") as f:
                data: dict[str, Any] = msgpack.unpackb(f.read())
                return data
        except (FileNotFoundError, ValueError, msgpack.UnpackException):
            raise ContainerNotFound(f"no such container: {c.name}") from None

    def all(self) -> list[Container]:
        out = []
        for cid in self._ids():
            try:
                out.append(self._load(cid))
            except ContainerNotFound:
                continue
        out.sort(key=lambda c: str(c.data.get("Created", "")), reverse=True)
        return out

    def remove(self, c: Container, force: bool = False, cgroup: bool = True) -> None:
        """`cgroup=False` when the caller knows it is gone (a run that ended and removed it)."""
        import pyc_core

        if c.status == "running" and not force:
            raise Conflict(f"container {c.name} is running: stop it first, or use -f")
        if cgroup:
            # Whatever still runs in the container's cgroup is killed with it.
            pyc_core.remove_cgroup(c.cgroup)
        self._forget(c.id, c.name)

    def _forget(self, cid: str, name: str) -> None:
        import pyc_core

        # Moved aside first, in one step: the pyc process that ran the container may write its
        # exit into the directory meanwhile, and must find it gone rather than half removed.
        # A crash here leaves it in tmp/, which the next import or rmi collects.
        doomed = os.path.join(self.paths.tmp, f"{os.getpid()}-rm-{cid}")
        try:
            os.makedirs(self.paths.tmp, exist_ok=True)
            os.rename(self.paths.container(cid), doomed)
        except FileNotFoundError:
            doomed = self.paths.container(cid)
        pyc_core.remove_tree(doomed)
        try:
            os.unlink(os.path.join(self.paths.names, name))
        except FileNotFoundError:
            pass
