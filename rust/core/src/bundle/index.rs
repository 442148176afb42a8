//! What the old layers hold, for create.rs to find in a new layer: every regular file's content
//! by its hash, by its path, and cut into content-defined chunks (FastCDC: the cuts follow the
//! content, so a chunk is found again after an insertion shifted everything behind it).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

/// Where bytes are in the old layers: layer `src`'s tar, `len` bytes from `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub src: u32,
    pub off: u64,
    pub len: u64,
}

pub const CHUNK_MIN: u32 = 2 << 10;
pub const CHUNK_AVG: u32 = 8 << 10;
pub const CHUNK_MAX: u32 = 64 << 10;

pub type ChunkKey = [u8; 16];

pub fn chunk_key(bytes: &[u8]) -> ChunkKey {
    Sha256::digest(bytes)[..16].try_into().expect("16 bytes")
}

pub fn whole_key(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The chunks FastCDC cuts `bytes` into: (offset, length).
pub fn chunks(bytes: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    fastcdc::v2020::FastCDC::new(bytes, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX).map(|c| (c.offset, c.length))
}

pub struct Index {
    sources: Vec<(PathBuf, File)>,
    whole: HashMap<[u8; 32], Loc>,
    chunks: HashMap<ChunkKey, Loc>,
    /// The last file at each path (later sources win, as the layers stack).
    paths: HashMap<Vec<u8>, Loc>,
    /// The tar header block of the last entry at each path, whatever its type.
    headers: HashMap<Vec<u8>, Loc>,
    /// Per source, each file's (offset, length), in order: which file a found chunk lies in.
    files: Vec<Vec<(u64, u64)>>,
}

impl Index {
    /// Index the old layers' tars, bottom-most first.
    pub fn build(sources: &[PathBuf]) -> Result<Index> {
        let mut ix =
            Index { sources: Vec::new(), whole: HashMap::new(), chunks: HashMap::new(), paths: HashMap::new(), headers: HashMap::new(), files: Vec::new() };
        let mut content = Vec::new();
        for (src, path) in sources.iter().enumerate() {
            let src = src as u32;
            let file = File::open(path).ctx("open", path)?;
            let mut files = Vec::new();
            let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file.try_clone().ctx("dup", path)?));
            for entry in archive.entries().map_err(|e| bad_layer(path, e))? {
                let mut entry = entry.map_err(|e| bad_layer(path, e))?;
                ix.headers.insert(entry.path_bytes().into_owned(), Loc { src, off: entry.raw_header_position(), len: 512 });
                if !entry.header().entry_type().is_file() || entry.size() == 0 {
                    continue;
                }
                let loc = Loc { src, off: entry.raw_file_position(), len: entry.size() };
                content.clear();
                entry.read_to_end(&mut content).map_err(|e| bad_layer(path, e))?;
                ix.paths.insert(entry.path_bytes().into_owned(), loc);
                ix.whole.entry(whole_key(&content)).or_insert(loc);
                if content.len() >= CHUNK_MIN as usize {
                    for (off, len) in chunks(&content) {
                        ix.chunks.entry(chunk_key(&content[off..off + len])).or_insert(Loc { src, off: loc.off + off as u64, len: len as u64 });
                    }
                }
                files.push((loc.off, loc.len));
            }
            ix.files.push(files);
            ix.sources.push((path.clone(), file));
        }
        Ok(ix)
    }

    pub fn whole(&self, content: &[u8]) -> Option<Loc> {
        self.whole.get(&whole_key(content)).copied()
    }

    pub fn chunk(&self, key: &ChunkKey) -> Option<Loc> {
        self.chunks.get(key).copied()
    }

    pub fn header(&self, path: &[u8]) -> Option<Loc> {
        self.headers.get(path).copied()
    }

    pub fn path(&self, path: &[u8]) -> Option<Loc> {
        self.paths.get(path).copied()
    }

    /// The file a span of an old layer lies in.
    pub fn file_of(&self, at: Loc) -> Option<Loc> {
        let files = self.files.get(at.src as usize)?;
        let i = files.partition_point(|&(off, _)| off <= at.off).checked_sub(1)?;
        let (off, len) = files[i];
        (at.off + at.len <= off + len).then_some(Loc { src: at.src, off, len })
    }

    /// The bytes of a span of an old layer.
    pub fn read(&self, at: Loc) -> Result<Vec<u8>> {
        let (path, file) = &self.sources[at.src as usize];
        let mut buf = vec![0u8; at.len as usize];
        file.read_exact_at(&mut buf, at.off).ctx("read", path)?;
        Ok(buf)
    }
}

fn bad_layer(path: &Path, e: std::io::Error) -> Error {
    Error::BadArchive(format!("layer {}: {e}", path.display()))
}
