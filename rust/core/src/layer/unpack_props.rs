//! Property tests of the layer unpack, the largest attack surface: random archives built from
//! the entries a hostile layer would use (files, directories, symlinks and hardlinks pointing
//! anywhere, whiteouts, opaque markers, PAX and GNU long names and link names, `..`, absolute
//! paths, device nodes), and the same archives mutated byte by byte and block by block. Each
//! is unpacked into `layer/` of a fresh directory beside a lower layer and a sentinel
//! directory, with a blob kept elsewhere. Whatever happens, nothing but `layer/` changes (the
//! parent, the lower layer and the sentinel stay byte-identical, metadata included), no panic
//! escapes, and a refused archive is an error that leaves `layer/` empty.
//!
//! PROPTEST_CASES=N raises the number of archives per property (64 by default, a few seconds).
//! A failing case is kept in rust/core/proptest-regressions/, to be run first next time.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::testtar::{scratch, xattrs};
use super::{unpack_all, Job, Keep};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

/// Where a path or a link target starts.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// Inside the layer (relative).
    Layer,
    /// Beneath the previous entry's path: a write through a symlink or into a directory just
    /// replaced, a link to what was just written.
    Previous,
    /// The sentinel directory, by its absolute path.
    SentinelAbs,
    /// The sentinel directory, relative to the layer: `../sentinel`.
    SentinelUp,
    /// The lower layer, relative to the layer: `../lower`.
    LowerUp,
}

/// Names of path components: a few plain ones most of the time, so entries meet each other.
/// Link targets climb more often, and name the sentinel and the lower layer.
fn component(link_target: bool) -> impl Strategy<Value = &'static str> {
    let mut weighted: Vec<(usize, &'static str)> = vec![
        (5, "a"),
        (4, "b"),
        (3, "f"),
        (1, ".."),
        (1, "."),
        (1, ""),
        (1, ".wh.a"),
        (1, ".wh.f"),
        (1, ".wh..wh..opq"),
        (1, ".wh."),
        (1, ".wh.."),
        (1, ".wh..."),
        (1, "out"),
        (1, "rel"),
    ];
    if link_target {
        weighted.extend([(3, ".."), (2, "sentinel"), (1, "lower")]);
    }
    prop::sample::select(weighted.into_iter().flat_map(|(n, c)| std::iter::repeat_n(c, n)).collect::<Vec<_>>())
}

#[derive(Debug, Clone)]
struct Spec {
    base: Base,
    parts: Vec<&'static str>,
    /// A long component (about 120 bytes) in the middle: ustar's 100 bytes do not hold it.
    long: bool,
    trailing_slash: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(Spec),
    Link(Spec),
    Char,
    Fifo,
}

/// How the entry's path and link name are written.
#[derive(Debug, Clone, Copy)]
enum Names {
    Ustar,
    Gnu,
    Pax,
}

#[derive(Debug, Clone)]
struct Ent {
    path: Spec,
    kind: Kind,
    names: Names,
    mode: u32,
    uid: u32,
    pax: Vec<(&'static str, &'static [u8])>,
}

const PAX_EXTRAS: &[(&str, &[u8])] = &[
    ("mtime", b"1.5"),
    ("mtime", b"-1"),
    ("mtime", b"99999999999999999999"),
    ("uid", b"4294967295"),
    ("gid", b"x"),
    ("SCHILY.xattr.user.pyc", b"v"),
    ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
    ("SCHILY.xattr.security.capability", b"\x01\x02"),
    ("size", b"3"),
    ("size", b"99999999"),
];

fn spec(link_target: bool) -> impl Strategy<Value = Spec> {
    let base = if link_target {
        prop_oneof![
            5 => Just(Base::Layer),
            4 => Just(Base::Previous),
            2 => Just(Base::SentinelAbs),
            2 => Just(Base::SentinelUp),
            1 => Just(Base::LowerUp),
        ]
        .boxed()
    } else {
        prop_oneof![
            12 => Just(Base::Layer),
            10 => Just(Base::Previous),
            1 => Just(Base::SentinelAbs),
            1 => Just(Base::SentinelUp),
            1 => Just(Base::LowerUp),
        ]
        .boxed()
    };
    (base, prop::collection::vec(component(link_target), 0..3), prop::bool::weighted(0.1), prop::bool::weighted(0.1))
        .prop_map(|(base, parts, long, trailing_slash)| Spec { base, parts, long, trailing_slash })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        5 => prop::collection::vec(any::<u8>(), 0..700).prop_map(Kind::File),
        3 => Just(Kind::Dir),
        4 => spec(true).prop_map(Kind::Symlink),
        3 => spec(true).prop_map(Kind::Link),
        1 => Just(Kind::Char),
        1 => Just(Kind::Fifo),
    ]
}

fn ent() -> impl Strategy<Value = Ent> {
    let names = prop_oneof![4 => Just(Names::Ustar), 1 => Just(Names::Gnu), 2 => Just(Names::Pax)];
    let mode = prop::sample::select(vec![0o644u32, 0o755, 0o4755, 0o1777, 0o000, 0o7777]);
    let uid = prop::sample::select(vec![0u32, 1000, 65534]);
    (spec(false), kind(), names, mode, uid, prop::collection::vec(prop::sample::select(PAX_EXTRAS), 0..2)).prop_map(|(path, kind, names, mode, uid, pax)| Ent {
        path,
        kind,
        names,
        mode,
        uid,
        pax,
    })
}

fn archive() -> impl Strategy<Value = Vec<Ent>> {
    prop::collection::vec(ent(), 1..14)
}

/// A change to a built archive.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    DuplicateBlock(Index),
    DropBlock(Index),
}

fn mutations() -> impl Strategy<Value = (Vec<Mutation>, bool)> {
    let m = prop_oneof![
        4 => (any::<Index>(), 0..8u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => any::<Index>().prop_map(Mutation::DuplicateBlock),
        1 => any::<Index>().prop_map(Mutation::DropBlock),
    ];
    // With the checksums made right again, a mutated header is parsed, not refused at once.
    (prop::collection::vec(m, 1..6), prop::bool::weighted(0.7))
}

/// The directory an archive is unpacked in: `layer/` (the destination), `lower/` (the layer
/// below it) and `sentinel/`; the blob goes to a directory of its own. It lies deep in a
/// scratch directory that the snapshot covers whole: an unpacker that let `..` climb would
/// write there, not into the host's directories.
struct Fixture {
    top: tempfile::TempDir,
    parent: PathBuf,
    blobs: tempfile::TempDir,
}

/// Deeper than any chain of `..` the generated archives hold.
const DEPTH: usize = 40;

impl Fixture {
    fn new() -> Fixture {
        let top = scratch();
        let p = top.path().join(["up"; DEPTH].join("/"));
        for d in ["layer", "lower/a", "sentinel/d"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        std::fs::write(p.join("sentinel/f"), b"sentinel").unwrap();
        std::fs::write(p.join("sentinel/d/g"), b"deeper").unwrap();
        std::fs::write(p.join("lower/a/f"), b"lower file").unwrap();
        std::fs::write(p.join("lower/f"), b"lower top").unwrap();
        std::fs::write(p.join("beside"), b"in the parent").unwrap();
        std::os::unix::fs::symlink(p.join("sentinel"), p.join("lower/out")).unwrap();
        std::os::unix::fs::symlink("../sentinel", p.join("lower/rel")).unwrap();
        Fixture { top, parent: p, blobs: scratch() }
    }

    fn layer(&self) -> PathBuf {
        self.parent.join("layer")
    }

    /// The bytes of `s`; `previous` is the path of the entry before.
    fn path(&self, s: &Spec, previous: &[u8], dir: bool) -> Vec<u8> {
        let mut out: Vec<u8> = match s.base {
            Base::Layer => Vec::new(),
            Base::Previous => previous.to_vec(),
            Base::SentinelAbs => self.parent.join("sentinel").as_os_str().as_bytes().to_vec(),
            Base::SentinelUp => b"../sentinel".to_vec(),
            Base::LowerUp => b"../lower".to_vec(),
        };
        for (i, part) in s.parts.iter().enumerate() {
            if !out.is_empty() && !out.ends_with(b"/") {
                out.push(b'/');
            }
            if s.long && i == s.parts.len() / 2 {
                out.extend_from_slice(&[b'n'; 120]);
                out.push(b'/');
            }
            out.extend_from_slice(part.as_bytes());
        }
        if out.is_empty() {
            out.push(b'.');
        }
        if s.trailing_slash || dir {
            out.push(b'/');
        }
        out
    }

    fn build(&self, ents: &[Ent]) -> (Vec<u8>, Vec<usize>) {
        let mut t = RawTar::default();
        let mut previous = Vec::new();
        for e in ents {
            let path = self.path(&e.path, &previous, matches!(e.kind, Kind::Dir));
            let (flag, link, data): (u8, Vec<u8>, &[u8]) = match &e.kind {
                Kind::File(d) => (b'0', Vec::new(), d),
                Kind::Dir => (b'5', Vec::new(), b""),
                Kind::Symlink(s) => (b'2', self.path(s, &previous, false), b""),
                Kind::Link(s) => (b'1', self.path(s, &previous, false), b""),
                Kind::Char => (b'3', Vec::new(), b""),
                Kind::Fifo => (b'6', Vec::new(), b""),
            };
            t.entry(e, flag, &path, &link, data);
            previous = path.strip_suffix(b"/").unwrap_or(&path).to_vec();
        }
        t.finish()
    }

    /// Everything in the scratch directory but `layer/`: names, kinds, owners, modes, times (ctime too:
    /// a chmod to the same mode still shows), link counts, contents, symlink targets, xattrs.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let root = self.top.path();
        let mut stack = vec![root.to_path_buf()];
        while let Some(p) = stack.pop() {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let mut line = format!(
                "{:o} {}:{} {}.{} {}.{} n{} r{} s{}",
                md.mode(),
                md.uid(),
                md.gid(),
                md.mtime(),
                md.mtime_nsec(),
                md.ctime(),
                md.ctime_nsec(),
                md.nlink(),
                md.rdev(),
                md.size()
            );
            line += &format!(" x{:?}", xattrs(&p));
            if md.is_symlink() {
                line += &format!(" -> {:?}", std::fs::read_link(&p).unwrap());
            } else if md.is_file() {
                line += &format!(" {:?}", std::fs::read(&p).unwrap());
            } else if md.is_dir() {
                for e in std::fs::read_dir(&p).unwrap() {
                    let e = e.unwrap().path();
                    if e != self.layer() {
                        stack.push(e);
                    }
                }
            }
            out.insert(p.strip_prefix(root).unwrap().to_path_buf(), line);
        }
        out
    }
}

/// A tar written header by header, so nothing in it is refused or cleaned on the way in (the
/// tar crate's builder refuses `..` and absolute paths). Remembers where each header starts.
#[derive(Default)]
struct RawTar {
    out: Vec<u8>,
    headers: Vec<usize>,
}

impl RawTar {
    fn header(&mut self, flag: u8, name: &[u8], link: &[u8], size: u64, mode: u32, uid: u32) {
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], at: usize, len: usize, v: &[u8]| {
            let n = v.len().min(len);
            h[at..at + n].copy_from_slice(&v[..n]);
        };
        put(&mut h, 0, 100, name);
        put(&mut h, 100, 8, format!("{mode:07o}\0").as_bytes());
        put(&mut h, 108, 8, format!("{uid:07o}\0").as_bytes());
        put(&mut h, 116, 8, format!("{uid:07o}\0").as_bytes());
        put(&mut h, 124, 12, format!("{size:011o}\0").as_bytes());
        put(&mut h, 136, 12, format!("{:011o}\0", 1_000_000).as_bytes());
        h[156] = flag;
        put(&mut h, 157, 100, link);
        put(&mut h, 257, 8, b"ustar\x0000");
        if flag == b'3' {
            put(&mut h, 329, 8, b"0000001\0");
            put(&mut h, 337, 8, b"0000003\0");
        }
        set_checksum(&mut h);
        self.headers.push(self.out.len());
        self.out.extend_from_slice(&h);
    }

    fn data(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        self.out.resize(self.out.len().next_multiple_of(512), 0);
    }

    fn entry(&mut self, e: &Ent, flag: u8, path: &[u8], link: &[u8], data: &[u8]) {
        let mut pax: Vec<(&str, &[u8])> = e.pax.clone();
        match e.names {
            Names::Ustar => {}
            Names::Gnu => {
                for (kind, name) in [(b'L', path), (b'K', link)] {
                    if !name.is_empty() {
                        let mut v = name.to_vec();
                        v.push(0);
                        self.header(kind, b"././@LongLink", b"", v.len() as u64, 0o644, 0);
                        self.data(&v);
                    }
                }
            }
            Names::Pax => {
                pax.push(("path", path));
                if !link.is_empty() {
                    pax.push(("linkpath", link));
                }
            }
        }
        if !pax.is_empty() {
            let mut records = Vec::new();
            for (k, v) in pax {
                let body = 3 + k.len() + v.len(); // " k=v\n" but the length itself
                let mut len = body + 1;
                while len != body + len.to_string().len() {
                    len = body + len.to_string().len();
                }
                records.extend_from_slice(format!("{len} {k}=").as_bytes());
                records.extend_from_slice(v);
                records.push(b'\n');
            }
            self.header(b'x', b"PaxHeaders/x", b"", records.len() as u64, 0o644, 0);
            self.data(&records);
        }
        self.header(flag, path, link, data.len() as u64, e.mode, e.uid);
        self.data(data);
    }

    fn finish(mut self) -> (Vec<u8>, Vec<usize>) {
        self.out.resize(self.out.len() + 1024, 0);
        (self.out, self.headers)
    }
}

fn set_checksum(h: &mut [u8]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn mutate(mut data: Vec<u8>, headers: &[usize], ms: &[Mutation], fix: bool) -> Vec<u8> {
    for m in ms {
        match m {
            Mutation::Flip(i, bit) => {
                let at = i.index(data.len());
                data[at] ^= 1 << bit;
            }
            Mutation::Set(i, b) => {
                let at = i.index(data.len());
                data[at] = *b;
            }
            _ => {}
        }
    }
    if fix {
        for &at in headers {
            set_checksum(&mut data[at..at + 512]);
        }
    }
    for m in ms {
        let blocks = data.len() / 512;
        match m {
            Mutation::Truncate(i) => data.truncate(i.index(data.len())),
            Mutation::DuplicateBlock(i) if blocks > 0 => {
                let at = i.index(blocks) * 512;
                let block = data[at..at + 512].to_vec();
                data.splice(at..at, block);
            }
            Mutation::DropBlock(i) if blocks > 0 => {
                let at = i.index(blocks) * 512;
                data.drain(at..at + 512);
            }
            _ => {}
        }
    }
    data
}

fn check(fx: &Fixture, data: Vec<u8>, gzip: bool) -> Result<(), TestCaseError> {
    let before = fx.snapshot();
    let input = if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        gz.finish().unwrap()
    } else {
        data
    };
    let job = Job {
        input: Box::new(std::io::Cursor::new(input)),
        dest: fx.layer(),
        blob: Some(Keep::Tar(fx.blobs.path().join("blob"))),
        lowers: vec![fx.parent.join("lower")],
    };
    // A panic would fail the case here; a refusal must be an error.
    let got = unpack_all(vec![job]).pop().unwrap();
    let after = fx.snapshot();
    let deep = PathBuf::from(["up"; DEPTH].join("/"));
    let changed: BTreeSet<_> =
        before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).map(|k| k.strip_prefix(&deep).unwrap_or(k)).collect();
    prop_assert!(changed.is_empty(), "outside the layer, {changed:?} changed (unpack: {:?})", got.as_ref().map(|u| &u.diff_id));
    if let Err(e) = &got {
        let left: Vec<_> = std::fs::read_dir(fx.layer()).unwrap().map(|e| e.unwrap().file_name()).collect();
        prop_assert!(left.is_empty(), "refused ({e}) but left {left:?}");
    }
    Ok(())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_archives_stay_inside(ents in archive(), gzip in prop::bool::weighted(0.2)) {
        let fx = Fixture::new();
        let (data, _) = fx.build(&ents);
        check(&fx, data, gzip)?;
    }

    #[test]
    fn mutated_archives_stay_inside(ents in archive(), (ms, fix) in mutations()) {
        let fx = Fixture::new();
        let (data, headers) = fx.build(&ents);
        check(&fx, mutate(data, &headers, &ms, fix), false)?;
    }
}

/// The cases a random search may take long to meet, once each: a symlink out and a write
/// through it, relative and absolute; a hardlink to a file outside; `..` and absolute paths,
/// also as PAX and GNU long names; a whiteout of `..` or `.` (which once emptied the directory
/// the layer is unpacked in).
#[test]
fn known_escapes_stay_inside() {
    let at = |base: Base, parts: &[&'static str]| Spec { base, parts: parts.to_vec(), long: false, trailing_slash: false };
    let layer = |parts: &[&'static str]| at(Base::Layer, parts);
    let ent = |path: Spec, kind: Kind, names: Names| Ent { path, kind, names, mode: 0o644, uid: 0, pax: Vec::new() };
    let file = || Kind::File(b"x".to_vec());
    let cases: Vec<Vec<Ent>> = vec![
        vec![ent(layer(&["a"]), Kind::Symlink(at(Base::SentinelAbs, &[])), Names::Ustar), ent(layer(&["a", "f"]), file(), Names::Ustar)],
        vec![ent(layer(&["a"]), Kind::Symlink(at(Base::SentinelUp, &[])), Names::Pax), ent(layer(&["a", "f"]), file(), Names::Gnu)],
        vec![ent(layer(&["a"]), Kind::Symlink(layer(&["..", "sentinel"])), Names::Ustar), ent(layer(&["a", "f"]), Kind::Dir, Names::Ustar)],
        vec![ent(layer(&["a"]), Kind::Symlink(at(Base::SentinelAbs, &[])), Names::Ustar), ent(layer(&["f"]), Kind::Link(layer(&["a", "f"])), Names::Ustar)],
        vec![ent(layer(&["f"]), Kind::Link(at(Base::SentinelUp, &["f"])), Names::Ustar)],
        vec![ent(layer(&["f"]), Kind::Link(at(Base::SentinelAbs, &["f"])), Names::Pax)],
        vec![ent(layer(&["f"]), Kind::Link(at(Base::LowerUp, &["..", "sentinel", "f"])), Names::Gnu)],
        vec![ent(layer(&["f"]), Kind::Link(layer(&["out", "f"])), Names::Ustar)],
        vec![ent(layer(&["f"]), Kind::Link(layer(&["rel", "f"])), Names::Ustar)],
        vec![ent(layer(&["f"]), Kind::Link(layer(&["a", "f"])), Names::Ustar)],
        vec![ent(at(Base::SentinelUp, &["f"]), file(), Names::Pax)],
        vec![ent(at(Base::SentinelAbs, &["f"]), file(), Names::Gnu)],
        vec![ent(layer(&["a", "..", "..", "sentinel", "f"]), file(), Names::Ustar)],
        vec![ent(layer(&["..", "sentinel", ".wh.f"]), Kind::File(Vec::new()), Names::Ustar)],
        vec![ent(layer(&["f"]), file(), Names::Ustar), ent(layer(&[".wh..."]), Kind::File(Vec::new()), Names::Ustar)],
        vec![ent(layer(&["a", "f"]), file(), Names::Ustar), ent(layer(&["a", ".wh..."]), Kind::File(Vec::new()), Names::Ustar)],
        vec![ent(layer(&["a", "f"]), file(), Names::Ustar), ent(layer(&["a", ".wh.."]), Kind::File(Vec::new()), Names::Pax)],
    ];
    for ents in cases {
        let fx = Fixture::new();
        let (data, _) = fx.build(&ents);
        if let Err(e) = check(&fx, data, false) {
            panic!("{ents:?}: {e}");
        }
    }
}
