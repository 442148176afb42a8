"""A pull that goes wrong leaves nothing half-visible: a transfer cut midway is picked up with a
Range request within the pull; one cut for good fails on one line and leaves the store as it
was; a blob whose content is not its digest is refused; a `kill -9` midway leaves only what the
next command collects (and `pyc system df` shows until then); a registry's 503 is retried; two
pulls of images that share layers at once both land; HTTPS_PROXY/HTTP_PROXY and NO_PROXY are
honoured."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc, store_snapshot, tar_bytes
from tests.integration.conftest import insecure, seed
from tests.integration.registries import ConnectProxy, Faulty, Registry, put_image

pytestmark = pytest.mark.root


@pytest.fixture
def faulty(plain_registry: Registry) -> Iterator[Faulty]:
    f = Faulty(plain_registry)
    try:
        yield f
    finally:
        f.stop()


def _blob_gets(f: Faulty) -> list[tuple[str, str | None]]:
    return [(line, rng) for line, rng in f.seen if line.startswith("GET ") and "/blobs/" in line]


def _snapshot(env: dict[str, str]) -> dict[str, tuple[int, int]]:
    s = store_snapshot(Path(env["PYC_ROOT"]))
    s.pop("registries.cache", None)
    return s


def test_a_cut_transfer_resumes_with_a_range_request(faulty: Faulty, conf: Path, reg_env: dict[str, str]) -> None:
    insecure(conf, faulty.host)
    faulty.cut_after, faulty.cuts = 300_000, 1  # the layer (about 1 MB of gzip) is cut once
    name = f"{faulty.host}/test/busybox:1"
    p = pyc("pull", name, env=reg_env)
    assert p.returncode == 0, p.stderr
    ranges = [rng for _, rng in _blob_gets(faulty) if rng]
    assert ranges == ["bytes=300000-"], faulty.seen
    assert pyc("run", "--rm", name, "true", env=reg_env).returncode == 0
    assert os.listdir(Path(reg_env["PYC_ROOT"]) / "tmp") == []


def test_a_transfer_cut_for_good_changes_nothing(faulty: Faulty, plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    insecure(conf, faulty.host, plain_registry.host)
    faulty.cut_after, faulty.cuts = 200_000, -1
    assert pyc("images", env=reg_env).returncode == 0
    before = _snapshot(reg_env)
    p = pyc("pull", f"{faulty.host}/test/busybox:1", env=reg_env)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and "the download stopped: " in lines[0] and "200000 of 1088054 bytes after 5 resumes" in lines[0], p.stderr
    assert len([rng for _, rng in _blob_gets(faulty) if rng]) == 5
    after = _snapshot(reg_env)
    for leftover in ("tmp", "oci", "oci/blobs", "oci/blobs/sha256", "oci/index.json", "oci/oci-layout", "layers", "containers", "names"):
        after.pop(leftover, None)  # the empty layout a first pull makes
    assert after == before
    assert os.listdir(Path(reg_env["PYC_ROOT"]) / "tmp") == [] and os.listdir(Path(reg_env["PYC_ROOT"]) / "layers") == []
    ok = pyc("pull", f"{plain_registry.host}/test/busybox:1", env=reg_env)
    assert ok.returncode == 0, ok.stderr


def test_a_blob_that_is_not_its_digest_is_refused(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    # An uncompressed layer (so that it still unpacks) with one byte of a file changed in the
    # registry's storage: the same size, another digest.
    r = plain_registry
    insecure(conf, r.host)
    manifest = put_image(r.host, "test/plain", "1", [tar_bytes({"etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"})])
    layer = manifest["layers"][0]["digest"]  # type: ignore[index]
    path = r.blob_path(layer)
    original = path.read_bytes()
    data = bytearray(original)
    data[data.index(b"root:x:0:0:")] = ord("R")
    path.write_bytes(bytes(data))
    try:
        assert pyc("images", env=reg_env).returncode == 0
        p = pyc("pull", f"{r.host}/test/plain:1", env=reg_env)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 1 and len(lines) == 1 and f"does not match its digest {layer}" in lines[0], p.stderr
        assert os.listdir(Path(reg_env["PYC_ROOT"]) / "layers") == [] and os.listdir(Path(reg_env["PYC_ROOT"]) / "tmp") == []
        assert pyc("images", "-q", env=reg_env).stdout == ""
    finally:
        path.write_bytes(original)
    ok = pyc("pull", f"{r.host}/test/plain:1", env=reg_env)
    assert ok.returncode == 0, ok.stderr


def test_kill_9_midway_leaves_nothing_half_visible(faulty: Faulty, plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    insecure(conf, faulty.host, plain_registry.host)
    faulty.rate = 100_000  # ten seconds for the layer: time to kill it midway
    root = Path(reg_env["PYC_ROOT"])
    proc = subprocess.Popen([PYC, "pull", f"{faulty.host}/test/busybox:1"], env=reg_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not any((root / "tmp").glob("*/layer-0/*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert any((root / "tmp").glob("*/layer-0/*")), "the pull did not start unpacking"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    # Nothing visible: no image, no layer; what it left is shown as leftovers until collected.
    assert pyc("images", "-q", env=reg_env).stdout == "" and os.listdir(root / "layers") == []
    df = pyc("system", "df", env=reg_env)
    leftovers = next(line for line in df.stdout.splitlines() if line.startswith("Leftovers"))
    assert leftovers.split()[1] != "0B", df.stdout
    faulty.rate = None
    ok = pyc("pull", f"{plain_registry.host}/test/busybox:1", env=reg_env)
    assert ok.returncode == 0, ok.stderr
    assert os.listdir(root / "tmp") == []
    assert pyc("run", "--rm", f"{plain_registry.host}/test/busybox:1", "true", env=reg_env).returncode == 0


def test_a_503_is_retried(faulty: Faulty, conf: Path, reg_env: dict[str, str]) -> None:
    insecure(conf, faulty.host)
    faulty.unavailable = 2
    start = time.monotonic()
    p = pyc("pull", f"{faulty.host}/test/busybox:1", env=reg_env)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - start > 0.8  # the back-off: 0.2 s, then 0.7 s
    faulty.unavailable = 100
    bad = pyc("pull", f"{faulty.host}/test/busybox:2", env=reg_env)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 1 and len(lines) == 1 and "503" in lines[0], bad.stderr


def test_two_pulls_of_images_sharing_layers_at_once(plain_registry: Registry, conf: Path, reg_env: dict[str, str], store_root: Path) -> None:
    r = plain_registry
    insecure(conf, r.host)
    assert pyc("run", "--name", "reg-shared", "busybox", "sh", "-c", "echo mine > /mine").returncode == 0
    try:
        assert pyc("commit", "reg-shared", "pyc-test/shared:1").returncode == 0
    finally:
        pyc("rm", "-f", "reg-shared")
    seed(store_root, "pyc-test/shared:1", f"{r.host}/test/shared:1", "--dest-tls-verify=false")
    pyc("rmi", "pyc-test/shared:1")
    procs = [subprocess.Popen([PYC, "pull", "-q", f"{r.host}/test/{n}:1"], env=reg_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in ("busybox", "shared")]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    root = Path(reg_env["PYC_ROOT"])
    assert len(os.listdir(root / "layers")) == 2 and os.listdir(root / "tmp") == []
    run = pyc("run", "--rm", f"{r.host}/test/shared:1", "cat", "/mine", env=reg_env)
    assert (run.returncode, run.stdout) == (0, "mine\n"), run.stderr
    assert pyc("run", "--rm", f"{r.host}/test/busybox:1", "true", env=reg_env).returncode == 0


def test_proxies(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    r = plain_registry
    insecure(conf, r.host)
    proxy = ConnectProxy()
    try:
        env = {**reg_env, "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url}
        p = pyc("pull", f"{r.host}/test/busybox:1", env=env)
        assert p.returncode == 0, p.stderr
        assert set(proxy.tunnels) == {r.host}
        seen = len(proxy.tunnels)
        p = pyc("pull", f"{r.host}/test/busybox:1", env={**env, "NO_PROXY": "localhost,127.0.0.1"})
        assert p.returncode == 0 and len(proxy.tunnels) == seen, p.stderr
    finally:
        proxy.stop()


def test_a_registry_that_refuses_streamed_uploads_gets_the_blob_whole(faulty: Faulty, conf: Path, reg_env: dict[str, str], store_root: Path) -> None:
    insecure(conf, faulty.host)
    faulty.refuse_streams = True
    tmp = store_root / "tmp"
    before = set(tmp.iterdir()) if tmp.exists() else set()  # the shared store's: other tests' kills leave theirs
    p = pyc("push", "busybox", f"{faulty.host}/whole/busybox:1", env={**reg_env, "PYC_ROOT": str(store_root)})
    assert p.returncode == 0 and "(1 layers sent" in p.stdout, p.stderr
    lines = [line for line, _ in faulty.seen if "/whole/" in line]
    assert any(x.startswith("PATCH ") for x in lines) and any(x.startswith("PUT ") and "/blobs/uploads/" in x for x in lines)
    assert set(tmp.iterdir()) <= before, "the push left its whole-blob file behind"
    # What it got is the image: another store pulls and runs it.
    ok = pyc("pull", f"{faulty.host}/whole/busybox:1", env=reg_env)
    assert ok.returncode == 0, ok.stderr
    assert pyc("run", "--rm", f"{faulty.host}/whole/busybox:1", "true", env=reg_env).returncode == 0


def test_a_push_refused_at_its_manifest_keeps_the_layers_it_sent(faulty: Faulty, conf: Path, reg_env: dict[str, str], store_root: Path) -> None:
    # The layer goes up, the manifest never does: the next push asks for the layer (HEAD)
    # instead of compressing and sending it again.
    insecure(conf, faulty.host)
    env = {**reg_env, "PYC_ROOT": str(store_root)}
    faulty.unavailable = 1000
    p = pyc("push", "busybox", f"{faulty.host}/half/busybox:1", env=env)
    assert p.returncode != 0 and "503" in p.stderr, p.stderr
    assert any(line.startswith("PATCH ") and "/half/" in line for line, _ in faulty.seen)
    faulty.unavailable = 0
    again = pyc("push", "busybox", f"{faulty.host}/half/busybox:1", env=env)
    assert again.returncode == 0 and "(0 layers sent, 1 already there)" in again.stdout, again.stderr
