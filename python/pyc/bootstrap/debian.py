"""debian:latest from `debootstrap --variant=minbase`, using this machine's apt mirror."""

import os
import subprocess

from pyc.errors import PycError
from pyc.store.images import Image, ImageStore
from pyc.store.importer import default_config, import_rootfs
from pyc.store.ingest import temp_dir


def _apt_source() -> tuple[str, str]:
    """(mirror, suite) of this machine's Debian, from its apt sources."""
    suite = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    suite = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    mirror = ""
    parts = "/etc/apt/sources.list.d"
    candidates = ["/etc/apt/sources.list"] + ([os.path.join(parts, n) for n in sorted(os.listdir(parts))] if os.path.isdir(parts) else [])
    for path in candidates:
        try:
            with open(path) as f:
                for line in f:
                    words = line.split()
                    if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                        mirror = mirror or words[1]
                    elif words[:1] == ["deb"] and len(words) > 2 and "security" not in line:
                        mirror = mirror or next(w for w in words[1:] if "://" in w)
        except (OSError, StopIteration):
            continue
    if not mirror or not suite:
        raise PycError("cannot find this machine's Debian mirror and release in /etc/apt and /etc/os-release")
    return mirror, suite


def _drop_apt_caches(root: str) -> None:
    """What Debian's own container images leave out: downloaded packages and package lists
    (80 MB of a 200 MB minbase tree); `apt-get update` brings the lists back when needed."""
    import glob

    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"):
        for path in glob.glob(os.path.join(root, pattern)):
            os.unlink(path)


def make_debian(store: ImageStore, ref: str = "debian:latest", suite: str | None = None, mirror: str | None = None) -> Image:
    if not os.path.exists("/usr/sbin/debootstrap"):
        raise PycError("debootstrap is not installed (apt-get install debootstrap)")
    default_mirror, default_suite = _apt_source()
    suite, mirror = suite or default_suite, mirror or default_mirror
    store.ensure_layout()
    with temp_dir(store) as tmp:
        root = os.path.join(tmp, "rootfs")
        proc = subprocess.run(["debootstrap", "--variant=minbase", suite, root, mirror], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise PycError(f"debootstrap {suite} failed: {last[0]}")
        _drop_apt_caches(root)
        run_config = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["bash"]}
        return import_rootfs(store, root, ref, default_config(run_config, created_by=f"debootstrap --variant=minbase {suite}"))
