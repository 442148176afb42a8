//! A directory tree into a tar stream: `pyc import` of a directory, `pyc export`, and the
//! layer `pyc commit` makes of an upper dir. Entries sorted by name, so the same tree always
//! gives the same tar; a file with several names stored once and linked after; device nodes
//! and fifos kept as such; sockets, which tar cannot hold, left out. With `overlay_upper`,
//! the tree is an overlayfs upper dir and its marks become OCI ones (overlay.rs).
//!
//! Each directory is listed once, through its fd; reader threads stat each entry relative to
//! its directory's fd and read the small files whole, ahead of the writer and in its order,
//! so the system calls of a tree of small files run on every core while one thread writes
//! and hashes the tar. Each entry's bytes are those the tar crate's builder writes for it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tar::{EntryType, Header, HeaderMode};

use super::overlay;
use crate::error::{Error, IoContext, Result};

/// Regular files up to this size are read whole by a reader; bigger ones are streamed by the
/// writer.
const SMALL: i64 = 256 << 10;
/// What the readers may hold ahead of the writer: entries (each holds its directory's fd: a
/// tree of many small directories must not run the process out of fds, see `ahead`), and
/// bytes of content.
const AHEAD: u64 = 128;
const AHEAD_BYTES: usize = 16 << 20;
/// Readers besides the writer: more only wait for each other.
const MAX_READERS: usize = 4;

/// Write the tree at `root` to `b`, headers filled as `mode` says.
pub fn append_tree<W: Write>(b: &mut tar::Builder<W>, root: &Path, mode: HeaderMode, overlay_upper: bool) -> Result<()> {
    // The root itself may be a symlink (a path the user gave): it is followed, nothing in it is.
    let top = File::open(root).ctx("open", root)?;
    let top = Arc::new(OwnedFd::from(top));
    let walk =
        Mutex::new(Walk { root: root.to_path_buf(), overlay_upper, dirs: vec![(top, None, PathBuf::new())], listed: Default::default(), next: 0, end: None });
    let entries = (crate::sys::fd_share() as u64).clamp(4, AHEAD);
    let ahead = Ahead { state: Mutex::new(Slots::default()), changed: Condvar::new(), stop: AtomicBool::new(false), entries };
    let readers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_READERS);
    std::thread::scope(|s| {
        for _ in 0..readers {
            s.spawn(|| read_ahead(&walk, &ahead));
        }
        let written = write(b, root, mode, overlay_upper, &ahead);
        // On a failure the readers stop where they are.
        ahead.stop.store(true, Ordering::Relaxed);
        ahead.changed.notify_all();
        written
    })
}

fn open_dir(at: RawFd, name: &CString) -> io::Result<OwnedFd> {
    let fd = unsafe { libc::openat(at, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One entry to write: `name` in the directory `dir`, at `rel` in the tar.
struct Item {
    dir: Arc<OwnedFd>,
    name: CString,
    rel: PathBuf,
    /// The type getdents gave (DT_UNKNOWN where the filesystem gives none), or `OPAQUE`: the
    /// opaque mark of the directory `dir` itself, written before its entries.
    kind: u8,
}

const OPAQUE: u8 = 0xff;

/// The walk, shared by the readers: each takes the next entry in tar order.
struct Walk {
    root: PathBuf,
    overlay_upper: bool,
    /// Directories to list, the next last, each as its parent's fd and its name there (none
    /// for the root, the fd itself); each is listed after the entries of its parent, and only
    /// then opened.
    dirs: Vec<(Arc<OwnedFd>, Option<CString>, PathBuf)>,
    listed: VecDeque<Item>,
    next: u64,
    /// The number of entries, once the walk is over.
    end: Option<u64>,
}

impl Walk {
    /// The next entry and its place in the tar; None at the end.
    fn next(&mut self) -> Option<(u64, Result<Item>)> {
        loop {
            if let Some(item) = self.listed.pop_front() {
                self.next += 1;
                return Some((self.next - 1, Ok(item)));
            }
            let Some((parent, name, rel)) = self.dirs.pop() else {
                self.end = Some(self.next);
                return None;
            };
            let dir = match name {
                None => Ok(parent),
                Some(name) => open_dir(parent.as_raw_fd(), &name).map(Arc::new).ctx("open", self.root.join(&rel)),
            };
            if let Err(e) = dir.and_then(|dir| self.list(dir, &rel)) {
                // The walk ends at the error: the writer stops there.
                self.dirs.clear();
                self.listed.clear();
                self.next += 1;
                return Some((self.next - 1, Err(e)));
            }
        }
    }

    fn list(&mut self, dir: Arc<OwnedFd>, rel: &Path) -> Result<()> {
        let full = self.root.join(rel);
        if self.overlay_upper
            && !rel.as_os_str().is_empty()
            && overlay::is_opaque(dir.as_raw_fd()).map_err(|e| Error::sys(format!("read xattrs of {}", full.display()), e))?
        {
            self.listed.push_back(Item { dir: dir.clone(), name: CString::default(), rel: rel.join(overlay::opaque_tar_name()), kind: OPAQUE });
        }
        let dup = nix::unistd::dup(&dir).map_err(|e| Error::sys(format!("read {}", full.display()), e))?;
        let mut d = nix::dir::Dir::from_fd(dup).map_err(|e| Error::sys(format!("read {}", full.display()), e))?;
        let mut names: Vec<(CString, u8)> = Vec::new();
        for e in d.iter() {
            let e = e.map_err(|e| Error::sys(format!("read {}", full.display()), e))?;
            let name = e.file_name();
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                names.push((name.to_owned(), dtype(e.file_type())));
            }
        }
        names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut subdirs = Vec::new();
        for (name, kind) in names {
            let r = rel.join(OsStr::from_bytes(name.as_bytes()));
            let is_dir = match kind {
                libc::DT_DIR => true,
                libc::DT_UNKNOWN => stat_at(dir.as_raw_fd(), &name).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR),
                _ => false,
            };
            if is_dir {
                subdirs.push((dir.clone(), Some(name.clone()), r.clone()));
            }
            self.listed.push_back(Item { dir: dir.clone(), name, rel: r, kind });
        }
        self.dirs.extend(subdirs.into_iter().rev());
        Ok(())
    }
}

fn dtype(t: Option<nix::dir::Type>) -> u8 {
    use nix::dir::Type;
    match t {
        Some(Type::File) => libc::DT_REG,
        Some(Type::Directory) => libc::DT_DIR,
        Some(Type::Symlink) => libc::DT_LNK,
        Some(Type::CharacterDevice) => libc::DT_CHR,
        Some(Type::BlockDevice) => libc::DT_BLK,
        Some(Type::Fifo) => libc::DT_FIFO,
        Some(Type::Socket) => libc::DT_SOCK,
        None => libc::DT_UNKNOWN,
    }
}

fn stat_at(dir: RawFd, name: &CString) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// An entry, read and ready to be written.
enum Ready {
    /// A socket: tar cannot hold it.
    Skip,
    /// A regular file read whole.
    File(libc::stat, Vec<u8>),
    /// A regular file to stream (big, or with holes).
    Stream(File),
    Symlink(libc::stat, PathBuf),
    /// A directory, device node, fifo or whiteout: the header says it all.
    Other(libc::stat),
    /// The opaque mark of a directory, with the directory's stat.
    Opaque(libc::stat),
}

impl Ready {
    fn bytes(&self) -> usize {
        match self {
            Ready::File(_, data) => data.len(),
            _ => 0,
        }
    }
}

/// Entries read ahead, by place in the tar, until the writer takes them.
#[derive(Default)]
struct Slots {
    ready: BTreeMap<u64, (PathBuf, Result<Ready>)>,
    bytes: usize,
    /// The place of the entry the writer waits for.
    written: u64,
    /// The number of entries, once the walk is over.
    end: Option<u64>,
}

struct Ahead {
    state: Mutex<Slots>,
    changed: Condvar,
    stop: AtomicBool,
    /// Entries read ahead at most: AHEAD, fewer where the process may hold few fds.
    entries: u64,
}

impl Ahead {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, g: MutexGuard<'g, Slots>) -> MutexGuard<'g, Slots> {
        self.changed.wait(g).unwrap_or_else(|e| e.into_inner())
    }
}

/// A reader: takes the next entry of the walk, waits until the writer is near enough, reads
/// it. The entry the writer waits for never waits.
fn read_ahead(walk: &Mutex<Walk>, ahead: &Ahead) {
    loop {
        let next = {
            let mut w = walk.lock().unwrap_or_else(|e| e.into_inner());
            let next = w.next();
            if let Some(end) = w.end {
                ahead.lock().end = Some(end);
                ahead.changed.notify_all();
            }
            next
        };
        let Some((at, item)) = next else { return };
        {
            let mut g = ahead.lock();
            while at > g.written && (at >= g.written + ahead.entries || g.bytes > AHEAD_BYTES) && !ahead.stop.load(Ordering::Relaxed) {
                g = ahead.wait(g);
            }
        }
        if ahead.stop.load(Ordering::Relaxed) {
            return;
        }
        let (rel, ready) = match item {
            Ok(item) => {
                // A panic is an error like any other: the writer must not wait for this entry.
                let ready =
                    std::panic::catch_unwind(|| read(&item)).unwrap_or_else(|_| Err(Error::Internal(format!("reading {} panicked", item.rel.display()))));
                (item.rel, ready)
            }
            Err(e) => (PathBuf::new(), Err(e)),
        };
        let mut g = ahead.lock();
        g.bytes += ready.as_ref().map_or(0, Ready::bytes);
        g.ready.insert(at, (rel, ready));
        ahead.changed.notify_all();
    }
}

fn read(item: &Item) -> Result<Ready> {
    let at = item.dir.as_raw_fd();
    if item.kind == OPAQUE {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(at, &mut st) } != 0 {
            return Err(Error::io("stat", &item.rel, io::Error::last_os_error()));
        }
        return Ok(Ready::Opaque(st));
    }
    if item.kind == libc::DT_REG {
        // O_NONBLOCK: a fifo put there since the listing is not waited on.
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        let fd = unsafe { libc::openat(at, item.name.as_ptr(), flags) };
        if fd >= 0 {
            let f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } != 0 {
                return Err(Error::io("stat", &item.rel, io::Error::last_os_error()));
            }
            if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                return file(f, st, &item.rel);
            }
        }
    }
    let st = stat_at(at, &item.name).ctx("stat", &item.rel)?;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => Ready::Skip,
        libc::S_IFLNK => {
            let target = nix::fcntl::readlinkat(unsafe { std::os::fd::BorrowedFd::borrow_raw(at) }, item.name.as_c_str())
                .map_err(|e| Error::io("read link", &item.rel, io::Error::from(e)))?;
            Ready::Symlink(st, PathBuf::from(target))
        }
        libc::S_IFREG => {
            let fd = unsafe { libc::openat(at, item.name.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(Error::io("open", &item.rel, io::Error::last_os_error()));
            }
            file(File::from(unsafe { OwnedFd::from_raw_fd(fd) }), st, &item.rel)?
        }
        _ => Ready::Other(st),
    })
}

/// A regular file: read whole if small and without holes, else streamed by the writer.
fn file(mut f: File, st: libc::stat, rel: &Path) -> Result<Ready> {
    let size = st.st_size;
    // Where fewer blocks than bytes are taken, there may be holes: the tar crate looks.
    let holes = st.st_blocks * 512 < size && unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_HOLE) } != size;
    if size > SMALL || holes {
        return Ok(Ready::Stream(f));
    }
    let mut data = Vec::with_capacity(size as usize);
    (&mut f).take(size as u64).read_to_end(&mut data).ctx("read", rel)?;
    if data.len() as i64 != size {
        return Err(Error::io("read", rel, io::Error::other("the file changed as it was read")));
    }
    Ok(Ready::File(st, data))
}

/// The writer: every entry in order, as it comes ready.
fn write<W: Write>(b: &mut tar::Builder<W>, root: &Path, mode: HeaderMode, overlay_upper: bool, ahead: &Ahead) -> Result<()> {
    let mut first_name: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for at in 0u64.. {
        let (rel, ready) = {
            let mut g = ahead.lock();
            loop {
                if let Some(r) = g.ready.remove(&at) {
                    g.bytes -= r.1.as_ref().map_or(0, Ready::bytes);
                    g.written = at + 1;
                    ahead.changed.notify_all();
                    break r;
                }
                if g.end.is_some_and(|end| at >= end) {
                    return Ok(());
                }
                g = ahead.wait(g);
            }
        };
        let full = || root.join(&rel);
        match ready? {
            Ready::Skip => {}
            Ready::Opaque(st) => append_mark(b, &st, &rel, &root.join(rel.parent().unwrap_or(Path::new(""))))?,
            Ready::Other(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                b.append_data(&mut header_from(&st, mode), &rel, io::empty()).ctx("add", full())?;
            }
            // Before the hardlink check: overlayfs links its whiteouts to one shared inode.
            Ready::Other(st) if overlay_upper && overlay::is_whiteout(st.st_mode, st.st_rdev) => {
                let name = rel.file_name().unwrap_or_default();
                append_mark(b, &st, &rel.with_file_name(overlay::whiteout_tar_name(name)), &full())?;
            }
            Ready::Symlink(st, target) => {
                b.append_link(&mut header_from(&st, mode), &rel, &target).ctx("add", full())?;
            }
            ready => {
                let st = match &ready {
                    Ready::File(st, _) | Ready::Other(st) => *st,
                    Ready::Stream(f) => {
                        let mut st: libc::stat = unsafe { std::mem::zeroed() };
                        if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } != 0 {
                            return Err(Error::io("stat", full(), io::Error::last_os_error()));
                        }
                        st
                    }
                    _ => unreachable!("handled above"),
                };
                if st.st_nlink > 1 {
                    if let Some(target) = first_name.get(&(st.st_dev, st.st_ino)) {
                        b.append_link(&mut header_of(&st, EntryType::Link), &rel, target).ctx("add", full())?;
                        continue;
                    }
                    first_name.insert((st.st_dev, st.st_ino), rel.clone());
                }
                match ready {
                    Ready::File(st, data) => b.append_data(&mut header_from(&st, mode), &rel, &data[..]).ctx("add", full())?,
                    Ready::Stream(mut f) => b.append_file(&rel, &mut f).ctx("add", full())?,
                    _ => append_special(b, &st, &rel, &full())?,
                }
            }
        }
    }
    Ok(())
}

/// The header the tar crate's builder fills from a file's metadata.
fn header_from(st: &libc::stat, mode: HeaderMode) -> Header {
    let mut h = Header::new_gnu();
    let kind = st.st_mode & libc::S_IFMT;
    match mode {
        HeaderMode::Deterministic => {
            h.set_mtime(tar::DETERMINISTIC_TIMESTAMP);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mode(if kind == libc::S_IFDIR || st.st_mode & 0o100 == 0o100 { 0o755 } else { 0o644 });
        }
        _ => {
            h.set_mtime(st.st_mtime as u64);
            h.set_uid(u64::from(st.st_uid));
            h.set_gid(u64::from(st.st_gid));
            h.set_mode(st.st_mode);
        }
    }
    h.set_entry_type(match kind {
        libc::S_IFREG => EntryType::file(),
        libc::S_IFLNK => EntryType::symlink(),
        libc::S_IFCHR => EntryType::character_special(),
        libc::S_IFBLK => EntryType::block_special(),
        libc::S_IFDIR => EntryType::dir(),
        libc::S_IFIFO => EntryType::fifo(),
        _ => EntryType::new(b' '),
    });
    h.set_size(if kind == libc::S_IFDIR || kind == libc::S_IFLNK { 0 } else { st.st_size as u64 });
    if let Some(gnu) = h.as_gnu_mut() {
        gnu.set_device_major(0);
        gnu.set_device_minor(0);
    }
    h
}

/// A header of `kind` with a file's owner, mode and time, for what the builder has no call
/// of its own for: hardlinks, device nodes, fifos, overlay marks.
fn header_of(st: &libc::stat, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

fn append_special<W: Write>(b: &mut tar::Builder<W>, st: &libc::stat, rel: &Path, full: &Path) -> Result<()> {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFCHR => EntryType::Char,
        libc::S_IFBLK => EntryType::Block,
        libc::S_IFIFO => EntryType::Fifo,
        _ => return Err(Error::io("add", full, io::Error::other("unknown file type"))),
    };
    let mut h = header_of(st, kind);
    h.set_device_major(libc::major(st.st_rdev)).ctx("add", full)?;
    h.set_device_minor(libc::minor(st.st_rdev)).ctx("add", full)?;
    b.append_data(&mut h, rel, io::empty()).ctx("add", full)
}

/// An overlay mark of the upper dir's `src` as a layer tar holds it: an empty file `name`,
/// with the mark's owner and time.
fn append_mark<W: Write>(b: &mut tar::Builder<W>, st: &libc::stat, name: &Path, src: &Path) -> Result<()> {
    let mut h = header_of(st, EntryType::Regular);
    h.set_mode(0o600);
    b.append_data(&mut h, name, io::empty()).ctx("add", src)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// What the writer wrote before it was split over threads, built from the tar crate's own
    /// calls: the bytes the new one must give.
    fn by_the_crate(root: &Path, mode: HeaderMode, overlay_upper: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        b.mode(mode);
        let mut first_name: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let mut stack = vec![PathBuf::new()];
        let plain = |md: &std::fs::Metadata, kind: EntryType| {
            let mut h = Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(md.mode() & 0o7777);
            h.set_uid(md.uid().into());
            h.set_gid(md.gid().into());
            h.set_mtime(md.mtime().max(0) as u64);
            h.set_size(0);
            h
        };
        while let Some(rel) = stack.pop() {
            let full = root.join(&rel);
            let mut names: Vec<_> = std::fs::read_dir(&full).unwrap().map(|e| e.unwrap().file_name()).collect();
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            if overlay_upper && !rel.as_os_str().is_empty() && overlay::is_opaque_path(&full).unwrap() {
                let mut h = plain(&std::fs::symlink_metadata(&full).unwrap(), EntryType::Regular);
                h.set_mode(0o600);
                b.append_data(&mut h, rel.join(".wh..wh..opq"), io::empty()).unwrap();
            }
            let mut dirs = Vec::new();
            for name in names {
                let (r, p) = (rel.join(&name), full.join(&name));
                let md = std::fs::symlink_metadata(&p).unwrap();
                let ft = md.file_type();
                if overlay_upper && ft.is_char_device() && md.rdev() == 0 {
                    let mut h = plain(&md, EntryType::Regular);
                    h.set_mode(0o600);
                    let mut wh = std::ffi::OsString::from(".wh.");
                    wh.push(&name);
                    b.append_data(&mut h, rel.join(wh), io::empty()).unwrap();
                } else if ft.is_dir() {
                    b.append_dir(&r, &p).unwrap();
                    dirs.push(r);
                } else if ft.is_socket() {
                } else if md.nlink() > 1 && !ft.is_symlink() && first_name.contains_key(&(md.dev(), md.ino())) {
                    b.append_link(&mut plain(&md, EntryType::Link), &r, &first_name[&(md.dev(), md.ino())]).unwrap();
                } else {
                    if md.nlink() > 1 && !ft.is_symlink() {
                        first_name.insert((md.dev(), md.ino()), r.clone());
                    }
                    let kind = if ft.is_char_device() {
                        EntryType::Char
                    } else if ft.is_block_device() {
                        EntryType::Block
                    } else if ft.is_fifo() {
                        EntryType::Fifo
                    } else {
                        b.append_path_with_name(&p, &r).unwrap();
                        continue;
                    };
                    let mut h = plain(&md, kind);
                    h.set_device_major(libc::major(md.rdev())).unwrap();
                    h.set_device_minor(libc::minor(md.rdev())).unwrap();
                    b.append_data(&mut h, &r, io::empty()).unwrap();
                }
            }
            stack.extend(dirs.into_iter().rev());
        }
        b.into_inner().unwrap()
    }

    fn ours(root: &Path, mode: HeaderMode, overlay_upper: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        b.mode(mode);
        append_tree(&mut b, root, mode, overlay_upper).unwrap();
        b.into_inner().unwrap()
    }

    /// Every kind of entry the writer meets, in directories big enough to keep the readers
    /// ahead of the writer.
    fn tree(root: &Path) {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let long = "l".repeat(120);
        for d in ["a/b/c", "e", &format!("e/{long}")] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for i in 0..3000 {
            std::fs::write(root.join(format!("a/f{i}")), vec![i as u8; i % 1500]).unwrap();
        }
        std::fs::write(root.join("big"), vec![7u8; 700 << 10]).unwrap();
        let sparse = File::create(root.join("sparse")).unwrap();
        sparse.set_len(5 << 20).unwrap();
        std::os::unix::fs::FileExt::write_at(&sparse, b"data", 1 << 20).unwrap();
        let small_sparse = File::create(root.join("a/small-sparse")).unwrap();
        small_sparse.set_len(200 << 10).unwrap();
        std::os::unix::fs::FileExt::write_at(&small_sparse, b"data", 100 << 10).unwrap();
        std::fs::write(root.join(format!("e/{long}/file")), b"deep").unwrap();
        std::fs::hard_link(root.join("a/f10"), root.join("e/h10")).unwrap();
        std::fs::hard_link(root.join("big"), root.join("a/b/bighard")).unwrap();
        symlink("../big", root.join("a/s")).unwrap();
        symlink(format!("/{}", "t".repeat(150)), root.join("a/longtarget")).unwrap();
        std::fs::set_permissions(root.join("a/f5"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        nix::unistd::mkfifo(&root.join("e/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(root.join("e/sock")).unwrap();
        let times = [libc::timespec { tv_sec: -5, tv_nsec: 0 }; 2];
        let c = CString::new(root.join("a/f7").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) }, 0);
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::lchown(root.join("a/f8"), Some(1000), Some(1001)).unwrap();
            let dev = nix::sys::stat::Mode::from_bits_truncate(0o600);
            nix::sys::stat::mknod(&root.join("e/null"), nix::sys::stat::SFlag::S_IFCHR, dev, libc::makedev(1, 3)).unwrap();
            nix::sys::stat::mknod(&root.join("e/gone"), nix::sys::stat::SFlag::S_IFCHR, dev, 0).unwrap();
            std::fs::hard_link(root.join("e/gone"), root.join("a/gone2")).unwrap();
            let d = File::open(root.join("a/b")).unwrap();
            overlay::mark_opaque(d.as_raw_fd()).unwrap();
        }
    }

    #[test]
    fn the_bytes_are_the_tar_crates() {
        let t = super::super::testtar::scratch();
        tree(t.path());
        for mode in [HeaderMode::Complete, HeaderMode::Deterministic] {
            for overlay_upper in [false, true] {
                let (want, got) = (by_the_crate(t.path(), mode, overlay_upper), ours(t.path(), mode, overlay_upper));
                assert!(want == got, "{mode:?}, overlay_upper {overlay_upper}: {} bytes against {}", got.len(), want.len());
            }
        }
    }

    #[test]
    fn a_tree_that_goes_away_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let e = append_tree(&mut b, &t.path().join("nothing"), HeaderMode::Complete, false).unwrap_err();
        assert!(e.to_string().contains("nothing"), "{e}");
    }
}
