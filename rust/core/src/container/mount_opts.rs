//! OCI mount options ("ro", "nosuid", "rbind", "mode=755", ...) to mount(2) flags and data.

use nix::mount::MsFlags;

#[derive(Debug, PartialEq)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub propagation: MsFlags,
    /// Filesystem-specific options, comma-joined, for mount(2)'s data argument.
    pub data: String,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// MOUNT_ATTR_* bits for mount_setattr(AT_RECURSIVE): a bind's nodev and nosuid hold for
    /// the mounts below it too (a remount reaches the top one only), so that no device node and
    /// no setuid program of a bound host tree works, however deep.
    pub fn bind_recursive_attrs(&self) -> u64 {
        const MOUNT_ATTR_NOSUID: u64 = 0x2;
        const MOUNT_ATTR_NODEV: u64 = 0x4;
        let mut attrs = 0;
        if self.flags.contains(MsFlags::MS_NODEV) {
            attrs |= MOUNT_ATTR_NODEV;
        }
        if self.flags.contains(MsFlags::MS_NOSUID) {
            attrs |= MOUNT_ATTR_NOSUID;
        }
        attrs
    }

    /// Flags a bind mount only takes through a second, remounting call.
    pub fn bind_remount_flags(&self) -> Option<MsFlags> {
        let extra = self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        (!extra.is_empty()).then(|| extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT)
    }
}

pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
    let mut out = MountOptions { flags: MsFlags::empty(), propagation: MsFlags::empty(), data: String::new() };
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_ref();
        let (set, clear, prop) = match opt {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty(), MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty(), MsFlags::empty()),
            "private" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE),
            "rprivate" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "slave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE),
            "rslave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "shared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED),
            "rshared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED | MsFlags::MS_REC),
            "unbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE),
            "runbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            "tmpcopyup" | "defaults" => continue,
            other => {
                data.push(other);
                continue;
            }
        };
        out.flags = (out.flags | set) - clear;
        out.propagation |= prop;
    }
    out.data = data.join(",");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_data_are_split() {
        let o = parse(&["nosuid", "noexec", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.is_bind());
    }

    #[test]
    fn read_only_bind_needs_a_remount() {
        let o = parse(&["rbind", "ro", "rprivate"]);
        assert!(o.is_bind());
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(o.bind_remount_flags(), Some(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REMOUNT));
        assert_eq!(parse(&["bind"]).bind_remount_flags(), None);
    }

    #[test]
    fn later_options_win() {
        assert_eq!(parse(&["ro", "rw"]).flags, MsFlags::empty());
    }
}
