//! A container's limits, from the OCI spec's `linux.resources`, in the units docker users know
//! (bytes, CFS quota and period, shares, weights); v1.rs and v2.rs write them each their way.

use oci_spec::runtime::LinuxResources;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Limits {
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Memory plus swap, as docker's --memory-swap; -1 is unlimited swap.
    pub memory_swap: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// (major, minor, bytes per second)
    pub read_bps: Vec<(i64, i64, u64)>,
    pub write_bps: Vec<(i64, i64, u64)>,
    /// Which devices the container may use (devices.rs); None: not set here (`pyc update`).
    pub devices: Option<Vec<super::devices::Rule>>,
}

impl Limits {
    pub fn from_oci(r: &LinuxResources) -> Limits {
        let mut l = Limits::default();
        if let Some(m) = r.memory() {
            l.memory = m.limit();
            l.memory_reservation = m.reservation();
            l.memory_swap = m.swap();
        }
        if let Some(c) = r.cpu() {
            l.cpu_quota = c.quota();
            l.cpu_period = c.period();
            l.cpu_shares = c.shares();
            l.cpuset_cpus = c.cpus().clone();
            l.cpuset_mems = c.mems().clone();
        }
        if let Some(p) = r.pids() {
            l.pids = Some(p.limit());
        }
        if let Some(b) = r.block_io() {
            l.blkio_weight = b.weight();
            let devices = |d: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| d.iter().flatten().map(|t| (t.major(), t.minor(), t.rate())).collect();
            l.read_bps = devices(b.throttle_read_bps_device());
            l.write_bps = devices(b.throttle_write_bps_device());
        }
        l.devices = r.devices().as_ref().map(|d| d.iter().map(super::devices::Rule::from_oci).collect());
        l
    }

    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// cgroup v2's cpu.weight (1-10000) for v1 shares (2-262144), as runc converts it.
    pub fn cpu_weight(&self) -> Option<u64> {
        self.cpu_shares.map(|s| 1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142)
    }

    /// cgroup v2's io.weight (1-10000) for a v1 blkio weight (10-1000).
    pub fn io_weight(&self) -> Option<u64> {
        self.blkio_weight.map(|w| 1 + ((w.clamp(10, 1000) as u64 - 10) * 9999) / 990)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_convert_like_runc() {
        let l = Limits { cpu_shares: Some(1024), blkio_weight: Some(500), ..Default::default() };
        assert_eq!(l.cpu_weight(), Some(39));
        assert_eq!(l.io_weight(), Some(4950));
        assert_eq!(Limits { cpu_shares: Some(2), ..Default::default() }.cpu_weight(), Some(1));
    }

    #[test]
    fn reads_the_oci_resources() {
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":67108864,"swap":134217728},"cpu":{"quota":50000,"period":100000,"cpus":"0"},"pids":{"limit":100},"blockIO":{"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#).unwrap();
        let l = Limits::from_oci(&r);
        assert_eq!((l.memory, l.memory_swap, l.cpu_quota, l.pids), (Some(67108864), Some(134217728), Some(50000), Some(100)));
        assert_eq!(l.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(l.read_bps, vec![(8, 0, 1048576)]);
    }
}
