"""A container really runs, and really is isolated from the host and from other containers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from tests.conftest import cgroup_dirs, leftovers, pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def sh(script: str, *flags: str) -> str:
    r = pyc("run", "--rm", *flags, "busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_command_is_pid_1() -> None:
    assert sh("echo $$") == "1\n"
    # Only the container's own processes are visible: the shell and its pipeline, pids 1-4.
    pids = sorted(int(p) for p in sh("ls /proc | grep -E '^[0-9]+$'").split())
    assert pids[0] == 1 and pids[-1] < 10


def test_hostname_is_its_own() -> None:
    out = sh("hostname; cat /etc/hostname", "--hostname", "box1")
    assert out == "box1\nbox1\n"
    assert socket.gethostname() != "box1"
    default = sh("hostname")
    assert len(default.strip()) == 12 and default.strip() != socket.gethostname()


def test_host_mounts_are_invisible() -> None:
    inside = [line.split()[1] for line in sh("cat /proc/mounts").splitlines()]
    assert inside[0] == "/"
    expected = {"/", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
    # The rest are /proc and its masked or read-only parts, and /sys/firmware masked.
    assert {t for t in inside if not t.startswith("/proc")} - expected == {"/sys/firmware"}
    with open("/proc/self/mountinfo") as f:
        host = {line.split()[4] for line in f}
    assert "/sys/fs/cgroup/memory" in host or "/sys/fs/cgroup" in host
    assert not any(t.startswith("/sys/fs/cgroup") for t in inside)


def test_only_loopback_and_it_is_up() -> None:
    assert sh("ls /sys/class/net") == "lo\n"
    assert "UP" in sh("ip link show lo")
    assert sh("ping -c 1 -W 1 127.0.0.1 >/dev/null && echo reachable") == "reachable\n"


def test_writes_change_neither_image_nor_host(store_root: Path) -> None:
    # busybox's layer: other tests add layers of their own (commits, imports) to the store.
    layer = next(d for d in (store_root / "layers").iterdir() if (d / "bin" / "busybox").exists())
    before = sorted(os.listdir(layer / "etc"))
    sh("echo owned > /etc/passwd; touch /etc/new-file; rm /bin/ls; echo x > /tmp/host-check")
    assert sorted(os.listdir(layer / "etc")) == before
    assert (layer / "bin" / "ls").is_symlink()
    assert "owned" not in (layer / "etc" / "passwd").read_text()
    assert sh("cat /etc/passwd | head -1").startswith("root:")


def test_two_containers_do_not_share_writes() -> None:
    a = pyc("run", "--name", "writer", "busybox", "sh", "-c", "echo secret > /data.txt")
    assert a.returncode == 0, a.stderr
    assert sh("cat /data.txt 2>&1 || echo missing").endswith("missing\n")
    pyc("rm", "writer")


def test_volume_read_write_and_read_only(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("from host\n")
    assert sh("cat /mnt/in.txt; echo back > /mnt/out.txt", "-v", f"{tmp_path}:/mnt") == "from host\n"
    assert (tmp_path / "out.txt").read_text() == "back\n"
    r = pyc("run", "--rm", "-v", f"{tmp_path}:/mnt:ro", "busybox", "sh", "-c", "echo no > /mnt/x")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert not (tmp_path / "x").exists()
    # A single file can be bound too.
    assert sh("cat /in.txt", "-v", f"{tmp_path / 'in.txt'}:/in.txt:ro") == "from host\n"


def test_read_only_root_holds() -> None:
    r = pyc("run", "--rm", "--read-only", "busybox", "sh", "-c", "touch /etc/x")
    assert r.returncode == 1 and "Read-only file system" in r.stderr
    # /dev/shm and --tmpfs stay writable, as in docker.
    assert sh("touch /dev/shm/ok /scratch/ok && echo ok", "--read-only", "--tmpfs", "/scratch") == "ok\n"


def test_env_workdir_user(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=1\n\nSHARED=file\n")
    out = sh('echo "$FOO $FROM_FILE $SHARED $PATH"; pwd; id -u; id -g', "-e", "FOO=bar", "--env-file", str(env_file), "-e", "SHARED=flag", "-w", "/tmp/work", "-u", "1000:1001")
    assert out.splitlines() == ["bar 1 flag /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "/tmp/work", "1000", "1001"]
    assert sh("id -un; id -g", "-u", "nobody") == "nobody\n65534\n"


def test_non_root_user_has_no_capabilities() -> None:
    caps = sh("grep CapEff /proc/self/status", "-u", "1000")
    assert caps.split()[1] == "0000000000000000"
    root_caps = int(sh("grep CapEff /proc/self/status").split()[1], 16)
    assert root_caps and not root_caps & (1 << 21)  # no CAP_SYS_ADMIN


def test_devices_and_special_mounts() -> None:
    out = sh("echo hi > /dev/null && head -c 4 /dev/zero | wc -c && ls /dev/pts/ptmx >/dev/null && grep -c ' /sys sysfs ro' /proc/mounts")
    assert out.split() == ["4", "1"]


def test_rm_leaves_nothing_behind(store_root: Path) -> None:
    r = pyc("run", "--rm", "--name", "gone", "busybox", "sh", "-c", "cat /proc/self/cgroup >/dev/null; hostname")
    assert r.returncode == 0
    cid_prefix = r.stdout.strip()
    assert not [c for c in os.listdir(store_root / "containers") if c.startswith(cid_prefix)]
    assert leftovers(cid_prefix) == []
    ps = pyc("ps", "-a")
    assert "gone" not in ps.stdout
    # Its name was let go with it: another container may take it.
    assert pyc("create", "--name", "gone", "busybox", "true").returncode == 0


def test_kept_container_is_listed_and_removed(store_root: Path) -> None:
    r = pyc("run", "--name", "keeper", "busybox", "sh", "-c", "echo kept > /k; exit 4")
    assert r.returncode == 4
    ps = pyc("ps", "-a")
    line = next(line for line in ps.stdout.splitlines() if line.endswith("keeper"))
    assert "Exited (4)" in line
    assert "keeper" not in pyc("ps").stdout  # not running
    cid = pyc("inspect", "keeper").stdout.split('"Id": "')[1][:64]
    assert pyc("rm", "keeper").returncode == 0
    assert leftovers(cid) == []


def test_stdin_is_piped_with_i() -> None:
    r = pyc("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert r.returncode == 0 and r.stdout == "HELLO\n"
    # Without -i the container reads /dev/null, as in docker.
    r = pyc("run", "--rm", "busybox", "cat", input="ignored\n")
    assert r.returncode == 0 and r.stdout == ""


def test_output_streams_are_separate() -> None:
    r = pyc("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (r.stdout, r.stderr) == ("out\n", "err\n")


def test_no_device_can_be_made_or_smuggled_in(tmp_path: Path) -> None:
    r = pyc("run", "--rm", "busybox", "mknod", "/tmp/disk", "b", "8", "0")
    assert r.returncode == 1 and "Operation not permitted" in r.stderr
    # A device node that comes in an image opens nothing: the root is mounted nodev.
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        node = tarfile.TarInfo("null-copy")
        node.type, node.devmajor, node.devminor, node.mode = tarfile.CHRTYPE, 1, 3, 0o666
        t.addfile(node)
    (tmp_path / "dev.tar").write_bytes(buf.getvalue())
    assert pyc("import", str(tmp_path / "dev.tar"), "devimage:1").returncode == 0
    try:
        r = pyc("run", "--rm", "-v", "/bin/busybox:/bin/sh:ro", "devimage:1", "/bin/sh", "-c", "echo x > /null-copy")
        assert r.returncode != 0 and "Permission denied" in r.stderr
    finally:
        pyc("rmi", "devimage:1")


def test_clone_without_clone3_works_too() -> None:
    env = dict(os.environ, PYC_CLONE="clone")
    r = pyc("run", "--rm", "busybox", "sh", "-c", "echo $$; hostname; cat /proc/self/cgroup | head -1", env=env)
    assert r.returncode == 0, r.stderr
    pid, _, cgroup = r.stdout.splitlines()
    assert pid == "1" and cgroup.endswith(":/")


def test_cgroups_are_gone_when_no_container_runs() -> None:
    assert sh("true") == ""
    assert cgroup_dirs() == []


def test_entrypoint_replaces_the_images_command() -> None:
    assert sh("x", "--entrypoint", "echo") == "sh -c x\n"
    r = pyc("run", "--rm", "--entrypoint", "/bin/echo", "busybox", "a", "b")
    assert r.stdout == "a b\n"
    r = pyc("run", "--rm", "--entrypoint", "", "busybox", "echo", "plain")
    assert r.stdout == "plain\n"
