"""pyc-monitor, the small Rust process that holds a detached container: finding it, starting it
for a container directory, and reading what it reports back."""

from __future__ import annotations

from pyc.errors import CommandFailed, Kind
from pyc.programs import spawn_detached

# What the monitor's report says (docker's code for a start that failed: Error::exit_code) as a kind.
_REPORTED = {127: Kind.COMMAND_NOT_FOUND, 126: Kind.COMMAND_NOT_EXECUTABLE}


def spawn(container_dir: str, keep: list[int] | None = None) -> int:
    """Start the monitor on a directory holding monitor.msgpack; returns the container's pid
    once its command runs, or raises CommandFailed. The monitor detaches itself: nothing of it
    stays this process's. `keep`: fds it inherits and holds for the container's life (the
    published ports' sockets)."""
    report = spawn_detached("pyc-monitor", lambda fd: ["pyc-monitor", container_dir, str(fd)], keep)
    word, _, rest = report.partition(" ")
    if word == "ok":
        return int(rest)
    if word == "err":
        code, _, message = rest.partition(" ")
        raise CommandFailed(message, _REPORTED.get(int(code), Kind.START_FAILED))
    raise CommandFailed("pyc-monitor exited without starting the container", Kind.START_FAILED)
