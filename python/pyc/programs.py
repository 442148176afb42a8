"""pyc's own programs beside the Python package: pyc-monitor (holds a detached container) and
pyc-init (what pyc runs inside containers, from a sealed copy: the --init reaper, the exec entry)."""

from __future__ import annotations

import os
import sys

from pyc.errors import PycError


def program(name: str) -> str:
    """$PYC_MONITOR / $PYC_INIT, else beside the Python that runs pyc (the venv), else on PATH."""
    path = os.environ.get("PYC_" + name.removeprefix("pyc-").upper()) or os.path.join(os.path.dirname(sys.executable), name)
    if os.access(path, os.X_OK):
        return path
    import shutil  # imports re: off the run path, where the program is found beside Python

    found = shutil.which(name)
    if found is None:
        raise PycError(f"{name} not found: set $PYC_{name.removeprefix('pyc-').upper()}, or run ./setup.sh")
    return found
