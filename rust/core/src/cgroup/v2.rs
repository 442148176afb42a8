use std::path::{Path, PathBuf};

use super::mkdir_all;
use crate::error::{IoContext, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

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
