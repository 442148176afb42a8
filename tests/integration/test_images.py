"""Images: built-in bootstrap, import from tar / gzip / zstd / directory / stdin, export,
names, removal that frees what nothing else uses."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc

pytestmark = [pytest.mark.usefixtures("busybox", "clean_containers")]


def image_id(ref: str) -> str:
    r = pyc("image", "inspect", ref)
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)[0]["Id"])


def busybox_tar(store_root: Path) -> bytes:
    """busybox's layer blob: the uncompressed tar its diff id names."""
    return (store_root / "oci" / "blobs" / "sha256" / image_layer(store_root, "busybox")).read_bytes()


def image_layer(store_root: Path, ref: str) -> str:
    diff_ids = json.loads(pyc("image", "inspect", ref).stdout)[0]["RootFS"]["Layers"]
    return str(diff_ids[0]).removeprefix("sha256:")


@pytest.mark.root
def test_busybox_image_is_a_proper_oci_image(store_root: Path) -> None:
    info = json.loads(pyc("image", "inspect", "busybox").stdout)[0]
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["Config"]["Cmd"] == ["sh"]
    assert any(e.startswith("PATH=") for e in info["Config"]["Env"])
    index = json.loads((store_root / "oci" / "index.json").read_text())
    entry = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "busybox:latest")
    manifest = json.loads((store_root / "oci" / "blobs" / "sha256" / entry["digest"][7:]).read_text())
    layer_blob = store_root / "oci" / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    assert layer_blob.stat().st_size == manifest["layers"][0]["size"]
    with tarfile.open(layer_blob) as t:
        names = t.getnames()
    assert "bin/busybox" in names and "bin/sh" in names and "usr/bin/awk" in names
    # Every applet is linked: the default command runs, and so do the applets.
    r = pyc("run", "--rm", "-i", "busybox", input="echo $((6*7)) | awk '{print $1}'\n")
    assert r.stdout == "42\n"


def test_bootstrap_is_deterministic() -> None:
    before = image_id("busybox")
    r = pyc("image", "bootstrap", "busybox")
    assert r.returncode == 0 and image_id("busybox") == before


@pytest.mark.root
@pytest.mark.parametrize("compression", ["plain", "gzip", "zstd"])
def test_import_tarball(store_root: Path, tmp_path: Path, compression: str) -> None:
    data = busybox_tar(store_root)
    path = tmp_path / "rootfs.tar"
    if compression == "gzip":
        data = gzip.compress(data, compresslevel=1)
    elif compression == "zstd":
        data = subprocess.run(["zstd", "-q", "-c"], input=data, check=True, capture_output=True).stdout
    path.write_bytes(data)
    r = pyc("import", str(path), f"imported:{compression}")
    assert r.returncode == 0, r.stderr
    # Same content as busybox: the unpacked layer is shared, not stored twice.
    assert image_layer(store_root, f"imported:{compression}") == image_layer(store_root, "busybox")
    r = pyc("run", "--rm", f"imported:{compression}", "sh", "-c", "echo ok")
    assert r.stdout == "ok\n"
    assert pyc("rmi", f"imported:{compression}").returncode == 0


@pytest.mark.root
def test_import_from_stdin_with_changes(store_root: Path) -> None:
    r = pyc("import", "-c", 'CMD ["echo", "from cmd"]', "-c", "ENV GREETING=hi", "-", "stdin:1", input=None)
    assert r.returncode == 1  # no input at all is refused
    proc = subprocess.run([PYC, "import", "-c", 'CMD ["sh", "-c", "echo $GREETING from cmd"]', "-c", "ENV GREETING=hi", "-", "stdin:1"], input=busybox_tar(store_root), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert pyc("run", "--rm", "stdin:1").stdout == "hi from cmd\n"
    assert pyc("rmi", "stdin:1").returncode == 0


@pytest.mark.root
def test_import_directory_keeps_owners_and_modes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "data" / "file").write_text("content\n")
    os.chown(root / "data" / "file", 1234, 5678)
    os.chmod(root / "data" / "file", 0o640)
    os.symlink("/bin/busybox", root / "bin" / "sh")
    assert pyc("import", str(root), "dirimage:1").returncode == 0
    # The image has no busybox of its own: run it with busybox's binary bound in.
    r = pyc("run", "--rm", "-v", "/bin/busybox:/bin/busybox:ro", "dirimage:1", "/bin/busybox", "stat", "-c", "%u %g %a %s", "/data/file")
    assert r.stdout == "1234 5678 640 8\n", r.stderr
    assert pyc("rmi", "dirimage:1").returncode == 0


@pytest.mark.root
def test_export_is_the_containers_view(store_root: Path, tmp_path: Path) -> None:
    assert pyc("run", "--name", "exp", "busybox", "sh", "-c", "echo new > /etc/new; rm /bin/vi; mkdir -p /srv/a").returncode == 0
    out = tmp_path / "exp.tar"
    r = pyc("export", "exp", "-o", str(out))
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as t:
        names = set(t.getnames())
        assert "etc/new" in names and "srv/a" in names and "bin/sh" in names
        assert "bin/vi" not in names
        member = t.extractfile("etc/new")
        assert member is not None and member.read() == b"new\n"
    # What export writes, import reads back: the round trip runs.
    assert pyc("import", str(out), "roundtrip:1").returncode == 0
    assert pyc("run", "--rm", "roundtrip:1", "cat", "/etc/new").stdout == "new\n"
    assert pyc("run", "--rm", "roundtrip:1", "ls", "/bin/vi").returncode == 1
    assert pyc("rm", "exp").returncode == 0
    assert pyc("rmi", "roundtrip:1").returncode == 0
    # Exporting leaves no mount behind.
    assert "export" not in Path("/proc/self/mountinfo").read_text()


@pytest.mark.root
def test_tag_images_rmi(store_root: Path) -> None:
    assert pyc("tag", "busybox", "mybox:v1").returncode == 0
    listing = pyc("images").stdout
    bid = image_id("busybox")[7:19]
    assert any(line.split()[:3] == ["mybox", "v1", bid] for line in listing.splitlines())
    assert pyc("run", "--rm", "mybox:v1", "true").returncode == 0
    r = pyc("rmi", "mybox:v1")
    assert r.stdout.strip() == "Untagged: mybox:v1"
    assert "mybox" not in pyc("images").stdout
    assert pyc("run", "--rm", "busybox", "true").returncode == 0


@pytest.mark.root
def test_rmi_refuses_an_image_in_use_and_frees_layers(store_root: Path, tmp_path: Path) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as t:
        info = tarfile.TarInfo("only-here.txt")
        info.size = 4
        t.addfile(info, io.BytesIO(b"uniq"))
    (tmp_path / "u.tar").write_bytes(data.getvalue())
    assert pyc("import", str(tmp_path / "u.tar"), "unique:1").returncode == 0
    layer = store_root / "layers" / image_layer(store_root, "unique:1")
    blob = store_root / "oci" / "blobs" / "sha256" / layer.name
    assert layer.is_dir() and blob.is_file()
    assert pyc("run", "--name", "user", "-v", "/bin/busybox:/bin/true:ro", "unique:1", "/bin/true").returncode == 0
    r = pyc("rmi", "unique:1")
    assert r.returncode == 1 and "in use" in r.stderr
    assert pyc("rm", "user").returncode == 0
    r = pyc("rmi", "unique:1")
    assert r.returncode == 0 and "Deleted: sha256:" in r.stdout
    assert not layer.exists() and not blob.exists()
    assert "unique" not in pyc("images").stdout


def test_images_quiet_and_inspect_fields() -> None:
    ids = pyc("images", "-q").stdout.split()
    assert image_id("busybox")[7:19] in ids
    info = json.loads(pyc("image", "inspect", "busybox").stdout)[0]
    assert set(info) >= {"Id", "RepoTags", "Created", "Config", "RootFS", "Size", "Architecture", "Os"}


@pytest.mark.root
def test_import_directory_keeps_special_files_and_hardlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a").write_text("same\n")
    os.link(root / "a", root / "b")
    os.mkfifo(root / "fifo")
    os.mknod(root / "nul", 0o620 | 0o020000, os.makedev(1, 3))
    os.chmod(root / "nul", 0o620)
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "sock"))  # tar cannot hold a socket: it is left out
    assert pyc("import", str(root), "special:1").returncode == 0
    r = pyc("run", "--rm", "-v", "/bin/busybox:/bin/busybox:ro", "special:1", "/bin/busybox", "sh", "-c", "cd /; /bin/busybox stat -c '%n %F %h %t:%T %a' a b fifo nul; /bin/busybox ls sock 2>&1")
    lines = r.stdout.splitlines()
    assert lines[:4] == ["a regular file 2 0:0 644", "b regular file 2 0:0 644", "fifo fifo 1 0:0 644", "nul character special file 1 1:3 620"], r.stdout + r.stderr
    assert "No such file" in lines[4]
    assert pyc("rmi", "special:1").returncode == 0


def test_many_small_directories_under_a_low_open_file_limit(tmp_path: Path, other_store: dict[str, str]) -> None:
    """The unpack and the tar writer hold a directory fd per entry in flight: whatever the
    tree, they keep within a share of the process's open-file limit. 3,000 directories of
    two files import as a tar and as a directory under RLIMIT_NOFILE 64."""
    root = tmp_path / "root"
    for d in range(3000):
        (root / f"d{d}").mkdir(parents=True)
        for f in "ab":
            (root / f"d{d}" / f).write_bytes(b"x" * d)
    rootfs = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(rootfs), "."], check=True)
    limited = ["prlimit", "--nofile=64:64", PYC]
    for source, ref in ((rootfs, "many:tar"), (root, "many:dir")):
        r = subprocess.run([*limited, "import", str(source), ref], env=other_store, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        layer = json.loads(pyc("image", "inspect", ref, env=other_store).stdout)[0]["RootFS"]["Layers"][0]
        unpacked = Path(other_store["PYC_ROOT"]) / "layers" / layer.removeprefix("sha256:")
        assert sorted(os.listdir(unpacked / "d2999")) == ["a", "b"] and (unpacked / "d2999" / "b").read_bytes() == b"x" * 2999


@pytest.mark.root
@pytest.mark.usefixtures("busybox")
def test_a_commit_of_many_small_directories_under_a_low_open_file_limit() -> None:
    r = pyc("run", "--name", "manydirs", "busybox", "sh", "-c", "for i in $(seq 3000); do mkdir /d$i; echo $i > /d$i/f; done")
    try:
        assert r.returncode == 0, r.stderr
        r = subprocess.run(["prlimit", "--nofile=64:64", PYC, "commit", "manydirs", "manydirs:1"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = pyc("run", "--rm", "manydirs:1", "sh", "-c", "ls -d /d[0-9]* | wc -l; cat /d3000/f")
        assert (r.returncode, r.stdout.split()) == (0, ["3000", "3000"]), r.stderr
    finally:
        pyc("rm", "-f", "manydirs")
        pyc("rmi", "manydirs:1")


def test_an_import_killed_midway_leaves_nothing(store_root: Path, tmp_path: Path) -> None:
    import signal
    import time

    before = {p for p in os.listdir(store_root / "layers")}
    big = tmp_path / "big.tar"
    with tarfile.open(big, "w") as t:
        for i in range(400):
            info = tarfile.TarInfo(f"f{i}")
            info.size = 256 * 1024
            t.addfile(info, io.BytesIO(os.urandom(256 * 1024)))
    p = subprocess.Popen([PYC, "import", "-", "killed:1"], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert p.stdin is not None
    data = big.read_bytes()
    p.stdin.write(data[: len(data) // 2])
    p.stdin.flush()
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stdin.close()
    assert "killed" not in pyc("images").stdout
    # The next import collects the dead one's temp dir; the store is as it was.
    assert pyc("import", str(big), "whole:1").returncode == 0
    assert os.listdir(store_root / "tmp") == []
    assert pyc("rmi", "whole:1").returncode == 0
    assert {p for p in os.listdir(store_root / "layers")} == before


def _flags(path: Path) -> int | None:
    import fcntl
    import struct

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, 0x80086601, b"\0" * 4))[0])  # FS_IOC_GETFLAGS
    except OSError:
        return None
    finally:
        os.close(fd)


@pytest.mark.root
def test_layers_and_containers_are_placed_apart(store_root: Path) -> None:
    # The store asks ext4's allocator to give each unpacked layer and each container its own
    # block group (see store/placement.py): the directories they are made in carry FS_TOPDIR_FL.
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(store_root)], capture_output=True, text=True).stdout.strip()
    if fstype not in ("ext2/ext3",):  # stat's name for ext2, ext3 and ext4
        pytest.skip(f"the store is on {fstype}: the Orlov top-directory flag is an ext4 feature")
    assert pyc("run", "--rm", "busybox", "true").returncode == 0
    for d in ("tmp", "containers"):
        flags = _flags(store_root / d)
        assert flags is not None and flags & 0x00020000, f"{d}/ lacks FS_TOPDIR_FL ({flags})"
