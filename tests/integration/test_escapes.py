"""Ways out of a container that a hostile image tries, each shown closed:

- a process entering a running container (`pyc exec`) must never let the container open a host
  binary through /proc/<pid>/exe (CVE-2019-5736) or a host file pyc holds through
  /proc/<pid>/fd; a probe as the container's pid 1 watches every new pid and tries both;
- under `--init`, pid 1 is pyc-init from a sealed memfd, never a host program;
- without `-t`, the container gets no fd of the caller's terminal, so it cannot type into it
  (TIOCSTI) for the user's shell to run after pyc exits.

The probes are static C programs (tests/probes/), built once per run (the `probes` fixture) and
bind-mounted in."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

INJECTED = b"PYC-TIOCSTI-INJECTED"


# How the watching container runs: as docker's default, and with every capability (among them
# CAP_SYS_PTRACE, which lets it open /proc/N/exe and /proc/N/fd of a process that is not dumpable).
CONTAINER_FLAGS = {"default": [], "cap-add ALL": ["--cap-add", "ALL"], "privileged": ["--privileged"]}


@pytest.fixture(params=CONTAINER_FLAGS)
def watched(probes: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, bool]]:
    """A running container whose pid 1 is the exec_watch probe: (its id, the probe's log,
    whether it holds CAP_SYS_PTRACE)."""
    logs = Path(tempfile.mkdtemp(prefix="pyc-watch-", dir="/var/tmp"))
    flags = CONTAINER_FLAGS[request.param]
    r = pyc("run", "-d", *flags, "-v", f"{probes}:/probe:ro", "-v", f"{logs}:/out", "busybox", "/probe/exec_watch", "/out/log")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        deadline = time.monotonic() + 10
        while not (logs / "log").exists() or b"ready" not in (logs / "log").read_bytes():
            assert time.monotonic() < deadline, "the probe did not start"
            time.sleep(0.02)
        yield cid, logs / "log", bool(flags)
    finally:
        pyc("rm", "-f", cid)
        for f in logs.iterdir():
            f.unlink()
        logs.rmdir()


PYC_INIT = "link=/memfd:pyc-init (deleted)"
# What a process entering the container holds between its clone inside and its exec: the
# command's stdio (pyc's pipes, the host's /dev/null) before they become its fds 0-2, and pyc's
# pipe for a failure record (close-on-exec). No file or directory of the host.
ENTERING_FDS = re.compile(r"FOREIGN pid=\d+ fd \d+ link=(pipe:\[\d+\]|socket:\[\d+\]|/dev/null)( \(open: [^)]*\))?$")


def _findings(log: Path, ptrace: bool = False) -> tuple[int, list[str]]:
    """(how many new pids the probe saw, what it reached that is not the container's own).

    `ptrace`: the container holds CAP_SYS_PTRACE (--cap-add ALL, --privileged). pyc makes no
    user namespace, so that is the host's capability: it may open /proc/N/exe and /proc/N/fd of
    the entering process although pyc-init made it not dumpable (it could ptrace it outright, as
    under docker). What must hold then: the only exe it reaches is pyc-init's sealed memfd, no
    host binary, and writing it is refused; the only fds are those of ENTERING_FDS. Without the
    capability, nothing at all."""
    lines = log.read_text().splitlines()
    allowed = [ln for ln in lines if ptrace and ln.startswith("FOREIGN") and ((" exe exe " in ln and ln.endswith(PYC_INIT)) or ENTERING_FDS.match(ln))]
    foreign = [ln for ln in lines if (ln.startswith("FOREIGN") and ln not in allowed) or ln.startswith("WROTE")]
    refused = [ln for ln in lines if ln.startswith("write refused")]
    assert all(PYC_INIT in ln for ln in refused), lines
    return sum(ln.startswith("new ") for ln in lines), foreign


def _under_pty(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run `argv` with a pty as its controlling terminal and stdio, as from a user's shell."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        out = b""
        while p.poll() is None or select.select([master], [], [], 0.2)[0]:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
        return subprocess.CompletedProcess(argv, p.wait(timeout=30), out.decode(errors="replace"), "")
    finally:
        os.close(master)
        os.close(slave)


EXEC_VARIANTS = {"plain": [], "-i": ["-i"], "-t": ["-t"], "-u 0": ["-u", "0"]}


@pytest.mark.parametrize("variant", EXEC_VARIANTS)
def test_an_entering_process_reaches_nothing_of_the_host(watched: tuple[str, Path, bool], variant: str) -> None:
    cid, log, ptrace = watched
    for _ in range(20):
        r = subprocess.run([PYC, "exec", *EXEC_VARIANTS[variant], cid, "true"], stdin=subprocess.PIPE, capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
    time.sleep(0.1)
    seen, foreign = _findings(log, ptrace)
    assert seen >= 10, log.read_text()  # the probe really watched the entering processes
    assert foreign == []
    if ptrace:  # it did reach the entering process: the attack was tried, and failed
        assert "FOREIGN" in log.read_text() and "write refused" in log.read_text(), log.read_text()


def test_under_init_an_entering_process_reaches_nothing_either(probes: Path) -> None:
    logs = Path(tempfile.mkdtemp(prefix="pyc-watch-", dir="/var/tmp"))
    cid = pyc("run", "-d", "--init", "-v", f"{probes}:/probe:ro", "-v", f"{logs}:/out", "busybox", "/probe/exec_watch", "/out/log").stdout.strip()
    try:
        deadline = time.monotonic() + 10
        while not (logs / "log").exists():
            assert time.monotonic() < deadline, "the probe did not start"
            time.sleep(0.02)
        for _ in range(20):
            assert pyc("exec", cid, "true").returncode == 0
        time.sleep(0.1)
        seen, foreign = _findings(logs / "log")
        assert seen >= 10 and foreign == []
    finally:
        pyc("rm", "-f", cid)
        for f in logs.iterdir():
            f.unlink()
        logs.rmdir()


SEE_PID_1 = "readlink /proc/1/exe; head -c 4 /proc/1/exe | od -c | head -1; echo x >> /proc/1/exe; echo write=$?; echo $(ls /proc/1/fd)"


def test_init_is_no_host_program() -> None:
    r = pyc("run", "--rm", "--init", "busybox", "sh", "-c", SEE_PID_1)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # What pid 1 runs is a sealed memfd: no host path, and what reads as an ELF is pyc-init.
    assert lines[0] == "/memfd:pyc-init (deleted)", r.stdout
    assert "E   L   F" in lines[1] and "write=1" in lines, r.stdout
    assert lines[-1].split() == ["0", "1", "2"]  # and pid 1 holds nothing of the host open


def test_detached_init_is_a_sealed_memfd_seen_from_the_host() -> None:
    cid = pyc("run", "-d", "--init", "busybox", "sleep", "60").stdout.strip()
    pid = int(pyc("inspect", "--format", "{{.State.Pid}}", cid).stdout)
    exe = os.readlink(f"/proc/{pid}/exe")
    assert exe.startswith("/memfd:pyc-init"), exe
    # Even root on the host cannot write it: the memfd is sealed.
    with pytest.raises(OSError), open(f"/proc/{pid}/exe", "r+b") as f:
        f.write(b"x")
    r = pyc("exec", cid, "sh", "-c", SEE_PID_1)
    assert r.stdout.startswith("/memfd:pyc-init (deleted)\n") and "write=1" in r.stdout, r.stdout


def _typed_into_host_terminal(r: subprocess.CompletedProcess[str]) -> bool:
    return any(line.endswith(": typed") for line in r.stdout.replace("\r", "").splitlines())


@pytest.mark.parametrize("flags", [[], ["-i"]], ids=["run", "run -i"])
def test_run_cannot_type_into_the_callers_terminal(probes: Path, flags: list[str]) -> None:
    r = _under_pty([PYC, "run", "--rm", *flags, "-v", f"{probes}:/probe:ro", "busybox", "/probe/tiocsti"])
    assert r.returncode == 0, r.stdout
    assert "fd 1: " in r.stdout and not _typed_into_host_terminal(r), r.stdout
    assert INJECTED.decode() not in r.stdout  # the terminal would echo what was typed


@pytest.mark.parametrize("flags", [[], ["-i"]], ids=["exec", "exec -i"])
def test_exec_cannot_type_into_the_callers_terminal(probes: Path, flags: list[str]) -> None:
    cid = pyc("run", "-d", "-v", f"{probes}:/probe:ro", "busybox", "sleep", "60").stdout.strip()
    r = _under_pty([PYC, "exec", *flags, cid, "/probe/tiocsti"])
    assert r.returncode == 0, r.stdout
    assert "fd 1: " in r.stdout and not _typed_into_host_terminal(r), r.stdout
    assert INJECTED.decode() not in r.stdout


def test_start_attached_cannot_type_into_the_callers_terminal(probes: Path) -> None:
    cid = pyc("create", "-v", f"{probes}:/probe:ro", "busybox", "/probe/tiocsti").stdout.strip()
    r = _under_pty([PYC, "start", "-a", cid])
    assert r.returncode == 0, r.stdout
    assert "fd 1: " in r.stdout and not _typed_into_host_terminal(r), r.stdout
    assert INJECTED.decode() not in r.stdout


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_with_t_it_types_only_into_its_own_pty(probes: Path, verb: str) -> None:
    if verb == "run":
        argv = [PYC, "run", "--rm", "-t", "-v", f"{probes}:/probe:ro", "busybox", "sh", "-c", "/probe/tiocsti; sleep 0.2; read -t 1 line; echo got=$line"]
    else:
        cid = pyc("run", "-d", "-v", f"{probes}:/probe:ro", "busybox", "sleep", "60").stdout.strip()
        argv = [PYC, "exec", "-t", cid, "sh", "-c", "/probe/tiocsti; sleep 0.2; read -t 1 line; echo got=$line"]
    r = _under_pty(argv)
    assert r.returncode == 0, r.stdout
    # It typed into the container's pty, where its own shell read it back...
    assert "fd 0: typed" in r.stdout and f"got=echo {INJECTED.decode()}" in r.stdout, r.stdout


def test_the_input_queue_of_the_callers_terminal_stays_empty(probes: Path) -> None:
    """The check behind the others: after pyc ends, nothing waits in the terminal's input."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen(
            [PYC, "run", "--rm", "-v", f"{probes}:/probe:ro", "busybox", "/probe/tiocsti"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        assert p.wait(timeout=30) == 0
        os.set_blocking(slave, False)
        with pytest.raises(BlockingIOError):
            os.read(slave, 4096)
    finally:
        os.close(master)
        os.close(slave)
