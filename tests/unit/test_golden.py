"""Golden msgpack files of every structure that crosses to the Rust side (tests/golden/): what
pyc sends is made here by the code that builds it, from fixed inputs, and must equal the file
byte for byte; the Rust tests (rust/core/tests/golden.rs, rust/monitor/src/config.rs) decode
the same files and check their fields. The monitor's state file goes the other way: Rust writes
it (rust/monitor/src/state.rs), and here it is read.

A change to one of these structures is a change to both sides: rewrite the files with
PYC_GOLDEN_UPDATE=1 (here, and `cargo test` for the state file) and check the Rust side reads
the new fields."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyc.containers import Container
from pyc.engine import exec_config, run_config, seccomp_config
from pyc.lifecycle import monitor_config
from pyc.records import CgroupPlace, ContainerRecord, ContainerState, CopyConfig, HostConfig, MountPoint, SeccompConfig
from pyc.runtime.exec import ExecOptions, exec_process
from pyc.runtime.spec import RunOptions, build
from pyc_core import packb, unpackb

GOLDEN = Path(__file__).parent.parent / "golden"
CID = "0123456789ab" + "cd" * 26
UPDATE = os.environ.get("PYC_GOLDEN_UPDATE") == "1"


def check(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(data)
    assert path.read_bytes() == data, f"{name} changed: if on purpose, PYC_GOLDEN_UPDATE=1 and check the Rust side"


def container() -> Container:
    record = ContainerRecord(id=CID, name="golden", created="2026-12-01T00:00:00Z", image="busybox", image_id="sha256:" + "11" * 32, host_config=HostConfig(cgroup_parent="pyc"))
    return Container(record, f"/var/lib/pyc/containers/{CID}")


OPTS = RunOptions(
    ["sh", "-c", "echo hi"],
    env=["A=1"],
    workdir="/tmp",
    user="1000:1000",
    volumes=["/:/host:ro"],
    tmpfs=["/run:size=1m"],
    memory="64m",
    pids_limit="100",
    init=True,
    tty=True,
    restart="on-failure:3",
    log_opts=["max-size=1m", "max-file=3"],
    ulimits=["nofile=1024:2048"],
    sysctls=["net.ipv4.ip_forward=1"],
    oom_score_adj=100,
    group_add=["5"],
    device_cgroup_rules=["b 7:* r"],
)
PYC_INIT = "/usr/local/libexec/pyc-init"
LOWERS = ["/var/lib/pyc/layers/" + "22" * 32, "/var/lib/pyc/layers/" + "33" * 32]
# What OPTS' -v and --tmpfs resolve to (pyc.volumes.plan), and a named volume.
POINTS = [
    MountPoint(type="bind", destination="/host", source="/", mode="ro", rw=False, propagation="rprivate"),
    MountPoint(type="tmpfs", destination="/run", options=["size=1m"]),
    MountPoint(type="volume", destination="/data", source="/var/lib/pyc/volumes/data/_data", name="data"),
]


def run() -> dict[str, object]:
    c = container()
    c.record.mounts = POINTS  # its volume's mount and unmount events
    etc = {name: c.path(name) for name in ("hostname", "hosts", "resolv.conf")}
    spec = build({"Env": ["PATH=/bin"], "Cmd": ["sh"], "StopSignal": "SIGQUIT"}, OPTS, "/var/lib/pyc/rootfs", etc, LOWERS, "golden", POINTS)
    return run_config(c, spec, LOWERS, OPTS, PYC_INIT, seccomp_config(OPTS, "/var/lib/pyc/seccomp"), "/var/lib/pyc/events.log").to_dict()


def test_run_config() -> None:
    check("run-config.msgpack", packb(run()))


def test_exec_config() -> None:
    spec = run()["spec"]
    assert isinstance(spec, dict)
    process = exec_process(spec["process"], ExecOptions(["ls", "-l"], env=["B=2"], workdir="/", user="0", tty=True), [], "", [])
    check("exec-config.msgpack", packb(exec_config(container(), process, ExecOptions(["ls"], detach=True), PYC_INIT, SeccompConfig(cache="/var/lib/pyc/seccomp")).to_dict()))


def test_monitor_config() -> None:
    c = container()
    from pyc.records import RunConfig

    config = monitor_config(c, OPTS, RunConfig.from_dict(run()))
    check("monitor-config.msgpack", packb(config.to_dict()))


def test_copy_configs() -> None:
    running = CopyConfig(view={"running": {"cgroup": CgroupPlace(root="/sys/fs/cgroup", path=f"pyc/{CID}").to_dict()}}, container_path="/etc/.", host_path="/tmp/out", into=False, follow=True)
    check("copy-config-running.msgpack", packb(running.to_dict()))
    stopped = {
        "lower": LOWERS,
        "upper": f"/var/lib/pyc/containers/{CID}/upper",
        "work": f"/var/lib/pyc/containers/{CID}/work",
        "mountpoint": "/var/lib/pyc/tmp/1-cp-0",
        "readonly": True,
        "mounts": [{"source": "/var/lib/pyc/volumes/data/_data", "destination": "/data", "readonly": False}, {"destination": "/run", "tmpfs": True, "readonly": True}],
    }
    check("copy-config-stopped.msgpack", packb(CopyConfig(view={"stopped": stopped}, container_path="/data", into=True, archive=True).to_dict()))


def test_update_resources() -> None:
    resources = RunOptions(memory="64m", memory_swap="128m", memory_reservation="32m", cpus="1", cpu_shares="512", cpuset_cpus="0", pids_limit="100", blkio_weight="500").resources()
    check("update-resources.msgpack", packb(resources))


def test_monitor_state_is_read() -> None:
    if not (GOLDEN / "monitor-state.msgpack").exists():
        pytest.fail("monitor-state.msgpack is written by the monitor's test: cargo test -p pyc-monitor with PYC_GOLDEN_UPDATE=1")
    data = unpackb((GOLDEN / "monitor-state.msgpack").read_bytes())
    assert ContainerState.from_monitor(data) == ContainerState(
        status="exited",
        pid=4242,
        exit_code=137,
        oom_killed=True,
        started_at="2026-12-01T00:00:01.000000000Z",
        finished_at="2026-12-01T00:00:02.000000000Z",
        restart_count=2,
        monitor_pid=4241,
        monitor_start="123456",
        error="",
    )
    assert set(data) == set(ContainerState._MONITOR_KEYS), "the monitor writes a field pyc does not read, or the other way"
