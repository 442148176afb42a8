"""pyc image prune [-a] [-f] and pyc system df [-v], in a store of their own: what is deleted,
what is kept because a container or another image uses it, and how sizes add up."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import pyc, store_snapshot

from pyc.paths import Paths
from pyc.store.images import ImageStore

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox")]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A second store holding busybox (loaded from the session store); its containers removed after."""
    root = Path(tempfile.mkdtemp(prefix="pyc-test-prune-", dir="/var/tmp"))
    env = {**os.environ, "PYC_ROOT": str(root)}
    try:
        assert pyc("save", "busybox", "-o", str(tmp_path / "bb.tar")).returncode == 0
        assert pyc("load", "-i", str(tmp_path / "bb.tar"), env=env).returncode == 0
        yield env, root
    finally:
        for cid in pyc("ps", "-aq", env=env).stdout.split():
            pyc("rm", "-f", cid, env=env)
        shutil.rmtree(root, ignore_errors=True)


def _blobs(root: Path) -> set[str]:
    return set(os.listdir(root / "oci" / "blobs" / "sha256"))


def _image_id(env: dict[str, str], ref: str) -> str:
    return ImageStore(Paths(env["PYC_ROOT"])).lookup(ref).id


def test_prune_dangling_then_all(store: tuple[dict[str, str], Path]) -> None:
    env, root = store
    for name, text in (("c1", "one"), ("c2", "two"), ("c3", "three")):
        assert pyc("run", "--name", name, "busybox", "sh", "-c", f"echo {text} > /f", env=env).returncode == 0
    assert pyc("commit", "c1", "keep", env=env).returncode == 0
    assert pyc("commit", "c2", "moved", env=env).returncode == 0
    dangling = _image_id(env, "moved")
    dangling_layer = ImageStore(Paths(str(root))).lookup("moved").layers[-1]["digest"].removeprefix("sha256:")
    assert pyc("commit", "c3", "moved", env=env).returncode == 0  # the old `moved` loses its name
    assert pyc("rm", "c2", "c3", env=env).returncode == 0

    # Without -f a "no" at the prompt changes nothing.
    before = store_snapshot(root)
    r = pyc("image", "prune", input="n\n", env=env)
    assert (r.returncode, r.stderr) == (0, "") and "Are you sure" in r.stdout
    assert store_snapshot(root) == before

    r = pyc("image", "prune", "-f", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Deleted Images:\ndeleted: {dangling}\n\nTotal reclaimed space: ")
    assert not r.stdout.endswith(" 0B\n")
    assert dangling_layer not in _blobs(root)
    names = {line.split()[0] for line in pyc("images", env=env).stdout.splitlines()[1:]}
    assert names == {"busybox", "keep", "moved"}

    # -a: every image without a container; busybox stays, c1 uses it.
    r = pyc("image", "prune", "-a", "-f", env=env)
    assert r.returncode == 0, r.stderr
    assert "untagged: keep:latest" in r.stdout and "untagged: moved:latest" in r.stdout
    assert "busybox" not in r.stdout
    assert pyc("run", "--rm", "busybox", "true", env=env).returncode == 0
    bb = ImageStore(Paths(str(root))).lookup("busybox")
    assert _blobs(root) == {d.removeprefix("sha256:") for d in [bb.manifest_digest, bb.config_digest, *(x["digest"] for x in bb.layers)]}
    assert os.listdir(root / "layers") == [c.removeprefix("sha256:") for c in bb.chain_ids]

    assert pyc("rm", "c1", env=env).returncode == 0
    r = pyc("image", "prune", "-af", env=env)
    assert r.returncode == 0 and f"deleted: {bb.id}" in r.stdout
    assert _blobs(root) == set() and os.listdir(root / "layers") == []
    assert pyc("image", "prune", "-af", env=env).stdout == "Total reclaimed space: 0B\n"


def _size(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(B|kB|MB|GB)", text)
    assert m, text
    return float(m[1]) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m[2]]


def test_system_df(store: tuple[dict[str, str], Path]) -> None:
    env, root = store
    assert pyc("run", "--name", "c1", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /big", env=env).returncode == 0
    assert pyc("commit", "c1", "big", env=env).returncode == 0
    bb = ImageStore(Paths(str(root))).lookup("busybox")
    big = ImageStore(Paths(str(root))).lookup("big")

    r = pyc("system", "df", env=env)
    assert r.returncode == 0, r.stderr
    rows = {line[:15].strip(): line[15:].split() for line in r.stdout.splitlines()[1:]}
    assert r.stdout.split()[:5] == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    total, active, size, reclaim = rows["Images"][:4]
    assert (total, active) == ("2", "1")
    # The shared busybox layer counts once: the size is busybox's plus big's top layer.
    assert _size(size) == pytest.approx(bb.size + big.layers[-1]["size"], rel=0.01)
    assert _size(reclaim) == pytest.approx(big.layers[-1]["size"], rel=0.01)
    c_total, c_active, c_size = rows["Containers"][:3]
    assert (c_total, c_active, c_size) == ("1", "0", "300kB")
    assert rows["Local Volumes"][:3] == ["0", "0", "0B"]

    r = pyc("system", "df", "-v", env=env)
    assert r.returncode == 0, r.stderr
    by_repo = {line.split()[0]: line.split() for line in r.stdout.split("\n\n")[1].splitlines()[1:]}
    # REPOSITORY TAG ID CREATED... SIZE SHARED UNIQUE CONTAINERS: the last four columns.
    assert by_repo["busybox"][-4:] == [*(by_repo["busybox"][-4:-2]), "0B", "1"]
    assert by_repo["busybox"][-4] == by_repo["busybox"][-3]
    assert _size(by_repo["big"][-2]) == pytest.approx(big.layers[-1]["size"], rel=0.01)
    assert by_repo["big"][-1] == "0"
    assert "c1" in r.stdout.split("Containers space usage:")[1]


def test_system_prune_frees_what_df_said_was_reclaimable(store: tuple[dict[str, str], Path]) -> None:
    from pyc import Engine
    from pyc.cli.output import size

    env, root = store
    assert pyc("run", "--name", "stopped", "busybox", "sh", "-c", "head -c 300000 /dev/zero > /big", env=env).returncode == 0
    assert pyc("commit", "stopped", "unused", env=env).returncode == 0
    live = pyc("run", "-d", "--name", "live", "busybox", "sleep", "300", env=env).stdout.strip()
    leftover = root / "tmp" / f"{2**22 + 1}-x"  # a pid above any pid_max: what a killed load left
    leftover.mkdir(parents=True)
    (leftover / "blob").write_bytes(b"x" * 5000)
    engine = Engine(str(root))
    before = engine.disk_usage()
    stopped = sum(c.size for c in before.containers if c.status != "running")
    reclaimable = before.images_reclaimable + stopped + before.leftovers
    assert before.images_reclaimable > 0 and stopped == 300_000 and before.leftovers == 5000

    # The prompt names what goes; a "no" changes nothing.
    snapshot = store_snapshot(root)
    r = pyc("system", "prune", "-a", input="n\n", env=env)
    assert r.returncode == 0 and r.stdout == (
        "WARNING! This will remove:\n  - all stopped containers\n  - all images without at least one container associated to them\n  - all build cache\n\nAre you sure you want to continue? [y/N] "
    )
    assert store_snapshot(root) == snapshot

    r = pyc("system", "prune", "-a", "-f", env=env)
    assert r.returncode == 0, r.stderr
    stopped_id = next(c.id for c in before.containers if c.name == "stopped")
    unused_id = next(i.id for i in before.images if "unused:latest" in i.refs)
    assert r.stdout == f"Deleted Containers:\n{stopped_id}\n\nDeleted Images:\nuntagged: unused:latest\ndeleted: {unused_id}\n\nTotal reclaimed space: {size(reclaimable)}\n"
    after = engine.disk_usage()
    assert (after.images_reclaimable, after.leftovers, after.images_size) == (0, 0, before.images_size - before.images_reclaimable)
    assert [c.id for c in after.containers] == [live] and not leftover.exists()
    # Nothing more to free: the sections go, the total stays.
    assert pyc("system", "prune", "-f", env=env).stdout == "Total reclaimed space: 0B\n"
    assert pyc("rm", "-f", live, env=env).returncode == 0
