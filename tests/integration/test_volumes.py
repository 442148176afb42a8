"""Volumes and mounts on real containers: named volumes outlive their containers and are shared,
anonymous ones come from -v /path and an image's VOLUME (filled from the image), --read-only
with --tmpfs, --volumes-from, tmpfs and bind volumes, nodev and nosuid, and bad input."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc, store_snapshot

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_volumes")]


def ok(*args: str, input: str | None = None) -> str:
    r = pyc(*args, input=input)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def data_dir(name: str) -> Path:
    return Path(os.environ["PYC_ROOT"], "volumes", name, "_data")


def inspect(ref: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(ok("inspect", ref))[0]
    return doc


@pytest.fixture(scope="module")
def busybox_rootfs(busybox: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("volimg") / "rootfs.tar"
    name = f"volbase-{os.getpid()}"
    ok("run", "--name", name, "busybox", "true")
    ok("export", name, "-o", str(base))
    ok("rm", name)
    return base


def image_with(rootfs: Path, ref: str, add: list[tuple[tarfile.TarInfo, bytes]]) -> str:
    """busybox's files plus `add`, as a one-layer image with VOLUME /data."""
    tar = rootfs.with_name(f"{ref.replace(':', '-')}.tar")
    tar.write_bytes(rootfs.read_bytes())
    with tarfile.open(tar, "a", format=tarfile.PAX_FORMAT) as t:
        for info, body in add:
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    ok("import", "-c", 'VOLUME ["/data"]', "-c", 'CMD ["sh"]', str(tar), ref)
    tar.unlink()
    return ref


def entry(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: int = 1_000_000, link: str = "", xattrs: dict[str, str] | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime, info.linkname = kind, mode, uid, gid, mtime, link
    info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in (xattrs or {}).items()}
    return info


@pytest.fixture(scope="module")
def volume_image(busybox_rootfs: Path) -> Iterator[str]:
    """busybox plus /data (owners, modes, an xattr, a hardlink, a symlink) and VOLUME /data."""
    add = [
        (entry("data", tarfile.DIRTYPE, 0o750, 1234, 5678), b""),
        (entry("data/file", mode=0o640, uid=1234, gid=5678, mtime=1_000_001, xattrs={"user.pyc": "kept"}), b"from the image\n"),
        (entry("data/hard", tarfile.LNKTYPE, link="data/file"), b""),
        (entry("data/sub/link", tarfile.SYMTYPE, link="../file"), b""),
    ]
    ref = image_with(busybox_rootfs, f"volimg:{os.getpid()}", add)
    yield ref
    pyc("rmi", "-f", ref)


def test_a_named_volume_outlives_its_container_and_is_seen_by_the_next() -> None:
    ok("run", "--name", "writer", "-v", "keep:/data", "busybox", "sh", "-c", "echo kept > /data/f")
    mounts = inspect("writer")["Mounts"]
    assert mounts == [{"Type": "volume", "Name": "keep", "Source": str(data_dir("keep")), "Destination": "/data", "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}]
    ok("rm", "-v", "writer")  # -v: anonymous volumes only; a named one stays
    assert "keep" in ok("volume", "ls", "-q").split()
    assert ok("run", "--rm", "-v", "keep:/data:ro", "busybox", "cat", "/data/f") == "kept\n"
    r = pyc("run", "--rm", "-v", "keep:/data:ro", "busybox", "sh", "-c", "echo x > /data/g")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert json.loads(ok("volume", "inspect", "keep"))[0]["Mountpoint"] == str(data_dir("keep"))


def test_two_containers_share_a_volume_at_once() -> None:
    ok("volume", "create", "shared")
    a = ok("run", "-d", "-v", "shared:/v", "busybox", "sh", "-c", "until [ -f /v/from-b ]; do sleep 0.02; done; echo a > /v/from-a; sleep 600").strip()
    r = pyc("run", "--rm", "-v", "shared:/v", "busybox", "sh", "-c", "echo b > /v/from-b; until [ -f /v/from-a ]; do sleep 0.02; done; cat /v/from-a", timeout=60)
    assert (r.returncode, r.stdout) == (0, "a\n"), r.stderr
    # In use: not removed, one line, exit 1, its user named.
    r = pyc("volume", "rm", "shared")
    assert r.returncode == 1 and r.stderr == f"pyc: remove shared: volume is in use - [{a}]\n"
    assert ok("volume", "ls", "-q", "--filter", "dangling=false").split() == ["shared"]
    ok("rm", "-f", a)
    assert ok("volume", "ls", "-q", "--filter", "dangling=true").split() == ["shared"]
    assert ok("volume", "rm", "shared") == "shared\n"
    assert not data_dir("shared").parent.exists()


def test_rm_v_and_run_rm_take_anonymous_volumes_only() -> None:
    ok("run", "--name", "anon", "-v", "/scratch", "-v", "named1:/named", "busybox", "sh", "-c", "echo x > /scratch/f")
    (anon,) = [m["Name"] for m in inspect("anon")["Mounts"] if m["Destination"] == "/scratch"]  # type: ignore[index,union-attr]
    assert len(anon) == 64 and (data_dir(anon) / "f").read_text() == "x\n"
    ok("rm", "-v", "anon")
    assert ok("volume", "ls", "-q").split() == ["named1"]
    ok("run", "--rm", "-v", "/scratch2", "busybox", "true")
    assert ok("volume", "ls", "-q").split() == ["named1"]
    # Without -v the anonymous volume stays, dangling: prune takes it, prune -a the named one too.
    ok("run", "--name", "anon2", "-v", "/scratch3", "busybox", "sh", "-c", "echo data > /scratch3/f")
    ok("rm", "anon2")
    assert len(ok("volume", "ls", "-q").split()) == 2
    # system df counts them: two, none in use, the file anon2 left is reclaimable.
    (row,) = [line.split() for line in ok("system", "df").splitlines() if line.startswith("Local Volumes")]
    assert row[2:4] == ["2", "0"] and row[4] == row[5] and row[4] != "0B", row
    out = ok("volume", "prune", "-f")
    assert out.startswith("Deleted Volumes:\n") and "named1" not in out
    assert ok("volume", "ls", "-q").split() == ["named1"]
    assert "named1" in ok("volume", "prune", "-a", "-f")
    assert ok("volume", "ls", "-q") == ""


def test_system_prune_takes_anonymous_volumes_with_volumes_only() -> None:
    ok("run", "--name", "sp", "-v", "/anon", "-v", "spnamed:/named", "busybox", "true")
    (anon,) = [m["Name"] for m in inspect("sp")["Mounts"] if m["Destination"] == "/anon"]  # type: ignore[index,union-attr]
    out = ok("system", "prune", "-f")  # the container goes; its volumes stay
    assert "Deleted Volumes" not in out and sorted(ok("volume", "ls", "-q").split()) == sorted([anon, "spnamed"])
    out = ok("system", "prune", "-f", "--volumes")  # anonymous ones go; named ones stay
    assert f"Deleted Volumes:\n{anon}\n" in out, out
    assert ok("volume", "ls", "-q").split() == ["spnamed"]


def test_read_only_root_with_a_tmpfs_writes_only_there() -> None:
    script = "for p in /f /etc/f /root/f /var/f /etc/hosts /tmp/f /dev/shm/f; do if echo x >> $p 2>/dev/null; then echo ok $p; else echo no $p; fi; done"
    out = ok("run", "--rm", "--read-only", "--tmpfs", "/tmp", "busybox", "sh", "-c", script)
    assert out.split("\n")[:-1] == ["no /f", "no /etc/f", "no /root/f", "no /var/f", "no /etc/hosts", "ok /tmp/f", "ok /dev/shm/f"]
    # And a volume or bind makes a place writable, as docker has it.
    out = ok("run", "--rm", "--read-only", "-v", "rw1:/var/lib/app", "busybox", "sh", "-c", "echo x > /var/lib/app/f && echo wrote")
    assert out == "wrote\n"


def test_image_volume_is_an_anonymous_volume_filled_from_the_image(volume_image: str) -> None:
    ok("run", "--name", "filled", volume_image, "sh", "-c", "ls -ln /data; cat /data/file")
    (m,) = inspect("filled")["Mounts"]  # type: ignore[misc]
    assert m["Type"] == "volume" and m["Destination"] == "/data" and len(m["Name"]) == 64  # type: ignore[index]
    d = data_dir(str(m["Name"]))  # type: ignore[index]
    st = os.stat(d)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 1234, 5678)
    f = os.stat(d / "file")
    assert (stat.S_IMODE(f.st_mode), f.st_uid, f.st_gid, f.st_mtime, f.st_nlink) == (0o640, 1234, 5678, 1_000_001, 2)
    assert os.stat(d / "hard").st_ino == f.st_ino
    assert os.getxattr(d / "file", "user.pyc") == b"kept"
    assert os.readlink(d / "sub" / "link") == "../file"
    assert not any(p.name.startswith(("copyup", ".pyc-cp")) for p in d.parent.iterdir() if p.name != "_data" and p.name != "lock")
    # A named volume is filled once, when empty; what it holds after is the user's.
    ok("run", "--rm", "-v", "mine:/data", volume_image, "sh", "-c", "echo changed > /data/file; rm /data/hard")
    assert ok("run", "--rm", "-v", "mine:/data", volume_image, "sh", "-c", "cat /data/file; ls /data") == "changed\nfile\nsub\n"
    # nocopy: empty.
    assert ok("run", "--rm", "-v", "empty1:/data:nocopy", volume_image, "ls", "-A", "/data") == ""
    assert ok("run", "--rm", "--mount", "type=volume,source=empty2,target=/data,volume-nocopy", volume_image, "ls", "-A", "/data") == ""
    ok("rm", "-v", "filled")
    assert not d.parent.exists()


def test_a_copy_up_killed_midway_never_looks_complete(busybox_rootfs: Path) -> None:
    """kill -9 of a `pyc create` while it fills a volume: the volume stays empty (no half of
    the image's files), the next use fills it whole."""
    many = [(entry("data/file"), b"from the image\n")] + [(entry(f"data/many/{i}"), f"{i}\n".encode()) for i in range(1, 3001)]
    image = image_with(busybox_rootfs, f"bigvol:{os.getpid()}", many)
    try:
        volumes = Path(os.environ["PYC_ROOT"], "volumes")
        killed = False
        for _ in range(20):  # the copy must be caught in the middle: try again if it was too quick
            p = subprocess.Popen([PYC, "create", "-v", "victim:/data", image], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            stage = volumes / "victim" / "copyup"
            deadline = time.monotonic() + 30
            while p.poll() is None and time.monotonic() < deadline:
                if stage.is_dir() and (stage / "many").is_dir() and len(os.listdir(stage / "many")) > 10:
                    p.kill()
                    killed = True
                    break
                time.sleep(0.001)
            p.wait()
            if killed:
                break
            pyc("rm", "-f", *ok("ps", "-a", "-q").split())
            pyc("volume", "rm", "-f", "victim")
        assert killed, "the copy-up was never caught in the middle"
        assert not any((volumes / "victim" / "_data").iterdir()), "a half copy-up shows in the volume"
        # No container was made, no volume recorded: the copy-up comes before both.
        assert ok("ps", "-a", "-q") == "" and "victim" not in ok("volume", "ls", "-q").split()
        out = ok("run", "--rm", "-v", "victim:/data", image, "sh", "-c", "ls /data/many | wc -l; cat /data/file")
        assert out.split() == ["3000", "from", "the", "image"]
        assert not (volumes / "victim" / "copyup").exists() and not (volumes / "victim" / "copyup.ready").exists()
    finally:
        pyc("rmi", "-f", image)


def test_volumes_from_with_its_modes(volume_image: str, tmp_path: Path) -> None:
    (tmp_path / "hostfile").write_text("bound\n")
    src = ok("create", "--name", "donor", "-v", "don1:/named", "-v", f"{tmp_path}:/bound", "--tmpfs", "/t", volume_image).strip()
    script = "cat /bound/hostfile; cat /data/file; echo x > /named/y && echo wrote; grep -c ' /t ' /proc/self/mountinfo"
    out = pyc("run", "--rm", "--volumes-from", "donor:ro", volume_image, "sh", "-c", script)
    assert out.stdout.split("\n")[:2] == ["bound", "from the image"] and "wrote" not in out.stdout and "Read-only" in out.stderr
    assert out.stdout.split("\n")[2] == "0"  # tmpfs mounts are not shared
    assert "wrote" in ok("run", "--rm", "--volumes-from", src, "busybox", "sh", "-c", "echo x > /named/y && echo wrote")
    # The donor's volumes are in use by it: not removed.
    assert pyc("volume", "rm", "don1").returncode == 1
    r = pyc("run", "--rm", "--volumes-from", "nobody-here", "busybox", "true")
    assert r.returncode == 125 and r.stderr == "pyc: no such container: nobody-here\n"


def test_tmpfs_and_bind_volumes(tmp_path: Path) -> None:
    ok("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=1m,mode=0700", "mem")
    out = ok("run", "--rm", "-v", "mem:/m", "busybox", "sh", "-c", "grep ' /m ' /proc/self/mountinfo; stat -c %a /m")
    assert " - tmpfs " in out and "size=1024k" in out and "nosuid" in out and "nodev" in out and out.endswith("700\n")
    ok("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={tmp_path}", "--label", "team=a", "hostdir")
    ok("run", "--rm", "-v", "hostdir:/h", "busybox", "sh", "-c", "echo through > /h/f")
    assert (tmp_path / "f").read_text() == "through\n"
    doc = json.loads(ok("volume", "inspect", "hostdir"))[0]
    assert doc["Options"] == {"type": "none", "o": "bind", "device": str(tmp_path)} and doc["Labels"] == {"team": "a"}
    assert ok("volume", "ls", "-q", "--filter", "label=team=a") == "hostdir\n"
    assert ok("volume", "ls", "-q", "--filter", "label=team=b") == ""
    r = pyc("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/does/not/exist")
    assert r.returncode == 1 and "is not a directory" in r.stderr


def test_binds_and_volumes_are_nodev_and_nosuid(tmp_path: Path) -> None:
    ok("volume", "create", "dev1")
    os.mknod(data_dir("dev1") / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    script = "for d in /v /b; do grep \" $d \" /proc/self/mountinfo | cut -d' ' -f6; (echo x > $d/null) 2>/dev/null && echo opened || echo denied; done"
    out = ok("run", "--rm", "-v", "dev1:/v", "-v", f"{tmp_path}:/b", "busybox", "sh", "-c", script)
    v_opts, v_open, b_opts, b_open = out.split()
    assert {"nosuid", "nodev"} <= set(v_opts.split(",")) and {"nosuid", "nodev"} <= set(b_opts.split(",")), out
    # The host's /dev/null, as a node in a volume or a bind, opens nothing in there.
    assert (v_open, b_open) == ("denied", "denied")


def test_bind_sources_as_docker_has_them(tmp_path: Path) -> None:
    made = tmp_path / "made" / "by" / "v"
    assert ok("run", "--rm", "-v", f"{made}:/m", "busybox", "sh", "-c", "echo x > /m/f && echo ok") == "ok\n"
    assert (made / "f").is_file()
    before = store_snapshot(Path(os.environ["PYC_ROOT"]))
    missing = tmp_path / "missing"
    r = pyc("run", "--rm", "--mount", f"type=bind,source={missing},target=/m", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, f'pyc: invalid mount config for type "bind": bind source path does not exist: {missing}\n')
    r = pyc("create", "--mount", "type=volume,target=/x,bind-propagation=shared", "busybox")
    assert (r.returncode, r.stderr) == (125, 'pyc: invalid mount config for type "volume": field BindOptions must not be specified\n')
    r = pyc("run", "--rm", "-v", "v1:/x", "--tmpfs", "/x", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "pyc: Duplicate mount point: /x\n")
    assert not missing.exists()
    assert store_snapshot(Path(os.environ["PYC_ROOT"])) == before  # nothing made: no container, no volume


def test_a_symlink_in_the_image_never_leads_a_mount_or_a_copy_up_to_the_host(busybox_rootfs: Path, tmp_path: Path) -> None:
    """A hostile image: symlinks where its mounts go, pointing at host paths (absolute, and
    relative with more `..` than there are levels), which the image holds too, empty. Every
    mount target and the copy-up are resolved beneath the container's root: the links mean the
    container's own paths there, never the host's."""
    victim, secret, src = tmp_path / "victim", tmp_path / "secret", tmp_path / "src"
    for d in (victim, secret, src):
        d.mkdir()
    (secret / "key").write_text("the host's\n")
    up = "../" * 12
    parts = Path(str(tmp_path).lstrip("/")).parts
    dirs = [(entry("/".join(parts[: i + 1]), tarfile.DIRTYPE, 0o755), b"") for i in range(len(parts))]
    inside = str(tmp_path).lstrip("/")
    add = [
        *dirs,
        (entry(f"{inside}/victim", tarfile.DIRTYPE, 0o755), b""),
        (entry(f"{inside}/secret", tarfile.DIRTYPE, 0o755), b""),
        (entry("abs", tarfile.SYMTYPE, link=str(victim)), b""),
        (entry("rel", tarfile.SYMTYPE, link=f"{up}{inside}/victim"), b""),
        (entry("data", tarfile.SYMTYPE, link=str(secret)), b""),  # VOLUME /data: the copy-up's path
        (entry("dangling", tarfile.SYMTYPE, link=str(tmp_path / "nowhere-inside")), b""),
    ]
    (tmp_path / "nowhere-inside").mkdir()
    image = image_with(busybox_rootfs, f"linkvol:{os.getpid()}", add)
    try:
        script = f"echo b > /abs/bind/f; echo v > /rel/vol/f; echo t > /abs/t/f; ls -A /data; ls {victim}"
        out = ok("run", "--name", "links", "-v", f"{src}:/abs/bind", "-v", "linkvol1:/rel/vol", "--tmpfs", "/abs/t", image, "sh", "-c", script)
        # The writes went to the bind and the volume, mounted where the container's links lead.
        assert (src / "f").read_text() == "b\n" and (data_dir("linkvol1") / "f").read_text() == "v\n"
        assert out.split() == ["bind", "t", "vol"], out  # /data empty: nothing of the host's copied up
        (m,) = [m for m in inspect("links")["Mounts"] if m["Destination"] == "/data"]  # type: ignore[index,union-attr]
        assert not any(data_dir(str(m["Name"])).iterdir())  # type: ignore[index]
        # A link to what the container lacks (but the host has): made in the container, as
        # docker does (test_a_dangling_symlink_target_is_made_beneath_the_root), never the host's.
        r = pyc("run", "--rm", "-v", f"{src}:/dangling/bind", image, "sh", "-c", "echo d > /dangling/bind/f")
        assert r.returncode == 0 and (src / "f").read_text() == "d\n", r.stderr
        # The host's directories the links name: untouched, nothing mounted on them.
        assert list(victim.iterdir()) == [] and [p.name for p in secret.iterdir()] == ["key"]
        assert list((tmp_path / "nowhere-inside").iterdir()) == []
        with open("/proc/self/mountinfo") as f:
            assert not [line for line in f if str(tmp_path) in line], "a mount on the host"
        ok("rm", "-v", "links")
    finally:
        pyc("rmi", "-f", image)


def test_a_dangling_symlink_target_is_made_beneath_the_root(busybox_rootfs: Path, tmp_path: Path) -> None:
    """docker makes a mount target that is a symlink to nothing: what the link names, resolved
    beneath the container's root (CVE-2025-31133's class: never through the host's view). Links
    to a host path that does not exist, absolute and climbing out with `/../..`, for a bind of a
    directory, a volume and a bind of a file: each made inside the container, nothing on the host."""
    host = tmp_path / "host-path"  # what the links name; it must never appear on the host
    inside = str(host).lstrip("/")
    add = [
        (entry("up", tarfile.SYMTYPE, link=f"/../../../{inside}/up"), b""),
        (entry("rel", tarfile.SYMTYPE, link=f"{'../' * 12}{inside}/rel"), b""),
        (entry("abs", tarfile.SYMTYPE, link=f"{host}/abs"), b""),
        (entry("file", tarfile.SYMTYPE, link=f"{host}/file"), b""),
        (entry("twice", tarfile.SYMTYPE, link="/up/../abs2"), b""),  # a link through a link
    ]
    image = image_with(busybox_rootfs, f"dangling:{os.getpid()}", add)
    src, hostfile = tmp_path / "src", tmp_path / "hostfile"
    src.mkdir()
    hostfile.write_text("bound\n")
    try:
        mounts = ["-v", f"{src}:/up", "-v", "danglevol:/abs", "-v", f"{hostfile}:/file:ro", "--tmpfs", "/rel", "--tmpfs", "/twice"]
        script = "echo u > /up/f && echo a > /abs/f && cat /file && echo r > /rel/f && echo t > /twice/f && readlink /up && readlink /twice"
        out = ok("run", "--name", "dangle", *mounts, image, "sh", "-c", script)
        assert out == f"bound\n/../../../{inside}/up\n/up/../abs2\n", out
        assert (src / "f").read_text() == "u\n" and (data_dir("danglevol") / "f").read_text() == "a\n"
        assert not host.exists() and not (tmp_path / "abs2").exists(), "made on the host"
        with open("/proc/self/mountinfo") as f:
            assert not [line for line in f if str(tmp_path) in line], "a mount on the host"
        # Made in the container's own files: its upper dir.
        added = {line.split()[1] for line in ok("diff", "dangle").splitlines() if line.startswith("A ")}
        assert {f"/{inside}/up", f"/{inside}/rel", f"/{inside}/abs", f"/{inside}/file", f"/{inside}/abs2"} <= added, added
        ok("rm", "dangle")
    finally:
        pyc("rm", "-f", "dangle")
        pyc("rmi", "-f", image)


def test_read_only_means_read_only() -> None:
    """:ro, readonly on --mount and --volumes-from :ro: no write, and no remount makes one (the
    container has no CAP_SYS_ADMIN, and the mount is locked read-only in its namespace)."""
    ok("volume", "create", "rovol")
    (data_dir("rovol") / "f").write_text("kept\n")
    script = "echo x > /v/f; echo x > /v/new; mount -o remount,rw /v && echo remounted; mount -o remount,rw,bind /v /v && echo rebound; cat /v/f"
    for flags in (["-v", "rovol:/v:ro"], ["--mount", "type=volume,source=rovol,target=/v,readonly"], ["--mount", "type=volume,src=rovol,dst=/v,ro=true"]):
        r = pyc("run", "--rm", *flags, "busybox", "sh", "-c", script)
        assert r.stdout == "kept\n" and "Read-only file system" in r.stderr, (flags, r.stdout, r.stderr)
    assert [p.name for p in data_dir("rovol").iterdir()] == ["f"] and (data_dir("rovol") / "f").read_text() == "kept\n"


@pytest.mark.parametrize("name", ["..", "../x", "../../etc", "a/../../b", ".", "./x", "x/..", "/.."])
def test_a_volume_name_that_is_a_path_is_refused_and_changes_nothing(name: str) -> None:
    root = Path(os.environ["PYC_ROOT"])
    before = store_snapshot(root)
    for args in (
        ["volume", "create", name],
        ["run", "--rm", "--mount", f"type=volume,source={name},target=/x", "busybox", "true"],
    ):
        r = pyc(*args)
        assert r.returncode in (1, 125) and r.stderr.startswith("pyc: ") and r.stderr.count("\n") == 1, (args, r.stderr)
        assert "invalid" in r.stderr, (args, r.stderr)
    if not name.startswith("/"):  # -v /..:/x is a bind of the host's /, not a volume name
        r = pyc("run", "--rm", "-v", f"{name}:/x", "busybox", "true")
        assert r.returncode == 125 and "invalid characters for a local volume name" in r.stderr, r.stderr
    r = pyc("volume", "import", name, "/dev/null")
    assert r.returncode != 0 and r.stderr.count("\n") == 1, r.stderr
    assert store_snapshot(root) == before
