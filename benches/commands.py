"""The start-up of pyc's everyday commands, against podman (runc) side by side in one hyperfine
run per case (warm cache, medians):

    ps, ps -a, images          with 0, 100 and 1,000 containers (created, never started) and
                               images (names of one image: `tag`)
    inspect, logs, stop, start, rm of one container; exec true into a running one

pyc's targets (issue #11): ps, ps -a and images under 50 ms with nothing, growing by at most
0.2 ms per container or image; the single-container verbs under 50 ms. Both tools run the same
busybox files (pyc's bootstrap layer, imported into podman). podman gets a store of its own
(--root, --runroot under the temp dir) so other podman users of the machine do not count, and
runs runc (CONTAINERS_CONF as in startup.py). Everything made is removed at the end, also on
failure or Ctrl-C.

Run as root, from the repository, after building the venv:

    .venv/bin/python benches/commands.py [--runs N] [--scales 0,100,1000] [--no-podman]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from startup import CONTAINERS_CONF, PODMAN_IMAGE, REPO, launcher, settle, sh  # noqa: E402

# pyc's containers run on --network none here, as podman's: no bridge, veth or rule is made.
os.environ.setdefault("PYC_DEFAULT_NETWORK", "none")

PYTHON = os.path.join(REPO, ".venv", "bin", "python")
LOOP = "echo hi; exec sleep 1000000"  # sleep as pid 1 ignores SIGTERM: stop -t 0 kills at once


def hyperfine(runs, cases, json_path):
    """cases: {name: (command, prepare or None)}; {name: median ms}."""
    argv = ["hyperfine", "-N", "--style", "none", "--warmup", "3", "--runs", str(runs), "--export-json", json_path]
    prepares = [p for _, p in cases.values()]
    if any(prepares):
        for p in prepares:
            argv += ["--prepare", p or "true"]
    for name, (command, _) in cases.items():
        argv += ["-n", name, command]
    sh(*argv, interruptible=True, capture=True)
    with open(json_path) as f:
        return {r["command"]: r["median"] * 1000 for r in json.load(f)["results"]}


def add_containers(n):
    """n more containers, created (never started), through the engine: seconds, not minutes."""
    sh(PYTHON, "-c", f"import pyc\ne = pyc.Engine()\nfor _ in range({n}): e.create('busybox', pyc.RunOptions(['true']))\n")


def add_images(n, start):
    sh(PYTHON, "-c", f"import pyc\ne = pyc.Engine()\nfor i in range({start}, {start + n}): e.tag('busybox', f'bench-{{i}}:1')\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    ap.add_argument("--scales", default="0,100,1000", help="containers and images for ps/images (default 0,100,1000)")
    ap.add_argument("--no-podman", action="store_true", help="pyc alone")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("commands.py: run as root")
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    podman_bin = None if args.no_podman else shutil.which("podman")
    scales = [int(s) for s in args.scales.split(",")]

    tmp = tempfile.mkdtemp(prefix="pycbench-cmd.", dir="/var/tmp")
    pyc = os.path.join(tmp, "pyc")
    os.environ["PYC_ROOT"] = os.path.join(tmp, "store")
    os.environ["CONTAINERS_CONF"] = os.path.join(tmp, "containers.conf")
    with open(os.environ["CONTAINERS_CONF"], "w") as f:
        f.write(CONTAINERS_CONF)
    podman = f"{podman_bin} --root {tmp}/podman-root --runroot {tmp}/podman-run" if podman_bin else None
    rows = []  # (case, pyc ms, podman ms or None)

    def case(name, pyc_cmd, podman_cmd=None, pyc_prepare=None, podman_prepare=None):
        cases = {"pyc": (pyc_cmd, pyc_prepare)}
        if podman and podman_cmd:
            cases["podman"] = (podman_cmd, podman_prepare)
        got = hyperfine(args.runs, cases, os.path.join(tmp, "hf.json"))
        rows.append((name, got["pyc"], got.get("podman")))
        print(f"  {name:32} pyc {got['pyc']:7.1f} ms" + (f"   podman {got['podman']:7.1f} ms" if "podman" in got else ""))

    try:
        # This repository's pyc through the launcher setup.sh installs, its modules as bytecode
        # (warm cache), as an installed pyc has them.
        launcher(pyc)
        sh(pyc, "image", "bootstrap", "busybox", capture=True)
        if podman:
            layers = os.path.join(os.environ["PYC_ROOT"], "layers")
            (layer,) = os.listdir(layers)
            subprocess.run(f"tar -C {os.path.join(layers, layer)} -c . | {podman} import -q - {PODMAN_IMAGE}", shell=True, check=True, capture_output=True)

        # One container: inspect, logs, exec, stop, start, rm.
        sh(pyc, "run", "-d", "--name", "one", "busybox", "sh", "-c", LOOP, capture=True)
        if podman:
            sh(*podman.split(), "run", "-d", "--name", "one", "--network=none", PODMAN_IMAGE, "sh", "-c", LOOP, capture=True)
        settle(2)
        p = podman or ""
        case("inspect one", f"{pyc} inspect one", f"{p} inspect one")
        case("logs one", f"{pyc} logs one", f"{p} logs one")
        case("exec one true", f"{pyc} exec one true", f"{p} exec one true")
        case("stop -t 0 one", f"{pyc} stop -t 0 one", f"{p} stop -t 0 one", f"{pyc} start one", f"{p} start one")
        case("start one", f"{pyc} start one", f"{p} start one", f"{pyc} stop -t 0 one", f"{p} stop -t 0 one")
        sh(pyc, "rm", "-f", "one", capture=True)
        if podman:
            sh(*podman.split(), "rm", "-f", "-t", "0", "one", capture=True)
        create = f"{pyc} create --name gone busybox true"
        case("rm of a created one", f"{pyc} rm gone", f"{p} rm gone", create, f"{p} create --name gone --network=none {PODMAN_IMAGE} true")

        # ps, ps -a and images as the store grows.
        have = 0
        for n in scales:
            add_containers(n - have)
            add_images(n - have, have)
            if podman and n > have:
                ids = " ".join(f"localhost/bench-{i}:1" for i in range(have, n))
                subprocess.run(f"for i in $(seq {n - have}); do {podman} create -q --network=none {PODMAN_IMAGE} true; done", shell=True, check=True, capture_output=True)
                subprocess.run(f"{podman} tag {PODMAN_IMAGE} {ids}", shell=True, check=True, capture_output=True)
            have = n
            settle(2)
            case(f"ps ({n} containers)", f"{pyc} ps", f"{p} ps")
            case(f"ps -a ({n} containers)", f"{pyc} ps -a", f"{p} ps -a")
            case(f"images ({n} images)", f"{pyc} images", f"{p} images")
    finally:
        subprocess.run(f"{pyc} ps -aq | xargs -r {pyc} rm -f", shell=True, capture_output=True)
        if podman:
            subprocess.run(f"{podman} rm -a -f -t 0; {podman} rmi -a -f; {podman} system reset -f", shell=True, capture_output=True)
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in sorted((m for m in points if m.startswith(tmp + "/")), reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{args.runs} runs each (hyperfine -N, 3 warm-up runs, medians)\n")
    print("| case | pyc ms | podman ms | podman / pyc |")
    print("|---|---:|---:|---:|")
    for name, mine, theirs in rows:
        print(f"| {name} | {mine:.1f} | {'' if theirs is None else f'{theirs:.1f}'} | {'' if theirs is None else f'{theirs / mine:.1f}x'} |")


if __name__ == "__main__":
    main()
