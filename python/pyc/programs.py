"""pyc's own programs beside the Python package: pyc-monitor (holds a detached container) and
pyc-init (what pyc runs inside containers, from a sealed copy: the --init reaper, the exec entry)."""

from __future__ import annotations

import os
import sys

from pyc.errors import Kind, PycError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def program(name: str) -> str:
    """$PYC_MONITOR / $PYC_INIT, else beside the Python that runs pyc (the venv), else on PATH."""
    path = os.environ.get("PYC_" + name.removeprefix("pyc-").upper()) or os.path.join(os.path.dirname(sys.executable), name)
    if os.access(path, os.X_OK):
        return path
    import shutil  # imports re: off the run path, where the program is found beside Python

    found = shutil.which(name)
    if found is None:
        raise PycError(f"{name} not found: set $PYC_{name.removeprefix('pyc-').upper()}, or run ./setup.sh", Kind.SYSTEM)
    return found


def spawn_detached(name: str, argv: Callable[[int], list[str]], keep: list[int] | None = None) -> str:
    """Start the program `name` with `argv(fd)`, fd the write end of a pipe on which it reports
    how its start went, and return that report. The program leaves this process by itself (a
    double fork): the first child is waited for here, and nothing of it stays ours. `keep`: fds
    it inherits."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        os.set_inheritable(w, True)
        for fd in keep or []:
            os.set_inheritable(fd, True)
        pid = os.posix_spawn(program(name), argv(w), os.environ)
    finally:
        os.close(w)
    try:
        os.waitpid(pid, 0)
        report = b""
        while chunk := os.read(r, 4096):
            report += chunk
    finally:
        os.close(r)
    return report.decode(errors="replace").strip()
