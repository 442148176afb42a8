"""`pyc exec` into a container that a foreground `pyc run` holds: same namespaces, cgroup and
root as the container's pid 1; its environment plus -e; -w, -u, -i, -d; docker's exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc, store_snapshot

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

NAMESPACES = ("pid", "mnt", "net", "uts", "ipc", "cgroup")


def _only_child(pid: int) -> int:
    """The one child of `pid`. exec's middle process may not be reaped yet: wait for it to go."""
    deadline = time.monotonic() + 10
    while True:
        children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
        if len(children) == 1:
            return int(children[0])
        assert time.monotonic() < deadline, children
        time.sleep(0.01)


def _ready(p: subprocess.Popen[str]) -> None:
    assert p.stdout is not None
    assert p.stdout.readline() == "ready\n"


@pytest.fixture
def box() -> Iterator[tuple[str, int]]:
    """A running container named `box`: (name, host pid of its pid 1)."""
    p = subprocess.Popen([PYC, "run", "--rm", "--name", "box", "-e", "FROM_RUN=yes", "-w", "/etc", "busybox", "sh", "-c", "echo ready; exec sleep 300"], stdout=subprocess.PIPE, text=True)
    try:
        _ready(p)
        yield "box", _only_child(p.pid)
    finally:
        p.kill()  # the container dies with the pyc that holds it
        p.communicate(timeout=10)


def test_exec_joins_the_containers_namespaces_cgroup_and_root(box: tuple[str, int]) -> None:
    name, init = box
    e = subprocess.Popen([PYC, "exec", name, "sh", "-c", "echo ready; exec sleep 300"], stdout=subprocess.PIPE, text=True)
    try:
        _ready(e)
        cmd = _only_child(e.pid)  # the command is the exec process's own child
        for ns in NAMESPACES:
            assert os.readlink(f"/proc/{cmd}/ns/{ns}") == os.readlink(f"/proc/{init}/ns/{ns}"), ns
        assert os.readlink("/proc/self/ns/pid") != os.readlink(f"/proc/{cmd}/ns/pid")
        assert Path(f"/proc/{cmd}/cgroup").read_text() == Path(f"/proc/{init}/cgroup").read_text()
        root, init_root = os.stat(f"/proc/{cmd}/root/"), os.stat(f"/proc/{init}/root/")
        assert (root.st_dev, root.st_ino) == (init_root.st_dev, init_root.st_ino)
        # Inside, the command sees the container's processes and is one of them.
        ps = pyc("exec", name, "ps", "-o", "pid,args").stdout
        assert "1 sleep 300" in ps.replace("  ", " ") and ps.count("sleep 300") == 2
    finally:
        e.send_signal(signal.SIGTERM)
        e.communicate(timeout=10)
    assert e.returncode == 128 + signal.SIGTERM


def test_environment_workdir_and_user(box: tuple[str, int]) -> None:
    name, _ = box
    r = pyc("exec", name, "sh", "-c", "echo $FROM_RUN $HOSTNAME; pwd; id -u; id -g")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[1:4] == ["/etc", "0", "0"] and r.stdout.startswith("yes ")
    r = pyc("exec", "-e", "A=1", "-e", "FROM_RUN=no", "-w", "/tmp", "-u", "1000:1001", name, "sh", "-c", "echo $A $FROM_RUN; pwd; id -u; id -g")
    assert (r.returncode, r.stdout) == (0, "1 no\n/tmp\n1000\n1001\n"), r.stderr


def test_exit_codes(box: tuple[str, int]) -> None:
    name, _ = box
    assert pyc("exec", name, "sh", "-c", "exit 4").returncode == 4
    r = pyc("exec", name, "no-such-command")
    assert (r.returncode, r.stderr) == (127, "pyc: exec: no-such-command: executable file not found in $PATH\n")
    r = pyc("exec", name, "/etc/passwd")
    assert r.returncode == 126 and len(r.stderr.splitlines()) == 1
    r = pyc("exec", "-w", "/no/such/dir", name, "true")
    assert r.returncode == 126 and r.stderr.splitlines() == ["pyc: exec failed: change to working directory /no/such/dir: no such file or directory"]


def test_interactive_stdin(box: tuple[str, int]) -> None:
    name, _ = box
    assert pyc("exec", "-i", name, "cat", input="piped\n").stdout == "piped\n"
    assert pyc("exec", name, "cat", input="not passed\n").stdout == ""  # no -i: /dev/null


def test_detach(box: tuple[str, int]) -> None:
    name, _ = box
    r = pyc("exec", "-d", name, "sleep", "301")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert "sleep 301" in pyc("exec", name, "ps", "-o", "args").stdout


def test_signals_reach_the_command(box: tuple[str, int]) -> None:
    name, _ = box
    e = subprocess.Popen([PYC, "exec", name, "sh", "-c", 'trap "exit 7" TERM; echo ready; while true; do sleep 0.05; done'], stdout=subprocess.PIPE, text=True)
    _ready(e)
    e.send_signal(signal.SIGTERM)
    e.communicate(timeout=10)
    assert e.returncode == 7


def test_exec_into_a_stopped_or_missing_container(store_root: Path) -> None:
    assert pyc("run", "--name", "stopped", "busybox", "true").returncode == 0
    before = store_snapshot(store_root)
    for ref, says in (("stopped", "pyc: container stopped is not running"), ("no-such-box", "pyc: no such container: no-such-box")):
        r = pyc("exec", ref, "true")
        assert (r.returncode, r.stderr.splitlines()) == (1, [says])
    assert store_snapshot(store_root) == before


def test_exec_into_a_detached_container() -> None:
    # Held by pyc-monitor, not by a pyc in the foreground; with --init, pid 1 is the reaper.
    cid = pyc("run", "-d", "--init", "--name", "held", "busybox", "sleep", "300").stdout.strip()
    try:
        r = pyc("exec", "held", "sh", "-c", "cat /proc/1/comm; readlink /proc/1/ns/pid; readlink /proc/self/ns/pid")
        assert r.returncode == 0, r.stderr
        comm, init_ns, own_ns = r.stdout.split()
        assert comm == "pyc-init" and init_ns == own_ns
        assert (pyc("exec", "held", "sh", "-c", "exit 5").returncode, pyc("exec", "-d", "held", "true").returncode) == (5, 0)
    finally:
        pyc("rm", "-f", cid)
    r = pyc("exec", cid, "true")
    assert (r.returncode, r.stderr) == (1, f"pyc: no such container: {cid}\n")
