//! nftables through netlink: pyc's one table (`ip pyc`), written in batches (one transaction
//! each, a few microseconds) on a netlink socket, never by running `nft`.
//!
//! No Rust crate writes nf_tables messages without GPL code or libnftnl, so the few messages
//! pyc needs are encoded here: nlmsghdr + nfgenmsg + attributes, as in linux/netfilter/nf_tables.h.
//!
//! The table:
//! - maps `ports` (l4proto . port -> ip . port) and `addr_ports` (address . l4proto . port ->
//!   ip . port): published ports, an element per port, added and removed by key;
//! - chain `dnat`, jumped to from the nat hooks prerouting and output for packets to a local
//!   address, DNATs through those maps (the host's own loopback too: see `route_localnet`);
//! - chain `postrouting` masquerades loopback-sourced packets leaving through a pyc bridge, and
//!   per network (rules tagged with a comment) its outbound traffic and its hairpin DNAT;
//! - chain `forward`: per network, what may enter its bridge from elsewhere (replies and
//!   published ports), `--internal` networks sealed both ways;
//! - chain `raw` drops packets from pyc bridges to 127.0.0.0/8 (route_localnet would route them).

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use netlink_sys::{Socket, SocketAddr};
use nix::errno::Errno;

use crate::error::{Error, Result};

pub const TABLE: &str = "pyc";
/// Every pyc bridge's name starts so (`pyc0`, `pyc-<id>`); veths do not.
pub const BRIDGE_PREFIX: &str = "pyc";

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFPROTO_IPV4: u8 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;

// nf_tables message types
const NEWTABLE: u16 = 0;
const GETTABLE: u16 = 1;
const NEWCHAIN: u16 = 3;
const NEWRULE: u16 = 6;
const GETRULE: u16 = 7;
const DELRULE: u16 = 8;
const NEWSET: u16 = 9;
const NEWSETELEM: u16 = 12;
const DELSETELEM: u16 = 14;

// registers: the verdict, then 4-byte ones (NFT_REG32_00 is the first word of NFT_REG_1)
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG32_00: u32 = 8;
const REG32_01: u32 = 9;
const REG32_02: u32 = 10;

const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const CMP_EQ: u32 = 0;
const CMP_NEQ: u32 = 1;
const META_IIFNAME: u32 = 6;
const META_OIFNAME: u32 = 7;
const META_L4PROTO: u32 = 16;
const PAYLOAD_NETWORK: u32 = 1;
const PAYLOAD_TRANSPORT: u32 = 2;
const CT_STATE: u32 = 0;
const CT_STATUS: u32 = 2;
const IPS_DST_NAT: u32 = 1 << 5;
const CT_ESTABLISHED_RELATED: u32 = (1 << 1) | (1 << 2);
const RTN_LOCAL: u32 = 2;

// nft's data type numbers, for `nft list` to show the maps' elements readably
const TYPE_IPADDR: u32 = 7;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const fn concat(a: u32, b: u32) -> u32 {
    (a << 6) | b
}

/// Attributes of one netlink message, encoded as they are added.
struct Attrs(Vec<u8>);

impl Attrs {
    fn new() -> Attrs {
        Attrs(Vec::with_capacity(256))
    }

    fn bytes(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }

    fn be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    fn str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.bytes(ty, &data)
    }

    fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Attrs)) -> &mut Self {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(self);
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// NFTA_DATA_VALUE inside attribute `ty`.
    fn value(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        self.nest(ty, |a| {
            a.bytes(1, data);
        })
    }
}

/// One expression of a rule.
enum Expr<'a> {
    Meta(u32, u32),
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// reg1 = reg1 & mask
    And(Vec<u8>),
    /// compare reg1
    Cmp(u32, Vec<u8>),
    Lookup {
        set: &'a str,
        sreg: u32,
        dreg: u32,
    },
    /// dnat to the address in reg1 and the port in the word after it
    Dnat,
    Masquerade,
    Ct(u32),
    /// fib daddr type -> reg1
    FibDaddrType,
    Verdict(i32),
    Jump(&'a str),
}

impl Expr<'_> {
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta(..) => "meta",
            Expr::Payload { .. } => "payload",
            Expr::And(_) => "bitwise",
            Expr::Cmp(..) => "cmp",
            Expr::Lookup { .. } => "lookup",
            Expr::Dnat => "nat",
            Expr::Masquerade => "masq",
            Expr::Ct(_) => "ct",
            Expr::FibDaddrType => "fib",
            Expr::Verdict(_) | Expr::Jump(_) => "immediate",
        }
    }

    /// The expression's attributes (linux/netfilter/nf_tables.h, NFTA_<NAME>_*).
    fn body(&self, a: &mut Attrs) {
        match self {
            Expr::Meta(key, dreg) => {
                a.be32(1, *dreg).be32(2, *key);
            }
            Expr::Payload { base, offset, len, dreg } => {
                a.be32(1, *dreg).be32(2, *base).be32(3, *offset).be32(4, *len);
            }
            Expr::And(mask) => {
                a.be32(1, REG_1).be32(2, REG_1).be32(3, mask.len() as u32).value(4, mask).value(5, &vec![0; mask.len()]);
            }
            Expr::Cmp(op, data) => {
                a.be32(1, REG_1).be32(2, *op).value(3, data);
            }
            Expr::Lookup { set, sreg, dreg } => {
                a.str(1, set).be32(2, *sreg).be32(3, *dreg);
            }
            // dnat, ipv4, the address from reg 1, the port from the word after it
            Expr::Dnat => {
                a.be32(1, 1).be32(2, NFPROTO_IPV4 as u32).be32(3, REG_1).be32(5, REG32_01);
            }
            Expr::Masquerade => {}
            Expr::Ct(key) => {
                a.be32(1, REG_1).be32(2, *key);
            }
            // result: the address type (3), of the destination address (flag 2)
            Expr::FibDaddrType => {
                a.be32(1, REG_1).be32(2, 3).be32(3, 2);
            }
            Expr::Verdict(code) => verdict(a, *code, None),
            Expr::Jump(chain) => verdict(a, NFT_JUMP, Some(chain)),
        }
    }

    fn encode(&self, a: &mut Attrs) {
        a.nest(1, |e| {
            e.str(1, self.name());
            e.nest(2, |d| self.body(d));
        });
    }
}

fn verdict(a: &mut Attrs, code: i32, chain: Option<&str>) {
    a.be32(1, REG_VERDICT).nest(2, |d| {
        d.nest(2, |v| {
            v.be32(1, code as u32);
            if let Some(c) = chain {
                v.str(2, c);
            }
        });
    });
}

/// An interface name as the kernel keeps it (16 bytes, NUL-padded): for an exact match.
fn ifname(name: &str) -> Vec<u8> {
    let mut b = name.as_bytes().to_vec();
    b.resize(16, 0);
    b
}

fn subnet_match(offset: u32, net: Ipv4Addr, prefix: u8) -> [Expr<'static>; 3] {
    let mask = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
    [
        Expr::Payload { base: PAYLOAD_NETWORK, offset, len: 4, dreg: REG_1 },
        Expr::And(mask.to_be_bytes().to_vec()),
        Expr::Cmp(CMP_EQ, (u32::from(net) & mask).to_be_bytes().to_vec()),
    ]
}

fn iface(key: u32, op: u32, name: &[u8]) -> [Expr<'static>; 2] {
    [Expr::Meta(key, REG_1), Expr::Cmp(op, name.to_vec())]
}

fn bits_set(ct_key: u32, bits: u32) -> [Expr<'static>; 3] {
    [Expr::Ct(ct_key), Expr::And(bits.to_ne_bytes().to_vec()), Expr::Cmp(CMP_NEQ, 0u32.to_ne_bytes().to_vec())]
}

/// A published port, as the maps key it.
pub struct PortKey {
    pub proto: u8,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

impl PortKey {
    fn set(&self) -> &'static str {
        if self.host_ip.is_some() {
            "addr_ports"
        } else {
            "ports"
        }
    }

    fn key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(12);
        if let Some(ip) = self.host_ip {
            k.extend_from_slice(&ip.octets());
        }
        k.extend_from_slice(&[self.proto, 0, 0, 0]);
        k.extend_from_slice(&self.host_port.to_be_bytes());
        k.extend_from_slice(&[0, 0]);
        k
    }

    fn data(&self) -> Vec<u8> {
        let mut d = self.container_ip.octets().to_vec();
        d.extend_from_slice(&self.container_port.to_be_bytes());
        d.extend_from_slice(&[0, 0]);
        d
    }
}

/// What one network's rules depend on.
pub struct NetworkRules<'a> {
    pub bridge: &'a str,
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub internal: bool,
}

pub struct Nft {
    socket: Socket,
    seq: u32,
    /// The network namespace the socket speaks to (its inode): a process that moved to
    /// another one gets a new socket.
    netns: u64,
}

/// Run `f` on this process's nftables socket, opened on first use and then kept.
///
/// Why kept: closing a NETLINK_NETFILTER socket makes the kernel finish the destruction of the
/// last transactions first, which waits for an RCU grace period (`nft_rcv_nl_event`, some
/// 10 ms here). Kept open, it is closed at exit, usually after that has passed (a start goes
/// on for a while after its change; a `run --rm -p` that removes its ports just before it
/// exits still waits).
pub fn with<T>(f: impl FnOnce(&mut Nft) -> Result<T>) -> Result<T> {
    static KEPT: std::sync::Mutex<Option<Nft>> = std::sync::Mutex::new(None);
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    let netns = netns_inode();
    if kept.as_ref().is_none_or(|n| n.netns != netns) {
        *kept = Some(Nft::open()?);
    }
    let result = f(kept.as_mut().expect("opened above"));
    if result.is_err() {
        // After an error the socket may hold answers nobody read: start afresh next time.
        *kept = None;
    }
    result
}

fn netns_inode() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").map_or(0, |m| m.ino())
}

/// One message of a batch.
struct Msg {
    ty: u16,
    flags: u16,
    attrs: Attrs,
}

impl Nft {
    pub fn open() -> Result<Nft> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(|e| io_sys("nftables socket", e))?;
        socket.bind_auto().map_err(|e| io_sys("nftables bind", e))?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(|e| io_sys("nftables connect", e))?;
        unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(Nft { socket, seq: (std::process::id() << 12) ^ 1, netns: netns_inode() })
    }

    fn header(&mut self, buf: &mut Vec<u8>, ty: u16, flags: u16, res_id: u16, attrs: &[u8]) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        let len = 16 + 4 + attrs.len();
        buf.extend_from_slice(&(len as u32).to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&self.seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&[NFPROTO_IPV4, 0]);
        buf.extend_from_slice(&res_id.to_be_bytes());
        buf.extend_from_slice(attrs);
        self.seq
    }

    /// Send `msgs` as one transaction: all of them or, on the first error, none.
    fn batch(&mut self, msgs: Vec<Msg>, what: &str) -> Result<()> {
        if msgs.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(4096);
        self.header(&mut buf, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, NFNL_SUBSYS_NFTABLES, &[]);
        for m in &msgs {
            self.header(&mut buf, (NFNL_SUBSYS_NFTABLES << 8) | m.ty, NLM_F_REQUEST | m.flags, 0, &m.attrs.0);
        }
        self.header(&mut buf, NFNL_MSG_BATCH_END, NLM_F_REQUEST, NFNL_SUBSYS_NFTABLES, &[]);
        self.socket.send(&buf, 0).map_err(|e| io_sys(what, e))?;
        // The kernel runs the batch inside send(): its errors, if any, are queued already.
        let mut first: Option<Errno> = None;
        let mut rbuf = vec![0u8; 16384];
        loop {
            match self.socket.recv(&mut &mut rbuf[..], libc::MSG_DONTWAIT) {
                Ok(n) => {
                    for (ty, payload) in messages(&rbuf[..n]) {
                        if ty == NLMSG_ERROR && payload.len() >= 4 {
                            let code = i32::from_ne_bytes(payload[..4].try_into().unwrap());
                            if code != 0 && first.is_none() {
                                first = Some(Errno::from_raw(-code));
                            }
                        }
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => break,
                Err(e) => return Err(io_sys(what, e)),
            }
        }
        match first {
            Some(errno) => Err(Error::sys(what, errno)),
            None => Ok(()),
        }
    }

    /// A request outside a batch (a get or a dump): its replies' payloads (after nfgenmsg).
    fn query(&mut self, ty: u16, flags: u16, attrs: Attrs, what: &str) -> Result<Vec<Vec<u8>>> {
        let mut buf = Vec::new();
        let seq = self.header(&mut buf, (NFNL_SUBSYS_NFTABLES << 8) | ty, NLM_F_REQUEST | NLM_F_ACK | flags, 0, &attrs.0);
        self.socket.send(&buf, 0).map_err(|e| io_sys(what, e))?;
        let mut out = Vec::new();
        let mut rbuf = vec![0u8; 65536];
        loop {
            let n = self.socket.recv(&mut &mut rbuf[..], 0).map_err(|e| io_sys(what, e))?;
            for (ty, payload, s) in messages_seq(&rbuf[..n]) {
                if s != seq {
                    continue;
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(payload[..4].try_into().unwrap());
                        if code != 0 {
                            return Err(Error::sys(what, Errno::from_raw(-code)));
                        }
                        if flags & NLM_F_DUMP == 0 {
                            return Ok(out);
                        }
                    }
                    _ => out.push(payload.get(4..).unwrap_or_default().to_vec()),
                }
            }
        }
    }

    fn table_exists(&mut self) -> Result<bool> {
        let mut a = Attrs::new();
        a.str(1, TABLE);
        match self.query(GETTABLE, 0, a, "look up nftables table pyc") {
            Ok(_) => Ok(true),
            Err(Error::Sys { errno: Errno::ENOENT, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The table, its chains, maps and global rules, made once (EXCL: a second pyc that raced
    /// this one finds it made).
    pub fn ensure_table(&mut self) -> Result<()> {
        if self.table_exists()? {
            return Ok(());
        }
        let mut msgs = vec![msg(NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, |a| {
            a.str(1, TABLE);
        })];
        for (name, hook) in [
            ("dnat", None),
            ("prerouting", Some(("nat", 0, -100))),
            ("output", Some(("nat", 3, -100))),
            ("postrouting", Some(("nat", 4, 100))),
            ("forward", Some(("filter", 2, 0))),
            ("raw", Some(("filter", 0, -300))),
        ] {
            msgs.push(msg(NEWCHAIN, NLM_F_CREATE, |a| {
                a.str(1, TABLE).str(3, name);
                if let Some((kind, num, prio)) = hook {
                    a.nest(4, |h| {
                        h.be32(1, num).be32(2, prio as u32);
                    });
                    a.be32(5, NF_ACCEPT as u32).str(7, kind);
                }
            }));
        }
        for (name, key_len, key_type) in [
            ("ports", 8, concat(TYPE_INET_PROTOCOL, TYPE_INET_SERVICE)),
            ("addr_ports", 12, concat(concat(TYPE_IPADDR, TYPE_INET_PROTOCOL), TYPE_INET_SERVICE)),
        ] {
            msgs.push(msg(NEWSET, NLM_F_CREATE, |a| {
                a.str(1, TABLE).str(2, name).be32(3, 8 /* NFT_SET_MAP */).be32(4, key_type).be32(5, key_len);
                a.be32(6, concat(TYPE_IPADDR, TYPE_INET_SERVICE)).be32(7, 8).be32(10, key_len);
            }));
        }
        let th_dport = |dreg| Expr::Payload { base: PAYLOAD_TRANSPORT, offset: 2, len: 2, dreg };
        let loopback = subnet_match(12, Ipv4Addr::new(127, 0, 0, 0), 8);
        let to_loopback = subnet_match(16, Ipv4Addr::new(127, 0, 0, 0), 8);
        let prefix = BRIDGE_PREFIX.as_bytes();
        let rules: Vec<(&str, Vec<Expr>)> = vec![
            (
                "dnat",
                vec![
                    Expr::Payload { base: PAYLOAD_NETWORK, offset: 16, len: 4, dreg: REG32_00 },
                    Expr::Meta(META_L4PROTO, REG32_01),
                    th_dport(REG32_02),
                    Expr::Lookup { set: "addr_ports", sreg: REG32_00, dreg: REG_1 },
                    Expr::Dnat,
                ],
            ),
            ("dnat", vec![Expr::Meta(META_L4PROTO, REG32_00), th_dport(REG32_01), Expr::Lookup { set: "ports", sreg: REG32_00, dreg: REG_1 }, Expr::Dnat]),
            ("prerouting", vec![Expr::FibDaddrType, Expr::Cmp(CMP_EQ, RTN_LOCAL.to_ne_bytes().to_vec()), Expr::Jump("dnat")]),
            ("output", vec![Expr::FibDaddrType, Expr::Cmp(CMP_EQ, RTN_LOCAL.to_ne_bytes().to_vec()), Expr::Jump("dnat")]),
            ("postrouting", iface(META_OIFNAME, CMP_EQ, prefix).into_iter().chain(loopback).chain([Expr::Masquerade]).collect()),
            ("raw", iface(META_IIFNAME, CMP_EQ, prefix).into_iter().chain(to_loopback).chain([Expr::Verdict(NF_DROP)]).collect()),
        ];
        for (chain, exprs) in &rules {
            msgs.push(rule_msg(chain, exprs, None));
        }
        match self.batch(msgs, "create nftables table pyc") {
            Err(Error::Sys { errno: Errno::EEXIST, .. }) => Ok(()),
            other => other,
        }
    }

    /// The rules of one network (tagged with its bridge's name), made anew: whatever an earlier
    /// try left of them is removed in the same transaction.
    pub fn set_network(&mut self, n: &NetworkRules<'_>) -> Result<()> {
        self.ensure_table()?;
        let tag = tag_of(n.bridge);
        let mut msgs = self.delete_tagged(&tag)?;
        let br = ifname(n.bridge);
        let masq = n.prefix;
        let mut rules: Vec<(&str, Vec<Expr>)> = Vec::new();
        if n.internal {
            rules.push((
                "forward",
                iface(META_IIFNAME, CMP_EQ, &br).into_iter().chain(iface(META_OIFNAME, CMP_NEQ, &br)).chain([Expr::Verdict(NF_DROP)]).collect(),
            ));
        } else {
            let outbound = subnet_match(12, n.subnet, masq).into_iter().chain(iface(META_OIFNAME, CMP_NEQ, &br)).chain([Expr::Masquerade]).collect();
            rules.push(("postrouting", outbound));
            let hairpin = iface(META_OIFNAME, CMP_EQ, &br)
                .into_iter()
                .chain(bits_set(CT_STATUS, IPS_DST_NAT))
                .chain(subnet_match(12, n.subnet, masq))
                .chain([Expr::Masquerade])
                .collect();
            rules.push(("postrouting", hairpin));
            rules.push((
                "forward",
                iface(META_OIFNAME, CMP_EQ, &br).into_iter().chain(bits_set(CT_STATE, CT_ESTABLISHED_RELATED)).chain([Expr::Verdict(NF_ACCEPT)]).collect(),
            ));
            rules.push((
                "forward",
                iface(META_OIFNAME, CMP_EQ, &br).into_iter().chain(bits_set(CT_STATUS, IPS_DST_NAT)).chain([Expr::Verdict(NF_ACCEPT)]).collect(),
            ));
        }
        rules
            .push(("forward", iface(META_OIFNAME, CMP_EQ, &br).into_iter().chain(iface(META_IIFNAME, CMP_NEQ, &br)).chain([Expr::Verdict(NF_DROP)]).collect()));
        for (chain, exprs) in &rules {
            msgs.push(rule_msg(chain, exprs, Some(&tag)));
        }
        self.batch(msgs, &format!("set the nftables rules of {}", n.bridge))
    }

    /// Remove the rules of the network whose bridge is `bridge`.
    pub fn remove_network(&mut self, bridge: &str) -> Result<()> {
        if !self.table_exists()? {
            return Ok(());
        }
        let msgs = self.delete_tagged(&tag_of(bridge))?;
        self.batch(msgs, &format!("remove the nftables rules of {bridge}"))
    }

    /// Delete messages for the rules whose comment is `tag`.
    fn delete_tagged(&mut self, tag: &[u8]) -> Result<Vec<Msg>> {
        let mut a = Attrs::new();
        a.str(1, TABLE);
        let rules = self.query(GETRULE, NLM_F_DUMP, a, "list the nftables rules of table pyc")?;
        let mut msgs = Vec::new();
        for r in rules {
            let (mut chain, mut handle, mut udata) = (None, None, None);
            for (ty, v) in attributes(&r) {
                match ty {
                    2 => chain = Some(v.strip_suffix(&[0]).unwrap_or(v).to_vec()),
                    3 if v.len() == 8 => handle = Some(u64::from_be_bytes(v.try_into().unwrap())),
                    7 => udata = Some(v.to_vec()),
                    _ => {}
                }
            }
            if let (Some(chain), Some(handle), Some(u)) = (chain, handle, udata) {
                if u == tag {
                    msgs.push(msg(DELRULE, 0, |a| {
                        a.str(1, TABLE).bytes(2, &[chain.as_slice(), &[0]].concat()).bytes(3, &handle.to_be_bytes());
                    }));
                }
            }
        }
        Ok(msgs)
    }

    /// Add the map elements of `ports`. An element that is there already for the same port is
    /// a dead container's (the caller holds the port bound: no live one has it): replaced.
    pub fn publish(&mut self, ports: &[PortKey]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        self.ensure_table()?;
        let add = |ports: &[PortKey]| ports.iter().map(|p| elem_msg(NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, p, true)).collect::<Vec<_>>();
        match self.batch(add(ports), "publish ports (nftables)") {
            Err(Error::Sys { errno: Errno::EEXIST | Errno::EBUSY, .. }) => {
                self.unpublish(ports)?;
                self.batch(add(ports), "publish ports (nftables)")
            }
            other => other,
        }
    }

    /// Remove the map elements of `ports`, those that are there.
    pub fn unpublish(&mut self, ports: &[PortKey]) -> Result<()> {
        if ports.is_empty() || !self.table_exists()? {
            return Ok(());
        }
        for p in ports {
            match self.batch(vec![elem_msg(DELSETELEM, 0, p, false)], "unpublish a port (nftables)") {
                Ok(()) | Err(Error::Sys { errno: Errno::ENOENT, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn tag_of(bridge: &str) -> Vec<u8> {
    // nft's comment encoding (NFTNL_UDATA_RULE_COMMENT), so `nft list` shows it
    let text = format!("pyc network {bridge}");
    let mut u = vec![0u8, (text.len() + 1) as u8];
    u.extend_from_slice(text.as_bytes());
    u.push(0);
    u
}

fn msg(ty: u16, flags: u16, f: impl FnOnce(&mut Attrs)) -> Msg {
    let mut attrs = Attrs::new();
    f(&mut attrs);
    Msg { ty, flags, attrs }
}

fn rule_msg(chain: &str, exprs: &[Expr<'_>], tag: Option<&[u8]>) -> Msg {
    msg(NEWRULE, NLM_F_CREATE | 0x800 /* NLM_F_APPEND */, |a| {
        a.str(1, TABLE).str(2, chain);
        a.nest(4, |list| {
            for e in exprs {
                e.encode(list);
            }
        });
        if let Some(t) = tag {
            a.bytes(7, t);
        }
    })
}

fn elem_msg(ty: u16, flags: u16, p: &PortKey, with_data: bool) -> Msg {
    msg(ty, flags, |a| {
        a.str(1, TABLE).str(2, p.set());
        a.nest(3, |list| {
            list.nest(1, |e| {
                e.value(1, &p.key());
                if with_data {
                    e.value(2, &p.data());
                }
            });
        });
    })
}

/// (type, payload) of each netlink message in `buf`.
fn messages(buf: &[u8]) -> Vec<(u16, &[u8])> {
    messages_seq(buf).into_iter().map(|(t, p, _)| (t, p)).collect()
}

fn messages_seq(buf: &[u8]) -> Vec<(u16, &[u8], u32)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
        let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap());
        out.push((ty, &buf[off + 16..off + len], seq));
        off += len.next_multiple_of(4);
    }
    out
}

/// The top-level attributes of a payload: (type without flags, value).
fn attributes(buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 4 <= buf.len() {
        let len = u16::from_ne_bytes(buf[off..off + 2].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(buf[off + 2..off + 4].try_into().unwrap()) & 0x3fff;
        if len < 4 || off + len > buf.len() {
            break;
        }
        out.push((ty, &buf[off + 4..off + len]));
        off += len.next_multiple_of(4);
    }
    out
}

fn io_sys(what: &str, e: std::io::Error) -> Error {
    Error::sys(what, Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut a = Attrs::new();
        a.str(1, "pyc").nest(4, |n| {
            n.be32(1, 7);
        });
        // "pyc\0" fits 4 bytes: 8; the nest: 4 + a be32 attribute of 8.
        assert_eq!(a.0.len(), 8 + 12);
        assert_eq!(attributes(&a.0).iter().map(|(t, v)| (*t, v.len())).collect::<Vec<_>>(), vec![(1, 4), (4, 8)]);
    }

    #[test]
    fn port_keys_are_padded_words() {
        let p = PortKey { proto: 6, host_ip: None, host_port: 8080, container_ip: Ipv4Addr::new(10, 0, 0, 2), container_port: 80 };
        assert_eq!(p.key(), vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(p.data(), vec![10, 0, 0, 2, 0, 80, 0, 0]);
        let q = PortKey { host_ip: Some(Ipv4Addr::LOCALHOST), ..p };
        assert_eq!((q.set(), q.key().len()), ("addr_ports", 12));
    }
}
