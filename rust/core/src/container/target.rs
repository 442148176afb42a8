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

    /// Open the path (O_PATH) inside `root`, creating what is missing on the way. A symlink on
    /// the way that leads to nothing (a dangling one) is followed as the kernel would inside
    /// the root, and what it names is made there, as docker does: `/data -> /../../host` makes
    /// `<root>/host`. Nothing is ever made through a symlink (mkdirat, mknodat and O_EXCL |
    /// O_NOFOLLOW never follow one), so nothing outside the root is touched. Allocates nothing.
    pub fn ensure(&self, root: RawFd, leaf: Leaf) -> Result<OwnedFd, Errno> {
        match open_in_root(root, self.full(), libc::O_PATH) {
            Err(Errno::ENOENT) => {}
            other => return other,
        }
        let mut path = PathBytes::new();
        path.push(self.full().to_bytes())?;
        ensure_in(root, &mut path, leaf)
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

/// The kernel's bound on the symlinks one lookup follows.
const MAX_LINKS: usize = 40;
const MAX_PATH: usize = libc::PATH_MAX as usize;

/// A path on the stack (the child side may not allocate), with room for a NUL after it.
struct PathBytes {
    bytes: [u8; MAX_PATH + 1],
    len: usize,
}

impl PathBytes {
    fn new() -> Self {
        PathBytes { bytes: [0; MAX_PATH + 1], len: 0 }
    }

    fn push(&mut self, part: &[u8]) -> Result<(), Errno> {
        let end = self.len + part.len();
        if end >= MAX_PATH {
            return Err(Errno::ENAMETOOLONG);
        }
        self.bytes[self.len..end].copy_from_slice(part);
        self.len = end;
        Ok(())
    }

    /// The next component at or after `i`: (start, end), "" and "." skipped.
    fn component(&self, mut i: usize) -> Option<(usize, usize)> {
        loop {
            while i < self.len && self.bytes[i] == b'/' {
                i += 1;
            }
            if i == self.len {
                return None;
            }
            let start = i;
            while i < self.len && self.bytes[i] != b'/' {
                i += 1;
            }
            if &self.bytes[start..i] != b"." {
                return Some((start, i));
            }
        }
    }

    /// The level that ends at `end`, opened beneath the root; None when it is not there.
    fn open_level(&mut self, root: RawFd, end: usize) -> Result<Option<OwnedFd>, Errno> {
        match self.with_cstr(0, end, |p| open_in_root(root, p, libc::O_PATH)) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Call `f` with bytes[from..end] as a C string (a NUL put at `end` for the call).
    fn with_cstr<T>(&mut self, from: usize, end: usize, f: impl FnOnce(&CStr) -> T) -> T {
        let kept = self.bytes[end];
        self.bytes[end] = 0;
        // No NUL inside: InRoot::new refuses one, and a symlink's target cannot hold one.
        let result = f(CStr::from_bytes_with_nul(&self.bytes[from..=end]).expect("no NUL inside a path"));
        self.bytes[end] = kept;
        result
    }
}

/// `ensure`'s walk: each level opened beneath the root, or made in the level above; a level
/// that is there but cannot be opened is a dangling symlink, whose target (beneath the root,
/// or beside the link) takes its place in the path, and the walk starts again.
fn ensure_in(root: RawFd, path: &mut PathBytes, leaf: Leaf) -> Result<OwnedFd, Errno> {
    let mut links = 0;
    'walk: loop {
        let mut parent: Option<OwnedFd> = None;
        let mut parent_end = 0;
        let mut next = path.component(0);
        while let Some((start, end)) = next {
            next = path.component(end);
            let at = parent.as_ref().map(|fd| fd.as_raw_fd()).unwrap_or(root);
            if let Some(fd) = path.open_level(root, end)? {
                (parent, parent_end) = (Some(fd), end);
                continue;
            }
            let at_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(at) };
            let made = path.with_cstr(start, end, |name| match (next.is_none(), leaf) {
                (true, Leaf::File) => nix::fcntl::openat(
                    at_fd,
                    name,
                    nix::fcntl::OFlag::O_CREAT
                        | nix::fcntl::OFlag::O_EXCL
                        | nix::fcntl::OFlag::O_NOFOLLOW
                        | nix::fcntl::OFlag::O_WRONLY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )
                .map(drop),
                (true, Leaf::Node { kind, perm, dev }) => mknodat(at_fd, name, kind, Mode::from_bits_truncate(perm), dev),
                _ => nix::sys::stat::mkdirat(at_fd, name, Mode::from_bits_truncate(0o755)),
            });
            match made {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            if let Some(fd) = path.open_level(root, end)? {
                (parent, parent_end) = (Some(fd), end);
                continue;
            }
            let mut target = [0u8; MAX_PATH];
            let n = path.with_cstr(start, end, |name| unsafe { libc::readlinkat(at, name.as_ptr(), target.as_mut_ptr().cast(), MAX_PATH) });
            // Not a symlink (EINVAL): something that was there a moment ago and is gone.
            let n = Errno::result(n).map_err(|e| if e == Errno::EINVAL { Errno::ENOENT } else { e })? as usize;
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::ELOOP);
            }
            if n >= MAX_PATH {
                return Err(Errno::ENAMETOOLONG);
            }
            let mut followed = PathBytes::new();
            if target[0] != b'/' {
                followed.push(&path.bytes[..parent_end])?;
                followed.push(b"/")?;
            }
            followed.push(&target[..n])?;
            followed.push(&path.bytes[end..path.len])?;
            path.bytes[..followed.len].copy_from_slice(&followed.bytes[..followed.len]);
            path.len = followed.len;
            continue 'walk;
        }
        return match parent {
            Some(fd) => Ok(fd),
            None => open_in_root(root, c".", libc::O_PATH),
        };
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
        std::os::unix::fs::symlink(outside.path().join("file"), dir.path().join("evil-file")).unwrap();
        std::os::unix::fs::symlink(format!("../../../..{}", outside.path().join("rel").display()), dir.path().join("rel")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        // Resolved as if the root were `/`: the link dangles inside the root, and what it names
        // is made there, never outside.
        InRoot::new("evil/x").unwrap().ensure(root.as_raw_fd(), Leaf::Dir).unwrap();
        let inside = dir.path().join(outside.path().strip_prefix("/").unwrap());
        assert!(inside.join("x").is_dir());
        InRoot::new("evil-file").unwrap().ensure(root.as_raw_fd(), Leaf::File).unwrap();
        assert!(inside.join("file").is_file());
        InRoot::new("rel/z").unwrap().ensure(root.as_raw_fd(), Leaf::Dir).unwrap();
        assert!(inside.join("rel/z").is_dir());
        // `..` stops at the root.
        InRoot::new("up/y").unwrap().ensure(root.as_raw_fd(), Leaf::Dir).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        assert!(dir.path().join("y").is_dir());
        assert!(std::fs::symlink_metadata(dir.path().join("evil")).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_symlink_loop_is_eloop() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        assert_eq!(InRoot::new("a/x").unwrap().ensure(root.as_raw_fd(), Leaf::Dir).unwrap_err(), Errno::ELOOP);
    }
}
