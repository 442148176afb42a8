"""-v, --mount, --tmpfs and --volumes-from as docker reads them, and the OCI mounts made of
them: no container, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyc.errors import InvalidArgument
from pyc.records import MountPoint
from pyc.runtime.mounts import Request, check_volume_name, parse_all, parse_mount, parse_tmpfs, parse_volume, parse_volumes_from
from pyc.runtime.spec import user_mounts


def fields(r: Request) -> tuple[str, str, str, bool, bool, str]:
    return (r.kind, r.source, r.destination, r.readonly, r.nocopy, r.propagation)


def test_volume_forms() -> None:
    assert fields(parse_volume("/data")) == ("volume", "", "/data", False, False, "")
    assert fields(parse_volume("/data:ro")) == ("volume", "", "/data", True, False, "")
    assert fields(parse_volume("cache:/var/cache")) == ("volume", "cache", "/var/cache", False, False, "")
    assert fields(parse_volume("cache:/var/cache:ro,nocopy")) == ("volume", "cache", "/var/cache", True, True, "")
    assert fields(parse_volume("/srv:/srv:rw,Z")) == ("bind", "/srv", "/srv", False, False, "rprivate")
    assert fields(parse_volume("/srv/../etc:/x/./y:rshared,ro")) == ("bind", "/etc", "/x/y", True, False, "rshared")
    # -v makes a missing host directory; --mount does not.
    assert parse_volume("/nowhere/at/all:/x").make_source and parse_volume("/nowhere/at/all:/x").mode == ""
    assert parse_volume("v1:/x:z").mode == "z"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rel", "invalid volume specification: 'rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
        ("v1:/x:rx", "invalid mode: rx"),
        ("v1:/x:ro,rw", "invalid mode: ro,rw"),
        ("/h:/x:nocopy", "invalid mode: nocopy"),
        ("v1:/x:rshared", "invalid mode: rshared"),
        ("/h:/", "invalid volume specification: '/h:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
        ("/h:rel", "invalid volume specification: '/h:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        (":/x", "invalid volume specification: ':/x'"),
        ("bad name!:/x", '"bad name!" includes invalid characters for a local volume name'),
        ("x:/x", '"x" includes invalid characters for a local volume name'),
    ],
)
def test_volume_errors_are_dockers(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_volume(spec)
    assert str(e.value).startswith(message)


def test_mount_forms(tmp_path: Path) -> None:
    assert fields(parse_mount("type=volume,source=data,target=/data,readonly")) == ("volume", "data", "/data", True, False, "")
    assert fields(parse_mount("target=/anon,volume-nocopy")) == ("volume", "", "/anon", False, True, "")
    assert fields(parse_mount(f"type=bind,src={tmp_path},dst=/h,bind-propagation=rslave,ro=true")) == ("bind", str(tmp_path), "/h", True, False, "rslave")
    t = parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770")
    assert (t.kind, t.destination, t.options) == ("tmpfs", "/t", [f"size={64 << 20}", "mode=1770"])
    assert not parse_mount(f"type=bind,source={tmp_path},target=/h").make_source


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=bind,source=/does/not/exist,target=/x", 'invalid mount config for type "bind": bind source path does not exist: /does/not/exist'),
        ("type=bind,target=/x", 'invalid mount config for type "bind": field Source must not be empty'),
        ("type=volume,source=v1", 'invalid mount config for type "volume": field Target must not be empty'),
        ("type=tmpfs,source=x,target=/x", 'invalid mount config for type "tmpfs": field Source must not be specified'),
        ("type=volume,target=/x,bind-propagation=rshared", 'invalid mount config for type "volume": field BindOptions must not be specified'),
        ("type=bind,source=/,target=/x,volume-nocopy", 'invalid mount config for type "bind": field VolumeOptions must not be specified'),
        ("type=volume,target=/x,tmpfs-size=1m", 'invalid mount config for type "volume": field TmpfsOptions must not be specified'),
        ("type=nfs,target=/x", 'invalid mount config for type "nfs": mount type unknown'),
        ("type=volume,target=/x,colour=red", "unexpected key 'colour' in 'colour=red'"),
        ("type=volume,target", "invalid field 'target' must be a key=value pair"),
        ("type=volume,target=/x,readonly=maybe", "invalid value for readonly: maybe"),
        ("type=tmpfs,target=/x,tmpfs-mode=rwx", "invalid value for tmpfs-mode: rwx"),
        ("type=volume,target=relative", "invalid mount config for type \"volume\": invalid mount path: 'relative' mount path must be absolute"),
    ],
)
def test_mount_errors_are_dockers(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_mount(spec)
    assert str(e.value) == message


def test_tmpfs_and_volumes_from() -> None:
    assert parse_tmpfs("/run:size=1m,mode=1777").options == ["size=1m", "mode=1777"]
    for bad in ("run", "/run:size=lots", "/run:mode=999", "/run:exec=1"):
        with pytest.raises(InvalidArgument):
            parse_tmpfs(bad)
    assert parse_volumes_from("web") == ("web", "")
    assert parse_volumes_from("web:ro") == ("web", "ro")
    with pytest.raises(InvalidArgument, match="invalid mode: rx"):
        parse_volumes_from("web:rx")


def test_one_destination_once(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /x"):
        parse_all(["v1:/x"], [f"type=bind,source={tmp_path},target=/x/"], [])
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /t"):
        parse_all([], [], ["/t", "/t:size=1m"])
    assert [r.destination for r in parse_all(["/a"], ["target=/b"], ["/c"])] == ["/a", "/b", "/c"]


def test_volume_names() -> None:
    for good in ("ab", "a.b-c_d", "0data"):
        assert check_volume_name(good) == good
    for bad in ("a", "-ab", ".ab", "a/b", "a b", "ä1"):
        with pytest.raises(InvalidArgument):
            check_volume_name(bad)


def test_oci_mounts_are_nodev_nosuid_and_in_depth_order() -> None:
    points = [
        MountPoint(type="bind", destination="/a/b", source="/h", rw=False, propagation="rprivate"),
        MountPoint(type="volume", destination="/a", source="/v/_data", name="v"),
        MountPoint(type="tmpfs", destination="/t", options=["size=1m"], rw=False),
        MountPoint(type="volume", destination="/m", name="mem", driver_type="tmpfs", options=["size=2m"]),
    ]
    mounts = user_mounts(points, {"hosts": "/c/hosts"}, readonly_root=False)
    assert [m["destination"] for m in mounts] == ["/a", "/t", "/m", "/a/b", "/etc/hosts"]
    by = {m["destination"]: m for m in mounts}
    assert by["/a"] == {"destination": "/a", "type": "bind", "source": "/v/_data", "options": ["rbind", "rprivate", "nosuid", "nodev", "rw"]}
    assert by["/a/b"]["options"] == ["rbind", "rprivate", "nosuid", "nodev", "ro"]
    assert by["/t"] == {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "size=1m", "ro"]}
    assert by["/m"]["type"] == "tmpfs" and by["/m"]["options"][-1] == "size=2m"
    assert by["/etc/hosts"]["options"] == ["rbind", "rprivate", "nosuid", "nodev"]
    # --privileged: the host's files as they are on the host.
    privileged = {m["destination"]: m for m in user_mounts(points, {"hosts": "/c/hosts"}, readonly_root=False, privileged=True)}
    assert privileged["/a"]["options"] == ["rbind", "rprivate", "rw"] and privileged["/etc/hosts"]["options"] == ["rbind", "rprivate"]
    # The user's mount at /etc/hosts wins: pyc's file is not mounted over it.
    mine = user_mounts([MountPoint(type="bind", destination="/etc/hosts", source="/my/hosts")], {"hosts": "/c/hosts"}, readonly_root=True)
    assert [m["source"] for m in mine] == ["/my/hosts"]
