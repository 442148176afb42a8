"""Delta bundles against the best generic byte delta and against a full save, in one run.

The pair: Debian minbase (`pyc image bootstrap debian`) with libc6 and libc-bin at the older
version this machine's mirror offers (old) and as bootstrapped (new), each squashed into one
layer by export | import, so every layer digest differs, as after a rebuilt base.

    pyc bundle        `pyc save new --delta-from old -o upd.pycd`
    zstd patch-from   `zstd -19 --long=27 --patch-from=OLD.tar NEW.tar` (the layer tars)
    full save         `pyc save new | zstd -3 -T0`

Rows: sizes, create time (pyc bundle against zstd -19), apply time and rate (`pyc load -i
upd.pycd` into a store that has old, the new image removed between runs) on tmpfs and on disk.
Everything made is removed at the end, also on failure or Ctrl-C: the temp stores, the tmpfs.

    .venv/bin/python benches/bundle.py [--runs N]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYC = os.path.join(REPO, ".venv", "bin", "pyc")


def sh(*args, env=None, **kw):
    return subprocess.run(list(args), env=env, check=True, capture_output=True, text=True, **kw).stdout


def pipe(first, second, env1=None, env2=None):
    with subprocess.Popen(first, stdout=subprocess.PIPE, env=env1) as p:
        subprocess.run(second, stdin=p.stdout, env=env2, check=True, capture_output=True)
    assert p.returncode == 0


def store_env(root):
    return {**os.environ, "PYC_ROOT": root}


def make_pair(src, work):
    """old:1 and new:1 in the store `src`; returns their layer tars."""
    env = store_env(src)
    sh(PYC, "image", "bootstrap", "debian", env=env)
    current = sh(PYC, "run", "--rm", "debian", "dpkg-query", "-W", "-f", "${Version}", "libc6", env=env).strip()
    versions = [ln.split("|")[1].strip() for ln in sh("apt-cache", "madison", "libc6").splitlines() if "|" in ln]
    older = [v for v in versions if v != current]
    if not older:
        sys.exit(f"the mirror offers libc6 {current} only: no pair to make")
    debs = os.path.join(work, "debs")
    os.mkdir(debs)
    sh("apt-get", "download", "-q", f"libc6={older[0]}", f"libc-bin={older[0]}", cwd=debs)
    for name, script, mounts in (("old:1", "dpkg -i /debs/*.deb", ["-v", f"{debs}:/debs:ro"]), ("new:1", "true", [])):
        cid = sh(PYC, "create", *mounts, "debian", "sh", "-c", script, env=env).strip()
        sh(PYC, "start", "-a", cid, env=env)
        pipe([PYC, "export", cid], [PYC, "import", "-", name], env, env)
        sh(PYC, "rm", cid, env=env)
    blobs = os.path.join(src, "oci", "blobs", "sha256")
    tars = []
    for name in ("old:1", "new:1"):
        cfg = json.loads(sh(PYC, "image", "inspect", name, env=env))
        cfg = cfg[0] if isinstance(cfg, list) else cfg
        tars.append(os.path.join(blobs, cfg["RootFS"]["Layers"][0].removeprefix("sha256:")))
    return tars


def timed(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def apply_rate(src, bundle, root, runs):
    """Median seconds of `pyc load -i bundle` into `root` (which gets old:1 first)."""
    env = store_env(root)
    pipe([PYC, "save", "old:1"], [PYC, "load", "-q"], store_env(src), env)

    def once():
        subprocess.run([PYC, "load", "-q", "-i", bundle], env=env, check=True)

    def reset():
        sh(PYC, "rmi", "new:1", env=env)
        sh(PYC, "image", "prune", "-f", env=env)

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        once()
        times.append(time.perf_counter() - t0)
        reset()
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = tempfile.mkdtemp(prefix="pyc-bench-bundle-", dir="/var/tmp")
    tmpfs = os.path.join(work, "tmpfs")
    os.mkdir(tmpfs)
    mounted = False
    try:
        src = os.path.join(work, "src")
        old_tar, new_tar = make_pair(src, work)
        env = store_env(src)
        bundle = os.path.join(work, "upd.pycd")
        patch = os.path.join(work, "patch.zst")
        full = os.path.join(work, "full.tar.zst")
        create_t, create_all = timed(lambda: sh(PYC, "save", "new:1", "--delta-from", "old:1", "-o", bundle, env=env), args.runs)
        # zstd -19 takes minutes here: two runs are enough to see its time.
        zstd_t, zstd_all = timed(lambda: sh("zstd", "-q", "-f", "-19", "--long=27", f"--patch-from={old_tar}", new_tar, "-o", patch), 2)
        with open(full, "wb") as f, subprocess.Popen([PYC, "save", "new:1"], stdout=subprocess.PIPE, env=env) as p:
            subprocess.run(["zstd", "-q", "-3", "-T0"], stdin=p.stdout, stdout=f, check=True)
        sizes = {k: os.path.getsize(v) for k, v in (("bundle", bundle), ("patch", patch), ("full", full))}
        layer = os.path.getsize(new_tar)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g", "tmpfs", tmpfs], check=True)
        mounted = True
        apply_tmpfs, tmpfs_all = apply_rate(src, bundle, os.path.join(tmpfs, "store"), args.runs)
        apply_disk, disk_all = apply_rate(src, bundle, os.path.join(work, "disk-store"), args.runs)
        mb = layer / 1e6
        print(f"layer tar: {mb:.1f} MB; runs: {args.runs} (zstd -19: 2)")
        print(f"{'':28} {'size':>12} {'vs patch-from':>14} {'vs full save':>13}")
        print(f"{'pyc bundle':28} {sizes['bundle']:>12,} {sizes['bundle'] / sizes['patch']:>13.2f}x {sizes['bundle'] / sizes['full']:>12.2%}")
        print(f"{'zstd -19 --long patch-from':28} {sizes['patch']:>12,} {1:>13.2f}x {sizes['patch'] / sizes['full']:>12.2%}")
        print(f"{'full save, zstd -3':28} {sizes['full']:>12,}")
        print(f"create: pyc {create_t:.2f} s, zstd -19 {zstd_t:.1f} s: {zstd_t / create_t:.1f}x faster   (all: {[round(t, 2) for t in create_all]}, {[round(t, 1) for t in zstd_all]})")
        print(f"apply, tmpfs: {apply_tmpfs:.2f} s, {mb / apply_tmpfs:.0f} MB/s of rebuilt layer   (all: {[round(t, 2) for t in tmpfs_all]})")
        print(f"apply, disk:  {apply_disk:.2f} s, {mb / apply_disk:.0f} MB/s of rebuilt layer   (all: {[round(t, 2) for t in disk_all]})")
    finally:
        if mounted:
            subprocess.run(["umount", tmpfs])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
