"""Helpers of the detached-container tests: state as the CLI reports it, monitor pids, waits."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tests.conftest import PYC, pyc


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


class Running:
    """A `pyc run --rm` in the foreground whose command waits; its id once it runs."""

    def __init__(self, *flags: str) -> None:
        self.proc = subprocess.Popen([PYC, "run", "--rm", *flags, "busybox", "sh", "-c", "hostname; exec sleep 60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        short = self.proc.stdout.readline().strip()
        assert len(short) == 12, self.proc.stderr.read() if self.proc.stderr else ""
        self.id = pyc("inspect", "--format", "{{.Id}}", short).stdout.strip()
        self.name = pyc("inspect", "--format", "{{.Name}}", short).stdout.strip().lstrip("/")
        assert self.id.startswith(short), self.id

    def end(self) -> int:
        """Its pyc's exit code once the container is gone."""
        self.proc.wait(30)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        return self.proc.returncode
