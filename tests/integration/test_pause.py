"""pyc pause / unpause: the cgroup freezer (v1's freezer hierarchy, which a container joins when it
is first paused; v2's cgroup.freeze: test.sh runs this file once more on the host's cgroup2
mount, and test_cgroup_v2_host.py pauses through v2 in every run). A paused container's counter
stops and goes on once unpaused; ps, inspect and the refusals are docker's; stop, kill and rm of a
paused container behave as docker's (the signal, then a thaw so it takes effect)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import PYC, cgroup_dirs, leftovers, pyc
from tests.integration.lifecycle_helpers import ps_status, run_d, state, until

import pyc_core

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done"


def _count(pid: int, name: str = "n") -> str:
    try:
        return Path(f"/proc/{pid}/root/tmp/{name}").read_text()
    except FileNotFoundError:
        return ""


def _stands_still(pid: int, name: str = "n") -> bool:
    """The counter does not move for 0.3 s (at one step per 0.02 s, a running one would). It
    may have been frozen between its file's truncation and its write: empty, and staying so."""
    before = _count(pid, name)
    time.sleep(0.3)
    return _count(pid, name) == before


def _pid(ref: str) -> int:
    return int(str(state(ref)["Pid"]))


def test_pause_freezes_and_unpause_resumes() -> None:
    cid = run_d("--name", "pz1", "busybox", "sh", "-c", COUNTER)
    pid = _pid(cid)
    until(lambda: _count(pid) != "", "the counter's first step")
    assert not _stands_still(pid)

    r = pyc("pause", "pz1")
    assert (r.returncode, r.stdout, r.stderr) == (0, "pz1\n", "")
    assert _stands_still(pid)
    assert ps_status(cid).startswith("Up ") and ps_status(cid).endswith(" (Paused)")
    assert pyc("ps", "--filter", "name=pz1", "--format", "{{.State}}").stdout == "paused\n"
    assert pyc("ps", "-q", "--filter", "status=paused").stdout.split() == [cid[:12]]
    st = state(cid)
    assert (st["Status"], st["Paused"], st["Running"]) == ("paused", True, True)
    assert pyc("info", "--format", "{{.ContainersPaused}} {{.ContainersRunning}}").stdout == "1 0\n"

    # What docker refuses of a paused container, pyc refuses, one line each, nothing changed.
    refusals = (
        (["pause", "pz1"], "already paused"),
        (["exec", "pz1", "true"], "paused, unpause the container before exec"),
        (["rm", "pz1"], "remove a paused container"),
        (["start", "pz1"], "try unpause"),
    )
    for args, words in refusals:
        r = pyc(*args)
        assert r.returncode == 1 and words in r.stderr and len(r.stderr.splitlines()) == 1, (args, r)
    assert _stands_still(pid)

    r = pyc("unpause", "pz1")
    assert (r.returncode, r.stdout) == (0, "pz1\n")
    before = _count(pid)
    until(lambda: _count(pid) != before, "the counter going on")
    st = state(cid)
    assert (st["Status"], st["Paused"]) == ("running", False)
    r = pyc("unpause", "pz1")
    assert r.returncode == 1 and "not paused" in r.stderr

    assert pyc("rm", "-f", cid).returncode == 0
    assert leftovers(cid) == []


def test_stop_kill_and_rm_of_a_paused_container_are_dockers() -> None:
    # stop: the stop signal, a thaw, SIGKILL after -t; sh as pid 1 ignores SIGTERM: 137.
    a = run_d("busybox", "sh", "-c", COUNTER)
    assert pyc("pause", a).returncode == 0
    assert pyc("stop", "-t", "1", a).returncode == 0
    st = state(a)
    assert (st["Status"], st["Paused"], st["ExitCode"]) == ("exited", False, 137)
    # A trap of SIGTERM runs: the signal reached it once thawed.
    b = run_d("busybox", "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.02; done")
    assert pyc("pause", b).returncode == 0
    assert pyc("stop", b).returncode == 0
    assert state(b)["ExitCode"] == 7
    # kill: the image names no stop signal, so docker thaws for any signal.
    c = run_d("busybox", "sh", "-c", "trap 'exit 9' HUP; while true; do sleep 0.02; done")
    assert pyc("pause", c).returncode == 0
    assert pyc("kill", "-s", "HUP", c).returncode == 0
    assert pyc("wait", c).stdout == "9\n"
    # rm -f: killed, then thawed (a v1 frozen process dies only then): nothing left.
    d = run_d("busybox", "sh", "-c", COUNTER)
    assert pyc("pause", d).returncode == 0
    assert pyc("rm", "-f", d).returncode == 0
    # A paused container whose process died meanwhile (on v2 a frozen process still dies of
    # SIGKILL, and its cgroup goes with it): rm -f removes it.
    e = run_d("busybox", "sh", "-c", COUNTER)
    assert pyc("pause", e).returncode == 0
    os.kill(int(state(e)["Pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    if pyc_core.cgroup_version(os.environ.get("PYC_CGROUP_ROOT") or "/sys/fs/cgroup") == 2:  # (on v1 it dies once thawed)
        until(lambda: cgroup_dirs(e) == [], "the cgroup gone with the process")
    r = pyc("rm", "-f", e)
    assert r.returncode == 0 and leftovers(e) == [], r.stderr
    for cid in (a, b, c):
        assert pyc("rm", cid).returncode == 0
        assert leftovers(cid) == []
    assert leftovers(d) == [] and cgroup_dirs() == []


def test_a_paused_foreground_run_ends_with_rm_f() -> None:
    proc = subprocess.Popen([PYC, "run", "--name", "pzfg", "busybox", "sh", "-c", f"echo ready; {COUNTER}"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        assert pyc("pause", "pzfg").returncode == 0
        cid = pyc("inspect", "-f", "{{.Id}}", "pzfg").stdout.strip()
        assert ps_status(cid).endswith("(Paused)")
        assert pyc("rm", "-f", "pzfg").returncode == 0
        assert proc.wait(timeout=30) == 137
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    assert leftovers(cid) == []


def test_a_process_exec_starts_is_frozen_with_the_rest() -> None:
    cid = run_d("busybox", "sh", "-c", COUNTER)
    pid = _pid(cid)
    # A first pause and unpause (on v1: the container now has a freezer cgroup, which exec joins).
    assert pyc("pause", cid).returncode == 0 and pyc("unpause", cid).returncode == 0
    assert pyc("exec", "-d", cid, "sh", "-c", "j=0; while true; do j=$((j+1)); echo $j > /tmp/m; sleep 0.02; done").returncode == 0
    until(lambda: _count(pid, "m") != "", "the exec'd counter's first step")
    assert pyc("pause", cid).returncode == 0
    assert _stands_still(pid, "n") and _stands_still(pid, "m")
    assert pyc("unpause", cid).returncode == 0
    before = _count(pid, "m")
    until(lambda: _count(pid, "m") != before, "the exec'd counter going on")
    assert pyc("rm", "-f", cid).returncode == 0
    assert leftovers(cid) == []


def test_only_a_running_container_pauses() -> None:
    cid = pyc("create", "busybox", "true").stdout.strip()
    r = pyc("pause", cid)
    assert r.returncode == 1 and "is not running" in r.stderr
    r = pyc("pause", "no-such-container")
    assert r.returncode == 1 and "no such container" in r.stderr
    assert pyc("rm", cid).returncode == 0


def test_a_thaw_of_a_cgroup_already_gone_is_nothing() -> None:
    # rm -f of a paused container: SIGKILL, then a thaw; on v2 the frozen process dies of the
    # signal, and its monitor may remove the cgroup before the thaw comes.
    roots = [r for r in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified") if os.path.exists(f"{r}/cgroup.controllers")]
    if not roots:
        pytest.skip("this host mounts no cgroup2 hierarchy")
    for root in roots:
        pyc_core.thaw_cgroup(f"pyc-test/gone-{os.getpid()}", root)
