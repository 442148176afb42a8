//! Descriptors on the way into a container (allocation-free).

use std::os::fd::RawFd;

use nix::errno::Errno;

/// Mark every descriptor from `first` on close-on-exec.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    Errno::result(ret).map(drop)
}

/// Close every descriptor but those in `keep` (sorted ascending, no duplicates, -1 entries
/// ignored): not merely close-on-exec, so that nothing else is open at any moment after.
pub fn close_all_but(keep: &[RawFd]) -> Result<(), Errno> {
    let mut next: u32 = 0;
    for &fd in keep.iter().filter(|&&fd| fd >= 0) {
        let fd = fd as u32;
        if fd > next {
            Errno::result(unsafe { libc::syscall(libc::SYS_close_range, next, fd - 1, 0u32) })?;
        }
        next = next.max(fd + 1);
    }
    Errno::result(unsafe { libc::syscall(libc::SYS_close_range, next, u32::MAX, 0u32) }).map(drop)
}

/// Keep `fd` open across exec.
pub fn inherit(fd: RawFd) -> Result<(), Errno> {
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_the_gaps_and_the_rest() {
        // In a child: closing descriptors must not disturb the test harness.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let fds: Vec<RawFd> = (0..6).map(|_| unsafe { libc::dup(2) }).collect();
            let keep = [fds[1], fds[3]];
            let ok = close_all_but(&keep).is_ok();
            let open = |fd: RawFd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
            let right = ok && open(fds[1]) && open(fds[3]) && !open(fds[0]) && !open(fds[2]) && !open(fds[5]) && !open(2);
            unsafe { libc::_exit(if right { 0 } else { 1 }) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}
