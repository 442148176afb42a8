//! The directory a layer is unpacked into, as a whole: emptied when the layer is refused, so
//! no partial layer remains, written back while it is written, and synced once when it is
//! complete.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};

/// Remove what a refused archive left in `dest`. remove_dir_all does not follow symlinks, so
/// this stays inside.
pub fn empty(dest: &Path) {
    for child in std::fs::read_dir(dest).into_iter().flatten().flatten() {
        let path = child.path();
        let _ = if child.file_type().is_ok_and(|t| t.is_dir()) { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
    }
}

/// One sync for the whole layer, instead of one per file.
pub fn syncfs(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open", dir)?;
    nix::unistd::syncfs(&f).map_err(|e| Error::sys(format!("syncfs {}", dir.display()), e))
}

/// Run `work`, which writes into `dir`, while a thread writes back what is there so far
/// (syncfs over and over): the disk works while the files are made instead of after, and the
/// final sync waits for little. A sync of the whole filesystem writes many small files back
/// in few large writes, where a start of writeback per file was slower than none. Not on
/// tmpfs and ramfs, which have nothing to write back.
pub fn flushing<R>(dir: &Path, work: impl FnOnce() -> R) -> R {
    let Some(f) = File::open(dir).ok().filter(|f| !in_memory(f)) else { return work() };
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let flusher = s.spawn(|| loop {
            // Not at once: a small layer is written before there is anything worth a sync.
            std::thread::park_timeout(Duration::from_millis(50));
            if done.load(Ordering::Relaxed) {
                break;
            }
            let _ = nix::unistd::syncfs(&f); // the final sync reports errors
        });
        // However `work` ends, the flusher ends too.
        struct Done<'a>(&'a AtomicBool, &'a std::thread::Thread);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
                self.1.unpark();
            }
        }
        let _done = Done(&done, flusher.thread());
        work()
    })
}

fn in_memory(f: &File) -> bool {
    use nix::sys::statfs::{fstatfs, FsType, TMPFS_MAGIC};
    const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);
    fstatfs(f).is_ok_and(|s| matches!(s.filesystem_type(), TMPFS_MAGIC | RAMFS_MAGIC))
}
