"""`pyc push`: to an empty registry (layers compressed on the fly, gzip or zstd), again (nothing
sent), to another repository of the same registry (layers mounted, not sent), an unchanged
pulled image back (the same manifest, no layer sent), and what skopeo and podman make of it."""

from __future__ import annotations

import gzip
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from tests.conftest import pyc
from tests.integration.conftest import insecure
from tests.integration.registries import Registry

pytestmark = pytest.mark.root


def _manifest(r: Registry, repo: str, tag: str) -> dict[str, object]:
    req = urllib.request.Request(f"http://{r.host}/v2/{repo}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, object] = json.loads(resp.read())
    return doc


def _blob(r: Registry, repo: str, digest: str) -> bytes:
    with urllib.request.urlopen(f"http://{r.host}/v2/{repo}/blobs/{digest}", timeout=10) as resp:
        return bytes(resp.read())


def _uploads(r: Registry, since: int) -> list[tuple[str, str]]:
    return [(m, p) for m, p in r.requests()[since:] if m in ("POST", "PATCH", "PUT")]


def test_push_sends_only_what_the_registry_lacks(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    r = plain_registry
    insecure(conf, r.host)
    env = reg_env
    # An image of this store: busybox (made here) with one more layer, committed.
    assert pyc("run", "--name", "push-src", "busybox", "sh", "-c", "echo pushed > /p", env=env).returncode == 0
    try:
        assert pyc("commit", "push-src", f"{r.host}/pushed/app:1", env=env).returncode == 0
    finally:
        pyc("rm", "-f", "push-src", env=env)
    seen = len(r.requests())
    p = pyc("push", f"{r.host}/pushed/app:1", env=env)
    assert p.returncode == 0 and "(2 layers sent, 0 already there)" in p.stdout, p.stderr
    digest = p.stdout.split("digest: ")[1].split()[0]
    # Streamed: one PATCH per layer (chunked), closed by a PUT with the digest.
    patches = [x for x in _uploads(r, seen) if x[0] == "PATCH"]
    assert len(patches) == 2
    m = _manifest(r, "pushed/app", "1")
    layers = m["layers"]
    assert isinstance(layers, list) and [layer["mediaType"] for layer in layers] == ["application/vnd.oci.image.layer.v1.tar+gzip"] * 2
    # What was sent is gzip of the very layer: its uncompressed digest is the config's diff id.
    config = json.loads(_blob(r, "pushed/app", m["config"]["digest"]))  # type: ignore[index]
    import hashlib

    top = gzip.decompress(_blob(r, "pushed/app", layers[1]["digest"]))
    assert "sha256:" + hashlib.sha256(top).hexdigest() == config["rootfs"]["diff_ids"][1]
    # Again: HEADs only, and the same manifest.
    seen = len(r.requests())
    again = pyc("push", f"{r.host}/pushed/app:1", env=env)
    assert again.returncode == 0 and "(0 layers sent, 2 already there)" in again.stdout and digest in again.stdout, again.stderr
    assert [x for x in _uploads(r, seen) if x[0] != "PUT" or "/manifests/" not in x[1]] == []
    # To another repository of the registry: mounted from the first, not sent.
    seen = len(r.requests())
    other = pyc("push", f"{r.host}/pushed/app:1", f"{r.host}/elsewhere/app:2", env=env)
    assert other.returncode == 0 and "(0 layers sent" in other.stdout, other.stderr
    mounts = [x for x in _uploads(r, seen) if "mount=" in x[1]]
    assert mounts and all("from=pushed/app" in x[1] for x in mounts) and not [x for x in _uploads(r, seen) if x[0] == "PATCH"]
    # skopeo and podman read what pyc pushed.
    s = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{r.host}/elsewhere/app:2"], capture_output=True, text=True)
    assert s.returncode == 0 and json.loads(s.stdout)["Digest"] == digest, s.stderr
    # ... and pyc, into another store, runs it.
    fresh = {**env, "PYC_ROOT": env["PYC_ROOT"] + "-fresh"}
    try:
        assert pyc("pull", f"{r.host}/elsewhere/app:2", env=fresh).returncode == 0
        run = pyc("run", "--rm", f"{r.host}/elsewhere/app:2", "cat", "/p", env=fresh)
        assert (run.returncode, run.stdout) == (0, "pushed\n"), run.stderr
    finally:
        subprocess.run(["rm", "-rf", fresh["PYC_ROOT"]], check=False)


def test_an_unchanged_pulled_image_goes_back_as_it_came(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    r = plain_registry
    insecure(conf, r.host)
    pulled = pyc("pull", f"{r.host}/test/busybox:1", env=reg_env)
    assert pulled.returncode == 0, pulled.stderr
    digest = pulled.stdout.splitlines()[0].removeprefix("Digest: ")
    seen = len(r.requests())
    p = pyc("push", f"{r.host}/test/busybox:1", f"{r.host}/copy/busybox:1", env=reg_env)
    assert p.returncode == 0 and f"digest: {digest} (0 layers sent, 1 already there)" in p.stdout, p.stderr
    assert not [x for x in _uploads(r, seen) if x[0] == "PATCH"]


def test_zstd_and_levels(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    r = plain_registry
    insecure(conf, r.host)
    assert pyc("pull", "-q", f"{r.host}/test/busybox:1", env=reg_env).returncode == 0
    assert pyc("tag", f"{r.host}/test/busybox:1", f"{r.host}/z/busybox:1", env=reg_env).returncode == 0
    # Not the form the registry has: compressed anew (this store knows no zstd form of it).
    p = pyc("push", "--compression-format", "zstd", "--compression-level", "19", f"{r.host}/z/busybox:1", f"{r.host}/z/new:1", env=reg_env)
    assert p.returncode == 0, p.stderr
    bad = pyc("push", "--compression-level", "10", f"{r.host}/z/busybox:1", env=reg_env)
    assert bad.returncode == 1 and "--compression-level for gzip is 0 to 9, not 10" in bad.stderr
    unknown = pyc("push", "--compression-format", "xz", f"{r.host}/z/busybox:1", env=reg_env)
    assert unknown.returncode == 1 and "unknown compression format 'xz'" in unknown.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["push", "nope:1", "{host}/x:1"], "no such image: nope:1"),
        (["push", "busybox"], "busybox: name the registry to push to, like localhost:5000/busybox"),
        (["push", "busybox", "{host}/x@sha256:" + "0" * 64], "push to a tag, not a digest"),
        (["push", "busybox", "127.0.0.1:1/x:1"], "cannot reach 127.0.0.1:1"),
    ],
)
def test_push_refusals(plain_registry: Registry, conf: Path, reg_env: dict[str, str], store_root: Path, args: list[str], says: str) -> None:
    insecure(conf, plain_registry.host)
    p = pyc(*[a.format(host=plain_registry.host) for a in args], env={**reg_env, "PYC_ROOT": str(store_root)})  # the session's store, with busybox
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and says.format(host=plain_registry.host) in lines[0], p.stderr
