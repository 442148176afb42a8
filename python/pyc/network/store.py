"""Networks (rows of pyc.db's `networks`, each a NetworkRecord) and their endpoints (files).

A start on a network reads and writes no pyc.db (importing sqlite3 and opening the database
were most of what the bridge added to a `pyc run --rm`): it finds the network's record in
$PYC_ROOT/networks/<name> (written from the row under pyc.db's write lock, removed with it
under the same lock, so it never outlives the row), and its endpoint is a file.

An endpoint is a running container's place on a network: its address and MAC, in the network's
run directory ($PYC_RUN/net/<id>/endpoints/<container id>), written when the container starts
and removed when it ends. Addresses are taken under the network's lock: the lowest free one of
the subnet, so an address is reused only once free. An endpoint whose holder died (a kill -9 of
pyc or pyc-monitor, or a detached container that ended) is dead: `collect` removes it and what
it left (its published ports' nftables elements, its resolver entry), when a command touches
that network again. A reboot empties the run directory with every holder gone."""

from __future__ import annotations

import os
import time

import pyc_core
from pyc.errors import Conflict, InvalidArgument, NetworkNotFound
from pyc.network import DEFAULT_NETWORK, PREDEFINED, run_dir
from pyc.network.subnet import Subnet, ip_str, parse_ip
from pyc.record import BadRecord
from pyc.records import Endpoint, NetworkRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3

    from pyc.containers import ContainerStore

DEFAULT_SUBNET = "10.202.0.0/16"  # the default `bridge` network's (PYC_BRIDGE_SUBNET)
USER_POOL = (10 << 24 | 203 << 16, 16)  # user networks without --subnet: /24s of 10.203.0.0/16


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def check_name(name: str) -> None:
    if not (name[:1].isalnum() and all(c.isalnum() or c in "_.-" for c in name)) or len(name) > 128:
        raise InvalidArgument(f"invalid network name {name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")


def holder_alive(pid: int, start: str) -> bool:
    from pyc.containers import _start_time

    return bool(pid) and _start_time(pid) == start


def _mac_of(ip: int) -> str:
    """docker's way: 02:42 and the address, unique in a network as the address is."""
    return "02:42:" + ":".join(f"{ip >> s & 255:02x}" for s in (24, 16, 8, 0))


def _decode_network(row: bytes) -> NetworkRecord:
    try:
        return NetworkRecord.from_dict(pyc_core.unpackb(row))
    except (BadRecord, ValueError) as e:
        from pyc.errors import BadImage

        raise BadImage(f"a network record in pyc.db is corrupt: {e}") from None


class _Immediate:
    """A write transaction no other pyc interleaves with (BEGIN IMMEDIATE), rolled back on any
    error: what is checked in it (a free subnet, a free address) stays true until its write."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, error: object, *rest: object) -> None:
        self.db.execute("COMMIT" if error is None else "ROLLBACK")


class NetworkStore:
    def __init__(self, containers: ContainerStore) -> None:
        self.containers = containers
        self.names = os.path.join(containers.paths.root, "networks")  # name -> record

    @property
    def db(self) -> sqlite3.Connection:
        return self.containers.db

    def dir(self, net: NetworkRecord) -> str:
        """The network's run directory: its lock, its resolver's pid file and entries."""
        d = os.path.join(run_dir(), "net", net.id)
        os.makedirs(d, mode=0o700, exist_ok=True)
        return d

    # -- networks -------------------------------------------------------------------------

    def all(self) -> list[NetworkRecord]:
        self.default()
        return [_decode_network(r[0]) for r in self.db.execute("SELECT record FROM networks ORDER BY created")]

    def get(self, ref: str) -> NetworkRecord:
        """By name (its file first: no pyc.db), full id or a unique id prefix."""
        cached = self._cached(ref)
        if cached is not None:
            return cached
        if ref == DEFAULT_NETWORK:
            return self._keep(self.default())
        rows = self.db.execute("SELECT record FROM networks WHERE name = ? OR id = ?", (ref, ref)).fetchall()
        if not rows and ref and all(c in "0123456789abcdef" for c in ref):
            rows = self.db.execute("SELECT record FROM networks WHERE id >= ? AND id < ? LIMIT 2", (ref, ref + "g")).fetchall()
            if len(rows) > 1:
                raise InvalidArgument(f"network id prefix {ref} is ambiguous")
        if not rows:
            raise NetworkNotFound(f"network {ref} not found")
        return self._keep(_decode_network(rows[0][0]))

    def _cached(self, name: str) -> NetworkRecord | None:
        if not name[:1].isalnum() or "/" in name:
            return None
        try:
            with open(os.path.join(self.names, name), "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            net = NetworkRecord.from_dict(pyc_core.unpackb(data))
        except (BadRecord, ValueError):
            return None  # cut short by a crash: the row is still there
        return net if net.name == name else None

    def _keep(self, net: NetworkRecord) -> NetworkRecord:
        """Write the network's file from its row, in a write transaction: `remove` deletes both
        in one, so a file is never written for a row being removed."""
        import sqlite3

        from pyc.store import atomic

        try:
            with _Immediate(self.db):
                if self.db.execute("SELECT 1 FROM networks WHERE id = ?", (net.id,)).fetchone() is None:
                    raise NetworkNotFound(f"network {net.name} not found")
                os.makedirs(self.names, mode=0o700, exist_ok=True)
                atomic.write_file(os.path.join(self.names, net.name), pyc_core.packb(net.to_dict()), durable=False)
        except (OSError, sqlite3.OperationalError):
            pass  # a store this user may read but not write: the row serves
        return net

    def check_live(self, net: NetworkRecord) -> None:
        """Under the network's lock: it was not removed (nor made anew) since it was read."""
        if self.get(net.name).id != net.id:
            raise NetworkNotFound(f"network {net.name} not found")

    def default(self) -> NetworkRecord:
        """The `bridge` network (bridge pyc0), made on first use with PYC_BRIDGE_SUBNET or
        10.202.0.0/16. It has no resolver: as docker's default network, names are not served."""
        row = self.db.execute("SELECT record FROM networks WHERE name = ?", (DEFAULT_NETWORK,)).fetchone()
        if row is not None:
            return _decode_network(row[0])
        try:
            return self.create(DEFAULT_NETWORK, os.environ.get("PYC_BRIDGE_SUBNET") or DEFAULT_SUBNET, bridge="pyc0", dns=False, predefined=True)
        except Conflict:
            row = self.db.execute("SELECT record FROM networks WHERE name = ?", (DEFAULT_NETWORK,)).fetchone()
            if row is None:  # not another pyc that made it meanwhile: its subnet is taken
                raise
            return _decode_network(row[0])

    def create(
        self,
        name: str,
        subnet: str | None = None,
        gateway: str | None = None,
        internal: bool = False,
        labels: dict[str, str] | None = None,
        bridge: str | None = None,
        dns: bool = True,
        predefined: bool = False,
    ) -> NetworkRecord:
        """A new network's record (its bridge is made with its first container)."""
        import sqlite3

        check_name(name)
        if name in PREDEFINED and not predefined:
            raise Conflict(f"network with name {name} already exists (a pre-defined network)")
        net = Subnet.parse(subnet) if subnet is not None else None
        if gateway is not None and net is None:
            raise InvalidArgument("--gateway needs --subnet")
        nid = os.urandom(32).hex()
        with _Immediate(self.db):
            taken = [Subnet.parse(n.subnet) for n in (_decode_network(r[0]) for r in self.db.execute("SELECT record FROM networks"))]
            if net is None:
                net = self._free_subnet(taken)
            clash = next((t for t in taken if t.overlaps(net)), None)
            if clash is not None:
                raise Conflict(f"invalid subnet {net}: it overlaps {clash}, the subnet of another pyc network")
            gw = parse_ip(gateway, "gateway") if gateway is not None else net.base + 1
            if gw not in net or gw in (net.base, net.broadcast):
                raise InvalidArgument(f"invalid gateway {ip_str(gw)}: not a host address of {net}")
            record = NetworkRecord(
                id=nid,
                name=name,
                created=_now(),
                bridge=bridge or f"pyc-{nid[:8]}",
                subnet=str(net),
                gateway=ip_str(gw),
                mac="02:42:" + ":".join(f"{b:02x}" for b in os.urandom(4)),
                internal=internal,
                dns=dns,
                labels=dict(labels or {}),
            )
            try:
                self.db.execute("INSERT INTO networks VALUES (?, ?, ?, ?)", (nid, name, record.created, pyc_core.packb(record.to_dict())))
            except sqlite3.IntegrityError:
                raise Conflict(f"network with name {name} already exists") from None
        return record

    @staticmethod
    def _free_subnet(taken: list[Subnet]) -> Subnet:
        base, prefix = USER_POOL
        for i in range(1 << (24 - prefix)):
            candidate = Subnet(base + (i << 8), 24)
            if not any(t.overlaps(candidate) for t in taken):
                return candidate
        raise Conflict("no free subnet left in 10.203.0.0/16: give one with --subnet")

    def remove(self, net: NetworkRecord) -> None:
        """The network, its bridge and rules; refused while a container is on it."""
        import pyc_core

        if net.name in PREDEFINED:
            raise Conflict(f"{net.name} is a pre-defined network and cannot be removed")
        from pyc.store import atomic

        with atomic.locked(os.path.join(self.dir(net), "lock")):
            live = self.endpoints(net)
            if live:
                names = ", ".join(sorted(self.container_name(e.container) for e in live))
                raise Conflict(f"network {net.name} has active endpoints ({names})")
            users = [c.name for c in self.containers.all() if net.name in c.record.host_config.endpoints or net.id in c.record.host_config.endpoints]
            if users:
                raise Conflict(f"network {net.name} is in use by container {', '.join(sorted(users))}")
            from pyc.network import dns

            dns.stop_resolver(self.dir(net))  # with no container left, it is leaving already
            pyc_core.network_remove(net.bridge)
            with _Immediate(self.db):
                try:
                    os.unlink(os.path.join(self.names, net.name))
                    atomic.sync_dir(self.names)  # gone before the row: never a file without one
                except FileNotFoundError:
                    pass
                self.db.execute("DELETE FROM networks WHERE id = ?", (net.id,))
        pyc_core.remove_tree(self.dir(net))

    def container_name(self, cid: str) -> str:
        row = self.db.execute("SELECT name FROM containers WHERE id = ?", (cid,)).fetchone()
        if row:
            return str(row[0])
        fg = self.containers.foreground.read(cid)  # an unnamed run --rm: a file, not a row
        return fg.name if fg else cid[:12]

    # -- endpoints ------------------------------------------------------------------------

    def _endpoints_dir(self, network_id: str) -> str:
        return os.path.join(self.dir_of(network_id), "endpoints")

    def _read(self, path: str) -> Endpoint | None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return Endpoint.from_dict(pyc_core.unpackb(data))
        except (BadRecord, ValueError):
            return None  # not one of ours (a write is a rename: never half of one)

    def _on(self, network_id: str) -> list[Endpoint]:
        d = self._endpoints_dir(network_id)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return []
        found = [self._read(os.path.join(d, n)) for n in names if not n.startswith(".")]
        return sorted((e for e in found if e is not None), key=lambda e: parse_ip(e.ip))

    def _of(self, cid: str) -> list[Endpoint]:
        try:
            networks = os.listdir(os.path.join(run_dir(), "net"))
        except FileNotFoundError:
            return []
        found = [self._read(os.path.join(self._endpoints_dir(n), cid)) for n in networks]
        return [e for e in found if e is not None]

    def endpoints(self, net: NetworkRecord) -> list[Endpoint]:
        """The network's live endpoints, what dead holders left collected first."""
        self.collect(net.id)
        return self._on(net.id)

    def of_container(self, cid: str) -> list[Endpoint]:
        """A container's live endpoints (those of a dead holder are not shown: `collect` removes them)."""
        return [e for e in self._of(cid) if holder_alive(e.holder_pid, e.holder_start)]

    def collect(self, network_id: str | None = None, container: str | None = None) -> None:
        """Remove the endpoints whose holder is gone and what they left: their ports' DNAT
        (where no process holds the port now) and their names at the resolver."""
        rows = self._of(container) if container is not None else self._on(network_id) if network_id is not None else []
        dead = [e for e in rows if not holder_alive(e.holder_pid, e.holder_start)]
        if dead:
            self.forget(dead)

    def forget(self, endpoints: list[Endpoint]) -> None:
        """Remove these dead endpoints and what they left, each under its network's lock and
        only if it is still the one read (not a new start's)."""
        from pyc.network import dns, ports
        from pyc.store import atomic

        for e in endpoints:
            path = os.path.join(self._endpoints_dir(e.network), e.container)
            try:
                lock = atomic.locked(os.path.join(self.dir_of(e.network), "lock"))
                with lock:
                    now = self._read(path)
                    if now is None or (now.holder_pid, now.holder_start) != (e.holder_pid, e.holder_start):
                        continue
                    ports.unpublish_stale(e)
                    dns.remove_entry(self.dir_of(e.network), e.container)
                    os.unlink(path)
            except FileNotFoundError:
                pass  # its network was removed meanwhile, with its run directory

    def dir_of(self, network_id: str) -> str:
        return os.path.join(run_dir(), "net", network_id)

    def allocate(self, net: NetworkRecord, cid: str, ifname: str, ip: str, aliases: list[str], holder: tuple[int, str]) -> Endpoint:
        """The container's endpoint on `net`: `ip` if given (free, in the subnet), else the lowest
        free address; written with its holder. The caller holds the network's lock."""
        subnet = Subnet.parse(net.subnet)
        gateway = parse_ip(net.gateway)
        found = self._on(net.id)
        dead = [e for e in found if not holder_alive(e.holder_pid, e.holder_start)]
        if dead:
            self.forget(dead)
        used = {parse_ip(e.ip) for e in found if e not in dead and e.container != cid}  # not an earlier start's
        if ip:
            want = parse_ip(ip, "--ip")
            if want not in subnet or want in (subnet.base, subnet.broadcast, gateway):
                raise InvalidArgument(f"invalid --ip {ip}: not a free host address of {net.name} ({net.subnet}, gateway {net.gateway})")
            if want in used:
                raise Conflict(f"address {ip} is already in use on network {net.name}")
        else:
            want = next((a for a in subnet.hosts() if a != gateway and a not in used), 0)
            if not want:
                raise Conflict(f"no free address left on network {net.name} ({net.subnet})")
        e = Endpoint(
            network=net.id,
            container=cid,
            ifname=ifname,
            ip=ip_str(want),
            prefix=subnet.prefix,
            mac=_mac_of(want),
            gateway="" if net.internal else net.gateway,
            aliases=list(aliases),
            holder_pid=holder[0],
            holder_start=holder[1],
        )
        self.save(e)
        return e

    def save(self, e: Endpoint) -> None:
        """Write the endpoint (in one rename: a reader sees the old or the new one)."""
        d = self._endpoints_dir(e.network)
        os.makedirs(d, mode=0o700, exist_ok=True)
        path = os.path.join(d, e.container)
        tmp = os.path.join(d, f".tmp-{e.container}-{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(pyc_core.packb(e.to_dict()))
        os.rename(tmp, path)

    def release(self, e: Endpoint) -> None:
        try:
            os.unlink(os.path.join(self._endpoints_dir(e.network), e.container))
        except FileNotFoundError:
            pass

    def network_of(self, e: Endpoint) -> NetworkRecord | None:
        row = self.db.execute("SELECT record FROM networks WHERE id = ?", (e.network,)).fetchone()
        return _decode_network(row[0]) if row else None
