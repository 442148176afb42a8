//! Tars for the layer tests, and what they share to look at the trees they unpack.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A tar of regular files (path, content), owned by root, mode 0644, mtime 0.
pub fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
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

/// A one-file tar with `path` written into the header as is (the tar crate's builder
/// refuses `..` and absolute paths).
pub fn raw_tar(path: &str) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(b"x");
    out.resize(512 * 2 + 1024, 0);
    out
}

/// A temp dir on tmpfs where there is one: the unpack's syncfs costs nothing there, and
/// thousands of files are made and removed many times faster than on a disk other processes
/// write to.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()
}

/// Every xattr of `p` (not following a symlink there), by name.
pub fn xattrs(p: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 4096];
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    names.truncate(n.max(0) as usize);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let k = CString::new(name).unwrap();
        let mut v = vec![0u8; 4096];
        let n = unsafe { libc::lgetxattr(c.as_ptr(), k.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        v.truncate(n.max(0) as usize);
        out.push((name.to_vec(), v));
    }
    out.sort();
    out
}
