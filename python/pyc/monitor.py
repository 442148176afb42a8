"""pyc-monitor, the small Rust process that holds a detached container: finding it, starting it
for a container directory, and reading what it reports back."""

from __future__ import annotations

import os

from pyc.errors import CommandFailed, Kind
from pyc.programs import program

# What the monitor's report says (docker's code for a start that failed: Error::exit_code) as a kind.
_REPORTED = {127: Kind.COMMAND_NOT_FOUND, 126: Kind.COMMAND_NOT_EXECUTABLE}


def spawn(container_dir: str, keep: list[int] | None = None) -> int:
    """Start the monitor on a directory holding monitor.msgpack; returns the container's pid
    once its command runs, or raises CommandFailed. The monitor detaches itself: nothing of it
    stays this process's. `keep`: fds it inherits and holds for the container's life (the
    published ports' sockets)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        os.set_inheritable(w, True)
        for fd in keep or []:
            os.set_inheritable(fd, True)
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
        raise CommandFailed(message, _REPORTED.get(int(code), Kind.START_FAILED))
    raise CommandFailed("pyc-monitor exited without starting the container", Kind.START_FAILED)
