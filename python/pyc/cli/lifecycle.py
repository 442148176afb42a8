"""Verbs of detached containers: create, start, stop, restart, kill, wait, logs. As docker, a
verb on several containers goes on past a failure and exits 1 (not 125) if any failed."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer

from pyc.cli import verbs
from pyc.engine import Engine
from pyc.errors import PycError


def _each(refs: list[str], act: Callable[[str], object]) -> None:
    failed = 0
    for ref in refs:
        try:
            act(ref)
            print(ref)
        except PycError as e:
            sys.stderr.write(f"pyc: {e}\n")
            failed = 1
    raise typer.Exit(failed)


def register(app: typer.Typer, container_app: typer.Typer) -> None:
    from pyc import attach as tty_attach
    from pyc.cli.attach import attach_and_wait
    from pyc.cli.run import register_create

    def start(refs: list[str] = typer.Argument(...), attach: bool = typer.Option(False, "-a", "--attach", help="Wait for it and print its output.")) -> None:
        """Start stopped or created containers."""
        engine = Engine()
        if not attach:
            _each(refs, engine.start)
        if len(refs) != 1:
            raise PycError("you cannot start and attach multiple containers at once")
        c = engine.start(refs[0])
        if os.path.exists(c.path(tty_attach.SOCKET)):  # -t: its monitor serves the terminal
            raise typer.Exit(attach_and_wait(engine, c.id, tty_attach.DEFAULT_DETACH_KEYS))
        _print_logs(engine, c.id, follow=True)
        raise typer.Exit(engine.wait(c.id))

    def stop(refs: list[str] = typer.Argument(...), time: int | None = typer.Option(None, "-t", "--time", help="Seconds to wait before SIGKILL (default 10).")) -> None:
        """Stop running containers: the image's STOPSIGNAL (or SIGTERM), then SIGKILL."""
        raise typer.Exit(verbs.stop(Engine(), refs, time))

    def restart(refs: list[str] = typer.Argument(...), time: int | None = typer.Option(None, "-t", "--time", help="Seconds to wait before SIGKILL (default 10).")) -> None:
        """Stop (if running) and start containers again."""
        from pyc.lifecycle import NotRunning

        engine = Engine()

        def again(ref: str) -> None:
            try:
                engine.stop(ref, time)
            except NotRunning:
                pass
            engine.start(ref)

        _each(refs, again)

    def kill(refs: list[str] = typer.Argument(...), signal: str = typer.Option("KILL", "-s", "--signal", help="Signal to send (name or number).")) -> None:
        """Send a signal to running containers (SIGKILL by default)."""
        raise typer.Exit(verbs.kill(Engine(), refs, signal))

    def wait(refs: list[str] = typer.Argument(...)) -> None:
        """Block until containers stop; print their exit codes."""
        raise typer.Exit(verbs.wait(Engine(), refs))

    def logs(
        ref: str = typer.Argument(...),
        follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing while it runs."),
        tail: str = typer.Option("all", "-n", "--tail", help="Lines from the end (default all)."),
        timestamps: bool = typer.Option(False, "-t", "--timestamps", help="Show the time of each line."),
        since: str | None = typer.Option(None, "--since", help="Only lines since a time (RFC 3339, Unix time or a duration like 10m)."),
    ) -> None:
        """Print a container's output: stdout to stdout, stderr to stderr."""
        from pyc.errors import ContainerNotFound

        try:
            _print_logs(Engine(), ref, follow, tail, timestamps, since)
        except ContainerNotFound as e:
            sys.stderr.write(f"pyc: {e}\n")
            raise typer.Exit(1) from None

    for target in (app, container_app):
        target.command("start", help="Start stopped or created containers.")(start)
        target.command("stop", help="Stop running containers.")(stop)
        target.command("restart", help="Restart containers.")(restart)
        target.command("kill", help="Send a signal to running containers.")(kill)
        target.command("wait", help="Block until containers stop; print their exit codes.")(wait)
        target.command("logs", help="Print a container's output.")(logs)
        register_create(target)


def _print_logs(engine: Engine, ref: str, follow: bool = False, tail: str = "all", timestamps: bool = False, since: str | None = None) -> None:
    from pyc import logs as logfile
    from pyc.errors import InvalidArgument

    if tail != "all" and not tail.isdigit():
        raise InvalidArgument(f"invalid --tail {tail!r}: a number of lines, or all")
    c = engine.container(ref)
    after = logfile.parse_since(since) if since else None
    records, offset = logfile.records(c)
    if after is not None:
        records = [r for r in records if r[0].rstrip("Z") >= after]
    if tail != "all":
        records = records[len(records) - int(tail) :] if int(tail) else []
    for r in records:
        logfile.write(r, timestamps)
    if follow:
        for r in logfile.follow(c, offset):
            logfile.write(r, timestamps)
