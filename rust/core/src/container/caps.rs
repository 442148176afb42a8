//! Capability names, as the OCI spec writes them, to bit numbers.

const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A set of capabilities as a bit mask; unknown names are an error.
pub fn mask<S: AsRef<str>>(names: &[S]) -> Result<u64, String> {
    let mut mask = 0u64;
    for name in names {
        let name = name.as_ref();
        let bare = name.strip_prefix("CAP_").unwrap_or(name);
        let bit = NAMES.iter().position(|n| *n == bare).ok_or_else(|| format!("unknown capability {name}"))?;
        mask |= 1 << bit;
    }
    Ok(mask)
}

/// Every capability's `CAP_*` name.
pub fn all_names() -> Vec<String> {
    NAMES.iter().map(|n| format!("CAP_{n}")).collect()
}

/// The highest capability this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_bits() {
        assert_eq!(mask(&["CAP_CHOWN", "CAP_KILL"]).unwrap(), 1 | 1 << 5);
        assert_eq!(mask(&["SYS_ADMIN"]).unwrap(), 1 << 21);
        assert!(mask(&["CAP_NOPE"]).is_err());
    }
}
