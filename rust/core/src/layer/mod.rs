//! Layers: a tar stream in, checked and unpacked once; a directory or a container's view out.

#[cfg(test)]
mod any_workers;
mod beneath;
mod codec;
mod dest;
mod diff;
mod digest;
mod entry;
mod export;
mod lower_links;
mod overlay;
mod pack;
mod parallel;
mod plan;
mod readahead;
#[cfg(test)]
mod testtar;
mod tree;
mod unpack;
#[cfg(test)]
mod unpack_props;
mod writers;

pub use diff::{changes, upper_to_layer, Change};
pub use digest::{decompress_file, sha256_file, HashingReader, HashingWriter};
pub use export::{export_overlay, tar_directory};
pub use lower_links::LowerLink;
pub use parallel::{unpack_all, Job, Keep};
pub use unpack::{default_workers, unpack, unpack_plain, unpack_with, Mode, Unpacked};
