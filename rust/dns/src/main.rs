//! pyc-dns: the resolver of one user-defined network, as podman's aardvark-dns. pyc starts it
//! with the network's first container (pyc/network/dns.py); it listens on the network's gateway
//! address, port 53 (UDP), answers its containers' names (entries.rs) and forwards every other
//! question to upstream resolvers (the container's --dns, else the host's), and leaves once no
//! container is left: after its last entry's holder ended, under the network's lock, so that
//! a pyc starting a container meanwhile either finds it running or starts another.
//!
//! usage: pyc-dns --listen IP --entries DIR --lock FILE --pidfile FILE --report FD
//!                [--search DOMAIN]... [--upstream IP]...

mod entries;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use entries::{Entry, Names};

const TTL: u32 = 10;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

struct Args {
    listen: Ipv4Addr,
    entries: PathBuf,
    lock: PathBuf,
    pidfile: PathBuf,
    report: i32,
    search: Vec<String>,
    upstreams: Vec<Ipv4Addr>,
}

fn args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut listen, mut dir, mut lock, mut pidfile, mut report) = (None, None, None, None, None);
    let (mut search, mut upstreams) = (Vec::new(), Vec::new());
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().map_err(|_| format!("bad --listen {value}"))?),
            "--entries" => dir = Some(PathBuf::from(value)),
            "--lock" => lock = Some(PathBuf::from(value)),
            "--pidfile" => pidfile = Some(PathBuf::from(value)),
            "--report" => report = Some(value.parse().map_err(|_| format!("bad --report {value}"))?),
            "--search" => search.push(value.trim_end_matches('.').to_ascii_lowercase()),
            "--upstream" => upstreams.extend(value.parse::<Ipv4Addr>().ok()),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    let missing = || "usage: pyc-dns --listen IP --entries DIR --lock FILE --pidfile FILE --report FD".to_string();
    Ok(Args {
        listen: listen.ok_or_else(missing)?,
        entries: dir.ok_or_else(missing)?,
        lock: lock.ok_or_else(missing)?,
        pidfile: pidfile.ok_or_else(missing)?,
        report: report.ok_or_else(missing)?,
        search,
        upstreams,
    })
}

/// Leave pyc's session: nobody's child but init's (or a subreaper's).
fn daemonize() {
    for _ in 0..2 {
        match unsafe { libc::fork() } {
            -1 => std::process::exit(1),
            0 => {}
            _ => unsafe { libc::_exit(0) },
        }
        unsafe { libc::setsid() };
    }
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for target in 0..3 {
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pyc-dns: {e}");
            std::process::exit(2);
        }
    };
    let report = unsafe { OwnedFd::from_raw_fd(args.report) };
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    daemonize();
    let say = |msg: String| {
        let _ = nix::unistd::write(&report, msg.as_bytes());
    };
    let socket = match UdpSocket::bind(SocketAddrV4::new(args.listen, 53)) {
        Ok(s) => s,
        Err(e) => {
            say(format!("err listen on {}:53: {e}\n", args.listen));
            std::process::exit(1);
        }
    };
    let pid = std::process::id() as i32;
    let me = format!("{pid} {}\n", entries::start_time(pid).unwrap_or_default());
    if let Err(e) = std::fs::write(&args.pidfile, &me) {
        say(format!("err write {}: {e}\n", args.pidfile.display()));
        std::process::exit(1);
    }
    let Some(watch) = inotify(&args.entries) else {
        say(format!("err watch {}: {}\n", args.entries.display(), std::io::Error::last_os_error()));
        std::process::exit(1);
    };
    say(format!("ok {pid}\n"));
    drop(report);
    serve(&args, socket, watch);
}

/// A question sent upstream, waiting for its answer.
struct Pending {
    socket: UdpSocket,
    client: SocketAddr,
    query: Vec<u8>,
    rest: Vec<Ipv4Addr>,
    deadline: Instant,
}

fn inotify(dir: &std::path::Path) -> Option<OwnedFd> {
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return None;
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mask = libc::IN_CREATE | libc::IN_DELETE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM | libc::IN_CLOSE_WRITE;
    (unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) } >= 0).then_some(fd)
}

/// Reload the entries; with none left, leave (under the network's lock: see the top).
fn reload(args: &Args, socket: &UdpSocket) -> Vec<Entry> {
    let list = entries::load(&args.entries);
    if !list.is_empty() {
        return list;
    }
    let Ok(lock) = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&args.lock) else { return list };
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return list;
    }
    let list = entries::load(&args.entries);
    if list.is_empty() {
        // The port first, while the lock is held: at exit the kernel releases files last in,
        // first out (the lock before the socket), and the resolver a next container starts
        // under that lock must find the address free.
        unsafe { libc::close(socket.as_raw_fd()) };
        let _ = std::fs::remove_file(&args.pidfile);
        std::process::exit(0);
    }
    list
}

fn serve(args: &Args, socket: UdpSocket, watch: OwnedFd) {
    let _ = socket.set_nonblocking(true);
    let mut list = reload(args, &socket);
    let mut names = Names::of(&list);
    let mut pending: Vec<Pending> = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let now = Instant::now();
        let timeout = pending.iter().map(|p| p.deadline.saturating_duration_since(now)).min();
        let ms = timeout.map(|d| d.as_millis().min(60_000) as u16 + 1).map(PollTimeout::from).unwrap_or(PollTimeout::NONE);
        let mut fds = vec![PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        fds.push(PollFd::new(watch.as_fd(), PollFlags::POLLIN));
        let holders = fds.len();
        fds.extend(list.iter().map(|e| PollFd::new(e.holder.as_fd(), PollFlags::POLLIN)));
        let ups = fds.len();
        fds.extend(pending.iter().map(|p| PollFd::new(p.socket.as_fd(), PollFlags::POLLIN)));
        let _ = poll(&mut fds, ms);
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);

        // Answers from upstream go back to their client; silent upstreams make way for the next.
        let mut still = Vec::new();
        for (i, mut p) in pending.into_iter().enumerate() {
            if ready[ups + i] {
                if let Ok(n) = p.socket.recv(&mut buf) {
                    let _ = socket.send_to(&buf[..n], p.client);
                    continue;
                }
            }
            if Instant::now() >= p.deadline {
                match p.rest.pop().and_then(|next| forward_to(next, &p.query)) {
                    Some(s) => p.socket = s,
                    None => {
                        let _ = socket.send_to(&servfail(&p.query), p.client);
                        continue;
                    }
                }
                p.deadline = Instant::now() + UPSTREAM_TIMEOUT;
            }
            still.push(p);
        }
        pending = still;

        let died = ready[holders..ups].iter().any(|r| *r);
        if died || ready[1] {
            if ready[1] {
                while nix::unistd::read(&watch, &mut buf).is_ok_and(|n| n > 0) {}
            }
            // Every file read again: one whose holder ended goes (entries.rs); one whose holder
            // changed meanwhile (a detached container's pyc handing it to its monitor) stays.
            list = reload(args, &socket);
            names = Names::of(&list);
        }

        if ready[0] {
            while let Ok((n, client)) = socket.recv_from(&mut buf) {
                let query = buf[..n].to_vec();
                match answer(&names, &args.search, &query) {
                    Some(reply) => {
                        let _ = socket.send_to(&reply, client);
                    }
                    None => {
                        let from = match client {
                            SocketAddr::V4(a) => *a.ip(),
                            _ => Ipv4Addr::UNSPECIFIED,
                        };
                        let mut ups: Vec<Ipv4Addr> = names.upstreams.get(&from).cloned().unwrap_or_else(|| args.upstreams.clone());
                        ups.reverse();
                        match ups.pop().and_then(|u| forward_to(u, &query)) {
                            Some(s) => pending.push(Pending { socket: s, client, query, rest: ups, deadline: Instant::now() + UPSTREAM_TIMEOUT }),
                            None => {
                                let _ = socket.send_to(&servfail(&query), client);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn forward_to(upstream: Ipv4Addr, query: &[u8]) -> Option<UdpSocket> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect(SocketAddrV4::new(upstream, 53)).ok()?;
    s.send(query).ok()?;
    Some(s)
}

fn servfail(query: &[u8]) -> Vec<u8> {
    let id = query.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0);
    let mut m = Message::error_msg(id, hickory_proto::op::OpCode::Query, ResponseCode::ServFail);
    if let Ok(q) = Message::from_vec(query) {
        m.queries = q.queries;
        m.metadata.recursion_desired = q.metadata.recursion_desired;
    }
    m.metadata.recursion_available = true;
    m.to_vec().unwrap_or_default()
}

/// The name a question asks about, if it is one of ours: as asked, or with one of the search
/// domains the containers' resolv.conf appends.
fn ours<'a>(names: &'a Names, search: &[String], asked: &str) -> Option<&'a Vec<Ipv4Addr>> {
    if let Some(ips) = names.by_name.get(asked) {
        return Some(ips);
    }
    search.iter().find_map(|d| asked.strip_suffix(d).and_then(|h| h.strip_suffix('.')).and_then(|h| names.by_name.get(h)))
}

/// Our answer to `query`, or None when it goes upstream.
fn answer(names: &Names, search: &[String], query: &[u8]) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    if q.metadata.message_type != MessageType::Query || q.queries.len() != 1 {
        return None;
    }
    let question = &q.queries[0];
    let asked = question.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let mut reply = Message::response(q.metadata.id, q.metadata.op_code);
    reply.metadata.recursion_desired = q.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_query(question.clone());
    if question.query_type() == RecordType::PTR {
        let ip = reverse(&asked)?;
        let name = names.by_ip.get(&ip)?;
        reply.add_answer(Record::from_rdata(question.name().clone(), TTL, RData::PTR(PTR(Name::from_ascii(format!("{name}.")).ok()?))));
        return reply.to_vec().ok();
    }
    let ips = ours(names, search, &asked)?;
    // A name of ours has IPv4 addresses only: no error for AAAA and the rest, no answer.
    if question.query_type() == RecordType::A {
        for ip in ips {
            reply.add_answer(Record::from_rdata(question.name().clone(), TTL, RData::A(A(*ip))));
        }
    }
    reply.to_vec().ok()
}

/// `4.3.2.1.in-addr.arpa` -> 1.2.3.4
fn reverse(name: &str) -> Option<Ipv4Addr> {
    let digits: Vec<u8> = name.strip_suffix(".in-addr.arpa")?.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let [d, c, b, a]: [u8; 4] = digits.try_into().ok()?;
    Some(Ipv4Addr::new(a, b, c, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn names() -> Names {
        let mut n = Names { by_name: Default::default(), by_ip: Default::default(), upstreams: Default::default() };
        n.by_name.insert("db".into(), vec![Ipv4Addr::new(10, 0, 0, 3)]);
        n.by_ip.insert(Ipv4Addr::new(10, 0, 0, 3), "db".into());
        n
    }

    fn ask(name: &str, ty: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), ty));
        m.to_vec().unwrap()
    }

    #[test]
    fn answers_names_it_has_and_forwards_the_rest() {
        let n = names();
        let search = vec!["example.org".to_string()];
        let a = Message::from_vec(&answer(&n, &search, &ask("DB.", RecordType::A)).unwrap()).unwrap();
        assert_eq!(a.answers.len(), 1);
        let a = Message::from_vec(&answer(&n, &search, &ask("db.example.org.", RecordType::A)).unwrap()).unwrap();
        assert_eq!(a.answers.len(), 1);
        let aaaa = Message::from_vec(&answer(&n, &search, &ask("db.", RecordType::AAAA)).unwrap()).unwrap();
        assert!(aaaa.answers.is_empty() && aaaa.metadata.response_code == ResponseCode::NoError);
        assert!(answer(&n, &search, &ask("web.", RecordType::A)).is_none());
        let ptr = Message::from_vec(&answer(&n, &search, &ask("3.0.0.10.in-addr.arpa.", RecordType::PTR)).unwrap()).unwrap();
        assert_eq!(ptr.answers.len(), 1);
    }
}
