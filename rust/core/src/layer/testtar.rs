//! Tars for the layer tests.

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
