//! The overlay mount of an image's layers: the one routine behind a container's root (child.rs)
//! and `pyc export` (layer/export.rs).
//!
//! Two ways to the same mount:
//! - `Fsconfig` (Linux 6.8 and newer): fsopen, one `lowerdir+` per layer, fsmount, move_mount.
//!   No length limits the whole; overlayfs itself stacks at most 500 lower layers.
//! - `Legacy` (older kernels, or `PYC_OVERLAY_MOUNT=legacy`): mount(2), whose options are one
//!   page (4096 bytes). Full layer paths fill that page at about 40 layers.
//!
//! Both name each directory by a descriptor: the mounting thread, its working directory at
//! /proc/thread-self/fd, gives its number ("17"). Why this rather than docker's short `l/<id>`
//! links or paths relative to the layers dir: a relative 64-hex layer name still takes 65 bytes
//! (60 layers a page), and short links are a second name per layer that the store must make, keep
//! and collect. A number takes 2 to 4 bytes: one page holds all 500 layers on any kernel, whatever
//! the store's path, and fsconfig's limit of 255 bytes per value never meets a long PYC_ROOT.
//! The container sees `lowerdir=5:6:…` in its /proc/mounts, not the host's paths.
//!
//! The parent opens each dir (O_PATH, close-on-exec): that checks it and reserves its number, so
//! the options are written before the clone. overlayfs takes layers from the mounting process's
//! own mount namespace only, and a clone's is a copy: so `mount` opens each path again there, onto
//! its reserved number. The child closes its copies right after the mount: no host directory
//! stays open in the container.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::MsFlags;

use crate::error::{Error, IoContext, Result};

/// overlayfs' own limit on lower layers (OVL_MAX_STACK).
pub const MAX_LAYERS: usize = 500;
/// mount(2) takes one page of options.
const PAGE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Fsconfig,
    Legacy,
}

impl Method {
    /// Fsconfig where the kernel takes `lowerdir+`; `PYC_OVERLAY_MOUNT=legacy` forces mount(2),
    /// so tests cover the older kernels' path on a new one.
    pub fn for_this_kernel() -> Result<Method> {
        match std::env::var_os("PYC_OVERLAY_MOUNT") {
            Some(v) if v == "legacy" => return Ok(Method::Legacy),
            Some(v) if !v.is_empty() => return Err(Error::InvalidConfig(format!("PYC_OVERLAY_MOUNT={}: the only value is legacy", v.to_string_lossy()))),
            _ => {}
        }
        static HAS_LOWERDIR_ADD: OnceLock<bool> = OnceLock::new();
        Ok(if *HAS_LOWERDIR_ADD.get_or_init(has_lowerdir_add) { Method::Fsconfig } else { Method::Legacy })
    }
}

/// Whether overlayfs takes `lowerdir+` (Linux 6.8). Before 6.5 overlayfs gets its options through
/// the VFS' shim for mount(2) parsers, which accepts any key (and fails at create): a native
/// parser is told by its refusing an unknown key.
fn has_lowerdir_add() -> bool {
    let Ok(fs) = fsopen() else { return false };
    let set = |key: &CStr, value: &CStr| fsconfig(&fs, libc::FSCONFIG_SET_STRING, key, Some(value)).is_ok();
    set(c"lowerdir+", c"/") && !set(c"pyc-probe", c"x")
}

fn fsopen() -> Result<OwnedFd, Errno> {
    let fd = Errno::result(unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), libc::FSOPEN_CLOEXEC) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn fsconfig(fs: &OwnedFd, cmd: libc::c_uint, key: &CStr, value: Option<&CStr>) -> Result<(), Errno> {
    let value = value.map_or(std::ptr::null(), |v| v.as_ptr());
    let key = if key.is_empty() { std::ptr::null() } else { key.as_ptr() };
    Errno::result(unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), cmd, key, value, 0) }).map(drop)
}

/// An overlay ready to mount: everything the mount needs, prepared (and checked) beforehand, so
/// that `mount` allocates nothing and may run on the child side of a raw clone.
#[derive(Debug)]
pub struct OverlayMount {
    method: Method,
    /// The lower dirs, top-most first, then the upper and work dirs if there are.
    dirs: Vec<OwnedFd>,
    paths: Vec<PathBuf>,
    cpaths: Vec<CString>,
    /// Each dir's descriptor number, its name from /proc/thread-self/fd (Fsconfig).
    names: Vec<CString>,
    /// The whole mount(2) option string (Legacy).
    data: CString,
    lowers: usize,
    volatile: bool,
    /// Device nodes on it open (a --privileged container's root, as docker's); else nodev.
    dev: bool,
}

/// What `mount` failed at, past the dirs (whose indexes come first).
const CHDIR: usize = 0;
const FSOPEN: usize = 1;
const CREATE: usize = 2;
const ATTACH: usize = 3;

impl OverlayMount {
    /// `lower` top-most first; without `upper_work` (upper dir, work dir) the mount is read-only.
    /// `volatile`: no syncs of the upper dir, for what is thrown away.
    pub fn prepare(lower: &[PathBuf], upper_work: Option<(&Path, &Path)>, volatile: bool, method: Method) -> Result<OverlayMount> {
        if lower.is_empty() {
            return Err(Error::InvalidConfig("the image has no layers".into()));
        }
        if lower.len() > MAX_LAYERS {
            return Err(Error::InvalidConfig(format!("{} layers are more than overlayfs stacks ({MAX_LAYERS})", lower.len())));
        }
        let mut paths = lower.to_vec();
        if let Some((upper, work)) = upper_work {
            paths.extend([upper.to_path_buf(), work.to_path_buf()]);
        }
        let dirs = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let dir = nix::fcntl::open(p, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty());
                dir.map_err(std::io::Error::from).ctx(if i < lower.len() { "open layer" } else { "open" }, p)
            })
            .collect::<Result<Vec<_>>>()?;
        let cpaths = paths
            .iter()
            .map(|p| CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::InvalidConfig(format!("{} contains a NUL byte", p.display()))))
            .collect::<Result<_>>()?;
        let fds: Vec<RawFd> = dirs.iter().map(|d| d.as_raw_fd()).collect();
        let (names, data) = match method {
            Method::Fsconfig => (fds.iter().map(|fd| CString::new(fd.to_string()).unwrap()).collect(), CString::default()),
            Method::Legacy => (Vec::new(), legacy_data(&fds, lower.len(), volatile)?),
        };
        Ok(OverlayMount { method, dirs, paths, cpaths, names, data, lowers: lower.len(), volatile, dev: false })
    }

    /// The same mount, but without nodev: for a --privileged container, which has the host's
    /// devices anyway and may make its own where it likes (debootstrap in it, say), as under docker.
    pub fn with_devices(self) -> Self {
        OverlayMount { dev: true, ..self }
    }

    /// The flags of the mount that `mount` makes besides read-only: to keep them in a remount.
    pub fn flags(&self) -> MsFlags {
        if self.dev {
            MsFlags::empty()
        } else {
            MsFlags::MS_NODEV
        }
    }

    fn upper(&self) -> bool {
        self.dirs.len() > self.lowers
    }

    /// Mount on `target` (an absolute path). Allocation-free; sets the calling thread's working
    /// directory to /proc/thread-self/fd, so the caller must have a filesystem context of its
    /// own (a clone without CLONE_FS, a thread after unshare(CLONE_FS)). Err: (what failed,
    /// for `describe`, and errno).
    pub fn mount(&self, target: &CStr) -> Result<(), (usize, Errno)> {
        let past = self.dirs.len();
        for (i, (slot, path)) in self.dirs.iter().zip(&self.cpaths).enumerate() {
            reopen(path, slot.as_raw_fd()).map_err(|e| (i, e))?;
        }
        Errno::result(unsafe { libc::chdir(c"/proc/thread-self/fd".as_ptr()) }).map_err(|e| (past + CHDIR, e))?;
        // nodev: a device node that comes with an image (or is made in it) opens nothing.
        let read_only = !self.upper();
        match self.method {
            Method::Legacy => {
                let flags = self.flags() | if read_only { MsFlags::MS_RDONLY } else { MsFlags::empty() };
                nix::mount::mount(Some(c"overlay"), target, Some(c"overlay"), flags, Some(self.data.as_c_str())).map_err(|e| (past + ATTACH, e))
            }
            Method::Fsconfig => {
                let fs = fsopen().map_err(|e| (past + FSOPEN, e))?;
                fsconfig(&fs, libc::FSCONFIG_SET_STRING, c"source", Some(c"overlay")).map_err(|e| (past + FSOPEN, e))?;
                for (i, name) in self.names.iter().enumerate() {
                    let key = if i < self.lowers {
                        c"lowerdir+"
                    } else if i == self.lowers {
                        c"upperdir"
                    } else {
                        c"workdir"
                    };
                    fsconfig(&fs, libc::FSCONFIG_SET_STRING, key, Some(name)).map_err(|e| (i, e))?;
                }
                if self.volatile {
                    fsconfig(&fs, libc::FSCONFIG_SET_FLAG, c"volatile", None).map_err(|e| (past + CREATE, e))?;
                }
                fsconfig(&fs, libc::FSCONFIG_CMD_CREATE, c"", None).map_err(|e| (past + CREATE, e))?;
                let nodev = if self.dev { 0 } else { libc::MOUNT_ATTR_NODEV };
                let attrs = nodev | if read_only { libc::MOUNT_ATTR_RDONLY } else { 0 };
                let mnt =
                    Errno::result(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), libc::FSMOUNT_CLOEXEC, attrs) }).map_err(|e| (past + CREATE, e))?;
                let mnt = unsafe { OwnedFd::from_raw_fd(mnt as RawFd) };
                let moved = unsafe {
                    libc::syscall(libc::SYS_move_mount, mnt.as_raw_fd(), c"".as_ptr(), libc::AT_FDCWD, target.as_ptr(), libc::MOVE_MOUNT_F_EMPTY_PATH)
                };
                Errno::result(moved).map(drop).map_err(|e| (past + ATTACH, e))
            }
        }
    }

    /// Close this process's copies of the dirs' descriptors without freeing anything: for the
    /// child side of a clone, once mounted, so that no host directory stays open in there.
    pub fn close_copies(&self) {
        for d in &self.dirs {
            unsafe { libc::close(d.as_raw_fd()) };
        }
    }

    /// What a failure of `mount` at `what` was about, for its message.
    pub fn describe(&self, what: usize) -> String {
        let n = self.dirs.len();
        match what {
            i if i < self.lowers => format!("layer {} of {}, {}", self.lowers - i, self.lowers, self.paths[i].display()),
            i if i < n => format!("{} dir {}", if i == self.lowers { "upper" } else { "work" }, self.paths[i].display()),
            i if i == n + CHDIR => "change to /proc/thread-self/fd".into(),
            i if i == n + FSOPEN => "fsopen".into(),
            i if i == n + CREATE => "create".into(),
            _ if self.method == Method::Legacy => "mount".into(),
            _ => "move_mount".into(),
        }
    }
}

/// Open `path` in this mount namespace onto the descriptor number `slot`.
fn reopen(path: &CStr, slot: RawFd) -> Result<(), Errno> {
    let fd = Errno::result(unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) })?;
    let moved = Errno::result(unsafe { libc::dup3(fd, slot, libc::O_CLOEXEC) });
    unsafe { libc::close(fd) };
    moved.map(drop)
}

/// mount(2)'s options, the dirs named by descriptor number: `lowerdir=A:B,upperdir=C,workdir=D`.
fn legacy_data(fds: &[RawFd], lowers: usize, volatile: bool) -> Result<CString> {
    let join = |fds: &[RawFd]| fds.iter().map(|fd| fd.to_string()).collect::<Vec<_>>().join(":");
    let mut data = format!("lowerdir={}", join(&fds[..lowers]));
    if let [upper, work] = fds[lowers..] {
        data += &format!(",upperdir={upper},workdir={work}");
    }
    if volatile {
        data += ",volatile";
    }
    if data.len() >= PAGE {
        return Err(Error::InvalidConfig(format!(
            "{lowers} layers do not fit in one overlay mount(2): their options take {} of {PAGE} bytes (Linux 6.8's fsconfig has no such limit)",
            data.len()
        )));
    }
    Ok(CString::new(data).unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_options_name_dirs_by_descriptor() {
        assert_eq!(legacy_data(&[5, 6, 7, 8], 2, true).unwrap().to_str().unwrap(), "lowerdir=5:6,upperdir=7,workdir=8,volatile");
        assert_eq!(legacy_data(&[5, 6], 2, false).unwrap().to_str().unwrap(), "lowerdir=5:6");
        // 500 layers fit with the numbers a process has, and a page is refused beyond that.
        let fds: Vec<RawFd> = (1000..1502).collect();
        assert!(legacy_data(&fds, 500, true).unwrap().as_bytes().len() < 2600);
        let huge: Vec<RawFd> = (1_000_000_000..1_000_000_502).collect();
        let err = legacy_data(&huge, 500, true).unwrap_err().to_string();
        assert!(err.contains("500 layers do not fit in one overlay mount(2): their options take 5") && err.contains("of 4096 bytes"), "{err}");
    }

    #[test]
    fn bad_layer_lists_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lower = vec![dir.path().to_path_buf(); MAX_LAYERS + 1];
        let err = OverlayMount::prepare(&lower, None, false, Method::Legacy).unwrap_err().to_string();
        assert!(err.contains("501 layers are more than overlayfs stacks (500)"), "{err}");
        assert!(OverlayMount::prepare(&[], None, false, Method::Legacy).unwrap_err().to_string().contains("no layers"));
        let err = OverlayMount::prepare(&[dir.path().join("gone")], None, false, Method::Fsconfig).unwrap_err().to_string();
        assert!(err.starts_with("open layer ") && err.contains("gone"), "{err}");
    }

    #[test]
    fn a_prepared_overlay_holds_one_descriptor_per_dir() {
        let dir = tempfile::tempdir().unwrap();
        let (a, u, w) = (dir.path().join("a"), dir.path().join("u"), dir.path().join("w"));
        for d in [&a, &u, &w] {
            std::fs::create_dir(d).unwrap();
        }
        let m = OverlayMount::prepare(&[a.clone(), a.clone()], Some((&u, &w)), true, Method::Fsconfig).unwrap();
        assert_eq!((m.dirs.len(), m.names.len(), m.lowers), (4, 4, 2));
        assert_eq!(m.names[2].to_str().unwrap(), m.dirs[2].as_raw_fd().to_string());
        assert_eq!(m.describe(0), format!("layer 2 of 2, {}", a.display()));
        assert_eq!(m.describe(2), format!("upper dir {}", u.display()));
        let m = OverlayMount::prepare(&[a.clone(), a], Some((&u, &w)), false, Method::Legacy).unwrap();
        let fd = |i: usize| m.dirs[i].as_raw_fd();
        assert_eq!(m.data.to_str().unwrap(), format!("lowerdir={}:{},upperdir={},workdir={}", fd(0), fd(1), fd(2), fd(3)));
    }

    /// Mount `lower` (and an upper) on a fresh dir in a mount namespace private to a thread, as
    /// prepared outside it (the container's case: the clone's namespace is a copy); what `look`
    /// returns of the merged tree, and the overlay's line of mountinfo.
    fn mounted<T: Send + 'static>(lower: Vec<PathBuf>, upper: bool, method: Method, look: fn(&Path) -> T) -> (T, String) {
        let dir = tempfile::tempdir().unwrap();
        let (u, w, target) = (dir.path().join("u"), dir.path().join("w"), dir.path().join("m"));
        for d in [&u, &w, &target] {
            std::fs::create_dir(d).unwrap();
        }
        let m = OverlayMount::prepare(&lower, upper.then_some((u.as_path(), w.as_path())), upper, method).unwrap();
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS).unwrap();
            nix::mount::mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).unwrap();
            let target_c = CString::new(target.as_os_str().as_bytes()).unwrap();
            m.mount(&target_c).map_err(|(i, e)| format!("{}: {e}", m.describe(i))).unwrap();
            let seen = look(&target);
            let info = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
            let line = info.lines().find(|l| l.contains(target.to_str().unwrap())).unwrap().to_string();
            nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
            (seen, line)
        })
        .join()
        .unwrap()
    }

    #[test]
    fn the_probe_agrees_with_the_kernel_version() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::uname(&mut uts) }, 0);
        let release = unsafe { CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy().into_owned();
        let mut v = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
        let version = (v.next().unwrap(), v.next().unwrap());
        if version >= (6, 8) {
            assert!(has_lowerdir_add(), "{release}");
        } else if version < (6, 5) {
            assert!(!has_lowerdir_add(), "{release}");
        }
    }

    #[test]
    fn five_hundred_layers_mount_both_ways() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // Layer k holds file k and "top" (k); top-most first, as overlayfs wants them.
        let lower: Vec<PathBuf> = (0..MAX_LAYERS)
            .rev()
            .map(|k| {
                let l = dir.path().join(format!("{k:0>64}"));
                std::fs::create_dir(&l).unwrap();
                std::fs::write(l.join(k.to_string()), k.to_string()).unwrap();
                std::fs::write(l.join("top"), k.to_string()).unwrap();
                l
            })
            .collect();
        let look = |p: &Path| (std::fs::read_dir(p).unwrap().count(), std::fs::read_to_string(p.join("top")).unwrap());
        for method in [Method::Legacy, Method::for_this_kernel().unwrap()] {
            for upper in [true, false] {
                let ((count, top), line) = mounted(lower.clone(), upper, method, look);
                assert_eq!((count, top.as_str()), (MAX_LAYERS + 1, "499"), "{method:?}");
                // Named by descriptor, not by the host's paths; read-only without an upper dir.
                // (Which numbers depends on the fds other tests' threads hold meanwhile.)
                let key = if method == Method::Legacy { ",lowerdir=" } else { ",lowerdir+=" };
                let named = line.split_once(key).is_some_and(|(_, rest)| rest.starts_with(|c: char| c.is_ascii_digit()));
                assert!(line.contains(" - overlay overlay ") && named && !line.contains(dir.path().to_str().unwrap()), "{line}");
                assert!(line.contains(if upper { " rw,nodev," } else { " ro,nodev," }), "{line}");
            }
        }
    }
}
