//! Copies in and out of containers and volumes (`pyc cp`, a volume's copy-up, volume export
//! and import): trees read through descriptors into tars, tars unpacked by the layer unpacker
//! into a staging directory and moved into place.

mod cp;
mod merge;
mod tarout;
mod view;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

pub use cp::{copy, CopyConfig};
pub use merge::Policy;
pub use view::{View, ViewMount};

use crate::error::{Error, Result};

fn open_dir(dir: &Path, flags: libc::c_int) -> Result<std::os::fd::OwnedFd> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| Error::InvalidConfig(format!("{} contains a NUL byte", dir.display())))?;
    tarout::openat(libc::AT_FDCWD, &c, flags | libc::O_DIRECTORY).map_err(|e| Error::sys(format!("open {}", dir.display()), e))
}

/// Write what the directory `dir` holds (its own metadata as `./`) as a tar to `out`.
pub fn tar_tree(dir: &Path, out: File) -> Result<()> {
    let top = tarout::Top::Contents { dir: open_dir(dir, libc::O_PATH)? };
    let mut w = tarout::write_tar(top, BufWriter::with_capacity(1 << 20, out))?;
    w.flush().map_err(|e| tarout::write_error(&e))
}

/// Unpack a plain tar (plain, gzip or zstd) into the directory `dir`, staged in its parent and
/// moved in (see cp::extract_into): a tar refused leaves `dir` untouched, its times too. A `./`
/// entry gives `dir` its owner, mode and times.
pub fn untar_into(dir: &Path, input: impl Read + Send, policy: Policy) -> Result<()> {
    let fd = open_dir(dir, libc::O_RDONLY)?;
    let parent = open_dir(dir.parent().unwrap_or(Path::new("/")), libc::O_RDONLY)?;
    let how = cp::Extract { owner: None, tame: false, policy, root_meta: true };
    cp::extract_into(fd.as_raw_fd(), parent.as_raw_fd(), &dir.display().to_string(), input, how)
}

/// A volume's copy-up: what the image of `view` (View::Image) holds at `path` (a directory,
/// looked up beneath the image's root), unpacked into the empty directory `stage` with its
/// owners, modes and xattrs, the directory's own as `stage`'s. False (nothing copied) when
/// the image has no directory there.
pub fn copy_up(view: &View, path: &str, stage: &Path) -> Result<bool> {
    view::with_root(view, |root| {
        let c = std::ffi::CString::new(path).map_err(|_| Error::InvalidConfig("path contains a NUL byte".into()))?;
        let node = match crate::sys::open_in_root(root.as_raw_fd(), &c, libc::O_PATH) {
            Ok(n) => n,
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Ok(false),
            Err(e) => return Err(Error::sys(format!("open {path} in the image"), e)),
        };
        if tarout::fstat(node.as_raw_fd()).map_err(|e| Error::sys(format!("stat {path} in the image"), e))?.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Ok(false);
        }
        cp::piped(tarout::Top::Contents { dir: node }, |input| crate::layer::unpack_plain(input, stage, None, false)).map(|_| true)
    })
}

/// Move what `stage` holds into `dest` (both directories), `dest` taking `stage`'s owner,
/// mode and times: the last step of a copy-up or import, safe to repeat after a crash.
pub fn merge_into(stage: &Path, dest: &Path, policy: Policy) -> Result<()> {
    let (s, d) = (open_dir(stage, libc::O_RDONLY)?, open_dir(dest, libc::O_RDONLY)?);
    merge::merge(s.as_raw_fd(), d.as_raw_fd(), policy, true)
}
