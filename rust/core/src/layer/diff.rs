//! A container's changes, read from its overlayfs upper dir alone (never the whole image): the
//! list `pyc diff` prints, and the layer tar `pyc commit` stores.

use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::beneath::Root;
use super::digest::HashingWriter;
use super::overlay::{self, Look};
use crate::error::{IoContext, Result};

/// One changed path, as docker prints it: 'A' added, 'C' changed, 'D' deleted.
pub type Change = (char, PathBuf);

/// Whether `rel` is in the merged view of `lowers` (top-most first).
fn in_lowers(lowers: &[Root], rel: &Path) -> bool {
    matches!(overlay::find(lowers, rel.as_os_str().as_bytes()), Ok(Some((_, Look::Found { .. }))))
}

/// The changes in `upper` against `lowers` (top-most first), sorted by path. A directory the
/// upper dir holds because something in it changed is 'C', as docker shows it; under an opaque
/// directory (removed and made again) everything is 'A'.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let lowers = lowers.iter().map(|p| Root::open(p)).collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, bool)> = vec![(PathBuf::new(), false)];
    while let Some((rel, hidden_below)) = stack.pop() {
        let full = upper.join(&rel);
        for entry in std::fs::read_dir(&full).ctx("read", &full)? {
            let entry = entry.ctx("read", &full)?;
            let r = rel.join(entry.file_name());
            let p = upper.join(&r);
            let md = std::fs::symlink_metadata(&p).ctx("stat", &p)?;
            let kind = if overlay::is_whiteout(md.mode(), md.rdev()) {
                'D'
            } else if !hidden_below && in_lowers(&lowers, &r) {
                'C'
            } else {
                'A'
            };
            if md.is_dir() {
                stack.push((r.clone(), hidden_below || kind == 'A' || overlay::is_opaque_path(&p)?));
            }
            out.push((kind, Path::new("/").join(r)));
        }
    }
    out.sort_by(|a, b| a.1.as_os_str().as_bytes().cmp(b.1.as_os_str().as_bytes()));
    Ok(out)
}

/// Write the upper dir `upper` to `out` as an OCI layer tar (whiteouts as `.wh.` files, opaque
/// directories with `.wh..wh..opq`), in a fixed order. Returns the digest and size.
pub fn upper_to_layer(upper: &Path, out: impl Write) -> Result<(String, u64)> {
    let mut b = tar::Builder::new(HashingWriter::new(BufWriter::with_capacity(1 << 20, out)));
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    super::pack::append_tree(&mut b, upper, tar::HeaderMode::Complete, true)?;
    let hw = b.into_inner().ctx("write tar of", upper)?;
    let (mut w, digest, size) = hw.finish();
    w.flush().ctx("write tar of", upper)?;
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs;

    fn whiteout(p: &Path) {
        nix::sys::stat::mknod(p, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0).unwrap();
    }

    fn opaque(p: &Path) {
        let c = CString::new(p.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::lsetxattr(c.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0) }, 0);
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// lower: /etc/passwd, /bin/vi, /usr/share/doc/x; upper: a new file, a changed one, vi
    /// deleted, /usr/share made again.
    fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("lower"), t.path().join("upper"));
        for d in ["etc", "bin", "usr/share/doc"] {
            fs::create_dir_all(lower.join(d)).unwrap();
        }
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::write(lower.join("bin/vi"), "vi").unwrap();
        fs::write(lower.join("usr/share/doc/x"), "x").unwrap();
        for d in ["etc", "bin", "usr/share/new"] {
            fs::create_dir_all(upper.join(d)).unwrap();
        }
        fs::write(upper.join("etc/passwd"), "root2").unwrap();
        fs::write(upper.join("etc/new"), "n").unwrap();
        fs::hard_link(upper.join("etc/new"), upper.join("etc/new2")).unwrap();
        whiteout(&upper.join("bin/vi"));
        opaque(&upper.join("usr/share"));
        (t, lower, upper)
    }

    #[test]
    fn changes_of_an_upper_dir() {
        if !is_root() {
            return;
        }
        let (_t, lower, upper) = fixture();
        let got: Vec<String> = changes(&upper, &[lower]).unwrap().into_iter().map(|(k, p)| format!("{k} {}", p.display())).collect();
        let want = ["C /bin", "D /bin/vi", "C /etc", "A /etc/new", "A /etc/new2", "C /etc/passwd", "C /usr", "C /usr/share", "A /usr/share/new"];
        assert_eq!(got, want);
    }

    #[test]
    fn lower_whiteouts_and_opaque_dirs_hide_what_is_below() {
        if !is_root() {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (bottom, top, upper) = (t.path().join("b"), t.path().join("t"), t.path().join("u"));
        fs::create_dir_all(bottom.join("d")).unwrap();
        fs::write(bottom.join("f"), "").unwrap();
        fs::write(bottom.join("d/g"), "").unwrap();
        fs::create_dir_all(top.join("d")).unwrap();
        whiteout(&top.join("f"));
        opaque(&top.join("d"));
        fs::create_dir_all(upper.join("d")).unwrap();
        fs::write(upper.join("f"), "").unwrap();
        fs::write(upper.join("d/g"), "").unwrap();
        let got = changes(&upper, &[top, bottom]).unwrap();
        assert_eq!(got, vec![('C', PathBuf::from("/d")), ('A', PathBuf::from("/d/g")), ('A', PathBuf::from("/f"))]);
        // An opaque directory hides the layers below it, not what it holds itself.
        fs::write(t.path().join("t/d/g"), "").unwrap();
        let got = changes(&upper, &[t.path().join("t"), t.path().join("b")]).unwrap();
        assert_eq!(got[1], ('C', PathBuf::from("/d/g")));
    }

    #[test]
    fn upper_dir_to_oci_layer_and_back() {
        if !is_root() {
            return;
        }
        let (t, _lower, upper) = fixture();
        let mut data = Vec::new();
        let (digest, size) = upper_to_layer(&upper, &mut data).unwrap();
        assert_eq!(size, data.len() as u64);
        let names: Vec<String> = tar::Archive::new(&data[..]).entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
        assert_eq!(names, ["bin", "etc", "usr", "bin/.wh.vi", "etc/new", "etc/new2", "etc/passwd", "usr/share", "usr/share/.wh..wh..opq", "usr/share/new"]);
        // The same upper dir gives the same tar.
        assert_eq!(upper_to_layer(&upper, std::io::sink()).unwrap().0, digest);
        // Unpacked, the marks are overlayfs' again.
        let dest = t.path().join("unpacked");
        fs::create_dir(&dest).unwrap();
        super::super::unpack(&data[..], &dest, None).unwrap();
        let vi = fs::symlink_metadata(dest.join("bin/vi")).unwrap();
        assert!(overlay::is_whiteout(vi.mode(), vi.rdev()));
        assert!(overlay::is_opaque_path(&dest.join("usr/share")).unwrap());
        assert_eq!(fs::metadata(dest.join("etc/new")).unwrap().ino(), fs::metadata(dest.join("etc/new2")).unwrap().ino());
    }
}
