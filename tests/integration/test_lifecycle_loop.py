"""50 detached containers started and removed in a loop leave no process, mount, cgroup,
directory or open fd behind. Through the engine API in this process, so its fds can be counted."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from tests.conftest import leftovers
from tests.integration.lifecycle_helpers import alive, until

from pyc.engine import Engine
from pyc.logs import records
from pyc.runtime.spec import RunOptions

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_fifty_containers_leave_nothing_behind(store_root: Path) -> None:
    engine = Engine()
    engine.remove_container(engine.run_detached("busybox", RunOptions(["true"])).id, force=True)  # warm caches
    gc.collect()  # what earlier tests left for the collector (a pipe's file) is closed before, not during
    fds_before = _fds()
    seen: list[tuple[str, int, int]] = []
    for i in range(50):
        c = engine.run_detached("busybox", RunOptions(["sh", "-c", "trap 'exit 0' TERM; echo hi; while true; do sleep 0.05; done"]))
        st = engine.container(c.id).current_state()
        assert st.status == "running"
        seen.append((c.id, st.monitor_pid, st.pid))
        if i % 2:
            # Its trap is set once "hi" is out; a SIGTERM before would be ignored by the init.
            until(lambda c=c: records(engine.container(c.id))[0] != [], "the first line")
            engine.stop(c.id, timeout=5)
            # sh is the pid namespace's init: only its trap lets SIGTERM end it.
            assert engine.container(c.id).current_state().exit_code == 0
            engine.remove_container(c.id)
        else:
            engine.remove_container(c.id, force=True)
    assert _fds() == fds_before
    for cid, monitor, pid in seen:
        assert not alive(monitor) and not alive(pid)
        assert leftovers(cid) == []  # its mounts, cgroups (one per hierarchy) and directory
    assert os.listdir(store_root / "containers") == []
