"""pyc-monitor, the small Rust process that holds a detached container: finding it, starting it
for a container directory, and reading what it reports back."""

from __future__ import annotations

import os

from pyc.errors import PycError
from pyc.programs import program


class StartFailed(PycError):
    """The container did not start; `exit_code` is docker's (125, 126 not executable, 127 not found)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def spawn(container_dir: str) -> int:
    """Start the monitor on a directory holding monitor.msgpack; returns the container's pid
    once its command runs. The monitor detaches itself: nothing of it stays this process's."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        os.set_inheritable(w, True)
        pid = os.posix_spawn(program("pyc-monitor"), ["pyc-monitor", container_dir, str(w)], os.environ)
    finally:
        os.close(w)
    try:
        # The first child forks the monitor and exits at once.
        os.waitpid(pid, 0)
        report = b""
        while chunk := os.read(r, 4096):
            report += chunk
    finally:
        os.close(r)
    word, _, rest = report.decode(errors="replace").strip().partition(" ")
    if word == "ok":
        return int(rest)
    if word == "err":
        code, _, message = rest.partition(" ")
        raise StartFailed(message, int(code))
    raise PycError("pyc-monitor exited without starting the container")
