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
use pyc_init::command::exec;
use pyc_init::fds::{cloexec_from, inherit};
use pyc_init::process::{enter_process, reset_signals};
pub use pyc_init::report::{at, Failure, Step};
use pyc_init::seccomp::Filter;
use pyc_init::user::become_user;

use super::plan::{InitExec, Plan};
use super::syspaths;
use super::target::{FdPath, Leaf};

/// The descriptors the child works with; the parent's ends are closed first thing.
pub struct ChildFds {
    pub sync_read: RawFd,
    pub error_write: RawFd,
    pub close: [RawFd; 4],
    pub stdio: [RawFd; 3],
    /// `-t`: stdio is a pty made inside instead (pyc_init::tty).
    pub tty: Option<pyc_init::tty::Inside>,
}

type Res = Result<(), Failure>;

/// Never returns: execs the command, or reports the failure and exits.
pub fn child_main(plan: &Plan, fds: &ChildFds) -> ! {
    for fd in fds.close {
        if fd >= 0 {
            unsafe { libc::close(fd) };
        }
    }
    let failure = setup_and_exec(plan, fds);
    pyc_init::report::report_and_exit(fds.error_write, failure)
}

/// Returns only in failure.
fn setup_and_exec(plan: &Plan, fds: &ChildFds) -> Failure {
    match setup(plan, fds) {
        Ok(()) => {}
        Err(f) => return f,
    }
    if let Err(f) = cloexec_from(3).map_err(at(Step::Stdio, 3)) {
        return f;
    }
    let (_, late) = Filter::when(plan.seccomp.as_ref(), plan.no_new_privs, plan.uid, plan.caps.as_ref());
    match &plan.init {
        Some(init) => match late.map_or(Ok(()), |f| f.load()) {
            Ok(()) => exec_init(init, fds.error_write),
            Err(e) => at(Step::Seccomp, 1)(e),
        },
        None => match reset_signals().map_err(at(Step::Signals, 0)).and_then(|()| late.map_or(Ok(()), |f| f.load().map_err(at(Step::Seccomp, 1)))) {
            Ok(()) => exec(&plan.exec),
            Err(f) => f,
        },
    }
}

/// `--init`: pid 1 becomes pyc-init (from its sealed memfd: no host binary is ever pid 1),
/// which forks the command and reports to our error pipe if it cannot be executed.
fn exec_init(init: &InitExec, report: RawFd) -> Failure {
    if let Err(e) = inherit(report) {
        return at(Step::Init, 0)(e);
    }
    const MAX: usize = 1024;
    let (argv, env) = (&init.argv, &init.env);
    if argv.len() >= MAX || env.len() >= MAX {
        return Failure { step: Step::Exec, index: 0, errno: Errno::E2BIG as i32 };
    }
    let mut argp = [std::ptr::null::<libc::c_char>(); MAX];
    let mut envp = [std::ptr::null::<libc::c_char>(); MAX];
    for (i, a) in argv.iter().enumerate() {
        argp[i] = a.as_ptr();
    }
    for (i, v) in env.iter().enumerate() {
        envp[i] = v.as_ptr();
    }
    unsafe { libc::syscall(libc::SYS_execveat, init.program.as_raw_fd(), c"".as_ptr(), argp.as_ptr(), envp.as_ptr(), libc::AT_EMPTY_PATH) };
    at(Step::Init, 1)(Errno::last())
}

fn setup(plan: &Plan, fds: &ChildFds) -> Res {
    // No daemon holds the container: it lives as long as the pyc process that waits for it, so
    // what `pyc ps` says of a container whose pyc died (exited) stays true. Should pyc die
    // before this line, the sync read below sees EOF and the child leaves.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) }).map_err(at(Step::Sync, 0))?;
    if let Some(ns) = &plan.join_net {
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(at(Step::Setns, 0))?;
    }
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
    for (i, (p, value)) in plan.sysctls.iter().enumerate() {
        syspaths::write_sysctl(root, p, value).map_err(at(Step::Sysctl, i))?;
    }
    if !plan.masked.is_empty() {
        let null = syspaths::open_null(root, &plan.null).map_err(at(Step::Masked, usize::MAX))?;
        for (i, p) in plan.masked.iter().enumerate() {
            syspaths::mask(root, null.as_raw_fd(), p).map_err(at(Step::Masked, i))?;
        }
    }
    for (i, p) in plan.readonly.iter().enumerate() {
        syspaths::readonly(root, p).map_err(at(Step::Readonly, i))?;
    }

    pivot(root)?;
    if plan.readonly_root {
        // The overlay's nodev stays: a remount sets every per-mount flag anew.
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | plan.overlay.flags();
        mount(None::<&CStr>, c"/", None::<&CStr>, flags, None::<&CStr>).map_err(at(Step::ReadonlyRoot, 0))?;
    }
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(std::ffi::OsStr::from_bytes(h.as_c_str().to_bytes())).map_err(at(Step::Hostname, 0))?;
    }
    if plan.net_ns {
        loopback_up().map_err(at(Step::Loopback, 0))?;
    }
    if let Some(adj) = &plan.oom_score_adj {
        // This /proc is the container's own (mounted above); the value passes to what it runs.
        write_file(c"/proc/self/oom_score_adj", adj).map_err(at(Step::OomScoreAdj, 0))?;
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
    // Limits last: with a low RLIMIT_NOFILE the setup above (which holds pyc's descriptors until
    // exec) could not open what it needs.
    for (i, &(resource, soft, hard)) in plan.rlimits.iter().enumerate() {
        let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        Errno::result(unsafe { libc::setrlimit(resource, &limit) }).map_err(at(Step::Rlimit, i))?;
    }
    // Before the seccomp filter: a profile may deny umask (nix would panic on its -1).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let (early, _) = Filter::when(plan.seccomp.as_ref(), plan.no_new_privs, plan.uid, plan.caps.as_ref());
    become_user(plan.uid, plan.gid, &plan.groups, plan.caps.as_ref(), early)?;
    Ok(())
}

fn mount_all(plan: &Plan, root: RawFd) -> Res {
    for (i, m) in plan.mounts.iter().enumerate() {
        let target = m.target.ensure(root, m.leaf).map_err(at(Step::MountTarget, i))?;
        if let Leaf::Node { .. } = m.leaf {
            continue;
        }
        // Checked once opened: nothing but /proc itself is mounted in /proc, whatever symlink
        // an image put on the way (a tmpfs or bind there would cover, or expose, host files).
        if m.fstype.as_bytes() != b"proc" && syspaths::fs_magic(target.as_raw_fd()).map_err(at(Step::MountTarget, i))? == syspaths::PROC_SUPER_MAGIC {
            return Err(at(Step::ProcTarget, i)(Errno::EPERM));
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
        if m.remount.is_none() && propagation.is_empty() && m.recursive_attrs == 0 {
            continue;
        }
        // The fd above names what is under the new mount; open again to reach the mount itself.
        let mounted = m.target.open(root).map_err(at(Step::MountTarget, i))?;
        let path = FdPath::new(mounted.as_raw_fd());
        if let Some(flags) = m.remount {
            mount(None::<&CStr>, path.as_cstr(), None::<&CStr>, flags, None::<&CStr>).map_err(at(Step::Remount, i))?;
        }
        if m.recursive_attrs != 0 {
            set_recursive(mounted.as_raw_fd(), m.recursive_attrs).map_err(at(Step::Remount, i))?;
        }
        if !propagation.is_empty() {
            mount(None::<&CStr>, path.as_cstr(), None::<&CStr>, m.propagation, None::<&CStr>).map_err(at(Step::MountPropagation, i))?;
        }
    }
    Ok(())
}

/// mount_setattr(AT_RECURSIVE) on the mount at `fd`; kernels before 5.12 have the remount only.
fn set_recursive(fd: RawFd, attrs: u64) -> Result<(), Errno> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr { attr_set: attrs, attr_clr: 0, propagation: 0, userns_fd: 0 };
    let flags = libc::AT_EMPTY_PATH | libc::AT_RECURSIVE;
    let ret = unsafe { libc::syscall(libc::SYS_mount_setattr, fd, c"".as_ptr(), flags, &attr as *const MountAttr, std::mem::size_of::<MountAttr>()) };
    match Errno::result(ret) {
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_file(path: &CStr, value: &CStr) -> Result<(), Errno> {
    let fd = nix::fcntl::open(path, nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    nix::unistd::write(&fd, value.to_bytes()).map(drop)
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
