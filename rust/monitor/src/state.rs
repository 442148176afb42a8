//! state.msgpack in the container's directory: the monitor's word on the container, written
//! whole (temp file, rename) at every change, so a reader never sees half of it. pyc reads it
//! (and checks the monitor is alive) rather than trusting what a CLI may have died writing.

use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    /// running, restarting or exited.
    pub status: &'static str,
    pub pid: i32,
    pub exit_code: i32,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    pub monitor_pid: i32,
    /// The monitor's start time in clock ticks since boot: tells it from a process that took
    /// its pid after it died.
    pub monitor_start: String,
    pub error: String,
}

pub struct StateFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl StateFile {
    pub fn new(dir: &Path) -> Self {
        StateFile { path: dir.join("state.msgpack"), tmp: dir.join("state.msgpack.tmp") }
    }

    pub fn write(&self, state: &State) {
        let Ok(bytes) = rmp_serde::to_vec_named(state) else { return };
        // The directory may be gone (`pyc rm -f` won the race): nothing is left to tell.
        if std::fs::write(&self.tmp, bytes).is_ok() {
            let _ = std::fs::rename(&self.tmp, &self.path);
        }
    }
}

/// Field 22 of /proc/self/stat (start time), as pyc reads it for any pid.
pub fn own_start_time() -> String {
    let stat = std::fs::read("/proc/self/stat").unwrap_or_default();
    let after = stat.iter().rposition(|&b| b == b')').map(|i| &stat[i + 1..]).unwrap_or(&[]);
    String::from_utf8_lossy(after).split_whitespace().nth(19).unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// state.msgpack as pyc reads it (tests/golden/; tests/unit/test_golden.py decodes it).
    /// PYC_GOLDEN_UPDATE=1 rewrites the file.
    #[test]
    fn writes_the_golden_state() {
        let st = State {
            status: "exited",
            pid: 4242,
            exit_code: 137,
            oom_killed: true,
            started_at: "2026-12-01T00:00:01.000000000Z".into(),
            finished_at: "2026-12-01T00:00:02.000000000Z".into(),
            restart_count: 2,
            monitor_pid: 4241,
            monitor_start: "123456".into(),
            error: String::new(),
        };
        let bytes = rmp_serde::to_vec_named(&st).expect("encodes");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/monitor-state.msgpack");
        if std::env::var_os("PYC_GOLDEN_UPDATE").is_some_and(|v| v == "1") {
            std::fs::write(path, &bytes).expect("write the golden file");
        }
        assert_eq!(std::fs::read(path).expect("the golden file"), bytes, "state.msgpack changed: if on purpose, PYC_GOLDEN_UPDATE=1, and check pyc reads it");
    }
}
