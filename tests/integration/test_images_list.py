"""pyc images: docker's columns (tests/golden/docker/images*.txt), --format fields
(images.json), --digests, --no-trunc, --filter dangling, reference, before, since."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import pyc

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox")]

DOCKER = Path(__file__).parent.parent / "golden" / "docker"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A store of its own: busybox (loaded from the session store) as busybox and busybox:two,
    mine:1 committed twice (the first one dangling since)."""
    root = tempfile.mkdtemp(prefix="pyc-test-images-", dir="/var/tmp")
    env = {**os.environ, "PYC_ROOT": root}
    try:
        assert pyc("save", "busybox", "-o", str(tmp_path / "bb.tar")).returncode == 0
        assert pyc("load", "-i", str(tmp_path / "bb.tar"), env=env).returncode == 0
        assert pyc("tag", "busybox", "busybox:two", env=env).returncode == 0
        assert pyc("run", "--name", "c1", "busybox", "sh", "-c", "echo 1 > /f", env=env).returncode == 0
        assert pyc("commit", "c1", "mine:1", env=env).returncode == 0
        assert pyc("run", "--name", "c2", "busybox", "sh", "-c", "echo 2 > /f", env=env).returncode == 0
        time.sleep(1.1)  # an image's time is to the second: the second mine:1 is the newer one
        assert pyc("commit", "c2", "mine:1", env=env).returncode == 0
        yield env
    finally:
        for cid in pyc("ps", "-aq", env=env).stdout.split():
            pyc("rm", "-f", cid, env=env)
        shutil.rmtree(root, ignore_errors=True)


def _header(name: str) -> list[str]:
    """A golden table's column titles (two words for IMAGE ID)."""
    return (DOCKER / name).read_text().splitlines()[0].replace("IMAGE ID", "IMAGE_ID").split()


def _columns(out: str) -> list[str]:
    return out.splitlines()[0].replace("IMAGE ID", "IMAGE_ID").split()


def test_columns_and_fields_are_dockers(store: dict[str, str]) -> None:
    for args, golden in (([], "images.txt"), (["--digests"], "images-digests.txt"), (["--no-trunc"], "images-no-trunc.txt")):
        r = pyc("images", *args, env=store)
        assert r.returncode == 0, r.stderr
        assert _columns(r.stdout) == _header(golden)
    rows = [json.loads(line) for line in pyc("images", "--format", "json", env=store).stdout.splitlines()]
    assert sorted(rows[0]) == sorted(json.loads((DOCKER / "images.json").read_text()))
    assert sorted((r["Repository"], r["Tag"]) for r in rows) == [("<none>", "<none>"), ("busybox", "latest"), ("busybox", "two"), ("mine", "1")]
    templated = [json.loads(line) for line in pyc("images", "--format", "{{json .}}", env=store).stdout.splitlines()]
    assert [r | {"CreatedSince": ""} for r in templated] == [r | {"CreatedSince": ""} for r in rows]  # a second may pass
    full = {r["Repository"] + ":" + r["Tag"]: r for r in (json.loads(x) for x in pyc("images", "--no-trunc", "--format", "json", env=store).stdout.splitlines())}
    assert full["busybox:latest"]["ID"].startswith("sha256:") and len(full["busybox:latest"]["ID"]) == 71
    # A digest is a registry's name for an image: one never pulled nor pushed has none, as in docker.
    assert full["busybox:latest"]["Digest"] == "<none>" and full["busybox:latest"]["ID"][7:19] == next(r["ID"] for r in rows if r["Tag"] == "latest")
    r = pyc("images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", env=store)
    assert "busybox:two " in r.stdout


def test_filters(store: dict[str, str]) -> None:
    def names(*filters: str) -> list[str]:
        r = pyc("images", *(a for f in filters for a in ("--filter", f)), "--format", "{{.Repository}}:{{.Tag}}", env=store)
        assert r.returncode == 0, r.stderr
        return sorted(r.stdout.split())

    assert names("dangling=true") == ["<none>:<none>"]
    assert names("dangling=false") == ["busybox:latest", "busybox:two", "mine:1"]
    assert names("reference=busybox") == ["busybox:latest", "busybox:two"]  # the name, every tag (docker's)
    assert names("reference=busybox:latest") == ["busybox:latest"]
    assert names("reference=busy*") == ["busybox:latest", "busybox:two"]
    assert names("reference=*:t?o") == ["busybox:two"]
    assert names("reference=mine", "reference=busybox:two") == ["busybox:two", "mine:1"]
    assert names("since=busybox") == ["<none>:<none>", "mine:1"]
    assert names("before=mine:1") == ["<none>:<none>", "busybox:latest", "busybox:two"]
    assert names("label=nothing") == []
    assert pyc("images", "-q", "--filter", "dangling=true", env=store).stdout.count("\n") == 1
    for bad in ("colour=red", "dangling=maybe", "before=no-such-image"):
        r = pyc("images", "--filter", bad, env=store)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, (bad, r)
