//! What a container uses, read from its cgroup: the numbers `pyc stats` shows.

use std::path::Path;

use super::Cgroup;
use crate::error::Result;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub pids_limit: Option<u64>,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
    /// Processes the kernel killed for want of memory in this cgroup.
    pub oom_kills: u64,
}

fn read(dir: Option<&Path>, file: &str) -> Option<String> {
    std::fs::read_to_string(dir?.join(file)).ok()
}

fn number(dir: Option<&Path>, file: &str) -> Option<u64> {
    read(dir, file)?.trim().parse().ok()
}

/// A `key value` line of a flat-keyed file (memory.events, cpu.stat, memory.oom_control).
fn keyed(dir: Option<&Path>, file: &str, key: &str) -> Option<u64> {
    read(dir, file)?.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// "unlimited" is shown as None: v2 writes `max`, v1 a number near 2^63.
fn limit(v: Option<String>) -> Option<u64> {
    v?.trim().parse::<u64>().ok().filter(|n| *n < 1 << 62)
}

pub fn read_v1(cg: &Cgroup) -> Result<Stats> {
    let (mem, pids, blkio) = (cg.dir_of("memory"), cg.dir_of("pids"), cg.dir_of("blkio"));
    let (mut io_read, mut io_write) = (0, 0);
    for line in read(blkio, "blkio.throttle.io_service_bytes_recursive").unwrap_or_default().lines() {
        match line.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "Read", n] => io_read += n.parse::<u64>().unwrap_or(0),
            [_, "Write", n] => io_write += n.parse::<u64>().unwrap_or(0),
            _ => {}
        }
    }
    Ok(Stats {
        cpu_usage_ns: number(cg.dir_of("cpuacct"), "cpuacct.usage").unwrap_or(0),
        memory_usage: number(mem, "memory.usage_in_bytes").unwrap_or(0),
        memory_limit: limit(read(mem, "memory.limit_in_bytes")),
        pids: number(pids, "pids.current").unwrap_or(0),
        pids_limit: limit(read(pids, "pids.max")),
        io_read_bytes: io_read,
        io_write_bytes: io_write,
        oom_kills: keyed(mem, "memory.oom_control", "oom_kill").unwrap_or(0),
    })
}

pub fn read_v2(cg: &Cgroup) -> Result<Stats> {
    let d = cg.dir_of("");
    let (mut io_read, mut io_write) = (0, 0);
    for field in read(d, "io.stat").unwrap_or_default().split_whitespace() {
        if let Some(n) = field.strip_prefix("rbytes=") {
            io_read += n.parse::<u64>().unwrap_or(0);
        } else if let Some(n) = field.strip_prefix("wbytes=") {
            io_write += n.parse::<u64>().unwrap_or(0);
        }
    }
    Ok(Stats {
        cpu_usage_ns: keyed(d, "cpu.stat", "usage_usec").unwrap_or(0) * 1000,
        memory_usage: number(d, "memory.current").unwrap_or(0),
        memory_limit: limit(read(d, "memory.max")),
        pids: number(d, "pids.current").unwrap_or(0),
        pids_limit: limit(read(d, "pids.max")),
        io_read_bytes: io_read,
        io_write_bytes: io_write,
        oom_kills: keyed(d, "memory.events", "oom_kill").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v2_files() {
        let d = tempfile::tempdir().unwrap();
        for (f, v) in [
            ("cpu.stat", "usage_usec 1500\nuser_usec 1000\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("pids.current", "3\n"),
            ("pids.max", "100\n"),
            ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1\n8:16 rbytes=5 wbytes=0\n"),
            ("memory.events", "low 0\noom 1\noom_kill 1\n"),
        ] {
            std::fs::write(d.path().join(f), v).unwrap();
        }
        let s = read_v2(&Cgroup::open_v2_for_test(d.path())).unwrap();
        assert_eq!(
            s,
            Stats {
                cpu_usage_ns: 1_500_000,
                memory_usage: 4096,
                memory_limit: None,
                pids: 3,
                pids_limit: Some(100),
                io_read_bytes: 15,
                io_write_bytes: 20,
                oom_kills: 1
            }
        );
    }
}
