//! `pyc pause` and `unpause`: the cgroup freezer.
//!
//! v2: `cgroup.freeze` in the container's own cgroup; `cgroup.events` says `frozen 1` once
//! every process is.
//!
//! v1: the freezer hierarchy, which a container joins only when it is first paused (joining
//! every hierarchy at start costs each container a directory made and removed; few are ever
//! paused). Its processes are moved into its freezer cgroup until a pass finds none outside: a
//! process forked meanwhile by one not yet moved shows up in the next pass, one forked by a
//! moved process is born inside. Then `freezer.state` is set to FROZEN and read until the
//! kernel says every task is. A process that joins later (`pyc exec` joins it too) is frozen
//! on joining.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{mkdir_all, write, Cgroup};
use crate::error::{Error, IoContext, Result};

/// How long the kernel may take to freeze every task (one in an uninterruptible sleep, on a
/// slow disk, delays it) before the pause is given up and undone.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Passes of moving processes into the v1 freezer before giving up on a fork storm.
const PASSES: usize = 1000;

/// The pids in a cgroup directory's cgroup.procs.
pub fn procs(dir: &Path) -> Result<Vec<i32>> {
    let path = dir.join("cgroup.procs");
    let text = std::fs::read_to_string(&path).ctx("read", &path)?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

fn not_running(dir: &Path) -> Error {
    Error::Cgroup { path: dir.to_path_buf(), message: "no such cgroup (is the container running?)".into() }
}

pub fn freeze(cg: &Cgroup) -> Result<()> {
    let members = cg.dirs().next().filter(|d| d.is_dir()).ok_or_else(|| not_running(cg.dirs().next().unwrap_or(Path::new(""))))?;
    if cg.is_v2() {
        freeze_v2(members)
    } else {
        let freezer = cg
            .freezer
            .as_deref()
            .ok_or_else(|| Error::Cgroup { path: members.to_path_buf(), message: "no freezer cgroup is mounted on this host: pause is not possible".into() })?;
        freeze_v1(members, freezer)
    }
}

pub fn thaw(cg: &Cgroup) -> Result<()> {
    if cg.is_v2() {
        // Gone (or going): the container ended, as a frozen process still dies of SIGKILL on v2
        // (`rm -f` kills, then thaws); nothing is left frozen. As v1 below.
        let Some(dir) = cg.dirs().next().filter(|d| d.is_dir()) else { return Ok(()) };
        return match write(dir, "cgroup.freeze", "0") {
            Err(_) if !dir.is_dir() => Ok(()),
            other => other,
        };
    }
    match cg.freezer.as_deref().filter(|d| d.is_dir()) {
        Some(dir) => write(dir, "freezer.state", "THAWED"),
        None => Ok(()),
    }
}

fn freeze_v2(dir: &Path) -> Result<()> {
    if !dir.join("cgroup.freeze").exists() {
        return Err(Error::Cgroup { path: dir.to_path_buf(), message: "this kernel has no cgroup.freeze (Linux 5.2): pause is not possible".into() });
    }
    write(dir, "cgroup.freeze", "1")?;
    let events = dir.join("cgroup.events");
    until_frozen(dir, || Ok(std::fs::read_to_string(&events).ctx("read", &events)?.lines().any(|l| l == "frozen 1")), || write(dir, "cgroup.freeze", "0"))
}

fn freeze_v1(members: &Path, freezer: &Path) -> Result<()> {
    mkdir_all(freezer)?;
    let mut moved_all = false;
    for _ in 0..PASSES {
        let inside: HashSet<i32> = procs(freezer)?.into_iter().collect();
        let outside: Vec<i32> = procs(members)?.into_iter().filter(|p| !inside.contains(p)).collect();
        if outside.is_empty() {
            moved_all = true;
            break;
        }
        for pid in outside {
            match std::fs::write(freezer.join("cgroup.procs"), pid.to_string()) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {} // it ended meanwhile
                other => other.ctx("write", freezer.join("cgroup.procs"))?,
            }
        }
    }
    if !moved_all {
        return Err(Error::Cgroup { path: freezer.to_path_buf(), message: "its processes kept forking faster than they could be moved to be frozen".into() });
    }
    let state = freezer.join("freezer.state");
    write(freezer, "freezer.state", "FROZEN")?;
    until_frozen(
        freezer,
        || {
            let now = std::fs::read_to_string(&state).ctx("read", &state)?;
            if now.trim() == "FREEZING" {
                // A task that was busy when asked is asked again, as runc does.
                let _ = std::fs::write(&state, "FROZEN");
            }
            Ok(now.trim() == "FROZEN")
        },
        || write(freezer, "freezer.state", "THAWED"),
    )
}

/// Poll `frozen` until it says so; past TIMEOUT, `undo` and fail.
fn until_frozen(dir: &Path, mut frozen: impl FnMut() -> Result<bool>, undo: impl FnOnce() -> Result<()>) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    let mut nap = Duration::from_micros(100);
    loop {
        if frozen()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            undo()?;
            return Err(Error::Cgroup {
                path: dir.to_path_buf(),
                message: format!("not every process froze within {}s: the pause was undone", TIMEOUT.as_secs()),
            });
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::Layout;

    #[test]
    fn v2_freeze_writes_and_waits_for_the_kernels_word() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pyc/c1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.freeze"), "0").unwrap();
        std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        let cg = Cgroup::open_v2_for_test(&dir);
        cg.freeze().unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("cgroup.freeze")).unwrap(), "1");
        cg.thaw().unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("cgroup.freeze")).unwrap(), "0");
        std::fs::remove_file(dir.join("cgroup.freeze")).unwrap();
        assert!(cg.freeze().unwrap_err().to_string().contains("no cgroup.freeze"));
    }

    #[test]
    fn v1_without_a_freezer_says_so_and_thaw_of_a_never_paused_one_does_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("memory/pyc/c1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "").unwrap();
        let cg = Cgroup::open_in(&Layout::V1 { hierarchies: vec![root.path().join("memory")], freezer: None }, "pyc/c1");
        assert!(cg.freeze().unwrap_err().to_string().contains("no freezer cgroup"));
        let cg = Cgroup::open_in(&Layout::V1 { hierarchies: vec![root.path().join("memory")], freezer: Some(root.path().join("freezer")) }, "pyc/c1");
        cg.thaw().unwrap();
        assert!(!root.path().join("freezer/pyc/c1").exists());
    }

    #[test]
    fn a_missing_cgroup_is_not_running() {
        let root = tempfile::tempdir().unwrap();
        let cg = Cgroup::open_v2_for_test(&root.path().join("gone"));
        assert!(cg.freeze().unwrap_err().to_string().contains("is the container running?"));
        assert!(cg.pids().unwrap_err().to_string().contains("is the container running?"));
    }
}
