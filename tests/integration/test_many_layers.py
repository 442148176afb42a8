"""Images of many layers, up to overlayfs' own limit of 500, on both ways of mounting them: the
new mount API (`lowerdir+` one layer at a time, Linux 6.8) and mount(2) as older kernels have it
(PYC_OVERLAY_MOUNT=legacy). Each run checks which way it was mounted, from the container's own
mountinfo: `lowerdir+=N` once per layer, or `lowerdir=N:N:...`."""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import cgroup_dirs, pyc
from tests.integration.many_layers import expected_many, make_archive

import pyc as pyc_api

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

METHODS = ["fsconfig", "legacy"]


def env_of(method: str) -> dict[str, str]:
    """pyc's environment for one way of mounting; the new one needs Linux 6.8."""
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    if method == "fsconfig" and release < (6, 8):
        pytest.skip(f"Linux {os.uname().release} has no lowerdir+ (6.8): pyc mounts the older way there")
    env = {k: v for k, v in os.environ.items() if k != "PYC_OVERLAY_MOUNT"}
    return {**env, "PYC_OVERLAY_MOUNT": "legacy"} if method == "legacy" else env


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    r = pyc(*args, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(autouse=True)
def nothing_left(store_root: Path) -> Iterator[None]:
    """No mount of the store's stays on the host after a test, no cgroup of its containers."""
    yield
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if str(store_root) in line] == []
    assert cgroup_dirs() == []


@pytest.fixture(scope="module")
def image(busybox: str, store_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[int], str]]:
    """`image(n)`: the tag of busybox plus n tiny layers (many_layers.py), loaded once; all of
    them removed at the end, with their layers (other tests expect busybox's alone)."""
    work = tmp_path_factory.mktemp("many")
    layers = set(os.listdir(store_root / "layers"))
    ok("save", busybox, "-o", str(work / "busybox.tar"), "--format", "docker-archive")
    made: list[str] = []

    def load(n: int) -> str:
        tag = f"localhost/many:{n}"
        if tag not in made:
            make_archive(work / "busybox.tar", work / f"{n}.tar", n, tag)
            assert ok("load", "-i", str(work / f"{n}.tar")) == f"Loaded image: {tag}\n"
            (work / f"{n}.tar").unlink()
            made.append(tag)
        return tag

    yield load
    for tag in made:
        ok("rmi", tag)
    assert set(os.listdir(store_root / "layers")) == layers


def root_mount(mountinfo: str) -> str:
    """The container's root mount, its line of /proc/self/mountinfo."""
    line = next(line for line in mountinfo.splitlines() if line.split()[4] == "/")
    assert " - overlay overlay " in line, line
    return line


def lower_names(line: str, method: str) -> list[str]:
    """The lower dirs' names in the root mount's options, asserting the way it was mounted."""
    if method == "legacy":
        assert "lowerdir+=" not in line, line
        return re.findall(r"lowerdir=([^,]*)", line)[0].split(":")
    assert "lowerdir=" not in line, line
    return re.findall(r"lowerdir\+=([^,]*)", line)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [126, 200])
def test_layers_stack_top_most_first(n: int, method: str, image: Callable[[int], str], store_root: Path) -> None:
    script = "cat /many/top; ls /many | wc -l; ls /many; echo --; ls /opq; echo --; cat /proc/self/mountinfo"
    out = ok("run", "--rm", image(n), "sh", "-c", script, env=env_of(method))
    top, count, rest = out.split("\n", 2)
    many, opq, mountinfo = rest.split("--\n")
    # The top-most layer's /many/top wins; a whiteout in layer k hides the file of layer k-3;
    # the opaque dir of layer n/2 hides what layer 1 put in it.
    assert (top, int(count), many.split(), opq.split()) == (str(n), len(expected_many(n)), expected_many(n), ["new"])
    line = root_mount(mountinfo)
    lowers = lower_names(line, method)
    # busybox and n more, each named by a descriptor number; no host path shows in there.
    assert len(lowers) == n + 1 and all(x.isdigit() for x in lowers), line
    assert str(store_root) not in line and line.split()[5].startswith("rw,nodev,"), line


@pytest.mark.parametrize("method", METHODS)
def test_overlayfs_limit_is_500_layers(method: str, image: Callable[[int], str], store_root: Path) -> None:
    """499 layers on busybox's run; one more is refused on one line (docker's 125), and leaves no
    container behind."""
    out = ok("run", "--rm", image(499), "sh", "-c", "cat /many/top; cat /proc/self/mountinfo", env=env_of(method))
    top, mountinfo = out.split("\n", 1)
    assert top == "499" and len(lower_names(root_mount(mountinfo), method)) == 500
    before = sorted(os.listdir(store_root / "containers"))
    r = pyc("run", "--rm", image(500), "true", env=env_of(method))
    assert (r.returncode, r.stdout) == (125, "") and r.stderr == "pyc: invalid config: 501 layers are more than overlayfs stacks (500)\n"
    assert sorted(os.listdir(store_root / "containers")) == before


def test_an_unknown_way_is_refused(store_root: Path) -> None:
    before = sorted(os.listdir(store_root / "containers"))
    r = pyc("run", "--rm", "busybox", "true", env={**os.environ, "PYC_OVERLAY_MOUNT": "new"})
    assert (r.returncode, r.stdout, r.stderr) == (125, "", "pyc: invalid config: PYC_OVERLAY_MOUNT=new: the only value is legacy\n")
    assert sorted(os.listdir(store_root / "containers")) == before


@pytest.mark.parametrize("method", METHODS)
def test_export_merges_200_layers(method: str, image: Callable[[int], str], tmp_path: Path) -> None:
    ok("run", "--name", "many-export", image(200), "sh", "-c", "echo mine > /many/mine; rm /many/f1 /opq/new")
    try:
        ok("export", "many-export", "-o", str(tmp_path / "out.tar"), env=env_of(method))
    finally:
        ok("rm", "many-export")
    with tarfile.open(tmp_path / "out.tar") as t:
        names = t.getnames()
        top = t.extractfile("many/top").read()  # type: ignore[union-attr]
    many = sorted(n.removeprefix("many/") for n in names if n.startswith("many/"))
    assert many == sorted(set(expected_many(200)) - {"f1"} | {"mine"}) and top == b"200\n"
    assert "opq" in names and not [n for n in names if n.startswith("opq/")]


@pytest.mark.parametrize("method", METHODS)
def test_detached_container_of_many_layers(method: str, image: Callable[[int], str]) -> None:
    """A detached container is started by its monitor, which takes the way from pyc's environment."""
    ok("run", "-d", "--name", "many-d", image(126), "sleep", "60", env=env_of(method))
    try:
        assert ok("exec", "many-d", "cat", "/many/top") == "126\n"
        assert len(lower_names(root_mount(ok("exec", "many-d", "cat", "/proc/1/mountinfo")), method)) == 127
    finally:
        ok("rm", "-f", "many-d")


def test_no_layer_stays_open_in_the_container(image: Callable[[int], str], store_root: Path) -> None:
    """The layers' descriptors that named them to the kernel are closed before the command (and
    --init's reaper) runs: neither can reach a host directory through them."""
    for method in METHODS:
        for init in ([], ["--init"]):
            out = ok("run", "--rm", *init, image(126), "sh", "-c", "ls -l /proc/1/fd/ /proc/self/fd/", env=env_of(method))
            assert "/proc/self/fd/:" in out and str(store_root) not in out and "layers" not in out, out


@pytest.fixture(scope="module")
def committed_130(busybox: str, store_root: Path) -> Iterator[str]:
    """busybox plus 130 layers, each a `commit` of a container of the one before that wrote one
    file (through the engine API: the CLI's code path without its start-up, to keep this fast)."""
    layers = set(os.listdir(store_root / "layers"))
    engine = pyc_api.Engine()
    ref = busybox
    try:
        for i in range(1, 131):
            r = engine.run(ref, pyc_api.RunOptions(["sh", "-c", f"echo {i} > /c{i}; echo {i} > /top"]))
            assert r.status == 0, r.stderr
            ref = engine.commit(r.container_id, None, message=f"commit {i}").id
            engine.remove_container(r.container_id)
        engine.tag(ref, "localhost/deep:130")
        yield "localhost/deep:130"
    finally:
        pyc("rmi", "localhost/deep:130")
        pyc("image", "prune", "-f")  # the 129 unnamed images between
    assert set(os.listdir(store_root / "layers")) == layers


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("method", METHODS)
def test_130_commits_run(method: str, committed_130: str) -> None:
    out = ok("run", "--rm", committed_130, "sh", "-c", "cat /top; ls / | grep -c '^c[0-9]'; cat /c1 /c65 /c130", env=env_of(method))
    assert out.split() == ["130", "130", "1", "65", "130"]
    history = ok("history", committed_130).splitlines()
    assert len(history) >= 1 + 131 and "commit 130" in history[1], history[:3]
