//! `pyc exec`: a new process in a running container: its namespaces, its cgroup, its root.
//!
//! The container is found through its cgroup (the process there that is pid 1 of its own pid
//! namespace) and held by a pidfd, so a pid reused meanwhile cannot be joined by mistake. The
//! caller forks (clone3 straight into the cgroup on v2; on v1 the fork writes its own tid into
//! each `tasks` file). The fork is a copy of the caller (a Python interpreter, its open files):
//! nothing of it may ever be seen from inside. So it joins nothing: it makes itself not dumpable,
//! closes every descriptor but the few the command needs, and executes pyc-init from a sealed
//! memfd, which enters the container and forks the command (pyc_init::enter has the why).
//!
//! The fork follows child.rs's rule: no allocation, no lock, only syscalls with arguments
//! prepared here in the parent.

use std::ffi::CString;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use pyc_init::enter::EnterPlan;
use pyc_init::fds::{close_all_but, inherit};
use pyc_init::process::undumpable;
use pyc_init::report::{at, report_and_exit, Failure, Step};
use serde::Deserialize;

use super::config::CgroupConfig;
use super::parent::{catch_forwarded, pipe, read_full, wait, Outcome, Stdio, Streams};
use super::plan::{caps_of, cstring, exec_of};
use crate::cgroup::Cgroup;
use crate::error::{Error, IoContext, Result};
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
    /// The pyc-init program, which enters the container (from a sealed copy).
    pub pyc_init: PathBuf,
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
    /// Held open: the enter plan names it by its number.
    _pidfd: OwnedFd,
    /// v2: the cgroup directory, for clone3's CLONE_INTO_CGROUP.
    cgroup_dir: Option<File>,
    /// Where the fork writes "0" to move itself in when clone3 did not place it:
    /// v1's `tasks` of every hierarchy, or v2's `cgroup.procs`.
    cgroup_tasks: Vec<File>,
    /// The plan for pyc-init, its descriptors still to be filled in.
    enter: EnterPlan,
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
        let cgroup_tasks = cgroup.member_dirs().map(open).collect::<Result<_>>()?;
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
        let enter = EnterPlan {
            pidfd: pidfd.as_raw_fd(),
            namespaces: NAMESPACES,
            cwd: cstring("working directory", cwd)?,
            uid: p.user().uid(),
            gid: p.user().gid(),
            groups: p.user().additional_gids().clone().unwrap_or_default(),
            caps: caps_of(p)?,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            command: exec_of(p)?,
            detach: cfg.detach,
            stdio: [-1; 3],
            tty: None,
            report: -1,
            pid_out: -1,
        };
        Ok(ExecPlan { _pidfd: pidfd, cgroup_dir, cgroup_tasks, enter, tty: p.terminal().unwrap_or(false) })
    }
}

/// Run a command in a running container and, unless detached, wait for it. Blocking.
pub fn exec_in(cfg: &ExecConfig, stdio: Stdio) -> Result<Outcome> {
    let mut plan = ExecPlan::build(cfg)?;
    let (pid_r, pid_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let mut streams = Streams::new(&stdio, plan.tty)?;
    let (_mask, sigfd) = catch_forwarded()?;
    let program = super::sealed::program(&cfg.pyc_init)?;
    plan.enter.stdio = streams.stdio();
    plan.enter.tty = streams.tty_inside();
    plan.enter.report = err_w.as_raw_fd();
    plan.enter.pid_out = pid_w.as_raw_fd();
    let plan_file = plan_memfd(&plan.enter)?;
    let mut keep = plan.enter.fds();
    keep.push(plan_file.as_raw_fd());
    keep.sort_unstable();
    let middle = Middle {
        cgroup_tasks: &plan.cgroup_tasks,
        keep: &keep,
        program: program.as_raw_fd(),
        argv: [cstring("argument", "pyc-init")?, cstring("argument", "--enter")?, cstring("argument", plan_file.as_raw_fd().to_string())?],
        report: err_w.as_raw_fd(),
    };
    let cgroup_fd = plan.cgroup_dir.as_ref().map(|f| f.as_raw_fd());
    let use_clone3 = std::env::var_os("PYC_CLONE").is_none_or(|v| v != "clone");
    let (forked, joined) = unsafe { clone_fork(0, cgroup_fd, use_clone3) }.map_err(|e| Error::sys("clone", e))?;
    let middle = match forked {
        Forked::Child => middle_main(&middle, joined),
        Forked::Parent { pid, .. } => Pid::from_raw(pid),
    };
    drop((pid_w, err_w, plan_file, program));
    streams.forked();
    let mut buf = [0u8; 4];
    let got = read_full(pid_r.as_raw_fd(), &mut buf);
    let _ = waitpid(middle, None);
    let mut report = [0u8; Failure::SIZE];
    let n = read_full(err_r.as_raw_fd(), &mut report);
    let command = (got == 4).then(|| Pid::from_raw(i32::from_ne_bytes(buf)));
    if n == Failure::SIZE {
        if let (Some(c), false) = (command, plan.enter.detach) {
            let _ = waitpid(c, None);
        }
        return Err(failure_error(&plan.enter, Failure::decode(&report)));
    }
    let Some(command) = command else { return Err(Error::Exec { what: "the exec process ended before it started the command".into(), errno: None }) };
    if plan.enter.detach {
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
    if let Err(e) = streams.started() {
        let _ = kill(command, Signal::SIGKILL);
        let _ = waitpid(command, None);
        return Err(e);
    }
    let captures = std::mem::take(&mut streams.captures);
    let out = wait(command, &pidfd, &sigfd, captures, streams.term.as_ref());
    drop(streams);
    out
}

/// The plan, where pyc-init reads it: a memfd (no size limit, unlike an argument or a pipe).
fn plan_memfd(plan: &EnterPlan) -> Result<File> {
    let bytes = rmp_serde::to_vec(plan).map_err(|e| Error::InvalidConfig(e.to_string()))?;
    let raw = unsafe { libc::memfd_create(c"pyc-exec".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(Error::io("memfd_create", "exec plan", std::io::Error::last_os_error()));
    }
    let mut f = unsafe { File::from_raw_fd(raw) };
    f.write_all(&bytes).ctx("write", "exec plan")?;
    f.rewind().ctx("seek", "exec plan")?;
    Ok(f)
}

/// What the fork needs, ready-made.
struct Middle<'a> {
    cgroup_tasks: &'a [File],
    /// The descriptors pyc-init gets, sorted; every other one is closed.
    keep: &'a [RawFd],
    program: RawFd,
    argv: [CString; 3],
    report: RawFd,
}

/// The fork of the caller: into the cgroup, everything else closed, pyc-init executed.
fn middle_main(m: &Middle, joined: bool) -> ! {
    let _ = undumpable();
    if !joined {
        // v1, or v2 without clone3: move this thread in before anything else.
        for (i, f) in m.cgroup_tasks.iter().enumerate() {
            if let Err(e) = nix::unistd::write(f, b"0") {
                report_and_exit(m.report, at(Step::Cgroup, i)(e));
            }
        }
    }
    for &fd in m.keep {
        if let Err(e) = inherit(fd) {
            report_and_exit(m.report, at(Step::Stdio, 4)(e));
        }
    }
    // The program's fd is close-on-exec: execveat still runs it (an ELF, not a script).
    let mut keep = [-1; 16];
    let n = m.keep.len().min(15);
    keep[..n].copy_from_slice(&m.keep[..n]);
    keep[n] = m.program;
    keep[..=n].sort_unstable();
    if let Err(e) = close_all_but(&keep[..=n]) {
        report_and_exit(m.report, at(Step::Stdio, 5)(e));
    }
    let argv = [m.argv[0].as_ptr(), m.argv[1].as_ptr(), m.argv[2].as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    unsafe { libc::syscall(libc::SYS_execveat, m.program, c"".as_ptr(), argv.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH) };
    report_and_exit(m.report, at(Step::Init, 0)(Errno::last()))
}

fn failure_error(plan: &EnterPlan, f: Option<Failure>) -> Error {
    let Some(f) = f else { return Error::Exec { what: "the exec process reported an unknown failure".into(), errno: None } };
    let errno = Errno::from_raw(f.errno);
    let what = match f.step {
        Step::NotFound => return Error::CommandNotFound(plan.command.name.clone()),
        Step::NotExecutable => return Error::CommandNotExecutable(plan.command.name.clone()),
        Step::Chdir => format!("change to working directory {}", plan.cwd.to_string_lossy()),
        Step::Setns => "join the container's namespaces".to_string(),
        Step::Cgroup => "join the container's cgroup".to_string(),
        Step::Init => "start pyc-init".to_string(),
        Step::Uid => format!("set user {}", plan.uid),
        Step::Gid | Step::Groups => format!("set group {}", plan.gid),
        Step::Exec => format!("exec {}", plan.command.name),
        other => format!("{other:?}").to_lowercase(),
    };
    Error::Exec { what, errno: Some(errno) }
}
