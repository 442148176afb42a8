"""The `pyc` launcher setup.sh installs (pyc/launcher.py): the venv's Python with -I -S and a
fixed sys.path, so neither `site` nor the caller's PYTHON* variables come into a run; the exit
code and output of the command come through its early exit whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PYC


def test_it_starts_python_isolated_without_site() -> None:
    first, *rest = Path(PYC).read_text().splitlines()
    assert first == f"#!{sys.executable} -IS"
    path = next(line for line in rest if line.startswith("sys.path"))
    assert str(Path(__file__).parents[2] / "python") in path


def test_the_callers_python_environment_does_not_reach_it(tmp_path: Path) -> None:
    """A PYTHONPATH with a `pyc` of its own, a PYTHONSTARTUP and a PYTHONINSPECT are ignored."""
    fake = tmp_path / "fake" / "pyc"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise SystemExit('the caller\\'s pyc was imported')\n")
    (tmp_path / "startup.py").write_text("raise SystemExit('PYTHONSTARTUP ran')\n")
    env = {**os.environ, "PYC_ROOT": str(tmp_path / "store"), "PYTHONPATH": str(tmp_path / "fake"), "PYTHONSTARTUP": str(tmp_path / "startup.py"), "PYTHONINSPECT": "1"}
    r = subprocess.run([PYC, "images"], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]


def test_exit_codes_and_output_come_through(tmp_path: Path) -> None:
    env = {**os.environ, "PYC_ROOT": str(tmp_path / "store")}
    r = subprocess.run([PYC, "rm", "nothing-here"], capture_output=True, text=True, env=env, timeout=60)
    assert (r.returncode, r.stderr) == (1, "pyc: no such container: nothing-here\n")
    r = subprocess.run([PYC, "images", "--bad-flag"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 125 and r.stderr.startswith("pyc: "), r.stderr


def test_a_reader_that_goes_away_is_no_error(tmp_path: Path) -> None:
    """`pyc images | head -0`: output to a closed pipe ends the command quietly, exit 0."""
    env = {**os.environ, "PYC_ROOT": str(tmp_path / "store")}
    p = subprocess.Popen([PYC, "images"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read()
    p.stderr.close()
    assert (p.wait(60), err) == (0, b"")
