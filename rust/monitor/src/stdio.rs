//! The container's stdio as the monitor holds it: stdin is /dev/null, stdout and stderr are
//! pipes whose lines go to the log; with -t, a pty whose master the monitor holds (attach.rs).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use pyc_core::container::{Output, Stdio};

use crate::logfile::{LineSplitter, LogFile};

/// With a tty, no output fd: core's Terminal then hands the master over instead of copying.
pub fn container_stdio(tty: bool) -> Stdio {
    if tty {
        return Stdio { stdin: None, stdout: Output::Fd(-1), stderr: Output::Fd(-1) };
    }
    Stdio { stdin: None, stdout: Output::Capture, stderr: Output::Capture }
}

/// What the monitor reads a run's output from.
pub enum Stdout {
    Pipes(Outputs),
    Tty(crate::attach::Session),
}

impl Stdout {
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        match self {
            Stdout::Pipes(o) => o.fds(),
            Stdout::Tty(s) => s.fds(),
        }
    }

    pub fn is_done(&self) -> bool {
        match self {
            Stdout::Pipes(o) => o.is_done(),
            Stdout::Tty(s) => s.is_done(),
        }
    }

    pub fn pump(&mut self, ready: &[bool], log: &mut LogFile) {
        match self {
            Stdout::Pipes(o) => o.pump(ready, log),
            Stdout::Tty(s) => s.pump(ready, log),
        }
    }
}

/// The open output pipes of one run of the container.
pub struct Outputs {
    open: Vec<(OwnedFd, LineSplitter)>,
    buf: Vec<u8>,
    records: Vec<u8>,
}

impl Outputs {
    /// `captures` as `Started` returns them: (0 stdout | 1 stderr, read end).
    pub fn new(captures: Vec<(usize, OwnedFd)>) -> Self {
        let open = captures.into_iter().map(|(i, fd)| (fd, LineSplitter::new(if i == 0 { "stdout" } else { "stderr" }))).collect();
        Outputs { open, buf: vec![0; 64 * 1024], records: Vec::new() }
    }

    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.open.iter().map(|(fd, _)| fd.as_fd()).collect()
    }

    pub fn is_done(&self) -> bool {
        self.open.is_empty()
    }

    /// Read the pipes poll found ready (`ready[i]` for `fds()[i]`), log what came; a pipe at
    /// EOF is closed, its last partial line logged.
    pub fn pump(&mut self, ready: &[bool], log: &mut LogFile) {
        let mut still = Vec::with_capacity(self.open.len());
        for (k, (fd, mut split)) in std::mem::take(&mut self.open).into_iter().enumerate() {
            if !ready.get(k).copied().unwrap_or(false) {
                still.push((fd, split));
                continue;
            }
            match nix::unistd::read(&fd, &mut self.buf) {
                Ok(0) | Err(Errno::EBADF | Errno::EIO) => split.flush(&mut self.records),
                Ok(n) => {
                    split.feed(&self.buf[..n], &mut self.records);
                    still.push((fd, split));
                }
                Err(_) => still.push((fd, split)),
            }
        }
        self.open = still;
        log.write(&self.records);
        self.records.clear();
    }
}
