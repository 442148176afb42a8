//! A layer pushed to a registry, compressed as it is sent: the uncompressed tar is read from
//! the store, compressed (gzip or zstd, at the level asked) and hashed on its way into one
//! streamed PATCH (chunked transfer), then the upload is closed with a PUT naming the digest
//! that came out. A registry that refuses a streamed PATCH gets the blob whole in one PUT,
//! compressed into a scratch file first (its digest must be known before it is sent).
//! A layer the store keeps compressed (as pulled) is decompressed on the way, or sent as it
//! is (`Compression::AsIs`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};
use ureq::SendBody;

use crate::client::{header_list, reason, Client};
use crate::download::Progress;
use crate::error::{Error, Result};
use crate::pgzip::ParallelGzip;

#[derive(Clone, Copy, Debug)]
pub enum Compression {
    Gzip(u32),
    Zstd(i32),
    /// The file is sent as it is: a layer kept compressed as it was pulled.
    AsIs,
}

/// The blob as the registry now has it.
pub struct Uploaded {
    pub digest: String,
    pub size: u64,
}

/// Upload the layer at `path` (a tar, or a compressed one) compressed as `compression` says,
/// starting an upload session with a POST to `start` (the repository's `/blobs/uploads/` URL).
/// `scratch` is where a registry that wants the blob whole gets it compressed first.
/// `progress` counts the file's bytes read.
pub fn upload(
    client: &Client,
    start: &str,
    headers: &[(String, String)],
    path: &Path,
    compression: Compression,
    scratch: &Path,
    progress: Progress,
) -> Result<Uploaded> {
    let location = begin(client, start, headers)?;
    match streamed(client, &location, headers, path, compression, &progress) {
        Ok(done) => Ok(done),
        // 4xx but 401/403/404 (those say nothing of the upload's form): try it whole.
        Err(Error::Status { status, .. }) if (400..500).contains(&status) && !matches!(status, 401 | 403 | 404 | 429) => {
            progress.store(0, Ordering::Relaxed);
            whole(client, start, headers, path, compression, scratch, &progress)
        }
        Err(e) => Err(e),
    }
}

/// POST: a new upload session; its URL.
fn begin(client: &Client, start: &str, headers: &[(String, String)]) -> Result<String> {
    let reply = client.request("POST", start, headers, Some(b""), 1 << 16)?;
    if reply.status != 202 {
        return Err(refused(start, reply.status, &reply.body));
    }
    let location = reply.header("location").ok_or_else(|| Error::Status { url: start.into(), status: 202, message: "no Location for the upload".into() })?;
    Ok(resolve(start, location))
}

fn streamed(client: &Client, location: &str, headers: &[(String, String)], path: &Path, compression: Compression, progress: &Progress) -> Result<Uploaded> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut body = Hashing::new(compressed(Counting { inner: file, progress: progress.clone() }, compression, path)?);
    let mut req = ureq::http::Request::builder().method("PATCH").uri(location).header("content-type", "application/octet-stream");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req.body(SendBody::from_reader(&mut body)).map_err(|e| Error::Config(format!("PATCH {location}: {e}")))?;
    let mut resp = client.agent().run(req).map_err(|e| Error::transport(location, e))?;
    let status = resp.status().as_u16();
    if status != 202 {
        let words = resp.body_mut().with_config().limit(4096).read_to_vec().unwrap_or_default();
        return Err(refused(location, status, &words));
    }
    let next = header_list(&resp).into_iter().find(|(k, _)| k == "location").map(|(_, v)| resolve(location, &v)).unwrap_or_else(|| location.to_string());
    let (digest, size) = body.finish();
    finish(client, &next, headers, &digest, None)?;
    Ok(Uploaded { digest, size })
}

fn whole(
    client: &Client,
    start: &str,
    headers: &[(String, String)],
    path: &Path,
    compression: Compression,
    scratch: &Path,
    progress: &Progress,
) -> Result<Uploaded> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut input = Hashing::new(compressed(Counting { inner: file, progress: progress.clone() }, compression, path)?);
    let mut out = File::create(scratch).map_err(|e| Error::io("create", scratch, e))?;
    io::copy(&mut input, &mut out).map_err(|e| Error::io("write", scratch, e))?;
    out.flush().map_err(|e| Error::io("write", scratch, e))?;
    let (digest, size) = input.finish();
    let location = begin(client, start, headers)?;
    let body = File::open(scratch).map_err(|e| Error::io("open", scratch, e))?;
    let result = finish(client, &location, headers, &digest, Some(body));
    let _ = std::fs::remove_file(scratch);
    result.map(|_| Uploaded { digest, size })
}

/// PUT ?digest=: the upload is complete (with its whole body, or none after a PATCH).
fn finish(client: &Client, location: &str, headers: &[(String, String)], digest: &str, body: Option<File>) -> Result<()> {
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{sep}digest={}", digest.replace(':', "%3A"));
    let mut req = ureq::http::Request::builder().method("PUT").uri(&url).header("content-type", "application/octet-stream");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let sent = match body {
        Some(f) => client.agent().run(req.body(f).map_err(|e| Error::Config(format!("PUT {url}: {e}")))?),
        None => client.agent().run(req.header("content-length", "0").body(()).map_err(|e| Error::Config(format!("PUT {url}: {e}")))?),
    };
    let mut resp = sent.map_err(|e| Error::transport(&url, e))?;
    let status = resp.status().as_u16();
    if status != 201 {
        let words = resp.body_mut().with_config().limit(4096).read_to_vec().unwrap_or_default();
        return Err(refused(&url, status, &words));
    }
    Ok(())
}

fn refused(url: &str, status: u16, body: &[u8]) -> Error {
    let words: String = String::from_utf8_lossy(body).chars().filter(|c| !c.is_control()).take(200).collect();
    Error::Status { url: url.to_string(), status, message: format!("{} {}", reason(status), words).trim().to_string() }
}

/// A Location header against the URL it answered: absolute, from the host's root, or relative.
pub(crate) fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        return format!("{}{location}", &base[..host_end]);
    }
    let path = &base[..base.find('?').unwrap_or(base.len())];
    let dir_end = path.rfind('/').filter(|&i| i >= host_end).map_or(path.len(), |i| i + 1);
    format!("{}{location}", &path[..dir_end])
}

/// The compressed stream, made on every core (a layer is compressed as fast as it is sent).
fn compressed(input: impl Read + Send + 'static, c: Compression, path: &Path) -> Result<Box<dyn Read + Send>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(match c {
        Compression::AsIs => Box::new(input),
        Compression::Gzip(level) => Box::new(ParallelGzip::new(tar_of(input, path)?, level.min(9), cores)),
        Compression::Zstd(level) => {
            let bad = |e: io::Error| Error::Config(format!("zstd level {level}: {e}"));
            let mut z = zstd::stream::read::Encoder::new(BufReader::with_capacity(1 << 20, tar_of(input, path)?), level).map_err(bad)?;
            z.multithread(cores as u32).map_err(bad)?;
            Box::new(z)
        }
    })
}

/// The tar of a layer file: the file itself, or decompressed if it is gzip or zstd.
fn tar_of(input: impl Read + Send + 'static, path: &Path) -> Result<Box<dyn Read + Send>> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let head = input.fill_buf().map_err(|e| Error::io("read", path, e))?;
    Ok(match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(zstd::stream::read::Decoder::with_buffer(input).map_err(|e| Error::io("read", path, e))?),
        _ => Box::new(input),
    })
}

/// Counts what is read, for a progress bar.
struct Counting<R> {
    inner: R,
    progress: Progress,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Hashes and counts what passes: the compressed blob's digest and size.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing { inner, hasher: Sha256::new(), size: 0 }
    }

    fn finish(self) -> (String, u64) {
        (format!("sha256:{}", hex::encode(self.hasher.finalize())), self.size)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn locations() {
        let base = "http://h:5000/v2/a/blobs/uploads/";
        assert_eq!(resolve(base, "http://x/y"), "http://x/y");
        assert_eq!(resolve(base, "/v2/a/blobs/uploads/u1?_state=s"), "http://h:5000/v2/a/blobs/uploads/u1?_state=s");
        assert_eq!(resolve(base, "u2"), "http://h:5000/v2/a/blobs/uploads/u2");
        assert_eq!(resolve("https://h/v2/a/blobs/uploads/u1?x=1", "u3"), "https://h/v2/a/blobs/uploads/u3");
    }
}
