"""Small files: import and load of a layer of 100,000 small files and of the Debian minbase
layer, pyc against `tar -x` (+ syncfs on disk) and podman, side by side in one run.

Layers (plain, uncompressed tars, cached in /var/tmp/pyc-bench-unpack/):

    100k     100 directories of 1,000 files of 100 to 900 bytes (made by this bench): 100 MB
    minbase  debootstrap --variant=minbase (benches/images.py's cached tar): 6,700 entries

Work, each row timed per tool, the tools interleaved run by run (each first in turn), each timed
run after a sync and a rest (--settle, 2 s: the kernel still frees what the last run removed):

    import   `pyc import L.tar`        `podman import L.tar`        `tar -xf L.tar -C DIR`
    load     `pyc load -i docker.tar`  `podman load -i docker.tar`  (the same tar -x as import)

The docker archives are podman's (`podman save`), so pyc and podman read the same bytes. On a
disk, tar -x is followed by `sync -f DIR` (syncfs): pyc and podman sync what they write.

Places:

    tmpfs    a tmpfs mounted for the run; what a run made is removed, untimed, after it
    fresh    an ext4 filesystem made for each run on a loop file (direct I/O to the backing
             file, so syncs reach the disk; no journal, as the store's disk here; inode tables
             written by mkfs), where nothing was deleted yet
    rmi      /var/tmp, the store's disk: each run right after the previous run's result was
             removed (pyc rmi, podman rmi, rm -rf), the build-run-destroy cycle

Each run's CPU time (user and system, the tool's process and what it waited for) is reported
beside its wall time: on a machine shared with other work the wall times of tools that use
two cores and of tools that use one move differently.

Several pyc builds can be timed in the same run (`--pyc before=/path/to/.venv/bin/pyc`), so a
change is measured against the code before it under the same load. The output ends with the
issue's targets (#12) that the run measured, each with its ratio and whether it is met; those
"no slower than before" need a second build, the first named being the one judged. Everything made is removed
at the end, also on failure, Ctrl-C or SIGTERM: mounts, loop devices, files, podman stores.

Run as root, from the repository, after building the venv:

    .venv/bin/python benches/unpack.py [--runs N] [--places tmpfs,fresh,rmi] [--layers 100k,minbase]
        [--work import,load] [--tools pyc,tar,podman] [--pyc NAME=PATH ...] [--settle SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import CONTAINERS_CONF, rootfs_tar  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = "/var/tmp/pyc-bench-unpack"
PLACES = ("tmpfs", "fresh", "rmi")
LAYERS = ("100k", "minbase")
WORK = ("import", "load")
LOOP_SIZE = 8 << 30
# (place, layer, work, tool, elapsed seconds per run, CPU seconds per run)
Row = tuple[str, str, str, str, list[float], list[float]]


def many_files_tar() -> str:
    """The 100k layer: 100 dirs x 1,000 files of 100-900 bytes, made once."""
    path = os.path.join(CACHE, "100k.tar")
    if os.path.exists(path):
        return path
    os.makedirs(CACHE, exist_ok=True)
    rng = random.Random(0)
    with tarfile.open(path + ".tmp", "w", format=tarfile.GNU_FORMAT) as t:
        for d in range(100):
            info = tarfile.TarInfo(f"d{d:03}")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            t.addfile(info)
            for f in range(1000):
                data = rng.randbytes(rng.randint(100, 900))
                info = tarfile.TarInfo(f"d{d:03}/f{f:04}")
                info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
                t.addfile(info, _Bytes(data))
    os.rename(path + ".tmp", path)
    return path


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        out, self.pos = self.data[self.pos : end], min(end, len(self.data))
        return out


def docker_archive(name: str, tar: str, env: dict[str, str]) -> str:
    """podman's docker-archive of a one-layer image of `tar`, made once."""
    path = os.path.join(CACHE, f"{name}-docker.tar")
    if os.path.exists(path):
        return path
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        podman = podman_argv(tmp, "/run/pyc-bench-unpack-src")
        try:
            subprocess.run([*podman, "import", tar, "localhost/src:1"], env=env, check=True, capture_output=True)
            subprocess.run([*podman, "save", "--format", "docker-archive", "-o", path + ".tmp", "localhost/src:1"], env=env, check=True, capture_output=True)
        finally:
            subprocess.run([*podman, "system", "reset", "-f"], env=env, capture_output=True)
            shutil.rmtree("/run/pyc-bench-unpack-src", ignore_errors=True)
    os.rename(path + ".tmp", path)
    return path


def podman_argv(root: str, runroot: str) -> list[str]:
    return ["podman", "--root", root, "--runroot", runroot, "--storage-driver", "overlay"]


def sh(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@contextlib.contextmanager
def tmpfs(base: str) -> Iterator[str]:
    mnt = os.path.join(base, "tmpfs")
    os.mkdir(mnt)
    sh(["mount", "-t", "tmpfs", "-o", "size=12g", "pycbench", mnt])
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)


@contextlib.contextmanager
def ext4_area(base: str, n: int) -> Iterator[str]:
    """A fresh ext4 filesystem on a loop file, mounted; unmounted and removed however it ends."""
    image, mnt = os.path.join(base, f"area{n}.img"), os.path.join(base, f"area{n}")
    os.mkdir(mnt)
    dev = None
    try:
        with open(image, "wb") as f:
            f.truncate(LOOP_SIZE)
        dev = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", image], check=True, capture_output=True, text=True).stdout.strip()
        # Inode tables written now, not by the kernel in the background while the tools run.
        sh(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-E", "lazy_itable_init=0", dev])
        sh(["mount", dev, mnt])
        try:
            yield mnt
        finally:
            subprocess.run(["umount", "-l", mnt], check=False)
    finally:
        if dev:
            subprocess.run(["losetup", "-d", dev], check=False)
        with contextlib.suppress(OSError):
            os.unlink(image)
        with contextlib.suppress(OSError):
            os.rmdir(mnt)


class Tool:
    """One tool's way of doing the work in a place, and of undoing it."""

    def __init__(self, name: str, bench: Bench) -> None:
        self.name, self.bench = name, bench

    def command(self, work: str, inputs: dict[str, str], where: str) -> list[str]:
        raise NotImplementedError

    def run(self, argv: list[str], where: str) -> None:
        raise NotImplementedError

    def undo(self, where: str) -> None:
        """Remove what the last command made, the way users would (the rmi place)."""

    def close(self, where: str) -> None:
        """Before `where` goes away."""


class Pyc(Tool):
    def __init__(self, name: str, bench: Bench, path: str) -> None:
        super().__init__(name, bench)
        self.path = path

    def env(self, where: str) -> dict[str, str]:
        return dict(self.bench.env, PYC_ROOT=os.path.join(where, f"{self.name}-store"))

    def command(self, work: str, inputs: dict[str, str], where: str) -> list[str]:
        if work == "import":
            return [self.path, "import", inputs["tar"], "bench:1"]
        return [self.path, "load", "-q", "-i", inputs["docker"]]

    def run(self, argv: list[str], where: str) -> None:
        sh(argv, self.env(where))

    def undo(self, where: str) -> None:
        store = os.path.join(where, f"{self.name}-store")
        if os.path.isdir(store):
            for ref in ("bench:1", "localhost/src:1"):
                subprocess.run([self.path, "rmi", ref], env=self.env(where), capture_output=True)


class Podman(Tool):
    def argv(self, where: str) -> list[str]:
        return podman_argv(os.path.join(where, "podman-store"), os.path.join(self.bench.runroot, os.path.basename(where)))

    def command(self, work: str, inputs: dict[str, str], where: str) -> list[str]:
        if work == "import":
            return [*self.argv(where), "import", inputs["tar"], "localhost/bench:1"]
        return [*self.argv(where), "load", "-q", "-i", inputs["docker"]]

    def run(self, argv: list[str], where: str) -> None:
        sh(argv, self.bench.env)

    def undo(self, where: str) -> None:
        for ref in ("localhost/bench:1", "localhost/src:1"):
            subprocess.run([*self.argv(where), "rmi", ref], env=self.bench.env, capture_output=True)

    def close(self, where: str) -> None:
        # podman's overlay store may leave mounts behind; its own reset removes them.
        subprocess.run([*self.argv(where), "system", "reset", "-f"], env=self.bench.env, capture_output=True)


class Tar(Tool):
    def command(self, work: str, inputs: dict[str, str], where: str) -> list[str]:
        dest = os.path.join(where, "tar-x")
        sync = "" if self.bench.place == "tmpfs" else f" && sync -f {dest}"
        return ["sh", "-c", f"mkdir {dest} && tar -xf {inputs['tar']} -C {dest}{sync}"]

    def run(self, argv: list[str], where: str) -> None:
        sh(argv)

    def undo(self, where: str) -> None:
        shutil.rmtree(os.path.join(where, "tar-x"), ignore_errors=True)


class Bench:
    def __init__(self, runs: int, base: str, settle: float = 0.0) -> None:
        self.runs, self.base, self.settle = runs, base, settle
        self.place = ""
        self.tmpfs = ""
        self.runroot = tempfile.mkdtemp(prefix="pycbu.", dir="/run")
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(base, "containers.conf"))
        with open(self.env["CONTAINERS_CONF"], "w") as f:
            f.write(CONTAINERS_CONF)
        self.rows: list[Row] = []
        self.made = 0  # places made so far: each gets a name of its own

    def measure(self, tools: list[Tool], work: str, layer: str, inputs: dict[str, str]) -> None:
        """`runs` timed runs of each tool, interleaved, in a place as `self.place` says."""
        times: dict[str, list[float]] = {t.name: [] for t in tools if not (isinstance(t, Tar) and work == "load")}
        cpu: dict[str, list[float]] = {name: [] for name in times}
        active = [t for t in tools if t.name in times]
        with contextlib.ExitStack() as keep:
            if self.place == "rmi":
                where = keep.enter_context(_scratch(self.base, "rmi"))
                for t in active:  # once untimed: each timed run then follows a removal
                    t.run(t.command(work, inputs, where), where)
                    t.undo(where)
                for t in active:
                    keep.callback(t.close, where)
            for n in range(self.runs):
                # Each tool first in turn: the run after another's removal of 100,000 files
                # shares the cores with the kernel's deferred frees of them.
                for t in active[n % len(active) :] + active[: n % len(active)]:
                    self.made += 1
                    with contextlib.ExitStack() as run:
                        if self.place == "fresh":
                            where = run.enter_context(ext4_area(self.base, self.made))
                            run.callback(t.close, where)
                        elif self.place == "tmpfs":
                            where = run.enter_context(_scratch(self.tmpfs, f"run{self.made}"))
                            run.callback(t.close, where)
                        argv = t.command(work, inputs, where)
                        os.sync()
                        # What the last run's removal left the kernel to free runs on: a tool
                        # timed right after it ran up to twice as long (on both cores).
                        time.sleep(self.settle)
                        used = _children_cpu()
                        start = time.perf_counter()
                        t.run(argv, where)
                        times[t.name].append(time.perf_counter() - start)
                        cpu[t.name].append(_children_cpu() - used)
                        if self.place == "rmi":
                            t.undo(where)
        for name, ts in times.items():
            self.rows.append((self.place, layer, work, name, ts, cpu[name]))
        line = "".join(f"  {k} {statistics.median(v):6.3f} s (cpu {statistics.median(cpu[k]):.2f})" for k, v in times.items())
        print(f"  {self.place:<6} {layer:<8} {work:<7}{line}", file=sys.stderr, flush=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.runroot, ignore_errors=True)


@contextlib.contextmanager
def _scratch(base: str, name: str) -> Iterator[str]:
    path = os.path.join(base, name)
    os.mkdir(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _children_cpu() -> float:
    """CPU seconds (user and system) of the children waited for so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def report(rows: list[Row], runs: int, pyc_names: list[str]) -> None:
    ours_name = pyc_names[0]
    print(f"\nmedians of {runs} runs (min-max); ratio = the other tool's median / {ours_name}'s (above 1: {ours_name} is faster); cpu = user + system seconds")
    print(f"| place | layer | work | tool | median | min-max | cpu | ratio to {ours_name} |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    medians = {(p, layer, w, tool): statistics.median(ts) for p, layer, w, tool, ts, _ in rows}
    tar = {(p, layer): m for (p, layer, w, tool), m in medians.items() if tool == "tar"}
    for p, layer, w, tool, ts, cpu in rows:
        ours = medians.get((p, layer, w, ours_name))
        m = medians[(p, layer, w, tool)]
        ratio = f"{m / ours:.2f}x" if ours and tool != ours_name else ""
        print(f"| {p} | {layer} | {w} | {tool} | {m:.3f} s | {min(ts):.3f}-{max(ts):.3f} | {statistics.median(cpu):.2f} s | {ratio} |")
    if tar:
        print("\ntar -x against each pyc build's load (the same tar -x as import's row):")
        for (p, layer), t in tar.items():
            for name in pyc_names:
                load = medians.get((p, layer, "load", name))
                if load:
                    print(f"  {p} {layer} load: {name} {load:.3f} s, tar -x {t:.3f} s, ratio {t / load:.2f}x")
    targets(medians, pyc_names)


# The targets (#12), as (place, layer, reference tool, least ratio of its median to pyc's).
# A second pyc build (--pyc before=...) is the reference for "no slower than before".
TARGETS = [
    ("tmpfs", "100k", "tar", 1.5),
    ("fresh", "100k", "tar", 1.0),
    ("fresh", "100k", "podman", 3.0),
    ("fresh", "minbase", "tar", 1.0),
    ("tmpfs", "minbase", "before", 1.0),
    ("rmi", "100k", "before", 1.0),
    ("rmi", "minbase", "before", 1.0),
]


def targets(medians: dict[tuple[str, str, str, str], float], pyc_names: list[str]) -> None:
    """Each target whose rows were measured: the ratio, and whether it is met (import; load
    too, where tar -x's row is the import's)."""
    ours, before = pyc_names[0], (pyc_names[1] if len(pyc_names) > 1 else None)
    lines = []
    for place, layer, ref, least in TARGETS:
        for work in WORK:
            mine = medians.get((place, layer, work, ours))
            name = before if ref == "before" else ref
            theirs = medians.get((place, layer, "import" if ref == "tar" else work, name or ""))
            if mine and theirs:
                ratio = theirs / mine
                verdict = "met" if round(ratio, 2) >= least else "NOT met"
                lines.append(f"  {place} {layer} {work}: {name} / {ours} = {ratio:.2f}x, wanted >= {least}x: {verdict}")
    if lines:
        print("\ntargets of issue 12 (ratios of medians; above 1: " + ours + " is faster):")
        print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds of rest before each timed run (default 2)")
    ap.add_argument("--places", default=",".join(PLACES))
    ap.add_argument("--layers", default=",".join(LAYERS))
    ap.add_argument("--work", default=",".join(WORK))
    ap.add_argument("--tools", default="pyc,tar,podman", help="pyc (every --pyc build), tar, podman")
    ap.add_argument("--pyc", action="append", default=[], metavar="NAME=PATH", help="a pyc build to time (repeatable; the first is the one ratios are to)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benches/unpack.py: run as root")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    builds = [tuple(p.split("=", 1)) for p in args.pyc] or [("pyc", os.path.join(REPO, ".venv", "bin", "pyc"))]
    os.makedirs(CACHE, exist_ok=True)
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(CACHE, "containers.conf"))
    with open(env["CONTAINERS_CONF"], "w") as f:
        f.write(CONTAINERS_CONF)
    tars = {"100k": many_files_tar, "minbase": rootfs_tar}
    layers = args.layers.split(",")
    inputs = {name: {"tar": tars[name]()} for name in layers}
    if "load" in args.work.split(","):
        for name in layers:
            inputs[name]["docker"] = docker_archive(name, inputs[name]["tar"], env)
    base = tempfile.mkdtemp(prefix="pyc-bench-unpack.", dir="/var/tmp")
    bench = Bench(args.runs, base, args.settle)
    wanted = args.tools.split(",")
    tools: list[Tool] = []
    if "pyc" in wanted:
        tools += [Pyc(name, bench, path) for name, path in builds]
    if "tar" in wanted:
        tools.append(Tar("tar", bench))
    if "podman" in wanted:
        tools.append(Podman("podman", bench))
    try:
        for place in args.places.split(","):
            bench.place = place
            print(f"{place}:", file=sys.stderr, flush=True)
            with contextlib.ExitStack() as stack:
                if place == "tmpfs":
                    bench.tmpfs = stack.enter_context(tmpfs(base))
                    local = stack.enter_context(_scratch(bench.tmpfs, "inputs"))
                for layer in layers:
                    here = inputs[layer]
                    if place == "tmpfs":  # read from the tmpfs too: nothing on the disk is timed
                        here = {k: shutil.copy(v, os.path.join(local, f"{layer}-{k}.tar")) for k, v in here.items()}
                    for work in args.work.split(","):
                        bench.measure(tools, work, layer, here)
    finally:
        bench.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    report(bench.rows, args.runs, [t.name for t in tools if isinstance(t, Pyc)])


if __name__ == "__main__":
    main()
