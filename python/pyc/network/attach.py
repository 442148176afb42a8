"""One container start's network: what `--network`, `-p` and the DNS flags ask for, checked
before anything is made (`resolve`); then, for a start, set up (`attach`) and torn down
(`Attachment.release`) on every path. The container's interfaces themselves are made by the
Rust side of the start (pyc_core.run or pyc-monitor), from the plan (`Attachment.plan`)."""

from __future__ import annotations

import os

from pyc.errors import Conflict, ContainerNotFound, InvalidArgument, NotRunning
from pyc.network import PREDEFINED, default_network
from pyc.network.etc import check_dns, parse_extra_host
from pyc.network.ports import Reserved, parse
from pyc.network.store import NetworkStore
from pyc.records import Endpoint, EndpointConfig, HostConfig, NetInterface, NetPlan, NetworkRecord, PortBinding

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyc.containers import Container, ContainerStore
    from pyc.runtime.spec import RunOptions


def resolve(store: NetworkStore, containers: ContainerStore, opts: RunOptions, hc: HostConfig) -> HostConfig:
    """The network part of the container's HostConfig, from run's flags; one clear line for
    bad input (an unknown network, a malformed -p, ...), before anything is made."""
    mode = opts.network or default_network()
    bindings = [b for spec in opts.publish for b in parse(spec)]
    check_dns(opts.dns)
    for h in opts.add_hosts:
        parse_extra_host(h)
    endpoints: dict[str, EndpointConfig] = {}
    if mode in ("none", "host") or mode.startswith("container:"):
        what = f"--network {mode}"
        if opts.ip or opts.network_aliases:
            raise InvalidArgument(f"conflicting options: --ip and --network-alias need a bridge network, not {what}")
        if bindings or opts.publish_all:
            raise InvalidArgument(f"conflicting options: port publishing and {what}")
        if mode.startswith("container:"):
            other = containers.get(mode.partition(":")[2])
            mode = f"container:{other.id}"
    else:
        net = store.get(mode)
        user_defined = net.name not in PREDEFINED
        if opts.ip and not user_defined:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        if opts.network_aliases and not user_defined:
            raise InvalidArgument("network-scoped alias is supported only for containers in user defined networks")
        endpoints[net.name] = EndpointConfig(ip=opts.ip or "", aliases=list(opts.network_aliases))
        mode = net.name
    return hc.replace(
        network_mode=mode,
        endpoints=endpoints,
        port_bindings=bindings,
        publish_all=opts.publish_all,
        dns=list(opts.dns),
        dns_search=list(opts.dns_search),
        dns_options=list(opts.dns_options),
        extra_hosts=list(opts.add_hosts),
    )


def joined_pid(containers: ContainerStore, mode: str) -> int:
    """`container:<id>`: the pid whose network namespace the container joins."""
    cid = mode.partition(":")[2]
    try:
        other = containers.get(cid)
    except ContainerNotFound:
        raise ContainerNotFound(f"cannot join the network of container {cid[:12]}: it was removed") from None
    st = other.current_state()
    if st.status != "running" or not st.pid:
        raise NotRunning(f"cannot join the network of a non running container: {other.name}")
    return st.pid


class Attachment:
    """What one start of a container holds on the host: its endpoints (files, resolver entries),
    its host ports (bound sockets) and their DNAT."""

    def __init__(self, store: NetworkStore, cid: str) -> None:
        self.store = store
        self.cid = cid
        self.endpoints: list[tuple[NetworkRecord, Endpoint]] = []
        self.ports = Reserved()
        self.published = False

    @property
    def first(self) -> Endpoint | None:
        return self.endpoints[0][1] if self.endpoints else None

    def plan(self) -> NetPlan:
        from pyc.network.ports import plan

        interfaces = []
        routed = False
        for i, (net, e) in enumerate(self.endpoints):
            gateway = e.gateway if e.gateway and not routed else None
            routed = routed or gateway is not None
            # hairpin: the ports are published to the first interface, which may reach its own
            hairpin = i == 0 and bool(self.ports.bindings)
            interfaces.append(NetInterface(bridge=net.bridge, name=e.ifname, address=e.ip, prefix=e.prefix, gateway=gateway, mac=e.mac, hairpin=hairpin))
        first = self.first
        return NetPlan(interfaces=interfaces, ports=plan(self.ports.bindings, first.ip) if first else [])

    def handoff(self, holder: tuple[int, str]) -> None:
        """The container is held by `holder` now (its pyc-monitor): its rows and names follow;
        this process's copies of the port sockets go (the monitor has its own)."""
        from pyc.network import dns

        for net, e in self.endpoints:
            e.holder_pid, e.holder_start = holder
            self.store.save(e)
            if net.dns:
                dns.set_holder(self.store.dir(net), self.cid, holder)
        self.ports.close()

    def release(self) -> None:
        """Undo everything: DNAT, ports, names, endpoints. Safe to call after a partial `attach`."""
        from pyc.network import ports

        first = self.first
        try:
            if self.published and first is not None:
                ports.unpublish(self.ports.bindings, first.ip)
        finally:
            self.ports.close()
            for net, e in self.endpoints:
                if net.dns:
                    from pyc.network import dns  # names: user-defined networks only

                    dns.remove_entry(self.store.dir(net), self.cid)
                self.store.release(e)
            self.endpoints = []


def _holder() -> tuple[int, str]:
    from pyc.containers import _start_time

    pid = os.getpid()
    return pid, _start_time(pid) or ""


def ensure_host_side(net: NetworkRecord) -> None:
    """The network's bridge and rules, made where missing (its first container, or after a
    reboot). The caller holds the network's lock."""
    import pyc_core
    from pyc.network.subnet import Subnet, ip_str

    if pyc_core.bridge_exists(net.bridge):
        return
    s = Subnet.parse(net.subnet)
    config = {"bridge": net.bridge, "subnet": ip_str(s.base), "prefix": s.prefix, "gateway": net.gateway, "mac": net.mac, "internal": net.internal}
    pyc_core.network_ensure(pyc_core.packb(config))


def attach(store: NetworkStore, c: Container, exposed_ports: list[str]) -> Attachment:
    """Set up the container's bridge networks for a start: ports bound first (a taken one fails
    before anything else is made), then per network its host side, an address, its name at the
    resolver, then the DNAT of the ports. On any failure, all of it undone."""
    from pyc.network.ports import exposed, publish
    from pyc.store import atomic

    hc = c.record.host_config
    att = Attachment(store, c.id)
    if not hc.endpoints:
        return att
    holder = _holder()
    try:
        wanted: list[PortBinding] = list(hc.port_bindings)
        if hc.publish_all:
            have = {(b.proto, b.container_port) for b in wanted}
            wanted += [b for b in exposed(exposed_ports) if (b.proto, b.container_port) not in have]
        att.ports.bind(wanted)
        for i, (name, cfg) in enumerate(hc.endpoints.items()):
            net = store.get(name)
            netdir = store.dir(net)
            with atomic.locked(os.path.join(netdir, "lock")):
                store.check_live(net)
                ensure_host_side(net)
                e = store.allocate(net, c.id, f"eth{i}", cfg.ip, cfg.aliases, holder)
                att.endpoints.append((net, e))
                if net.dns:
                    from pyc.network import dns
                    from pyc.network.etc import host_resolv_conf, upstreams

                    dns.ensure_resolver(netdir, net.gateway, host_resolv_conf()[1], upstreams([]))
                    names = [c.name, *cfg.aliases, c.id[:12]]
                    dns.write_entry(netdir, c.id, holder, e.ip, names, check_dns(hc.dns))
        first = att.first
        if first is not None and att.ports.bindings:
            first.ports = list(att.ports.bindings)
            store.save(first)
            publish(att.ports.bindings, first.ip)
            att.published = True
    except BaseException:
        att.release()
        raise
    return att


def connect(store: NetworkStore, containers: ContainerStore, c: Container, net: NetworkRecord, ip: str, aliases: list[str]) -> None:
    """`pyc network connect`: the network recorded for the container's next starts, and given to
    it now if it runs (its next interface, eth1, ...)."""
    import pyc_core
    from pyc.network import dns
    from pyc.store import atomic

    hc = c.record.host_config
    if hc.network_mode in ("none", "host") or hc.network_mode.startswith("container:"):
        raise Conflict(f"container {c.name} is on --network {hc.network_mode.partition(':')[0]}: it cannot be connected to a network")
    if net.name in hc.endpoints:
        raise Conflict(f"endpoint with name {c.name} already exists in network {net.name}")
    if ip and net.name in PREDEFINED:
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    hc.endpoints[net.name] = EndpointConfig(ip=ip, aliases=list(aliases))
    st = c.current_state()
    if st.status == "running" and st.pid:
        live = store.of_container(c.id)
        holder = (live[0].holder_pid, live[0].holder_start) if live else (st.monitor_pid, st.monitor_start)
        netdir = store.dir(net)
        with atomic.locked(os.path.join(netdir, "lock")):
            store.check_live(net)
            ensure_host_side(net)
            e = store.allocate(net, c.id, f"eth{len(live)}", ip, aliases, holder)
            try:
                iface = NetInterface(bridge=net.bridge, name=e.ifname, address=e.ip, prefix=e.prefix, gateway=None, mac=e.mac)
                pyc_core.network_attach(st.pid, pyc_core.packb([iface.to_dict()]))
                if net.dns:
                    from pyc.network.etc import host_resolv_conf, upstreams

                    dns.ensure_resolver(netdir, net.gateway, host_resolv_conf()[1], upstreams([]))
                    dns.write_entry(netdir, c.id, holder, e.ip, [c.name, *aliases, c.id[:12]], check_dns(hc.dns))
            except BaseException:
                store.release(e)
                raise
    containers.save(c)


def disconnect(store: NetworkStore, containers: ContainerStore, c: Container, net: NetworkRecord) -> None:
    """`pyc network disconnect`: off the network now (if it runs) and at its next starts."""
    import pyc_core
    from pyc.network import dns

    hc = c.record.host_config
    if net.name not in hc.endpoints:
        raise Conflict(f"container {c.name} is not connected to network {net.name}")
    del hc.endpoints[net.name]
    st = c.current_state()
    for e in store.of_container(c.id):
        if e.network == net.id:
            if st.status == "running" and st.pid:
                pyc_core.network_detach(st.pid, e.ifname)
            if e.ports:
                from pyc.network.ports import unpublish

                unpublish(e.ports, e.ip)
            if net.dns:
                dns.remove_entry(store.dir(net), c.id)
            store.release(e)
    if hc.network_mode == net.name:
        hc.network_mode = next(iter(hc.endpoints), "none")
    containers.save(c)
