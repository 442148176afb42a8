//! One tar entry written into its parent directory's fd: the file itself (regular, directory,
//! symlink, hardlink, device, fifo) and then its owner, mode, mtime and xattrs. Every call is
//! relative to a directory fd and never follows a symlink at the name itself.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::beneath::owned;

/// Why writing an entry failed: a system call, or reading its data from the archive.
pub enum Fail {
    Sys(&'static str, Errno),
    Input(io::Error),
}

impl From<(&'static str, Errno)> for Fail {
    fn from((op, e): (&'static str, Errno)) -> Self {
        Fail::Sys(op, e)
    }
}

type Res<T = ()> = std::result::Result<T, Fail>;

fn check(op: &'static str, ret: libc::c_int) -> Res<libc::c_int> {
    if ret < 0 {
        Err(Fail::Sys(op, Errno::last()))
    } else {
        Ok(ret)
    }
}

/// Owner, mode, times and xattrs of an entry, from its header and PAX records.
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: libc::timespec,
    pub xattrs: Vec<(CString, Vec<u8>)>,
}

impl Meta {
    /// PAX records (uid, gid, mtime with nanoseconds, SCHILY.xattr.*) win over the header's.
    pub fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
        let h = entry.header();
        let mut m = Meta {
            mode: h.mode()? & 0o7777,
            uid: h.uid()? as u32,
            gid: h.gid()? as u32,
            mtime: libc::timespec { tv_sec: h.mtime()? as libc::time_t, tv_nsec: 0 },
            xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let (Ok(key), value) = (ext.key(), ext.value_bytes()) else {
                    continue;
                };
                let number = || std::str::from_utf8(value).ok().and_then(|v| v.parse::<u32>().ok());
                match key {
                    "uid" => m.uid = number().unwrap_or(m.uid),
                    "gid" => m.gid = number().unwrap_or(m.gid),
                    "mtime" => m.mtime = pax_time(value).unwrap_or(m.mtime),
                    _ => {
                        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                            if let Ok(name) = CString::new(name) {
                                m.xattrs.push((name, value.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        Ok(m)
    }
}

/// A PAX time: seconds, optionally with a fraction ("1700000000.5").
fn pax_time(value: &[u8]) -> Option<libc::timespec> {
    let s = std::str::from_utf8(value).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits: String = frac.chars().take(9).collect();
    let nsec = if digits.is_empty() { 0 } else { digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32) };
    Some(libc::timespec { tv_sec: secs.parse().ok()?, tv_nsec: nsec as _ })
}

/// Create something at `name` in `dir` with `create`; what an earlier entry of this layer put
/// there is removed first (a directory only when the new entry is not one). Returns whether a
/// directory was removed, so cached lookups through it are dropped.
fn replace(dir: RawFd, name: &CStr, mut create: impl FnMut() -> libc::c_int, op: &'static str) -> Res<bool> {
    if create() == 0 {
        return Ok(false);
    }
    if Errno::last() != Errno::EEXIST {
        return Err(Fail::Sys(op, Errno::last()));
    }
    let removed_dir = remove(dir, name)?;
    check(op, create())?;
    Ok(removed_dir)
}

/// Remove `name` from `dir`, a whole tree if it is a directory. Returns whether it was one.
/// `.` and `..` are no names of `dir`'s to remove: refused.
pub fn remove(dir: RawFd, name: &CStr) -> Res<bool> {
    if matches!(name.to_bytes(), b"." | b"..") {
        return Err(Fail::Sys("remove", Errno::EINVAL));
    }
    if unsafe { libc::unlinkat(dir, name.as_ptr(), 0) } == 0 {
        return Ok(false);
    }
    match Errno::last() {
        Errno::ENOENT => Ok(false),
        Errno::EISDIR => {
            let sub = owned(unsafe { libc::openat(dir, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) })
                .map_err(|e| Fail::Sys("open", e))?;
            let mut d = nix::dir::Dir::from_fd(sub).map_err(|e| Fail::Sys("read directory", e))?;
            let fd = d.as_raw_fd();
            let names: Vec<CString> =
                d.iter().filter_map(|e| e.ok()).map(|e| e.file_name().to_owned()).filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..").collect();
            for n in &names {
                remove(fd, n)?;
            }
            check("remove", unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) })?;
            Ok(true)
        }
        e => Err(Fail::Sys("remove", e)),
    }
}

/// What a create in the layer gives before any chown or chmod, so that neither is made where
/// the entry asks for that already: the thread's owner, and the mode asked (the thread's
/// umask is 0, in a filesystem context of its own). Unless `exact`, every chown and chmod is
/// made: the layer's directory hands down a group (set-group-id) or a default ACL, or the
/// thread could not drop its umask.
#[derive(Clone, Copy)]
pub struct Defaults {
    uid: u32,
    gid: u32,
    exact: bool,
}

impl Defaults {
    /// Every chown and chmod made: for a thread that keeps the process's umask.
    pub const NONE: Defaults = Defaults { uid: 0, gid: 0, exact: false };

    /// Give this thread a umask of 0 of its own (the process's stays as it is), and learn what
    /// a create beneath `root` gives.
    pub fn for_this_thread(root: RawFd) -> Defaults {
        if nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).is_err() {
            return Defaults::NONE;
        }
        unsafe { libc::umask(0) };
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let inherits = unsafe { libc::fstat(root, &mut st) } != 0
            || st.st_mode & libc::S_ISGID != 0
            || unsafe { libc::fgetxattr(root, c"system.posix_acl_default".as_ptr(), std::ptr::null_mut(), 0) } >= 0;
        Defaults { uid: unsafe { libc::geteuid() }, gid: unsafe { libc::getegid() }, exact: !inherits }
    }

    fn chown(&self, meta: &Meta) -> bool {
        !self.exact || (meta.uid, meta.gid) != (self.uid, self.gid)
    }

    /// After a create with mode `created` and, if `chowned`, a chown (which clears set-id
    /// bits).
    fn chmod(&self, meta: &Meta, created: u32, chowned: bool) -> bool {
        !self.exact || meta.mode != created || (chowned && meta.mode & 0o6000 != 0)
    }
}

/// A regular file, its content written by `write`; created with the mode's permission bits
/// (set-id and sticky bits, if any, come with the chmod after).
pub fn file(dir: RawFd, name: &CStr, meta: &Meta, d: &Defaults, write: impl FnOnce(&mut File) -> Res) -> Res<bool> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let created = meta.mode & 0o777;
    let mut fd = -1;
    let removed_dir = replace(
        dir,
        name,
        || {
            fd = unsafe { libc::openat(dir, name.as_ptr(), flags, created) };
            fd.min(0)
        },
        "create",
    )?;
    let mut f = File::from(owned(fd).map_err(|e| Fail::Sys("create", e))?);
    write(&mut f)?;
    // The offset is the size written (the file is new).
    if unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_CUR) } >= WRITEBACK_FROM {
        crate::sys::start_writeback(f.as_fd(), 0, 0);
    }
    finish_fd(f.as_raw_fd(), meta, d, created)?;
    Ok(removed_dir)
}

/// A file this big starts its writeback once written: the layer's final sync waits for less.
const WRITEBACK_FROM: i64 = 256 << 10;

/// Write all of `data` to `f`.
pub fn write_all(f: &mut File, data: &[u8]) -> Res {
    f.write_all(data).map_err(|e| Fail::Sys("write", Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))
}

/// Copy `size` bytes of `data` to `f` through `buf`.
pub fn copy(f: &mut File, data: &mut impl Read, size: u64, buf: &mut [u8]) -> Res {
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = data.read(&mut buf[..want]).map_err(Fail::Input)?;
        if n == 0 {
            return Err(Fail::Input(io::ErrorKind::UnexpectedEof.into()));
        }
        write_all(f, &buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Owner, then mode (chown clears set-id bits), xattrs and times of an open file or directory
/// made with mode `created`.
pub fn finish_fd(fd: RawFd, meta: &Meta, d: &Defaults, created: u32) -> Res {
    let chowned = d.chown(meta);
    if chowned {
        check("chown", unsafe { libc::fchown(fd, meta.uid, meta.gid) })?;
    }
    if d.chmod(meta, created, chowned) {
        check("chmod", unsafe { libc::fchmod(fd, meta.mode) })?;
    }
    for (name, value) in &meta.xattrs {
        xattr(unsafe { libc::fsetxattr(fd, name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })?;
    }
    let times = [meta.mtime, meta.mtime];
    check("set times", unsafe { libc::futimens(fd, times.as_ptr()) })?;
    Ok(())
}

/// Xattrs a filesystem cannot hold (user.* on some tmpfs) are dropped, as tar does.
fn xattr(ret: libc::c_int) -> Res {
    match ret {
        0 => Ok(()),
        _ if Errno::last() == Errno::EOPNOTSUPP => Ok(()),
        _ => Err(Fail::Sys("set xattr", Errno::last())),
    }
}

/// The mode a directory is made with; its own is set by `finish_dir`, once its entries are
/// written.
pub const DIR_MODE: u32 = 0o700;

/// A directory: made if missing, kept (with what it holds) if an earlier entry made it.
pub fn dir(dir: RawFd, name: &CStr) -> Res<bool> {
    match unsafe { libc::mkdirat(dir, name.as_ptr(), DIR_MODE) } {
        0 => Ok(false),
        _ if Errno::last() == Errno::EEXIST => {
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            check("stat", unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                return Ok(false);
            }
            check("remove", unsafe { libc::unlinkat(dir, name.as_ptr(), 0) })?;
            check("mkdir", unsafe { libc::mkdirat(dir, name.as_ptr(), DIR_MODE) })?;
            Ok(false)
        }
        _ => Err(Fail::Sys("mkdir", Errno::last())),
    }
}

/// A directory's metadata, on its fd (its mode is always set: it may be older than the layer).
pub fn finish_dir(fd: &OwnedFd, meta: &Meta, d: &Defaults) -> Res {
    finish_fd(fd.as_raw_fd(), meta, d, u32::MAX)
}

/// A symlink to `target` (never followed: the layer is not the running system).
pub fn symlink(dir: RawFd, name: &CStr, target: &CStr, meta: &Meta, d: &Defaults) -> Res<bool> {
    let removed_dir = replace(dir, name, || unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) }, "symlink")?;
    finish_at(dir, name, meta, d)?;
    Ok(removed_dir)
}

/// A device node or fifo (`kind` is S_IFCHR, S_IFBLK or S_IFIFO).
pub fn node(dir: RawFd, name: &CStr, kind: libc::mode_t, dev: libc::dev_t, meta: &Meta, d: &Defaults) -> Res<bool> {
    let created = meta.mode & 0o777;
    let removed_dir = replace(dir, name, || unsafe { libc::mknodat(dir, name.as_ptr(), kind | created, dev) }, "mknod")?;
    let chowned = finish_at(dir, name, meta, d)?;
    if d.chmod(meta, created, chowned) {
        check("chmod", unsafe { libc::fchmodat(dir, name.as_ptr(), meta.mode, 0) })?;
    }
    Ok(removed_dir)
}

/// A whiteout at `name` (overlay.rs).
pub fn whiteout(dir: RawFd, name: &CStr) -> Res<bool> {
    replace(dir, name, || super::overlay::mknod_whiteout(dir, name), "whiteout")
}

/// A hardlink at `name` in `dir` to `target_name` in `target_dir`.
pub fn hardlink(dir: RawFd, name: &CStr, target_dir: RawFd, target_name: &CStr) -> Res<bool> {
    replace(dir, name, || unsafe { libc::linkat(target_dir, target_name.as_ptr(), dir, name.as_ptr(), 0) }, "hardlink")
}

/// Owner, xattrs and times of something that is no open fd: a symlink or a node. Modes do not
/// apply to symlinks; xattrs on symlinks are only for the trusted/security namespaces. Returns
/// whether it was chowned.
fn finish_at(dir: RawFd, name: &CStr, meta: &Meta, d: &Defaults) -> Res<bool> {
    let chowned = d.chown(meta);
    if chowned {
        check("chown", unsafe { libc::fchownat(dir, name.as_ptr(), meta.uid, meta.gid, libc::AT_SYMLINK_NOFOLLOW) })?;
    }
    if !meta.xattrs.is_empty() {
        // lsetxattr through the directory fd's /proc entry: the name itself is not followed.
        let mut path = format!("/proc/self/fd/{dir}/").into_bytes();
        path.extend_from_slice(name.to_bytes());
        let path = CString::new(path).map_err(|_| Fail::Sys("set xattr", Errno::EINVAL))?;
        for (key, value) in &meta.xattrs {
            xattr(unsafe { libc::lsetxattr(path.as_ptr(), key.as_ptr(), value.as_ptr().cast(), value.len(), 0) })?;
        }
    }
    let times = [meta.mtime, meta.mtime];
    check("set times", unsafe { libc::utimensat(dir, name.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(chowned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(pax_time(b"1700000000.5").map(|t| (t.tv_sec, t.tv_nsec)), Some((1700000000, 500_000_000)));
        assert_eq!(pax_time(b"12").map(|t| (t.tv_sec, t.tv_nsec)), Some((12, 0)));
        assert!(pax_time(b"x").is_none());
    }
}
