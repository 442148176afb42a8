//! cgroups, v1 and v2, picked at run time like runc: pure v2 when `root` is a cgroup2 mount,
//! otherwise every v1 hierarchy mounted under it (on hybrid hosts cgroup2 at `root/unified`
//! holds no controllers worth joining). `root` is a parameter so tests run on a temp tree.

mod freezer;
mod layout;
mod limits;
mod stats;
mod v1;
mod v2;

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use layout::Layout;
pub use limits::Limits;
pub use stats::Stats;

use crate::error::{Error, IoContext, Result};

/// One container's cgroup: a directory in each v1 hierarchy, or one on v2.
#[derive(Debug)]
pub struct Cgroup {
    /// (hierarchy name such as `cpu,cpuacct`, directory); on v2 one entry named "".
    dirs: Vec<(String, PathBuf)>,
    v2: bool,
    /// On v2, the open directory, so clone3 can start the child inside it.
    v2_dir: Option<File>,
    /// On v1, its directory in the freezer hierarchy, made when it is first paused.
    freezer: Option<PathBuf>,
}

fn hierarchy_name(h: &Path) -> String {
    h.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn check_path(path: &str) -> Result<()> {
    if path.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(Error::InvalidConfig(format!("bad cgroup path {path:?}")));
    }
    Ok(())
}

impl Cgroup {
    /// Create `path` (e.g. `pyc/<id>`) under each hierarchy of the host's layout.
    pub fn create(root: &Path, path: &str) -> Result<Cgroup> {
        Self::create_in(&Layout::detect(root)?, path)
    }

    pub fn create_in(layout: &Layout, path: &str) -> Result<Cgroup> {
        check_path(path)?;
        match layout {
            Layout::V2 { root } => {
                let dir = retry_vanished_parent(|| v2::create(root, path))?;
                let f = File::open(&dir).ctx("open", &dir)?;
                Ok(Cgroup { dirs: vec![(String::new(), dir)], v2: true, v2_dir: Some(f), freezer: None })
            }
            Layout::V1 { hierarchies, freezer } => {
                let mut cg = Cgroup { dirs: Vec::new(), v2: false, v2_dir: None, freezer: freezer.as_ref().map(|f| f.join(path)) };
                for h in hierarchies {
                    match retry_vanished_parent(|| v1::create(h, path)) {
                        Ok(dir) => cg.dirs.push((hierarchy_name(h), dir)),
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

    /// A cgroup made earlier (by a run in another process), to measure, change or remove it.
    pub fn open(root: &Path, path: &str) -> Result<Cgroup> {
        check_path(path)?;
        Ok(Self::open_in(&Layout::detect(root)?, path))
    }

    pub fn open_in(layout: &Layout, path: &str) -> Cgroup {
        match layout {
            Layout::V2 { root } => Cgroup { dirs: vec![(String::new(), root.join(path))], v2: true, v2_dir: None, freezer: None },
            Layout::V1 { hierarchies, freezer } => Cgroup {
                dirs: hierarchies.iter().map(|h| (hierarchy_name(h), h.join(path))).collect(),
                v2: false,
                v2_dir: None,
                freezer: freezer.as_ref().map(|f| f.join(path)),
            },
        }
    }

    #[cfg(test)]
    pub fn open_v2_for_test(dir: &Path) -> Cgroup {
        Cgroup { dirs: vec![(String::new(), dir.to_path_buf())], v2: true, v2_dir: None, freezer: None }
    }

    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|(_, d)| d.as_path())
    }

    /// The directories a process joins to be one of the container's: those that exist of
    /// `dirs`, and on v1 its freezer's once it has one (a process that joins a frozen one is
    /// frozen with the rest).
    pub fn member_dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs().chain(self.freezer.as_deref()).filter(|d| d.is_dir())
    }

    /// Freeze every process of the container (`pyc pause`); returns once all are frozen.
    pub fn freeze(&self) -> Result<()> {
        freezer::freeze(self)
    }

    /// Let them run again (`pyc unpause`); nothing for a container that was never frozen.
    pub fn thaw(&self) -> Result<()> {
        freezer::thaw(self)
    }

    /// The processes of the container (their pids in the caller's pid namespace).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = self.dirs().find(|d| d.is_dir()).ok_or_else(|| Error::Cgroup {
            path: self.dirs.first().map(|(_, d)| d.clone()).unwrap_or_default(),
            message: "no such cgroup (is the container running?)".into(),
        })?;
        freezer::procs(dir)
    }

    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// The directory that holds `controller`'s files (v1: its hierarchy; v2: the one dir).
    pub fn dir_of(&self, controller: &str) -> Option<&Path> {
        if self.v2 {
            return self.dirs.first().map(|(_, d)| d.as_path());
        }
        self.dirs.iter().find(|(name, _)| name.split(',').any(|c| c == controller)).map(|(_, d)| d.as_path())
    }

    /// Set the limits; on v2 each controller a limit needs must have been enabled for it.
    pub fn apply(&self, limits: &Limits) -> Result<()> {
        if self.v2 {
            v2::apply(self, limits)
        } else {
            v1::apply(self, limits)
        }
    }

    pub fn stats(&self) -> Result<Stats> {
        if self.v2 {
            stats::read_v2(self)
        } else {
            stats::read_v1(self)
        }
    }

    /// Files a process writes "0" to in order to move itself in: v1's per-thread `tasks`. Empty
    /// on v2, where a domain cgroup takes whole processes only (clone3 places the child there).
    pub fn self_join_files(&self) -> Vec<PathBuf> {
        if self.v2_dir.is_some() {
            return Vec::new();
        }
        self.dirs.iter().map(|(_, d)| d.join("tasks")).collect()
    }

    pub fn clone_fd(&self) -> Option<RawFd> {
        self.v2_dir.as_ref().map(|f| f.as_raw_fd())
    }

    /// Move a process in (when clone could not start it there).
    pub fn add(&self, pid: i32) -> Result<()> {
        for (_, d) in &self.dirs {
            let procs = d.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string()).ctx("write", &procs)?;
        }
        Ok(())
    }

    /// Remove every directory; what is still inside is killed first. Processes take a moment to
    /// leave after they die, so EBUSY is retried for a while.
    pub fn remove(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        // A v1 frozen process dies of SIGKILL only once thawed: killed first, so that none
        // runs again, then thawed. (On v2 a fatal signal reaches frozen processes.)
        let freezer = self.freezer.as_deref().filter(|f| f.is_dir());
        if let Some(f) = freezer {
            kill_all(f);
            let _ = std::fs::write(f.join("freezer.state"), "THAWED");
        }
        for d in self.dirs.iter().map(|(_, d)| d.as_path()).rev().chain(freezer) {
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

/// Write one control file; the kernel's refusal (EINVAL, EBUSY, ...) names the file and value.
fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| Error::Cgroup { path, message: format!("cannot set {value:?}: {}", e.to_string().to_lowercase()) })
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
