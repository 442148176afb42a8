use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// The v1 controllers pyc limits or measures, and devices (which devices a container may open).
/// Each hierarchy joined costs a directory made and removed per container, so the rest
/// (freezer, name=systemd, net_cls, ...) are left.
pub const USED_V1: [&str; 7] = ["blkio", "cpu", "cpuacct", "cpuset", "devices", "memory", "pids"];

#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    V2 {
        root: PathBuf,
    },
    /// One directory per v1 hierarchy that holds a controller pyc uses (see USED_V1), and the
    /// freezer's, which a container joins only when it is paused (freezer.rs).
    V1 {
        hierarchies: Vec<PathBuf>,
        freezer: Option<PathBuf>,
    },
}

fn fs_magic(p: &Path) -> Option<i64> {
    // The magic's type differs between architectures (i64 on x86_64).
    #[allow(clippy::unnecessary_cast)]
    nix::sys::statfs::statfs(p).ok().map(|s| s.filesystem_type().0 as i64)
}

impl Layout {
    pub fn detect(root: &Path) -> Result<Layout> {
        if fs_magic(root) == Some(CGROUP2_SUPER_MAGIC) {
            return Ok(Layout::V2 { root: root.to_path_buf() });
        }
        let mut hierarchies = Vec::new();
        let mut freezer = None;
        let entries = std::fs::read_dir(root).map_err(|e| Error::io("read", root, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            // Co-mounted controllers show up twice (cpu -> cpu,cpuacct): skip the links.
            if entry.file_type().map(|t| t.is_symlink()).unwrap_or(true) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let used = name.split(',').any(|c| USED_V1.contains(&c));
            let freezes = name.split(',').any(|c| c == "freezer");
            if !(used || freezes) || fs_magic(&path) != Some(CGROUP_SUPER_MAGIC) {
                continue;
            }
            if used {
                hierarchies.push(path);
            } else {
                freezer = Some(path);
            }
        }
        if hierarchies.is_empty() {
            return Err(Error::Cgroup { path: root.to_path_buf(), message: "no cgroup v1 or v2 mount found (under `ip netns exec`, whose own sysfs on /sys hides them, enter the namespace with `nsenter --net=` instead)".into() });
        }
        hierarchies.sort();
        Ok(Layout::V1 { hierarchies, freezer })
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }
}
