"""Networks: docker's `bridge` (the default, bridge `pyc0`) and user-defined bridge networks,
each a bridge over an IPv4 subnet with its own nftables rules (pyc_core, rust/core/src/net/).

- `store.py`: networks in pyc.db, endpoints as files, addresses (IPAM), what dead holders left.
- `ports.py`: `-p` and `-P`, the host ports bound (held) for a container's life.
- `etc.py`: the container's /etc/hosts and /etc/resolv.conf, as docker writes them.
- `dns.py`: the resolver of a user-defined network (pyc-dns at its gateway) and its names.
- `attach.py`: one container start's network: set up before, torn down after, on every path.

No daemon: the pyc process or pyc-monitor that holds a container holds its network too (its
veths go with its network namespace, its ports with its holder); what a kill -9 leaves is
collected by the next pyc command that touches the network (`NetworkStore.collect`)."""

import os

DEFAULT_NETWORK = "bridge"
PREDEFINED = ("bridge", "host", "none")


def default_network() -> str:
    """The network of a container run without --network: `bridge`, as docker's; the test suite,
    benches and setup.sh's demo set PYC_DEFAULT_NETWORK=none so that they leave this machine's
    network alone."""
    return os.environ.get("PYC_DEFAULT_NETWORK") or DEFAULT_NETWORK


def run_dir() -> str:
    """What dies with a reboot: locks, resolver state ($PYC_RUN, default /run/pyc)."""
    return os.environ.get("PYC_RUN") or "/run/pyc"
