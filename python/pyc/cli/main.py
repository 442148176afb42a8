"""Entry point: find the command in the tables (`MODULES`), read its line with the fast parser
(spec.parse) and run its handler; only `--help` and lines the fast parser refuses go to click
(clickapp.py), so a command's normal use does not import click."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.cli.spec import Command

# The modules that declare commands (a COMMANDS list each), searched in this order: the hot ones
# first, so `pyc run` reads one table. A new noun or verb group is one more module here.
MODULES = ("run", "exec", "lifecycle", "containers", "attach", "commit", "limits", "images", "transfer", "system")


def fail(message: str, code: int = 125) -> int:
    sys.stderr.write(f"pyc: {message}\n")
    return code


def main(argv: list[str] | None = None) -> None:
    sys.exit(dispatch(sys.argv[1:] if argv is None else argv))


def find(argv: list[str]) -> tuple[Command, int] | None:
    """The command `argv` starts with, and how many words name it."""
    import importlib

    from pyc.cli.spec import find as find_in

    for name in MODULES:
        found = find_in(importlib.import_module(f"pyc.cli.{name}").COMMANDS, argv)
        if found is not None:
            return found
    return None


def commands() -> list[Command]:
    """Every command, in the order of MODULES."""
    import importlib

    return [c for name in MODULES for c in importlib.import_module(f"pyc.cli.{name}").COMMANDS]


def dispatch(argv: list[str]) -> int:
    import pyc_core
    from pyc.errors import PycError

    try:
        found = find(argv) if argv else None
        if found is not None:
            from pyc.cli.spec import parse

            cmd, words = found
            values = parse(cmd, argv[words:])
            if values is not None:
                return cmd.handler(**values) or 0
        return _click(argv)
    except PycError as e:
        return fail(str(e), e.exit_code)
    except BrokenPipeError:
        return 0
    except OSError as e:
        # A full disk, a permission, a file that vanished: the system's words, on one line.
        return fail(f"{e.filename}: {e.strerror}" if e.filename else e.strerror or str(e))
    except pyc_core.PycCoreError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return 130


def _click(argv: list[str]) -> int:
    import click

    from pyc.cli.clickapp import build

    try:
        rv = build(commands()).main(args=argv, prog_name="pyc", standalone_mode=False)
    except click.UsageError as e:
        hint = f" (see 'pyc {e.ctx.command_path.partition(' ')[2]} --help')".replace("pyc  ", "pyc ") if e.ctx else ""
        return fail(f"{e.format_message()}{hint}")
    except click.ClickException as e:
        return fail(e.format_message())
    except click.exceptions.Abort:
        return 130
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    return rv if isinstance(rv, int) else 0
