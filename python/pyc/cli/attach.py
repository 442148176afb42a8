"""`pyc attach` (a -t container's terminal, or else its output), and what `pyc start -a` does
for a container with a terminal."""

from __future__ import annotations

from pyc.cli.spec import Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.engine import Engine


def attach_and_wait(engine: Engine, ref: str, detach_keys: str) -> int:
    """Attach; the container's exit code once it ends, 0 after the detach keys."""
    from pyc import attach

    keys = attach.parse_detach_keys(detach_keys)
    cid = engine.container(ref).id
    try:
        s = engine.attach(cid)
    except attach.NoTerminal:
        return follow_output(engine, cid)
    with s:
        if attach.session(s, keys):
            return 0
    return engine.wait(cid)


def follow_output(engine: Engine, cid: str) -> int:
    """docker's attach to a container without a terminal: its output from now on, stdout and
    stderr apart, SIGINT and SIGTERM passed on to it (docker's --sig-proxy); its exit code at
    the end. Input is not passed: a detached container's stdin is closed."""
    import signal

    from pyc import logs
    from pyc.errors import PycError

    def proxy(sig: int, _frame: object) -> None:
        try:
            engine.kill(cid, signal.Signals(sig).name)
        except PycError:
            pass  # it has just ended: the follow below sees that

    old = {sig: signal.signal(sig, proxy) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for r in engine.follow_logs(cid):
            logs.write(r)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return engine.wait(cid)


def attach_(container: str, detach_keys: str) -> int:
    from pyc.engine import Engine

    return attach_and_wait(Engine(), container, detach_keys)


COMMANDS = [
    Command(
        ("container", "attach"),
        "Attach to a running container: its terminal (-d -t), or else its output.",
        attach_,
        (Arg("container", "CONTAINER"),),
        (Flag(("--detach-keys",), "detach_keys", help="Keys that detach, leaving the container running.", default="ctrl-p,ctrl-q"),),
        aliases=(("attach",),),
    ),
]
