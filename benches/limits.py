"""The cost of limits at start-up: pyc against runc, each with and without the same limits.

    pyc          `pyc run --rm busybox true`
    pyc limits   `pyc run --rm --memory 64m --cpus 1 --pids-limit 100 busybox true`
    runc         `runc run` of the same rootfs
    runc limits  the same, with linux.resources memory 64m, cpu quota = period, pids 100

All four are timed by one hyperfine invocation, side by side, on the busybox rootfs of a private
store; the table shows what the limits add to each. Setup and clean-up are startup.py's.

    .venv/bin/python benches/limits.py [--runs N]      # as root, after ./setup.sh
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import startup  # noqa: E402  (the shared helpers)

# pyc's containers run on --network none here, as podman's: no bridge, veth or rule is made.
os.environ.setdefault("PYC_DEFAULT_NETWORK", "none")

LIMITS = ["--memory", "64m", "--cpus", "1", "--pids-limit", "100"]
RESOURCES = {"memory": {"limit": 64 << 20, "swap": 128 << 20}, "cpu": {"quota": 100_000, "period": 100_000}, "pids": {"limit": 100}}


def limited_bundle(bundle, limited):
    """A second bundle on the first one's rootfs, with the same limits pyc gets."""
    os.mkdir(limited)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["root"]["path"] = os.path.join(bundle, "rootfs")
    config["linux"].setdefault("resources", {}).update(RESOURCES)
    with open(os.path.join(limited, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("limits.py: run as root")
    tmp = tempfile.mkdtemp(prefix="pycbench.", dir="/var/tmp")
    os.environ["PYC_ROOT"] = os.path.join(tmp, "store")
    bundle, limited = os.path.join(tmp, "bundle"), os.path.join(tmp, "limited")
    try:
        startup.sh(startup.PYC, "image", "bootstrap", "busybox", capture=True)
        startup.make_bundle(os.path.join(os.environ["PYC_ROOT"], "layers"), bundle)
        limited_bundle(bundle, limited)
        run = f"{startup.PYC} run --rm"
        commands = {
            "pyc": f"{run} busybox true",
            "pyc limits": f"{run} {' '.join(LIMITS)} busybox true",
            "runc": f"runc run --bundle {bundle} {startup.RUNC_IDS[0]}",
            "runc limits": f"runc run --bundle {limited} {startup.RUNC_IDS[1]}",
        }
        startup.settle()
        times = startup.hyperfine(args.runs, commands, os.path.join(tmp, "limits.json"))
    finally:
        startup.clean_up(tmp, None, None)
    print(f"\n{args.runs} runs each (hyperfine -N); limits: {' '.join(LIMITS)}\n")
    print("| tool | median ms, no limits | median ms, limits | added by limits |")
    print("|---|---:|---:|---:|")
    for tool in ("pyc", "runc"):
        plain, lim = times[tool][0], times[f"{tool} limits"][0]
        print(f"| {tool} | {plain:.1f} | {lim:.1f} | {lim - plain:+.1f} ms ({(lim / plain - 1) * 100:+.0f}%) |")
    print(f"\npyc with limits / runc with limits: {times['pyc limits'][0] / times['runc limits'][0]:.2f}x")


if __name__ == "__main__":
    main()
