"""The fast `pyc commit` parser and the typer command must take the same flags."""

from __future__ import annotations

from pyc.cli.commit import COMMIT_FLAGS, fast_commit


def test_fast_parser_knows_every_typer_option() -> None:
    import typer.main

    from pyc.cli.app import app

    group = typer.main.get_command(app)
    commit = group.commands["commit"]  # type: ignore[attr-defined]
    flags = {opt for param in commit.params for opt in getattr(param, "opts", []) if opt.startswith("-")}
    assert flags == set(COMMIT_FLAGS)


def test_parses_flags_anywhere() -> None:
    assert fast_commit(["-c", "ENV A=1", "--change=CMD sh", "-mmsg", "c1", "img:1"]) == ("c1", "img:1", ["ENV A=1", "CMD sh"], "msg")
    assert fast_commit(["c1", "--message", "m", "img"]) == ("c1", "img", [], "m")
    assert fast_commit(["c1"]) == ("c1", None, [], None)


def test_leaves_the_rest_to_typer() -> None:
    for args in (["--help"], [], ["c1", "a", "b"], ["-p", "c1"], ["c1", "-m"]):
        assert fast_commit(args) is None
