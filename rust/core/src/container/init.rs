//! `--init`: the container's pid 1 stays behind as a tiny reaper while a child of it runs the
//! command, as tini / docker-init do.
//!
//! Why: pid 1 of a pid namespace inherits every orphan of the container, and the kernel drops
//! signals to it that it has no handler for. A shell or a server as pid 1 often neither reaps
//! nor handles SIGTERM. The reaper blocks every signal (a blocked signal is queued, never
//! dropped, even for a namespace's init), forwards each one to the command, reaps every zombie,
//! and leaves with the command's exit status.
//!
//! Runs on the child side of the container's clone: allocation-free like the rest of child.rs.

use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

/// Fork the command off pid 1. Returns in the child, which goes on to exec the command; pid 1
/// never returns from here. The caller's mask is all-blocked on return, and the child's
/// signal reset before exec unblocks it, so no signal sent between the fork and the exec is lost.
pub fn fork_command(tty: bool) -> Result<(), Errno> {
    let all = SigSet::all();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None)?;
    // A raw fork: libc's runs the fork handlers of the interpreter this memory was copied from.
    let pid = Errno::result(unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) })?;
    if pid == 0 {
        if tty {
            // The command, not the reaper, is the terminal's foreground group: a typed Ctrl-C
            // reaches it once, not a second time through the reaper. (SIGTTOU is blocked.)
            nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))?;
            nix::unistd::tcsetpgrp(unsafe { std::os::fd::BorrowedFd::borrow_raw(0) }, nix::unistd::getpid())?;
        }
        return Ok(());
    }
    reap(pid as libc::pid_t)
}

fn reap(command: libc::pid_t) -> ! {
    // Nothing of the container's setup stays open in the reaper (the error pipe among them: the
    // parent reads its EOF as "the command started"). stdio stays, for the command's sake.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    unsafe { libc::prctl(libc::PR_SET_NAME, c"pyc-init".as_ptr(), 0, 0, 0) };
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
