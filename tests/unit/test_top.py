"""pyc top's reading of ps's output, as docker's: the PID column by its title, thread rows kept
with their process, the last column taking the rest of the line."""

from __future__ import annotations

import pytest

from pyc.errors import InvalidArgument
from pyc.top import parse

PS_EF = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init splash
root         500     400  0 10:01 ?        00:00:00 sh -c sleep 100;  echo "a  b"
root         501     500  0 10:01 ?        00:00:00 sleep 100
"""


def test_rows_of_the_container_only_with_the_command_whole() -> None:
    t = parse(PS_EF, {500, 501})
    assert t.titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert t.processes == [
        ["root", "500", "400", "0", "10:01", "?", "00:00:00", 'sh -c sleep 100; echo "a b"'],
        ["root", "501", "500", "0", "10:01", "?", "00:00:00", "sleep 100"],
    ]


def test_thread_rows_follow_their_process() -> None:
    out = "  PID   TID CMD\n  500     - sh\n    -   500 -\n    -   502 -\n    7     - init\n    -     7 -\n"
    t = parse(out, {500})
    assert t.processes == [["500", "-", "sh"], ["-", "500", "-"], ["-", "502", "-"]]


def test_no_pid_column_is_refused() -> None:
    with pytest.raises(InvalidArgument) as e:
        parse("COMMAND\nsleep\n", {1})
    assert "PID" in str(e.value)


def test_a_non_ascii_space_stays_in_the_command() -> None:
    t = parse("PID CMD\n5 a\u00a0b c\n", {5})
    assert t.processes == [["5", "a\u00a0b c"]]
