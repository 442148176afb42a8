"""Progress bars: load, save, import and commit draw per-layer bars with bytes done when stderr
is a terminal (a pty here), and write nothing to stderr otherwise; stdout holds the results only."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc

pytestmark = [pytest.mark.usefixtures("busybox", "clean_containers")]

ANSI = re.compile(rb"\x1b\[[0-9;?]*[a-zA-Z]")


def on_a_tty(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run pyc with stderr on a pty: (exit code, stdout, what the terminal showed, sans colours)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([PYC, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env)
    finally:
        os.close(slave)
    shown = b""
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the pty
                break
            if not data:
                break
            shown += data
    finally:
        os.close(master)
        assert p.stdout is not None
        out = p.stdout.read().decode()
        p.stdout.close()
        p.wait(timeout=120)
    return p.returncode, out, ANSI.sub(b"", shown).decode(errors="replace")


def _layer_label() -> str:
    layer: str = json.loads(pyc("image", "inspect", "busybox").stdout)[0]["RootFS"]["Layers"][0]
    return layer[7:19]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-dir"])
def test_save_and_load_show_a_bar_on_a_terminal_only(fmt: str, tmp_path: Path, other_store: dict[str, str]) -> None:
    label = _layer_label()
    out = tmp_path / "bb"
    code, stdout, shown = on_a_tty("save", "busybox", "-o", str(out), "--format", fmt)
    assert (code, stdout) == (0, "")
    assert re.search(rf"{label}: Saving .* 2\.1/2\.1 MB", shown), shown
    code, stdout, shown = on_a_tty("load", "-i", str(out), env=other_store)
    assert (code, stdout) == (0, "Loaded image: busybox:latest\n")
    assert re.search(rf"{label}: Loading layer .* 2\.1/2\.1 MB", shown), shown
    # Without a terminal: nothing on stderr.
    shutil.rmtree(other_store["PYC_ROOT"])
    r = pyc("load", "-i", str(out), env=other_store)
    assert (r.returncode, r.stdout, r.stderr) == (0, "Loaded image: busybox:latest\n", "")


@pytest.mark.root
def test_import_and_commit_show_a_bar_on_a_terminal_only(tmp_path: Path) -> None:
    r = pyc("run", "--name", "pyc-test-progress", "busybox", "sh", "-c", "head -c 3000000 /dev/urandom > /r")
    assert r.returncode == 0, r.stderr
    code, stdout, shown = on_a_tty("commit", "pyc-test-progress", "pyc-test-progress:1")
    try:
        assert code == 0 and stdout.startswith("sha256:")
        assert re.search(r"Writing layer .* 3\.0/3\.0 MB", shown), shown
        assert re.search(r"[0-9a-f]{12}: Storing layer .* 3\.0/3\.0 MB", shown), shown
        export = tmp_path / "rootfs.tar"
        with open(export, "wb") as f:
            assert subprocess.run([PYC, "export", "pyc-test-progress"], stdout=f).returncode == 0
        code, stdout, shown = on_a_tty("import", str(export), "pyc-test-progress:2")
        assert code == 0 and stdout.startswith("sha256:")
        size = export.stat().st_size / 1e6
        assert re.search(rf"Importing .* {size:.1f}/{size:.1f} MB", shown), shown
        r = pyc("import", str(export), "pyc-test-progress:3")
        assert (r.returncode, r.stderr) == (0, ""), r.stderr
    finally:
        for tag in "123":
            pyc("rmi", f"pyc-test-progress:{tag}")


def test_a_compressed_archive_shows_its_decompression(tmp_path: Path, other_store: dict[str, str]) -> None:
    plain = tmp_path / "bb.tar"
    assert pyc("save", "busybox", "-o", str(plain)).returncode == 0
    packed = tmp_path / "bb.tar.gz"
    subprocess.run(["gzip", "-1", "-k", str(plain)], check=True)
    size_mb = f"{packed.stat().st_size / 1e6:.1f}"
    code, stdout, shown = on_a_tty("load", "-i", str(packed), env=other_store)
    assert (code, stdout) == (0, "Loaded image: busybox:latest\n")
    assert re.search(rf"Decompressing .* {size_mb}/{size_mb} MB", shown), shown
    assert re.search(rf"{_layer_label()}: Loading layer .* 2\.1/2\.1 MB", shown), shown
