"""An unnamed `pyc run --rm` keeps its record in foreground/<id>, not in pyc.db (the fast path of
issue #11): the container is still seen and handled as any other while it runs, its name is
still its own, and it leaves nothing when it ends, is removed, or loses its pyc."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import leftovers, pyc
from tests.integration.lifecycle_helpers import Running, ps_status, until

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def db_names(store_root: Path) -> set[str]:
    db = sqlite3.connect(store_root / "pyc.db")
    try:
        return {name for (name,) in db.execute("SELECT name FROM containers")}
    finally:
        db.close()


@pytest.fixture
def running() -> Iterator[Running]:
    r = Running()
    try:
        yield r
    finally:
        if r.proc.poll() is None:
            pyc("rm", "-f", r.id)
        r.end()


def test_seen_and_handled_like_any_container(store_root: Path, running: Running) -> None:
    assert (store_root / "foreground" / running.id).is_file()
    assert running.name not in db_names(store_root)  # no row, while it runs
    assert oct((store_root / "foreground").stat().st_mode & 0o777) == "0o700"  # its env may hold secrets
    assert running.id[:12] in pyc("ps", "-q").stdout.split()
    assert ps_status(running.id).startswith("Up ")
    assert pyc("inspect", "--format", "{{.State.Status}} {{.HostConfig.AutoRemove}}", running.name).stdout == "running true\n"
    assert pyc("exec", running.name, "hostname").stdout == running.id[:12] + "\n"
    assert pyc("exec", running.id[:5], "true").returncode == 0  # an id prefix finds it too
    r = pyc("stats", "--no-stream", "--format", "json", running.name)
    assert r.returncode == 0 and running.id[:12] in r.stdout, r.stderr


def test_its_name_is_its_own(store_root: Path, running: Running) -> None:
    for cmd in (["create", "--name", running.name, "busybox", "true"], ["run", "--rm", "--name", running.name, "busybox", "true"]):
        r = pyc(*cmd)
        assert r.returncode == 125 and "is already in use" in r.stderr, r.stderr
    assert pyc("create", "--name", "fg-kept", "busybox", "true").returncode == 0
    r = pyc("rename", running.name, "fg-kept")  # a name pyc.db holds
    assert r.returncode == 1 and "is already in use" in r.stderr, r.stderr
    assert pyc("rename", running.name, "fg-renamed").returncode == 0
    assert pyc("inspect", "--format", "{{.Name}}", running.id).stdout == "fg-renamed\n"
    r = pyc("rename", "fg-kept", "fg-renamed")  # and the other way
    assert r.returncode == 1 and "is already in use" in r.stderr, r.stderr
    assert pyc("exec", "fg-renamed", "true").returncode == 0
    assert db_names(store_root) >= {"fg-kept"} and "fg-renamed" not in db_names(store_root)


def test_a_named_run_is_a_row(store_root: Path) -> None:
    """A name of the user's goes into pyc.db, whose index keeps it unique."""
    named = Running("--name", "fg-named")
    try:
        assert "fg-named" in db_names(store_root)
        assert not (store_root / "foreground" / named.id).exists()
    finally:
        assert pyc("rm", "-f", "fg-named").returncode == 0
        assert named.end() == 137
    assert "fg-named" not in db_names(store_root) and leftovers(named.id) == []


def test_nothing_left_when_it_ends(store_root: Path) -> None:
    r = pyc("run", "--rm", "busybox", "sh", "-c", "hostname; exit 3")
    assert r.returncode == 3
    short = r.stdout.strip()
    assert not [f for f in os.listdir(store_root / "foreground") if f.startswith(short)]
    assert leftovers(short) == []
    assert short not in pyc("ps", "-aq").stdout


def test_rm_f_ends_it(store_root: Path, running: Running) -> None:
    assert pyc("rm", "-f", running.name).returncode == 0
    assert running.end() == 137
    assert not (store_root / "foreground" / running.id).exists()
    assert leftovers(running.id) == []


def test_a_killed_pyc_leaves_it_exited_until_rm(store_root: Path, running: Running) -> None:
    os.kill(running.proc.pid, signal.SIGKILL)
    assert running.end() == -signal.SIGKILL
    # The kernel kills the container with its pyc (PDEATHSIG); its record says so.
    until(lambda: ps_status(running.id) == "Exited (137)", "the container shown exited")
    assert (store_root / "foreground" / running.id).is_file()
    assert pyc("rm", running.name).returncode == 0  # not running: no -f needed
    assert not (store_root / "foreground" / running.id).exists()
    assert leftovers(running.id) == []
