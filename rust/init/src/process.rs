//! What every container process sets up last, in the container's mount namespace: its working
//! directory, no_new_privs, its stdio and session, and signals as a new program expects them
//! (allocation-free).

use std::ffi::CStr;
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

use crate::report::{at, Failure, Step};
use crate::tty::{make_controlling, open_inside, Inside};

/// The working directory, no_new_privs, and stdio: the given fds, or (`-t`) a pty made inside.
/// The process leads a session of its own either way. Without a terminal that matters: a
/// process still in the session of the user's terminal could type into it (TIOCSTI) or change
/// its settings, were it ever to get an fd of it.
pub fn enter_process(cwd: &CStr, no_new_privs: bool, stdio: [RawFd; 3], tty: Option<&Inside>) -> Result<(), Failure> {
    chdir_in_root(cwd).map_err(at(Step::Chdir, 0))?;
    if no_new_privs {
        Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map_err(at(Step::NoNewPrivs, 0))?;
    }
    let stdio = match tty {
        Some(t) => [open_inside(t).map_err(at(Step::Tty, 0))?; 3],
        None => stdio,
    };
    for (i, fd) in stdio.iter().enumerate() {
        let target = i as RawFd;
        if *fd == target {
            // dup2 onto itself keeps a close-on-exec flag; the command must get the fd.
            Errno::result(unsafe { libc::fcntl(target, libc::F_SETFD, 0) }).map_err(at(Step::Stdio, i))?;
        } else {
            Errno::result(unsafe { libc::dup2(*fd, target) }).map_err(at(Step::Stdio, i))?;
        }
    }
    match tty {
        Some(_) => make_controlling().map_err(at(Step::Tty, 1)),
        None => nix::unistd::setsid().map(drop).map_err(at(Step::Session, 0)),
    }
}

/// Change to `cwd` resolved inside the process's root, whatever it names: `..` stops at the
/// root, a symlink resolves as if the root were `/`, and a magic link of /proc (such as
/// /proc/self/fd/N, the way out of CVE-2024-21626) is refused.
pub fn chdir_in_root(cwd: &CStr) -> Result<(), Errno> {
    let root = Errno::result(unsafe { libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    let dir = crate::retry::eagain(|| {
        Errno::result(unsafe { libc::syscall(libc::SYS_openat2, root, cwd.as_ptr(), &how as *const libc::open_how, std::mem::size_of::<libc::open_how>()) })
    });
    unsafe { libc::close(root) };
    let dir = dir? as RawFd;
    let res = Errno::result(unsafe { libc::fchdir(dir) });
    unsafe { libc::close(dir) };
    res.map(drop)
}

/// Default dispositions and an empty mask: Python ignores SIGPIPE and SIGXFSZ, and an ignored
/// signal stays ignored across exec.
pub fn reset_signals() -> Result<(), Errno> {
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// Not dumpable: /proc/<pid>/exe, fd/, mem, environ of this process (and of its children until
/// they exec) are closed to everyone but holders of CAP_SYS_PTRACE.
pub fn undumpable() -> Result<(), Errno> {
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }).map(drop)
}
