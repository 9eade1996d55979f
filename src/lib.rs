//! photodeid: makes clinical photos safe to share.
//!
//! ```text
//! scan ──► read ──► sniff+parse ──► plan ──┬─► lossless rewrite ──┬─► audit ──► atomic write ──► report
//! (walkdir) (fs)   (container/*)           └─► decode→edit→encode ┘  (same parser as `check`)
//! ```
//!
//! Module map:
//! - [`container`]: JPEG segments, PNG chunks, WebP RIFF chunks, GIF blocks; parse, classify, rewrite.
//! - [`exif_block`], [`describe`]: what EXIF, XMP and IPTC blocks hold, for the audit.
//! - [`metadata`]: categories and findings (the inventory both `clean` and `check` use).
//! - [`pixels`]: decode under limits, orientation, re-encode.
//! - [`pipeline`]: the per-file pipeline; [`batch`]: many files in parallel.
//! - [`region`], [`redact`]: regions as the user writes them, and their irreversible destruction.
//! - [`blocks`]: JPEG regions redacted in the DCT domain (only the touched blocks are re-encoded).
//! - [`faces`]: face and eye proposals (CenterFace, feature `faces`).
//! - [`pseudonym`], [`commit`], [`scan`]: names, atomic writes, input walking.
//! - [`splice`]: lossless outputs as made bytes plus input ranges, copied by
//!   reference (`copy_file_range`) into the temporary output.
//! - [`collage`]: before/after collages (layout, labels, time intervals).
//! - [`serve`]: the local web page (`photodeid serve`): token and path guards,
//!   screen-size previews, export through [`pipeline::process_file`].
//! - [`shard`]: sharded runs on clusters (plan, chunks, done markers, merge).
//! - [`watch`]: watch-folder automation (settle tracking, crash-safe state, moves to done/failed).
//!
//! What is removed: EXIF (except a lone Orientation tag), GPS, maker notes,
//! thumbnails and previews, XMP, IPTC/Photoshop, comments, text chunks, C2PA,
//! every byte after the image's end. What is kept: the picture bytes, the ICC
//! profile (unless asked), and what display needs.

#[cfg(feature = "avif-decode")]
mod avif_decode;
pub mod batch;
pub mod blocks;
pub mod collage;
pub mod commit;
pub mod container;
pub mod describe;
pub mod entropy;
pub mod error;
pub mod exif_block;
pub mod faces;
pub mod heic_decode;
pub mod icc;
pub mod keep;
pub mod layout;
pub mod mapped;
pub mod metadata;
pub mod pipeline;
pub mod pixels;
pub mod plain;
pub mod pseudonym;
pub mod recode;
pub mod redact;
pub mod region;
pub mod scan;
pub mod serve;
pub mod shard;
pub mod splice;
pub mod watch;

#[cfg(test)]
mod test_util;

pub use container::{Format, Limits};
pub use error::{Error, FileError, Result};
pub use metadata::{Category, Finding, Inventory};
pub use pipeline::{clean_bytes, CleanOptions, Cleaned, Method, OrientationMode};
