use std::path::{Path, PathBuf};

use super::{mkdir_all, write, Cgroup, Limits};
use crate::error::{Error, IoContext, Result};

/// Create `path` in one v1 hierarchy. A new cpuset cgroup starts with no CPUs and no memory
/// nodes, so nobody could join it: copy them down from the parent, level by level. Every level
/// that is still empty, not only the ones made here: another process may have made a parent a
/// moment ago and not filled it in yet (two containers started at once, a build's stages side
/// by side), and a child filled from it would stay empty (joining it: ENOSPC).
pub fn create(hierarchy: &Path, path: &str) -> Result<PathBuf> {
    let dir = hierarchy.join(path);
    mkdir_all(&dir)?;
    if hierarchy.join("cpuset.cpus").exists() {
        let mut d = hierarchy.to_path_buf();
        for part in Path::new(path).components() {
            d.push(part);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let own = d.join(file);
                if !std::fs::read_to_string(&own).ctx("read", &own)?.trim().is_empty() {
                    continue;
                }
                let parent = d.parent().expect("below the hierarchy").join(file);
                let value = std::fs::read_to_string(&parent).ctx("read", &parent)?;
                std::fs::write(&own, value.trim()).ctx("write", &own)?;
            }
        }
    }
    Ok(dir)
}

/// Write the limits into the v1 hierarchies that hold each controller.
pub fn apply(cg: &Cgroup, l: &Limits) -> Result<()> {
    let dir = |ctrl: &str| {
        cg.dir_of(ctrl).ok_or_else(|| Error::Cgroup { path: PathBuf::from(ctrl), message: format!("the {ctrl} controller is not mounted on this host") })
    };
    if l.memory.is_some() || l.memory_reservation.is_some() || l.memory_swap.is_some() {
        let d = dir("memory")?;
        let memsw = d.join("memory.memsw.limit_in_bytes").exists();
        if let (Some(s), false) = (l.memory_swap, memsw) {
            if Some(s) != l.memory && s != -1 {
                return Err(Error::Cgroup { path: d.to_path_buf(), message: "this kernel does not limit swap (boot it with swapaccount=1)".into() });
            }
        }
        let limit = || l.memory.map_or(Ok(()), |m| write(d, "memory.limit_in_bytes", &m.to_string()));
        let swap = || match (l.memory_swap, memsw) {
            (Some(s), true) => write(d, "memory.memsw.limit_in_bytes", &s.to_string()),
            _ => Ok(()),
        };
        // The kernel keeps memory <= memory+swap at every step: raising both (an update) must
        // start with memsw, lowering them with memory.
        if limit().and_then(|()| swap()).is_err() {
            swap()?;
            limit()?;
        }
        if let Some(r) = l.memory_reservation {
            write(d, "memory.soft_limit_in_bytes", &r.to_string())?;
        }
    }
    if l.cpu_quota.is_some() || l.cpu_period.is_some() || l.cpu_shares.is_some() {
        let d = dir("cpu")?;
        if let Some(p) = l.cpu_period {
            write(d, "cpu.cfs_period_us", &p.to_string())?;
        }
        if let Some(q) = l.cpu_quota {
            write(d, "cpu.cfs_quota_us", &q.to_string())?;
        }
        if let Some(s) = l.cpu_shares {
            write(d, "cpu.shares", &s.to_string())?;
        }
    }
    if l.cpuset_cpus.is_some() || l.cpuset_mems.is_some() {
        let d = dir("cpuset")?;
        if let Some(c) = &l.cpuset_cpus {
            write(d, "cpuset.cpus", c)?;
        }
        if let Some(m) = &l.cpuset_mems {
            write(d, "cpuset.mems", m)?;
        }
    }
    if let Some(p) = l.pids {
        write(dir("pids")?, "pids.max", &if p > 0 { p.to_string() } else { "max".into() })?;
    }
    if let Some(rules) = &l.devices {
        super::devices::apply_v1(dir("devices")?, rules)?;
    }
    if l.blkio_weight.is_some() || !l.read_bps.is_empty() || !l.write_bps.is_empty() {
        let d = dir("blkio")?;
        if let Some(w) = l.blkio_weight {
            let file = ["blkio.weight", "blkio.bfq.weight"]
                .into_iter()
                .find(|f| d.join(f).exists())
                .ok_or_else(|| Error::Cgroup { path: d.to_path_buf(), message: "this kernel has no blkio weight (it needs the BFQ I/O scheduler)".into() })?;
            write(d, file, &w.to_string())?;
        }
        for (file, devices) in [("blkio.throttle.read_bps_device", &l.read_bps), ("blkio.throttle.write_bps_device", &l.write_bps)] {
            for (major, minor, rate) in devices {
                write(d, file, &format!("{major}:{minor} {rate}"))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_land_in_each_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        for (h, files) in [
            ("memory", &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"][..]),
            ("cpu,cpuacct", &["cpu.cfs_quota_us", "cpu.cfs_period_us"][..]),
            ("pids", &["pids.max"][..]),
        ] {
            let d = root.path().join(h).join("pyc/c1");
            std::fs::create_dir_all(&d).unwrap();
            for f in files {
                std::fs::write(d.join(f), "").unwrap();
            }
        }
        let layout = crate::cgroup::Layout::V1 { hierarchies: ["memory", "cpu,cpuacct", "pids"].iter().map(|h| root.path().join(h)).collect(), freezer: None };
        let cg = Cgroup::open_in(&layout, "pyc/c1");
        let l = Limits {
            memory: Some(1 << 26),
            memory_swap: Some(1 << 27),
            cpu_quota: Some(150_000),
            cpu_period: Some(100_000),
            pids: Some(-1),
            ..Default::default()
        };
        apply(&cg, &l).unwrap();
        let read = |h: &str, f: &str| std::fs::read_to_string(root.path().join(h).join("pyc/c1").join(f)).unwrap();
        assert_eq!(read("memory", "memory.limit_in_bytes"), "67108864");
        assert_eq!(read("memory", "memory.memsw.limit_in_bytes"), "134217728");
        assert_eq!(read("cpu,cpuacct", "cpu.cfs_quota_us"), "150000");
        assert_eq!(read("pids", "pids.max"), "max");
        let err = apply(&cg, &Limits { blkio_weight: Some(300), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("blkio controller is not mounted"), "{err}");
    }
}
