use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::journal::ContainerActor;

/// Everything one container start needs, as Python sends it (msgpack): an OCI runtime spec
/// (config.json shape) plus what the spec has no words for, the overlay and the cgroup.
#[derive(Debug, Deserialize)]
pub struct RunConfig {
    pub spec: oci_spec::runtime::Spec,
    pub rootfs: Overlay,
    #[serde(default)]
    pub cgroup: Option<CgroupConfig>,
    /// Run a reaper as pid 1 and the command as its child (`--init`).
    #[serde(default)]
    pub init: bool,
    /// The pyc-init program (the reaper of `--init`), run from a sealed copy.
    #[serde(default)]
    pub pyc_init: Option<PathBuf>,
    /// The interfaces to give the container (made by the parent while the child waits) and
    /// the ports its holder publishes.
    #[serde(default)]
    pub network: crate::net::NetPlan,
    /// Where the container's start, oom and die are logged (the events journal), and as whom.
    #[serde(default)]
    pub events: Option<ContainerActor>,
    /// None: no seccomp filter (`--privileged`, `seccomp=unconfined`).
    #[serde(default)]
    pub seccomp: Option<SeccompConfig>,
}

/// The container's seccomp profile and where compiled filters are cached (seccomp/mod.rs).
#[derive(Debug, Clone, Deserialize)]
pub struct SeccompConfig {
    /// docker's JSON format; None: docker's default profile.
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub cache: Option<PathBuf>,
}

impl SeccompConfig {
    /// The filter for a process with these capabilities (the spec's bounding set; None: all).
    pub fn filter(&self, caps: Option<&oci_spec::runtime::LinuxCapabilities>) -> Result<crate::seccomp::Filter> {
        let names: Vec<String> = match caps {
            Some(c) => c.bounding().iter().flatten().map(|c| format!("CAP_{c}")).collect(),
            None => super::caps::all_names(),
        };
        crate::seccomp::filter(self.profile.as_deref(), &names, self.cache.as_deref())
    }
}

/// The union mount of the container: read-only image layers under a private upper dir.
/// It is mounted on `spec.root.path` inside the container's own mount namespace.
#[derive(Debug, Deserialize)]
pub struct Overlay {
    /// Top-most layer first, as overlayfs wants them.
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Skip syncs of the upper dir: for containers that are thrown away (`--rm`).
    #[serde(default)]
    pub volatile: bool,
    /// Device nodes on it open (--privileged); else it is nodev.
    #[serde(default)]
    pub dev: bool,
}

#[derive(Debug, Deserialize)]
pub struct CgroupConfig {
    /// Where cgroupfs is mounted; a parameter so tests can use a plain directory tree.
    #[serde(default = "default_cgroup_root")]
    pub root: PathBuf,
    /// Relative to each hierarchy, e.g. `pyc/<id>`.
    pub path: String,
}

fn default_cgroup_root() -> PathBuf {
    PathBuf::from("/sys/fs/cgroup")
}

impl RunConfig {
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self> {
        rmp_serde::from_slice(bytes).map_err(|e| Error::InvalidConfig(e.to_string()))
    }
}
