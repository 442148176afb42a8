"""Container start-up: pyc against runc, crun and podman, on the same busybox rootfs.

Each tool starts a container that runs `true` and waits for it to exit:

    pyc CLI                `pyc run --rm busybox true`, through the launcher setup.sh installs
                           (python -m pyc.launcher), written for this repository's venv
    runc                   `runc run --bundle BUNDLE ...`   (the OCI runtime alone: the floor)
    podman                 `podman run --rm --network=none localhost/pycbench:latest true`
    crun                   `crun run --bundle BUNDLE ...`
    pyc API (warm python)  `Engine().run("busybox", ...)` in an already warm Python process
    pyc CLI (DIR)          with --compare DIR: the pyc of another checkout (its venv and its
                           launcher; the one setup.sh wrote before pyc.launcher existed if it
                           has none), in the same hyperfine run: before and after a change

Then where a `pyc run`'s time goes, each step timed on its own (medians):

    interpreter            the launcher's Python, started and stopped (`python -IS -c pass`)
    imports                the modules a `pyc run` imports (read from `-X importtime` of one),
                           imported by that Python on the launcher's sys.path, less the above
    engine                 Engine.run in a warm Python, less its pyc_core.run
    pyc_core.run           the container itself: cgroup, clone, mounts, exec, wait, clean-up
    the rest               the CLI's median less all of the above: parsing the command line,
                           the first use of what was imported, the exit

The busybox image is made with `pyc image bootstrap busybox` in a private store ($PYC_ROOT = a
temp dir); its single layer is copied into the OCI bundle for runc/crun and imported into podman,
so every tool starts the same files. podman runs runc and, like pyc and runc, gives the container
a network namespace with only lo (--network=none: no bridge, veth or firewall rules on the host,
nothing left behind if it is cut short). pyc and runc (and the --compare pyc) are timed by one
hyperfine invocation, side by side; podman by a second, beside runc again, with -i: on a loaded
machine it exits 125 now and then. crun refuses to run on this hybrid-cgroup host while
/sys/fs/cgroup/unified/cgroup.controllers exists, so it runs in a second hyperfine invocation in a
private mount namespace where /dev/null hides that file; runc is measured again there and crun's
ratio is against that runc. The API row is timed in-process with perf_counter (its ratio is
against the first runc). Also reported: peak RSS of the pyc CLI during a run.

Nothing touches the network. Everything made is removed at the end, also on failure, Ctrl-C or
SIGTERM: the temp store and bundle, pyc's containers (and their cgroups), the podman image and
any container of it, the runc/crun containers.

Run as root, from the repository, after building the venv:

    PYTHONDONTWRITEBYTECODE= .venv/bin/python -m compileall -q python   # imports from bytecode
    .venv/bin/python benches/startup.py [--runs N] [--compare DIR]

Needs hyperfine and runc; the crun and podman rows are skipped with a note when they are missing.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# pyc's containers run on --network none here, as podman's: no bridge, veth or rule is made.
os.environ.setdefault("PYC_DEFAULT_NETWORK", "none")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
VENV_PYC = os.path.join(REPO, ".venv", "bin", "pyc")  # pip's console script, for the clean-up
PODMAN_IMAGE = "localhost/pycbench:latest"
RUNC_IDS = ("pycbench-runc", "pycbench-runc2", "pycbench-runc3")
CRUN_ID = "pycbench-crun"
CGROUP_CONTROLLERS = "/sys/fs/cgroup/unified/cgroup.controllers"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""

# Runs in a fresh .venv python: warm up, then time N runs of Engine.run, and of the pyc_core.run
# within each; prints milliseconds.
API_SCRIPT = """\
import json, statistics, sys, time
import pyc, pyc_core
e = pyc.Engine()
opts = lambda: pyc.RunOptions(["true"], remove=True)
core_run, core = pyc_core.run, []
def timed(*args):
    t = time.perf_counter()
    try:
        return core_run(*args)
    finally:
        core.append((time.perf_counter() - t) * 1000)
pyc_core.run = timed
for _ in range(5):
    e.run("busybox", opts(), stdout=1, stderr=2)
times = []
del core[:]
for _ in range(int(sys.argv[1])):
    t = time.perf_counter()
    e.run("busybox", opts(), stdout=1, stderr=2)
    times.append((time.perf_counter() - t) * 1000)
m = statistics.median
print(json.dumps({"median": m(times), "mean": statistics.mean(times), "core": m(core), "engine": m(a - b for a, b in zip(times, core))}))
"""

# Runs in a fresh python: peak RSS (KiB) of the largest waited-for child, i.e. of `pyc run`.
RSS_SCRIPT = """\
import resource, subprocess, sys

subprocess.run(sys.argv[1:], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def sh(*cmd, stdin=None, capture=False, interruptible=False):
    """Run cmd in a process group of its own; its stdout when capture.

    If we are interrupted (Ctrl-C, SIGTERM, an error), an interruptible cmd (hyperfine) is killed
    but what it is timing is let finish: a podman cut short leaves mounts, netns, temp files. Then
    we wait until the whole group has gone, so that the clean-up does not race with it."""
    p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE if capture else None, text=True, process_group=0)
    try:
        out, _ = p.communicate()
    except BaseException:
        if interruptible:
            p.kill()
        deadline = time.monotonic() + 60
        with contextlib.suppress(ProcessLookupError):
            while time.monotonic() < deadline:
                p.poll()  # reap the leader, else it stays in the group as a zombie
                os.killpg(p.pid, 0)
                time.sleep(0.05)
            os.killpg(p.pid, signal.SIGKILL)
        raise
    if p.returncode:
        raise subprocess.CalledProcessError(p.returncode, cmd)
    return out


def settle(seconds=5.0):
    """Let the kernel finish tearing down the previous group's network namespaces (it does so
    asynchronously, and a backlog slows every new namespace), so each group starts as the first."""
    time.sleep(seconds)


def hyperfine(runs, commands, json_path, wrap=(), extra=()):
    """Time commands ({name: command line}) side by side; {name: (median ms, mean ms)}."""
    argv = ["hyperfine", "-N", *extra, "--style", "basic", "--warmup", "5", "--runs", str(runs), "--export-json", json_path]
    for name, command in commands.items():
        argv += ["-n", name, command]
    sh(*wrap, *argv, interruptible=True)
    with open(json_path) as f:
        results = json.load(f)["results"]
    return {r["command"]: (r["median"] * 1000, r["mean"] * 1000) for r in results}


def launcher(path, repo=REPO):
    """Write the `pyc` of `repo` (its venv) to `path` as setup.sh installs it; `path`."""
    python = os.path.join(repo, ".venv", "bin", "python")
    if os.path.exists(os.path.join(repo, "python", "pyc", "launcher.py")):
        sh(python, "-m", "pyc.launcher", path)
    else:  # what setup.sh wrote before pyc.launcher
        with open(path, "w") as f:
            f.write(f"#!{python}\nfrom pyc.cli.main import main\n\nmain()\n")
        os.chmod(path, 0o755)
    # Warm cache: the modules as bytecode, as an installed pyc has them.
    sh(python, "-m", "compileall", "-q", os.path.join(repo, "python"), capture=True)
    return path


def run_imports(pyc, python, tmp):
    """A script that imports what one `pyc run --rm busybox true` imports, on the launcher's
    sys.path, and nothing else; and that list."""
    out = subprocess.run([python, "-IS", "-X", "importtime", pyc, "run", "--rm", "busybox", "true"], capture_output=True, text=True, check=True).stderr
    names = [line.rsplit("|", 1)[1] for line in out.splitlines() if line.startswith("import time:") and "|" in line][1:]
    # Only the top-level imports (the least indented), in their order: each brings in what it
    # needs as it did in the run. What the interpreter loads at start is left out.
    preloaded = subprocess.run([python, "-IS", "-c", "import sys; print(*sys.modules)"], capture_output=True, text=True, check=True).stdout.split()
    top = min(len(name) - len(name.lstrip()) for name in names)
    roots = [name.strip() for name in names if len(name) - len(name.lstrip()) == top and name.strip() not in preloaded]
    modules = [name.strip() for name in names if name.strip() not in preloaded]
    with open(pyc) as f:
        path_line = next(line for line in f if line.startswith("sys.path"))
    script = os.path.join(tmp, "imports.py")
    with open(script, "w") as f:
        f.write(f"import sys\n{path_line}import {', '.join(roots)}\n")
    return script, modules


def make_bundle(layers, bundle):
    """The store's one layer as an OCI bundle running `true`."""
    (layer,) = os.listdir(layers)
    os.mkdir(bundle)
    sh("cp", "-a", os.path.join(layers, layer), os.path.join(bundle, "rootfs"))
    sh("runc", "spec", "--bundle", bundle)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["true"]
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


def podman_import(podman, rootfs):
    tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
    try:
        sh(podman, "import", "-q", "-", PODMAN_IMAGE, stdin=tar.stdout, capture=True)
    finally:
        tar.stdout.close()
        tar.wait()


def remove_pyc_containers(pyc):
    """A run cut short leaves its container, and its cgroup."""
    if os.path.isdir(os.environ["PYC_ROOT"]):
        ids = subprocess.run([pyc, "ps", "-aq"], capture_output=True, text=True, check=False).stdout.split()
        if ids:
            subprocess.run([pyc, "rm", "-f", *ids], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def remove_tmp(tmp):
    """Nothing should be mounted below tmp (pyc mounts in the container's namespace); if something
    is, detach it so that rmtree stays inside tmp."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(tmp + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(tmp)


def clean_up(tmp, podman, crun, pyc=VENV_PYC):
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False}
    remove_pyc_containers(pyc)
    for cid in RUNC_IDS:
        subprocess.run(["runc", "delete", "-f", cid], **quiet)
    if crun:
        subprocess.run([crun, "delete", "-f", CRUN_ID], **quiet)
    for attempt in range(3 if podman else 0):  # -f removes any container of the image too; a
        last = attempt == 2  # podman cut short can leave a busy mount that a second try clears
        rmi = [podman, "rmi", "-f", "--ignore", PODMAN_IMAGE]
        if subprocess.run(rmi, stdout=subprocess.DEVNULL, stderr=None if last else subprocess.DEVNULL).returncode == 0:
            break
        time.sleep(1)
    remove_tmp(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100, help="timed runs per command (default 100)")
    ap.add_argument("--compare", metavar="DIR", help="also time the pyc of this checkout (built, with its .venv)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("startup.py: run as root")
    sys.stdout.reconfigure(line_buffering=True)  # keep our lines in order with hyperfine's
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up when killed, too
    podman = shutil.which("podman")
    crun = shutil.which("crun")

    tmp = tempfile.mkdtemp(prefix="pycbench.", dir="/var/tmp")
    # Inherited by every command, hyperfine's included.
    os.environ["PYC_ROOT"] = os.path.join(tmp, "store")
    os.environ["CONTAINERS_CONF"] = os.path.join(tmp, "containers.conf")
    with open(os.environ["CONTAINERS_CONF"], "w") as f:
        f.write(CONTAINERS_CONF)
    bundle = os.path.join(tmp, "bundle")
    rows = {}  # name: (median ms, mean ms, name of its runc)
    steps = {}  # the breakdown: name: median ms
    pyc = os.path.join(tmp, "pyc")
    try:
        launcher(pyc)
        sh(pyc, "image", "bootstrap", "busybox", capture=True)
        make_bundle(os.path.join(os.environ["PYC_ROOT"], "layers"), bundle)

        commands = {"pyc CLI": f"{pyc} run --rm busybox true", "runc": f"runc run --bundle {bundle} {RUNC_IDS[0]}"}
        if args.compare:
            other = launcher(os.path.join(tmp, "pyc-compare"), os.path.abspath(args.compare))
            commands[f"pyc CLI ({args.compare})"] = f"{other} run --rm busybox true"
        settle()
        for name, times in hyperfine(args.runs, commands, os.path.join(tmp, "main.json")).items():
            rows[name] = (*times, "runc")

        if podman:
            # A group of its own, which tolerates the exit 125 podman gives now and then on a
            # loaded machine (-i); runc again beside it.
            podman_import(podman, os.path.join(bundle, "rootfs"))
            commands = {"podman": f"{podman} run --rm --pull=never --network=none {PODMAN_IMAGE} true",
                        "runc (podman group)": f"runc run --bundle {bundle} {RUNC_IDS[2]}"}  # fmt: skip
            settle()
            for name, times in hyperfine(args.runs, commands, os.path.join(tmp, "podman.json"), extra=["-i"]).items():
                rows[name] = (*times, "runc (podman group)")
        else:
            print("note: podman not found, skipping its row")

        if crun:
            wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    f'mount --bind /dev/null {CGROUP_CONTROLLERS} && exec "$@"', "sh"]  # fmt: skip
            commands = {"crun": f"{crun} run --bundle {bundle} {CRUN_ID}",
                        "runc (crun group)": f"runc run --bundle {bundle} {RUNC_IDS[1]}"}  # fmt: skip
            settle()
            for name, times in hyperfine(args.runs, commands, os.path.join(tmp, "crun.json"), wrap).items():
                rows[name] = (*times, "runc (crun group)")
        else:
            print("note: crun not found, skipping its row")

        settle()
        api = json.loads(sh(PYTHON, "-c", API_SCRIPT, str(args.runs), capture=True, interruptible=True).splitlines()[-1])
        rows["pyc API (warm python)"] = (api["median"], api["mean"], "runc")

        # The breakdown: the interpreter and the imports timed side by side with the whole CLI.
        imports, modules = run_imports(pyc, PYTHON, tmp)
        print(f"\na `pyc run` imports {len(modules)} modules: {' '.join(modules)}")
        commands = {"interpreter": f"{PYTHON} -IS -c pass", "imports": f"{PYTHON} -IS {imports}", "pyc CLI": f"{pyc} run --rm busybox true"}
        settle()
        got = {name: times[0] for name, times in hyperfine(args.runs, commands, os.path.join(tmp, "steps.json")).items()}
        steps = {
            "interpreter": got["interpreter"],
            "imports": got["imports"] - got["interpreter"],
            "engine": api["engine"],
            "pyc_core.run": api["core"],
        }
        steps["the rest"] = got["pyc CLI"] - sum(steps.values())
        steps["pyc CLI"] = got["pyc CLI"]

        rss_kib = max(int(sh(PYTHON, "-c", RSS_SCRIPT, pyc, "run", "--rm", "busybox", "true", capture=True)) for _ in range(5))
    finally:
        clean_up(tmp, podman, crun, pyc)

    print(f"\n{args.runs} runs each (hyperfine -N, 5 warm-up runs); ratio = median / median of the runc run alongside\n")
    print("| tool | median ms | mean ms | ratio to runc |")
    print("|---|---:|---:|---:|")
    for name, (median, mean, ref) in rows.items():
        print(f"| {name} | {median:.1f} | {mean:.1f} | {median / rows[ref][0]:.2f}x |")
    print(f"\nWhere a `pyc run --rm busybox true` goes (medians, each step timed on its own; see the top of {os.path.basename(__file__)})\n")
    print("| step | ms |")
    print("|---|---:|")
    for name, ms in steps.items():
        print(f"| {name} | {ms:.1f} |")
    print(f"\npyc CLI peak RSS (max of 5 runs): {rss_kib / 1024:.1f} MiB\n")

    def target(text, ok):
        print(f"- [{'PASS' if ok else 'FAIL'}] {text}")

    med = {name: row[0] for name, row in rows.items()}
    print("Targets:")
    target(f"pyc CLI no slower than runc: {med['pyc CLI'] / med['runc']:.2f}x", med["pyc CLI"] <= med["runc"])
    if "podman" in med:
        target(f"pyc CLI at least 4x faster than podman: {med['podman'] / med['pyc CLI']:.1f}x", med["podman"] >= 4 * med["pyc CLI"])
    if "crun" in med:
        api_med, crun_med = med["pyc API (warm python)"], med["crun"]
        target(f"pyc API faster than crun: {api_med:.1f} ms vs {crun_med:.1f} ms", api_med < crun_med)


if __name__ == "__main__":
    main()
