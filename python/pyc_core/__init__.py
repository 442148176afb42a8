"""pyc's Rust primitives: container start, layer unpack and tar, hashing, cgroups."""

from pyc_core._pyc_core import (
    ArchiveError,
    CgroupError,
    CommandNotExecutable,
    CommandNotFound,
    ConfigError,
    PycCoreError,
    RunResult,
    StartError,
    cgroup_version,
    export_overlay,
    remove_cgroup,
    remove_tree,
    run,
    sha256_file,
    tar_directory,
    unpack_layer,
)

__all__ = [
    "ArchiveError",
    "CgroupError",
    "CommandNotExecutable",
    "CommandNotFound",
    "ConfigError",
    "PycCoreError",
    "RunResult",
    "StartError",
    "cgroup_version",
    "export_overlay",
    "remove_cgroup",
    "remove_tree",
    "run",
    "sha256_file",
    "tar_directory",
    "unpack_layer",
]
