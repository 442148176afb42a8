"""Reaching registries: TLS with a CA of the test's (certs.d, --cert-dir, --tls-verify=false), basic
auth (htpasswd, bcrypt) and the bearer-token flow (a token server of the test's), `pyc login` and
`pyc logout` writing the auth file podman and skopeo read, and what a wrong password or a missing
login says: one line, exit 1 (125 for run)."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from tests.conftest import pyc
from tests.integration.conftest import insecure
from tests.integration.registries import PASSWORD, USER, Registry, TokenServer

pytestmark = pytest.mark.root


def _one_line(p: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    lines = p.stderr.strip().splitlines()
    assert p.returncode == code and len(lines) == 1 and lines[0].startswith("pyc: ") and says in lines[0], (p.returncode, p.stderr)


def test_tls_with_the_registry_ca_in_certs_d(tls_registry: tuple[Registry, Path], reg_env: dict[str, str]) -> None:
    r, certs = tls_registry
    name = f"{r.host}/test/busybox:1"
    # No CA for it: refused, the certificate named.
    _one_line(pyc("pull", name, env=reg_env), 1, "invalid peer certificate")
    # certs.d (CONTAINERS_CERTS_D stands for /etc/containers/certs.d and the others).
    env = {**reg_env, "CONTAINERS_CERTS_D": str(certs)}
    p = pyc("pull", name, env=env)
    assert p.returncode == 0, p.stderr
    assert pyc("run", "--rm", name, "true", env=env).returncode == 0
    # --cert-dir names the directory of the files itself, as podman's does.
    assert pyc("rmi", name, env=reg_env).returncode == 0
    p = pyc("pull", "--cert-dir", str(certs / r.host), name, env=reg_env)
    assert p.returncode == 0, p.stderr
    # --tls-verify=false: any certificate; --tls-verify=true: a registry registries.conf calls
    # insecure is verified all the same.
    assert pyc("rmi", name, env=reg_env).returncode == 0
    assert pyc("pull", "--tls-verify=false", name, env=reg_env).returncode == 0
    insecure(Path(reg_env["CONTAINERS_REGISTRIES_CONF"]), r.host)
    _one_line(pyc("pull", "--tls-verify=true", name, env=reg_env), 1, "invalid peer certificate")


def test_a_client_certificate_from_certs_d(mtls_registry: tuple[Registry, Path, Path], reg_env: dict[str, str]) -> None:
    r, ca_only, with_client = mtls_registry
    name = f"{r.host}/test/busybox:1"
    refused = pyc("pull", name, env={**reg_env, "CONTAINERS_CERTS_D": str(ca_only)})
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1 and f"cannot reach {r.host}" in refused.stderr, refused.stderr
    p = pyc("pull", name, env={**reg_env, "CONTAINERS_CERTS_D": str(with_client)})
    assert p.returncode == 0, p.stderr
    assert pyc("run", "--rm", name, "true", env=reg_env).returncode == 0


def test_basic_auth(basic_registry: Registry, conf: Path, reg_env: dict[str, str], tmp_path: Path) -> None:
    r = basic_registry
    insecure(conf, r.host)
    name = f"{r.host}/test/busybox:1"
    _one_line(pyc("pull", name, env=reg_env), 1, f"{r.host}: authentication required (pyc login {r.host})")
    _one_line(pyc("run", "--rm", name, "true", env=reg_env), 125, "authentication required")
    _one_line(pyc("pull", "--creds", f"{USER}:wrong", name, env=reg_env), 1, f"{r.host}: wrong username or password")
    assert pyc("pull", "--creds", f"{USER}:{PASSWORD}", name, env=reg_env).returncode == 0
    # login keeps them where podman and skopeo read them; logout forgets them.
    bad = pyc("login", "-u", USER, "--password-stdin", r.host, input="nope\n", env=reg_env)
    _one_line(bad, 1, f"login to {r.host}: wrong username or password")
    authfile = Path(reg_env["REGISTRY_AUTH_FILE"])
    assert not authfile.exists()
    ok = pyc("login", "-u", USER, "--password-stdin", r.host, input=PASSWORD + "\n", env=reg_env)
    assert (ok.returncode, ok.stdout) == (0, "Login Succeeded\n"), ok.stderr
    saved = json.loads(authfile.read_text())["auths"][r.host]["auth"]
    assert base64.b64decode(saved).decode() == f"{USER}:{PASSWORD}"
    s = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--authfile", str(authfile), f"docker://{name}"], capture_output=True, text=True)
    assert s.returncode == 0, s.stderr
    assert pyc("rmi", name, env=reg_env).returncode == 0
    assert pyc("pull", name, env=reg_env).returncode == 0
    out = pyc("logout", r.host, env=reg_env)
    assert (out.returncode, out.stdout) == (0, f"Removing login credentials for {r.host}\n")
    assert pyc("logout", r.host, env=reg_env).stdout == f"Not logged in to {r.host}\n"
    assert pyc("rmi", name, env=reg_env).returncode == 0
    _one_line(pyc("pull", name, env=reg_env), 1, "authentication required")


def test_token_auth(token_registry: tuple[Registry, TokenServer], conf: Path, reg_env: dict[str, str]) -> None:
    r, tokens = token_registry
    insecure(conf, r.host)
    # Anyone may pull public/: an anonymous token is enough.
    p = pyc("pull", f"{r.host}/public/busybox:1", env=reg_env)
    assert p.returncode == 0, p.stderr
    assert any("scope=repository%3Apublic%2Fbusybox%3Apull" in q and user is None for q, user in tokens.requests)
    # private/ needs the user: without a login the registry refuses the anonymous token.
    _one_line(pyc("pull", f"{r.host}/private/busybox:1", env=reg_env), 1, "authentication required")
    _one_line(pyc("login", "-u", USER, "--password-stdin", r.host, input="wrong", env=reg_env), 1, "wrong username or password")
    ok = pyc("login", "-u", USER, "-p", PASSWORD, r.host, env=reg_env)
    assert ok.returncode == 0 and "WARNING! Using --password via the CLI is insecure" in ok.stderr, ok.stderr
    p = pyc("pull", f"{r.host}/private/busybox:1", env=reg_env)
    assert p.returncode == 0, p.stderr
    assert ("service=pyc-test-registry&scope=repository%3Aprivate%2Fbusybox%3Apull", USER) in tokens.requests
    assert pyc("run", "--rm", f"{r.host}/private/busybox:1", "true", env=reg_env).returncode == 0


def test_login_needs_a_password_from_somewhere(plain_registry: Registry, reg_env: dict[str, str]) -> None:
    _one_line(pyc("login", "-u", USER, plain_registry.host, env=reg_env), 1, "no credentials")
    _one_line(pyc("login", "--password-stdin", plain_registry.host, input="x", env=reg_env), 1, "--password-stdin needs the username")
    _one_line(pyc("logout", env=reg_env), 1, "name the registry to log out of, or --all")
