"""pyc's documents against docker's own (tests/golden/docker/, captured from Debian's dockerd
20.10 by capture.py there): the JSON keys pyc fills have docker's names, types and places, and
the tables docker's columns. What pyc adds is named here, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from pyc.cli.info import info_document, version_document
from pyc.inspect import event_document
from pyc.results import Component, Event, Feature, SystemInfo, Version

DOCKER = Path(__file__).parent.parent / "golden" / "docker"


def shape(doc: object) -> object:
    """As capture.py keeps docker's documents: keys, with values replaced by their type's name."""
    if isinstance(doc, dict):
        return {k: shape(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [shape(doc[0])] if doc else []
    return type(doc).__name__


def within(ours: object, docker: object, path: str = "") -> None:
    """Every key of ours is docker's, with a value of the same shape."""
    if isinstance(docker, dict):
        assert isinstance(ours, dict), path
        for k, v in ours.items():
            assert k in docker, f"{path}.{k} is not docker's"
            within(v, docker[k], f"{path}.{k}")
    elif isinstance(docker, list):
        assert isinstance(ours, list), path
        if docker and ours:
            within(ours[0], docker[0], path + "[0]")
    else:
        assert ours == docker, f"{path}: {ours} where docker has {docker}"


INFO = SystemInfo(
    containers=3,
    containers_running=1,
    containers_paused=1,
    containers_stopped=1,
    images=2,
    version="0.1.0",
    root="/var/lib/pyc",
    backing_filesystem="ext4",
    store_placement=True,
    overlay_mount="fsconfig",
    cgroup_root="/sys/fs/cgroup",
    cgroup_version=1,
    features=[Feature(name="seccomp", kernel=True, used=False, note="none yet")],
    security_options=["name=cgroupns"],
    kernel_version="6.1.0",
    operating_system="Debian GNU/Linux 12 (bookworm)",
    architecture="x86_64",
    cpus=2,
    memory=1 << 30,
    name="host",
)


def test_info_keys_are_dockers() -> None:
    docker = json.loads((DOCKER / "info.json").read_text())
    doc = info_document(INFO)
    within(shape({k: v for k, v in doc.items() if k != "Features"}), docker)
    # What a user of `docker info --format` reaches for is there.
    for key in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images", "DockerRootDir", "CgroupVersion", "CgroupDriver", "KernelVersion", "NCPU", "MemTotal"):
        assert key in doc


def test_version_keys_are_dockers() -> None:
    docker = json.loads((DOCKER / "version.json").read_text())
    v = Version(version="0.1.0", python_version="3.11.2", os="linux", arch="amd64", kernel_version="6.1.0", components=[Component(name="Engine", version="0.1.0", details={"KernelVersion": "6.1.0"})])
    doc = version_document(v)
    client = doc["Client"]
    assert isinstance(client, dict)
    within(shape({k: v for k, v in client.items() if k != "PythonVersion"}), docker["Client"], "Client")  # pyc's GoVersion
    within(shape(doc["Server"]), docker["Server"], "Server")


def test_event_messages_are_dockers() -> None:
    docker = json.loads((DOCKER / "events.json").read_text())
    cases = [
        Event(type="container", action="die", id="c" * 64, attributes={"exitCode": "0", "image": "busybox", "name": "c1"}, time_nano=5),
        Event(type="container", action="kill", id="c" * 64, attributes={"image": "busybox", "name": "c1", "signal": "15"}, time_nano=5),
        Event(type="image", action="tag", id="sha256:" + "a" * 64, attributes={"name": "busybox:two"}, time_nano=5),
    ]
    for e in cases:
        want = docker[f"{e.type} {e.action}"]
        doc = event_document(e)
        actor = doc["Actor"]
        assert isinstance(actor, dict)
        assert shape({k: v for k, v in doc.items() if k != "Actor"}) == {k: v for k, v in want.items() if k != "Actor"}
        assert sorted(actor["Attributes"]) == want["Actor"]["Attributes"]
        assert list(doc) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time", "timeNano"][: len(doc)] or e.type == "image"
