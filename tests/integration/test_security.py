"""Confinement as docker gives it, and the flags that loosen or tighten it, seen from inside a
container: capabilities, --privileged, no_new_privs, and what inspect shows of them."""

from __future__ import annotations

import json
import os
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
