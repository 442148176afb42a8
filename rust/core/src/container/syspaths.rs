//! Masked and read-only paths of /proc and /sys (docker's lists), made before pivot_root through
//! descriptors only, each checked after it was opened (allocation-free: the child's side).
//!
//! runc's CVE-2025-31133 came from masking a path with a bind mount of the container's
//! /dev/null, looked up by name: a container that made /dev/null a symlink to a host procfs
//! file (core_pattern) got that file bound, writable, where a masked path was. Here:
//! - the mask's source is an fd of the /dev/null pyc made in its own /dev tmpfs, opened inside
//!   the root and checked to be the character device 1:3 before it is used;
//! - each target is opened inside the root (openat2 RESOLVE_IN_ROOT, no magic links) and
//!   checked to be on the filesystem its path says (procfs for /proc/..., sysfs for /sys/...),
//!   then mounted on by its fd (/proc/self/fd/N), never by a name looked up again.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use super::target::{FdPath, InRoot};

pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
pub const SYSFS_MAGIC: i64 = 0x6265_6572;

/// A path of /proc or /sys, and the filesystem it must be on (0: any).
#[derive(Debug)]
pub struct SysPath {
    pub path: InRoot,
    pub magic: i64,
}

impl SysPath {
    pub fn new(path: &str) -> Result<SysPath, String> {
        let magic = if path.starts_with("/proc/") {
            PROC_SUPER_MAGIC
        } else if path.starts_with("/sys/") {
            SYSFS_MAGIC
        } else {
            0
        };
        Ok(SysPath { path: InRoot::new(path)?, magic })
    }

    /// Open it inside `root` and check its filesystem; None when it does not exist.
    fn open(&self, root: RawFd) -> Result<Option<OwnedFd>, Errno> {
        let fd = match self.path.open(root) {
            Err(Errno::ENOENT) => return Ok(None),
            other => other?,
        };
        if self.magic != 0 && fs_magic(fd.as_raw_fd())? != self.magic {
            return Err(Errno::EXDEV);
        }
        Ok(Some(fd))
    }
}

pub fn fs_magic(fd: RawFd) -> Result<i64, Errno> {
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    Errno::result(unsafe { libc::fstatfs(fd, &mut st) })?;
    // The field's type differs between architectures.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

fn is_dir(fd: RawFd) -> Result<bool, Errno> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    Errno::result(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// The container's /dev/null, opened inside `root` and checked to be the null device.
pub fn open_null(root: RawFd, null: &InRoot) -> Result<OwnedFd, Errno> {
    let fd = null.open(root)?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    Errno::result(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(Errno::EXDEV);
    }
    Ok(fd)
}

/// Hide `p`: a read-only empty tmpfs on a directory, the null device bound on anything else.
pub fn mask(root: RawFd, null: RawFd, p: &SysPath) -> Result<(), Errno> {
    let Some(target) = p.open(root)? else { return Ok(()) };
    let at = FdPath::new(target.as_raw_fd());
    if is_dir(target.as_raw_fd())? {
        mount(Some(c"tmpfs"), at.as_cstr(), Some(c"tmpfs"), MsFlags::MS_RDONLY, None::<&CStr>)
    } else {
        mount(Some(FdPath::new(null).as_cstr()), at.as_cstr(), None::<&CStr>, MsFlags::MS_BIND, None::<&CStr>)
    }
}

/// A sysctl: `value` written to `p` (a /proc/sys file), in the container's own namespaces and
/// before /proc/sys is made read-only; the file is opened inside `root` and checked to be procfs.
pub fn write_sysctl(root: RawFd, p: &SysPath, value: &CStr) -> Result<(), Errno> {
    let fd = p.path.open_write(root)?;
    if fs_magic(fd.as_raw_fd())? != PROC_SUPER_MAGIC {
        return Err(Errno::EXDEV);
    }
    let bytes = value.to_bytes();
    let n = Errno::result(unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) })?;
    if n as usize != bytes.len() {
        return Err(Errno::EIO);
    }
    Ok(())
}

/// Make `p` (and what is mounted below it) read-only: bound on itself, then remounted.
pub fn readonly(root: RawFd, p: &SysPath) -> Result<(), Errno> {
    let Some(target) = p.open(root)? else { return Ok(()) };
    let at = FdPath::new(target.as_raw_fd());
    mount(Some(at.as_cstr()), at.as_cstr(), None::<&CStr>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&CStr>)?;
    drop(target);
    // The old fd names what is under the new mount; open again (and check again) to reach it.
    let Some(mounted) = p.open(root)? else { return Err(Errno::ENOENT) };
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(None::<&CStr>, FdPath::new(mounted.as_raw_fd()).as_cstr(), None::<&CStr>, flags, None::<&CStr>)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_know_their_filesystem() {
        assert_eq!(SysPath::new("/proc/kcore").unwrap().magic, PROC_SUPER_MAGIC);
        assert_eq!(SysPath::new("/sys/firmware").unwrap().magic, SYSFS_MAGIC);
        assert_eq!(SysPath::new("/etc/x").unwrap().magic, 0);
        // A path that is not on its filesystem is refused: here /proc/.. is a plain directory.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/kcore")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        assert_eq!(SysPath::new("/proc/kcore").unwrap().open(root.as_raw_fd()).unwrap_err(), Errno::EXDEV);
        assert!(SysPath::new("/proc/missing").unwrap().open(root.as_raw_fd()).unwrap().is_none());
        std::fs::write(dir.path().join("null"), "").unwrap();
        assert_eq!(open_null(root.as_raw_fd(), &InRoot::new("/null").unwrap()).unwrap_err(), Errno::EXDEV);
    }
}
