//! docker's seccomp profile format (its `default.json`, and the files users give with
//! `--security-opt seccomp=FILE`), and which of its rules apply to one container: those whose
//! `includes` (capabilities, architectures, a minimum kernel) hold and `excludes` do not.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// The older form of `arch_map`: the architectures themselves.
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
    /// SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, ...
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub listener_path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub names: Vec<String>,
    /// The oldest form: one name.
    #[serde(default)]
    pub name: Option<String>,
    pub action: String,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub includes: Filter,
    #[serde(default)]
    pub excludes: Filter,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub arches: Vec<String>,
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// What a rule's includes and excludes are checked against.
pub struct Context<'a> {
    /// The container's capabilities, as `CAP_*` names.
    pub caps: &'a [String],
    /// docker's (Go's) name of this machine's architecture: amd64, arm64, ...
    pub arch: &'a str,
    /// This kernel's (major, minor).
    pub kernel: (u32, u32),
}

fn version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next().and_then(|m| m.parse().ok()).unwrap_or(0)))
}

impl Context<'_> {
    pub fn applies(&self, r: &Rule) -> Result<bool, String> {
        let i = &r.includes;
        if !i.caps.iter().all(|c| self.caps.contains(c)) || (!i.arches.is_empty() && !i.arches.iter().any(|a| a == self.arch)) {
            return Ok(false);
        }
        if let Some(k) = &i.min_kernel {
            if self.kernel < version(k).ok_or_else(|| format!("bad minKernel {k:?}"))? {
                return Ok(false);
            }
        }
        let e = &r.excludes;
        if e.caps.iter().any(|c| self.caps.contains(c)) || e.arches.iter().any(|a| a == self.arch) {
            return Ok(false);
        }
        if let Some(k) = &e.min_kernel {
            if self.kernel >= version(k).ok_or_else(|| format!("bad minKernel {k:?}"))? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Rule {
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str).chain(self.name.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_and_excludes() {
        let caps = vec!["CAP_SYS_ADMIN".to_string()];
        let ctx = Context { caps: &caps, arch: "amd64", kernel: (5, 10) };
        let rule = |json: &str| -> Rule { serde_json::from_str(json).unwrap() };
        assert!(ctx.applies(&rule(r#"{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}"#)).unwrap());
        assert!(!ctx.applies(&rule(r#"{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}"#)).unwrap());
        assert!(!ctx.applies(&rule(r#"{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}}"#)).unwrap());
        assert!(ctx.applies(&rule(r#"{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}"#)).unwrap());
        assert!(!ctx.applies(&rule(r#"{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "5.11"}}"#)).unwrap());
        assert!(ctx.applies(&rule(r#"{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "nope"}}"#)).is_err());
    }
}
