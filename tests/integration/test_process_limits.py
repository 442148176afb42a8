"""docker's per-process settings seen from inside a container: --ulimit, --sysctl (namespaced
only), --oom-score-adj, --group-add and the user's groups of the image's /etc/group; what pyc
cannot grant on this host (no CAP_SYS_RESOURCE) refused on one line."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest
from tests.conftest import pyc, store_snapshot

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def run(*args: str) -> str:
    r = pyc("run", "--rm", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def limits(*flags: str) -> dict[str, tuple[str, str]]:
    """/proc/self/limits of the container's command: name -> (soft, hard)."""
    out = run(*flags, "busybox", "cat", "/proc/self/limits")
    rows = {}
    for line in out.splitlines()[1:]:
        name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        rows[name] = (soft, hard)
    return rows


def test_ulimits_are_set_and_the_rest_inherited() -> None:
    default = limits()
    got = limits("--ulimit", "nofile=1024:2048", "--ulimit", "core=-1", "--ulimit", "nproc=300", "--ulimit", "stack=unlimited:unlimited")
    assert got["Max open files"] == ("1024", "2048")
    assert got["Max core file size"] == ("unlimited", "unlimited")
    assert got["Max processes"] == ("300", "300")
    assert got["Max stack size"] == ("unlimited", "unlimited")
    assert got["Max cpu time"] == default["Max cpu time"]
    # The limit holds: with nofile=8, fd 7 opens and fd 8 does not.
    out = run("--ulimit", "nofile=8", "busybox", "sh", "-c", "(exec 7</dev/null) && echo 7 opens; (exec 8</dev/null) 2>/dev/null || echo 8 refused")
    assert out.split("\n")[:2] == ["7 opens", "8 refused"], out


def test_exec_gets_the_containers_limits_and_oom_score() -> None:
    cid = pyc("run", "-d", "--ulimit", "nofile=100:200", "--oom-score-adj", "400", "--group-add", "5", "busybox", "sleep", "60").stdout.strip()
    try:
        r = pyc("exec", cid, "sh", "-c", "grep 'open files' /proc/self/limits; cat /proc/self/oom_score_adj; id -G")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].split()[3:5] == ["100", "200"] and lines[1:] == ["400", "0 5"], r.stdout
    finally:
        pyc("rm", "-f", cid)


def test_inspect_shows_ulimits_sysctls_oom_score_and_groups() -> None:
    flags = ["--ulimit", "nofile=10", "--ulimit", "nofile=1024:2048", "--ulimit", "core=-1", "--sysctl", "net.ipv4.ip_forward=1", "--oom-score-adj", "300", "--group-add", "5"]
    cid = pyc("create", *flags, "busybox", "true").stdout.strip()
    host = json.loads(pyc("inspect", cid).stdout)[0]["HostConfig"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "core", "Soft": -1, "Hard": -1}]
    assert host["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert host["OomScoreAdj"] == 300 and host["GroupAdd"] == ["5"]
    plain = json.loads(pyc("inspect", pyc("create", "busybox", "true").stdout.strip()).stdout)[0]["HostConfig"]
    assert plain["Ulimits"] is None and "Sysctls" not in plain and plain["OomScoreAdj"] == 0


def test_namespaced_sysctls_are_set_inside_only() -> None:
    with open("/proc/sys/kernel/shmmni") as f:
        host_shmmni = f.read()
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_forward = f.read()
    script = "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward /proc/sys/fs/mqueue/msg_max; echo 1 > /proc/sys/kernel/shmmni; echo rc=$?"
    out = run("--sysctl", "kernel.shmmni=100", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "fs.mqueue.msg_max=20", "busybox", "sh", "-c", script)
    # Set, and /proc/sys read-only afterwards all the same.
    assert out.split() == ["100", "1", "20", "rc=1"], out
    with open("/proc/sys/kernel/shmmni") as f:
        assert f.read() == host_shmmni
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host_forward


def test_oom_score_adj() -> None:
    assert run("--oom-score-adj", "500", "busybox", "cat", "/proc/self/oom_score_adj").strip() == "500"
    with open("/proc/self/oom_score_adj") as f:
        own = f.read().strip()
    assert run("busybox", "cat", "/proc/self/oom_score_adj").strip() == own


def test_groups_of_the_image_and_group_add(tmp_path: Path) -> None:
    assert run("busybox", "id", "-G").split() == ["0"]
    assert run("--group-add", "5", "--group-add", "nogroup", "--group-add", "1234", "busybox", "id", "-G").split() == ["0", "5", "1234", "65534"]  # the kernel sorts them
    # A user's groups come from the image's /etc/group, as under runc (none when -u names a
    # group), with its own group (docker's: a group bit that refuses it holds, CVE-2022-36109).
    setup = "echo 'staff:x:50:alice,bob' >> /etc/group; echo 'users:x:100:bob' >> /etc/group; echo 'alice:x:1000:1000::/:/bin/sh' >> /etc/passwd"
    assert pyc("run", "--name", "groups-src", "busybox", "sh", "-c", setup).returncode == 0
    assert pyc("commit", "groups-src", "groups:1").returncode == 0
    try:
        assert run("-u", "alice", "groups:1", "id", "-G").split() == ["1000", "50"]
        # a UID /etc/passwd has: that user's group, as under docker
        assert run("-u", "1000", "--group-add", "100", "groups:1", "id", "-G").split() == ["1000", "50", "100"]
        assert run("-u", "alice:5", "groups:1", "id", "-G").split() == ["5"]
        # exec -u: the user's own group, /etc/group's and the container's --group-add, as docker
        cid = pyc("run", "-d", "--group-add", "5", "groups:1", "sleep", "30").stdout.strip()
        r = pyc("exec", "-u", "alice", cid, "grep", "Groups", "/proc/self/status")
        assert r.stdout.split() == ["Groups:", "5", "50", "1000"], r.stderr
        r = pyc("exec", "-u", "alice:100", cid, "grep", "Groups", "/proc/self/status")
        assert r.stdout.split() == ["Groups:", "5", "100"], r.stderr
        r = pyc("exec", cid, "grep", "Groups", "/proc/self/status")
        assert r.stdout.split() == ["Groups:", "0", "5"], r.stderr
        pyc("rm", "-f", cid)
    finally:
        pyc("rm", "-f", "groups-src")
        pyc("rmi", "groups:1")


def _own_hard_nofile() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ulimit", "nofile"], "NAME=SOFT[:HARD]"),
        (["--ulimit", "nofiles=10"], "NAME=SOFT[:HARD]"),
        (["--ulimit", "nofile=x"], "whole numbers"),
        (["--ulimit", "nofile=20:10"], "soft limit is above the hard one"),
        (["--sysctl", "kernel.core_pattern=|/tmp/x"], "not namespaced"),
        (["--sysctl", "vm.swappiness=1"], "not namespaced"),
        (["--sysctl", "net.ipv4.no_such_thing=1"], "this kernel has no"),
        (["--sysctl", "net/../../kernel/core_pattern=x"], "NAME=VALUE"),
        (["--sysctl", "kernel.shmmni"], "NAME=VALUE"),
        (["--oom-score-adj", "1001"], "-1000 to 1000"),
        (["--oom-score-adj", "x"], "--oom-score-adj"),
        (["--group-add", "nosuchgroup"], "no such group"),
    ],
)
def test_bad_values_are_one_line_and_change_nothing(store_root: Path, flags: list[str], message: str) -> None:
    before = store_snapshot(store_root)
    for verb in ("run", "create"):
        r = pyc(verb, *flags, "busybox", "true")
        assert r.returncode == 125 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert store_snapshot(store_root) == before


def test_what_pyc_cannot_grant_here_is_refused(store_root: Path) -> None:
    """Root on this host lacks CAP_SYS_RESOURCE: raising a hard limit above pyc's own, or a
    negative OOM score, cannot work, and says so."""
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    above = _own_hard_nofile() + 1
    if eff >> 24 & 1:  # a host whose root holds it (not this VM, see the issue): both work
        assert limits("--ulimit", f"nofile={above}")["Max open files"] == (str(above), str(above))
        assert run("--oom-score-adj", "-5", "busybox", "cat", "/proc/self/oom_score_adj").strip() == "-5"
        return
    before = store_snapshot(store_root)
    for flags, message in ((["--ulimit", f"nofile={above}"], "CAP_SYS_RESOURCE"), (["--oom-score-adj", "-5"], "CAP_SYS_RESOURCE")):
        r = pyc("run", *flags, "busybox", "true")
        assert r.returncode == 125 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert store_snapshot(store_root) == before
    # Up to pyc's own hard limit works.
    assert limits("--ulimit", f"nofile={above - 1}")["Max open files"] == (str(above - 1), str(above - 1))
