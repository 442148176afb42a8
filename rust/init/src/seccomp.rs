//! Loading a compiled seccomp filter (pyc-core's `seccomp` compiles and caches it, before clone),
//! allocation-free: the last confinement a container process takes on.
//!
//! Loading one takes CAP_SYS_ADMIN, or no_new_privs. docker sets no_new_privs only when asked,
//! so a process that is to lose CAP_SYS_ADMIN loads its filter just before it does (user.rs);
//! one that keeps it, or has no_new_privs, right before exec. After the filter every call the
//! setup still makes must be allowed by the profile: docker's own order and rule.

use nix::errno::Errno;

/// A classic BPF program for seccomp, one `struct sock_filter` per u64 (native byte order).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// SECCOMP_FILTER_FLAG_* for seccomp(2) (a profile's "flags").
    pub flags: u32,
    pub program: Vec<u64>,
}

impl Filter {
    /// From the bytes libseccomp exports (8 per instruction).
    pub fn from_bytes(flags: u32, bytes: &[u8]) -> Option<Filter> {
        if bytes.is_empty() || bytes.len() % 8 != 0 {
            return None;
        }
        Some(Filter { flags, program: bytes.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes"))).collect() })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.program.iter().flat_map(|i| i.to_ne_bytes()).collect()
    }

    /// Whether the process can load it after its capabilities changed to `cap_effective`.
    pub fn loadable_late(no_new_privs: bool, uid: u32, cap_effective: Option<u64>) -> bool {
        const CAP_SYS_ADMIN: u32 = 21;
        no_new_privs || (uid == 0 && cap_effective.is_none_or(|c| c & (1 << CAP_SYS_ADMIN) != 0))
    }

    /// (early, late): where `filter` is loaded, in become_user or right before exec.
    pub fn when<'a>(filter: Option<&'a Filter>, no_new_privs: bool, uid: u32, caps: Option<&crate::user::Caps>) -> (Option<&'a Filter>, Option<&'a Filter>) {
        match filter {
            Some(f) if Self::loadable_late(no_new_privs, uid, caps.map(|c| c.effective)) => (None, Some(f)),
            other => (other, None),
        }
    }

    pub fn load(&self) -> Result<(), Errno> {
        #[repr(C)]
        struct SockFprog {
            len: u16,
            filter: *const u64,
        }
        let prog = SockFprog { len: self.program.len() as u16, filter: self.program.as_ptr() };
        const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
        let ret = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, self.flags as libc::c_ulong, &prog as *const SockFprog) };
        Errno::result(ret).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_loads_and_answers() {
        // In a child: a filter cannot be taken off again.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // ld [0] (nr); jeq getppid -> errno 42; ret allow
            let ins = |code: u16, jt: u8, jf: u8, k: u32| {
                u64::from_ne_bytes([
                    code.to_ne_bytes()[0],
                    code.to_ne_bytes()[1],
                    jt,
                    jf,
                    k.to_ne_bytes()[0],
                    k.to_ne_bytes()[1],
                    k.to_ne_bytes()[2],
                    k.to_ne_bytes()[3],
                ])
            };
            let f = Filter {
                flags: 0,
                program: vec![ins(0x20, 0, 0, 0), ins(0x15, 0, 1, libc::SYS_getppid as u32), ins(0x06, 0, 0, 0x0005_0000 | 42), ins(0x06, 0, 0, 0x7fff_0000)],
            };
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let ok =
                f.load().is_ok() && unsafe { libc::syscall(libc::SYS_getppid) } == -1 && Errno::last() == Errno::from_raw(42) && unsafe { libc::getpid() } > 0;
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        let f = Filter::from_bytes(0, &[1, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(f.to_bytes(), vec![1, 0, 0, 0, 0, 0, 0, 0]);
        assert!(Filter::from_bytes(0, &[1, 2, 3]).is_none());
        assert!(Filter::loadable_late(true, 1000, Some(0)) && Filter::loadable_late(false, 0, None));
        assert!(!Filter::loadable_late(false, 0, Some(1)) && !Filter::loadable_late(false, 1000, Some(1 << 21)));
    }
}
