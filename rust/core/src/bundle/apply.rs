//! Reading a bundle: its header (what it needs, what it rebuilds), each carried layer's tar
//! rebuilt as it is read (for the unpacker, which checks its diff id), and the trailer, whose
//! digest is checked before the caller commits anything.
//!
//! A bundle may be hostile: every op is bounded (a copy within its old layer, a patch at most
//! PATCH_MAX in and out), a layer cannot grow past the size its header gives, and frames are at
//! most MAX_FRAME.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::format::{FrameReader, Header, Kind};
use super::recipe::{truncated, Op, PATCH_MAX};
use crate::error::{Error, IoContext, Result};

type Frames = Arc<Mutex<FrameReader<Box<dyn Read + Send>>>>;

fn bad(what: impl std::fmt::Display) -> Error {
    Error::BadArchive(format!("bundle: {what}"))
}

struct Source {
    path: PathBuf,
    file: File,
    len: u64,
}

pub struct Bundle {
    frames: Frames,
    header: Header,
    sources: Arc<Vec<Source>>,
    /// The carried layers read so far.
    next: usize,
}

impl Bundle {
    pub fn open(inp: Box<dyn Read + Send>) -> Result<Bundle> {
        let mut frames = FrameReader::new(inp)?;
        let header = frames.header()?;
        Ok(Bundle { frames: Arc::new(Mutex::new(frames)), header, sources: Arc::new(Vec::new()), next: 0 })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The old layers' tars on this machine, one per `requires.layers`, in that order.
    pub fn set_sources(&mut self, paths: Vec<PathBuf>) -> Result<()> {
        if paths.len() != self.header.requires.layers.len() {
            return Err(Error::InvalidConfig(format!("{} old layers given for {} required", paths.len(), self.header.requires.layers.len())));
        }
        let sources = paths
            .into_iter()
            .map(|path| {
                let file = File::open(&path).ctx("open", &path)?;
                let len = file.metadata().ctx("stat", &path)?.len();
                Ok(Source { path, file, len })
            })
            .collect::<Result<Vec<_>>>()?;
        self.sources = Arc::new(sources);
        Ok(())
    }

    /// The next carried layer's tar (its header entry, and a reader that rebuilds it). It must be
    /// read to its end before the next one or `finish`.
    pub fn next_layer(&mut self) -> Result<Option<(String, LayerReader)>> {
        let Some(entry) = self.header.layers.iter().filter(|l| l.carried).nth(self.next) else { return Ok(None) };
        self.next += 1;
        let stream = FrameStream { frames: self.frames.clone(), buf: Vec::new(), pos: 0, ended: false };
        let mut dec = zstd::stream::read::Decoder::with_buffer(BufReader::new(stream)).map_err(bad)?;
        dec.window_log_max(31).map_err(bad)?;
        let reader = LayerReader { dec, sources: self.sources.clone(), state: State::Next, made: 0, size: entry.size };
        Ok(Some((entry.diff_id.clone(), reader)))
    }

    /// After the last layer: the trailer, checked. Returns the bundle's digest.
    pub fn finish(self) -> Result<String> {
        if self.next != self.header.layers.iter().filter(|l| l.carried).count() {
            return Err(Error::InvalidConfig("a bundle was finished before its last layer".into()));
        }
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        let f = frames.next()?;
        if f.kind != Kind::Trailer {
            return Err(bad("more after its last layer"));
        }
        Ok(frames.digest().expect("read with the trailer").to_string())
    }
}

/// The payloads of one layer's Ops frames, as one stream, up to its LayerEnd frame.
struct FrameStream {
    frames: Frames,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Read for FrameStream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.ended {
                return Ok(0);
            }
            let f = self.frames.lock().unwrap_or_else(|e| e.into_inner()).next().map_err(std::io::Error::other)?;
            match f.kind {
                Kind::Ops => (self.buf, self.pos) = (f.payload, 0),
                Kind::LayerEnd => self.ended = true,
                _ => return Err(std::io::Error::other(bad("a layer's recipe ends without its end frame"))),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

enum State {
    Next,
    Copy { src: usize, off: u64, left: u64 },
    Lit { left: u64 },
    Made { data: Vec<u8>, pos: usize },
    Done,
}

/// A carried layer's tar, rebuilt from its recipe as it is read.
pub struct LayerReader {
    dec: zstd::stream::read::Decoder<'static, BufReader<FrameStream>>,
    sources: Arc<Vec<Source>>,
    state: State,
    made: u64,
    size: u64,
}

impl LayerReader {
    fn start(&mut self, op: Op) -> Result<()> {
        let source = |src: u32, off: u64, len: u64| -> Result<usize> {
            let s = self.sources.get(src as usize).ok_or_else(|| bad(format!("a recipe draws on old layer {src}, which it does not list")))?;
            if off.checked_add(len).is_none_or(|end| end > s.len) {
                return Err(bad(format!("a recipe reads beyond old layer {}", s.path.display())));
            }
            Ok(src as usize)
        };
        let grow = |by: u64| -> Result<()> {
            if self.made + by > self.size {
                return Err(bad("a layer's recipe makes more than its size"));
            }
            Ok(())
        };
        self.state = match op {
            Op::Copy { src, off, len } => {
                grow(len)?;
                State::Copy { src: source(src, off, len)?, off, left: len }
            }
            Op::Lit { len } => {
                grow(len)?;
                State::Lit { left: len }
            }
            Op::Patch { src, off, len, out, plen } => {
                grow(out)?;
                if len > PATCH_MAX || out > PATCH_MAX || plen > PATCH_MAX {
                    return Err(bad("a patch larger than pyc makes"));
                }
                let s = &self.sources[source(src, off, len)?];
                let mut base = vec![0u8; len as usize];
                s.file.read_exact_at(&mut base, off).ctx("read", &s.path)?;
                let mut data = vec![0u8; plen as usize];
                self.dec.read_exact(&mut data).map_err(truncated)?;
                let mut z = zstd::stream::read::Decoder::with_ref_prefix(data.as_slice(), &base).map_err(bad)?;
                z.window_log_max(31).map_err(bad)?;
                let mut made = Vec::with_capacity(out as usize);
                z.take(out + 1).read_to_end(&mut made).map_err(|e| bad(format!("a patch: {e}")))?;
                if made.len() as u64 != out {
                    return Err(bad("a patch makes another length than its recipe says"));
                }
                State::Made { data: made, pos: 0 }
            }
            Op::End => {
                if self.made != self.size {
                    return Err(bad(format!("a layer's recipe makes {} bytes of its {}", self.made, self.size)));
                }
                // Read the stream to its end frame: nothing may follow END, and the next layer
                // starts after it.
                let mut rest = [0u8; 1];
                if self.dec.read(&mut rest).map_err(truncated)? != 0 {
                    return Err(bad("data after the end of a layer's recipe"));
                }
                State::Done
            }
        };
        Ok(())
    }

    fn step(&mut self, out: &mut [u8]) -> Result<usize> {
        loop {
            let n = match &mut self.state {
                State::Done => return Ok(0),
                State::Next => {
                    let op = Op::read(&mut self.dec)?;
                    self.start(op)?;
                    continue;
                }
                State::Copy { src, off, left } => {
                    let n = (*left).min(out.len() as u64) as usize;
                    let s = &self.sources[*src];
                    s.file.read_exact_at(&mut out[..n], *off).ctx("read", &s.path)?;
                    *off += n as u64;
                    *left -= n as u64;
                    n
                }
                State::Lit { left } => {
                    let want = (*left).min(out.len() as u64) as usize;
                    let n = self.dec.read(&mut out[..want]).map_err(truncated)?;
                    if n == 0 {
                        return Err(bad("a layer's recipe is cut short"));
                    }
                    *left -= n as u64;
                    n
                }
                State::Made { data, pos } => {
                    let n = (data.len() - *pos).min(out.len());
                    out[..n].copy_from_slice(&data[*pos..*pos + n]);
                    *pos += n;
                    n
                }
            };
            if matches!(self.state, State::Copy { left: 0, .. } | State::Lit { left: 0 })
                || matches!(&self.state, State::Made { data, pos } if *pos == data.len())
            {
                self.state = State::Next;
            }
            self.made += n as u64;
            if n > 0 || out.is_empty() {
                return Ok(n);
            }
        }
    }
}

impl Read for LayerReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.step(out).map_err(std::io::Error::other)
    }
}

/// What a bundle holds, read whole and checked (its trailer), without rebuilding anything.
pub struct Inspected {
    pub header: Header,
    /// Per carried layer: its diff id and the bytes its recipe takes.
    pub carried: Vec<(String, u64)>,
    pub size: u64,
    pub digest: String,
}

pub fn inspect(inp: Box<dyn Read + Send>) -> Result<Inspected> {
    let mut frames = FrameReader::new(inp)?;
    let header = frames.header()?;
    let mut size = 12 + 9 + rmp_serde::to_vec_named(&header).map(|b| b.len() as u64).unwrap_or(0);
    let mut carried = Vec::new();
    for entry in header.layers.iter().filter(|l| l.carried) {
        let mut bytes = 0u64;
        loop {
            let f = frames.next()?;
            size += 9 + f.payload.len() as u64;
            match f.kind {
                Kind::Ops => bytes += f.payload.len() as u64,
                Kind::LayerEnd => break,
                _ => return Err(bad("a layer's recipe ends without its end frame")),
            }
        }
        carried.push((entry.diff_id.clone(), bytes));
    }
    let f = frames.next()?;
    if f.kind != Kind::Trailer {
        return Err(bad("more after its last layer"));
    }
    size += 9 + 32;
    Ok(Inspected { header, carried, size, digest: frames.digest().expect("read with the trailer").to_string() })
}
