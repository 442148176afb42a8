"""Limits really bite, on whichever cgroup version the kernel runs (test.sh runs these again in
a pure cgroup v2 VM): memory (OOM), pids, cpu, cpuset; stats and update of a running container."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, cgroup_dirs, leftovers, pyc, store_snapshot

import pyc_core

pytestmark = [pytest.mark.root, pytest.mark.limits, pytest.mark.usefixtures("busybox", "clean_containers")]

V2 = pyc_core.cgroup_version() == 2


def test_memory_hog_is_oom_killed_and_reported() -> None:
    hog = "x=$(head -c 64m /dev/zero | tr '\\0' a); echo survived"
    r = pyc("run", "--name", "hog", "--memory", "16m", "--memory-swap", "16m", "busybox", "sh", "-c", hog)
    assert r.returncode == 137 and "survived" not in r.stdout
    state = json.loads(pyc("inspect", "hog").stdout)[0]
    assert state["State"]["OOMKilled"] is True and state["State"]["ExitCode"] == 137
    assert state["HostConfig"]["Memory"] == 16 << 20
    cid = state["Id"]
    assert pyc("rm", "hog").returncode == 0
    assert leftovers(cid) == []
    # The same command within its limit is not.
    ok = pyc("run", "--rm", "--memory", "256m", "busybox", "sh", "-c", hog)
    assert ok.returncode == 0 and ok.stdout == "survived\n"


def test_pids_limit_stops_a_fork_bomb() -> None:
    # The loop's shell dies at the first fork refused; then count with builtins only (no fork).
    bomb = "(i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; set -- /proc/[0-9]*; echo $#"
    start = time.monotonic()
    r = pyc("run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c", bomb)
    assert r.returncode == 0, r.stderr
    # The shell and the sleeps that got a pid: never more than 20, and the limit was reached.
    assert 15 <= int(r.stdout) <= 20
    assert time.monotonic() - start < 20  # the sleeps die with the container, the host is fine


def _cpu_share(*flags: str) -> float:
    """CPU seconds a busy loop gets per wall second over 3 s, as the kernel counts them."""
    script = "while :; do :; done & p=$!; sleep 3; cat /proc/$p/stat; kill $p"
    r = pyc("run", "--rm", *flags, "busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    fields = r.stdout.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK") / 3


def test_cpus_limit_throttles() -> None:
    share = _cpu_share("--cpus", "0.5")
    if V2 and os.cpu_count() == 1:
        # The pure v2 test VM has one CPU and coarse accounting (HZ=100): throttling shows, not shares.
        assert 0.2 < share < 0.85, share
    else:
        assert 0.35 < share < 0.65, share


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs a host with two CPUs or more")
def test_cpuset_pins_to_the_named_cpu() -> None:
    if V2 and "cpuset" not in Path("/sys/fs/cgroup/cgroup.controllers").read_text():
        pytest.skip("this kernel's cgroup v2 has no cpuset controller")
    last = max(os.sched_getaffinity(0))
    r = pyc("run", "--rm", "--cpuset-cpus", str(last), "busybox", "grep", "Cpus_allowed_list", "/proc/self/status")
    assert r.stdout.split() == ["Cpus_allowed_list:", str(last)]


@pytest.fixture
def running() -> Iterator[str]:
    """A named container that runs while the test looks at it."""
    p = subprocess.Popen([PYC, "run", "--name", "busy", "--memory", "32m", "--pids-limit", "50", "busybox", "sh", "-c", "echo ready; sleep 30"], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline() == "ready\n"
    try:
        yield "busy"
    finally:
        pyc("rm", "-f", "busy")
        p.wait(timeout=10)
        p.stdout.close()


def test_stats_of_a_running_container(running: str) -> None:
    r = pyc("stats", "--no-stream", "--format", "json", running)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["Name"] == running and s["MemLimitBytes"] == 32 << 20 and s["PidsLimit"] == 50
    assert 0 < s["MemUsageBytes"] < 32 << 20 and int(s["PIDs"]) >= 1
    table = pyc("stats", "--no-stream").stdout.splitlines()
    assert table[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and any(running in line for line in table[1:])


def test_update_changes_a_running_containers_limits(running: str) -> None:
    assert pyc("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "70", running).returncode == 0
    s = json.loads(pyc("stats", "--no-stream", "--format", "json", running).stdout)
    assert (s["MemLimitBytes"], s["PidsLimit"]) == (64 << 20, 70)
    assert json.loads(pyc("inspect", running).stdout)[0]["HostConfig"]["Memory"] == 64 << 20
    assert pyc("update", "--cpus", "0.5", running).returncode == 0


def test_stats_and_update_refuse_a_stopped_container() -> None:
    assert pyc("run", "--name", "stopped", "busybox", "true").returncode == 0
    for args in (["stats", "--no-stream", "stopped"], ["update", "--memory", "64m", "stopped"]):
        r = pyc(*args)
        assert r.returncode == 1 and r.stderr.strip() == "pyc: container stopped is not running"
    pyc("rm", "stopped")


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--memory", "0"], "minimum is 6MB"),
        (["--memory", "-1"], "invalid --memory"),
        (["--memory", "12XB"], "invalid --memory '12XB'"),
        (["--memory", "2m"], "minimum is 6MB"),
        (["--memory", "64m", "--memory-swap", "32m"], "at least --memory"),
        (["--cpus", "0"], "invalid --cpus"),
        (["--cpus", "999"], "invalid --cpus"),
        (["--cpuset-cpus", "999"], "CPU 999 is not available"),
        (["--cpu-shares", "1"], "invalid --cpu-shares"),
        (["--pids-limit", "many"], "invalid --pids-limit"),
        (["--blkio-weight", "5000"], "invalid --blkio-weight"),
        (["--device-read-bps", "/dev/null:1mb"], "not a block device"),
    ],
)
def test_bad_limits_are_refused_and_leave_nothing(store_root: Path, flags: list[str], says: str) -> None:
    before = store_snapshot(store_root)
    r = pyc("run", "--rm", *flags, "busybox", "true")
    assert r.returncode == 125 and len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert store_snapshot(store_root) == before
    assert cgroup_dirs() == []
