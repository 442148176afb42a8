"""Verbs of a container's life: create is in run.py; start, stop, restart, kill, pause, unpause,
wait, rm, rename, logs, container prune here. As docker, a verb on several containers goes on past a
failure, one line for it, and fails at the end if any failed."""

from __future__ import annotations

import sys

from pyc.cli.spec import Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyc.engine import Engine

CONTAINERS = (Arg("containers", "CONTAINER", "Container names or IDs.", many=True),)
TIME = Flag(("-t", "--time"), "time", int, "Seconds to wait before SIGKILL (default 10).")


def _each(refs: list[str], act: Callable[[str], object], echo: bool = True) -> None:
    """docker's way: go on past a failure, one line for it; Reported (of the first failure's
    kind) at the end if any failed."""
    from pyc.errors import PycError, Reported

    failed: PycError | None = None
    for ref in refs:
        try:
            out = act(ref)
            print(ref if echo else out, flush=True)
        except PycError as e:
            sys.stderr.write(f"pyc: {e}\n")
            failed = failed or e
    if failed is not None:
        raise Reported("", failed.kind)


def start(containers: list[str], attach: bool) -> int | None:
    from pyc import attach as tty_attach
    from pyc.cli.attach import attach_and_wait
    from pyc.engine import Engine
    from pyc.errors import Kind, PycError

    engine = Engine()
    if not attach:
        _each(containers, engine.start)
        return None
    if len(containers) != 1:
        raise PycError("you cannot start and attach multiple containers at once", Kind.USAGE)
    c = engine.start(containers[0])
    if c.record.config.tty:  # its monitor serves the terminal
        return attach_and_wait(engine, c.id, tty_attach.DEFAULT_DETACH_KEYS)
    print_logs(engine, c.id, follow=True)
    return engine.wait(c.id)


def stop(containers: list[str], time: int | None) -> None:
    from pyc.engine import Engine
    from pyc.errors import NotRunning

    engine = Engine()

    def one(ref: str) -> None:
        try:
            engine.stop(ref, time)
        except NotRunning as e:
            # docker's answer (exit 0, nothing done), said on one line.
            sys.stderr.write(f"pyc: {e}: nothing to stop\n")

    _each(containers, one)


def restart(containers: list[str], time: int | None) -> None:
    from pyc.engine import Engine

    engine = Engine()
    _each(containers, lambda ref: engine.restart(ref, time))


def pause(containers: list[str]) -> None:
    from pyc.engine import Engine

    _each(containers, Engine().pause)


def unpause(containers: list[str]) -> None:
    from pyc.engine import Engine

    _each(containers, Engine().unpause)


def kill(containers: list[str], signal: str) -> None:
    from pyc.engine import Engine

    engine = Engine()
    _each(containers, lambda ref: engine.kill(ref, signal))


def wait(containers: list[str]) -> None:
    from pyc.engine import Engine

    _each(containers, Engine().wait, echo=False)


def rm(containers: list[str], force: bool, volumes: bool) -> None:
    from pyc.engine import Engine

    engine = Engine()
    _each(containers, lambda ref: engine.remove_container(ref, force))


def rename(container: str, new_name: str) -> None:
    from pyc.engine import Engine

    Engine().rename(container, new_name)


def prune(force: bool) -> None:
    from pyc.cli.system import confirm, print_reports
    from pyc.engine import Engine

    if not force and not confirm(["WARNING! This will remove all stopped containers."]):
        return
    report = Engine().prune_containers()
    print_reports([report], report.reclaimed)


def logs(container: str, follow: bool, tail: str, timestamps: bool, since: str | None) -> None:
    from pyc.engine import Engine

    print_logs(Engine(), container, follow, tail, timestamps, since)


def print_logs(engine: Engine, ref: str, follow: bool = False, tail: str = "all", timestamps: bool = False, since: str | None = None) -> None:
    from pyc import logs as logfile
    from pyc.errors import InvalidArgument

    if tail != "all" and not tail.isdigit():
        raise InvalidArgument(f"invalid --tail {tail!r}: a number of lines, or all")
    records, offset = engine.logs(ref, None if tail == "all" else int(tail), since)
    for r in records:
        logfile.write(r, timestamps)
    if follow:
        for r in engine.follow_logs(ref, offset):
            logfile.write(r, timestamps)


COMMANDS = [
    Command(
        ("container", "start"),
        "Start stopped or created containers.",
        start,
        CONTAINERS,
        (Flag(("-a", "--attach"), "attach", bool, "Wait for it and print its output."),),
        aliases=(("start",),),
    ),
    Command(("container", "stop"), "Stop running containers: the image's STOPSIGNAL (or SIGTERM), then SIGKILL.", stop, CONTAINERS, (TIME,), aliases=(("stop",),)),
    Command(("container", "restart"), "Stop (if running) and start containers again.", restart, CONTAINERS, (TIME,), aliases=(("restart",),)),
    Command(
        ("container", "kill"),
        "Send a signal to running containers (SIGKILL by default).",
        kill,
        CONTAINERS,
        (Flag(("-s", "--signal"), "signal", help="Signal to send (name or number).", default="KILL"),),
        aliases=(("kill",),),
    ),
    Command(("container", "pause"), "Freeze every process of running containers.", pause, CONTAINERS, aliases=(("pause",),)),
    Command(("container", "unpause"), "Thaw paused containers.", unpause, CONTAINERS, aliases=(("unpause",),)),
    Command(("container", "wait"), "Block until containers stop; print their exit codes.", wait, CONTAINERS, aliases=(("wait",),)),
    Command(
        ("container", "rm"),
        "Remove containers.",
        rm,
        CONTAINERS,
        (
            Flag(("-f", "--force"), "force", bool, "Kill it first if it runs."),
            Flag(("-v", "--volumes"), "volumes", bool, "Also anonymous volumes (pyc makes none)."),
        ),
        aliases=(("rm",), ("container", "remove")),
    ),
    Command(("container", "rename"), "Rename a container.", rename, (Arg("container", "CONTAINER"), Arg("new_name", "NEW_NAME")), aliases=(("rename",),)),
    Command(("container", "prune"), "Remove all stopped containers.", prune, flags=(Flag(("-f", "--force"), "force", bool, "Do not prompt for confirmation."),)),
    Command(
        ("container", "logs"),
        "Print a container's output: stdout to stdout, stderr to stderr.",
        logs,
        (Arg("container", "CONTAINER"),),
        (
            Flag(("-f", "--follow"), "follow", bool, "Keep printing while it runs."),
            Flag(("-n", "--tail"), "tail", help="Lines from the end (default all).", default="all"),
            Flag(("-t", "--timestamps"), "timestamps", bool, "Show the time of each line."),
            Flag(("--since",), "since", help="Only lines since a time (RFC 3339, Unix time or a duration like 10m)."),
        ),
        aliases=(("logs",),),
    ),
]
