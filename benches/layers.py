"""Start-up with many layers: `run --rm IMAGE true` on busybox (1 layer) and on busybox plus 125
tiny layers (126), pyc on both ways of mounting the overlay against podman on the same images.

    pyc fsconfig   `pyc run --rm IMAGE true`, the overlay built one `lowerdir+` at a time (Linux 6.8)
    pyc legacy     the same with PYC_OVERLAY_MOUNT=legacy: one mount(2), the layers by fd number
    podman         `podman run --rm --network=none IMAGE true` (runc; its own store, in a temp dir;
                   its own hyperfine group, which ignores its now-and-then exit 125)
    pyc API        `Engine().run(IMAGE, ...)` in a warm Python process, both ways (no CLI start-up)

The 126-layer image is made here as a docker-archive (tests/integration/many_layers.py), and
loaded into pyc and into podman; so is busybox. Every pyc command runs through `env` (setting
PYC_OVERLAY_MOUNT, empty for the default way), so the rows pay the same exec. Everything made is
removed at the end, also on failure or Ctrl-C: the temp stores, podman's mounts, pyc's containers.

Run as root, from the repository, after building the venv:

    .venv/bin/python benches/layers.py [--runs N]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# pyc's containers run on --network none here, as podman's: no bridge, veth or rule is made.
os.environ.setdefault("PYC_DEFAULT_NETWORK", "none")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tests.integration.many_layers import make_archive  # noqa: E402

from startup import CONTAINERS_CONF, PYTHON, hyperfine, remove_pyc_containers, remove_tmp, settle, sh  # noqa: E402

# This repository's pyc (the layers it can mount are what is measured), not the one on the PATH.
PYC = os.path.join(REPO, ".venv", "bin", "pyc")

MANY = "localhost/many:126"
# Warm up, then time N rounds of Engine.run, each round one run per (way, image) in turn, so that
# the load of a shared machine weighs on every case alike; prints {name: median ms}.
API_SCRIPT = """\
import itertools, json, os, statistics, sys, time
import pyc

e = pyc.Engine()
cases = list(itertools.product(("fsconfig", "legacy"), sys.argv[2:]))
times = {case: [] for case in cases}
for i in range(5 + int(sys.argv[1])):
    for way, image in cases:
        os.environ["PYC_OVERLAY_MOUNT"] = "legacy" if way == "legacy" else ""
        t = time.perf_counter()
        e.run(image, pyc.RunOptions(["true"], remove=True), stdout=1, stderr=2)
        if i >= 5:
            times[way, image].append((time.perf_counter() - t) * 1000)
print(json.dumps({f"{way} {image}": statistics.median(t) for (way, image), t in times.items()}))
"""


def clean_up(tmp, podman):
    remove_pyc_containers(PYC)
    if podman:
        subprocess.run([*podman, "system", "reset", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    remove_tmp(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40, help="timed runs per command (default 40)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("layers.py: run as root")
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="pycbench-layers.", dir="/var/tmp")
    os.environ["PYC_ROOT"] = os.path.join(tmp, "store")
    os.environ["CONTAINERS_CONF"] = os.path.join(tmp, "containers.conf")
    with open(os.environ["CONTAINERS_CONF"], "w") as f:
        f.write(CONTAINERS_CONF)
    podman = shutil.which("podman")
    podman = [podman, "--root", f"{tmp}/podman/root", "--runroot", f"{tmp}/podman/run", "--storage-driver", "overlay"] if podman else None
    try:
        sh(PYC, "image", "bootstrap", "busybox", capture=True)
        base, many = Path(tmp, "busybox.tar"), Path(tmp, "many.tar")
        sh(PYC, "save", "busybox", "-o", str(base), "--format", "docker-archive")
        make_archive(base, many, 125, MANY)
        sh(PYC, "load", "-i", str(many), capture=True)
        commands, podman_commands = {}, {}
        for image, layers in (("busybox", 1), (MANY, 126)):
            for way in ("fsconfig", "legacy"):
                env = "PYC_OVERLAY_MOUNT=" + ("legacy" if way == "legacy" else "")
                commands[f"pyc {way}, {layers} layers"] = f"env {env} {PYC} run --rm {image} true"
        if podman:
            for archive, image, layers in ((base, "localhost/busybox:latest", 1), (many, MANY, 126)):
                sh(*podman, "load", "-q", "-i", str(archive), capture=True)
                podman_commands[f"podman, {layers} layers"] = f"{' '.join(podman)} run --rm --pull=never --network=none {image} true"
        else:
            print("note: podman not found, skipping its rows")
        os.sync()  # the loads' writeback would weigh on the first command timed
        settle()
        cli = hyperfine(args.runs, commands, os.path.join(tmp, "cli.json"))
        if podman:
            # podman 4.3's run --rm now and then exits 125 once its container has run ("no such
            # exit code"): its own group, where a failed run is timed rather than fatal.
            settle()
            cli |= hyperfine(args.runs, podman_commands, os.path.join(tmp, "podman.json"), extra=["--ignore-failure"])
        settle()
        api = json.loads(sh(PYTHON, "-c", API_SCRIPT, str(args.runs), "busybox", MANY, capture=True, interruptible=True).splitlines()[-1])
    finally:
        clean_up(tmp, podman)

    print(f"\n{args.runs} runs each (hyperfine -N, 5 warm-up runs); medians in ms\n")
    print("| command | 1 layer | 126 layers | 126 / 1 |")
    print("|---|---:|---:|---:|")
    rows = [(f"pyc CLI, {way}", cli[f"pyc {way}, 1 layers"][0], cli[f"pyc {way}, 126 layers"][0]) for way in ("fsconfig", "legacy")]
    if podman:
        rows.append(("podman (runc)", cli["podman, 1 layers"][0], cli["podman, 126 layers"][0]))
    rows += [(f"pyc API, {way}", api[f"{way} busybox"], api[f"{way} {MANY}"]) for way in ("fsconfig", "legacy")]
    for name, one, many_ms in rows:
        print(f"| {name} | {one:.1f} | {many_ms:.1f} | {many_ms / one:.2f}x |")
    if podman:
        print(f"\npodman / pyc CLI (fsconfig) on 126 layers: {cli['podman, 126 layers'][0] / cli['pyc fsconfig, 126 layers'][0]:.1f}x")


if __name__ == "__main__":
    main()
