//! overlayfs' two marks, in a layer's directory and in an OCI layer tar, and the lookup of a
//! path through a stack of layers that they steer. The one place these rules live:
//!
//! - a path deleted from the layers below: a 0/0 character device on disk, an empty `.wh.NAME`
//!   in a tar;
//! - a directory that hides what the layers below hold in it: the xattr
//!   `trusted.overlay.opaque` = `y` on disk, an empty `.wh..wh..opq` inside it in a tar.
//!
//! unpack turns the tar names into the marks, diff and commit the marks into tar names, and
//! the hardlinks into lower layers and diff's "changed or added" look paths up through them.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, FileStat, SFlag};

use super::beneath::Root;
use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_NAME: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &CStr = c"trusted.overlay.opaque";

/// What the last component of a path in a layer tar stands for.
#[derive(Debug, PartialEq, Eq)]
pub enum TarName<'a> {
    /// `.wh..wh..opq`: the directory it is in is opaque.
    Opaque,
    /// `.wh.NAME`: NAME is deleted.
    Whiteout(&'a [u8]),
    /// `.wh.`, `.wh..`, `.wh...`: a whiteout that names no sibling but the directory itself
    /// or its parent, which a layer cannot delete (an archive that holds one is refused).
    NoSibling,
    /// Any other name: the entry itself.
    Plain,
}

pub fn tar_name(name: &[u8]) -> TarName<'_> {
    if name == OPAQUE_NAME {
        return TarName::Opaque;
    }
    match name.strip_prefix(WHITEOUT_PREFIX) {
        Some(b"" | b"." | b"..") => TarName::NoSibling,
        Some(hidden) => TarName::Whiteout(hidden),
        None => TarName::Plain,
    }
}

/// The tar name that deletes `name`.
pub fn whiteout_tar_name(name: &OsStr) -> OsString {
    let mut out = WHITEOUT_PREFIX.to_vec();
    out.extend_from_slice(name.as_bytes());
    OsString::from_vec(out)
}

/// The tar name, inside a directory, that makes it opaque.
pub fn opaque_tar_name() -> &'static OsStr {
    OsStr::from_bytes(OPAQUE_NAME)
}

/// Whether a file of this mode and device number is a whiteout.
pub fn is_whiteout(mode: u32, rdev: u64) -> bool {
    mode & libc::S_IFMT == libc::S_IFCHR && rdev == 0
}

/// Whether `dir` holds something at `name` that is no whiteout (a symlink there is not
/// followed).
pub fn present_at(dir: RawFd, name: &CStr) -> bool {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let ret = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    ret == 0 && !is_whiteout(st.st_mode, st.st_rdev)
}

/// mknodat of a whiteout at `name` in `dir`: 0, or -1 with errno set.
pub fn mknod_whiteout(dir: RawFd, name: &CStr) -> libc::c_int {
    unsafe { libc::mknodat(dir, name.as_ptr(), libc::S_IFCHR, 0) }
}

/// Mark the open directory `fd` opaque.
pub fn mark_opaque(fd: RawFd) -> Result<(), Errno> {
    Errno::result(unsafe { libc::fsetxattr(fd, OPAQUE_XATTR.as_ptr(), b"y".as_ptr().cast(), 1, 0) }).map(drop)
}

/// Whether the open directory `fd` is opaque.
pub fn is_opaque(fd: RawFd) -> Result<bool, Errno> {
    let mut value = [0u8; 2];
    let n = unsafe { libc::fgetxattr(fd, OPAQUE_XATTR.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    opaque_value(n, &value)
}

/// Whether the directory at `path` is opaque (a symlink there is not followed).
pub fn is_opaque_path(path: &Path) -> Result<bool> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Internal(format!("nul byte in path {}", path.display())))?;
    let mut value = [0u8; 2];
    let n = unsafe { libc::lgetxattr(p.as_ptr(), OPAQUE_XATTR.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
    opaque_value(n, &value).map_err(|e| Error::sys(format!("read xattrs of {}", path.display()), e))
}

/// Only the value "y" marks a directory opaque; no xattr, or a longer value, does not.
fn opaque_value(n: isize, value: &[u8]) -> Result<bool, Errno> {
    if n < 0 {
        return match Errno::last() {
            Errno::ENODATA | Errno::ENOTSUP | Errno::ERANGE => Ok(false),
            e => Err(e),
        };
    }
    Ok(&value[..n as usize] == b"y")
}

/// What one layer's directory says about a path.
pub enum Look {
    /// Something that is no whiteout: `name` in the open directory `dir`, stat'ed.
    Found { dir: OwnedFd, name: CString, st: FileStat },
    /// Nothing here; `opaque` when a directory on the way hides the layers below.
    Absent { opaque: bool },
    /// A whiteout, or a non-directory on the way: the path is deleted for the layers below.
    Hidden,
    /// A symlink on the way (its path in the layer): overlayfs would follow it, this lookup
    /// does not.
    Symlink(Vec<u8>),
}

/// One component at a time, symlinks refused by the kernel too: nothing outside is reached.
const HOW: ResolveFlag = ResolveFlag::RESOLVE_BENEATH.union(ResolveFlag::RESOLVE_NO_SYMLINKS).union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

/// Look `path` (clean, relative, not empty) up in the layer directory `root`, without
/// following anything.
pub fn look(root: &Root, path: &[u8]) -> Result<Look, Errno> {
    let mut dir = root.open_beneath(b"", OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    let mut opaque = false;
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let mut end = 0;
    for (i, part) in parts.iter().enumerate() {
        end += part.len() + usize::from(i > 0);
        let name = CString::new(*part).map_err(|_| Errno::EINVAL)?;
        let st = match fstatat(&dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(Look::Absent { opaque }),
            other => other?,
        };
        if is_whiteout(st.st_mode, st.st_rdev) {
            return Ok(Look::Hidden);
        }
        if i + 1 == parts.len() {
            return Ok(Look::Found { dir, name, st });
        }
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFDIR => {
                dir = open_at(&dir, &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                opaque |= is_opaque(dir.as_raw_fd()).unwrap_or(false);
            }
            SFlag::S_IFLNK => return Ok(Look::Symlink(path[..end].to_vec())),
            _ => return Ok(Look::Hidden),
        }
    }
    Ok(Look::Absent { opaque })
}

/// Open `name` in `dir` (O_NOFOLLOW, beneath, no symlinks).
pub fn open_at(dir: &OwnedFd, name: &CStr, flags: OFlag) -> Result<OwnedFd, Errno> {
    pyc_init::retry::eagain(|| openat2(dir.as_fd(), name, OpenHow::new().flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW).resolve(HOW)))
}

/// `path` looked up through `layers`, top-most first, as overlayfs resolves it: the first
/// layer that holds it, a whiteout of it, a non-directory or a symlink on the way, or an
/// opaque directory on the way decides. That layer's index and what it says; None when no
/// layer knows the path.
pub fn find<'a>(layers: impl IntoIterator<Item = &'a Root>, path: &[u8]) -> Result<Option<(usize, Look)>, Errno> {
    for (depth, layer) in layers.into_iter().enumerate() {
        match look(layer, path)? {
            Look::Absent { opaque: false } => {}
            decided => return Ok(Some((depth, decided))),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_names() {
        assert_eq!(tar_name(b".wh..wh..opq"), TarName::Opaque);
        assert_eq!(tar_name(b".wh.x"), TarName::Whiteout(b"x"));
        assert_eq!(tar_name(b".wh..wh.plnk"), TarName::Whiteout(b".wh.plnk"));
        assert_eq!(tar_name(b"x.wh."), TarName::Plain);
        for name in [&b".wh."[..], b".wh..", b".wh..."] {
            assert_eq!(tar_name(name), TarName::NoSibling);
        }
        assert_eq!(whiteout_tar_name(OsStr::new("x")), OsStr::new(".wh.x"));
        assert_eq!(tar_name(opaque_tar_name().as_bytes()), TarName::Opaque);
    }

    #[test]
    fn marks_on_disk() {
        let t = tempfile::tempdir().unwrap();
        let dir = Root::open(t.path()).unwrap();
        let fd = dir.open_beneath(b"", OFlag::O_RDONLY | OFlag::O_DIRECTORY).unwrap();
        assert_eq!(mknod_whiteout(fd.as_raw_fd(), c"gone"), 0);
        assert!(!present_at(fd.as_raw_fd(), c"gone") && !present_at(fd.as_raw_fd(), c"nothing"));
        std::fs::write(t.path().join("f"), b"").unwrap();
        assert!(present_at(fd.as_raw_fd(), c"f"));
        assert!(!is_opaque(fd.as_raw_fd()).unwrap());
        if mark_opaque(fd.as_raw_fd()).is_ok() {
            // trusted.* needs root.
            assert!(is_opaque(fd.as_raw_fd()).unwrap() && is_opaque_path(t.path()).unwrap());
        }
    }
}
