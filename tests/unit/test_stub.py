"""The hand-written pyc_core stub matches the compiled module (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys


def test_stub_matches_the_extension() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "pyc_core._pyc_core"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
