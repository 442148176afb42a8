//! The user a container process runs as: groups, gid, uid and capabilities (allocation-free).

use nix::errno::Errno;

use crate::report::{at, Failure, Step};
use crate::seccomp::Filter;

/// Capability sets as bit masks (bit n: capability n).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Caps {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    /// The highest capability the kernel knows (/proc/sys/kernel/cap_last_cap).
    pub last_cap: u32,
}

/// Become `uid`:`gid` with `groups`; the bounding set first (it needs CAP_SETPCAP, which a
/// uid change may take away), and the other sets after, for root (a change to a non-root uid
/// clears them, as docker's users expect). `filter`: a seccomp filter to load on the way, at the
/// last moment CAP_SYS_ADMIN is still held (seccomp.rs): before a non-root uid, or before root's
/// final capabilities.
pub fn become_user(uid: u32, gid: u32, groups: &[libc::gid_t], caps: Option<&Caps>, filter: Option<&Filter>) -> Result<(), Failure> {
    if let Some(c) = caps {
        drop_bounding(c).map_err(at(Step::Caps, 0))?;
    }
    Errno::result(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) }).map_err(at(Step::Groups, 0))?;
    Errno::result(unsafe { libc::setresgid(gid, gid, gid) }).map_err(at(Step::Gid, 0))?;
    let load = |f: &Filter| f.load().map_err(at(Step::Seccomp, 0));
    if let (Some(f), true) = (filter, uid != 0) {
        load(f)?;
    }
    Errno::result(unsafe { libc::setresuid(uid, uid, uid) }).map_err(at(Step::Uid, 0))?;
    if let (Some(f), 0) = (filter, uid) {
        load(f)?;
    }
    if let (Some(c), 0) = (caps, uid) {
        set_caps(c).map_err(at(Step::Caps, 1))?;
    }
    Ok(())
}

fn drop_bounding(c: &Caps) -> Result<(), Errno> {
    for cap in 0..=c.last_cap {
        if c.bounding & (1 << cap) == 0 {
            match Errno::result(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }) {
                Ok(_) | Err(Errno::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn set_caps(c: &Caps) -> Result<(), Errno> {
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = CapHeader { version: VERSION_3, pid: 0 };
    let split = |m: u64| [m as u32, (m >> 32) as u32];
    let (e, p, i) = (split(c.effective), split(c.permitted), split(c.inheritable));
    let data = [CapData { effective: e[0], permitted: p[0], inheritable: i[0] }, CapData { effective: e[1], permitted: p[1], inheritable: i[1] }];
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) }).map(drop)
}
