"""A multi-layer image made with umoci (layers added verbatim: deleted files, a directory deleted
then made again, an opaque directory, hardlinks within a layer and to a file of an earlier layer)
shows in a pyc container exactly the tree `umoci unpack` gives."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from tests.conftest import pyc, store_snapshot

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox")]

# stat fields compared: name, raw mode (type and permissions), uid, gid, size, link count.
STAT = "%n|%f|%u|%g|%s|%h"


def _entry(t: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.linkname, info.mtime = kind, mode, uid, gid, link, 1700000000
    if kind == tarfile.DIRTYPE:
        info.mode = mode if mode != 0o644 else 0o755
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _layers(tmp: Path, link_down: str | None) -> list[Path]:
    """Three layers; with `link_down`, the second has a hardlink to that path, a file of the
    first (or, to test refusals, whatever else it names)."""
    paths = [tmp / f"l{n}.tar" for n in range(3)]
    with tarfile.open(paths[0], "w") as t:
        for d in ("data", "data/keep", "data/gone", "data/gone/sub", "data/opq", "data/opq/inner"):
            _entry(t, d, tarfile.DIRTYPE)
        _entry(t, "data/keep/a", data=b"a\n")
        _entry(t, "data/gone/g1", data=b"g1\n")
        _entry(t, "data/gone/sub/g2", data=b"g2\n")
        _entry(t, "data/opq/o1", data=b"o1\n")
        _entry(t, "data/opq/inner/o2", data=b"o2\n")
        _entry(t, "data/file1", data=b"one\n", mode=0o640, uid=1000, gid=1001)
        _entry(t, "data/hl-src", data=b"shared\n", mode=0o600)
        _entry(t, "data/sym", tarfile.SYMTYPE, link="file1")
        _entry(t, "data/todelete", data=b"bye\n")
        _entry(t, "data/exec", data=b"#!/bin/sh\n", mode=0o4755)
    with tarfile.open(paths[1], "w") as t:
        _entry(t, "data/.wh.todelete")
        _entry(t, "data/.wh.gone")
        _entry(t, "data/opq", tarfile.DIRTYPE, mode=0o750)
        _entry(t, "data/opq/.wh..wh..opq")
        _entry(t, "data/opq/new", data=b"new\n")
        _entry(t, "data/keep/.wh.a")
        _entry(t, "data/keep/b", data=b"b\n", uid=5, gid=6)
        if link_down:
            _entry(t, "data/hl-link", tarfile.LNKTYPE, link=link_down)
    with tarfile.open(paths[2], "w") as t:
        _entry(t, "data/gone", tarfile.DIRTYPE, mode=0o700)
        _entry(t, "data/gone/again", data=b"again\n")
        _entry(t, "data/file1", data=b"changed\n", mode=0o600, uid=1000, gid=1001)
        _entry(t, "data/h1", data=b"pair\n")
        _entry(t, "data/h2", tarfile.LNKTYPE, link="data/h1")
        _entry(t, "data/sym", tarfile.SYMTYPE, link="/data/keep/b")
    return paths


def _normalize(lines: list[str], no_nlink: tuple[str, ...] = ()) -> list[str]:
    """Directory sizes and link counts depend on the filesystem, not the image: left out; and
    the link counts of `no_nlink`."""
    out = []
    for line in lines:
        name, mode, uid, gid, size, nlink = line.split("|")
        if int(mode, 16) & 0o170000 == 0o040000:
            size = nlink = "-"
        if name in no_nlink:
            nlink = "-"
        out.append("|".join((name, mode, uid, gid, size, nlink)))
    return sorted(out)


def _layout(tmp_path: Path, link_down: str | None) -> Path:
    """An OCI layout with busybox and, on top of it, the three layers as tag `final`."""
    layout = tmp_path / "layout"
    assert pyc("save", "busybox", "--format", "oci-dir", "-o", str(layout)).returncode == 0
    tag = "busybox:latest"
    for n, layer in enumerate(_layers(tmp_path, link_down)):
        new = f"l{n}" if n < 2 else "final"
        subprocess.run(["umoci", "raw", "add-layer", "--image", f"{layout}:{tag}", "--tag", new, str(layer)], check=True, capture_output=True)
        tag = new
    return layout


def _compare(oci: Path, via: str, other_store: dict[str, str], tmp_path: Path, no_nlink: tuple[str, ...] = ()) -> str:
    """Load `final` into pyc `via` a way; assert the tree a container sees is umoci's; the ref."""
    ref = _load(oci, via, other_store, tmp_path)
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{oci}:final", str(bundle)], check=True, capture_output=True)
    theirs = subprocess.run(["sh", "-c", f"find data | xargs stat -c '{STAT}'"], cwd=bundle / "rootfs", capture_output=True, text=True, check=True).stdout
    r = pyc("run", "--rm", ref, "sh", "-c", f"cd / && find data | xargs stat -c '{STAT}'", env=other_store)
    assert r.returncode == 0, r.stderr
    assert _normalize(r.stdout.splitlines(), no_nlink) == _normalize(theirs.splitlines(), no_nlink)
    assert len(theirs.splitlines()) > 10
    return ref


def _archive(oci: Path, via: str, tmp_path: Path) -> Path:
    """`final` as pyc-test/layers:1 in an archive of the format `via`."""
    archive = tmp_path / ("final" if via == "oci-dir" else "final.tar")
    dest = f"oci:{archive}:pyc-test/layers:1" if via == "oci-dir" else f"{via}:{archive}:pyc-test/layers:1"
    subprocess.run(["skopeo", "copy", f"oci:{oci}:final", dest], check=True, capture_output=True)
    return archive


def _load(oci: Path, via: str, other_store: dict[str, str], tmp_path: Path) -> str:
    """`final` into pyc's store: `pyc load` of an archive, or skopeo writing into the store
    (pyc unpacks its layers at the first run). The ref to run."""
    if via != "skopeo-into-store":
        r = pyc("load", "-i", str(_archive(oci, via, tmp_path)), env=other_store)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip().splitlines()[-1].removeprefix("Loaded image: ")
    store = Path(other_store["PYC_ROOT"]) / "oci"
    assert pyc("images", env=other_store).returncode == 0  # makes the layout
    subprocess.run(["skopeo", "copy", f"oci:{oci}:final", f"oci:{store}:pyc-test/layers:2"], check=True, capture_output=True)
    return "pyc-test/layers:2"


@pytest.mark.parametrize("via", ["oci-archive", "skopeo-into-store"])
def test_multi_layer_tree_equals_umoci_unpack(via: str, other_store: dict[str, str], tmp_path: Path) -> None:
    ref = _compare(_layout(tmp_path, None), via, other_store, tmp_path)
    # Symlink targets and contents, as umoci has them.
    r = pyc("run", "--rm", ref, "sh", "-c", "readlink /data/sym; cat /data/file1 /data/opq/new /data/gone/again", env=other_store)
    assert (r.returncode, r.stdout) == (0, "/data/keep/b\nchanged\nnew\nagain\n"), r.stderr


@pytest.mark.parametrize("via", ["oci-archive", "docker-archive", "oci-dir", "skopeo-into-store"])
def test_hardlink_to_a_file_of_an_earlier_layer(via: str, other_store: dict[str, str], tmp_path: Path) -> None:
    # Layers stay apart under overlayfs: the link is a copy there (as with docker's overlay2),
    # one link each, where umoci's single tree has one file with two.
    ref = _compare(_layout(tmp_path, "data/hl-src"), via, other_store, tmp_path, ("data/hl-src", "data/hl-link"))
    r = pyc("run", "--rm", ref, "sh", "-c", "cat /data/hl-link; stat -c '%a %u %Y %h' /data/hl-link /data/hl-src", env=other_store)
    assert (r.returncode, r.stdout) == (0, "shared\n600 0 1700000000 1\n600 0 1700000000 1\n"), r.stderr


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("../../etc/shadow", "unsafe path in archive: data/hl-link leads outside the layer"),
        ("data/nowhere", "hardlink data/hl-link: target data/nowhere is in no earlier layer"),
        ("data/todelete", "target data/todelete is in no earlier layer"),  # whited out just before
        ("data/opq/o1", "target data/opq/o1 is in no earlier layer"),  # its directory made opaque
    ],
)
def test_bad_hardlinks_to_earlier_layers_are_refused(target: str, says: str, other_store: dict[str, str], tmp_path: Path) -> None:
    oci = _layout(tmp_path, target)
    archive = _archive(oci, "oci-archive", tmp_path)
    root = Path(other_store["PYC_ROOT"])
    before: dict[str, tuple[int, int]] = {}
    for _ in range(2):  # the first makes the store's empty layout
        r = pyc("load", "-i", str(archive), env=other_store)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("pyc: ") and says in lines[0], r.stderr
        assert os.listdir(root / "layers") == [] and pyc("images", "-q", env=other_store).stdout == ""
        before = before or store_snapshot(root)
    assert store_snapshot(root) == before
    # Written into the store by skopeo, the layer is refused at the first run, and none of the
    # image's layers is kept: they are unpacked as one batch, all or nothing.
    ref = _load(oci, "skopeo-into-store", other_store, tmp_path)
    r = pyc("run", "--rm", ref, "true", env=other_store)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 125 and len(lines) == 1 and says in lines[0], r.stderr
    assert os.listdir(root / "layers") == []
    assert os.listdir(root / "tmp") == []


def test_a_layer_written_into_the_store_is_checked_against_its_digests(other_store: dict[str, str], tmp_path: Path) -> None:
    # A blob skopeo wrote into the store, then replaced by another valid tar: the first run
    # unpacks it, finds that it is not the layer the manifest names, and keeps none of it.
    oci = _layout(tmp_path, None)
    ref = _load(oci, "skopeo-into-store", other_store, tmp_path)
    root = Path(other_store["PYC_ROOT"])
    manifest = json.loads((root / "oci/blobs/sha256" / _manifest_hex(root, ref)).read_bytes())
    top = manifest["layers"][-1]["digest"].removeprefix("sha256:")
    with tarfile.open(root / "oci/blobs/sha256" / top, "w") as t:
        _entry(t, "data/intruder", data=b"not the layer\n")
    r = pyc("run", "--rm", ref, "true", env=other_store)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 125 and len(lines) == 1 and f"does not match its digest sha256:{top}" in lines[0], r.stderr
    assert os.listdir(root / "layers") == [] and os.listdir(root / "tmp") == []


def _manifest_hex(root: Path, ref: str) -> str:
    index = json.loads((root / "oci/index.json").read_bytes())
    return next(e["digest"] for e in index["manifests"] if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref).removeprefix("sha256:")
