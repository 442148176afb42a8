//! Which devices a container may make (mknod), read and write: the OCI spec's
//! `linux.resources.devices` rules, the last matching rule deciding (docker's list: deny all,
//! then mknod of any node, rwm of null, zero, full, random, urandom, tty, console, ptmx, tun
//! and the ptys, and what --device and --device-cgroup-rule add).
//!
//! v1 has its `devices` controller (devices.deny, devices.allow). v2 has no file for it: a
//! BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup decides, as runc and
//! crun do it; `program` writes it from the rules.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (all), 'c' or 'b'.
    pub kind: char,
    /// None: any.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of "rwm".
    pub access: String,
}

impl Rule {
    pub fn from_oci(d: &oci_spec::runtime::LinuxDeviceCgroup) -> Rule {
        use oci_spec::runtime::LinuxDeviceType as T;
        let kind = match d.typ() {
            Some(T::C) | Some(T::U) => 'c',
            Some(T::B) => 'b',
            _ => 'a',
        };
        Rule { allow: d.allow(), kind, major: d.major(), minor: d.minor(), access: d.access().clone().unwrap_or_else(|| "rwm".into()) }
    }

    /// v1's form: "c 1:3 rwm", "a *:* rwm".
    pub fn v1_line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!("{} {}:{} {}", self.kind, n(self.major), n(self.minor), self.access)
    }
}

/// v1: deny all first (a child cgroup starts with its parent's list), then each rule in order.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    for r in rules {
        let file = if r.allow { "devices.allow" } else { "devices.deny" };
        super::write(dir, file, &r.v1_line())?;
    }
    Ok(())
}

// eBPF, as the kernel reads it: struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm }.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let o = off.to_ne_bytes();
    let i = imm.to_ne_bytes();
    u64::from_ne_bytes([code, dst | (src << 4), o[0], o[1], i[0], i[1], i[2], i[3]])
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV32_X: u8 = 0xbc;
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV64_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

/// The program for `rules`: the last rule that matches a request decides; none: denied.
/// Registers: r2 the device type (1 block, 2 char), r3 the access asked (1 mknod, 2 read,
/// 4 write), r4 major, r5 minor, all from struct bpf_cgroup_dev_ctx in r1.
pub fn program(rules: &[Rule]) -> Vec<u64> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV32_X, 3, 2, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // (code, dst, src, imm) of the checks; each jumps past this rule when it fails.
        let mut checks: Vec<(u8, u8, u8, i32)> = Vec::new();
        match r.kind {
            'c' => checks.push((JNE_K, 2, 0, 2)),
            'b' => checks.push((JNE_K, 2, 0, 1)),
            _ => {}
        }
        let bits = r.access.chars().map(|c| match c {
            'm' => 1,
            'r' => 2,
            'w' => 4,
            _ => 0,
        });
        let mask: i32 = bits.fold(0, |a, b| a | b);
        if mask != 7 {
            // Asked for anything the rule does not grant: not this rule.
            checks.push((MOV32_X, 6, 3, 0));
            checks.push((AND32_K, 6, 0, !mask & 7));
            checks.push((JNE_K, 6, 0, 0));
        }
        if let Some(m) = r.major {
            checks.push((JNE_K, 4, 0, m as i32));
        }
        if let Some(m) = r.minor {
            checks.push((JNE_K, 5, 0, m as i32));
        }
        let (len, always) = (checks.len() + 2, checks.is_empty());
        for (i, (code, dst, src, imm)) in checks.into_iter().enumerate() {
            let off = if code == JNE_K { (len - i - 1) as i16 } else { 0 };
            p.push(insn(code, dst, src, off, imm));
        }
        p.push(insn(MOV64_K, 0, 0, 0, r.allow as i32));
        p.push(insn(EXIT, 0, 0, 0, 0));
        if always {
            // The verifier refuses code no path reaches: nothing goes past a rule for all.
            return p;
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Load the program for `rules` and attach it to the v2 cgroup `dir` (it lives as long as the
/// cgroup: the attachment holds it).
pub fn attach_v2(dir: &Path, rules: &[Rule]) -> Result<()> {
    let prog = program(rules);
    #[repr(C)]
    #[derive(Default)]
    struct Load {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
    }
    let license = c"Apache-2.0";
    let load = Load {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &load as *const Load, std::mem::size_of::<Load>()) };
    if fd < 0 {
        return Err(Error::io("load the device program (bpf)", dir, std::io::Error::last_os_error()));
    }
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cgroup = File::open(dir).map_err(|e| Error::io("open", dir, e))?;
    #[repr(C)]
    struct Attach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    let attach = Attach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_ATTACH, &attach as *const Attach, std::mem::size_of::<Attach>()) };
    if ret < 0 {
        return Err(Error::io("attach the device program (bpf)", dir, std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the program on (type, access, major, minor) as the kernel would.
    fn run(p: &[u64], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [kind | access << 16, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0;
        loop {
            let b = p[pc].to_ne_bytes();
            let (code, dst, src, off, imm) =
                (b[0], (b[1] & 0xf) as usize, (b[1] >> 4) as usize, i16::from_ne_bytes([b[2], b[3]]), i32::from_ne_bytes([b[4], b[5], b[6], b[7]]));
            pc += 1;
            match code {
                LDX_W => r[dst] = ctx[off as usize / 4] as u64,
                MOV32_X => r[dst] = r[src] as u32 as u64,
                AND32_K => r[dst] = (r[dst] as u32 & imm as u32) as u64,
                RSH32_K => r[dst] = ((r[dst] as u32) >> imm) as u64,
                MOV64_K => r[dst] = imm as i64 as u64,
                JNE_K => {
                    if r[dst] != imm as i64 as u64 {
                        pc += off as usize;
                    }
                }
                EXIT => return r[0],
                _ => panic!("code {code:#x}"),
            }
        }
    }

    fn rule(allow: bool, kind: char, major: Option<i64>, minor: Option<i64>, access: &str) -> Rule {
        Rule { allow, kind, major, minor, access: access.into() }
    }

    #[test]
    fn the_last_matching_rule_decides() {
        let rules = [
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', None, None, "m"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'c', Some(136), None, "rwm"),
            rule(true, 'b', Some(7), None, "r"),
        ];
        let p = program(&rules);
        let (c, b, m, rd, wr) = (2, 1, 1, 2, 4);
        assert_eq!(run(&p, c, rd | wr, 1, 3), 1); // /dev/null
        assert_eq!(run(&p, c, rd, 1, 4), 0); // /dev/port
        assert_eq!(run(&p, c, m, 10, 229), 1); // mknod of any char device
        assert_eq!(run(&p, c, rd, 136, 7), 1); // a pty
        assert_eq!(run(&p, b, rd, 7, 0), 1); // a loop device, read
        assert_eq!(run(&p, b, wr, 7, 0), 0); // but not written
        assert_eq!(run(&p, b, m, 8, 0), 0); // no mknod of block devices here
        assert_eq!(run(&p, b, rd, 8, 0), 0); // a disk
        let all = program(&[rule(true, 'a', None, None, "rwm")]);
        assert_eq!(run(&all, b, rd | wr | m, 8, 0), 1);
        assert_eq!(rules[4].v1_line(), "b 7:* r");
    }
}
