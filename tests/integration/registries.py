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
from typing import BinaryIO
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


class Faulty:
    """A forwarder in front of a registry that misbehaves on purpose: it cuts a blob's body after
    `cut_after` bytes (`cuts` times; -1: always), answers 503 to the first `unavailable` manifest
    requests, and sends blob bodies at `rate` bytes a second. It keeps every request line with
    its Range header (`seen`)."""

    def __init__(self, upstream: Registry) -> None:
        self.upstream = upstream.port
        self.cut_after: int | None = None
        self.cuts = 0
        self.unavailable = 0
        self.rate: int | None = None
        self.refuse_streams = False  # a streamed (chunked) PATCH is read and refused with 416
        self.seen: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        u = socket.create_connection(("127.0.0.1", self.upstream))
        fc, fu = c.makefile("rb"), u.makefile("rb")
        try:
            while True:
                if fc.peek(1)[:1] == b"\x16":  # a TLS handshake: this is plain HTTP only
                    return
                head = _read_head(fc)
                if not head:
                    return
                line = head.split(b"\r\n", 1)[0].decode()
                headers = _headers(head)
                with self.lock:
                    self.seen.append((line, headers.get("range")))
                    fail = "/manifests/" in line and self.unavailable > 0
                    if fail:
                        self.unavailable -= 1
                    blob = line.startswith("GET ") and "/blobs/" in line
                if fail:
                    fc.read(int(headers.get("content-length", "0")))  # a PUT's manifest
                    c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                    continue
                if self.refuse_streams and line.startswith("PATCH ") and headers.get("transfer-encoding") == "chunked":
                    while (size := int(fc.readline().split(b";")[0], 16)) > 0:
                        fc.read(size + 2)
                    fc.readline()
                    c.sendall(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n")
                    continue
                body = _chunked(fc) if headers.get("transfer-encoding") == "chunked" else fc.read(int(headers.get("content-length", "0")))
                u.sendall(head + body)
                rhead = _read_head(fu)
                status = rhead.split(b" ", 2)[1]
                bodiless = line.startswith("HEAD ") or status in (b"204", b"304")
                length = 0 if bodiless else int(_headers(rhead).get("content-length", "0"))
                cut = None
                with self.lock:
                    # The cut is at an offset of the blob: a Range request from beyond it gets nothing.
                    start = int((headers.get("range") or "bytes=0-").removeprefix("bytes=").split("-")[0] or 0)
                    if blob and self.cuts != 0 and self.cut_after is not None and start + length > self.cut_after:
                        cut = max(self.cut_after - start, 0)
                        self.cuts -= 1 if self.cuts > 0 else 0
                c.sendall(rhead)
                sent = 0
                while sent < length:
                    n = min(1 << 16, length - sent) if self.rate is None or not blob else min(self.rate // 20 or 1, length - sent)
                    if cut is not None:
                        n = min(n, cut - sent)
                        if n <= 0:
                            return  # cut: both connections close
                    data = fu.read(n)
                    if not data:
                        return
                    c.sendall(data)
                    sent += len(data)
                    if self.rate is not None and blob:
                        time.sleep(0.05)
        except OSError:
            return
        finally:
            for s in (fc, fu, c, u):
                s.close()

    def stop(self) -> None:
        self.closed = True
        self.listener.close()


def _read_head(f: object) -> bytes:
    lines = []
    while True:
        line = f.readline()  # type: ignore[attr-defined]
        if not line:
            return b""
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _chunked(f: BinaryIO) -> bytes:
    """A chunked body as it came (a streamed PATCH), its chunks and the last empty one."""
    raw = b""
    while True:
        line = f.readline()
        size = int(line.split(b";")[0], 16)
        raw += line + f.read(size + 2)
        if size == 0:
            return raw


def _headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.decode(errors="replace").split("\r\n")[1:]:
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip().lower()] = v.strip()
    return out


class ConnectProxy:
    """An HTTP CONNECT proxy: it tunnels to whatever is asked and counts what (`tunnels`)."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(c,), daemon=True).start()

    def _tunnel(self, c: socket.socket) -> None:
        f = c.makefile("rb")
        head = _read_head(f)
        parts = head.split(b" ")
        if len(parts) < 2 or parts[0] != b"CONNECT":
            c.close()
            return
        target = parts[1].decode()
        self.tunnels.append(target)
        host, _, port = target.rpartition(":")
        u = socket.create_connection((host, int(port)))
        c.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")

        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(1 << 16):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        t = threading.Thread(target=pump, args=(u, c), daemon=True)
        t.start()
        pump(c, u)
        t.join()
        c.close()
        u.close()

    def stop(self) -> None:
        self.listener.close()


def put_blob(host: str, repo: str, data: bytes) -> str:
    """Upload `data` as a blob of `repo` (POST, then PUT with the digest); its digest."""
    import hashlib
    import urllib.request

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with urllib.request.urlopen(urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", data=b"", method="POST"), timeout=10) as resp:
        location = resp.headers["Location"]
    url = (location if "://" in location else f"http://{host}{location}") + ("&" if "?" in location else "?") + "digest=" + digest.replace(":", "%3A")
    urllib.request.urlopen(urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"}), timeout=10).close()
    return digest


def put_manifest(host: str, repo: str, ref: str, doc: dict[str, object], media_type: str = "application/vnd.oci.image.manifest.v1+json") -> str:
    import urllib.request

    data = json.dumps(doc).encode()
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{ref}", data=data, method="PUT", headers={"Content-Type": media_type})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.headers["Docker-Content-Digest"])


def put_image(host: str, repo: str, tag: str, layers: list[bytes], media_type: str = "application/vnd.oci.image.layer.v1.tar") -> dict[str, object]:
    """An image of uncompressed `layers` (tars), as is: its manifest."""
    import hashlib

    config = {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in layers]}}
    cfg = json.dumps(config).encode()
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put_blob(host, repo, cfg), "size": len(cfg)},
        "layers": [{"mediaType": media_type, "digest": put_blob(host, repo, t), "size": len(t)} for t in layers],
    }
    put_manifest(host, repo, tag, manifest)
    return manifest
