"""The cgroup v2 path on this host's own cgroup2 mount: `/sys/fs/cgroup` on a pure v2 host, its
`unified` mount on a hybrid one (which has no controllers but has cgroup.procs, cgroup.kill,
cgroup.freeze and clone3's CLONE_INTO_CGROUP). PYC_CGROUP_ROOT points pyc there. Where the
pure v2 VM cannot run (test.sh says so), test.sh also runs the whole container suite this way."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import CGROUP_PARENT, cgroup_dirs, pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def _cgroup2_mount() -> Path | None:
    with open("/proc/self/mountinfo") as f:
        mounts = {line.split()[4]: line.split(" - ")[1].split()[0] for line in f}
    for p in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if mounts.get(p) == "cgroup2":
            return Path(p)
    return None


V2_ROOT = _cgroup2_mount()


@pytest.fixture
def on_v2() -> Iterator[Path]:
    if V2_ROOT is None:
        pytest.skip("this kernel has no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified")
    old = os.environ.get("PYC_CGROUP_ROOT")
    os.environ["PYC_CGROUP_ROOT"] = str(V2_ROOT)
    try:
        yield V2_ROOT
    finally:
        if old is None:
            del os.environ["PYC_CGROUP_ROOT"]
        else:
            os.environ["PYC_CGROUP_ROOT"] = old


def _init_pid(cid: str) -> int:
    return int(pyc("inspect", "--format", "{{.State.Pid}}", cid).stdout)


def test_a_container_runs_in_its_own_v2_cgroup(on_v2: Path) -> None:
    r = pyc("run", "--rm", "busybox", "sh", "-c", "cat /proc/self/cgroup")
    assert r.returncode == 0, r.stderr
    # The cgroup namespace makes the container's cgroup its root: the v2 line reads "0::/".
    assert "0::/\n" in r.stdout
    assert cgroup_dirs() == []


def test_detached_container_is_placed_seen_frozen_and_killed_through_v2(on_v2: Path) -> None:
    cid = pyc("run", "-d", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done").stdout.strip()
    assert len(cid) == 64
    d = on_v2 / CGROUP_PARENT / cid
    pid = _init_pid(cid)
    assert str(pid) in (d / "cgroup.procs").read_text().split()
    assert f"0::/{CGROUP_PARENT}/{cid}\n" in Path(f"/proc/{pid}/cgroup").read_text()
    # exec enters the same cgroup.
    r = pyc("exec", cid, "cat", "/proc/self/cgroup")
    assert r.returncode == 0 and "0::/\n" in r.stdout, r
    # cgroup.freeze stops the counter; thawing lets it go on.
    (d / "cgroup.freeze").write_text("1")
    try:
        deadline = time.monotonic() + 5
        while "frozen 1" not in (d / "cgroup.events").read_text():
            assert time.monotonic() < deadline, "the cgroup did not freeze"
            time.sleep(0.01)
        n = Path(f"/proc/{pid}/root/tmp/n").read_text()
        time.sleep(0.3)
        assert Path(f"/proc/{pid}/root/tmp/n").read_text() == n
    finally:
        (d / "cgroup.freeze").write_text("0")
    time.sleep(0.3)
    assert Path(f"/proc/{pid}/root/tmp/n").read_text() != n
    # rm -f ends it (cgroup.kill) and leaves no cgroup.
    assert pyc("rm", "-f", cid).returncode == 0
    assert not d.exists() and cgroup_dirs() == []


def test_pause_freezes_through_cgroup_freeze(on_v2: Path) -> None:
    cid = pyc("run", "-d", "busybox", "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done").stdout.strip()
    d = on_v2 / CGROUP_PARENT / cid
    pid = _init_pid(cid)
    assert pyc("pause", cid).returncode == 0
    # pyc returns once the kernel says every process is frozen.
    assert (d / "cgroup.freeze").read_text() == "1\n" and "frozen 1" in (d / "cgroup.events").read_text()
    n = Path(f"/proc/{pid}/root/tmp/n").read_text()
    time.sleep(0.3)
    assert Path(f"/proc/{pid}/root/tmp/n").read_text() == n
    assert pyc("unpause", cid).returncode == 0
    assert (d / "cgroup.freeze").read_text() == "0\n"
    assert pyc("pause", cid).returncode == 0
    assert pyc("rm", "-f", cid).returncode == 0  # cgroup.kill reaches frozen processes
    assert not d.exists() and cgroup_dirs() == []
