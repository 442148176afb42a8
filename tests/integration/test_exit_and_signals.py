"""Exit codes as docker gives them, and signals that reach the container's process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import CGROUP_PARENT, PYC, cgroup_dirs, pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_status_is_the_containers(code: int) -> None:
    assert pyc("run", "--rm", "busybox", "sh", "-c", f"exit {code}").returncode == code


def test_command_not_found_is_127() -> None:
    r = pyc("run", "--rm", "busybox", "no-such-command")
    assert r.returncode == 127
    assert r.stderr.strip().splitlines() == ['pyc: exec: no-such-command: executable file not found in $PATH']
    # A failed start leaves no cgroup either.
    assert cgroup_dirs() == []


def test_command_not_executable_is_126() -> None:
    r = pyc("run", "--rm", "busybox", "/etc/passwd")
    assert r.returncode == 126 and len(r.stderr.strip().splitlines()) == 1
    assert pyc("run", "--rm", "busybox", "/tmp").returncode == 126


def _start(*cmd: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([PYC, "run", "--rm", "busybox", *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline() == "ready\n"
    return p


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2])
def test_signals_reach_the_container(sig: signal.Signals) -> None:
    name = sig.name.removeprefix("SIG")
    p = _start("sh", "-c", f'trap "echo got {name}; exit 7" {name}; echo ready; while true; do sleep 0.05; done')
    p.send_signal(sig)
    out, _ = p.communicate(timeout=10)
    assert (p.returncode, out) == (7, f"got {name}\n")


def _container_init(pyc_pid: int) -> int:
    children = Path(f"/proc/{pyc_pid}/task/{pyc_pid}/children").read_text().split()
    assert len(children) == 1
    return int(children[0])


def test_killed_by_signal_is_128_plus_n() -> None:
    p = _start("sh", "-c", "echo ready; sleep 30")
    os.kill(_container_init(p.pid), signal.SIGKILL)
    p.communicate(timeout=10)
    assert p.returncode == 128 + signal.SIGKILL


def test_container_stays_in_its_cgroup_while_running() -> None:
    p = _start("sh", "-c", "echo ready; sleep 30")
    try:
        init = _container_init(p.pid)
        groups = Path(f"/proc/{init}/cgroup").read_text()
        assert f"/{CGROUP_PARENT}/" in groups
        # Inside, the cgroup namespace shows the container's cgroup as the root.
    finally:
        os.kill(_container_init(p.pid), signal.SIGKILL)
        p.communicate(timeout=10)
    inside = pyc("run", "--rm", "busybox", "cat", "/proc/self/cgroup").stdout
    assert "pyc" not in inside and ":/" in inside


def test_pyc_waits_for_output_to_drain() -> None:
    r = pyc("run", "--rm", "busybox", "sh", "-c", "seq 1 20000")
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "20000"
    start = time.monotonic()
    assert pyc("run", "--rm", "busybox", "true").returncode == 0
    assert time.monotonic() - start < 10


def test_container_dies_with_a_killed_pyc_and_is_reported_so(store_root: Path) -> None:
    p = subprocess.Popen([PYC, "run", "--name", "orphan", "busybox", "sh", "-c", "echo ready; sleep 30"], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline() == "ready\n"
    init = _container_init(p.pid)
    p.kill()
    p.wait()
    p.stdout.close()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{init}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{init}").exists()
    line = next(line for line in pyc("ps", "-a").stdout.splitlines() if line.endswith("orphan"))
    assert "Exited (137)" in line
    cid = pyc("inspect", "orphan").stdout.split('"Id": "')[1][:64]
    assert pyc("rm", "orphan").returncode == 0
    from tests.conftest import leftovers

    assert leftovers(cid) == []


def test_rm_force_of_a_running_container() -> None:
    p = subprocess.Popen([PYC, "run", "--name", "victim", "busybox", "sh", "-c", "echo ready; sleep 30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline() == "ready\n"
    cid = pyc("inspect", "victim").stdout.split('"Id": "')[1][:64]
    r = pyc("rm", "victim")
    assert r.returncode == 1 and "is running" in r.stderr
    assert pyc("rm", "-f", "victim").returncode == 0
    _, err = p.communicate(timeout=10)
    assert p.returncode == 137 and err == ""
    from tests.conftest import leftovers

    assert leftovers(cid) == []
    assert "victim" not in pyc("ps", "-a").stdout
