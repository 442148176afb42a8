"""Detached containers: the cycle `run -d` + `stop` + `rm`, pyc against podman (runc) side by
side in one hyperfine run, and the memory of the process that holds each container (pyc-monitor
against podman's conmon): VmRSS from /proc/<pid>/status and Pss from smaps_rollup.

    pyc      pyc run -d busybox sleep 1000; pyc stop -t 0 ID; pyc rm ID
    podman   podman run -d --network=none IMG sleep 1000; podman stop -t 0 ID; podman rm ID

`stop -t 0`: `sleep` as a pid namespace's init ignores SIGTERM, so both go straight to SIGKILL
and the cycle measures the engines, not a timeout. Both use the same busybox files: pyc's image
exported and imported into podman. Everything made is removed at the end, also on failure.

Run as root after ./setup.sh:  .venv/bin/python benches/lifecycle.py [--runs N]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

# pyc's containers run on --network none here, as podman's: no bridge, veth or rule is made.
os.environ.setdefault("PYC_DEFAULT_NETWORK", "none")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYC = os.path.join(REPO, ".venv", "bin", "pyc")
IMAGE = "localhost/pyclifecycle:latest"
CONTAINERS_CONF = '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n'


def sh(*args: str, **kw: object) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout.strip()  # type: ignore[call-overload, no-any-return]


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, Pss) in KiB."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/smaps_rollup") as f:
        pss = next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
    return rss, pss


def holders(n: int, podman: bool) -> list[tuple[int, int]]:
    """Start n containers, measure their holders, remove them."""
    ids, out = [], []
    try:
        for _ in range(n):
            if podman:
                ids.append(sh("podman", "run", "-d", "--network=none", IMAGE, "sleep", "1000"))
                out.append(memory(int(sh("podman", "inspect", "--format", "{{.State.ConmonPid}}", ids[-1]))))
            else:
                ids.append(sh(PYC, "run", "-d", "busybox", "sleep", "1000"))
                out.append(memory(int(sh(PYC, "inspect", "--format", "{{.State.MonitorPid}}", ids[-1]))))
    finally:
        for cid in ids:
            subprocess.run(["podman", "rm", "-f", "-t", "0", cid] if podman else [PYC, "rm", "-f", cid], capture_output=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pyc-bench-lc-", dir="/var/tmp")
    os.environ["PYC_ROOT"] = os.path.join(work, "store")
    conf = os.path.join(work, "containers.conf")
    with open(conf, "w") as f:
        f.write(CONTAINERS_CONF)
    os.environ["CONTAINERS_CONF"] = conf
    have_podman = shutil.which("podman") is not None
    try:
        sh(PYC, "image", "bootstrap", "busybox")
        if have_podman:
            sh(PYC, "run", "--name", "export-me", "busybox", "true")
            subprocess.run(f"{PYC} export export-me | podman import -q - {IMAGE}", shell=True, check=True, capture_output=True)
            sh(PYC, "rm", "export-me")
        cmds = {"pyc": f"id=$({PYC} run -d busybox sleep 1000) && {PYC} stop -t 0 $id >/dev/null && {PYC} rm $id >/dev/null"}
        if have_podman:
            cmds["podman"] = f"id=$(podman run -d --network=none {IMAGE} sleep 1000) && podman stop -t 0 $id >/dev/null && podman rm $id >/dev/null"
        export = os.path.join(work, "hyperfine.json")
        hf = ["hyperfine", "--shell=bash", "--warmup", "2", "--runs", str(args.runs), "--export-json", export]
        for name, cmd in cmds.items():
            hf += ["-n", name, cmd]
        subprocess.run(hf, check=True, stdout=subprocess.DEVNULL)
        with open(export) as f:
            medians = {r["command"]: statistics.median(r["times"]) * 1000 for r in json.load(f)["results"]}
        print(f"cycle run -d + stop -t 0 + rm (median of {args.runs}):")
        for name, ms in medians.items():
            print(f"  {name:7} {ms:8.1f} ms" + (f"   pyc/podman = {medians['pyc'] / ms:.2f}" if name == "podman" else ""))
        for label, podman in (("pyc-monitor", False), ("conmon", True)):
            if podman and not have_podman:
                continue
            mem = holders(5, podman)
            print(f"{label:12} per container: VmRSS median {statistics.median(r for r, _ in mem):.0f} KiB, Pss median {statistics.median(p for _, p in mem):.0f} KiB (5 containers)")
    finally:
        if have_podman:
            subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True)
        for cid in subprocess.run([PYC, "ps", "-a", "-q"], capture_output=True, text=True).stdout.split():
            subprocess.run([PYC, "rm", "-f", cid], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
