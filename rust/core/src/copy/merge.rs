//! What a copy unpacked into a staging directory, moved into its destination by renames in
//! the same directory tree: a copy that fails while unpacking (a bad archive, a full disk)
//! leaves the destination as it was, and one that succeeds shows each file whole. Every step
//! is relative to directory descriptors and never follows a symlink at a name.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::tarout::{fstat, list, openat};
use crate::error::{Error, Result};

/// What happens to a name the destination has already.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Policy {
    /// The staged entry replaces a file, and is merged into a directory (`pyc cp`, import).
    Replace,
    /// What is there stays (a volume's copy-up finishing after a crash, or racing a
    /// container that wrote first).
    Keep,
}

/// Move everything in `stage` into `dest`. With `root_meta`, `dest` takes `stage`'s owner,
/// mode and times too (the copied directory's own). `Replace` checks first that no directory
/// would meet a non-directory (docker's refusal), so such a copy moves nothing.
pub fn merge(stage: RawFd, dest: RawFd, policy: Policy, root_meta: bool) -> Result<()> {
    if policy == Policy::Replace {
        check(stage, dest, &mut Vec::new())?;
    }
    // The staged directory's own times, before the moves out of it change them.
    let st = fstat(stage).map_err(|e| Error::sys("stat the staged copy", e))?;
    move_all(stage, dest, policy)?;
    if root_meta {
        set_meta(&st, dest).map_err(|e| Error::sys("set the owner and mode of the destination", e))?;
    }
    Ok(())
}

fn shown(path: &[Vec<u8>], name: &CStr) -> String {
    let mut p: Vec<u8> = path.join(&b'/');
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name.to_bytes());
    String::from_utf8_lossy(&p).into_owned()
}

fn kind_at(dir: RawFd, name: &CStr) -> Result<Option<libc::mode_t>, Errno> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    match Errno::result(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) }) {
        Ok(_) => Ok(Some(st.st_mode & libc::S_IFMT)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn subdir(dir: RawFd, name: &CStr) -> Result<OwnedFd, Errno> {
    openat(dir, name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)
}

/// docker's rule: a directory never replaces a non-directory, nor the other way round.
fn check(stage: RawFd, dest: RawFd, path: &mut Vec<Vec<u8>>) -> Result<()> {
    let sys = |what: &str, e| Error::sys(what, e);
    for name in list(stage).map_err(|e| sys("read the staged copy", e))? {
        let Some(there) = kind_at(dest, &name).map_err(|e| sys(&format!("stat {}", shown(path, &name)), e))? else { continue };
        let here = kind_at(stage, &name).map_err(|e| sys("stat the staged copy", e))?.unwrap_or(0);
        match (here == libc::S_IFDIR, there == libc::S_IFDIR) {
            (true, true) => {
                let (s, d) = (subdir(stage, &name), subdir(dest, &name));
                let (s, d) = (s.map_err(|e| sys("open the staged copy", e))?, d.map_err(|e| sys(&format!("open {}", shown(path, &name)), e))?);
                path.push(name.to_bytes().to_vec());
                check(s.as_raw_fd(), d.as_raw_fd(), path)?;
                path.pop();
            }
            (true, false) => return Err(Error::InvalidConfig(format!("cannot overwrite non-directory {} with a directory", shown(path, &name)))),
            (false, true) => return Err(Error::InvalidConfig(format!("cannot overwrite directory {} with a non-directory", shown(path, &name)))),
            (false, false) => {}
        }
    }
    Ok(())
}

/// The moves, depth first with a stack of our own (a staged tree may be thousands deep).
fn move_all(stage: RawFd, dest: RawFd, policy: Policy) -> Result<()> {
    struct Level {
        stage: Option<OwnedFd>,
        dest: Option<OwnedFd>,
        /// The staged directory's metadata as it was staged, for the one it merges into.
        meta: Option<libc::stat>,
        names: std::vec::IntoIter<CString>,
        path: Vec<Vec<u8>>,
    }
    let fd = |o: &Option<OwnedFd>, root: RawFd| o.as_ref().map_or(root, |f| f.as_raw_fd());
    let names = list(stage).map_err(|e| Error::sys("read the staged copy", e))?;
    let mut stack = vec![Level { stage: None, dest: None, meta: None, names: names.into_iter(), path: Vec::new() }];
    while let Some(top) = stack.last_mut() {
        let (s, d) = (fd(&top.stage, stage), fd(&top.dest, dest));
        let Some(name) = top.names.next() else {
            let done = stack.pop().expect("a level");
            if let (Some(st), Some(d), Policy::Replace) = (&done.meta, &done.dest, policy) {
                set_meta(st, d.as_raw_fd()).map_err(|e| Error::sys(format!("set the owner and mode of {}", done.path.join(&b'/').escape_ascii()), e))?;
            }
            continue;
        };
        let at = |what: &str| format!("{what} {}", shown(&top.path, &name));
        // Into a free name, or over a file, in one step; a directory that meets a directory is
        // merged level by level.
        match rename(s, &name, d, libc::RENAME_NOREPLACE) {
            Ok(()) => continue,
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(at("move into place"), e)),
        }
        let here = kind_at(s, &name).map_err(|e| Error::sys("stat the staged copy", e))?;
        let there = kind_at(d, &name).map_err(|e| Error::sys(at("stat"), e))?;
        match (here, there, policy) {
            (Some(libc::S_IFDIR), Some(libc::S_IFDIR), _) => {
                let sub_s = subdir(s, &name).map_err(|e| Error::sys("open the staged copy", e))?;
                let sub_d = subdir(d, &name).map_err(|e| Error::sys(at("open"), e))?;
                let names = list(sub_s.as_raw_fd()).map_err(|e| Error::sys("read the staged copy", e))?;
                let meta = fstat(sub_s.as_raw_fd()).map_err(|e| Error::sys("stat the staged copy", e))?;
                let mut path = top.path.clone();
                path.push(name.to_bytes().to_vec());
                stack.push(Level { stage: Some(sub_s), dest: Some(sub_d), meta: Some(meta), names: names.into_iter(), path });
            }
            (Some(h), Some(t), Policy::Replace) if h != libc::S_IFDIR && t != libc::S_IFDIR => {
                rename(s, &name, d, 0).map_err(|e| Error::sys(at("move into place"), e))?;
            }
            // Changed under us since the check (a running container's doing), or kept.
            (_, _, Policy::Keep) => {}
            _ => return Err(Error::InvalidConfig(format!("cannot overwrite {} with a different kind of file", shown(&top.path, &name)))),
        }
    }
    Ok(())
}

fn rename(from_dir: RawFd, name: &CStr, to_dir: RawFd, flags: libc::c_uint) -> Result<(), Errno> {
    let ret = unsafe { libc::syscall(libc::SYS_renameat2, from_dir, name.as_ptr(), to_dir, name.as_ptr(), flags) };
    Errno::result(ret).map(drop)
}

/// Owner, then mode (chown clears set-id bits), then times, of `st` onto the directory `to`.
pub(super) fn set_meta(st: &libc::stat, to: RawFd) -> Result<(), Errno> {
    Errno::result(unsafe { libc::fchown(to, st.st_uid, st.st_gid) })?;
    Errno::result(unsafe { libc::fchmod(to, st.st_mode & 0o7777) })?;
    let times = [libc::timespec { tv_sec: st.st_atime, tv_nsec: st.st_atime_nsec }, libc::timespec { tv_sec: st.st_mtime, tv_nsec: st.st_mtime_nsec }];
    Errno::result(unsafe { libc::futimens(to, times.as_ptr()) }).map(drop)
}

/// Remove `name` from `dir`, a whole tree if it is a directory, never following a symlink;
/// iteratively, whatever the depth. A missing name is not an error.
pub fn remove_all(dir: RawFd, name: &CStr) -> Result<(), Errno> {
    if unsafe { libc::unlinkat(dir, name.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno::ENOENT => return Ok(()),
        Errno::EISDIR => {}
        e => return Err(e),
    }
    // (directory, its name in the level above, names left in it)
    let top = subdir(dir, name)?;
    let names = list(top.as_raw_fd())?;
    let mut stack: Vec<(OwnedFd, CString, std::vec::IntoIter<CString>)> = vec![(top, name.to_owned(), names.into_iter())];
    while let Some((d, _, names)) = stack.last_mut() {
        let d = d.as_raw_fd();
        match names.next() {
            Some(n) => {
                if unsafe { libc::unlinkat(d, n.as_ptr(), 0) } == 0 {
                    continue;
                }
                match Errno::last() {
                    Errno::ENOENT => {}
                    Errno::EISDIR => {
                        let sub = subdir(d, &n)?;
                        let inner = list(sub.as_raw_fd())?;
                        stack.push((sub, n, inner.into_iter()));
                    }
                    e => return Err(e),
                }
            }
            None => {
                let (_, n, _) = stack.pop().expect("a level");
                let parent = stack.last().map_or(dir, |(p, _, _)| p.as_raw_fd());
                match Errno::result(unsafe { libc::unlinkat(parent, n.as_ptr(), libc::AT_REMOVEDIR) }) {
                    Ok(_) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn dirfd(p: &std::path::Path) -> OwnedFd {
        let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        openat(libc::AT_FDCWD, &c, libc::O_RDONLY | libc::O_DIRECTORY).unwrap()
    }

    #[test]
    fn files_replace_and_directories_merge() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir_all(s.path().join("dir/new")).unwrap();
        std::fs::write(s.path().join("dir/f"), b"staged").unwrap();
        std::fs::write(s.path().join("top"), b"t").unwrap();
        std::fs::set_permissions(s.path().join("dir"), std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::create_dir_all(d.path().join("dir")).unwrap();
        std::fs::write(d.path().join("dir/f"), b"old").unwrap();
        std::fs::write(d.path().join("dir/kept"), b"k").unwrap();
        merge(dirfd(s.path()).as_raw_fd(), dirfd(d.path()).as_raw_fd(), Policy::Replace, false).unwrap();
        assert_eq!(std::fs::read(d.path().join("dir/f")).unwrap(), b"staged");
        assert_eq!(std::fs::read(d.path().join("dir/kept")).unwrap(), b"k");
        assert!(d.path().join("dir/new").is_dir() && d.path().join("top").is_file());
        assert_eq!(std::fs::metadata(d.path().join("dir")).unwrap().mode() & 0o7777, 0o711);
    }

    #[test]
    fn a_directory_never_meets_a_file_and_nothing_moves() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(s.path().join("a"), b"1").unwrap();
        std::fs::create_dir_all(s.path().join("x/y")).unwrap();
        std::fs::create_dir(d.path().join("x")).unwrap();
        std::fs::write(d.path().join("x/y"), b"file").unwrap();
        let err = merge(dirfd(s.path()).as_raw_fd(), dirfd(d.path()).as_raw_fd(), Policy::Replace, false).unwrap_err().to_string();
        assert!(err.contains("cannot overwrite non-directory x/y with a directory"), "{err}");
        assert!(!d.path().join("a").exists());
    }

    #[test]
    fn keep_leaves_what_is_there() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(s.path().join("a"), b"staged").unwrap();
        std::fs::write(s.path().join("b"), b"staged").unwrap();
        std::fs::write(d.path().join("a"), b"mine").unwrap();
        merge(dirfd(s.path()).as_raw_fd(), dirfd(d.path()).as_raw_fd(), Policy::Keep, false).unwrap();
        assert_eq!(std::fs::read(d.path().join("a")).unwrap(), b"mine");
        assert_eq!(std::fs::read(d.path().join("b")).unwrap(), b"staged");
    }

    #[test]
    fn remove_all_goes_deep_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"").unwrap();
        let mut p = t.path().join("deep");
        for _ in 0..300 {
            p.push("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("deep/link")).unwrap();
        remove_all(dirfd(t.path()).as_raw_fd(), c"deep").unwrap();
        assert!(!t.path().join("deep").exists() && outside.path().join("keep").exists());
        remove_all(dirfd(t.path()).as_raw_fd(), c"deep").unwrap();
    }
}
