"""Throwaway network namespaces for the network tests: one plays the host (pyc runs inside it:
its bridges, veths, nftables table and resolver live there), one plays "outside" (an address
beyond the host side, for NAT and --internal). This machine's own network is never touched:
every address used is inside these namespaces or on their loopback, and both namespaces (with
every process in them) are removed after the test, whatever happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYC = str(Path(sys.executable).parent / "pyc")
HOST_ADDR = "192.0.2.1"  # the host side's own address (TEST-NET-1, inside the namespaces only)
OUTSIDE_ADDR = "192.0.2.2"
UPSTREAM = "127.0.0.53"  # the host side's resolver (a test one, on its loopback)


def sh(*args: str, check: bool = True, input: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(args, capture_output=True, text=True, input=input, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {r.returncode} {r.stderr}")
    return r


class Namespaces:
    """`host` and `outside`, linked by a veth pair: host 192.0.2.1/24, outside 192.0.2.2/24, the
    host's default route through outside. `resolv` is the host side's resolv.conf (bind-mounted
    over /etc/resolv.conf for the pyc commands run in it)."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{os.urandom(2).hex()}"
        self.host = f"pyct-h{tag}"
        self.outside = f"pyct-o{tag}"
        self.dir = tempfile.mkdtemp(prefix="pyc-netns-", dir="/var/tmp")
        self.resolv = os.path.join(self.dir, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write(f"nameserver {UPSTREAM}\nsearch test.invalid\n")
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Namespaces:
        try:
            for ns in (self.host, self.outside):
                sh("ip", "netns", "add", ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", self.host, "link", "add", "uplink", "type", "veth", "peer", "name", "uplink", "netns", self.outside)
            sh("ip", "-n", self.host, "addr", "add", f"{HOST_ADDR}/24", "dev", "uplink")
            sh("ip", "-n", self.outside, "addr", "add", f"{OUTSIDE_ADDR}/24", "dev", "uplink")
            for ns in (self.host, self.outside):
                sh("ip", "-n", ns, "link", "set", "uplink", "up")
            sh("ip", "-n", self.host, "route", "add", "default", "via", OUTSIDE_ADDR)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in (self.host, self.outside):
            # Every process left in the namespace (a container, a monitor, a resolver) goes first.
            for _ in range(50):
                pids = [int(p) for p in sh("ip", "netns", "pids", ns, check=False).stdout.split()]
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
            sh("ip", "netns", "del", ns, check=False)
        sh("rm", "-rf", self.dir, check=False)

    def wrap(self, ns: str, argv: list[str]) -> list[str]:
        """`argv` run inside `ns`, with the test's resolv.conf (host side only)."""
        # nsenter, not `ip netns exec`: that mounts a sysfs of the namespace on /sys, hiding the
        # cgroup mounts pyc needs.
        enter = ["nsenter", f"--net=/run/netns/{ns}"]
        if ns == self.host:
            return [*enter, "unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', self.resolv, *argv]
        return [*enter, *argv]

    def pyc(self, *args: str, timeout: float = 60, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """pyc inside the host side, on the product's default network (bridge)."""
        e = {**(env or os.environ)}
        e.pop("PYC_DEFAULT_NETWORK", None)
        return subprocess.run(self.wrap(self.host, [PYC, *args]), capture_output=True, text=True, timeout=timeout, input=input, env=e)

    def run(self, ns: str, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return sh(*self.wrap(ns, list(argv)), check=check, timeout=timeout)

    def spawn(self, ns: str, *argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(self.wrap(ns, list(argv)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def links(self, ns: str | None = None) -> list[str]:
        out = sh("ip", "-n", ns or self.host, "-o", "link", "show").stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    def nft(self, *args: str) -> str:
        return sh("nsenter", f"--net=/run/netns/{self.host}", "nft", *args).stdout
