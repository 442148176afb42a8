//! Seccomp: a docker-format profile compiled into a BPF filter in the parent, before clone
//! (pyc_init::seccomp loads it in the child).
//!
//! The compiler is libseccomp, through its Rust crate, as runc, crun and youki use it: it knows
//! every architecture's syscall numbers (x86_64 with its x86 and x32 sub-architectures in one
//! filter), per-rule actions (ENOSYS for clone3, EPERM for the rest) and argument rules (masked
//! clone flags, personality values), all of which docker's format needs. The pure-Rust
//! compilers (seccompiler) take one action per filter and one architecture, not docker's
//! format.
//!
//! Compiling docker's default profile takes milliseconds; a container start must not pay them.
//! The filter is cached as a file, `<cache dir>/<key>.bpf` (pyc gives `$PYC_ROOT/seccomp`),
//! the key a sha256 of everything the filter depends on: the profile's text, the container's
//! capabilities (docker's rules include or exclude syscalls by capability), this machine's
//! architecture and kernel release (rules may ask a minimum kernel) and libseccomp's version.
//! A start then reads some 8 KB.

mod enosys;
mod profile;

use std::io::{Read, Seek, Write};
use std::os::fd::FromRawFd;
use std::path::Path;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall, ScmpVersion};
pub use pyc_init::seccomp::Filter;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use profile::{Context, Profile};

/// docker's default profile (docker 20.10's rules, as this machine's dockerd applies them:
/// tests/integration/test_dockerd.py compares the two filters decision by decision).
pub const DEFAULT: &str = include_str!("default.json");

/// Bumped when the compiled form changes for the same inputs (the ENOSYS prologue, say).
const FORMAT: &str = "pyc-seccomp-2";

fn bad(what: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("seccomp profile: {what}"))
}

/// The filter for `profile` (docker's JSON; None: docker's default) and a container with `caps`,
/// from the cache in `cache` when it has it, else compiled (and cached there).
pub fn filter(profile: Option<&str>, caps: &[String], cache: Option<&Path>) -> Result<Filter> {
    let text = profile.unwrap_or(DEFAULT);
    let (machine, kernel) = uname();
    let path = cache.map(|dir| dir.join(format!("{}.bpf", key(text, caps, &machine, &kernel))));
    if let Some(f) = path.as_deref().and_then(read_cached) {
        return Ok(f);
    }
    let f = compile(text, caps, &kernel)?;
    if let Some(p) = &path {
        write_cached(p, &f);
    }
    Ok(f)
}

fn key(text: &str, caps: &[String], machine: &str, kernel: &str) -> String {
    let mut caps = caps.to_vec();
    caps.sort();
    let v = ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro)).unwrap_or_default();
    let mut h = Sha256::new();
    for part in [FORMAT, text, &caps.join(","), machine, kernel, &v] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

fn uname() -> (String, String) {
    let u = nix::sys::utsname::uname().ok();
    let s = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| u.as_ref().map(|u| f(u).to_string_lossy().into_owned()).unwrap_or_default();
    (s(|u| u.machine()), s(|u| u.release()))
}

/// The cache file: 4 bytes of flags, then the program.
fn read_cached(path: &Path) -> Option<Filter> {
    let bytes = std::fs::read(path).ok()?;
    let flags = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    Filter::from_bytes(flags, &bytes[4..])
}

/// Best effort: a cache that cannot be written only costs the next start a compile.
fn write_cached(path: &Path, f: &Filter) {
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::create_dir_all(dir);
    let tmp = dir.join(format!(".{}.{}", std::process::id(), path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
    let mut bytes = f.flags.to_le_bytes().to_vec();
    bytes.extend(f.to_bytes());
    if std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// docker's (Go's) name of an architecture, as a profile's `includes.arches` names it.
fn go_arch(a: ScmpArch) -> &'static str {
    match a {
        ScmpArch::X8664 => "amd64",
        ScmpArch::X86 => "386",
        ScmpArch::X32 => "x32",
        ScmpArch::Aarch64 => "arm64",
        ScmpArch::Arm => "arm",
        ScmpArch::Ppc64Le => "ppc64le",
        ScmpArch::S390X => "s390x",
        ScmpArch::Riscv64 => "riscv64",
        _ => "unknown",
    }
}

fn action(name: &str, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = |default: u32| errno.unwrap_or(default) as i32;
    Ok(match name {
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno(libc::EPERM as u32)),
        "SCMP_ACT_TRACE" => ScmpAction::Trace(errno(libc::EPERM as u32) as u16),
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => return Err(bad("SCMP_ACT_NOTIFY is not supported (no seccomp agent)")),
        other => return Err(bad(format!("unknown action {other:?}"))),
    })
}

fn compare(a: &profile::Arg) -> Result<ScmpArgCompare> {
    let op = match a.op.as_str() {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // docker's: `value` is the mask, `valueTwo` what the masked argument must equal.
        "SCMP_CMP_MASKED_EQ" => return Ok(ScmpArgCompare::new(a.index, ScmpCompareOp::MaskedEqual(a.value), a.value_two)),
        other => return Err(bad(format!("unknown argument operator {other:?}"))),
    };
    if a.index > 5 {
        return Err(bad(format!("argument index {} (0 to 5)", a.index)));
    }
    Ok(ScmpArgCompare::new(a.index, op, a.value))
}

fn flag(name: &str) -> Result<u32> {
    Ok(match name {
        // One thread here: synchronising threads changes nothing.
        "SECCOMP_FILTER_FLAG_TSYNC" => 0,
        "SECCOMP_FILTER_FLAG_LOG" => 2,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => 4,
        other => return Err(bad(format!("unsupported flag {other:?}"))),
    })
}

/// Compile docker's JSON for a container with `caps` (`CAP_*` names) on kernel `release`.
pub fn compile(text: &str, caps: &[String], release: &str) -> Result<Filter> {
    let p: Profile = serde_json::from_str(text).map_err(bad)?;
    if p.listener_path.as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(bad("a seccomp agent (listenerPath) is not supported"));
    }
    let flags = p.flags.iter().map(|f| flag(f)).sum::<Result<u32>>()?;
    let default = action(&p.default_action, p.default_errno_ret)?;
    let sys = |e: libseccomp::error::SeccompError| Error::Internal(format!("libseccomp: {e}"));
    let mut ctx = ScmpFilterContext::new(default).map_err(sys)?;
    // A binary tree over the syscall numbers instead of libseccomp's default list: the kernel
    // converts and JITs the filter at every start (work linear in its length) and builds its
    // per-syscall allow cache by running it for each number. Measured here: the load takes
    // 0.3 ms instead of 0.7, for 1,212 instructions instead of 972.
    ctx.set_ctl_optimize(2).map_err(sys)?;
    let native = ScmpArch::native();
    let mut arches = vec![native];
    let wanted: Vec<&String> = match p.arch_map.iter().find(|m| m.architecture.parse::<ScmpArch>().ok() == Some(native)) {
        Some(m) => m.sub_architectures.iter().collect(),
        None if p.arch_map.is_empty() => p.architectures.iter().collect(),
        None => Vec::new(),
    };
    for name in wanted {
        let a: ScmpArch = name.parse().map_err(|_| bad(format!("unknown architecture {name:?}")))?;
        if !arches.contains(&a) {
            ctx.add_arch(a).map_err(sys)?;
            arches.push(a);
        }
    }
    let kernel = {
        let mut it = release.split(|c: char| !c.is_ascii_digit()).filter_map(|s| s.parse().ok());
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    let context = Context { caps, arch: go_arch(native), kernel };
    // The highest syscall number the profile names, per architecture (enosys.rs).
    let mut highest: Vec<(ScmpArch, i32)> = arches.iter().map(|a| (*a, -1)).collect();
    for rule in &p.syscalls {
        if !context.applies(rule).map_err(bad)? {
            continue;
        }
        let act = action(&rule.action, rule.errno_ret)?;
        let conds = rule.args.iter().map(compare).collect::<Result<Vec<_>>>()?;
        for name in rule.all_names() {
            for (a, high) in highest.iter_mut() {
                if let Ok(nr) = ScmpSyscall::from_name_by_arch(name, *a) {
                    *high = (*high).max(nr.as_raw_syscall());
                }
            }
            if act == default {
                continue;
            }
            // A name this libseccomp does not know is left out, as docker does.
            let Ok(call) = ScmpSyscall::from_name(name) else { continue };
            let shared_index = conds.len() > 1 && rule.args.iter().any(|a| rule.args.iter().filter(|b| b.index == a.index).count() > 1);
            let result = if conds.is_empty() {
                ctx.add_rule(act, call)
            } else if shared_index {
                // libseccomp ANDs the conditions of one rule; several on one argument are ORed.
                conds.iter().try_for_each(|c| ctx.add_rule_conditional(act, call, &[*c]).map(drop)).map(|()| &mut ctx)
            } else {
                ctx.add_rule_conditional(act, call, &conds)
            };
            result.map_err(|e| bad(format!("rule for {name}: {e}")))?;
        }
    }
    let program = export(&ctx)?;
    let program = match default {
        ScmpAction::Allow | ScmpAction::Log => program,
        _ => enosys::prologue(&highest).into_iter().chain(program).collect(),
    };
    if program.len() > 4096 {
        return Err(bad(format!("the filter has {} instructions, more than the kernel's 4096", program.len())));
    }
    Ok(Filter { flags, program })
}

fn export(ctx: &ScmpFilterContext) -> Result<Vec<u64>> {
    let raw = unsafe { libc::memfd_create(c"pyc-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(Error::io("memfd_create", "seccomp filter", std::io::Error::last_os_error()));
    }
    let mut f = unsafe { std::fs::File::from_raw_fd(raw) };
    ctx.export_bpf(&f).map_err(|e| Error::Internal(format!("libseccomp export: {e}")))?;
    let mut bytes = Vec::new();
    f.flush().and_then(|()| f.rewind()).and_then(|()| f.read_to_end(&mut bytes).map(drop)).map_err(|e| Error::io("read", "seccomp filter", e))?;
    Filter::from_bytes(0, &bytes).map(|f| f.program).ok_or_else(|| Error::Internal("libseccomp exported no filter".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_default_profile_compiles_and_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let f = filter(None, &caps(&["CAP_CHOWN"]), Some(dir.path())).unwrap();
        assert!(f.program.len() > 100 && f.flags == 0);
        let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(cached.len(), 1);
        assert_eq!(read_cached(&cached[0]).unwrap(), f);
        assert_eq!(filter(None, &caps(&["CAP_CHOWN"]), Some(dir.path())).unwrap(), f);
        // Other capabilities, another filter (and another file).
        let admin = filter(None, &caps(&["CAP_SYS_ADMIN"]), Some(dir.path())).unwrap();
        assert_ne!(admin, f);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn bad_profiles_are_one_clear_error() {
        for (text, says) in [
            ("{", "seccomp profile"),
            (r#"{"defaultAction": "SCMP_ACT_NOPE"}"#, "unknown action"),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOON"}]}]}"#,
                "unknown argument operator",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_Z80"]}]}"#,
                "unknown architecture",
            ),
            (r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}"#, "listenerPath"),
            (r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#, "SCMP_ACT_NOTIFY"),
        ] {
            let e = compile(text, &[], "6.1.0").unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        // A name libseccomp does not know is skipped, as docker skips it.
        compile(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "no_such_call"], "action": "SCMP_ACT_ALLOW"}]}"#, &[], "6.1.0").unwrap();
    }
}
