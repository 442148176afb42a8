//! `-d -t`: the monitor holds the pty master, logs what comes out of it (as stdout), and
//! serves `pyc attach` on attach.sock in the container's directory (mode 0600): output goes to
//! every client, each client's input to the master. Clients send frames, a type byte and a
//! big-endian u16 length, then the payload: 0 = input bytes, 1 = window size (rows, cols as
//! u16). Output is sent raw. A client too slow to take output loses it rather than stalling
//! the container (its socket is non-blocking), as with conmon's attach socket.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::errno::Errno;

use crate::logfile::{LineSplitter, LogFile};

pub const SOCKET: &str = "attach.sock";

struct Client {
    stream: UnixStream,
    pending: Vec<u8>,
}

pub struct Session {
    master: Option<OwnedFd>,
    listener: Option<UnixListener>,
    clients: Vec<Client>,
    split: LineSplitter,
    buf: Vec<u8>,
    records: Vec<u8>,
}

/// Listen on dir/attach.sock. Bound through /proc/self/fd so a long directory path does not
/// hit sun_path's 108 bytes; umask makes it 0600 from the start (no window with wider mode).
fn listen(dir: &Path) -> std::io::Result<UnixListener> {
    let d = std::fs::File::open(dir)?;
    let path = format!("/proc/self/fd/{}/{SOCKET}", d.as_raw_fd());
    let _ = std::fs::remove_file(&path);
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let l = UnixListener::bind(&path);
    nix::sys::stat::umask(old);
    let l = l?;
    l.set_nonblocking(true)?;
    Ok(l)
}

impl Session {
    pub fn new(dir: &Path, master: OwnedFd) -> Self {
        let _ = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
        Session {
            master: Some(master),
            listener: listen(dir).ok(),
            clients: Vec::new(),
            split: LineSplitter::new("stdout"),
            buf: vec![0; 16 * 1024],
            records: Vec::new(),
        }
    }

    pub fn is_done(&self) -> bool {
        self.master.is_none()
    }

    /// Master, listener, then clients; `pump` takes readiness in this order.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v: Vec<BorrowedFd<'_>> = self.master.iter().map(|m| m.as_fd()).collect();
        v.extend(self.listener.iter().map(|l| l.as_fd()));
        v.extend(self.clients.iter().map(|c| c.stream.as_fd()));
        v
    }

    pub fn pump(&mut self, ready: &[bool], log: &mut LogFile) {
        let mut k = 0;
        let mut is = |present: bool| {
            let r = present && ready.get(k).copied().unwrap_or(false);
            k += present as usize;
            r
        };
        let (m, l) = (is(self.master.is_some()), is(self.listener.is_some()));
        let client_ready: Vec<bool> = (0..self.clients.len()).map(|_| is(true)).collect();
        if m {
            self.read_master(log);
        }
        let mut kept = Vec::with_capacity(self.clients.len() + 1);
        for (mut c, r) in std::mem::take(&mut self.clients).into_iter().zip(client_ready) {
            if !r || self.serve(&mut c) {
                kept.push(c);
            }
        }
        self.clients = kept;
        if l {
            self.accept(); // after the loop above, whose readiness is for the clients before
        }
        if self.master.is_none() {
            // The container's terminal is gone: clients see EOF, then read its exit state.
            self.listener = None;
            self.clients.clear();
        }
    }

    fn read_master(&mut self, log: &mut LogFile) {
        let Some(master) = &self.master else { return };
        match nix::unistd::read(master, &mut self.buf) {
            Ok(n) if n > 0 => {
                self.split.feed(&self.buf[..n], &mut self.records);
                let out = &self.buf[..n];
                self.clients.retain_mut(|c| match c.stream.write(out) {
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                });
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            _ => {
                // EIO: the last slave closed, the process inside is gone.
                self.split.flush(&mut self.records);
                self.master = None;
            }
        }
        log.write(&self.records);
        self.records.clear();
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.as_ref().map_or(Err(std::io::ErrorKind::NotFound.into()), |l| l.accept()) {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client { stream, pending: Vec::new() });
            }
        }
    }

    /// Read one ready client's frames; whether it is still there.
    fn serve(&mut self, c: &mut Client) -> bool {
        match c.stream.read(&mut self.buf) {
            Ok(0) => return false,
            Ok(n) => c.pending.extend_from_slice(&self.buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        while c.pending.len() >= 3 {
            let len = u16::from_be_bytes([c.pending[1], c.pending[2]]) as usize;
            if c.pending.len() < 3 + len {
                break;
            }
            let frame: Vec<u8> = c.pending.drain(..3 + len).collect();
            let (kind, payload) = (frame[0], &frame[3..]);
            if let Some(master) = &self.master {
                match (kind, payload.len()) {
                    (0, _) => write_all(master.as_fd(), payload),
                    (1, 4) => {
                        let ws = libc::winsize {
                            ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                            ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        // The kernel then sends SIGWINCH to the foreground group inside.
                        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                    }
                    _ => {}
                }
            }
        }
        true
    }
}

/// Input to the (non-blocking) master: a full pty buffer is waited out briefly, not dropped.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EAGAIN | Errno::EINTR) => std::thread::sleep(std::time::Duration::from_millis(1)),
            Err(_) => return,
        }
    }
}
