"""`pyc build` against `podman build` (buildah) on the same Dockerfile and context, in one run.

The context: 1,000 files of 10 kB (10 MB) in 20 directories. The Dockerfile: FROM busybox, a
RUN, a COPY of the context's src/, two RUNs after it. Rows, medians of --runs builds each:

    cold        every step runs: pyc with its cache pruned first (`pyc builder prune`, the
                file digests too), podman with --no-cache
    cached      the same build again: every step from the cache
    one file    one copied file changed before each build: the COPY and the RUNs after it run

pyc works in a temp store, podman in a temp root and runroot (busybox loaded from pyc's save);
RUN steps on no network for both (--network none: the default networks would make pyc's and
netavark's bridges and nft tables on this machine);
everything is removed at the end, also on failure or Ctrl-C.

    .venv/bin/python benches/build.py [--runs N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYC = os.path.join(REPO, ".venv", "bin", "pyc")

DOCKERFILE = """\
FROM pycbench/busybox:1
RUN echo base > /base
COPY src /app/src
RUN find /app/src -type f | wc -l > /count
RUN du -s /app/src > /size
CMD ["cat", "/count"]
"""


def sh(*args, env=None, **kw):
    return subprocess.run(list(args), env=env, check=True, capture_output=True, text=True, **kw).stdout


def make_context(d):
    os.makedirs(d)
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    for n in range(1000):
        sub = os.path.join(d, "src", f"d{n % 20:02d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{n:04d}.txt"), "wb") as f:
            f.write(os.urandom(5000).hex().encode())
    return os.path.join(d, "src", "d07", "f0007.txt")


def timed(fn, runs, before=None):
    times = []
    for k in range(runs):
        if before:
            before(k)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pyc-bench-build-", dir="/var/tmp")
    try:
        store = os.path.join(work, "store")
        env = {**os.environ, "PYC_ROOT": store}
        # runc: crun refuses a hybrid host's cgroups
        pod = ["podman", "--root", os.path.join(work, "podman"), "--runroot", os.path.join(work, "podman-run"), "--storage-driver", "overlay", "--runtime", "runc"]
        sh(PYC, "image", "bootstrap", "busybox", env=env)
        sh(PYC, "tag", "busybox", "pycbench/busybox:1", env=env)
        archive = os.path.join(work, "busybox.tar")
        sh(PYC, "save", "pycbench/busybox:1", "-o", archive, env=env)
        sh(*pod, "load", "-q", "-i", archive)
        ctx = os.path.join(work, "ctx")
        changed = make_context(ctx)

        def touch(k):
            with open(changed, "w") as f:
                f.write(f"changed {k} {time.time_ns()}\n")

        def pyc_build(*flags):
            return lambda: sh(PYC, "build", "-q", "--network", "none", *flags, "-t", "bench:1", ctx, env=env)

        def podman_build(*flags):
            return lambda: sh(*pod, "build", "-q", "--pull=never", "--network=none", *flags, "-t", "bench:1", ctx)

        rows = []
        for name, runs in (
            ("cold", ((pyc_build(), lambda k: sh(PYC, "builder", "prune", "-a", "-f", env=env)), (podman_build("--no-cache"), None))),
            ("cached", ((pyc_build(), None), (podman_build(), None))),
            ("one file", ((pyc_build(), touch), (podman_build(), touch))),
        ):
            (pyc_fn, pyc_before), (pod_fn, pod_before) = runs
            pyc_fn()  # warm: the cached row starts from a built image, as does one file
            pod_fn()
            p = timed(pyc_fn, args.runs, pyc_before)
            q = timed(pod_fn, args.runs, pod_before)
            rows.append((name, p, q))
        print(f"pyc build against podman build, medians of {args.runs} runs (this machine is shared: noisy)\n")
        print(f"{'case':<10} {'pyc':>9} {'podman':>9} {'podman/pyc':>11}   runs pyc | podman (s)")
        for name, (pm, pt), (qm, qt) in rows:
            print(f"{name:<10} {pm * 1000:>7.0f}ms {qm * 1000:>7.0f}ms {qm / pm:>10.1f}x   {' '.join(f'{t:.2f}' for t in pt)} | {' '.join(f'{t:.2f}' for t in qt)}")
    finally:
        if "pod" in locals():
            subprocess.run([*pod, "rmi", "-a", "-f"], capture_output=True)
            # podman's overlay driver mounts its dir on itself and leaves it so
            subprocess.run(["umount", os.path.join(work, "podman", "overlay")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
