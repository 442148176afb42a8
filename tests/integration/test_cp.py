"""`pyc cp` on running and stopped containers: docker's rules for where things go, tar streams,
metadata, volumes and binds the container sees, paths resolved inside the container, and
failures that leave nothing behind."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_volumes")]


def ok(*args: str, input: str | None = None) -> str:
    r = pyc(*args, input=input)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def sh(ref: str, script: str) -> str:
    return ok("exec", ref, "sh", "-c", script)


@pytest.fixture(params=["running", "stopped"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A container with a named volume at /vol and a bind of a host dir at /bind, running or
    stopped; `look` runs a script in it either way (a stopped one is started for it)."""
    bind = tmp_path / "bind"
    bind.mkdir()
    name = f"cp-{request.param}"
    ok("run", "-d", "--name", name, "-v", "cpvol:/vol", "-v", f"{bind}:/bind", "busybox", "sh", "-c", "ln -s /etc /w-etc; mkdir /gone; rm /etc/group; sleep 600")
    # The container made its changes: for the stopped case, stop it (its files are its upper).
    until_seen(name)
    if request.param == "stopped":
        ok("stop", "-t", "0", name)
    yield name, bind
    pyc("rm", "-f", name)


def until_seen(name: str) -> None:
    import time

    for _ in range(500):
        if pyc("exec", name, "test", "-L", "/w-etc").returncode == 0:
            return
        time.sleep(0.02)
    raise AssertionError("the container never made its link")


def look(name: str, script: str) -> str:
    """The output of `script` in the container, which runs it in a fresh container sharing its
    files when it is stopped (its upper dir seen through `pyc cp` out, its volume as it is)."""
    running = ok("inspect", "--format", "{{.State.Status}}", name).strip() == "running"
    if running:
        return sh(name, script)
    ok("start", name)
    try:
        return sh(name, script)
    finally:
        ok("stop", "-t", "0", name)


def test_docker_rules_for_where_a_copy_goes(box: tuple[str, Path], tmp_path: Path) -> None:
    name, _ = box
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("B")
    # A file into a directory that exists, under its own name; to a new name; over a file.
    ok("cp", str(src / "a.txt"), f"{name}:/tmp")
    ok("cp", str(src / "a.txt"), f"{name}:/tmp/renamed.txt")
    (src / "a.txt").write_text("A2")
    ok("cp", str(src / "a.txt"), f"{name}:/tmp/renamed.txt")
    # A directory: into one that exists (as itself), to a new name (its contents), `/.` (contents).
    ok("cp", str(src), f"{name}:/tmp")
    ok("cp", str(src), f"{name}:/tmp/newdir")
    ok("cp", f"{src}/.", f"{name}:/root")
    out = look(name, "cat /tmp/a.txt /tmp/renamed.txt /tmp/src/a.txt /tmp/newdir/sub/b.txt /root/sub/b.txt; echo; find /tmp/newdir /root/a.txt /root/sub | sort")
    assert out == "AA2A2BB\n/root/a.txt\n/root/sub\n/root/sub/b.txt\n/tmp/newdir\n/tmp/newdir/a.txt\n/tmp/newdir/sub\n/tmp/newdir/sub/b.txt\n", out
    # And out again, by the same rules.
    back = tmp_path / "back"
    ok("cp", f"{name}:/tmp/src", str(back))
    assert sorted(str(p.relative_to(back)) for p in back.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    ok("cp", f"{name}:/tmp/src/.", str(back))
    ok("cp", f"{name}:/tmp/renamed.txt", str(back / "sub"))
    assert (back / "sub" / "renamed.txt").read_text() == "A2"
    # `/.` and `/` to a path that does not exist: that path is made, with the contents in it,
    # and nothing lands beside it.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    ok("cp", f"{name}:/tmp/src/.", str(fresh / "new"))
    ok("cp", f"{name}:/", str(fresh / "root"))
    assert sorted(p.name for p in fresh.iterdir()) == ["new", "root"]
    assert sorted(str(p.relative_to(fresh / "new")) for p in (fresh / "new").rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    assert (fresh / "root" / "tmp" / "src" / "sub" / "b.txt").read_text() == "B" and (fresh / "root" / "bin" / "sh").exists()
    ok("cp", f"{src}/.", f"{name}:/made")
    assert look(name, "find /made | sort") == "/made\n/made/a.txt\n/made/sub\n/made/sub/b.txt\n"
    # docker's refusals, one line each, nothing done.
    for args, says in [
        ((f"{name}:/nonexistent", str(tmp_path)), "could not find /nonexistent in the container"),
        ((str(src), f"{name}:/etc/passwd"), "cannot copy a directory to the file /etc/passwd in the container"),
        ((str(src / "a.txt"), f"{name}:/no/such/dir/"), "the destination directory /no/such/dir/ in the container does not exist"),
        ((str(src / "a.txt"), f"{name}:/no/such/dir/x"), "the parent directory of /no/such/dir/x in the container"),
        ((f"{name}:/etc/passwd/", str(tmp_path)), "/etc/passwd/ in the container is not a directory"),
    ]:
        r = pyc("cp", *args)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and says in r.stderr, (args, r.stderr)


def test_tar_streams_both_ways(box: tuple[str, Path]) -> None:
    name, _ = box
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, body, mode in (("in/x", b"x" * 70000, 0o751), ("in/.wh.kept", b"a file, not a whiteout", 0o600)):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(body), mode, 4321, 8765, 1_234_567
            t.addfile(info, io.BytesIO(body))
    r = pyc_bytes("cp", "-", f"{name}:/tmp", input=buf.getvalue())
    assert r.returncode == 0, r.stderr
    out = pyc_bytes("cp", f"{name}:/tmp/in", "-")
    assert out.returncode == 0
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as t:
        members = {m.name: m for m in t.getmembers()}
        assert sorted(members) == ["in", "in/.wh.kept", "in/x"]
        x = members["in/x"]
        # Without -a what comes in is the container root's.
        assert (x.mode, x.uid, x.gid, x.mtime, x.size) == (0o751, 0, 0, 1_234_567, 70000)
        f = t.extractfile(x)
        assert f is not None and f.read() == b"x" * 70000
    # -a keeps owners.
    assert pyc_bytes("cp", "-a", "-", f"{name}:/tmp", input=buf.getvalue()).returncode == 0
    with tarfile.open(fileobj=io.BytesIO(pyc_bytes("cp", f"{name}:/tmp/in/x", "-").stdout)) as t:
        (m,) = t.getmembers()
        assert (m.name, m.uid, m.gid) == ("x", 4321, 8765)
    r = pyc_bytes("cp", "-", f"{name}:/etc/passwd", input=buf.getvalue())
    assert r.returncode == 1 and b"must be a directory" in r.stderr


def pyc_bytes(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    from tests.conftest import PYC

    return subprocess.run([PYC, *args], input=input, capture_output=True, timeout=60)


def test_metadata_out_to_the_host(box: tuple[str, Path], tmp_path: Path) -> None:
    name, _ = box
    look(name, "mkdir -p /m && echo s > /m/f && chown 123:456 /m/f && chmod 4710 /m/f && ln /m/f /m/h && ln -s f /m/l && touch -d '2001-02-03 04:05:06' /m/f")
    ok("cp", "-a", f"{name}:/m", str(tmp_path / "a"))
    ok("cp", f"{name}:/m", str(tmp_path / "n"))
    a, n = os.lstat(tmp_path / "a" / "f"), os.lstat(tmp_path / "n" / "f")
    assert (stat.S_IMODE(a.st_mode), a.st_uid, a.st_gid) == (0o4710, 123, 456)
    # Without -a: the caller's, and no set-id bit or device node comes to the host.
    assert (n.st_uid, n.st_gid, stat.S_IMODE(n.st_mode)) == (0, 0, 0o710)
    assert int(a.st_mtime) == int(n.st_mtime) and a.st_nlink == 2 and os.lstat(tmp_path / "a" / "h").st_ino == a.st_ino
    assert os.readlink(tmp_path / "a" / "l") == "f"
    # -L: the link's target, under the link's name.
    ok("cp", "-L", f"{name}:/m/l", str(tmp_path / "followed"))
    assert (tmp_path / "followed").read_text() == "s\n" and not (tmp_path / "followed").is_symlink()
    ok("cp", f"{name}:/m/l", str(tmp_path / "kept"))
    assert os.readlink(tmp_path / "kept") == "f"
    if ok("inspect", "--format", "{{.State.Status}}", name).strip() == "running":
        ok("cp", f"{name}:/dev/null", str(tmp_path / "null"))
        assert not (tmp_path / "null").exists()
        ok("cp", "-a", f"{name}:/dev/null", str(tmp_path / "null"))
        assert stat.S_ISCHR(os.lstat(tmp_path / "null").st_mode)


def test_paths_resolve_inside_the_container(box: tuple[str, Path], tmp_path: Path) -> None:
    """/w-etc -> /etc in the container is the container's /etc, both ways; a deleted file
    (a whiteout in its upper dir) is not there to copy."""
    name, _ = box
    host_file = tmp_path / "marker"
    host_file.write_text("m")
    ok("cp", str(host_file), f"{name}:/w-etc/")
    assert not Path("/etc/marker").exists()
    assert look(name, "cat /etc/marker") == "m"
    ok("cp", f"{name}:/w-etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text() == look(name, "cat /etc/passwd") != Path("/etc/passwd").read_text()
    r = pyc("cp", f"{name}:/etc/group", str(tmp_path))
    assert r.returncode == 1 and "could not find /etc/group in the container" in r.stderr
    ok("cp", f"{name}:/etc", str(tmp_path / "etc"))
    assert not (tmp_path / "etc" / "group").exists() and (tmp_path / "etc" / "passwd").exists()


def test_volumes_and_binds_the_container_sees(box: tuple[str, Path], tmp_path: Path) -> None:
    name, bind = box
    (tmp_path / "f").write_text("into the volume")
    ok("cp", str(tmp_path / "f"), f"{name}:/vol/f")
    ok("cp", str(tmp_path / "f"), f"{name}:/bind/g")
    data = Path(os.environ["PYC_ROOT"], "volumes", "cpvol", "_data")
    assert (data / "f").read_text() == "into the volume" and (bind / "g").read_text() == "into the volume"
    ok("cp", f"{name}:/bind/g", str(tmp_path / "out"))
    assert (tmp_path / "out").read_text() == "into the volume"
    # Nothing of the copy is left in the container, the volume or the bind.
    assert [p.name for p in data.iterdir()] == ["f"] and [p.name for p in bind.iterdir()] == ["g"]
    assert ".pyc-cp" not in look(name, "ls -A / /tmp /vol")


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    assert os.system(f"mount -t tmpfs -o size=256k tmpfs {small}") == 0
    try:
        big = tmp_path / "big"
        big.mkdir()
        (big / "fits").write_bytes(b"1" * 1000)
        (big / "too-big").write_bytes(os.urandom(1 << 20))
        ok("run", "-d", "--name", "full", "-v", f"{small}:/small", "busybox", "sleep", "600")
        for state in ("running", "stopped"):
            r = pyc("cp", str(big), "full:/small")
            assert r.returncode == 1 and r.stderr.count("\n") == 1 and "no space left on device" in r.stderr, (state, r.stderr)
            assert list(small.iterdir()) == [], state
            ok("stop", "-t", "0", "full")
    finally:
        pyc("rm", "-f", "full")
        os.system(f"umount {small}")


def test_read_only_containers(tmp_path: Path) -> None:
    ok("create", "--name", "ro-cp", "--read-only", "-v", "rovol:/data", "busybox", "sleep", "600")
    (tmp_path / "f").write_text("x")
    r = pyc("cp", str(tmp_path / "f"), "ro-cp:/f")
    assert r.returncode == 1 and "read-only file system" in r.stderr, r.stderr
    ok("cp", str(tmp_path / "f"), "ro-cp:/data/f")
    ok("start", "ro-cp")
    r = pyc("cp", str(tmp_path / "f"), "ro-cp:/f")
    assert r.returncode == 1 and "read-only file system" in r.stderr, r.stderr
    ok("cp", str(tmp_path / "f"), "ro-cp:/data/g")
    assert sh("ro-cp", "ls /data") == "f\ng\n"
