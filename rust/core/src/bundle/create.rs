//! Writing a bundle: the header, then each carried layer's recipe (recipe.rs), then the trailer.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::format::{BundleImage, FrameWriter, Header, Kind, LayerEntry, Requires, FORMAT_VERSION, OPS_FRAME};
use super::index::{chunk_key, chunks, Index, Loc, CHUNK_MIN};
use super::recipe::{Op, PATCH_MAX};
use crate::error::{Error, IoContext, Result};

/// A layer of the new images: its diff id and its tar in the store.
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub diff_id: String,
    pub blob: PathBuf,
}

#[derive(Debug)]
pub struct Created {
    pub digest: String,
    /// Per carried layer, the bytes its recipe takes in the bundle.
    pub carried: Vec<(String, u64)>,
}

/// zstd levels: the recipe stream (literals, mostly tar headers and new files), and the patches
/// of changed files against their old versions, where a higher level pays off most.
const STREAM_LEVEL: i32 = 12;
const PATCH_LEVEL: i32 = 17;
/// Below this many bytes a changed file is not worth a patch: its chunks go as they are.
const PATCH_MIN: usize = 4 << 10;

/// Write a bundle that rebuilds `images` (whose layers are `layers`, each once, bottom-most
/// first) from the old layers `old_layers` (diff id, tar; the layers of the images named by
/// `old_images`, IDs, known to users as `old_names`). `progress` is told the bytes of new layers done so far.
pub fn create(
    images: Vec<BundleImage>,
    old_images: Vec<String>,
    old_names: Vec<String>,
    old_layers: Vec<(String, PathBuf)>,
    layers: Vec<NewLayer>,
    out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Created> {
    let mut seen = HashSet::new();
    let sources: Vec<(String, PathBuf)> = old_layers.into_iter().filter(|(d, _)| seen.insert(d.clone())).collect();
    let old: HashSet<&str> = sources.iter().map(|(d, _)| d.as_str()).collect();
    let mut entries = Vec::new();
    let mut carried_layers = Vec::new();
    let mut seen = HashSet::new();
    for l in layers.iter().filter(|l| seen.insert(l.diff_id.clone())) {
        let size = std::fs::metadata(&l.blob).ctx("stat", &l.blob)?.len();
        let carried = !old.contains(l.diff_id.as_str());
        entries.push(LayerEntry { diff_id: l.diff_id.clone(), size, carried });
        if carried {
            carried_layers.push(l);
        }
    }
    let header = Header {
        version: FORMAT_VERSION,
        images,
        requires: Requires { images: old_images, names: old_names, layers: sources.iter().map(|(d, _)| d.clone()).collect() },
        layers: entries,
    };
    let mut w = FrameWriter::new(out)?;
    w.header(&header)?;
    let index = if carried_layers.is_empty() { None } else { Some(Index::build(&sources.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>())?) };
    let mut carried = Vec::new();
    let mut done = 0u64;
    for l in carried_layers {
        let bytes = encode_layer(l, index.as_ref().expect("built when a layer is carried"), &mut w, &mut |n| progress(done + n))?;
        done += std::fs::metadata(&l.blob).ctx("stat", &l.blob)?.len();
        carried.push((l.diff_id.clone(), bytes));
    }
    Ok(Created { digest: w.finish()?, carried })
}

/// The recipe stream of one layer, cut into Ops frames.
struct OpsSink<'a, W: Write> {
    w: &'a mut FrameWriter<W>,
    buf: Vec<u8>,
    total: u64,
}

impl<W: Write> Write for OpsSink<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= OPS_FRAME {
            self.w.frame(Kind::Ops, &self.buf[..OPS_FRAME]).map_err(std::io::Error::other)?;
            self.buf.drain(..OPS_FRAME);
            self.total += OPS_FRAME as u64;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> OpsSink<'_, W> {
    fn finish(mut self) -> Result<u64> {
        if !self.buf.is_empty() {
            self.w.frame(Kind::Ops, &self.buf)?;
            self.total += self.buf.len() as u64;
        }
        self.w.frame(Kind::LayerEnd, &[])?;
        Ok(self.total)
    }
}

/// Writes ops, joining copies of adjacent old bytes into one.
struct Emitter<Z: Write> {
    out: Z,
    copy: Option<Loc>,
}

impl<Z: Write> Emitter<Z> {
    fn flush_copy(&mut self) -> std::io::Result<()> {
        if let Some(c) = self.copy.take() {
            Op::Copy { src: c.src, off: c.off, len: c.len }.write(&mut self.out)?;
        }
        Ok(())
    }

    fn copy(&mut self, at: Loc) -> std::io::Result<()> {
        match &mut self.copy {
            Some(c) if c.src == at.src && c.off + c.len == at.off => c.len += at.len,
            _ => {
                self.flush_copy()?;
                self.copy = Some(at);
            }
        }
        Ok(())
    }

    fn lit(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.flush_copy()?;
        Op::Lit { len: bytes.len() as u64 }.write(&mut self.out)?;
        self.out.write_all(bytes)
    }

    fn patch(&mut self, base: Loc, out: u64, data: &[u8]) -> std::io::Result<()> {
        self.flush_copy()?;
        Op::Patch { src: base.src, off: base.off, len: base.len, out, plen: data.len() as u64 }.write(&mut self.out)?;
        self.out.write_all(data)
    }

    fn end(mut self) -> std::io::Result<Z> {
        self.flush_copy()?;
        Op::End.write(&mut self.out)?;
        Ok(self.out)
    }
}

fn io_err(e: std::io::Error) -> Error {
    Error::io("write", "bundle", e)
}

fn encode_layer<W: Write>(layer: &NewLayer, index: &Index, w: &mut FrameWriter<W>, progress: &mut dyn FnMut(u64)) -> Result<u64> {
    let path = &layer.blob;
    let file = File::open(path).ctx("open", path)?;
    let size = file.metadata().ctx("stat", path)?.len();
    let sink = OpsSink { w, buf: Vec::with_capacity(OPS_FRAME), total: 0 };
    let mut z = zstd::stream::write::Encoder::new(sink, STREAM_LEVEL).map_err(io_err)?;
    z.long_distance_matching(true).map_err(io_err)?;
    let mut em = Emitter { out: z, copy: None };
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file.try_clone().ctx("dup", path)?));
    let mut pos = 0u64;
    let mut content = Vec::new();
    for entry in archive.entries().map_err(|e| bad_layer(layer, e))? {
        let mut entry = entry.map_err(|e| bad_layer(layer, e))?;
        // The header block: a copy of the old one at the same path when they are the same bytes
        // (most are: an unchanged file keeps its mode, owner and mtime).
        let at = entry.raw_header_position();
        lit_range(&mut em, &file, pos, at, layer)?;
        let mut header = [0u8; 512];
        file.read_exact_at(&mut header, at).ctx("read", &layer.blob)?;
        match index.header(&entry.path_bytes()).filter(|&old| index.read(old).is_ok_and(|b| b == header)) {
            Some(old) => em.copy(old),
            None => em.lit(&header),
        }
        .map_err(io_err)?;
        pos = at + 512;
        if !entry.header().entry_type().is_file() || entry.size() == 0 {
            continue;
        }
        let start = entry.raw_file_position();
        lit_range(&mut em, &file, pos, start, layer)?;
        content.clear();
        entry.read_to_end(&mut content).map_err(|e| bad_layer(layer, e))?;
        encode_content(&mut em, index, &content, &entry.path_bytes())?;
        pos = start + content.len() as u64;
        progress(pos);
    }
    lit_range(&mut em, &file, pos, size, layer)?;
    let z = em.end().map_err(io_err)?;
    let sink = z.finish().map_err(io_err)?;
    progress(size);
    sink.finish()
}

/// The layer's own bytes `from..to` (tar headers, padding, the end blocks), as literals.
fn lit_range<Z: Write>(em: &mut Emitter<Z>, file: &File, mut from: u64, to: u64, layer: &NewLayer) -> Result<()> {
    let mut buf = vec![0u8; (to.saturating_sub(from)).min(1 << 20) as usize];
    while from < to {
        let n = ((to - from) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], from).ctx("read", &layer.blob)?;
        em.lit(&buf[..n]).map_err(io_err)?;
        from += n as u64;
    }
    Ok(())
}

/// One regular file's content: a copy of an old file with the same bytes; else the chunks found
/// in old layers copied and, where enough is new and an old version exists (same path, or the
/// file its chunks came from), a patch against it when that is smaller; else new chunks as they are.
fn encode_content<Z: Write>(em: &mut Emitter<Z>, index: &Index, content: &[u8], path: &[u8]) -> Result<()> {
    if let Some(at) = index.whole(content) {
        return em.copy(at).map_err(io_err);
    }
    let cuts: Vec<(usize, usize)> = if content.len() >= CHUNK_MIN as usize { chunks(content).collect() } else { vec![(0, content.len())] };
    let found: Vec<Option<Loc>> = cuts.iter().map(|&(off, len)| index.chunk(&chunk_key(&content[off..off + len]))).collect();
    let new_bytes: usize = cuts.iter().zip(&found).filter(|(_, f)| f.is_none()).map(|(&(_, len), _)| len).sum();
    let base = index.path(path).or_else(|| found.iter().flatten().next().and_then(|&at| index.file_of(at)));
    if let Some(base) = base.filter(|b| new_bytes >= PATCH_MIN && b.len <= PATCH_MAX && content.len() as u64 <= PATCH_MAX) {
        let data = patch(&index.read(base)?, content)?;
        if data.len() < new_bytes {
            return em.patch(base, content.len() as u64, &data).map_err(io_err);
        }
    }
    for (&(off, len), at) in cuts.iter().zip(&found) {
        match at {
            Some(at) => em.copy(*at),
            None => em.lit(&content[off..off + len]),
        }
        .map_err(io_err)?;
    }
    Ok(())
}

/// `target` as a zstd frame with `base` as its reference prefix (zstd's --patch-from).
pub fn patch(base: &[u8], target: &[u8]) -> Result<Vec<u8>> {
    let mut z = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), PATCH_LEVEL, base).map_err(io_err)?;
    z.window_log(window_log(base.len() + target.len())).map_err(io_err)?;
    z.long_distance_matching(true).map_err(io_err)?;
    z.set_pledged_src_size(Some(target.len() as u64)).map_err(io_err)?;
    z.write_all(target).map_err(io_err)?;
    z.finish().map_err(io_err)
}

/// A window that reaches from the end of the target back over the whole reference.
pub fn window_log(span: usize) -> u32 {
    (usize::BITS - span.max(1).leading_zeros()).clamp(17, 30)
}

fn bad_layer(layer: &NewLayer, e: std::io::Error) -> Error {
    Error::BadArchive(format!("layer {}: {e}", layer.diff_id))
}
