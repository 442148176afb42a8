//! The unpack writes a layer's files on several threads; the result must be the one a single
//! thread gives, always. Layers made to stress what could race: nested directories, hardlinks
//! to files of earlier batches (and to links), whiteouts of files and of whole directories
//! still being written, opaque markers, later entries for paths written earlier (file over
//! file, file over directory, directory over file), a directory listed again after its
//! children, big files among small ones, owners, set-id modes, PAX times and xattrs, symlinks,
//! fifos. The same tree (content, mode, owner, times, xattrs, link groups), the same hardlinks
//! left for the layers below, the same digest, whatever the number of workers: a 100,000-entry
//! layer in the batches unpack uses, and a smaller one in batches of a few entries, where a
//! batch in flight is met at every turn.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::plan::unpack_entries;
use super::testtar::{scratch, xattrs};
use super::unpack::unpack_with;
use super::writers::Limits;

/// splitmix64: a fixed sequence, the same layer every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct Layer {
    b: tar::Builder<Vec<u8>>,
    rng: Rng,
    /// Regular files written so far (targets for hardlinks), most recent last.
    files: Vec<String>,
    dirs: Vec<String>,
    entries: usize,
    root: bool,
    /// Random bytes the files' contents are cut from.
    noise: Vec<u8>,
}

impl Layer {
    fn header(&mut self, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        let modes: &[u32] = if kind.is_dir() { &[0o755, 0o700, 0o1777, 0o2755] } else { &[0o644, 0o755, 0o600, 0o666, 0o4755, 0o2711, 0o444] };
        h.set_mode(modes[self.rng.below(modes.len())]);
        let owner = [(0, 0), (0, 0), (0, 0), (1000, 1000), (0, 42), (65534, 65534)][self.rng.below(6)];
        // Only root gives files away.
        let owner = if self.root { owner } else { (u64::from(nix::unistd::geteuid().as_raw()), u64::from(nix::unistd::getegid().as_raw())) };
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(1_600_000_000 + self.rng.below(100_000_000) as u64);
        h
    }

    fn pax(&mut self) {
        if self.rng.chance(3) {
            let nsec = format!("{}.{:09}", 1_600_000_000 + self.rng.below(1000), self.rng.below(1_000_000_000));
            let xattr = format!("v{}", self.rng.below(1000));
            let trusted: &[u8] = if self.root { b"SCHILY.xattr.trusted.pyc" } else { b"SCHILY.xattr.user.other" };
            let trusted = std::str::from_utf8(trusted).unwrap();
            self.b.append_pax_extensions([("mtime", nsec.as_bytes()), ("SCHILY.xattr.user.pyc", xattr.as_bytes()), (trusted, b"t")]).unwrap();
        }
    }

    fn file(&mut self, path: &str) {
        let size = if self.rng.chance(1) { 300_000 + self.rng.below(200_000) } else { self.rng.below(1500) };
        let from = self.rng.below(self.noise.len() - size);
        let mut h = self.header(tar::EntryType::Regular, size as u64);
        self.pax();
        self.b.append_data(&mut h, path, &self.noise[from..from + size]).unwrap();
        self.files.push(path.to_string());
        self.entries += 1;
    }

    fn dir(&mut self, path: &str) {
        let mut h = self.header(tar::EntryType::Directory, 0);
        self.pax();
        self.b.append_data(&mut h, path, &b""[..]).unwrap();
        self.dirs.push(path.to_string());
        self.entries += 1;
    }

    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) {
        let mut h = self.header(kind, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        if kind.is_hard_link() {
            self.files.push(path.to_string());
        }
        self.entries += 1;
    }

    fn empty(&mut self, path: &str) {
        let mut h = self.header(tar::EntryType::Regular, 0);
        self.b.append_data(&mut h, path, &b""[..]).unwrap();
        self.entries += 1;
    }

    /// A recent file: half the time one of the last few, likely in a batch still in flight.
    fn recent_file(&mut self) -> Option<String> {
        let n = self.files.len();
        let back = if self.rng.chance(50) { 8 } else { 3000 };
        (n > 0).then(|| self.files[n - 1 - self.rng.below(n.min(back))].clone())
    }
}

fn layer(entries: usize) -> Vec<u8> {
    let root = nix::unistd::geteuid().is_root();
    let mut rng = Rng(7);
    let noise = (0..(1 << 20) / 8).flat_map(|_| rng.next().to_le_bytes()).collect();
    let mut l = Layer { b: tar::Builder::new(Vec::new()), rng, files: Vec::new(), dirs: Vec::new(), entries: 0, root, noise };
    let mut d = 0;
    while l.entries < entries {
        // A directory of a few hundred entries, nested up to 3 deep.
        let parent =
            if l.dirs.is_empty() || l.rng.chance(30) { String::new() } else { format!("{}/", l.dirs[l.dirs.len() - 1 - l.rng.below(l.dirs.len().min(5))]) };
        let dir = if parent.matches('/').count() >= 3 { format!("d{d}") } else { format!("{parent}d{d}") };
        d += 1;
        l.dir(&dir);
        let n = 50 + l.rng.below(500);
        for i in 0..n {
            let path = format!("{dir}/f{i}");
            match l.rng.below(100) {
                0..=79 => l.file(&path),
                80..=86 => {
                    if let Some(t) = l.recent_file() {
                        l.link(tar::EntryType::Link, &path, &t);
                    }
                }
                87..=89 => {
                    let t = format!("../{}", l.dirs[l.rng.below(l.dirs.len())]);
                    l.link(tar::EntryType::Symlink, &path, &t);
                }
                90..=92 => {
                    // Whiteout of a recent file: maybe one still being written.
                    if let Some(t) = l.recent_file() {
                        l.empty(&whiteout_of(&t));
                    }
                }
                93 => {
                    // Rewrite a recent path: a file over it.
                    if let Some(t) = l.recent_file() {
                        l.file(&t);
                    }
                }
                94 => l.empty(&format!("{dir}/.wh..wh..opq")),
                95 => {
                    // A link to a file not in the layer: left for the layers below.
                    l.link(tar::EntryType::Link, &path, &format!("below/{i}"));
                }
                96 => {
                    let mut h = l.header(tar::EntryType::Fifo, 0);
                    l.b.append_data(&mut h, &path, &b""[..]).unwrap();
                    l.entries += 1;
                }
                _ => l.file(&path),
            }
        }
        match l.rng.below(40) {
            // The directory listed again after its children.
            0 => l.dir(&dir),
            // A whole recent directory deleted while its files may be in flight, then a file
            // in its place, or a directory again.
            1 | 2 => {
                let victim = l.dirs[l.dirs.len() - 1 - l.rng.below(l.dirs.len().min(4))].clone();
                l.empty(&whiteout_of(&victim));
                l.dirs.retain(|d| d != &victim && !d.starts_with(&format!("{victim}/")));
                l.files.retain(|f| !f.starts_with(&format!("{victim}/")));
                if l.rng.chance(50) {
                    l.file(&victim);
                } else {
                    l.dir(&victim);
                }
            }
            // A directory replaced by a file straight away (its tree goes with it).
            3 => {
                l.file(&dir);
                l.dirs.retain(|d| d != &dir && !d.starts_with(&format!("{dir}/")));
                l.files.retain(|f| !f.starts_with(&format!("{dir}/")));
            }
            _ => {}
        }
    }
    l.b.into_inner().unwrap()
}

fn whiteout_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((parent, name)) => format!("{parent}/.wh.{name}"),
        None => format!(".wh.{path}"),
    }
}

/// A tree by path, and its link groups.
type Tree = (BTreeMap<Vec<u8>, String>, BTreeSet<Vec<Vec<u8>>>);

/// Everything a tree holds that an unpack decides, by path; and its link groups.
fn describe(root: &Path) -> Tree {
    let mut out = BTreeMap::new();
    let mut groups: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let rel = p.strip_prefix(root).unwrap().as_os_str().as_bytes().to_vec();
        let whiteout = ft.is_char_device() && md.rdev() == 0;
        // A whiteout's times are when it was made, and the root's when it last changed: no
        // entry gives them.
        let times = if whiteout || rel.is_empty() { String::new() } else { format!("{}.{}", md.mtime(), md.mtime_nsec()) };
        let mut line = format!("{:o} {}:{} {} r{} n{} x{:?}", md.mode(), md.uid(), md.gid(), times, md.rdev(), md.nlink(), xattrs(&p));
        if ft.is_symlink() {
            line += &format!(" -> {:?}", std::fs::read_link(&p).unwrap());
        } else if ft.is_file() {
            line += &format!(" {} {}", md.size(), hex::encode(Sha256::digest(std::fs::read(&p).unwrap())));
            if md.nlink() > 1 {
                groups.entry(md.ino()).or_default().push(rel.clone());
            }
        } else if ft.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        out.insert(rel, line);
    }
    let groups = groups.into_values().map(|mut g| {
        g.sort();
        g
    });
    (out, groups.collect())
}

/// What an unpack gave: the tree, the hardlinks left for below, and the digest where there is
/// one.
type Outcome = (Tree, Vec<super::LowerLink>, String);

fn same(want: &Outcome, got: &Outcome, what: &str) {
    let (((wtree, wgroups), wlinks, wdigest), ((tree, groups), links, digest)) = (want, got);
    let differ: Vec<_> = wtree.keys().chain(tree.keys()).filter(|k| tree.get(*k) != wtree.get(*k)).take(5).map(|k| String::from_utf8_lossy(k)).collect();
    let first = wtree.keys().chain(tree.keys()).find(|k| tree.get(*k) != wtree.get(*k));
    assert!(differ.is_empty(), "{what}: {differ:?} differ: {:?} against {:?}", first.map(|k| tree.get(k)), first.map(|k| wtree.get(k)));
    assert!(groups == wgroups, "{what}: other link groups");
    assert_eq!((links, digest), (wlinks, wdigest), "{what}");
}

#[test]
fn a_100k_layer_is_the_same_with_one_worker_or_two() {
    let data = layer(100_000);
    let t = scratch();
    let mut first: Option<Outcome> = None;
    for workers in [1, 2] {
        let dest = t.path().join(format!("w{workers}"));
        std::fs::create_dir(&dest).unwrap();
        let u = unpack_with(&data[..], &dest, None, workers).unwrap();
        let got = (describe(&dest), u.lower_links, u.diff_id);
        std::fs::remove_dir_all(&dest).unwrap();
        match &first {
            None => {
                let ((tree, groups), links, _) = &got;
                // The layer is what it was made to be: many files, links, whiteouts, lower links.
                let whiteouts = tree.values().filter(|l| l.starts_with("20000 ")).count();
                assert!(
                    tree.len() > 80_000 && groups.len() > 1000 && whiteouts > 1000 && links.len() > 100,
                    "{} {} {whiteouts} {}",
                    tree.len(),
                    groups.len(),
                    links.len()
                );
                first = Some(got);
            }
            Some(want) => same(want, &got, &format!("{workers} workers")),
        }
    }
}

#[test]
fn tiny_batches_meet_each_other_and_agree() {
    let data = layer(20_000);
    let t = scratch();
    let tiny = Limits { bytes: 4096, entries: 3, fds: 2 };
    let mut first: Option<Outcome> = None;
    for (workers, limits) in [(1, Limits::DEFAULT), (2, tiny), (3, tiny)] {
        let dest = t.path().join(format!("w{workers}"));
        std::fs::create_dir(&dest).unwrap();
        let (_, links) = unpack_entries(&mut &data[..], &dest, workers, limits).unwrap();
        let got = (describe(&dest), links, String::new());
        std::fs::remove_dir_all(&dest).unwrap();
        match &first {
            None => first = Some(got),
            Some(want) => same(want, &got, &format!("{workers} workers, batches of {}", limits.entries)),
        }
    }
}

#[test]
fn the_first_failure_in_tar_order_is_the_one_reported() {
    // A hardlink to a directory fails in a worker; an unsafe path after it fails in the parse,
    // which may well get there first.
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |kind: tar::EntryType, path: &str, link: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if link.is_empty() {
            b.append_data(&mut h, path, &b""[..]).unwrap();
        } else {
            b.append_link(&mut h, path, link).unwrap();
        }
    };
    add(tar::EntryType::Directory, "d", "");
    for i in 0..200 {
        add(tar::EntryType::Regular, &format!("d/f{i}"), "");
    }
    add(tar::EntryType::Link, "x", "d");
    for i in 0..200 {
        add(tar::EntryType::Regular, &format!("d/g{i}"), "");
    }
    let mut data = b.into_inner().unwrap();
    data.truncate(data.len() - 1024);
    data.extend_from_slice(&super::testtar::raw_tar("../evil"));
    let t = scratch();
    let tiny = Limits { bytes: 4096, entries: 3, fds: 2 };
    for (workers, limits) in [(1, Limits::DEFAULT), (2, Limits::DEFAULT), (2, tiny), (3, tiny)] {
        let dest = t.path().join(format!("w{workers}-{}", limits.entries));
        std::fs::create_dir(&dest).unwrap();
        let e = unpack_entries(&mut &data[..], &dest, workers, limits).unwrap_err().to_string();
        assert_eq!(e, "unpack x: hardlink: operation not permitted", "{workers} workers, batches of {}", limits.entries);
    }
}
