//! Route netlink (links, addresses, routes) through netlink-packet-route on a plain, blocking
//! netlink socket: one request, its ACK, in a few microseconds; no `ip`, no async runtime.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use netlink_packet_core::{DefaultNla, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, LinkProtoInfoBridge};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

use crate::error::{Error, Result};

/// linux/if_link.h: a bridge port's hairpin mode, in its IFLA_PROTINFO.
const IFLA_BRPORT_MODE: u16 = 4;

pub struct Rtnl {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// A veth pair's container end: its name, MAC and the pid whose network namespace gets it.
pub struct Peer<'a> {
    pub name: &'a str,
    pub mac: [u8; 6],
    pub netns_pid: u32,
}

impl Rtnl {
    /// A socket in the caller's network namespace (the thread's).
    pub fn open() -> Result<Rtnl> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| io_sys("netlink socket", e))?;
        socket.bind_auto().map_err(|e| io_sys("netlink bind", e))?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(|e| io_sys("netlink connect", e))?;
        // close-on-exec: never inherited by a container or a program pyc starts
        unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Rtnl { socket, seq: 0, buf: vec![0; 16384] })
    }

    /// A socket in the network namespace of `pid`, made on a short-lived thread that entered
    /// it: the caller's own threads never change namespace.
    pub fn open_in(pid: i32) -> Result<Rtnl> {
        let path = format!("/proc/{pid}/ns/net");
        let ns = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| Error::sys("enter the container's network namespace", e))?;
                Rtnl::open()
            })
            .join()
            .map_err(|_| Error::Internal("netlink thread panicked".into()))?
        })
    }

    /// Send `msg`, wait for its ACK; the kernel's errno as an Error naming `what`.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &dyn Fn() -> String) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let len = packet.buffer_len();
        if len > self.buf.len() {
            return Err(Error::Internal(format!("netlink message of {len} bytes")));
        }
        packet.serialize(&mut self.buf[..len]);
        self.socket.send(&self.buf[..len], 0).map_err(|e| io_sys(&what(), e))?;
        let mut replies = Vec::new();
        loop {
            let n = self.socket.recv(&mut &mut self.buf[..], 0).map_err(|e| io_sys(&what(), e))?;
            let mut off = 0;
            while off < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| Error::Internal(format!("{}: netlink reply: {e}", what())))?;
                let step = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    match reply.payload {
                        NetlinkPayload::Error(e) => match e.code {
                            Some(code) => return Err(Error::sys(what(), Errno::from_raw(-code.get()))),
                            None => return Ok(replies),
                        },
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::InnerMessage(m) => replies.push(m),
                        _ => {}
                    }
                }
                if step == 0 {
                    break;
                }
                off += step.next_multiple_of(4);
            }
        }
    }

    /// Send `msgs` in one write (the kernel runs them in turn), then read their ACKs; the first
    /// error names `what`.
    fn send_all(&mut self, msgs: Vec<RouteNetlinkMessage>, what: &str) -> Result<()> {
        let mut len = 0;
        let first = self.seq + 1;
        for msg in msgs {
            self.seq += 1;
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
            header.sequence_number = self.seq;
            let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
            packet.finalize();
            let n = packet.buffer_len();
            if len + n > self.buf.len() {
                return Err(Error::Internal(format!("netlink messages of {} bytes", len + n)));
            }
            packet.serialize(&mut self.buf[len..len + n]);
            len += n.next_multiple_of(4);
        }
        self.socket.send(&self.buf[..len], 0).map_err(|e| io_sys(what, e))?;
        let mut pending = self.seq + 1 - first;
        let mut failed = None;
        while pending > 0 {
            let n = self.socket.recv(&mut &mut self.buf[..], 0).map_err(|e| io_sys(what, e))?;
            let mut off = 0;
            while off < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..n])
                    .map_err(|e| Error::Internal(format!("{what}: netlink reply: {e}")))?;
                let step = reply.header.length as usize;
                if (first..=self.seq).contains(&reply.header.sequence_number) {
                    if let NetlinkPayload::Error(e) = reply.payload {
                        pending -= 1;
                        if let Some(code) = e.code {
                            failed = failed.or(Some(Errno::from_raw(-code.get())));
                        }
                    }
                }
                if step == 0 {
                    break;
                }
                off += step.next_multiple_of(4);
            }
        }
        match failed {
            Some(errno) => Err(Error::sys(what, errno)),
            None => Ok(()),
        }
    }

    /// The index of the link named `name`, None if there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0, &|| format!("find link {name}")) {
            Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })),
            Err(Error::Sys { errno: Errno::ENODEV, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A bridge, up, with its own fixed MAC (a bridge otherwise takes its ports' lowest, which
    /// changes under its containers' ARP caches as they come and go).
    pub fn add_bridge(&mut self, name: &str, mac: [u8; 6]) -> Result<u32> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
        match self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL, &|| format!("create bridge {name}")) {
            Ok(_) | Err(Error::Sys { errno: Errno::EEXIST, .. }) => {}
            Err(e) => return Err(e),
        }
        self.link_index(name)?.ok_or_else(|| Error::sys(format!("create bridge {name}"), Errno::ENODEV))
    }

    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0, &|| format!("delete link {name}")) {
            Ok(_) | Err(Error::Sys { errno: Errno::ENODEV, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Set `addr/prefix` on the link `index` (replacing it if it is there already).
    pub fn set_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        self.send_all(vec![address(index, addr, prefix)], &format!("set address {addr}/{prefix}"))
    }

    /// Configure the container's links, in one write: each up with its address, then the
    /// default route (the gateway is reachable once the addresses are set).
    pub fn configure(&mut self, links: &[(u32, Ipv4Addr, u8)], gateway: Option<Ipv4Addr>) -> Result<()> {
        let mut msgs = Vec::new();
        for &(index, addr, prefix) in links {
            let mut up = LinkMessage::default();
            up.header.index = index;
            up.header.flags = LinkFlags::Up;
            up.header.change_mask = LinkFlags::Up;
            msgs.push(RouteNetlinkMessage::SetLink(up));
            msgs.push(address(index, addr, prefix));
        }
        if let Some(gw) = gateway {
            let mut route = RouteMessage::default();
            route.header.address_family = AddressFamily::Inet;
            route.header.table = RouteHeader::RT_TABLE_MAIN;
            route.header.protocol = RouteProtocol::Static;
            route.header.scope = RouteScope::Universe;
            route.header.kind = RouteType::Unicast;
            route.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
            msgs.push(RouteNetlinkMessage::NewRoute(route));
        }
        self.send_all(msgs, "configure the container's interfaces")
    }

    /// A veth pair: `host` on the bridge `master`, up; its peer made directly in the network
    /// namespace of `peer.netns_pid`, with its name and MAC. Made in one step, the pair
    /// lives exactly as long as that namespace: when the container's last process ends the
    /// kernel removes both ends, whatever happened to pyc.
    pub fn add_veth(&mut self, host: &str, master: u32, peer: &Peer<'_>) -> Result<()> {
        // The peer cannot be made up yet (veth_open: no peer until both exist): `set_up` later.
        let mut inner = LinkMessage::default();
        inner.attributes.push(LinkAttribute::IfName(peer.name.to_string()));
        inner.attributes.push(LinkAttribute::Address(peer.mac.to_vec()));
        inner.attributes.push(LinkAttribute::NetNsPid(peer.netns_pid));
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(host.to_string()));
        msg.attributes.push(LinkAttribute::Controller(master));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth), LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(inner)))]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL, &|| format!("create veth {host}")).map(drop)
    }

    /// Hairpin mode on the bridge port `host`: for a container reaching its own published port.
    /// Where br_netfilter is loaded, the DNAT happens inside the bridge and the frame goes back
    /// out of the port it came in by.
    pub fn set_hairpin(&mut self, host: &str) -> Result<()> {
        let index = if_index(host).ok_or_else(|| Error::sys(format!("set hairpin mode on {host}"), Errno::ENODEV))?;
        let mut port = LinkMessage::default();
        port.header.interface_family = AddressFamily::Bridge;
        port.header.index = index;
        port.attributes.push(LinkAttribute::ProtoInfoBridge(vec![LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![1]))]));
        self.request(RouteNetlinkMessage::SetLink(port), 0, &|| format!("set hairpin mode on {host}")).map(drop)
    }
}

fn address(index: u32, addr: Ipv4Addr, prefix: u8) -> RouteNetlinkMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = prefix;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr.into()));
    msg.attributes.push(AddressAttribute::Address(addr.into()));
    let brd = u32::from(addr) | (u32::MAX.checked_shr(prefix as u32).unwrap_or(0));
    msg.attributes.push(AddressAttribute::Broadcast(Ipv4Addr::from(brd)));
    RouteNetlinkMessage::NewAddress(msg)
}

/// The index of a link of this network namespace by its name: an ioctl, which takes no lock
/// (a netlink request waits for the rtnl lock, which tearing down a namespace holds a while).
pub fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

fn io_sys(what: &str, e: std::io::Error) -> Error {
    Error::sys(what, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}
