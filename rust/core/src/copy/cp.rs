//! `pyc cp`: docker's rules for where a copy goes, on two sides, the host and a container's
//! root (view.rs). Paths in the container are resolved beneath its root (RESOLVE_IN_ROOT: a
//! symlink to `/etc` there means the container's /etc); host paths as the host resolves them.
//! The source is written as a tar (tarout.rs) into the same unpacker as image layers, which
//! fills a staging directory beside the destination; merge.rs moves it into place.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::errno::Errno;
use serde::Deserialize;

use super::merge::{merge, remove_all, Policy};
use super::tarout::{fstat, reopen_dir, write_error, write_tar, Top};
use super::view::{with_root, View};
use crate::error::{Error, Result};

/// One `pyc cp`, as Python sends it (msgpack).
#[derive(Debug, Deserialize)]
pub struct CopyConfig {
    pub view: View,
    /// The path in the container, as given.
    pub container_path: String,
    /// The path on the host; None: a tar on the descriptor the call is given (`-`).
    pub host_path: Option<PathBuf>,
    /// Into the container (`pyc cp SRC CONTAINER:DEST`), else out of it.
    pub into: bool,
    /// `-L`: follow a symlink that is the source itself.
    #[serde(default)]
    pub follow: bool,
    /// `-a`: keep owners; without it, what is copied in belongs to the container's root, and
    /// what is copied out to the caller.
    #[serde(default)]
    pub archive: bool,
}

impl CopyConfig {
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self> {
        rmp_serde::from_slice(bytes).map_err(|e| Error::InvalidConfig(e.to_string()))
    }
}

/// Where paths are resolved: the host, or beneath a container's root.
#[derive(Clone, Copy)]
enum Side<'a> {
    Host,
    Container(BorrowedFd<'a>),
}

impl Side<'_> {
    /// Open `path`; `follow`: a symlink at its last component is followed (always, on the way).
    fn open(&self, path: &str, flags: libc::c_int, follow: bool) -> Result<OwnedFd, Errno> {
        let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
        let flags = flags | libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW };
        match self {
            Side::Host => Errno::result(unsafe { libc::open(c.as_ptr(), flags) }).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            Side::Container(root) => crate::sys::open_in_root(root.as_raw_fd(), &c, flags),
        }
    }

    fn describe(&self, path: &str) -> String {
        match self {
            Side::Host => path.to_string(),
            Side::Container(_) => format!("{path} in the container"),
        }
    }
}

/// The source of a copy, open: what it is and the name it goes by.
struct Source {
    node: OwnedFd,
    is_dir: bool,
    name: Vec<u8>,
    /// `SRC/.` (or `/`): what the directory holds, not the directory itself.
    contents: bool,
}

fn is_dir(fd: &OwnedFd) -> Result<bool, Errno> {
    Ok(fstat(fd.as_raw_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// `path` with its trailing `/.` and slashes gone ("/" stays), whether it named what a
/// directory holds (`/.`), and whether it ended with a slash.
fn trim(path: &str) -> (&str, bool, bool) {
    let contents = path.ends_with("/.") || path == ".";
    let p = path.strip_suffix('.').filter(|_| contents).unwrap_or(path);
    let slash = p.ends_with('/');
    let p = p.trim_end_matches('/');
    (
        if p.is_empty() && path.starts_with('/') {
            "/"
        } else if p.is_empty() {
            "."
        } else {
            p
        },
        contents,
        slash,
    )
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn source(side: Side<'_>, path: &str, follow: bool) -> Result<Source> {
    let (p, mut contents, slash) = trim(path);
    let name = base(p);
    if p == "/" || name == ".." || name == "." {
        contents = true;
    }
    let not_found = |e: Errno| Error::sys(format!("could not find {}", side.describe(path)), e);
    let node = side.open(p, libc::O_PATH, follow || slash || contents).map_err(not_found)?;
    let is_dir = is_dir(&node).map_err(not_found)?;
    if (slash || contents) && !is_dir {
        return Err(Error::sys(format!("{} is not a directory", side.describe(path)), Errno::ENOTDIR));
    }
    Ok(Source { node, is_dir, name: name.as_bytes().to_vec(), contents: contents && is_dir })
}

/// Where to unpack, by docker's rules: the directory, and the name the source's top entry
/// takes there (None: the source's contents go straight in).
fn destination(side: Side<'_>, path: &str, src: &Source) -> Result<(OwnedFd, Option<Vec<u8>>)> {
    let (p, _, slash) = trim(path);
    let shown = side.describe(path);
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY;
    match side.open(p, libc::O_PATH, true) {
        Ok(node) => match (is_dir(&node).map_err(|e| Error::sys(format!("stat {shown}"), e))?, src.is_dir) {
            (true, _) => {
                let dir = reopen_dir(std::os::fd::AsFd::as_fd(&node)).map_err(|e| Error::sys(format!("open {shown}"), e))?;
                Ok((dir, (!src.contents).then(|| src.name.clone())))
            }
            (false, true) => Err(Error::sys(format!("cannot copy a directory to the file {shown}"), Errno::ENOTDIR)),
            (false, false) if slash => Err(Error::sys(format!("{shown} is not a directory"), Errno::ENOTDIR)),
            (false, false) => in_parent(side, p, &shown, dir_flags),
        },
        // A file's destination ending in `/` must be a directory that exists (docker's rule);
        // a directory is made there under the new name.
        Err(Errno::ENOENT) if slash && !src.is_dir => Err(Error::sys(format!("the destination directory {shown} does not exist"), Errno::ENOENT)),
        Err(Errno::ENOENT) => in_parent(side, p, &shown, dir_flags),
        Err(e) => Err(Error::sys(format!("open {shown}"), e)),
    }
}

/// The parent directory of `p` (which must exist), and `p`'s last name.
fn in_parent(side: Side<'_>, p: &str, shown: &str, flags: libc::c_int) -> Result<(OwnedFd, Option<Vec<u8>>)> {
    let (parent, name) = match p.rsplit_once('/') {
        Some(("", n)) => ("/", n),
        Some((d, n)) => (d, n),
        None => (".", p),
    };
    let dir = side.open(parent, flags, true).map_err(|e| Error::sys(format!("the parent directory of {shown}"), e))?;
    Ok((dir, Some(name.as_bytes().to_vec())))
}

/// Run one `pyc cp`; `stream` is the tar on stdin or stdout for `-`.
pub fn copy(cfg: &CopyConfig, stream: Option<File>) -> Result<()> {
    with_root(&cfg.view, |root| {
        let (container, host) = (Side::Container(root), Side::Host);
        let (from, to) = if cfg.into { (host, container) } else { (container, host) };
        // Without -a: the container's root owns what comes in; what goes out is the caller's,
        // with no set-id bit and no device node (an image's files never plant either on the host).
        let owner = match (cfg.archive, cfg.into) {
            (true, _) => None,
            (false, true) => Some((0, 0)),
            (false, false) => Some((nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())),
        };
        let how = Extract { owner, tame: !cfg.archive && !cfg.into, policy: Policy::Replace, root_meta: false };
        let host_path = cfg.host_path.as_ref().map(|p| p.to_string_lossy().into_owned());
        let (src_path, dst_path) = match (&host_path, cfg.into) {
            (Some(h), true) => (Some(h.as_str()), cfg.container_path.as_str()),
            (Some(h), false) => (Some(cfg.container_path.as_str()), h.as_str()),
            (None, true) => (None, cfg.container_path.as_str()),
            (None, false) => (Some(cfg.container_path.as_str()), ""),
        };
        match (src_path, stream) {
            // A tar from stdin goes into a directory that exists, as it is.
            (None, Some(input)) => {
                let node = to.open(dst_path, libc::O_PATH, true).map_err(|e| Error::sys(format!("could not find {}", to.describe(dst_path)), e))?;
                if !is_dir(&node).map_err(|e| Error::sys("stat", e))? {
                    return Err(Error::sys(format!("{} must be a directory to copy a tar stream into", to.describe(dst_path)), Errno::ENOTDIR));
                }
                let dir = reopen_dir(std::os::fd::AsFd::as_fd(&node)).map_err(|e| Error::sys(format!("open {}", to.describe(dst_path)), e))?;
                extract_into(dir.as_raw_fd(), dir.as_raw_fd(), &to.describe(dst_path), input, how)
            }
            // Out to stdout: the source as a tar, named as docker names it.
            (Some(src_path), Some(out)) if !cfg.into => {
                let src = source(from, src_path, cfg.follow)?;
                let mut w = write_tar(top(src, None), BufWriter::with_capacity(1 << 20, out))?;
                w.flush().map_err(|e| write_error(&e))
            }
            (Some(src_path), None) => {
                let src = source(from, src_path, cfg.follow)?;
                let (dir, name) = destination(to, dst_path, &src)?;
                transfer(src, name, dir.as_raw_fd(), &to.describe(dst_path), how)
            }
            _ => Err(Error::InvalidConfig("a copy needs a host path or a stream, one of them".into())),
        }
    })
}

/// The tar's top: the source under `name`, a new name at the destination (docker: a directory
/// copied to a path that does not exist becomes that path, `SRC/.` and `/` too); without one,
/// its contents when asked (`SRC/.`, `/`), else the source under its own name.
fn top(src: Source, name: Option<Vec<u8>>) -> Top {
    match name {
        Some(name) => Top::Entry { node: src.node, name },
        None if src.contents => Top::Contents { dir: src.node },
        None => Top::Entry { node: src.node, name: src.name },
    }
}

/// The source written as a tar into a pipe, read by the unpacker on this thread.
fn transfer(src: Source, name: Option<Vec<u8>>, dir: RawFd, shown: &str, how: Extract) -> Result<()> {
    piped(top(src, name), |input| extract_into(dir, dir, shown, input, how))
}

/// `top` written as a tar on a thread of its own into a pipe, whose other end `consume` reads.
pub(super) fn piped<T>(top: Top, consume: impl FnOnce(File) -> Result<T>) -> Result<T> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
    // A wide pipe: the writer and the unpacker run on in bigger steps.
    unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    std::thread::scope(|s| {
        let writer = s.spawn(move || write_tar(top, BufWriter::with_capacity(1 << 20, File::from(w))).and_then(|mut w| w.flush().map_err(|e| write_error(&e))));
        let read = consume(File::from(r));
        let wrote = writer.join().map_err(|_| Error::Internal("tar writer panicked".into()))?;
        match (wrote, read) {
            // A reader that stopped (a full disk) broke the pipe: its error is the cause.
            (Err(Error::Sys { errno: Errno::EPIPE, .. }), r @ Err(_)) => r,
            // A writer that failed cut the tar short: its error is the cause of the reader's.
            (Err(e), _) => Err(e),
            (Ok(()), r) => r,
        }
    })
}

fn random_hex() -> String {
    let mut buf = [0u8; 8];
    // getrandom(2) of 8 bytes does not fail short once the pool is ready; zeros would still be
    // a valid (if unlucky) name, which mkdir refuses if taken.
    unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    hex::encode(buf)
}

/// How `extract_into` unpacks: `owner` owns every entry when given (else the tar's owners);
/// `tame`: no set-id bit or device node (see `Mode::Plain`); `root_meta`: a `./` entry gives
/// `dir` its owner, mode and times.
#[derive(Clone, Copy)]
pub struct Extract {
    pub owner: Option<(u32, u32)>,
    pub tame: bool,
    pub policy: Policy,
    pub root_meta: bool,
}

/// Unpack the tar `input` into the directory `dir`: staged in a fresh directory in `beside`
/// (`dir` itself, or a directory on the same filesystem), then moved into place (`root_meta`: `dir` takes the owner and mode of the tar's `./`). A failure
/// (a bad archive, a full disk) removes what was staged and leaves `dir` as it was.
pub fn extract_into(dir: RawFd, beside: RawFd, shown: &str, input: impl Read + Send, how: Extract) -> Result<()> {
    let Extract { owner, tame, policy, root_meta } = how;
    let stage = CString::new(format!(".pyc-cp-{}", random_hex())).expect("hex");
    Errno::result(unsafe { libc::mkdirat(beside, stage.as_ptr(), 0o700) }).map_err(|e| Error::sys(format!("copy into {shown}"), e))?;
    let staged = (|| {
        let fd = super::tarout::openat(beside, &stage, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .map_err(|e| Error::sys("open the staging directory", e))?;
        // Its descriptor's /proc entry names it: nothing swapped in at its name is used.
        let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let root = crate::layer::unpack_plain(input, &path, owner, tame)?;
        // Its metadata as the tar's `./` gave it, before the moves out of it change its times.
        let st = fstat(fd.as_raw_fd()).map_err(|e| Error::sys("stat the staging directory", e))?;
        merge(fd.as_raw_fd(), dir, policy, false)?;
        Ok(root.then_some(st))
    })();
    let removed = remove_all(beside, &stage);
    let root = staged?;
    removed.map_err(|e| Error::sys("remove the staging directory", e))?;
    // Last, once nothing more changes in `dir` (the staging directory's removal did).
    if let (true, Some(st)) = (root_meta, root) {
        super::merge::set_meta(&st, dir).map_err(|e| Error::sys(format!("set the owner and mode of {shown}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_dots_and_slashes() {
        assert_eq!(trim("/a/b/."), ("/a/b", true, true));
        assert_eq!(trim("/a/b/"), ("/a/b", false, true));
        assert_eq!(trim("/a/b"), ("/a/b", false, false));
        assert_eq!(trim("/"), ("/", false, true));
        assert_eq!(trim("/."), ("/", true, true));
        assert_eq!(trim("."), (".", true, false));
        assert_eq!(trim("rel/x.d"), ("rel/x.d", false, false));
    }
}
