"""`pyc pull` from a real registry (docker-registry 2.8 on loopback): by tag and by digest, a
re-pull that asks for the manifest only, names as docker shows them, an index of two platforms,
zstd layers, and what it refuses (a missing tag, schema 1, a short name without search
registries, a built-in name), on one line with docker's exit code."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
from tests.conftest import pyc, store_snapshot
from tests.integration.conftest import images_of, insecure, seed
from tests.integration.registries import Registry

pytestmark = pytest.mark.root


def _layer_gets(r: Registry, since: int) -> list[str]:
    return [p for m, p in r.requests()[since:] if m == "GET" and "/blobs/" in p]


def test_pull_by_tag_then_again_asks_for_the_manifest_only(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    r = plain_registry
    insecure(conf, r.host)
    name = f"{r.host}/test/busybox:1"
    p = pyc("pull", name, env=reg_env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("Digest: sha256:") and lines[1] == f"Status: Downloaded newer image for {name}" and lines[-1] == name
    digest = lines[0].removeprefix("Digest: ")
    run = pyc("run", "--rm", name, "sh", "-c", "echo pulled; busybox | head -1", env=reg_env)
    assert run.returncode == 0 and run.stdout.startswith("pulled\nBusyBox"), run.stderr
    assert images_of(reg_env)[0].split()[:3] == [f"{r.host}/test/busybox", "1", digest]
    doc = json.loads(pyc("image", "inspect", name, env=reg_env).stdout)[0]
    assert doc["RepoTags"] == [name] and doc["RepoDigests"] == [f"{r.host}/test/busybox@{digest}"]
    # Again: one HEAD of the manifest (after the ping), nothing else, nothing written.
    before, seen = store_snapshot(Path(reg_env["PYC_ROOT"])), len(r.requests())
    again = pyc("pull", "-q", name, env=reg_env)
    assert (again.returncode, again.stdout) == (0, name + "\n"), again.stderr
    assert r.requests()[seen:] == [("GET", "/v2/"), ("HEAD", "/v2/test/busybox/manifests/1")]
    assert store_snapshot(Path(reg_env["PYC_ROOT"])) == before
    # By digest: the store has it, so the registry is not even asked.
    seen = len(r.requests())
    by_digest = pyc("pull", f"{r.host}/test/busybox@{digest}", env=reg_env)
    assert by_digest.returncode == 0 and "Image is up to date" in by_digest.stdout, by_digest.stderr
    assert r.requests()[seen:] == []


def test_pull_by_digest_into_an_empty_store(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    r = plain_registry
    insecure(conf, r.host)
    digest = pyc("pull", f"{r.host}/test/busybox:1", env=reg_env).stdout.splitlines()[0].removeprefix("Digest: ")
    assert pyc("rmi", f"{r.host}/test/busybox:1", env=reg_env).returncode == 0
    assert pyc("images", "-q", env=reg_env).stdout == ""
    ref = f"{r.host}/test/busybox@{digest}"
    p = pyc("pull", ref, env=reg_env)
    assert p.returncode == 0 and p.stdout.splitlines()[-1] == ref, p.stderr
    # Known by digest only: docker's <none> tag, and not dangling (image prune keeps it).
    assert images_of(reg_env)[0].split()[:3] == [f"{r.host}/test/busybox", "<none>", digest]
    assert pyc("image", "prune", "-f", env=reg_env).returncode == 0
    assert pyc("run", "--rm", ref, "true", env=reg_env).returncode == 0


def test_a_layer_the_store_has_is_not_downloaded(plain_registry: Registry, conf: Path, reg_env: dict[str, str], store_root: Path) -> None:
    # A second image on top of busybox: pulled after busybox, only its own layer travels.
    r = plain_registry
    insecure(conf, r.host)
    assert pyc("pull", "-q", f"{r.host}/test/busybox:1", env=reg_env).returncode == 0
    assert pyc("run", "--name", "reg-layer", "busybox", "sh", "-c", "echo two > /two").returncode == 0
    try:
        assert pyc("commit", "reg-layer", "pyc-test/two:1").returncode == 0
    finally:
        pyc("rm", "-f", "reg-layer")
    seed(store_root, "pyc-test/two:1", f"{r.host}/test/two:1", "--dest-tls-verify=false")
    pyc("rmi", "pyc-test/two:1")
    seen = len(r.requests())
    p = pyc("pull", f"{r.host}/test/two:1", env=reg_env)
    assert p.returncode == 0, p.stderr
    assert len(_layer_gets(r, seen)) == 2  # the config and the new layer
    run = pyc("run", "--rm", f"{r.host}/test/two:1", "cat", "/two", env=reg_env)
    assert (run.returncode, run.stdout) == (0, "two\n"), run.stderr


def test_zstd_layers(plain_registry: Registry, conf: Path, reg_env: dict[str, str], store_root: Path) -> None:
    r = plain_registry
    insecure(conf, r.host)
    seed(store_root, "busybox:latest", f"{r.host}/test/zstd:1", "--dest-tls-verify=false", "--dest-compress-format=zstd")
    p = pyc("pull", f"{r.host}/test/zstd:1", env=reg_env)
    assert p.returncode == 0, p.stderr
    assert pyc("run", "--rm", f"{r.host}/test/zstd:1", "true", env=reg_env).returncode == 0


def _put_manifest(r: Registry, repo: str, ref: str, doc: dict[str, object], media_type: str) -> str:
    data = json.dumps(doc).encode()
    req = urllib.request.Request(f"http://{r.host}/v2/{repo}/manifests/{ref}", data=data, method="PUT", headers={"Content-Type": media_type})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.headers["Docker-Content-Digest"])


def _get(r: Registry, path: str, accept: str = "") -> tuple[bytes, str]:
    req = urllib.request.Request(f"http://{r.host}{path}", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read(), str(resp.headers.get("Docker-Content-Digest", ""))


def test_an_index_of_two_platforms(plain_registry: Registry, conf: Path, reg_env: dict[str, str], store_root: Path) -> None:
    # busybox as linux/amd64 and, with its config saying arm64, as linux/arm64: one index.
    r = plain_registry
    insecure(conf, r.host)
    oci = "application/vnd.oci.image.manifest.v1+json"
    body, amd64 = _get(r, "/v2/test/busybox/manifests/1", oci)
    manifest = json.loads(body)
    config = json.loads(_get(r, f"/v2/test/busybox/blobs/{manifest['config']['digest']}")[0])
    config["architecture"], config["variant"] = "arm64", "v8"
    data = json.dumps(config).encode()
    import hashlib

    cfg_digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"http://{r.host}/v2/test/multi/blobs/uploads/", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        location = resp.headers["Location"]
    url = (location if "://" in location else f"http://{r.host}{location}") + ("&" if "?" in location else "?") + f"digest={cfg_digest.replace(':', '%3A')}"
    urllib.request.urlopen(urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"}), timeout=10).close()
    seed(store_root, "busybox:latest", f"{r.host}/test/multi:amd64", "--dest-tls-verify=false")
    arm = dict(manifest, config={"mediaType": manifest["config"]["mediaType"], "digest": cfg_digest, "size": len(data)})
    # The layer must be in test/multi too: the amd64 copy put it there.
    arm64 = _put_manifest(r, "test/multi", "arm64", arm, oci)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": oci, "digest": arm64, "size": len(json.dumps(arm)), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": oci, "digest": amd64, "size": len(body), "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    }
    index_digest = _put_manifest(r, "test/multi", "both", index, "application/vnd.oci.image.index.v1+json")
    name = f"{r.host}/test/multi:both"
    p = pyc("pull", name, env=reg_env)
    assert p.returncode == 0 and p.stdout.splitlines()[0] == f"Digest: {index_digest}", p.stderr
    doc = json.loads(pyc("image", "inspect", name, env=reg_env).stdout)[0]
    assert (doc["Architecture"], doc["RepoDigests"]) == ("amd64", [f"{r.host}/test/multi@{index_digest}"])
    arm_p = pyc("pull", "--platform", "linux/arm64", f"{r.host}/test/multi:both", env=reg_env)
    assert arm_p.returncode == 0, arm_p.stderr
    assert json.loads(pyc("image", "inspect", name, env=reg_env).stdout)[0]["Architecture"] == "arm64"
    none = pyc("pull", "--platform", "linux/s390x", name, env=reg_env)
    lines = none.stderr.strip().splitlines()
    assert none.returncode == 1 and len(lines) == 1 and "no image for linux/s390x (the index has linux/amd64, linux/arm64/v8)" in lines[0], none.stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["pull", "{host}/test/busybox:nope"], 1, "manifest for {host}/test/busybox:nope not found: manifest unknown"),
        (["pull", "{host}/test/nothing:1"], 1, "manifest for {host}/test/nothing:1 not found"),
        (["pull", "{host}/test/busybox@sha256:" + "0" * 64], 1, "manifest for {host}/test/busybox@sha256:" + "0" * 64 + " not found"),
        (["run", "--rm", "{host}/test/busybox:nope", "true"], 125, "manifest for {host}/test/busybox:nope not found: manifest unknown"),
        (["create", "{host}/test/busybox:nope"], 125, "manifest for {host}/test/busybox:nope not found: manifest unknown"),
        (["run", "--rm", "--pull", "never", "{host}/test/busybox:1", "true"], 125, "no such image: {host}/test/busybox:1 (--pull never)"),
        (["run", "--rm", "--pull", "sometimes", "{host}/test/busybox:1", "true"], 125, "invalid --pull 'sometimes'"),
        (["pull", "shortname"], 1, "shortname is a short name and no unqualified-search-registries are set in"),
        (["pull", "busybox"], 1, "busybox is a built-in image, made on this machine"),
        (["pull", "{host}/Bad/Name"], 1, "invalid reference format"),
        (["pull", "127.0.0.1:1/test/busybox:1"], 1, "cannot reach 127.0.0.1:1"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(plain_registry: Registry, conf: Path, reg_env: dict[str, str], args: list[str], code: int, says: str) -> None:
    r = plain_registry
    insecure(conf, r.host)
    assert pyc("images", env=reg_env).returncode == 0  # the store's layout
    before = store_snapshot(Path(reg_env["PYC_ROOT"]))
    p = pyc(*[a.format(host=r.host) for a in args], env=reg_env)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == code and len(lines) == 1 and lines[0].startswith("pyc: ") and says.format(host=r.host) in lines[0], p.stderr
    after = store_snapshot(Path(reg_env["PYC_ROOT"]))
    after.pop("registries.cache", None)
    assert after == before
    tmp = Path(reg_env["PYC_ROOT"]) / "tmp"
    assert not tmp.exists() or os.listdir(tmp) == []


def test_short_names_through_search_registries_and_aliases(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    r = plain_registry
    insecure(conf, r.host)
    conf.write_text(f'unqualified-search-registries = ["127.0.0.1:1", "{r.host}"]\n[aliases]\n"bb" = "{r.host}/test/busybox"\n' + conf.read_text())
    # The first search registry is down: the second has it.
    p = pyc("pull", "test/busybox:1", env=reg_env)
    assert p.returncode == 0 and p.stdout.splitlines()[-1] == f"{r.host}/test/busybox:1", p.stderr
    a = pyc("pull", "-q", "bb:1", env=reg_env)
    assert (a.returncode, a.stdout) == (0, f"{r.host}/test/busybox:1\n"), a.stderr
    # run finds a short name's image in the store without asking a registry.
    seen = len(r.requests())
    assert pyc("run", "--rm", "test/busybox:1", "true", env=reg_env).returncode == 0
    assert r.requests()[seen:] == []
    missing = pyc("pull", "test/nothing:1", env=reg_env)
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 1 and len(lines) == 1 and "not pulled from any of 2 places" in lines[0], missing.stderr


def test_a_blocked_registry_is_refused(plain_registry: Registry, conf: Path, reg_env: dict[str, str]) -> None:
    conf.write_text(f'[[registry]]\nlocation = "{plain_registry.host}"\nblocked = true\n')
    p = pyc("pull", f"{plain_registry.host}/test/busybox:1", env=reg_env)
    assert p.returncode == 1 and f"registry {plain_registry.host} is blocked in {conf}" in p.stderr, p.stderr


def test_a_mirror_is_tried_first(plain_registry: Registry, servers: object, conf: Path, reg_env: dict[str, str]) -> None:
    # The registry's location is a port nothing listens on; its mirror has the image.
    conf.write_text(f'[[registry]]\nprefix = "example.invalid"\nlocation = "127.0.0.1:1"\n[[registry.mirror]]\nlocation = "{plain_registry.host}"\ninsecure = true\n')
    p = pyc("pull", "example.invalid/test/busybox:1", env=reg_env)
    assert p.returncode == 0 and p.stdout.splitlines()[-1] == "example.invalid/test/busybox:1", p.stderr


def test_pull_and_push_show_bars_on_a_terminal_only(plain_registry: Registry, conf: Path, reg_env: dict[str, str], store_root: Path) -> None:
    from tests.integration.test_progress import on_a_tty

    r = plain_registry
    insecure(conf, r.host)
    name = f"{r.host}/test/busybox:1"
    code, stdout, shown = on_a_tty("pull", "-q", name, env=reg_env)
    assert (code, stdout) == (0, name + "\n"), shown
    assert re.search(r"[0-9a-f]{12}: Downloading .* 1\.1/1\.1 MB", shown), shown
    # The session store's busybox, made there: its layer is compressed and sent.
    code, stdout, shown = on_a_tty("push", "-q", "--compression-format", "zstd", "busybox", f"{r.host}/bars/busybox:1", env={**reg_env, "PYC_ROOT": str(store_root)})
    assert (code, stdout) == (0, ""), shown
    assert re.search(r"[0-9a-f]{12}: Pushing .* 2\.1/2\.1 MB", shown), shown
    # Without a terminal: nothing on stderr.
    assert pyc("rmi", name, env=reg_env).returncode == 0
    p = pyc("pull", "-q", name, env=reg_env)
    assert (p.returncode, p.stderr) == (0, "")
