"""Typed records: their checks, a store written by the previous pyc (records as free-form dicts
with docker's names) still loading, and reading a container's state writing nothing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import pyc
from pyc.containers import Container
from pyc.inspect import document
from pyc.record import BadRecord
from pyc.records import ContainerConfig, ContainerRecord, ContainerState, HostConfig, LogOptions, Restart
from pyc_core import packb, unpackb

# A row's record as the pyc before typed records wrote it (a detached container, exited).
OLD_ROW = {
    "Id": "ab" * 32,
    "Name": "web",
    "Created": "2026-11-30T10:00:00.000000000Z",
    "Image": "busybox",
    "ImageId": "sha256:" + "cd" * 32,
    "Layers": ["sha256:" + "ef" * 32],
    "Config": {"Cmd": ["httpd", "-f"], "Env": ["PATH=/bin"], "WorkingDir": "/", "Hostname": "abababababab", "StopSignal": "SIGQUIT"},
    "HostConfig": {
        "AutoRemove": False,
        "Init": True,
        "ReadonlyRootfs": False,
        "Binds": ["/data:/data:ro"],
        "Tmpfs": ["/run"],
        "CgroupParent": "pyc-test",
        "Memory": 67108864,
        "MemorySwap": 0,
        "MemoryReservation": 0,
        "NanoCpus": 1500000000,
        "CpuShares": 0,
        "CpusetCpus": "",
        "PidsLimit": 100,
        "BlkioWeight": 0,
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
        "LogConfig": {"Type": "k8s-file", "Config": {"max-size": "1048576", "max-file": "2"}},
    },
    "CgroupRoot": "/sys/fs/cgroup",
    "State": {"Status": "exited", "ExitCode": 3, "OOMKilled": False, "StartedAt": "2026-11-30T10:00:01Z", "FinishedAt": "2026-11-30T10:00:02Z", "MonitorPid": None, "MonitorStart": None},
}
# The oldest rows: before CgroupRoot and CgroupParent, a foreground container.
OLDEST_ROW = {
    **{"Id": "12" * 32, "Name": "old", "Created": "2026-01-01T00:00:00Z", "Image": "busybox", "ImageId": "sha256:" + "34" * 32, "Layers": []},
    **{"Config": {"Cmd": ["true"]}, "HostConfig": {}, "State": {"Status": "created", "ExitCode": 0, "OOMKilled": False}},
}


def test_old_rows_load() -> None:
    r = ContainerRecord.load(OLD_ROW)
    assert (r.id, r.name, r.image, r.layers) == ("ab" * 32, "web", "busybox", ["sha256:" + "ef" * 32])
    assert r.config == ContainerConfig(cmd=["httpd", "-f"], env=["PATH=/bin"], working_dir="/", hostname="abababababab", stop_signal="SIGQUIT")
    h = r.host_config
    assert (h.init, h.binds, h.cgroup_parent, h.memory, h.nano_cpus, h.pids_limit) == (True, ["/data:/data:ro"], "pyc-test", 64 << 20, 1_500_000_000, 100)
    assert (h.restart, h.log) == (Restart(policy="on-failure", max=3), LogOptions(max_size=1 << 20, max_files=2))
    assert r.state == ContainerState(status="exited", exit_code=3, started_at="2026-11-30T10:00:01Z", finished_at="2026-11-30T10:00:02Z")
    oldest = ContainerRecord.load(OLDEST_ROW)
    assert (oldest.cgroup_root, oldest.host_config.cgroup_parent, oldest.host_config.log, oldest.config.cmd) == ("/sys/fs/cgroup", "pyc", None, ["true"])


def test_new_rows_round_trip() -> None:
    r = ContainerRecord.load(OLD_ROW)
    assert ContainerRecord.load(unpackb(packb(r.to_dict()))) == r


def test_inspect_shape_is_made_at_the_edge() -> None:
    doc = document(ContainerRecord.load(OLD_ROW), ContainerState(status="exited", exit_code=3), "/x/ctr.log")
    for key in ("Id", "Name", "Created", "Image", "Config", "HostConfig", "State", "Mounts", "LogPath", "RestartCount"):
        assert key in doc
    host = doc["HostConfig"]
    assert isinstance(host, dict) and host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3} and host["Memory"] == 64 << 20
    assert doc["State"] == {**doc["State"], "Status": "exited", "Running": False, "ExitCode": 3, "StartedAt": "0001-01-01T00:00:00Z"}  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "bad",
    [
        {**OLD_ROW, "Name": 3},
        {**OLD_ROW, "Layers": "sha256:x"},
        {"id": "x"},  # no name, created, image
        {**ContainerRecord.load(OLD_ROW).to_dict(), "state": {"exit_code": "3"}},
        {**ContainerRecord.load(OLD_ROW).to_dict(), "host_config": {"restart": {"max": True}}},  # a bool is no int
        [1, 2],
    ],
)
def test_records_are_checked(bad: object) -> None:
    with pytest.raises(BadRecord):
        ContainerRecord.load(bad)


def test_defaults_are_not_shared() -> None:
    a, b = HostConfig(), HostConfig()
    a.binds.append("/x:/x")
    a.restart.policy = "always"
    assert (b.binds, b.restart.policy, HostConfig().restart.policy) == ([], "no", "no")
    with pytest.raises(TypeError):
        HostConfig(bogus=1)  # type: ignore[call-arg]


def _rows(root: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(root / "pyc.db")
    try:
        return sorted(db.execute("SELECT * FROM containers").fetchall())
    finally:
        db.close()


def test_a_store_of_the_previous_pyc_still_loads(tmp_path: Path) -> None:
    """pyc.db with rows in the old shape: listed, inspected, renamed (and then in the new shape)."""
    pyc.Engine(str(tmp_path)).list_containers()  # makes pyc.db
    db = sqlite3.connect(tmp_path / "pyc.db", isolation_level=None)
    for row in (OLD_ROW, OLDEST_ROW):
        db.execute("INSERT INTO containers VALUES (?, ?, ?, ?)", (row["Id"], row["Name"], row["Created"], packb(row)))
    db.close()
    engine = pyc.Engine(str(tmp_path))
    assert sorted(c.name for c in engine.list_containers(all=True)) == ["old", "web"]
    web = engine.container("web")
    assert (web.status, web.state.exit_code, web.record.host_config.restart.max) == ("exited", 3, 3)
    engine.containers.rename(web, "web2")
    stored = unpackb(dict((r[0], r[3]) for r in _rows(tmp_path))["ab" * 32])
    assert stored["name"] == "web2" and "Id" not in stored
    assert engine.container("web2").record.config.stop_signal == "SIGQUIT"


def test_reading_a_state_never_writes(tmp_path: Path) -> None:
    """A detached container whose monitor recorded its end and went: reading its state (status,
    inspect, ps) leaves pyc.db as it was; the next write to it keeps the monitor's word."""
    engine = pyc.Engine(str(tmp_path))
    c = engine.containers.new("ended", "busybox", "sha256:" + "0" * 64, [], HostConfig())
    engine.containers.create(c, {})
    ended = {"StartedAt": "2026-11-30T10:00:01Z", "FinishedAt": "2026-11-30T10:00:02Z"}
    monitor = {"Status": "exited", "Pid": 0, "ExitCode": 7, "OOMKilled": False, **ended, "RestartCount": 2, "MonitorPid": 2**22 + 1, "MonitorStart": "1", "Error": ""}
    with open(os.path.join(c.dir, "state.msgpack"), "wb") as f:
        f.write(packb(monitor))
    before = _rows(tmp_path)
    again = engine.container("ended")
    assert (again.status, again.state.exit_code, again.state.restart_count) == ("exited", 7, 2)
    assert [x.state.exit_code for x in engine.list_containers(all=True)] == [7]
    assert _rows(tmp_path) == before
    engine.containers.save(again)  # a write folds it in: it outlives the monitor's files
    os.unlink(os.path.join(c.dir, "state.msgpack"))
    assert engine.container("ended").state.exit_code == 7


def test_a_holder_killed_while_running_reads_as_killed(tmp_path: Path) -> None:
    engine = pyc.Engine(str(tmp_path))
    c = engine.containers.new("orphan", "busybox", "sha256:" + "0" * 64, [], HostConfig())
    c.record.state = ContainerState(status="running", pid=5, monitor_pid=2**22 + 1, monitor_start="1")
    engine.containers.create(c, {})
    st = Container(engine.containers.reload(c), c.dir).current_state()
    assert (st.status, st.exit_code, st.pid) == ("exited", 137, 0)
