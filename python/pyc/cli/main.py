"""Entry point: find the command in the tables (`MODULES`), read its line with the fast parser
(spec.parse) and run its handler; only `--help` and lines the fast parser refuses go to click
(clickapp.py), so a command's normal use does not import click."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.cli.spec import Command

# The modules that declare commands (a COMMANDS list each), searched in this order: the hot ones
# first, so `pyc run` reads one table. A new noun or verb group is one more module here.
MODULES = (
    "run", "exec", "lifecycle", "containers", "attach", "commit", "limits", "images", "transfer", "registry", "bundle", "system",
    "events", "info", "completion", "volume", "cp", "network", "build",
)


def main(argv: list[str] | None = None) -> None:
    """The process's entry: the command's exit code is the process's. Python's shutdown is
    skipped (os._exit) once stdout and stderr are flushed: tearing down every module and object
    cost a `pyc run` more than a millisecond, and nothing of pyc's is left to finish by then
    (files are closed where they are written, threads are daemons, SQLite needs no close)."""
    code = dispatch(sys.argv[1:] if argv is None else argv)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass  # a reader that went away (`pyc ps | head`)
    os._exit(code)


def find(argv: list[str]) -> tuple[Command, int] | None:
    """The command `argv` starts with, and how many words name it."""
    from pyc.cli.spec import find as find_in

    for name in MODULES:
        found = find_in(_table(name), argv)
        if found is not None:
            return found
    return None


def commands() -> list[Command]:
    """Every command, in the order of MODULES."""
    return [c for name in MODULES for c in _table(name)]


def _table(module: str) -> list[Command]:
    # __import__, not importlib: the run path imports neither importlib nor the warnings it pulls in.
    commands: list[Command] = __import__(f"pyc.cli.{module}", fromlist=["COMMANDS"]).COMMANDS
    return commands


def dispatch(argv: list[str]) -> int:
    """Run the command line; its exit code. The CLI's one error boundary: every error is said on
    one line and its exit code comes from pyc.errors.exit_code."""
    from pyc.errors import PycError, exit_code, from_system, is_system

    name = ""  # the command's name in the exit-code table
    try:
        if argv in (["--version"], ["-v"]):
            from pyc.info import package_version

            print(f"pyc version {package_version()}")
            return 0
        # Shell completion (pyc completion's script calls pyc so) is click's.
        found = find(argv) if argv and "_PYC_COMPLETE" not in os.environ else None
        if found is not None:
            from pyc.cli.spec import parse

            cmd, words = found
            name = cmd.name
            values = parse(cmd, argv[words:])
            if values is not None:
                if name == "container start" and values["attach"]:
                    name += " -a"
                return cmd.handler(**values) or 0
        return _click(argv)
    except BrokenPipeError:
        return 0  # the reader went away (`pyc ... | head`)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if not isinstance(e, PycError) and not is_system(e):
            raise  # a bug: its traceback
        error = from_system(e)
        if str(error):
            sys.stderr.write(f"pyc: {_printable(str(error))}\n")
        return exit_code(name, error.kind)


def _printable(message: str) -> str:
    """One line of printable text: a control character escaped, a byte that was not UTF-8 (a
    tar's garbage quoted in a message) a '?'."""
    if message.isprintable() and "\ufffd" not in message:
        return message
    return "".join("?" if c == "\ufffd" else c if c.isprintable() else repr(c)[1:-1] for c in message)


def _click(argv: list[str]) -> int:
    """The slow path: click's help, or its words for a line the fast parser refused (a
    PycError of kind FLAG for a flag's fault, USAGE for the arguments' or an unknown command)."""
    import click

    from pyc.cli.clickapp import build
    from pyc.errors import Kind, PycError

    try:
        group = build(commands())
        if "_PYC_COMPLETE" in os.environ:
            # click's own completion protocol, which `pyc completion` prints the scripts of
            # (typer's main speaks another).
            from click.shell_completion import shell_complete

            return shell_complete(group, {}, "pyc", "_PYC_COMPLETE", os.environ["_PYC_COMPLETE"])
        rv = group.main(args=argv, prog_name="pyc", standalone_mode=False)
    except click.UsageError as e:
        hint = f" (see 'pyc {e.ctx.command_path.partition(' ')[2]} --help')".replace("pyc  ", "pyc ") if e.ctx else ""
        flag = isinstance(e, (click.NoSuchOption, click.BadOptionUsage)) or (isinstance(e, click.BadParameter) and not isinstance(e, click.MissingParameter))
        raise PycError(f"{e.format_message()}{hint}", Kind.FLAG if flag else Kind.USAGE) from None
    except click.ClickException as e:
        raise PycError(e.format_message(), Kind.USAGE) from None
    except click.exceptions.Abort:
        return 130
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    return rv if isinstance(rv, int) else 0
