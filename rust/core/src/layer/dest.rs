//! The directory a layer is unpacked into, as a whole: emptied when the layer is refused, so
//! no partial layer remains, and synced once when it is complete.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Remove what a refused archive left in `dest`. remove_dir_all does not follow symlinks, so
/// this stays inside.
pub fn empty(dest: &Path) {
    for child in std::fs::read_dir(dest).into_iter().flatten().flatten() {
        let path = child.path();
        let _ = if child.file_type().is_ok_and(|t| t.is_dir()) { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
    }
}

/// One sync for the whole layer, instead of one per file, once every file is made: the kernel
/// then writes the layer's small files back in few large writes. A thread that synced over and
/// over while the files were made (to overlap the disk with the creates) wrote the same inode
/// table and bitmap blocks again at each turn and took CPU from the creates: 100,000 small
/// files on a fresh ext4 wrote 554 MB in ~2,700 writes with it, 539 MB in ~2,000 without, and
/// were no faster for it.
pub fn syncfs(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open", dir)?;
    nix::unistd::syncfs(&f).map_err(|e| Error::sys(format!("syncfs {}", dir.display()), e))
}
