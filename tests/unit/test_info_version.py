"""pyc --version, pyc version and pyc info on an empty store: docker's JSON keys (tests/golden/
docker/), the counts, the parts' versions, and the shell completion click gives."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.conftest import pyc

import pyc_core

DOCKER = Path(__file__).parent.parent / "golden" / "docker"


def test_version(tmp_path: Path) -> None:
    env = {**os.environ, "PYC_ROOT": str(tmp_path)}
    r = pyc("--version", env=env)
    assert re.fullmatch(r"pyc version \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout
    assert pyc("-v", env=env).stdout == r.stdout
    doc = json.loads(pyc("version", "--format", "json", env=env).stdout)
    assert doc["Client"]["Version"] == r.stdout.split()[2] == doc["Server"]["Version"]
    parts = {c["Name"]: c["Version"] for c in doc["Server"]["Components"]}
    assert parts == {"Engine": doc["Server"]["Version"], "pyc-core": pyc_core.VERSION, "pyc-monitor": pyc_core.VERSION, "pyc-init": pyc_core.VERSION}
    assert pyc("version", "--format", "{{.Server.KernelVersion}}", env=env).stdout == os.uname().release + "\n"
    text = pyc("version", env=env).stdout
    assert text.startswith("Client:\n Version:") and "\nServer:\n Engine:\n  Version:" in text and " pyc-monitor:\n" in text


def test_info_on_an_empty_store(tmp_path: Path) -> None:
    env = {**os.environ, "PYC_ROOT": str(tmp_path)}
    r = pyc("info", "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    docker = json.loads((DOCKER / "info.json").read_text())
    assert set(doc) - {"Features"} <= set(docker)
    assert (doc["Containers"], doc["ContainersRunning"], doc["ContainersPaused"], doc["ContainersStopped"], doc["Images"]) == (0, 0, 0, 0, 0)
    assert doc["DockerRootDir"] == str(tmp_path) and doc["CgroupVersion"] in ("1", "2") and doc["NCPU"] == len(os.sched_getaffinity(0))
    assert doc["KernelVersion"] == os.uname().release and doc["MemTotal"] > 0
    assert {"seccomp", "user namespaces", "overlay volatile", "idmapped mounts", "cgroup freezer"} <= set(doc["Features"])
    assert pyc("system", "info", "--format", "{{.Images}} {{.Driver}}", env=env).stdout == "0 overlay\n"
    text = pyc("info", env=env).stdout
    assert text.startswith("Server:\n Containers: 0\n  Running: 0\n  Paused: 0\n  Stopped: 0\n Images: 0\n")
    assert f" Pyc Root Dir: {tmp_path}\n" in text and " Cgroup Driver: cgroupfs\n" in text
    r = pyc("info", "--format", "{{.Nope.Deeper}}", env=env)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1


def test_shell_completion(tmp_path: Path) -> None:
    from pyc import Engine
    from pyc.records import HostConfig

    engine = Engine(str(tmp_path))  # a container record is all completion reads
    engine.containers.create(engine.containers.new("complete-me", "busybox", "sha256:" + "0" * 64, [], HostConfig()), {})
    env = {**os.environ, "PYC_ROOT": str(tmp_path), "_PYC_COMPLETE": "bash_complete"}
    assert "plain,pause" in pyc(env={**env, "COMP_WORDS": "pyc pa", "COMP_CWORD": "1"}).stdout.splitlines()
    assert pyc(env={**env, "COMP_WORDS": "pyc stop comp", "COMP_CWORD": "2"}).stdout.splitlines() == ["plain,complete-me"]
    assert "plain,--filter" in pyc(env={**env, "COMP_WORDS": "pyc events --f", "COMP_CWORD": "2"}).stdout.splitlines()
    for shell in ("bash", "zsh", "fish"):
        r = pyc("completion", shell)
        assert r.returncode == 0 and "_PYC_COMPLETE" in r.stdout, (shell, r.stderr)
    r = pyc("completion", "tcsh")
    assert r.returncode == 1 and "bash, zsh or fish" in r.stderr
