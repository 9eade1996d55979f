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

/// A client that sends `head`, then dribbles `body_len` bytes one every
/// 50 ms until `stop`, and returns the status it got (if any) and when.
fn slow_client(
    port: u16,
    head: String,
    stop: Instant,
) -> std::thread::JoinHandle<(Option<u16>, Duration)> {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let _ = s.write_all(head.as_bytes());
        let mut got = Vec::new();
        while Instant::now() < stop {
            let mut buf = [0u8; 4096];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if s.write_all(b" ").is_err() {
                break;
            }
        }
        let status = String::from_utf8_lossy(&got)
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok());
        (status, t0.elapsed())
    })
}

#[test]
fn slow_unauthenticated_clients_never_block_the_token_holder() {
    let (_d, photos, out) = crate::serve::setup();
    let s = crate::serve::Serve::start(&photos, &out);
    let stop = Instant::now() + Duration::from_secs(8);
    let mut clients = Vec::new();
    // Slow bodies without the token (refused before their body is read).
    for _ in 0..16 {
        let head = format!(
            "POST /api/export HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: 900000\r\n\r\n",
            s.port
        );
        clients.push(slow_client(s.port, head, stop));
    }
    // Slow heads (never finished).
    for _ in 0..16 {
        let head = format!(
            "GET /api/photos HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Pad:",
            s.port
        );
        clients.push(slow_client(s.port, head, stop));
    }
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let t0 = Instant::now();
        let (status, _) = s.get("/api/photos", Some(&s.token));
        assert_eq!(status, 200);
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the token holder waited {:?}",
            t0.elapsed()
        );
    }
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    for (status, took) in &results[..16] {
        assert_eq!(*status, Some(401), "refused without reading the body");
        assert!(*took < Duration::from_secs(3), "refusal took {took:?}");
    }
    for (status, _) in &results[16..] {
        // The head deadline (5 s) ends a slow head with 408, within the 8 s.
        assert_eq!(*status, Some(408));
    }
}

#[test]
fn a_photo_replaced_after_it_was_shown_is_not_exported_until_reloaded() {
    let (_d, photos, out) = crate::serve::setup();
    let s = crate::serve::Serve::start(&photos, &out);
    let list = s.json("/api/photos")["photos"].clone();
    let badge = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Smith_John_badge.jpg")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let (st, _) = s.get(&format!("/api/photos/{badge}/view"), Some(&s.token));
    assert_eq!(st, 200);
    // Another picture under the same name, after the user drew on the first.
    let other = std::fs::read(fixtures().join("dirty/jpeg_orient_1.jpg")).unwrap();
    std::fs::write(photos.join("Smith_John_badge.jpg"), &other).unwrap();
    let request = serde_json::json!({
        "photos": [{"id": badge, "regions": [{"x": 10, "y": 10, "w": 30, "h": 30}]}],
    });
    let p = s.export(&request);
    let r = &p["results"][0];
    assert_eq!(r["status"], "failed", "{p}");
    let msg = r["error"].as_str().unwrap();
    assert!(
        msg.contains("Smith_John_badge.jpg changed after it was shown") && msg.contains("reload"),
        "{msg}"
    );
    assert!(
        files(&out).is_empty(),
        "nothing exported: {:?}",
        files(&out)
    );
    // After a reload (the page shows the new picture), it exports.
    let (st, view) = s.get(&format!("/api/photos/{badge}/view"), Some(&s.token));
    assert_eq!(st, 200);
    let shown = image::load_from_memory(&view).unwrap();
    let new = image::load_from_memory(&other).unwrap();
    assert_eq!(
        shown.width() * new.height(),
        new.width() * shown.height(),
        "the view is of the new picture"
    );
    let p = s.export(&request);
    assert_eq!(p["results"][0]["status"], "cleaned", "{p}");
    assert_eq!(files(&out).len(), 1);
}

#[test]
fn a_map_that_cannot_be_written_stops_clean_before_anything_is_published() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let map = d.path().join("no-such-folder/map.csv");
    let dirty = fixtures().join("dirty");
    let o = run(&[
        "clean",
        dirty.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--map",
        map.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot write map {}", map.display())),
        "{err}"
    );
    assert!(files(&out).is_empty(), "published: {:?}", files(&out));
    // Fixed, the rerun writes the photos and the map together.
    std::fs::create_dir(map.parent().unwrap()).unwrap();
    let o = run(&[
        "clean",
        dirty.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--map",
        map.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = std::fs::read_to_string(&map).unwrap().lines().count() - 1;
    assert_eq!(rows, files(&out).len());
    assert!(files(map.parent().unwrap()).len() == 1, "no temporary left");
}

#[test]
fn a_broken_symlink_in_a_folder_is_a_named_failure() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(fixtures().join("dirty/jpeg_full.jpg"), input.join("a.jpg")).unwrap();
    let link = input.join("b.jpg");
    std::os::unix::fs::symlink(d.path().join("gone.jpg"), &link).unwrap();
    let out = d.path().join("out");
    let o = run(&[
        "clean",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.lines().any(
            |l| l.starts_with(&format!("photodeid: {}:", link.display()))
                && l.contains("broken symbolic link")
        ),
        "{err}"
    );
    assert_eq!(files(&out).len(), 1, "the good photo is still cleaned");
}

#[test]
fn serve_under_load_answers_every_preview_and_exports_everything_once() {
    let (_d, photos, out) = crate::serve::setup();
    let s = crate::serve::Serve::start(&photos, &out);
    let list = s.json("/api/photos")["photos"].clone();
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    let body = br#"{"regions":[{"x":10,"y":10,"w":40,"h":40,"effect":"pixelate"}]}"#;
    let served = std::sync::atomic::AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        for t in 0..8 {
            let (s, ids, served) = (&s, &ids, &served);
            sc.spawn(move || {
                for i in 0..6 {
                    let id = ids[(t + i) % ids.len()];
                    let (st, img) = s.post(&format!("/api/photos/{id}/preview"), body);
                    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&img));
                    image::load_from_memory(&img).expect("a whole JPEG");
                    served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        // An export in the middle of it.
        let request = serde_json::json!({
            "photos": ids.iter().map(|&id| serde_json::json!({"id": id, "regions": [
                {"x": 0, "y": 0, "w": 50, "h": 50}
            ]})).collect::<Vec<_>>(),
        });
        let p = s.export(&request);
        let results = p["results"].as_array().unwrap();
        assert_eq!(results.len(), ids.len(), "{p}");
        assert!(results.iter().all(|r| r["status"] == "cleaned"), "{p}");
    });
    let served = served.into_inner();
    assert_eq!(served, 48);
    eprintln!(
        "serve load: {served} previews and one export of {} photos in {:?}",
        ids.len(),
        t0.elapsed()
    );
    let outs = files(&out);
    assert_eq!(outs.len(), ids.len(), "one output per photo: {outs:?}");
    for f in &outs {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(!name.starts_with('.'), "temporary left: {name}");
        decode(f);
        let bytes = std::fs::read(f).unwrap();
        for c in canaries() {
            assert!(!contains(&bytes, c.as_bytes()), "{name} holds {c:?}");
        }
    }
}

/// Runs as root only: drops to `nobody` so that file modes apply.
fn as_nobody() -> Option<std::process::Command> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid());
    if uid.ok() != Some(0)
        || std::process::Command::new("setpriv")
            .arg("-V")
            .output()
            .is_err()
    {
        return None;
    }
    let mut c = std::process::Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_photodeid"));
    Some(c)
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A small PNG whose pixels depend on `i`, so every photo is distinct.
fn distinct_png(i: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 24, |x, y| {
        image::Rgb([(i % 251) as u8, (i / 251) as u8, (x * 10 + y) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn watch_under_permission_errors_loses_nothing_and_names_each_failure() {
    let Some(mut cmd) = as_nobody() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root with setpriv, to test permission errors"
        );
        eprintln!("not root or no setpriv: permission load test skipped locally");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    chmod(d.path(), 0o777);
    let (inbox, outbox) = (d.path().join("inbox"), d.path().join("outbox"));
    let locked_case = inbox.join("Case_Locked_1961");
    std::fs::create_dir_all(&locked_case).unwrap();
    chmod(&inbox, 0o777);
    let staging = d.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let (good, locked) = (600u32, 12u32);
    for i in 0..good {
        std::fs::write(staging.join(format!("g{i:04}.png")), distinct_png(i)).unwrap();
    }
    for i in 0..locked {
        let p = staging.join(format!("locked{i:02}.png"));
        std::fs::write(&p, distinct_png(10_000 + i)).unwrap();
        chmod(&p, 0o000);
    }
    let hidden = distinct_png(20_000);
    std::fs::write(locked_case.join("x.png"), &hidden).unwrap();
    chmod(&locked_case, 0o000);
    let log = d.path().join("log.txt");
    let mut watcher = cmd
        .args(["watch", "-j", "2", "--settle", "200ms", "-o"])
        .arg(&outbox)
        .arg(&inbox)
        .env("XDG_DATA_HOME", d.path().join("data"))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    for e in std::fs::read_dir(&staging).unwrap() {
        let p = e.unwrap().path();
        std::fs::rename(&p, inbox.join(p.file_name().unwrap())).unwrap();
    }
    let seen = |what: &str| std::fs::read_to_string(&log).unwrap().matches(what).count();
    let t0 = Instant::now();
    let wait = |cond: &dyn Fn() -> bool, what: &str| {
        while !cond() {
            assert!(
                t0.elapsed() < Duration::from_secs(90),
                "{what}: {}",
                std::fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(
        &|| seen(" cleaned: ") == good as usize,
        "the readable photos",
    );
    wait(
        // Said in words (`photodeid::plain`), not as the OS's message.
        &|| seen("permission denied (this user may not open it)") >= locked as usize,
        "the locked photos named",
    );
    // The owner fixes the modes: the retries pick the photos up.
    for i in 0..locked {
        chmod(&inbox.join(format!("locked{i:02}.png")), 0o644);
    }
    wait(
        &|| seen(" cleaned: ") == (good + locked) as usize,
        "the retried photos",
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &watcher.id().to_string()])
        .status();
    let status = watcher.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // Every photo published exactly once, whole, under a pseudonym.
    let outs = files(&outbox);
    assert_eq!(outs.len(), (good + locked) as usize, "{log}");
    for f in &outs {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(!name.starts_with('.') && !name.contains("locked"), "{name}");
        decode(f);
    }
    assert_eq!(seen_in(&log, " failed: "), 0, "{log}");
    // The unreadable case folder is named as a failure, once, and left whole.
    assert_eq!(
        seen_in(
            &log,
            "a folder in the inbox cannot be read (permission denied)"
        ),
        1,
        "{log}"
    );
    assert!(
        !log.contains("Case_Locked"),
        "folder names are a patient's: {log}"
    );
    chmod(&locked_case, 0o755);
    assert_eq!(std::fs::read(locked_case.join("x.png")).unwrap(), hidden);
    // Nothing lost: every original is in done/.
    assert_eq!(
        files(&d.path().join("done")).len(),
        (good + locked) as usize
    );
}

#[test]
fn watch_once_fails_for_a_folder_it_cannot_read() {
    let Some(mut cmd) = as_nobody() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root with setpriv"
        );
        return;
    };
    let d = tempfile::tempdir().unwrap();
    chmod(d.path(), 0o777);
    let inbox = d.path().join("inbox");
    let case = inbox.join("Doe_Jane");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::write(case.join("a.png"), distinct_png(1)).unwrap();
    std::fs::write(inbox.join("b.png"), distinct_png(2)).unwrap();
    chmod(&inbox, 0o777);
    chmod(&case, 0o000);
    let o = cmd
        .args(["watch", "--once", "--settle", "100ms", "-o"])
        .arg(d.path().join("outbox"))
        .arg(&inbox)
        .env("XDG_DATA_HOME", d.path().join("data"))
        .output()
        .unwrap();
    chmod(&case, 0o755);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an unseen folder is a failure: {err}"
    );
    assert!(
        err.contains("a folder in the inbox cannot be read"),
        "{err}"
    );
    assert!(!err.contains("Doe_Jane"), "{err}");
    assert_eq!(files(&d.path().join("outbox")).len(), 1, "{err}");
    assert!(case.join("a.png").exists());
}

fn seen_in(log: &str, what: &str) -> usize {
    log.matches(what).count()
}
