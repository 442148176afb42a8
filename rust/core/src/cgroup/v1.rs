use std::path::{Path, PathBuf};

use super::mkdir_all;
use crate::error::{IoContext, Result};

/// Create `path` in one v1 hierarchy. A new cpuset cgroup starts with no CPUs and no memory
/// nodes, so nobody could join it: copy them down from the parent, level by level.
pub fn create(hierarchy: &Path, path: &str) -> Result<PathBuf> {
    let dir = hierarchy.join(path);
    let made = mkdir_all(&dir)?;
    if hierarchy.join("cpuset.cpus").exists() {
        for d in made {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let parent = d.parent().expect("below the hierarchy").join(file);
                let value = std::fs::read_to_string(&parent).ctx("read", &parent)?;
                std::fs::write(d.join(file), value.trim()).ctx("write", d.join(file))?;
            }
        }
    }
    Ok(dir)
}
