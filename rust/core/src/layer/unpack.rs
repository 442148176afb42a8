//! Unpack one layer tar into an empty directory, refusing anything that would land outside it,
//! and keep the tar as it came (the layer blob) while hashing it: one pass over the input.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::dest::{empty, syncfs};
use super::lower_links::LowerLink;
use super::parallel::Keep;
use super::writers::Limits;
use super::{plan, readahead};
use crate::error::{Error, IoContext, Result};

pub struct Unpacked {
    /// sha256 of the uncompressed tar: the layer's diff id, and its blob digest as pyc stores it.
    pub diff_id: String,
    pub size: u64,
    /// sha256 of the input as it came (compressed or not): what a manifest names the layer by.
    pub digest: String,
    /// Hardlinks to files this layer does not hold: made by `link_from_lowers`, from the
    /// layers below, once they are unpacked.
    pub lower_links: Vec<LowerLink>,
}

/// Unpack `input` (tar, gzip or zstd, told by its first bytes) into `dest`, an empty
/// directory. With `blob`, the uncompressed tar is also written there. Files and `dest` are
/// synced before returning. Reading, decompressing and hashing run beside the parse
/// (readahead.rs), in one pass over the input; the files are written by workers, one per core
/// (plan.rs, writers.rs).
pub fn unpack(input: impl Read + Send, dest: &Path, blob: Option<&Path>) -> Result<Unpacked> {
    unpack_with(input, dest, blob, default_workers())
}

/// `unpack`, keeping the uncompressed tar or the input as it came (`Keep`).
pub fn unpack_keeping(input: impl Read + Send, dest: &Path, keep: Option<&Keep>) -> Result<Unpacked> {
    match keep {
        Some(Keep::Input(p)) => unpack_as(input, dest, Some(p), true, default_workers(), Mode::Layer).map(|(u, _)| u),
        Some(Keep::Tar(p)) => unpack(input, dest, Some(p)),
        None => unpack(input, dest, None),
    }
}

/// The workers of one unpack: one per core (unpack_all's layers at once share them).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WORKERS)
}

/// More threads creating files in one directory tree only wait for each other.
const MAX_WORKERS: usize = 4;

/// `unpack` with `workers` threads writing files; the result is the same for any number.
pub fn unpack_with(input: impl Read + Send, dest: &Path, blob: Option<&Path>, workers: usize) -> Result<Unpacked> {
    unpack_as(input, dest, blob, false, workers, Mode::Layer).map(|(u, _)| u)
}

/// How the entries of a tar are read: as an image layer's, or as plain files.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`) become overlayfs' marks; a hardlink to a file
    /// the tar does not hold is left for the layers below.
    Layer,
    /// Files as they are (`pyc cp`, volume import): a `.wh.` name is a name, a hardlink must
    /// name a file of the tar; `owner`, when given, owns every entry (docker cp without -a).
    /// `tame`: no set-id bit and no device node (a container's files copied out to the host).
    Plain { owner: Option<(u32, u32)>, tame: bool },
}

/// `unpack` of a plain tar (see `Mode::Plain`) into the empty directory `dest`, by the same
/// workers as a layer's; on failure `dest` is left empty. Returns whether the tar had an entry
/// for its root (`./`), whose owner, mode and times `dest` then took.
pub fn unpack_plain(input: impl Read + Send, dest: &Path, owner: Option<(u32, u32)>, tame: bool) -> Result<bool> {
    let (u, root) = unpack_as(input, dest, None, false, default_workers(), Mode::Plain { owner, tame })?;
    if let Some(l) = u.lower_links.first() {
        empty(dest);
        let (path, target) = (String::from_utf8_lossy(&l.path), String::from_utf8_lossy(&l.target));
        return Err(Error::BadArchive(format!("hardlink {path}: its target {target} is not in the archive")));
    }
    Ok(root)
}

/// `blob`: where the tar is kept, or the input as it came if `as_input`.
fn unpack_as(input: impl Read + Send, dest: &Path, blob: Option<&Path>, as_input: bool, workers: usize, mode: Mode) -> Result<(Unpacked, bool)> {
    let blob_file = blob.map(|p| File::create(p).ctx("create", p)).transpose()?;
    let abort = AtomicBool::new(false);
    let (entries, measured) = std::thread::scope(|s| {
        let kept = blob_file.as_ref().zip(blob).map(|b| if as_input { readahead::Kept::Input(b) } else { readahead::Kept::Tar(b) });
        let (mut chunks, side) = readahead::start(s, input, kept, &abort);
        let workers = workers.max(1);
        let entries = plan::unpack_entries_as(&mut chunks, dest, workers, Limits::for_workers(workers), mode);
        if entries.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        drop(chunks); // the input side reads on alone, to the end, for the digests
        (entries, side.join())
    });
    let (m, lower_links, root) = match (entries, measured) {
        (Ok((n, lower_links, root)), Ok(Some(m))) if n > 0 => (m, lower_links, root),
        // A read or decompression error says more than the tar parse that stopped on it.
        (_, Err(e)) | (Err(e), _) => {
            empty(dest);
            return Err(e);
        }
        (Ok(_), _) => {
            empty(dest);
            return Err(Error::BadArchive("the archive holds no files (is it a tar?)".into()));
        }
    };
    if let (Some(f), Some(p)) = (&blob_file, blob) {
        // The syncfs below covers the blob when it is on the same filesystem.
        if !same_fs(f, dest) {
            f.sync_all().ctx("sync", p)?;
        }
    }
    syncfs(dest)?;
    Ok((Unpacked { diff_id: m.diff_id, size: m.size, digest: m.digest, lower_links }, root))
}

fn same_fs(f: &File, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(dir)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testtar::{raw_tar, tar_of};
    use super::*;
    use std::ffi::CString;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

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
    fn garbage_is_one_clear_line() {
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let dest = tempfile::tempdir().unwrap();
        let err = unpack(&garbage[..], dest.path(), None).err().expect("garbage accepted");
        assert_eq!(err.to_string(), "not a tar archive");
        // A later header that does not parse: the tar crate's words, not the bytes it quotes.
        let mut data = tar_of(&[("ok", b"fine")]);
        data.truncate(1024);
        data.extend(std::iter::repeat_n(0xffu8, 512));
        let err = unpack(&data[..], dest.path(), None).err().expect("a bad second header accepted").to_string();
        assert!(err.starts_with("malformed or truncated tar") && !err.contains('\u{fffd}') && err.chars().all(|c| !c.is_control()), "{err}");
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        let dest = tempfile::tempdir().unwrap();
        assert!(matches!(unpack(&b"this is not a tar file at all"[..], dest.path(), None), Err(Error::BadArchive(_))));
        let data = tar_of(&[("big", &[7u8; 5000])]);
        assert!(matches!(unpack(&data[..1000], dest.path(), None), Err(Error::BadArchive(_))));
    }

    /// A tar built entry by entry with the tar crate's headers (ustar, so PAX and GNU long
    /// names come in only where asked).
    struct T(tar::Builder<Vec<u8>>);

    impl T {
        fn new() -> T {
            T(tar::Builder::new(Vec::new()))
        }
        fn add(mut self, kind: tar::EntryType, path: &str, link: &str, data: &[u8], f: impl FnOnce(&mut tar::Header)) -> T {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            f(&mut h);
            if link.is_empty() {
                self.0.append_data(&mut h, path, data).unwrap();
            } else {
                self.0.append_link(&mut h, path, link).unwrap();
            }
            self
        }
        fn file(self, path: &str, data: &[u8]) -> T {
            self.add(tar::EntryType::Regular, path, "", data, |_| {})
        }
        fn dir(self, path: &str) -> T {
            self.add(tar::EntryType::Directory, path, "", b"", |_| {})
        }
        fn link(self, kind: tar::EntryType, path: &str, target: &str) -> T {
            self.add(kind, path, target, b"", |_| {})
        }
        fn done(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn stat(p: &Path) -> std::fs::Metadata {
        std::fs::symlink_metadata(p).unwrap()
    }

    #[test]
    fn oci_entry_kinds_and_metadata() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let long = format!("d/{}", "n".repeat(200));
        let mut b = T::new()
            .dir("d")
            .add(tar::EntryType::Regular, "d/f", "", b"data", |h| {
                h.set_mode(0o4751);
                h.set_uid(1234);
                h.set_gid(5678);
                h.set_mtime(1_234_567);
            })
            .link(tar::EntryType::Symlink, "d/s", "/nowhere/at/all")
            .link(tar::EntryType::Link, "d/h", "d/f")
            .add(tar::EntryType::Char, "d/null", "", b"", |h| {
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
            })
            .add(tar::EntryType::Fifo, "d/fifo", "", b"", |_| {})
            .file(&long, b"long");
        b.0.append_pax_extensions([("SCHILY.xattr.trusted.pyc", &b"v"[..]), ("mtime", &b"7.25"[..])]).unwrap();
        let data = b.file("d/x", b"x").done();
        let t = tempfile::tempdir().unwrap();
        unpack(&data[..], t.path(), None).unwrap();
        let r = t.path();
        let f = stat(&r.join("d/f"));
        assert_eq!((f.mode() & 0o7777, f.uid(), f.gid(), f.mtime(), f.nlink()), (0o4751, 1234, 5678, 1_234_567, 2));
        assert_eq!(std::fs::read(r.join("d/h")).unwrap(), b"data");
        assert_eq!(std::fs::read_link(r.join("d/s")).unwrap(), Path::new("/nowhere/at/all"));
        let null = stat(&r.join("d/null"));
        assert!(null.file_type().is_char_device() && null.rdev() == libc::makedev(1, 3));
        assert!(stat(&r.join("d/fifo")).file_type().is_fifo());
        assert_eq!(std::fs::read(r.join(&long)).unwrap(), b"long");
        let x = stat(&r.join("d/x"));
        assert_eq!((x.mtime(), x.mtime_nsec()), (7, 250_000_000));
        assert_eq!(xattr(&r.join("d/x"), "trusted.pyc"), Some(b"v".to_vec()));
        // The directory's mtime is its entry's, though files were written into it afterwards.
        assert_eq!(stat(&r.join("d")).mtime(), 1_000_000);
    }

    fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
        let (p, n) = (CString::new(p.as_os_str().as_encoded_bytes()).unwrap(), CString::new(name).unwrap());
        let mut buf = [0u8; 64];
        let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        (len >= 0).then(|| buf[..len as usize].to_vec())
    }

    #[test]
    fn whiteouts_and_opaque_dirs_in_any_order() {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        // The opaque marker before its directory's entry, and after a child of it.
        let data =
            T::new().file("a/.wh..wh..opq", b"").dir("a").file("a/kept", b"k").file("b/.wh.gone", b"").file("c/child", b"").file("c/.wh..wh..opq", b"").done();
        let t = tempfile::tempdir().unwrap();
        unpack(&data[..], t.path(), None).unwrap();
        let r = t.path();
        for d in ["a", "c"] {
            assert_eq!(xattr(&r.join(d), "trusted.overlay.opaque"), Some(b"y".to_vec()), "{d}");
        }
        assert!(!r.join("a/.wh..wh..opq").exists() && r.join("a/kept").exists() && r.join("c/child").exists());
        let gone = stat(&r.join("b/gone"));
        assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
        assert!(!r.join("b/.wh.gone").exists());
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let data = T::new()
            .file("x", b"1")
            .file("x", b"2")
            .link(tar::EntryType::Symlink, "s", "x")
            .file("s", b"plain")
            .dir("d")
            .file("d/in", b"")
            .file("d", b"now a file")
            .done();
        let t = tempfile::tempdir().unwrap();
        unpack(&data[..], t.path(), None).unwrap();
        assert_eq!(std::fs::read(t.path().join("x")).unwrap(), b"2");
        assert!(stat(&t.path().join("s")).is_file());
        assert_eq!(std::fs::read(t.path().join("d")).unwrap(), b"now a file");
    }

    #[test]
    fn escapes_are_refused_and_leave_nothing() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("x");
        let up = "../".repeat(12);
        let victim = tempfile::NamedTempFile::new().unwrap();
        let victim_rel = format!("{up}{}", victim.path().display());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "symlink then file through it",
                T::new().file("ok", b"").link(tar::EntryType::Symlink, "link", target.to_str().unwrap()).file("link/evil", b"x").done(),
            ),
            (
                "relative symlink out",
                T::new().link(tar::EntryType::Symlink, "link", &format!("{up}{}", outside.path().display())).file("link/evil", b"x").done(),
            ),
            ("hardlink out", T::new().file("ok", b"").link(tar::EntryType::Link, "h", &victim_rel).done()),
            ("hardlink absolute", T::new().link(tar::EntryType::Link, "h", victim.path().to_str().unwrap()).done()),
            ("dotdot", raw_tar("a/../../x")),
            ("absolute", raw_tar(&format!("{}/abs", outside.path().display()))),
        ];
        std::fs::create_dir(&target).unwrap();
        for (name, data) in cases {
            let dest = tempfile::tempdir().unwrap();
            let err = unpack(&data[..], dest.path(), None).err().unwrap_or_else(|| panic!("{name}: accepted"));
            assert!(err.to_string().contains("unsafe path"), "{name}: {err}");
            assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0, "{name}: a partial layer remains");
        }
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
        assert_eq!(stat(victim.path()).nlink(), 1);
    }

    #[test]
    fn plain_tars_keep_whiteout_names_and_take_an_owner() {
        let data = T::new()
            .add(tar::EntryType::Regular, ".wh.x", "", b"a file", |h| h.set_uid(1234))
            .file("d/.wh..wh..opq", b"")
            .link(tar::EntryType::Link, "h", ".wh.x")
            .done();
        let t = tempfile::tempdir().unwrap();
        unpack_plain(&data[..], t.path(), Some((7, 8)), false).unwrap();
        let f = stat(&t.path().join(".wh.x"));
        assert_eq!((f.uid(), f.gid(), f.nlink()), (7, 8, 2));
        assert!(t.path().join("d/.wh..wh..opq").is_file());
        // A hardlink to what the tar does not hold is refused, and nothing is left.
        let data = T::new().file("a", b"").link(tar::EntryType::Link, "h", "elsewhere").done();
        let t = tempfile::tempdir().unwrap();
        let err = unpack_plain(&data[..], t.path(), None, false).expect_err("accepted").to_string();
        assert_eq!(err, "hardlink h: its target elsewhere is not in the archive");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
        // Tame: what a container hands the host brings no set-id program and no device.
        let data = T::new()
            .add(tar::EntryType::Regular, "suid", "", b"#!/bin/sh", |h| h.set_mode(0o6755))
            .add(tar::EntryType::Block, "disk", "", b"", |h| {
                h.set_device_major(8).unwrap();
                h.set_device_minor(0).unwrap();
            })
            .add(tar::EntryType::Fifo, "fifo", "", b"", |_| {})
            .done();
        let t = tempfile::tempdir().unwrap();
        unpack_plain(&data[..], t.path(), None, true).unwrap();
        assert_eq!(stat(&t.path().join("suid")).mode() & 0o7777, 0o755);
        assert!(!t.path().join("disk").exists() && t.path().join("fifo").exists());
    }

    #[test]
    fn hardlink_to_a_file_not_in_the_layer_is_left_for_the_layers_below() {
        let data = T::new().file("a", b"").link(tar::EntryType::Link, "h", "./not/../there").done();
        let dest = tempfile::tempdir().unwrap();
        let u = unpack(&data[..], dest.path(), None).unwrap();
        assert_eq!(u.lower_links, vec![LowerLink { path: b"h".to_vec(), target: b"there".to_vec() }]);
        assert!(!dest.path().join("h").exists());
    }
}
