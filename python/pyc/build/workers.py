"""Stages side by side: each one that can run while another does runs in a worker process,
forked from the build's main thread. Not threads: a thread each hung now and then, and a
container's raw clone from a process whose other threads hold locks, or a signal (a RUN's
Ctrl-C, forwarded from the signalfd of whichever thread blocked it) read by the wrong thread,
are hazards a process of its own has none of. A worker is one thread: it runs its stage as a
build of one stage does, and sends its steps (their progress, a RUN's output as a descriptor for
the terminal display) over a socket; its result (the stage's state, the file digests it learnt,
the build args it used) or its error, as a file in the build's scratch dir. A worker is in a
process group of its own: a Ctrl-C reaches it once, from the build, which sends one to each
worker on a Ctrl-C and when a stage fails, as BuildKit cancels the rest of a build."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

from pyc.build import progress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyc.build.builder import Builder, State
    from pyc.build.dockerfile import Stage


class Worker:
    __slots__ = ("pid", "sock", "stage", "steps", "result", "readers", "digests", "used_args", "interrupted")

    def __init__(self, pid: int, sock: socket.socket, stage: Stage, result: str) -> None:
        self.pid, self.sock, self.stage, self.result = pid, sock, stage, result
        self.steps: dict[int, progress.Step] = {}
        self.readers: list[Any] = []  # the terminal display's threads reading its RUNs' output
        self.digests: dict[str, list[object]] = {}  # the file digests it learnt
        self.used_args: list[str] = []
        self.interrupted = False  # a Ctrl-C sent: once only, so that its cleanup is not cut short


def start(builder: Builder, stage: Stage, others: list[Worker]) -> Worker:
    """A worker process that runs `stage` (its stages below are built)."""
    result = os.path.join(builder.scratch(), f"stage-{stage.index}.json")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sys.stdout.flush()  # else the worker would write what the buffer held again
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the worker: never returns
        code = 1
        try:
            os.setpgid(0, 0)
            ours.close()
            for w in others:
                w.sock.close()
            code = _work(builder, stage, theirs, result)
        finally:
            os._exit(code)
    theirs.close()
    return Worker(pid, ours, stage, result)


def _work(builder: Builder, stage: Stage, sock: socket.socket, result: str) -> int:
    """In the worker: the stage run, its outcome written to `result`."""
    import contextlib
    import traceback

    from pyc.engine import Engine
    from pyc.errors import PycError

    out: dict[str, Any]
    before = dict(builder.digests.known)
    try:
        # Its own Engine (a pyc.db connection is not to cross a fork), scratch dir and display.
        builder.engine = Engine(builder.store.paths.root)
        builder._scratch, builder._exit = None, contextlib.ExitStack()
        if isinstance(builder.progress, progress.Tty):
            builder.progress = Relay(sock)
        builder.used_args = set()
        with builder._exit:
            st = builder.run_stage(stage)
        known = builder.digests.known
        out = {
            "state": [st.config, st.layers, st.key, st.shell, st.args],
            "digests": {k: v for k, v in known.items() if before.get(k) != v},
            "used_args": sorted(builder.used_args),
        }
    except BaseException as e:  # every failure goes to the build, which raises it
        if isinstance(e, PycError):
            out = {"error": [type(e).__module__, type(e).__qualname__, str(e), e.kind.value, e.errno]}
        elif isinstance(e, KeyboardInterrupt):
            out = {"interrupted": True}
        else:
            out = {"bug": "".join(traceback.format_exception(e))}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stage is over: its outcome must reach the build
    with open(result, "w") as f:
        json.dump(out, f)
    return 0


class Relay(progress.Plain):
    """The terminal display's side in a worker: its steps sent to the build, which shows them;
    a RUN's output on a pipe whose read end goes with the message."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.ids: dict[int, int] = {}

    def send(self, *msg: object, fds: list[int] | None = None) -> None:
        socket.send_fds(self.sock, [json.dumps(msg).encode()], fds or [])

    def step(self, label: str) -> progress.Step:
        s = progress.Step(label)
        self.ids[id(s)] = n = len(self.ids)
        self.send("step", n, label)
        return s

    def done(self, step: progress.Step, cached: bool | None) -> None:
        super().done(step, cached)
        self.send("done", self.ids[id(step)], cached)

    def failed(self, step: progress.Step) -> None:
        super().failed(step)
        self.send("failed", self.ids[id(step)])

    def say(self, line: str) -> None:
        pass

    def output(self, step: progress.Step) -> tuple[int | None, Any]:
        r, w = os.pipe()
        try:
            self.send("output", self.ids[id(step)], fds=[r])
        finally:
            os.close(r)
        return w, lambda: os.close(w)


def wait(workers: list[Worker], shown: progress.Plain) -> tuple[Worker, State | BaseException]:
    """The next worker to end, with its stage's state or its error; the others' messages shown
    meanwhile."""
    while True:
        ready, _, _ = select.select([w.sock for w in workers], [], [])
        for w in workers:
            if w.sock not in ready:
                continue
            msg, fds, _, _ = socket.recv_fds(w.sock, 65536, 1)
            if msg:
                _show(w, json.loads(msg), fds, shown)
                continue
            return w, _end(w)


def _show(w: Worker, msg: list[Any], fds: list[int], shown: progress.Plain) -> None:
    what, n = msg[0], msg[1]
    if what == "step":
        w.steps[n] = shown.step(msg[2])
    elif what == "done":
        shown.done(w.steps[n], msg[2])
    elif what == "failed":
        shown.failed(w.steps[n])
    elif what == "output" and fds and isinstance(shown, progress.Tty):
        w.readers.append(shown.follow(w.steps[n], fds[0]))
        return
    for fd in fds:
        os.close(fd)


def _end(w: Worker) -> State | BaseException:
    from pyc.build.builder import State
    from pyc.errors import Kind, PycError

    w.sock.close()
    _, status = os.waitpid(w.pid, 0)
    for t in w.readers:
        t.join()
    try:
        with open(w.result) as f:
            out = json.load(f)
        os.unlink(w.result)
    except (OSError, ValueError):
        if w.interrupted:
            return KeyboardInterrupt()
        return PycError(f"{w.stage.line.file}:{w.stage.line.line}: the stage's worker process ended (wait status {status:#x}) without its result")
    if "state" in out:
        config, layers, key, shell, args = out["state"]
        st = State(config, [(d, s) for d, s in layers], key)
        st.shell, st.args = shell, args
        w.digests, w.used_args = out["digests"], out["used_args"]
        return st
    if "error" in out:
        import importlib

        module, name, message, kind, errno = out["error"]
        cls: Any = importlib.import_module(module)
        for part in name.split("."):
            cls = getattr(cls, part)
        try:
            e: BaseException = cls(message, Kind.of(kind), errno)
        except TypeError:  # a class with other arguments: its message and kind still
            e = PycError(message, Kind.of(kind), errno)
        return e
    if "interrupted" in out:
        return KeyboardInterrupt()
    return RuntimeError(out["bug"])


def interrupt(workers: list[Worker]) -> None:
    """Ctrl-C to each worker: its running RUN gets it (forwarded), or its next step does not start."""
    for w in workers:
        if not w.interrupted:
            w.interrupted = True
            try:
                os.kill(w.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
