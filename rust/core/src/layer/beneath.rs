//! Paths of a layer tar, looked up inside the layer's directory and never outside it.
//!
//! Every lookup is an openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) on the directory's fd:
//! the kernel fails it (EXDEV) when a `..` or a symlink on the way, relative or absolute, would
//! lead out, however the tar arranged its entries. No path is ever resolved from `/`.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

/// A tar entry's path, relative and clean: no empty or `.` components; each `..` drops the
/// component before it. None for an absolute path or one whose `..` climbs above the root.
pub fn clean(path: &[u8]) -> Option<Vec<u8>> {
    if path.first() == Some(&b'/') {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                let cut = out.iter().rposition(|&b| b == b'/');
                if out.is_empty() {
                    return None;
                }
                out.truncate(cut.unwrap_or(0));
            }
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    Some(out)
}

/// (parent, name) of a clean path; the root itself has an empty name.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

pub fn cstr(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::BadArchive(format!("NUL byte in path {}", String::from_utf8_lossy(bytes))))
}

/// A layer's directory, for lookups beneath it.
pub struct Root {
    fd: OwnedFd,
}

const HOW: ResolveFlag = ResolveFlag::RESOLVE_BENEATH.union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

impl Root {
    pub fn open(dir: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::sys(format!("open {}", dir.display()), e))?;
        Ok(Root { fd })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Open `path` (clean, relative) beneath the root, with `flags` (O_NOFOLLOW to not follow
    /// a symlink at the last component; those on the way are followed, and checked).
    pub fn open_beneath(&self, path: &[u8], flags: OFlag) -> Result<OwnedFd, Errno> {
        if path.is_empty() {
            return nix::unistd::dup(&self.fd);
        }
        let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
        pyc_init::retry::eagain(|| openat2(self.fd.as_fd(), c.as_c_str(), OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(HOW)))
    }

    /// The directory `path` (clean, relative; empty for the root), made (0755, like tar's
    /// implicit directories) where it is missing.
    pub fn dir(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        match self.open_beneath(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Err(Errno::ENOENT) => self.make_dirs(path),
            other => other,
        }
    }

    fn make_dirs(&self, path: &[u8]) -> Result<OwnedFd, Errno> {
        let mut dir = nix::unistd::dup(&self.fd)?;
        let mut end = 0;
        for part in path.split(|&b| b == b'/') {
            end += part.len();
            let c = CString::new(part).map_err(|_| Errno::EINVAL)?;
            match unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) } {
                0 => {}
                _ if Errno::last() == Errno::EEXIST => {}
                _ => return Err(Errno::last()),
            }
            // Looked up again from the root so a symlink met on the way is checked as a whole.
            dir = self.open_beneath(&path[..end], OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
            end += 1;
        }
        Ok(dir)
    }
}

/// An fd from a raw one the caller owns now.
pub fn owned(fd: i32) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        Err(Errno::last())
    } else {
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths() {
        assert_eq!(clean(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(clean(b"a/../b").unwrap(), b"b");
        assert_eq!(clean(b"./").unwrap(), b"");
        assert_eq!(clean(b"/etc/passwd"), None);
        assert_eq!(clean(b"a/../../x"), None);
        assert_eq!(clean(b"../x"), None);
        assert_eq!(split(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split(b"c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn lookups_stay_beneath() {
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/tmp", t.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../..", t.path().join("up")).unwrap();
        std::os::unix::fs::symlink("d", t.path().join("ok")).unwrap();
        let root = Root::open(t.path()).unwrap();
        assert_eq!(root.dir(b"abs").err(), Some(Errno::EXDEV));
        assert_eq!(root.dir(b"up/x").err(), Some(Errno::EXDEV));
        assert!(root.dir(b"d/e").is_ok());
        assert!(root.dir(b"ok/e/f").is_ok());
        assert!(t.path().join("d/e/f").is_dir());
    }
}
