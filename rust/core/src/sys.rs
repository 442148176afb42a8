//! The few syscalls that nix does not wrap (clone3, openat2, pidfd_open, close_range,
//! sync_file_range).
//! Each is allocation-free so the container's child side may call it.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What a fork-like clone returned: `Child` in the new process, the pid and a pidfd in the parent.
pub enum Forked {
    Child,
    Parent { pid: libc::pid_t, pidfd: OwnedFd },
}

/// Fork-like clone (no new stack: the child runs on a copy of ours) with namespace flags.
/// Tries clone3, which can also place the child in a cgroup v2 directory atomically; falls back
/// to clone + pidfd_open on kernels without clone3. Returns whether the cgroup was joined.
///
/// # Safety
/// The child shares nothing with the parent but a copy of its memory; it must only make
/// async-signal-safe calls and leave through `_exit` or `execve`.
pub unsafe fn clone_fork(flags: u64, cgroup_fd: Option<RawFd>, use_clone3: bool) -> Result<(Forked, bool), Errno> {
    if !use_clone3 {
        return clone_legacy(flags);
    }
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    let ret = libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>());
    match Errno::result(ret) {
        Ok(0) => return Ok((Forked::Child, cgroup_fd.is_some())),
        Ok(pid) => {
            let pidfd = OwnedFd::from_raw_fd(pidfd);
            return Ok((Forked::Parent { pid: pid as libc::pid_t, pidfd }, cgroup_fd.is_some()));
        }
        // Older kernels: no clone3 at all (ENOSYS) or no CLONE_INTO_CGROUP (E2BIG / EINVAL).
        Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL) => {}
        Err(e) => return Err(e),
    }
    clone_legacy(flags)
}

unsafe fn clone_legacy(flags: u64) -> Result<(Forked, bool), Errno> {
    let ret = libc::syscall(libc::SYS_clone, flags as libc::c_ulong | libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
    match Errno::result(ret)? {
        0 => Ok((Forked::Child, false)),
        pid => {
            let pid = pid as libc::pid_t;
            let pidfd = pidfd_open(pid)?;
            Ok((Forked::Parent { pid, pidfd }, false))
        }
    }
}

pub fn pidfd_open(pid: libc::pid_t) -> Result<OwnedFd, Errno> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// openat2 with RESOLVE_IN_ROOT: `path` is resolved as if `root` were `/`, so neither `..` nor
/// a symlink in the image can lead outside it.
pub fn open_in_root(root: RawFd, path: &CStr, flags: i32) -> Result<OwnedFd, Errno> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    let fd = pyc_init::retry::eagain(|| {
        Errno::result(unsafe { libc::syscall(libc::SYS_openat2, root, path.as_ptr(), &mut how as *mut libc::open_how, std::mem::size_of::<libc::open_how>()) })
    })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Start writing `len` bytes of `fd` from `offset` back to disk, without waiting: a hint, so
/// that a later fsync or syncfs has little left to wait for. tmpfs and the like ignore it.
pub fn start_writeback(fd: BorrowedFd<'_>, offset: u64, len: u64) {
    // The call only reads its integer arguments; an error changes nothing the fsync won't do.
    unsafe { libc::sync_file_range(fd.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE) };
}

/// The fds a layer unpack or tar may hold open at once: an eighth of the soft RLIMIT_NOFILE
/// (the rest left to the process, and to other layers at work beside it).
pub fn fd_share() -> usize {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return 32;
    }
    (r.rlim_cur.min(1 << 20) / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_through_dotdot_survives_renames_elsewhere() {
        // Without the retry, 615 of these 20,000 lookups failed with EAGAIN here.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/file"), b"").unwrap();
        let busy = tempfile::tempdir().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let renamer = {
            let (stop, from, to) = (stop.clone(), busy.path().join("x"), busy.path().join("y"));
            std::fs::write(&from, b"").unwrap();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::fs::rename(&from, &to).unwrap();
                    std::fs::rename(&to, &from).unwrap();
                }
            })
        };
        let root = std::fs::File::open(dir.path()).unwrap();
        let failed = (0..20_000).filter(|_| open_in_root(root.as_raw_fd(), c"a/b/../file", libc::O_RDONLY).is_err()).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        renamer.join().unwrap();
        assert_eq!(failed, 0);
    }
}
