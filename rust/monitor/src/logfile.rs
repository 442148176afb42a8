//! The container's log: one record per line, in the CRI format that containerd and podman's
//! k8s-file driver write: `<RFC 3339 time> <stdout|stderr> <F|P> <bytes>`. F means a newline
//! followed the bytes, P that it did not (a line cut at the buffer size, or the last bytes
//! before EOF), so a reader gives back exactly what the container wrote. The live file is
//! rotated to ctr.log.1, .2 ... once it passes the size cap.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::clock::now_rfc3339;
use crate::config::LogConfig;

/// A line longer than this is written in pieces marked P.
const MAX_LINE: usize = 16 * 1024;

pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    cap: LogConfig,
}

impl LogFile {
    pub fn open(path: &Path, cap: LogConfig) -> std::io::Result<LogFile> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile { path: path.to_path_buf(), file, size, cap })
    }

    /// Write whole records (each ends with a newline), rotating before the one that would
    /// pass the cap; each write holds whole records, so a follower never sees half of one.
    pub fn write(&mut self, records: &[u8]) {
        let mut rest = records;
        while !rest.is_empty() {
            let room = self.cap.max_size.saturating_sub(self.size) as usize;
            // The records that fit; at least one, in a fresh file, however long it is.
            let mut end = 0;
            for (i, _) in rest.iter().enumerate().filter(|(_, &b)| b == b'\n') {
                if i + 1 > room && (end > 0 || self.size > 0) {
                    break;
                }
                end = i + 1;
            }
            if end == 0 {
                self.rotate();
                continue;
            }
            // A full disk loses log lines, never the container.
            if self.file.write_all(&rest[..end]).is_ok() {
                self.size += end as u64;
            }
            rest = &rest[end..];
            if self.size >= self.cap.max_size {
                self.rotate();
            }
        }
    }

    fn rotate(&mut self) {
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        for i in (1..self.cap.max_files.max(1)).rev() {
            let from = if i == 1 { self.path.clone() } else { name(i - 1) };
            let _ = std::fs::rename(from, name(i));
        }
        if self.cap.max_files <= 1 {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Ok(f) = OpenOptions::new().create(true).append(true).open(&self.path) {
            self.file = f;
        }
        // Even when the new file could not be made: the old one goes on, and write() ends.
        self.size = 0;
    }
}

/// Splits one stream's bytes into records, keeping an unfinished line for the next read.
pub struct LineSplitter {
    stream: &'static str,
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn new(stream: &'static str) -> Self {
        LineSplitter { stream, pending: Vec::new() }
    }

    /// Records for `data` appended to `out`; a line still open waits for more bytes.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let time = now_rfc3339();
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            self.record(&time, start, start + nl, b'F', out);
            start += nl + 1;
        }
        while self.pending.len() - start >= MAX_LINE {
            self.record(&time, start, start + MAX_LINE, b'P', out);
            start += MAX_LINE;
        }
        self.pending.drain(..start);
    }

    /// At EOF: what is left, marked P (no newline came).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            self.record(&now_rfc3339(), 0, self.pending.len(), b'P', out);
            self.pending.clear();
        }
    }

    fn record(&self, time: &str, from: usize, to: usize, tag: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(time.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.stream.as_bytes());
        out.extend_from_slice(&[b' ', tag, b' ']);
        out.extend_from_slice(&self.pending[from..to]);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_times(records: &[u8]) -> String {
        String::from_utf8_lossy(records).lines().map(|l| l.split_once(' ').unwrap().1.to_string() + "\n").collect()
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut s = LineSplitter::new("stdout");
        let mut out = Vec::new();
        s.feed(b"one\ntw", &mut out);
        s.feed(b"o\n\nthree", &mut out);
        s.flush(&mut out);
        assert_eq!(strip_times(&out), "stdout F one\nstdout F two\nstdout F \nstdout P three\n");
    }

    #[test]
    fn long_lines_are_cut_into_partial_records() {
        let mut s = LineSplitter::new("stderr");
        let mut out = Vec::new();
        s.feed(&vec![b'x'; MAX_LINE + 3], &mut out);
        s.feed(b"\n", &mut out);
        let text = strip_times(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("stderr P xxx") && lines[0].len() == "stderr P ".len() + MAX_LINE);
        assert_eq!(lines[1], "stderr F xxx");
    }

    #[test]
    fn rotation_keeps_the_cap() {
        let dir = std::env::temp_dir().join(format!("pyc-monitor-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctr.log");
        let mut log = LogFile::open(&path, LogConfig { max_size: 100, max_files: 3 }).unwrap();
        let mut record = vec![b'a'; 59];
        record.push(b'\n');
        for _ in 0..10 {
            log.write(&record.repeat(3));
        }
        let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["ctr.log", "ctr.log.1", "ctr.log.2"]);
        assert!(std::fs::metadata(&path).unwrap().len() < 100);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
