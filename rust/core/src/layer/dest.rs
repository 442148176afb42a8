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

/// One sync for the whole layer, instead of one per file.
pub fn syncfs(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open", dir)?;
    nix::unistd::syncfs(&f).map_err(|e| Error::sys(format!("syncfs {}", dir.display()), e))
}
