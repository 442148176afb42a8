"""The fast `pyc exec` parser and the typer command must take the same flags."""

from __future__ import annotations

import pytest

from pyc.cli.exec import FLAGS, fast_parse


def test_fast_parser_knows_every_typer_option() -> None:
    import typer.main

    from pyc.cli.app import app

    group = typer.main.get_command(app)
    cmd = group.commands["exec"]  # type: ignore[attr-defined]
    typer_flags: dict[str, bool] = {}
    for param in cmd.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("-"):
                typer_flags[opt] = not param.is_flag  # type: ignore[attr-defined]
    assert typer_flags == {flag: spec[1] for flag, spec in FLAGS.items()}


def test_parses_a_typical_line() -> None:
    parsed = fast_parse(["-it", "-e", "A=1", "-w/tmp", "-u", "1000", "box", "sh", "-c", "ls -l"])
    assert parsed is not None
    ref, o = parsed
    assert (ref, o.command, o.interactive, o.tty, o.detach, o.env, o.workdir, o.user) == ("box", ["sh", "-c", "ls -l"], True, True, False, ["A=1"], "/tmp", "1000")


@pytest.mark.parametrize("line", [["--help"], ["box"], ["--bogus", "box", "true"], ["-e"], []])
def test_hands_over_what_it_does_not_understand(line: list[str]) -> None:
    assert fast_parse(line) is None
