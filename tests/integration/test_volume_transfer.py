"""Volumes between machines: `pyc volume export` on one store and `pyc volume import` on another
give the same tree, compared by a walk (content, mode, owner, mtime, xattrs, hardlink groups,
symlinks, nodes), from plain, gzip and zstd tars; a volume with files is refused unless
--force, and a bad tar changes nothing."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_volumes")]


def walk(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under `root` (itself as "."): kind, mode, owner, mtime in ns, content hash or
    link target or device, xattrs, and its hardlink group (the sorted names of its inode)."""
    inodes: dict[int, list[str]] = {}
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames] if dirpath == str(root) else [*dirnames, *filenames]:
            p = Path(dirpath, name) if name != "." else root
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            if stat.S_ISREG(kind):
                what: object = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(kind):
                what = os.readlink(p)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                what = (os.major(st.st_rdev), os.minor(st.st_rdev))
            else:
                what = None
            xattrs = sorted((k, os.getxattr(p, k, follow_symlinks=False)) for k in os.listxattr(p, follow_symlinks=False))
            mtime = st.st_mtime_ns if not stat.S_ISLNK(kind) else st.st_mtime_ns // 10**9
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, mtime, what, tuple(xattrs))
            if not stat.S_ISDIR(kind):
                inodes.setdefault(st.st_ino, []).append(rel)
    for names in inodes.values():
        for n in names:
            out[n] = (*out[n], tuple(sorted(names)))
    return out


def fill(root: Path) -> None:
    """A tree with all a volume may hold."""
    (root / "dir" / "deep" / "er").mkdir(parents=True)
    (root / "dir" / "f").write_bytes(os.urandom(100_000))
    os.link(root / "dir" / "f", root / "dir" / "deep" / "hard")
    os.link(root / "dir" / "f", root / "hard2")
    (root / "empty").write_bytes(b"")
    os.symlink("dir/f", root / "rel-link")
    os.symlink("/etc/passwd", root / "abs-link")
    os.mkfifo(root / "fifo", 0o640)
    os.mknod(root / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (root / ".wh.not-a-whiteout").write_text("a plain name")
    os.setxattr(root / "dir" / "f", "user.pyc", b"v1")
    os.setxattr(root / "dir", "trusted.pyc", b"t")
    os.chown(root / "dir" / "deep", 1234, 5678)
    os.chown(root / "empty", 70000, 80000)  # ids past 2^21: base-256 numbers in the tar
    os.chown(root / "rel-link", 42, 43, follow_symlinks=False)
    os.chmod(root / "dir" / "deep", 0o2750)
    os.chmod(root / "empty", 0o4755)
    os.chmod(root, 0o711)
    os.chown(root, 99, 98)
    for i, p in enumerate(sorted(root.rglob("*"), reverse=True)):
        os.utime(p, ns=(1_600_000_000_123_456_789 + i, 1_600_000_000_123_456_789 + i), follow_symlinks=False)
    os.utime(root, ns=(1_500_000_000_000_000_001, 1_500_000_000_000_000_001))


def data(env: dict[str, str], name: str) -> Path:
    return Path(env["PYC_ROOT"], "volumes", name, "_data")


def test_export_on_one_store_import_on_another_gives_the_same_tree(other_store: dict[str, str], tmp_path: Path) -> None:
    here = dict(os.environ)
    assert pyc("volume", "create", "src").returncode == 0
    fill(data(here, "src"))
    before = walk(data(here, "src"))
    tar = tmp_path / "v.tar"
    r = pyc("volume", "export", "src", "-o", str(tar))
    assert r.returncode == 0, r.stderr
    assert walk(data(here, "src")) == before  # reading changes nothing
    plain = tar.read_bytes()
    (tmp_path / "v.tar.gz").write_bytes(gzip.compress(plain))
    subprocess.run(["zstd", "-q", "-f", str(tar), "-o", str(tmp_path / "v.tar.zst")], check=True)
    for i, (f, how) in enumerate([(tar, "path"), (tmp_path / "v.tar.gz", "path"), (tmp_path / "v.tar.zst", "stdin")]):
        name = f"copy{i}"
        if how == "stdin":
            r = subprocess.run([PYC, "volume", "import", name, "-"], input=f.read_bytes(), capture_output=True, env=other_store, timeout=60)
        else:
            r = subprocess.run([PYC, "volume", "import", name, str(f)], capture_output=True, env=other_store, timeout=60)
        assert r.returncode == 0, r.stderr
        assert walk(data(other_store, name)) == before, f.name
    # The imported volume works in a container of the other store.
    r = pyc("run", "--rm", "-v", "copy0:/v", "busybox", "sh", "-c", "cat /v/.wh.not-a-whiteout; ls -ln /v/empty", env=other_store)
    assert r.returncode == 0 and r.stdout.startswith("a plain name-rwsr-xr-x    1 70000    80000"), (r.stdout, r.stderr)


def test_import_refuses_a_volume_with_files_and_bad_tars(tmp_path: Path) -> None:
    assert pyc("volume", "create", "full").returncode == 0
    (data(dict(os.environ), "full") / "mine").write_text("mine")
    tar = tmp_path / "t.tar"
    (tmp_path / "theirs").write_text("theirs")
    subprocess.run(["tar", "-C", str(tmp_path), "-cf", str(tar), "theirs"], check=True)
    r = pyc("volume", "import", "full", str(tar))
    assert (r.returncode, r.stderr) == (1, "pyc: volume full is not empty: import into a new or empty volume, or use --force\n")
    assert sorted(os.listdir(data(dict(os.environ), "full"))) == ["mine"]
    assert pyc("volume", "import", "--force", "full", str(tar)).returncode == 0
    assert sorted(os.listdir(data(dict(os.environ), "full"))) == ["mine", "theirs"]
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00\xffnot a tar" * 100)
    before = walk(data(dict(os.environ), "full"))
    r = pyc("volume", "import", "--force", "full", str(garbage))
    assert r.returncode == 1 and r.stderr == "pyc: not a tar archive\n", r.stderr
    assert walk(data(dict(os.environ), "full")) == before
    # A truncated tar: refused whole, nothing of it left.
    (tmp_path / "big").write_bytes(os.urandom(50_000))
    subprocess.run(["tar", "-C", str(tmp_path), "-cf", str(tar), "big"], check=True)
    (tmp_path / "cut.tar").write_bytes(tar.read_bytes()[:30_000])
    r = pyc("volume", "import", "--force", "full", str(tmp_path / "cut.tar"))
    assert r.returncode == 1 and "truncated" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert walk(data(dict(os.environ), "full")) == before
    r = pyc("volume", "export", "nope")
    assert (r.returncode, r.stderr) == (1, "pyc: no such volume: nope\n")
