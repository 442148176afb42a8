"""Real registries for the tests: Debian's docker-registry (distribution 2.8) on a free loopback
port with a temp storage dir, plain HTTP, TLS with a CA the test makes (openssl), htpasswd basic
auth (bcrypt, htpasswd -B), or bearer tokens from a token server run here (RS256 JWTs signed with
openssl, their certificate in the registry's rootcertbundle). Every server started is stopped by
its PID, and its files removed, even when a test fails. Nothing but loopback is contacted."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

USER, PASSWORD = "pyc-user", "s3cret-pass"
ISSUER, SERVICE = "pyc-test-issuer", "pyc-test-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=input, capture_output=True, check=True).stdout


def make_ca(d: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA: (cert, key)."""
    cert, key = d / f"{name}.crt", d / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=pyc test {name}", "-addext", "basicConstraints=critical,CA:TRUE")
    return cert, key


def make_cert(d: Path, name: str, ca: tuple[Path, Path], san: str = "IP:127.0.0.1,DNS:localhost", usage: str = "serverAuth") -> tuple[Path, Path]:
    """A certificate signed by `ca`: (cert, key)."""
    cert, key, csr, ext = d / f"{name}.crt", d / f"{name}.key", d / f"{name}.csr", d / f"{name}.ext"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return cert, key


class Registry:
    """A docker-registry process; `host` is 127.0.0.1:PORT."""

    def __init__(self, root: Path, tls: tuple[Path, Path] | None = None, htpasswd: Path | None = None, token: TokenServer | None = None, client_ca: Path | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = root / "storage"
        self.storage.mkdir(parents=True)
        lines = [
            "version: 0.1",
            "log: {level: error, formatter: text, accesslog: {disabled: false}}",
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}}}",
            "http:",
            f"  addr: {self.host}",
        ]
        if tls:
            lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
            if client_ca:
                lines += ["    clientcas:", f"      - {client_ca}"]
        if htpasswd:
            lines += ["auth:", f"  htpasswd: {{realm: pyc-test, path: {htpasswd}}}"]
        if token:
            lines += ["auth:", f"  token: {{realm: {token.url}/token, service: {SERVICE}, issuer: {ISSUER}, rootcertbundle: {token.cert}}}"]
        config = root / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        self.log = open(root / "registry.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.scheme = "https" if tls else "http"
        _wait_port(self.port, self.proc, root / "registry.log")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request served so far, from its access log."""
        import re

        self.log.flush()
        text = (self.root / "registry.log").read_text(errors="replace")
        return [(m[0], m[1]) for m in re.findall(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP/1\.1"', text)]

    def blob_path(self, digest: str) -> Path:
        h = digest.removeprefix("sha256:")
        return self.storage / "docker/registry/v2/blobs/sha256" / h[:2] / h / "data"


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after 20 s")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """distribution's token flow: GET /token?service=&scope= with basic credentials (USER,
    PASSWORD), or none for anonymous pulls of `public/` repositories; answers an RS256 JWT
    whose x5c names a certificate the registry trusts (its rootcertbundle)."""

    def __init__(self, d: Path) -> None:
        self.cert, self.key = d / "token.crt", d / "token.key"
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key), "-out", str(self.cert), "-days", "2", "-subj", "/CN=pyc test token issuer")
        der = _openssl("x509", "-in", str(self.cert), "-outform", "DER")
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[tuple[str, str | None]] = []  # (query, user)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = urlsplit(self.path).query
                user = server.user(self.headers.get("Authorization", ""))
                server.requests.append((query, user))
                if user == "":  # wrong credentials
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": server.token(parse_qs(query).get("scope", []), user)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def user(header: str) -> str | None:
        """The user of a Basic header; None for none; "" for wrong credentials."""
        if not header:
            return None
        if not header.startswith("Basic "):
            return ""
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return ""
        return user if (user, password) == (USER, PASSWORD) else ""

    def token(self, scopes: list[str], user: str | None) -> str:
        access = []
        for scope in " ".join(scopes).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = actions.split(",") if user else [a for a in actions.split(",") if a == "pull" and name.startswith("public/")]
            if kind == "repository" and allowed:
                access.append({"type": "repository", "name": name, "actions": allowed})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + 600, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = _openssl("dgst", "-sha256", "-sign", str(self.key), input=signing.encode())
        return f"{signing}.{_b64url(signature)}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class Servers:
    """Every server a test session started, stopped together at its end."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pyc-test-registries-", dir="/var/tmp"))
        self.running: list[Registry | TokenServer] = []

    def registry(self, name: str, **kwargs: object) -> Registry:
        root = self.dir / name
        root.mkdir()
        r = Registry(root, **kwargs)  # type: ignore[arg-type]
        self.running.append(r)
        return r

    def token_server(self) -> TokenServer:
        d = self.dir / f"token-{len(self.running)}"
        d.mkdir()
        t = TokenServer(d)
        self.running.append(t)
        return t

    def close(self) -> None:
        for s in reversed(self.running):
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def htpasswd_file(d: Path) -> Path:
    path = d / "htpasswd"
    out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, check=True, text=True).stdout
    path.write_text(out.strip() + "\n")
    return path


def env_with(conf: Path, authfile: Path | None = None, certs: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a pyc that reads only the tests' files (registries.conf, auth file,
    certs.d) and uses no proxy."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["CONTAINERS_REGISTRIES_CONF"] = str(conf)
    env["REGISTRY_AUTH_FILE"] = str(authfile) if authfile else "/nonexistent/pyc-test-auth.json"
    env["CONTAINERS_CERTS_D"] = str(certs) if certs else "/nonexistent/pyc-test-certs.d"
    env.update(extra or {})
    return env
