use std::path::{Path, PathBuf};

use super::{mkdir_all, write, Cgroup, Limits};
use crate::error::{Error, IoContext, Result};

/// Create `path` below the v2 root, with every controller the root offers enabled for its
/// children on the way down, so limits can be set in the leaf.
pub fn create(root: &Path, path: &str) -> Result<PathBuf> {
    let dir = root.join(path);
    mkdir_all(&dir)?;
    let mut level = root.to_path_buf();
    let components: Vec<&str> = path.split('/').collect();
    for c in &components[..components.len() - 1] {
        enable_controllers(&level)?;
        level.push(c);
    }
    enable_controllers(&level)?;
    Ok(dir)
}

fn enable_controllers(dir: &Path) -> Result<()> {
    let available = dir.join("cgroup.controllers");
    let Ok(controllers) = std::fs::read_to_string(&available) else { return Ok(()) };
    let control = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control).unwrap_or_default();
    let wanted: Vec<String> = controllers.split_whitespace().filter(|c| !enabled.split_whitespace().any(|e| e == *c)).map(|c| format!("+{c}")).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    std::fs::write(&control, wanted.join(" ")).ctx("write", &control)
}

/// Write the limits into the container's v2 directory.
pub fn apply(cg: &Cgroup, l: &Limits) -> Result<()> {
    let Some(d) = cg.dir_of("") else { return Ok(()) };
    // A limit needs its controller enabled by the parent; without it the file does not exist.
    let file = |name: &str, controller: &str| -> Result<()> {
        if d.join(name).exists() {
            Ok(())
        } else {
            Err(Error::Cgroup { path: d.to_path_buf(), message: format!("this host's cgroup v2 has no {controller} controller for containers") })
        }
    };
    if let Some(m) = l.memory {
        file("memory.max", "memory")?;
        write(d, "memory.max", &m.to_string())?;
    }
    if let Some(r) = l.memory_reservation {
        file("memory.low", "memory")?;
        write(d, "memory.low", &r.to_string())?;
    }
    if let Some(s) = l.memory_swap {
        // v2 limits swap alone; docker's --memory-swap is memory plus swap.
        let swap = match (s, l.memory) {
            (-1, _) => "max".to_string(),
            (s, Some(m)) => (s - m).max(0).to_string(),
            (s, None) => s.to_string(),
        };
        if d.join("memory.swap.max").exists() {
            write(d, "memory.swap.max", &swap)?;
        } else if swap != "0" && swap != "max" {
            return Err(Error::Cgroup { path: d.to_path_buf(), message: "this kernel does not limit swap (no memory.swap.max)".into() });
        }
    }
    if l.cpu_quota.is_some() || l.cpu_period.is_some() {
        file("cpu.max", "cpu")?;
        let quota = l.cpu_quota.filter(|q| *q > 0).map(|q| q.to_string()).unwrap_or_else(|| "max".into());
        write(d, "cpu.max", &format!("{quota} {}", l.cpu_period.unwrap_or(100_000)))?;
    }
    if let Some(w) = l.cpu_weight() {
        file("cpu.weight", "cpu")?;
        write(d, "cpu.weight", &w.to_string())?;
    }
    if let Some(c) = &l.cpuset_cpus {
        file("cpuset.cpus", "cpuset")?;
        write(d, "cpuset.cpus", c)?;
    }
    if let Some(m) = &l.cpuset_mems {
        file("cpuset.mems", "cpuset")?;
        write(d, "cpuset.mems", m)?;
    }
    if let Some(p) = l.pids {
        file("pids.max", "pids")?;
        write(d, "pids.max", &if p > 0 { p.to_string() } else { "max".into() })?;
    }
    if let Some(w) = l.io_weight() {
        file("io.weight", "io")?;
        write(d, "io.weight", &format!("default {w}"))?;
    }
    if let Some(rules) = &l.devices {
        super::devices::attach_v2(d, rules)?;
    }
    for (key, devices) in [("rbps", &l.read_bps), ("wbps", &l.write_bps)] {
        for (major, minor, rate) in devices {
            file("io.max", "io")?;
            write(d, "io.max", &format!("{major}:{minor} {key}={rate}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_land_in_the_v2_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pyc/c1");
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max", "io.max"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let cg = Cgroup::open_v2_for_test(&dir);
        let l = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(96 << 20),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            cpu_shares: Some(1024),
            pids: Some(100),
            write_bps: vec![(8, 0, 1 << 20)],
            ..Default::default()
        };
        apply(&cg, &l).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.swap.max"), "33554432");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("cpu.weight"), "39");
        assert_eq!(read("pids.max"), "100");
        assert_eq!(read("io.max"), "8:0 wbps=1048576");
        let err = apply(&cg, &Limits { cpuset_cpus: Some("0".into()), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("no cpuset controller"), "{err}");
    }

    #[test]
    fn enables_what_the_parent_offers() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(root.path().join("cgroup.subtree_control"), "cpu\n").unwrap();
        let dir = create(root.path(), "pyc/abc").unwrap();
        assert!(dir.is_dir());
        assert_eq!(std::fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(), "+memory +pids");
    }
}
