"""IPv4 subnets and addresses as integers: parsing with one clear line for bad input, overlap,
the host addresses of a subnet. (Not `ipaddress`: it costs milliseconds on the run path.)"""

from __future__ import annotations

from pyc.errors import InvalidArgument


def parse_ip(value: str, what: str = "IP address") -> int:
    parts = value.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
        raise InvalidArgument(f"invalid {what} {value!r}: not an IPv4 address (IPv6 is not supported)")
    return int(parts[0]) << 24 | int(parts[1]) << 16 | int(parts[2]) << 8 | int(parts[3])


def ip_str(n: int) -> str:
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


class Subnet:
    """`base/prefix`, base with no host bits."""

    __slots__ = ("base", "prefix")

    def __init__(self, base: int, prefix: int) -> None:
        self.base = base
        self.prefix = prefix

    @classmethod
    def parse(cls, cidr: str) -> Subnet:
        addr, slash, bits = cidr.partition("/")
        if not slash or not bits.isdigit() or not 0 <= int(bits) <= 32:
            raise InvalidArgument(f"invalid subnet {cidr!r}: use an IPv4 CIDR such as 10.91.0.0/24")
        base, prefix = parse_ip(addr, "subnet"), int(bits)
        if base & ~cls.mask_of(prefix) & 0xFFFFFFFF:
            raise InvalidArgument(f"invalid subnet {cidr!r}: host bits are set (the network is {ip_str(base & cls.mask_of(prefix))}/{prefix})")
        if prefix > 30:
            raise InvalidArgument(f"invalid subnet {cidr!r}: too small (at most /30: a gateway and one container)")
        return cls(base, prefix)

    @staticmethod
    def mask_of(prefix: int) -> int:
        return (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF

    @property
    def mask(self) -> int:
        return self.mask_of(self.prefix)

    @property
    def broadcast(self) -> int:
        return self.base | (~self.mask & 0xFFFFFFFF)

    def __contains__(self, ip: int) -> bool:
        return ip & self.mask == self.base

    def overlaps(self, other: Subnet) -> bool:
        return self.base <= other.broadcast and other.base <= self.broadcast

    def hosts(self) -> range:
        """The addresses a host may have: not the network's nor its broadcast address."""
        return range(self.base + 1, self.broadcast)

    def __str__(self) -> str:
        return f"{ip_str(self.base)}/{self.prefix}"
