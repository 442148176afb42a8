//! The input side of an unpack on a thread of its own: read, decompress, hash, keep the blob.
//! The other side (parse the tar, write the files) is as much work again; one thread did both
//! in turn, leaving the second core idle on a one-layer load or import.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use sha2::{Digest, Sha256};

use super::digest::HashingReader;
use crate::error::{Error, IoContext, Result};

const CHUNK: usize = 1 << 20;
/// Chunks in flight: enough to ride over a slow file creation, little memory.
const AHEAD: usize = 8;
/// Writeback of the blob starts every this many bytes, so the final sync waits for little.
const WRITEBACK: u64 = 8 << 20;

/// What the input side measured, once it read everything.
pub struct Measured {
    /// sha256 of the uncompressed tar and its length.
    pub diff_id: String,
    pub size: u64,
    /// sha256 of the input as it came (compressed or not).
    pub digest: String,
}

/// The tar stream, as the input side hands it over.
pub struct Chunks {
    full: Receiver<io::Result<Vec<u8>>>,
    empty: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.cur.len() {
            let done = std::mem::take(&mut self.cur);
            if done.capacity() > 0 {
                let _ = self.empty.try_send(done); // recycled: no 1 MiB allocation per chunk
            }
            match self.full.recv() {
                Ok(chunk) => self.cur = chunk?,
                Err(_) => return Ok(0), // the input ended
            }
            self.pos = 0;
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Start reading `input` (tar, gzip or zstd, told by its first bytes) on a thread of `scope`,
/// writing the uncompressed tar to `blob` too. The thread reads to the end even after the
/// reader of the chunks stops (the digests cover the whole input), unless `abort` is set:
/// then it stops and gives None.
pub fn start<'s, 'e, R: Read + Send + 's>(
    scope: &'s Scope<'s, 'e>,
    input: R,
    blob: Option<(&'s File, &'s Path)>,
    abort: &'s AtomicBool,
) -> (Chunks, ScopedJoinHandle<'s, Result<Option<Measured>>>) {
    let (full_tx, full) = sync_channel(AHEAD);
    let (empty, empty_rx) = sync_channel(AHEAD + 2);
    let side = Side { full: Some(full_tx), empty: empty_rx, blob, abort, written: 0, synced: 0 };
    let handle = scope.spawn(move || side.run(input));
    (Chunks { full, empty, cur: Vec::new(), pos: 0 }, handle)
}

struct Side<'a> {
    full: Option<SyncSender<io::Result<Vec<u8>>>>,
    empty: Receiver<Vec<u8>>,
    blob: Option<(&'a File, &'a Path)>,
    abort: &'a AtomicBool,
    written: u64,
    synced: u64,
}

impl Side<'_> {
    fn run(mut self, input: impl Read) -> Result<Option<Measured>> {
        let mut input = BufReader::with_capacity(CHUNK, input);
        let mut head = [0u8; 4];
        let peek = input.fill_buf().map_err(|e| self.fail("read archive", e))?;
        head[..peek.len().min(4)].copy_from_slice(&peek[..peek.len().min(4)]);
        let compressed = matches!(head, [0x1f, 0x8b, _, _] | [0x28, 0xb5, 0x2f, 0xfd]);
        if !compressed {
            // The tar is the input: one hash names it both ways.
            let pumped = self.pump(&mut input, "archive")?;
            return Ok(pumped.map(|(diff_id, size)| Measured { digest: diff_id.clone(), diff_id, size }));
        }
        // The peeked bytes stay in the buffer: they pass through the hasher like the rest.
        let mut raw = HashingReader::new(input);
        let pumped = if head[0] == 0x1f {
            self.pump(&mut flate2::read::MultiGzDecoder::new(&mut raw), "gzip")?
        } else {
            let mut zst = zstd::Decoder::new(&mut raw).map_err(|e| self.fail("zstd", e))?;
            self.pump(&mut zst, "zstd")?
        };
        let Some((diff_id, size)) = pumped else { return Ok(None) };
        // What the decompressor left unread belongs to the input's digest too.
        io::copy(&mut raw, &mut io::sink()).map_err(|e| self.fail("read archive", e))?;
        let (_, digest, _) = raw.finish();
        Ok(Some(Measured { diff_id, size, digest }))
    }

    /// Copy the tar stream to the chunks and the blob, hashing it.
    fn pump(&mut self, tar: &mut impl Read, what: &str) -> Result<Option<(String, u64)>> {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            if self.abort.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let mut buf = self.empty.try_recv().unwrap_or_default();
            buf.resize(CHUNK, 0);
            let n = fill(tar, &mut buf).map_err(|e| self.fail(&format!("read {what}"), e))?;
            if n == 0 {
                self.full = None; // the reader sees the end
                return Ok(Some((format!("sha256:{}", hex::encode(hasher.finalize())), size)));
            }
            buf.truncate(n);
            hasher.update(&buf);
            size += n as u64;
            self.keep(&buf)?;
            if let Some(tx) = &self.full {
                if tx.send(Ok(buf)).is_err() {
                    self.full = None; // the reader is done: go on hashing alone
                }
            }
        }
    }

    fn keep(&mut self, data: &[u8]) -> Result<()> {
        let Some((mut f, path)) = self.blob else { return Ok(()) };
        f.write_all(data).ctx("write", path)?;
        self.written += data.len() as u64;
        if self.written - self.synced >= WRITEBACK {
            // A hint: start writing back what is complete; the final sync waits for the rest.
            unsafe { libc::sync_file_range(f.as_raw_fd(), self.synced as i64, (self.written - self.synced) as i64, libc::SYNC_FILE_RANGE_WRITE) };
            self.synced = self.written;
        }
        Ok(())
    }

    /// The error as the reader of the chunks sees it too (its tar parse stops there).
    fn fail(&mut self, what: &str, e: io::Error) -> Error {
        let msg = format!("{what}: {e}");
        if let Some(tx) = self.full.take() {
            let _ = tx.send(Err(io::Error::new(e.kind(), msg.clone())));
        }
        Error::BadArchive(msg)
    }
}

/// Read until `buf` is full or the input ends (decompressors return short reads).
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::unpack::unpack;
    use crate::error::Error;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    fn tar_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, path, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn sha(data: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(data)))
    }

    #[test]
    fn the_digests_cover_what_follows_the_end_of_the_archive() {
        // Several chunks of files, then bytes past the end-of-archive blocks that the tar
        // parse never reads: the blob and the diff id still hold them.
        let mut data = tar_of(&[("a", vec![7u8; 3 << 20]), ("b", vec![8u8; 100])]);
        data.extend_from_slice(&[0u8; 10240]);
        let dir = tempfile::tempdir().unwrap();
        let (dest, blob) = (dir.path().join("root"), dir.path().join("blob"));
        std::fs::create_dir(&dest).unwrap();
        let got = unpack(&data[..], &dest, Some(&blob)).unwrap();
        assert_eq!((got.diff_id.as_str(), got.size), (sha(&data).as_str(), data.len() as u64));
        assert_eq!(std::fs::read(&blob).unwrap(), data);
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), vec![7u8; 3 << 20]);
    }

    #[test]
    fn a_compressed_input_is_named_by_both_digests() {
        let data = tar_of(&[("x", vec![1u8; 2 << 20])]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let got = unpack(&gz[..], dir.path(), None).unwrap();
        assert_eq!((got.diff_id, got.digest), (sha(&data), sha(&gz)));
    }

    #[test]
    fn a_corrupt_stream_is_named_and_leaves_nothing() {
        let data = tar_of(&[("x", vec![1u8; 2 << 20]), ("y", vec![2u8; 2 << 20])]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let mut gz = gz.finish().unwrap();
        let half = gz.len() / 2;
        gz[half..].iter_mut().for_each(|b| *b ^= 0x5a);
        let dir = tempfile::tempdir().unwrap();
        match unpack(&gz[..], dir.path(), None) {
            Err(Error::BadArchive(m)) => assert!(m.starts_with("read gzip: "), "{m}"),
            other => panic!("{:?}", other.map(|u| u.diff_id)),
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_refused_entry_is_what_is_reported() {
        // The unsafe entry comes early, 64 MiB follow: the unpack side's refusal is the error
        // (the input side, told to stop, gives none of its own).
        let mut data = tar_of(&[("ok", vec![0u8; 10])]);
        data.truncate(data.len() - 1024); // drop the end-of-archive blocks
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..6].copy_from_slice(b"../out"); // the builder would refuse it
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        data.extend_from_slice(h.as_bytes());
        data.resize(data.len() + (64 << 20), 0);
        let dir = tempfile::tempdir().unwrap();
        match unpack(&data[..], dir.path(), None) {
            Err(Error::BadArchive(m)) => assert!(m.contains("leads outside the layer"), "{m}"),
            other => panic!("{:?}", other.map(|u| u.diff_id)),
        }
    }
}
