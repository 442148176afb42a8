"""Talking to one repository of one registry: which scheme (https; an insecure registry's
unverified https, then plain http), which credentials (anonymous, basic, or a bearer token
fetched from the realm the registry names with the user's credentials, if any), and what the
registry's errors say. The bytes travel through pyc_core.RegistryClient (Rust, the GIL
released): a blob's body is never read by Python."""

from __future__ import annotations

import os

from pyc.errors import ImageNotFound, Kind, PycError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    import pyc_core
    from pyc.registry.config import Endpoint

USER_AGENT = "pyc/0.1"
MANIFEST_MAX = 4 << 20  # as containerd: a manifest or index larger than this is refused


class Options:
    """How to reach registries, as the user said it (flags) and the environment does."""

    __slots__ = ("tls_verify", "cert_dir", "authfile", "creds", "env")

    def __init__(self, tls_verify: bool | None = None, cert_dir: str | None = None, authfile: str | None = None, creds: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self.tls_verify, self.cert_dir, self.authfile, self.creds = tls_verify, cert_dir, authfile, creds
        self.env: Mapping[str, str] = os.environ if env is None else env

    def credentials(self, host: str, repository: str | None) -> tuple[str, str] | None:
        if self.creds is not None:
            user, sep, password = self.creds.partition(":")
            if not user:
                from pyc.errors import InvalidArgument

                raise InvalidArgument("--creds is USER[:PASSWORD]")
            return user, password
        from pyc.registry.auth import credentials

        return credentials(host, repository, self.env, self.authfile)


class RegistryError(PycError):
    """A registry's refusal or failure; `status` its HTTP status (None: no answer)."""

    kind = Kind.REGISTRY

    def __init__(self, message: str, kind: Kind | None = None, status: int | None = None) -> None:
        super().__init__(message, kind)
        self.status = status


class Reply:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.body = status, body
        self.headers = dict(headers)


_clients: dict[tuple[str, str, bool, str | None], pyc_core.RegistryClient] = {}


def client(scheme: str, host: str, verify: bool, opts: Options) -> pyc_core.RegistryClient:
    """The transport for `host` over `scheme`, made once per process: its certs.d files and
    its proxy."""
    import pyc_core
    from pyc.registry.config import cert_dirs, certs_for, proxy_for

    key = (scheme, host, verify, opts.cert_dir)
    c = _clients.get(key)
    if c is None:
        cas, cert = certs_for(host, cert_dirs(opts.env, opts.cert_dir), flat=opts.cert_dir is not None) if scheme == "https" else ([], None)
        proxy = proxy_for(scheme, host, opts.env)
        c = _clients[key] = pyc_core.RegistryClient(cas, cert[0] if cert else None, cert[1] if cert else None, verify, proxy, USER_AGENT)
    return c


class Session:
    """A repository on a registry endpoint, for `actions` (`pull`, or `pull,push`); `mounts`:
    other repositories of the registry to mount blobs from (their pull scope is asked too)."""

    def __init__(self, endpoint: Endpoint, opts: Options, actions: str = "pull", mounts: Sequence[str] = ()) -> None:
        self.host, self.repo, self.opts = endpoint.host, endpoint.path, opts
        self.insecure = opts.tls_verify is False or endpoint.insecure and opts.tls_verify is None
        self.scopes = [f"repository:{self.repo}:{actions}"] + [f"repository:{m}:pull" for m in mounts if m != self.repo]
        self.scheme = "https"
        self.authorization: str | None = None
        self._opened = False

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}/v2/"

    def url(self, path: str) -> str:
        """The URL of `path` under the repository (`manifests/latest`, `blobs/sha256:...`)."""
        return f"{self.base}{self.repo}/{path}"

    def _client(self) -> pyc_core.RegistryClient:
        return client(self.scheme, self.host, not self.insecure, self.opts)

    def _send(self, method: str, url: str, headers: Sequence[tuple[str, str]] = (), body: bytes | None = None, max_body: int = MANIFEST_MAX) -> Reply:
        import pyc_core

        h = list(headers)
        if self.authorization:
            h.append(("authorization", self.authorization))
        try:
            status, got, data = self._client().request(method, url, h, body, max_body)
        except pyc_core.RegistryError as e:
            raise RegistryError(f"{self.host}: {_short(str(e), url)}", status=e.status) from None
        return Reply(status, got, data)

    def open(self) -> None:
        """Ping the registry (`GET /v2/`): the scheme that works, and the credentials it asks
        for, obtained before the first real request."""
        if self._opened:
            return
        try:
            reply = self._send("GET", self.base, max_body=1 << 16)
        except RegistryError as e:
            if not self.insecure or self.scheme == "http" or e.status is not None:
                raise _unreachable(self.host, e) from None
            self.scheme = "http"  # an insecure registry may not speak TLS at all
            try:
                reply = self._send("GET", self.base, max_body=1 << 16)
            except RegistryError as e2:
                raise _unreachable(self.host, e2) from None
        if reply.status == 401:
            self._authenticate(reply)
            reply = self._send("GET", self.base, max_body=1 << 16)
            if reply.status == 401:
                raise RegistryError(f"{self.host}: {self._denied()}", Kind.AUTH, 401)
        if reply.status == 404:
            raise RegistryError(f"{self.host} is not a registry (no /v2/ API there)", status=404)
        if reply.status != 200:
            raise self.error(reply, "ping")
        self._opened = True

    def _denied(self) -> str:
        creds = self.opts.credentials(self.host, f"{self.host}/{self.repo}")
        return "wrong username or password" if creds else "authentication required (pyc login)"

    def _authenticate(self, reply: Reply) -> None:
        """Act on a 401's WWW-Authenticate: basic credentials, or a bearer token from its realm."""
        scheme, params = parse_challenge(reply.headers.get("www-authenticate", ""))
        creds = self.opts.credentials(self.host, f"{self.host}/{self.repo}")
        if scheme == "basic":
            if creds is None:
                raise RegistryError(f"{self.host}: authentication required (pyc login {self.host})", Kind.AUTH, 401)
            self.authorization = _basic(*creds)
        elif scheme == "bearer" and params.get("realm"):
            self.authorization = "Bearer " + self._token(params["realm"], params.get("service"), creds)
        else:
            raise RegistryError(f"{self.host}: asks for an authentication pyc does not know ({scheme or 'none named'})", Kind.AUTH, 401)

    def _token(self, realm: str, service: str | None, creds: tuple[str, str] | None) -> str:
        import json
        from urllib.parse import urlencode, urlsplit

        import pyc_core

        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RegistryError(f"{self.host}: its token realm {realm!r} is not an http(s) URL", Kind.AUTH)
        query = urlencode([*([("service", service)] if service else []), *(("scope", s) for s in self.scopes)])
        url = realm + ("&" if parts.query else "?") + query
        headers = [("authorization", _basic(*creds))] if creds else []
        # The realm is another server (maybe another host): its own certs.d and proxy.
        insecure = self.insecure and parts.netloc == self.host
        try:
            status, _, body = client(parts.scheme, parts.netloc, not insecure, self.opts).request("GET", url, headers, None, 1 << 20)
        except pyc_core.RegistryError as e:
            raise RegistryError(f"{self.host}: token from {parts.netloc}: {_short(str(e), url)}", Kind.AUTH, e.status) from None
        if status in (401, 403):
            raise RegistryError(f"{self.host}: {'wrong username or password' if creds else 'authentication required (pyc login)'}", Kind.AUTH, status)
        if status != 200:
            raise RegistryError(f"{self.host}: token from {parts.netloc}: {status} {_errors(body)}".rstrip(), Kind.AUTH, status)
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.host}: token from {parts.netloc}: the answer holds no token", Kind.AUTH)
        return token

    def request(self, method: str, path: str, headers: Sequence[tuple[str, str]] = (), body: bytes | None = None, max_body: int = MANIFEST_MAX) -> Reply:
        """A request to the repository's `path` (or a full URL), authenticated; a 401 (a token
        that expired, a scope not granted yet) is answered once."""
        self.open()
        url = path if "://" in path else self.url(path)
        reply = self._send(method, url, headers, body, max_body)
        if reply.status == 401:
            self._authenticate(reply)
            reply = self._send(method, url, headers, body, max_body)
            if reply.status == 401:
                raise RegistryError(f"{self.host}: {self._denied()}", Kind.AUTH, 401)
        return reply

    def error(self, reply: Reply, what: str) -> PycError:
        """The registry's refusal of `what`, in its own words; not found is NOT_FOUND."""
        words = _errors(reply.body) or _reason(reply.status)
        if reply.status == 403:
            return RegistryError(f"{self.host}/{self.repo}: {what}: denied: {words}", Kind.AUTH, 403)
        if reply.status == 404 and what.startswith("manifest "):
            target = what.removeprefix("manifest ")
            return ImageNotFound(f"manifest for {self.host}/{self.repo}{'@' if ':' in target else ':'}{target} not found: {words}")
        if reply.status == 404:
            return ImageNotFound(f"{self.host}/{self.repo}: {what}: {words}")
        return RegistryError(f"{self.host}/{self.repo}: {what}: {reply.status} {words}", status=reply.status)

    def blob(self, digest: str, size: int) -> pyc_core.RemoteBlob:
        """The blob as a source for pyc_core.unpack_layers: downloaded as it is unpacked."""
        import pyc_core

        self.open()
        headers = [("authorization", self.authorization)] if self.authorization else []
        return pyc_core.RemoteBlob(self._client(), self.url(f"blobs/{digest}"), headers, size)

    def upload(self, path: str, compression: str, level: int, scratch: str, progress: pyc_core.RemoteProgress | None = None) -> tuple[str, int]:
        """Push the layer at `path` as a new blob, compressed on the fly (`compression`: gzip
        or zstd; a compressed file is decompressed first), or sent as it is (`as-is`): (digest,
        size)."""
        import pyc_core

        self.open()
        headers = [("authorization", self.authorization)] if self.authorization else []
        try:
            return self._client().upload(self.url("blobs/uploads/"), headers, path, compression, level, scratch, progress)
        except pyc_core.RegistryError as e:
            kind = Kind.AUTH if e.status in (401, 403) else Kind.REGISTRY
            raise RegistryError(f"{self.host}/{self.repo}: upload: {_short(str(e), self.url('blobs/uploads/'))}", kind, e.status) from None


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {...}); the first challenge."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            i += 1
            value = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(rest[i])
                i += 1
            i += 1
            params[key] = "".join(value)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


def _errors(body: bytes) -> str:
    """The messages of a registry's JSON errors (`{"errors": [{"code", "message"}]}`), or its
    text cut short."""
    import json

    try:
        doc: Any = json.loads(body)
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("message") or e.get("code") or "").lower() for e in errors if isinstance(e, dict)).strip("; ")
        if isinstance(doc, dict) and isinstance(doc.get("details") or doc.get("error"), str):
            return str(doc.get("details") or doc.get("error"))
    except ValueError:
        pass
    text = body.decode(errors="replace").strip()
    return "".join(c for c in text[:200] if c.isprintable())


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return f"status {status}"


def _short(message: str, url: str) -> str:
    """A transport message without the URL it starts with (the host is said already)."""
    return message.removeprefix(url + ": ")


def _unreachable(host: str, e: RegistryError) -> RegistryError:
    words = str(e).removeprefix(host + ": ").removeprefix("io: ")
    if "UnknownIssuer" in words or "certificate" in words and "expired" not in words and "alert" not in words:
        words += f" (its CA goes in certs.d: {host}/ca.crt, or --cert-dir; --tls-verify=false accepts any)"
    elif "BadCertificate" in words or "CertificateRequired" in words:
        words += f" (it wants a client certificate: {host}/client.cert and client.key in certs.d)"
    return RegistryError(f"cannot reach {host}: {words}", Kind.REGISTRY, e.status)
