//! The parse of a layer tar, and who writes each entry. The tar is read once, in order, on one
//! thread; each entry that is a new name in a directory that is there goes into a batch for
//! the workers (writers.rs), which write batches side by side. Everything else is written by
//! the parse itself once the batches in flight are written: an entry that replaces what an
//! earlier one put at its path, a hardlink whose target is no file of this layer, a big file
//! (streamed, never held in memory). Directories are made here, before any entry in them is
//! handed out, and get their metadata at the end. Which case an entry is comes from the tree
//! (tree.rs) of what the layer holds so far; once an entry's path leads through a symlink or
//! a non-directory the tree no longer says what is where, and every entry after it is written
//! here, in tar order. Either way the result is the one a single thread writing the entries
//! in order gives.
//!
//! Every name is created beneath the layer's directory fd (beneath.rs); the parse resolves
//! paths, the workers only create names in directory fds they are given.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use tar::EntryType;

use super::beneath::{clean, cstr, split, Root};
use super::entry::{self, Defaults, Fail, Meta};
use super::lower_links::LowerLink;
use super::overlay::{self, TarName};
use super::tree::{remove_beneath, Node, Tree};
use super::unpack::Mode;
use super::writers::{entry_error, escapes, finish_dir, Batch, Limits, Op, Pool, Task};
use crate::error::{Error, Result};

/// Files up to this size go to the workers; bigger ones are streamed by the parse.
const SMALL_FILE: u64 = 256 << 10;

/// Write the tar `input` into the empty directory `dest` with `workers` threads besides the
/// parse, in batches of `limits`. Returns the number of entries and the hardlinks left for the
/// layers below.
#[cfg(test)]
pub fn unpack_entries(input: &mut (impl Read + Send), dest: &Path, workers: usize, limits: Limits) -> Result<(usize, Vec<LowerLink>)> {
    unpack_entries_as(input, dest, workers, limits, Mode::Layer).map(|(n, links, _)| (n, links))
}

/// `unpack_entries` with the tar read as `mode` says; also returns whether the tar had an
/// entry for its root (`./`).
pub fn unpack_entries_as(input: &mut (impl Read + Send), dest: &Path, workers: usize, limits: Limits, mode: Mode) -> Result<(usize, Vec<LowerLink>, bool)> {
    let root = Root::open(dest)?;
    let pool = Pool::new(&root, workers);
    let got = std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| pool.work());
        }
        // The parse too runs on a thread of its own: it gives itself a umask (entry::Defaults).
        s.spawn(|| parse(&root, &pool, input, limits, mode)).join()
    });
    match (pool.take_error(), got) {
        (Some(e), _) => Err(e),
        (None, Ok(got)) => Ok(got),
        (None, Err(_)) => Err(Error::BadArchive("the unpack panicked".into())),
    }
}

/// However the parse ends, the workers end too (writing nothing more if it panicked).
struct Close<'a, 'r>(&'a Pool<'r>);

impl Drop for Close<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fail(usize::MAX, Error::BadArchive("the unpack panicked".into()));
        }
        self.0.close();
    }
}

fn parse(root: &Root, pool: &Pool<'_>, input: &mut impl Read, limits: Limits, mode: Mode) -> (usize, Vec<LowerLink>, bool) {
    let _close = Close(pool);
    let mut plan = Plan::new(root, pool, limits, mode);
    plan.run(input);
    (plan.count, std::mem::take(&mut plan.lower_links).into_vec(), plan.has_root)
}

struct Plan<'a, 'r> {
    root: &'r Root,
    pool: &'a Pool<'r>,
    d: Defaults,
    limits: Limits,
    tree: Tree,
    /// Written here alone, in tar order: a path led through a symlink or a non-directory.
    serial: bool,
    /// The directory the last entry went to (tars list a directory's entries together).
    last: Option<(Vec<u8>, Arc<OwnedFd>)>,
    batch: Batch,
    count: usize,
    lower_links: Deferred,
    /// For the files streamed here.
    buf: Vec<u8>,
    mode: Mode,
    /// The tar had an entry for its root (`./`).
    has_root: bool,
}

fn bad(e: io::Error) -> Error {
    super::writers::malformed(&e)
}

impl<'a, 'r> Plan<'a, 'r> {
    fn new(root: &'r Root, pool: &'a Pool<'r>, limits: Limits, mode: Mode) -> Plan<'a, 'r> {
        let d = Defaults::for_this_thread(root.raw());
        let batch = Batch { seq: 1, data: pool.buffer(), ..Batch::default() };
        let lower_links = Deferred::default();
        Plan { root, pool, d, limits, tree: Tree::default(), serial: false, last: None, batch, count: 0, lower_links, buf: Vec::new(), mode, has_root: false }
    }

    /// Every entry, then every directory's metadata. A failure is the pool's to report.
    fn run(&mut self, input: &mut impl Read) {
        let mut archive = tar::Archive::new(input);
        let entries = match archive.entries() {
            Ok(entries) => entries,
            Err(e) => return self.pool.fail(0, bad(e)),
        };
        let mut at = 0;
        for entry in entries {
            at += 1;
            if self.pool.failed() {
                return;
            }
            // A first header that does not parse: the input is not a tar at all.
            let entry = entry.map_err(|e| if at == 1 { Error::BadArchive("not a tar archive".into()) } else { bad(e) });
            if let Err(e) = entry.and_then(|mut entry| self.entry(&mut entry, at)) {
                // The entries before it are written still: an earlier one may fail first.
                self.pool.fail(at, e);
                return self.flush();
            }
        }
        if self.settle().is_err() {
            return;
        }
        let dirs = std::mem::take(&mut self.tree).dirs();
        for (n, (path, meta)) in dirs.enumerate() {
            if self.serial {
                if let Err(e) = finish_dir(self.root, &path, &meta, &self.d) {
                    return self.pool.fail(at + 1 + n, e);
                }
                continue;
            }
            self.batch.dirs.push((at + 1 + n, path, meta));
            if self.batch.is_full(&self.limits) {
                self.flush();
            }
        }
        let _ = self.settle();
    }

    /// Hand out the batch being filled.
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let next = Batch { seq: self.batch.seq + 1, data: self.pool.buffer(), ..Batch::default() };
        self.pool.push(std::mem::replace(&mut self.batch, next));
    }

    /// Make room in the batch being filled for an entry in `dir` with `bytes` of content: hand
    /// it out first if it would grow past its limits, or if the entry starts another directory
    /// and the batch is big enough already (workers creating names in one directory wait for
    /// each other: a directory's entries had better stay in one batch).
    fn room(&mut self, dir: &Arc<OwnedFd>, bytes: usize) {
        let b = &self.batch;
        let other_dir = b.tasks.last().is_some_and(|t| !Arc::ptr_eq(&t.at, dir));
        if b.data.len() + bytes > self.limits.bytes || (other_dir && b.tasks.len() >= self.limits.entries / 4) {
            self.flush();
        }
    }

    /// Wait until everything handed out is written, before the parse writes an entry that
    /// may replace what is there (the directory it went to last included).
    fn settle(&mut self) -> Result<()> {
        self.flush();
        self.pool.idle();
        self.last = None;
        if self.pool.failed() {
            return Err(Error::BadArchive("stopped: an earlier entry failed".into()));
        }
        Ok(())
    }

    /// From now on, every entry is written here, in order.
    fn go_serial(&mut self) -> Result<()> {
        self.settle()?;
        self.serial = true;
        Ok(())
    }

    /// Whether an entry at `path` can go to a worker: a new name, nothing in flight near it.
    fn new_name(&self, path: &[u8]) -> bool {
        !self.serial && self.tree.get(path).is_none()
    }

    /// The directory `parent` (made where missing), for an entry at `path`.
    fn dir(&mut self, parent: &[u8], path: &[u8], shown: &str) -> Result<Arc<OwnedFd>> {
        if let Some((p, fd)) = &self.last {
            if p == parent {
                return Ok(fd.clone());
            }
        }
        if !self.serial && self.tree.blocked(path) {
            self.go_serial()?;
        }
        let fd = Arc::new(self.root.dir(parent).map_err(|e| entry_error(shown.as_bytes(), Fail::Sys("open parent", e)))?);
        self.tree.made_dirs(parent);
        self.last = Some((parent.to_vec(), fd.clone()));
        Ok(fd)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, at: usize) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink) {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw); // borrowed: no copy per entry
        let path = clean(&raw).ok_or_else(|| escapes(&shown))?;
        self.count += 1;
        let mut meta = Meta::of(entry).map_err(bad)?;
        let (layer, tame) = match self.mode {
            Mode::Layer => (true, false),
            Mode::Plain { owner, tame } => {
                (meta.uid, meta.gid) = owner.unwrap_or((meta.uid, meta.gid));
                if tame {
                    meta.mode &= !0o6000;
                }
                (false, tame)
            }
        };
        let (parent, name) = split(&path);
        // A plain tar's hardlink to a file it lacks stays an error, however later entries go.
        if layer && !self.lower_links.is_empty() {
            self.lower_links.replaced(&path, name, kind.is_dir());
        }
        if name.is_empty() {
            if kind.is_dir() {
                self.has_root = true;
                self.tree.set(b"", Node::Dir(Some(Box::new(meta))));
            }
            return Ok(());
        }
        if tame && (kind.is_character_special() || kind.is_block_special()) {
            return Ok(());
        }
        let dir = self.dir(parent, &path, &shown)?;
        let task = |name: CString, op: Op| Task { entry: at, shown: raw.clone(), at: dir.clone(), name, op };
        match if layer { overlay::tar_name(name) } else { TarName::Plain } {
            TarName::Opaque => {
                overlay::mark_opaque(dir.as_raw_fd()).map_err(|e| entry_error(&raw, Fail::Sys("mark opaque", e)))?;
                return Ok(());
            }
            TarName::Whiteout(hidden) => {
                let mut hidden_path = parent.to_vec();
                if !hidden_path.is_empty() {
                    hidden_path.push(b'/');
                }
                hidden_path.extend_from_slice(hidden);
                return self.put(task(cstr(hidden)?, Op::Whiteout), &hidden_path, Node::Whiteout);
            }
            TarName::NoSibling => return Err(escapes(&shown)),
            TarName::Plain => {}
        }
        let cname = cstr(name)?;
        if kind.is_dir() {
            match self.tree.get(&path) {
                Some(Node::Dir(_)) if !self.serial => {}
                None if !self.serial => {
                    if unsafe { libc::mkdirat(dir.as_raw_fd(), cname.as_ptr(), entry::DIR_MODE) } != 0 {
                        return Err(entry_error(&raw, Fail::Sys("mkdir", Errno::last())));
                    }
                }
                _ => {
                    self.settle()?;
                    entry::dir(dir.as_raw_fd(), &cname).map_err(|f| entry_error(&raw, f))?;
                }
            }
            self.tree.set(&path, Node::Dir(Some(Box::new(meta))));
            Ok(())
        } else if kind.is_file() || kind == EntryType::Continuous || kind.is_gnu_sparse() {
            let size = entry.size();
            if size <= SMALL_FILE && self.new_name(&path) {
                self.room(&dir, size as usize);
                let start = self.batch.data.len();
                let end = start + size as usize;
                // read_exact: no read past the content to find its end, as read_to_end makes.
                self.batch.data.resize(end, 0);
                entry.read_exact(&mut self.batch.data[start..end]).map_err(|e| {
                    let e = if e.kind() == io::ErrorKind::UnexpectedEof { io::ErrorKind::UnexpectedEof.into() } else { e };
                    entry_error(&raw, Fail::Input(e))
                })?;
                return self.put(task(cname, Op::File(start..end, meta)), &path, Node::Other { seq: 0 });
            }
            if !self.new_name(&path) {
                self.settle()?;
            }
            if self.buf.is_empty() {
                self.buf = vec![0u8; 1 << 20];
            }
            let buf = &mut self.buf;
            let removed_dir = entry::file(dir.as_raw_fd(), &cname, &meta, &self.d, |f| entry::copy(f, entry, size, buf)).map_err(|f| entry_error(&raw, f))?;
            self.wrote(&path, removed_dir, Node::Other { seq: 0 });
            Ok(())
        } else if kind.is_symlink() {
            let target = entry.link_name_bytes().ok_or_else(|| Error::BadArchive(format!("symlink {shown} has no target")))?;
            let op = Op::Symlink(cstr(&target)?, meta);
            self.put(task(cname, op), &path, Node::Other { seq: 0 })
        } else if kind.is_hard_link() {
            let target = entry.link_name_bytes().ok_or_else(|| Error::BadArchive(format!("hardlink {shown} has no target")))?;
            let target = clean(&target).filter(|t| !t.is_empty()).ok_or_else(|| escapes(&shown))?;
            self.hardlink(task(cname, Op::Whiteout), path, target)
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let h = entry.header();
            let number = |n: io::Result<Option<u32>>| n.map(|n| n.unwrap_or(0)).map_err(bad);
            let (mode, dev) = match kind.is_fifo() {
                true => (libc::S_IFIFO, 0),
                false => (
                    if kind.is_character_special() { libc::S_IFCHR } else { libc::S_IFBLK },
                    libc::makedev(number(h.device_major())?, number(h.device_minor())?),
                ),
            };
            self.put(task(cname, Op::Node(mode, dev, meta)), &path, Node::Other { seq: 0 })
        } else {
            Err(Error::BadArchive(format!("unpack {shown}: unsupported entry type {kind:?}")))
        }
    }

    /// Write `task`, the entry at `path` that leaves `node` there: by a worker if it is a new
    /// name, else here once the batches in flight are written.
    fn put(&mut self, task: Task, path: &[u8], node: Node) -> Result<()> {
        self.put_after(task, path, node, 0)
    }

    /// `put`, where a worker must not write `task` before the batch `dep` is written (0: none).
    fn put_after(&mut self, task: Task, path: &[u8], node: Node, dep: u64) -> Result<()> {
        if self.new_name(path) {
            self.room(&task.at, 0);
            if dep != self.batch.seq {
                self.batch.after = self.batch.after.max(dep);
            }
            let node = match node {
                Node::Other { .. } => Node::Other { seq: self.batch.seq },
                other => other,
            };
            self.tree.set(path, node);
            let new_dir = self.batch.tasks.last().is_none_or(|t| !Arc::ptr_eq(&t.at, &task.at));
            self.batch.fds += usize::from(new_dir) + usize::from(matches!(task.op, Op::Hardlink(..)));
            self.batch.tasks.push(task);
            if self.batch.is_full(&self.limits) {
                self.flush();
            }
            return Ok(());
        }
        self.settle()?;
        let removed_dir = task.apply(&[], &self.d)?;
        self.wrote(path, removed_dir, node);
        Ok(())
    }

    /// The parse wrote `node` at `path`, replacing a directory if `removed_dir`.
    fn wrote(&mut self, path: &[u8], removed_dir: bool, node: Node) {
        if removed_dir {
            self.tree.remove(path);
        }
        self.tree.set(path, node);
    }

    /// A hardlink at `path` (`task`, its op to be filled) to `target`, a clean path of the
    /// layer. A target this layer does not hold is left for the layers below (lower_links.rs).
    fn hardlink(&mut self, mut task: Task, path: Vec<u8>, target: Vec<u8>) -> Result<()> {
        if !self.serial && self.tree.blocked(&target) {
            self.go_serial()?;
        }
        let (tparent, tname) = split(&target);
        let tname = cstr(tname)?;
        // In the layer, written by the batch `dep` (0: by the parse): the link waits for it.
        let (in_layer, dep) = match self.tree.get(&target) {
            _ if self.serial => (self.holds(tparent, &tname, &task.shown)?, 0),
            None | Some(Node::Whiteout) => (false, 0),
            // linkat refuses it, as a single thread would have been told.
            Some(Node::Dir(_)) => (true, 0),
            Some(Node::Other { seq }) => (true, *seq),
        };
        if in_layer {
            let tdir = self.root.open_beneath(tparent, OFlag::O_RDONLY | OFlag::O_DIRECTORY);
            let tdir = tdir.map_err(|e| entry_error(&task.shown, Fail::Sys("open hardlink target", e)))?;
            task.op = Op::Hardlink(Arc::new(tdir), tname);
            return self.put_after(task, &path, Node::Other { seq: 0 }, dep);
        }
        // Not in this layer: a file of a layer below, or nowhere (link_from_lowers tells). A
        // link to such a link is one to the same lower file.
        let target = self.lower_links.target_of(&target).unwrap_or(target);
        // What an earlier entry put there is replaced, as by any entry.
        if self.serial || self.tree.get(&path).is_some() {
            self.settle()?;
            entry::remove(task.at.as_raw_fd(), &task.name).map_err(|f| entry_error(&task.shown, f))?;
        }
        self.tree.remove(&path);
        self.lower_links.push(path, target);
        Ok(())
    }

    /// Whether the layer's directory holds something to link to at `tparent`/`tname`, asked
    /// of the directory itself (once a path led through a symlink, the tree cannot tell). A
    /// whiteout this layer made is no file to link to: the file is deleted.
    fn holds(&mut self, tparent: &[u8], tname: &CString, shown: &[u8]) -> Result<bool> {
        self.settle()?;
        match self.root.open_beneath(tparent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(false),
            Err(e) => Err(entry_error(shown, Fail::Sys("open hardlink target", e))),
            Ok(tdir) => Ok(overlay::present_at(tdir.as_raw_fd(), tname)),
        }
    }
}

/// The hardlinks left for the layers below, by path, numbered in the order they came.
#[derive(Default)]
struct Deferred {
    links: BTreeMap<Vec<u8>, (usize, Vec<u8>)>,
    count: usize,
}

impl Deferred {
    fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    fn push(&mut self, path: Vec<u8>, target: Vec<u8>) {
        self.links.insert(path, (self.count, target));
        self.count += 1;
    }

    /// The lower file a link at `path` names.
    fn target_of(&self, path: &[u8]) -> Option<Vec<u8>> {
        self.links.get(path).map(|(_, t)| t.clone())
    }

    /// Drop the links that the entry at `path` replaces: one at that path, and, unless the
    /// entry is a directory (kept with what it holds), any beneath it. A whiteout `.wh.NAME`
    /// replaces NAME.
    fn replaced(&mut self, path: &[u8], name: &[u8], is_dir: bool) {
        let (gone, whole) = match overlay::tar_name(name) {
            TarName::Opaque | TarName::NoSibling => return,
            TarName::Whiteout(hidden) => {
                let mut p = split(path).0.to_vec();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(hidden);
                (p, true)
            }
            TarName::Plain => (path.to_vec(), !is_dir),
        };
        if gone.is_empty() {
            return; // the root's own entry
        }
        self.links.remove(&gone);
        if whole {
            remove_beneath(&mut self.links, &gone);
        }
    }

    fn into_vec(self) -> Vec<LowerLink> {
        let mut links: Vec<(usize, LowerLink)> = self.links.into_iter().map(|(path, (n, target))| (n, LowerLink { path, target })).collect();
        links.sort_by_key(|(n, _)| *n);
        links.into_iter().map(|(_, l)| l).collect()
    }
}
