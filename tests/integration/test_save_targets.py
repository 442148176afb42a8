"""pyc save writes the same bytes wherever the archive goes: a file on the store's filesystem
(the kernel copies file to file), another filesystem (a tmpfs: the kernel sends instead), a pipe,
or an append-only stdout (`>>`, which neither kernel copy takes, so pyc reads and writes); and
what it wrote loads and runs."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


@pytest.fixture
def beside_store(store_root: Path) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pyc-test-save-", dir=store_root.parent))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pyc-test-tmpfs-"))
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "pyc-test", str(d)], check=True)
        try:
            yield d
        finally:
            subprocess.run(["umount", "-l", str(d)], check=True)
    finally:
        d.rmdir()


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_same_archive_on_disk_tmpfs_pipe_and_append_only_stdout(fmt: str, beside_store: Path, tmpfs: Path, other_store: dict[str, str]) -> None:
    on_disk, on_tmpfs, appended = beside_store / "a.tar", tmpfs / "a.tar", beside_store / "appended.tar"
    for out in (on_disk, on_tmpfs):
        r = pyc("save", "busybox", "--format", fmt, "-o", str(out))
        assert r.returncode == 0, r.stderr
    piped = subprocess.run([PYC, "save", "busybox", "--format", fmt], capture_output=True)
    assert piped.returncode == 0, piped.stderr
    with open(appended, "ab") as f:
        r2 = subprocess.run([PYC, "save", "busybox", "--format", fmt], stdout=f, stderr=subprocess.PIPE)
    assert r2.returncode == 0, r2.stderr
    data = on_disk.read_bytes()
    assert len(data) > 100_000 and len(data) % 10240 == 0, "whole tar records"
    assert on_tmpfs.read_bytes() == data and piped.stdout == data and appended.read_bytes() == data
    r = pyc("load", "-i", str(on_tmpfs), env=other_store)
    assert (r.returncode, r.stdout) == (0, "Loaded image: busybox:latest\n"), r.stderr
    r = pyc("run", "--rm", "busybox", "echo", "hi", env=other_store)
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
