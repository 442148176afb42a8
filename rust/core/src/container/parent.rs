//! The caller's side of a process in a container, shared by `run` (its pid 1) and `exec`: its
//! stdio (passed fds, captured pipes, a pty with -t, relays for the caller's terminals), the
//! signals forwarded to it, and the wait for its end.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, Pid};

use super::relay::Relay;
use crate::error::{Error, Result};
use crate::pty::Terminal;

/// Where a container's stdout or stderr goes.
pub enum Output {
    /// An fd of the caller's, passed through as it is (unless it is a terminal: relay.rs).
    Fd(RawFd),
    /// Collected and returned in the Outcome.
    Capture,
}

pub struct Stdio {
    /// None: /dev/null, as docker does without `-i`.
    pub stdin: Option<RawFd>,
    pub stdout: Output,
    pub stderr: Output,
}

impl From<RawFd> for Output {
    fn from(fd: RawFd) -> Self {
        Output::Fd(fd)
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub pid: i32,
    /// The exit code as a shell reports it: the code, or 128 + the signal that killed it.
    pub status: i32,
    pub signal: Option<i32>,
    pub stdout: Option<Vec<u8>>,
    pub stderr: Option<Vec<u8>>,
    /// The kernel killed a process of the container for exceeding its memory limit.
    pub oom_killed: bool,
}

/// Signals a user sends to pyc that belong to the container.
const FORWARDED: [Signal; 7] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGWINCH];

fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set
}

/// Restores the caller's signal mask when dropped.
pub struct MaskGuard(SigSet);

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// Block the forwarded signals (before the fork, so none is lost between fork and wait; the
/// process unblocks them right before exec) and read them from a signalfd instead.
pub fn catch_forwarded() -> Result<(MaskGuard, SignalFd)> {
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_set()), Some(&mut old)).map_err(|e| Error::sys("sigprocmask", e))?;
    let guard = MaskGuard(old);
    let sigfd = SignalFd::with_flags(&forwarded_set(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| Error::sys("signalfd", e))?;
    Ok((guard, sigfd))
}

pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))
}

pub fn read_full(fd: RawFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    got
}

/// The process's stdio, made ready before the fork.
pub struct Streams {
    /// What the process gets as fds 0-2 (when it has no pty).
    stdio: [RawFd; 3],
    _dev_null: Option<OwnedFd>,
    /// Read ends (non-blocking) of captured outputs: 0 for stdout, 1 for stderr.
    pub captures: Vec<(usize, OwnedFd)>,
    /// Write ends of the captures, ours until the process has them.
    capture_ends: Vec<OwnedFd>,
    /// `-t`: the pty's master side, copying once started.
    pub term: Option<Terminal>,
    pub relay: Relay,
}

impl Streams {
    pub fn new(stdio: &Stdio, tty: bool) -> Result<Streams> {
        let (dev_null, stdin) = match stdio.stdin {
            Some(fd) => (None, fd),
            None => {
                let null = nix::fcntl::open(c"/dev/null", OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                    .map_err(|e| Error::sys("open /dev/null", e))?;
                let fd = null.as_raw_fd();
                (Some(null), fd)
            }
        };
        let (mut captures, mut capture_ends, mut out) = (Vec::new(), Vec::new(), [-1; 2]);
        for (i, o) in [&stdio.stdout, &stdio.stderr].into_iter().enumerate() {
            out[i] = match o {
                Output::Fd(fd) => *fd,
                Output::Capture => {
                    let (r, w) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| Error::sys("pipe", e))?;
                    // The write end must block in the container: only our end is non-blocking.
                    nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).map_err(|e| Error::sys("fcntl", e))?;
                    let raw = w.as_raw_fd();
                    captures.push((i, r));
                    capture_ends.push(w);
                    raw
                }
            };
        }
        // -t: the process's stdio is a pty it makes inside; pty.rs copies between it and ours.
        let term = match tty {
            true => match stdio.stdout {
                Output::Fd(fd) => Some(Terminal::open(stdio.stdin, fd)?),
                Output::Capture => return Err(Error::InvalidConfig("a terminal (-t) needs stdout as a file descriptor".into())),
            },
            false => None,
        };
        let relay = Relay::new([stdin, out[0], out[1]], !tty)?;
        Ok(Streams { stdio: relay.stdio(), _dev_null: dev_null, captures, capture_ends, term, relay })
    }

    pub fn stdio(&self) -> [RawFd; 3] {
        self.stdio
    }

    pub fn tty_inside(&self) -> Option<pyc_init::tty::Inside> {
        self.term.as_ref().map(|t| t.inside())
    }

    /// Our end of the terminal's socket, which the process must not keep (-1 without -t).
    pub fn term_socket(&self) -> RawFd {
        self.term.as_ref().map_or(-1, |t| t.socket_fd())
    }

    /// The process has been forked: the ends that are its go from here.
    pub fn forked(&mut self) {
        self.capture_ends.clear();
        self.relay.close_child_ends();
    }

    /// The command runs: copy for its terminal and relays.
    pub fn started(&mut self) -> Result<()> {
        if let Some(t) = &mut self.term {
            t.start()?;
        }
        self.relay.start()
    }
}

/// Wait for `child` (a pidfd of it), forwarding the caught signals and collecting `captures`.
pub fn wait(child: Pid, pidfd: &OwnedFd, sigfd: &SignalFd, captures: Vec<(usize, OwnedFd)>, term: Option<&Terminal>) -> Result<Outcome> {
    let mut outputs: [Option<Vec<u8>>; 2] = [None, None];
    let mut open: Vec<(usize, OwnedFd)> = captures;
    for (i, _) in &open {
        outputs[*i] = Some(Vec::new());
    }
    let mut status: Option<WaitStatus> = None;
    let mut chunk = vec![0u8; 64 * 1024];
    while status.is_none() || !open.is_empty() {
        let mut pfds = Vec::with_capacity(2 + open.len());
        if status.is_none() {
            pfds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
            pfds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
        }
        for (_, fd) in &open {
            pfds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut pfds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let ready: Vec<bool> = pfds.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(pfds);
        let mut k = 0;
        if status.is_none() {
            if ready[1] {
                while let Ok(Some(info)) = sigfd.read_signal() {
                    let sig = Signal::try_from(info.ssi_signo as i32).ok();
                    // With a pty, a resize goes to the pty; the kernel signals the process.
                    if let (Some(Signal::SIGWINCH), Some(t)) = (sig, term) {
                        t.resize();
                        continue;
                    }
                    let _ = nix::sys::signal::kill(child, sig);
                }
            }
            if ready[0] {
                status = Some(waitpid(child, None).map_err(|e| Error::sys("wait", e))?);
            }
            k = 2;
        }
        let mut still = Vec::with_capacity(open.len());
        for (j, (i, fd)) in open.into_iter().enumerate() {
            if !ready[k + j] {
                still.push((i, fd));
                continue;
            }
            match nix::unistd::read(&fd, &mut chunk) {
                Ok(0) => {}
                Ok(n) => {
                    outputs[i].as_mut().unwrap().extend_from_slice(&chunk[..n]);
                    still.push((i, fd));
                }
                Err(Errno::EAGAIN | Errno::EINTR) => still.push((i, fd)),
                Err(e) => return Err(Error::sys("read output", e)),
            }
        }
        open = still;
    }
    let (status, signal) = exit_status(status.unwrap())?;
    let [stdout, stderr] = outputs;
    Ok(Outcome { pid: child.as_raw(), status, signal, stdout, stderr, oom_killed: false })
}

/// The exit code as a shell reports it (the code, or 128 + the signal) and the signal.
pub fn exit_status(w: WaitStatus) -> Result<(i32, Option<i32>)> {
    match w {
        WaitStatus::Exited(_, code) => Ok((code, None)),
        WaitStatus::Signaled(_, sig, _) => Ok((128 + sig as i32, Some(sig as i32))),
        other => Err(Error::Sys(format!("unexpected wait status {other:?}"))),
    }
}
