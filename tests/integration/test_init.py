"""`pyc run --init`: a reaper as pid 1 that reaps orphans, forwards signals, passes the exit code."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def _start(*args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([PYC, "run", "--rm", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline() == "ready\n"
    return p


def _descendants(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, comm) of every process below `pid`, zombies included."""
    out = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            children = [c for task in Path(f"/proc/{parent}/task").iterdir() for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
        for child in children:
            try:
                stat = Path(f"/proc/{child}/stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            out.append((int(child), stat[stat.rindex(")") + 2], comm))
            todo.append(int(child))
    return out


def _wait_for(pid: int, want: Callable[[list[tuple[int, str, str]]], bool], of: str) -> list[tuple[int, str, str]]:
    """Poll the container's processes until `want(processes)`; fail after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        procs = _descendants(pid)
        if want(procs):
            return procs
        assert time.monotonic() < deadline, f"{of}: {procs}"
        time.sleep(0.02)


# Two orphans (their parent subshells exit at once, before they do) go to pid 1; then pid 1's command becomes a
# `sleep`, which never waits for anyone.
ORPHANS = "(sleep 0.5 &); (sleep 0.5 &); echo ready; exec sleep 30"


def test_init_reaps_orphans() -> None:
    p = _start("--init", "busybox", "sh", "-c", ORPHANS)
    try:
        procs = _wait_for(p.pid, lambda ps: sorted(c for _, _, c in ps) == ["pyc-init", "sleep"], "orphans left")
        assert all(state != "Z" for _, state, _ in procs)
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
    assert p.returncode == 128 + signal.SIGTERM


def test_without_init_orphans_stay_zombies() -> None:
    # The case --init is for: shows the test above sets up real zombies.
    p = _start("busybox", "sh", "-c", ORPHANS)
    try:
        _wait_for(p.pid, lambda ps: sum(state == "Z" for _, state, _ in ps) == 2, "no zombies")
    finally:
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=10)


def test_signal_reaches_the_command() -> None:
    p = _start("--init", "busybox", "sh", "-c", 'trap "exit 7" TERM; echo ready; while true; do sleep 0.05; done')
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=10)
    assert p.returncode == 7


def test_a_command_without_handler_dies_of_the_signal() -> None:
    # As pid 1, `sleep` would ignore SIGTERM (the kernel drops unhandled signals to an init).
    p = _start("--init", "busybox", "sh", "-c", "echo ready; exec sleep 30")
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=10)
    assert p.returncode == 128 + signal.SIGTERM


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_code_passes_through(code: int) -> None:
    assert pyc("run", "--rm", "--init", "busybox", "sh", "-c", f"exit {code}").returncode == code


def test_pid_1_is_the_init() -> None:
    r = pyc("run", "--rm", "--init", "busybox", "sh", "-c", "ps -o pid,comm; echo $$")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["1", "pyc-init"]
    assert lines[-1] == "2"  # the command


def test_command_not_found_under_init_is_127() -> None:
    r = pyc("run", "--rm", "--init", "busybox", "no-such-command")
    assert r.returncode == 127 and r.stderr.strip().splitlines() == ["pyc: exec: no-such-command: executable file not found in $PATH"]
