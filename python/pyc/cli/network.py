"""`pyc network create|ls|inspect|rm|connect|disconnect|prune` and `pyc port`."""

from __future__ import annotations

from pyc.cli.spec import Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.engine import Engine
    from pyc.records import NetworkRecord


def _labels(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        k, _, val = v.partition("=")
        if not k:
            from pyc.errors import InvalidArgument

            raise InvalidArgument(f"invalid label {v!r}: use KEY[=VALUE]")
        out[k] = val
    return out


def create(name: str, subnet: str | None, gateway: str | None, internal: bool, label: list[str], driver: str | None) -> None:
    from pyc.engine import Engine
    from pyc.errors import InvalidArgument

    if driver not in (None, "bridge"):
        raise InvalidArgument(f"invalid driver {driver!r}: only bridge networks are supported")
    print(Engine().create_network(name, subnet, gateway, internal, _labels(label)).id)


def ls(quiet: bool, format: str | None, filter: list[str]) -> None:
    from pyc.cli.output import table
    from pyc.engine import Engine

    nets = Engine().list_networks()
    rows = [{"ID": n.id[:12], "Name": n.name, "Driver": n.driver, "Scope": "local", "Internal": str(n.internal).lower(), "Subnet": n.subnet} for n in nets]
    rows += [{"ID": "", "Name": name, "Driver": driver, "Scope": "local", "Internal": "false", "Subnet": ""} for name, driver in (("host", "host"), ("none", "null"))]
    for f in filter:
        key, _, value = f.partition("=")
        rows = [r for r in rows if (key == "name" and value in r["Name"]) or (key == "driver" and r["Driver"] == value) or (key == "id" and r["ID"].startswith(value))]
    if quiet:
        for r in rows:
            print(r["ID"] or r["Name"])
        return
    if format is not None:
        import json

        from pyc.cli.template import render

        for r in rows:
            print(json.dumps(r) if format == "json" else render(format, r))
        return
    print(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], [[r["ID"], r["Name"], r["Driver"], r["Scope"]] for r in rows]))


def document(engine: Engine, net: NetworkRecord) -> dict[str, object]:
    """docker network inspect's document of a network, with its running containers."""
    containers: dict[str, object] = {
        e.container: {"Name": name, "MacAddress": e.mac, "IPv4Address": f"{e.ip}/{e.prefix}", "IPv6Address": "", "Aliases": e.aliases} for name, e in engine.network_endpoints(net.id)
    }
    return {
        "Name": net.name,
        "Id": net.id,
        "Created": net.created,
        "Scope": "local",
        "Driver": net.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
        "Internal": net.internal,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": net.bridge},
        "Labels": net.labels,
        "DNSEnabled": net.dns,
    }


def inspect(networks: list[str], format: str | None) -> None:
    from pyc.cli.containers import show
    from pyc.engine import Engine

    engine = Engine()
    show([document(engine, engine.network(n)) for n in networks], format)


def rm(networks: list[str]) -> None:
    from pyc.cli.lifecycle import _each
    from pyc.engine import Engine

    engine = Engine()
    _each(networks, engine.remove_network)


def prune(force: bool) -> None:
    from pyc.engine import Engine

    gone = Engine().prune_networks()
    if gone:
        print("Deleted Networks:")
        for name in gone:
            print(name)


def connect(network: str, container: str, ip: str | None, alias: list[str]) -> None:
    from pyc.engine import Engine

    Engine().connect(network, container, ip, alias)


def disconnect(network: str, container: str, force: bool) -> None:
    from pyc.engine import Engine

    Engine().disconnect(network, container)


def port(container: str, private: str | None) -> None:
    from pyc.engine import Engine
    from pyc.errors import InvalidArgument, Kind, PycError

    engine = Engine()
    bindings = sorted((b for _, e in engine.container_endpoints(container) for b in e.ports), key=lambda b: (b.container_port, b.proto))
    if private is not None:
        number, _, proto = private.partition("/")
        if not number.isdigit():
            raise InvalidArgument(f"invalid port {private!r}: use PORT[/PROTO]")
        bindings = [b for b in bindings if b.container_port == int(number) and b.proto == (proto or "tcp")]
        if not bindings:
            raise PycError(f"no public port '{private}' published for {container}", Kind.NOT_FOUND)
    for b in bindings:
        where = f"{b.host_ip or '0.0.0.0'}:{b.host_port}"
        print(where if private is not None else f"{b.container_port}/{b.proto} -> {where}")


NETWORK = (Arg("network", "NETWORK", "Network name or ID."),)
COMMANDS = [
    Command(
        ("network", "create"),
        "Create a bridge network.",
        create,
        (Arg("name", "NAME", "The network's name."),),
        (
            Flag(("--subnet",), "subnet", help="IPv4 subnet in CIDR form (default: a free /24 of 10.203.0.0/16)."),
            Flag(("--gateway",), "gateway", help="The gateway's address (default: the subnet's first)."),
            Flag(("--internal",), "internal", bool, "No way out of the network."),
            Flag(("--label",), "label", list, "A label KEY=VALUE."),
            Flag(("-d", "--driver"), "driver", help="bridge (the only driver)."),
        ),
    ),
    Command(
        ("network", "ls"),
        "List networks.",
        ls,
        flags=(
            Flag(("-q", "--quiet"), "quiet", bool, "Only IDs."),
            Flag(("--format",), "format", help="json, or a Go template."),
            Flag(("-f", "--filter"), "filter", list, "name=, driver=, id=."),
        ),
        aliases=(("network", "list"),),
    ),
    Command(
        ("network", "inspect"),
        "Show networks in detail.",
        inspect,
        (Arg("networks", "NETWORK", "Network names or IDs.", many=True),),
        (Flag(("-f", "--format"), "format", help="A Go template."),),
    ),
    Command(("network", "rm"), "Remove networks.", rm, (Arg("networks", "NETWORK", "Network names or IDs.", many=True),), aliases=(("network", "remove"),)),
    Command(("network", "prune"), "Remove the networks no container uses.", prune, flags=(Flag(("-f", "--force"), "force", bool, "Do not ask."),)),
    Command(
        ("network", "connect"),
        "Connect a container to a network.",
        connect,
        (*NETWORK, Arg("container", "CONTAINER", "Container name or ID.")),
        (Flag(("--ip",), "ip", help="IPv4 address."), Flag(("--alias",), "alias", list, "Another name on the network.")),
    ),
    Command(
        ("network", "disconnect"),
        "Disconnect a container from a network.",
        disconnect,
        (*NETWORK, Arg("container", "CONTAINER", "Container name or ID.")),
        (Flag(("-f", "--force"), "force", bool, "Force."),),
    ),
    Command(
        ("container", "port"),
        "List a container's published ports.",
        port,
        (Arg("container", "CONTAINER", "Container name or ID."), Arg("private", "PRIVATE_PORT[/PROTO]", required=False)),
        aliases=(("port",),),
    ),
]
