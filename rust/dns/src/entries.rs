//! The names the resolver answers: one file per container in its entries directory, written by
//! pyc (pyc/network/dns.py) while the container's holder lives:
//!
//! ```text
//! holder PID START      the pyc or pyc-monitor holding the container, its start time
//! ip 10.91.0.2
//! name web              container name, network aliases, short id: one line each
//! upstream 9.9.9.9      where its other questions go (--dns); none: the resolver's own
//! ```
//!
//! A holder that ends takes its entry with it: the resolver watches each holder through a pidfd
//! and removes the file, so a kill -9 does not leave a name behind.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

pub struct Entry {
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
    pub upstreams: Vec<Ipv4Addr>,
    pub holder: OwnedFd,
}

/// A process's start time (/proc/PID/stat field 22): tells it from one that reused its pid.
pub fn start_time(pid: i32) -> Option<String> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let pos = stat.iter().rposition(|&b| b == b')')?;
    let fields: Vec<&[u8]> = stat[pos + 1..].split(|&b| b == b' ').filter(|f| !f.is_empty()).collect();
    if matches!(fields.first(), Some(&b"Z") | Some(&b"X")) {
        return None;
    }
    fields.get(19).map(|f| String::from_utf8_lossy(f).into_owned())
}

fn pidfd(pid: i32) -> Option<OwnedFd> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn parse(file: &Path) -> Option<Entry> {
    let text = std::fs::read_to_string(file).ok()?;
    let (mut holder, mut ip, mut names, mut upstreams) = (None, None, Vec::new(), Vec::new());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("holder"), Some(pid)) => holder = Some((pid.parse::<i32>().ok()?, words.next().unwrap_or("").to_string())),
            (Some("ip"), Some(v)) => ip = v.parse().ok(),
            (Some("name"), Some(v)) => names.push(v.to_ascii_lowercase()),
            (Some("upstream"), Some(v)) => upstreams.extend(v.parse::<Ipv4Addr>().ok()),
            _ => {}
        }
    }
    let (pid, start) = holder?;
    // The pidfd first, then the start time: a pidfd on a reused pid would fail this check.
    let fd = pidfd(pid)?;
    if start_time(pid)? != start {
        return None;
    }
    Some(Entry { ip: ip?, names, upstreams, holder: fd })
}

/// Every entry of `dir` whose holder lives; the files of dead holders are removed.
pub fn load(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(list) = std::fs::read_dir(dir) else { return out };
    for f in list.flatten() {
        let path = f.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".tmp")) {
            continue;
        }
        match parse(&path) {
            Some(e) => out.push(e),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    out
}

/// name -> addresses, address -> first name.
pub struct Names {
    pub by_name: HashMap<String, Vec<Ipv4Addr>>,
    pub by_ip: HashMap<Ipv4Addr, String>,
    pub upstreams: HashMap<Ipv4Addr, Vec<Ipv4Addr>>,
}

impl Names {
    pub fn of(entries: &[Entry]) -> Names {
        let mut n = Names { by_name: HashMap::new(), by_ip: HashMap::new(), upstreams: HashMap::new() };
        for e in entries {
            for name in &e.names {
                n.by_name.entry(name.clone()).or_default().push(e.ip);
            }
            if let Some(first) = e.names.first() {
                n.by_ip.insert(e.ip, first.clone());
            }
            if !e.upstreams.is_empty() {
                n.upstreams.insert(e.ip, e.upstreams.clone());
            }
        }
        n
    }
}
