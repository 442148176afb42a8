//! How a process on its way into a container says why it failed: a fixed-size record (step,
//! index, errno) written to a close-on-exec pipe whose reader is pyc. EOF on the pipe means the
//! command was executed; a record means it was not.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// Which step failed.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Sync = 1,
    Cgroup,
    CgroupNs,
    Propagation,
    Overlay,
    RootFd,
    MountTarget,
    Mount,
    Remount,
    MountPropagation,
    Link,
    Workdir,
    PivotRoot,
    Masked,
    Readonly,
    ReadonlyRoot,
    Hostname,
    Loopback,
    Chdir,
    NoNewPrivs,
    Stdio,
    Groups,
    Gid,
    Uid,
    Caps,
    Signals,
    NotFound,
    NotExecutable,
    Exec,
    Init,
    Setns,
    Tty,
    Session,
    Plan,
    Seccomp,
    Rlimit,
    Sysctl,
    OomScoreAdj,
    ProcTarget,
}

impl Step {
    const ALL: [Step; 39] = [
        Step::Sync,
        Step::Cgroup,
        Step::CgroupNs,
        Step::Propagation,
        Step::Overlay,
        Step::RootFd,
        Step::MountTarget,
        Step::Mount,
        Step::Remount,
        Step::MountPropagation,
        Step::Link,
        Step::Workdir,
        Step::PivotRoot,
        Step::Masked,
        Step::Readonly,
        Step::ReadonlyRoot,
        Step::Hostname,
        Step::Loopback,
        Step::Chdir,
        Step::NoNewPrivs,
        Step::Stdio,
        Step::Groups,
        Step::Gid,
        Step::Uid,
        Step::Caps,
        Step::Signals,
        Step::NotFound,
        Step::NotExecutable,
        Step::Exec,
        Step::Init,
        Step::Setns,
        Step::Tty,
        Step::Session,
        Step::Plan,
        Step::Seccomp,
        Step::Rlimit,
        Step::Sysctl,
        Step::OomScoreAdj,
        Step::ProcTarget,
    ];

    pub fn from_u32(v: u32) -> Option<Step> {
        Self::ALL.into_iter().find(|s| *s as u32 == v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub index: u32,
    pub errno: i32,
}

impl Failure {
    pub const SIZE: usize = 12;

    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..4].copy_from_slice(&(self.step as u32).to_ne_bytes());
        b[4..8].copy_from_slice(&self.index.to_ne_bytes());
        b[8..12].copy_from_slice(&self.errno.to_ne_bytes());
        b
    }

    pub fn decode(b: &[u8; Self::SIZE]) -> Option<Failure> {
        let word = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
        Some(Failure { step: Step::from_u32(word(0))?, index: word(4), errno: word(8) as i32 })
    }
}

/// A map_err for the failure of `step` (with `index`, e.g. which mount).
pub fn at(step: Step, index: usize) -> impl Fn(Errno) -> Failure {
    move |e| Failure { step, index: index as u32, errno: e as i32 }
}

/// Write the failure to `fd` and leave (allocation-free).
pub fn report_and_exit(fd: RawFd, f: Failure) -> ! {
    let bytes = f.encode();
    unsafe {
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_round_trips() {
        for step in Step::ALL {
            let f = Failure { step, index: 7, errno: libc::ENOENT };
            assert_eq!(Failure::decode(&f.encode()), Some(f));
        }
        assert_eq!(Failure::decode(&[0; Failure::SIZE]), None);
    }
}
