//! The msgpack pyc's Python side sends (tests/golden/, written and checked byte for byte by
//! tests/unit/test_golden.py) decodes into the core's structures with the fields it meant.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use pyc_core::cgroup::Limits;
use pyc_core::container::{ExecConfig, RunConfig};
use pyc_core::copy::{CopyConfig, View};

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const CID: &str = "0123456789abcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";

#[test]
fn run_config() {
    let cfg = RunConfig::from_msgpack(&golden("run-config.msgpack")).expect("decodes");
    let process = cfg.spec.process().as_ref().expect("a process");
    assert_eq!(process.args().as_deref(), Some(&["sh".to_string(), "-c".into(), "echo hi".into()][..]));
    assert_eq!(process.cwd().to_str(), Some("/tmp"));
    assert_eq!((process.user().uid(), process.user().gid()), (1000, 1000));
    assert_eq!(process.terminal(), Some(true));
    assert!(process.env().as_ref().expect("env").contains(&"A=1".to_string()));
    assert!(process.env().as_ref().expect("env").contains(&"TERM=xterm".to_string()), "-t sets TERM");
    assert_eq!(cfg.spec.hostname().as_deref(), Some("golden"));
    let mounts = cfg.spec.mounts().as_ref().expect("mounts");
    let host = mounts.iter().find(|m| m.destination().to_str() == Some("/host")).expect("the bind");
    assert_eq!(host.source().as_ref().and_then(|s| s.to_str()), Some("/"));
    assert_eq!(host.options().as_deref(), Some(&["rbind".to_string(), "rprivate".into(), "nosuid".into(), "nodev".into(), "ro".into()][..]));
    assert!(mounts.iter().any(|m| m.destination().to_str() == Some("/data") && m.typ().as_deref() == Some("bind")));
    assert!(mounts.iter().any(|m| m.destination().to_str() == Some("/run") && m.typ().as_deref() == Some("tmpfs")));
    let resources = cfg.spec.linux().as_ref().and_then(|l| l.resources().as_ref()).expect("resources");
    let limits = Limits::from_oci(resources);
    assert_eq!(limits.memory, Some(64 << 20));
    // docker's device list, then --device-cgroup-rule's.
    let devices = limits.devices.expect("device rules");
    assert_eq!((devices[0].v1_line().as_str(), devices[0].allow), ("a *:* rwm", false));
    assert_eq!((devices.last().unwrap().v1_line().as_str(), devices.last().unwrap().allow), ("b 7:* r", true));
    let rlimits = process.rlimits().as_ref().expect("rlimits");
    assert_eq!((rlimits[0].typ(), rlimits[0].soft(), rlimits[0].hard()), (oci_spec::runtime::PosixRlimitType::RlimitNofile, 1024, 2048));
    assert_eq!(process.oom_score_adj(), Some(100));
    // the primary group first (docker's), then --group-add's
    assert_eq!(process.user().additional_gids().as_deref(), Some(&[1000, 5][..]));
    let sysctl = cfg.spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()).expect("sysctls");
    assert_eq!(sysctl.get("net.ipv4.ip_forward").map(String::as_str), Some("1"));
    assert_eq!(cfg.rootfs.lower.len(), 2);
    assert_eq!(cfg.rootfs.upper, PathBuf::from(format!("/var/lib/pyc/containers/{CID}/upper")));
    assert!(!cfg.rootfs.volatile && !cfg.rootfs.dev);
    let cgroup = cfg.cgroup.expect("a cgroup");
    assert_eq!((cgroup.root.to_str(), cgroup.path.as_str()), (Some("/sys/fs/cgroup"), format!("pyc/{CID}").as_str()));
    assert!(cfg.init);
    assert_eq!(cfg.pyc_init.as_deref(), Some(std::path::Path::new("/usr/local/libexec/pyc-init")));
    let events = cfg.events.expect("its events' actor");
    assert_eq!((events.journal.to_str(), events.id.as_str()), (Some("/var/lib/pyc/events.log"), CID));
    assert_eq!(events.attributes.get("name").map(String::as_str), Some("golden"));
    assert_eq!(events.attributes.get("image").map(String::as_str), Some("busybox"));
    let [volume] = &events.volumes[..] else { panic!("one volume: {:?}", events.volumes) };
    assert_eq!(volume.name, "data");
    assert_eq!(volume.attributes.get("destination").map(String::as_str), Some("/data"));
    assert_eq!(volume.attributes.get("read/write").map(String::as_str), Some("true"));
    assert_eq!(volume.attributes.get("container").map(String::as_str), Some(CID));
    let seccomp = cfg.seccomp.expect("docker's default profile");
    assert_eq!((seccomp.profile, seccomp.cache.as_deref()), (None, Some(std::path::Path::new("/var/lib/pyc/seccomp"))));
}

#[test]
fn exec_config() {
    let cfg = ExecConfig::from_msgpack(&golden("exec-config.msgpack")).expect("decodes");
    assert_eq!(cfg.process.args().as_deref(), Some(&["ls".to_string(), "-l".into()][..]));
    assert_eq!((cfg.process.user().uid(), cfg.process.cwd().to_str()), (0, Some("/")));
    assert!(cfg.process.env().as_ref().expect("env").contains(&"B=2".to_string()));
    assert_eq!(cfg.cgroup.path, format!("pyc/{CID}"));
    assert!(cfg.detach);
    assert_eq!(cfg.pyc_init, PathBuf::from("/usr/local/libexec/pyc-init"));
    assert_eq!(cfg.seccomp.expect("the container's profile").cache, Some(PathBuf::from("/var/lib/pyc/seccomp")));
}

#[test]
fn update_resources() {
    let r: LinuxResources = rmp_serde::from_slice(&golden("update-resources.msgpack")).expect("decodes");
    let l = Limits::from_oci(&r);
    assert_eq!((l.memory, l.memory_swap, l.memory_reservation), (Some(64 << 20), Some(128 << 20), Some(32 << 20)));
    assert_eq!((l.cpu_quota, l.cpu_period, l.cpu_shares, l.cpuset_cpus.as_deref()), (Some(100_000), Some(100_000), Some(512), Some("0")));
    assert_eq!((l.pids, l.blkio_weight), (Some(100), Some(500)));
}

#[test]
fn copy_configs() {
    let cfg = CopyConfig::from_msgpack(&golden("copy-config-running.msgpack")).expect("decodes");
    assert!(matches!(&cfg.view, View::Running { cgroup } if cgroup.path == format!("pyc/{CID}")));
    assert_eq!((cfg.container_path.as_str(), cfg.host_path.as_deref()), ("/etc/.", Some(std::path::Path::new("/tmp/out"))));
    assert!(!cfg.into && cfg.follow && !cfg.archive);
    let cfg = CopyConfig::from_msgpack(&golden("copy-config-stopped.msgpack")).expect("decodes");
    let View::Stopped { lower, upper, readonly, mounts, .. } = &cfg.view else { panic!("a stopped view: {:?}", cfg.view) };
    assert_eq!((lower.len(), *readonly), (2, true));
    assert_eq!(upper, &PathBuf::from(format!("/var/lib/pyc/containers/{CID}/upper")));
    assert_eq!((mounts[0].destination.as_str(), mounts[0].tmpfs, mounts[1].tmpfs, mounts[1].readonly), ("/data", false, true, true));
    assert!(cfg.into && cfg.archive && cfg.host_path.is_none());
}
