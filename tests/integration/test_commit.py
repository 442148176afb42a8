"""diff, commit, history: a container's changes read from its upper dir, stored as an OCI layer
(whiteouts as `.wh.` files) that pyc runs and umoci unpacks to the same tree."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import PYC, pyc, store_snapshot

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

# busybox has no /usr/share: it is made anew; /usr/sbin exists, so removing and making it again
# gives an opaque directory.
CHANGES = "echo new > /etc/new; echo x >> /etc/passwd; rm /bin/vi; rm -rf /usr/share && mkdir -p /usr/share/x; rm -rf /usr/sbin && mkdir -p /usr/sbin/x; ln /etc/new /etc/new.link"
LISTING = "find /etc /usr /bin -xdev"


def ok(*args: str) -> str:
    r = pyc(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def layer_names(store_root: Path, ref: str) -> list[str]:
    """The names in the image's top layer blob."""
    diff_id = json.loads(ok("image", "inspect", ref))[0]["RootFS"]["Layers"][-1]
    with tarfile.open(store_root / "oci" / "blobs" / "sha256" / diff_id[7:]) as t:
        return t.getnames()


@pytest.fixture
def committed() -> Iterator[None]:
    """Removes the images a test committed, and their layers: other tests look at the store's
    layers and expect only busybox's."""
    yield
    for name in ("changer", "changer2", "same", "badname"):
        pyc("rm", "-f", name)
    for ref in ("committed:2", "committed:1", "same:1"):
        pyc("rmi", "-f", ref)


@pytest.mark.usefixtures("committed")
def test_diff_commit_run_history(store_root: Path, tmp_path: Path) -> None:
    ok("run", "--name", "changer", "busybox", "sh", "-c", CHANGES)
    assert ok("diff", "changer").splitlines() == [
        "C /bin",
        "D /bin/vi",
        "C /etc",
        "A /etc/new",
        "A /etc/new.link",
        "C /etc/passwd",
        "C /usr",
        "C /usr/sbin",
        "A /usr/sbin/x",
        "A /usr/share",
        "A /usr/share/x",
    ]
    assert ok("container", "diff", "changer") == ok("diff", "changer")
    image_id = ok("commit", "-m", "first change", "-c", "ENV ADDED=yes", "changer", "committed:1").strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    info = json.loads(ok("image", "inspect", "committed:1"))[0]
    assert info["Id"] == image_id and len(info["RootFS"]["Layers"]) == 2
    assert "ADDED=yes" in info["Config"]["Env"] and any(e.startswith("PATH=") for e in info["Config"]["Env"])
    assert info["History"][-1]["comment"] == "first change"

    names = layer_names(store_root, "committed:1")
    assert {"bin/.wh.vi", "usr/sbin/.wh..wh..opq", "etc/new", "etc/passwd", "usr/share/x"} <= set(names)
    assert not any(n.startswith(("etc/hostname", "bin/sh")) for n in names)  # only the changes

    check = "ls /usr/sbin; cat /etc/new; tail -1 /etc/passwd; test -e /bin/vi || echo no vi; stat -c %i /etc/new /etc/new.link | uniq | wc -l; echo $ADDED"
    assert ok("run", "--rm", "committed:1", "sh", "-c", check) == "x\nnew\nx\nno vi\n1\nyes\n"

    # A commit on top of the committed image: three layers, each shown by history.
    ok("run", "--name", "changer2", "committed:1", "sh", "-c", "rm /etc/new; echo 2 > /etc/second")
    assert ok("diff", "changer2").splitlines() == ["C /etc", "D /etc/new", "A /etc/second"]
    ok("container", "commit", "changer2", "committed:2")
    assert ok("run", "--rm", "committed:2", "sh", "-c", "ls /etc/new /etc/second 2>&1; ls /usr/sbin") == "ls: /etc/new: No such file or directory\n/etc/second\nx\n"
    rows = ok("history", "committed:2").splitlines()
    assert rows[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(rows) == 4 and rows[1].startswith(image_id_of("committed:2")[7:19]) and rows[2].startswith("<missing>")
    assert "first change" in rows[2] and "rm /etc/new" in rows[1]
    assert [r.split()[0] for r in ok("image", "history", "committed:2").splitlines()] == [r.split()[0] for r in rows]

    # umoci unpacks the same tree pyc runs (a tag with ':' is fine in umoci's --image).
    for ref in ("committed:1", "committed:2"):
        bundle = tmp_path / ref.replace(":", "-")
        subprocess.run(["umoci", "unpack", "--image", f"{store_root}/oci:{ref}", str(bundle)], check=True, capture_output=True)
        theirs = subprocess.run(["find", "etc", "usr", "bin"], cwd=bundle / "rootfs", capture_output=True, text=True, check=True).stdout
        ours = ok("run", "--rm", ref, "sh", "-c", LISTING)
        assert sorted(ours.splitlines()) == sorted("/" + line for line in theirs.splitlines())


def image_id_of(ref: str) -> str:
    return str(json.loads(ok("image", "inspect", ref))[0]["Id"])


@pytest.mark.usefixtures("committed")
def test_commit_of_an_unchanged_container_and_history_rows() -> None:
    ok("run", "--name", "same", "busybox", "true")
    assert ok("diff", "same") == ""
    ok("commit", "same", "same:1")
    assert ok("run", "--rm", "same:1", "echo", "runs") == "runs\n"
    rows = ok("history", "same:1").splitlines()
    assert len(rows) == 3 and "1.02kB" in rows[1]  # an empty tar: two zero blocks


def assert_refused(root: Path, *args: str, says: str) -> None:
    before = store_snapshot(root)
    r = pyc(*args)
    assert r.returncode == 1, (r.returncode, r.stderr)  # docker's for any failure but run's
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyc: ") and says in lines[0], r.stderr
    assert store_snapshot(root) == before


def test_bad_input(store_root: Path) -> None:
    assert_refused(store_root, "commit", "no-such-container", "x:1", says="no such container: no-such-container")
    assert_refused(store_root, "diff", "no-such-container", says="no such container: no-such-container")
    assert_refused(store_root, "history", "no-such-image", says="no such image: no-such-image")
    ok("run", "--name", "badname", "busybox", "true")
    assert_refused(store_root, "commit", "badname", "Bad:Name", says="invalid reference format")
    assert_refused(store_root, "commit", "-c", "FROB x", "badname", "ok:1", says="invalid --change")


def test_a_running_container_is_refused(store_root: Path) -> None:
    p = subprocess.Popen([PYC, "run", "--name", "busy", "busybox", "sh", "-c", "echo ready; sleep 30"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        assert_refused(store_root, "commit", "busy", "busy:1", says="is running")
    finally:
        assert pyc("rm", "-f", "busy").returncode == 0
        p.wait()
        if p.stdout:
            p.stdout.close()
    assert "busy" not in pyc("ps", "-a", "--format", "{{.Names}}").stdout.split()
    # Its name was let go with it: another container may take it.
    assert pyc("create", "--name", "busy", "busybox", "true").returncode == 0
