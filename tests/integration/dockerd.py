"""A dockerd of the test session's own, the reference pyc's confinement is compared with:
Debian's docker.io (20.10) on a private socket, data root, exec root, pidfile, config and key
file, all under one temporary directory, with no bridge, no iptables rules and no IP forwarding
change (nothing on this machine's network changes), its containers' cgroups under a parent of
their own. It is stopped by its PID and everything it made is removed, whatever happened: its
containers, processes (its containerd and shims: any process naming the directory), mounts
(its netns files, overlays, the data root it binds on itself), cgroups and the directory; then
the teardown checks that none is left.

docker --privileged asks runc for every capability the kernel knows; this host's root lacks
CAP_SYS_RESOURCE, so runc refuses. Its containers therefore run through `held-caps`, runc behind
a few lines that take out of the spec's capability sets those this process does not hold, which
is what pyc does for --privileged and --cap-add ALL. Nothing else of the spec is touched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # the package's CLI (20.10), whatever else is on the PATH
RUNC = "/usr/sbin/runc"

# runc for dockerd's containers, less the capabilities this process lacks (see above).
HELD_CAPS_RUNC = """\
import json, os, sys
args = sys.argv[1:]
if "create" in args and "--bundle" in args:
    path = os.path.join(args[args.index("--bundle") + 1], "config.json")
    with open("/proc/self/status") as f:
        held = int(next(line.split()[1] for line in f if line.startswith("CapBnd:")), 16)
    names = set(n for i, n in enumerate(ALL_CAPS) if held >> i & 1)
    with open(path) as f:
        spec = json.load(f)
    caps = spec["process"].get("capabilities") or {}
    for kind in caps:
        caps[kind] = [c for c in caps[kind] if c in names]
    with open(path, "w") as f:
        json.dump(spec, f)
os.execv(RUNC, ["runc", *args])
"""


def _network_state() -> list[str]:
    """What a dockerd could change of this machine's network: a docker0 link, a DOCKER chain
    or table in iptables or nftables, IP forwarding."""
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        found = [f"ip_forward={f.read().strip()}"]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [line.split(":")[1].strip() for line in links.splitlines() if line.split(":")[1].strip().startswith("docker")]
    for tool in (["nft", "list", "tables"], ["iptables-save"], ["ip6tables-save"]):
        if shutil.which(tool[0]):
            out = subprocess.run(tool, capture_output=True, text=True).stdout
            found += [f"{tool[0]}: {line}" for line in out.splitlines() if "docker" in line.lower()]
    return found


class Dockerd:
    def __init__(self, cgroup_parent: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pyc-dockerd-", dir="/var/tmp"))
        self.cgroup_parent = cgroup_parent
        self.env = {"PATH": os.environ["PATH"], "HOME": str(self.dir), "DOCKER_HOST": f"unix://{self.dir}/docker.sock", "DOCKER_CONFIG": str(self.dir / "cli")}
        self.proc: subprocess.Popen[bytes] | None = None
        self.network_before = _network_state()

    def start(self) -> str | None:
        """Start it and wait until it answers; None, or the line that says why it cannot run."""
        from pyc.runtime.security import ALL_CAPS

        d = self.dir
        (d / "daemon.json").write_text(json.dumps({"deprecated-key-path": f"{d}/key.json"}))
        runtime = d / "held-caps"
        runtime.write_text(f"#!{sys.executable} -I\nALL_CAPS = {list(ALL_CAPS)!r}\nRUNC = {RUNC!r}\n{HELD_CAPS_RUNC}")
        runtime.chmod(0o755)
        args = [
            DOCKERD, "--host", f"unix://{d}/docker.sock", "--data-root", f"{d}/data", "--exec-root", f"{d}/exec",
            "--pidfile", f"{d}/docker.pid", "--config-file", f"{d}/daemon.json",
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
            "--userland-proxy=false", "--cgroup-parent", self.cgroup_parent, "--storage-driver", "overlay2",
            "--add-runtime", f"held-caps={runtime}", "--default-runtime", "held-caps", "--log-level", "warn",
        ]  # fmt: skip
        with open(d / "dockerd.log", "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return self._why()
            if self.docker("version", timeout=10).returncode == 0:
                return None
            time.sleep(0.2)
        return self._why() or "dockerd did not answer within 60 s"

    def _why(self) -> str:
        lines = [line for line in (self.dir / "dockerd.log").read_text(errors="replace").splitlines() if "level=fatal" in line or "level=error" in line]
        return f"dockerd cannot run here: {lines[-1] if lines else 'it exited at once'}"

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER, *args], capture_output=True, text=True, env=self.env, timeout=timeout)

    def _processes(self) -> list[int]:
        """Processes of this dockerd's: any that names its directory (containerd, the shims)."""
        found = []
        mark = str(self.dir).encode()
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if mark in f.read():
                            found.append(int(pid))
                except OSError:
                    pass
        return found

    def _mounts(self) -> list[str]:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        return [p for p in points if p == str(self.dir) or p.startswith(f"{self.dir}/")]

    def _cgroups(self) -> list[Path]:
        """The cgroup parent's directories, in each hierarchy, below where this process is."""
        found = []
        for top in Path("/sys/fs/cgroup").iterdir():
            if not top.is_dir() or top.is_symlink():
                continue
            for dirpath, dirnames, _ in os.walk(top):
                if len(Path(dirpath).relative_to(top).parts) >= 3:
                    dirnames.clear()
                if self.cgroup_parent in dirnames:
                    found.append(Path(dirpath) / self.cgroup_parent)
                    dirnames.remove(self.cgroup_parent)
        return found

    def stop(self) -> list[str]:
        """Stop it and remove all it made; what could not be removed, or an empty list."""
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq").stdout.split()
            if ids:
                self.docker("rm", "-f", *ids)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self._processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while self._processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        for point in sorted(self._mounts(), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        for cgroup in self._cgroups():
            for dirpath, _, _ in sorted(os.walk(cgroup), key=lambda w: len(w[0]), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        left = [f"process {p}" for p in self._processes()] + [f"mount {m}" for m in self._mounts()] + [f"cgroup {c}" for c in self._cgroups()]
        left += [f"network: {n}" for n in _network_state() if n not in self.network_before]
        if not left:
            shutil.rmtree(self.dir, ignore_errors=True)
            left += [f"file {self.dir}"] if self.dir.exists() else []
        return left

    def image_from(self, archive: Path) -> None:
        r = self.docker("load", "-i", str(archive), timeout=120)
        assert r.returncode == 0, r.stderr
