//! Tar streams out of directories: a directory as it is, or a container's merged view.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::digest::HashingWriter;
use super::overlay;
use crate::error::{Error, IoContext, Result};

/// Write `dir` as a tar to `out`; `deterministic` zeroes owners and times (for built-in images
/// whose digest should not depend on when they were made). Returns the digest and size.
pub fn tar_directory(dir: &Path, out: impl Write, deterministic: bool) -> Result<(String, u64)> {
    let mut b = tar::Builder::new(HashingWriter::new(BufWriter::with_capacity(1 << 20, out)));
    b.follow_symlinks(false);
    b.mode(if deterministic { tar::HeaderMode::Deterministic } else { tar::HeaderMode::Complete });
    append_tree(&mut b, dir, false)?;
    let hw = b.into_inner().ctx("write tar of", dir)?;
    let (mut w, digest, size) = hw.finish();
    w.flush().ctx("write tar of", dir)?;
    Ok((digest, size))
}

/// Entries sorted by name, so the same tree always gives the same tar. A file with several
/// names is stored once and linked after; device nodes and fifos are kept as such; sockets,
/// which tar cannot hold, are left out. With `overlay_upper`, `root` is an overlayfs upper dir
/// and its marks become OCI ones: a whiteout (0/0 char device) an empty `.wh.NAME`, an opaque
/// directory the directory plus an empty `.wh..wh..opq` in it.
pub(super) fn append_tree<W: Write>(b: &mut tar::Builder<W>, root: &Path, overlay_upper: bool) -> Result<()> {
    use std::collections::HashMap;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let mut first_name: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&full).ctx("read", &full)?.map(|e| e.map(|e| e.file_name())).collect::<Result<_, _>>().ctx("read", &full)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut dirs = Vec::new();
        if overlay_upper && !rel.as_os_str().is_empty() && overlay::is_opaque_path(&full)? {
            let md = std::fs::symlink_metadata(&full).ctx("stat", &full)?;
            append_mark(b, &md, &rel.join(overlay::opaque_tar_name()), &full)?;
        }
        for name in names {
            let r = rel.join(&name);
            let p = root.join(&r);
            let md = std::fs::symlink_metadata(&p).ctx("stat", &p)?;
            let ft = md.file_type();
            // Before the hardlink check: overlayfs links its whiteouts to one shared inode.
            if overlay_upper && overlay::is_whiteout(md.mode(), md.rdev()) {
                append_mark(b, &md, &rel.join(overlay::whiteout_tar_name(&name)), &p)?;
                continue;
            }
            if ft.is_dir() {
                b.append_dir(&r, &p).ctx("add", &p)?;
                dirs.push(r);
            } else if ft.is_socket() {
                continue;
            } else if md.nlink() > 1 && !ft.is_symlink() {
                match first_name.get(&(md.dev(), md.ino())) {
                    Some(target) => {
                        let mut h = header_of(&md, tar::EntryType::Link);
                        b.append_link(&mut h, &r, target).ctx("add", &p)?;
                    }
                    None => {
                        first_name.insert((md.dev(), md.ino()), r.clone());
                        append_entry(b, &p, &r, &md)?;
                    }
                }
            } else {
                append_entry(b, &p, &r, &md)?;
            }
        }
        stack.extend(dirs.into_iter().rev());
    }
    Ok(())
}

/// An overlay mark of the upper dir's `src` as a layer tar holds it: an empty file `name`,
/// with the mark's owner and time.
fn append_mark<W: Write>(b: &mut tar::Builder<W>, md: &std::fs::Metadata, name: &Path, src: &Path) -> Result<()> {
    let mut h = header_of(md, tar::EntryType::Regular);
    h.set_mode(0o600);
    b.append_data(&mut h, name, std::io::empty()).ctx("add", src)
}

fn header_of(md: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
    use std::os::unix::fs::MetadataExt;
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid() as u64);
    h.set_gid(md.gid() as u64);
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn append_entry<W: Write>(b: &mut tar::Builder<W>, p: &Path, r: &Path, md: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let ft = md.file_type();
    let kind = if ft.is_char_device() {
        tar::EntryType::Char
    } else if ft.is_block_device() {
        tar::EntryType::Block
    } else if ft.is_fifo() {
        tar::EntryType::Fifo
    } else {
        return b.append_path_with_name(p, r).ctx("add", p);
    };
    let mut h = header_of(md, kind);
    let rdev = md.rdev();
    h.set_device_major(libc::major(rdev)).ctx("add", p)?;
    h.set_device_minor(libc::minor(rdev)).ctx("add", p)?;
    b.append_data(&mut h, r, std::io::empty()).ctx("add", p)
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
