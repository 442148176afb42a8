//! A tree written as a tar, read through descriptors only: every entry is opened from its
//! directory's descriptor without following a symlink at its name, so a tree that changes
//! while it is read (a running container swapping a directory for a symlink to `/`) shows its
//! symlink as a symlink and never leads the walk anywhere else. Owners, modes, times with
//! nanoseconds, xattrs (PAX `SCHILY.xattr.*`), hardlinks, device nodes and fifos are kept;
//! sockets, which a tar cannot hold, are left out, and so is what a kernel filesystem (a
//! running container's /proc, /sys, /dev/pts ...) shows: its directory is written, empty.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::error::{Error, Result};

/// What a tar starts from: one entry (a directory with everything beneath it) under the name
/// `name`, or what a directory holds, its own metadata as the entry `./`.
pub enum Top {
    Entry { node: OwnedFd, name: Vec<u8> },
    Contents { dir: OwnedFd },
}

/// Write the tar of `top` to `out` (with its two closing zero blocks); returns `out`.
pub fn write_tar<W: Write>(top: Top, out: W) -> Result<W> {
    let mut t = TarOut { b: tar::Builder::new(out), first_name: HashMap::new() };
    match top {
        Top::Entry { node, name } => {
            if let Some(dir) = t.entry(node, &name)? {
                t.walk(dir, name)?;
            }
        }
        Top::Contents { dir } => {
            if let Some(listed) = t.entry(dir, b".")? {
                t.walk(listed, Vec::new())?;
            }
        }
    }
    t.b.into_inner().map_err(|e| write_error(&e))
}

struct TarOut<W: Write> {
    b: tar::Builder<W>,
    /// The tar name of the first entry of each (device, inode) with several names.
    first_name: HashMap<(u64, u64), Vec<u8>>,
}

/// One directory being listed: its descriptor, its name in the tar and the names left.
struct Level {
    dir: OwnedFd,
    path: Vec<u8>,
    names: std::vec::IntoIter<CString>,
}

fn shown(path: &[u8]) -> String {
    if path.is_empty() {
        ".".into()
    } else {
        String::from_utf8_lossy(path).into_owned()
    }
}

pub(super) fn write_error(e: &io::Error) -> Error {
    Error::sys("write the tar", Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

impl<W: Write> TarOut<W> {
    /// Everything beneath the directory `dir` (open for reading), named under `path`. Depth
    /// first with a stack of its own: a tree thousands of levels deep costs descriptors, never
    /// the thread's stack.
    fn walk(&mut self, dir: OwnedFd, path: Vec<u8>) -> Result<()> {
        let mut stack = vec![level(dir, path)?];
        while let Some(top) = stack.last_mut() {
            let Some(name) = top.names.next() else {
                stack.pop();
                continue;
            };
            let mut child = top.path.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name.to_bytes());
            let node = match openat(top.dir.as_raw_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => continue, // removed while we read
                Err(e) => return Err(Error::sys(format!("open {}", shown(&child)), e)),
            };
            if let Some(sub) = self.entry(node, &child)? {
                stack.push(level(sub, child)?);
            }
        }
        Ok(())
    }

    /// Write the entry of `node` (an O_PATH descriptor) as `path`; for a directory, return it
    /// open for reading, to be walked.
    fn entry(&mut self, node: OwnedFd, path: &[u8]) -> Result<Option<OwnedFd>> {
        let at = |what: &str| format!("{what} {}", shown(path));
        let st = fstat(node.as_raw_fd()).map_err(|e| Error::sys(at("stat"), e))?;
        let kind = st.st_mode & libc::S_IFMT;
        let mut h = header(&st);
        match kind {
            libc::S_IFDIR => {
                let dir = reopen_dir(node.as_fd()).map_err(|e| Error::sys(at("open"), e))?;
                h.set_entry_type(tar::EntryType::Directory);
                self.pax(&st, xattrs(Xattrs::Fd(dir.as_raw_fd())).map_err(|e| Error::sys(at("read xattrs of"), e))?)?;
                let mut name = path.to_vec();
                name.push(b'/');
                self.b.append_data(&mut h, bytes_path(&name), io::empty()).map_err(|e| write_error(&e))?;
                return Ok((!kernel_fs(dir.as_raw_fd())).then_some(dir));
            }
            libc::S_IFSOCK => return Ok(None),
            _ => {}
        }
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.first_name.get(&key) {
                h.set_entry_type(tar::EntryType::Link);
                let first = first.clone();
                return self.b.append_link(&mut h, bytes_path(path), bytes_path(&first)).map(|_| None).map_err(|e| write_error(&e));
            }
            self.first_name.insert(key, path.to_vec());
        }
        match kind {
            libc::S_IFREG => {
                let f = reopen(node.as_raw_fd(), libc::O_RDONLY).map_err(|e| Error::sys(at("open"), e))?;
                // The size as this open file has it; a file that changes meanwhile is cut or
                // padded to it, as GNU tar does, so the tar stays well formed.
                let st = fstat(f.as_raw_fd()).map_err(|e| Error::sys(at("stat"), e))?;
                let mut h = header(&st);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(st.st_size as u64);
                self.pax(&st, xattrs(Xattrs::Fd(f.as_raw_fd())).map_err(|e| Error::sys(at("read xattrs of"), e))?)?;
                let data = Exact { inner: f, left: st.st_size as u64 };
                self.b.append_data(&mut h, bytes_path(path), data).map_err(|e| match e.get_ref().and_then(|i| i.downcast_ref::<ReadFailed>()) {
                    Some(r) => Error::sys(at("read"), r.0),
                    None => write_error(&e),
                })?;
            }
            libc::S_IFLNK => {
                let target = readlink(node.as_raw_fd()).map_err(|e| Error::sys(at("read link"), e))?;
                h.set_entry_type(tar::EntryType::Symlink);
                self.pax(&st, xattrs(Xattrs::Path(node.as_raw_fd())).map_err(|e| Error::sys(at("read xattrs of"), e))?)?;
                self.b.append_link(&mut h, bytes_path(path), bytes_path(&target)).map_err(|e| write_error(&e))?;
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                h.set_entry_type(match kind {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                if kind != libc::S_IFIFO {
                    h.set_device_major(libc::major(st.st_rdev)).map_err(|e| write_error(&e))?;
                    h.set_device_minor(libc::minor(st.st_rdev)).map_err(|e| write_error(&e))?;
                }
                self.pax(&st, xattrs(Xattrs::Path(node.as_raw_fd())).map_err(|e| Error::sys(at("read xattrs of"), e))?)?;
                self.b.append_data(&mut h, bytes_path(path), io::empty()).map_err(|e| write_error(&e))?;
            }
            _ => return Err(Error::sys(at("copy"), Errno::EINVAL)),
        }
        Ok(None)
    }

    /// The PAX records an entry needs beyond its header: a time with nanoseconds, xattrs.
    fn pax(&mut self, st: &libc::stat, xattrs: Vec<(String, Vec<u8>)>) -> Result<()> {
        let mut records: Vec<(String, Vec<u8>)> = xattrs.into_iter().map(|(k, v)| (format!("SCHILY.xattr.{k}"), v)).collect();
        if st.st_mtime_nsec != 0 {
            records.push(("mtime".into(), format!("{}.{:09}", st.st_mtime, st.st_mtime_nsec).into_bytes()));
        }
        if records.is_empty() {
            return Ok(());
        }
        self.b.append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).map_err(|e| write_error(&e))
    }
}

/// Whether a directory is on a filesystem the kernel makes up (proc, sysfs, devpts, mqueue,
/// cgroup, ...): what it shows is no container's files, and reading it may never end.
fn kernel_fs(dir: RawFd) -> bool {
    const KINDS: [i64; 12] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x1cd1,      // devpts
        0x1980_0202, // mqueue
        0x0027_e0eb, // cgroup
        0x6367_7270, // cgroup2
        0x7363_6673, // securityfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0xcafe_4a11, // bpf
        0x6573_5546, // fusectl
        0x6265_6570, // configfs
    ];
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::fstatfs(dir, &mut st) } == 0;
    ok && KINDS.contains(&(st.f_type as i64))
}

fn level(dir: OwnedFd, path: Vec<u8>) -> Result<Level> {
    let names = list(dir.as_raw_fd()).map_err(|e| Error::sys(format!("read the directory {}", shown(&path)), e))?;
    Ok(Level { dir, path, names: names.into_iter() })
}

/// The names in a directory (but `.` and `..`), sorted: the same tree gives the same tar.
pub(super) fn list(dir: RawFd) -> Result<Vec<CString>, Errno> {
    // Dir takes the descriptor it reads from; a copy of it, so `dir` stays ours.
    let copy = openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY)?;
    let mut d = nix::dir::Dir::from_fd(copy)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name();
        if n != c"." && n != c".." {
            names.push(n.to_owned());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

fn header(st: &libc::stat) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn bytes_path(p: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(p))
}

pub(super) fn openat(dir: RawFd, name: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY) };
    Errno::result(fd).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn fstat(fd: RawFd) -> Result<libc::stat, Errno> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    Errno::result(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// A directory given by any descriptor (O_PATH too), open for reading.
pub(super) fn reopen_dir(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    openat(fd.as_raw_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY)
}

/// The file of an O_PATH descriptor, opened for real: through our own /proc/self/fd entry,
/// which names that very inode (no path is looked up again).
fn reopen(fd: RawFd, flags: libc::c_int) -> Result<File, Errno> {
    let path = CString::new(format!("/proc/self/fd/{fd}")).expect("digits");
    let f = Errno::result(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY) })?;
    Ok(unsafe { File::from_raw_fd(f) })
}

fn readlink(fd: RawFd) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    let n = Errno::result(unsafe { libc::readlinkat(fd, c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })?;
    buf.truncate(n as usize);
    Ok(buf)
}

/// Where xattrs are read: an open file or directory, or (symlinks, nodes) the inode an O_PATH
/// descriptor names, through /proc/self/fd (which leads to it, not through it).
enum Xattrs {
    Fd(RawFd),
    Path(RawFd),
}

/// The xattrs worth carrying: all but overlayfs' own (`trusted.overlay.*`), whose meaning
/// belongs to the layer they were in. Names that are not UTF-8 cannot be PAX keys: skipped.
fn xattrs(at: Xattrs) -> Result<Vec<(String, Vec<u8>)>, Errno> {
    let path = match at {
        Xattrs::Path(fd) => Some(CString::new(format!("/proc/self/fd/{fd}")).expect("digits")),
        Xattrs::Fd(_) => None,
    };
    let list = |buf: &mut [u8]| -> isize {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        match (&at, &path) {
            (Xattrs::Fd(fd), _) => unsafe { libc::flistxattr(*fd, ptr, len) },
            (_, Some(p)) => unsafe { libc::listxattr(p.as_ptr(), ptr, len) },
            _ => unreachable!(),
        }
    };
    let get = |name: &CStr, buf: &mut [u8]| -> isize {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        match (&at, &path) {
            (Xattrs::Fd(fd), _) => unsafe { libc::fgetxattr(*fd, name.as_ptr(), ptr, len) },
            (_, Some(p)) => unsafe { libc::getxattr(p.as_ptr(), name.as_ptr(), ptr, len) },
            _ => unreachable!(),
        }
    };
    let names = match sized(|buf| list(buf)) {
        Ok(n) => n,
        Err(Errno::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(key) = std::str::from_utf8(name) else { continue };
        if key.starts_with("trusted.overlay.") {
            continue;
        }
        let cname = CString::new(name).expect("split at NUL");
        match sized(|buf| get(&cname, buf)) {
            Ok(value) => out.push((key.to_string(), value)),
            Err(Errno::ENODATA) => {} // removed meanwhile
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The bytes of a call that fills a buffer and says ERANGE when it is too small.
fn sized(mut call: impl FnMut(&mut [u8]) -> isize) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = call(&mut buf);
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        match Errno::last() {
            Errno::ERANGE if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            e => return Err(e),
        }
    }
}

/// A file's bytes, exactly `left` of them: cut where it grew, zeros where it shrank.
struct Exact {
    inner: File,
    left: u64,
}

/// A read of the file failed (not the write of the tar): carried through io::Error.
#[derive(Debug)]
struct ReadFailed(Errno);

impl std::fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for ReadFailed {}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.left as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(0) => {
                buf[..want].fill(0);
                want
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(io::Error::other(ReadFailed(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))),
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn node(p: &std::path::Path) -> OwnedFd {
        let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        openat(libc::AT_FDCWD, &c, libc::O_PATH | libc::O_NOFOLLOW).unwrap()
    }

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, u64)> {
        let mut a = tar::Archive::new(tar);
        a.entries().unwrap().map(|e| e.unwrap()).map(|e| (String::from_utf8_lossy(&e.path_bytes()).into_owned(), e.header().entry_type(), e.size())).collect()
    }

    #[test]
    fn a_tree_with_links_nodes_and_times() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), b"hello").unwrap();
        std::fs::hard_link(d.join("sub/f"), d.join("h")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("s")).unwrap();
        nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
        let _ = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();
        let tar = write_tar(Top::Entry { node: node(&d), name: b"top".to_vec() }, Vec::new()).unwrap();
        let got = entries(&tar);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["top/", "top/fifo", "top/h", "top/s", "top/sub/", "top/sub/f"]);
        assert_eq!(got[2].1, tar::EntryType::Regular);
        assert_eq!(got[2].2, 5);
        assert_eq!(got[5].1, tar::EntryType::Link); // the second name of the same file
        assert_eq!(got[3].1, tar::EntryType::Symlink);
        assert_eq!(got[1].1, tar::EntryType::Fifo);
        // Nanoseconds travel as PAX, and the unpacker reads them back.
        let dest = tempfile::tempdir().unwrap();
        crate::layer::unpack_plain(&tar[..], dest.path(), None, false).unwrap();
        let (a, b) = (std::fs::metadata(d.join("sub/f")).unwrap(), std::fs::metadata(dest.path().join("top/sub/f")).unwrap());
        assert_eq!((a.mtime(), a.mtime_nsec(), a.mode()), (b.mtime(), b.mtime_nsec(), b.mode()));
        assert_eq!(std::fs::metadata(dest.path().join("top/h")).unwrap().ino(), b.ino());
    }

    #[test]
    fn contents_with_the_root_entry() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("a"), b"1").unwrap();
        let dir = node(t.path());
        let tar = write_tar(Top::Contents { dir }, Vec::new()).unwrap();
        let names: Vec<String> = entries(&tar).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["./", "a"]);
    }

    #[test]
    fn what_the_kernel_shows_is_left_out() {
        let tar = write_tar(Top::Entry { node: node(std::path::Path::new("/proc")), name: b"proc".to_vec() }, Vec::new()).unwrap();
        let names: Vec<String> = entries(&tar).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["proc/"]);
    }

    #[test]
    fn a_symlink_on_the_way_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("link")).unwrap();
        let tar = write_tar(Top::Entry { node: node(t.path()), name: b"t".to_vec() }, Vec::new()).unwrap();
        let names: Vec<String> = entries(&tar).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["t/", "t/link"]);
    }
}
