//! `pyc exec`: a new process in a running container: its namespaces, its cgroup, its root.
//!
//! The container is found through its cgroup (the process there that is pid 1 of its own pid
//! namespace) and held by a pidfd, so a pid reused meanwhile cannot be joined by mistake. The
//! caller forks (clone3 straight into the cgroup on v2; on v1 the child writes its own tid into
//! each `tasks` file) and the child joins every namespace at once with setns(pidfd). Joining a
//! pid namespace only places the joiner's children in it, so the child forks once more, with
//! CLONE_PARENT: the command becomes the caller's own child, waited for like a container's pid 1
//! (run.rs), and the middle process leaves at once. Since setns into the mount namespace sets
//! root and working directory to that namespace's root, which pivot_root made the container's
//! root, no chroot is needed.
//!
//! The child side follows child.rs's rule: no allocation, no lock, only syscalls with arguments
//! prepared here in the parent.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{kill, pthread_sigmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use serde::Deserialize;

use super::child::{at, become_user, enter_process, exec, reset_signals, Failure, Step};
use super::config::CgroupConfig;
use super::plan::{caps_of, cstring, exec_of, Caps, Exec};
use super::run::{forwarded_set, output_fds, pipe, read_full, terminal_output, wait, MaskGuard, Outcome, Stdio};
use crate::cgroup::Cgroup;
use crate::error::{Error, Result};
use crate::pty::Terminal;
use crate::sys::{clone_fork, pidfd_open, Forked};

/// What Python sends for one exec (msgpack): the process as the OCI spec describes it (the
/// container's own, with exec's command, environment, directory and user) and where the
/// container's cgroup is.
#[derive(Debug, Deserialize)]
pub struct ExecConfig {
    pub process: oci_spec::runtime::Process,
    pub cgroup: CgroupConfig,
    /// Return once the command started (`exec -d`); it is not waited for.
    #[serde(default)]
    pub detach: bool,
}

impl ExecConfig {
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self> {
        rmp_serde::from_slice(bytes).map_err(|e| Error::InvalidConfig(e.to_string()))
    }
}

/// The namespaces an exec joins: every one a container of pyc has but the user namespace,
/// which it does not have.
const NAMESPACES: libc::c_int = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWCGROUP;

struct ExecPlan {
    pidfd: OwnedFd,
    /// v2: the cgroup directory, for clone3's CLONE_INTO_CGROUP.
    cgroup_dir: Option<File>,
    /// Where the middle process writes "0" to move itself in when clone3 did not place it:
    /// v1's `tasks` of every hierarchy, or v2's `cgroup.procs`.
    cgroup_tasks: Vec<File>,
    cwd: CString,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
    caps: Option<Caps>,
    no_new_privs: bool,
    exec: Exec,
    detach: bool,
    tty: bool,
}

/// The pid (in our namespace) of the container's pid 1: the process of its cgroup that is
/// pid 1 in a pid namespace of its own. None when the container is not running.
pub fn container_init(cgroup: &Cgroup) -> Option<i32> {
    let dir = cgroup.dirs().find(|d| d.is_dir())?;
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).ok()?;
    procs.lines().filter_map(|l| l.trim().parse().ok()).find(|&pid| is_ns_init(pid))
}

fn is_ns_init(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let Some(line) = status.lines().find_map(|l| l.strip_prefix("NSpid:")) else { return false };
    let ids: Vec<&str> = line.split_whitespace().collect();
    ids.len() > 1 && ids.last() == Some(&"1")
}

fn not_running(path: &Path) -> Error {
    Error::Exec { what: format!("the container is not running (no process in cgroup {})", path.display()), errno: None }
}

impl ExecPlan {
    fn build(cfg: &ExecConfig) -> Result<ExecPlan> {
        let cgroup = Cgroup::open(&cfg.cgroup.root, &cfg.cgroup.path)?;
        let where_ = cfg.cgroup.root.join(&cfg.cgroup.path);
        let pid = container_init(&cgroup).ok_or_else(|| not_running(&where_))?;
        let pidfd = pidfd_open(pid).map_err(|_| not_running(&where_))?;
        // The pid may have ended and been reused between the look-up and the pidfd.
        if !is_ns_init(pid) {
            return Err(not_running(&where_));
        }
        let file = if cgroup.is_v2() { "cgroup.procs" } else { "tasks" };
        let open = |d: &Path| -> Result<File> {
            let f = d.join(file);
            std::fs::OpenOptions::new().write(true).open(&f).map_err(|e| Error::io("open", f, e))
        };
        let cgroup_tasks = cgroup.dirs().filter(|d| d.is_dir()).map(open).collect::<Result<_>>()?;
        let cgroup_dir = match cgroup.is_v2() {
            true => cgroup.dirs().next().map(|d| File::open(d).map_err(|e| Error::io("open", d, e))).transpose()?,
            false => None,
        };
        let p = &cfg.process;
        if cfg.detach && p.terminal().unwrap_or(false) {
            return Err(Error::InvalidConfig("a detached exec cannot have a terminal (-d with -t)".into()));
        }
        let cwd = p.cwd().to_string_lossy().into_owned();
        if !cwd.starts_with('/') {
            return Err(Error::InvalidConfig(format!("working directory {cwd:?} is not absolute")));
        }
        Ok(ExecPlan {
            pidfd,
            cgroup_dir,
            cgroup_tasks,
            cwd: cstring("working directory", cwd)?,
            uid: p.user().uid(),
            gid: p.user().gid(),
            groups: p.user().additional_gids().clone().unwrap_or_default(),
            caps: caps_of(p)?,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            exec: exec_of(p)?,
            detach: cfg.detach,
            tty: p.terminal().unwrap_or(false),
        })
    }
}

/// Run a command in a running container and, unless detached, wait for it. Blocking.
pub fn exec_in(cfg: &ExecConfig, stdio: Stdio) -> Result<Outcome> {
    let plan = ExecPlan::build(cfg)?;
    let (pid_r, pid_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let devnull;
    let stdin = match stdio.stdin {
        Some(fd) => fd,
        None => {
            devnull = nix::fcntl::open(c"/dev/null", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| Error::sys("open /dev/null", e))?;
            devnull.as_raw_fd()
        }
    };
    let (captures, child_ends, out_fds) = output_fds(&stdio)?;
    let mut term = if plan.tty { Some(Terminal::open(stdio.stdin, terminal_output(&stdio)?)?) } else { None };
    // As in run.rs: signals for the command are blocked before the fork so none is lost.
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_set()), Some(&mut old)).map_err(|e| Error::sys("sigprocmask", e))?;
    let _mask = MaskGuard(old);
    let sigfd = SignalFd::with_flags(&forwarded_set(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|e| Error::sys("signalfd", e))?;

    let fds = Fds {
        pid_write: pid_w.as_raw_fd(),
        error_write: err_w.as_raw_fd(),
        close: [pid_r.as_raw_fd(), err_r.as_raw_fd(), sigfd.as_fd().as_raw_fd(), term.as_ref().map_or(-1, |t| t.socket_fd())],
        stdio: [stdin, out_fds[0], out_fds[1]],
        tty: term.as_ref().map(|t| t.inside()),
    };
    let cgroup_fd = plan.cgroup_dir.as_ref().map(|f| f.as_raw_fd());
    let use_clone3 = std::env::var_os("PYC_CLONE").is_none_or(|v| v != "clone");
    let (forked, joined) = unsafe { clone_fork(0, cgroup_fd, use_clone3) }.map_err(|e| Error::sys("clone", e))?;
    let middle = match forked {
        Forked::Child => middle_main(&plan, &fds, joined),
        Forked::Parent { pid, .. } => Pid::from_raw(pid),
    };
    drop((pid_w, err_w, child_ends));
    let mut buf = [0u8; 4];
    let got = read_full(pid_r.as_raw_fd(), &mut buf);
    let _ = waitpid(middle, None);
    let mut report = [0u8; Failure::SIZE];
    let n = read_full(err_r.as_raw_fd(), &mut report);
    let command = (got == 4).then(|| Pid::from_raw(i32::from_ne_bytes(buf)));
    if n == Failure::SIZE {
        if let (Some(c), false) = (command, plan.detach) {
            let _ = waitpid(c, None);
        }
        return Err(failure_error(&plan, Failure::decode(&report)));
    }
    let Some(command) = command else { return Err(Error::Exec { what: "the exec process ended before it started the command".into(), errno: None }) };
    if plan.detach {
        return Ok(Outcome { pid: command.as_raw(), status: 0, signal: None, stdout: None, stderr: None, oom_killed: false });
    }
    let pidfd = match pidfd_open(command.as_raw()) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = kill(command, Signal::SIGKILL);
            let _ = waitpid(command, None);
            return Err(Error::sys("pidfd_open", e));
        }
    };
    if let Some(t) = &mut term {
        if let Err(e) = t.start() {
            let _ = kill(command, Signal::SIGKILL);
            let _ = waitpid(command, None);
            return Err(e);
        }
    }
    wait(command, &pidfd, &sigfd, captures, term.as_ref())
}

struct Fds {
    pid_write: RawFd,
    error_write: RawFd,
    close: [RawFd; 4],
    stdio: [RawFd; 3],
    tty: Option<crate::pty::Inside>,
}

fn report(fds: &Fds, f: Failure) -> ! {
    let bytes = f.encode();
    unsafe {
        libc::write(fds.error_write, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(1)
    }
}

/// The process between the caller and the command: joins, forks the command, leaves.
fn middle_main(plan: &ExecPlan, fds: &Fds, joined: bool) -> ! {
    for fd in fds.close.into_iter().filter(|&fd| fd >= 0) {
        unsafe { libc::close(fd) };
    }
    if !joined {
        // v1, or v2 without clone3: move this thread in before anything else.
        for (i, f) in plan.cgroup_tasks.iter().enumerate() {
            if let Err(e) = nix::unistd::write(f, b"0") {
                report(fds, at(Step::Cgroup, i)(e));
            }
        }
    }
    if let Err(e) = Errno::result(unsafe { libc::setns(plan.pidfd.as_raw_fd(), NAMESPACES) }) {
        report(fds, at(Step::Setns, 0)(e));
    }
    // Detached, the command is left to the reaper of our namespace once we leave; waited
    // for, it becomes the caller's child.
    let flags = if plan.detach { 0 } else { libc::CLONE_PARENT as libc::c_ulong };
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    match pid {
        0 => {
            let f = match command_main(plan, fds) {
                Ok(()) => at(Step::Exec, 0)(Errno::UnknownErrno),
                Err(f) => f,
            };
            report(fds, f)
        }
        p if p < 0 => report(fds, at(Step::Sync, 0)(Errno::last())),
        p => {
            let bytes = (p as i32).to_ne_bytes();
            unsafe {
                libc::write(fds.pid_write, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0)
            }
        }
    }
}

fn command_main(plan: &ExecPlan, fds: &Fds) -> Result<(), Failure> {
    unsafe { libc::close(fds.pid_write) };
    enter_process(&plan.cwd, plan.no_new_privs, fds.stdio, fds.tty.as_ref())?;
    become_user(plan.uid, plan.gid, &plan.groups, plan.caps.as_ref())?;
    crate::sys::cloexec_from(3).map_err(at(Step::Stdio, 3))?;
    reset_signals().map_err(at(Step::Signals, 0))?;
    exec(&plan.exec)
}

fn failure_error(plan: &ExecPlan, f: Option<Failure>) -> Error {
    let Some(f) = f else { return Error::Exec { what: "the exec process reported an unknown failure".into(), errno: None } };
    let errno = Errno::from_raw(f.errno);
    let what = match f.step {
        Step::NotFound => return Error::CommandNotFound(plan.exec.name.clone()),
        Step::NotExecutable => return Error::CommandNotExecutable(plan.exec.name.clone()),
        Step::Chdir => format!("change to working directory {}", plan.cwd.to_string_lossy()),
        Step::Setns => "join the container's namespaces".to_string(),
        Step::Cgroup => "join the container's cgroup".to_string(),
        Step::Uid => format!("set user {}", plan.uid),
        Step::Gid | Step::Groups => format!("set group {}", plan.gid),
        Step::Exec => format!("exec {}", plan.exec.name),
        other => format!("{other:?}").to_lowercase(),
    };
    Error::Exec { what, errno: Some(errno) }
}
