"""Helpers of the detached-container tests: state as the CLI reports it, monitor pids, waits."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.conftest import pyc


def run_d(*args: str) -> str:
    r = pyc("run", "-d", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def state(ref: str) -> dict[str, object]:
    r = pyc("inspect", ref)
    assert r.returncode == 0, r.stderr
    st: dict[str, object] = json.loads(r.stdout)[0]["State"]
    return st


def restart_count(ref: str) -> int:
    return int(pyc("inspect", "--format", "{{.RestartCount}}", ref).stdout)


def ps_status(cid: str) -> str:
    """The STATUS column of `pyc ps -a` for the container."""
    r = pyc("ps", "-a")
    header, *rows = r.stdout.splitlines()
    at, end = header.index("STATUS"), header.index("NAMES")
    return next(row[at:end].strip() for row in rows if row.startswith(cid[:12]))


def monitor_pid(cid: str) -> int:
    return int(str(state(cid)["MonitorPid"]))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def until(check: object, what: str, seconds: float = 20) -> None:
    """Polls `check` (a callable) until true: for events that take an unknown while (a restart,
    a signal's delivery); the bound only keeps a broken build from hanging."""
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def log_files(cid: str) -> list[Path]:
    return sorted(Path(os.environ["PYC_ROOT"], "containers", cid).glob("ctr.log*"))
