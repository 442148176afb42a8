//! `--init`: pyc-init as the container's pid 1, a tiny reaper while a child of it runs the
//! command, as tini / docker-init do.
//!
//! Why: pid 1 of a pid namespace inherits every orphan of the container, and the kernel drops
//! signals to it that it has no handler for. A shell or a server as pid 1 often neither reaps
//! nor handles SIGTERM. The reaper blocks every signal (a blocked signal is queued, never
//! dropped, even for a namespace's init), forwards each one to the command, reaps every zombie,
//! and leaves with the command's exit status.

use std::os::fd::RawFd;

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

use crate::command::{exec, Command};
use crate::fds::close_all_but;
use crate::process::reset_signals;
use crate::report::{at, report_and_exit, Failure, Step};

/// Run `command` as pid 1's child and reap until it ends; `report` is pyc's pipe for a command
/// that cannot be executed (127, 126). Never returns.
pub fn main(report: RawFd, command: &Command) -> ! {
    if let Err(f) = start(report, command) {
        report_and_exit(report, f);
    }
    unreachable!("start returns only in failure")
}

fn start(report: RawFd, command: &Command) -> Result<(), Failure> {
    // Dumpable, as any pid 1 (`readlink /proc/1/ns/pid` works inside): what /proc/1/exe opens
    // is the sealed memfd, no file of the host, and it holds no fd of the host either.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"pyc-init".as_ptr(), 0, 0, 0) };
    unsafe { libc::fcntl(report, libc::F_SETFD, libc::FD_CLOEXEC) };
    // Default dispositions first: an ignored signal (Rust's runtime ignores SIGPIPE) would be
    // dropped even while blocked, never forwarded.
    reset_signals().map_err(at(Step::Signals, 1))?;
    // Blocked before the fork: no signal sent between the fork and the exec is lost.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None).map_err(at(Step::Init, 1))?;
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(at(Step::Init, 2)(nix::errno::Errno::last()));
    }
    if pid == 0 {
        if unsafe { libc::isatty(0) } == 1 {
            // With -t the command, not the reaper, is the terminal's foreground group: a typed
            // Ctrl-C reaches it once, not a second time through the reaper. (SIGTTOU is blocked.)
            nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0)).map_err(at(Step::Tty, 2))?;
            nix::unistd::tcsetpgrp(unsafe { std::os::fd::BorrowedFd::borrow_raw(0) }, nix::unistd::getpid()).map_err(at(Step::Tty, 3))?;
        }
        close_all_but(&[0, 1, 2, report]).map_err(at(Step::Stdio, 3))?;
        reset_signals().map_err(at(Step::Signals, 0))?;
        return Err(exec(command));
    }
    // The reaper keeps nothing of pyc's open: the command's exec closes the last writer of the
    // report pipe, and pyc reads that EOF as "the command started".
    let _ = close_all_but(&[0, 1, 2]);
    reap(pid)
}

fn reap(command: libc::pid_t) -> ! {
    let all = SigSet::all();
    loop {
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let sig = unsafe { libc::sigwaitinfo(all.as_ref(), &mut info) };
        if sig < 0 {
            continue; // EINTR
        }
        if sig != libc::SIGCHLD {
            // The command's own group would also reach its children, but some commands put
            // children in groups of their own; the command decides, as it would as pid 1.
            unsafe { libc::kill(command, sig) };
            continue;
        }
        // One SIGCHLD may stand for several children: reap until none is left waiting.
        loop {
            let mut status = 0;
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == command {
                let code = if libc::WIFSIGNALED(status) { 128 + libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) };
                unsafe { libc::_exit(code) };
            }
        }
    }
}
