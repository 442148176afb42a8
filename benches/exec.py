"""`exec true` into a running container: pyc against podman, side by side in one hyperfine run.

    pyc      `pyc exec bench true`        into `pyc run --name bench busybox sleep ...`, held
                                           in the foreground by this script
    podman   `podman exec NAME true`      into `podman run -d --network=none IMAGE sleep ...`

Both run the same busybox files (pyc's bootstrap layer, imported into podman); podman runs runc
(CONTAINERS_CONF as in startup.py). Everything made is removed at the end, also on failure or
Ctrl-C: the temp store, the pyc container (it dies with the pyc that holds it), the podman
container and image.

Run as root, from the repository, after building the venv:

    .venv/bin/python benches/exec.py [--runs N]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from startup import CONTAINERS_CONF, PODMAN_IMAGE, REPO, clean_up, hyperfine, podman_import, settle, sh  # noqa: E402

# pyc's containers run on --network none here, as podman's: no bridge, veth or rule is made.
os.environ.setdefault("PYC_DEFAULT_NETWORK", "none")

# This repository's own pyc (the one with exec), not a launcher that may point elsewhere.
PYC = os.path.join(REPO, ".venv", "bin", "pyc")

PODMAN_NAME = "pycbench-exec"


def wait_running(cmd):
    """Until `cmd` (an exec of `true`) succeeds: the container is up."""
    deadline = time.monotonic() + 30
    while subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"container did not come up: {' '.join(cmd)}")
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100, help="timed runs per command (default 100)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("exec.py: run as root")
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    podman = shutil.which("podman")
    if not podman:
        sys.exit("exec.py: podman not found")

    tmp = tempfile.mkdtemp(prefix="pycbench.", dir="/var/tmp")
    os.environ["PYC_ROOT"] = os.path.join(tmp, "store")
    os.environ["CONTAINERS_CONF"] = os.path.join(tmp, "containers.conf")
    with open(os.environ["CONTAINERS_CONF"], "w") as f:
        f.write(CONTAINERS_CONF)
    holder = None
    try:
        sh(PYC, "image", "bootstrap", "busybox", capture=True)
        layers = os.path.join(os.environ["PYC_ROOT"], "layers")
        (layer,) = os.listdir(layers)
        podman_import(podman, os.path.join(layers, layer))
        holder = subprocess.Popen([PYC, "run", "--rm", "--name", "bench", "busybox", "sleep", "1000000"])
        sh(podman, "run", "-d", "--name", PODMAN_NAME, "--pull=never", "--network=none", PODMAN_IMAGE, "sleep", "1000000", capture=True)
        wait_running([PYC, "exec", "bench", "true"])
        wait_running([podman, "exec", PODMAN_NAME, "true"])
        settle()
        commands = {"pyc exec": f"{PYC} exec bench true", "podman exec": f"{podman} exec {PODMAN_NAME} true"}
        rows = hyperfine(args.runs, commands, os.path.join(tmp, "exec.json"))
    finally:
        if holder is not None:
            holder.kill()  # the container dies with it
            holder.wait()
        subprocess.run([podman, "rm", "-f", "-t", "0", "--ignore", PODMAN_NAME], stdout=subprocess.DEVNULL, check=False)
        clean_up(tmp, podman, None)

    print(f"\n{args.runs} runs each (hyperfine -N, 5 warm-up runs)\n")
    print("| tool | median ms | mean ms |")
    print("|---|---:|---:|")
    for name, (median, mean) in rows.items():
        print(f"| {name} | {median:.1f} | {mean:.1f} |")
    print(f"\npodman / pyc (medians): {rows['podman exec'][0] / rows['pyc exec'][0]:.1f}x")


if __name__ == "__main__":
    main()
