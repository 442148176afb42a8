"""The hand-written pyc_core stub matches the compiled module (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_stub_matches_the_extension(tmp_path: Path) -> None:
    # Run where its cache may be written: the checkout may not be writable (the unprivileged tier).
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "pyc_core._pyc_core"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
