"""The runtime CVEs of issue 17 and the rest of its list, each as a hostile image would try it.
Which design choice closes each (the tests fail on a design without it):

- CVE-2024-21626 (runc leaked a host directory fd into the container; `-w /proc/self/fd/N` then
  put the process's working directory on the host): no process pyc starts holds a host fd when
  its working directory is set. run resolves the directory inside the root (openat2
  RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, target.rs), so /proc/self/fd/N is refused whatever N
  names; exec's process closed every host fd before it joined the container (pyc-init --enter
  keeps stdio, the report pipe and its pid pipe, none a directory), so N names nothing to leave by.
- CVE-2019-5736: test_escapes.py (exec and --init enter through pyc-init from a sealed memfd).
- CVE-2025-31133 / 52565 / 52881: test_security.py (masks and mounts through fds opened inside
  the root and checked after opening).
- The rest: pid namespace (no host process seen, signalled or ptraced), --read-only held against
  a remount (no CAP_SYS_ADMIN, and seccomp refuses mount), no module loading (no
  CAP_SYS_MODULE; seccomp's EPERM for init_module on this kernel without modules),
  /proc/sysrq-trigger read-only (test_security.py), a usable device only with --device
  (test_security.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from tests.conftest import pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

FDS = range(3, 16)


@pytest.fixture
def running() -> Iterator[str]:
    r = pyc("run", "-d", "busybox", "sleep", "120")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        yield cid
    finally:
        pyc("rm", "-f", cid)


@pytest.mark.parametrize("flags", [[], ["--privileged"]], ids=["default", "privileged"])
def test_run_workdir_through_proc_self_fd_is_refused(flags: list[str]) -> None:
    for n in FDS:
        r = pyc("run", "--rm", *flags, "-w", f"/proc/self/fd/{n}", "busybox", "sh", "-c", "echo ran in $(pwd -P); ls")
        # Refused before anything runs, on one line: never a working directory outside the root.
        assert r.returncode != 0 and "ran in" not in r.stdout, (n, r.stdout, r.stderr)
        assert "working directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1, (n, r.stderr)


@pytest.mark.parametrize("user", ["0", "1000"])
def test_exec_workdir_through_proc_self_fd_reaches_no_host_directory(running: str, user: str) -> None:
    for n in FDS:
        r = pyc("exec", "-u", user, "-w", f"/proc/self/fd/{n}", running, "sh", "-c", "echo ran in $(pwd -P); ls -a")
        # What it may name is stdio or pyc's pipes: no directory at all, so no chdir there.
        assert r.returncode != 0 and "ran in" not in r.stdout, (n, r.stdout, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # The same exec with a real directory works: the refusal above is the fd's, not -w's.
    r = pyc("exec", "-u", user, "-w", "/tmp", running, "sh", "-c", "pwd -P")
    assert r.returncode == 0 and r.stdout == "/tmp\n", r.stderr


def _fds(listing: str) -> dict[str, list[str]]:
    """`ls /proc/1/fd /proc/self/fd` -> {directory: its fd numbers}."""
    out: dict[str, list[str]] = {}
    for block in listing.strip().split("\n\n"):
        head, *names = block.split()
        out[head.rstrip(":")] = names
    return out


def test_no_process_holds_a_host_fd_after_exec(running: str) -> None:
    """What a container's processes have open once they run: stdio and nothing else (ls's own
    3 is the directory it reads)."""
    r = pyc("exec", running, "sh", "-c", "exec ls /proc/1/fd /proc/self/fd")
    assert r.returncode == 0 and _fds(r.stdout) == {"/proc/1/fd": ["0", "1", "2"], "/proc/self/fd": ["0", "1", "2", "3"]}, r.stdout
    r = pyc("run", "--rm", "busybox", "ls", "/proc/1/fd", "/proc/self/fd")
    assert r.returncode == 0 and _fds(r.stdout) == {"/proc/1/fd": ["0", "1", "2", "3"], "/proc/self/fd": ["0", "1", "2", "3"]}, r.stdout
    r = pyc("run", "--rm", "--init", "busybox", "ls", "/proc/1/fd", "/proc/self/fd")
    assert r.returncode == 0 and _fds(r.stdout) == {"/proc/1/fd": ["0", "1", "2"], "/proc/self/fd": ["0", "1", "2", "3"]}, r.stdout


@pytest.mark.parametrize("flags", [[], ["--cap-add", "ALL"], ["--privileged"]], ids=["default", "cap-add ALL", "privileged"])
def test_no_host_process_is_seen_signalled_or_ptraced(flags: list[str]) -> None:
    """Whatever its capabilities (CAP_KILL, CAP_SYS_PTRACE), a container names only its own
    processes: a host process is not in its /proc, and kill (as ptrace) finds no such pid."""
    host = subprocess.Popen(["sleep", "60"])
    try:
        script = f"ls /proc | grep -c '^[0-9]'; test -e /proc/{host.pid} && echo SEEN; kill -STOP {host.pid}; echo rc=$?"
        r = pyc("run", "--rm", *flags, "busybox", "sh", "-c", script)
        count, *rest = r.stdout.split()
        # Its own: sh as pid 1, ls and grep; the host's hundreds are not there.
        assert int(count) <= 4 and rest == ["rc=1"] and "No such process" in r.stderr, (r.stdout, r.stderr)
        with open(f"/proc/{host.pid}/stat") as f:
            assert f.read().split()[2] != "T"  # the host process was not stopped
    finally:
        host.kill()
        host.wait()


def test_read_only_root_cannot_be_remounted() -> None:
    script = "mount -o remount,rw /; echo rc=$?; mount -o remount,bind,rw /; echo rc=$?; touch /x; echo rc=$?"
    r = pyc("run", "--rm", "--read-only", "busybox", "sh", "-c", script)
    # No CAP_SYS_ADMIN, and seccomp refuses mount besides: the root stays read-only.
    mount_rc, bind_rc, touch_rc = r.stdout.split()
    assert mount_rc != "rc=0" and bind_rc != "rc=0" and touch_rc == "rc=1", r.stdout
    assert "permission denied" in r.stderr and "Read-only file system" in r.stderr, r.stderr


def test_read_only_root_stays_nodev() -> None:
    """Making the root read-only is a remount, which sets every per-mount flag anew: nodev
    stays (a device node in the image opens nothing, read-only or not); --privileged has none."""
    look = "awk '$5 == \"/\" {print $6}' /proc/self/mountinfo"
    for flags, want in (([], {"ro", "nodev"}), (["--privileged"], {"ro"})):
        r = pyc("run", "--rm", "--read-only", *flags, "busybox", "sh", "-c", look)
        assert r.returncode == 0 and {"ro", "nodev"} & set(r.stdout.strip().split(",")) == want, (flags, r.stdout, r.stderr)
