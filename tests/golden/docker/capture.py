"""Capture docker's own output for the golden files beside this script: Debian's dockerd 20.10,
started privately (its own socket, data root, exec root and config; `--bridge=none
--iptables=false --ip-forward=false --ip-masq=false`: nothing on this machine's network
changes, which the script checks), fed the busybox image pyc makes, and asked the verbs pyc
copies (version, info, images, top, pause, ps, events, system prune). Run by hand, as root, when
a golden file should change; never by the tests (they only read what it wrote):

    apt-get download docker.io containerd && for d in *.deb; do dpkg-deb -x $d DIR; done
    .venv/bin/python tests/golden/docker/capture.py DIR

DIR holds the unpacked packages (DIR/usr/bin/docker, DIR/usr/sbin/dockerd, DIR/usr/bin/containerd).
dockerd is stopped by its pid however the capture ends, and its directories removed."""

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

HERE = Path(__file__).resolve().parent
PYC = str(Path(sys.executable).parent / "pyc")


def network_state() -> str:
    """What must not change: links, addresses, routes, firewall rules, forwarding."""
    out = []
    for cmd in (["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"], ["iptables-save"], ["nft", "list", "ruleset"], ["sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in r.stdout.splitlines() if not ln.startswith("#")]  # iptables-save dates its output
        out.append(" ".join(cmd) + "\n" + "\n".join(lines))
    return "\n".join(out)


class Dockerd:
    def __init__(self, pkg: Path, work: Path) -> None:
        self.pkg, self.work = pkg, work
        self.sock = work / "docker.sock"
        self.env = {**os.environ, "PATH": f"{pkg}/usr/bin:{pkg}/usr/sbin:{os.environ['PATH']}", "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(work / "cli")}
        (work / "daemon.json").write_text("{}")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            f"{self.pkg}/usr/sbin/dockerd",
            f"--host=unix://{self.sock}",
            f"--data-root={self.work / 'data'}",
            f"--exec-root={self.work / 'exec'}",
            f"--pidfile={self.work / 'dockerd.pid'}",
            f"--config-file={self.work / 'daemon.json'}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            "--exec-opt=native.cgroupdriver=cgroupfs",
            "--cgroup-parent=/pyc-golden-capture",
            "--storage-driver=overlay2",
            "--log-level=error",
        ]
        log = open(self.work / "dockerd.log", "wb")  # noqa: SIM115 (the daemon's for its life)
        self.proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "version"], env=self.env, capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("dockerd did not start:\n" + (self.work / "dockerd.log").read_text()[-3000:])
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> str:
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, input=input)
        if check and r.returncode != 0:
            raise SystemExit(f"docker {' '.join(args)}: exit {r.returncode}: {r.stderr}")
        return r.stdout


def keys(doc: object) -> object:
    """A JSON document's shape: every key, values replaced by their type's name."""
    if isinstance(doc, dict):
        return {k: keys(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [keys(doc[0])] if doc else []
    return type(doc).__name__


def save(name: str, text: str) -> None:
    (HERE / name).write_text(text)
    print(f"wrote {HERE / name}")


def capture(d: Dockerd, work: Path) -> None:
    save("version.txt", d("--version"))
    save("version.json", json.dumps(keys(json.loads(d("version", "--format", "{{json .}}"))), indent=1, sort_keys=True) + "\n")
    save("info.json", json.dumps(keys(json.loads(d("info", "--format", "{{json .}}"))), indent=1, sort_keys=True) + "\n")
    save("info.txt", d("info"))

    tar = work / "busybox.tar"
    pyc_root = work / "pyc"
    env = {**os.environ, "PYC_ROOT": str(pyc_root)}
    for cmd in (["image", "bootstrap", "busybox"], ["save", "busybox", "-o", str(tar)]):
        subprocess.run([PYC, *cmd], env=env, check=True, capture_output=True)
    since = str(int(time.time()))
    d("load", "-i", str(tar))
    d("tag", "busybox", "busybox:two")
    d("run", "--network", "none", "--name", "c1", "busybox", "sh", "-c", "echo x > /f")
    d("commit", "c1", "mine:1")
    d("commit", "c1", "mine:1")  # the first mine:1 is dangling now
    save("images.txt", d("images"))
    save("images-digests.txt", d("images", "--digests"))
    save("images-no-trunc.txt", d("images", "--no-trunc"))
    save("images-dangling.txt", d("images", "--filter", "dangling=true"))
    save("images.json", json.dumps(keys(json.loads(d("images", "--format", "{{json .}}").splitlines()[0])), indent=1, sort_keys=True) + "\n")

    d("run", "-d", "--network", "none", "--name", "top1", "busybox", "sh", "-c", "sleep 1000")
    time.sleep(0.5)
    save("top.txt", d("top", "top1"))
    save("top-o.txt", d("top", "top1", "-o", "pid,comm"))
    save("top-bad.txt", d("top", "top1", "-o", "comm", check=False) + subprocess.run(["docker", "top", "top1", "-o", "comm"], env=d.env, capture_output=True, text=True).stderr)
    d("pause", "top1")
    save("ps-paused.txt", d("ps", "--format", "{{.Status}}|{{.State}}", "--filter", "name=top1"))
    save("pause-twice.txt", subprocess.run(["docker", "pause", "top1"], env=d.env, capture_output=True, text=True).stderr)
    save("rm-paused.txt", subprocess.run(["docker", "rm", "top1"], env=d.env, capture_output=True, text=True).stderr)
    save("exec-paused.txt", subprocess.run(["docker", "exec", "top1", "true"], env=d.env, capture_output=True, text=True).stderr)
    save("inspect-paused.json", json.dumps(json.loads(d("inspect", "--format", "{{json .State}}", "top1")), indent=1, sort_keys=True) + "\n")
    d("unpause", "top1")
    save("unpause-twice.txt", subprocess.run(["docker", "unpause", "top1"], env=d.env, capture_output=True, text=True).stderr)
    d("pause", "top1")
    d("stop", "-t", "1", "top1")  # a paused container stops (docker unpauses it after the signal)
    save("stop-paused.txt", d("inspect", "--format", "{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}", "top1"))
    d("rm", "top1")
    d("rmi", "busybox:two")
    until = str(int(time.time()) + 1)
    time.sleep(1.2)
    save("events.txt", d("events", "--since", since, "--until", until))
    lines = d("events", "--since", since, "--until", until, "--format", "{{json .}}").splitlines()
    by_action: dict[str, object] = {}
    for line in lines:
        e = json.loads(line)
        by_action.setdefault(f"{e['Type']} {e['Action'].split(':')[0]}", keys(e) | {"Actor": {"ID": "str", "Attributes": sorted(e["Actor"]["Attributes"])}})
    save("events.json", json.dumps(by_action, indent=1, sort_keys=True) + "\n")

    save("system-df.txt", d("system", "df"))
    save("system-prune.txt", d("system", "prune", "-f"))
    save("system-prune-a.txt", d("system", "prune", "-a", "-f"))
    save("container-prune.txt", d("container", "prune", "-f"))


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    pkg = Path(sys.argv[1]).resolve()
    work = Path(tempfile.mkdtemp(prefix="pyc-docker-capture-", dir="/var/tmp"))
    before = network_state()
    d = Dockerd(pkg, work)
    try:
        d.start()
        capture(d, work)
    finally:
        try:
            for cid in d("ps", "-aq", check=False).split():
                d("rm", "-f", cid, check=False)
        finally:
            d.stop()
            subprocess.run(["umount", "-R", str(work / "data" / "overlay2")], capture_output=True)
            shutil.rmtree(work, ignore_errors=True)
    after = network_state()
    if after != before:
        raise SystemExit(f"the network state changed:\n--- before\n{before}\n--- after\n{after}")
    leftover = [p for p in Path("/sys/fs/cgroup").glob("*/pyc-golden-capture") if p.exists()]
    for p in leftover:
        for child in sorted(p.rglob("*"), reverse=True):
            if child.is_dir():
                child.rmdir()
        p.rmdir()


if __name__ == "__main__":
    main()
