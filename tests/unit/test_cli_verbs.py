"""The fast parser of stop, kill, rm and wait takes exactly the typer commands' flags."""

from __future__ import annotations

import pytest

from pyc.cli import transfer
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


@pytest.mark.parametrize("verb", sorted(transfer.FLAGS))
def test_transfer_parser_knows_every_typer_option(verb: str) -> None:
    import typer.main

    from pyc.cli.app import app

    group = typer.main.get_command(app)
    for command in (group.commands[verb], group.commands["image"].commands[verb]):  # type: ignore[attr-defined]
        typer_flags = {opt: not p.is_flag for p in command.params for opt in getattr(p, "opts", []) if opt.startswith("-")}
        assert typer_flags == {flag: bool(spec[1]) for flag, spec in transfer.FLAGS[verb].items()}
        arguments = [p for p in command.params if not getattr(p, "opts", [""])[0].startswith("-")]
        fewest, most = transfer.ARGS[verb]
        assert sum(1 for p in arguments if p.required) == fewest
        assert most == (None if any(p.nargs == -1 for p in arguments) else len(arguments))
        # Every keyword the fast path passes is a parameter of the typer command.
        line = {"import": ["src"], "load": [], "save": ["img"]}[verb]
        assert set(transfer.fast_parse(verb, line) or {}) == {p.name for p in command.params}


def test_transfer_parses_typical_lines() -> None:
    assert transfer.fast_parse("import", ["-c", "CMD x", "--change=ENV A=1", "-", "a:1"]) == {"source": "-", "ref": "a:1", "change": ["CMD x", "ENV A=1"]}
    assert transfer.fast_parse("import", ["r.tar"]) == {"source": "r.tar", "ref": None, "change": []}
    assert transfer.fast_parse("load", ["-q", "-i", "a.tar"]) == {"input": "a.tar", "quiet": True}
    assert transfer.fast_parse("save", ["--format", "oci-archive", "-o", "x", "a", "b"]) == {"refs": ["a", "b"], "output": "x", "format": "oci-archive"}
    assert transfer.fast_parse("save", ["a"]) == {"refs": ["a"], "output": None, "format": "docker-archive"}


BAD_LINES = [("import", []), ("import", ["a", "b", "c"]), ("import", ["--help"]), ("load", ["x"]), ("load", ["-i"]), ("load", ["-q=1"]), ("save", ["-o", "f"]), ("save", ["-x", "a"])]


@pytest.mark.parametrize("verb, line", BAD_LINES)
def test_transfer_hands_over_what_it_does_not_understand(verb: str, line: list[str]) -> None:
    assert transfer.fast_parse(verb, line) is None
