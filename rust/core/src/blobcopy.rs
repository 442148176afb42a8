//! Copying a stored blob into an archive being written, inside the kernel: `pyc save` spends
//! its time moving layer bytes, and a user-space read/write loop copies each byte twice more.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::copy_file_range;
use nix::sys::sendfile::sendfile;
use nix::sys::stat::{fstat, SFlag};

use crate::error::{Error, IoContext, Result};

/// Bytes per system call: small enough for a progress bar (polling the output's offset) to move.
const CHUNK: usize = 8 << 20;

/// Append all of `src` to `out` at its current offset (a regular file or a pipe); returns the
/// bytes copied. On a regular file each chunk's writeback starts as soon as it is copied, so
/// the caller's final fsync waits for the last chunk only, not the whole file.
pub fn copy_file_to(src: &Path, out: BorrowedFd<'_>) -> Result<u64> {
    let f = File::open(src).ctx("open", src)?;
    let size = f.metadata().ctx("stat", src)?.len();
    let st = fstat(out).map_err(|e| Error::sys("stat output", e))?;
    let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    let mut start = if regular { nix::unistd::lseek(out, 0, nix::unistd::Whence::SeekCur).map_err(|e| Error::sys("seek output", e))? as u64 } else { 0 };
    let mut done = 0u64;
    // copy_file_range: regular files on the same filesystem (or one of its type); sendfile:
    // anything else, pipes included; read and write: what neither takes (an O_APPEND file).
    // Each continues from the source's offset where the one before stopped.
    let mut how = if regular { How::CopyFileRange } else { How::Sendfile };
    while done < size {
        let want = CHUNK.min((size - done) as usize);
        let n = match how {
            How::CopyFileRange => copy_file_range(f.as_fd(), None, out, None, want),
            How::Sendfile => sendfile(out, f.as_fd(), None, want),
            How::ReadWrite => read_write(&f, out, want),
        };
        let n = match (n, how) {
            (Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EBADF), How::CopyFileRange) => {
                how = How::Sendfile;
                continue;
            }
            (Err(Errno::EINVAL | Errno::ENOSYS), How::Sendfile) => {
                how = How::ReadWrite;
                continue;
            }
            (Err(Errno::EINTR), _) => continue,
            (r, _) => r.map_err(|e| Error::io("copy", src, io::Error::from(e)))?,
        };
        if n == 0 {
            return Err(Error::io("copy", src, io::Error::new(io::ErrorKind::UnexpectedEof, "blob shorter than its size")));
        }
        done += n as u64;
        if regular {
            crate::sys::start_writeback(out, start, n as u64);
            start += n as u64;
        }
    }
    Ok(done)
}

#[derive(Clone, Copy)]
enum How {
    CopyFileRange,
    Sendfile,
    ReadWrite,
}

fn read_write(f: &File, out: BorrowedFd<'_>, want: usize) -> nix::Result<usize> {
    let mut buf = vec![0u8; want.min(1 << 20)];
    let n = nix::unistd::read(f, &mut buf)?;
    let mut written = 0;
    while written < n {
        written += nix::unistd::write(out, &buf[written..n])?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;

    #[test]
    fn appends_after_what_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("blob");
        let body: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &body).unwrap();
        let mut out = tempfile::tempfile().unwrap();
        out.write_all(b"head").unwrap();
        assert_eq!(copy_file_to(&src, out.as_fd()).unwrap(), body.len() as u64);
        out.write_all(b"tail").unwrap();
        out.rewind().unwrap();
        let mut got = Vec::new();
        out.read_to_end(&mut got).unwrap();
        assert_eq!(got, [b"head".as_slice(), &body, b"tail"].concat());
    }

    #[test]
    fn into_a_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("blob");
        std::fs::write(&src, b"abc").unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        assert_eq!(copy_file_to(&src, w.as_fd()).unwrap(), 3);
        drop(w);
        let mut got = Vec::new();
        File::from(r).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"abc");
    }

    #[test]
    fn onto_an_append_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("blob"), dir.path().join("out"));
        std::fs::write(&src, b"abc").unwrap();
        std::fs::write(&dst, b"x").unwrap();
        let out = std::fs::OpenOptions::new().append(true).open(&dst).unwrap();
        assert_eq!(copy_file_to(&src, out.as_fd()).unwrap(), 3);
        assert_eq!(std::fs::read(&dst).unwrap(), b"xabc");
    }

    #[test]
    fn missing_blob_names_its_path() {
        let out = tempfile::tempfile().unwrap();
        let err = copy_file_to(Path::new("/nonexistent/blob"), out.as_fd()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/blob"), "{err}");
    }
}
