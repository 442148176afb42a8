"""pyc against docker itself: the same busybox image in a dockerd of the session's own
(dockerd.py), the same probe in a container of each, on --network none, and the answers
compared: capabilities, seccomp, the masked and read-only paths (read and opened for writing),
the /dev listing, the mount table (sources and mount ids aside), the probe syscalls allowed or
refused, unshare-then-mount, the user's groups, rlimits, OOM score, a sysctl and a --device
node read and opened for writing: by default, with --privileged, with --cap-drop ALL
--cap-add NET_BIND_SERVICE, and a few more (CONFIGS); then the users, groups and HOME of run
and exec. Where docker cannot run here the tests say why and are skipped; test_security.py
checks docker's documented lists whether or not it runs.

Where pyc differs on purpose, the difference is named below with its reason (DIFFERENCES): a
test fails on any other difference, and on one of these that is gone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import CGROUP_PARENT, pyc
from tests.integration.dockerd import DOCKERD, Dockerd
from tests.integration.test_security import held as held_caps

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

# Paths docker 20.10 masks or makes read-only, and those pyc adds; each is read and opened for
# writing (`: >>` writes nothing, a directory gets a file made and removed), and the outcome or
# the error is printed.
PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/dev/block",
    "/sys/devices/virtual/powercap", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    "/proc/sys/kernel/domainname", "/proc/sys/net/ipv4/ip_forward", "/sys/kernel/profiling", "/sys/fs/cgroup",
]  # fmt: skip

PROBE = (
    "echo '## status'; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; "
    "echo '## paths'; for p in " + " ".join(PATHS) + "; do "
    'if [ -d $p ]; then r="dir $(ls -A $p 2>&1 | wc -l)"; w=$(touch $p/.pyc-probe 2>&1 && rm $p/.pyc-probe && echo ok); '
    "elif [ -e $p ]; then r=$(head -c 64 $p 2>&1 >/dev/null && echo ok); w=$( (: >> $p) 2>&1 && echo ok); "
    'else r=absent; w=-; fi; echo "$p read: ${r##*: } write: ${w##*: }"; done; '
    "echo '## dev'; for f in /dev/* /dev/pts/*; do stat -c '%n %F %t:%T %a %u:%g' $f; done; "
    "echo '## mounts'; cat /proc/self/mountinfo; "
    "echo '## syscalls'; /probe/syscalls; "
    "echo '## unshare'; unshare -Urm mount -t tmpfs none /mnt 2>&1; echo rc=$?; "
    "echo '## id'; id; grep Groups /proc/self/status; "
    "echo '## limits'; ulimit -Sn; ulimit -Hn; cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward; "
    "for d in /dev/disk /dev/null; do [ -e $d ] || continue; r=$(head -c1 $d 2>&1 >/dev/null && echo ok); w=$( (: >> $d) 2>&1 && echo ok); "
    'echo "$d read: ${r##*: } write: ${w##*: }"; done'
)

# pyc on the cgroups docker uses here (test.sh runs the integration tests once more with their
# containers' cgroups on this hybrid host's cgroup2 mount, which docker 20.10 does not use).
LIKE_DOCKER = {k: v for k, v in os.environ.items() if k != "PYC_CGROUP_ROOT"}

CONFIGS = {
    "default": [],
    "privileged": ["--privileged"],
    "cap-drop-all": ["--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"],
    # beyond the three: seccomp's rules that CAP_SYS_ADMIN opens, a user's caps and
    # no_new_privs, a read-only root
    "cap-add-sys-admin": ["--cap-add", "SYS_ADMIN"],
    "user-no-new-privileges": ["-u", "1000", "--security-opt", "no-new-privileges"],
    "read-only": ["--read-only"],
    "knobs": ["--device", "/dev/loop0:/dev/disk:r", "--ulimit", "nofile=100:200", "--oom-score-adj", "300", "--sysctl", "net.ipv4.ip_forward=0", "--group-add", "5"],
}

CGROUP_V1_OWN = "pyc's container joins the v1 freezer when first paused and has no name=systemd cgroup: it mounts the hierarchies it is in"
# Each difference from docker that pyc has on purpose: (section, key) -> why.
DIFFERENCES = {
    ("mounts", "/"): "the root is nodev, read-only or not (but under --privileged): a device node in the image does not open, whatever the device cgroup says",
    ("mounts", "/etc/hostname"): "/etc files are nosuid,nodev, as binds and volumes are (docker 20.10 leaves them as the host has them)",
    ("mounts", "/etc/hosts"): "/etc files are nosuid,nodev",
    ("mounts", "/etc/resolv.conf"): "/etc files are nosuid,nodev",
    ("mounts", "/sys/fs/cgroup"): "the tmpfs under the cgroup hierarchies is read-only (docker's is writable: a container could make files there)",
    ("paths", "/sys/fs/cgroup"): "the tmpfs under the cgroup hierarchies is read-only, and it has only the hierarchies the container is in",
    ("mounts", "/sys/fs/cgroup/freezer"): CGROUP_V1_OWN,
    ("mounts", "/sys/fs/cgroup/systemd"): CGROUP_V1_OWN,
    ("mounts", "/sys/dev/block"): "/sys/dev/block is masked (issue 17): it names the host's block devices",
    ("paths", "/sys/dev/block"): "/sys/dev/block is masked",
    ("mounts", "/probe"): "binds are nosuid,nodev (docker's keep the host's options)",
    **{
        ("status", s): "--privileged gives every capability pyc holds; docker 20.10's list ends at CAP_AUDIT_READ (37): no CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE"
        for s in ("CapPrm", "CapEff", "CapBnd")
    },
}
# Which of them each configuration shows (--privileged: nothing masked, binds and /etc files
# as the host has them, /sys/fs/cgroup writable). On cgroup v1 (this hybrid host): docker's v1
# hierarchies pyc's container is not in, so a shorter listing of /sys/fs/cgroup, and the tmpfs
# under them.
V1_NOT_IN = {("mounts", f"/sys/fs/cgroup/{h}") for h in ("freezer", "systemd") if os.path.isdir(f"/sys/fs/cgroup/{h}")}
CGROUPS = V1_NOT_IN | ({("paths", "/sys/fs/cgroup")} if V1_NOT_IN else set())
CONFINED = {("mounts", p) for p in ("/", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/probe", "/sys/dev/block")} | {("paths", "/sys/dev/block")}
CONFINED |= {("mounts", "/sys/fs/cgroup")} if V1_NOT_IN else set()
NEWER_CAPS = {("status", s) for s in ("CapPrm", "CapEff", "CapBnd") if int(held_caps(), 16) >> 38}
EXPECTED = {
    "default": CONFINED | CGROUPS,
    "privileged": NEWER_CAPS | CGROUPS,
    "cap-drop-all": CONFINED | CGROUPS,
    "cap-add-sys-admin": CONFINED | CGROUPS,
    "user-no-new-privileges": CONFINED | CGROUPS,
    "read-only": CONFINED | CGROUPS,
    "knobs": CONFINED | CGROUPS,
}


@pytest.fixture(scope="module")
def dockerd(store_root: Path, busybox: str) -> Iterator[Dockerd]:
    if not os.path.exists(DOCKERD):
        pytest.skip("dockerd cannot run here: Debian's docker.io is not installed (setup.sh installs it)")
    d = Dockerd(f"{CGROUP_PARENT}-dockerd")
    try:
        why = d.start()
        if why:
            pytest.skip(why)
        archive = d.dir / "busybox.tar"
        r = pyc("save", busybox, "-o", str(archive))
        assert r.returncode == 0, r.stderr
        d.image_from(archive)
        yield d
    finally:
        left = d.stop()
    assert left == [], f"dockerd left {left}"


def sections(output: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        if line.startswith("## "):
            current = line[3:]
            out[current] = []
        elif current:
            out[current].append(line)
    return out


def mounts(lines: list[str]) -> dict[str, str]:
    """mountinfo by mount point: the mount's options, its type and the filesystem's options
    (an overlay's, which name layer paths, left out); ids, sources and roots aside."""
    out = {}
    for line in lines:
        fields = line.split()
        sep = fields.index("-")
        fstype, super_options = fields[sep + 1], fields[sep + 3]
        out[fields[4]] = f"{fields[5]} {fstype} {'' if fstype == 'overlay' else super_options}"
    return out


def keyed(name: str, lines: list[str]) -> dict[str, str]:
    if name == "mounts":
        return mounts(lines)
    if name in ("paths", "dev", "syscalls"):
        return {line.split()[0]: line for line in lines}
    if name == "status":
        return dict(line.split(":\t") for line in lines)
    return {str(i): line for i, line in enumerate(lines)}


def compare(docker_out: str, pyc_out: str) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """Every (section, key) whose answer differs: (docker's, pyc's)."""
    a, b = sections(docker_out), sections(pyc_out)
    assert set(a) == set(b) == {"status", "paths", "dev", "mounts", "syscalls", "unshare", "id", "limits"}, (a.keys(), b.keys())
    diff = {}
    for name in a:
        x, y = keyed(name, a[name]), keyed(name, b[name])
        for key in x.keys() | y.keys():
            if x.get(key) != y.get(key):
                diff[(name, key)] = (x.get(key), y.get(key))
    return diff


@pytest.mark.parametrize("config", list(CONFIGS))
def test_confinement_is_dockers(dockerd: Dockerd, probes: Path, config: str) -> None:
    flags = ["--network", "none", "-v", f"{probes}:/probe:ro", *CONFIGS[config], "busybox", "sh", "-c", PROBE]
    ours = pyc("run", "--rm", *flags, env=LIKE_DOCKER)
    theirs = dockerd.docker("run", "--rm", *flags)
    assert ours.returncode == 0 and theirs.returncode == 0, (ours.stderr, theirs.stderr)
    diff = compare(theirs.stdout, ours.stdout)
    unexplained = {k: v for k, v in diff.items() if k not in DIFFERENCES}
    assert unexplained == {}, "pyc differs from docker"
    assert set(diff) == EXPECTED[config], {k: diff.get(k) for k in set(diff) ^ EXPECTED[config]}
    for (name, key), (docker_has, pyc_has) in diff.items():
        assert_as_explained(name, key, docker_has, pyc_has)


def assert_as_explained(name: str, key: str, docker_has: str | None, pyc_has: str | None) -> None:
    """That a difference is the one its reason in DIFFERENCES names, and no other."""
    if name == "status":
        extra = int(pyc_has or "0", 16) & ~int(docker_has or "0", 16)
        assert int(pyc_has or "0", 16) & int(docker_has or "0", 16) == int(docker_has or "0", 16) and extra == int(held_caps(), 16) >> 38 << 38, (docker_has, pyc_has)
    elif name == "mounts" and docker_has and pyc_has:
        # the same mount, with options added
        (ours, *rest), (theirs, *same) = pyc_has.split(" "), docker_has.split(" ")
        added, taken = {"/": ({"nodev"}, set()), "/sys/fs/cgroup": ({"ro"}, {"rw"})}.get(key, ({"nosuid", "nodev"}, set()))
        assert rest == same and set(ours.split(",")) == set(theirs.split(",")) - taken | added, (docker_has, pyc_has)
    elif name == "mounts":
        # a cgroup hierarchy pyc does not mount, or the mask of /sys/dev/block
        assert (key.startswith("/sys/fs/cgroup/") and pyc_has is None) or (key == "/sys/dev/block" and docker_has is None and pyc_has and " tmpfs " in pyc_has), (docker_has, pyc_has)
    elif key == "/sys/dev/block":
        assert pyc_has == "/sys/dev/block read: dir 0 write: Read-only file system", pyc_has
    else:  # /sys/fs/cgroup: two hierarchies fewer; read-only where docker's is writable, unless --privileged
        (*_, docker_n, docker_w), (*_, pyc_n, pyc_w) = (docker_has or "").split(" ", 4), (pyc_has or "").split(" ", 4)
        assert int(docker_n) - int(pyc_n) == len(V1_NOT_IN) and pyc_w in (docker_w, "write: Read-only file system"), (docker_has, pyc_has)


GROUP_CASES = [
    [],
    ["--group-add", "5", "--group-add", "daemon"],
    ["-u", "1000"],
    ["-u", "1000", "--group-add", "5"],
    ["-u", "daemon"],
    ["-u", "1"],
    ["-u", "65534", "--group-add", "tty"],
    ["-u", "1:5", "--group-add", "daemon"],
    ["-u", "daemon:tty"],
    ["-u", "1000:1000", "--group-add", "1"],
]
IDS = "id -u; id -g; grep Groups /proc/self/status"


def test_users_and_groups_are_dockers(dockerd: Dockerd) -> None:
    for flags in GROUP_CASES:
        args = ["--network", "none", *flags, "busybox", "sh", "-c", f"{IDS}; echo HOME=$HOME"]
        ours, theirs = pyc("run", "--rm", *args, env=LIKE_DOCKER), dockerd.docker("run", "--rm", *args)
        assert ours.returncode == theirs.returncode == 0, (flags, ours.stderr, theirs.stderr)
        assert ours.stdout.split() == theirs.stdout.split(), flags


EXEC_CASES = [[], ["-u", "0"], ["-u", "1000"], ["-u", "alice"], ["-u", "daemon"], ["-u", "1:2"], ["-u", "daemon:daemon"], ["-u", "65534"]]
# the container's own /etc/group and /etc/passwd, changed after it started: exec reads them then
SETUP = "echo staff:x:50:daemon,nobody,alice >> /etc/group && echo alice:x:1000:1000::/:/bin/sh >> /etc/passwd"


def test_exec_user_gets_the_containers_groups_as_docker(dockerd: Dockerd) -> None:
    ids = {}
    for engine, run in (("pyc", lambda *a: pyc(*a, env=LIKE_DOCKER)), ("docker", dockerd.docker)):
        r = run("run", "-d", "--network", "none", "--group-add", "5", "--group-add", "daemon", "-u", "1000", "busybox", "sleep", "60")
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip()
        try:
            assert run("exec", "-u", "0", cid, "sh", "-c", SETUP).returncode == 0
            for flags in EXEC_CASES:
                r = run("exec", *flags, cid, "sh", "-c", f"{IDS}; echo HOME=$HOME")
                assert r.returncode == 0, (engine, flags, r.stderr)
                ids[(engine, *flags)] = r.stdout.split()
        finally:
            run("rm", "-f", cid)
    for flags in EXEC_CASES:
        assert ids[("pyc", *flags)] == ids[("docker", *flags)], flags
    # exec -u alice: her primary group, /etc/group's staff, the container's --group-add ones
    assert ids[("pyc", "-u", "alice")] == ["1000", "1000", "Groups:", "1", "5", "50", "1000", "HOME=/"]
    assert ids[("pyc", "-u", "daemon")][-1] == "HOME=/usr/sbin"
