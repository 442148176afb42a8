//! gzip on every core, as pigz makes it: the input is cut in blocks compressed side by side, each
//! as raw deflate primed with the 32 KiB of input before it (so the ratio is nearly one
//! stream's) and ended with a sync flush (so the blocks join, in order, into one deflate
//! stream), then an empty final block and gzip's trailer. One gzip member, read by any gunzip.
//! A single-threaded deflate at level 6 is a push's bottleneck: some 40 MB/s on a core.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

const BLOCK: usize = 1 << 20;
const WINDOW: usize = 32 << 10;
/// gzip's header: no name, no time, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty deflate block with the final bit (fixed codes, end of block at once).
const LAST: [u8; 2] = [0x03, 0x00];

type Job = (u64, Vec<u8>, Vec<u8>);

enum Piece {
    Block(u64, io::Result<Vec<u8>>),
    /// The input's end: how many blocks, its CRC-32 and length.
    End(u64, u32, u64),
    Failed(io::Error),
}

/// The gzip of `input` at `level`, as a stream.
pub struct ParallelGzip {
    pieces: Receiver<Piece>,
    waiting: BTreeMap<u64, Vec<u8>>,
    next: u64,
    end: Option<(u64, u32, u64)>,
    out: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ParallelGzip {
    pub fn new(input: impl Read + Send + 'static, level: u32, workers: usize) -> Self {
        let workers = workers.max(1);
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(workers * 2);
        let (pieces_tx, pieces) = sync_channel::<Piece>(workers * 2);
        let jobs = Arc::new(Mutex::new(jobs_rx));
        for _ in 0..workers {
            let (jobs, tx) = (jobs.clone(), pieces_tx.clone());
            std::thread::spawn(move || loop {
                let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((n, block, dict)) = job else { return };
                if tx.send(Piece::Block(n, deflate(&block, &dict, level))).is_err() {
                    return;
                }
            });
        }
        std::thread::spawn(move || read_blocks(input, jobs_tx, pieces_tx));
        ParallelGzip { pieces, waiting: BTreeMap::new(), next: 0, end: None, out: HEADER.to_vec(), pos: 0, done: false }
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
            if let Some((blocks, crc, len)) = self.end {
                if self.next == blocks {
                    self.done = true;
                    let mut tail = LAST.to_vec();
                    tail.extend_from_slice(&crc.to_le_bytes());
                    tail.extend_from_slice(&(len as u32).to_le_bytes()); // ISIZE: the length mod 2^32
                    self.out = tail;
                    self.pos = 0;
                    return Ok(true);
                }
            }
            match self.pieces.recv() {
                Ok(Piece::Block(n, block)) => {
                    self.waiting.insert(n, block?);
                }
                Ok(Piece::End(blocks, crc, len)) => self.end = Some((blocks, crc, len)),
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

/// Cut the input in blocks, each handed out with the window before it; the CRC on the way.
fn read_blocks(mut input: impl Read, jobs: SyncSender<Job>, pieces: SyncSender<Piece>) {
    let mut crc = Crc::new();
    let mut dict: Vec<u8> = Vec::new();
    let mut n = 0u64;
    loop {
        let mut block = Vec::with_capacity(BLOCK);
        if let Err(e) = (&mut input).take(BLOCK as u64).read_to_end(&mut block) {
            let _ = pieces.send(Piece::Failed(e));
            return;
        }
        if block.is_empty() {
            let _ = pieces.send(Piece::End(n, crc.sum(), crc.amount() as u64));
            return;
        }
        crc.update(&block);
        let next_dict = block[block.len().saturating_sub(WINDOW)..].to_vec();
        let window = if block.len() >= WINDOW { next_dict } else { [&dict[dict.len().saturating_sub(WINDOW - block.len())..], &block[..]].concat() };
        if jobs.send((n, block, std::mem::replace(&mut dict, window))).is_err() {
            return;
        }
        n += 1;
    }
}

/// One block as raw deflate, primed with `dict`, ended by a sync flush (byte-aligned).
fn deflate(block: &[u8], dict: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::new(level), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(block.len() + block.len() / 8 + 64);
    loop {
        let consumed = c.total_in() as usize;
        let status = c.compress_vec(&block[consumed..], &mut out, FlushCompress::Sync).map_err(io::Error::other)?;
        // Done once all of it is in and the flush left room to spare in the output.
        if c.total_in() as usize == block.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        if status == Status::BufError || out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn any_size_and_level_makes_one_gzip_member_of_the_input() {
        // Text that repeats across blocks (the window carries over) and noise that does not.
        let mut input = Vec::new();
        for i in 0..(3 * BLOCK / 40) {
            input.extend_from_slice(format!("line {:08} of some text\n", i % 5000).as_bytes());
        }
        let mut x = 7u32;
        input.extend((0..BLOCK + 12345).map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        }));
        for len in [0, 1, WINDOW - 1, BLOCK, BLOCK + 1, input.len()] {
            for level in [0, 1, 6, 9] {
                let mut gz = Vec::new();
                ParallelGzip::new(io::Cursor::new(input[..len].to_vec()), level, 3).read_to_end(&mut gz).unwrap();
                assert_eq!(gunzip(&gz), &input[..len], "len {len} level {level}");
            }
        }
    }

    #[test]
    fn the_ratio_is_nearly_one_streams() {
        let input: Vec<u8> = (0..4 * BLOCK).map(|i| b"abcdefghij"[(i * i / 7) % 10]).collect();
        let mut par = Vec::new();
        ParallelGzip::new(io::Cursor::new(input.clone()), 6, 4).read_to_end(&mut par).unwrap();
        let mut one = flate2::read::GzEncoder::new(&input[..], Compression::new(6));
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
