"""Shared fixtures. Integration tests run real containers and need root; they share one store
(one busybox bootstrap per session) and each test checks that it leaves nothing behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyc import launcher

# The `pyc` users run: the launcher setup.sh installs (pyc/launcher.py), for this venv.
_LAUNCHER_DIR = tempfile.mkdtemp(prefix="pyc-test-launcher-")
os.chmod(_LAUNCHER_DIR, 0o755)
PYC = launcher.write(os.path.join(_LAUNCHER_DIR, "pyc"))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_LAUNCHER_DIR, ignore_errors=True)


def real_root() -> bool:
    """Root of the host, not root of a user namespace (`unshare -r`), whose uid 0 is another
    user's outside: it may chown to 0, not mount overlays, make cgroups or devices."""
    if os.geteuid() != 0:
        return False
    with open("/proc/self/uid_map") as f:
        return f.read().split() == ["0", "0", "4294967295"]


# The tiers: a test marked `root` needs the host's root and is skipped without it. Every other
# test, the store, archive, gc and cache tests among them, must pass as an unprivileged user
# in a user namespace of its own (test.sh runs them so as root too, as nobody): one that needs
# root without saying so fails there, it is never skipped.
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if real_root():
        return
    skip = pytest.mark.skip(reason="needs root: real namespaces, overlayfs mounts and cgroups")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


# This run's containers get cgroups under a parent of its own: a leak check then sees this run's
# leaks only, not the containers of another pyc (or test run) on the same host.
CGROUP_PARENT = f"pyc-test-{os.getpid()}"
os.environ["PYC_CGROUP_PARENT"] = CGROUP_PARENT


def cgroup_dirs(cid: str = "") -> list[Path]:
    """The directories of this run's cgroup parent (or of one container's cgroup) that exist,
    in every hierarchy: the root itself on pure v2, each v1 hierarchy and the unified mount of
    a hybrid host, and the root PYC_CGROUP_ROOT names."""
    roots = {Path("/sys/fs/cgroup"), Path(os.environ.get("PYC_CGROUP_ROOT") or "/sys/fs/cgroup")}
    hierarchies = {h for r in roots for h in [r, *(p for p in r.iterdir() if p.is_dir() and not p.is_symlink())]}
    rel = f"{CGROUP_PARENT}/{cid}" if cid else CGROUP_PARENT
    return sorted(h / rel for h in hierarchies if (h / rel).exists())


@pytest.fixture(scope="session")
def store_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pyc-test-", dir="/var/tmp"))
    old = os.environ.get("PYC_ROOT")
    os.environ["PYC_ROOT"] = str(root)
    try:
        yield root
    finally:
        if old is None:
            os.environ.pop("PYC_ROOT", None)
        else:
            os.environ["PYC_ROOT"] = old
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def other_store() -> Iterator[dict[str, str]]:
    """The environment of a pyc with a second store of its own, empty, removed after."""
    root = tempfile.mkdtemp(prefix="pyc-test-other-", dir="/var/tmp")
    try:
        yield {**os.environ, "PYC_ROOT": root}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def tar_bytes(files: dict[str, bytes]) -> bytes:
    """A tar of regular files (name: content)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="session")
def busybox(store_root: Path) -> str:
    proc = subprocess.run([PYC, "image", "bootstrap", "busybox"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return "busybox"


def pyc(*args: str, input: bytes | str | None = None, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the pyc CLI as a user would; text output."""
    if isinstance(input, bytes):
        input = input.decode()
    return subprocess.run([PYC, *args], capture_output=True, text=True, input=input, timeout=timeout, env=env)


def store_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under the store with its size and mtime: to show a command changed nothing.
    images.cache is left out: any image look-up may refresh that cache of the index. So is the
    events journal: a container running meanwhile logs its start or end there whenever it comes.
    pyc.db is compared by its rows, not its files: SQLite moves pages from its WAL into pyc.db
    whenever a last connection closes, which changes no row."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if p == os.path.join(root, "images.cache") or (dirpath == str(root) and name.startswith(("pyc.db", "events.log"))):
                continue
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns if not os.path.isdir(p) else 0)
    out["pyc.db rows"] = _db_rows(Path(root) / "pyc.db")
    return out


def _db_rows(path: Path) -> tuple[int, int]:
    """(row count, a hash of every row) of pyc.db's containers table."""
    if not path.exists():
        return (0, 0)
    db = sqlite3.connect(path)
    try:
        rows = sorted(db.execute("SELECT id, name, created, record FROM containers").fetchall())
    finally:
        db.close()
    return (len(rows), int(hashlib.sha256(repr(rows).encode()).hexdigest()[:15], 16))


def leftovers(cid: str) -> list[str]:
    """Mounts, cgroups and directories a container could leave behind."""
    found = []
    with open("/proc/self/mountinfo") as f:
        found += [line.split()[4] for line in f if cid in line]
    found += [str(d) for d in cgroup_dirs(cid)]
    root = Path(os.environ["PYC_ROOT"])
    if (root / "containers" / cid).exists():
        found.append(str(root / "containers" / cid))
    return found


@pytest.fixture
def clean_containers(store_root: Path) -> Iterator[None]:
    """Removes the containers a test left (stopped ones it kept on purpose) after it."""
    before = set(os.listdir(store_root / "containers")) if (store_root / "containers").exists() else set()
    yield
    after = set(os.listdir(store_root / "containers")) if (store_root / "containers").exists() else set()
    for cid in after - before:
        pyc("rm", "-f", cid)
