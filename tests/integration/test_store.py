"""The image store without containers, as an unprivileged user may use it (the tier that runs
without root, tests/conftest.py): what load, import, rmi, prune and df leave on disk, the cache
of the index, and what killed commands leave. Checked in the store itself: the unpacked layers,
blobs, index and cache, not by running a container."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from tests.conftest import pyc, tar_bytes

from pyc.paths import Paths
from pyc.store.images import ImageStore

pytestmark = [pytest.mark.usefixtures("busybox")]


def tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under `root`: (type and mode, size of a file, target of a link)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size if stat.S_ISREG(st.st_mode) else 0, os.readlink(p) if stat.S_ISLNK(st.st_mode) else "")
    return out


def layer_dirs(root: str, ref: str) -> list[Path]:
    paths = Paths(root)
    return [Path(paths.layer(c)) for c in ImageStore(paths).lookup(ref).chain_ids]


def image_id(ref: str, env: dict[str, str] | None = None) -> str:
    r = pyc("image", "inspect", "--format", "{{.Id}}", ref, env=env)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci-dir"])
def test_a_loaded_image_is_the_saved_one(fmt: str, tmp_path: Path, store_root: Path, other_store: dict[str, str]) -> None:
    out = tmp_path / "bb"
    assert pyc("save", "busybox", "-o", str(out), "--format", fmt).returncode == 0
    r = pyc("load", "-i", str(out), env=other_store)
    assert (r.returncode, r.stdout, r.stderr) == (0, "Loaded image: busybox:latest\n", "")
    assert image_id("busybox", other_store) == image_id("busybox")
    (mine,), (theirs,) = layer_dirs(str(store_root), "busybox"), layer_dirs(other_store["PYC_ROOT"], "busybox")
    assert tree(theirs) == tree(mine) and len(tree(mine)) > 200
    assert os.stat(theirs / "bin" / "busybox").st_uid == os.getuid()  # root's in the namespace


def test_the_index_cache_follows_the_index(other_store: dict[str, str], tmp_path: Path) -> None:
    """images.cache is rebuilt when index.json changes, and is only a cache: deleted or
    corrupt, it is made again from the index."""
    root = Path(other_store["PYC_ROOT"])
    source = tmp_path / "layer.tar"
    source.write_bytes(tar_bytes({"a": b"a\n"}))
    assert pyc("import", str(source), "one:1", env=other_store).returncode == 0
    assert pyc("images", env=other_store).stdout.split()[6:8] == ["one", "1"]
    cache = root / "images.cache"
    assert cache.exists()
    # Another writer of the index (a tag by the API, say): the next look-up sees it.
    ImageStore(Paths(str(root))).tag("one:1", "two:2")
    assert {line.split()[0] for line in pyc("images", env=other_store).stdout.splitlines()[1:]} == {"one", "two"}
    for damage in (b"", b"\xc1garbage", b"\x81\xa3key\x05"):
        cache.write_bytes(damage)
        r = pyc("image", "inspect", "--format", "{{.RepoTags}}", "two:2", env=other_store)
        assert (r.returncode, r.stdout) == (0, "[one:1 two:2]\n"), r.stderr
    cache.unlink()
    assert pyc("images", "-q", env=other_store).stdout.split() == [image_id("one:1", other_store)[7:19]]
    assert cache.exists()


def test_rmi_frees_what_nothing_else_uses(other_store: dict[str, str], tmp_path: Path) -> None:
    """Untagging one of an image's two names frees nothing; removing its last name frees its
    layer, its blobs and its name."""
    root = other_store["PYC_ROOT"]
    (tmp_path / "base.tar").write_bytes(tar_bytes({"base/f": b"base\n"}))
    assert pyc("import", str(tmp_path / "base.tar"), "base:1", env=other_store).returncode == 0
    assert pyc("tag", "base:1", "alias:1", env=other_store).returncode == 0
    (base_layer,) = layer_dirs(root, "base:1")
    r = pyc("rmi", "alias:1", env=other_store)
    assert (r.returncode, r.stdout) == (0, "Untagged: alias:1\n"), r.stderr
    assert base_layer.is_dir()
    r = pyc("rmi", "base:1", env=other_store)
    assert r.returncode == 0 and "Deleted: sha256:" in r.stdout, r.stderr
    assert not base_layer.exists() and os.listdir(Path(root) / "layers") == []
    assert os.listdir(Path(root) / "oci" / "blobs" / "sha256") == []
    r = pyc("rmi", "base:1", env=other_store)
    assert (r.returncode, r.stderr) == (1, "pyc: no such image: base:1\n")


def test_prune_and_df(other_store: dict[str, str], tmp_path: Path) -> None:
    """An image that lost its name to a newer one is dangling: `image prune -f` removes it,
    `-af` every image; df counts each layer once, and what a killed command left in tmp/."""
    root = Path(other_store["PYC_ROOT"])
    for n in (1, 2):
        (tmp_path / f"{n}.tar").write_bytes(tar_bytes({"f": f"{n}\n".encode() * 1000}))
        assert pyc("import", str(tmp_path / f"{n}.tar"), "moved:1", env=other_store).returncode == 0
    r = pyc("images", env=other_store)
    assert sorted(line.split()[:2] for line in r.stdout.splitlines()[1:]) == [["<none>", "<none>"], ["moved", "1"]]
    # What an import killed midway leaves: a temp dir (its lock gone with it).
    leftover = root / "tmp" / "12345-deadbeef"
    (leftover / "layer").mkdir(parents=True)
    (leftover / "layer" / "junk").write_bytes(b"x" * 200_000)
    r = pyc("system", "df", env=other_store)
    rows = {line[:15].strip(): line[15:].split() for line in r.stdout.splitlines()[1:]}
    assert rows["Images"][:2] == ["2", "0"] and rows["Leftovers"][0] == "200kB", r.stdout
    r = pyc("image", "prune", "-f", env=other_store)
    assert r.returncode == 0 and r.stdout.count("deleted: sha256:") == 1 and "Total reclaimed space: 2" in r.stdout, r.stdout
    assert not leftover.exists()
    assert [line.split()[:2] for line in pyc("images", env=other_store).stdout.splitlines()[1:]] == [["moved", "1"]]
    assert pyc("image", "prune", "-af", env=other_store).returncode == 0
    assert os.listdir(root / "layers") == [] and os.listdir(root / "oci" / "blobs" / "sha256") == []
    assert json.loads((root / "oci" / "index.json").read_text())["manifests"] == []
