"""A container's /etc/hosts and /etc/resolv.conf, as docker writes them: `--add-host`,
`--hostname`, `--domainname` in hosts; `--dns`, `--dns-search`, `--dns-option` in resolv.conf
(on a network with a resolver, the resolver at the gateway is the nameserver, and `--dns`
servers are where it sends that container's other questions)."""

from __future__ import annotations

from pyc.errors import InvalidArgument
from pyc.network.subnet import ip_str, parse_ip

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.records import HostConfig

HOST_RESOLV_CONF = "/etc/resolv.conf"
LOCALHOST = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"


def parse_extra_host(value: str) -> tuple[str, str]:
    """`--add-host NAME:IP` (docker's `NAME=IP` too): (name, ip)."""
    sep = "=" if "=" in value else ":"
    name, _, ip = value.partition(sep)
    if not name or not ip or any(c.isspace() for c in name):
        raise InvalidArgument(f"invalid --add-host {value!r}: use NAME:IP")
    if ip == "host-gateway":
        raise InvalidArgument(f"invalid --add-host {value!r}: host-gateway is not supported")
    return name, ip_str(parse_ip(ip, f"address in --add-host {value!r}"))


def hosts(hostname: str, domainname: str, ip: str | None, extra: list[str]) -> str:
    """/etc/hosts: localhost, the --add-host lines, then the container's own address and name
    (on 127.0.0.1 when it has no address of its own: --network none)."""
    out = [LOCALHOST]
    for value in extra:
        name, addr = parse_extra_host(value)
        out.append(f"{addr}\t{name}\n")
    names = f"{hostname}.{domainname} {hostname}" if domainname else hostname
    out.append(f"{ip or '127.0.0.1'}\t{names}\n")
    return "".join(out)


def host_resolv_conf() -> tuple[list[str], list[str], list[str]]:
    """The host's nameservers, search domains and options."""
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    try:
        with open(HOST_RESOLV_CONF) as f:
            lines = f.read().splitlines()
    except OSError:
        return servers, search, options
    for line in lines:
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            servers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
        elif words[0] == "options":
            options += words[1:]
    return servers, search, options


def _loopback(server: str) -> bool:
    return server.startswith("127.") or server == "::1"


def check_dns(servers: list[str]) -> list[str]:
    return [ip_str(parse_ip(s, "--dns server")) for s in servers]


def resolv_conf(dns: list[str], search: list[str], options: list[str], resolver: str | None, host_network: bool) -> str:
    """resolv.conf: the resolver at the gateway (a network with names), else `--dns` servers,
    else the host's (without loopback ones, which are the container's own loopback, but on the
    host's network); search domains and options given, else the host's."""
    host_servers, host_search, host_options = host_resolv_conf()
    if resolver is not None:
        servers = [resolver]
    elif dns:
        servers = check_dns(dns)
    elif host_network:
        servers = host_servers
    else:
        servers = [s for s in host_servers if not _loopback(s)]
    lines = [f"nameserver {s}" for s in servers]
    if search or host_search:
        lines.append("search " + " ".join(search or host_search))
    if options or host_options:
        lines.append("options " + " ".join(options or host_options))
    return "\n".join(lines) + "\n"


def upstreams(dns: list[str]) -> list[str]:
    """Where a resolver sends the questions it cannot answer: the container's --dns servers,
    else the host's (loopback ones too: the resolver runs on the host's network)."""
    return check_dns(dns) if dns else host_resolv_conf()[0]


def files(hc: HostConfig, hostname: str, domainname: str, ip: str | None = None, resolver: str | None = None) -> dict[str, str]:
    """The files pyc bind-mounts into the container's /etc, for its network mode (`ip` and
    `resolver` those of its first bridge network, once it has an address)."""
    host = hc.network_mode == "host"
    if host:
        try:
            with open("/etc/hosts") as f:
                base = f.read()
        except OSError:
            base = LOCALHOST
        extra = "".join(f"{addr}\t{name}\n" for name, addr in map(parse_extra_host, hc.extra_hosts))
        hosts_text = base + ("" if base.endswith("\n") or not base else "\n") + extra
    else:
        hosts_text = hosts(hostname, domainname, ip, hc.extra_hosts)
    return {"hostname": hostname + "\n", "hosts": hosts_text, "resolv.conf": resolv_conf(hc.dns, hc.dns_search, hc.dns_options, resolver, host)}
