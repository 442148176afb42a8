//! The threads that write a layer's files. The parse (plan.rs) reads the tar once, in order,
//! and hands out batches of entries that nothing else in flight touches: new names in
//! directories that are there. Workers take the batches in order and write each entry
//! beneath its directory's fd; a batch whose hardlinks name a file of an earlier batch waits
//! for that batch. The queue holds a few batches of at most `Limits::bytes` of content each,
//! so memory stays bounded whatever the layer. The first failure, by the entry's place in the
//! tar, is the one reported, as if the entries had been written one by one: after a failure,
//! only the entries before it are still written.

use std::collections::{BTreeSet, VecDeque};
use std::ffi::CString;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::beneath::Root;
use super::entry::{self, Defaults, Fail, Meta};
use crate::error::Error;

/// A batch is handed out once it holds this much content, this many entries, or this many
/// directory fds (a layer of many small directories must not run the process out of fds:
/// a few batches are in flight at once).
#[derive(Clone, Copy)]
pub struct Limits {
    pub bytes: usize,
    pub entries: usize,
    pub fds: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits { bytes: 1 << 20, entries: 1024, fds: 32 };

    /// The default, with fewer fds per batch where the process may hold few.
    pub fn for_workers(workers: usize) -> Limits {
        let in_flight = (QUEUE_PER_WORKER + 1) * workers + 1;
        Limits { fds: (crate::sys::fd_share() / in_flight).clamp(2, Limits::DEFAULT.fds), ..Limits::DEFAULT }
    }
}

/// Batches waiting per worker: enough to ride over an uneven batch, few enough to stay small.
const QUEUE_PER_WORKER: usize = 2;

/// What to write at a name.
pub enum Op {
    /// A regular file; its content is the batch's `data[range]`.
    File(Range<usize>, Meta),
    Symlink(CString, Meta),
    /// A device node or fifo: kind (S_IFCHR, S_IFBLK, S_IFIFO) and device number.
    Node(libc::mode_t, libc::dev_t, Meta),
    Whiteout,
    /// A hardlink to a name in a directory.
    Hardlink(Arc<OwnedFd>, CString),
}

/// One entry: its place in the tar, its path as the tar gives it (for errors), the open
/// directory and the name it goes to, and what it is.
pub struct Task {
    pub entry: usize,
    pub shown: Vec<u8>,
    pub at: Arc<OwnedFd>,
    pub name: CString,
    pub op: Op,
}

impl Task {
    /// Write the entry; whether a directory was removed for it (what an earlier entry put at
    /// the name is replaced).
    pub fn apply(&self, data: &[u8], d: &Defaults) -> Result<bool, Error> {
        let at = self.at.as_raw_fd();
        match &self.op {
            Op::File(range, meta) => entry::file(at, &self.name, meta, d, |f| entry::write_all(f, &data[range.clone()])),
            Op::Symlink(target, meta) => entry::symlink(at, &self.name, target, meta, d),
            Op::Node(kind, dev, meta) => entry::node(at, &self.name, *kind, *dev, meta, d),
            Op::Whiteout => entry::whiteout(at, &self.name),
            Op::Hardlink(dir, name) => entry::hardlink(at, &self.name, dir.as_raw_fd(), name),
        }
        .map_err(|f| entry_error(&self.shown, f))
    }
}

/// The error for an entry whose write failed with `f`.
pub fn entry_error(shown: &[u8], f: Fail) -> Error {
    let shown = String::from_utf8_lossy(shown);
    match f {
        Fail::Sys(_, Errno::EXDEV | Errno::ELOOP) => escapes(&shown),
        Fail::Sys(op, e) => Error::BadArchive(format!("unpack {shown}: {op}: {}", e.desc().to_lowercase())),
        Fail::Input(e) => malformed(&e),
    }
}

/// A tar that does not parse, in the tar crate's words without the header's bytes it quotes
/// after them ("... when getting cksum for <garbage>"), which may be anything.
pub fn malformed(e: &std::io::Error) -> Error {
    let words = e.to_string();
    let cut = words.find(" when getting ").map_or(words.as_str(), |i| &words[..i]);
    let cut = cut.split_once(": ").filter(|(_, rest)| rest.chars().any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER)).map_or(cut, |(head, _)| head);
    Error::BadArchive(format!("malformed or truncated tar: {}", cut.chars().filter(|c| !c.is_control()).collect::<String>()))
}

pub fn escapes(shown: &str) -> Error {
    Error::BadArchive(format!("unsafe path in archive: {shown} leads outside the layer"))
}

/// Entries to write in order, or directories whose metadata to set (once every entry is
/// written), numbered from 1 in the order handed out.
#[derive(Default)]
pub struct Batch {
    pub seq: u64,
    /// A batch that must be written first (0: none).
    pub after: u64,
    pub tasks: Vec<Task>,
    pub data: Vec<u8>,
    /// The directory fds the tasks hold.
    pub fds: usize,
    /// (place for errors, path, metadata).
    pub dirs: Vec<(usize, Vec<u8>, Meta)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.dirs.is_empty()
    }

    fn first_entry(&self) -> usize {
        self.tasks.first().map(|t| t.entry).or(self.dirs.first().map(|d| d.0)).unwrap_or(usize::MAX)
    }

    pub fn is_full(&self, limits: &Limits) -> bool {
        self.data.len() >= limits.bytes || self.tasks.len() >= limits.entries || self.fds >= limits.fds || self.dirs.len() >= limits.entries
    }
}

/// The queue and what is known of the batches handed out.
pub struct Pool<'r> {
    root: &'r Root,
    state: Mutex<State>,
    changed: Condvar,
    /// The place of the first failure in the tar (usize::MAX: none yet).
    failed_at: AtomicUsize,
    capacity: usize,
}

struct State {
    queue: VecDeque<Batch>,
    closed: bool,
    pushed: u64,
    finished: u64,
    /// Every batch below this one is written; `done` holds those written past it.
    done_below: u64,
    done: BTreeSet<u64>,
    /// The first failure by place in the tar.
    error: Option<(usize, Error)>,
    /// Content buffers to use again.
    spare: Vec<Vec<u8>>,
}

impl<'r> Pool<'r> {
    pub fn new(root: &'r Root, workers: usize) -> Pool<'r> {
        let state =
            State { queue: VecDeque::new(), closed: false, pushed: 0, finished: 0, done_below: 1, done: BTreeSet::new(), error: None, spare: Vec::new() };
        Pool { root, state: Mutex::new(state), changed: Condvar::new(), failed_at: AtomicUsize::new(usize::MAX), capacity: QUEUE_PER_WORKER * workers.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, g: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.changed.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    pub fn failed(&self) -> bool {
        self.failed_at() != usize::MAX
    }

    fn failed_at(&self) -> usize {
        self.failed_at.load(Ordering::Relaxed)
    }

    /// Record a failure at the tar's entry `entry`; the first by place wins.
    pub fn fail(&self, entry: usize, e: Error) {
        let mut g = self.lock();
        if g.error.as_ref().is_none_or(|(at, _)| entry < *at) {
            g.error = Some((entry, e));
            self.failed_at.store(entry, Ordering::Relaxed);
        }
        self.changed.notify_all();
    }

    pub fn take_error(&self) -> Option<Error> {
        self.lock().error.take().map(|(_, e)| e)
    }

    /// A buffer for a batch's content.
    pub fn buffer(&self) -> Vec<u8> {
        self.lock().spare.pop().unwrap_or_default()
    }

    /// Hand out `batch`; waits while the queue is full. A batch that comes after a failure in
    /// the tar is dropped.
    pub fn push(&self, batch: Batch) {
        let mut g = self.lock();
        while g.queue.len() >= self.capacity && !self.failed() {
            g = self.wait(g);
        }
        if batch.first_entry() > self.failed_at() {
            return;
        }
        g.queue.push_back(batch);
        g.pushed += 1;
        self.changed.notify_all();
    }

    /// Wait until every batch handed out is written (or skipped after a failure).
    pub fn idle(&self) {
        let mut g = self.lock();
        while g.finished < g.pushed {
            g = self.wait(g);
        }
    }

    /// No more batches: the workers end once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn next(&self) -> Option<Batch> {
        let mut g = self.lock();
        loop {
            if let Some(b) = g.queue.pop_front() {
                self.changed.notify_all();
                return Some(b);
            }
            if g.closed {
                return None;
            }
            g = self.wait(g);
        }
    }

    /// Wait until the batch `seq` is written (or skipped): one handed out before this one,
    /// so taken by a worker before it.
    fn wait_for(&self, seq: u64) {
        let mut g = self.lock();
        while !(seq < g.done_below || g.done.contains(&seq)) {
            g = self.wait(g);
        }
    }

    fn finish(&self, seq: u64, mut data: Vec<u8>) {
        let mut g = self.lock();
        g.done.insert(seq);
        loop {
            let below = g.done_below;
            if !g.done.remove(&below) {
                break;
            }
            g.done_below += 1;
        }
        g.finished += 1;
        data.clear();
        g.spare.push(data);
        self.changed.notify_all();
    }

    /// A worker: batches until the pool is closed and empty, on a thread whose umask is its
    /// own.
    pub fn work(&self) {
        let d = Defaults::for_this_thread(self.root.raw());
        while let Some(b) = self.next() {
            if b.after > 0 {
                self.wait_for(b.after);
            }
            // A panic is a failure like any other: the parse must not wait for this thread.
            let wrote = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.write(&b, &d)));
            if wrote.is_err() {
                self.fail(b.tasks.first().map_or(usize::MAX, |t| t.entry), Error::BadArchive("an unpack worker panicked".into()));
            }
            self.finish(b.seq, b.data);
        }
    }

    /// Write the batch's entries, those before any failure.
    fn write(&self, b: &Batch, d: &Defaults) {
        for task in b.tasks.iter().take_while(|t| t.entry < self.failed_at()) {
            if let Err(e) = task.apply(&b.data, d) {
                return self.fail(task.entry, e);
            }
        }
        for (entry, path, meta) in b.dirs.iter().take_while(|(entry, ..)| *entry < self.failed_at()) {
            if let Err(e) = finish_dir(self.root, path, meta, d) {
                return self.fail(*entry, e);
            }
        }
    }
}

/// Set a directory's metadata at the end, once nothing more is written into it.
pub fn finish_dir(root: &Root, path: &[u8], meta: &Meta, d: &Defaults) -> Result<(), Error> {
    let shown = || String::from_utf8_lossy(path).into_owned();
    match root.open_beneath(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW) {
        Ok(fd) => entry::finish_dir(&fd, meta, d).map_err(|f| match f {
            Fail::Sys(op, e) => Error::BadArchive(format!("unpack {}: {op}: {}", shown(), e.desc().to_lowercase())),
            Fail::Input(e) => malformed(&e),
        }),
        // A later entry replaced the directory by something else.
        Err(Errno::ENOTDIR | Errno::ELOOP | Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys(format!("open {}", shown()), e)),
    }
}
