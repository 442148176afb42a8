"""pyc save of several images that share layers writes each shared blob once, in every format,
and the archive loads back both images."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


@pytest.fixture
def child() -> Iterator[str]:
    """busybox plus one layer, named `pyc-test-child`."""
    assert pyc("run", "--name", "pyc-test-child", "busybox", "sh", "-c", "echo child > /child").returncode == 0
    try:
        assert pyc("commit", "pyc-test-child", "pyc-test-child").returncode == 0
        yield "pyc-test-child"
    finally:
        pyc("rm", "-f", "pyc-test-child")
        pyc("rmi", "pyc-test-child")


def _members(path: Path) -> list[str]:
    if path.is_dir():
        return [str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()]
    with tarfile.open(path) as tar:
        return [m.name for m in tar.getmembers() if m.isfile()]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir"])
def test_shared_layers_written_once(fmt: str, child: str, tmp_path: Path) -> None:
    base = json.loads(pyc("image", "inspect", "busybox").stdout)[0]["RootFS"]["Layers"]
    top = json.loads(pyc("image", "inspect", child).stdout)[0]["RootFS"]["Layers"]
    assert top[: len(base)] == base and len(top) == len(base) + 1
    out = tmp_path / "both"
    r = pyc("save", "busybox", child, "-o", str(out), "--format", fmt)
    assert r.returncode == 0, r.stderr
    names = _members(out)
    layer_files = [n for n in names if n.endswith("/layer.tar")] if fmt == "docker-archive" else [n for n in names if n.startswith("blobs/")]
    # docker-archive: one layer.tar per distinct layer; OCI: per distinct layer, plus a
    # manifest and a config per image.
    assert len(layer_files) == len(set(layer_files)) == len(top) + (0 if fmt == "docker-archive" else 4)
    for d in top:
        assert sum(d.removeprefix("sha256:") in n for n in layer_files) == 1

    root = tempfile.mkdtemp(prefix="pyc-test-shared-", dir="/var/tmp")
    try:
        env = {**os.environ, "PYC_ROOT": root}
        r = pyc("load", "-i", str(out), env=env)
        assert (r.returncode, sorted(r.stdout.splitlines())) == (0, ["Loaded image: busybox:latest", f"Loaded image: {child}:latest"]), r.stderr
        r = pyc("run", "--rm", child, "cat", "/child", env=env)
        assert (r.returncode, r.stdout) == (0, "child\n"), r.stderr
        assert len(os.listdir(Path(root) / "layers")) == len(top)
    finally:
        shutil.rmtree(root, ignore_errors=True)
