//! Paths inside the container's root, resolved so that nothing in the image (a `..`, a symlink
//! to `/`) can make pyc create or mount anything outside it. Built in the parent; the child
//! side only makes syscalls with the strings prepared here.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::stat::{mknodat, Mode, SFlag};

use crate::sys::open_in_root;

/// A path relative to the container root, with every prefix ready for openat2.
#[derive(Debug, Clone)]
pub struct InRoot {
    /// "a", "a/b", "a/b/c": what to open, level by level, from the root.
    prefixes: Vec<CString>,
    /// "a", "b", "c": what to create in the level above when a level is missing.
    names: Vec<CString>,
    /// The path as given, for messages.
    pub display: String,
}

/// What to create at the end of the path when it is missing.
#[derive(Debug, Clone, Copy)]
pub enum Leaf {
    Dir,
    File,
    Node { kind: SFlag, perm: u32, dev: u64 },
}

impl InRoot {
    pub fn new(path: &str) -> Result<Self, String> {
        let names: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
        let cstr = |s: &str| CString::new(s).map_err(|_| format!("path {path:?} has a NUL byte"));
        let mut prefixes = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            prefixes.push(cstr(&names[..=i].join("/"))?);
        }
        let names = names.iter().map(|n| cstr(n)).collect::<Result<_, _>>()?;
        Ok(InRoot { prefixes, names, display: path.to_string() })
    }

    fn full(&self) -> &CStr {
        self.prefixes.last().map(|c| c.as_c_str()).unwrap_or(c".")
    }

    /// Open the path (O_PATH) inside `root`, creating what is missing on the way.
    pub fn ensure(&self, root: RawFd, leaf: Leaf) -> Result<OwnedFd, Errno> {
        match open_in_root(root, self.full(), libc::O_PATH) {
            Err(Errno::ENOENT) => {}
            other => return other,
        }
        let mut parent: Option<OwnedFd> = None;
        let last = self.prefixes.len() - 1;
        for (i, (prefix, name)) in self.prefixes.iter().zip(&self.names).enumerate() {
            let at = parent.as_ref().map(|fd| fd.as_raw_fd()).unwrap_or(root);
            match open_in_root(root, prefix, libc::O_PATH) {
                Ok(fd) => {
                    parent = Some(fd);
                    continue;
                }
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(e),
            }
            let made = match (i == last, leaf) {
                (true, Leaf::File) => nix::fcntl::openat(
                    unsafe { std::os::fd::BorrowedFd::borrow_raw(at) },
                    name.as_c_str(),
                    nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map(drop),
                (true, Leaf::Node { kind, perm, dev }) => {
                    mknodat(unsafe { std::os::fd::BorrowedFd::borrow_raw(at) }, name.as_c_str(), kind, Mode::from_bits_truncate(perm), dev)
                }
                _ => nix::sys::stat::mkdirat(unsafe { std::os::fd::BorrowedFd::borrow_raw(at) }, name.as_c_str(), Mode::from_bits_truncate(0o755)),
            };
            match made {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            parent = Some(open_in_root(root, prefix, libc::O_PATH)?);
        }
        parent.ok_or(Errno::ENOENT)
    }

    /// Open the path as it is now (after a mount on it, this is the mount's root).
    pub fn open(&self, root: RawFd) -> Result<OwnedFd, Errno> {
        open_in_root(root, self.full(), libc::O_PATH)
    }

    /// Open it for writing (no creating): a /proc/sys file.
    pub fn open_write(&self, root: RawFd) -> Result<OwnedFd, Errno> {
        open_in_root(root, self.full(), libc::O_WRONLY)
    }
}

/// "/proc/self/fd/N" without allocating: how the child names an fd it wants to mount on.
pub struct FdPath([u8; 32]);

impl FdPath {
    pub fn new(fd: RawFd) -> Self {
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 12];
        let mut n = fd as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[prefix.len() + i] = digits[len - 1 - i];
        }
        FdPath(buf)
    }

    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).expect("nul-terminated")
    }
}

impl InRoot {
    /// The last component, for *at calls in the parent directory.
    pub fn name(&self) -> &CStr {
        self.names.last().map(|c| c.as_c_str()).unwrap_or(c".")
    }

    /// Open the parent directory of the path inside `root` (O_PATH).
    pub fn parent_open(&self, root: RawFd) -> Result<OwnedFd, Errno> {
        match self.prefixes.len() {
            0 | 1 => open_in_root(root, c".", libc::O_PATH),
            n => open_in_root(root, &self.prefixes[n - 2], libc::O_PATH),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn fd_path_formats_numbers() {
        assert_eq!(FdPath::new(7).as_cstr(), c"/proc/self/fd/7");
        assert_eq!(FdPath::new(1234).as_cstr(), c"/proc/self/fd/1234");
    }

    #[test]
    fn creates_missing_levels_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        InRoot::new("/a/b/c").unwrap().ensure(root.as_raw_fd(), Leaf::File).unwrap();
        assert!(dir.path().join("a/b/c").is_file());
    }

    #[test]
    fn symlinks_cannot_lead_outside() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("evil")).unwrap();
        std::os::unix::fs::symlink("../../..", dir.path().join("up")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        // Resolved as if the root were `/`: the link dangles inside the root, so nothing is made.
        assert_eq!(InRoot::new("evil/x").unwrap().ensure(root.as_raw_fd(), Leaf::Dir).unwrap_err(), Errno::ENOENT);
        // `..` stops at the root.
        InRoot::new("up/y").unwrap().ensure(root.as_raw_fd(), Leaf::Dir).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(dir.path().join("y").is_dir());
    }
}
