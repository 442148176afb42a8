use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::codec::Codec;
use crate::error::{IoContext, Result};

/// Hashes and counts what passes through a reader.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), size: 0 }
    }

    /// The reader back, `sha256:<hex>` and the byte count.
    pub fn finish(self) -> (R, String, u64) {
        (self.inner, format!("sha256:{}", hex::encode(self.hasher.finalize())), self.size)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Hashes and counts what passes through a writer.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), size: 0 }
    }

    pub fn finish(self) -> (W, String, u64) {
        (self.inner, format!("sha256:{}", hex::encode(self.hasher.finalize())), self.size)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Write the tar of the layer file `src` (gzip, zstd or plain, told by its first bytes) to
/// `dst`: (its sha256, size). The caller checks the digest against the layer's diff id.
pub fn decompress_file(src: &Path, dst: &Path) -> Result<(String, u64)> {
    use std::io::{BufRead, BufReader};
    let mut input = BufReader::with_capacity(1 << 20, File::open(src).ctx("open", src)?);
    let codec = Codec::of(input.fill_buf().ctx("read", src)?);
    let mut out = HashingWriter::new(File::create(dst).ctx("create", dst)?);
    let bad = |e: io::Error| crate::error::Error::BadArchive(format!("{}: {e}", src.display()));
    match codec {
        Some(codec) => io::copy(&mut codec.decoder(input).map_err(bad)?, &mut out).map_err(bad)?,
        None => io::copy(&mut input, &mut out).ctx("copy", src)?,
    };
    let (f, digest, size) = out.finish();
    f.sync_all().ctx("sync", dst)?;
    Ok((digest, size))
}

pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let f = File::open(path).ctx("open", path)?;
    let mut r = HashingReader::new(f);
    // Big reads: fewer system calls between the SHA-NI rounds than io::copy's 8 KiB.
    let mut buf = vec![0u8; 1 << 20];
    while r.read(&mut buf).ctx("read", path)? > 0 {}
    let (_, digest, size) = r.finish();
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        let mut r = HashingReader::new(&b"abc"[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (_, digest, size) = r.finish();
        assert_eq!((digest, size), ("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string(), 3));
    }
}
