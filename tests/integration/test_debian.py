"""The realistic built-in image: Debian minbase from debootstrap, in a store of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest
from tests.conftest import PYC

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.timeout(600)]


def test_bootstrap_debian_and_run_it() -> None:
    root = tempfile.mkdtemp(prefix="pyc-debian-", dir="/var/tmp")
    env = dict(os.environ, PYC_ROOT=root)
    try:
        r = subprocess.run([PYC, "image", "bootstrap", "debian"], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr
        script = "cat /etc/debian_version; dpkg -s bash | grep -c '^Status: install ok installed'; ls /var/lib/apt/lists | grep -c _ || true"
        r = subprocess.run([PYC, "run", "--rm", "debian", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=60)
        version, bash_installed, lists = r.stdout.split()
        assert r.returncode == 0 and version[0].isdigit() and bash_installed == "1" and lists == "0"
    finally:
        shutil.rmtree(root, ignore_errors=True)
