//! One integration-test binary (autotests = false), one module per concern.

mod util;

mod check;
mod clean;
mod collage;
mod fuzz;
mod watch;
