"""pyc save / pyc load: round trips in each format, compressed and streamed archives, bad input
(one line, 125, store unchanged), and interop with podman and skopeo."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc, store_snapshot, tar_bytes

from pyc.paths import Paths
from pyc.store.images import ImageStore

pytestmark = [pytest.mark.usefixtures("busybox", "clean_containers")]

FORMATS = ["docker-archive", "oci-archive", "oci-dir"]


def _in_uml() -> bool:
    """The cgroup v2 test VM (User-Mode Linux) says so in /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            return "User Mode Linux" in f.read()
    except OSError:
        return False


@pytest.mark.root
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_into_an_empty_store_runs(fmt: str, tmp_path: Path, other_store: dict[str, str]) -> None:
    out = tmp_path / "bb"
    r = pyc("save", "busybox", "-o", str(out), "--format", fmt)
    assert r.returncode == 0, r.stderr
    r = pyc("load", "-i", str(out), env=other_store)
    assert (r.returncode, r.stdout, r.stderr) == (0, "Loaded image: busybox:latest\n", "")
    r = pyc("run", "--rm", "busybox", "echo", "hi", env=other_store)
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    src, dst = pyc("image", "inspect", "busybox"), pyc("image", "inspect", "busybox", env=other_store)
    assert json.loads(src.stdout)[0]["Id"] == json.loads(dst.stdout)[0]["Id"]


def test_docker_archive_layout(tmp_path: Path) -> None:
    out = tmp_path / "bb.tar"
    pyc("tag", "busybox", "bb2:v1")
    try:
        r = pyc("image", "save", "busybox", "bb2:v1", "-o", str(out))
        assert r.returncode == 0, r.stderr
    finally:
        pyc("rmi", "bb2:v1")
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        repositories = json.load(tar.extractfile("repositories"))  # type: ignore[arg-type]
    assert [m["RepoTags"] for m in manifest] == [["busybox:latest"], ["bb2:v1"]]
    layer = manifest[0]["Layers"][0]
    assert names.count(layer) == 1, "a layer shared by two images is written once"
    assert manifest[0]["Config"] in names and set(repositories) == {"busybox", "bb2"}


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_load_compressed_from_stdin(compress: str, tmp_path: Path, other_store: dict[str, str]) -> None:
    plain = subprocess.run([PYC, "save", "busybox", "--format", "oci-archive"], capture_output=True, check=True).stdout
    data = gzip.compress(plain, 1) if compress == "gzip" else subprocess.run(["zstd", "-q", "-c"], input=plain, capture_output=True, check=True).stdout
    r = subprocess.run([PYC, "load"], input=data, capture_output=True, env=other_store)
    assert (r.returncode, r.stdout) == (0, b"Loaded image: busybox:latest\n"), r.stderr
    path = tmp_path / f"bb.tar.{compress}"
    path.write_bytes(data)
    r = pyc("load", "-i", str(path), env=other_store)
    assert r.returncode == 0, r.stderr


def test_save_to_a_terminal_or_unknown_format_fails(tmp_path: Path) -> None:
    r = pyc("save", "busybox", "-o", str(tmp_path / "x"), "--format", "rar")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "format" in r.stderr
    assert not (tmp_path / "x").exists() and os.listdir(tmp_path) == []
    r = pyc("save", "nosuchimage", "-o", str(tmp_path / "x"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and os.listdir(tmp_path) == []


def _oci_archive(out: Path, base: Path, layers: list[bytes], name: str, lie_about: int = -1) -> None:
    """An oci-archive: the busybox layer of the archive `base`, then `layers` gzip-compressed
    (their digests differ from their diff ids); layer `lie_about` is stored under a wrong digest."""
    import hashlib

    def digest(b: bytes) -> str:
        return "sha256:" + hashlib.sha256(b).hexdigest()

    with tarfile.open(base) as t:
        index = json.load(t.extractfile("index.json"))  # type: ignore[arg-type]
        blob = lambda d: t.extractfile("blobs/sha256/" + d.split(":")[1]).read()  # type: ignore[union-attr]  # noqa: E731
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        busybox = blob(manifest["layers"][0]["digest"])
    blobs = {digest(busybox): busybox}
    descs = [manifest["layers"][0]]
    for i, plain in enumerate(layers):
        gz = gzip.compress(plain, 1)
        named = digest(gz if i != lie_about else gz + b"x")
        blobs[named] = gz
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": named, "size": len(gz)})
        config["rootfs"]["diff_ids"].append(digest(plain))
    cfg = json.dumps(config).encode()
    config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(cfg), "size": len(cfg)}
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config_desc, "layers": descs}).encode()
    blobs[digest(cfg)], blobs[digest(man)] = cfg, man
    man_desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(man), "size": len(man), "annotations": {"org.opencontainers.image.ref.name": name}}
    idx = json.dumps({"schemaVersion": 2, "manifests": [man_desc]}).encode()
    with tarfile.open(out, "w") as t:
        for member, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", idx)] + [(f"blobs/sha256/{d.split(':')[1]}", b) for d, b in blobs.items()]:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


@pytest.mark.root
def test_load_unpacks_gzip_layers_side_by_side(tmp_path: Path, other_store: dict[str, str]) -> None:
    """Three layers, two of them gzip with a whiteout and an opaque dir, unpacked at once: the
    container sees their stack; a misnamed layer among good ones changes nothing."""
    base = tmp_path / "busybox.tar"
    assert pyc("save", "busybox", "-o", str(base), "--format", "oci-archive").returncode == 0
    layers = [tar_bytes({"x/one": b"1\n", "x/two": b"2\n", "y/old": b"old\n"}), tar_bytes({"x/.wh.one": b"", "y/.wh..wh..opq": b"", "y/new": b"new\n"})]
    _oci_archive(tmp_path / "good.tar", base, layers, "localhost/stacked:1")
    r = pyc("load", "-i", str(tmp_path / "good.tar"), env=other_store)
    assert r.returncode == 0, r.stderr
    r = pyc("run", "--rm", "localhost/stacked:1", "sh", "-c", "cat /x/two /y/new; ls /x; ls /y", env=other_store)
    assert r.returncode == 0 and r.stdout.split() == ["2", "new", "two", "new"], (r.stdout, r.stderr)
    root = Path(other_store["PYC_ROOT"])
    _oci_archive(tmp_path / "bad.tar", base, [*layers, tar_bytes({"z": b"z"})], "localhost/bad:1", lie_about=1)
    before = store_snapshot(root)
    r = pyc("load", "-i", str(tmp_path / "bad.tar"), env=other_store)
    assert r.returncode == 1 and "does not match its digest" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert store_snapshot(root) == before


def _modified_layer(src: Path, dst: Path) -> None:
    """A copy of an archive with one byte of a file's content in the layer flipped."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            f = tin.extractfile(m) if m.isfile() else None
            if f is not None and m.size > 100_000:
                data = bytearray(f.read())
                with tarfile.open(fileobj=io.BytesIO(bytes(data))) as layer:
                    first = next(x for x in layer.getmembers() if x.isfile() and x.size > 0)
                data[first.offset_data] ^= 0xFF
                f = io.BytesIO(bytes(data))
            tout.addfile(m, f)


@pytest.mark.parametrize("case", ["garbage", "truncated", "modified", "modified docker-archive", "empty tar", "missing file"])
def test_bad_archive_fails_on_one_line_and_changes_nothing(case: str, tmp_path: Path, other_store: dict[str, str]) -> None:
    good = tmp_path / "good.tar"
    fmt = "docker-archive" if "docker" in case else "oci-archive"
    assert pyc("save", "busybox", "-o", str(good), "--format", fmt).returncode == 0
    bad = tmp_path / "bad.tar"
    if case == "garbage":
        bad.write_bytes(os.urandom(10_000))
    elif case == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif case.startswith("modified"):
        _modified_layer(good, bad)
    elif case == "empty tar":
        tarfile.open(bad, "w").close()
    else:
        bad = tmp_path / "nothing-here.tar"
    # Into an empty store (nothing to skip) and into the test store (its layer already there).
    for env in (other_store, None):
        root = Path((env or os.environ)["PYC_ROOT"])
        ImageStore(Paths(str(root))).ensure_layout()  # an empty store, as load leaves one
        pyc("images", env=env)  # the image cache is written on first look-up, not by load
        before = store_snapshot(root)
        r = pyc("load", "-i", str(bad), env=env)
        assert r.returncode == 1 and r.stdout == "" and r.stderr.startswith("pyc: ") and r.stderr.count("\n") == 1, r.stderr
        assert store_snapshot(root) == before


# -- podman and skopeo --------------------------------------------------------------------

PODMAN_CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n'


@pytest.fixture
def podman() -> Iterator[list[str]]:
    """podman with a private store in a temp dir, reset and removed at the end."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    if _in_uml():
        pytest.skip("podman interop is checked on the host run, not in the cgroup v2 test VM (User-Mode Linux, no network, slow forks)")
    work = Path(tempfile.mkdtemp(prefix="pyc-podman-", dir="/var/tmp"))
    (work / "containers.conf").write_text(PODMAN_CONF)
    cmd = ["podman", "--root", str(work / "root"), "--runroot", str(work / "run"), "--storage-driver", "overlay"]
    old = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = str(work / "containers.conf")
    try:
        yield cmd
    finally:
        subprocess.run([*cmd, "system", "reset", "-f"], capture_output=True)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if str(work) in line]
        for m in reversed(mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        if old is None:
            os.environ.pop("CONTAINERS_CONF", None)
        else:
            os.environ["CONTAINERS_CONF"] = old
        with open("/proc/self/mountinfo") as f:
            assert not [line for line in f if str(work) in line], "podman left mounts behind"


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload]
    assert r.returncode == 0, f"{cmd}: {r.stderr}"
    return r  # type: ignore[no-any-return]


@pytest.mark.root
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_loads_and_runs_what_pyc_saved_and_back(fmt: str, podman: list[str], tmp_path: Path, other_store: dict[str, str]) -> None:
    out = tmp_path / "bb.tar"
    assert pyc("save", "busybox", "-o", str(out), "--format", fmt).returncode == 0
    _run([*podman, "load", "-i", str(out)])
    assert _run([*podman, "run", "--rm", "--network=none", "busybox", "echo", "hi"]).stdout == "hi\n"
    back = tmp_path / "back.tar"
    _run([*podman, "save", "--format", fmt, "-o", str(back), "busybox"])
    r = pyc("load", "-i", str(back), env=other_store)
    assert (r.returncode, r.stdout) == (0, "Loaded image: localhost/busybox:latest\n"), r.stderr
    r = pyc("run", "--rm", "localhost/busybox", "echo", "back", env=other_store)
    assert (r.returncode, r.stdout) == (0, "back\n"), r.stderr


@pytest.mark.root
def test_skopeo_reads_pyc_store_and_writes_what_pyc_loads(tmp_path: Path, store_root: Path, other_store: dict[str, str]) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    # pyc's store is an OCI layout skopeo reads as it is; its names contain ':' and skopeo takes them.
    _run(["skopeo", "copy", "-q", f"oci:{store_root}/oci:busybox:latest", f"oci-archive:{tmp_path}/x.tar:bb:v1"])
    r = pyc("load", "-i", str(tmp_path / "x.tar"), env=other_store)
    assert (r.returncode, r.stdout) == (0, "Loaded image: bb:v1\n"), r.stderr
    assert pyc("save", "busybox", "-o", str(tmp_path / "d.tar")).returncode == 0
    _run(["skopeo", "copy", "-q", f"docker-archive:{tmp_path}/d.tar", f"oci:{tmp_path}/dir:sk:v2"])
    r = pyc("load", "-i", str(tmp_path / "dir"), env=other_store)
    assert (r.returncode, r.stdout) == (0, "Loaded image: sk:v2\n"), r.stderr
    r = pyc("run", "--rm", "sk:v2", "echo", "sk", env=other_store)
    assert (r.returncode, r.stdout) == (0, "sk\n"), r.stderr
