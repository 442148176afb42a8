"""pyc and podman through one registry, both ways: what pyc pushes (gzip, and zstd), podman pulls
and runs; what podman pushes, pyc pulls and runs; the digests agree."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import pyc
from tests.integration.conftest import insecure
from tests.integration.registries import PASSWORD, USER, Registry, TokenServer

pytestmark = pytest.mark.root

CONTAINERS_CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n'


@pytest.fixture
def podman(reg_env: dict[str, str]) -> Iterator[tuple[list[str], dict[str, str]]]:
    """podman with a store of its own (removed after), reading the test's registries.conf."""
    base = Path(tempfile.mkdtemp(prefix="pyc-test-podman-", dir="/var/tmp"))
    run = Path(tempfile.mkdtemp(prefix="pycp.", dir="/run"))  # podman's runroot path must be short
    (base / "containers.conf").write_text(CONTAINERS_CONF)
    env = {**reg_env, "CONTAINERS_CONF": str(base / "containers.conf")}
    auth = Path(env["REGISTRY_AUTH_FILE"])
    if not auth.exists():
        auth.write_text("{}")  # podman refuses an auth file that is not there
    cmd = ["podman", "--root", str(base / "root"), "--runroot", str(run), "--tmpdir", str(run / "tmp"), "--storage-driver", "overlay"]
    try:
        yield cmd, env
    finally:
        subprocess.run([*cmd, "system", "reset", "-f"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


def _gzip_members(r: Registry, repo: str, tag: str) -> int:
    """How many gzip members the image's last layer is made of, on the registry."""
    req = urllib.request.Request(f"http://{r.host}/v2/{repo}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        layer = json.loads(resp.read())["layers"][-1]["digest"]
    with urllib.request.urlopen(f"http://{r.host}/v2/{repo}/blobs/{layer}", timeout=10) as resp:
        data = resp.read()
    members = 0
    while data:
        d = zlib.decompressobj(31)
        d.decompress(data)
        assert d.eof, "a gzip member ends short"
        data, members = d.unused_data, members + 1
    return members


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_podman_runs_what_pyc_pushed(plain_registry: Registry, conf: Path, reg_env: dict[str, str], podman: tuple[list[str], dict[str, str]], compression: str) -> None:
    r = plain_registry
    insecure(conf, r.host)
    cmd, env = podman
    # 3 MiB of noise: the layer is several of pyc's gzip members (one per MiB), read as one stream.
    made = pyc("run", "--name", "to-podman", "busybox", "sh", "-c", "echo from pyc > /msg && head -c 3145728 /dev/urandom > /big && sha256sum /big > /big.sum", env=reg_env)
    assert made.returncode == 0, made.stderr
    try:
        assert pyc("commit", "-c", "CMD cat /msg && sha256sum -c /big.sum", "to-podman", f"{r.host}/interop/pyc:{compression}", env=reg_env).returncode == 0
    finally:
        pyc("rm", "-f", "to-podman", env=reg_env)
    p = pyc("push", "--compression-format", compression, f"{r.host}/interop/pyc:{compression}", env=reg_env)
    assert p.returncode == 0, p.stderr
    digest = p.stdout.split("digest: ")[1].split()[0]
    if compression == "gzip":
        assert _gzip_members(r, "interop/pyc", compression) > 3
    pulled = subprocess.run([*cmd, "pull", "-q", "--tls-verify=false", f"{r.host}/interop/pyc:{compression}"], env=env, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    run = subprocess.run([*cmd, "run", "--rm", "--network", "none", f"{r.host}/interop/pyc:{compression}"], env=env, capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "from pyc\n/big: OK\n"), run.stderr
    seen = json.loads(subprocess.run([*cmd, "image", "inspect", f"{r.host}/interop/pyc:{compression}"], env=env, capture_output=True, text=True, check=True).stdout)[0]
    assert f"{r.host}/interop/pyc@{digest}" in seen["RepoDigests"]


def test_pyc_runs_what_podman_pushed(plain_registry: Registry, conf: Path, reg_env: dict[str, str], podman: tuple[list[str], dict[str, str]], tmp_path: Path) -> None:
    r = plain_registry
    insecure(conf, r.host)
    cmd, env = podman
    assert pyc("pull", "-q", f"{r.host}/test/busybox:1", env=reg_env).returncode == 0
    subprocess.run([*cmd, "pull", "-q", "--tls-verify=false", f"{r.host}/test/busybox:1"], env=env, check=True, capture_output=True)
    c = subprocess.run([*cmd, "run", "--network", "none", "--name", "from-podman", f"{r.host}/test/busybox:1", "sh", "-c", "echo from podman > /msg"], env=env, capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    subprocess.run([*cmd, "commit", "-q", "--change", "CMD cat /msg", "from-podman", f"{r.host}/interop/podman:1"], env=env, check=True, capture_output=True)
    pushed = subprocess.run([*cmd, "push", "--tls-verify=false", "--digestfile", str(tmp_path / "digest"), f"{r.host}/interop/podman:1"], env=env, capture_output=True, text=True)
    assert pushed.returncode == 0, pushed.stderr
    p = pyc("pull", f"{r.host}/interop/podman:1", env=reg_env)
    assert p.returncode == 0 and p.stdout.splitlines()[0] == f"Digest: {(tmp_path / 'digest').read_text().strip()}", p.stderr
    run = pyc("run", "--rm", f"{r.host}/interop/podman:1", env=reg_env)
    assert (run.returncode, run.stdout) == (0, "from podman\n"), run.stderr


def test_podman_reads_pyc_logins_and_certs(
    token_registry: tuple[Registry, TokenServer], tls_registry: tuple[Registry, Path], conf: Path, reg_env: dict[str, str], podman: tuple[list[str], dict[str, str]]
) -> None:
    r, _ = token_registry
    insecure(conf, r.host)
    cmd, env = podman
    authfile = Path(reg_env["REGISTRY_AUTH_FILE"])
    assert pyc("login", "-u", USER, "--password-stdin", r.host, input=PASSWORD, env=reg_env).returncode == 0
    assert pyc("pull", "-q", f"{r.host}/private/busybox:1", env=reg_env).returncode == 0
    assert pyc("push", f"{r.host}/private/busybox:1", f"{r.host}/private/again:1", env=reg_env).returncode == 0
    pulled = subprocess.run([*cmd, "pull", "-q", "--tls-verify=false", "--authfile", str(authfile), f"{r.host}/private/again:1"], env=env, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    # TLS: pyc trusts the registry through certs.d, podman through --cert-dir, the same files.
    t, certs = tls_registry
    tls_env = {**reg_env, "CONTAINERS_CERTS_D": str(certs)}
    assert pyc("pull", "-q", f"{t.host}/test/busybox:1", env=tls_env).returncode == 0
    assert pyc("push", f"{t.host}/test/busybox:1", f"{t.host}/interop/tls:1", env=tls_env).returncode == 0
    pulled = subprocess.run([*cmd, "pull", "-q", "--cert-dir", str(certs / t.host), f"{t.host}/interop/tls:1"], env=env, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr
    run = subprocess.run([*cmd, "run", "--rm", "--network", "none", f"{t.host}/interop/tls:1", "echo", "ok"], env=env, capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "ok\n"), run.stderr
