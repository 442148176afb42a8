"""`-t`: a real pseudo-terminal, driven from the test through a pty of its own, as a user's
terminal would drive it: the size passes in and follows a resize, Ctrl-C reaches the process
inside through the pty, the shell's exit code comes back, and the user's terminal is restored."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator

import pytest
from tests.conftest import PYC, pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


class UserTerminal:
    """pyc running with its stdio on the slave of a pty the test holds the master of."""

    def __init__(self, *args: str, rows: int = 24, cols: int = 80) -> None:
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        self.cooked = termios.tcgetattr(self.slave)
        self.proc = subprocess.Popen([PYC, *args], stdin=self.slave, stdout=self.slave, stderr=self.slave, start_new_session=True)
        self.seen = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, pattern: str, timeout: float = 10) -> re.Match[bytes]:
        """Read until `pattern` appears in what was written since the last match."""
        while True:
            m = re.search(pattern.encode(), self.seen)
            if m:
                self.seen = self.seen[m.end() :]
                return m
            ready, _, _ = select.select([self.master], [], [], timeout)
            assert ready, f"timed out waiting for {pattern!r}; got {self.seen!r}"
            self.seen += os.read(self.master, 4096)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def term() -> Iterator[type[UserTerminal]]:
    made: list[UserTerminal] = []

    class Tracked(UserTerminal):
        def __init__(self, *args: str, **kw: int) -> None:
            super().__init__(*args, **kw)
            made.append(self)

    try:
        yield Tracked
    finally:
        for t in made:
            t.close()


def _wait_for_command(pid: int, cmdline: bytes) -> int:
    """The pid of a process below `pid` running `cmdline` (once it runs it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        todo = [pid]
        while todo:
            p = todo.pop()
            try:
                for task in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{task}/children") as f:
                        kids = [int(k) for k in f.read().split()]
                    for k in kids:
                        with open(f"/proc/{k}/cmdline", "rb") as f:
                            if f.read() == cmdline:
                                return k
                    todo += kids
            except (FileNotFoundError, ProcessLookupError):
                continue  # it ended meanwhile
        time.sleep(0.02)
    raise AssertionError(f"{cmdline!r} did not start")


def _session(t: UserTerminal) -> None:
    t.expect(r"# ")
    t.type("echo term=$TERM\r")  # docker's TERM for -t: bash, less and vim know what they draw on
    t.expect(r"\r\nterm=xterm\r\n")
    t.type("stty size\r")
    t.expect(r"\r\n24 80\r\n")
    t.resize(30, 100)
    t.proc.send_signal(signal.SIGWINCH)  # as the terminal's kernel would to its foreground job
    # pyc handles the signal while the shell may already read the next line: ask until it shows.
    deadline = time.monotonic() + 10
    while True:
        t.type("stty size\r")
        if t.expect(r"\r\n(\d+ \d+)\r\n").group(1) == b"30 100":
            break
        assert time.monotonic() < deadline, "the new size never reached the container"
    # Ctrl-C: the byte goes through (the user's terminal is raw), the pty inside makes SIGINT
    # for the foreground job; the shell survives.
    t.type("sleep 100\r")
    sleep = _wait_for_command(t.proc.pid, b"sleep\x00100\x00")
    t.type("\x03")
    t.expect(r"\^C")
    t.expect(r"# ")  # typed after ^C, input would be flushed by the line discipline with it
    assert not os.path.exists(f"/proc/{sleep}")
    t.type("echo alive $((1+1))\r")
    t.expect(r"alive 2")
    t.type("tty; exit 3\r")
    t.expect(r"/dev/pts/\d+")
    assert t.proc.wait(timeout=10) == 3
    assert termios.tcgetattr(t.slave) == t.cooked  # raw mode undone


def test_run_it(term: type[UserTerminal]) -> None:
    _session(term("run", "--rm", "-it", "busybox", "sh"))


def test_run_it_with_init(term: type[UserTerminal]) -> None:
    _session(term("run", "--rm", "--init", "-it", "busybox", "sh"))


def test_exec_it(term: type[UserTerminal]) -> None:
    holder = subprocess.Popen([PYC, "run", "--rm", "--name", "ttybox", "busybox", "sh", "-c", "echo ready; exec sleep 300"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        _session(term("exec", "-it", "ttybox", "sh"))
    finally:
        holder.kill()
        holder.communicate(timeout=10)


def test_term_of_the_image_or_e_wins_over_xterm(term: type[UserTerminal]) -> None:
    t = term("run", "--rm", "-it", "-e", "TERM=vt100", "busybox", "sh", "-c", "echo term=$TERM")
    t.expect(r"term=vt100\r\n")
    assert t.proc.wait(timeout=10) == 0
    assert pyc("run", "--name", "termimg", "busybox", "true").returncode == 0
    try:
        assert pyc("commit", "-c", "ENV TERM=screen", "termimg", "termimg:1").returncode == 0
        t = term("run", "--rm", "-it", "termimg:1", "sh", "-c", "echo term=$TERM")
        t.expect(r"term=screen\r\n")
        assert t.proc.wait(timeout=10) == 0
    finally:
        pyc("rm", "termimg")
        pyc("rmi", "termimg:1")


def test_exec_detached_terminal_is_refused() -> None:
    holder = subprocess.Popen([PYC, "run", "--rm", "--name", "ttybox2", "busybox", "sh", "-c", "echo ready; exec sleep 300"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        r = subprocess.run([PYC, "exec", "-d", "-t", "ttybox2", "true"], capture_output=True, text=True)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and "-d -t" in r.stderr
    finally:
        holder.kill()
        holder.communicate(timeout=10)
