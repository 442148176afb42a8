//! Unpack one layer tar into an empty directory, refusing anything that would land outside it,
//! and keep the tar as it came (the layer blob) while hashing it: one pass over the input.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use tar::EntryType;

use super::beneath::{clean, cstr, split, Root};
use super::dest::{empty, syncfs};
use super::entry::{self, Fail, Meta};
use super::lower_links::LowerLink;
use super::overlay::{self, TarName};
use super::readahead;
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
/// synced before returning. Reading, decompressing and hashing run beside the unpacking
/// (readahead.rs), in one pass over the input.
pub fn unpack(input: impl Read + Send, dest: &Path, blob: Option<&Path>) -> Result<Unpacked> {
    let blob_file = blob.map(|p| File::create(p).ctx("create", p)).transpose()?;
    let abort = AtomicBool::new(false);
    let (entries, measured) = std::thread::scope(|s| {
        let (mut chunks, side) = readahead::start(s, input, blob_file.as_ref().zip(blob), &abort);
        let entries = unpack_entries(&mut chunks, dest);
        if entries.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        drop(chunks); // the input side reads on alone, to the end, for the digests
        (entries, side.join())
    });
    let (m, lower_links) = match (entries, measured) {
        (Ok((n, lower_links)), Ok(Some(m))) if n > 0 => (m, lower_links),
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
    Ok(Unpacked { diff_id: m.diff_id, size: m.size, digest: m.digest, lower_links })
}

fn same_fs(f: &File, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(dir)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

/// Walk the tar and write each entry beneath `dest`'s fd (see beneath.rs); directories get
/// their metadata at the end, once nothing more is written into them. Returns the number of
/// entries and the hardlinks left for the layers below.
fn unpack_entries(input: &mut impl Read, dest: &Path) -> Result<(usize, Vec<LowerLink>)> {
    let bad = |e: io::Error| Error::BadArchive(format!("malformed or truncated tar: {e}"));
    let mut root = Root::open(dest)?;
    let mut dirs: Vec<(Vec<u8>, Meta)> = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut archive = tar::Archive::new(input);
    let mut count = 0;
    let mut lower_links: Vec<LowerLink> = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink) {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let escapes = || Error::BadArchive(format!("unsafe path in archive: {shown} leads outside the layer"));
        let path = clean(&raw).ok_or_else(escapes)?;
        count += 1;
        let meta = Meta::of(&mut entry).map_err(bad)?;
        let fail = |f: Fail| match f {
            Fail::Sys(_, Errno::EXDEV | Errno::ELOOP) => escapes(),
            Fail::Sys(op, e) => Error::BadArchive(format!("unpack {shown}: {op}: {}", e.desc().to_lowercase())),
            Fail::Input(e) => bad(e),
        };
        let (parent, name) = split(&path);
        if !lower_links.is_empty() {
            replaced(&mut lower_links, &path, name, kind.is_dir());
        }
        if name.is_empty() {
            if kind.is_dir() {
                dirs.push((path, meta));
            }
            continue;
        }
        let at = root.dir(parent).map_err(|e| fail(Fail::Sys("open parent", e)))?;
        let cname = cstr(name)?;
        let hidden = match overlay::tar_name(name) {
            TarName::Opaque => {
                overlay::mark_opaque(at).map_err(|e| fail(Fail::Sys("mark opaque", e)))?;
                continue;
            }
            TarName::Whiteout(hidden) => Some(hidden),
            TarName::NoSibling => return Err(escapes()),
            TarName::Plain => None,
        };
        let removed_dir = if let Some(hidden) = hidden {
            entry::whiteout(at, &cstr(hidden)?)
        } else if kind.is_dir() {
            let made = entry::dir(at, &cname);
            dirs.push((path.clone(), meta));
            made
        } else if kind.is_file() || kind == EntryType::Continuous || kind.is_gnu_sparse() {
            let size = entry.size();
            entry::file(at, &cname, &meta, &mut entry, size, &mut buf)
        } else if kind.is_symlink() {
            let target = entry.link_name_bytes().ok_or_else(|| Error::BadArchive(format!("symlink {shown} has no target")))?;
            entry::symlink(at, &cname, &cstr(&target)?, &meta)
        } else if kind.is_hard_link() {
            let target = entry.link_name_bytes().ok_or_else(|| Error::BadArchive(format!("hardlink {shown} has no target")))?;
            let target = clean(&target).filter(|t| !t.is_empty()).ok_or_else(escapes)?;
            let (tparent, tname) = split(&target);
            // The target's directory is opened apart from the cached one: both fds are needed.
            let linked = match root.open_beneath(tparent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
                Err(Errno::ENOENT | Errno::ENOTDIR) => Err(Fail::Sys("hardlink", Errno::ENOENT)),
                Err(e) => return Err(fail(Fail::Sys("open hardlink target", e))),
                // A whiteout this layer made is no file to link to: the file is deleted.
                Ok(tdir) if overlay::is_whiteout_at(tdir.as_raw_fd(), &cstr(tname)?) => Err(Fail::Sys("hardlink", Errno::ENOENT)),
                Ok(tdir) => {
                    let at = root.dir(parent).map_err(|e| fail(Fail::Sys("open parent", e)))?;
                    entry::hardlink(at, &cname, tdir.as_raw_fd(), &cstr(tname)?)
                }
            };
            match linked {
                // Not in this layer: a file of a layer below, or nowhere (link_from_lowers tells).
                Err(Fail::Sys(_, Errno::ENOENT)) => {
                    // A link to such a link is one to the same lower file.
                    let target = match lower_links.iter().find(|l| l.path == target) {
                        Some(l) => l.target.clone(),
                        None => target,
                    };
                    // What an earlier entry put there is replaced, as by any entry.
                    let at = root.dir(parent).map_err(|e| fail(Fail::Sys("open parent", e)))?;
                    let removed_dir = entry::remove(at, &cname);
                    lower_links.push(LowerLink { path, target });
                    removed_dir
                }
                done => done,
            }
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let h = entry.header();
            let number = |n: io::Result<Option<u32>>| n.map(|n| n.unwrap_or(0)).map_err(bad);
            let (mode, dev) = match kind.is_fifo() {
                true => (libc::S_IFIFO, 0),
                false => (
                    if kind.is_character_special() { libc::S_IFCHR } else { libc::S_IFBLK },
                    libc::makedev(number(h.device_major())?, number(h.device_minor())?),
                ),
            };
            entry::node(at, &cname, mode, dev, &meta)
        } else {
            return Err(Error::BadArchive(format!("unpack {shown}: unsupported entry type {kind:?}")));
        };
        if removed_dir.map_err(fail)? {
            root.forget();
        }
    }
    // Forward order: a directory listed twice keeps its last metadata; setting a child's times
    // does not change its parent's.
    for (path, meta) in &dirs {
        let shown = || String::from_utf8_lossy(path).into_owned();
        match root.open_beneath(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW) {
            Ok(fd) => entry::finish_dir(&fd, meta).map_err(|f| match f {
                Fail::Sys(op, e) => Error::BadArchive(format!("unpack {}: {op}: {}", shown(), e.desc().to_lowercase())),
                Fail::Input(e) => bad(e),
            })?,
            // A later entry replaced the directory by something else.
            Err(Errno::ENOTDIR | Errno::ELOOP | Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys(format!("open {}", shown()), e)),
        }
    }
    Ok((count, lower_links))
}

/// Drop the hardlinks for the layers below that the entry at `path` replaces: one at that
/// path, and, unless the entry is a directory (kept with what it holds), any beneath it. A
/// whiteout `.wh.NAME` replaces NAME.
fn replaced(links: &mut Vec<LowerLink>, path: &[u8], name: &[u8], is_dir: bool) {
    let (gone, whole) = match overlay::tar_name(name) {
        TarName::Opaque | TarName::NoSibling => return,
        TarName::Whiteout(hidden) => {
            let mut p = split(path).0.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(hidden);
            (p, true)
        }
        TarName::Plain => (path.to_vec(), !is_dir),
    };
    if gone.is_empty() {
        return; // the root's own entry
    }
    links.retain(|l| {
        let under = whole && l.path.len() > gone.len() && l.path.starts_with(&gone) && l.path[gone.len()] == b'/';
        l.path != gone && !under
    });
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
    fn hardlink_to_a_file_not_in_the_layer_is_left_for_the_layers_below() {
        let data = T::new().file("a", b"").link(tar::EntryType::Link, "h", "./not/../there").done();
        let dest = tempfile::tempdir().unwrap();
        let u = unpack(&data[..], dest.path(), None).unwrap();
        assert_eq!(u.lower_links, vec![LowerLink { path: b"h".to_vec(), target: b"there".to_vec() }]);
        assert!(!dest.path().join("h").exists());
    }
}
