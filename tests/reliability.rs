//! Faults and hostile neighbours: FIFOs and devices given as photos, slow
//! and unauthenticated clients of `serve`, symlinks out of a watched inbox,
//! output-side paths that fail after publishing, and load.

use crate::util::*;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

/// Waits for `child` at most `limit`; a hang kills it and fails the test.
fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn spawn(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn check_refuses_a_fifo_without_waiting_for_a_writer() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("photo.jpg");
    mkfifo(&fifo);
    let good = fixtures().join("dirty/jpeg_full.jpg");
    let child = spawn(&["check", fifo.to_str().unwrap(), good.to_str().unwrap()]);
    let o = finish_within(child, Duration::from_secs(10), "check on a FIFO");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}: not a regular file", fifo.display())),
        "{err}"
    );
    // The other file is still audited.
    assert!(stdout(&o).contains("jpeg_full.jpg: identifying content found"));
}

#[test]
fn check_refuses_a_device_instead_of_reading_it_without_end() {
    let child = spawn(&["check", "/dev/zero"]);
    let o = finish_within(child, Duration::from_secs(10), "check on /dev/zero");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("/dev/zero: not a regular file"), "{err}");
}
