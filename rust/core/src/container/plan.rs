//! The plan: a container's spec turned, in the parent, into ready-made syscall arguments, so
//! the child side allocates nothing and only makes calls (see child.rs for why).

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Process, Spec};

use super::caps;
use super::config::{Overlay, RunConfig};
use super::mount_opts;
use super::target::{InRoot, Leaf};
use crate::error::{Error, Result};
use crate::overlay::{Method, OverlayMount};

#[derive(Debug)]
pub struct MountStep {
    pub target: InRoot,
    pub leaf: Leaf,
    pub source: CString,
    pub fstype: CString,
    pub flags: MsFlags,
    pub data: CString,
    pub remount: Option<MsFlags>,
    pub propagation: MsFlags,
}

pub use pyc_init::command::Command as Exec;
pub use pyc_init::user::Caps;

/// `--init`: what pid 1 executes instead of the command: pyc-init from its sealed memfd.
#[derive(Debug)]
pub struct InitExec {
    pub program: OwnedFd,
    /// `pyc-init --report-fd N -- COMMAND...`: N is set once the error pipe exists (`report_to`).
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
}

impl InitExec {
    pub fn report_to(&mut self, fd: RawFd) {
        self.argv[2] = CString::new(fd.to_string()).expect("digits");
    }
}

#[derive(Debug)]
pub struct Plan {
    /// v1 `tasks` files the child writes "0" to, joining its cgroups by itself: moving one's own
    /// thread skips the global lock (and its RCU grace period, milliseconds) that moving another
    /// process through `cgroup.procs` takes.
    pub cgroup_tasks: Vec<CString>,
    /// Namespaces created by clone itself.
    pub clone_flags: u64,
    /// The cgroup namespace is made after the parent put the child in its cgroup, so that the
    /// container sees that cgroup as its root.
    pub cgroup_ns: bool,
    pub net_ns: bool,
    /// A network namespace to join instead (setns in the child).
    pub join_net: Option<OwnedFd>,
    /// The interfaces the parent gives the new network namespace while the child waits.
    pub interfaces: Vec<crate::net::Interface>,
    pub rootfs: CString,
    pub overlay: OverlayMount,
    pub mounts: Vec<MountStep>,
    pub links: Vec<Link>,
    pub cwd: CString,
    pub cwd_in_root: InRoot,
    pub masked: Vec<CString>,
    pub readonly: Vec<CString>,
    pub readonly_root: bool,
    pub hostname: Option<CString>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub caps: Option<Caps>,
    pub no_new_privs: bool,
    pub exec: Exec,
    /// `-t`: stdio is a pty slave, made the controlling terminal (pty.rs).
    pub tty: bool,
    /// `--init`: pid 1 executes pyc-init, which forks the command and stays as a reaper.
    pub init: Option<InitExec>,
}

pub(super) fn cstring(what: &str, s: impl Into<Vec<u8>>) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidConfig(format!("{what} contains a NUL byte")))
}

fn path_cstring(what: &str, p: &Path) -> Result<CString> {
    cstring(what, p.as_os_str().as_bytes())
}

fn in_root(p: &str) -> Result<InRoot> {
    InRoot::new(p).map_err(Error::InvalidConfig)
}

/// The container's root: the image's layers under its upper dir, mounted on the root path.
fn overlay_of(o: &Overlay, root: &Path) -> Result<OverlayMount> {
    // The mount changes the child's working directory first (overlay.rs).
    if !root.is_absolute() {
        return Err(Error::InvalidConfig(format!("root path {} is not absolute", root.display())));
    }
    OverlayMount::prepare(&o.lower, Some((&o.upper, &o.work)), o.volatile, Method::for_this_kernel()?)
}

/// Clone flags, whether to make a cgroup and a network namespace, and the network namespace to
/// join (`--network container:NAME`: the other's `/proc/PID/ns/net`, opened here).
fn namespace_flags(spec: &Spec) -> Result<(u64, bool, bool, Option<OwnedFd>)> {
    let mut flags = 0u64;
    let (mut cgroup_ns, mut net_ns, mut join_net) = (false, false, None);
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    for ns in namespaces {
        if let Some(path) = ns.path() {
            if ns.typ() != LinuxNamespaceType::Network {
                return Err(Error::InvalidConfig("joining an existing namespace is supported for the network only".into()));
            }
            let fd = nix::fcntl::open(path.as_path(), nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
                .map_err(|e| Error::sys(format!("open network namespace {}", path.display()), e))?;
            join_net = Some(fd);
            continue;
        }
        flags |= match ns.typ() {
            LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
            LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
            LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
            LinuxNamespaceType::Network => {
                net_ns = true;
                libc::CLONE_NEWNET
            }
            LinuxNamespaceType::Cgroup => {
                cgroup_ns = true;
                0
            }
            other => return Err(Error::InvalidConfig(format!("{other:?} namespaces are not supported yet"))),
        } as u64;
    }
    if flags & libc::CLONE_NEWNS as u64 == 0 {
        return Err(Error::InvalidConfig("a container needs its own mount namespace".into()));
    }
    Ok((flags, cgroup_ns, net_ns, join_net))
}

/// A symlink to make in the container: (what it points to, where it is).
type Link = (CString, InRoot);

fn mount_steps(spec: &Spec) -> Result<(Vec<MountStep>, Vec<Link>)> {
    let mut steps = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let dest = m.destination().to_string_lossy().into_owned();
        let fstype = m.typ().clone().unwrap_or_default();
        let opts = mount_opts::parse(m.options().as_deref().unwrap_or_default());
        let source = m.source().as_ref().map(|s| s.as_os_str().as_bytes().to_vec()).unwrap_or_else(|| fstype.clone().into_bytes());
        let bind = opts.is_bind() || fstype == "bind";
        // A bind mount of a file needs a file to mount on; every other mount, a directory.
        let leaf = if bind && std::fs::metadata(std::ffi::OsStr::from_bytes(&source)).map(|md| !md.is_dir()).unwrap_or(false) { Leaf::File } else { Leaf::Dir };
        let mut flags = opts.flags;
        if bind {
            flags |= MsFlags::MS_BIND;
        }
        steps.push(MountStep {
            target: in_root(&dest)?,
            leaf,
            source: cstring("mount source", source)?,
            fstype: cstring("mount type", if bind { String::new() } else { fstype })?,
            remount: if bind { opts.bind_remount_flags() } else { None },
            flags: if bind { MsFlags::MS_BIND | (flags & MsFlags::MS_REC) } else { flags },
            data: cstring("mount options", opts.data)?,
            propagation: opts.propagation,
        });
    }

    let mut links = Vec::new();
    let devices = spec.linux().as_ref().and_then(|l| l.devices().clone()).unwrap_or_default();
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => return Err(Error::InvalidConfig("device type 'a' cannot be created".into())),
        };
        let dev = libc::makedev(d.major() as u32, d.minor() as u32);
        let perm = d.file_mode().unwrap_or(0o666);
        // Devices are steps without a mount: ensure() makes the node and nothing is mounted.
        steps.push(MountStep {
            target: in_root(&d.path().to_string_lossy())?,
            leaf: Leaf::Node { kind, perm, dev },
            source: CString::default(),
            fstype: CString::default(),
            flags: MsFlags::empty(),
            data: CString::default(),
            remount: None,
            propagation: MsFlags::empty(),
        });
    }
    // What every /dev has; not devices, so the OCI spec leaves them to the runtime.
    for (target, link) in [
        ("/proc/self/fd", "/dev/fd"),
        ("/proc/self/fd/0", "/dev/stdin"),
        ("/proc/self/fd/1", "/dev/stdout"),
        ("/proc/self/fd/2", "/dev/stderr"),
        ("pts/ptmx", "/dev/ptmx"),
    ] {
        links.push((cstring("link", target)?, in_root(link)?));
    }
    Ok((steps, links))
}

pub(super) fn exec_of(process: &Process) -> Result<Exec> {
    let argv = process.args().clone().unwrap_or_default().into_iter().map(|a| cstring("argument", a)).collect::<Result<_>>()?;
    let env = process.env().clone().unwrap_or_default().into_iter().map(|e| cstring("environment", e)).collect::<Result<_>>()?;
    Exec::new(argv, env).map_err(|e| Error::InvalidConfig(e.to_string()))
}

fn init_of(cfg: &RunConfig, exec: &Exec) -> Result<Option<InitExec>> {
    if !cfg.init {
        return Ok(None);
    }
    let path = cfg.pyc_init.as_ref().ok_or_else(|| Error::InvalidConfig("--init needs the path of the pyc-init program".into()))?;
    let mut argv = vec![cstring("argument", "pyc-init")?, cstring("argument", "--report-fd")?, cstring("argument", "-1")?, cstring("argument", "--")?];
    argv.extend(exec.argv.iter().cloned());
    Ok(Some(InitExec { program: super::sealed::program(path)?, argv, env: exec.env.clone() }))
}

pub(super) fn caps_of(process: &Process) -> Result<Option<Caps>> {
    let Some(c) = process.capabilities() else { return Ok(None) };
    let set = |s: &Option<oci_spec::runtime::Capabilities>| -> Result<u64> {
        let names: Vec<String> = s.iter().flatten().map(|c| c.to_string()).collect();
        caps::mask(&names).map_err(Error::InvalidConfig)
    };
    Ok(Some(Caps {
        bounding: set(c.bounding())?,
        effective: set(c.effective())?,
        permitted: set(c.permitted())?,
        inheritable: set(c.inheritable())?,
        last_cap: caps::last_cap(),
    }))
}

impl Plan {
    /// Have the child join `cg` by itself where the hierarchy allows it (v1).
    pub fn join_cgroup(&mut self, cg: &crate::cgroup::Cgroup) -> Result<()> {
        self.cgroup_tasks = cg.self_join_files().iter().map(|p| path_cstring("cgroup path", p)).collect::<Result<_>>()?;
        Ok(())
    }

    pub fn build(cfg: &RunConfig) -> Result<Plan> {
        let spec = &cfg.spec;
        let root = spec.root().as_ref().ok_or_else(|| Error::InvalidConfig("spec has no root".into()))?;
        let (clone_flags, cgroup_ns, net_ns, join_net) = namespace_flags(spec)?;
        if !cfg.network.interfaces.is_empty() && !net_ns {
            return Err(Error::InvalidConfig("network interfaces need a network namespace of the container's own".into()));
        }
        let (mounts, links) = mount_steps(spec)?;
        let process = spec.process().as_ref().ok_or_else(|| Error::InvalidConfig("spec has no process".into()))?;
        if process.rlimits().as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(Error::InvalidConfig("rlimits are not supported yet".into()));
        }
        let cwd = process.cwd().to_string_lossy().into_owned();
        if !cwd.starts_with('/') {
            return Err(Error::InvalidConfig(format!("working directory {cwd:?} is not absolute")));
        }
        let user = process.user();
        let exec = exec_of(process)?;
        let linux = spec.linux().as_ref();
        let paths = |v: Option<&Vec<String>>| -> Result<Vec<CString>> { v.into_iter().flatten().map(|p| cstring("path", p.as_str())).collect() };
        Ok(Plan {
            cgroup_tasks: Vec::new(),
            clone_flags,
            cgroup_ns,
            net_ns,
            join_net,
            interfaces: cfg.network.interfaces.clone(),
            rootfs: path_cstring("root path", root.path())?,
            overlay: overlay_of(&cfg.rootfs, root.path())?,
            mounts,
            links,
            cwd: cstring("working directory", cwd.as_str())?,
            cwd_in_root: in_root(&cwd)?,
            masked: paths(linux.and_then(|l| l.masked_paths().as_ref()))?,
            readonly: paths(linux.and_then(|l| l.readonly_paths().as_ref()))?,
            readonly_root: root.readonly().unwrap_or(false),
            hostname: spec.hostname().as_deref().map(|h| cstring("hostname", h)).transpose()?,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            caps: caps_of(process)?,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            init: init_of(cfg, &exec)?,
            exec,
            tty: process.terminal().unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra_mounts: &str, layers: &Path) -> RunConfig {
        for d in ["top", "base", "upper", "work"] {
            std::fs::create_dir_all(layers.join(d)).unwrap();
        }
        let l = layers.display();
        let json = format!(
            r#"{{
            "spec": {{
                "ociVersion": "1.0.2",
                "process": {{"user": {{"uid": 1000, "gid": 1000}}, "args": ["sh", "-c", "true"], "env": ["PATH=/usr/bin:/bin"], "cwd": "/work",
                            "capabilities": {{"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}}}},
                "root": {{"path": "/c/rootfs", "readonly": true}},
                "hostname": "h",
                "mounts": [{{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]}}{extra_mounts}],
                "linux": {{"namespaces": [{{"type": "mount"}}, {{"type": "pid"}}, {{"type": "network"}}, {{"type": "cgroup"}}],
                          "devices": [{{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}}]}}
            }},
            "rootfs": {{"lower": ["{l}/top", "{l}/base"], "upper": "{l}/upper", "work": "{l}/work", "volatile": true}}
        }}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn a_spec_becomes_syscall_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Plan::build(&config(r#", {"destination": "/data", "type": "bind", "source": "/etc/hostname", "options": ["rbind", "ro"]}"#, dir.path())).unwrap();
        assert_eq!(p.clone_flags, (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET) as u64);
        assert!(p.cgroup_ns && p.net_ns && p.readonly_root);
        assert_eq!(p.overlay.describe(0), format!("layer 2 of 2, {}/top", dir.path().display()));
        assert_eq!(p.exec.candidates, vec![c"/usr/bin/sh".to_owned(), c"/bin/sh".to_owned()]);
        assert_eq!((p.uid, p.gid, p.cwd.to_str().unwrap()), (1000, 1000, "/work"));
        assert_eq!(p.caps.as_ref().unwrap().bounding, 1 << 5);
        // proc, the bind mount (a file: mounted on a file, made read-only by a remount), /dev/null.
        assert_eq!(p.mounts.len(), 3);
        let bind = &p.mounts[1];
        assert!(matches!(bind.leaf, Leaf::File) && bind.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC));
        assert_eq!(bind.remount, Some(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REMOUNT));
        assert!(matches!(p.mounts[2].leaf, Leaf::Node { .. }));
    }

    #[test]
    fn bad_specs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config("", dir.path());
        c.rootfs.lower.clear();
        assert!(Plan::build(&c).unwrap_err().to_string().contains("no layers"));
        let mut c = config("", dir.path());
        c.rootfs.lower = vec![dir.path().join("gone")];
        assert!(Plan::build(&c).unwrap_err().to_string().contains("open layer"));
        let mut c = config("", dir.path());
        c.spec.set_root(Some(oci_spec::runtime::RootBuilder::default().path("rootfs").build().unwrap()));
        assert!(Plan::build(&c).unwrap_err().to_string().contains("root path rootfs is not absolute"));
    }
}
