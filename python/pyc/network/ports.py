"""Published ports: `-p [IP:][HOST:]CTR[/tcp|udp]` (ranges too) and `-P`, checked before
anything is made; bound on the host for the container's life by its holder (the pyc process,
or pyc-monitor, which inherits the sockets), so that a port another process has is refused on
one line and no process takes one of the container's meanwhile; DNAT'ed to the container by
nftables (pyc_core.ports_publish), the host's loopback included (route_localnet: see
rust/core/src/net/nft.rs for why DNAT and not a proxy process).

Without an IP, a port is published on every address of the host, as docker does."""

from __future__ import annotations

from pyc.errors import Conflict, InvalidArgument
from pyc.network.subnet import ip_str, parse_ip
from pyc.records import Endpoint, NetPort, PortBinding

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket


def _port_range(text: str, spec: str) -> list[int]:
    lo, dash, hi = text.partition("-")
    if not lo.isdigit() or (dash and not hi.isdigit()):
        raise InvalidArgument(f"invalid port {spec!r}: use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")
    first, last = int(lo), int(hi) if dash else int(lo)
    if not 1 <= first <= last <= 65535:
        raise InvalidArgument(f"invalid port {spec!r}: ports are 1 to 65535, a range low-high")
    return list(range(first, last + 1))


def parse(spec: str) -> list[PortBinding]:
    """One `-p` value: its bindings (a range is several)."""
    body, slash, proto = spec.partition("/")
    proto = proto if slash else "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid port {spec!r}: the protocol is tcp or udp")
    if body.startswith("["):
        raise InvalidArgument(f"invalid port {spec!r}: IPv6 is not supported")
    parts = body.split(":")
    if len(parts) > 3 or not parts[-1]:
        raise InvalidArgument(f"invalid port {spec!r}: use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")
    ip = parts[0] if len(parts) == 3 else ""
    if ip:
        ip = ip_str(parse_ip(ip, f"address in port {spec!r}"))
    host = parts[-2] if len(parts) >= 2 else ""
    ctr = _port_range(parts[-1], spec)
    hosts = _port_range(host, spec) if host else [0] * len(ctr)
    if len(hosts) != len(ctr):
        raise InvalidArgument(f"invalid port {spec!r}: the host and container ranges differ in length")
    return [PortBinding(proto=proto, host_ip=ip, host_port=h, container_port=c) for h, c in zip(hosts, ctr, strict=True)]


def exposed(image_ports: list[str]) -> list[PortBinding]:
    """`-P`: the image's EXPOSE ("80/tcp", "53/udp", "8080"), each to a free host port."""
    out = []
    for p in image_ports:
        number, _, proto = p.partition("/")
        if number.isdigit() and 0 < int(number) < 65536 and (proto or "tcp") in ("tcp", "udp"):
            out.append(PortBinding(proto=proto or "tcp", container_port=int(number)))
    return out


class Reserved:
    """The host ports of one container, bound: kept open by its holder as long as it lives."""

    def __init__(self) -> None:
        self.sockets: list[_socket.socket] = []
        self.bindings: list[PortBinding] = []

    def bind(self, wanted: list[PortBinding]) -> None:
        if not wanted:
            return
        # _socket, not socket: the module's enums cost milliseconds at import, on every start.
        import _socket

        seen: set[tuple[str, str, int]] = set()
        for b in wanted:
            s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM if b.proto == "tcp" else _socket.SOCK_DGRAM)
            try:
                s.bind((b.host_ip or "0.0.0.0", b.host_port))
            except OSError as e:
                s.close()
                where = f"{b.host_ip or '0.0.0.0'}:{b.host_port}"
                if e.errno == 98:  # EADDRINUSE
                    raise Conflict(f"Bind for {where} failed: port is already allocated") from None
                raise InvalidArgument(f"cannot publish {where}/{b.proto}: {e.strerror}") from None
            port = s.getsockname()[1]
            key = (b.proto, b.host_ip, port)
            if key in seen:
                s.close()
                raise Conflict(f"Bind for {b.host_ip or '0.0.0.0'}:{port} failed: port is already allocated")
            seen.add(key)
            self.sockets.append(s)
            self.bindings.append(b.replace(host_port=port))

    def fds(self) -> list[int]:
        return [s.fileno() for s in self.sockets]

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.sockets = []


def plan(bindings: list[PortBinding], container_ip: str) -> list[NetPort]:
    return [NetPort(proto=b.proto, host_ip=b.host_ip or None, host_port=b.host_port, container_ip=container_ip, container_port=b.container_port) for b in bindings]


def publish(bindings: list[PortBinding], container_ip: str) -> None:
    import pyc_core

    if bindings:
        pyc_core.ports_publish(pyc_core.packb([p.to_dict() for p in plan(bindings, container_ip)]))


def unpublish(bindings: list[PortBinding], container_ip: str) -> None:
    import pyc_core

    if bindings:
        pyc_core.ports_unpublish(pyc_core.packb([p.to_dict() for p in plan(bindings, container_ip)]))


def unpublish_stale(e: Endpoint) -> None:
    """The DNAT of a dead endpoint's ports, each where no process holds the port now (one that
    does may be a container that published it since: its rule stays)."""
    import socket

    stale = []
    for b in e.ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if b.proto == "tcp" else socket.SOCK_DGRAM)
        try:
            s.bind((b.host_ip or "0.0.0.0", b.host_port))
            stale.append((b, s))
        except OSError:
            s.close()
    try:
        unpublish([b for b, _ in stale], e.ip)
    finally:
        for _, s in stale:
            s.close()
