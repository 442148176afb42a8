//! ENOSYS for syscalls newer than the profile, as runc gives docker's containers.
//!
//! A profile names the syscalls of its day; one added to the kernel later would get the
//! default action, EPERM, and a libc that tries the new call first and falls back to an older
//! one on ENOSYS (clone3, faccessat2, ...) would fail instead of falling back. So syscalls with
//! a number above the highest the profile names for their architecture answer ENOSYS: a few
//! instructions put before libseccomp's program, which run first and jump to it otherwise.

use libseccomp::ScmpArch;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const RET_ERRNO_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;

#[derive(Clone, Copy)]
enum To {
    Next,
    Enosys,
    Main,
    /// The block at this index.
    Block(usize),
    /// This many instructions ahead within the block.
    Ahead(usize),
}

struct Insn {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

fn ins(code: u16, k: u32, jt: To, jf: To) -> Insn {
    Insn { code, k, jt, jf }
}

const LD_ABS: u16 = 0x20;
const JEQ: u16 = 0x15;
const JGT: u16 = 0x25;
const JSET: u16 = 0x45;
const JA: u16 = 0x05;
const RET: u16 = 0x06;

/// The prologue for `highest`: (architecture, its highest syscall number named; -1 for none).
pub fn prologue(highest: &[(ScmpArch, i32)]) -> Vec<u64> {
    let get = |a: ScmpArch| highest.iter().find(|(x, _)| *x == a).map(|(_, n)| *n).filter(|n| *n >= 0);
    let limit = |n: Option<i32>| n.map_or((To::Main, 0), |n| (To::Enosys, n as u32));
    let mut blocks: Vec<Vec<Insn>> = Vec::new();
    let mut add = |audit: u32, body: Vec<Insn>| {
        let next = blocks.len() + 1;
        let mut b = vec![ins(LD_ABS, 4, To::Next, To::Next), ins(JEQ, audit, To::Next, To::Block(next)), ins(LD_ABS, 0, To::Next, To::Next)];
        b.extend(body);
        blocks.push(b);
    };
    if highest.iter().any(|(a, _)| *a == ScmpArch::X8664) {
        let ((t64, n64), (t32, n32)) = (limit(get(ScmpArch::X8664)), limit(get(ScmpArch::X32)));
        // x32 calls come with the x86_64 audit arch and a bit set in the number.
        let x32 = if highest.iter().any(|(a, _)| *a == ScmpArch::X32) { To::Ahead(2) } else { To::Main };
        add(AUDIT_ARCH_X86_64, vec![ins(JSET, X32_SYSCALL_BIT, x32, To::Next), ins(JGT, n64, t64, To::Main), ins(JGT, n32, t32, To::Main)]);
    }
    for (arch, audit) in [(ScmpArch::X86, AUDIT_ARCH_I386), (ScmpArch::Aarch64, AUDIT_ARCH_AARCH64), (ScmpArch::Arm, AUDIT_ARCH_ARM)] {
        if highest.iter().any(|(a, _)| *a == arch) {
            let (t, n) = limit(get(arch));
            add(audit, vec![ins(JGT, n, t, To::Main)]);
        }
    }
    // After the blocks: an unknown architecture goes on to libseccomp's program (ja over the
    // ENOSYS return that ends the prologue).
    let starts: Vec<usize> = blocks
        .iter()
        .scan(0, |at, b| {
            let s = *at;
            *at += b.len();
            Some(s)
        })
        .collect();
    let end_of_blocks = blocks.iter().map(Vec::len).sum::<usize>();
    let (enosys, main) = (end_of_blocks + 1, end_of_blocks + 2);
    let mut flat: Vec<Insn> = blocks.into_iter().flatten().collect();
    flat.push(ins(JA, 0, To::Main, To::Main));
    flat.push(ins(RET, RET_ERRNO_ENOSYS, To::Next, To::Next));
    let resolve = |at: usize, to: To| -> usize {
        let target = match to {
            To::Next => at + 1,
            To::Enosys => enosys,
            To::Main => main,
            To::Block(b) => starts.get(b).copied().unwrap_or(end_of_blocks),
            To::Ahead(n) => at + n,
        };
        target - at - 1
    };
    flat.iter()
        .enumerate()
        .map(|(at, i)| {
            let (jt, jf, k) = match i.code {
                JA => (0, 0, resolve(at, i.jt) as u32),
                JEQ | JGT | JSET => (resolve(at, i.jt), resolve(at, i.jf), i.k),
                _ => (0, 0, i.k),
            };
            encode(i.code, jt as u8, jf as u8, k)
        })
        .collect()
}

fn encode(code: u16, jt: u8, jf: u8, k: u32) -> u64 {
    let c = code.to_ne_bytes();
    let k = k.to_ne_bytes();
    u64::from_ne_bytes([c[0], c[1], jt, jf, k[0], k[1], k[2], k[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a program of these instructions (no loads but [0] and [4]) on (nr, arch).
    fn run(prog: &[u64], nr: u32, arch: u32) -> Result<u32, usize> {
        let mut pc = 0;
        let mut a = 0u32;
        loop {
            let b = prog.get(pc).ok_or(pc)?.to_ne_bytes();
            let (code, jt, jf, k) = (u16::from_ne_bytes([b[0], b[1]]), b[2] as usize, b[3] as usize, u32::from_ne_bytes([b[4], b[5], b[6], b[7]]));
            pc += 1;
            match code {
                LD_ABS => a = if k == 0 { nr } else { arch },
                JEQ => pc += if a == k { jt } else { jf },
                JGT => pc += if a > k { jt } else { jf },
                JSET => pc += if a & k != 0 { jt } else { jf },
                JA => pc += k as usize,
                RET => return Ok(k),
                _ => panic!("code {code:#x}"),
            }
        }
    }

    #[test]
    fn newer_syscalls_answer_enosys_and_the_rest_go_on() {
        let mut p = prologue(&[(ScmpArch::X8664, 449), (ScmpArch::X86, 449), (ScmpArch::X32, 0x4000_0000 + 547)]);
        let main = p.len();
        p.push(encode(RET, 0, 0, 0x7fff_0000)); // "libseccomp's program"
        assert_eq!(run(&p, 449, AUDIT_ARCH_X86_64), Ok(0x7fff_0000));
        assert_eq!(run(&p, 450, AUDIT_ARCH_X86_64), Ok(RET_ERRNO_ENOSYS));
        assert_eq!(run(&p, 450, AUDIT_ARCH_I386), Ok(RET_ERRNO_ENOSYS));
        assert_eq!(run(&p, 0x4000_0000 + 547, AUDIT_ARCH_X86_64), Ok(0x7fff_0000));
        assert_eq!(run(&p, 0x4000_0000 + 548, AUDIT_ARCH_X86_64), Ok(RET_ERRNO_ENOSYS));
        assert_eq!(run(&p, 9999, AUDIT_ARCH_AARCH64), Ok(0x7fff_0000));
        assert!(main < 20);
        // No x32 in the filter: x32 calls go to libseccomp's program.
        let mut p = prologue(&[(ScmpArch::X8664, 10)]);
        p.push(encode(RET, 0, 0, 1));
        assert_eq!(run(&p, 0x4000_0000 + 999, AUDIT_ARCH_X86_64), Ok(1));
        assert_eq!(run(&p, 11, AUDIT_ARCH_X86_64), Ok(RET_ERRNO_ENOSYS));
    }
}
