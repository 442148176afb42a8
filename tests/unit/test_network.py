"""The network flags' parsing and the files pyc writes into /etc, without root."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyc.errors import InvalidArgument
from pyc.network import etc
from pyc.network.ports import exposed, parse
from pyc.network.subnet import Subnet, parse_ip
from pyc.records import HostConfig, PortBinding


def test_subnets_parse_overlap_and_refuse_bad_input() -> None:
    s = Subnet.parse("10.91.0.0/24")
    assert (str(s), s.prefix, parse_ip("10.91.0.255") == s.broadcast) == ("10.91.0.0/24", 24, True)
    assert parse_ip("10.91.0.7") in s and parse_ip("10.91.1.7") not in s
    assert s.overlaps(Subnet.parse("10.91.0.128/25")) and not s.overlaps(Subnet.parse("10.91.1.0/24"))
    assert list(s.hosts())[:1] == [parse_ip("10.91.0.1")] and len(s.hosts()) == 254
    for bad, words in [
        ("10.91.0.1/24", "host bits are set"),
        ("10.91.0.0", "CIDR"),
        ("10.91.0.0/33", "CIDR"),
        ("300.1.0.0/16", "not an IPv4"),
        ("fd00::/64", "IPv4"),
        ("10.0.0.0/31", "too small"),
    ]:
        with pytest.raises(InvalidArgument, match=words):
            Subnet.parse(bad)


def test_published_ports_parse_as_docker_writes_them() -> None:
    assert parse("80") == [PortBinding(container_port=80)]
    assert parse("8080:80") == [PortBinding(host_port=8080, container_port=80)]
    assert parse("127.0.0.1:8080:80/udp") == [PortBinding(proto="udp", host_ip="127.0.0.1", host_port=8080, container_port=80)]
    assert parse("127.0.0.1::80") == [PortBinding(host_ip="127.0.0.1", container_port=80)]
    assert [(b.host_port, b.container_port) for b in parse("9000-9002:80-82")] == [(9000, 80), (9001, 81), (9002, 82)]
    assert exposed(["80/tcp", "53/udp", "8080", "junk"]) == [PortBinding(container_port=80), PortBinding(proto="udp", container_port=53), PortBinding(container_port=8080)]
    for bad in ["", "80/sctp", "x:80", "0", "70000", "1:2:3:4", "9000-9001:80", "[::1]:80:80", "1.2.3:80:80", "8080:"]:
        with pytest.raises(InvalidArgument):
            parse(bad)


def test_hosts_and_resolv_conf_as_docker_writes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = tmp_path / "resolv.conf"
    host.write_text("# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.example\noptions ndots:2\n")
    monkeypatch.setattr(etc, "HOST_RESOLV_CONF", str(host))
    hosts = etc.hosts("web", "example.org", "10.91.0.2", ["db:10.91.0.9", "cache=10.91.0.10"])
    assert hosts.startswith("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    assert hosts.endswith("10.91.0.9\tdb\n10.91.0.10\tcache\n10.91.0.2\tweb.example.org web\n")
    assert etc.hosts("box", "", None, []).endswith("127.0.0.1\tbox\n")
    # The host's servers but loopback ones (the container's loopback is its own).
    assert etc.resolv_conf([], [], [], None, False) == "nameserver 192.0.2.53\nsearch corp.example\noptions ndots:2\n"
    assert etc.resolv_conf([], [], [], None, True).startswith("nameserver 127.0.0.53\nnameserver 192.0.2.53\n")
    assert etc.resolv_conf(["9.9.9.9"], ["a.example"], ["ndots:1"], None, False) == "nameserver 9.9.9.9\nsearch a.example\noptions ndots:1\n"
    # A network with names: its resolver, which sends the rest to the --dns servers.
    assert etc.resolv_conf(["9.9.9.9"], [], [], "10.91.0.1", False).startswith("nameserver 10.91.0.1\n")
    assert etc.upstreams([]) == ["127.0.0.53", "192.0.2.53"] and etc.upstreams(["9.9.9.9"]) == ["9.9.9.9"]
    files = etc.files(HostConfig(network_mode="none", extra_hosts=["db:10.0.0.9"]), "box", "")
    assert set(files) == {"hostname", "hosts", "resolv.conf"} and "10.0.0.9\tdb\n" in files["hosts"]
    for bad in ["db", "db:", ":1.2.3.4", "db:host-gateway", "db:1.2.3"]:
        with pytest.raises(InvalidArgument):
            etc.parse_extra_host(bad)
    with pytest.raises(InvalidArgument):
        etc.check_dns(["dns.example"])
