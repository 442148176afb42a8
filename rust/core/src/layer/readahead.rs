//! The input side of an unpack, on threads of its own: one reads and decompresses, one hashes
//! the tar and keeps it as the blob, while the caller parses the tar and writes the files. One
//! thread did all of it in turn, leaving the second core idle on a one-layer load or import.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SendError, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use sha2::{Digest, Sha256};

use super::codec::Codec;
use crate::error::{Error, IoContext, Result};

const CHUNK: usize = 1 << 20;
/// A compressed input is handed to the decompressor in pieces this big: small enough that it
/// starts at once, large enough that the hand-over costs nothing.
const FETCH: usize = 256 << 10;
/// Chunks in flight between two threads: enough to ride over a slow file creation.
const AHEAD: usize = 4;
/// Writeback of the blob starts every this many bytes, so the final sync waits for little.
const WRITEBACK: u64 = 8 << 20;

type Chunk = io::Result<Vec<u8>>;

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
    full: Receiver<Chunk>,
    empty: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.cur.len() {
            let done = std::mem::take(&mut self.cur);
            self.pos = 0;
            if done.capacity() > 0 {
                let _ = self.empty.try_send(done); // recycled: no 1 MiB allocation per chunk
            }
            match self.full.recv() {
                Ok(chunk) => self.cur = chunk?,
                Err(_) => return Ok(0), // the input ended (the join tells whether well)
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The two threads, to be joined once the chunks are read.
pub struct Sides<'s> {
    input: ScopedJoinHandle<'s, Result<Input>>,
    tar: ScopedJoinHandle<'s, Result<Option<(String, u64)>>>,
}

enum Input {
    Plain,
    /// The digest of the compressed input.
    Compressed(String),
    Stopped,
}

impl Sides<'_> {
    /// What was measured; None if `abort` stopped the threads. A read or decompression error
    /// comes first: it says more than what failed after it.
    pub fn join(self) -> Result<Option<Measured>> {
        let input = self.input.join().unwrap_or_else(|_| Err(panicked()));
        let tar = self.tar.join().unwrap_or_else(|_| Err(panicked()));
        let input = input?;
        let Some((diff_id, size)) = tar? else { return Ok(None) };
        Ok(match input {
            Input::Plain => Some(Measured { digest: diff_id.clone(), diff_id, size }),
            Input::Compressed(digest) => Some(Measured { diff_id, size, digest }),
            Input::Stopped => None,
        })
    }
}

fn panicked() -> Error {
    Error::BadArchive("a reading thread panicked".into())
}

/// What the input side keeps, beside handing the tar on.
pub enum Kept<'a> {
    /// The uncompressed tar.
    Tar(Blob<'a>),
    /// The input as it came (for a plain tar input, the same bytes).
    Input(Blob<'a>),
}

pub type Blob<'a> = (&'a File, &'a Path);

/// Start reading `input` (tar, gzip or zstd, told by its first bytes) on threads of `scope`,
/// writing what `kept` says to its file too. They read to the end even after the reader of
/// the chunks stops (the digests cover the whole input), unless `abort` is set.
pub fn start<'s, 'e, R: Read + Send + 's>(scope: &'s Scope<'s, 'e>, input: R, kept: Option<Kept<'s>>, abort: &'s AtomicBool) -> (Chunks, Sides<'s>) {
    let (raw_tx, raw_rx) = sync_channel(AHEAD);
    let (full_tx, full) = sync_channel(AHEAD);
    let (empty, empty_rx) = sync_channel(3 * AHEAD);
    let (tar_blob, input_blob) = match kept {
        Some(Kept::Tar(b)) => (Some(b), None),
        Some(Kept::Input(b)) => (None, Some(b)),
        None => (None, None),
    };
    let reader = Reader { out: Some(raw_tx), empty: empty_rx, abort, keep: input_blob.map(BlobWriter::new) };
    let keeper = Keeper { from: raw_rx, to: Some(full_tx), empty: empty.clone(), blob: tar_blob.map(BlobWriter::new), abort };
    let sides = Sides { input: scope.spawn(move || reader.run(scope, input)), tar: scope.spawn(move || keeper.run()) };
    (Chunks { full, empty, cur: Vec::new(), pos: 0 }, sides)
}

/// Reads the input and decompresses it into chunks of tar. A compressed input is fetched by a
/// thread of its own (`Fetcher`), so that the decompression, the slowest step of a pull or a
/// load, does nothing else.
struct Reader<'a> {
    out: Option<SyncSender<Chunk>>,
    empty: Receiver<Vec<u8>>,
    abort: &'a AtomicBool,
    /// Where the input is kept as it came, if asked.
    keep: Option<BlobWriter<'a>>,
}

impl<'a> Reader<'a> {
    fn run<'e, R: Read + Send + 'a>(mut self, scope: &'a Scope<'a, 'e>, input: R) -> Result<Input> {
        let mut input = BufReader::with_capacity(CHUNK, input);
        let mut head = [0u8; 4];
        let peek = input.fill_buf().map_err(|e| self.fail("read archive", e))?;
        head[..peek.len().min(4)].copy_from_slice(&peek[..peek.len().min(4)]);
        let Some(codec) = Codec::of(&head) else {
            // The tar is the input: the other thread's hash names it both ways.
            return Ok(if self.pump(&mut input, "archive")? { Input::Plain } else { Input::Stopped });
        };
        // The peeked bytes stay in the buffer: they pass through the fetcher like the rest.
        let (raw_tx, raw_rx) = sync_channel(AHEAD);
        let (back, back_rx) = sync_channel(3 * AHEAD);
        let fetcher = Fetcher { out: raw_tx, empty: back_rx, keep: self.keep.take(), abort: self.abort };
        let fetched = scope.spawn(move || fetcher.run(input));
        let mut raw = Chunks { full: raw_rx, empty: back, cur: Vec::new(), pos: 0 };
        let mut tar = codec.decoder(&mut raw).map_err(|e| self.fail(codec.name(), e))?;
        let done = self.pump(&mut tar, codec.name())?;
        drop(tar);
        if !done {
            return Ok(Input::Stopped);
        }
        // What the decompressor left unread belongs to the input's digest too.
        io::copy(&mut raw, &mut io::sink()).map_err(|e| self.fail("read archive", e))?;
        drop(raw);
        Ok(match fetched.join().unwrap_or_else(|_| Err(panicked()))? {
            Some(digest) => Input::Compressed(digest),
            None => Input::Stopped,
        })
    }

    /// Send the tar stream on in chunks; false if told to stop.
    fn pump(&mut self, tar: &mut impl Read, what: &str) -> Result<bool> {
        loop {
            let Some(out) = self.out.clone() else { return Ok(false) };
            if self.abort.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let mut buf = self.empty.try_recv().unwrap_or_default();
            buf.resize(CHUNK, 0);
            let n = match fill(tar, &mut buf) {
                Ok(n) => n,
                // Told to stop, the fetcher ended the input midway: not an error of the input.
                Err(_) if self.abort.load(Ordering::Relaxed) => return Ok(false),
                Err(e) => return Err(self.fail(&format!("read {what}"), e)),
            };
            if n == 0 {
                self.out = None; // the end, for the threads after this one
                return Ok(true);
            }
            buf.truncate(n);
            if let Some(keep) = &mut self.keep {
                keep.write(&buf)?; // a plain input, kept as it came: the tar itself
            }
            if out.send(Ok(buf)).is_err() {
                return Ok(false); // the other side stopped (its error is its own)
            }
        }
    }

    /// The error, passed on too: the tar parse after it stops there.
    fn fail(&mut self, what: &str, e: io::Error) -> Error {
        let msg = format!("{what}: {e}");
        if let Some(tx) = self.out.take() {
            let _ = tx.send(Err(io::Error::new(e.kind(), msg.clone())));
        }
        Error::BadArchive(msg)
    }
}

/// Reads a compressed input as it comes, hashes it (the digest a manifest names it by), keeps
/// it when asked, and hands it on to the decompressing thread in chunks.
struct Fetcher<'a> {
    out: SyncSender<Chunk>,
    empty: Receiver<Vec<u8>>,
    keep: Option<BlobWriter<'a>>,
    abort: &'a AtomicBool,
}

impl Fetcher<'_> {
    /// The input's digest; None if told to stop before its end. A read error goes on to the
    /// decompressor, whose error names it.
    fn run(mut self, mut input: impl Read) -> Result<Option<String>> {
        let mut hasher = Sha256::new();
        loop {
            if self.abort.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let mut buf = self.empty.try_recv().unwrap_or_default();
            buf.resize(FETCH, 0);
            let n = match fill(&mut input, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = self.out.send(Err(e));
                    return Ok(None);
                }
            };
            if n == 0 {
                return Ok(Some(format!("sha256:{}", hex::encode(hasher.finalize()))));
            }
            buf.truncate(n);
            hasher.update(&buf);
            if let Some(keep) = &mut self.keep {
                if let Err(e) = keep.write(&buf) {
                    let _ = self.out.send(Err(io::Error::other(e.to_string())));
                    return Err(e);
                }
            }
            if self.out.send(Ok(buf)).is_err() {
                return Ok(None); // the decompressor stopped (its error is its own)
            }
        }
    }
}

/// A blob written as it comes, its writeback started every few MiB so that the final sync
/// waits for little.
struct BlobWriter<'a> {
    file: &'a File,
    path: &'a Path,
    written: u64,
    synced: u64,
}

impl<'a> BlobWriter<'a> {
    fn new((file, path): Blob<'a>) -> Self {
        BlobWriter { file, path, written: 0, synced: 0 }
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut f = self.file;
        f.write_all(data).ctx("write", self.path)?;
        self.written += data.len() as u64;
        if self.written - self.synced >= WRITEBACK {
            crate::sys::start_writeback(f.as_fd(), self.synced, self.written - self.synced);
            self.synced = self.written;
        }
        Ok(())
    }
}

/// Hashes the tar (the diff id), keeps it as the blob, hands it on to the unpack.
struct Keeper<'a> {
    from: Receiver<Chunk>,
    to: Option<SyncSender<Chunk>>,
    empty: SyncSender<Vec<u8>>,
    blob: Option<BlobWriter<'a>>,
    abort: &'a AtomicBool,
}

impl Keeper<'_> {
    fn run(mut self) -> Result<Option<(String, u64)>> {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Ok(chunk) = self.from.recv() {
            if self.abort.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let buf = match chunk {
                Ok(buf) => buf,
                Err(e) => {
                    let msg = e.to_string();
                    self.hand_on(Err(e));
                    return Err(Error::BadArchive(msg));
                }
            };
            hasher.update(&buf);
            size += buf.len() as u64;
            if let Some(blob) = &mut self.blob {
                blob.write(&buf)?;
            }
            self.hand_on(Ok(buf));
        }
        if self.abort.load(Ordering::Relaxed) {
            return Ok(None); // the reader stopped early: the hash covers part of the input
        }
        Ok(Some((format!("sha256:{}", hex::encode(hasher.finalize())), size)))
    }

    fn hand_on(&mut self, chunk: Chunk) {
        let Some(tx) = &self.to else {
            if let Ok(buf) = chunk {
                let _ = self.empty.try_send(buf);
            }
            return;
        };
        if let Err(SendError(back)) = tx.send(chunk) {
            self.to = None; // the unpack is done: hash on alone, to the end
            if let Ok(buf) = back {
                let _ = self.empty.try_send(buf);
            }
        }
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
    use super::super::parallel::Keep;
    use super::super::testtar::{raw_tar, tar_of};
    use super::super::unpack::{unpack, unpack_keeping};
    use crate::error::Error;
    use sha2::{Digest, Sha256};
    use std::io::Write;

    fn sha(data: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(data)))
    }

    #[test]
    fn the_digests_cover_what_follows_the_end_of_the_archive() {
        // Several chunks of files, then bytes past the end-of-archive blocks that the tar
        // parse never reads: the blob and the diff id still hold them.
        let mut data = tar_of(&[("a", &vec![7u8; 3 << 20]), ("b", &[8u8; 100])]);
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
        let data = tar_of(&[("x", &vec![1u8; 2 << 20])]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let got = unpack(&gz[..], dir.path(), None).unwrap();
        assert_eq!((got.diff_id, got.digest), (sha(&data), sha(&gz)));
    }

    #[test]
    fn a_compressed_input_can_be_kept_as_it_came() {
        let data = tar_of(&[("x", &vec![1u8; 3 << 20]), ("y", b"why")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (dest, blob) = (dir.path().join("root"), dir.path().join("blob"));
        std::fs::create_dir(&dest).unwrap();
        let got = unpack_keeping(&gz[..], &dest, Some(&Keep::Input(blob.clone()))).unwrap();
        assert_eq!((got.diff_id, got.digest), (sha(&data), sha(&gz)));
        assert_eq!(std::fs::read(&blob).unwrap(), gz);
        assert_eq!(std::fs::read(dest.join("y")).unwrap(), b"why");
    }

    #[test]
    fn a_corrupt_stream_is_named_and_leaves_nothing() {
        let data = tar_of(&[("x", &vec![1u8; 2 << 20]), ("y", &vec![2u8; 2 << 20])]);
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
        let mut data = tar_of(&[("ok", &[0u8; 10])]);
        data.truncate(data.len() - 1024); // drop the end-of-archive blocks
        data.extend_from_slice(&raw_tar("../out"));
        data.resize(data.len() + (64 << 20), 0);
        let dir = tempfile::tempdir().unwrap();
        match unpack(&data[..], dir.path(), None) {
            Err(Error::BadArchive(m)) => assert!(m.contains("leads outside the layer"), "{m}"),
            other => panic!("{:?}", other.map(|u| u.diff_id)),
        }
    }

    #[test]
    fn a_refused_entry_in_a_compressed_input_is_what_is_reported() {
        // As above, gzip'ed, with bytes that do not compress after it: the fetcher is still
        // reading when it is told to stop, and the input it cuts short is no error of its own.
        let mut data = tar_of(&[("ok", &[0u8; 10])]);
        data.truncate(data.len() - 1024);
        data.extend_from_slice(&raw_tar("../out"));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        data.extend((0..(8 << 20)).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let blob = tempfile::tempdir().unwrap();
        match unpack_keeping(&gz[..], dir.path(), Some(&Keep::Input(blob.path().join("blob")))) {
            Err(Error::BadArchive(m)) => assert!(m.contains("leads outside the layer"), "{m}"),
            other => panic!("{:?}", other.map(|u| u.diff_id)),
        }
    }
}
