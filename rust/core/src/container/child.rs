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
use pyc_init::user::become_user;

use super::plan::{InitExec, Plan};
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
    match &plan.init {
        Some(init) => exec_init(init, fds.error_write),
        None => match reset_signals() {
            Ok(()) => exec(&plan.exec),
            Err(e) => at(Step::Signals, 0)(e),
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
    Ok(())
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
