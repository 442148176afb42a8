//! The bundle's bytes: `PYCDELTA`, a format version (u32, little-endian), then frames (a kind
//! byte, a u64 little-endian length, the payload), the first a header, the last a trailer
//! holding the sha256 of every byte before the trailer frame: the bundle's digest.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"PYCDELTA";
pub const FORMAT_VERSION: u32 = 1;
/// No frame is larger: a hostile bundle cannot make the reader allocate more than this at once.
pub const MAX_FRAME: u64 = 64 << 20;
/// Ops frames are cut at this size, so a layer's recipe streams without being held whole.
pub const OPS_FRAME: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Header = 1,
    Ops = 2,
    LayerEnd = 3,
    Trailer = 9,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        [Kind::Header, Kind::Ops, Kind::LayerEnd, Kind::Trailer].into_iter().find(|k| *k as u8 == b)
    }
}

/// What a bundle says of itself, before any layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub images: Vec<BundleImage>,
    pub requires: Requires,
    /// Every layer of the bundle's images, once each, in the order carried ones follow.
    pub layers: Vec<LayerEntry>,
}

/// An image the bundle rebuilds: its manifest and config as bytes (their digests are the image's
/// identity, so they travel as they are), and its names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleImage {
    pub names: Vec<String>,
    pub manifest_digest: String,
    pub manifest: String,
    pub config: String,
    pub diff_ids: Vec<String>,
}

/// What must be on the machine that applies the bundle: the old images named when it was made
/// (by image ID), and their layers, by diff id. The recipes' sources are indexes into `layers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Requires {
    pub images: Vec<String>,
    /// How the user named each of `images` when the bundle was made, for messages.
    pub names: Vec<String>,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEntry {
    pub diff_id: String,
    /// The layer tar's size.
    pub size: u64,
    /// false: one of the old images' layers, which the target has.
    pub carried: bool,
}

fn bad(what: impl std::fmt::Display) -> Error {
    Error::BadArchive(format!("bundle: {what}"))
}

pub struct FrameWriter<W: Write> {
    out: W,
    hash: Sha256,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(out: W) -> Result<Self> {
        let mut w = FrameWriter { out, hash: Sha256::new() };
        w.put(MAGIC)?;
        w.put(&FORMAT_VERSION.to_le_bytes())?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes).map_err(|e| Error::io("write", "bundle", e))
    }

    pub fn frame(&mut self, kind: Kind, payload: &[u8]) -> Result<()> {
        self.put(&[kind as u8])?;
        self.put(&(payload.len() as u64).to_le_bytes())?;
        self.put(payload)
    }

    pub fn header(&mut self, h: &Header) -> Result<()> {
        let bytes = rmp_serde::to_vec_named(h).map_err(|e| bad(e.to_string()))?;
        self.frame(Kind::Header, &bytes)
    }

    /// The trailer: the digest of all that came before. Returns it (`sha256:<hex>`).
    pub fn finish(mut self) -> Result<String> {
        let digest = std::mem::take(&mut self.hash).finalize();
        self.out
            .write_all(&[Kind::Trailer as u8])
            .and_then(|()| self.out.write_all(&32u64.to_le_bytes()))
            .and_then(|()| self.out.write_all(&digest))
            .map_err(|e| Error::io("write", "bundle", e))?;
        self.out.flush().map_err(|e| Error::io("write", "bundle", e))?;
        Ok(format!("sha256:{}", hex::encode(digest)))
    }
}

pub struct Frame {
    pub kind: Kind,
    pub payload: Vec<u8>,
}

pub struct FrameReader<R: Read> {
    inp: R,
    hash: Sha256,
    /// Set once the trailer was read and matched.
    digest: Option<String>,
}

impl<R: Read> FrameReader<R> {
    pub fn new(mut inp: R) -> Result<Self> {
        let mut head = [0u8; 12];
        read_exact(&mut inp, &mut head, "its start")?;
        if &head[..8] != MAGIC {
            return Err(bad("not a pyc delta bundle (no PYCDELTA at its start)"));
        }
        let version = u32::from_le_bytes(head[8..].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(bad(format!("format version {version}; this pyc reads version {FORMAT_VERSION}")));
        }
        let mut hash = Sha256::new();
        hash.update(head);
        Ok(FrameReader { inp, hash, digest: None })
    }

    pub fn next(&mut self) -> Result<Frame> {
        if self.digest.is_some() {
            return Err(bad("data after its trailer"));
        }
        let mut head = [0u8; 9];
        read_exact(&mut self.inp, &mut head, "a frame")?;
        let kind = Kind::from_u8(head[0]).ok_or_else(|| bad(format!("unknown frame kind {}", head[0])))?;
        let len = u64::from_le_bytes(head[1..].try_into().expect("8 bytes"));
        if len > MAX_FRAME {
            return Err(bad(format!("a frame of {len} bytes, more than {MAX_FRAME}")));
        }
        let mut payload = vec![0u8; len as usize];
        read_exact(&mut self.inp, &mut payload, "a frame")?;
        if kind == Kind::Trailer {
            let want = std::mem::take(&mut self.hash).finalize();
            if payload.as_slice() != want.as_slice() {
                return Err(bad("its digest does not match its content (corrupted)"));
            }
            // Nothing may follow the trailer.
            let mut extra = [0u8; 1];
            if self.inp.read(&mut extra).map_err(|e| Error::io("read", "bundle", e))? != 0 {
                return Err(bad("data after its trailer"));
            }
            self.digest = Some(format!("sha256:{}", hex::encode(want)));
        } else {
            self.hash.update(head);
            self.hash.update(&payload);
        }
        Ok(Frame { kind, payload })
    }

    pub fn header(&mut self) -> Result<Header> {
        let f = self.next()?;
        if f.kind != Kind::Header {
            return Err(bad("its first frame is not a header"));
        }
        let h: Header = rmp_serde::from_slice(&f.payload).map_err(|e| bad(format!("unreadable header: {e}")))?;
        if h.version != FORMAT_VERSION {
            return Err(bad(format!("header version {}", h.version)));
        }
        Ok(h)
    }

    /// The digest, once the trailer has been read and checked.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => bad(format!("cut short (in {what})")),
        _ => Error::io("read", "bundle", e),
    })
}
