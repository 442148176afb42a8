//! gzip on every core: the input is cut in blocks compressed side by side by libdeflate (some
//! twice zlib's speed at the same level, and a smaller result at level 6), each block a gzip
//! member of its own, the members joined in order. A gzip file of several members is one
//! stream to every gunzip (RFC 1952 2.2; Go's gzip reader, which podman, skopeo, containerd and
//! the registry use, reads them by default; eStargz layers are made so). Each block starts
//! afresh, without the window before it: 1 MiB blocks lose little of the ratio to that.
//! A single-threaded deflate at level 6 is a push's bottleneck.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use libdeflater::{CompressionLvl, Compressor};

const BLOCK: usize = 1 << 20;

type Job = (u64, Vec<u8>);

enum Piece {
    Block(u64, Vec<u8>),
    /// The input's end: how many blocks.
    End(u64),
    Failed(io::Error),
}

/// The gzip of `input` at `level`, as a stream.
pub struct ParallelGzip {
    pieces: Receiver<Piece>,
    waiting: BTreeMap<u64, Vec<u8>>,
    next: u64,
    end: Option<u64>,
    level: CompressionLvl,
    out: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ParallelGzip {
    /// `level` 0 (stored) to 9, as gzip's; above 9 is taken as 9.
    pub fn new(input: impl Read + Send + 'static, level: u32, workers: usize) -> Self {
        let level = CompressionLvl::new(level.min(9) as i32).unwrap_or_default();
        let workers = workers.max(1);
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(workers * 2);
        let (pieces_tx, pieces) = sync_channel::<Piece>(workers * 2);
        let jobs = Arc::new(Mutex::new(jobs_rx));
        for _ in 0..workers {
            let (jobs, tx) = (jobs.clone(), pieces_tx.clone());
            std::thread::spawn(move || {
                let mut c = Compressor::new(level);
                loop {
                    let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((n, block)) = job else { return };
                    if tx.send(Piece::Block(n, member(&mut c, &block))).is_err() {
                        return;
                    }
                }
            });
        }
        std::thread::spawn(move || read_blocks(input, jobs_tx, pieces_tx));
        ParallelGzip { pieces, waiting: BTreeMap::new(), next: 0, end: None, level, out: Vec::new(), pos: 0, done: false }
    }

    /// The next bytes to hand out, in order; false at the end.
    fn fill(&mut self) -> io::Result<bool> {
        loop {
            if let Some(block) = self.waiting.remove(&self.next) {
                self.next += 1;
                self.out = block;
                self.pos = 0;
                return Ok(true);
            }
            if self.end == Some(self.next) {
                self.done = true;
                if self.next > 0 {
                    return Ok(false);
                }
                // An empty input is still one gzip member.
                self.out = member(&mut Compressor::new(self.level), &[]);
                self.pos = 0;
                return Ok(true);
            }
            match self.pieces.recv() {
                Ok(Piece::Block(n, block)) => {
                    self.waiting.insert(n, block);
                }
                Ok(Piece::End(blocks)) => self.end = Some(blocks),
                Ok(Piece::Failed(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("a compressing thread stopped")),
            }
        }
    }
}

impl Read for ParallelGzip {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            if self.done || !self.fill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Cut the input in blocks for the workers.
fn read_blocks(mut input: impl Read, jobs: SyncSender<Job>, pieces: SyncSender<Piece>) {
    let mut n = 0u64;
    loop {
        let mut block = Vec::with_capacity(BLOCK);
        if let Err(e) = (&mut input).take(BLOCK as u64).read_to_end(&mut block) {
            let _ = pieces.send(Piece::Failed(e));
            return;
        }
        if block.is_empty() {
            let _ = pieces.send(Piece::End(n));
            return;
        }
        if jobs.send((n, block)).is_err() {
            return;
        }
        n += 1;
    }
}

/// One block as a whole gzip member (header, deflate, CRC-32 and length).
fn member(c: &mut Compressor, block: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; c.gzip_compress_bound(block.len())];
    // The bound is the most the block can take: the compression cannot run out of room.
    let n = c.gzip_compress(block, &mut out).expect("gzip_compress_bound is enough room");
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    fn sample() -> Vec<u8> {
        // Text that repeats across blocks and noise that does not.
        let mut input = Vec::new();
        for i in 0..(3 * BLOCK / 40) {
            input.extend_from_slice(format!("line {:08} of some text\n", i % 5000).as_bytes());
        }
        let mut x = 7u32;
        input.extend((0..BLOCK + 12345).map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        }));
        input
    }

    #[test]
    fn any_size_and_level_makes_gzip_of_the_input() {
        let input = sample();
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, input.len()] {
            for level in [0, 1, 6, 9, 12] {
                let mut gz = Vec::new();
                ParallelGzip::new(io::Cursor::new(input[..len].to_vec()), level, 3).read_to_end(&mut gz).unwrap();
                assert_eq!(&gz[..3], &[0x1f, 0x8b, 8], "len {len} level {level}");
                assert_eq!(gunzip(&gz), &input[..len], "len {len} level {level}");
            }
        }
    }

    #[test]
    fn the_same_input_makes_the_same_bytes() {
        // A layer pushed twice (or by two machines) has one digest, whatever the workers.
        let input = sample();
        let gz = |workers| {
            let mut out = Vec::new();
            ParallelGzip::new(io::Cursor::new(input.clone()), 6, workers).read_to_end(&mut out).unwrap();
            out
        };
        assert_eq!(gz(1), gz(4));
    }

    #[test]
    fn the_ratio_is_nearly_one_streams() {
        let input: Vec<u8> = (0..4 * BLOCK).map(|i| b"abcdefghij"[(i * i / 7) % 10]).collect();
        let mut par = Vec::new();
        ParallelGzip::new(io::Cursor::new(input.clone()), 6, 4).read_to_end(&mut par).unwrap();
        let mut one = flate2::read::GzEncoder::new(&input[..], flate2::Compression::new(6));
        let mut single = Vec::new();
        one.read_to_end(&mut single).unwrap();
        assert!(par.len() < single.len() + single.len() / 20 + 64, "{} vs {}", par.len(), single.len());
    }

    #[test]
    fn a_read_error_is_passed_on() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let mut out = Vec::new();
        let e = ParallelGzip::new(Failing, 6, 2).read_to_end(&mut out).unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
    }
}
