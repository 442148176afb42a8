"""Delta bundles: `pyc save NEW --delta-from OLD -o upd.pycd` on one store, `pyc load -i upd.pycd`
on another that has OLD, and NEW is there with the same image ID, manifest digest and files.

Small images made here cover the shapes (a layer added on top, files deleted and a directory
replaced, several images and bases, streams, refusals, a kill mid-apply); the slow case is the
real one: Debian minbase with libc6 at two versions, each squashed into one layer."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc, store_snapshot

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYC_ROOT": str(root)}


@pytest.fixture
def target() -> Iterator[Path]:
    """A second, empty store: the machine the bundle goes to."""
    root = Path(tempfile.mkdtemp(prefix="pyc-test-target-", dir="/var/tmp"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _pipe(first: list[str], second: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`first | second`, the second in `env`; fails unless the first succeeds."""
    with subprocess.Popen(first, stdout=subprocess.PIPE) as p:
        r = subprocess.run(second, stdin=p.stdout, env=env, capture_output=True, text=True)
    assert p.returncode == 0
    return r


def _copy_image(ref: str, to: Path) -> None:
    """Give the target store an image of this one (save | load)."""
    r = _pipe([PYC, "save", ref], [PYC, "load", "-q"], _env(to))
    assert r.returncode == 0, r.stderr


def _identity(ref: str, env: dict[str, str] | None = None) -> tuple[str, list[str], str]:
    """(image ID, diff ids, manifest digest) of an image."""
    root = Path((env or os.environ)["PYC_ROOT"])
    index = json.loads((root / "oci" / "index.json").read_text())
    image_id = pyc("image", "inspect", "--format", "{{.Id}}", ref, env=env).stdout.strip()
    names = [e.get("annotations", {}).get("org.opencontainers.image.ref.name", "") for e in index["manifests"]]
    manifests = [e["digest"] for e, n in zip(index["manifests"], names, strict=True) if n == ref or n.endswith("/" + ref)]
    config = json.loads((root / "oci" / "blobs" / "sha256" / image_id.removeprefix("sha256:")).read_text())
    return image_id, config["rootfs"]["diff_ids"], manifests[0]


def _tree(ref: str, env: dict[str, str] | None = None) -> str:
    """A digest of an image's files as `pyc export` writes them (names, types, modes, owners,
    contents), whatever else differs between the two stores."""
    cid = pyc("create", ref, "true", env=env).stdout.strip()
    try:
        out = subprocess.run([PYC, "export", cid], capture_output=True, env=env, check=True).stdout
    finally:
        pyc("rm", cid, env=env)
    import io
    import tarfile

    h = hashlib.sha256()
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        for m in sorted(t.getmembers(), key=lambda m: m.name):
            h.update(f"{m.name} {m.type!r} {m.mode} {m.uid} {m.gid} {m.mtime} {m.linkname}\n".encode())
            if m.isfile():
                f = t.extractfile(m)
                assert f is not None
                h.update(f.read())
    return h.hexdigest()


def _commit(base: str, script: str, ref: str) -> None:
    cid = pyc("run", "-d", base, "sh", "-c", script).stdout.strip()
    assert pyc("wait", cid).stdout.strip() == "0"
    r = pyc("commit", cid, ref)
    assert r.returncode == 0, r.stderr
    pyc("rm", cid)


@pytest.fixture(scope="module")
def images() -> Iterator[None]:
    """old:1 (busybox and a layer of files), new:1 (old:1 plus a layer), new:2 (old:1 with a file
    deleted, a directory replaced by a file, a big file changed in its middle)."""
    _commit("busybox", "mkdir -p /data/dir /data/keep && head -c 300000 /dev/urandom > /data/big && echo a > /data/dir/a && echo k > /data/keep/k", "bundle-old:1")
    _commit("bundle-old:1", "echo new > /data/new", "bundle-new:1")
    _commit("bundle-old:1", "rm /data/keep/k && rm -r /data/dir && echo now-a-file > /data/dir && dd if=/dev/urandom of=/data/big bs=1 count=10 seek=150000 conv=notrunc 2>/dev/null", "bundle-new:2")
    yield
    pyc("rmi", "bundle-new:2", "bundle-new:1", "bundle-old:1")


def _bundle(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "upd.pycd"
    r = pyc("save", *args, "-o", str(out))
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.usefixtures("images")
@pytest.mark.parametrize("new", ["bundle-new:1", "bundle-new:2"])
def test_the_new_image_is_rebuilt_the_same(tmp_path: Path, target: Path, new: str) -> None:
    _copy_image("bundle-old:1", target)
    bundle = _bundle(tmp_path, new, "--delta-from", "bundle-old:1")
    env = _env(target)
    r = pyc("load", "-i", str(bundle), env=env)
    assert r.returncode == 0 and r.stdout == f"Loaded image: {new}\n", r.stderr
    assert _identity(new, env) == _identity(new)
    assert _tree(new, env) == _tree(new)
    assert pyc("run", "--rm", new, "cat", "/data/keep/k" if new.endswith("1") else "/data/dir", env=env).stdout == ("k\n" if new.endswith("1") else "now-a-file\n")


@pytest.mark.usefixtures("images")
def test_a_layer_added_on_top_is_all_the_bundle_carries(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, "bundle-new:1", "--delta-from", "bundle-old:1")
    r = pyc("bundle", "inspect", "--format", "json", str(bundle))
    assert r.returncode == 0, r.stderr
    content = json.loads(r.stdout)
    layers = content["images"][0]["layers"]
    assert [layer["carried"] is None for layer in layers] == [True] * (len(layers) - 1) + [False]
    assert content["size"] == bundle.stat().st_size < 8192
    assert content["digest"].startswith("sha256:") and content["requires"][0].startswith("bundle-old:1 (")


@pytest.mark.usefixtures("images")
def test_several_images_and_bases_and_streams(tmp_path: Path, target: Path) -> None:
    _copy_image("bundle-old:1", target)
    _copy_image("busybox", target)
    r = _pipe([PYC, "save", "bundle-new:1", "bundle-new:2", "--delta-from", "bundle-old:1", "--delta-from", "busybox"], [PYC, "load", "-i", "-"], _env(target))
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == ["Loaded image: bundle-new:1", "Loaded image: bundle-new:2"]
    for new in ("bundle-new:1", "bundle-new:2"):
        assert _identity(new, _env(target)) == _identity(new)


@pytest.mark.usefixtures("images")
def test_applied_twice_it_changes_nothing_the_second_time(tmp_path: Path, target: Path) -> None:
    _copy_image("bundle-old:1", target)
    bundle = _bundle(tmp_path, "bundle-new:2", "--delta-from", "bundle-old:1")
    assert pyc("load", "-i", str(bundle), env=_env(target)).returncode == 0
    before = store_snapshot(target)
    r = pyc("load", "-i", str(bundle), env=_env(target))
    assert r.returncode == 0 and r.stdout == "Loaded image: bundle-new:2\n", r.stderr
    assert store_snapshot(target) == before


@pytest.mark.usefixtures("images")
def test_a_missing_base_is_one_line_and_nothing_is_written(tmp_path: Path, target: Path) -> None:
    _copy_image("busybox", target)
    bundle = _bundle(tmp_path, "bundle-new:1", "--delta-from", "bundle-old:1")
    before = store_snapshot(target)
    r = pyc("load", "-i", str(bundle), env=_env(target))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "bundle-old:1" in r.stderr and "lacks" in r.stderr, r.stderr
    assert store_snapshot(target) == before


@pytest.mark.usefixtures("images")
def test_a_bundle_cut_short_or_corrupted_is_refused_and_nothing_is_written(tmp_path: Path, target: Path) -> None:
    _copy_image("bundle-old:1", target)
    good = _bundle(tmp_path, "bundle-new:2", "--delta-from", "bundle-old:1").read_bytes()
    before = store_snapshot(target)
    bad = tmp_path / "bad.pycd"
    for damaged in (good[: len(good) // 2], good[:-1], good[:100] + bytes([good[100] ^ 1]) + good[101:], good[:-40] + bytes([good[-40] ^ 1]) + good[-39:], good + b"x"):
        bad.write_bytes(damaged)
        r = pyc("load", "-i", str(bad), env=_env(target))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("pyc: bundle: "), r.stderr
        assert store_snapshot(target) == before
        assert pyc("bundle", "inspect", str(bad)).returncode == 1


@pytest.mark.usefixtures("images")
def test_creating_from_an_old_image_the_store_lacks_is_one_line(tmp_path: Path) -> None:
    r = pyc("save", "bundle-new:1", "--delta-from", "nosuch:1", "-o", str(tmp_path / "x.pycd"))
    assert r.returncode == 1 and r.stderr == "pyc: no such image: nosuch:1\n"
    assert not (tmp_path / "x.pycd").exists() and os.listdir(tmp_path) == []
    r = pyc("save", "bundle-new:1", "--delta-from", "busybox", "--format", "oci-archive", "-o", str(tmp_path / "x.pycd"))
    assert r.returncode == 1 and "--format" in r.stderr


@pytest.mark.usefixtures("images")
def test_kill_during_apply_leaves_the_store_as_it_was(tmp_path: Path, target: Path) -> None:
    _copy_image("bundle-old:1", target)
    bundle = _bundle(tmp_path, "bundle-new:2", "--delta-from", "bundle-old:1")
    images_before = pyc("images", "-q", env=_env(target)).stdout
    for delay in (0.05, 0.15, 0.3):
        p = subprocess.Popen([PYC, "load", "-i", str(bundle)], env=_env(target), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if pyc("images", "-q", env=_env(target)).stdout != images_before:
            break  # it finished before the kill: the image is whole (checked below)
    # Whatever the kill left is collected by the next command; the image is there whole or not at all.
    r = pyc("load", "-i", str(bundle), env=_env(target))
    assert r.returncode == 0, r.stderr
    assert _identity("bundle-new:2", _env(target)) == _identity("bundle-new:2")
    assert os.listdir(target / "tmp") == []


@pytest.fixture(scope="module")
def libc_pair() -> Iterator[tuple[str, str]]:
    """old: Debian minbase with the older libc6 the mirror offers, new: with the current one;
    each squashed into one layer (export | import): a rebuilt base, every layer digest differs."""
    madison = subprocess.run(["apt-cache", "madison", "libc6"], capture_output=True, text=True).stdout
    versions = [line.split("|")[1].strip() for line in madison.splitlines() if "|" in line]
    r = pyc("image", "bootstrap", "debian", timeout=900)
    assert r.returncode == 0, r.stderr
    current = pyc("run", "--rm", "debian", "dpkg-query", "-W", "-f", "${Version}", "libc6").stdout.strip()
    older = [v for v in versions if v != current]
    if not older:
        pytest.skip(f"this machine's Debian mirror offers libc6 {current} only: no second version to make the pair of")
    debs = Path(tempfile.mkdtemp(prefix="pyc-debs-", dir="/var/tmp"))
    try:
        r = subprocess.run(["apt-get", "download", "-q", f"libc6={older[0]}", f"libc-bin={older[0]}"], cwd=debs, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        os.chmod(debs, 0o755)
        for name, script, mounts in (("bundle-libc-old:1", "dpkg -i /debs/*.deb", ["-v", f"{debs}:/debs:ro"]), ("bundle-libc-new:1", "true", [])):
            cid = pyc("create", *mounts, "debian", "sh", "-c", script).stdout.strip()
            assert pyc("start", "-a", cid).returncode == 0
            r = _pipe([PYC, "export", cid], [PYC, "import", "-", name])
            assert r.returncode == 0, r.stderr
            pyc("rm", cid)
    finally:
        shutil.rmtree(debs)
    yield "bundle-libc-old:1", "bundle-libc-new:1"
    pyc("rmi", "bundle-libc-old:1", "bundle-libc-new:1")


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the Debian bootstrap and the two images, once per run
def test_a_rebuilt_debian_base_moves_as_a_small_bundle(tmp_path: Path, target: Path, libc_pair: tuple[str, str]) -> None:
    old, new = libc_pair
    _copy_image(old, target)
    bundle = _bundle(tmp_path, new, "--delta-from", old)
    full = tmp_path / "full.tar.zst"
    with subprocess.Popen([PYC, "save", new], stdout=subprocess.PIPE) as save, open(full, "wb") as f:
        assert subprocess.run(["zstd", "-q", "-3"], stdin=save.stdout, stdout=f).returncode == 0
    assert save.returncode == 0
    # The bound: at most 5 % of the full save (about 1.5 % here).
    assert bundle.stat().st_size < full.stat().st_size * 0.05, (bundle.stat().st_size, full.stat().st_size)
    env = _env(target)
    r = pyc("load", "-i", str(bundle), env=env)
    assert r.returncode == 0, r.stderr
    assert _identity(new, env) == _identity(new)
    assert _tree(new, env) == _tree(new)
    assert pyc("run", "--rm", new, "dpkg-query", "-W", "-f", "${Version}", "libc6", env=env).stdout == pyc("run", "--rm", new, "dpkg-query", "-W", "-f", "${Version}", "libc6").stdout
