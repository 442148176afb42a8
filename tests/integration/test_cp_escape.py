"""`pyc cp` against a hostile container (CVE-2018-15664 and its kin): while copies run in a loop
both ways, the container swaps the directory they go through for a symlink to a path that, on
the host, holds a secret, and swaps pyc's staging directory too. Nothing may ever be read from
or written to the host's side; a tar that leads outside is refused whole."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_volumes")]

SECRET = "the host's secret\n"


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A directory of the host with a secret in it: what an escape would read or write."""
    d = Path(f"/var/tmp/pyc-escape-{os.getpid()}")
    d.mkdir()
    (d / "secret").write_text(SECRET)
    yield d
    shutil.rmtree(d)


def swapper(host_dir: Path) -> str:
    """The container's loop: /w/dir flips between a directory and a symlink to `host_dir` (the
    same path inside has a decoy), and any staging directory of pyc's becomes such a symlink."""
    return (
        f"mkdir -p /w/dir {host_dir} && echo decoy > {host_dir}/secret && echo inside > /w/dir/secret && cd /w && "
        "echo ready > /w/ready && while true; do "
        f"mv dir dir.real; ln -s {host_dir} dir; rm dir; mv dir.real dir; "
        f"for s in dir/.pyc-cp-*; do [ -e $s ] && mv $s $s.x && ln -s {host_dir} $s; done; "
        "done"
    )


@pytest.mark.timeout(600)
def test_copies_in_a_loop_against_a_symlink_swapping_container(host_dir: Path, tmp_path: Path) -> None:
    ok = pyc("run", "-d", "--name", "swapper", "busybox", "sh", "-c", swapper(host_dir))
    assert ok.returncode == 0, ok.stderr
    while pyc("exec", "swapper", "test", "-f", "/w/ready").returncode != 0:
        pass
    payload = tmp_path / "payload"
    payload.write_text("from the host\n")
    payload_dir = tmp_path / "pd"
    (payload_dir / "sub").mkdir(parents=True)
    (payload_dir / "sub" / "f").write_text("x")
    landed = 0
    for i in range(40):
        # In: a file, and a directory tree, through the swapping path.
        r1 = pyc("cp", str(payload), f"swapper:/w/dir/in-{i}")
        r2 = pyc("cp", str(payload_dir), f"swapper:/w/dir/tree-{i}")
        # Out: the secret, through the same path.
        out = tmp_path / f"out-{i}"
        r3 = pyc("cp", "swapper:/w/dir/secret", str(out))
        for r in (r1, r2, r3):
            assert r.returncode in (0, 1) and r.stderr.count("\n") <= 1, r.stderr
        if r3.returncode == 0:
            assert out.read_text() in ("inside\n", "decoy\n")  # the container's, never the host's
        landed += r1.returncode == 0
        # The host's directory is as it was: nothing written, nothing taken.
        assert sorted(os.listdir(host_dir)) == ["secret"] and (host_dir / "secret").read_text() == SECRET
    assert landed > 0, "no copy ever went through: the test proved nothing"
    # What went in is inside the container: in /w/dir or in its own decoy directory.
    seen = pyc("exec", "swapper", "sh", "-c", f"ls /w/dir /w/dir.real {host_dir} 2>/dev/null").stdout.split()
    assert any(name.startswith("in-") for name in seen)
    assert pyc("rm", "-f", "swapper").returncode == 0


def test_a_tar_that_leads_outside_is_refused_whole(host_dir: Path) -> None:
    assert pyc("run", "-d", "--name", "target", "busybox", "sleep", "600").returncode == 0
    for entries in (
        [("ok", tarfile.REGTYPE, ""), ("link", tarfile.SYMTYPE, str(host_dir)), ("link/evil", tarfile.REGTYPE, "")],
        [("ok", tarfile.REGTYPE, ""), ("up", tarfile.SYMTYPE, "../../../../.."), (f"up{host_dir}/evil", tarfile.REGTYPE, "")],
        [("ok", tarfile.REGTYPE, ""), ("../../evil", tarfile.REGTYPE, "")],
        [("ok", tarfile.REGTYPE, ""), ("h", tarfile.LNKTYPE, f"../../../..{host_dir}/secret")],
    ):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for name, kind, link in entries:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, link
                t.addfile(info, io.BytesIO(b""))
        import subprocess

        from tests.conftest import PYC

        r = subprocess.run([PYC, "cp", "-", "target:/tmp"], input=buf.getvalue(), capture_output=True, timeout=60)
        assert r.returncode == 1 and b"unsafe path" in r.stderr and r.stderr.count(b"\n") == 1, (entries, r.stderr)
        assert sorted(os.listdir(host_dir)) == ["secret"] and os.stat(host_dir / "secret").st_nlink == 1
        # Refused whole: not even the entry before the bad one is there.
        assert pyc("exec", "target", "ls", "-A", "/tmp").stdout == ""
