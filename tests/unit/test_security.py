"""docker's confinement flags read and checked, without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyc.errors import InvalidArgument
from pyc.runtime.security import ALL_CAPS, DEFAULT_CAPS, _held, capabilities, security_opts
from pyc.runtime.spec import RunOptions, build


def test_capabilities_follow_docker() -> None:
    assert capabilities([], [], False) == DEFAULT_CAPS
    assert capabilities(["net_admin"], ["CHOWN", "cap_kill"], False) == [c for c in DEFAULT_CAPS if c not in ("CAP_CHOWN", "CAP_KILL")] + ["CAP_NET_ADMIN"]
    assert capabilities(["NET_BIND_SERVICE"], ["ALL"], False) == ["CAP_NET_BIND_SERVICE"]
    assert capabilities([], ["all"], False) == []
    held = _held()
    assert capabilities(["ALL"], ["SYS_ADMIN"], False) == [c for c in held if c != "CAP_SYS_ADMIN"]
    assert capabilities([], [], True) == held
    assert set(held) <= set(ALL_CAPS)


@pytest.mark.parametrize("bad", [["NOPE"], ["CAP_"], [""]])
def test_unknown_capabilities_are_refused(bad: list[str]) -> None:
    with pytest.raises(InvalidArgument, match="unknown capability"):
        capabilities(bad, [], False)
    with pytest.raises(InvalidArgument, match="--cap-drop"):
        capabilities([], bad, False)


def test_a_capability_pyc_lacks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pyc.runtime.security._held", lambda: [c for c in ALL_CAPS if c != "CAP_SYS_RESOURCE"])
    with pytest.raises(InvalidArgument, match="does not hold CAP_SYS_RESOURCE"):
        capabilities(["SYS_RESOURCE"], [], False)
    assert "CAP_SYS_RESOURCE" not in capabilities(["ALL"], [], False)


def test_security_opts(tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    s = security_opts(["no-new-privileges", f"seccomp={profile}", "apparmor=docker-default", "label=disable"])
    assert s.no_new_privileges and s.seccomp == profile.read_text() and s.seccomp_file == str(profile)
    assert security_opts(["seccomp:unconfined", "no-new-privileges=false"]).seccomp == "unconfined"
    assert not security_opts(["no-new-privileges:false"]).no_new_privileges
    assert security_opts(["systempaths=unconfined"]).unconfined_paths
    for bad in ["nope", "seccomp=", f"seccomp={tmp_path}/missing.json", "no-new-privileges=maybe", "label=weird:x", "systempaths=yes"]:
        with pytest.raises(InvalidArgument, match="--security-opt"):
            security_opts([bad])


def test_privileged_spec_has_nothing_masked(tmp_path: Path) -> None:
    spec = build({"Cmd": ["sh"]}, RunOptions(privileged=True), "/c/rootfs", {}, [str(tmp_path)], "h")
    linux = spec["linux"]
    assert linux["maskedPaths"] == [] and linux["readonlyPaths"] == []
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" not in sys_mount["options"]
    assert spec["process"]["capabilities"]["bounding"] == _held()
    plain = build({"Cmd": ["sh"]}, RunOptions(security_opts=["no-new-privileges"]), "/c/rootfs", {}, [str(tmp_path)], "h")
    assert plain["process"]["noNewPrivileges"] is True and "/proc/kcore" in plain["linux"]["maskedPaths"]
    assert "ro" in next(m for m in plain["mounts"] if m["destination"] == "/sys")["options"]
