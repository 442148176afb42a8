"""Dockerfile words expanded as BuildKit does, .dockerignore patterns matched as docker does,
and Dockerfiles refused with their file, line and one reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyc.build.context import Context, Ignore
from pyc.build.dockerfile import BuildError, parse
from pyc.build.words import expand
from pyc.errors import InvalidArgument

ENV = {"A": "a", "EMPTY": "", "SP": "x y"}


@pytest.mark.parametrize(
    ("word", "out"),
    [
        ("$A", "a"),
        ("${A}b", "ab"),
        ("$A$A", "aa"),
        ("$UNSET.", "."),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${A:-d}", "a"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-${A}x}", "ax"),
        ("'$A'", "$A"),
        ('"$A b"', "a b"),
        ('"\\$A"', "$A"),
        ("\\$A", "$A"),
        ('"a\\tb"', "a\\tb"),
        ("$", "$"),
        ("a$-b", "a$-b"),
        ("$SP", "x y"),
    ],
)
def test_expand(word: str, out: str) -> None:
    assert expand(word, ENV) == out


def test_expand_records_the_names_it_used() -> None:
    used: set[str] = set()
    expand("${A:-x} $UNSET '$NOT'", ENV, used)
    assert used == {"A", "UNSET"}


@pytest.mark.parametrize(("word", "message"), [("${UNSET:?must be set}", "UNSET: must be set"), ("${A%%x}", "unsupported modifier"), ("'open", "unterminated"), ("${A", "missing")])
def test_expand_refuses(word: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        expand(word, ENV)


def test_ignore_patterns_with_exceptions() -> None:
    ig = Ignore(["# comment", "*.log", "!keep.log", "build/", "**/tmp", "/docs/*.md", "!docs/README.md", "a?c", ""])
    assert ig.excluded("x.log") and not ig.excluded("keep.log")
    assert not ig.excluded("sub/x.log")  # * stays in one component, as docker's
    assert ig.excluded("build") and ig.excluded("build/deep/file")  # a directory takes what is in it
    assert ig.excluded("tmp") and ig.excluded("a/b/tmp") and ig.excluded("a/tmp/f")
    assert ig.excluded("docs/x.md") and not ig.excluded("docs/README.md")
    assert ig.excluded("abc") and not ig.excluded("abbc")
    assert not ig.excluded("main.py")


def test_context_walk_brings_back_exceptions_under_an_ignored_dir(tmp_path: Path) -> None:
    for rel in ("src/a.py", "src/gen/x.c", "src/gen/keep.c", "README"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / ".dockerignore").write_text("src/gen\n!src/gen/keep.c\nREADME\n")
    ctx = Context(str(tmp_path))
    assert ctx.walk("src") == ["src", "src/a.py", "src/gen/keep.c"]
    assert ctx.glob("src/*.py") == ["src/a.py"]
    assert ctx.glob("READ*") == [] and ctx.glob("README") == []
    assert ctx.glob("../../src/a.py") == ["src/a.py"]  # a source cannot climb out of the context


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM busybox\nBOGUS x\n", "Dockerfile:2: unknown instruction: BOGUS"),
        ("RUN true\n", "Dockerfile:1: RUN before the first FROM"),
        ("FROM busybox\nRUN\n", "Dockerfile:2: RUN needs an argument"),
        ("FROM busybox\nCOPY a\n", "Dockerfile:2: COPY needs at least 2 arguments"),
        ("FROM busybox\n\nCOPY --bogus=1 a b\n", "Dockerfile:3: unknown flag --bogus for COPY"),
        ("FROM busybox\nRUN --security=insecure true\n", "Dockerfile:2: RUN --security is not supported yet"),
        ("FROM busybox AS a\nFROM busybox AS A\n", "Dockerfile:2: duplicate stage name"),
        ("FROM a b c d\n", "Dockerfile:1: FROM takes"),
        ("FROM busybox\nSHELL sh -c\n", "Dockerfile:2: SHELL takes a JSON array"),
        ("FROM busybox\nONBUILD FROM x\n", "Dockerfile:2: ONBUILD FROM is not allowed"),
        ("# only a comment\n", "Dockerfile: file with no instructions"),
        ("# syntax=example.com/frontend:1\nFROM busybox\n", "Dockerfile:1: # syntax=example.com/frontend:1: pyc builds with its own Dockerfile frontend"),
        ("# escape=x\nFROM busybox\n", "Dockerfile:1: invalid escape 'x': use \\ or `"),
        ("# Escape=`\n#escape = \\\nFROM busybox\n", "Dockerfile:2: only one escape parser directive can be used"),
        ("#syntax=docker/dockerfile:1\nFROM busybox\nADD --checksum=sha256:00 a b\nBOGUS\n", "Dockerfile:4: unknown instruction: BOGUS"),
    ],
)
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(BuildError) as e:
        parse(text, "Dockerfile")
    assert str(e.value).startswith(message), str(e.value)


def test_parse_stages() -> None:
    df = parse("ARG V=1\nFROM busybox AS Base\nRUN true\nFROM base\nCOPY --from=base /a /b\n", "Dockerfile")
    assert [a.args for a in df.global_args] == [["V=1"]]
    assert [(s.base, s.name, len(s.instructions)) for s in df.stages] == [("busybox", "base", 1), ("base", None, 1)]
    assert df.stage("BASE") is df.stages[0] and df.stage("1") is df.stages[1]
    assert df.stages[1].instructions[0].flag("from") == "base"


def test_parser_directives_as_buildkit_reads_them() -> None:
    """`# escape=` changes the escape of line continuations (the parser's) and of expansion
    (pyc's); directives end at the first line that is not one; `# syntax=` names BuildKit's
    Dockerfile frontend, which pyc's parser is."""
    df = parse("# syntax=docker.io/docker/dockerfile:1.7@sha256:" + "a" * 64 + "\n# escape=`\nFROM busybox\nRUN echo a `\n  b\nENV P=C:\\dir Q=a`$b\n", "Dockerfile")
    run, env = df.stages[0].instructions
    assert run.args == ["echo a   b"] and run.escape == "`"
    assert [expand(w, {"b": "B"}, escape=env.escape) for w in env.args] == ["P", "C:\\dir", "Q", "a$b"]
    # after a blank line or a comment, `# escape=` is a comment: the default escape stays
    for text in ("\n# escape=`\nFROM busybox\n", "# a comment\n# escape=`\nFROM busybox\n", "# check=skip=all\n# escape=`\nFROM busybox\n", "FROM busybox\n# escape=`\n"):
        assert parse(text, "Dockerfile").stages[0].line.escape == "\\"
    assert expand('"a`"b"', {}, escape="`") == 'a"b' and expand("`$x\\", {"x": "X"}, escape="`") == "$x\\"
