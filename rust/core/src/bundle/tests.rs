use std::io::Read;
use std::path::{Path, PathBuf};

use super::format::{BundleImage, FrameReader, Kind};
use super::*;

/// Bytes that do not compress: a xorshift stream.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn tar_of(path: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_cksum();
    b.append_link(&mut h, "link", "a").unwrap();
    b.into_inner().unwrap();
    path.to_path_buf()
}

fn image(diff_ids: &[&str]) -> BundleImage {
    BundleImage {
        names: vec!["new:1".into()],
        manifest_digest: "sha256:m".into(),
        manifest: "{}".into(),
        config: "{\"c\":1}".into(),
        diff_ids: diff_ids.iter().map(|s| s.to_string()).collect(),
    }
}

struct Case {
    _dir: tempfile::TempDir,
    old: PathBuf,
    new: PathBuf,
}

/// An old layer and a new one where a big file changed in its middle, one is the same, one is
/// new, one small file changed.
fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let big = noise(11, 300_000);
    let mut big2 = big.clone();
    big2.splice(150_000..150_010, b"0123456789abcdefghij".iter().copied());
    let same = noise(23, 100_000);
    let fresh = noise(37, 50_000);
    let old = tar_of(&dir.path().join("old.tar"), &[("a", &big), ("b", &same), ("c", b"small one")]);
    let new = tar_of(&dir.path().join("new.tar"), &[("a", &big2), ("b", &same), ("c", b"small two!"), ("d", &fresh)]);
    Case { _dir: dir, old, new }
}

fn make(c: &Case) -> (Vec<u8>, Created) {
    let mut out = Vec::new();
    let created = create(
        vec![image(&["sha256:new"])],
        vec!["sha256:oldimage".into()],
        vec!["old:1".into()],
        vec![("sha256:old".into(), c.old.clone())],
        vec![NewLayer { diff_id: "sha256:new".into(), blob: c.new.clone() }],
        &mut out,
        &mut |_| {},
    )
    .unwrap();
    (out, created)
}

fn rebuild(bundle: Vec<u8>, old: &Path) -> Result<(Vec<u8>, String), crate::Error> {
    let mut b = Bundle::open(Box::new(std::io::Cursor::new(bundle)))?;
    b.set_sources(vec![old.to_path_buf()])?;
    let (_, mut layer) = b.next_layer()?.expect("one carried layer");
    let mut tar = Vec::new();
    layer.read_to_end(&mut tar).map_err(|e| crate::Error::BadArchive(e.to_string()))?;
    assert!(b.next_layer()?.is_none());
    let digest = b.finish()?;
    Ok((tar, digest))
}

#[test]
fn a_changed_layer_is_rebuilt_byte_for_byte_from_little() {
    let c = case();
    let (bundle, created) = make(&c);
    let new = std::fs::read(&c.new).unwrap();
    let (tar, digest) = rebuild(bundle.clone(), &c.old).unwrap();
    assert!(tar == new, "rebuilt tar differs");
    assert_eq!(digest, created.digest);
    // The new file (50 kB of noise) is most of it; the changed big file costs a patch.
    assert!(bundle.len() < 60_000, "bundle of {} bytes", bundle.len());
    let seen = inspect(Box::new(std::io::Cursor::new(bundle.clone()))).unwrap();
    assert_eq!(seen.digest, created.digest);
    assert_eq!(seen.size, bundle.len() as u64);
    assert_eq!(seen.carried, created.carried);
}

#[test]
fn a_layer_the_old_image_has_is_not_carried() {
    let c = case();
    let mut out = Vec::new();
    let created = create(
        vec![image(&["sha256:old"])],
        vec![],
        vec![],
        vec![("sha256:old".into(), c.old.clone())],
        vec![NewLayer { diff_id: "sha256:old".into(), blob: c.old.clone() }],
        &mut out,
        &mut |_| {},
    )
    .unwrap();
    assert!(created.carried.is_empty());
    let mut b = Bundle::open(Box::new(std::io::Cursor::new(out))).unwrap();
    assert!(!b.header().layers[0].carried);
    assert!(b.next_layer().unwrap().is_none());
    b.finish().unwrap();
}

#[test]
fn damage_anywhere_is_refused() {
    let c = case();
    let (bundle, _) = make(&c);
    // Every 997th byte flipped in turn, and the bundle cut at several points: never a success.
    for at in (0..bundle.len()).step_by(997).chain([bundle.len() - 1]) {
        let mut bad = bundle.clone();
        bad[at] ^= 0x40;
        assert!(rebuild(bad, &c.old).is_err(), "flipped byte {at} passed");
    }
    for cut in [5, 20, bundle.len() / 2, bundle.len() - 1] {
        assert!(rebuild(bundle[..cut].to_vec(), &c.old).is_err(), "cut at {cut} passed");
    }
    let mut extra = bundle.clone();
    extra.push(0);
    assert!(rebuild(extra, &c.old).is_err());
}

#[test]
fn a_recipe_cannot_read_beyond_its_old_layer_or_grow_its_layer() {
    use super::format::FrameWriter;
    use super::recipe::Op;
    let c = case();
    let old_len = std::fs::metadata(&c.old).unwrap().len();
    for ops in [vec![Op::Copy { src: 0, off: old_len - 10, len: 20 }], vec![Op::Copy { src: 1, off: 0, len: 1 }], vec![Op::Lit { len: 1 << 40 }]] {
        let (bundle, _) = make(&c);
        // The same header, a hand-made recipe.
        let mut frames = FrameReader::new(std::io::Cursor::new(bundle)).unwrap();
        let header = frames.header().unwrap();
        let mut out = Vec::new();
        let mut w = FrameWriter::new(&mut out).unwrap();
        w.header(&header).unwrap();
        let mut raw = Vec::new();
        for op in ops.iter().chain([&Op::End]) {
            op.write(&mut raw).unwrap();
        }
        w.frame(Kind::Ops, &zstd::encode_all(raw.as_slice(), 1).unwrap()).unwrap();
        w.frame(Kind::LayerEnd, &[]).unwrap();
        w.finish().unwrap();
        let err = rebuild(out, &c.old).unwrap_err().to_string();
        assert!(err.contains("beyond") || err.contains("does not list") || err.contains("more than its size"), "{err}");
    }
}

#[test]
fn not_a_bundle_is_said_so() {
    let err = Bundle::open(Box::new(std::io::Cursor::new(b"garbage, not a bundle".to_vec()))).err().unwrap().to_string();
    assert!(err.contains("not a pyc delta bundle"), "{err}");
}
