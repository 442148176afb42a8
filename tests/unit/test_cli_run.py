"""The fast `pyc run` parser and the typer command must take the same flags."""

from __future__ import annotations

import pytest

from pyc.cli.run import FLAGS, fast_parse


def test_fast_parser_knows_every_typer_option() -> None:
    import typer.main

    from pyc.cli.app import app

    group = typer.main.get_command(app)
    run = group.commands["run"]  # type: ignore[attr-defined]
    typer_flags: dict[str, bool] = {}
    for param in run.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("-"):
                typer_flags[opt] = not param.is_flag  # type: ignore[attr-defined]
    assert typer_flags == {flag: spec[1] for flag, spec in FLAGS.items()}


def test_parses_a_typical_line() -> None:
    parsed = fast_parse(["--rm", "-i", "-e", "A=1", "--env=B=2", "-eC=3", "-v", "/a:/b:ro", "--name", "n", "-w/tmp", "busybox", "sh", "-c", "echo -e x"])
    assert parsed is not None
    image, o = parsed
    assert image == "busybox" and o.command == ["sh", "-c", "echo -e x"]
    assert (o.remove, o.interactive, o.env, o.volumes, o.name, o.workdir) == (True, True, ["A=1", "B=2", "C=3"], ["/a:/b:ro"], "n", "/tmp")


def test_options_after_the_image_belong_to_the_command() -> None:
    parsed = fast_parse(["busybox", "--rm", "-i"])
    assert parsed is not None and parsed[1].command == ["--rm", "-i"] and not parsed[1].remove


@pytest.mark.parametrize("line", [["--help"], ["--bogus", "busybox"], ["-e"], [], ["--rm"], ["--rm=yes", "busybox"], ["-iz", "busybox"]])
def test_hands_over_what_it_does_not_understand(line: list[str]) -> None:
    assert fast_parse(line) is None
