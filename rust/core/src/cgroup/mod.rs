//! cgroups, v1 and v2, picked at run time like runc: pure v2 when `root` is a cgroup2 mount,
//! otherwise every v1 hierarchy mounted under it (on hybrid hosts cgroup2 at `root/unified`
//! holds no controllers worth joining). `root` is a parameter so tests run on a temp tree.

mod layout;
mod v1;
mod v2;

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use layout::Layout;

use crate::error::{Error, IoContext, Result};

/// One container's cgroup: a directory in each hierarchy (one on v2).
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    /// On v2, the open directory, so clone3 can start the child inside it.
    v2_dir: Option<File>,
}

impl Cgroup {
    /// Create `path` (e.g. `pyc/<id>`) under each hierarchy of the host's layout.
    pub fn create(root: &Path, path: &str) -> Result<Cgroup> {
        Self::create_in(&Layout::detect(root)?, path)
    }

    pub fn create_in(layout: &Layout, path: &str) -> Result<Cgroup> {
        if path.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(Error::InvalidConfig(format!("bad cgroup path {path:?}")));
        }
        match layout {
            Layout::V2 { root } => {
                let dir = retry_vanished_parent(|| v2::create(root, path))?;
                let f = File::open(&dir).ctx("open", &dir)?;
                Ok(Cgroup { dirs: vec![dir], v2_dir: Some(f) })
            }
            Layout::V1 { hierarchies } => {
                let mut cg = Cgroup { dirs: Vec::new(), v2_dir: None };
                for h in hierarchies {
                    match retry_vanished_parent(|| v1::create(h, path)) {
                        Ok(dir) => cg.dirs.push(dir),
                        Err(e) => {
                            let _ = cg.remove();
                            return Err(e);
                        }
                    }
                }
                Ok(cg)
            }
        }
    }

    /// The cgroup of a container made earlier, to remove it.
    pub fn from_dirs(dirs: Vec<PathBuf>) -> Cgroup {
        Cgroup { dirs, v2_dir: None }
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Files a process writes "0" to in order to move itself in: v1's per-thread `tasks`. Empty
    /// on v2, where a domain cgroup takes whole processes only (clone3 places the child there).
    pub fn self_join_files(&self) -> Vec<PathBuf> {
        if self.v2_dir.is_some() {
            return Vec::new();
        }
        self.dirs.iter().map(|d| d.join("tasks")).collect()
    }

    pub fn clone_fd(&self) -> Option<RawFd> {
        self.v2_dir.as_ref().map(|f| f.as_raw_fd())
    }

    /// Move a process in (when clone could not start it there).
    pub fn add(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            let procs = d.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).ctx("write", &procs)?;
        }
        Ok(())
    }

    /// Remove every directory; what is still inside is killed first. Processes take a moment to
    /// leave after they die, so EBUSY is retried for a while.
    pub fn remove(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        for d in self.dirs.iter().rev() {
            loop {
                match std::fs::remove_dir(d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                        kill_all(d);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(Error::io("remove cgroup", d, e)),
                }
            }
            // The shared parent (`pyc`) goes with its last child, so an idle host keeps no trace;
            // it is busy (and stays) while other containers run.
            if let Some(parent) = d.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
        Ok(())
    }
}

/// Another pyc may remove the shared parent between our mkdir of it and of our leaf.
fn retry_vanished_parent<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    for _ in 0..3 {
        match f() {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
            other => return other,
        }
    }
    f()
}

fn kill_all(dir: &Path) {
    if std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    if let Ok(pids) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// mkdir -p that reports which directories it made, top first.
fn mkdir_all(path: &Path) -> Result<Vec<PathBuf>> {
    let mut made = Vec::new();
    let mut missing = Vec::new();
    let mut p = path;
    while !p.exists() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match std::fs::create_dir(&dir) {
            Ok(()) => made.push(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create cgroup", &dir, e)),
        }
    }
    Ok(made)
}
