"""Bad input: one clear line, docker's exit code (125 for run, 1 for import, see
pyc.errors.exit_code), and nothing in the store changes."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from tests.conftest import pyc, store_snapshot, tar_bytes

pytestmark = [pytest.mark.usefixtures("busybox")]


def assert_refused(root: Path, *args: str, says: str, input: bytes | None = None, code: int = 125) -> None:
    before = store_snapshot(root)
    r = pyc(*args, input=input)
    assert r.returncode == (1 if args[0] == "import" else code), (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyc: "), r.stderr
    assert says in lines[0], lines[0]
    assert "Traceback" not in r.stderr
    assert store_snapshot(root) == before


def test_unknown_image(store_root: Path) -> None:
    assert_refused(store_root, "run", "--rm", "no-such-image", "true", says="no such image: no-such-image")


def test_malformed_image_name(store_root: Path) -> None:
    assert_refused(store_root, "run", "--rm", "UPPER:tag", "true", says="invalid reference format")
    assert_refused(store_root, "tag", "busybox", "x:" + "a" * 129, says="a tag is at most 128", code=1)
    assert_refused(store_root, "tag", "busybox", "a" * 256 + ":1", says="longer than 255", code=1)
    assert_refused(store_root, "tag", "busybox", "x:tag\n", says="invalid reference format", code=1)


def test_bad_tmpfs_or_hostname_leaves_no_container(store_root: Path) -> None:
    assert_refused(store_root, "run", "--tmpfs", "/x:size=abc", "busybox", "true", says="bad option 'size=abc'")
    assert_refused(store_root, "create", "--tmpfs", "/x:bogus", "busybox", "true", says="bad option 'bogus'")
    assert_refused(store_root, "run", "-d", "-h", "h" * 100, "busybox", "true", says="longer than 64 characters")
    assert_refused(store_root, "run", "-h", "a b", "busybox", "true", says="invalid hostname")


def test_unknown_flag(store_root: Path) -> None:
    assert_refused(store_root, "run", "--bogus", "busybox", "true", says="--bogus")
    assert_refused(store_root, "--bogus", says="--bogus")
    assert_refused(store_root, "frobnicate", says="frobnicate", code=1)  # docker: not a command, 1


def test_missing_image_argument(store_root: Path) -> None:
    assert_refused(store_root, "run", says="IMAGE", code=1)  # docker: too few arguments, 1


def test_volume_source_missing(store_root: Path) -> None:
    assert_refused(store_root, "run", "--rm", "-v", "/no/such/dir:/mnt", "busybox", "true", says="bind source path does not exist: /no/such/dir")
    assert_refused(store_root, "run", "-v", "relative:/mnt", "busybox", "true", says="absolute")


@pytest.mark.parametrize("user", ["nosuchuser", "1000:nosuchgroup", "abc:", "99999999999"])
def test_invalid_user(store_root: Path, user: str) -> None:
    assert_refused(store_root, "run", "--rm", "-u", user, "busybox", "true", says="invalid user")


def test_relative_workdir(store_root: Path) -> None:
    assert_refused(store_root, "run", "-w", "relative/dir", "busybox", "true", says="not an absolute path")


@pytest.mark.root
def test_name_in_use(store_root: Path) -> None:
    assert pyc("run", "--name", "taken", "busybox", "true").returncode == 0
    try:
        assert_refused(store_root, "run", "--name", "taken", "busybox", "true", says='"taken" is already in use')
    finally:
        assert pyc("rm", "taken").returncode == 0


def test_import_garbage(store_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not a tar archive, not even close" * 20)
    assert_refused(store_root, "import", str(bad), "bad:1", says="cannot import")


def test_import_truncated(store_root: Path, tmp_path: Path) -> None:
    data = tar_bytes({"bin/big": b"x" * 100_000, "etc/other": b"y"})
    (tmp_path / "cut.tar").write_bytes(data[: len(data) // 2])
    assert_refused(store_root, "import", str(tmp_path / "cut.tar"), "cut:1", says="truncated")
    gz = gzip.compress(data)
    (tmp_path / "cut.tar.gz").write_bytes(gz[: len(gz) // 2])
    assert_refused(store_root, "import", str(tmp_path / "cut.tar.gz"), "cut:2", says="cannot import")
    assert_refused(store_root, "import", "-", "cut:3", input=data[:700], says="cannot import")


def _links(entries: list[tuple[str, str, str]]) -> bytes:
    """A tar of (kind, name, target) entries: sym, hard, or file (target = content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for kind, name, target in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(target)
                t.addfile(info, io.BytesIO(target.encode()))
                continue
            info.type, info.linkname = (tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE), target
            t.addfile(info)
    return buf.getvalue()


def test_import_escaping_tar(store_root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    up = "../" * 12
    archives = {
        "dotdot": tar_bytes({"../../escaped": b"boom"}),
        "symlink-then-file": _links([("sym", "link", str(outside)), ("file", "link/pwned", "x")]),
        "relative-symlink-then-file": _links([("sym", "link", up + str(outside)), ("file", "link/pwned", "x")]),
        "symlink-chain": _links([("sym", "a", "."), ("sym", "a/b", str(outside)), ("file", "a/b/pwned", "x")]),
        "hardlink-absolute": _links([("hard", "h", "/etc/passwd")]),
        "hardlink-dotdot": _links([("hard", "h", up + "etc/passwd")]),
    }
    for name, data in archives.items():
        (tmp_path / f"{name}.tar").write_bytes(data)
        assert_refused(store_root, "import", str(tmp_path / f"{name}.tar"), f"evil:{name}", says="unsafe path")
    assert list(outside.iterdir()) == []
    assert not Path("/var/escaped").exists() and not (store_root.parent / "escaped").exists()


def test_import_more_escaping_tars(store_root: Path, tmp_path: Path) -> None:
    """The escapes of issue #3 not covered above; /etc/passwd and /tmp stay as they were."""
    outside = tmp_path / "outside"
    outside.mkdir()
    missing_in_tmp = f"/tmp/pyc-escape-{tmp_path.name}"
    passwd_links = Path("/etc/passwd").stat().st_nlink
    archives = {
        "absolute": tar_bytes({str(outside / "abs"): b"boom"}),
        "dotdot-after-a-dir": tar_bytes({"a/../../x": b"boom"}),
        "symlink-to-tmp-then-file": _links([("sym", "link", missing_in_tmp), ("file", "link/evil", "x")]),
        "hardlink-to-etc-passwd": _links([("file", "ok", "x"), ("hard", "h", "../../etc/passwd")]),
    }
    for name, data in archives.items():
        (tmp_path / f"{name}.tar").write_bytes(data)
        assert_refused(store_root, "import", str(tmp_path / f"{name}.tar"), f"evil:{name}", says="unsafe path")
    assert list(outside.iterdir()) == []
    assert not os.path.lexists(missing_in_tmp)
    assert Path("/etc/passwd").stat().st_nlink == passwd_links


def test_import_hardlink_to_nothing(store_root: Path, tmp_path: Path) -> None:
    (tmp_path / "h.tar").write_bytes(_links([("file", "a", "x"), ("hard", "h", "not/there")]))
    assert_refused(store_root, "import", str(tmp_path / "h.tar"), "evil:h", says="hardlink h: target not/there is in no earlier layer")


def test_import_missing_file(store_root: Path) -> None:
    assert_refused(store_root, "import", "/no/such.tar", "x:1", says="no such file")


def test_bad_image_name(store_root: Path, tmp_path: Path) -> None:
    (tmp_path / "ok.tar").write_bytes(tar_bytes({"f": b"1"}))
    assert_refused(store_root, "import", str(tmp_path / "ok.tar"), "Bad_Name", says="invalid reference format")


def test_rm_of_unknown_container(store_root: Path) -> None:
    r = pyc("rm", "no-such-container")
    assert r.returncode == 1 and r.stderr.strip() == "pyc: no such container: no-such-container"
