"""The command tables: one declaration per command, read by the fast parser (spec.parse) and by
the click commands built from it. The fast parser must take every valid line as click does."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys

import pytest
from tests.conftest import PYC

from pyc.cli import main
from pyc.cli.run import LIMIT_FLAGS
from pyc.cli.spec import Command, parse

COMMANDS = main.commands()


def by_name(*path: str) -> Command:
    found = main.find(list(path))
    assert found is not None and found[1] == len(path), path
    return found[0]


def test_every_name_is_one_command() -> None:
    names = [name for c in COMMANDS for name in c.names]
    assert len(names) == len(set(names))
    for c in COMMANDS:
        for name in c.names:
            assert main.find(list(name)) == (c, len(name))


def test_docker_aliases() -> None:
    assert by_name("run") is by_name("container", "run")
    assert by_name("ps") is by_name("container", "ls") is by_name("container", "ps") is by_name("container", "list")
    assert by_name("images") is by_name("image", "ls")
    assert by_name("rmi") is by_name("image", "rm")
    assert by_name("rm") is by_name("container", "rm")


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.name)
def test_handler_takes_the_table(cmd: Command) -> None:
    """Each handler's parameters are the table's arguments and flag dests: it can be called with
    what the parser gives."""
    values = {f.dest: f.initial() for f in cmd.flags} | {a.name: [] if a.many else "x" for a in cmd.args}
    inspect.signature(cmd.handler).bind(**values)
    flag_names = [n for f in cmd.flags for n in f.names]
    assert len(flag_names) == len(set(flag_names)), cmd.name
    assert all(n.startswith("--") and len(n) > 3 or (len(n) == 2 and n[0] == "-") for n in flag_names), flag_names


def _click_values(cmd: Command, argv: list[str]) -> dict[str, object]:
    """What click gives the handler for `argv`."""
    from pyc.cli.clickapp import _command

    got: dict[str, object] = {}
    original = cmd.handler
    cmd.handler = lambda **kw: got.update(kw)  # type: ignore[method-assign]
    try:
        _command(cmd, cmd.path[-1]).main(args=argv, standalone_mode=False)
    finally:
        cmd.handler = original  # type: ignore[method-assign]
    return got


LINES = [
    ("run", ["--rm", "-i", "-e", "A=1", "--env=B=2", "-eC=3", "-v", "/a:/b:ro", "--name", "n", "-w/tmp", "busybox", "sh", "-c", "echo -e x"]),
    ("run", ["-it", "--memory", "64m", "--pids-limit", "-1", "busybox"]),
    ("run", ["-d", "busybox", "--rm", "-i"]),
    ("run", ["--", "busybox", "-x"]),
    ("exec", ["-it", "-e", "A=1", "-w/tmp", "-u", "1000", "box", "sh", "-c", "ls -l"]),
    ("exec", ["-ie", "A=1", "box", "true"]),
    ("stop", ["-t", "3", "a", "b"]),
    ("stop", ["a", "--time=0"]),
    ("rm", ["-fv", "a"]),
    ("kill", ["-s", "HUP", "a"]),
    ("kill", ["a"]),
    ("logs", ["-f", "-n", "5", "c"]),
    ("ps", ["-aq", "--filter", "status=exited", "-f", "name=x"]),
    ("commit", ["-c", "ENV A=1", "--change=CMD sh", "-mmsg", "c1", "img:1"]),
    ("commit", ["c1"]),
    ("import", ["-c", "CMD x", "-", "a:1"]),
    ("load", ["-q", "-i", "a.tar"]),
    ("save", ["--format", "oci-archive", "-o", "x", "a", "b"]),
    ("stats", []),
    ("update", ["--cpus", "1.5", "-m", "64m", "c"]),
    ("attach", ["--detach-keys", "ctrl-x", "c"]),
    ("start", ["-a", "c"]),
]


@pytest.mark.parametrize("verb, line", LINES)
def test_fast_parser_reads_as_click_does(verb: str, line: list[str]) -> None:
    cmd = by_name(verb)
    fast = parse(cmd, line)
    assert fast is not None
    assert fast == _click_values(cmd, line)


def test_typical_values() -> None:
    v = parse(by_name("run"), LINES[0][1])
    assert v is not None
    assert (v["image"], v["command"], v["remove"], v["interactive"], v["env"], v["volumes"], v["name"], v["workdir"]) == (
        "busybox",
        ["sh", "-c", "echo -e x"],
        True,
        True,
        ["A=1", "B=2", "C=3"],
        ["/a:/b:ro"],
        "n",
        "/tmp",
    )
    # Options after the image belong to the container's command.
    v = parse(by_name("run"), ["busybox", "--rm", "-i"])
    assert v is not None and v["command"] == ["--rm", "-i"] and v["remove"] is False
    assert parse(by_name("stop"), ["-t", "3", "a"]) == {"containers": ["a"], "time": 3}
    assert parse(by_name("run"), ["--rm=false", "-d=1", "busybox"]) is None  # -d=1: click answers
    v = parse(by_name("run"), ["--rm=false", "--init=true", "busybox"])
    assert v is not None and v["remove"] is False and v["init"] is True


BAD = [
    ("run", ["--help"]),
    ("run", ["--bogus", "busybox"]),
    ("run", ["-e"]),
    ("run", []),
    ("run", ["--rm"]),
    ("run", ["--rm=yes", "busybox"]),
    ("run", ["-iz", "busybox"]),
    ("exec", ["box"]),
    ("stop", []),
    ("stop", ["-t", "x", "a"]),
    ("stop", ["-t"]),
    ("rm", ["--force=1x", "a"]),
    ("wait", ["-x", "a"]),
    ("commit", ["c1", "a", "b"]),
    ("import", []),
    ("load", ["x"]),
    ("save", ["-o", "f"]),
    ("rename", ["a"]),
]


@pytest.mark.parametrize("verb, line", BAD)
def test_hands_over_what_it_does_not_understand(verb: str, line: list[str]) -> None:
    assert parse(by_name(verb), line) is None


def test_cli_imports_no_click_typer_or_rich() -> None:
    """Reading every table and the lines of the fast path loads none of the slow libraries."""
    code = (
        "import sys\n"
        "import pyc.cli\n"
        "from pyc.cli import main, spec\n"
        "for c in main.commands(): spec.parse(c, [])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('click', 'typer', 'rich'))\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_run_reads_one_table() -> None:
    """`pyc run` finds its command in the first module searched."""
    code = "import sys\nfrom pyc.cli import main\nmain.find(['run', 'busybox'])\nprint(sorted(m for m in sys.modules if m.startswith('pyc.cli.')))\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "['pyc.cli.main', 'pyc.cli.run', 'pyc.cli.spec']"


def test_help_is_typers() -> None:
    """--help is drawn by typer (rich panels), from the same tables: the limit flags in a panel
    of their own, a `[` of the help text kept as text, every command under its noun's panel."""
    wide = {**os.environ, "COLUMNS": "160"}  # no line of help wrapped
    r = subprocess.run([PYC, "run", "--help"], capture_output=True, text=True, env=wide)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "Usage: pyc run [OPTIONS] IMAGE [COMMAND...]" in r.stdout
    panels = [line.strip("╭─ ").split(" ")[0] for line in r.stdout.splitlines() if line.startswith("╭─")]
    assert panels == ["Arguments", "Options", "Detached", "Limits"], r.stdout
    limits = r.stdout.split("╭─ Limits")[1]
    assert all(f.names[-1] in limits for f in LIMIT_FLAGS)
    assert "UID[:GID] or user[:group]" in r.stdout
    r = subprocess.run([PYC, "--help"], capture_output=True, text=True, env=wide)
    assert r.returncode == 0, r.stderr
    for panel, commands in (("Management Commands", ["container", "image", "system"]), ("Containers", ["run", "ps", "rm"]), ("Images", ["images", "load", "save"])):
        box = r.stdout.split(f"╭─ {panel} ")[1].split("╰")[0]
        assert all(f"│ {c} " in box for c in commands), (panel, box)


def test_no_help_text_reads_as_rich_markup() -> None:
    """typer draws help as rich markup: `[a...]` would be taken for a style and vanish
    (UID[:GID] is fine: `[:` opens no tag)."""
    tag = re.compile(r"\[[a-z#/@][^[]*?]")
    texts = [t for c in main.commands() for t in [c.help, *(f.help for f in c.flags), *(a.help for a in c.args)]]
    assert [t for t in texts if tag.search(t)] == []
