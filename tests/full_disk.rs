//! A full disk mid-batch: the files that fit are published whole, every
//! other file gets an error line naming it and the reason, no temporary
//! file is left behind, and the exit code says something failed.
//!
//! The disk is a 600 KiB tmpfs mounted in a private user and mount
//! namespace (`unshare -rm`), so nothing outside the test can see it and it
//! vanishes with the test. CI must be able to run it; locally a machine
//! without user namespaces skips it with a message.

use super::util::{decode, files, stderr};
use std::process::Command;

fn namespaces_work() -> bool {
    Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_full_disk_fails_the_files_that_do_not_fit_and_leaves_no_partial_output() {
    if !namespaces_work() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a small tmpfs (unshare -rm)"
        );
        eprintln!("unshare -rm with a tmpfs mount not available: full-disk test skipped locally");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    std::fs::create_dir(&input).unwrap();
    // Eight incompressible 300 KB PNGs; the 600 KiB disk holds at most one.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..8 {
        let img = image::RgbImage::from_fn(320, 320, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
        });
        img.save(input.join(format!("p{i}.png"))).unwrap();
    }
    let mnt = d.path().join("disk");
    let copy = d.path().join("copy");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::create_dir(&copy).unwrap();
    // Inside the namespace: mount, clean onto the small disk, keep the exit
    // code, and copy everything left there (dotfiles too) out before the
    // mount disappears.
    let script = r#"mount -t tmpfs -o size=600k tmpfs "$2" || exit 99
"$1" clean "$3" -o "$2/out" -j 1; rc=$?
cp -a "$2/out/." "$4/" 2>/dev/null
exit $rc"#;
    let o = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(env!("CARGO_BIN_EXE_photodeid"))
        .args([&mnt, &input, &copy])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let failed: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with(&format!("photodeid: {}/", input.display())))
        .collect();
    assert!(failed.len() >= 6, "{err}");
    for line in &failed {
        // In words (`photodeid::plain`), not the OS's message.
        assert!(line.contains("the disk is full"), "{line}");
    }
    assert!(!err.contains("panicked"), "{err}");
    let left = files(&copy);
    assert_eq!(left.len() + failed.len(), 8, "{left:?}\n{err}");
    for f in &left {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(!name.starts_with('.'), "temporary file left behind: {name}");
        assert_eq!(
            decode(f).to_rgb8().dimensions(),
            (320, 320),
            "{name} is whole"
        );
    }
}

#[test]
fn watch_on_a_full_disk_keeps_every_original_and_publishes_only_whole_files() {
    if !namespaces_work() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a small tmpfs (unshare -rm)"
        );
        eprintln!("unshare -rm with a tmpfs mount not available: full-disk test skipped locally");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let inbox = d.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..8 {
        let img = image::RgbImage::from_fn(320, 320, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
        });
        img.save(inbox.join(format!("p{i}.png"))).unwrap();
    }
    let (mnt, copy, done) = (
        d.path().join("disk"),
        d.path().join("copy"),
        d.path().join("done"),
    );
    std::fs::create_dir(&mnt).unwrap();
    std::fs::create_dir(&copy).unwrap();
    // The watcher runs until the first retry round has passed (2 s), then
    // is stopped with SIGTERM; what it published is copied out.
    let script = r#"mount -t tmpfs -o size=600k tmpfs "$2" || exit 99
"$1" watch --settle 100ms -j 2 -o "$2/out" --state "$4/../state" "$3" & pid=$!
sleep 4; kill -TERM $pid; wait $pid; rc=$?
cp -a "$2/out/." "$4/" 2>/dev/null
exit $rc"#;
    let o = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .arg(env!("CARGO_BIN_EXE_photodeid"))
        .args([&mnt, &inbox, &copy])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    let published = files(&copy);
    let kept = files(&inbox);
    let moved = files(&done);
    // Nothing lost: every original is in done/ (published) or still in the inbox.
    assert_eq!(moved.len() + kept.len(), 8, "{err}");
    assert_eq!(published.len(), moved.len(), "{err}");
    assert!(!kept.is_empty(), "the disk was meant to fill: {err}");
    for f in &published {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(!name.starts_with('.'), "temporary file left behind: {name}");
        assert_eq!(decode(f).to_rgb8().dimensions(), (320, 320), "{name}");
    }
    // Every original left behind was named with the reason, and will be retried.
    let retrying: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("error, retrying in") && l.contains("the disk is full"))
        .collect();
    assert!(retrying.len() >= kept.len(), "{err}");
}
