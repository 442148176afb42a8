//! How a layer's bytes are compressed, told by their first bytes (as docker and containerd
//! tell it, whatever a manifest or a file name says).

use std::io::{self, Read};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Codec {
    Gzip,
    Zstd,
}

impl Codec {
    /// The compression of a stream that starts with `head`; None for a plain tar.
    pub fn of(head: &[u8]) -> Option<Codec> {
        match head {
            [0x1f, 0x8b, ..] => Some(Codec::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// The word errors name it by.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }

    /// The tar `input` holds, decompressed as it is read (gzip of several members included).
    pub fn decoder<'a>(self, input: impl Read + Send + 'a) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Codec::Zstd => Box::new(zstd::Decoder::new(input)?),
        })
    }
}
