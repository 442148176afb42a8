//! The parent's side of a container start: cgroup, clone, release the child, report a failed
//! start, then wait while forwarding signals and, if asked, collecting output.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, Pid};

use super::child::{child_main, ChildFds, Failure, Step};
use super::config::RunConfig;
use super::plan::Plan;
use crate::cgroup::{Cgroup, Limits};
use crate::error::{Error, Result};
use crate::pty::Terminal;
use crate::sys::{clone_fork, Forked};

/// Where a container's stdout or stderr goes.
pub enum Output {
    /// An fd of the caller's, passed through as it is.
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

pub(super) fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set
}

pub(super) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))
}

/// Restores the caller's signal mask however run() ends.
pub(super) struct MaskGuard(pub(super) SigSet);

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&self.0), None);
    }
}

/// A started container: what its parent holds on to. `finish` must follow its end.
pub struct Started {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// Read ends (non-blocking) of the captured outputs: 0 for stdout, 1 for stderr.
    pub captures: Vec<(usize, OwnedFd)>,
    /// `-t`: the pty's master side, copying already (dropped: drained, the user's terminal back).
    pub term: Option<Terminal>,
    cgroup: Option<Cgroup>,
}

impl Started {
    /// After the container ended: whether the kernel killed in it for memory (read before the
    /// cgroup goes: it is the only place that says so), then its cgroup removed.
    pub fn finish(self) -> Result<bool> {
        let Some(cg) = self.cgroup else { return Ok(false) };
        let oom = cg.stats().map(|s| s.oom_kills > 0).unwrap_or(false);
        cg.remove()?;
        Ok(oom)
    }
}

/// Start the container and wait for it. Blocking: the binding releases the GIL around it.
pub fn run(cfg: &RunConfig, stdio: Stdio) -> Result<Outcome> {
    // Block the forwarded signals before the clone so none is lost between clone and wait;
    // the child unblocks them right before exec.
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_set()), Some(&mut old)).map_err(|e| Error::sys("sigprocmask", e))?;
    let _mask = MaskGuard(old);
    let sigfd = SignalFd::with_flags(&forwarded_set(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| Error::sys("signalfd", e))?;
    let mut started = start(cfg, stdio, Some(sigfd.as_fd().as_raw_fd()))?;
    let captures = std::mem::take(&mut started.captures);
    let term = started.term.take();
    let result = wait(Pid::from_raw(started.pid), &started.pidfd, &sigfd, captures, term.as_ref());
    drop(term);
    let oom = started.finish();
    let mut out = result?;
    out.oom_killed = oom?;
    Ok(out)
}

/// Start the container (cgroup, clone, release) and return once its command runs, or with
/// the reason it could not start. `close` is one more fd of the caller's the child must not keep.
pub fn start(cfg: &RunConfig, stdio: Stdio, close: Option<RawFd>) -> Result<Started> {
    let mut plan = Plan::build(cfg)?;
    let cgroup = match &cfg.cgroup {
        Some(c) => Some(Cgroup::create(&c.root, &c.path)?),
        None => None,
    };
    if let Some(cg) = &cgroup {
        let limits = cfg.spec.linux().as_ref().and_then(|l| l.resources().as_ref()).map(Limits::from_oci).unwrap_or_default();
        let ready = cg.apply(&limits).and_then(|()| plan.join_cgroup(cg));
        if let Err(e) = ready {
            let _ = cg.remove();
            return Err(e);
        }
    }
    match spawn(&plan, cgroup.as_ref(), stdio, close.unwrap_or(-1)) {
        Ok((pid, pidfd, captures, term)) => Ok(Started { pid, pidfd, captures, term, cgroup }),
        Err(e) => {
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            Err(e)
        }
    }
}

/// The fds the process writes its stdout and stderr to: the caller's, or the write end of a
/// pipe whose read end (with its stream's index) is returned for capturing; and the write ends,
/// which the caller drops once the process has them.
pub(super) type OutputFds = (Vec<(usize, OwnedFd)>, Vec<OwnedFd>, [RawFd; 2]);

pub(super) fn output_fds(stdio: &Stdio) -> Result<OutputFds> {
    let (mut captures, mut child_ends, mut out_fds) = (Vec::new(), Vec::new(), [-1; 2]);
    for (i, out) in [&stdio.stdout, &stdio.stderr].into_iter().enumerate() {
        out_fds[i] = match out {
            Output::Fd(fd) => *fd,
            Output::Capture => {
                let (r, w) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| Error::sys("pipe", e))?;
                // The write end must block in the container: only our end is non-blocking.
                nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty())).map_err(|e| Error::sys("fcntl", e))?;
                let raw = w.as_raw_fd();
                captures.push((i, r));
                child_ends.push(w);
                raw
            }
        };
    }
    Ok((captures, child_ends, out_fds))
}

type Spawned = (i32, OwnedFd, Vec<(usize, OwnedFd)>, Option<Terminal>);

fn spawn(plan: &Plan, cgroup: Option<&Cgroup>, stdio: Stdio, close: RawFd) -> Result<Spawned> {
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let devnull;
    let stdin = match stdio.stdin {
        Some(fd) => fd,
        None => {
            devnull = nix::fcntl::open(c"/dev/null", OFlag::O_RDONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .map_err(|e| Error::sys("open /dev/null", e))?;
            devnull.as_raw_fd()
        }
    };
    let (captures, child_ends, out_fds) = output_fds(&stdio)?;

    // -t: the process's stdio is a pty it makes inside; pty.rs copies between it and ours.
    let mut term = if plan.tty { Some(Terminal::open(stdio.stdin, terminal_output(&stdio)?)?) } else { None };

    let fds = ChildFds {
        sync_read: sync_r.as_raw_fd(),
        error_write: err_w.as_raw_fd(),
        close: [sync_w.as_raw_fd(), err_r.as_raw_fd(), close, term.as_ref().map_or(-1, |t| t.socket_fd())],
        stdio: [stdin, out_fds[0], out_fds[1]],
        tty: term.as_ref().map(|t| t.inside()),
    };
    let cgroup_fd = cgroup.and_then(|c| c.clone_fd());
    // PYC_CLONE=clone takes the path of kernels without clone3, so tests can cover it here.
    let use_clone3 = std::env::var_os("PYC_CLONE").is_none_or(|v| v != "clone");
    let (forked, joined) = unsafe { clone_fork(plan.clone_flags, cgroup_fd, use_clone3) }.map_err(|e| Error::sys("clone", e))?;
    let (pid, pidfd) = match forked {
        Forked::Child => child_main(plan, &fds),
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop((sync_r, err_w, child_ends));
    let child = Pid::from_raw(pid);

    // The child makes its mounts meanwhile, and waits for this before it execs.
    // On v1 the child joins by itself (plan.cgroup_tasks); on v2, clone3 put it there, or else
    // (old kernels) it is moved now.
    let joined = match (cgroup, joined || !plan.cgroup_tasks.is_empty()) {
        (Some(cg), false) => cg.add(pid),
        _ => Ok(()),
    };
    if joined.is_ok() {
        // EPIPE here means the child failed already; its report below says why.
        let _ = nix::unistd::write(&sync_w, &[1u8]);
    }
    drop(sync_w);

    // The error pipe is close-on-exec: EOF means the command started, data means it did not.
    // A failure the child reports comes first: it is the cause of any error in joining.
    let mut buf = [0u8; Failure::SIZE];
    let n = read_full(err_r.as_raw_fd(), &mut buf);
    drop(err_r);
    if n == Failure::SIZE {
        let _ = waitpid(child, None);
        return Err(failure_error(plan, Failure::decode(&buf)));
    }
    if let Err(e) = joined {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(e);
    }
    if let Some(t) = &mut term {
        if let Err(e) = t.start() {
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            return Err(e);
        }
    }
    Ok((pid, pidfd, captures, term))
}

/// A terminal's output goes to an fd of the caller's (there is nothing to capture apart).
pub(super) fn terminal_output(stdio: &Stdio) -> Result<RawFd> {
    match stdio.stdout {
        Output::Fd(fd) => Ok(fd),
        Output::Capture => Err(Error::InvalidConfig("a terminal (-t) needs stdout as a file descriptor".into())),
    }
}

pub(super) fn read_full(fd: RawFd, buf: &mut [u8]) -> usize {
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

pub(super) fn wait(child: Pid, pidfd: &OwnedFd, sigfd: &SignalFd, captures: Vec<(usize, OwnedFd)>, term: Option<&Terminal>) -> Result<Outcome> {
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

fn failure_error(plan: &Plan, f: Option<Failure>) -> Error {
    let Some(f) = f else { return Error::Start("the container reported an unknown failure".into()) };
    let errno = Errno::from_raw(f.errno).desc().to_lowercase();
    let i = f.index as usize;
    let mount_name = || plan.mounts.get(i).map(|m| m.target.display.clone()).unwrap_or_default();
    let what = match f.step {
        Step::NotFound => return Error::CommandNotFound(plan.exec.name.clone()),
        Step::NotExecutable => return Error::CommandNotExecutable(plan.exec.name.clone()),
        Step::Exec => format!("exec {}", plan.exec.name),
        Step::Overlay => format!("mount the image (overlay, {})", plan.overlay.describe(i)),
        Step::MountTarget => format!("create mount point {}", mount_name()),
        Step::Mount | Step::Remount | Step::MountPropagation => format!("mount {}", mount_name()),
        Step::Workdir => format!("create working directory {}", plan.cwd_in_root.display),
        Step::Chdir => format!("change to working directory {}", plan.cwd_in_root.display),
        Step::Masked => format!("mask {}", plan.masked.get(i).map(|c| c.to_string_lossy()).unwrap_or_default()),
        Step::Readonly => format!("make {} read-only", plan.readonly.get(i).map(|c| c.to_string_lossy()).unwrap_or_default()),
        Step::Uid => format!("set user {}", plan.uid),
        Step::Cgroup => format!("join cgroup {}", plan.cgroup_tasks.get(i).map(|c| c.to_string_lossy()).unwrap_or_default()),
        Step::Gid | Step::Groups => format!("set group {}", plan.gid),
        other => format!("{other:?}").to_lowercase(),
    };
    Error::Start(format!("{what}: {errno}"))
}

impl From<RawFd> for Output {
    fn from(fd: RawFd) -> Self {
        Output::Fd(fd)
    }
}
