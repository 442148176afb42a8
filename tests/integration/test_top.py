"""pyc top: the host's ps, the rows of the container's processes only, docker's columns and
layout (tests/golden/docker/top*.txt, docker's own output on this host), ps options passed on."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import CGROUP_PARENT, cgroup_dirs, pyc
from tests.integration.lifecycle_helpers import run_d, until

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

DOCKER = Path(__file__).parent.parent / "golden" / "docker"


def _procs(cid: str) -> set[str]:
    dirs = cgroup_dirs(cid)
    assert dirs, f"no cgroup of {cid} under {CGROUP_PARENT}"
    return set((dirs[0] / "cgroup.procs").read_text().split())


def test_top_shows_the_containers_processes_as_docker() -> None:
    cid = run_d("--name", "topbox", "busybox", "sh", "-c", "sleep 300 & sleep 301 & wait")
    until(lambda: len(_procs(cid)) == 3, "sh and its two sleeps")
    r = pyc("top", "topbox")
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    # ps -ef's columns, each 20 wide as docker's tabwriter makes them: docker's line, to the byte.
    assert header == (DOCKER / "top.txt").read_text().splitlines()[0]
    assert {row.split()[1] for row in rows} == _procs(cid)
    commands = sorted(row[140:] for row in rows)
    assert commands == ["sh -c sleep 300 & sleep 301 & wait", "sleep 300", "sleep 301"]

    r = pyc("top", "topbox", "-o", "pid,comm")
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header == (DOCKER / "top-o.txt").read_text().splitlines()[0]
    assert sorted(row.split()[1] for row in rows) == ["sh", "sleep", "sleep"]

    # Options without a PID column: docker's refusal, one line; a bad option is ps's word.
    for args in (["-o", "comm"], ["--no-such-ps-option"], ["-o", "comm=PID"]):
        r = pyc("top", "topbox", *args)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, (args, r)
    assert "PID" in pyc("top", "topbox", "-o", "comm").stderr

    # Paused, it is still listed (docker's top reads the cgroup, not the processes).
    assert pyc("pause", "topbox").returncode == 0
    assert len(pyc("top", "topbox").stdout.splitlines()) == 4
    assert pyc("rm", "-f", "topbox").returncode == 0


def test_top_of_a_stopped_container_is_refused() -> None:
    cid = pyc("create", "busybox", "true").stdout.strip()
    r = pyc("top", cid)
    assert r.returncode == 1 and "is not running" in r.stderr
    r = pyc("top", "no-such-container")
    assert r.returncode == 1 and "no such container" in r.stderr
    assert pyc("rm", cid).returncode == 0
