"""What pyc reads to reach registries, as podman and skopeo read it: references, registries.conf
(v2 and v1 tables, drop-ins, aliases, mirrors, blocked), certs.d, proxies, the auth file, the
WWW-Authenticate challenge, and manifests (schema 1 refused, a platform picked from an index)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from pyc.errors import BadImage, InvalidArgument, PycError
from pyc.registry import auth, config, manifests
from pyc.registry.session import parse_challenge
from pyc.store.refs import familiar_ref, normalize, parse


@pytest.mark.parametrize(
    ("ref", "name", "tag", "digest"),
    [
        ("busybox", "busybox", None, None),
        ("localhost:5000/a/b:v1", "localhost:5000/a/b", "v1", None),
        ("docker.io/busybox", "docker.io/library/busybox", None, None),
        ("index.docker.io/user/app:1", "docker.io/user/app", "1", None),
        ("quay.io/x/y@sha256:" + "a" * 64, "quay.io/x/y", None, "sha256:" + "a" * 64),
        ("reg.example:443/x:t@sha256:" + "b" * 64, "reg.example:443/x", "t", "sha256:" + "b" * 64),
        ("[::1]:5000/x", "[::1]:5000/x", None, None),
    ],
)
def test_references(ref: str, name: str, tag: str | None, digest: str | None) -> None:
    r = parse(ref)
    assert (r.name, r.tag, r.digest) == (name, tag, digest)


@pytest.mark.parametrize("ref", ["x@sha256:abc", "x@md5:" + "a" * 32, "reg.example/X", "-host.example/x", "x:tag:tag"])
def test_bad_references(ref: str) -> None:
    with pytest.raises(InvalidArgument):
        parse(ref)


def test_names_as_docker_shows_them() -> None:
    assert normalize("docker.io/busybox") == "docker.io/library/busybox:latest"
    assert normalize("quay.io/x/y@sha256:" + "c" * 64) == "quay.io/x/y@sha256:" + "c" * 64
    assert familiar_ref("docker.io/library/busybox:1") == "busybox:1"
    assert familiar_ref("docker.io/user/app@sha256:" + "d" * 64) == "user/app@sha256:" + "d" * 64
    assert familiar_ref("localhost:5000/a:1") == "localhost:5000/a:1"


def _conf(tmp_path: Path, main: str, dropins: dict[str, str] | None = None) -> config.RegistriesConf:
    path = tmp_path / "registries.conf"
    path.write_text(main)
    env = {"CONTAINERS_REGISTRIES_CONF": str(path), "HOME": str(tmp_path)}
    if dropins is not None:
        d = tmp_path / "conf.d"
        d.mkdir()
        for name, text in dropins.items():
            (d / name).write_text(text)
        env["CONTAINERS_REGISTRIES_CONF_DIR"] = str(d)
    return config.load(env)


def test_registries_conf_v2(tmp_path: Path) -> None:
    c = _conf(
        tmp_path,
        """
unqualified-search-registries = ["reg.example", "docker.io"]

[[registry]]
prefix = "reg.example/team"
location = "mirror.example:5000/team-copy"
insecure = true

[[registry.mirror]]
location = "fast.example/m"
pull-from-mirror = "digest-only"

[[registry]]
location = "bad.example"
blocked = true

[aliases]
"web" = "reg.example/team/web"
""",
    )
    assert [str(r) for r in c.candidates("app:1")] == ["reg.example/app:1", "docker.io/library/app:1"]
    assert [str(r) for r in c.candidates("web:2")] == ["reg.example/team/web:2"]
    assert [str(r) for r in c.candidates("quay.io/x/y")] == ["quay.io/x/y"]
    # The longest prefix: its location replaces it; a digest-only mirror only for digests.
    tagged = c.endpoints(parse("reg.example/team/a/b:1"))
    assert [(e.host, e.path, e.insecure, e.mirror) for e in tagged] == [("mirror.example:5000", "team-copy/a/b", True, False)]
    by_digest = c.endpoints(parse("reg.example/team/a@sha256:" + "e" * 64))
    assert [(e.host, e.path, e.mirror) for e in by_digest] == [("fast.example", "m/a", True), ("mirror.example:5000", "team-copy/a", False)]
    assert [(e.host, e.path) for e in c.endpoints(parse("reg.example/other"))] == [("reg.example", "other")]
    assert [(e.host, e.path) for e in c.endpoints(parse("reg.example/team/a:1"), pull=False)] == [("mirror.example:5000", "team-copy/a")]
    with pytest.raises(PycError, match="registry bad.example is blocked in"):
        c.endpoints(parse("bad.example/x"))


def test_no_search_registries_is_an_error(tmp_path: Path) -> None:
    c = _conf(tmp_path, "")
    with pytest.raises(InvalidArgument, match="app is a short name and no unqualified-search-registries are set in"):
        c.candidates("app")


def test_dropins_override_and_v1_tables(tmp_path: Path) -> None:
    c = _conf(
        tmp_path,
        '[registries.search]\nregistries = ["one.example"]\n[registries.insecure]\nregistries = ["one.example"]\n',
        {"10-a.conf": 'unqualified-search-registries = ["two.example"]\n', "20-b.conf": '[[registry]]\nlocation = "one.example"\nblocked = true\n', "ignored.txt": "not toml ["},
    )
    assert [str(r) for r in c.candidates("x")] == ["two.example/x"]
    with pytest.raises(PycError, match="blocked"):
        c.endpoints(parse("one.example/x"))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("unqualified-search-registries = [", "not valid TOML"),
        ('unqualified-search-registries = ["a/b"]', "'a/b' is not a registry host"),
        ('[[registry]]\ninsecure = true\n', "neither prefix nor location"),
        ('[[registry]]\nlocation = "a.example"\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "sometimes"\n', "pull-from-mirror is all, digest-only or tag-only"),
    ],
)
def test_bad_registries_conf(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        _conf(tmp_path, text)


def test_the_parsed_conf_is_kept_until_a_file_changes(tmp_path: Path) -> None:
    path, cache = tmp_path / "registries.conf", str(tmp_path / "cache")
    path.write_text('unqualified-search-registries = ["a.example"]\n')
    env = {"CONTAINERS_REGISTRIES_CONF": str(path)}
    assert config.load(env, cache).search == ["a.example"]
    assert os.path.exists(cache)
    path.write_text('unqualified-search-registries = ["b.example", "c.example"]\n')
    assert config.load(env, cache).search == ["b.example", "c.example"]


def test_certs_d(tmp_path: Path) -> None:
    d = tmp_path / "certs.d" / "reg.example:5000"
    d.mkdir(parents=True)
    for name in ("ca.crt", "other.crt", "client.cert", "client.key", "README"):
        (d / name).write_text("x")
    cas, client = config.certs_for("reg.example:5000", [str(tmp_path / "nowhere"), str(tmp_path / "certs.d")])
    assert [os.path.basename(c) for c in cas] == ["ca.crt", "other.crt"] and client == (str(d / "client.cert"), str(d / "client.key"))
    assert config.certs_for("other.example", [str(tmp_path / "certs.d")]) == ([], None)
    assert config.certs_for("any.example", [str(d)], flat=True)[0] == cas  # --cert-dir holds the files itself
    (d / "client.key").unlink()
    with pytest.raises(InvalidArgument, match="its key client.key is missing"):
        config.certs_for("reg.example:5000", [str(tmp_path / "certs.d")])


@pytest.mark.parametrize(
    ("scheme", "host", "env", "proxy"),
    [
        ("https", "reg.example", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
        ("http", "reg.example", {"HTTPS_PROXY": "http://p:3128"}, None),
        ("http", "reg.example:5000", {"http_proxy": "http://q:8080"}, "http://q:8080"),
        ("https", "reg.example", {"HTTPS_PROXY": "http://p", "NO_PROXY": "example"}, None),
        ("https", "reg.example", {"HTTPS_PROXY": "http://p", "NO_PROXY": ".example"}, None),
        ("https", "reg.example", {"HTTPS_PROXY": "http://p", "NO_PROXY": "other.example"}, "http://p"),
        ("https", "reg.example:5000", {"HTTPS_PROXY": "http://p", "NO_PROXY": "reg.example:443"}, "http://p"),
        ("https", "reg.example:5000", {"HTTPS_PROXY": "http://p", "no_proxy": "reg.example:5000"}, None),
        ("https", "10.1.2.3:5000", {"HTTPS_PROXY": "http://p", "NO_PROXY": "10.0.0.0/8"}, None),
        ("https", "[::1]:5000", {"HTTPS_PROXY": "http://p", "NO_PROXY": "::1"}, None),
        ("https", "reg.example", {"HTTPS_PROXY": "http://p", "NO_PROXY": "*"}, None),
        ("https", "reg.example", {}, None),
    ],
)
def test_proxies(scheme: str, host: str, env: dict[str, str], proxy: str | None) -> None:
    assert config.proxy_for(scheme, host, env) == proxy


def test_auth_file_read_by_registry_and_repository(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"

    def b64(s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    path.write_text(json.dumps({"auths": {"reg.example": {"auth": b64("u:p")}, "reg.example/team/app": {"auth": b64("t:q:r")}, "https://index.docker.io/v1/": {"auth": b64("d:h")}}}))
    env = {"REGISTRY_AUTH_FILE": str(path)}
    assert auth.credentials("reg.example", "reg.example/x", env) == ("u", "p")
    assert auth.credentials("reg.example", "reg.example/team/app", env) == ("t", "q:r")
    assert auth.credentials("docker.io", "docker.io/library/x", env) == ("d", "h")
    assert auth.credentials("other.example", None, env) is None


def test_login_writes_what_docker_and_podman_read(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    path = auth.store("reg.example:5000", "me", "pw", env)
    assert path == str(tmp_path / "run/containers/auth.json")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert json.loads(Path(path).read_text()) == {"auths": {"reg.example:5000": {"auth": base64.b64encode(b"me:pw").decode()}}}
    assert auth.credentials("reg.example:5000", None, env) == ("me", "pw")
    # docker's own file is read when podman's has nothing.
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker/config.json").write_text(json.dumps({"auths": {"other.example": {"auth": base64.b64encode(b"d:o").decode()}}}))
    assert auth.credentials("other.example", None, env) == ("d", "o")
    assert auth.remove("reg.example:5000", env) == ["reg.example:5000"]
    assert auth.credentials("reg.example:5000", None, env) is None
    assert auth.remove("reg.example:5000", env) == []


def test_a_broken_auth_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text("{nope")
    with pytest.raises(InvalidArgument, match="auth.json: not valid JSON"):
        auth.credentials("reg.example", None, {"REGISTRY_AUTH_FILE": str(path)})
    path.write_text(json.dumps({"auths": {"reg.example": {"auth": "!!"}}}))
    with pytest.raises(InvalidArgument, match="are not base64 of user:password"):
        auth.credentials("reg.example", None, {"REGISTRY_AUTH_FILE": str(path)})


def test_challenges() -> None:
    assert parse_challenge('Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a/b:pull,push"') == (
        "bearer",
        {"realm": "https://auth.example/token", "service": "reg.example", "scope": "repository:a/b:pull,push"},
    )
    assert parse_challenge('Basic realm="pyc \\"test\\""') == ("basic", {"realm": 'pyc "test"'})
    assert parse_challenge("") == ("", {})


def test_manifests() -> None:
    schema1 = json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode()
    with pytest.raises(BadImage, match="a Docker schema 1 manifest, which pyc does not pull"):
        manifests.Manifest(schema1, None, None, "x")
    m = json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST, "config": {"digest": "sha256:" + "1" * 64, "size": 2}, "layers": []}).encode()
    with pytest.raises(BadImage, match="does not match its digest"):
        manifests.Manifest(m, None, "sha256:" + "0" * 64, "x")
    bad_layer = json.dumps({"schemaVersion": 2, "config": {"digest": "sha256:" + "1" * 64, "size": 2}, "layers": [{"mediaType": "application/x-foo", "digest": "sha256:" + "2" * 64, "size": 1}]})
    with pytest.raises(BadImage, match="a layer of type application/x-foo"):
        manifests.Manifest(bad_layer.encode(), None, None, "x").layers("x")


def test_a_platform_is_picked_from_an_index() -> None:
    def entry(arch: str, variant: str = "") -> dict[str, object]:
        p = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
        return {"mediaType": manifests.OCI_MANIFEST, "digest": f"sha256:{arch}{variant}", "size": 1, "platform": p}

    doc = {"schemaVersion": 2, "mediaType": manifests.OCI_INDEX, "manifests": [entry("arm", "v6"), entry("arm", "v7"), entry("arm64"), entry("amd64")]}
    index = manifests.Manifest(json.dumps(doc).encode(), None, None, "x")
    assert manifests.pick(index, ("linux", "amd64", ""), "x")["digest"] == "sha256:amd64"
    assert manifests.pick(index, ("linux", "arm", "v7"), "x")["digest"] == "sha256:armv7"
    assert manifests.pick(index, ("linux", "arm64", "v8"), "x")["digest"] == "sha256:arm64"
    with pytest.raises(BadImage, match=r"no image for linux/riscv64 \(the index has linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64\)"):
        manifests.pick(index, ("linux", "riscv64", ""), "x")
    with pytest.raises(InvalidArgument):
        manifests.parse_platform("linux")
