"""A pulled layer is kept as the registry sent it (store/kept.py): its compressed blob, not a tar
as well. The store's layout stays one skopeo reads; a push to another registry sends that blob
as it is; what needs the tar (a docker-archive save, a build, a commit, a delta bundle, a push in
another format) makes it from the blob, checked against the diff id; and a kept blob that no
longer matches its digest is refused, not passed on."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from tests.conftest import pyc
from tests.integration.conftest import insecure
from tests.integration.registries import Registry, Servers, put_blob, put_manifest

pytestmark = pytest.mark.root

TAR_SIZE = "io.pyc.layer.tar.size"


def _registry_manifest(r: Registry, repo: str, tag: str) -> dict[str, object]:
    req = urllib.request.Request(f"http://{r.host}/v2/{repo}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc: dict[str, object] = json.loads(resp.read())
    return doc


def _store_manifest(root: Path, name: str) -> dict[str, object]:
    index = json.loads((root / "oci" / "index.json").read_text())
    digest = next(e["digest"] for e in index["manifests"] if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == name)
    doc: dict[str, object] = json.loads((root / "oci" / "blobs" / "sha256" / digest[7:]).read_bytes())
    return doc


def _blob(root: Path, digest: str) -> Path:
    return root / "oci" / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _pulled(r: Registry, conf: Path, env: dict[str, str]) -> tuple[str, dict[str, object], str]:
    """busybox pulled from `r`: (its name, the registry's layer descriptor, the diff id)."""
    insecure(conf, r.host)
    name = f"{r.host}/test/busybox:1"
    p = pyc("pull", "-q", name, env=env)
    assert p.returncode == 0, p.stderr
    layers = _registry_manifest(r, "test/busybox", "1")["layers"]
    assert isinstance(layers, list) and len(layers) == 1
    diff_id = json.loads(pyc("image", "inspect", name, env=env).stdout)[0]["RootFS"]["Layers"][0]
    return name, layers[0], diff_id


def test_a_pulled_layer_is_kept_as_the_registry_sent_it(plain_registry: Registry, servers: Servers, conf: Path, reg_env: dict[str, str], tmp_path: Path) -> None:
    root = Path(reg_env["PYC_ROOT"])
    name, desc, diff_id = _pulled(plain_registry, conf, reg_env)
    sent = _blob(root, str(desc["digest"]))
    tar = gzip.decompress(sent.read_bytes())
    assert "sha256:" + hashlib.sha256(tar).hexdigest() == diff_id
    # The compressed blob, and no tar beside it.
    assert sent.stat().st_size == desc["size"] and not _blob(root, diff_id).exists()
    layer = _store_manifest(root, name)["layers"][0]  # type: ignore[index]
    assert layer == {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": desc["digest"], "size": desc["size"], "annotations": {TAR_SIZE: str(len(tar))}}
    # Sizes are the tar's, as docker shows them.
    assert json.loads(pyc("image", "inspect", name, env=reg_env).stdout)[0]["Size"] == len(tar)
    # The layout is still one skopeo reads.
    out = tmp_path / "copy"
    s = subprocess.run(["skopeo", "copy", "-q", f"oci:{root}/oci:{name}", f"dir:{out}"], capture_output=True, text=True)
    assert s.returncode == 0, s.stderr
    assert (out / str(desc["digest"])[7:]).read_bytes() == sent.read_bytes()
    # To another registry: the blob goes as it is (the same digest, not compressed again).
    other = servers.registry("kept-other")
    insecure(conf, other.host)
    p = pyc("push", name, f"{other.host}/copy/busybox:1", env=reg_env)
    assert p.returncode == 0 and "(1 layers sent, 0 already there)" in p.stdout, p.stderr
    pushed = _registry_manifest(other, "copy/busybox", "1")["layers"]
    assert isinstance(pushed, list) and pushed[0]["digest"] == desc["digest"]
    # A level asked for is a new compression: another registry gets a blob made now.
    third = servers.registry("kept-third")
    insecure(conf, third.host)
    p = pyc("push", "--compression-level", "1", name, f"{third.host}/copy/busybox:1", env=reg_env)
    assert p.returncode == 0, p.stderr
    again = _registry_manifest(third, "copy/busybox", "1")["layers"]
    assert isinstance(again, list) and again[0]["digest"] != desc["digest"]
    blob = third.blob_path(str(again[0]["digest"])).read_bytes()
    assert "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() == diff_id


def test_what_reads_tars_makes_them_from_a_kept_layer(plain_registry: Registry, conf: Path, reg_env: dict[str, str], other_store: dict[str, str], tmp_path: Path) -> None:
    root = Path(reg_env["PYC_ROOT"])
    name, desc, diff_id = _pulled(plain_registry, conf, reg_env)
    # A docker archive holds the layer as a tar, which another store loads and runs.
    archive = tmp_path / "busybox.tar"
    assert pyc("save", "-o", str(archive), name, env=reg_env).returncode == 0
    listing = subprocess.run(["tar", "-tf", str(archive)], capture_output=True, text=True).stdout.split()
    assert f"{diff_id[7:]}/layer.tar" in listing
    # A build on it names the base layer by the blob kept, and runs.
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {name}\nRUN echo built > /built\n")
    b = pyc("build", "-q", "-t", "pyc-test/on-pulled:1", str(ctx), env=reg_env)
    assert b.returncode == 0, b.stderr
    built = _store_manifest(root, "pyc-test/on-pulled:1")["layers"]
    assert isinstance(built, list) and built[0]["digest"] == desc["digest"] and len(built) == 2
    run = pyc("run", "--rm", "pyc-test/on-pulled:1", "cat", "/built", env=reg_env)
    assert (run.returncode, run.stdout) == (0, "built\n"), run.stderr
    # A commit of a container of it, likewise.
    assert pyc("run", "--name", "kept-commit", name, "sh", "-c", "echo c > /c", env=reg_env).returncode == 0
    try:
        assert pyc("commit", "kept-commit", "pyc-test/committed:1", env=reg_env).returncode == 0
    finally:
        pyc("rm", "-f", "kept-commit", env=reg_env)
    assert _store_manifest(root, "pyc-test/committed:1")["layers"][0]["digest"] == desc["digest"]  # type: ignore[index]
    # A delta bundle of the build against the pulled image, applied to a store that pulled
    # busybox too (so keeps it compressed only): it runs there, and that store now has the tar
    # its new image names.
    bundle = tmp_path / "upd.pycd"
    c = pyc("save", "pyc-test/on-pulled:1", "--delta-from", name, "-o", str(bundle), env=reg_env)
    assert c.returncode == 0, c.stderr
    there = {**reg_env, "PYC_ROOT": other_store["PYC_ROOT"]}
    assert pyc("pull", "-q", name, env=there).returncode == 0
    loaded = pyc("load", "-i", str(bundle), env=there)
    assert loaded.returncode == 0, loaded.stderr
    run = pyc("run", "--rm", "pyc-test/on-pulled:1", "cat", "/built", env=there)
    assert (run.returncode, run.stdout) == (0, "built\n"), run.stderr
    assert _blob(Path(other_store["PYC_ROOT"]), diff_id).exists()
    assert pyc("image", "inspect", "pyc-test/on-pulled:1", env=there).returncode == 0


def test_a_kept_blob_that_changed_is_refused(plain_registry: Registry, servers: Servers, conf: Path, reg_env: dict[str, str], tmp_path: Path) -> None:
    root = Path(reg_env["PYC_ROOT"])
    name, desc, _ = _pulled(plain_registry, conf, reg_env)
    # Another gzip of the same tar: a valid stream, but not the bytes the digest names.
    sent = _blob(root, str(desc["digest"]))
    sent.write_bytes(gzip.compress(gzip.decompress(sent.read_bytes()), compresslevel=1))
    other = servers.registry("kept-changed")
    insecure(conf, other.host)
    p = pyc("push", name, f"{other.host}/changed/busybox:1", env=reg_env)
    assert p.returncode == 1 and "does not match its digest" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    # The tar made from it is checked against the diff id: a changed tar is refused too.
    sent.write_bytes(gzip.compress(b"\0" * 1024))
    s = pyc("save", "-o", str(tmp_path / "x.tar"), name, env=reg_env)
    assert s.returncode == 1 and "does not match the diff id" in s.stderr, s.stderr
    assert not (tmp_path / "x.tar").exists()


def test_a_layer_is_named_by_what_it_is_not_by_its_label(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    # A registry's manifest that calls a gzip layer a plain tar: the store's manifest says what
    # the bytes are, so that skopeo, umoci and pyc's own push read them right.
    r = plain_registry
    insecure(conf, r.host)
    doc = _registry_manifest(r, "test/busybox", "1")
    config, layers = doc["config"], doc["layers"]
    assert isinstance(config, dict) and isinstance(layers, list)
    for d in (config, layers[0]):
        with urllib.request.urlopen(f"http://{r.host}/v2/test/busybox/blobs/{d['digest']}", timeout=10) as resp:
            assert put_blob(r.host, "test/mislabeled", resp.read()) == d["digest"]
    layers[0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
    put_manifest(r.host, "test/mislabeled", "1", {**doc, "mediaType": "application/vnd.oci.image.manifest.v1+json"})
    name = f"{r.host}/test/mislabeled:1"
    p = pyc("pull", "-q", name, env=reg_env)
    assert p.returncode == 0, p.stderr
    layer = _store_manifest(Path(reg_env["PYC_ROOT"]), name)["layers"][0]  # type: ignore[index]
    assert (layer["digest"], layer["mediaType"]) == (layers[0]["digest"], "application/vnd.oci.image.layer.v1.tar+gzip")
    assert pyc("run", "--rm", name, "true", env=reg_env).returncode == 0
