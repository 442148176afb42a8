//! What the CLI leaves in the container's directory for the monitor (monitor.msgpack).

use pyc_core::container::RunConfig;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct MonitorConfig {
    pub run: RunConfig,
    #[serde(default)]
    pub restart: Restart,
    #[serde(default)]
    pub log: LogConfig,
    /// A command run once the container has ended for good (`run -d --rm`: `pyc rm`).
    #[serde(default)]
    pub on_end: Vec<String>,
}

/// docker's `--restart` policy: "no", "on-failure" (with at most `max` retries, 0 = no limit),
/// "always", "unless-stopped".
#[derive(Deserialize)]
pub struct Restart {
    pub policy: String,
    #[serde(default)]
    pub max: u32,
}

impl Default for Restart {
    fn default() -> Self {
        Restart { policy: "no".into(), max: 0 }
    }
}

#[derive(Deserialize, Clone)]
pub struct LogConfig {
    /// Bytes in the live file before it is rotated.
    #[serde(default = "default_max_size")]
    pub max_size: u64,
    /// The live file plus rotated ones (ctr.log.1 ...) kept.
    #[serde(default = "default_max_files")]
    pub max_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { max_size: default_max_size(), max_files: default_max_files() }
    }
}

fn default_max_size() -> u64 {
    10 << 20
}

fn default_max_files() -> u32 {
    2
}

impl MonitorConfig {
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, String> {
        rmp_serde::from_slice(bytes).map_err(|e| format!("invalid monitor config: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What pyc writes as monitor.msgpack (tests/golden/, made by tests/unit/test_golden.py).
    #[test]
    fn decodes_the_golden_config() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/monitor-config.msgpack");
        let cfg = MonitorConfig::from_msgpack(&std::fs::read(path).expect("the golden file")).expect("decodes");
        assert_eq!((cfg.restart.policy.as_str(), cfg.restart.max), ("on-failure", 3));
        assert_eq!((cfg.log.max_size, cfg.log.max_files), (1 << 20, 3));
        assert!(cfg.on_end.is_empty());
        assert!(cfg.run.init);
        assert_eq!(cfg.run.spec.process().as_ref().and_then(|p| p.args().clone()), Some(vec!["sh".to_string(), "-c".into(), "echo hi".into()]));
    }
}
