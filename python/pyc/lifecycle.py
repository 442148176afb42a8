"""Detached containers: start (through pyc-monitor), stop, kill, wait, remove. The monitor is
the only writer of a started container's state (state.msgpack); these commands signal the
container through a pidfd (no pid-reuse race) and wait for the monitor to record the end.
Commands on one container take turns through a flock on its `lock` file."""

from __future__ import annotations

import os
import sys
import time

from pyc.containers import LIVE, Container, ContainerStore, holder_alive
from pyc.errors import CommandFailed, Conflict, ContainerNotFound, InvalidArgument, Kind, NotRunning, PycError
from pyc.records import LogOptions, MonitorConfig, Restart, RunConfig
from pyc.store import atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal

    from pyc.runtime.spec import RunOptions

STOP_TIMEOUT = 10  # docker's default for `stop -t`
POLICIES = ("no", "always", "unless-stopped", "on-failure")


def restart_policy(value: str | None) -> tuple[str, int]:
    """docker's --restart: no | always | unless-stopped | on-failure[:N]."""
    name, _, count = (value or "no").partition(":")
    if name not in POLICIES or (count and (name != "on-failure" or not count.isdigit())):
        raise InvalidArgument(f"invalid restart policy {value!r}: use no, always, unless-stopped or on-failure[:N]")
    return name, int(count or 0)


def log_options(opts: list[str]) -> LogOptions:
    from pyc.runtime.resources import parse_bytes

    log = LogOptions()
    for opt in opts:
        key, eq, value = opt.partition("=")
        if key == "max-size" and eq:
            log.max_size = parse_bytes("--log-opt max-size", value)
        elif key == "max-file" and value.isdigit() and int(value) > 0:
            log.max_files = int(value)
        else:
            raise InvalidArgument(f"invalid --log-opt {opt!r}: use max-size=SIZE or max-file=N")
    return log


def monitor_config(c: Container, opts: RunOptions, run: RunConfig) -> MonitorConfig:
    """What the container's pyc-monitor reads (monitor.msgpack): the run config, its --restart
    and --log-opt (checked here), and what to do at its end."""
    policy, count = restart_policy(opts.restart)
    if opts.remove and policy != "no":
        raise InvalidArgument("conflicting options: --restart and --rm")
    # `run -d --rm`: at its end the monitor runs `pyc rm` on the container.
    on_end = [sys.executable, "-c", "from pyc.cli.main import main; main()", "rm", "-f", c.id] if opts.remove else []
    return MonitorConfig(run=run, restart=Restart(policy=policy, max=count), log=log_options(opts.log_opts), on_end=on_end)


class _lock:
    """The container's flock, and its record read again once the lock is ours: a `pyc rm`
    that went first removed it, a `pyc rename` renamed it."""

    def __init__(self, store: ContainerStore, c: Container) -> None:
        self.store = store
        self.c = c
        self.lock = atomic.locked(c.path("lock"))

    def __enter__(self) -> None:
        try:
            self.lock.__enter__()
        except FileNotFoundError:
            pass  # a crash in rm left the row without its directory: nothing else to guard
        try:
            self.c.record = self.store.reload(self.c)
        except ContainerNotFound:
            self.lock.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__()


def start(store: ContainerStore, c: Container) -> Container:
    import pyc_core
    from pyc.monitor import spawn

    with _lock(store, c):
        c.record.state = c.current_state()  # the last run's end, kept if this start fails
        if c.record.state.is_paused:
            raise Conflict(f"cannot start a paused container {c.name}, try unpause instead")
        if c.record.state.status in LIVE:
            return c  # docker: starting a running container is not an error
        c.record.state = c.record.state.replace(paused=False)
        if not os.path.exists(c.path("monitor.msgpack")):
            raise Conflict(f"container {c.name} was run in the foreground: it cannot be started again")
        for stale in ("stopping", "state.msgpack"):
            try:
                os.unlink(c.path(stale))
            except FileNotFoundError:
                pass
        try:
            spawn(c.dir)
        except CommandFailed as e:
            c.record.state = c.record.state.replace(exit_code=pyc_core.ERROR_KINDS.get(e.kind.value, 125), error=str(e))
            store.save(c)
            raise
    return c


def _signal_name(value: str) -> signal.Signals:
    import signal  # here, not at the top: its enums cost rm and start a few milliseconds

    v = value.upper()
    try:
        return signal.Signals(int(v)) if v.isdigit() else signal.Signals[v if v.startswith("SIG") else "SIG" + v]
    except (KeyError, ValueError):
        raise InvalidArgument(f"invalid signal: {value}") from None


def _container_pidfd(c: Container) -> int | None:
    """A pidfd on the container's process, checked to still be the one the monitor runs."""
    st = c.current_state()
    if st.status != "running" or not st.pid:
        return None
    try:
        fd = os.pidfd_open(st.pid)
    except ProcessLookupError:
        return None
    again = c.current_state()
    if again.status != "running" or again.pid != st.pid:
        os.close(fd)
        return None
    return fd


def _ends_within(pidfd: int, seconds: float | None) -> bool:
    """Whether the process of `pidfd` ends within `seconds` (None: however long it takes)."""
    import select

    p = select.poll()
    p.register(pidfd, select.POLLIN)
    return bool(p.poll(None if seconds is None else max(0, seconds) * 1000))


def _wait_monitor(c: Container, seconds: float = 90) -> None:
    """Until the monitor has recorded the end and gone."""
    st = c.current_state()
    if not holder_alive(st):
        return
    try:
        fd = os.pidfd_open(st.monitor_pid)
    except ProcessLookupError:
        return
    try:
        if not _ends_within(fd, seconds):
            raise PycError(f"container {c.name}: its monitor (pid {st.monitor_pid}) did not finish", Kind.SYSTEM)
    finally:
        os.close(fd)


def _end(store: ContainerStore, c: Container, sig: signal.Signals, timeout: float) -> None:
    """`sig`, then SIGKILL after `timeout`; no restart follows (the `stopping` mark). A paused
    container is thawed once the signal is on its way, as docker does, so that it acts on it."""
    import signal

    with open(c.path("stopping"), "w"):
        pass
    fd = _container_pidfd(c)
    if fd is not None:
        try:
            _signal(store, c, fd, sig)
            _thaw(store, c)
            if not _ends_within(fd, timeout):
                _signal(store, c, fd, signal.SIGKILL)
                _ends_within(fd, 10)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)
    _wait_monitor(c)


def _signal(store: ContainerStore, c: Container, pidfd: int, sig: signal.Signals) -> None:
    import signal

    signal.pidfd_send_signal(pidfd, sig)
    store.journal.container(c, "kill", signal=str(int(sig)))


def stop(store: ContainerStore, c: Container, timeout: float | None) -> Container:
    with _lock(store, c):
        if c.current_state().status not in LIVE:
            raise NotRunning(f"container {c.name} is not running")
        sig = _signal_name(c.record.config.stop_signal or "SIGTERM")
        _end(store, c, sig, STOP_TIMEOUT if timeout is None else timeout)
    store.journal.container(c, "stop")
    return c


def kill(store: ContainerStore, c: Container, sig: str) -> Container:
    import signal

    s = _signal_name(sig)
    with _lock(store, c):
        fd = _container_pidfd(c)
        if fd is None:
            raise NotRunning(f"container {c.name} is not running")
        try:
            _signal(store, c, fd, s)
        except ProcessLookupError:
            raise NotRunning(f"container {c.name} is not running") from None
        finally:
            os.close(fd)
        # docker thaws a paused container for a signal that ends it: SIGKILL, or its stop
        # signal (any signal when its image names none), so that the signal takes effect.
        stop_signal = c.record.config.stop_signal
        if s == signal.SIGKILL or not stop_signal or s == _signal_name(stop_signal):
            _thaw(store, c)
    return c


def pause(store: ContainerStore, c: Container) -> Container:
    """Freeze every process of the container (its cgroup's freezer)."""
    import pyc_core

    with _lock(store, c):
        st = c.current_state()
        if st.status == "restarting":
            raise Conflict(f"container {c.name} is restarting, wait until the container is running")
        if st.status != "running":
            raise NotRunning(f"container {c.name} is not running")
        if st.paused:
            raise Conflict(f"container {c.name} is already paused")
        pyc_core.freeze_cgroup(c.cgroup, c.cgroup_root)
        c.record.state = c.record.state.replace(paused=True)
        store.save(c)
    store.journal.container(c, "pause")
    return c


def unpause(store: ContainerStore, c: Container) -> Container:
    with _lock(store, c):
        if not c.current_state().is_paused:
            raise Conflict(f"container {c.name} is not paused")
        _thaw(store, c)
    return c


def _thaw(store: ContainerStore, c: Container) -> None:
    """Thaw a paused container (under its lock); nothing for one that is not paused."""
    import pyc_core

    if not c.record.state.paused:
        return
    pyc_core.thaw_cgroup(c.cgroup, c.cgroup_root)
    c.record.state = c.record.state.replace(paused=False)
    store.save(c)
    store.journal.container(c, "unpause")


def wait(c: Container) -> int:
    """Block until the container's (next) end; its exit code."""
    while True:
        st = c.current_state()
        if st.status == "exited":
            return st.exit_code
        pid = st.pid
        fd = _container_pidfd(c) if st.status == "running" else None
        if fd is None:
            time.sleep(0.05)
            continue
        try:
            _ends_within(fd, None)
        finally:
            os.close(fd)
        # The monitor records the end a moment after the process went.
        while True:
            st = c.current_state()
            if st.status != "running" or st.pid != pid:
                return st.exit_code
            time.sleep(0.005)


def remove(store: ContainerStore, c: Container, force: bool) -> None:
    with _lock(store, c):
        st = c.current_state()
        if st.is_paused and not force:
            raise Conflict(f"you cannot remove a paused container {c.name}: unpause and then stop it first, or use -f")
        if st.status in LIVE and not force:
            raise Conflict(f"container {c.name} is running: stop it first, or use -f")
        # A foreground run's holder is its pyc, which ends once store.remove kills the cgroup
        # (a frozen one killed, then thawed).
        if os.path.exists(c.path("monitor.msgpack")):
            if st.status in LIVE:
                import signal

                _end(store, c, signal.SIGKILL, 10)
            _wait_monitor(c, 10)
        store.remove(c, force=True)


def rename(store: ContainerStore, c: Container, new: str) -> None:
    """The new name is taken (O_EXCL) before the old one is let go: never two, never none. A
    detached container's monitor logs its events under the new name from then on."""
    import pyc_core

    with _lock(store, c):
        store.rename(c, new)
        try:
            with open(c.path("monitor.msgpack"), "rb") as f:
                monitor = MonitorConfig.from_dict(pyc_core.unpackb(f.read()))
        except FileNotFoundError:
            return
        if monitor.run.events is not None:
            monitor.run.events.attributes["name"] = new
            atomic.write_file(c.path("monitor.msgpack"), pyc_core.packb(monitor.to_dict()), durable=False)
