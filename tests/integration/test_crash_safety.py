"""kill -9 of pyc load, import and commit at many moments leaves a consistent store: `pyc images`
works, the index names only complete images whose blobs match their digests, and the next
command (or image prune) collects what the killed one left. Two loads of images sharing layers,
at once, both succeed and the shared layer is stored once."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc

from pyc.paths import Paths
from pyc.store.images import ImageStore

pytestmark = [pytest.mark.usefixtures("busybox")]

# Moments to kill at, as fractions of how long the whole command takes here.
FRACTIONS = [0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95, 1.1]


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    """An empty store of its own; its containers removed after."""
    root = tempfile.mkdtemp(prefix="pyc-test-crash-", dir="/var/tmp")
    e = {**os.environ, "PYC_ROOT": root}
    try:
        yield e
    finally:
        for cid in pyc("ps", "-aq", env=e).stdout.split():
            pyc("rm", "-f", cid, env=e)
        shutil.rmtree(root, ignore_errors=True)


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def assert_consistent(root: Path, env: dict[str, str]) -> None:
    r = pyc("images", env=env)
    assert r.returncode == 0, r.stderr
    index = root / "oci" / "index.json"
    if not index.exists():
        return
    blobs = root / "oci" / "blobs" / "sha256"
    for entry in json.loads(index.read_text())["manifests"]:
        manifest_path = blobs / entry["digest"].removeprefix("sha256:")
        assert _sha(manifest_path) == entry["digest"]
        manifest = json.loads(manifest_path.read_text())
        for d in [manifest["config"], *manifest["layers"]]:
            assert _sha(blobs / d["digest"].removeprefix("sha256:")) == d["digest"]


def assert_no_leftovers(root: Path) -> None:
    assert os.listdir(root / "tmp") == []
    for d in (root / "oci", root / "oci" / "blobs" / "sha256", root):
        assert [n for n in os.listdir(d) if ".tmp-" in n] == []


def _random_layer(n: int, files: int, size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for i in range(files):
            info = tarfile.TarInfo(f"layer{n}/f{i}")
            info.size = size
            t.addfile(info, io.BytesIO(os.urandom(size)))
    return buf.getvalue()


def _docker_archive(path: Path, name: str, layers: list[bytes]) -> None:
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    members = {f"{d[7:]}/layer.tar": data for d, data in zip(diff_ids, layers, strict=False)}
    members["config.json"] = config
    members["manifest.json"] = json.dumps([{"Config": "config.json", "RepoTags": [name], "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids]}]).encode()
    with tarfile.open(path, "w") as t:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def busybox_layer(store_root: Path) -> bytes:
    img = ImageStore(Paths(str(store_root))).lookup("busybox")
    return (store_root / "oci" / "blobs" / "sha256" / img.layers[0]["digest"][7:]).read_bytes()


def layer_dir(root: Path, ref: str, n: int) -> Path:
    """The unpacked dir of the image's layer n (0: the bottom-most)."""
    return Path(Paths(str(root)).layer(ImageStore(Paths(str(root))).lookup(ref).chain_ids[n]))


def _entries(path: Path) -> int:
    try:
        return len(os.listdir(path))
    except FileNotFoundError:
        return 0


def _kill_at_moments(cmd: list[str], env: dict[str, str], root: Path, stdin: Path | None = None) -> None:
    """Run `cmd` again and again, SIGKILLed at a different moment each time: when its temp dir
    appears, when a layer dir or a blob lands in the store, when the index changes, and at
    FRACTIONS of the time a whole run takes. After each kill the store must be consistent."""

    def start() -> subprocess.Popen[bytes]:
        f = open(stdin, "rb") if stdin else None
        try:
            return subprocess.Popen([PYC, *cmd], env=env, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        finally:
            if f:
                f.close()

    def kill_when(seen: Callable[[], bool]) -> None:
        p = start()
        try:
            while p.poll() is None and not seen():
                time.sleep(0.0005)
        finally:
            p.send_signal(signal.SIGKILL)
            p.communicate(timeout=60)
        assert_consistent(root, env)

    def whole_run() -> float:
        t0 = time.monotonic()
        p = start()
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        took = time.monotonic() - t0
        assert pyc("image", "prune", "-af", env=env).returncode == 0
        return took

    whole = min(whole_run(), whole_run())
    tmp, layers, blobs, index = root / "tmp", root / "layers", root / "oci" / "blobs" / "sha256", root / "oci" / "index.json"
    base_layers, base_blobs = _entries(layers), _entries(blobs)
    base_index = index.read_bytes() if index.exists() else b""
    kill_when(lambda: _entries(tmp) > 0)
    kill_when(lambda: _entries(layers) > base_layers)
    kill_when(lambda: _entries(blobs) > base_blobs)
    kill_when(lambda: index.exists() and index.read_bytes() != base_index)
    for fraction in FRACTIONS:
        deadline = time.monotonic() + whole * fraction
        kill_when(lambda deadline=deadline: time.monotonic() >= deadline)


def test_kill_load_at_any_moment(env: dict[str, str], tmp_path: Path, busybox_layer: bytes) -> None:
    root = Path(env["PYC_ROOT"])
    archive = tmp_path / "big.tar"
    _docker_archive(archive, "big:1", [busybox_layer, *(_random_layer(n, 40, 256 * 1024) for n in range(3))])
    _kill_at_moments(["load", "-i", str(archive)], env, root)
    # The next load works and collects what the killed ones left; its layers are whole.
    r = pyc("load", "-i", str(archive), env=env)
    assert (r.returncode, r.stdout) == (0, "Loaded image: big:1\n"), r.stderr
    assert_no_leftovers(root)
    assert len(os.listdir(layer_dir(root, "big:1", 3) / "layer2")) == 40
    # Blobs and layers an unfinished load put in the store are collected with the rest.
    assert pyc("image", "prune", "-af", env=env).returncode == 0
    assert os.listdir(root / "oci" / "blobs" / "sha256") == [] and os.listdir(root / "layers") == []


def test_kill_import_at_any_moment(env: dict[str, str], tmp_path: Path) -> None:
    root = Path(env["PYC_ROOT"])
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(_random_layer(0, 160, 256 * 1024))
    _kill_at_moments(["import", "-", "imported:1"], env, root, stdin=rootfs)
    r = pyc("import", str(rootfs), "imported:1", env=env)
    assert r.returncode == 0, r.stderr
    assert_no_leftovers(root)
    assert pyc("image", "prune", "-af", env=env).returncode == 0
    assert os.listdir(root / "oci" / "blobs" / "sha256") == [] and os.listdir(root / "layers") == []


def _small_files_layer(dirs: int, files: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for d in range(dirs):
            for f in range(files):
                data = os.urandom(200)
                info = tarfile.TarInfo(f"d{d}/f{f}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _unpacked_so_far(root: Path) -> int:
    n = 0
    for tmp in (root / "tmp").glob("*/layer-*"):
        for d in tmp.glob("*"):
            n += _entries(d)
    return n


def test_kill_an_import_of_many_small_files_mid_unpack(env: dict[str, str], tmp_path: Path) -> None:
    """The unpack writes a layer's files on several threads: a kill -9 while they write leaves
    nothing any command shows, and the next command collects it."""
    root = Path(env["PYC_ROOT"])
    rootfs = tmp_path / "small.tar"
    rootfs.write_bytes(_small_files_layer(20, 1000))
    for _ in range(3):
        p = subprocess.Popen([PYC, "import", str(rootfs), "small:1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while p.poll() is None and _unpacked_so_far(root) < 500:
                time.sleep(0.0005)
        finally:
            p.send_signal(signal.SIGKILL)
            p.communicate(timeout=60)
        assert p.returncode == -signal.SIGKILL, "the import ended before it could be killed mid-unpack"
        assert_consistent(root, env)
        assert pyc("images", "-q", env=env).stdout == ""
        assert _entries(root / "layers") == 0
    r = pyc("import", str(rootfs), "small:1", env=env)
    assert r.returncode == 0, r.stderr
    assert_no_leftovers(root)
    [layer] = os.listdir(root / "layers")
    assert [_entries(root / "layers" / layer / f"d{d}") for d in range(20)] == [1000] * 20


@pytest.mark.root
def test_kill_commit_at_any_moment(env: dict[str, str], tmp_path: Path, store_root: Path) -> None:
    root = Path(env["PYC_ROOT"])
    assert pyc("save", "busybox", "-o", str(tmp_path / "bb.tar")).returncode == 0
    assert pyc("load", "-i", str(tmp_path / "bb.tar"), env=env).returncode == 0
    r = pyc("run", "--name", "big", "busybox", "sh", "-c", "for i in $(seq 40); do head -c 1000000 /dev/urandom > /f$i; done", env=env)
    assert r.returncode == 0, r.stderr
    _kill_at_moments(["commit", "big", "committed:1"], env, root)
    r = pyc("commit", "big", "committed:1", env=env)
    assert r.returncode == 0, r.stderr
    assert_no_leftovers(root)
    r = pyc("run", "--rm", "committed:1", "sh", "-c", "ls / | grep -c '^f'", env=env)
    assert (r.returncode, r.stdout.strip()) == (0, "40"), r.stderr
    assert pyc("rm", "big", env=env).returncode == 0
    assert pyc("image", "prune", "-af", env=env).returncode == 0
    assert os.listdir(root / "oci" / "blobs" / "sha256") == [] and os.listdir(root / "layers") == []


def test_two_loads_sharing_layers_at_once(env: dict[str, str], tmp_path: Path, busybox_layer: bytes) -> None:
    root = Path(env["PYC_ROOT"])
    shared = [busybox_layer, _random_layer(0, 40, 256 * 1024)]
    _docker_archive(tmp_path / "a.tar", "a:1", [*shared, _random_layer(1, 4, 1024)])
    _docker_archive(tmp_path / "b.tar", "b:1", [*shared, _random_layer(2, 4, 1024)])
    procs = [subprocess.Popen([PYC, "load", "-i", str(tmp_path / f"{n}.tar")], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in "ab"]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [(p.returncode, o) for p, (o, _) in zip(procs, outs, strict=False)] == [(0, "Loaded image: a:1\n"), (0, "Loaded image: b:1\n")], outs
    assert_consistent(root, env)
    assert_no_leftovers(root)
    # busybox, the shared layer, and one top layer each: 4 layer dirs, 4 layer blobs.
    assert len(os.listdir(root / "layers")) == 4
    for n in "ab":
        assert len(os.listdir(layer_dir(root, f"{n}:1", 1) / "layer0")) == 40
