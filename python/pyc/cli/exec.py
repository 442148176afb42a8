"""`pyc exec`: the typer command and the fast parser for the same flags (kept equal by
tests/unit/test_cli_exec.py), as for `pyc run`. Exit codes are docker's: the command's own, 126
when it cannot run, 127 when it is not found, and 1 when the container is missing or stopped
(docker's CLI exits 1 on the daemon's "No such container" and "is not running")."""

from __future__ import annotations

import sys

from pyc.runtime.exec import ExecOptions

TYPE_CHECKING = False  # typing costs milliseconds at import; the exec path skips it
if TYPE_CHECKING:
    import typer

# flag -> (ExecOptions field, takes a value, repeatable)
FLAGS: dict[str, tuple[str, bool, bool]] = {
    "-i": ("interactive", False, False),
    "--interactive": ("interactive", False, False),
    "-t": ("tty", False, False),
    "--tty": ("tty", False, False),
    "-d": ("detach", False, False),
    "--detach": ("detach", False, False),
    "-e": ("env", True, True),
    "--env": ("env", True, True),
    "-w": ("workdir", True, False),
    "--workdir": ("workdir", True, False),
    "-u": ("user", True, False),
    "--user": ("user", True, False),
}


def fast_parse(args: list[str]) -> tuple[str, ExecOptions] | None:
    """(container, options), or None when the line needs the full parser."""
    from pyc.cli.run import parse_flags

    parsed = parse_flags(args, FLAGS)
    if parsed is None or parsed[1] + 1 >= len(args):
        return None
    values, i = parsed
    return args[i], ExecOptions(args[i + 1 :], **values)


def exec_command(ref: str, opts: ExecOptions) -> int:
    from pyc.engine import CommandFailed, Engine
    from pyc.errors import Conflict, ContainerNotFound

    try:
        sys.stdout.flush()
        if opts.detach:
            result = Engine().exec(ref, opts)
        else:
            result = Engine().exec(ref, opts, stdin=0 if opts.interactive else None, stdout=1, stderr=2)
    except (ContainerNotFound, Conflict) as e:
        sys.stderr.write(f"pyc: {e}\n")
        return 1
    except CommandFailed as e:
        sys.stderr.write(f"pyc: {e}\n")
        return e.exit_code
    return result.status


def register(app: typer.Typer, container_app: typer.Typer) -> None:
    import typer

    def exec(
        container: str = typer.Argument(..., help="Container name or ID."),
        command: list[str] = typer.Argument(..., help="Command and arguments."),
        interactive: bool = typer.Option(False, "-i", "--interactive", help="Keep stdin open and pass it in."),
        tty: bool = typer.Option(False, "-t", "--tty", help="Allocate a pseudo-terminal."),
        detach: bool = typer.Option(False, "-d", "--detach", help="Run in the background; print nothing."),
        env: list[str] = typer.Option([], "-e", "--env", help="Set an environment variable (K=V, or K to pass pyc's)."),
        workdir: str | None = typer.Option(None, "-w", "--workdir", help="Working directory inside the container."),
        user: str | None = typer.Option(None, "-u", "--user", help="UID[:GID] or user[:group] of the image."),
    ) -> None:
        """Run a command in a running container."""
        opts = ExecOptions(command, env=env, workdir=workdir, user=user, interactive=interactive, detach=detach, tty=tty)
        raise typer.Exit(exec_command(container, opts))

    settings = {"allow_interspersed_args": False}
    app.command("exec", context_settings=settings, help="Run a command in a running container.")(exec)
    container_app.command("exec", context_settings=settings, help="Run a command in a running container.")(exec)
