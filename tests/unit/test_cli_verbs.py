"""The fast parser of stop, kill, rm and wait takes exactly the typer commands' flags."""

from __future__ import annotations

import pytest

from pyc.cli.verbs import VERBS, fast_parse


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_fast_parser_knows_every_typer_option(verb: str) -> None:
    import typer.main

    from pyc.cli.app import app

    group = typer.main.get_command(app)
    for command in (group.commands[verb], group.commands["container"].commands[verb]):  # type: ignore[attr-defined]
        typer_flags = {opt: not p.is_flag for p in command.params for opt in getattr(p, "opts", []) if opt.startswith("-")}
        assert typer_flags == {flag: spec[1] for flag, spec in VERBS[verb].items()}


def test_parses_typical_lines() -> None:
    assert fast_parse("stop", ["-t", "3", "a", "b"]) == (["a", "b"], {"time": "3"})
    assert fast_parse("stop", ["--time=0", "a"]) == (["a"], {"time": "0"})
    assert fast_parse("rm", ["-f", "a"]) == (["a"], {"force": True})
    assert fast_parse("kill", ["-s", "HUP", "a"]) == (["a"], {"signal": "HUP"})
    assert fast_parse("wait", ["a"]) == (["a"], {})


@pytest.mark.parametrize("verb, line", [("stop", ["--help"]), ("stop", []), ("stop", ["-t", "x", "a"]), ("stop", ["-t"]), ("rm", ["-fv", "a"]), ("rm", ["--force=1", "a"]), ("wait", ["-x", "a"])])
def test_hands_over_what_it_does_not_understand(verb: str, line: list[str]) -> None:
    assert fast_parse(verb, line) is None
