//! The registry transport for pyc: HTTP(S) through one `Client` per registry host (its TLS
//! trust and client certificate, its proxy), requests retried on 429 and 5xx with back-off,
//! blob bodies read as a stream that picks up a cut transfer with a Range request
//! (`Download`), and layers uploaded compressed on the fly (`upload`). What to ask for (the
//! distribution protocol, the token dance) is Python's part; this crate moves the bytes.

mod client;
mod download;
mod error;
mod pgzip;
mod tls;
mod upload;

pub use client::{Client, ClientConfig, Reply};
pub use download::{Download, Progress};
pub use error::{Error, Result};
pub use upload::{upload, Compression, Uploaded};
