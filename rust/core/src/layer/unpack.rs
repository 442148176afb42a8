//! Unpack one layer tar into an empty directory, refusing anything that would land outside it,
//! and keep the tar as it came (the layer blob) while hashing it: one pass over the input.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use super::digest::HashingReader;
use crate::error::{Error, IoContext, Result};

pub struct Unpacked {
    /// sha256 of the uncompressed tar: the layer's diff id, and its blob digest as pyc stores it.
    pub diff_id: String,
    pub size: u64,
}

/// Writes everything read through it to a second place (the blob file).
struct Tee<R, W> {
    inner: R,
    copy: Option<W>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(w) = &mut self.copy {
            w.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

/// Wraps `input` in the decompressor its first bytes call for: gzip, zstd or none.
fn decompressed<'a>(input: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let head = io::BufRead::fill_buf(&mut input).map_err(|e| Error::BadArchive(format!("read archive: {e}")))?;
    Ok(match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(input)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(zstd::Decoder::with_buffer(input).map_err(|e| Error::BadArchive(format!("zstd: {e}")))?),
        _ => Box::new(input),
    })
}

/// Unpack `input` (tar, gzip or zstd) into `dest`, an empty directory. With `blob`, the
/// uncompressed tar is also written there. Files and `dest` are synced before returning.
pub fn unpack(input: impl Read, dest: &Path, blob: Option<&Path>) -> Result<Unpacked> {
    let blob_file = blob.map(|p| File::create(p).ctx("create", p)).transpose()?;
    let tee = Tee { inner: decompressed(input)?, copy: blob_file.as_ref().map(|f| io::BufWriter::with_capacity(1 << 20, f)) };
    let mut hashing = HashingReader::new(tee);
    let entries = unpack_entries(&mut hashing, dest)?;
    // Drain what follows the end-of-archive blocks so the digest covers the whole stream.
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| Error::BadArchive(format!("read archive: {e}")))?;
    if entries == 0 {
        return Err(Error::BadArchive("the archive holds no files (is it a tar?)".into()));
    }
    let (tee, diff_id, size) = hashing.finish();
    if let (Some(copy), Some(p)) = (tee.copy, blob) {
        copy.into_inner().map_err(|e| e.into_error()).ctx("write", p)?.sync_all().ctx("sync", p)?;
    }
    syncfs(dest)?;
    Ok(Unpacked { diff_id, size })
}

fn unpack_entries(input: &mut impl Read, dest: &Path) -> Result<usize> {
    let bad = |e: io::Error| Error::BadArchive(format!("malformed or truncated tar: {e}"));
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    let mut count = 0;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let link = if entry.header().entry_type().is_hard_link() { entry.link_name().map_err(bad)?.map(|l| l.into_owned()) } else { None };
        if path.components().chain(link.iter().flat_map(|l| l.components())).any(|c| c == Component::ParentDir) {
            return Err(Error::BadArchive(format!("unsafe path in archive: {} leads outside the layer", path.display())));
        }
        count += 1;
        if let Some(name) = path.file_name().map(|n| n.as_bytes()) {
            if name == b".wh..wh..opq" {
                let dir = dest.join(path.parent().unwrap_or(Path::new("")));
                std::fs::create_dir_all(&dir).ctx("create", &dir)?;
                set_opaque(&dir)?;
                continue;
            }
            if let Some(hidden) = name.strip_prefix(b".wh.") {
                let parent = dest.join(path.parent().unwrap_or(Path::new("")));
                std::fs::create_dir_all(&parent).ctx("create", &parent)?;
                whiteout(&parent.join(std::ffi::OsStr::from_bytes(hidden)))?;
                continue;
            }
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            special_file(&entry, &path, dest)?;
            continue;
        }
        let unpacked = entry.unpack_in(dest).map_err(|e| unpack_error(&path, &e))?;
        if !unpacked {
            return Err(Error::BadArchive(format!("unsafe path in archive: {}", path.display())));
        }
    }
    Ok(count)
}

/// The tar crate wraps the OS error: show the innermost cause, which is what a user can act on.
/// The tar crate refuses an entry that would land outside the layer (through `..`, a symlink or
/// a hardlink) with a generic error: say what it means.
fn unpack_error(path: &Path, e: &io::Error) -> Error {
    let mut innermost = e.to_string();
    let mut escapes = innermost.contains("outside of destination");
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(inner) = cur {
        innermost = inner.to_string();
        escapes |= innermost.contains("outside of destination");
        cur = inner.source();
    }
    if escapes {
        Error::BadArchive(format!("unsafe path in archive: {} leads outside the layer", path.display()))
    } else {
        Error::BadArchive(format!("unpack {}: {innermost}", path.display()))
    }
}

/// Device nodes and fifos, which the tar crate would write as plain files.
fn special_file<R: Read>(entry: &tar::Entry<'_, R>, path: &Path, dest: &Path) -> Result<()> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    let h = entry.header();
    let bad = |what: &str| Error::BadArchive(format!("{what} of {} is malformed", path.display()));
    let kind = match h.entry_type() {
        t if t.is_character_special() => SFlag::S_IFCHR,
        t if t.is_block_special() => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    let dev = match kind {
        SFlag::S_IFIFO => 0,
        _ => libc::makedev(h.device_major().map_err(|_| bad("device number"))?.unwrap_or(0), h.device_minor().map_err(|_| bad("device number"))?.unwrap_or(0)),
    };
    let mode = h.mode().map_err(|_| bad("mode"))? & 0o7777;
    let target = dest.join(path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).ctx("create", parent)?;
        // The same check unpack_in makes: no symlinked parent may lead outside the layer.
        let real = parent.canonicalize().ctx("resolve", parent)?;
        if !real.starts_with(dest.canonicalize().ctx("resolve", dest)?) {
            return Err(Error::BadArchive(format!("unsafe path in archive: {}", path.display())));
        }
    }
    let _ = std::fs::remove_file(&target);
    mknod(&target, kind, Mode::from_bits_truncate(mode), dev).map_err(|e| Error::sys(format!("create {}", target.display()), e))?;
    let (uid, gid) = (h.uid().map_err(|_| bad("owner"))?, h.gid().map_err(|_| bad("group"))?);
    nix::unistd::chown(&target, Some(nix::unistd::Uid::from_raw(uid as u32)), Some(nix::unistd::Gid::from_raw(gid as u32))).map_err(|e| Error::sys(format!("chown {}", target.display()), e))?;
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(mode)).ctx("chmod", &target)?;
    Ok(())
}

/// overlayfs' mark of a deleted file: a 0/0 character device.
fn whiteout(path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
    nix::sys::stat::mknod(path, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0).map_err(|e| Error::sys(format!("whiteout {}", path.display()), e))
}

/// overlayfs' mark of a directory that hides what lower layers hold.
fn set_opaque(dir: &Path) -> Result<()> {
    let p = CString::new(dir.as_os_str().as_bytes()).map_err(|_| Error::BadArchive("NUL in path".into()))?;
    let ret = unsafe { libc::lsetxattr(p.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    nix::errno::Errno::result(ret).map(drop).map_err(|e| Error::sys(format!("mark {} opaque", dir.display()), e))
}

/// One sync for the whole layer, instead of one per file.
pub fn syncfs(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open", dir)?;
    nix::unistd::syncfs(&f).map_err(|e| Error::sys(format!("syncfs {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_and_hashes_the_plain_tar() {
        let data = tar_of(&[("a/b.txt", b"hello")]);
        let dest = tempfile::tempdir().unwrap();
        let blob = dest.path().join("blob");
        std::fs::create_dir(dest.path().join("root")).unwrap();
        let got = unpack(&data[..], &dest.path().join("root"), Some(&blob)).unwrap();
        assert_eq!(std::fs::read(dest.path().join("root/a/b.txt")).unwrap(), b"hello");
        assert_eq!(std::fs::read(&blob).unwrap(), data);
        assert_eq!(got.size, data.len() as u64);
    }

    #[test]
    fn gzip_is_detected() {
        let data = tar_of(&[("x", b"1")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let dest = tempfile::tempdir().unwrap();
        let got = unpack(&gz.finish().unwrap()[..], dest.path(), None).unwrap();
        assert_eq!(got.size, data.len() as u64);
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        let dest = tempfile::tempdir().unwrap();
        assert!(matches!(unpack(&b"this is not a tar file at all"[..], dest.path(), None), Err(Error::BadArchive(_))));
        let data = tar_of(&[("big", &[7u8; 5000])]);
        assert!(matches!(unpack(&data[..1000], dest.path(), None), Err(Error::BadArchive(_))));
    }
}
