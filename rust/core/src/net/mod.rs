//! Container networking on the host: bridges, veth pairs, addresses and routes (route netlink,
//! rtnl.rs), pyc's nftables table (nft.rs). IPv4 only. Python decides (networks, addresses,
//! ports: pyc/network/); this carries it out.
//!
//! What the kernel keeps lives as long as what it belongs to: a container's veth pair is made
//! with its end already in the container's network namespace and goes with it; a network's
//! bridge and rules go with `pyc network rm`; a published port's map element is removed by
//! its holder at the container's end (or, after a kill -9, by the next pyc command that finds
//! the port free: `unpublish_if_free`).

pub mod nft;
pub mod rtnl;

use std::net::Ipv4Addr;

use serde::Deserialize;

use crate::error::{Error, Result};
pub use nft::{NetworkRules, PortKey};
use rtnl::{Peer, Rtnl};

/// One interface of a container: a veth pair whose host end is on `bridge`.
#[derive(Debug, Deserialize, Clone)]
pub struct Interface {
    pub bridge: String,
    /// Its name inside: eth0, eth1, ...
    pub name: String,
    pub address: String,
    pub prefix: u8,
    /// The default route; None for an --internal network (no way out) or a second network.
    #[serde(default)]
    pub gateway: Option<String>,
    pub mac: String,
    /// Hairpin mode on its bridge port: the container publishes ports it may reach itself.
    #[serde(default)]
    pub hairpin: bool,
}

/// A published port: `host_ip` None for every address of the host.
#[derive(Debug, Deserialize, Clone)]
pub struct Port {
    pub proto: String,
    #[serde(default)]
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_ip: String,
    pub container_port: u16,
}

/// A container's network, as the run config carries it.
#[derive(Debug, Deserialize, Clone, Default)]
pub struct NetPlan {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ports: Vec<Port>,
}

/// A network's host side.
#[derive(Debug, Deserialize)]
pub struct Network {
    pub bridge: String,
    pub subnet: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    #[serde(default)]
    pub internal: bool,
}

pub fn ipv4(what: &str, s: &str) -> Result<Ipv4Addr> {
    s.parse().map_err(|_| Error::InvalidConfig(format!("{what} {s:?} is not an IPv4 address")))
}

pub fn mac(s: &str) -> Result<[u8; 6]> {
    let bytes: Vec<u8> = s.split(':').filter_map(|h| u8::from_str_radix(h, 16).ok()).collect();
    bytes.try_into().map_err(|_| Error::InvalidConfig(format!("MAC address {s:?} is not six hex bytes")))
}

fn sysctl(path: &str, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| Error::io("write", path, e))
}

/// The network's bridge (with the gateway's address), its nftables rules, and what routing
/// through it needs: made anew where missing, as after a reboot. Idempotent.
pub fn ensure_network(n: &Network) -> Result<()> {
    let subnet = ipv4("subnet", &n.subnet)?;
    let gateway = ipv4("gateway", &n.gateway)?;
    nft::with(|nft| nft.set_network(&NetworkRules { bridge: &n.bridge, subnet, prefix: n.prefix, internal: n.internal }))?;
    let mut rt = Rtnl::open()?;
    let index = rt.add_bridge(&n.bridge, mac(&n.mac)?)?;
    rt.set_address(index, gateway, n.prefix)?;
    // Published ports on the host's loopback: DNAT from 127.0.0.1 needs loopback-sourced
    // packets routed out of the bridge (masqueraded on their way: nft.rs), as docker does.
    sysctl(&format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge), "1")?;
    if !n.internal {
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
    }
    Ok(())
}

/// Whether the bridge of a network is there (a reboot removes it; `ensure_network` remakes it).
pub fn bridge_exists(bridge: &str) -> bool {
    rtnl::if_index(bridge).is_some()
}

/// The network's bridge and rules, gone.
pub fn remove_network(bridge: &str) -> Result<()> {
    nft::with(|nft| nft.remove_network(bridge))?;
    Rtnl::open()?.delete_link(bridge)
}

/// Give the process `pid` (a container's pid 1, or any process of it) `ifaces`: each a veth
/// pair, its end in the process's network namespace with its address, and the default route.
pub fn attach(pid: i32, ifaces: &[Interface]) -> Result<()> {
    if ifaces.is_empty() {
        return Ok(());
    }
    let mut host = Rtnl::open()?;
    for i in ifaces {
        let master = rtnl::if_index(&i.bridge).ok_or_else(|| Error::sys(format!("attach to {}: no such bridge", i.bridge), nix::errno::Errno::ENODEV))?;
        // A name of its own at every start: the last start's pair may not be gone yet (the kernel
        // removes a network namespace's links a moment after its last process).
        let name = veth_name()?;
        host.add_veth(&name, master, &Peer { name: &i.name, mac: mac(&i.mac)?, netns_pid: pid as u32 })?;
        if i.hairpin {
            host.set_hairpin(&name)?;
        }
    }
    let mut inside = Rtnl::open_in(pid)?;
    let mut links = Vec::with_capacity(ifaces.len());
    for i in ifaces {
        let index = inside.link_index(&i.name)?.ok_or_else(|| Error::sys(format!("find {} in the container", i.name), nix::errno::Errno::ENODEV))?;
        links.push((index, ipv4("address", &i.address)?, i.prefix));
    }
    let gateway = ifaces.iter().find_map(|i| i.gateway.as_deref()).map(|gw| ipv4("gateway", gw)).transpose()?;
    inside.configure(&links, gateway)
}

/// `veth` and 11 random hex digits (an interface name has at most 15 characters).
fn veth_name() -> Result<String> {
    let mut bytes = [0u8; 6];
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(Error::sys("getrandom", nix::errno::Errno::last()));
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("veth{}", &hex[..11]))
}

/// Remove the interface `name` from the network namespace of `pid` (its veth pair goes too).
pub fn detach(pid: i32, name: &str) -> Result<()> {
    Rtnl::open_in(pid)?.delete_link(name)
}

fn port_keys(ports: &[Port]) -> Result<Vec<PortKey>> {
    ports
        .iter()
        .map(|p| {
            let proto = match p.proto.as_str() {
                "tcp" => libc::IPPROTO_TCP as u8,
                "udp" => libc::IPPROTO_UDP as u8,
                other => return Err(Error::InvalidConfig(format!("protocol {other:?} is not tcp or udp"))),
            };
            let host_ip = p.host_ip.as_deref().filter(|ip| !ip.is_empty() && *ip != "0.0.0.0").map(|ip| ipv4("host address", ip)).transpose()?;
            Ok(PortKey { proto, host_ip, host_port: p.host_port, container_ip: ipv4("container address", &p.container_ip)?, container_port: p.container_port })
        })
        .collect()
}

/// DNAT the published `ports` to their container. The caller holds each host port bound.
pub fn publish(ports: &[Port]) -> Result<()> {
    let keys = port_keys(ports)?;
    nft::with(|nft| nft.publish(&keys))
}

/// Undo `publish`; a port not published is no error.
pub fn unpublish(ports: &[Port]) -> Result<()> {
    let keys = port_keys(ports)?;
    nft::with(|nft| nft.unpublish(&keys))
}
