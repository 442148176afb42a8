"""What docker's default seccomp profile adds to a container start: `pyc run --rm busybox true`
with the default profile against `--security-opt seccomp=unconfined`, timed round by round in
turn, and the same with the filter cache emptied before each run (what a start would pay without
the cache: libseccomp compiling the profile). runc is the reference: `runc run` of the same
rootfs with the same profile (docker's, resolved for docker's default capabilities as dockerd
hands it to runc) against no seccomp, in the same rounds. Also timed in-process: reading the
cached filter (pyc_core.seccomp_filter) and compiling it.

The filter is compiled once per profile, capability set, architecture, kernel and libseccomp
version, and kept as $PYC_ROOT/seccomp/<sha256 of those>.bpf.

Run as root, from the repository, after building the venv:

    .venv/bin/python benches/seccomp.py [--runs N]

Everything made (a temp store) is removed at the end, also on failure or Ctrl-C."""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from commands import PYTHON  # noqa: E402
from pyc.runtime.security import DEFAULT_CAPS  # noqa: E402
from startup import REPO, make_bundle, remove_tmp, sh  # noqa: E402

DEFAULT_PROFILE = os.path.join(REPO, "rust", "core", "src", "seccomp", "default.json")
DOCKER_CAPS = set(DEFAULT_CAPS)
RUNC_IDS = (f"pycbench-seccomp-{os.getpid()}", f"pycbench-unconfined-{os.getpid()}")


def oci_seccomp():
    """docker's profile as the OCI `linux.seccomp` dockerd gives runc for its default caps on x86_64."""
    with open(DEFAULT_PROFILE) as f:
        profile = json.load(f)
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    syscalls = []
    for rule in profile["syscalls"]:
        inc, exc = rule.get("includes", {}), rule.get("excludes", {})
        if not set(inc.get("caps", [])) <= DOCKER_CAPS or set(exc.get("caps", [])) & DOCKER_CAPS:
            continue
        if "minKernel" in inc and release < tuple(int(x) for x in inc["minKernel"].split(".")):
            continue
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        syscalls.append({k: v for k, v in rule.items() if k in ("names", "action", "args", "errnoRet")})
    arches = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    return {"defaultAction": profile["defaultAction"], "defaultErrnoRet": profile.get("defaultErrnoRet", 1), "architectures": arches, "syscalls": syscalls}


def runc_bundles(layers, tmp):
    """Two bundles of the busybox rootfs running `true`: docker's profile, and no seccomp."""
    confined, unconfined = os.path.join(tmp, "bundle"), os.path.join(tmp, "unconfined")
    make_bundle(layers, confined)
    path = os.path.join(confined, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["linux"].pop("seccomp", None)
    os.mkdir(unconfined)
    config["root"]["path"] = os.path.join(confined, "rootfs")
    with open(os.path.join(unconfined, "config.json"), "w") as f:
        json.dump(config, f)
    config["linux"]["seccomp"] = oci_seccomp()
    with open(path, "w") as f:
        json.dump(config, f)
    return confined, unconfined


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40, help="timed runs per case (default 40)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("seccomp.py: run as root")
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="pycbench-seccomp.", dir="/var/tmp")
    try:
        pyc = os.path.join(tmp, "pyc")
        with open(pyc, "w") as f:
            f.write(f"#!{PYTHON}\nfrom pyc.cli.main import main\n\nmain()\n")
        os.chmod(pyc, 0o755)
        os.environ["PYC_ROOT"] = store = os.path.join(tmp, "store")
        sh(PYTHON, "-m", "compileall", "-q", os.path.join(REPO, "python"), capture=True)
        sh(pyc, "image", "bootstrap", "busybox", capture=True)
        sh(pyc, "run", "--rm", "busybox", "true", capture=True)  # the filter compiled and cached
        cache = os.path.join(store, "seccomp")
        confined, unconfined = runc_bundles(os.path.join(store, "layers"), tmp)
        cases = {
            "default profile": [pyc, "run", "--rm", "busybox", "true"],
            "seccomp=unconfined": [pyc, "run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "true"],
            "default, cache emptied": [pyc, "run", "--rm", "busybox", "true"],
            "runc, docker's profile": ["runc", "run", "--bundle", confined, RUNC_IDS[0]],
            "runc, no seccomp": ["runc", "run", "--bundle", unconfined, RUNC_IDS[1]],
        }
        times = {name: [] for name in cases}
        for _ in range(3):  # warm-up
            for argv in cases.values():
                subprocess.run(argv, check=True)
        # Round by round, the cases in turn: a shared machine's load drifts, and weighs on all alike.
        for _ in range(args.runs):
            for name, argv in cases.items():
                if name.endswith("emptied"):
                    shutil.rmtree(cache, ignore_errors=True)
                t = time.perf_counter()
                subprocess.run(argv, check=True)
                times[name].append((time.perf_counter() - t) * 1000)
        print(f"\npyc run --rm busybox true and runc run of the same rootfs, {args.runs} rounds of the cases in turn (medians; the machine may be shared)\n")
        print(f"  {'case':26} {'ms':>8} {'round by round, vs no seccomp':>32}")
        for name, ms in times.items():
            base = times["runc, no seccomp" if name.startswith("runc") else "seccomp=unconfined"]
            diffs = [a - b for a, b in zip(ms, base, strict=True)]
            print(f"  {name:26} {statistics.median(ms):8.2f} {statistics.median(diffs):+14.2f} ms  ({statistics.median(ms) / statistics.median(base):.3f}x)")
        code = (
            "import pyc_core, timeit\n"
            "caps = ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID']\n"
            f"pyc_core.seccomp_filter(None, caps, {cache!r})\n"
            f"hit = min(timeit.repeat(lambda: pyc_core.seccomp_filter(None, caps, {cache!r}), number=200, repeat=5)) / 200\n"
            "miss = min(timeit.repeat(lambda: pyc_core.seccomp_filter(None, caps, None), number=5, repeat=3)) / 5\n"
            "print(f'{hit * 1e6:.0f} {miss * 1e3:.2f}')\n"
        )
        hit, miss = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        print(f"\n  in-process: the cached filter read in {hit} us; compiled (no cache) in {miss} ms")
    finally:
        for cid in RUNC_IDS:
            subprocess.run(["runc", "delete", "-f", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        remove_tmp(tmp)


if __name__ == "__main__":
    main()
