//! The events journal ($PYC_ROOT/events.log): one JSON line per event in docker's shape (what
//! `docker events --format '{{json .}}'` prints), appended by every pyc command (through the
//! binding) and by pyc-monitor, read by `pyc events` (python/pyc/events.py).
//!
//! A batch of lines goes in with one write(2) on an O_APPEND descriptor: the kernel appends it
//! whole, so concurrent writers never interleave. Past `max_size()` bytes the file is renamed
//! to events.log.1 (the one before is dropped) and a new one begun. Writers take turns through
//! an exclusive flock on the live file, so the size a writer checks is the size it writes to
//! (with a shared lock, two writers near the bound both found room and passed it together);
//! the writer that would pass the bound rotates, and one that finds the path naming another
//! file than the one it opened (rotated meanwhile) opens it again. So once the rename is done
//! nothing more is written to the rotated file, and a reader that follows the journal finishes
//! that file and goes on in the new one without losing a line. A turn is a stat and one small
//! write: writers do not wait on each other for long.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The live file's size bound when PYC_EVENTS_MAX_SIZE does not set one: about 10,000 events,
/// as many again in the rotated file.
pub const DEFAULT_MAX_SIZE: u64 = 4 << 20;

/// The live file's size bound: PYC_EVENTS_MAX_SIZE (bytes), else DEFAULT_MAX_SIZE.
pub fn max_size() -> u64 {
    std::env::var("PYC_EVENTS_MAX_SIZE").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(DEFAULT_MAX_SIZE)
}

/// One event: what it happened to (`kind`: container, image, ...; its `id` and attributes)
/// and what happened (`action`: create, start, die, tag, ...).
pub struct Event<'a> {
    pub kind: &'a str,
    pub action: &'a str,
    pub id: &'a str,
    pub attributes: BTreeMap<&'a str, &'a str>,
}

/// docker's events.Message, field for field in its order (status, id and from are the
/// deprecated fields docker still fills for containers and images).
#[derive(Serialize)]
struct Message<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
    #[serde(rename = "Type")]
    kind: &'a str,
    #[serde(rename = "Action")]
    action: &'a str,
    #[serde(rename = "Actor")]
    actor: Actor<'a>,
    scope: &'a str,
    time: i64,
    #[serde(rename = "timeNano")]
    time_nano: i64,
}

#[derive(Serialize)]
struct Actor<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Attributes")]
    attributes: &'a BTreeMap<&'a str, &'a str>,
}

impl Event<'_> {
    /// The journal line of this event at `time_nano` (ns since the epoch), newline included.
    pub fn line(&self, time_nano: i64) -> Vec<u8> {
        let known = matches!(self.kind, "container" | "image");
        let m = Message {
            status: known.then_some(self.action),
            id: known.then_some(self.id),
            from: if self.kind == "container" { self.attributes.get("image").copied() } else { None },
            kind: self.kind,
            action: self.action,
            actor: Actor { id: self.id, attributes: &self.attributes },
            scope: "local",
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        };
        let mut line = serde_json::to_vec(&m).expect("strings and numbers serialize");
        line.push(b'\n');
        line
    }
}

fn now_nano() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Append `events` to the journal at `path` in one write, rotating it first when they would
/// take it past `max_size`.
pub fn append(path: &Path, events: &[Event], max_size: u64) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now = now_nano();
    let lines: Vec<u8> = events.iter().flat_map(|e| e.line(now)).collect();
    // Each turn either writes, or finds the file rotated (by another or by itself) and opens
    // the new one: more than a few turns means something keeps rotating it.
    for _ in 0..16 {
        let f =
            std::fs::OpenOptions::new().append(true).create(true).mode(0o600).custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW).open(path).ctx("open", path)?;
        lock(&f, libc::LOCK_EX, path)?;
        if !is_named(&f, path)? {
            continue;
        }
        let size = f.metadata().ctx("stat", path)?.len();
        if size > 0 && size + lines.len() as u64 > max_size {
            std::fs::rename(path, rotated_path(path)).ctx("rename", path)?;
            continue;
        }
        return write_once(&f, &lines, path);
    }
    Err(Error::Internal(format!("{}: the events journal kept being rotated", path.display())))
}

fn lock(f: &File, how: libc::c_int, path: &Path) -> Result<()> {
    loop {
        match Errno::result(unsafe { libc::flock(f.as_raw_fd(), how) }) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("flock {}", path.display()), e)),
            Ok(_) => return Ok(()),
        }
    }
}

/// Whether `path` still names the file `f` is open on.
fn is_named(f: &File, path: &Path) -> Result<bool> {
    let open = f.metadata().ctx("stat", path)?;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok(named.ino() == open.ino() && named.dev() == open.dev()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("stat", path, e)),
    }
}

pub fn rotated_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// One write(2): a short one (a full disk) is an error, never a second write that another
/// writer's lines could come between.
fn write_once(mut f: &File, lines: &[u8], path: &Path) -> Result<()> {
    loop {
        match f.write(lines) {
            Ok(n) if n == lines.len() => return Ok(()),
            Ok(n) => return Err(Error::io("write", path, std::io::Error::other(format!("short write: {n} of {} bytes", lines.len())))),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("write", path, e)),
        }
    }
}

/// Where a container's events go and what each says of it: docker's Actor, its id and the
/// attributes every event of it carries (image, name). Part of the run config: pyc-core logs
/// the container's start, and its oom and die where it waits for the end (run, pyc-monitor);
/// with them, as docker does, the mount of each of its `volumes` before the start and their
/// unmount after the die.
#[derive(Debug, Clone, Deserialize)]
pub struct ContainerActor {
    pub journal: PathBuf,
    pub id: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub volumes: Vec<VolumeActor>,
}

/// A volume a container mounts: its name (the volume events' actor) and what its mount event
/// says (docker's container, destination, driver, propagation, read/write).
#[derive(Debug, Clone, Deserialize)]
pub struct VolumeActor {
    pub name: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl VolumeActor {
    fn event<'a>(&'a self, action: &'a str, container: &'a str) -> Event<'a> {
        let attributes = if action == "mount" {
            self.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
        } else {
            // docker's unmount says only the driver and the container.
            let driver = self.attributes.get("driver").map(String::as_str).unwrap_or("local");
            BTreeMap::from([("driver", driver), ("container", container)])
        };
        Event { kind: "volume", action, id: &self.name, attributes }
    }
}

impl ContainerActor {
    fn event<'a>(&'a self, action: &'a str, extra: &[(&'a str, &'a str)]) -> Event<'a> {
        let mut attributes: BTreeMap<&str, &str> = self.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        attributes.extend(extra.iter().copied());
        Event { kind: "container", action, id: &self.id, attributes }
    }

    /// The container's command runs (its volumes mounted before).
    pub fn started(&self) -> Result<()> {
        let mut events: Vec<Event> = self.volumes.iter().map(|v| v.event("mount", &self.id)).collect();
        events.push(self.event("start", &[]));
        append(&self.journal, &events, max_size())
    }

    /// The container ended with `status`; `oom`: the kernel killed in it for memory (docker
    /// logs oom before die).
    pub fn ended(&self, status: i32, oom: bool) -> Result<()> {
        let code = status.to_string();
        let mut events = Vec::with_capacity(2 + self.volumes.len());
        if oom {
            events.push(self.event("oom", &[]));
        }
        events.push(self.event("die", &[("exitCode", &code)]));
        events.extend(self.volumes.iter().map(|v| v.event("unmount", &self.id)));
        append(&self.journal, &events, max_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(action: &'a str, name: &'a str) -> Event<'a> {
        Event { kind: "container", action, id: "c0ffee", attributes: BTreeMap::from([("image", "busybox"), ("name", name)]) }
    }

    #[test]
    fn lines_have_dockers_shape() {
        let line = event("die", "web").line(1_700_000_000_123_456_789);
        assert_eq!(
            String::from_utf8(line).unwrap(),
            concat!(
                r#"{"status":"die","id":"c0ffee","from":"busybox","Type":"container","Action":"die","#,
                r#""Actor":{"ID":"c0ffee","Attributes":{"image":"busybox","name":"web"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}"#,
                "\n"
            )
        );
        let image = Event { kind: "image", action: "tag", id: "sha256:ab", attributes: BTreeMap::from([("name", "x:1")]) };
        let v: serde_json::Value = serde_json::from_slice(&image.line(5)).unwrap();
        assert_eq!((v["status"].as_str(), v["id"].as_str(), v.get("from")), (Some("tag"), Some("sha256:ab"), None));
        let volume = Event { kind: "volume", action: "create", id: "v", attributes: BTreeMap::new() };
        let v: serde_json::Value = serde_json::from_slice(&volume.line(5)).unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none());
        // A name is data, never JSON syntax: quotes, backslashes and control characters escaped.
        let line = event("create", "a\"b\\c\n\u{1b}[2J").line(5);
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["Actor"]["Attributes"]["name"], "a\"b\\c\n\u{1b}[2J");
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn a_containers_volumes_are_mounted_before_its_start_and_unmounted_after_its_die() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("events.log");
        let mount = BTreeMap::from([("container", "c0ffee"), ("destination", "/v"), ("driver", "local"), ("propagation", ""), ("read/write", "true")]);
        let volume = VolumeActor { name: "data".into(), attributes: mount.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        let actor = ContainerActor { journal: journal.clone(), id: "c0ffee".into(), attributes: BTreeMap::new(), volumes: vec![volume] };
        actor.started().unwrap();
        actor.ended(0, false).unwrap();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&journal).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let seen: Vec<(&str, &str, &str)> =
            lines.iter().map(|v| (v["Type"].as_str().unwrap(), v["Action"].as_str().unwrap(), v["Actor"]["ID"].as_str().unwrap())).collect();
        assert_eq!(seen, [("volume", "mount", "data"), ("container", "start", "c0ffee"), ("container", "die", "c0ffee"), ("volume", "unmount", "data")]);
        assert_eq!(lines[0]["Actor"]["Attributes"], serde_json::json!(mount));
        assert_eq!(lines[3]["Actor"]["Attributes"], serde_json::json!({"container": "c0ffee", "driver": "local"}));
    }

    #[test]
    fn rotates_past_the_bound_keeping_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let one = event("start", "x").line(now_nano()).len() as u64;
        for i in 0..10 {
            append(&path, &[event("start", &i.to_string())], 3 * one + 5).unwrap();
        }
        let count = |p: &Path| std::fs::read_to_string(p).map(|s| s.lines().count()).unwrap_or(0);
        // 10 lines, 3 a file: the live one has the last (10 = 3 + 3 + 3 + 1), .1 the 3 before.
        assert_eq!((count(&rotated_path(&path)), count(&path)), (3, 1));
        assert!(std::fs::read_to_string(&path).unwrap().contains(r#""name":"9""#));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
    }

    /// Whether a process waits for a flock on the inode `ino` (/proc/locks: `-> FLOCK ...`).
    fn someone_waits_on(ino: u64) -> bool {
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        locks.lines().any(|l| l.contains("->") && l.contains("FLOCK") && l.split_whitespace().any(|f| f.rsplit(':').next() == Some(&ino.to_string())))
    }

    #[test]
    fn nothing_is_written_to_a_file_once_it_is_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        append(&path, &[event("start", "before")], 1 << 20).unwrap();
        // The test rotates by hand, holding the file's lock as a rotating writer does, while
        // a writer that opened it waits for the lock.
        let live = File::open(&path).unwrap();
        lock(&live, libc::LOCK_EX, &path).unwrap();
        let ino = live.metadata().unwrap().ino();
        std::thread::scope(|s| {
            let writer = s.spawn(|| append(&path, &[event("start", "after")], 1 << 20));
            while !someone_waits_on(ino) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            std::fs::rename(&path, rotated_path(&path)).unwrap();
            drop(live);
            writer.join().unwrap().unwrap();
        });
        let old = std::fs::read_to_string(rotated_path(&path)).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(old.contains(r#""name":"before""#) && !old.contains(r#""name":"after""#), "{old}");
        assert!(new.contains(r#""name":"after""#), "{new}");
    }

    #[test]
    fn concurrent_writers_never_interleave_or_lose_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let (threads, each) = (8, 200);
        std::thread::scope(|s| {
            for t in 0..threads {
                let path = &path;
                s.spawn(move || {
                    let name = format!("t{t}-{}", "x".repeat(300));
                    for _ in 0..each {
                        append(path, &[event("start", &name), event("die", &name)], 1 << 30).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), threads * each * 2);
        for pair in lines.chunks(2) {
            let a: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
            let b: serde_json::Value = serde_json::from_str(pair[1]).unwrap();
            // A batch is one write: its two lines stay together.
            assert_eq!((a["Action"].as_str(), b["Action"].as_str()), (Some("start"), Some("die")));
            assert_eq!(a["Actor"]["Attributes"]["name"], b["Actor"]["Attributes"]["name"]);
        }
    }

    #[test]
    fn concurrent_rotation_loses_nothing_but_the_oldest_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let one = event("start", "t0-0000").line(now_nano()).len() as u64;
        let bound = 50 * one;
        std::thread::scope(|s| {
            for t in 0..4 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..100 {
                        append(path, &[event("start", &format!("t{t}-{i:04}"))], bound).unwrap();
                    }
                });
            }
        });
        // 400 lines through files of at most 50: each file whole lines within the bound, and
        // the two kept ones a run of the last lines written: each writer's lines there follow
        // one another without a gap (a line written to a file already rotated away would be one).
        let live = std::fs::read_to_string(&path).unwrap();
        let old = std::fs::read_to_string(rotated_path(&path)).unwrap();
        assert!(live.len() as u64 <= bound && old.len() as u64 <= bound);
        assert!(old.lines().count() * one as usize > (bound - one) as usize, "the rotated file is full");
        let mut last: BTreeMap<String, i32> = BTreeMap::new();
        for line in old.lines().chain(live.lines()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let name = v["Actor"]["Attributes"]["name"].as_str().unwrap().to_string();
            let (t, i) = name.split_once('-').unwrap();
            let i: i32 = i.parse().unwrap();
            if let Some(before) = last.get(t) {
                assert_eq!(i, before + 1, "{name}: a gap or a line out of order");
            }
            last.insert(t.to_string(), i);
        }
        // The writer that wrote last has its last line in the live file.
        assert!(last.values().any(|&i| i == 99), "{last:?}");
    }
}
