"""What a killed command left in the store's tmp/ (a `pyc load` under kill -9): system df shows
it, image prune frees it and counts it; a temp dir still in use (locked) is neither."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

import pyc
from pyc.cli import main

DEAD_PID = 2**22 + 1  # above any pid_max: no process has it


def leave(root: Path, name: str, size: int) -> Path:
    d = root / "tmp" / name
    (d / "blobs").mkdir(parents=True)
    (d / "blobs" / "layer").write_bytes(b"x" * size)
    return d


def test_df_shows_and_prune_frees_what_a_killed_load_left(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYC_ROOT", str(tmp_path))
    engine = pyc.Engine(str(tmp_path))
    engine.images.ensure_layout()
    dead = leave(tmp_path, f"{DEAD_PID}-abcd", 3_000_000)
    live = leave(tmp_path, f"{os.getpid()}-busy", 1_000)  # this process's: in use
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert engine.disk_usage().leftovers == 3_000_000
        assert main.dispatch(["system", "df"]) == 0
        assert [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("Leftovers")] == [["Leftovers", "3MB", "3MB", "(100%)"]]
        assert main.dispatch(["image", "prune", "-f"]) == 0
        assert capsys.readouterr().out == "Total reclaimed space: 3MB\n"
        assert not dead.exists() and live.exists()
        assert engine.disk_usage().leftovers == 0
    finally:
        os.close(fd)
