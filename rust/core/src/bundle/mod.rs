//! Delta bundles: move an image to a machine that has an older version of it by carrying only
//! what changed. `create` writes a bundle from the new image's layer tars and the old images'
//! layer tars; `Bundle` reads one back and rebuilds each carried layer tar, byte for byte, from
//! the old layers on this machine and what the bundle carries.
//!
//! What a carried layer is made of (`recipe.rs`): spans copied from an old layer tar (a whole
//! file found by its content, or content-defined chunks of it, FastCDC), zstd patches of a
//! changed file against the old file at the same path (zstd's patch-from: the old content as a
//! reference prefix), and literal bytes (tar headers, new content), all in one zstd stream per
//! layer. The format (`format.rs`) is a magic, then frames, then a trailer with the sha256 of
//! every byte before it: versioned, self-describing, written and read as a stream.

mod apply;
mod create;
mod format;
mod index;
mod recipe;

pub use apply::{inspect, Bundle, Inspected, LayerReader};
pub use create::{create, Created, NewLayer};
pub use format::{BundleImage, Header, LayerEntry, Requires, FORMAT_VERSION};

#[cfg(test)]
mod tests;
