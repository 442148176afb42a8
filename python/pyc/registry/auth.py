"""Registry credentials, kept as docker and podman keep them: a JSON file with `auths`, one entry
per registry (or per repository, `host/namespace/repo`), `auth` the base64 of `user:password`.

Read, first match wins: `--authfile` or `$REGISTRY_AUTH_FILE` alone when given; else podman's
file (`$XDG_RUNTIME_DIR/containers/auth.json`, `/run/containers/<uid>/auth.json` without it),
`~/.config/containers/auth.json`, docker's `~/.docker/config.json` (`$DOCKER_CONFIG/config.json`)
and `~/.dockercfg`. `login` and `logout` write the first of them, as podman does, so docker,
podman and skopeo read what pyc wrote."""

from __future__ import annotations

import os

from pyc.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# docker.io's credentials are under this key in docker's config.json (and podman reads it).
DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def auth_files(env: Mapping[str, str], authfile: str | None = None) -> list[str]:
    given = authfile or env.get("REGISTRY_AUTH_FILE")
    if given:
        return [given]
    home = env.get("HOME") or os.path.expanduser("~")
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/containers/{os.getuid()}"
    docker = env.get("DOCKER_CONFIG") or os.path.join(home, ".docker")
    return [
        os.path.join(runtime, "containers", "auth.json"),
        os.path.join(home, ".config/containers/auth.json"),
        os.path.join(docker, "config.json"),
        os.path.join(home, ".dockercfg"),
    ]


def _read(path: str) -> dict[str, Any]:
    import json

    try:
        with open(path, "rb") as f:
            data = json.loads(f.read() or b"{}")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise InvalidArgument(f"{path}: {e.strerror}") from None
    except ValueError as e:
        raise InvalidArgument(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: not a JSON object")
    if path.endswith(".dockercfg"):  # the old format: the entries at the top
        return {"auths": data}
    return data


def _key_host(key: str) -> str:
    """A key's registry with its path (`host/ns/repo`): URLs (docker's old keys) cut to it."""
    if key == DOCKER_HUB_KEY or key.rstrip("/") in ("https://index.docker.io/v1", "index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    if "://" in key:
        key = key.split("://", 1)[1]
        key = key.split("/", 1)[0]  # a URL names the registry, not a repository
    return key.rstrip("/")


def credentials(registry: str, repository: str | None, env: Mapping[str, str], authfile: str | None = None) -> tuple[str, str] | None:
    """(user, password) for `repository` (`host/path`) on `registry`, the most specific entry
    of the first file that has one; None when no file does."""
    import base64
    import binascii

    for path in auth_files(env, authfile):
        auths = _read(path).get("auths") or {}
        best: tuple[int, str] | None = None
        for key, entry in auths.items():
            k = _key_host(str(key))
            if k == registry or repository and (repository == k or repository.startswith(k + "/")):
                if isinstance(entry, dict) and entry.get("auth") and (best is None or len(k) > best[0]):
                    best = (len(k), str(entry["auth"]))
        if best is not None:
            try:
                user, sep, password = base64.b64decode(best[1], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidArgument(f"{path}: the credentials for {registry} are not base64 of user:password") from None
            if not sep:
                raise InvalidArgument(f"{path}: the credentials for {registry} are not base64 of user:password")
            return user, password
    return None


def store(registry: str, user: str, password: str, env: Mapping[str, str], authfile: str | None = None) -> str:
    """Keep credentials for `registry` in the file login writes; that file's path."""
    import base64

    path = auth_files(env, authfile)[0]
    data = _read(path)
    auths = data.setdefault("auths", {})
    for key in [k for k in auths if _key_host(str(k)) == registry]:
        del auths[key]  # one entry per registry: an old docker-style key goes
    auths[registry] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    _write(path, data)
    return path


def remove(registry: str | None, env: Mapping[str, str], authfile: str | None = None) -> list[str]:
    """Forget the credentials for `registry` (None: every registry) in the file login writes;
    the registries forgotten."""
    path = auth_files(env, authfile)[0]
    data = _read(path)
    auths = data.get("auths") or {}
    gone = [k for k in auths if registry is None or _key_host(str(k)) == registry]
    if gone:
        for k in gone:
            del auths[k]
        _write(path, data)
    return [_key_host(str(k)) for k in gone]


def _write(path: str, data: dict[str, Any]) -> None:
    """Atomic, and readable by its owner only: it holds passwords."""
    import json

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    from pyc.store import atomic

    def write(fd: int) -> None:
        view = memoryview((json.dumps(data, indent="\t") + "\n").encode())
        while view:
            view = view[os.write(fd, view) :]

    atomic.write_through(path, write, mode=0o600)
