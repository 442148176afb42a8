//! Hardlinks to files of earlier layers. A layer tar may link to a file it does not hold, one
//! that a layer below it holds; overlayfs keeps each layer in a directory of its own and a
//! hardlink cannot cross them, so such a link becomes a copy of the lower file (content,
//! owner, mode, times, xattrs), as with docker's and containers-storage's overlay drivers.
//!
//! `unpack` records these links (`LowerLink`) instead of failing; once the layers below are
//! unpacked too (they may be siblings in the same parallel batch), `link_from_lowers` looks
//! each target up in them, top-most first, as overlayfs would: a whiteout, an opaque directory
//! or a non-directory on the way ends the search. Lookups never follow a symlink and never
//! leave a layer's directory. Lower layers are only read; the copy goes into the new layer.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, SFlag};

use super::beneath::{cstr, split, Root};
use super::dest::{empty, syncfs};
use super::entry::{self, Meta};
use super::overlay::{self, Look};
use crate::error::{Error, Result};

/// A hardlink at `path` to `target` (both clean paths of the layer tar) whose target was not
/// in its layer when the link came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowerLink {
    pub path: Vec<u8>,
    pub target: Vec<u8>,
}

/// Make each of `links` in the unpacked layer `dest` from `lowers`, the directories of the
/// layers below it, top-most first. On failure `dest` is emptied: no partial layer remains.
pub fn link_from_lowers(dest: &Path, links: &[LowerLink], lowers: &[PathBuf]) -> Result<()> {
    let r = make_all(dest, links, lowers);
    if r.is_err() {
        empty(dest);
    }
    r
}

fn make_all(dest: &Path, links: &[LowerLink], lowers: &[PathBuf]) -> Result<()> {
    let root = Root::open(dest)?;
    let lowers = lowers.iter().map(|p| Root::open(p)).collect::<Result<Vec<_>>>()?;
    // Links to the same lower file share one copy, as they would have shared the file.
    let mut made: HashMap<&[u8], &[u8]> = HashMap::new();
    for link in links {
        let shown = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        let (path, target) = (shown(&link.path), shown(&link.target));
        let (parent, name) = split(&link.path);
        // Found as unpack found it: a symlink of this layer on the way followed, beneath.
        let at =
            root.open_beneath(parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY).map_err(|e| Error::sys(format!("open the directory of hardlink {path}"), e))?;
        let name = cstr(name)?;
        if let Some(first) = made.get(link.target.as_slice()) {
            let (fparent, fname) = split(first);
            let fdir = root
                .open_beneath(fparent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .map_err(|e| Error::sys(format!("open the directory of hardlink {path}"), e))?;
            entry::hardlink(at.as_raw_fd(), &name, fdir.as_raw_fd(), &cstr(fname)?).map_err(|f| fail(&path, f))?;
            continue;
        }
        // This layer first: what it holds by now may hide the target from the layers below.
        let lookup = |e| match e {
            Errno::EXDEV | Errno::ELOOP => unsafe_target(&path, &target),
            e => Error::sys(format!("hardlink {path}: look up {target}"), e),
        };
        let found = match overlay::find(std::iter::once(&root).chain(&lowers), &link.target).map_err(lookup)? {
            Some((0, Look::Found { .. })) => {
                return Err(Error::BadArchive(format!("hardlink {path}: its target {target} comes after it in the layer")));
            }
            Some((_, Look::Found { dir, name, st })) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG => {
                let fd = overlay::open_at(&dir, &name, OFlag::O_RDONLY | OFlag::O_NONBLOCK).map_err(lookup)?;
                Some((File::from(fd), st))
            }
            Some((_, Look::Found { .. })) => {
                return Err(Error::BadArchive(format!("hardlink {path}: target {target} is not a regular file in the earlier layer that holds it")));
            }
            Some((_, Look::Symlink(on_the_way))) => {
                return Err(Error::BadArchive(format!("unsafe path in archive: hardlink {path}: target {target} goes through symlink {}", shown(&on_the_way))));
            }
            Some((_, Look::Absent { .. } | Look::Hidden)) | None => None,
        };
        let (src, st) = found.ok_or_else(|| Error::BadArchive(format!("hardlink {path}: target {target} is in no earlier layer")))?;
        copy(src, &st, &at, &name).map_err(|f| fail(&path, f))?;
        made.insert(&link.target, &link.path);
    }
    if !links.is_empty() {
        syncfs(dest)?;
    }
    Ok(())
}

fn unsafe_target(path: &str, target: &str) -> Error {
    Error::BadArchive(format!("unsafe path in archive: hardlink {path}: target {target} leads outside an earlier layer"))
}

fn fail(path: &str, f: entry::Fail) -> Error {
    match f {
        entry::Fail::Sys(op, e) => Error::BadArchive(format!("hardlink {path}: {op}: {}", e.desc().to_lowercase())),
        entry::Fail::Input(e) => Error::BadArchive(format!("hardlink {path}: read: {e}")),
    }
}

/// A new file `name` in `at` with the content and metadata of `src`, copied in the kernel.
fn copy(mut src: File, st: &FileStat, at: &OwnedFd, name: &CString) -> std::result::Result<(), entry::Fail> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let fd = unsafe { libc::openat(at.as_raw_fd(), name.as_ptr(), flags, 0o600) };
    let mut out = File::from(super::beneath::owned(fd).map_err(|e| entry::Fail::Sys("create", e))?);
    // std's copy between two files is copy_file_range where the kernel can, read/write if not.
    std::io::copy(&mut src, &mut out).map_err(|e| entry::Fail::Sys("copy", Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    let meta = Meta {
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: libc::timespec { tv_sec: st.st_mtime, tv_nsec: st.st_mtime_nsec },
        xattrs: xattrs(&src).map_err(|e| entry::Fail::Sys("read xattrs", e))?,
    };
    entry::finish_fd(out.as_raw_fd(), &meta, &entry::Defaults::NONE, 0o600)
}

/// Every xattr of an open file, as (name, value).
fn xattrs(f: &File) -> Result<Vec<(CString, Vec<u8>)>, Errno> {
    let fd = f.as_raw_fd();
    let size = Errno::result(unsafe { libc::flistxattr(fd, std::ptr::null_mut(), 0) })?;
    let mut names = vec![0u8; size as usize];
    let got = Errno::result(unsafe { libc::flistxattr(fd, names.as_mut_ptr().cast(), names.len()) })?;
    names.truncate(got as usize);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = CString::new(name).map_err(|_| Errno::EINVAL)?;
        let len = Errno::result(unsafe { libc::fgetxattr(fd, name.as_ptr(), std::ptr::null_mut(), 0) })?;
        let mut value = vec![0u8; len as usize];
        let got = Errno::result(unsafe { libc::fgetxattr(fd, name.as_ptr(), value.as_mut_ptr().cast(), value.len()) })?;
        value.truncate(got as usize);
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::parallel::{unpack_all, Job};
    use super::super::unpack::unpack;
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use tar::EntryType;

    /// A layer tar of (kind, path, link target or content) entries.
    fn tar_of(entries: &[(EntryType, &str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for &(kind, path, arg) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(if kind.is_file() { arg.len() as u64 } else { 0 });
            if kind.is_hard_link() || kind.is_symlink() {
                b.append_link(&mut h, path, arg).unwrap();
            } else {
                b.append_data(&mut h, path, if kind.is_file() { arg.as_bytes() } else { &b""[..] }).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    fn file<'a>(path: &'a str, data: &'a str) -> (EntryType, &'a str, &'a str) {
        (EntryType::Regular, path, data)
    }

    fn link<'a>(path: &'a str, target: &'a str) -> (EntryType, &'a str, &'a str) {
        (EntryType::Link, path, target)
    }

    /// Unpack `layers` bottom-up into dirs under `t`, the hardlinks of each from those below;
    /// the dirs, and each layer's result.
    fn stack(t: &Path, layers: &[Vec<u8>]) -> (Vec<PathBuf>, Vec<Result<()>>) {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut results = Vec::new();
        for (n, data) in layers.iter().enumerate() {
            let dest = t.join(format!("l{n}"));
            std::fs::create_dir(&dest).unwrap();
            let u = unpack(&data[..], &dest, None).unwrap();
            let lowers: Vec<PathBuf> = dirs.iter().rev().cloned().collect();
            results.push(link_from_lowers(&dest, &u.lower_links, &lowers));
            dirs.push(dest);
        }
        (dirs, results)
    }

    fn err(r: &Result<()>) -> String {
        r.as_ref().expect_err("refused").to_string()
    }

    fn is_empty(dir: &Path) -> bool {
        std::fs::read_dir(dir).unwrap().count() == 0
    }

    #[test]
    fn a_link_to_the_layer_below_is_a_copy_with_its_metadata() {
        let t = tempfile::tempdir().unwrap();
        let l0 = {
            let mut b = tar::Builder::new(Vec::new());
            b.append_pax_extensions([("SCHILY.xattr.trusted.pyc", &b"v"[..]), ("mtime", &b"1234.5"[..])]).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(7);
            h.set_mode(0o4750);
            h.set_uid(7);
            h.set_gid(8);
            h.set_mtime(0);
            b.append_data(&mut h, "data/y", &b"shared\n"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let (dirs, r) = stack(t.path(), &[l0, tar_of(&[link("data/x", "data/y"), link("data/x2", "./data/y")])]);
        assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
        let (x, x2, y) = (dirs[1].join("data/x"), dirs[1].join("data/x2"), dirs[0].join("data/y"));
        assert_eq!(std::fs::read(&x).unwrap(), b"shared\n");
        let m = std::fs::metadata(&x).unwrap();
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid(), m.mtime(), m.mtime_nsec()), (0o4750, 7, 8, 1234, 500_000_000));
        let mut v = [0u8; 4];
        let c = CString::new(x.as_os_str().as_encoded_bytes()).unwrap();
        let n = unsafe { libc::lgetxattr(c.as_ptr(), c"trusted.pyc".as_ptr(), v.as_mut_ptr().cast(), 4) };
        assert_eq!(&v[..n.max(0) as usize], b"v");
        // One copy for both links; the lower file is left as it was, a link of its own.
        assert_eq!((m.nlink(), m.ino()), (2, std::fs::metadata(&x2).unwrap().ino()));
        assert_eq!(std::fs::metadata(&y).unwrap().nlink(), 1);
    }

    #[test]
    fn found_two_layers_down_past_an_unrelated_one() {
        let t = tempfile::tempdir().unwrap();
        let layers = [tar_of(&[file("data/y", "deep")]), tar_of(&[file("data/z", "other"), file("data/y2", "")]), tar_of(&[link("x", "data/y")])];
        let (dirs, r) = stack(t.path(), &layers);
        assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
        assert_eq!(std::fs::read(dirs[2].join("x")).unwrap(), b"deep");
    }

    #[test]
    fn the_top_most_copy_wins() {
        let t = tempfile::tempdir().unwrap();
        let layers = [tar_of(&[file("y", "old")]), tar_of(&[file("y", "new")]), tar_of(&[link("x", "y")])];
        let (dirs, _) = stack(t.path(), &layers);
        assert_eq!(std::fs::read(dirs[2].join("x")).unwrap(), b"new");
    }

    #[test]
    fn whiteouts_and_opaque_dirs_between_end_the_search() {
        let cases = [
            ("whiteout of the file", tar_of(&[file("data/.wh.y", "")])),
            ("whiteout of its directory", tar_of(&[file(".wh.data", "")])),
            ("opaque directory", tar_of(&[file("data/.wh..wh..opq", ""), file("data/other", "")])),
            ("a file in place of its directory", tar_of(&[file("data", "")])),
        ];
        for (name, middle) in cases {
            let t = tempfile::tempdir().unwrap();
            let layers = [tar_of(&[file("data/y", "gone")]), middle, tar_of(&[file("kept", "k"), link("x", "data/y")])];
            let (dirs, r) = stack(t.path(), &layers);
            assert!(err(&r[2]).contains("hardlink x: target data/y is in no earlier layer"), "{name}: {r:?}");
            assert!(is_empty(&dirs[2]), "{name}: a partial layer remains");
        }
    }

    #[test]
    fn the_links_own_layer_may_hide_the_target_too() {
        let t = tempfile::tempdir().unwrap();
        let layers = [tar_of(&[file("data/y", "gone")]), tar_of(&[file("data/.wh.y", ""), link("x", "data/y")])];
        let (_, r) = stack(t.path(), &layers);
        assert!(err(&r[1]).contains("is in no earlier layer"), "{r:?}");
    }

    #[test]
    fn a_missing_target_is_refused_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let layers = [tar_of(&[file("a", "")]), tar_of(&[file("b", "b"), link("h", "not/there")])];
        let (dirs, r) = stack(t.path(), &layers);
        assert!(err(&r[1]).contains("hardlink h: target not/there is in no earlier layer"), "{r:?}");
        assert!(is_empty(&dirs[1]));
        // Not a regular file below: refused as well.
        let t = tempfile::tempdir().unwrap();
        let layers = [tar_of(&[(EntryType::Directory, "d", "")]), tar_of(&[link("h", "d")])];
        assert!(err(&stack(t.path(), &layers).1[1]).contains("is not a regular file"));
    }

    #[test]
    fn a_symlink_on_the_way_in_a_lower_layer_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let t = tempfile::tempdir().unwrap();
        let l0 = t.path().join("l0");
        std::fs::create_dir(&l0).unwrap();
        std::os::unix::fs::symlink(outside.path(), l0.join("abs")).unwrap();
        std::os::unix::fs::symlink(format!("{}{}", "../".repeat(10), outside.path().display()), l0.join("rel")).unwrap();
        for target in ["abs/secret", "rel/secret"] {
            let l1 = t.path().join("l1");
            std::fs::create_dir(&l1).unwrap();
            let u = unpack(&tar_of(&[file("f", ""), link("x", target)])[..], &l1, None).unwrap();
            let e = link_from_lowers(&l1, &u.lower_links, std::slice::from_ref(&l0)).unwrap_err().to_string();
            assert!(e.contains("unsafe path") && e.contains("goes through symlink"), "{e}");
            assert!(is_empty(&l1));
            std::fs::remove_dir(&l1).unwrap();
        }
        assert_eq!(std::fs::metadata(outside.path().join("secret")).unwrap().nlink(), 1);
    }

    #[test]
    fn order_within_the_layer() {
        let t = tempfile::tempdir().unwrap();
        let below = tar_of(&[file("y", "low"), file("y2", "low2")]);
        // A target that comes after its link: a malformed tar.
        let (_, r) = stack(t.path(), &[below.clone(), tar_of(&[link("x", "y"), file("y", "later")])]);
        assert!(err(&r[1]).contains("hardlink x: its target y comes after it in the layer"), "{r:?}");
        // A link replaced by a later entry, or under a directory replaced later, is not made;
        // a link to a link of the layer below is to the same file; a link under a symlinked
        // directory of the layer goes where unpack put it.
        let t = tempfile::tempdir().unwrap();
        let top = tar_of(&[
            (EntryType::Directory, "d2", ""),
            (EntryType::Symlink, "s", "d2"),
            link("s/via", "y"),
            link("x", "y"),
            file("x", "mine"),
            link("d/x", "y"),
            file("d", "file"),
            link("w", "y"),
            file(".wh.w", ""),
            link("a", "y"),
            link("b", "a"),
            file("e", "old"),
            link("e", "y2"),
        ]);
        let (dirs, r) = stack(t.path(), &[below, top]);
        assert!(r[1].is_ok(), "{r:?}");
        let top = &dirs[1];
        assert_eq!(std::fs::read(top.join("x")).unwrap(), b"mine");
        assert_eq!(std::fs::read(top.join("d2/via")).unwrap(), b"low");
        assert_eq!(std::fs::read(top.join("e")).unwrap(), b"low2");
        assert_eq!(std::fs::read(top.join("d")).unwrap(), b"file");
        assert_eq!(std::fs::symlink_metadata(top.join("w")).unwrap().rdev(), 0);
        let (a, b) = (std::fs::metadata(top.join("a")).unwrap(), std::fs::metadata(top.join("b")).unwrap());
        // s/via, a and b: three names of one copy, as they were of one file.
        assert_eq!((a.ino(), a.nlink(), std::fs::read(top.join("b")).unwrap()), (b.ino(), 3, b"low".to_vec()));
    }

    #[test]
    fn a_sibling_job_of_the_same_batch_is_a_lower_layer() {
        let t = tempfile::tempdir().unwrap();
        let layers = [tar_of(&[file("data/y", "sibling")]), tar_of(&[link("data/x", "data/y")]), tar_of(&[link("z", "data/x")])];
        let dirs: Vec<PathBuf> = (0..3).map(|n| t.path().join(format!("l{n}"))).collect();
        let jobs = layers
            .iter()
            .enumerate()
            .map(|(n, data)| {
                std::fs::create_dir(&dirs[n]).unwrap();
                Job {
                    input: Box::new(std::io::Cursor::new(data.clone())),
                    dest: dirs[n].clone(),
                    blob: None,
                    lowers: dirs[..n].iter().rev().cloned().collect(),
                }
            })
            .collect();
        let got = unpack_all(jobs);
        assert!(got.iter().all(|r| r.is_ok()));
        // The middle layer's copy is itself found by the top one.
        assert_eq!(std::fs::read(dirs[2].join("z")).unwrap(), b"sibling");
    }
}
