//! A blob's body as a stream (`Read`), for the unpacker to decompress, hash and write as it
//! comes in. A transfer cut midway (the connection lost, the body short) is picked up where it
//! stopped, with a Range request for the bytes not yet read: those read are already on their
//! way through the hashes, which check the whole blob at its end.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ureq::BodyReader;

use crate::client::{header_list, reason, Client};
use crate::error::Error;

/// Times a cut transfer is picked up again (each after a pause that grows).
const RESUMES: u32 = 5;

/// Bytes read so far, for a progress bar in another thread.
pub type Progress = Arc<AtomicU64>;

pub struct Download {
    client: Arc<Client>,
    url: String,
    headers: Vec<(String, String)>,
    size: u64,
    offset: u64,
    body: Option<BodyReader<'static>>,
    resumes: u32,
    progress: Progress,
}

impl Download {
    /// The blob at `url` (GET with `headers`), `size` bytes long as its descriptor says.
    pub fn new(client: Arc<Client>, url: String, headers: Vec<(String, String)>, size: u64, progress: Progress) -> Self {
        Download { client, url, headers, size, offset: 0, body: None, resumes: 0, progress }
    }

    /// How many times a cut transfer was picked up.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    fn open(&mut self) -> Result<BodyReader<'static>, Error> {
        let mut headers = self.headers.clone();
        if self.offset > 0 {
            headers.push(("range".into(), format!("bytes={}-", self.offset)));
        }
        let resp = crate::client::retrying(|| {
            let resp = self.client.send("GET", &self.url, &headers, None)?;
            let status = resp.status().as_u16();
            if status == 429 || status >= 500 {
                return Err((Error::Status { url: self.url.clone(), status, message: reason(status).into() }, None));
            }
            Ok(resp)
        })?;
        let status = resp.status().as_u16();
        let mut skip = 0;
        match status {
            206 if self.offset > 0 => {
                let headers = header_list(&resp);
                let range = headers.iter().find(|(k, _)| k == "content-range").map(|(_, v)| v.as_str()).unwrap_or("");
                if range_start(range) != Some(self.offset) {
                    return Err(Error::Status { url: self.url.clone(), status, message: format!("asked for bytes {}- but got {range:?}", self.offset) });
                }
            }
            // A server that ignores Range sends it all again: what was read is skipped.
            200 => skip = self.offset,
            _ => {
                let mut resp = resp;
                let words = resp.body_mut().with_config().limit(4096).read_to_string().unwrap_or_default();
                let words: String = words.chars().filter(|c| !c.is_control()).take(200).collect();
                return Err(Error::Status { url: self.url.clone(), status, message: format!("{} {}", reason(status), words).trim().to_string() });
            }
        }
        let mut body = resp.into_body().into_reader();
        if skip > 0 {
            let copied = io::copy(&mut (&mut body).take(skip), &mut io::sink()).map_err(|e| Error::lost(&self.url, &e))?;
            if copied != skip {
                return Err(Error::Transport { url: self.url.clone(), message: "the body is shorter than before".into(), transient: true });
            }
        }
        Ok(body)
    }

    /// After a cut: pause, then go on from `offset` (an error once the resumes are spent).
    fn cut(&mut self, why: String) -> io::Result<()> {
        self.body = None;
        if self.resumes == RESUMES {
            let why = why.strip_prefix(&format!("{}: ", self.url)).unwrap_or(&why).to_lowercase();
            return Err(io::Error::other(format!("the download stopped: {why}, {} of {} bytes after {RESUMES} resumes", self.offset, self.size)));
        }
        self.resumes += 1;
        std::thread::sleep(Duration::from_millis(100 << self.resumes.min(5)));
        Ok(())
    }
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.offset == self.size {
                // The descriptor's size is all there is to read: a longer body is not looked at.
                return Ok(0);
            }
            let body = match &mut self.body {
                Some(b) => b,
                None => match self.open() {
                    Ok(b) => self.body.insert(b),
                    Err(e) if e.is_transient() => {
                        self.cut(e.to_string())?;
                        continue;
                    }
                    Err(e) => return Err(io::Error::other(e.to_string())),
                },
            };
            let want = buf.len().min((self.size - self.offset).min(usize::MAX as u64) as usize);
            match body.read(&mut buf[..want]) {
                Ok(0) => self.cut("the connection closed early".into())?,
                Ok(n) => {
                    self.offset += n as u64;
                    self.progress.store(self.offset, Ordering::Relaxed);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.cut(e.to_string())?,
            }
        }
    }
}

/// The first byte of a `Content-Range: bytes FIRST-LAST/SIZE`.
fn range_start(v: &str) -> Option<u64> {
    v.trim().strip_prefix("bytes")?.trim().split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    #[test]
    fn content_range() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start(""), None);
    }

    /// A server of `body` on loopback: each connection's answer is `answer(n, range start)`,
    /// n counting connections: (status, bytes of the body from the range start to send before
    /// closing, or None for all of it).
    fn serve(body: Vec<u8>, answer: fn(usize, u64) -> (u16, Option<usize>)) -> (String, std::thread::JoinHandle<Vec<u64>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/blob", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut ranges = Vec::new();
            for (n, stream) in listener.incoming().enumerate() {
                let mut stream = stream.unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut start = 0u64;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        start = v.trim().trim_end_matches('-').parse().unwrap();
                    }
                }
                ranges.push(start);
                let (status, cut) = answer(n, start);
                let from = if status == 206 { start as usize } else { 0 };
                let part = &body[from..];
                let head = match status {
                    206 => format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\n\r\n",
                        part.len(),
                        from,
                        body.len() - 1,
                        body.len()
                    ),
                    _ => format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n", part.len()),
                };
                stream.write_all(head.as_bytes()).unwrap();
                let _ = stream.write_all(&part[..cut.unwrap_or(part.len()).min(part.len())]);
                drop(stream);
                if cut.is_none() {
                    break;
                }
            }
            ranges
        });
        (url, handle)
    }

    fn download(url: &str, size: u64) -> (io::Result<Vec<u8>>, u32) {
        let config =
            ClientConfig { ca_files: vec![], client_cert: None, verify: true, proxy: None, user_agent: "t".into(), read_timeout: Duration::from_secs(5) };
        let client = Arc::new(Client::new(&config).unwrap());
        let mut d = Download::new(client, url.into(), vec![], size, Progress::default());
        let mut out = Vec::new();
        let r = d.read_to_end(&mut out).map(|_| out);
        (r, d.resumes())
    }

    #[test]
    fn a_cut_transfer_goes_on_from_where_it_stopped() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        // Cut after 100,000 bytes, then 50,000 more: the third connection ends it.
        let (url, server) =
            serve(body.clone(), |n, _| if n < 2 { (if n == 0 { 200 } else { 206 }, Some(if n == 0 { 100_000 } else { 50_000 })) } else { (206, None) });
        let (got, resumes) = download(&url, body.len() as u64);
        assert_eq!(got.unwrap(), body);
        assert_eq!(resumes, 2);
        assert_eq!(server.join().unwrap(), vec![0, 100_000, 150_000]);
    }

    #[test]
    fn a_server_that_ignores_range_sends_it_all_and_the_start_is_skipped() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
        let (url, server) = serve(body.clone(), |n, _| (200, if n == 0 { Some(70_000) } else { None }));
        let (got, resumes) = download(&url, body.len() as u64);
        assert_eq!((got.unwrap(), resumes), (body, 1));
        assert_eq!(server.join().unwrap(), vec![0, 70_000]);
    }

    #[test]
    fn a_refusal_is_not_retried() {
        let (url, server) = serve(vec![1, 2, 3], |_, _| (404, None));
        let (got, resumes) = download(&url, 3);
        let e = got.unwrap_err().to_string();
        assert!(e.contains("404"), "{e}");
        assert_eq!(resumes, 0);
        assert_eq!(server.join().unwrap(), vec![0]);
    }
}
