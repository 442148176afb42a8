"""Who uses a volume: rows of pyc.db, and the records of unnamed foreground `--rm` runs (a file
each, no SQLite: pyc/volumes.py). rm, prune, ls's dangling filter and system df see both; a
`volume rm` racing such runs never removes a volume one of them has, and a killed run keeps its
volumes in use until its container is removed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from tests.conftest import pyc
from tests.integration.lifecycle_helpers import Running, ps_status, until

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_volumes")]


def ok(*args: str) -> str:
    r = pyc(*args)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def db_ids(store_root: Path) -> set[str]:
    db = sqlite3.connect(store_root / "pyc.db")
    try:
        return {cid for (cid,) in db.execute("SELECT id FROM containers")}
    finally:
        db.close()


def test_a_foreground_run_records_its_volumes_in_its_file_and_they_are_in_use(store_root: Path) -> None:
    ok("volume", "create", "fgv")
    ok("volume", "create", "fgw")
    run = Running("-v", "fgv:/v", "-v", "fgw:/w:ro")
    cid = run.id
    try:
        assert (store_root / "foreground" / cid).is_file() and cid not in db_ids(store_root)
        for name in ("fgv", "fgw"):
            r = pyc("volume", "rm", name)
            assert (r.returncode, r.stderr) == (1, f"pyc: remove {name}: volume is in use - [{cid}]\n")
        assert {"fgv", "fgw"} <= set(ok("volume", "ls", "-q", "--filter", "dangling=false").split())
        assert not {"fgv", "fgw"} & set(ok("volume", "ls", "-q", "--filter", "dangling=true").split())
        out = ok("volume", "prune", "-a", "-f")
        assert "fgv" not in out and "fgw" not in out and {"fgv", "fgw"} <= set(ok("volume", "ls", "-q").split())
        active = active_volumes()
    finally:
        pyc("rm", "-f", cid)
        run.end()
    assert active - active_volumes() == 2  # system df counted them as in use
    assert {"fgv", "fgw"} <= set(ok("volume", "ls", "-q", "--filter", "dangling=true").split())
    assert ok("volume", "rm", "fgv", "fgw") == "fgv\nfgw\n"


def active_volumes() -> int:
    """system df's ACTIVE count of Local Volumes."""
    (row,) = [line.split() for line in ok("system", "df").splitlines() if line.startswith("Local Volumes")]
    return int(row[3])


def test_a_volume_a_run_makes_goes_through_pyc_db_and_the_next_run_does_not(store_root: Path) -> None:
    r = pyc("run", "--rm", "-v", "madev:/v", "busybox", "sh", "-c", "echo x > /v/f")
    assert r.returncode == 0, r.stderr
    assert (store_root / "volumes" / "madev" / "volume.msgpack").is_file()
    # A volume without its record's copy (made by an older pyc, or a crash after the commit):
    # the run finds it in pyc.db, and the next container that uses it writes the copy again.
    (store_root / "volumes" / "madev" / "volume.msgpack").unlink()
    assert ok("run", "--rm", "-v", "madev:/v", "busybox", "cat", "/v/f") == "x\n"
    ok("run", "--name", "healer", "-v", "madev:/v", "busybox", "true")
    assert (store_root / "volumes" / "madev" / "volume.msgpack").is_file()
    ok("rm", "healer")
    run = Running("-v", "madev:/v")
    cid = run.id
    try:
        assert cid not in db_ids(store_root) and (store_root / "foreground" / cid).is_file()
    finally:
        pyc("rm", "-f", cid)
        run.end()


def test_a_killed_run_keeps_its_volumes_in_use_until_rm(store_root: Path) -> None:
    ok("volume", "create", "killedv")
    run = Running("-v", "killedv:/v")
    cid = run.id
    os.kill(run.proc.pid, signal.SIGKILL)
    assert run.end() == -signal.SIGKILL
    until(lambda: ps_status(cid) == "Exited (137)", "the container shown exited")
    r = pyc("volume", "rm", "killedv")
    assert (r.returncode, r.stderr) == (1, f"pyc: remove killedv: volume is in use - [{cid}]\n")
    ok("rm", cid)
    assert ok("volume", "rm", "killedv") == "killedv\n"


def remove_soon(result: dict[str, float]) -> None:
    time.sleep(random.uniform(0, 0.25))
    r = pyc("volume", "rm", "racev")
    result["rm"], result["rm_done"] = r.returncode, time.monotonic()


def test_volume_rm_racing_foreground_runs_never_takes_a_volume_in_use() -> None:
    """Each round: a run that reads the volume's file, writes one, waits and reads it back, and
    a `volume rm` at a random moment around its start. Either rm refuses (the run had it), or
    rm removed it before the run claimed it (the run then made a new, empty one), or after the
    run: never while the run has it (its file would be gone when it reads it back)."""
    outcomes = set()
    for _ in range(12):
        ok("volume", "create", "racev")
        data = Path(os.environ["PYC_ROOT"], "volumes", "racev", "_data")
        (data / "f").write_text("old\n")
        result: dict[str, float] = {}
        remover = threading.Thread(target=remove_soon, args=(result,))
        remover.start()
        r = pyc("run", "--rm", "-v", "racev:/v", "busybox", "sh", "-c", "cat /v/f 2>/dev/null; echo new > /v/g; sleep 0.5; cat /v/g", timeout=60)
        remover.join()
        assert r.returncode == 0 and r.stdout.endswith("new\n"), (r.stdout, r.stderr)
        if result["rm"] != 0:
            assert r.stdout == "old\nnew\n" and sorted(p.name for p in data.iterdir()) == ["f", "g"]
            outcomes.add("refused")
        elif r.stdout == "new\n":
            assert sorted(p.name for p in data.iterdir()) == ["g"]  # made anew by the run
            outcomes.add("removed first")
        else:
            assert r.stdout == "old\nnew\n" and not data.parent.exists()
            outcomes.add("removed after")
        pyc("volume", "rm", "racev")
    assert "refused" in outcomes, outcomes
