"""Networking: start latency on pyc's networks against --network none and podman, and TCP
throughput between containers and through a published port against the host's own loopback.

Everything runs inside a throwaway network namespace that plays the host (hyperfine included,
with nsenter): its bridges, veths, nftables tables and resolver are made there and go with it.
This machine's own network is never touched.

    pyc none          `pyc run --rm --network none busybox true`
    pyc bridge        `pyc run --rm --network bridge busybox true`     (pyc0 exists already)
    pyc user net      `pyc run --rm --network benchnet busybox true`   (its bridge and resolver exist:
                                                                       a container stays on it)
    pyc -p            the same on the default bridge with a published port
    podman none / podman bridge   `podman run --rm --network=none|bridge ... true`
    first container   pyc on a user network whose bridge was just removed and that has no other
                      container: bridge, rules and resolver are made, and the resolver leaves after

Throughput (a static probe, tests/probes/netprobe.c, bind-mounted in; 3 runs of 512 MiB each, the
median): container to container on one network, host loopback to a container through a published
port (DNAT), and the host side's loopback alone.

Run as root, from the repository, after building the venv (hyperfine, podman and gcc needed):

    .venv/bin/python benches/network.py [--runs N]
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from startup import CONTAINERS_CONF, PODMAN_IMAGE, REPO, hyperfine, launcher, podman_import, remove_tmp, settle, sh  # noqa: E402

PROBE = os.path.join(REPO, "tests", "probes", "netprobe.c")
MIB = 512


def in_ns(ns, *argv):
    return ["nsenter", f"--net=/run/netns/{ns}", *argv]


def throughput(ns, sender, sink_cmd):
    """Median MiB/s of 3 runs of `sender` against a sink started by `sink_cmd` (a Popen argv)."""
    rates = []
    for _ in range(3):
        sink = subprocess.Popen(sink_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            out = sh(*sender, capture=True).split()
            rates.append(float(out[2]))
        finally:
            sink.wait(timeout=30)
    return statistics.median(rates)


def clean(ns, tmp, podman, pyc_bin):
    """Everything the bench made, each step tried whatever the one before did: pyc's and
    podman's containers, every process left in the namespace, the namespace (its bridges, veths
    and nftables tables with it), podman's image, the temporary directory."""
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False}
    steps = [
        lambda: subprocess.run(in_ns(ns, pyc_bin, "rm", "-f", *subprocess.run(in_ns(ns, pyc_bin, "ps", "-aq"), capture_output=True, text=True).stdout.split()), **quiet),
        lambda: subprocess.run(in_ns(ns, podman, "rm", "-af", "-t", "0"), **quiet),
        lambda: [subprocess.run(["kill", "-9", pid], **quiet) for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()],
        lambda: subprocess.run(["ip", "netns", "del", ns], **quiet),
        lambda: subprocess.run([podman, "rmi", "-f", "--ignore", PODMAN_IMAGE], **quiet),
        lambda: remove_tmp(tmp),
    ]
    for step in steps:
        try:
            step()
        except Exception as e:  # the next step still runs
            print(f"network.py: clean-up: {e}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50, help="timed runs per command (default 50)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("network.py: run as root")
    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    podman = shutil.which("podman")
    if not podman or not shutil.which("hyperfine"):
        sys.exit("network.py: podman and hyperfine needed")

    tmp = tempfile.mkdtemp(prefix="pycbench.", dir="/var/tmp")
    ns = f"pycbench-{os.getpid()}"
    os.environ["PYC_ROOT"] = os.path.join(tmp, "store")
    os.environ["PYC_RUN"] = os.path.join(tmp, "run")
    os.environ.pop("PYC_DEFAULT_NETWORK", None)
    os.environ["CONTAINERS_CONF"] = os.path.join(tmp, "containers.conf")
    with open(os.environ["CONTAINERS_CONF"], "w") as f:
        f.write(CONTAINERS_CONF)
    probe = os.path.join(tmp, "netprobe")
    # pyc as setup.sh installs it (a launcher, the modules as bytecode), in the bench's directory.
    pyc_bin = os.path.join(tmp, "pyc")
    pyc = lambda *a: in_ns(ns, pyc_bin, *a)  # noqa: E731
    try:
        launcher(pyc_bin)
        sh("gcc", "-static", "-O2", "-o", probe, PROBE)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(pyc_bin, "image", "bootstrap", "busybox", capture=True)
        layers = os.path.join(os.environ["PYC_ROOT"], "layers")
        (layer,) = os.listdir(layers)
        podman_import(podman, os.path.join(layers, layer))
        sh(*pyc("network", "create", "benchnet"), capture=True)
        sh(*pyc("network", "create", "firstnet"), capture=True)
        sh(*pyc("run", "--rm", "--network", "bridge", "busybox", "true"))  # pyc0 made
        sh(*in_ns(ns, podman, "run", "--rm", "--network=bridge", "--pull=never", PODMAN_IMAGE, "true"))  # podman0 made
        sh(*pyc("run", "-d", "--name", "keep", "--network", "benchnet", "busybox", "sleep", "100000"), capture=True)
        settle()
        commands = {
            "pyc none": f"{pyc_bin} run --rm --network none busybox true",
            "pyc bridge": f"{pyc_bin} run --rm --network bridge busybox true",
            "pyc user net": f"{pyc_bin} run --rm --network benchnet busybox true",
            "pyc -p": f"{pyc_bin} run --rm --network bridge -p 18080:80 busybox true",
            "podman none": f"{podman} run --rm --network=none --pull=never {PODMAN_IMAGE} true",
            "podman bridge": f"{podman} run --rm --network=bridge --pull=never {PODMAN_IMAGE} true",
        }
        rows = hyperfine(args.runs, commands, os.path.join(tmp, "start.json"), wrap=in_ns(ns))
        bridge = "pyc-" + sh(*pyc("network", "inspect", "--format", "{{.Id}}", "firstnet"), capture=True).strip()[:8]
        first = hyperfine(
            max(10, args.runs // 5),
            {"pyc first container": f"{pyc_bin} run --rm --network firstnet busybox true"},
            os.path.join(tmp, "first.json"),
            wrap=in_ns(ns),
            extra=["--prepare", f"sh -c 'ip link del {bridge} 2>/dev/null; sleep 0.2'"],
        )
        rows.update(first)

        vol = f"{probe}:/netprobe:ro"
        sh(*pyc("run", "-d", "--name", "sink", "--network", "benchnet", "-p", "15000:5000", "-v", vol, "busybox", "sleep", "100000"), capture=True)
        sink_ip = sh(*pyc("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "sink"), capture=True).strip()
        sink = pyc("exec", "sink", "/netprobe", "tcp-sink", "5000")
        speeds = {
            "container to container": throughput(ns, pyc("run", "--rm", "--network", "benchnet", "-v", vol, "busybox", "/netprobe", "tcp-send", sink_ip, "5000", str(MIB)), sink),
            "host loopback to a published port": throughput(ns, in_ns(ns, probe, "tcp-send", "127.0.0.1", "15000", str(MIB)), sink),
            "host loopback alone": throughput(ns, in_ns(ns, probe, "tcp-send", "127.0.0.1", "15001", str(MIB)), in_ns(ns, probe, "tcp-sink", "15001")),
        }
    finally:
        clean(ns, tmp, podman, pyc_bin)

    print(f"\nstart-up, {args.runs} runs each (hyperfine -N, 5 warm-up runs), inside a network namespace\n")
    print("| case | median ms | mean ms | vs pyc none |")
    print("|---|---:|---:|---:|")
    base = rows["pyc none"][0]
    for name, (median, mean) in rows.items():
        print(f"| {name} | {median:.1f} | {mean:.1f} | +{median - base:.1f} ms |")
    print(f"\npodman bridge / pyc bridge (medians): {rows['podman bridge'][0] / rows['pyc bridge'][0]:.1f}x")
    print(f"\nTCP throughput, {MIB} MiB, median of 3\n")
    print("| path | MiB/s | vs host loopback |")
    print("|---|---:|---:|")
    loop = speeds["host loopback alone"]
    for name, rate in speeds.items():
        print(f"| {name} | {rate:.0f} | {rate / loop:.2f} |")


if __name__ == "__main__":
    main()
