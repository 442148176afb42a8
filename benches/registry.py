"""Registries: pyc against podman and skopeo, on the same local registry and the same image, the
Debian minbase (one ~50 MB gzip layer, as `pyc image bootstrap debian` makes it).

Cases, each timed side by side in one run (runs interleaved, so a drift in the machine's load
hits both tools alike), every store on the same disk (/var/tmp):

    pull        `pyc pull REG/debian:1` (download, verify, unpack, durable) vs `podman pull`, each
                run right after an rmi of the image (untimed) from the same store
    download    the same pyc pull vs `skopeo copy docker://REG/debian:1 oci:DIR` (download only,
                no unpack: the floor), the dir removed after each run
    re-pull     `pyc pull` of the image it has (one manifest round trip) vs `podman pull` of its own
    push        `pyc push` vs `podman push` of the image (pulled from REG) to an empty registry
                (a new one, on a port of its own, for every run), gzip for both. pyc keeps a
                pulled layer as the registry sent it (gzip, made by skopeo at its default level,
                6) and sends that blob as it is; podman keeps the tar only and compresses it
                again, at level 6 (its default; podman 4.3 has no --compression-level)
    push-new    the same, of an image each tool imported from the rootfs tar (no compressed
                form known): both compress the layer at level 6 on the way, pyc with libdeflate
                on every core, podman with its Go gzip. The layer blob each one sent is printed
                after the table (the two gzips at the same level do not make the same size)

The registry is Debian's docker-registry on loopback, plain HTTP (`--tls-verify=false` for every
tool), its storage on the same disk. The rootfs is made once with debootstrap (benches/images.py's
cache, /var/tmp/pyc-bench-images/) and imported by pyc; skopeo copies it into the registry.
Everything made is removed at the end, also on failure, Ctrl-C or SIGTERM.

Run as root, from the repository, after building the venv:

    .venv/bin/python benches/registry.py [--runs N] [--cases pull,download,re-pull,push]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import CONTAINERS_CONF, PYC, rootfs_tar  # noqa: E402

CASES = ("pull", "download", "re-pull", "push", "push-new")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    def __init__(self, base: str, name: str) -> None:
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        self.host = f"127.0.0.1:{free_port()}"
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {self.dir}/storage}}}}\nhttp: {{addr: {self.host}}}\n")
        self.proc = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", int(self.host.split(":")[1])), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("docker-registry did not start") from None
                time.sleep(0.05)

    def largest_blob(self) -> int:
        """The size of the largest blob stored (an image's one big layer)."""
        sizes = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(self.dir, "storage")) for f in fs if f == "data"]
        return max(sizes, default=0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Bench:
    def __init__(self, base: str, runs: int) -> None:
        self.base, self.runs = base, runs
        self.runroot = tempfile.mkdtemp(prefix="pycbench.", dir="/run")
        conf = os.path.join(base, "registries.conf")
        with open(conf, "w") as f:
            f.write("")
        self.env = dict(os.environ, PYC_ROOT=os.path.join(base, "pyc"), CONTAINERS_CONF=os.path.join(base, "containers.conf"), CONTAINERS_REGISTRIES_CONF=conf)
        for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            self.env.pop(k, None)
        with open(self.env["CONTAINERS_CONF"], "w") as f:
            f.write(CONTAINERS_CONF)
        self.podman = ["podman", "--root", os.path.join(base, "podman"), "--runroot", os.path.join(self.runroot, "p"), "--tmpdir", os.path.join(self.runroot, "t"), "--storage-driver", "overlay"]
        self.registries: list[Registry] = []
        self.rows: list[tuple[str, float, str, float, list[float], list[float]]] = []
        self.sizes: dict[str, int] = {}  # the layer blob each tool pushed, in bytes

    def registry(self, name: str) -> Registry:
        r = Registry(self.base, name)
        self.registries.append(r)
        return r

    def sh(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(list(args), env=env or self.env, check=True, capture_output=True, text=True).stdout

    def time(self, argv: list[str], before: Callable[[], None] | None, env: dict[str, str] | None = None) -> float:
        if before:
            before()
        os.sync()
        t = time.perf_counter()
        subprocess.run(argv, env=env or self.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    def pair(self, case: str, pyc: Callable[[], float], peer_name: str, peer: Callable[[], float]) -> None:
        a: list[float] = []
        b: list[float] = []
        for _ in range(self.runs):
            a.append(pyc())
            b.append(peer())
        self.rows.append((case, statistics.median(a), peer_name, statistics.median(b), a, b))
        print(f"  {case:<9} pyc {statistics.median(a):7.3f} s   {peer_name} {statistics.median(b):7.3f} s", file=sys.stderr)

    def run(self, cases: list[str], tar: str) -> None:
        src = self.registry("src")
        name = f"{src.host}/bench/debian:1"
        # The image: the rootfs imported by pyc (as `pyc image bootstrap debian` makes it), copied
        # to the registry by skopeo (gzip, its default level).
        seed_env = dict(self.env, PYC_ROOT=os.path.join(self.base, "seed"))
        self.sh(PYC, "import", tar, "bench/debian:1", env=seed_env)
        self.sh("skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{seed_env['PYC_ROOT']}/oci:bench/debian:1", f"docker://{name}")
        pyc_pull = [PYC, "pull", "-q", "--tls-verify=false", name]
        podman_pull = [*self.podman, "pull", "-q", "--tls-verify=false", name]

        def rmi_pyc() -> None:
            subprocess.run([PYC, "rmi", name], env=self.env, capture_output=True)

        def rmi_podman() -> None:
            subprocess.run([*self.podman, "rmi", name], env=self.env, capture_output=True)

        if "pull" in cases:
            self.pair("pull", lambda: self.time(pyc_pull, rmi_pyc), "podman pull", lambda: self.time(podman_pull, rmi_podman))
        if "download" in cases:
            oci = os.path.join(self.base, "skopeo-oci")
            skopeo = ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{name}", f"oci:{oci}:x"]
            self.pair("download", lambda: self.time(pyc_pull, rmi_pyc), "skopeo copy", lambda: self.time(skopeo, lambda: shutil.rmtree(oci, ignore_errors=True)))
        if "re-pull" in cases:
            self.sh(*pyc_pull)
            self.sh(*podman_pull)
            self.pair("re-pull", lambda: self.time(pyc_pull, None), "podman pull", lambda: self.time(podman_pull, None))
        if "push" in cases:
            self.sh(*pyc_pull)
            self.sh(*podman_pull)
            self.push("push", name)
        if "push-new" in cases:
            # pyc in a store of its own: the pulled image's store knows a compressed form of
            # the very same layer (the tar is the one the registry's image was made from).
            env = dict(self.env, PYC_ROOT=os.path.join(self.base, "pyc-new"))
            self.sh(PYC, "import", tar, "bench/new:1", env=env)
            self.sh(*self.podman, "import", "-q", tar, "bench/new:1")
            self.push("push-new", "bench/new:1", "localhost/bench/new:1", env)

    def push(self, case: str, name: str, podman_name: str = "", env: dict[str, str] | None = None) -> None:
        """`case`: each tool pushes its image `name` (podman's `podman_name`) to a registry of
        its own, new for every run, pyc with `env`; the sizes of the layer blobs sent are kept."""
        a: list[float] = []
        b: list[float] = []
        for n in range(self.runs):
            for tool, out in (("pyc", a), ("podman", b)):
                dest = self.registry(f"{case}-{tool}-{n}")
                argv = [PYC, "push", "-q", "--tls-verify=false", name, f"{dest.host}/bench/debian:1"]
                if tool == "podman":
                    argv = [*self.podman, "push", "-q", "--tls-verify=false", "--compression-format", "gzip", podman_name or name, f"{dest.host}/bench/debian:1"]
                out.append(self.time(argv, None, env if tool == "pyc" else None))
                self.sizes[f"{case}: {tool}"] = dest.largest_blob()
                dest.stop()
        self.rows.append((case, statistics.median(a), "podman push", statistics.median(b), a, b))
        print(f"  {case:<9} pyc {statistics.median(a):7.3f} s   podman push {statistics.median(b):7.3f} s", file=sys.stderr)

    def cleanup(self) -> None:
        for r in self.registries:
            r.stop()
        subprocess.run([*self.podman, "system", "reset", "-f"], env=self.env, capture_output=True)
        # What a podman cut short by the signal left mounted (its overlay, its shm), deepest first.
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in sorted((p for p in points if p.startswith((self.base + "/", self.runroot + "/"))), reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(self.runroot, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {','.join(CASES)}")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benches/registry.py: run as root")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally below cleans up, as on Ctrl-C
    tar = rootfs_tar()
    base = tempfile.mkdtemp(prefix="pyc-bench-registry.", dir="/var/tmp")
    bench = Bench(base, args.runs)
    try:
        bench.run(args.cases.split(","), tar)
    finally:
        bench.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nmedians of {args.runs} runs, on disk (/var/tmp); ratio = peer / pyc (above 1: pyc is faster)")
    print("| work | pyc | peer | peer time | ratio | pyc runs | peer runs |\n| --- | --- | --- | --- | --- | --- | --- |")
    for case, a, peer, b, ra, rb in bench.rows:
        print(f"| {case} | {a:.3f} s | {peer} | {b:.3f} s | {b / a:.2f}x | {' '.join(f'{x:.3f}' for x in ra)} | {' '.join(f'{x:.3f}' for x in rb)} |")
    if bench.sizes:
        print("\npushed layer blob (gzip, level 6): " + ", ".join(f"{what} {size / 1e6:.1f} MB" for what, size in bench.sizes.items()))


if __name__ == "__main__":
    main()
