//! Tar streams out of directories: a directory as it is, or a container's merged view.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::digest::HashingWriter;
use crate::error::{Error, IoContext, Result};

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
    std::thread::spawn(move || -> Result<()> {
        use nix::mount::{mount, MsFlags};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS).map_err(|e| Error::sys("unshare", e))?;
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).map_err(|e| Error::sys("make mounts private", e))?;
        let mut data = b"lowerdir=".to_vec();
        for (i, l) in lowers.iter().enumerate() {
            if i > 0 {
                data.push(b':');
            }
            data.extend_from_slice(l.as_os_str().as_bytes());
        }
        let data = std::ffi::OsStr::from_bytes(&data);
        // A single lower dir is not an overlay; bind it instead.
        if lowers.len() == 1 {
            mount(Some(&lowers[0]), &mountpoint, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_RDONLY, None::<&str>)
                .map_err(|e| Error::sys("mount the container's files", e))?;
        } else {
            mount(Some("overlay"), &mountpoint, Some("overlay"), MsFlags::MS_RDONLY, Some(data)).map_err(|e| Error::sys("mount the container's files", e))?;
        }
        tar_directory(&mountpoint, out, false).map(drop)
    })
    .join()
    .map_err(|_| Error::Sys("export thread panicked".into()))?
}
