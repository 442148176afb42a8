"""Entry point. `pyc run` is the hot path: it is parsed by a small parser (run.py) without
importing typer, which alone costs more than a container start. Everything else, and any run
line the small parser does not fully understand (--help, a bad flag), goes to the typer app."""

import sys


def fail(message: str, code: int = 125) -> int:
    sys.stderr.write(f"pyc: {message}\n")
    return code


def main(argv: list[str] | None = None) -> None:
    sys.exit(dispatch(sys.argv[1:] if argv is None else argv))


def dispatch(argv: list[str]) -> int:
    import pyc_core
    from pyc.errors import PycError

    try:
        if argv[:1] == ["run"] or argv[:2] == ["container", "run"]:
            from pyc.cli.run import fast_parse, run_container

            parsed = fast_parse(argv[1:] if argv[0] == "run" else argv[2:])
            if parsed is not None:
                return run_container(*parsed)
        if argv[:1] == ["exec"] or argv[:2] == ["container", "exec"]:
            from pyc.cli.exec import exec_command
            from pyc.cli.exec import fast_parse as fast_exec

            line = fast_exec(argv[1:] if argv[0] == "exec" else argv[2:])
            if line is not None:
                return exec_command(*line)
        if argv[:1] == ["commit"] or argv[:2] == ["container", "commit"]:
            from pyc.cli.commit import commit_container, fast_commit

            committed = fast_commit(argv[1:] if argv[0] == "commit" else argv[2:])
            if committed is not None:
                return commit_container(*committed)
        verb, rest = (argv[1:2], argv[2:]) if argv[:1] == ["container"] else (argv[:1], argv[1:])
        if verb and verb[0] in ("stop", "kill", "rm", "wait"):
            from pyc.cli.verbs import fast_parse as fast_verb
            from pyc.cli.verbs import run_fast

            parsed_verb = fast_verb(verb[0], rest)
            if parsed_verb is not None:
                return run_fast(verb[0], *parsed_verb)
        verb, rest = (argv[1:2], argv[2:]) if argv[:1] == ["image"] else (argv[:1], argv[1:])
        if verb and verb[0] in ("import", "load", "save"):
            from pyc.cli import transfer

            parsed_transfer = transfer.fast_parse(verb[0], rest)
            if parsed_transfer is not None:
                return transfer.run_fast(verb[0], parsed_transfer)
        return _typer(argv)
    except PycError as e:
        return fail(str(e), e.exit_code)
    except OSError as e:
        # A full disk, a permission, a file that vanished: the system's words, on one line.
        return fail(f"{e.filename}: {e.strerror}" if e.filename else e.strerror or str(e))
    except pyc_core.PycCoreError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _typer(argv: list[str]) -> int:
    import click

    from pyc.cli.app import app

    try:
        rv = app(args=argv, prog_name="pyc", standalone_mode=False)
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
