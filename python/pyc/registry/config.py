"""Where registries are and how to reach them, as podman and skopeo read it:

- containers-registries.conf(5), version 2 (and version 1's tables): `unqualified-search-registries`,
  `[[registry]]` with `prefix`, `location`, `insecure`, `blocked` and `[[registry.mirror]]`,
  `[aliases]`. Read from `$CONTAINERS_REGISTRIES_CONF` alone when set (with the drop-ins of
  `$CONTAINERS_REGISTRIES_CONF_DIR` if that is set too), else `~/.config/containers/registries.conf`
  if it exists or `/etc/containers/registries.conf`, then the drop-ins of
  `/etc/containers/registries.conf.d/` and `~/.config/containers/registries.conf.d/`, each in
  name order, a later setting replacing an earlier one.
- containers-certs.d(5): `<dir>/<host[:port]>/*.crt` CAs, `*.cert` with its `*.key` a client
  certificate; the dirs `--cert-dir` or `$CONTAINERS_CERTS_D` name, else
  `~/.config/containers/certs.d`, `/etc/containers/certs.d`, `/etc/docker/certs.d`.
- HTTPS_PROXY, HTTP_PROXY (and lowercase), NO_PROXY: as curl reads them."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument, PycError
from pyc.store.refs import DOCKER_HUB, Reference, parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class Endpoint:
    """One place to try for a repository: `host` (with its port), the repository's path there,
    whether TLS may be skipped (an insecure registry: https unverified, then plain http)."""

    __slots__ = ("host", "path", "insecure", "mirror")

    def __init__(self, host: str, path: str, insecure: bool, mirror: bool = False) -> None:
        self.host, self.path, self.insecure, self.mirror = host, path, insecure, mirror

    def __repr__(self) -> str:
        return f"Endpoint({self.host}/{self.path}{', insecure' if self.insecure else ''}{', mirror' if self.mirror else ''})"


class _Mirror:
    __slots__ = ("location", "insecure", "pull_from")

    def __init__(self, location: str, insecure: bool, pull_from: str) -> None:
        self.location, self.insecure, self.pull_from = location, insecure, pull_from


class _Registry:
    """A `[[registry]]` table."""

    __slots__ = ("prefix", "location", "insecure", "blocked", "mirrors")

    def __init__(self, prefix: str, location: str, insecure: bool, blocked: bool, mirrors: list[_Mirror]) -> None:
        self.prefix, self.location, self.insecure, self.blocked, self.mirrors = prefix, location, insecure, blocked, mirrors

    def matches(self, name: str) -> int:
        """How well the prefix matches the repository `name` (`host/path`): its length, or -1."""
        p = self.prefix
        if p.startswith("*."):
            host = name.partition("/")[0]
            return len(p) if host.endswith(p[1:]) else -1
        if name == p or name.startswith(p + "/"):
            return len(p)
        return -1


class RegistriesConf:
    def __init__(self) -> None:
        self.search: list[str] = []
        self.registries: dict[str, _Registry] = {}  # by prefix: a drop-in's replaces the earlier
        self.aliases: dict[str, str] = {}
        self.files: list[str] = []

    def registry(self, name: str) -> _Registry | None:
        """The `[[registry]]` whose prefix matches the repository `name` best (the longest)."""
        best, score = None, -1
        for r in self.registries.values():
            s = r.matches(name)
            if s > score:
                best, score = r, s
        return best

    def endpoints(self, ref: Reference, pull: bool = True) -> list[Endpoint]:
        """Where to get (or, `pull=False`, put) the fully qualified `ref`: its mirrors first
        (a pull only), then its location. A blocked registry is an error."""
        assert ref.domain is not None
        name = ref.name
        r = self.registry(name)
        if r is None:
            return [Endpoint(ref.domain, ref.path, False)]
        if r.blocked:
            raise PycError(f"registry {ref.domain} is blocked in {self.source()}", _registry_kind())
        out: list[Endpoint] = []
        if pull:
            for m in r.mirrors:
                if m.pull_from == "digest-only" and not ref.digest or m.pull_from == "tag-only" and ref.digest:
                    continue
                out.append(_endpoint(m.location + name[len(r.prefix) :], m.insecure, True, r.prefix))
        out.append(_endpoint(r.location + name[len(r.prefix) :], r.insecure, False, r.prefix))
        return out

    def source(self) -> str:
        return ", ".join(self.files) or "registries.conf"

    def candidates(self, short: str) -> list[Reference]:
        """The fully qualified names an unqualified reference may mean: its alias, else one per
        search registry, in order. None configured is an error: pyc has no default registry."""
        ref = parse(short)
        if ref.domain is not None:
            return [ref]
        alias = self.aliases.get(ref.path)
        if alias is not None:
            target = parse(alias)
            if target.domain is None:
                raise InvalidArgument(f"{self.source()}: the alias of {ref.path!r} ({alias!r}) is not a fully qualified name")
            return [Reference(target.domain, target.path, ref.tag or target.tag, ref.digest or target.digest)]
        if not self.search:
            raise InvalidArgument(
                f"{short} is a short name and no unqualified-search-registries are set in {self.source()}: give the registry (for example docker.io/library/{ref.path} or localhost:5000/{ref.path})"
            )
        return [ref.qualified(host) for host in self.search]


def _registry_kind() -> Any:
    from pyc.errors import Kind

    return Kind.REGISTRY


def _endpoint(location: str, insecure: bool, mirror: bool, prefix: str) -> Endpoint:
    host, _, path = location.partition("/")
    if not path:
        raise InvalidArgument(f"registries.conf: {location!r} (for {prefix!r}) names no repository")
    if host == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    return Endpoint(host, path, insecure, mirror)


def _home(env: Mapping[str, str]) -> str:
    return env.get("HOME") or os.path.expanduser("~")


def conf_files(env: Mapping[str, str]) -> list[str]:
    """The registries.conf files to read, in order (see the module)."""
    explicit = env.get("CONTAINERS_REGISTRIES_CONF")
    if explicit:
        dirs = [env["CONTAINERS_REGISTRIES_CONF_DIR"]] if env.get("CONTAINERS_REGISTRIES_CONF_DIR") else []
        main = explicit
    else:
        user = os.path.join(_home(env), ".config/containers")
        main = os.path.join(user, "registries.conf")
        if not os.path.exists(main):
            main = "/etc/containers/registries.conf"
        dirs = ["/etc/containers/registries.conf.d", os.path.join(user, "registries.conf.d")]
    files = [main] if os.path.isfile(main) else []
    if explicit and not files:
        raise InvalidArgument(f"CONTAINERS_REGISTRIES_CONF: {explicit}: no such file")
    for d in dirs:
        try:
            files += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".conf")]
        except OSError:
            continue
    return files


def load(env: Mapping[str, str] | None = None, cache: str | None = None) -> RegistriesConf:
    """The configuration of the files conf_files names. With `cache` (a file path), their parsed
    tables are kept there and read back while no file changed (their inodes, mtimes and sizes
    tell): parsing TOML costs a re-pull more than its HTTP round trip."""
    files = conf_files(os.environ if env is None else env)
    tables = _cached(files, cache) if cache else None
    if tables is None:
        tables = [(path, _parse(path)) for path in files]
        if cache:
            _keep(files, tables, cache)
    conf = RegistriesConf()
    for path, data in tables:
        _merge(conf, data, path)
        conf.files.append(path)
    return conf


def _parse(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise InvalidArgument(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(f"{path}: not valid TOML: {e}") from None


def _key(files: list[str]) -> list[Any] | None:
    key: list[Any] = []
    for path in files:
        try:
            st = os.stat(path)
        except OSError:
            return None
        key.append([path, st.st_ino, st.st_mtime_ns, st.st_size])
    return key


def _cached(files: list[str], cache: str) -> list[tuple[str, dict[str, Any]]] | None:
    import pyc_core

    key = _key(files)
    try:
        with open(cache, "rb") as f:
            data = pyc_core.unpackb(f.read())
    except (OSError, ValueError):
        return None
    if key is None or not isinstance(data, dict) or data.get("key") != key:
        return None
    return [(str(p), t) for p, t in data["tables"]]


def _keep(files: list[str], tables: list[tuple[str, dict[str, Any]]], cache: str) -> None:
    import pyc_core
    from pyc.store import atomic

    key = _key(files)
    try:
        # TOML's dates and times are no msgpack: a file with one is read each time.
        data = pyc_core.packb({"key": key, "tables": tables})
        atomic.write_file(cache, data, durable=False)
    except (OSError, TypeError, ValueError):
        pass


def _merge(conf: RegistriesConf, data: dict[str, Any], path: str) -> None:
    def bad(what: str) -> InvalidArgument:
        return InvalidArgument(f"{path}: {what}")

    if "unqualified-search-registries" in data:
        search = data["unqualified-search-registries"]
        if not isinstance(search, list) or not all(isinstance(s, str) and s for s in search):
            raise bad("unqualified-search-registries is not a list of registries")
        conf.search = [_host(s, path) for s in search]
    aliases = data.get("aliases", {})
    if not isinstance(aliases, dict):
        raise bad("[aliases] is not a table")
    for short, target in aliases.items():
        if not isinstance(target, str):
            raise bad(f"alias {short!r} is not a name")
        conf.aliases[short] = target  # checked when used: podman's lists hold hundreds
    tables = data.get("registry", [])
    if not isinstance(tables, list):
        raise bad("[[registry]] is not an array of tables")
    for t in tables:
        if not isinstance(t, dict):
            raise bad("[[registry]] is not an array of tables")
        location = str(t.get("location") or "").rstrip("/")
        prefix = str(t.get("prefix") or location).rstrip("/")
        if not prefix:
            raise bad("a [[registry]] has neither prefix nor location")
        if prefix.startswith("*.") and location:
            raise bad(f"[[registry]] {prefix}: a wildcard prefix cannot have a location")
        mirrors = []
        for m in t.get("mirror", []) or []:
            if not isinstance(m, dict) or not m.get("location"):
                raise bad(f"[[registry.mirror]] of {prefix} has no location")
            pull_from = str(m.get("pull-from-mirror") or "all")
            if pull_from not in ("all", "digest-only", "tag-only"):
                raise bad(f"[[registry.mirror]] {m['location']}: pull-from-mirror is all, digest-only or tag-only, not {pull_from!r}")
            mirrors.append(_Mirror(str(m["location"]).rstrip("/"), bool(m.get("insecure", False)), pull_from))
        conf.registries[prefix] = _Registry(prefix, location or prefix, bool(t.get("insecure", False)), bool(t.get("blocked", False)), mirrors)
    # Version 1: [registries.search] / [registries.insecure] / [registries.block], each a list.
    v1 = data.get("registries")
    if isinstance(v1, dict):
        for kind in ("search", "insecure", "block"):
            hosts = (v1.get(kind) or {}).get("registries", [])
            for h in hosts:
                if kind == "search":
                    conf.search.append(_host(h, path))
                    continue
                r = conf.registries.setdefault(h, _Registry(h, h, False, False, []))
                r.insecure |= kind == "insecure"
                r.blocked |= kind == "block"


def _host(s: str, path: str) -> str:
    if "/" in s or not s.strip():
        raise InvalidArgument(f"{path}: {s!r} is not a registry host")
    return s


# -- certs.d ------------------------------------------------------------------------------


def cert_dirs(env: Mapping[str, str], cert_dir: str | None = None) -> list[str]:
    """The directories to look for `<host[:port]>/` in; `cert_dir` (`--cert-dir`) holds the
    files itself, for every host, as podman's does."""
    if cert_dir:
        return [cert_dir]
    if env.get("CONTAINERS_CERTS_D"):
        return [env["CONTAINERS_CERTS_D"]]
    return [os.path.join(_home(env), ".config/containers/certs.d"), "/etc/containers/certs.d", "/etc/docker/certs.d"]


def certs_for(host: str, dirs: list[str], flat: bool = False) -> tuple[list[str], tuple[str, str] | None]:
    """The CA files and the client certificate (cert, key) for `host` (host[:port]), from the
    first of `dirs` that has a directory for it (`flat`: the dirs hold the files themselves)."""
    for base in dirs:
        d = base if flat else os.path.join(base, host)
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        cas: list[str] = []
        client: tuple[str, str] | None = None
        for n in names:
            p = os.path.join(d, n)
            if n.endswith(".crt"):
                cas.append(p)
            elif n.endswith(".cert") and client is None:
                key = p[: -len(".cert")] + ".key"
                if not os.path.isfile(key):
                    raise InvalidArgument(f"{p}: its key {os.path.basename(key)} is missing")
                client = (p, key)
        return cas, client
    return [], None


# -- proxies ------------------------------------------------------------------------------


def proxy_for(scheme: str, host: str, env: Mapping[str, str] | None = None) -> str | None:
    """The proxy to reach `host` (host[:port]) over `scheme` through: HTTPS_PROXY or HTTP_PROXY
    (either case), unless NO_PROXY matches it: `*`, the host, or a domain suffix (`.example.com`
    or `example.com`), with or without its port; an IP address or CIDR range."""
    env = os.environ if env is None else env
    names = ("HTTPS_PROXY", "https_proxy") if scheme == "https" else ("HTTP_PROXY", "http_proxy")
    proxy = next((env[n] for n in names if env.get(n)), None)
    if proxy is None:
        return None
    no_proxy = env.get("NO_PROXY") or env.get("no_proxy") or ""
    name, port = _split(host)
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return None
        e_name, e_port = _split(entry)
        if e_port and e_port != port:
            continue
        if _ip_match(name, e_name) or name == e_name.lstrip(".") or name.endswith("." + e_name.lstrip(".")):
            return None
    return proxy


def _split(host: str) -> tuple[str, str]:
    """(name, port) of `name[:port]` or `[v6]:port`; the port "" when none."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name.lower(), rest[1:] if rest.startswith(":") else ""
    if host.count(":") == 1:
        name, port = host.split(":")
        return name.lower(), port
    return host.lower(), ""


def _ip_match(host: str, entry: str) -> bool:
    import ipaddress

    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    try:
        return addr in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
