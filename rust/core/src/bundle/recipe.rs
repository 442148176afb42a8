//! A carried layer's recipe: ops that write the layer tar from front to back.
//!
//!   COPY  src off len               `len` bytes of old layer `src`'s tar from `off`
//!   LIT   len bytes                 the bytes themselves
//!   PATCH src off len out plen data `out` bytes: the zstd frame `data` (`plen` bytes) decoded
//!                                   with old layer `src`'s bytes `off..off+len` as its prefix
//!   END
//!
//! Numbers are LEB128 varints. The whole stream is one zstd stream per layer (create.rs), which
//! compresses the literals and passes the patches (zstd frames already) through.

use std::io::{Read, Write};

use crate::error::{Error, Result};

pub const COPY: u8 = 1;
pub const LIT: u8 = 2;
pub const PATCH: u8 = 3;
pub const END: u8 = 0;

/// The most a patch may rebuild, or read as its reference: a patch is decoded in memory.
pub const PATCH_MAX: u64 = 256 << 20;

pub fn put_varint(out: &mut impl Write, mut v: u64) -> std::io::Result<()> {
    let mut buf = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            buf[n] = byte;
            n += 1;
            break;
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
    out.write_all(&buf[..n])
}

pub fn get_varint(inp: &mut impl Read) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8; 1];
        inp.read_exact(&mut b).map_err(truncated)?;
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Error::BadArchive("bundle: a number in a recipe is too long".into()))
}

/// A read error in a layer's recipe, said once: frames already say "bundle: ...".
pub fn truncated(e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::BadArchive("bundle: a layer's recipe is cut short".into()),
        _ if e.to_string().starts_with("bundle: ") => Error::BadArchive(e.to_string()),
        _ => Error::BadArchive(format!("bundle: a layer's recipe: {e}")),
    }
}

/// One op as create.rs emits it (a LIT's bytes and a PATCH's data follow their op).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Copy { src: u32, off: u64, len: u64 },
    Lit { len: u64 },
    Patch { src: u32, off: u64, len: u64, out: u64, plen: u64 },
    End,
}

impl Op {
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        match *self {
            Op::Copy { src, off, len } => {
                out.write_all(&[COPY])?;
                for v in [u64::from(src), off, len] {
                    put_varint(out, v)?;
                }
            }
            Op::Lit { len } => {
                out.write_all(&[LIT])?;
                put_varint(out, len)?;
            }
            Op::Patch { src, off, len, out: n, plen } => {
                out.write_all(&[PATCH])?;
                for v in [u64::from(src), off, len, n, plen] {
                    put_varint(out, v)?;
                }
            }
            Op::End => out.write_all(&[END])?,
        }
        Ok(())
    }

    pub fn read(inp: &mut impl Read) -> Result<Op> {
        let mut b = [0u8; 1];
        inp.read_exact(&mut b).map_err(truncated)?;
        let src = |inp: &mut dyn Read| -> Result<u32> {
            u32::try_from(get_varint(&mut &mut *inp)?).map_err(|_| Error::BadArchive("bundle: a recipe names a layer beyond its list".into()))
        };
        Ok(match b[0] {
            COPY => Op::Copy { src: src(inp)?, off: get_varint(inp)?, len: get_varint(inp)? },
            LIT => Op::Lit { len: get_varint(inp)? },
            PATCH => Op::Patch { src: src(inp)?, off: get_varint(inp)?, len: get_varint(inp)?, out: get_varint(inp)?, plen: get_varint(inp)? },
            END => Op::End,
            other => return Err(Error::BadArchive(format!("bundle: unknown recipe op {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        let ops = [Op::Copy { src: 3, off: 1 << 40, len: 512 }, Op::Lit { len: 0 }, Op::Patch { src: 0, off: 7, len: 300, out: 129, plen: 64 }, Op::End];
        let mut buf = Vec::new();
        for op in ops {
            op.write(&mut buf).unwrap();
        }
        let mut r = buf.as_slice();
        for op in ops {
            assert_eq!(Op::read(&mut r).unwrap(), op);
        }
        assert!(Op::read(&mut [9u8].as_slice()).is_err());
        assert!(Op::read(&mut [COPY, 0x80].as_slice()).is_err());
    }
}
