//! Tar streams out of directories: a directory as it is, or a container's merged view.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::digest::HashingWriter;
use crate::error::{Error, IoContext, Result};
use crate::overlay::{Method, OverlayMount};

/// Write `dir` as a tar to `out`; `deterministic` zeroes owners and times (for built-in images
/// whose digest should not depend on when they were made). Returns the digest and size.
pub fn tar_directory(dir: &Path, out: impl Write, deterministic: bool) -> Result<(String, u64)> {
    let mut b = tar::Builder::new(HashingWriter::new(BufWriter::with_capacity(1 << 20, out)));
    let mode = if deterministic { tar::HeaderMode::Deterministic } else { tar::HeaderMode::Complete };
    b.follow_symlinks(false);
    b.mode(mode);
    super::pack::append_tree(&mut b, dir, mode, false)?;
    let hw = b.into_inner().ctx("write tar of", dir)?;
    let (mut w, digest, size) = hw.finish();
    w.flush().ctx("write tar of", dir)?;
    Ok((digest, size))
}

/// Tar the merged view of an overlay (lowers top-most first) to `out`, mounting it read-only on
/// `mountpoint` in a mount namespace private to a short-lived thread: nothing outlives the call,
/// even if the process dies in the middle.
pub fn export_overlay(lowers: Vec<PathBuf>, mountpoint: PathBuf, out: File) -> Result<()> {
    // The overlay mount changes the thread's working directory first (overlay.rs).
    if !mountpoint.is_absolute() {
        return Err(Error::InvalidConfig(format!("mount point {} is not absolute", mountpoint.display())));
    }
    std::thread::spawn(move || -> Result<()> {
        use nix::mount::{mount, MsFlags};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS).map_err(|e| Error::sys("unshare", e))?;
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).map_err(|e| Error::sys("make mounts private", e))?;
        // A single lower dir is not an overlay; bind it instead.
        if lowers.len() == 1 {
            mount(Some(&lowers[0]), &mountpoint, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_RDONLY, None::<&str>)
                .map_err(|e| Error::sys("mount the container's files", e))?;
        } else {
            let overlay = OverlayMount::prepare(&lowers, None, false, Method::for_this_kernel()?)?;
            let target =
                std::ffi::CString::new(mountpoint.as_os_str().as_bytes()).map_err(|_| Error::InvalidConfig("mount point contains a NUL byte".into()))?;
            overlay.mount(&target).map_err(|(i, e)| Error::sys(format!("mount the container's files ({})", overlay.describe(i)), e))?;
        }
        tar_directory(&mountpoint, out, false).map(drop)
    })
    .join()
    .map_err(|_| Error::Internal("export thread panicked".into()))?
}
