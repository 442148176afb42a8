"""The truth survives crashes: kill -9 of the CLI in the middle of run, start, stop or rm, of a
monitor, of the container's process from outside; several pyc commands on one container at
once. Each time `pyc ps` reports what is true and `pyc rm` cleans everything up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import PYC, leftovers, pyc
from tests.integration.lifecycle_helpers import alive, monitor_pid, ps_status, run_d, state, until

from pyc.engine import Engine

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

LOOP = "trap 'echo ignored' TERM; while true; do sleep 0.05; done"


def _remove_and_check_clean(cid: str, monitor: int | None = None) -> None:
    r = pyc("rm", "-f", cid)
    assert r.returncode == 0, r.stderr
    assert leftovers(cid) == []
    if monitor is not None:
        assert not alive(monitor)


def test_monitor_killed() -> None:
    cid = run_d("busybox", "sh", "-c", LOOP)
    st = state(cid)
    monitor, pid = int(str(st["MonitorPid"])), int(str(st["Pid"]))
    os.kill(monitor, signal.SIGKILL)
    # The container's process dies with its holder (PDEATHSIG).
    until(lambda: not alive(pid), "the container's end")
    assert ps_status(cid).startswith("Exited (137)")
    st = state(cid)
    assert (st["Status"], st["ExitCode"], st["Running"]) == ("exited", 137, False)
    _remove_and_check_clean(cid, monitor)


def test_container_killed_from_outside() -> None:
    cid = run_d("busybox", "sh", "-c", LOOP)
    st = state(cid)
    os.kill(int(str(st["Pid"])), signal.SIGKILL)
    assert pyc("wait", cid).stdout == "137\n"
    until(lambda: not alive(int(str(st["MonitorPid"]))), "the monitor's end")
    assert ps_status(cid).startswith("Exited (137)") and state(cid)["ExitCode"] == 137
    _remove_and_check_clean(cid)


@pytest.fixture
def slow_monitor(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PYC_MONITOR that says where it is, waits, then becomes the real monitor: a pyc CLI can
    be killed while it waits for the monitor's report."""
    real = Path(sys.executable).parent / "pyc-monitor"  # beside the venv's python, as pyc finds it
    mark = tmp_path / "spawned"
    wrapper = tmp_path / "monitor.sh"
    wrapper.write_text(f'#!/bin/sh\n: > {mark}\nsleep 0.3\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return dict(os.environ, PYC_MONITOR=str(wrapper)), mark


@pytest.mark.parametrize("verb", ["run", "start"])
def test_cli_killed_while_starting(verb: str, slow_monitor: tuple[dict[str, str], Path]) -> None:
    env, mark = slow_monitor
    if verb == "run":
        cmd = [PYC, "run", "-d", "--name", "crashrun", "busybox", "sh", "-c", LOOP]
    else:
        assert pyc("create", "--name", "crashrun", "busybox", "sh", "-c", LOOP).returncode == 0
        cmd = [PYC, "start", "crashrun"]
    cli = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(mark.exists, "the monitor spawned")
        cli.kill()
    finally:
        cli.wait()
    # The monitor carries on without the CLI: the container runs, and ps says so.
    until(lambda: state("crashrun")["Status"] == "running", "the container running")
    cid = pyc("inspect", "--format", "{{.Id}}", "crashrun").stdout.strip()
    assert ps_status(cid).startswith("Up")
    monitor = monitor_pid(cid)
    _remove_and_check_clean(cid, monitor)


def test_cli_killed_while_stopping() -> None:
    cid = run_d("busybox", "sh", "-c", LOOP)
    stopper = subprocess.Popen([PYC, "stop", "-t", "60", cid], stdout=subprocess.DEVNULL)
    try:
        until(lambda: pyc("logs", cid).stdout == "ignored\n", "SIGTERM delivered")
        stopper.kill()
    finally:
        stopper.wait()
    # The container ignored SIGTERM and runs on: that is the truth.
    assert state(cid)["Status"] == "running" and ps_status(cid).startswith("Up")
    assert pyc("stop", "-t", "0", cid).returncode == 0
    assert (state(cid)["Status"], state(cid)["ExitCode"]) == ("exited", 137)
    _remove_and_check_clean(cid)


def test_cli_killed_while_removing(store_root: Path) -> None:
    """rm moves the directory aside first, then deletes the row: a crash between the two
    leaves a row without files, which ps shows and rm removes. Made here as the crash leaves it."""
    cid = run_d("--name", "halfgone", "busybox", "true")
    assert pyc("wait", cid).stdout == "0\n"
    until(lambda: not alive(monitor_pid(cid)), "the monitor's end")
    # rm's first write: the monitor's last word goes into the row (reading a state writes nothing)
    engine = Engine()
    engine.containers.save(engine.container(cid))
    (store_root / "tmp").mkdir(exist_ok=True)
    os.rename(store_root / "containers" / cid, store_root / "tmp" / f"1-rm-{cid}")
    assert ps_status(cid).startswith("Exited (0)")
    assert pyc("rm", "halfgone").returncode == 0
    assert cid[:12] not in pyc("ps", "-a").stdout
    cid2 = run_d("--name", "halfgone", "busybox", "true")
    assert pyc("wait", "halfgone").stdout == "0\n"
    _remove_and_check_clean(cid2)


def test_commands_at_once_on_one_container() -> None:
    cid = run_d("busybox", "sh", "-c", LOOP)
    monitor = monitor_pid(cid)
    procs = [subprocess.Popen([PYC, *args, cid], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for args in (["stop", "-t", "1"], ["kill"], ["stop", "-t", "1"], ["rm", "-f"], ["wait"])]
    results = []
    for p in procs:
        _, err = p.communicate(timeout=60)
        results.append((p.returncode, err))
    for code, err in results:
        # Each did its part, or found the container gone or ended: never a broken store.
        assert code in (0, 1) and len(err.splitlines()) <= 1, results
        assert "Traceback" not in err
    assert leftovers(cid) == [] or pyc("rm", "-f", cid).returncode == 0
    assert leftovers(cid) == [] and not alive(monitor)
