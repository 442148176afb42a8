"""`pyc login` and `pyc logout`: credentials checked against the registry (its /v2/ with them:
basic, or a token from its realm), then kept where podman, skopeo and docker read them."""

from __future__ import annotations

from pyc.errors import InvalidArgument, Kind
from pyc.registry.session import Options, RegistryError, Session


def registry_host(registry: str) -> str:
    """`host[:port]` of what login is given: a host, or a URL as docker users type
    (`https://index.docker.io/v1/` is docker.io)."""
    from pyc.registry.auth import _key_host

    host = _key_host(registry.strip())
    if not host or "/" in host or any(c.isspace() for c in host):
        raise InvalidArgument(f"{registry!r} is not a registry (host[:port])")
    return host


def login(registry: str, username: str, password: str, opts: Options) -> str:
    """Check `username`/`password` against `registry`; keep them; the auth file written."""
    from pyc.registry import auth
    from pyc.registry.config import Endpoint

    host = registry_host(registry)
    if not username:
        raise InvalidArgument("login needs a username (-u)")
    if not password:
        raise InvalidArgument("login needs a password (-p, --password-stdin, or typed at the prompt)")
    checking = Options(opts.tls_verify, opts.cert_dir, opts.authfile, f"{username}:{password}", opts.env)
    s = Session(Endpoint(host, "", _insecure(host, opts)), checking)
    s.scopes = []  # a login asks for no repository (docker's token request names none)
    try:
        s.open()
    except RegistryError as e:
        if e.kind is Kind.AUTH:
            raise RegistryError(f"login to {host}: {str(e).removeprefix(host + ': ')}", Kind.AUTH, e.status) from None
        raise
    return auth.store(host, username, password, opts.env, opts.authfile)


def logout(registry: str | None, opts: Options) -> list[str]:
    from pyc.registry import auth

    return auth.remove(registry_host(registry) if registry is not None else None, opts.env, opts.authfile)


def _insecure(host: str, opts: Options) -> bool:
    from pyc.registry import config
    from pyc.store.refs import Reference

    try:
        return config.load(opts.env).endpoints(Reference(host, "x"), pull=False)[-1].insecure
    except InvalidArgument:
        return False
