//! A container's files as the container sees them (its root, volumes and bind mounts), reached
//! through one directory descriptor, the root, from the host side: every path inside is then
//! resolved beneath it (openat2 RESOLVE_IN_ROOT), never through the host's view.
//!
//! - A running container: its pid 1's root, `/proc/<pid>/root`, opened while a pidfd holds
//!   that process (a pid reused meanwhile is caught). Lookups from there cross the mounts of
//!   the container's own mount namespace.
//! - A stopped container: its overlay (layers, upper and work dirs) mounted in a mount
//!   namespace private to a short-lived thread, its volumes and binds mounted on it as at its
//!   start; the kernel drops all of it when the thread ends, even if the process dies.
//! - An image alone (a volume's copy-up): its layers, read-only, the same way.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use serde::Deserialize;

use crate::container::config::CgroupConfig;
use crate::container::target::{FdPath, InRoot, Leaf};
use crate::error::{Error, Result};
use crate::overlay::{Method, OverlayMount};

/// One mount of a stopped container, made again for the copy.
#[derive(Debug, Deserialize)]
pub struct ViewMount {
    /// A host path (a volume's `_data`, a bind's source); unused for tmpfs.
    #[serde(default)]
    pub source: PathBuf,
    pub destination: String,
    /// A tmpfs of the container: what it held is gone with its run, so an empty, read-only
    /// one stands there (a copy into it fails, rather than landing under it unseen).
    #[serde(default)]
    pub tmpfs: bool,
    #[serde(default)]
    pub readonly: bool,
}

/// Where a container's files are, as Python sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Running { cgroup: CgroupConfig },
    Stopped { lower: Vec<PathBuf>, upper: PathBuf, work: PathBuf, mountpoint: PathBuf, readonly: bool, mounts: Vec<ViewMount> },
    Image { lower: Vec<PathBuf>, mountpoint: PathBuf },
}

fn not_running() -> Error {
    Error::sys("the container is not running", Errno::ESRCH)
}

/// Call `f` with the root of `view`; the root and what is mounted under it last as long as
/// the call.
pub fn with_root<T: Send>(view: &View, f: impl FnOnce(BorrowedFd<'_>) -> Result<T> + Send) -> Result<T> {
    match view {
        View::Running { cgroup } => {
            let cg = crate::cgroup::Cgroup::open(&cgroup.root, &cgroup.path)?;
            let pid = crate::container::container_init(&cg).ok_or_else(not_running)?;
            let pidfd = crate::sys::pidfd_open(pid).map_err(|_| not_running())?;
            let path = CString::new(format!("/proc/{pid}/root")).expect("digits");
            let root = nix::fcntl::open(
                path.as_c_str(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|_| not_running())?;
            // The pid may have ended, and been taken by another process, before the pidfd.
            if !crate::container::is_ns_init(pid) || alive(&pidfd) == Some(false) {
                return Err(not_running());
            }
            f(root.as_fd())
        }
        View::Stopped { lower, upper, work, mountpoint, readonly, mounts } => {
            let overlay = OverlayMount::prepare(lower, Some((upper, work)), false, Method::for_this_kernel()?)?;
            in_private_namespace(mountpoint, |target| {
                overlay.mount(target).map_err(|(i, e)| Error::sys(format!("mount the container's files ({})", overlay.describe(i)), e))?;
                let root = open_root(target)?;
                for (i, m) in mounts.iter().enumerate() {
                    mount_one(root.as_raw_fd(), m).map_err(|e| Error::sys(format!("mount {} (mount {i})", m.destination), e))?;
                }
                if *readonly {
                    mount(None::<&str>, target, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY, None::<&str>)
                        .map_err(|e| Error::sys("make the container's root read-only", e))?;
                }
                f(root.as_fd())
            })
        }
        View::Image { lower, mountpoint } => {
            // overlayfs wants two lower dirs at least, without an upper one: one is bound.
            let overlay = match lower.len() {
                1 => None,
                _ => Some(OverlayMount::prepare(lower, None, false, Method::for_this_kernel()?)?),
            };
            in_private_namespace(mountpoint, |target| {
                match &overlay {
                    Some(o) => o.mount(target).map_err(|(i, e)| Error::sys(format!("mount the image ({})", o.describe(i)), e))?,
                    None => {
                        let first = lower.first().ok_or_else(|| Error::InvalidConfig("the image has no layers".into()))?;
                        mount(Some(first), target, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| Error::sys("mount the image", e))?;
                        mount(None::<&str>, target, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY, None::<&str>)
                            .map_err(|e| Error::sys("mount the image", e))?;
                    }
                }
                f(open_root(target)?.as_fd())
            })
        }
    }
}

/// Whether the process of a pidfd still runs (None: the poll failed).
fn alive(pidfd: &OwnedFd) -> Option<bool> {
    let mut p = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    match unsafe { libc::poll(&mut p, 1, 0) } {
        0 => Some(true),
        1 => Some(false),
        _ => None,
    }
}

fn open_root(target: &std::ffi::CStr) -> Result<OwnedFd> {
    nix::fcntl::open(target, nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| Error::sys("open the container's root", e))
}

/// Run `f` on a thread in a mount namespace of its own (everything private: nothing mounted
/// there is seen anywhere else), with the mount point `mountpoint` as a C string.
fn in_private_namespace<T: Send>(mountpoint: &std::path::Path, f: impl FnOnce(&std::ffi::CStr) -> Result<T> + Send) -> Result<T> {
    // The overlay mount changes the thread's working directory first (overlay.rs).
    if !mountpoint.is_absolute() {
        return Err(Error::InvalidConfig(format!("mount point {} is not absolute", mountpoint.display())));
    }
    let target = CString::new(mountpoint.as_os_str().as_bytes()).map_err(|_| Error::InvalidConfig("mount point contains a NUL byte".into()))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS).map_err(|e| Error::sys("unshare", e))?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).map_err(|e| Error::sys("make mounts private", e))?;
            f(&target)
        })
        .join()
        .map_err(|_| Error::Internal("copy thread panicked".into()))?
    })
}

/// A volume, bind or tmpfs of a stopped container, mounted at its place beneath `root`, with
/// the options the container has (nosuid, nodev; read-only where it is).
fn mount_one(root: std::os::fd::RawFd, m: &ViewMount) -> Result<(), Errno> {
    let target = InRoot::new(&m.destination).map_err(|_| Errno::EINVAL)?;
    let leaf = if !m.tmpfs && std::fs::metadata(&m.source).is_ok_and(|md| !md.is_dir()) { Leaf::File } else { Leaf::Dir };
    let at = target.ensure(root, leaf)?;
    let path = FdPath::new(at.as_raw_fd());
    let safe = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if m.tmpfs {
        return mount(Some("tmpfs"), path.as_cstr(), Some("tmpfs"), safe | MsFlags::MS_RDONLY, Some("size=4k"));
    }
    mount(Some(&m.source), path.as_cstr(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
    drop(at);
    let mounted = target.open(root)?;
    let path = FdPath::new(mounted.as_raw_fd());
    let ro = if m.readonly { MsFlags::MS_RDONLY } else { MsFlags::empty() };
    mount(None::<&str>, path.as_cstr(), None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | safe | ro, None::<&str>)
}
