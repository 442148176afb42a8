//! pyc-init as a sealed memfd: the only program of pyc's that ever runs inside a container.
//!
//! Why a memfd and not a read-only bind mount of the binary (docker's docker-init): a container
//! process can open `/proc/<pid>/exe` of pid 1 or of a process entering the container. Were that
//! the host's file, a later open for writing would overwrite it (CVE-2019-5736), and a container
//! with CAP_SYS_ADMIN could remount a bind mount read-write. A memfd is no file of the host, and
//! its seals (no write, no resize, no more seals) hold against every capability. runc made the
//! same choice. The program is small (a static binary of some hundred KB), so the copy costs
//! about a tenth of a millisecond, once per process: it is kept and handed out as dups.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, IoContext, Result};

/// (path, its sealed copy) of the program asked for last.
static COPY: Mutex<Option<(PathBuf, OwnedFd)>> = Mutex::new(None);

const MFD_EXEC: libc::c_uint = 0x10;
const F_SEAL_EXEC: libc::c_int = 0x20;

/// A close-on-exec fd of a sealed memfd holding the program at `path`, for execveat.
pub fn program(path: &Path) -> Result<OwnedFd> {
    let mut copy = COPY.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((p, fd)) = copy.as_ref() {
        if p == path {
            return fd.try_clone().ctx("dup", path);
        }
    }
    let fd = seal(path)?;
    let out = fd.try_clone().ctx("dup", path)?;
    *copy = Some((path.to_path_buf(), fd));
    Ok(out)
}

fn seal(path: &Path) -> Result<OwnedFd> {
    let mut src = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::InvalidConfig(format!("{} not found: the pyc-init program is needed (run ./setup.sh)", path.display())),
        _ => Error::io("open", path, e),
    })?;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3): say so where vm.memfd_noexec would otherwise make it non-executable.
    let mut raw = unsafe { libc::memfd_create(c"pyc-init".as_ptr(), flags | MFD_EXEC) };
    if raw < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        raw = unsafe { libc::memfd_create(c"pyc-init".as_ptr(), flags) };
    }
    if raw < 0 {
        return Err(Error::io("memfd_create", path, std::io::Error::last_os_error()));
    }
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut dst = File::from(fd.try_clone().ctx("dup", path)?);
    std::io::copy(&mut src, &mut dst).ctx("copy", path)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // F_SEAL_EXEC (Linux 6.3) also keeps the mode bits as they are.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals | F_SEAL_EXEC) } < 0
        && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0
    {
        return Err(Error::io("seal", path, std::io::Error::last_os_error()));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    #[test]
    fn the_copy_is_sealed_against_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prog");
        std::fs::write(&path, b"\x7fELF a program").unwrap();
        let fd = program(&path).unwrap();
        let mut f = File::from(fd);
        // Dups share the offset, which the copy left at the end: read from 0.
        let mut got = [0u8; 14];
        f.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(&got, b"\x7fELF a program");
        // Neither written through this fd, nor reopened for writing through /proc.
        assert!(f.write_all(b"x").is_err());
        let reopened = std::fs::OpenOptions::new().write(true).open(format!("/proc/self/fd/{}", f.as_raw_fd()));
        assert!(reopened.map_or(true, |mut w| w.write_all(b"x").is_err()));
        let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
        assert!(seals & libc::F_SEAL_WRITE != 0 && seals & libc::F_SEAL_SEAL != 0);
        assert!(program(&dir.path().join("missing")).unwrap_err().to_string().contains("pyc-init"));
    }
}
