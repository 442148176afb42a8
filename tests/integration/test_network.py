"""Networks, end to end, inside throwaway network namespaces (netns.py): pyc runs in one that
plays the host, a second plays "outside". Containers on the default bridge and on user-defined
networks, names through the resolver, published ports from every side, --internal, addresses,
the kill -9 of a holder, bad input, and that nothing is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.netns import HOST_ADDR, OUTSIDE_ADDR, PYC, UPSTREAM, Namespaces

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("busybox", "clean_containers")]

PROBE_SRC = Path(__file__).parent.parent / "probes" / "netprobe.c"
UPSTREAM_DNS = Path(__file__).parent / "upstream_dns.py"


@pytest.fixture(scope="module")
def netprobe() -> Iterator[str]:
    out = tempfile.mkdtemp(prefix="pyc-netprobe-", dir="/var/tmp")
    try:
        r = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", f"{out}/netprobe", str(PROBE_SRC)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        yield f"{out}/netprobe"
    finally:
        subprocess.run(["rm", "-rf", out])


@pytest.fixture
def ns(store_root: Path) -> Iterator[Namespaces]:
    """The two namespaces; pyc's run directory of its own; the networks a test made, removed."""
    run = tempfile.mkdtemp(prefix="pyc-run-", dir="/var/tmp")
    old = os.environ.get("PYC_RUN")
    os.environ["PYC_RUN"] = run
    try:
        with Namespaces() as n:
            before = set(n.pyc("network", "ls", "-q").stdout.split())
            try:
                yield n
            finally:
                for cid in n.pyc("ps", "-aq").stdout.split():
                    n.pyc("rm", "-f", cid)
                for net in set(n.pyc("network", "ls", "-q").stdout.split()) - before:
                    n.pyc("network", "rm", net)
    finally:
        if old is None:
            os.environ.pop("PYC_RUN", None)
        else:
            os.environ["PYC_RUN"] = old
        subprocess.run(["rm", "-rf", run])


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return r.stdout


def nothing_left(n: Namespaces) -> None:
    """No veth on the host side, no published port in nftables, no resolver, no endpoint."""
    veths_go(n, 0)
    if "table ip pyc" in n.nft("list", "tables"):
        ports = published(n)
        assert "elements" not in ports, ports
    assert resolvers(n) == []
    for net in set(n.pyc("network", "ls", "-q").stdout.split()) - {"host", "none"}:
        assert '"Containers": {}' in ok(n.pyc("network", "inspect", net))


def veths_go(n: Namespaces, left: int) -> None:
    """Wait until `left` veths remain on the host side: a container's pair goes with its network
    namespace, which the kernel tears down a moment after its last process (asynchronously: a
    workqueue, slower on a busy machine), with no pyc command needed."""
    until(lambda: len([link for link in n.links() if link.startswith("veth")]) == left)


def published(n: Namespaces) -> str:
    """pyc's two maps of published ports, as nft lists them."""
    return n.nft("list", "map", "ip", "pyc", "ports") + n.nft("list", "map", "ip", "pyc", "addr_ports")


def resolvers(n: Namespaces) -> list[str]:
    """The pids of pyc-dns processes on the host side."""
    pids = subprocess.run(["ip", "netns", "pids", n.host], capture_output=True, text=True).stdout.split()
    return [p for p in pids if Path(f"/proc/{p}/comm").exists() and Path(f"/proc/{p}/comm").read_text().strip() == "pyc-dns"]


def serve(n: Namespaces, where: str, port: int, *argv: str, udp: bool = False) -> None:
    """Start a server in namespace `where` and wait until it listens on `port`."""
    n.spawn(where, *argv)
    flag = "-lun" if udp else "-ltn"
    until(lambda: f":{port} " in n.run(where, "ss", "-H", flag, check=False).stdout)


def until(check: object, seconds: float = 10) -> None:
    end = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_none_has_only_lo_host_sees_the_host_side_and_container_shares(ns: Namespaces) -> None:
    assert ok(ns.pyc("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net")).split() == ["lo"]
    links = ok(ns.pyc("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"))
    assert "uplink" in links
    ok(ns.pyc("run", "-d", "--name", "sharer", "busybox", "sleep", "60"))
    mine = ok(ns.pyc("exec", "sharer", "ip", "-o", "-4", "addr", "show", "eth0")).split()[3]
    shared = ok(ns.pyc("run", "--rm", "--network", "container:sharer", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")).split()[3]
    assert shared == mine
    ok(ns.pyc("rm", "-f", "sharer"))
    nothing_left(ns)


def test_default_bridge_reaches_outside_through_nat(ns: Namespaces) -> None:
    # outside: a TCP server that says which address the connection came from
    serve(ns, ns.outside, 7000, "python3", "-c", "import socket;s=socket.create_server(('0.0.0.0',7000));c,a=s.accept();c.sendall(a[0].encode());c.close()")
    out = ok(ns.pyc("run", "--rm", "busybox", "sh", "-c", f"ip -o -4 addr show eth0; ip route; nc {OUTSIDE_ADDR} 7000"))
    assert "eth0    inet 10.202." in out and "default via 10.202.0.1 dev eth0" in out
    assert out.endswith(HOST_ADDR), out  # masqueraded as the host side's address
    assert "pyc0" in ns.links()
    # containers on it reach each other by address (names are for user-defined networks)
    ok(ns.pyc("run", "-d", "--name", "peer", "busybox", "sh", "-c", "nc -ll -p 7070 -e echo from-peer"))
    peer = ok(ns.pyc("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "peer")).strip()
    assert peer.startswith("10.202.")
    out = ok(ns.pyc("run", "--rm", "busybox", "sh", "-c", f"for i in 1 2 3 4 5 6 7 8 9 10; do nc {peer} 7070 && break; sleep 0.2; done; nslookup peer 2>&1 || true"))
    assert out.startswith("from-peer\n") and "Address: 10.202." not in out, out
    ok(ns.pyc("rm", "-f", "peer"))
    nothing_left(ns)


def test_user_network_names_both_ways_also_for_a_later_container(ns: Namespaces) -> None:
    ok(ns.pyc("network", "create", "app"))
    ok(ns.pyc("run", "-d", "--name", "web", "--network", "app", "--network-alias", "www", "busybox", "sh", "-c", "nc -ll -p 8080 -e echo from-web"))
    # a later container finds the first by name and alias, TCP included
    out = ok(ns.pyc("run", "-d", "--name", "db", "--network", "app", "busybox", "sh", "-c", "nc -ll -p 5432 -e echo from-db"))
    assert out.strip()
    for name in ("web", "www", "web.test.invalid"):
        assert "Address: 10.203." in ok(ns.pyc("exec", "db", "nslookup", name))
    until(lambda: ns.pyc("exec", "db", "nc", "web", "8080").stdout.strip() == "from-web")
    # and the first finds the later one
    until(lambda: ns.pyc("exec", "web", "nc", "db", "5432").stdout.strip() == "from-db")
    # a name nobody has: NXDOMAIN from the host's (test) resolver behind it
    serve(ns, ns.host, 53, "python3", str(UPSTREAM_DNS), UPSTREAM, udp=True)
    assert "Address: 192.0.2.2" in ok(ns.pyc("exec", "web", "nslookup", "outside.example"))
    assert ns.pyc("exec", "web", "nslookup", "nobody.invalid").returncode != 0
    inspect = ok(ns.pyc("network", "inspect", "app"))
    assert '"Name": "web"' in inspect and '"Name": "db"' in inspect
    ok(ns.pyc("rm", "-f", "web", "db"))
    until(lambda: not resolvers(ns))
    nothing_left(ns)


def test_published_ports_from_every_side(ns: Namespaces, netprobe: str) -> None:
    vol = f"{netprobe}:/netprobe:ro"
    ports = ["-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-p", "5354:53/udp"]
    ok(ns.pyc("run", "-d", "--name", "pub", "-v", vol, *ports, "busybox", "sh", "-c", "/netprobe udp-echo 53 & nc -ll -p 80 -e echo hello"))
    get = "import socket,sys;c=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=5);print(c.recv(100).decode().strip())"
    until(lambda: "udp-echo" in ns.pyc("exec", "pub", "ps").stdout and "hello" in ns.run(ns.host, "python3", "-c", get, "127.0.0.1", "8080", check=False).stdout)
    assert ok(ns.run(ns.host, "python3", "-c", get, "127.0.0.1", "8080")).strip() == "hello"  # the host's loopback
    assert ok(ns.run(ns.host, "python3", "-c", get, HOST_ADDR, "8080")).strip() == "hello"  # its own address
    assert ok(ns.run(ns.outside, "python3", "-c", get, HOST_ADDR, "8080")).strip() == "hello"  # from outside
    # UDP, on the one address it was published on
    assert ok(ns.run(ns.host, netprobe, "udp-ask", "127.0.0.1", "5353", "ping")).strip() == "echo:ping"
    assert ns.run(ns.host, netprobe, "udp-ask", HOST_ADDR, "5353", "ping", check=False).returncode == 1
    # and on every address, the host side's own and from outside
    assert ok(ns.run(ns.host, netprobe, "udp-ask", HOST_ADDR, "5354", "pong")).strip() == "echo:pong"
    assert ok(ns.run(ns.outside, netprobe, "udp-ask", HOST_ADDR, "5354", "far")).strip() == "echo:far"
    # another container, and the container itself, through the host side's address
    assert ok(ns.pyc("run", "--rm", "busybox", "nc", HOST_ADDR, "8080")).strip() == "hello"
    assert ok(ns.pyc("exec", "pub", "nc", HOST_ADDR, "8080")).strip() == "hello"
    # pyc's own descriptors, the nftables socket it keeps open while a -p run lasts among them,
    # are not the container's: ls sees its stdio and the directory it lists
    assert ok(ns.pyc("run", "--rm", "-p", "8081:80", "busybox", "ls", "/proc/self/fd")).split() == ["0", "1", "2", "3"]
    # what pyc says of them
    assert ok(ns.pyc("port", "pub")).splitlines() == ["53/udp -> 127.0.0.1:5353", "53/udp -> 0.0.0.0:5354", "80/tcp -> 0.0.0.0:8080"]
    assert ok(ns.pyc("port", "pub", "80")).strip() == "0.0.0.0:8080"
    assert "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:5354->53/udp" in ok(ns.pyc("ps"))
    shown = '{"53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}, {"HostIp": "0.0.0.0", "HostPort": "5354"}], "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}'
    assert ok(ns.pyc("inspect", "--format", "{{json .NetworkSettings.Ports}}", "pub")).strip() == shown
    # a port pyc holds is taken for anyone else, and for another container: one line, 125, nothing made
    r = ns.pyc("run", "--rm", "-p", "8080:80", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "pyc: Bind for 0.0.0.0:8080 failed: port is already allocated\n")
    taken = ns.run(ns.host, "python3", "-c", "import socket;s=socket.socket();s.bind(('0.0.0.0',8080))", check=False)
    assert taken.returncode != 0
    ok(ns.pyc("rm", "-f", "pub"))
    nothing_left(ns)
    # -P: the image's EXPOSE to free ports (busybox exposes none: a committed image does)
    ok(ns.pyc("run", "--name", "exposer", "--network", "none", "busybox", "true"))
    ok(ns.pyc("commit", "-c", "EXPOSE 80", "exposer", "exposing:1"))
    ok(ns.pyc("run", "-d", "--name", "all", "-P", "exposing:1", "sh", "-c", "nc -ll -p 80 -e echo any"))
    port = int(ok(ns.pyc("port", "all", "80")).strip().rpartition(":")[2])
    assert port >= 1024
    assert ok(ns.run(ns.host, "python3", "-c", get, HOST_ADDR, str(port))).strip() == "any"
    ok(ns.pyc("rm", "-f", "all", "exposer"))
    ok(ns.pyc("rmi", "exposing:1"))
    nothing_left(ns)


def test_a_port_another_process_holds_is_refused_and_nothing_is_made(ns: Namespaces) -> None:
    serve(ns, ns.host, 9090, "python3", "-c", "import socket,time;s=socket.socket();s.bind(('127.0.0.1',9090));s.listen();time.sleep(60)")
    r = ns.pyc("run", "--rm", "--name", "blocked", "-p", "9090:80", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "pyc: Bind for 0.0.0.0:9090 failed: port is already allocated\n")
    assert ns.pyc("inspect", "blocked").returncode == 1
    nothing_left(ns)


def test_internal_network_has_no_way_out(ns: Namespaces) -> None:
    serve(ns, ns.outside, 7001, "python3", "-c", "import socket,time;s=socket.create_server(('0.0.0.0',7001));time.sleep(60)")
    ok(ns.pyc("network", "create", "--internal", "sealed"))
    ok(ns.pyc("run", "-d", "--name", "inside", "--network", "sealed", "busybox", "sh", "-c", "nc -ll -p 81 -e echo inner"))
    out = ok(ns.pyc("run", "--rm", "--network", "sealed", "busybox", "sh", "-c", f"ip route; nc -w 2 {OUTSIDE_ADDR} 7001 </dev/null && echo REACHED; nc inside 81"))
    assert "default" not in out and "REACHED" not in out and "inner" in out
    # not by a route of its own either: the forward rules drop it
    out = ok(ns.pyc("run", "--rm", "--network", "sealed", "busybox", "sh", "-c", f"ip route add default via 10.203.0.1 2>&1; nc -w 2 {OUTSIDE_ADDR} 7001 </dev/null && echo REACHED; true"))
    assert "REACHED" not in out
    ok(ns.pyc("rm", "-f", "inside"))
    nothing_left(ns)


def test_addresses_are_not_reused_while_in_use_and_are_after(ns: Namespaces) -> None:
    ok(ns.pyc("network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.254", "fixed"))
    ok(ns.pyc("run", "-d", "--name", "a", "--network", "fixed", "busybox", "sleep", "60"))
    ok(ns.pyc("run", "-d", "--name", "b", "--network", "fixed", "--ip", "10.77.0.9", "busybox", "sleep", "60"))
    ip = "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.MacAddress}}"
    assert ok(ns.pyc("inspect", "--format", ip, "a")).split() == ["10.77.0.1", "02:42:0a:4d:00:01"]
    assert ok(ns.pyc("inspect", "--format", ip, "b")).split() == ["10.77.0.9", "02:42:0a:4d:00:09"]
    r = ns.pyc("run", "--rm", "--network", "fixed", "--ip", "10.77.0.9", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "pyc: address 10.77.0.9 is already in use on network fixed\n")
    assert ok(ns.pyc("run", "--rm", "--network", "fixed", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")).split()[3] == "10.77.0.2/24"
    ok(ns.pyc("stop", "-t", "0", "a"))
    assert ok(ns.pyc("run", "--rm", "--network", "fixed", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")).split()[3] == "10.77.0.1/24"
    ok(ns.pyc("rm", "-f", "a", "b"))
    nothing_left(ns)


def test_a_start_on_a_network_opens_no_pyc_db_and_sees_a_network_made_anew(ns: Namespaces, store_root: Path) -> None:
    """An unnamed run --rm on a bridge network reads the network's record from its file and
    takes its address in a file: sqlite3 is not even imported. A network removed and made
    again under its name is the new one at once; a removed one is not found."""
    ok(ns.pyc("network", "create", "--subnet", "10.88.0.0/24", "quick"))
    ok(ns.pyc("run", "--rm", "busybox", "true"))  # the default network's record: made, then a file
    ok(ns.pyc("run", "-d", "--name", "held", "--network", "quick", "busybox", "sleep", "60"))
    code = (
        "import sys\n"
        "from pyc.cli.main import dispatch\n"
        "rc = dispatch(['run', '--rm', '--network', sys.argv[1], 'busybox', 'ip', '-o', '-4', 'addr', 'show', 'eth0'])\n"
        "print(rc, 'sqlite3' in sys.modules)\n"
    )
    for net, address in (("bridge", "10.202.0.2/16"), ("quick", "10.88.0.3/24")):
        out = ok(subprocess.run(ns.wrap(ns.host, [sys.executable, "-c", code, net]), capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "PYC_DEFAULT_NETWORK"}))
        assert out.split()[3] == address and out.endswith("0 False\n"), out
    assert (store_root / "networks" / "quick").exists()
    ok(ns.pyc("rm", "-f", "held"))
    ok(ns.pyc("network", "rm", "quick"))
    assert not (store_root / "networks" / "quick").exists()
    r = ns.pyc("run", "--rm", "--network", "quick", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "pyc: network quick not found\n")
    ok(ns.pyc("network", "create", "--subnet", "10.89.0.0/24", "quick"))
    assert ok(ns.pyc("run", "--rm", "--network", "quick", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")).split()[3] == "10.89.0.2/24"
    ok(ns.pyc("network", "rm", "quick"))
    nothing_left(ns)


def test_starts_side_by_side_never_share_an_address(ns: Namespaces) -> None:
    """Unnamed run --rm containers (endpoint files only) and a detached one, started at once on
    one network: each its own address while they all run; all free again after."""
    ok(ns.pyc("network", "create", "--subnet", "10.91.0.0/24", "crowd"))
    env = {k: v for k, v in os.environ.items() if k != "PYC_DEFAULT_NETWORK"}
    show = "ip -o -4 addr show eth0; sleep 8"
    runs = [subprocess.Popen(ns.wrap(ns.host, [PYC, "run", "--rm", "--network", "crowd", "busybox", "sh", "-c", show]), stdout=subprocess.PIPE, text=True, env=env) for _ in range(6)]
    ok(ns.pyc("run", "-d", "--name", "steady", "--network", "crowd", "busybox", "sleep", "60"))
    outs = [p.communicate(timeout=60)[0] for p in runs]
    assert [p.returncode for p in runs] == [0] * 6, outs
    addresses = [out.split()[3] for out in outs] + [ok(ns.pyc("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "steady")).strip() + "/24"]
    assert len(set(addresses)) == 7, addresses
    ok(ns.pyc("rm", "-f", "steady"))
    nothing_left(ns)
    assert ok(ns.pyc("run", "--rm", "--network", "crowd", "busybox", "ip", "-o", "-4", "addr", "show", "eth0")).split()[3] == "10.91.0.2/24"


def test_fifty_containers_leave_nothing(ns: Namespaces) -> None:
    ok(ns.pyc("network", "create", "many"))
    for i in range(50):
        ok(ns.pyc("run", "--rm", "--network", "many", "-p", f"{20000 + i}:80", "busybox", "true"))
    nothing_left(ns)
    assert [link for link in ns.links() if link.startswith("pyc-")]  # the bridge stays with its network...
    ok(ns.pyc("network", "rm", "many"))
    assert [link for link in ns.links() if link.startswith("pyc-")] == []  # ...until it is removed
    assert "pyc network" not in ns.nft("list", "chain", "ip", "pyc", "forward").replace("pyc network pyc0", "")


def test_kill_9_of_a_holder_is_cleaned_up_by_the_next_command(ns: Namespaces) -> None:
    ok(ns.pyc("network", "create", "crash"))
    # a foreground run: its pyc is the holder
    env = {k: v for k, v in os.environ.items() if k != "PYC_DEFAULT_NETWORK"}
    fg = subprocess.Popen(ns.wrap(ns.host, [PYC, "run", "--name", "fg", "--network", "crash", "-p", "8443:443", "busybox", "sleep", "60"]), env=env)
    until(lambda: "fg" in ns.pyc("ps").stdout and '"fg"' in ns.pyc("network", "inspect", "crash").stdout)
    # a detached one: its pyc-monitor is
    ok(ns.pyc("run", "-d", "--name", "bg", "--network", "crash", "-p", "8444:443", "busybox", "sleep", "60"))
    monitor = int(ok(ns.pyc("inspect", "--format", "{{.State.MonitorPid}}", "bg")))
    os.kill(fg.pid, signal.SIGKILL)
    fg.wait()
    os.kill(monitor, signal.SIGKILL)
    # the containers die with their holders, and their veths with their network namespaces
    veths_go(ns, 0)
    # the next command that touches the network collects the rest; the ports are free again
    assert '"Containers": {}' in ok(ns.pyc("network", "inspect", "crash"))
    nothing_left(ns)
    ok(ns.pyc("run", "--rm", "--network", "crash", "-p", "8443:443", "-p", "8444:443", "busybox", "true"))
    ok(ns.pyc("rm", "-f", "fg", "bg"))


def test_bad_input_is_one_line_and_makes_nothing(ns: Namespaces) -> None:
    ok(ns.pyc("network", "create", "--subnet", "10.66.0.0/16", "first"))
    for args, message in [
        (["--subnet", "10.66.1.0/24", "second"], "pyc: invalid subnet 10.66.1.0/24: it overlaps 10.66.0.0/16, the subnet of another pyc network\n"),
        (["--subnet", "10.66.1.1/24", "second"], "pyc: invalid subnet '10.66.1.1/24': host bits are set (the network is 10.66.1.0/24)\n"),
        (["--subnet", "10.67.0.0/24", "--gateway", "10.68.0.1", "second"], "pyc: invalid gateway 10.68.0.1: not a host address of 10.67.0.0/24\n"),
        (["first"], "pyc: network with name first already exists\n"),
        (["bridge"], "pyc: network with name bridge already exists (a pre-defined network)\n"),
    ]:
        r = ns.pyc("network", "create", *args)
        assert (r.returncode, r.stderr) == (1, message)
    assert "second" not in ok(ns.pyc("network", "ls"))
    for args, message in [
        (["--network", "nowhere"], "pyc: network nowhere not found\n"),
        (["-p", "80:80:80:80"], "pyc: invalid port '80:80:80:80': use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]\n"),
        (["-p", "99999"], "pyc: invalid port '99999': ports are 1 to 65535, a range low-high\n"),
        (["--ip", "10.66.0.5"], "pyc: user specified IP address is supported on user defined networks only\n"),
        (["--network", "first", "--ip", "10.99.0.5"], "pyc: invalid --ip 10.99.0.5: not a free host address of first (10.66.0.0/16, gateway 10.66.0.1)\n"),
        (["--network", "none", "-p", "80"], "pyc: conflicting options: port publishing and --network none\n"),
        (["--dns", "resolver.example"], "pyc: invalid --dns server 'resolver.example': not an IPv4 address (IPv6 is not supported)\n"),
    ]:
        r = ns.pyc("run", "--rm", "--name", "bad", *args, "busybox", "true")
        assert (r.returncode, r.stderr) == (125, message), args
        assert ns.pyc("inspect", "bad").returncode == 1
    r = ns.pyc("network", "rm", "bridge")
    assert (r.returncode, r.stderr) == (1, "pyc: bridge is a pre-defined network and cannot be removed\n")
    ok(ns.pyc("run", "-d", "--name", "user", "--network", "first", "busybox", "sleep", "60"))
    r = ns.pyc("network", "rm", "first")
    assert (r.returncode, r.stderr) == (1, "pyc: network first has active endpoints (user)\n")
    ok(ns.pyc("rm", "-f", "user"))
    ok(ns.pyc("network", "rm", "first"))
    nothing_left(ns)


def test_dns_and_hosts_flags_as_docker_writes_them(ns: Namespaces) -> None:
    out = ok(
        ns.pyc(
            "run", "--rm", "-h", "box", "--domainname", "corp.example", "--add-host", "db:10.1.2.3",
            "--dns", "9.9.9.9", "--dns-search", "a.example", "--dns-option", "ndots:2", "busybox", "sh", "-c", "cat /etc/resolv.conf /etc/hosts; hostname",
        )
    )  # fmt: skip
    assert out.startswith("nameserver 9.9.9.9\nsearch a.example\noptions ndots:2\n127.0.0.1\tlocalhost\n")
    assert "10.1.2.3\tdb\n" in out and "\tbox.corp.example box\nbox\n" in out
    # on a user network: the resolver, which sends the container's other questions to its --dns
    serve(ns, ns.host, 53, "python3", str(UPSTREAM_DNS), "127.0.0.54", udp=True)
    ok(ns.pyc("network", "create", "named"))
    out = ok(ns.pyc("run", "--rm", "--network", "named", "--dns", "127.0.0.54", "busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup far.example"))
    assert out.startswith("nameserver 10.203.") and "Address: 192.0.2.2" in out
    nothing_left(ns)


def test_connect_and_disconnect_a_running_container(ns: Namespaces) -> None:
    ok(ns.pyc("network", "create", "front"))
    ok(ns.pyc("network", "create", "back"))
    ok(ns.pyc("run", "-d", "--name", "api", "--network", "front", "busybox", "sh", "-c", "nc -ll -p 90 -e echo api"))
    ok(ns.pyc("run", "-d", "--name", "store", "--network", "back", "busybox", "sleep", "60"))
    assert ns.pyc("exec", "store", "nc", "-w", "2", "api", "90").stdout.strip() != "api"
    ok(ns.pyc("network", "connect", "--alias", "gateway-api", "back", "api"))
    assert "eth1" in ok(ns.pyc("exec", "api", "ip", "-o", "link"))
    assert ok(ns.pyc("exec", "store", "nc", "gateway-api", "90")).strip() == "api"
    ok(ns.pyc("network", "disconnect", "back", "api"))
    assert "eth1" not in ok(ns.pyc("exec", "api", "ip", "-o", "link"))
    ok(ns.pyc("rm", "-f", "api", "store"))
    nothing_left(ns)


def test_a_restarted_container_keeps_its_address_and_gets_a_new_pair(ns: Namespaces) -> None:
    ok(ns.pyc("network", "create", "again"))
    cid = ok(ns.pyc("run", "-d", "--name", "flaky", "--network", "again", "--restart", "on-failure:2", "busybox", "sh", "-c", "ip -o -4 addr show eth0; sleep 0.2; exit 3")).strip()
    until(lambda: ns.pyc("inspect", "--format", "{{.State.Status}} {{.RestartCount}}", cid).stdout.strip() == "exited 2", 30)
    addresses = [line.split()[3] for line in ok(ns.pyc("logs", "flaky")).splitlines()]
    assert len(addresses) == 3 and len(set(addresses)) == 1, addresses
    ok(ns.pyc("rm", "flaky"))
    nothing_left(ns)


def test_stop_and_rm_take_a_container_off_its_network_and_leave_the_others(ns: Namespaces) -> None:
    """What one container had (its veth, its ports' nft elements, its name at the resolver, its
    address) goes with its stop and its rm, while another container keeps the network, its
    name and its resolver. Also: create + start, a port range, network prune."""
    serve(ns, ns.host, 53, "python3", str(UPSTREAM_DNS), UPSTREAM, udp=True)
    ok(ns.pyc("network", "create", "--label", "empty", "--label", "tier=test", "keep"))
    assert ok(ns.pyc("network", "inspect", "--format", "{{json .Labels}}", "keep")).strip() == '{"empty": "", "tier": "test"}'
    netdir = Path(os.environ["PYC_RUN"]) / "net" / ok(ns.pyc("network", "inspect", "--format", "{{.Id}}", "keep")).strip()
    stay = ok(ns.pyc("run", "-d", "--name", "stay", "--network", "keep", "busybox", "sleep", "120")).strip()
    listen = "for p in 9100 9101; do nc -ll -p $p -e echo r$p & done; wait"
    get = "import socket,sys;c=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=5);print(c.recv(100).decode().strip())"
    ports = published(ns)
    for how in ("stop", "rm"):
        gone = ok(ns.pyc("create", "--name", "gone", "--network", "keep", "--network-alias", "leaver", "-p", "9100-9101:9100-9101", "busybox", "sh", "-c", listen)).strip()
        ok(ns.pyc("start", "gone"))
        until(lambda: ns.run(ns.host, "python3", "-c", get, "9101", check=False).stdout.strip() == "r9101")
        assert ok(ns.run(ns.host, "python3", "-c", get, "9100")).strip() == "r9100"
        assert len([link for link in ns.links() if link.startswith("veth")]) == 2
        assert ": 10.203.0.3 . 9100" in published(ns) and ": 10.203.0.3 . 9101" in published(ns)
        assert sorted(os.listdir(netdir / "hosts")) == sorted([stay, gone])
        for name in ("gone", "leaver"):
            assert "Address: 10.203." in ok(ns.pyc("exec", "stay", "nslookup", name))
        ok(ns.pyc(how, *(["-t", "0"] if how == "stop" else ["-f"]), "gone"))
        # its veth, its ports, its name and its address: gone; the other container's: kept
        veths_go(ns, 1)
        assert published(ns) == ports
        assert os.listdir(netdir / "hosts") == [stay]
        for name in ("gone", "leaver"):
            r = ns.pyc("exec", "stay", "nslookup", name)
            assert r.returncode != 0 and "NXDOMAIN" in r.stdout + r.stderr, (r.stdout, r.stderr)
        assert "Address: 10.203." in ok(ns.pyc("exec", "stay", "nslookup", "stay"))
        inspect = ok(ns.pyc("network", "inspect", "keep"))
        assert '"Name": "stay"' in inspect and '"Name": "gone"' not in inspect
        assert len(resolvers(ns)) == 1
        # the host ports are free again, for any process
        ok(ns.run(ns.host, "python3", "-c", "import socket;s=socket.socket();s.bind(('0.0.0.0',9100))"))
        if how == "stop":
            ok(ns.pyc("rm", "gone"))
        assert ns.pyc("inspect", "gone").returncode == 1
    # prune: the network in use stays, an unused one goes with its bridge
    ok(ns.pyc("network", "create", "unused"))
    assert len([link for link in ns.links() if link.startswith("pyc-")]) == 1  # a bridge comes with a first container
    ok(ns.pyc("run", "--rm", "--network", "unused", "busybox", "true"))
    assert len([link for link in ns.links() if link.startswith("pyc-")]) == 2
    assert ok(ns.pyc("network", "prune", "-f")) == "Deleted Networks:\nunused\n"
    assert sorted(ok(ns.pyc("network", "ls", "--format", "{{.Name}}")).split()) == ["bridge", "host", "keep", "none"]
    assert len([link for link in ns.links() if link.startswith("pyc-")]) == 1
    ok(ns.pyc("rm", "-f", "stay"))
    until(lambda: not resolvers(ns))
    nothing_left(ns)


def test_build_steps_on_the_build_network(ns: Namespaces, tmp_path: Path) -> None:
    """RUN steps are on pyc run's default network unless `pyc build --network` or their own
    `RUN --network` says otherwise; a Dockerfile's RUN --network=host needs --allow network.host."""
    serve(ns, ns.outside, 7000, "python3", "-c", "import socket;s=socket.create_server(('0.0.0.0',7000))\nwhile 1:\n c,a=s.accept();c.sendall(a[0].encode());c.close()")
    ok(ns.pyc("network", "create", "--subnet", "10.77.0.0/24", "buildnet"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM busybox\nRUN nc {OUTSIDE_ADDR} 7000 > /via; ip -o -4 addr show eth0 > /addr || true\nRUN --network=none ls /sys/class/net > /none\nRUN --network=default ls /sys/class/net > /default\n"
    )
    files = "cat /via; echo; cat /addr /none /default"
    img = ok(ns.pyc("build", "-q", str(ctx), timeout=120)).strip()
    out = ok(ns.pyc("run", "--rm", "--network", "none", img, "sh", "-c", files))
    assert out.startswith(HOST_ADDR + "\n") and " inet 10.202." in out and out.endswith("lo\neth0\nlo\n"), out  # the bridge, masqueraded
    img2 = ok(ns.pyc("build", "-q", "--network", "buildnet", str(ctx), timeout=120)).strip()
    out = ok(ns.pyc("run", "--rm", "--network", "none", img2, "sh", "-c", files))
    assert " inet 10.77.0." in out and out.endswith("lo\neth0\nlo\n"), out  # another network: another key, the steps ran
    img3 = ok(ns.pyc("build", "-q", "--network", "none", str(ctx), timeout=120)).strip()
    out = ok(ns.pyc("run", "--rm", "--network", "none", img3, "sh", "-c", "cat /via /addr; cat /none /default"))
    assert out == "lo\nlo\n", out  # no way out: nc found nothing, no eth0
    # the host network: asked for by the build, or by the Dockerfile with the entitlement only
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --network=host ip -o link > /links\n")
    r = ns.pyc("build", "-q", str(ctx))
    assert (r.returncode, r.stderr) == (1, "pyc: Dockerfile:2: RUN --network=host needs the network.host entitlement: pyc build --allow network.host\n")
    img4 = ok(ns.pyc("build", "-q", "--allow", "network.host", str(ctx), timeout=120)).strip()
    assert "uplink" in ok(ns.pyc("run", "--rm", img4, "cat", "/links"))
    for args, message in [
        (["--network", "nowhere"], "pyc: network nowhere not found\n"),
        (["--network", "container:x"], "pyc: --network container:x: a build's steps take none, host or a network's name\n"),
        (["--allow", "security.insecure"], "pyc: invalid --allow 'security.insecure': pyc knows network.host\n"),
    ]:
        r = ns.pyc("build", "-q", *args, str(ctx))
        assert (r.returncode, r.stderr) == (1, message), args
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN --network=bridge true\n")
    r = ns.pyc("build", "-q", str(ctx))
    assert (r.returncode, r.stderr) == (1, "pyc: Dockerfile:2: RUN --network=bridge: use default, none or host\n")
    ok(ns.pyc("rmi", img, img2, img3, img4))
    ok(ns.pyc("network", "rm", "buildnet"))
    nothing_left(ns)


MOVER = """
import ctypes, os, sys
import pyc_core
libc = ctypes.CDLL(None, use_errno=True)
for ns, bridge in zip(sys.argv[1::2], sys.argv[2::2]):
    fd = os.open(ns, os.O_RDONLY)
    assert libc.setns(fd, 0x40000000) == 0, ctypes.get_errno()  # CLONE_NEWNET
    os.close(fd)
    config = {"bridge": bridge, "subnet": "10.251.0.0", "prefix": 24, "gateway": "10.251.0.1", "mac": "02:42:0a:fb:00:01", "internal": True}
    pyc_core.network_ensure(pyc_core.packb(config))
"""


def test_one_process_that_moves_between_namespaces_writes_rules_where_it_is(ns: Namespaces) -> None:
    # pyc keeps its nftables socket open for the life of the process (closing one waits for
    # the kernel); a process that entered another network namespace must not write into the
    # one it left.
    host, outside = f"/run/netns/{ns.host}", f"/run/netns/{ns.outside}"
    r = subprocess.run([sys.executable, "-c", MOVER, host, "pyct-mv-a", outside, "pyct-mv-b"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    try:
        here = ns.nft("list", "table", "ip", "pyc")
        there = sh_in(ns.outside, "nft", "list", "table", "ip", "pyc")
        assert "pyct-mv-a" in here and "pyct-mv-b" not in here, here
        assert "pyct-mv-b" in there and "pyct-mv-a" not in there, there
    finally:
        for where, bridge in ((ns.host, "pyct-mv-a"), (ns.outside, "pyct-mv-b")):
            subprocess.run(["nsenter", f"--net=/run/netns/{where}", sys.executable, "-c", f"import pyc_core; pyc_core.network_remove({bridge!r})"], capture_output=True)


def sh_in(where: str, *argv: str) -> str:
    return subprocess.run(["nsenter", f"--net=/run/netns/{where}", *argv], capture_output=True, text=True, check=True).stdout
