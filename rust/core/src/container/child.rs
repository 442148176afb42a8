//! The container's side of the clone: carries out the plan and execs the command.
//!
//! This runs in a copy of the caller's memory (the caller may be a Python interpreter), made by
//! a raw clone that skips the libc fork handlers. Another thread of the caller may have held a
//! lock (malloc's among them) at that moment, so this side allocates nothing and takes no lock:
//! every string it needs was prepared in the parent (plan.rs).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};

use super::plan::{Caps, Exec, Plan};
use super::target::{FdPath, Leaf};
use crate::sys::cloexec_from;

/// Which step failed, sent to the parent through the error pipe with an index and errno.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Sync = 1,
    Cgroup,
    CgroupNs,
    Propagation,
    Overlay,
    RootFd,
    MountTarget,
    Mount,
    Remount,
    MountPropagation,
    Link,
    Workdir,
    PivotRoot,
    Masked,
    Readonly,
    ReadonlyRoot,
    Hostname,
    Loopback,
    Chdir,
    NoNewPrivs,
    Stdio,
    Groups,
    Gid,
    Uid,
    Caps,
    Signals,
    NotFound,
    NotExecutable,
    Exec,
    Init,
    Setns,
    Tty,
}

impl Step {
    pub fn from_u32(v: u32) -> Option<Step> {
        use Step::*;
        const ALL: [Step; 32] = [
            Sync,
            Cgroup,
            CgroupNs,
            Propagation,
            Overlay,
            RootFd,
            MountTarget,
            Mount,
            Remount,
            MountPropagation,
            Link,
            Workdir,
            PivotRoot,
            Masked,
            Readonly,
            ReadonlyRoot,
            Hostname,
            Loopback,
            Chdir,
            NoNewPrivs,
            Stdio,
            Groups,
            Gid,
            Uid,
            Caps,
            Signals,
            NotFound,
            NotExecutable,
            Exec,
            Init,
            Setns,
            Tty,
        ];
        ALL.into_iter().find(|s| *s as u32 == v)
    }
}

pub struct Failure {
    pub step: Step,
    pub index: u32,
    pub errno: i32,
}

impl Failure {
    pub const SIZE: usize = 12;

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..4].copy_from_slice(&(self.step as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b[8..12].copy_from_slice(&self.errno.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8; Self::SIZE]) -> Option<Failure> {
        let word = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
        Some(Failure { step: Step::from_u32(word(0))?, index: word(4), errno: word(8) as i32 })
    }
}

/// The descriptors the child works with; the parent's ends are closed first thing.
pub struct ChildFds {
    pub sync_read: RawFd,
    pub error_write: RawFd,
    pub close: [RawFd; 4],
    pub stdio: [RawFd; 3],
    /// `-t`: stdio is a pty made inside instead (pty.rs).
    pub tty: Option<crate::pty::Inside>,
}

type Res = Result<(), Failure>;

pub(super) fn at(step: Step, index: usize) -> impl Fn(Errno) -> Failure {
    move |e| Failure { step, index: index as u32, errno: e as i32 }
}

/// Never returns: execs the command, or reports the failure and exits.
pub fn child_main(plan: &Plan, fds: &ChildFds) -> ! {
    for fd in fds.close {
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
    }
    let failure = match setup_and_exec(plan, fds) {
        Ok(()) => unreachable_exec(),
        Err(f) => f,
    };
    let bytes = failure.encode();
    unsafe {
        libc::write(fds.error_write, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(1)
    }
}

fn unreachable_exec() -> Failure {
    Failure { step: Step::Exec, index: 0, errno: 0 }
}

fn setup_and_exec(plan: &Plan, fds: &ChildFds) -> Res {
    // No daemon holds the container: it lives as long as the pyc process that waits for it, so
    // what `pyc ps` says of a container whose pyc died (exited) stays true. Should pyc die
    // before this line, the sync read below sees EOF and the child leaves.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) }).map_err(at(Step::Sync, 0))?;
    for (i, tasks) in plan.cgroup_tasks.iter().enumerate() {
        join_cgroup(tasks).map_err(at(Step::Cgroup, i))?;
    }
    // Modes in the spec are exact (devices 0666); the command gets docker's umask.
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    mount(None::<&CStr>, c"/", None::<&CStr>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&CStr>).map_err(at(Step::Propagation, 0))?;
    // nodev (overlay.rs): the container's devices are the ones pyc makes in its /dev tmpfs.
    let mounted = plan.overlay.mount(plan.rootfs.as_c_str());
    plan.overlay.close_copies();
    mounted.map_err(|(i, e)| at(Step::Overlay, i)(e))?;
    let root = nix::fcntl::open(
        plan.rootfs.as_c_str(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(at(Step::RootFd, 0))?;
    let root = root.as_raw_fd();

    mount_all(plan, root)?;
    for (i, (target, link)) in plan.links.iter().enumerate() {
        // A link is a leaf of its own kind; ensure() with Leaf::File would make a file instead.
        match link.open(root) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(at(Step::Link, i)(e)),
        }
        symlink_in_root(root, target, link).map_err(at(Step::Link, i))?;
    }
    plan.cwd_in_root.ensure(root, Leaf::Dir).map_err(at(Step::Workdir, 0))?;

    pivot(root)?;
    for (i, p) in plan.masked.iter().enumerate() {
        mask_path(p).map_err(at(Step::Masked, i))?;
    }
    for (i, p) in plan.readonly.iter().enumerate() {
        readonly_path(p).map_err(at(Step::Readonly, i))?;
    }
    if plan.readonly_root {
        mount(None::<&CStr>, c"/", None::<&CStr>, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY, None::<&CStr>)
            .map_err(at(Step::ReadonlyRoot, 0))?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(std::ffi::OsStr::from_bytes(h.as_c_str().to_bytes())).map_err(at(Step::Hostname, 0))?;
    }
    if plan.net_ns {
        loopback_up().map_err(at(Step::Loopback, 0))?;
    }
    enter_process(&plan.cwd, plan.no_new_privs, fds.stdio, fds.tty.as_ref())?;
    // Where the parent moves us into our cgroup (v2 without clone3), it does so while the mounts
    // above are made; the command itself must start inside.
    let mut byte = 0u8;
    let n = unsafe { libc::read(fds.sync_read, (&mut byte as *mut u8).cast(), 1) };
    if n != 1 {
        unsafe { libc::_exit(1) }; // EOF: the parent is gone
    }
    unsafe { libc::close(fds.sync_read) };
    if plan.cgroup_ns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).map_err(at(Step::CgroupNs, 0))?;
    }
    become_user(plan.uid, plan.gid, &plan.groups, plan.caps.as_ref())?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    if plan.init {
        // From here on this is the command's process; pid 1 stays in there as the reaper.
        super::init::fork_command(plan.tty).map_err(at(Step::Init, 0))?;
    }
    cloexec_from(3).map_err(at(Step::Stdio, 3))?;
    reset_signals().map_err(at(Step::Signals, 0))?;
    exec(&plan.exec)
}

fn mount_all(plan: &Plan, root: RawFd) -> Res {
    for (i, m) in plan.mounts.iter().enumerate() {
        let target = m.target.ensure(root, m.leaf).map_err(at(Step::MountTarget, i))?;
        if let Leaf::Node { .. } = m.leaf {
            continue;
        }
        let path = FdPath::new(target.as_raw_fd());
        mount(
            Some(m.source.as_c_str()),
            path.as_cstr(),
            Some(m.fstype.as_c_str()).filter(|t| !t.is_empty()),
            m.flags,
            Some(m.data.as_c_str()).filter(|d| !d.is_empty()),
        )
        .map_err(at(Step::Mount, i))?;
        drop(target);
        // Every mount here is private already (the whole tree was made private first).
        let propagation = m.propagation - (MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        if m.remount.is_none() && propagation.is_empty() {
            continue;
        }
        // The fd above names what is under the new mount; open again to reach the mount itself.
        let mounted = m.target.open(root).map_err(at(Step::MountTarget, i))?;
        let path = FdPath::new(mounted.as_raw_fd());
        if let Some(flags) = m.remount {
            mount(None::<&CStr>, path.as_cstr(), None::<&CStr>, flags, None::<&CStr>).map_err(at(Step::Remount, i))?;
        }
        if !propagation.is_empty() {
            mount(None::<&CStr>, path.as_cstr(), None::<&CStr>, m.propagation, None::<&CStr>).map_err(at(Step::MountPropagation, i))?;
        }
    }
    Ok(())
}

fn join_cgroup(tasks: &CStr) -> Result<(), Errno> {
    let fd = nix::fcntl::open(tasks, nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    nix::unistd::write(&fd, b"0").map(drop)
}

fn symlink_in_root(root: RawFd, target: &CStr, link: &super::target::InRoot) -> Result<(), Errno> {
    // The link's directory must exist already (it is /dev here); resolve it inside the root.
    let dir = link.parent_open(root)?;
    let ret = unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), link.name().as_ptr()) };
    match Errno::result(ret) {
        Ok(_) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

fn pivot(root: RawFd) -> Res {
    let f = at(Step::PivotRoot, 0);
    nix::unistd::fchdir(unsafe { std::os::fd::BorrowedFd::borrow_raw(root) }).map_err(&f)?;
    // pivot_root(".", "."): the old root ends up stacked on the new one, and is detached next.
    nix::unistd::pivot_root(c".", c".").map_err(&f)?;
    umount2(c".", MntFlags::MNT_DETACH).map_err(&f)?;
    nix::unistd::chdir(c"/").map_err(&f)
}

fn mask_path(p: &CStr) -> Result<(), Errno> {
    let st = match nix::sys::stat::stat(p) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        mount(Some(c"tmpfs"), p, Some(c"tmpfs"), MsFlags::MS_RDONLY, None::<&CStr>)
    } else {
        mount(Some(c"/dev/null"), p, None::<&CStr>, MsFlags::MS_BIND, None::<&CStr>)
    }
}

fn readonly_path(p: &CStr) -> Result<(), Errno> {
    match mount(Some(p), p, None::<&CStr>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&CStr>) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other?,
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some(p), p, None::<&CStr>, flags, None::<&CStr>)
}

fn loopback_up() -> Result<(), Errno> {
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    let sock = Errno::result(sock)?;
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[..2].copy_from_slice(&[b'l' as libc::c_char, b'o' as libc::c_char]);
    let res = (|| {
        Errno::result(unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) })?;
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        Errno::result(unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &mut req) }).map(drop)
    })();
    unsafe { libc::close(sock) };
    res
}

pub(super) fn become_user(uid: u32, gid: u32, groups: &[libc::gid_t], caps: Option<&Caps>) -> Res {
    if let Some(c) = caps {
        drop_bounding(c).map_err(at(Step::Caps, 0))?;
    }
    Errno::result(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) }).map_err(at(Step::Groups, 0))?;
    Errno::result(unsafe { libc::setresgid(gid, gid, gid) }).map_err(at(Step::Gid, 0))?;
    // Changing to a non-root uid clears the capability sets, as docker's users expect.
    Errno::result(unsafe { libc::setresuid(uid, uid, uid) }).map_err(at(Step::Uid, 0))?;
    if let (Some(c), 0) = (caps, uid) {
        set_caps(c).map_err(at(Step::Caps, 1))?;
    }
    Ok(())
}

fn drop_bounding(c: &Caps) -> Result<(), Errno> {
    for cap in 0..=c.last_cap {
        if c.bounding & (1 << cap) == 0 {
            match Errno::result(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }) {
                Ok(_) | Err(Errno::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn set_caps(c: &Caps) -> Result<(), Errno> {
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = CapHeader { version: VERSION_3, pid: 0 };
    let split = |m: u64| [m as u32, (m >> 32) as u32];
    let (e, p, i) = (split(c.effective), split(c.permitted), split(c.inheritable));
    let data = [CapData { effective: e[0], permitted: p[0], inheritable: i[0] }, CapData { effective: e[1], permitted: p[1], inheritable: i[1] }];
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) }).map(drop)
}

pub(super) fn reset_signals() -> Result<(), Errno> {
    // Python ignores SIGPIPE and SIGXFSZ; an ignored signal stays ignored across exec.
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

pub(super) fn exec(e: &Exec) -> Res {
    // Pointer arrays on the stack: up to 1024 arguments and 1024 variables, no allocation.
    const MAX: usize = 1024;
    if e.argv.len() >= MAX || e.env.len() >= MAX {
        return Err(Failure { step: Step::Exec, index: 0, errno: Errno::E2BIG as i32 });
    }
    let mut argv = [std::ptr::null::<libc::c_char>(); MAX];
    let mut envp = [std::ptr::null::<libc::c_char>(); MAX];
    for (i, a) in e.argv.iter().enumerate() {
        argv[i] = a.as_ptr();
    }
    for (i, v) in e.env.iter().enumerate() {
        envp[i] = v.as_ptr();
    }
    let mut denied = false;
    let mut other: Option<Errno> = None;
    for c in &e.candidates {
        unsafe { libc::execve(c.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        match Errno::last() {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES | Errno::EISDIR | Errno::EPERM => denied = true,
            err => {
                other.get_or_insert(err);
            }
        }
    }
    if let Some(err) = other {
        if err == Errno::ENOEXEC {
            return Err(Failure { step: Step::NotExecutable, index: 0, errno: err as i32 });
        }
        return Err(Failure { step: Step::Exec, index: 0, errno: err as i32 });
    }
    let step = if denied { Step::NotExecutable } else { Step::NotFound };
    Err(Failure { step, index: 0, errno: 0 })
}

/// What the container's process and an exec'd one both set up last, in their own mount ns:
/// the working directory, no_new_privs, and stdio (the given fds, or the container's pty).
pub(super) fn enter_process(cwd: &CStr, no_new_privs: bool, stdio: [RawFd; 3], tty: Option<&crate::pty::Inside>) -> Result<(), Failure> {
    nix::unistd::chdir(cwd).map_err(at(Step::Chdir, 0))?;
    if no_new_privs {
        Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map_err(at(Step::NoNewPrivs, 0))?;
    }
    let stdio = match tty {
        Some(t) => [crate::pty::open_inside(t).map_err(at(Step::Tty, 0))?; 3],
        None => stdio,
    };
    for (i, fd) in stdio.iter().enumerate() {
        Errno::result(unsafe { libc::dup2(*fd, i as RawFd) }).map_err(at(Step::Stdio, i))?;
    }
    if tty.is_some() {
        crate::pty::make_controlling().map_err(at(Step::Tty, 1))?;
    }
    Ok(())
}
