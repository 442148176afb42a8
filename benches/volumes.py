"""Volumes and `cp`: pyc against podman, on the same Debian minbase rootfs.

Cases, each timed in one run, the tools interleaved run by run (a shared machine's load drift
hits both alike), the page cache written back (sync) before each timed command:

    cp out       `pyc cp C:/ DIR`    vs `podman cp C:/ DIR`     the minbase tree out of a running
                                                                container (DIR removed between runs)
    cp in        `pyc cp DIR C:/r`   vs `podman cp DIR C:/r`    and back in, into /r (made empty
                                                                between runs: podman cp to a new
                                                                name breaks the tree's hardlinks)
    volumes      `pyc run --rm -v a:/a -v b:/b -v c:/c busybox true` vs the same without volumes:
                 what three filled named volumes add to a start (hyperfine, 100 runs each); and
                 podman's same pair on the minbase image, for reference (20 runs each)

The rootfs tar is benches/images.py's (debootstrap --variant=minbase from this machine's apt
mirror, cached under /var/tmp/pyc-bench-images/). pyc gets a store of its own ($PYC_ROOT) and
podman its own --root/--runroot (runc); both under one temp dir, removed at the end, also on
failure or Ctrl-C, with the containers.

Run as root, from the repository, after building the venv:

    .venv/bin/python benches/volumes.py [--runs N] [--start-runs N] [--podman-start-runs N]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import CONTAINERS_CONF, PYC, rootfs_tar  # noqa: E402
from startup import hyperfine, launcher, remove_tmp  # noqa: E402

IMAGE = "localhost/pycbench-volumes:latest"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each cp (default 5)")
    ap.add_argument("--start-runs", type=int, default=100, help="timed runs of each start (default 100)")
    ap.add_argument("--podman-start-runs", type=int, default=20, help="timed runs of each podman start (default 20)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("volumes.py: run as root")
    if not shutil.which("podman") or not shutil.which("hyperfine"):
        sys.exit("volumes.py: needs podman and hyperfine")
    tar = rootfs_tar()
    tmp = tempfile.mkdtemp(prefix="pycbench-vol.", dir="/var/tmp")
    runroot = tempfile.mkdtemp(prefix="pycbv.", dir="/run")
    env = dict(os.environ, PYC_ROOT=os.path.join(tmp, "pyc"), CONTAINERS_CONF=os.path.join(tmp, "containers.conf"))
    os.environ.update(env)
    with open(env["CONTAINERS_CONF"], "w") as f:
        # File locks under this podman's own dirs: the default, shared memory, is one set of
        # locks for every podman of the machine, and a fresh store's first lock collides.
        f.write(CONTAINERS_CONF + 'lock_type = "file"\n')
    # Its own --tmpdir too: podman takes a missing alive file in the shared /run/libpod for a
    # reboot and forgets that its containers run (another podman of the machine may clear it).
    podman = ["podman", "--root", os.path.join(tmp, "podman"), "--runroot", runroot, "--tmpdir", os.path.join(runroot, "libpod"), "--storage-driver", "overlay"]

    def run(*argv: str) -> str:
        r = subprocess.run(list(argv), env=env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    rows: list[tuple[str, float, float]] = []
    try:
        tree = os.path.join(tmp, "tree")
        os.mkdir(tree)
        run("tar", "-C", tree, "--numeric-owner", "-xf", tar)
        run(PYC, "import", tar, "deb:1")
        run(*podman, "import", "-q", tar, IMAGE)
        run(PYC, "run", "-d", "--name", "cpb", "deb:1", "sleep", "infinity")
        run(*podman, "run", "-d", "--name", "cpb", "--network=none", "--pull=never", IMAGE, "sleep", "infinity")
        run(PYC, "exec", "cpb", "mkdir", "/r")
        run(*podman, "exec", "cpb", "mkdir", "/r")
        out = os.path.join(tmp, "out")
        cases = {
            "cp out": (
                ([PYC, "cp", "cpb:/", out], lambda: shutil.rmtree(out, ignore_errors=True)),
                ([*podman, "cp", "cpb:/", out], lambda: shutil.rmtree(out, ignore_errors=True)),
            ),
            "cp in": (
                ([PYC, "cp", tree, "cpb:/r"], lambda: run(PYC, "exec", "cpb", "sh", "-c", "rm -rf /r && mkdir /r")),
                ([*podman, "cp", tree, "cpb:/r"], lambda: run(*podman, "exec", "cpb", "sh", "-c", "rm -rf /r && mkdir /r")),
            ),
        }
        for case, ((pyc_argv, pyc_after), (podman_argv, podman_after)) in cases.items():
            pyc_times, podman_times = [], []
            for i in range(args.runs + 1):  # the first run of each warms the caches, untimed
                for argv, after, times in ((pyc_argv, pyc_after, pyc_times), (podman_argv, podman_after, podman_times)):
                    os.sync()
                    t = time.perf_counter()
                    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
                    if i:
                        times.append((time.perf_counter() - t) * 1000)
                    after()
            rows.append((case, statistics.median(pyc_times), statistics.median(podman_times)))
        run(PYC, "rm", "-f", "cpb")
        run(*podman, "rm", "-f", "-t", "0", "cpb")
        # Printed now: the start rows below take a while.
        print(f"\ncp: {args.runs} runs each, interleaved, medians; the minbase tree ({os.path.getsize(tar) >> 20} MiB tar)\n")
        print("| case | pyc ms | podman ms | podman / pyc |")
        print("|---|---:|---:|---:|")
        for case, a, b in rows:
            print(f"| {case} | {a:.0f} | {b:.0f} | {b / a:.2f}x |", flush=True)

        # Three named volumes, filled (a few hundred files each), against none.
        run(PYC, "image", "bootstrap", "busybox")
        names = ("va", "vb", "vc")
        for v in names:
            run(PYC, "run", "--rm", "-v", f"{v}:/{v}", "busybox", "sh", "-c", f"for i in $(seq 1 300); do echo $i > /{v}/$i; done")
        vols = " ".join(f"-v {v}:/{v}" for v in names)
        pyc = launcher(os.path.join(tmp, "pyc-launcher"))  # the pyc users run (setup.sh installs it)
        commands = {"no volumes": f"{pyc} run --rm busybox true", "3 named volumes": f"{pyc} run --rm {vols} busybox true"}
        starts = hyperfine(args.start_runs, commands, os.path.join(tmp, "start.json"))
        # podman's pair, for reference: what three volumes add to its start.
        for v in names:
            run(*podman, "run", "--rm", "--network=none", "--pull=never", "-v", f"{v}:/{v}", IMAGE, "sh", "-c", f"for i in $(seq 1 300); do echo $i > /{v}/$i; done")
        base = f"{shlex.join(podman)} run --rm --network=none --pull=never"
        commands = {"podman no volumes": f"{base} {IMAGE} true", "podman 3 named volumes": f"{base} {vols} {IMAGE} true"}
        starts |= hyperfine(args.podman_start_runs, commands, os.path.join(tmp, "podman-start.json"))
    finally:
        subprocess.run([PYC, "rm", "-f", "cpb"], env=env, capture_output=True, check=False)
        subprocess.run([*podman, "rm", "-f", "-t", "0", "cpb"], env=env, capture_output=True, check=False)
        subprocess.run([*podman, "rmi", "-f", IMAGE], env=env, capture_output=True, check=False)
        remove_tmp(tmp)
        shutil.rmtree(runroot, ignore_errors=True)

    none, three = starts["no volumes"], starts["3 named volumes"]
    pnone, pthree = starts["podman no volumes"], starts["podman 3 named volumes"]
    print(f"\nstart: {args.start_runs} runs each for pyc, {args.podman_start_runs} for podman (hyperfine -N)\n")
    print("| run --rm ... true | pyc median ms | pyc mean ms | podman median ms | podman mean ms | podman / pyc (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| no volumes | {none[0]:.1f} | {none[1]:.1f} | {pnone[0]:.1f} | {pnone[1]:.1f} | {pnone[0] / none[0]:.2f}x |")
    print(f"| 3 filled named volumes | {three[0]:.1f} | {three[1]:.1f} | {pthree[0]:.1f} | {pthree[1]:.1f} | {pthree[0] / three[0]:.2f}x |")
    print(f"\nwhat three volumes add: pyc {three[0] - none[0]:+.1f} ms (median), {three[1] - none[1]:+.1f} ms (mean), the bound is 3 ms; podman {pthree[0] - pnone[0]:+.1f} ms (median)")


if __name__ == "__main__":
    main()
