"""The registries the registry tests pull from and push to, one of each kind per session (see
registries.py), and the images put there with skopeo from the session's store."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import pyc
from tests.integration.registries import Registry, Servers, TokenServer, env_with, htpasswd_file, make_ca, make_cert


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def seed(store_root: Path, image: str, dest: str, *flags: str) -> None:
    """Copy an image of the session's store to a registry with skopeo (as another tool would)."""
    r = subprocess.run(["skopeo", "copy", "-q", *flags, f"oci:{store_root}/oci:{image}", f"docker://{dest}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="session")
def plain_registry(servers: Servers, store_root: Path, busybox: str) -> Registry:
    """Plain HTTP; holds test/busybox:1 (gzip, as skopeo compresses)."""
    r = servers.registry("plain")
    seed(store_root, "busybox:latest", f"{r.host}/test/busybox:1", "--dest-tls-verify=false")
    return r


@pytest.fixture(scope="session")
def tls_registry(servers: Servers, store_root: Path, busybox: str) -> tuple[Registry, Path]:
    """TLS with a certificate of a CA the test made; (registry, a certs.d dir that trusts it)."""
    d = servers.dir / "tls-certs"
    d.mkdir()
    ca = make_ca(d)
    r = servers.registry("tls", tls=make_cert(d, "registry", ca))
    certs = servers.dir / "certs.d"
    (certs / r.host).mkdir(parents=True)
    (certs / r.host / "ca.crt").write_bytes(ca[0].read_bytes())
    seed(store_root, "busybox:latest", f"{r.host}/test/busybox:1", f"--dest-cert-dir={certs / r.host}")
    return r, certs


@pytest.fixture(scope="session")
def mtls_registry(servers: Servers, store_root: Path, busybox: str) -> tuple[Registry, Path, Path]:
    """TLS that wants a client certificate of the test's CA; (registry, a certs.d dir with
    the CA only, one with the CA and the client certificate)."""
    d = servers.dir / "mtls-certs"
    d.mkdir()
    ca = make_ca(d)
    r = servers.registry("mtls", tls=make_cert(d, "registry", ca), client_ca=ca[0])
    client = make_cert(d, "client", ca, san="DNS:pyc-test-client", usage="clientAuth")
    dirs = []
    for name, with_client in (("mtls-ca-only", False), ("mtls-client", True)):
        certs = servers.dir / name
        (certs / r.host).mkdir(parents=True)
        (certs / r.host / "ca.crt").write_bytes(ca[0].read_bytes())
        if with_client:
            (certs / r.host / "client.cert").write_bytes(client[0].read_bytes())
            (certs / r.host / "client.key").write_bytes(client[1].read_bytes())
        dirs.append(certs)
    seed(store_root, "busybox:latest", f"{r.host}/test/busybox:1", f"--dest-cert-dir={dirs[1] / r.host}")
    return r, dirs[0], dirs[1]


@pytest.fixture(scope="session")
def basic_registry(servers: Servers, store_root: Path, busybox: str) -> Registry:
    """htpasswd (bcrypt) basic auth, plain HTTP; holds test/busybox:1."""
    d = servers.dir / "basic-auth"
    d.mkdir()
    r = servers.registry("basic", htpasswd=htpasswd_file(d))
    from tests.integration.registries import PASSWORD, USER

    seed(store_root, "busybox:latest", f"{r.host}/test/busybox:1", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}")
    return r


@pytest.fixture(scope="session")
def token_registry(servers: Servers, store_root: Path, busybox: str) -> tuple[Registry, TokenServer]:
    """Bearer tokens from a token server of the test's; holds public/busybox:1 (anyone may
    pull) and private/busybox:1 (USER only)."""
    t = servers.token_server()
    r = servers.registry("token", token=t)
    from tests.integration.registries import PASSWORD, USER

    for repo in ("public", "private"):
        seed(store_root, "busybox:latest", f"{r.host}/{repo}/busybox:1", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}")
    return r, t


@pytest.fixture
def conf(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """An empty registries.conf of the test's own (tests write to it)."""
    path = tmp_path / "registries.conf"
    path.write_text("")
    return path


def insecure(conf: Path, *hosts: str) -> None:
    conf.write_text(conf.read_text() + "".join(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n' for h in hosts))


@pytest.fixture
def reg_env(other_store: dict[str, str], conf: Path, tmp_path: Path) -> dict[str, str]:
    """A pyc with a store of its own, reading the test's registries.conf and auth file only."""
    return {**env_with(conf, tmp_path / "auth.json"), "PYC_ROOT": other_store["PYC_ROOT"]}


def images_of(env: dict[str, str]) -> list[str]:
    r = pyc("images", "--digests", env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[1:]
