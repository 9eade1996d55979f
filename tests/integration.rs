//! One integration-test binary (autotests = false), one module per concern.

mod util;

mod browser;
mod check;
mod clean;
mod collage;
mod faces;
mod full_disk;
mod fuzz;
mod privacy_jpeg;
mod redact;
mod serve;
mod watch;
