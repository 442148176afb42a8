//! Without `-t`, a container never gets a terminal of the host. A process holding an fd of the
//! user's terminal could type into it (TIOCSTI: the user's shell runs what it typed once pyc
//! exits), change its settings or read what the user types next. So where the caller's stdin,
//! stdout or stderr is a terminal, the process gets a pipe instead and a thread of ours copies
//! between the two: the user's input to the process (its end passed on as EOF), the process's
//! output to the user. Files, pipes and /dev/null are passed as they are: that path costs
//! nothing. (Ctrl-C and Ctrl-\ reach pyc, which forwards them as signals: run.rs.)

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Error, Result};

pub struct Relay {
    /// The process's stdio: our pipes' ends where relayed, the caller's fds elsewhere.
    stdio: [RawFd; 3],
    /// The process's pipe ends, dropped once it has them.
    child_ends: Vec<OwnedFd>,
    input: Option<(RawFd, OwnedFd)>,
    outputs: Vec<(OwnedFd, RawFd)>,
    stop: Option<OwnedFd>,
    copier: Option<JoinHandle<()>>,
}

fn is_terminal(fd: RawFd) -> bool {
    fd >= 0 && unsafe { libc::isatty(fd) } == 1
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))
}

fn nonblocking(fd: &OwnedFd) -> Result<()> {
    fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map(drop).map_err(|e| Error::sys("fcntl", e))
}

impl Relay {
    /// `stdio`: what the process would get. `relay`: false where it has a pty of its own (-t),
    /// which stands between it and the user's terminal already.
    pub fn new(stdio: [RawFd; 3], relay: bool) -> Result<Relay> {
        let mut r = Relay { stdio, child_ends: Vec::new(), input: None, outputs: Vec::new(), stop: None, copier: None };
        if !relay {
            return Ok(r);
        }
        if is_terminal(stdio[0]) {
            let (read, write) = pipe()?;
            nonblocking(&write)?;
            r.stdio[0] = read.as_raw_fd();
            r.child_ends.push(read);
            r.input = Some((stdio[0], write));
        }
        for (i, &user) in stdio.iter().enumerate().skip(1) {
            if is_terminal(user) {
                let (read, write) = pipe()?;
                nonblocking(&read)?;
                r.stdio[i] = write.as_raw_fd();
                r.child_ends.push(write);
                r.outputs.push((read, user));
            }
        }
        Ok(r)
    }

    pub fn stdio(&self) -> [RawFd; 3] {
        self.stdio
    }

    /// The process has its ends (it was forked): ours go, so its exit is our EOF.
    pub fn close_child_ends(&mut self) {
        self.child_ends.clear();
    }

    /// Start copying, if anything is relayed.
    pub fn start(&mut self) -> Result<()> {
        self.close_child_ends();
        if self.input.is_none() && self.outputs.is_empty() {
            return Ok(());
        }
        let (stop_r, stop_w) = pipe()?;
        let (input, outputs) = (self.input.take(), std::mem::take(&mut self.outputs));
        let copier = std::thread::Builder::new().name("pyc-relay".into()).spawn(move || copy(input, outputs, stop_r));
        self.copier = Some(copier.map_err(|e| Error::io("spawn", "stdio relay", e))?);
        self.stop = Some(stop_w);
        Ok(())
    }
}

impl Drop for Relay {
    /// The process ended: stop reading the user's input, copy its output to the end.
    fn drop(&mut self) {
        self.stop = None;
        if let Some(t) = self.copier.take() {
            let _ = t.join();
        }
    }
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn write_all(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        match nix::unistd::write(borrow(fd), buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => {
                // The user's fd is non-blocking (their shell's business): wait until it takes more.
                let mut p = [PollFd::new(borrow(fd), PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::NONE);
            }
            Err(_) => return false,
        }
    }
    true
}

/// The copier: outputs until each reaches EOF (every writer inside gone); input until the
/// user's EOF, a closed pipe, or the stop signal.
fn copy(mut input: Option<(RawFd, OwnedFd)>, mut outputs: Vec<(OwnedFd, RawFd)>, stop: OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut input_ended = false;
    let mut stopping = false;
    loop {
        if input_ended && pending.is_empty() {
            input = None; // the process reads EOF
        }
        if outputs.is_empty() && (stopping || input.is_none()) {
            return;
        }
        let mut fds: Vec<PollFd> = outputs.iter().map(|(r, _)| PollFd::new(r.as_fd(), PollFlags::POLLIN)).collect();
        let stop_at = (!stopping).then(|| {
            fds.push(PollFd::new(stop.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let mut input_at = None;
        if let (Some((user, pipe_w)), false) = (&input, stopping) {
            input_at = Some(fds.len());
            if pending.is_empty() {
                fds.push(PollFd::new(borrow(*user), PollFlags::POLLIN));
            } else {
                fds.push(PollFd::new(pipe_w.as_fd(), PollFlags::POLLOUT));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let ready: Vec<bool> = fds.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut still = Vec::with_capacity(outputs.len());
        for (k, (read, user)) in std::mem::take(&mut outputs).into_iter().enumerate() {
            if !ready[k] {
                still.push((read, user));
                continue;
            }
            match nix::unistd::read(&read, &mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    if write_all(user, &buf[..n]) {
                        still.push((read, user));
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) => still.push((read, user)),
                Err(_) => {}
            }
        }
        outputs = still;
        if stop_at.is_some_and(|i| ready[i]) {
            stopping = true;
            input = None;
            continue;
        }
        let (Some(i), Some((user, pipe_w))) = (input_at, &input) else { continue };
        if !ready[i] {
            continue;
        }
        if pending.is_empty() {
            match nix::unistd::read(borrow(*user), &mut buf) {
                Ok(0) => input_ended = true,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => input_ended = true,
            }
        } else {
            match nix::unistd::write(pipe_w, &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(_) => {
                    // EPIPE: nothing inside reads its stdin any more.
                    pending.clear();
                    input = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_pipes_pass_as_they_are() {
        let (r, w) = pipe().unwrap();
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        let stdio = [dev_null.as_raw_fd(), w.as_raw_fd(), w.as_raw_fd()];
        let relay = Relay::new(stdio, true).unwrap();
        assert_eq!(relay.stdio(), stdio);
        drop(r);
    }

    #[test]
    fn a_terminal_becomes_a_pipe_and_is_copied() {
        // A pty plays the user's terminal.
        let pty = nix::pty::openpty(None, None).unwrap();
        let term = pty.slave.as_raw_fd();
        let mut relay = Relay::new([term, term, term], true).unwrap();
        let [i, o, e] = relay.stdio();
        assert!(!is_terminal(i) && !is_terminal(o) && !is_terminal(e) && i != term);
        // What the process would write, as its own dup (the child's end goes at start()).
        let out = nix::unistd::dup(borrow(o)).unwrap();
        // A pipe is no terminal: TIOCSTI through it fails.
        let c = b'x';
        assert_eq!(unsafe { libc::ioctl(out.as_raw_fd(), libc::TIOCSTI, &c) }, -1);
        relay.start().unwrap();
        nix::unistd::write(&out, b"hello\n").unwrap();
        drop(out);
        drop(relay);
        let mut got = [0u8; 64];
        let n = nix::unistd::read(&pty.master, &mut got).unwrap();
        assert!(String::from_utf8_lossy(&got[..n]).contains("hello"));
    }
}
