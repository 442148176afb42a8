//! The parent's side of a container start: cgroup, clone, release the child, report a failed
//! start, then wait while forwarding signals and, if asked, collecting output.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use super::child::{child_main, ChildFds, Failure, Step};
use super::config::RunConfig;
use super::parent::{catch_forwarded, pipe, read_full, wait, Outcome, Stdio, Streams};
use super::plan::Plan;
use crate::cgroup::{Cgroup, Limits};
use crate::error::{Error, Result};
use crate::pty::Terminal;
use crate::sys::{clone_fork, Forked};

/// A started container: what its parent holds on to. `finish` must follow its end.
pub struct Started {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// Read ends (non-blocking) of the captured outputs: 0 for stdout, 1 for stderr.
    pub captures: Vec<(usize, OwnedFd)>,
    /// `-t`: the pty's master side, copying already (dropped: drained, the user's terminal back).
    pub term: Option<Terminal>,
    /// The copier for the caller's terminals (relay.rs); dropped: the output copied to its end.
    pub relay: Option<super::relay::Relay>,
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
    let (_mask, sigfd) = catch_forwarded()?;
    let mut started = start(cfg, stdio, Some(sigfd.as_raw_fd()))?;
    let captures = std::mem::take(&mut started.captures);
    let term = started.term.take();
    let result = wait(Pid::from_raw(started.pid), &started.pidfd, &sigfd, captures, term.as_ref());
    drop(term);
    drop(started.relay.take());
    let oom = started.finish();
    let mut out = result?;
    out.oom_killed = oom?;
    if let Some(actor) = &cfg.events {
        // The journal is a record, not a condition of the run: a full disk does not fail it.
        let _ = actor.ended(out.status, out.oom_killed);
    }
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
    match spawn(&mut plan, cgroup.as_ref(), stdio, close.unwrap_or(-1)) {
        Ok((pid, pidfd, mut streams)) => {
            let captures = std::mem::take(&mut streams.captures);
            if let Some(actor) = &cfg.events {
                let _ = actor.started();
            }
            Ok(Started { pid, pidfd, captures, term: streams.term.take(), relay: Some(streams.relay), cgroup })
        }
        Err(e) => {
            if let Some(cg) = cgroup {
                let _ = cg.remove();
            }
            Err(e)
        }
    }
}

fn spawn(plan: &mut Plan, cgroup: Option<&Cgroup>, stdio: Stdio, close: RawFd) -> Result<(i32, OwnedFd, Streams)> {
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    if let Some(init) = &mut plan.init {
        init.report_to(err_w.as_raw_fd());
    }
    let mut streams = Streams::new(&stdio, plan.tty)?;
    let fds = ChildFds {
        sync_read: sync_r.as_raw_fd(),
        error_write: err_w.as_raw_fd(),
        close: [sync_w.as_raw_fd(), err_r.as_raw_fd(), close, streams.term_socket()],
        stdio: streams.stdio(),
        tty: streams.tty_inside(),
    };
    let cgroup_fd = cgroup.and_then(|c| c.clone_fd());
    // PYC_CLONE=clone takes the path of kernels without clone3, so tests can cover it here.
    let use_clone3 = std::env::var_os("PYC_CLONE").is_none_or(|v| v != "clone");
    let (forked, joined) = unsafe { clone_fork(plan.clone_flags, cgroup_fd, use_clone3) }.map_err(|e| Error::sys("clone", e))?;
    let (pid, pidfd) = match forked {
        Forked::Child => child_main(plan, &fds),
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop((sync_r, err_w));
    streams.forked();
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
    if let Err(e) = joined.and_then(|()| streams.started()) {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(e);
    }
    Ok((pid, pidfd, streams))
}

fn failure_error(plan: &Plan, f: Option<Failure>) -> Error {
    let Some(f) = f else { return Error::Start { what: "the container reported an unknown failure".into(), errno: None } };
    let errno = nix::errno::Errno::from_raw(f.errno);
    let i = f.index as usize;
    let mount_name = || plan.mounts.get(i).map(|m| m.target.display.clone()).unwrap_or_default();
    let what = match f.step {
        Step::NotFound => return Error::CommandNotFound(plan.exec.name.clone()),
        Step::NotExecutable => return Error::CommandNotExecutable(plan.exec.name.clone()),
        Step::Exec => format!("exec {}", plan.exec.name),
        Step::Init => "start the init (pyc-init)".to_string(),
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
    Error::Start { what, errno: Some(errno) }
}
