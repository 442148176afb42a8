"""The Go-template subset of `inspect --format` / `ps --format`."""

from __future__ import annotations

import pytest

from pyc.cli.template import render
from pyc.errors import InvalidArgument

DOC = {"Id": "abc", "State": {"Status": "exited", "ExitCode": 3, "Running": False, "Pid": 0}, "Config": {"Env": ["A=1"]}, "Gone": None}


@pytest.mark.parametrize(
    "template, out",
    [
        ("{{.State.Status}}", "exited"),
        ("{{ .State.ExitCode }} {{.State.Running}}", "3 false"),
        ("id={{.Id}}", "id=abc"),
        ("{{json .State}}", '{"Status": "exited", "ExitCode": 3, "Running": false, "Pid": 0}'),
        ("{{upper .State.Status}}", "EXITED"),
        ("{{.Config.Env}}", "[A=1]"),
        ("{{.Missing}} {{.Gone}}", "<no value> <no value>"),
        ("plain", "plain"),
    ],
)
def test_renders(template: str, out: str) -> None:
    assert render(template, DOC) == out


@pytest.mark.parametrize("template", ["{{range .X}}", "{{State}}", "{{.State.Status.Deeper}}"])
def test_refuses_what_it_does_not_know(template: str) -> None:
    with pytest.raises(InvalidArgument):
        render(template, DOC)
