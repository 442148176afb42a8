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
use super::syspaths::SysPath;
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
    /// MOUNT_ATTR_* set on the whole bound tree (mount_opts.rs).
    pub recursive_attrs: u64,
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
    pub masked: Vec<SysPath>,
    pub readonly: Vec<SysPath>,
    /// The container's /dev/null, the source of masks (syspaths.rs).
    pub null: InRoot,
    pub readonly_root: bool,
    pub hostname: Option<CString>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    /// (RLIMIT_*, soft, hard), set before the user changes.
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    /// /proc/sys files and their values (linux.sysctl), written in the container's namespaces.
    pub sysctls: Vec<(SysPath, CString)>,
    /// process.oomScoreAdj, in decimal, for /proc/self/oom_score_adj.
    pub oom_score_adj: Option<CString>,
    pub caps: Option<Caps>,
    pub no_new_privs: bool,
    /// Compiled here (or read from its cache), loaded by the child last (pyc_init::seccomp).
    pub seccomp: Option<pyc_init::seccomp::Filter>,
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
    let mount = OverlayMount::prepare(&o.lower, Some((&o.upper, &o.work)), o.volatile, Method::for_this_kernel()?)?;
    Ok(if o.dev { mount.with_devices() } else { mount })
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
            recursive_attrs: if bind { opts.bind_recursive_attrs() } else { 0 },
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
            recursive_attrs: 0,
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

/// /sys/fs/cgroup inside: the container's own cgroup (docker's and podman's way), bound from
/// the directories pyc made for it: on v2 that one; on v1 (and a hybrid host) a tmpfs with a
/// directory per hierarchy the container joined, each its own cgroup there. Read-only unless
/// `--privileged`. The cgroup namespace makes /proc/self/cgroup agree ("/").
fn cgroup_mounts(cg: &crate::cgroup::Cgroup, readonly: bool) -> Result<Vec<MountStep>> {
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let locked = if readonly { base | MsFlags::MS_RDONLY } else { base };
    let bind = |dir: &Path, target: &str| -> Result<MountStep> {
        Ok(MountStep {
            target: in_root(target)?,
            leaf: Leaf::Dir,
            source: path_cstring("cgroup path", dir)?,
            fstype: CString::default(),
            flags: MsFlags::MS_BIND,
            data: CString::default(),
            remount: Some(locked | MsFlags::MS_BIND | MsFlags::MS_REMOUNT),
            propagation: MsFlags::empty(),
            recursive_attrs: 0,
        })
    };
    if cg.is_v2() {
        return cg.named_dirs().map(|(_, d)| bind(d, CGROUP_MOUNT)).collect();
    }
    let mut steps = vec![MountStep {
        target: in_root(CGROUP_MOUNT)?,
        leaf: Leaf::Dir,
        source: cstring("mount source", "tmpfs")?,
        fstype: cstring("mount type", "tmpfs")?,
        flags: base,
        data: cstring("mount options", "mode=755")?,
        remount: None,
        propagation: MsFlags::empty(),
        recursive_attrs: 0,
    }];
    for (name, dir) in cg.named_dirs() {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(Error::InvalidConfig(format!("cgroup hierarchy {name:?}")));
        }
        steps.push(bind(dir, &format!("{CGROUP_MOUNT}/{name}"))?);
    }
    // Last, the tmpfs itself: its directories are made by now.
    steps.push(MountStep {
        target: in_root(CGROUP_MOUNT)?,
        leaf: Leaf::Dir,
        source: CString::default(),
        fstype: CString::default(),
        flags: locked | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        data: CString::default(),
        remount: None,
        propagation: MsFlags::empty(),
        recursive_attrs: 0,
    });
    Ok(steps)
}

const CGROUP_MOUNT: &str = "/sys/fs/cgroup";

impl MountStep {
    /// The spec's `cgroup` mount, a place-holder until the container's cgroup exists.
    fn leaf_is_cgroup(&self) -> bool {
        self.fstype.as_bytes() == b"cgroup" || self.fstype.as_bytes() == b"cgroup2"
    }
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
        if let Some(at) = self.mounts.iter().position(|m| m.leaf_is_cgroup()) {
            let readonly = self.mounts[at].flags.contains(MsFlags::MS_RDONLY);
            let steps = cgroup_mounts(cg, readonly)?;
            self.mounts.splice(at..=at, steps);
        }
        Ok(())
    }

    pub fn build(cfg: &RunConfig) -> Result<Plan> {
        let spec = &cfg.spec;
        let root = spec.root().as_ref().ok_or_else(|| Error::InvalidConfig("spec has no root".into()))?;
        let (clone_flags, cgroup_ns, net_ns, join_net) = namespace_flags(spec)?;
        if !cfg.network.interfaces.is_empty() && !net_ns {
            return Err(Error::InvalidConfig("network interfaces need a network namespace of the container's own".into()));
        }
        let (mut mounts, links) = mount_steps(spec)?;
        if cfg.cgroup.is_none() {
            mounts.retain(|m| !m.leaf_is_cgroup());
        }
        let process = spec.process().as_ref().ok_or_else(|| Error::InvalidConfig("spec has no process".into()))?;
        let cwd = process.cwd().to_string_lossy().into_owned();
        if !cwd.starts_with('/') {
            return Err(Error::InvalidConfig(format!("working directory {cwd:?} is not absolute")));
        }
        let user = process.user();
        let exec = exec_of(process)?;
        let linux = spec.linux().as_ref();
        let paths =
            |v: Option<&Vec<String>>| -> Result<Vec<SysPath>> { v.into_iter().flatten().map(|p| SysPath::new(p).map_err(Error::InvalidConfig)).collect() };
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
            null: in_root("/dev/null")?,
            readonly_root: root.readonly().unwrap_or(false),
            hostname: spec.hostname().as_deref().map(|h| cstring("hostname", h)).transpose()?,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            rlimits: process.rlimits().iter().flatten().map(|r| (rlimit_resource(r.typ()), r.soft(), r.hard())).collect(),
            sysctls: sysctls_of(linux.and_then(|l| l.sysctl().as_ref()))?,
            oom_score_adj: process.oom_score_adj().map(|v| cstring("oom_score_adj", v.to_string())).transpose()?,
            caps: caps_of(process)?,
            no_new_privs: process.no_new_privileges().unwrap_or(false),
            seccomp: cfg.seccomp.as_ref().map(|s| s.filter(process.capabilities().as_ref())).transpose()?,
            init: init_of(cfg, &exec)?,
            exec,
            tty: process.terminal().unwrap_or(false),
        })
    }
}

pub(super) fn rlimit_resource(t: oci_spec::runtime::PosixRlimitType) -> libc::__rlimit_resource_t {
    use oci_spec::runtime::PosixRlimitType as T;
    match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// linux.sysctl as /proc/sys paths: names of dots (or slashes), no `..`, nothing outside /proc/sys.
fn sysctls_of(map: Option<&std::collections::HashMap<String, String>>) -> Result<Vec<(SysPath, CString)>> {
    let mut out = Vec::new();
    let mut names: Vec<_> = map.into_iter().flatten().collect();
    names.sort();
    for (name, value) in names {
        let path = name.replace('.', "/");
        if path.is_empty() || path.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(Error::InvalidConfig(format!("sysctl {name:?} is not a name")));
        }
        out.push((SysPath::new(&format!("/proc/sys/{path}")).map_err(Error::InvalidConfig)?, cstring("sysctl value", value.as_str())?));
    }
    Ok(out)
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

    fn with(c: &mut RunConfig, process: serde_json::Value, linux: serde_json::Value) {
        let mut spec = serde_json::to_value(&c.spec).unwrap();
        for (key, extra) in [("process", process), ("linux", linux)] {
            spec[key].as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        }
        c.spec = serde_json::from_value(spec).unwrap();
    }

    #[test]
    fn rlimits_sysctls_and_the_oom_score_are_planned() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config("", dir.path());
        with(
            &mut c,
            serde_json::json!({"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}], "oomScoreAdj": 500}),
            serde_json::json!({"sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmni": "100"}}),
        );
        let p = Plan::build(&c).unwrap();
        assert_eq!(p.rlimits, vec![(libc::RLIMIT_NOFILE, 100, 200)]);
        assert_eq!(p.oom_score_adj.as_deref(), Some(c"500"));
        let sysctls: Vec<_> = p.sysctls.iter().map(|(s, v)| (format!("{:?}", s.path), v.to_str().unwrap())).collect();
        assert_eq!(sysctls.len(), 2);
        assert!(sysctls[0].0.contains("proc/sys/kernel/shmmni") && sysctls[1].0.contains("proc/sys/net/ipv4/ip_forward"), "{sysctls:?}");
        for bad in ["net..x", "net/../../etc", ""] {
            let mut c = config("", dir.path());
            with(&mut c, serde_json::json!({}), serde_json::json!({"sysctl": {bad: "1"}}));
            assert!(Plan::build(&c).unwrap_err().to_string().contains("is not a name"), "{bad}");
        }
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
