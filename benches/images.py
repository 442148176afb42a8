"""Image work: pyc against podman, umoci and sha256sum, on the same Debian minbase rootfs.

Cases, each timed side by side in one run, on ext4 disk (/var/tmp) and on a tmpfs mounted for
the run:

    import       `pyc import ROOTFS.tar`            vs `podman import ROOTFS.tar`
    reimport     the same, each run right after the previous run's image was removed (rmi,
                 untimed) from the same store: the build-run-destroy cycle of the users
    load docker  `pyc load -i docker-archive.tar`   vs `podman load -i docker-archive.tar`
    load oci     `pyc load -i oci-archive.tar`      vs `podman load -i oci-archive.tar`
    reload       load docker and load oci, each run right after an rmi of the image, as reimport
    unpack       `pyc_core.unpack_layer(BLOB, DIR)` vs `umoci unpack --image LAYOUT DIR`
                 (pyc has no user command that unpacks an OCI layout: a fresh python process
                 calls the binding on the layout's layer blob, hashing it as umoci does)
    save         `pyc save` docker-archive          vs `podman save` docker-archive
    save-oci     `pyc save` oci-archive             vs `podman save` oci-archive
    sha256       `pyc_core.sha256_file` (in process) vs `sha256sum`, on a 1 GiB file

The rootfs is made once with debootstrap --variant=minbase from this machine's apt mirror (as
`pyc image bootstrap debian` does, apt caches dropped) and its tar is cached under
/var/tmp/pyc-bench-images/. The archives pyc and podman load are the ones podman saves, so both
read the same bytes. Every tool gets a store on the filesystem measured: pyc a $PYC_ROOT, podman
its own --root/--runroot (runc, ulimits this host allows). Before each timed command the page
cache is written back (sync) so one tool does not pay for another's writes; what each command
writes it syncs itself. Between runs the image is removed, untimed. Everything made is removed
at the end, also on failure or Ctrl-C, and the tmpfs is unmounted.

Run as root, from the repository, after building the venv:

    .venv/bin/python benches/images.py [--runs N] [--disk | --tmpfs] [--cases import,load,...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

# pyc's containers run on --network none here, as podman's: no bridge, veth or rule is made.
os.environ.setdefault("PYC_DEFAULT_NETWORK", "none")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYC = os.path.join(REPO, ".venv", "bin", "pyc")
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
CACHE = "/var/tmp/pyc-bench-images"
ROOTFS_TAR = os.path.join(CACHE, "debian-minbase.tar")
Argv = list[str] | Callable[[], list[str]]
CASES = ("import", "reimport", "load-docker", "load-oci", "reload-docker", "reload-oci", "unpack", "save", "save-oci", "sha256")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""


def rootfs_tar() -> str:
    """The cached tar of a debootstrap minbase rootfs, made on first use."""
    if os.path.exists(ROOTFS_TAR):
        return ROOTFS_TAR
    sys.path.insert(0, os.path.join(REPO, "python"))
    from pyc.bootstrap.debian import _apt_source, _drop_apt_caches

    mirror, suite = _apt_source()
    os.makedirs(CACHE, exist_ok=True)
    root = tempfile.mkdtemp(dir=CACHE)
    try:
        print(f"debootstrap --variant=minbase {suite} (once, cached in {CACHE}) ...", file=sys.stderr)
        subprocess.run(["debootstrap", "--variant=minbase", suite, root, mirror], check=True, capture_output=True)
        _drop_apt_caches(root)
        subprocess.run(["tar", "-C", root, "--numeric-owner", "--xattrs", "-cf", ROOTFS_TAR + ".tmp", "."], check=True)
        os.rename(ROOTFS_TAR + ".tmp", ROOTFS_TAR)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return ROOTFS_TAR


class Bench:
    """One filesystem's run: the stores, the inputs, the timings."""

    def __init__(self, base: str, runs: int) -> None:
        self.base, self.runs = base, runs
        self.runroot = tempfile.mkdtemp(prefix="pycbench.", dir="/run")
        self.env = dict(os.environ, PYC_ROOT=os.path.join(base, "pyc"), CONTAINERS_CONF=os.path.join(base, "containers.conf"))
        with open(self.env["CONTAINERS_CONF"], "w") as f:
            f.write(CONTAINERS_CONF)
        # Two podman stores: one holds the source image the archives are saved from, the other
        # is where the timed imports and loads land and is emptied after each run.
        self.podman_src = self._podman("src")
        self.podman = self._podman("timed")
        self.stores = 0
        self.used = [self.podman_src, self.podman]
        self.rows: list[tuple[str, float, str, float]] = []

    def _podman(self, name: str) -> list[str]:
        # podman wants a runroot path under 50 characters: its run state goes to /run.
        return ["podman", "--root", os.path.join(self.base, f"podman-{name}"), "--runroot", os.path.join(self.runroot, name), "--storage-driver", "overlay"]

    def sh(self, *args: str) -> str:
        return subprocess.run(list(args), env=self.env, check=True, capture_output=True, text=True).stdout

    def quiet(self, *args: str) -> None:
        subprocess.run(list(args), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def timed(self, argv: Argv, after: Callable[[], None] | None = None) -> list[float]:
        times = []
        for _ in range(self.runs):
            cmd = argv() if callable(argv) else argv  # made per run: the store may be new
            os.sync()
            t = time.perf_counter()
            subprocess.run(cmd, env=self.env, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
            if after:
                after()
        return times

    def pair(self, case: str, pyc: tuple[Argv, Callable[[], None] | None], peer_name: str, peer: tuple[Argv, Callable[[], None] | None]) -> None:
        # Interleave the tools run by run so drift in the machine's load hits both alike.
        a: list[float] = []
        b: list[float] = []
        runs, self.runs = self.runs, 1
        try:
            for _ in range(runs):
                a += self.timed(*pyc)
                b += self.timed(*peer)
        finally:
            self.runs = runs
        self.rows.append((case, statistics.median(a), peer_name, statistics.median(b)))
        print(f"  {case:<12} pyc {statistics.median(a):7.3f} s   {peer_name} {statistics.median(b):7.3f} s", file=sys.stderr)

    # Each run lands in a fresh store and nothing is deleted until the end: ext4 (without a
    # journal, as here) skips inodes freed in the last minutes when it allocates new ones, so
    # a run right after a deletion of 6,700 files spends seconds in the kernel's inode search
    # (perf: recently_deleted) unless the new tree goes to a block group of its own, as pyc's
    # store asks (store/placement.py). The reimport case measures that cycle on purpose.
    def empty_pyc(self) -> None:
        self.stores += 1
        self.env["PYC_ROOT"] = os.path.join(self.base, f"pyc-{self.stores}")

    def empty_podman(self) -> None:
        self.stores += 1
        self.podman = self._podman(f"timed-{self.stores}")
        self.used.append(self.podman)

    def run(self, cases: list[str], tar: str) -> None:
        local_tar = os.path.join(self.base, "rootfs.tar")
        shutil.copyfile(tar, local_tar)
        if "import" in cases:
            self.pair("import", ([PYC, "import", local_tar, "bench:1"], self.empty_pyc), "podman", (lambda: [*self.podman, "import", local_tar, "localhost/bench:1"], self.empty_podman))
        if "reimport" in cases:
            self.empty_pyc()
            self.empty_podman()
            rmi_pyc = lambda: self.sh(PYC, "rmi", "bench:2") and None  # noqa: E731
            rmi_podman = lambda: self.sh(*self.podman, "rmi", "localhost/bench:2") and None  # noqa: E731
            self.pair("reimport", ([PYC, "import", local_tar, "bench:2"], rmi_pyc), "podman", ([*self.podman, "import", local_tar, "localhost/bench:2"], rmi_podman))
        # The archives every other case reads: podman's, made once.
        self.sh(*self.podman_src, "import", local_tar, "localhost/src:1")
        docker_tar, oci_tar = os.path.join(self.base, "docker.tar"), os.path.join(self.base, "oci.tar")
        self.sh(*self.podman_src, "save", "--format", "docker-archive", "-o", docker_tar, "localhost/src:1")
        self.sh(*self.podman_src, "save", "--format", "oci-archive", "-o", oci_tar, "localhost/src:1")
        for kind, archive in (("docker", docker_tar), ("oci", oci_tar)):
            if f"load-{kind}" in cases:
                self.pair(f"load {kind}", ([PYC, "load", "-q", "-i", archive], self.empty_pyc), "podman", (lambda archive=archive: [*self.podman, "load", "-q", "-i", archive], self.empty_podman))
        for kind, archive in (("docker", docker_tar), ("oci", oci_tar)):
            if f"reload-{kind}" in cases:
                self.empty_pyc()
                self.empty_podman()
                rmi_pyc = lambda: self.sh(PYC, "rmi", "localhost/src:1") and None  # noqa: E731
                rmi_podman = lambda: self.sh(*self.podman, "rmi", "localhost/src:1") and None  # noqa: E731
                self.pair(f"reload {kind}", ([PYC, "load", "-q", "-i", archive], rmi_pyc), "podman", ([*self.podman, "load", "-q", "-i", archive], rmi_podman))
        if "unpack" in cases:
            layout = os.path.join(self.base, "layout")
            self.sh("skopeo", "copy", f"oci-archive:{oci_tar}", f"oci:{layout}:latest")
            blob = self.layer_blob(layout)
            # Each run unpacks into a new directory under base (see empty_pyc for why).
            unpack = f"import tempfile, pyc_core; pyc_core.unpack_layer({blob!r}, tempfile.mkdtemp(dir={self.base!r}))"
            umoci = f"exec umoci unpack --image {layout}:latest $(mktemp -u -d -p {self.base} bundle.XXXXXX)"
            self.pair("unpack", ([PYTHON, "-c", unpack], None), "umoci", (["sh", "-c", umoci], None))
        if "save" in cases or "save-oci" in cases:
            self.sh(PYC, "load", "-q", "-i", docker_tar)
            out = os.path.join(self.base, "out.tar")
            drop = lambda: os.unlink(out)  # noqa: E731
            for case, fmt in (("save", "docker-archive"), ("save-oci", "oci-archive")):
                if case in cases:
                    self.pair(case, ([PYC, "save", "--format", fmt, "-o", out, "localhost/src:1"], drop), "podman", ([*self.podman_src, "save", "--format", fmt, "-o", out, "localhost/src:1"], drop))
        if "sha256" in cases:
            self.sha256()

    def layer_blob(self, layout: str) -> str:
        import json

        with open(os.path.join(layout, "index.json")) as f:
            manifest = json.load(f)["manifests"][0]["digest"].split(":")[1]
        with open(os.path.join(layout, "blobs", "sha256", manifest)) as f:
            layer = json.load(f)["layers"][0]["digest"].split(":")[1]
        return os.path.join(layout, "blobs", "sha256", layer)

    def sha256(self) -> None:
        path = os.path.join(self.base, "1g")
        with open(path, "wb") as f:
            for _ in range(1024):
                f.write(os.urandom(1 << 20))
        script = "import sys, time, pyc_core; pyc_core.sha256_file(sys.argv[1]); t = time.perf_counter(); pyc_core.sha256_file(sys.argv[1]); print(time.perf_counter() - t)"
        a, b = [], []
        for _ in range(self.runs):
            a.append(float(subprocess.run([PYTHON, "-c", script, path], check=True, capture_output=True, text=True).stdout))
            t = time.perf_counter()
            subprocess.run(["sha256sum", path], check=True, stdout=subprocess.DEVNULL)
            b.append(time.perf_counter() - t)
        os.unlink(path)
        gib = (1 << 30) / 1e9
        self.rows.append(("sha256 1 GiB", statistics.median(a), "sha256sum", statistics.median(b)))
        print(f"  sha256       pyc {gib / statistics.median(a):.2f} GB/s   sha256sum {gib / statistics.median(b):.2f} GB/s", file=sys.stderr)

    def cleanup(self) -> None:
        # podman's overlay store leaves mounts behind; its own reset removes them.
        for podman in self.used:
            self.quiet(*podman, "system", "reset", "-f")
        shutil.rmtree(self.runroot, ignore_errors=True)


@contextlib.contextmanager
def place(kind: str) -> Iterator[str]:
    """A scratch directory on ext4 disk (/var/tmp) or on a tmpfs mounted for the run."""
    base = tempfile.mkdtemp(prefix="pyc-bench-images.", dir="/var/tmp")
    try:
        if kind == "tmpfs":
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=14g", "pycbench", base], check=True)
        try:
            yield base
        finally:
            if kind == "tmpfs":
                subprocess.run(["umount", "-l", base], check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--disk", action="store_const", dest="where", const=["disk"])
    where.add_argument("--tmpfs", action="store_const", dest="where", const=["tmpfs"])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {','.join(CASES)}")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benches/images.py: run as root")
    tar = rootfs_tar()
    cases = args.cases.split(",")
    results: dict[str, list[tuple[str, float, str, float]]] = {}
    for kind in args.where or ["disk", "tmpfs"]:
        print(f"{kind}:", file=sys.stderr)
        with place(kind) as base:
            bench = Bench(base, args.runs)
            try:
                bench.run(cases, tar)
            finally:
                bench.cleanup()
            results[kind] = bench.rows
    print(f"\nmedians of {args.runs} runs; ratio = peer / pyc (above 1: pyc is faster)")
    print("| work | where | pyc | peer | peer time | ratio |\n| --- | --- | --- | --- | --- | --- |")
    for kind, rows in results.items():
        for case, a, peer, b in rows:
            print(f"| {case} | {kind} | {a:.3f} s | {peer} | {b:.3f} s | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
