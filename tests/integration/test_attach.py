"""`pyc run -d -t` and `pyc attach`: the monitor holds the container's pty; attach joins the
user's terminal (a pty the test drives) to it, passes the window size and its changes, detaches
on Ctrl-P Ctrl-Q leaving the container running, and exits with the container's exit code.
Without -t, attach follows the container's output and passes SIGINT/SIGTERM on, as docker's."""

from __future__ import annotations

import os
import signal
import subprocess
import termios
import time
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc
from tests.integration.lifecycle_helpers import alive, monitor_pid, ps_status, run_d, state, until
from tests.integration.test_tty import UserTerminal, term  # noqa: F401 (fixture)

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def test_attach_detach_and_exit(term: type[UserTerminal]) -> None:  # noqa: F811
    cid = run_d("-t", "busybox", "sh")
    sock = Path(os.environ["PYC_ROOT"], "containers", cid, "attach.sock")
    assert sock.stat().st_mode & 0o777 == 0o600

    t = attached(term("attach", cid, rows=33, cols=101))
    t.type("stty size\r")
    t.expect(r"\r\n33 101\r\n")
    t.resize(40, 120)
    t.proc.send_signal(signal.SIGWINCH)  # as the terminal's kernel would to its foreground job
    # attach handles the signal while the shell may already read the next line: ask until it shows.
    deadline = time.monotonic() + 10
    while True:
        t.type("stty size\r")
        if t.expect(r"\r\n(\d+ \d+)\r\n").group(1) == b"40 120":
            break
        assert time.monotonic() < deadline, "the new size never reached the container"
    t.type("echo h''i\r")
    t.expect(r"\bhi\r\n")
    t.type("\x10\x11")  # Ctrl-P Ctrl-Q
    assert t.proc.wait(timeout=10) == 0
    assert termios_restored(t)
    assert ps_status(cid).startswith("Up")

    again = attached(term("attach", cid))
    again.type("echo again\r")
    again.expect(r"\bagain\r\n")
    again.type("exit 3\r")
    assert again.proc.wait(timeout=10) == 3
    until(lambda: ps_status(cid).startswith("Exited (3)"), "ps shows Exited (3)")

    logs = pyc("logs", cid)
    assert logs.returncode == 0 and "33 101" in logs.stdout and "40 120" in logs.stdout and "again" in logs.stdout

    monitor = monitor_pid(cid)
    assert pyc("rm", cid).returncode == 0
    until(lambda: not alive(monitor), "the monitor is gone after rm")


def termios_restored(t: UserTerminal) -> bool:
    return termios.tcgetattr(t.slave) == t.cooked


def attached(t: UserTerminal) -> UserTerminal:
    """Once attach has made the user's terminal raw (it is connected then)."""
    until(lambda: not termios_restored(t), "attach makes the terminal raw")
    return t


def test_attach_to_stopped_or_missing_container() -> None:
    cid = run_d("-t", "busybox", "true")
    until(lambda: ps_status(cid).startswith("Exited"), "the container ends")
    before = state(cid)
    for ref in (cid, "no-such-container"):
        r = pyc("attach", ref)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and r.stderr.startswith("pyc: "), r.stderr
    assert state(cid) == before


def test_attach_without_a_terminal_follows_the_output() -> None:
    # docker's attach to a container without -t: what it writes from now on, stdout and stderr
    # apart, then its exit code.
    cid = run_d("busybox", "sh", "-c", "echo before; sleep 3; echo out; echo err >&2; exit 7")
    until(lambda: "before" in pyc("logs", cid).stdout, "the first line is logged")
    r = pyc("attach", cid, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")


def _catches(pid: int, sig: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (sig - 1)))


def test_attach_without_a_terminal_passes_signals_on() -> None:
    cid = run_d("busybox", "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done")
    until(lambda: "ready" in pyc("logs", cid).stdout, "the trap is set")
    p = subprocess.Popen([PYC, "attach", cid], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        until(lambda: _catches(p.pid, signal.SIGTERM), "attach passes SIGTERM on")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert (p.returncode, out) == (3, "got TERM\n"), err
    assert ps_status(cid).startswith("Exited (3)")
