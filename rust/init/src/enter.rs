//! `pyc exec`: pyc-init as the process that enters a running container.
//!
//! pyc (the Python process, or any caller of pyc-core's `exec_in`) forks; the fork joins the
//! container's cgroup, closes every descriptor but the ones below, and executes pyc-init from a
//! sealed memfd with `--enter FD`, FD holding this plan. Only then does anything join the
//! container: pyc-init, not dumpable, joins every namespace of the container's pid 1 at once
//! (setns on its pidfd) and forks the command's process, which is the first one of this exec to
//! be seen inside (joining a pid namespace only places the joiner's children in it). That
//! process holds stdio, the report pipe and nothing else of the host, and runs pyc-init's code
//! from a memfd no one can write, until it executes the command.
//!
//! With CLONE_PARENT the command becomes pyc's own child, waited for like a container's pid 1;
//! the entering pyc-init leaves at once.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{FromRawFd, RawFd};

use nix::errno::Errno;

use crate::command::{exec, Command};
use crate::fds::close_all_but;
use crate::process::{enter_process, reset_signals, undumpable};
use crate::report::{at, report_and_exit, Failure, Step};
use crate::seccomp::Filter;
use crate::tty::Inside;
use crate::user::{become_user, Caps};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnterPlan {
    /// A pidfd of the container's pid 1, and the namespaces of it to join.
    pub pidfd: RawFd,
    pub namespaces: i32,
    pub cwd: CString,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// The container's (RLIMIT_*, soft, hard) and OOM score adjustment, as docker gives them to
    /// an exec'd process too.
    #[serde(default)]
    pub rlimits: Vec<(u32, u64, u64)>,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    pub caps: Option<Caps>,
    pub no_new_privs: bool,
    /// The container's seccomp filter, compiled by pyc (None: unconfined).
    pub seccomp: Option<Filter>,
    pub command: Command,
    /// Leave the command to the container (`exec -d`) instead of making it pyc's child.
    pub detach: bool,
    pub stdio: [RawFd; 3],
    pub tty: Option<Inside>,
    /// pyc's pipe for a failure record (report.rs).
    pub report: RawFd,
    /// Where the command's pid (4 bytes, native order) goes once it is forked.
    pub pid_out: RawFd,
}

impl EnterPlan {
    /// Every descriptor pyc must leave open for pyc-init, sorted.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.pidfd, self.report, self.pid_out];
        fds.extend(self.stdio);
        fds.extend(self.tty.map(|t| t.socket));
        fds.retain(|&fd| fd >= 0);
        fds.sort_unstable();
        fds.dedup();
        fds
    }
}

/// pyc-init --enter FD. Never returns.
pub fn main(plan_fd: RawFd) -> ! {
    // First of all: nothing of this process is to be read through /proc from now on.
    if undumpable().is_err() {
        unsafe { libc::_exit(125) };
    }
    let mut bytes = Vec::new();
    let read = unsafe { std::fs::File::from_raw_fd(plan_fd) }.read_to_end(&mut bytes);
    let Ok(plan) = read.map_err(drop).and_then(|_| rmp_serde::from_slice::<EnterPlan>(&bytes).map_err(drop)) else {
        // pyc sees neither a pid nor a failure record, and says the exec ended early.
        unsafe { libc::_exit(125) };
    };
    unsafe { libc::fcntl(plan.report, libc::F_SETFD, libc::FD_CLOEXEC) };
    // Set here, on the host's /proc before anything joins the container; the command inherits it.
    if let Some(adj) = plan.oom_score_adj {
        if let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            report_and_exit(plan.report, at(Step::OomScoreAdj, 0)(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))));
        }
    }
    if let Err(f) = enter(&plan) {
        report_and_exit(plan.report, f);
    }
    unsafe { libc::_exit(0) }
}

fn enter(plan: &EnterPlan) -> Result<(), Failure> {
    Errno::result(unsafe { libc::setns(plan.pidfd, plan.namespaces) }).map_err(at(Step::Setns, 0))?;
    unsafe { libc::close(plan.pidfd) };
    // Detached, the command is left to the container's pid 1 once we leave; waited for, it
    // becomes pyc's child.
    let flags = if plan.detach { 0 } else { libc::CLONE_PARENT as libc::c_ulong };
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    match pid {
        0 => Err(command_main(plan)),
        p if p < 0 => Err(at(Step::Sync, 0)(Errno::last())),
        p => {
            let bytes = (p as i32).to_ne_bytes();
            unsafe { libc::write(plan.pid_out, bytes.as_ptr().cast(), bytes.len()) };
            Ok(())
        }
    }
}

/// After the descriptors are closed: a low RLIMIT_NOFILE must not fail what came before.
fn set_rlimits(rlimits: &[(u32, u64, u64)]) -> Result<(), Failure> {
    for (i, &(resource, soft, hard)) in rlimits.iter().enumerate() {
        let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        Errno::result(unsafe { libc::setrlimit(resource as libc::__rlimit_resource_t, &limit) }).map_err(at(Step::Rlimit, i))?;
    }
    Ok(())
}

/// The command's process, inside the container; returns only in failure.
fn command_main(plan: &EnterPlan) -> Failure {
    unsafe { libc::close(plan.pid_out) };
    let (early, late) = Filter::when(plan.seccomp.as_ref(), plan.no_new_privs, plan.uid, plan.caps.as_ref());
    let ready = enter_process(&plan.cwd, plan.no_new_privs, plan.stdio, plan.tty.as_ref())
        .and_then(|()| become_user(plan.uid, plan.gid, &plan.groups, plan.caps.as_ref(), early))
        .and_then(|()| close_all_but(&[0, 1, 2, plan.report]).map_err(at(Step::Stdio, 3)))
        .and_then(|()| set_rlimits(&plan.rlimits))
        .and_then(|()| reset_signals().map_err(at(Step::Signals, 0)))
        .and_then(|()| late.map_or(Ok(()), |f| f.load().map_err(at(Step::Seccomp, 1))));
    match ready {
        Ok(()) => exec(&plan.command),
        Err(f) => f,
    }
}
