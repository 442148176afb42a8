//! Layers: a tar stream in, checked and unpacked once; a directory or a container's view out.

mod beneath;
mod dest;
mod diff;
mod digest;
mod entry;
mod export;
mod lower_links;
mod overlay;
mod parallel;
mod readahead;
#[cfg(test)]
mod testtar;
mod unpack;

pub use diff::{changes, upper_to_layer, Change};
pub use digest::{sha256_file, HashingReader, HashingWriter};
pub use export::{export_overlay, tar_directory};
pub use lower_links::LowerLink;
pub use parallel::{unpack_all, Job};
pub use unpack::{unpack, Unpacked};
