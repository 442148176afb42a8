"""Confinement as docker gives it, and the flags that loosen or tighten it, seen from inside a
container: capabilities, --privileged, no_new_privs, and what inspect shows of them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.conftest import pyc, store_snapshot

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

STATUS = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"


def status(*flags: str, user: str | None = None) -> dict[str, str]:
    args = [*flags, *(["-u", user] if user else [])]
    r = pyc("run", "--rm", *args, "busybox", "sh", "-c", STATUS)
    assert r.returncode == 0, r.stderr
    return dict(line.split(":\t") for line in r.stdout.splitlines())


def mask(*names: str) -> str:
    from pyc.runtime.security import ALL_CAPS

    return f"{sum(1 << ALL_CAPS.index(n) for n in names):016x}"


def held() -> str:
    with open("/proc/self/status") as f:
        return next(line.split()[1] for line in f if line.startswith("CapBnd:"))


def test_default_capabilities_are_dockers() -> None:
    from pyc.runtime.security import DEFAULT_CAPS

    s = status()
    default = mask(*DEFAULT_CAPS)
    assert (s["CapBnd"], s["CapEff"], s["CapPrm"], s["CapInh"], s["CapAmb"]) == (default, default, default, "0" * 16, "0" * 16)
    assert s["NoNewPrivs"] == "0"
    # A user other than root keeps the bounding set only, as with docker.
    s = status(user="1000")
    assert (s["CapBnd"], s["CapEff"], s["CapPrm"]) == (default, "0" * 16, "0" * 16)


def test_cap_drop_all_and_add_one() -> None:
    s = status("--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE")
    assert (s["CapBnd"], s["CapEff"], s["CapPrm"]) == (mask("CAP_NET_BIND_SERVICE"),) * 3
    s = status("--cap-add", "sys_ptrace", "--cap-drop", "CAP_CHOWN")
    assert int(s["CapEff"], 16) & int(mask("CAP_SYS_PTRACE"), 16) and not int(s["CapEff"], 16) & 1


def test_cap_add_all_and_privileged_give_what_pyc_holds() -> None:
    assert status("--cap-add", "ALL")["CapEff"] == held()
    s = status("--privileged")
    assert (s["CapBnd"], s["CapEff"]) == (held(), held())


def test_no_new_privileges_only_when_asked() -> None:
    assert status("--security-opt", "no-new-privileges")["NoNewPrivs"] == "1"
    assert status("--security-opt", "no-new-privileges=false")["NoNewPrivs"] == "0"
    # and an exec into such a container is held to it as well
    cid = pyc("run", "-d", "--security-opt", "no-new-privileges", "busybox", "sleep", "60").stdout.strip()
    r = pyc("exec", cid, "grep", "NoNewPrivs", "/proc/self/status")
    assert r.stdout.split() == ["NoNewPrivs:", "1"], r.stderr


def test_lsm_options_are_accepted_where_the_host_has_none() -> None:
    assert not os.path.exists("/sys/kernel/security/apparmor")
    r = pyc("run", "--rm", "--security-opt", "apparmor=docker-default", "--security-opt", "label=type:container_t", "busybox", "true")
    assert r.returncode == 0, r.stderr


def test_inspect_shows_the_flags(tmp_path: Path) -> None:
    cid = pyc("create", "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--security-opt", "no-new-privileges", "busybox", "true").stdout.strip()
    host = json.loads(pyc("inspect", cid).stdout)[0]["HostConfig"]
    assert (host["CapAdd"], host["CapDrop"], host["SecurityOpt"], host["Privileged"]) == (["NET_ADMIN"], ["MKNOD"], ["no-new-privileges"], False)
    cid = pyc("create", "--privileged", "busybox", "true").stdout.strip()
    host = json.loads(pyc("inspect", cid).stdout)[0]["HostConfig"]
    assert (host["CapAdd"], host["CapDrop"], host["SecurityOpt"], host["Privileged"]) == (None, None, None, True)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--cap-add", "NOPE"], "unknown capability"),
        (["--cap-drop", "CAP_"], "unknown capability"),
        (["--security-opt", "bogus"], "invalid --security-opt"),
        (["--security-opt", "seccomp=/nonexistent.json"], "cannot read the seccomp profile"),
    ],
)
@pytest.mark.parametrize("verb", ["run", "create"])
def test_bad_values_are_one_line_and_change_nothing(store_root: Path, verb: str, flags: list[str], message: str) -> None:
    before = store_snapshot(store_root)
    r = pyc(verb, *flags, "busybox", "true")
    assert r.returncode == 125 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert store_snapshot(store_root) == before


# -- seccomp ---------------------------------------------------------------------------------

# What docker's default profile answers.
DEFAULT_REFUSED = {
    "clone3": "ENOSYS",  # so that a libc falls back to clone, whose flags the profile can check
    "clone_newns": "EPERM",
    "clone_newuser": "EPERM",
    "unshare_user": "EPERM",
    "mount": "EPERM",
    "umount2": "EPERM",
    "init_module": "EPERM",  # this kernel has no modules (ENOSYS unconfined): EPERM is the filter's
    "finit_module": "EPERM",
    "delete_module": "EPERM",
    "keyctl": "EPERM",
    "add_key": "EPERM",
    "bpf": "EPERM",
    "perf_event_open": "EPERM",
    "userfaultfd": "EPERM",
    "setns": "EPERM",
    "kexec_load": "EPERM",
    "settimeofday": "EPERM",
    "open_by_handle_at": "EPERM",
    "name_to_handle_at": "EPERM",
    "iopl": "EPERM",
    "ioperm": "EPERM",
    "process_vm_readv": "EPERM",
    "kcmp": "EPERM",
    "personality_other": "EPERM",
    "mbind": "EPERM",
    "quotactl": "EPERM",
    "fsopen": "EPERM",
    "open_tree": "EPERM",
    "mseal": "ENOSYS",  # newer than the profile
}
DEFAULT_ALLOWED = {"clone_plain": "ok", "personality_query": "ok", "ptrace": "ESRCH", "mkdir": "ENOENT", "chroot": "ENOENT", "socket_vsock": "EINVAL"}


def probe(probes: Path, *flags: str, calls: tuple[str, ...] = ()) -> dict[str, str]:
    r = pyc("run", "--rm", "-v", f"{probes}:/probe:ro", *flags, "busybox", "/probe/syscalls", *calls)
    assert r.returncode == 0, r.stderr
    return dict(line.split() for line in r.stdout.splitlines())


def test_docker_default_profile_by_behaviour(probes: Path) -> None:
    got = probe(probes)
    assert {k: got[k] for k in DEFAULT_REFUSED} == DEFAULT_REFUSED
    assert {k: got[k] for k in DEFAULT_ALLOWED} == DEFAULT_ALLOWED
    assert status()["Seccomp"] == "2"


def test_the_filter_holds_for_every_way_in(probes: Path) -> None:
    calls = ("clone3", "mount", "init_module", "mkdir")
    want = {"clone3": "ENOSYS", "mount": "EPERM", "init_module": "EPERM", "mkdir": "ENOENT"}
    # A user other than root loads it before giving up CAP_SYS_ADMIN; with no-new-privileges or
    # under --init, right before exec.
    for flags in (["-u", "1000"], ["--security-opt", "no-new-privileges"], ["--init"], ["-u", "1000", "--security-opt", "no-new-privileges"]):
        assert probe(probes, *flags, calls=calls) == want, flags
    cid = pyc("run", "-d", "-v", f"{probes}:/probe:ro", "busybox", "sleep", "60").stdout.strip()
    for flags in ([], ["-u", "1000"]):
        r = pyc("exec", *flags, cid, "/probe/syscalls", *calls)
        assert dict(line.split() for line in r.stdout.splitlines()) == want, (flags, r.stderr)


def test_unshare_then_mount_is_refused() -> None:
    r = pyc("run", "--rm", "busybox", "sh", "-c", "unshare -Urm mount -t tmpfs none /mnt && echo MOUNTED")
    assert r.returncode != 0 and "MOUNTED" not in r.stdout and "Operation not permitted" in r.stderr


def test_cap_sys_admin_opens_what_docker_opens(probes: Path) -> None:
    got = probe(probes, "--cap-add", "SYS_ADMIN", calls=("clone3", "mount", "unshare_user", "setns", "bpf", "kcmp"))
    # clone3 and mount reach the kernel (EINVAL, ENOENT), as setns (EBADF); kcmp still refused.
    assert got == {"clone3": "EINVAL", "mount": "ENOENT", "unshare_user": "ok", "setns": "EBADF", "bpf": "EINVAL", "kcmp": "EPERM"}


@pytest.mark.parametrize("flags", [["--security-opt", "seccomp=unconfined"], ["--privileged"]], ids=["unconfined", "privileged"])
def test_no_filter(probes: Path, flags: list[str]) -> None:
    assert status(*flags)["Seccomp"] == "0"
    # The kernel's own answer: no module support at all.
    assert probe(probes, *flags, calls=("init_module", "mseal")) == {"init_module": "ENOSYS", "mseal": "EINVAL"}


def test_a_docker_profile_file_that_blocks_mkdir(probes: Path, tmp_path: Path) -> None:
    profile = json.loads((Path(__file__).parents[2] / "rust/core/src/seccomp/default.json").read_text())
    for rule in profile["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n not in ("mkdir", "mkdirat")]
    path = tmp_path / "no-mkdir.json"
    path.write_text(json.dumps(profile))
    r = pyc("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "sh", "-c", "mkdir /made; echo status=$?; touch /file && echo touched")
    assert "status=1" in r.stdout and "touched" in r.stdout, r.stdout + r.stderr
    assert "Operation not permitted" in r.stderr
    assert probe(probes, "--security-opt", f"seccomp={path}", calls=("mkdir", "clone3")) == {"mkdir": "EPERM", "clone3": "ENOSYS"}
    # A profile in docker's format whose default allows, refusing one call with its own errno.
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    # (mount reaches the kernel, which looks the path up before it asks for CAP_SYS_ADMIN)
    assert probe(probes, "--security-opt", f"seccomp={path}", calls=("mkdir", "mount", "clone3")) == {"mkdir": "EACCES", "mount": "ENOENT", "clone3": "EINVAL"}


def test_a_profile_that_denies_umask_still_starts_its_container(tmp_path: Path) -> None:
    # The setup sets the command's umask before the filter is loaded, not under it.
    profile = json.loads((Path(__file__).parents[2] / "rust/core/src/seccomp/default.json").read_text())
    for rule in profile["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n != "umask"]
    path = tmp_path / "no-umask.json"
    path.write_text(json.dumps(profile))
    r = pyc("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "grep", "Umask", "/proc/self/status")
    assert r.returncode == 0 and r.stdout.split() == ["Umask:", "0022"], r.stdout + r.stderr


@pytest.mark.parametrize(
    "profile, message",
    [
        ("{", "seccomp profile"),
        ('{"defaultAction": "SCMP_ACT_MAYBE"}', "unknown action"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/x.sock"}', "listenerPath"),
    ],
)
def test_a_bad_profile_is_one_line_and_changes_nothing(store_root: Path, tmp_path: Path, profile: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(profile)
    before = store_snapshot(store_root)
    r = pyc("run", "--security-opt", f"seccomp={path}", "busybox", "true")
    assert r.returncode == 125 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert store_snapshot(store_root) == before


# -- masked and read-only paths, /sys, /sys/fs/cgroup ---------------------------------------

MASKED_FILES = ["/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/latency_stats", "/proc/timer_stats", "/proc/sched_debug"]
MASKED_DIRS = ["/proc/acpi", "/proc/scsi", "/proc/asound", "/sys/firmware", "/sys/dev/block", "/sys/devices/virtual/powercap"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
SHOW = (
    "for f in " + " ".join(MASKED_FILES) + "; do [ -e $f ] && echo $f $(wc -c < $f); done; "
    "for d in " + " ".join(MASKED_DIRS) + "; do [ -e $d ] && echo $d $(ls -A $d | wc -l); done; "
    "echo x > /proc/sysrq-trigger && echo WROTE sysrq; echo 1 > /proc/sys/vm/drop_caches && echo WROTE proc/sys; "
    "touch /sys/pyc 2>/dev/null && echo WROTE sys; touch /sys/fs/cgroup/pyc 2>/dev/null && echo WROTE cgroup; "
    "awk '$5 ~ \"^/(proc|sys)/\" {print $5, $6}' /proc/self/mountinfo"
)


def test_masked_and_read_only_paths() -> None:
    r = pyc("run", "--rm", "busybox", "sh", "-c", SHOW)
    lines = r.stdout.splitlines()
    sizes = dict(line.split(" ", 1) for line in lines if line.startswith(("/proc/", "/sys/")) and len(line.split()) == 2 and line.split()[1].isdigit())
    # Every masked path that exists on this kernel reads empty.
    assert sizes and all(v == "0" for v in sizes.values()), r.stdout
    assert "/sys/dev/block" in sizes and "/proc/keys" in sizes
    assert not [line for line in lines if line.startswith("WROTE")], r.stdout
    mounts = dict(line.split() for line in lines if len(line.split()) == 2 and not line.split()[1].isdigit())
    for p in READONLY:
        assert p not in mounts or mounts[p].startswith("ro"), (p, mounts)
    assert mounts["/sys/fs/cgroup"].startswith("ro") and mounts["/proc/keys"]


def test_privileged_masks_nothing_and_writes_sys() -> None:
    script = "cat /proc/self/mountinfo; d=/sys/fs/cgroup/pids; [ -d $d ] || d=/sys/fs/cgroup; mkdir $d/pyc-x && rmdir $d/pyc-x && echo CGROUP-RW; mknod /zero c 1 5 && head -c3 /zero | wc -c"
    r = pyc("run", "--rm", "--privileged", "busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    fields = [line.split() for line in r.stdout.splitlines() if " - " in line]
    points = {f[4]: f[5] for f in fields}
    assert not any(p in points for p in MASKED_FILES + MASKED_DIRS)
    assert points["/sys"].startswith("rw") and "/proc/sys" not in points
    assert "CGROUP-RW" in r.stdout
    # a node made in its root opens (no nodev there, as under docker)
    assert r.stdout.splitlines()[-1] == "3" and "nodev" not in points["/"], r.stdout


def test_sys_fs_cgroup_is_the_containers_own() -> None:
    cg = "cat /proc/self/cgroup; ls /sys/fs/cgroup; for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/pids/cgroup.procs; do [ -e $f ] && cat $f; done; true"
    r = pyc("run", "--rm", "busybox", "sh", "-c", cg)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # Each hierarchy the container is in shows it as its root, through the cgroup namespace.
    own = [line for line in lines if line.count(":") == 2]
    assert own and all(line.endswith(":/") for line in own), lines
    # What is listed is the container's processes only, by their pids in there (1: the shell).
    pids = [int(x) for x in lines if x.isdigit()]
    assert pids and min(pids) == 1 and max(pids) < 10, lines


def _image_with(store_root: Path, tmp_path: Path, name: str, links: dict[str, str]) -> str:
    """An image of busybox's files but with `links` (path: target) in place of what it had."""
    import tarfile

    from tests.conftest import pyc as run_pyc

    # busybox has one layer: its chain id is its diff id.
    (diff_id,) = json.loads(run_pyc("image", "inspect", "busybox").stdout)[0]["RootFS"]["Layers"]
    layer = store_root / "layers" / diff_id.partition(":")[2]
    out = tmp_path / f"{name}.tar"
    with tarfile.open(out, "w") as t:
        for entry in sorted(layer.iterdir()):
            if entry.name not in {k.strip("/").split("/")[0] for k in links}:
                t.add(entry, arcname=entry.name)
        for path, target in links.items():
            info = tarfile.TarInfo(path.strip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            t.addfile(info)
    r = run_pyc("import", str(out), f"{name}:1")
    assert r.returncode == 0, r.stderr
    return f"{name}:1"


def test_an_image_cannot_point_a_mount_into_proc(store_root: Path, tmp_path: Path) -> None:
    with open("/proc/sys/kernel/core_pattern") as f:
        before = f.read()
    image = _image_with(store_root, tmp_path, "devlink", {"/dev": "/proc/sys/kernel"})
    r = pyc("run", "--rm", image, "true")
    assert r.returncode == 125 and "resolves into /proc" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    image = _image_with(store_root, tmp_path, "etclink", {"/etc/hostname": "/proc/sys/kernel/core_pattern"})
    r = pyc("run", "--rm", image, "true")
    assert r.returncode == 125 and "resolves into /proc" in r.stderr, r.stderr
    target = tmp_path / "vol"
    target.mkdir()
    image = _image_with(store_root, tmp_path, "vollink", {"/data": "/proc/sysrq-trigger"})
    r = pyc("run", "--rm", "-v", f"{target}:/data", image, "true")
    assert r.returncode == 125 and "/data" in r.stderr, r.stderr
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == before
    pyc("rmi", "devlink:1", "etclink:1", "vollink:1")


# -- devices ---------------------------------------------------------------------------------

DOCKER_DEV = ["fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]
DOCKER_DEVICES_LIST = ["b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 136:* rwm"]
# A device the host's root can read (an unbacked loop device: 0 bytes), and its numbers.
DISK = "/dev/loop0"
UNIFIED = "/sys/fs/cgroup/unified"


def cgroup_roots() -> list[str | None]:
    """The run's own cgroup root, and this hybrid host's cgroup2 mount (the v2 device program)."""
    roots: list[str | None] = [None]
    if os.environ.get("PYC_CGROUP_ROOT") != UNIFIED and os.path.exists(f"{UNIFIED}/cgroup.procs"):
        roots.append(UNIFIED)
    return roots


def run_on(root: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYC_CGROUP_ROOT": root} if root else None
    return pyc("run", "--rm", *args, env=env)


def test_dev_is_dockers() -> None:
    r = pyc("run", "--rm", "busybox", "sh", "-c", "ls /dev; cat /sys/fs/cgroup/devices/devices.list 2>/dev/null")
    lines = r.stdout.splitlines()
    assert lines[: len(DOCKER_DEV)] == DOCKER_DEV, lines
    if len(lines) > len(DOCKER_DEV):  # v1: the devices controller's own list
        assert sorted(lines[len(DOCKER_DEV) :]) == sorted(DOCKER_DEVICES_LIST)


@pytest.mark.parametrize("root", cgroup_roots(), ids=lambda r: "unified" if r else "default")
def test_a_node_made_without_device_does_not_open(root: str | None) -> None:
    with open(DISK, "rb") as f:
        assert f.read(1) == b""  # the host's root reads it
    major, minor = os.major(os.stat(DISK).st_rdev), os.minor(os.stat(DISK).st_rdev)
    script = f"mknod /dev/d b {major} {minor} && echo made; head -c1 /dev/d; echo rc=$?; mknod /tmp/d b {major} {minor}; head -c1 /tmp/d; echo rc=$?"
    r = run_on(root, "busybox", "sh", "-c", script)
    assert "made" in r.stdout and r.stdout.count("rc=1") == 2, r.stdout + r.stderr
    # /dev: the device cgroup says no; the image's filesystem: nodev says no first.
    assert "/dev/d: Operation not permitted" in r.stderr and "/tmp/d: Permission denied" in r.stderr


@pytest.mark.parametrize("root", cgroup_roots(), ids=lambda r: "unified" if r else "default")
def test_device_flag_gives_that_device_with_its_permissions(root: str | None) -> None:
    r = run_on(root, "--device", f"{DISK}:/dev/disk:r", "busybox", "sh", "-c", "head -c1 /dev/disk && echo read; echo x > /dev/disk; echo rc=$?")
    assert "read" in r.stdout and "rc=1" in r.stdout and "Operation not permitted" in r.stderr, r.stdout + r.stderr
    r = run_on(root, "--device-cgroup-rule", "b 7:* rm", "busybox", "sh", "-c", "mknod /dev/l b 7 0 && head -c1 /dev/l && echo read")
    assert "read" in r.stdout, r.stderr
    r = run_on(root, "--privileged", "busybox", "sh", "-c", f"head -c1 {DISK} && echo read")
    assert "read" in r.stdout, r.stderr


@pytest.mark.parametrize("root", cgroup_roots(), ids=lambda r: "unified" if r else "default")
def test_a_device_on_a_bound_host_dir_does_not_open(root: str | None) -> None:
    # Even where the device cgroup would let it: the bind (and every mount below it) is nodev.
    script = f"head -c1 /hostdev{DISK[4:]}; echo rc=$?; awk '$5 ~ \"^/hostdev\" {{print $6}}' /proc/self/mountinfo"
    r = run_on(root, "-v", "/dev:/hostdev", "--device-cgroup-rule", "b 7:* rwm", "busybox", "sh", "-c", script)
    assert "rc=1" in r.stdout and "Permission denied" in r.stderr, r.stdout + r.stderr
    options = r.stdout.splitlines()[1:]
    assert options and all("nodev" in o and "nosuid" in o for o in options), options
    # --privileged: binds as the host has them.
    r = run_on(root, "--privileged", "-v", "/dev:/hostdev", "busybox", "sh", "-c", f"head -c1 /hostdev{DISK[4:]} && echo read")
    assert "read" in r.stdout, r.stderr


def test_inspect_shows_devices() -> None:
    cid = pyc("create", "--device", f"{DISK}:/dev/disk:r", "--device", "/dev/null", "--device-cgroup-rule", "c 1:1 r", "busybox", "true").stdout.strip()
    host = json.loads(pyc("inspect", cid).stdout)[0]["HostConfig"]
    assert host["Devices"] == [
        {"PathOnHost": DISK, "PathInContainer": "/dev/disk", "CgroupPermissions": "r"},
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/null", "CgroupPermissions": "rwm"},
    ]
    assert host["DeviceCgroupRules"] == ["c 1:1 r"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--device", "/dev/nonexistent"], "No such file"),
        (["--device", "/etc/hostname"], "is not a device"),
        (["--device", "/dev/null:/dev/n:rwx"], "permissions"),
        (["--device", "/dev/null:relative"], "absolute"),
        (["--device-cgroup-rule", "c 1:3"], "--device-cgroup-rule"),
        (["--device-cgroup-rule", "x *:* rwm"], "--device-cgroup-rule"),
    ],
)
def test_bad_devices_are_one_line_and_change_nothing(store_root: Path, flags: list[str], message: str) -> None:
    before = store_snapshot(store_root)
    r = pyc("run", *flags, "busybox", "true")
    assert r.returncode == 125 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert store_snapshot(store_root) == before
