"""Container start-up: pyc against runc, crun and podman, on the same busybox rootfs.

Each tool starts a container that runs `true` and waits for it to exit:

    pyc CLI                `pyc run --rm busybox true`
    runc                   `runc run --bundle BUNDLE ...`   (the OCI runtime alone: the floor)
    podman                 `podman run --rm localhost/pycbench:latest true`   (runtime = runc)
    crun                   `crun run --bundle BUNDLE ...`
    pyc API (warm python)  `Engine().run("busybox", ...)` in an already warm Python process

The busybox image is made with `pyc image bootstrap busybox` in a private store
($PYC_ROOT = a temp dir); its single layer is copied into the OCI bundle for runc/crun and
imported into podman, so every tool starts the same files. pyc, runc and podman are timed by one
hyperfine invocation (side by side). crun refuses to run on this hybrid-cgroup host while
/sys/fs/cgroup/unified/cgroup.controllers exists, so it runs in a second hyperfine invocation in a
private mount namespace where that file is hidden by /dev/null; runc is measured again there and
crun's ratio is against that runc. Also reported: peak RSS of the pyc CLI during a run.

Nothing touches the network. Everything made is removed at the end, on failure too: the temp
store and bundle, the podman image (and any container of it), the runc/crun containers.

Run as root, from the repository, after building the venv:

    PYTHONDONTWRITEBYTECODE= .venv/bin/python -m compileall -q python   # imports from bytecode
    .venv/bin/python benches/startup.py [--runs N]

Needs hyperfine, runc; crun and podman rows are skipped with a note when they are missing.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYC = os.path.join(REPO, ".venv", "bin", "pyc")
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
PODMAN_IMAGE = "localhost/pycbench:latest"
CGROUP_CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""

# Runs in a fresh .venv python: warm up, then time N runs of Engine.run; prints milliseconds.
API_SCRIPT = """\
import json, statistics, sys, time
import pyc
e = pyc.Engine()
opts = lambda: pyc.RunOptions(["true"], remove=True)
for _ in range(5):
    e.run("busybox", opts(), stdout=1, stderr=2)
times = []
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    e.run("busybox", opts(), stdout=1, stderr=2)
    times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"median": statistics.median(times), "mean": statistics.mean(times)}))
"""

# Runs in a fresh python: peak RSS (KiB) of the largest waited-for child, i.e. of `pyc run`.
RSS_SCRIPT = """\
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def hyperfine(runs, commands, json_path, wrap=()):
    """Time commands ({name: command line}) side by side; {name: (median ms, mean ms)}."""
    argv = ["hyperfine", "-N", "--style", "basic", "--warmup", "5", "--runs", str(runs), "--export-json", json_path]
    for name, command in commands.items():
        argv += ["-n", name, command]
    sh(*wrap, *argv)
    with open(json_path) as f:
        results = json.load(f)["results"]
    return {r["command"]: (r["median"] * 1000, r["mean"] * 1000) for r in results}


def make_bundle(layers, bundle):
    """The store's one layer as an OCI bundle running `true`."""
    (layer,) = os.listdir(layers)
    sh("cp", "-a", os.path.join(layers, layer), os.path.join(bundle, "rootfs"))
    sh("runc", "spec", "--bundle", bundle)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["true"]
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


def unmount_under(path):
    """Lazily unmount anything left mounted below path (deepest first), so rmtree stays inside it."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(path + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100, help="timed runs per command (default 100)")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # keep our lines in order with hyperfine's
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up when killed, too
    if os.geteuid() != 0:
        sys.exit("startup.py: run as root")
    podman = shutil.which("podman")
    crun = shutil.which("crun")

    tmp = tempfile.mkdtemp(prefix="pycbench.", dir="/var/tmp")
    # Inherited by every command, hyperfine's included.
    os.environ["PYC_ROOT"] = os.path.join(tmp, "store")
    os.environ["CONTAINERS_CONF"] = os.path.join(tmp, "containers.conf")
    bundle = os.path.join(tmp, "bundle")
    runc_ids = ["pycbench-runc", "pycbench-runc2"]
    podman_image_made = False
    rows = {}  # name: (median ms, mean ms, reference name)
    try:
        sh(PYC, "image", "bootstrap", "busybox", stdout=subprocess.DEVNULL)
        os.mkdir(bundle)
        make_bundle(os.path.join(os.environ["PYC_ROOT"], "layers"), bundle)

        commands = {"pyc CLI": f"{PYC} run --rm busybox true", "runc": f"runc run --bundle {bundle} {runc_ids[0]}"}
        if podman:
            with open(os.environ["CONTAINERS_CONF"], "w") as f:
                f.write(CONTAINERS_CONF)
            podman_image_made = True
            tar = subprocess.Popen(["tar", "-C", os.path.join(bundle, "rootfs"), "-c", "."], stdout=subprocess.PIPE)
            sh(podman, "import", "-q", "-", PODMAN_IMAGE, stdin=tar.stdout, stdout=subprocess.DEVNULL)
            tar.stdout.close()
            if tar.wait():
                raise RuntimeError("tar of the rootfs failed")
            commands["podman"] = f"{podman} run --rm --pull=never {PODMAN_IMAGE} true"
        else:
            print("note: podman not found, skipping its row")
        for name, times in hyperfine(args.runs, commands, os.path.join(tmp, "main.json")).items():
            rows[name] = (*times, "runc")

        if crun:
            wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    f'mount --bind /dev/null {CGROUP_CONTROLLERS} && exec "$@"', "sh"]  # fmt: skip
            commands = {"crun": f"{crun} run --bundle {bundle} pycbench-crun",
                        "runc (crun group)": f"runc run --bundle {bundle} {runc_ids[1]}"}  # fmt: skip
            for name, times in hyperfine(args.runs, commands, os.path.join(tmp, "crun.json"), wrap).items():
                rows[name] = (*times, "runc (crun group)")
        else:
            print("note: crun not found, skipping its row")

        out = sh(PYTHON, "-c", API_SCRIPT, str(args.runs), stdout=subprocess.PIPE, text=True).stdout
        api = json.loads(out.splitlines()[-1])
        rows["pyc API (warm python)"] = (api["median"], api["mean"], "runc")

        rss_kib = max(
            int(sh(sys.executable, "-c", RSS_SCRIPT, PYC, "run", "--rm", "busybox", "true", stdout=subprocess.PIPE, text=True).stdout)
            for _ in range(5)
        )
    finally:
        for cid in runc_ids:
            subprocess.run(["runc", "delete", "-f", cid], stderr=subprocess.DEVNULL, check=False)
        if crun:
            subprocess.run([crun, "delete", "-f", "pycbench-crun"], stderr=subprocess.DEVNULL, check=False)
        if podman_image_made:  # -f also removes any container left of the image
            subprocess.run([podman, "rmi", "-f", PODMAN_IMAGE], stdout=subprocess.DEVNULL, check=False)
        unmount_under(tmp)
        shutil.rmtree(tmp)

    print(f"\n{args.runs} runs each (hyperfine -N, 5 warm-up runs); ratio = median / median of the runc run alongside\n")
    print("| tool | median ms | mean ms | ratio to runc |")
    print("|---|---:|---:|---:|")
    for name, (median, mean, ref) in rows.items():
        print(f"| {name} | {median:.1f} | {mean:.1f} | {median / rows[ref][0]:.2f}x |")
    print(f"\npyc CLI peak RSS (max of 5 runs): {rss_kib / 1024:.1f} MiB\n")

    def target(text, ok):
        print(f"- [{'PASS' if ok else 'FAIL'}] {text}")

    med = {name: row[0] for name, row in rows.items()}
    print("Targets:")
    target(f"pyc CLI within 2x of runc: {med['pyc CLI'] / med['runc']:.2f}x", med["pyc CLI"] <= 2 * med["runc"])
    if "podman" in med:
        target(f"pyc CLI at least 4x faster than podman: {med['podman'] / med['pyc CLI']:.1f}x", med["podman"] >= 4 * med["pyc CLI"])
    if "crun" in med:
        api, crun_med = med["pyc API (warm python)"], med["crun"]
        target(f"pyc API faster than crun: {api:.1f} ms vs {crun_med:.1f} ms", api < crun_med)


if __name__ == "__main__":
    main()
