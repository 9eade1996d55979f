//! One integration-test binary (autotests = false), one module per concern.

mod util;

mod browser;
mod check;
mod clean;
mod cli;
mod collage;
mod faces;
mod full_disk;
mod fuzz;
mod heif;
mod packaging;
mod privacy;
mod privacy_jpeg;
mod privacy_webp;
mod redact;
mod reliability;
mod research;
mod serve;
mod shard;
mod tiff;
mod watch;
mod zero_copy;
