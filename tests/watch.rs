//! `photodeid watch` end to end: real processes, real file-system events,
//! temporary folders. Outputs are checked independently: canaries by byte
//! search, pseudonyms recomputed from the state folder's key with blake3.

use crate::util::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const SETTLE: &str = "300ms";
const TIMEOUT: Duration = Duration::from_secs(60);

struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    inbox: PathBuf,
    outbox: PathBuf,
    done: PathBuf,
    failed: PathBuf,
    state: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let inbox = root.join("inbox");
        std::fs::create_dir(&inbox).unwrap();
        Env {
            inbox,
            outbox: root.join("outbox"),
            done: root.join("done"),
            failed: root.join("failed"),
            state: root.join(".photodeid-state"),
            root,
            _dir: dir,
        }
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = ["watch", "-j", "2"].iter().map(|s| s.to_string()).collect();
        if !extra.contains(&"--settle") {
            v.extend(["--settle".to_string(), SETTLE.to_string()]);
        }
        v.push("-o".into());
        v.push(self.outbox.display().to_string());
        v.push(self.inbox.display().to_string());
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn spawn(&self, extra: &[&str]) -> Watcher {
        let log = self.root.join(format!("log-{}.txt", rand_suffix()));
        let child = bin()
            .args(self.args(extra))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start photodeid watch");
        Watcher { child, log }
    }

    fn once(&self, extra: &[&str]) -> std::process::Output {
        let mut a = self.args(extra);
        a.push("--once".into());
        bin().args(a).output().expect("run photodeid watch --once")
    }

    /// The key the watcher names with: an older install's key in the state
    /// folder, else the user's default key (shared with clean and serve).
    fn key_file(&self) -> PathBuf {
        let legacy = self.state.join("name.key");
        if legacy.exists() {
            legacy
        } else {
            data_home().join("photodeid/name.key")
        }
    }

    /// The pseudonym the watcher must give a photo with these bytes.
    fn expected_name(&self, bytes: &[u8], ext: &str) -> String {
        let hex = std::fs::read_to_string(self.key_file()).unwrap();
        let hex = hex.trim();
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        let h = blake3::keyed_hash(&key, bytes);
        let name: String = h.as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{name}.{ext}")
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

struct Watcher {
    child: Child,
    log: PathBuf,
}

impl Watcher {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// SIGTERM, then the exit status (it must come within the timeout).
    fn stop(mut self) -> (ExitStatus, String) {
        self.signal("-TERM");
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st, self.log());
            }
            assert!(start.elapsed() < TIMEOUT, "watcher did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(mut self) -> String {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
        self.log()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every entry below `dir` that is a file, dotfiles included, relative, sorted.
fn all_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

fn count(dir: &Path) -> usize {
    all_files(dir).len()
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap()
}

/// A distinct photo: jpeg_full.jpg (all canaries) with a COM segment naming `i` after SOI.
fn variant(i: usize) -> Vec<u8> {
    let base = fixture("dirty/jpeg_full.jpg");
    let text = format!("variant {i}");
    let mut v = base[..2].to_vec();
    v.extend_from_slice(&[0xFF, 0xFE]);
    v.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(text.as_bytes());
    v.extend_from_slice(&base[2..]);
    v
}

fn assert_no_canaries(dir: &Path) {
    for f in all_files(dir) {
        let bytes = std::fs::read(dir.join(&f)).unwrap();
        for c in canaries() {
            assert!(!contains(&bytes, c.as_bytes()), "{f} still holds {c:?}");
        }
    }
}

/// Per-file log lines (not the `photodeid:` start and summary lines) containing `what`.
fn lines_with(log: &str, what: &str) -> usize {
    log.lines()
        .filter(|l| !l.starts_with("photodeid:") && l.contains(what))
        .count()
}

#[test]
fn backlog_then_new_files_then_sigterm() {
    let env = Env::new();
    std::fs::write(
        env.inbox.join("Doe_Jane.jpg"),
        fixture("dirty/jpeg_full.jpg"),
    )
    .unwrap();
    std::fs::write(
        env.inbox.join("Doe_Jane.png"),
        fixture("dirty/png_text.png"),
    )
    .unwrap();
    let w = env.spawn(&[]);
    wait_until("the backlog", || count(&env.outbox) == 2);
    // A new sub-folder, created after the start, with a photo in it.
    let sub = env.inbox.join("Smith_John/visit 2");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("Smith.webp"), fixture("dirty/webp_meta.webp")).unwrap();
    // A partial download waits for its rename.
    let part = env.inbox.join("Roe.jpg.part");
    std::fs::write(&part, fixture("dirty/jpeg_icc.jpg")).unwrap();
    wait_until("the new sub-folder", || count(&env.outbox) == 3);
    std::thread::sleep(Duration::from_millis(800));
    assert!(part.exists(), "a .part file was touched");
    assert_eq!(count(&env.outbox), 3);
    std::fs::rename(&part, env.inbox.join("Roe.jpg")).unwrap();
    wait_until("the renamed file", || count(&env.outbox) == 4);
    let (status, log) = w.stop();
    assert!(status.success(), "SIGTERM must exit 0: {status:?}\n{log}");
    assert_eq!(lines_with(&log, " cleaned: "), 4, "{log}");
    for name in ["Doe", "Smith", "Roe"] {
        assert!(!log.contains(name), "original name in the log:\n{log}");
    }
    assert_eq!(
        all_files(&env.done),
        [
            "Doe_Jane.jpg",
            "Doe_Jane.png",
            "Roe.jpg",
            "Smith_John/visit 2/Smith.webp"
        ]
    );
    assert_eq!(
        std::fs::read(env.done.join("Doe_Jane.jpg")).unwrap(),
        fixture("dirty/jpeg_full.jpg"),
        "originals are moved unchanged"
    );
    assert_eq!(count(&env.inbox), 0);
    assert_no_canaries(&env.outbox);
    let expected = env.expected_name(&fixture("dirty/jpeg_full.jpg"), "jpg");
    assert!(env.outbox.join(expected).exists());
}

#[test]
fn slow_writer_never_yields_a_truncated_output() {
    let env = Env::new();
    let w = env.spawn(&["--settle", "1s"]);
    let full = variant(7);
    let target = env.inbox.join("slow.jpg");
    // Open, append, close; pause shorter than the settle time; repeat for ~2 s.
    for chunk in full.chunks(full.len() / 10 + 1) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&target)
            .unwrap();
        f.write_all(chunk).unwrap();
        drop(f);
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_until("the slow file", || {
        count(&env.done) == 1 || count(&env.failed) > 0
    });
    let (status, log) = w.stop();
    assert!(status.success());
    assert_eq!(count(&env.failed), 0, "processed half-written:\n{log}");
    assert_eq!(
        all_files(&env.outbox),
        [env.expected_name(&full, "jpg")],
        "the output must come from the complete file:\n{log}"
    );
    assert_eq!(std::fs::read(env.done.join("slow.jpg")).unwrap(), full);
    assert_eq!(lines_with(&log, " cleaned: "), 1, "{log}");
}

#[test]
fn burst_of_200_files_is_processed_exactly_once() {
    let env = Env::new();
    let w = env.spawn(&[]);
    let mut expected = BTreeSet::new();
    for i in 0..200 {
        let bytes = variant(i);
        expected.insert(format!("{i:03}.jpg"));
        if i % 2 == 0 {
            std::fs::write(env.inbox.join(format!("{i:03}.jpg")), &bytes).unwrap();
        } else {
            // Written under a temporary name, renamed into place.
            let tmp = env.inbox.join(format!("{i:03}.jpg.tmp"));
            std::fs::write(&tmp, &bytes).unwrap();
            std::fs::rename(&tmp, env.inbox.join(format!("{i:03}.jpg"))).unwrap();
        }
    }
    wait_until("200 originals in done/", || count(&env.done) == 200);
    let (status, log) = w.stop();
    assert!(status.success(), "{log}");
    assert_eq!(
        all_files(&env.done).into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    let names: BTreeSet<String> = (0..200)
        .map(|i| env.expected_name(&variant(i), "jpg"))
        .collect();
    assert_eq!(
        all_files(&env.outbox).into_iter().collect::<BTreeSet<_>>(),
        names
    );
    assert_eq!(count(&env.inbox), 0);
    assert_eq!(count(&env.failed), 0);
    assert_eq!(lines_with(&log, " cleaned: "), 200);
    assert_no_canaries(&env.outbox);
}

#[test]
fn sigkill_mid_burst_then_restart_loses_and_duplicates_nothing() {
    let env = Env::new();
    let w = env.spawn(&["--settle", "200ms"]);
    let inbox = env.inbox.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..100 {
            std::fs::write(inbox.join(format!("{i:03}.jpg")), variant(i)).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    wait_until("the first outputs", || count(&env.done) >= 15);
    let log = w.kill9();
    let at_kill = count(&env.done);
    writer.join().unwrap();
    assert!(at_kill < 100, "the kill came too late to test anything");
    // What a kill at the worst moment leaves: a temporary output.
    std::fs::write(env.outbox.join(".photodeid-dead.tmp"), b"partial").unwrap();

    let o = env.once(&[]);
    let log2 = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{log}\n---\n{log2}");
    // Every original exactly once, in done/ (none left, none failed, no -1 copies).
    let originals: BTreeSet<String> = (0..100).map(|i| format!("{i:03}.jpg")).collect();
    assert_eq!(
        all_files(&env.done).into_iter().collect::<BTreeSet<_>>(),
        originals
    );
    assert_eq!(count(&env.inbox), 0);
    assert_eq!(count(&env.failed), 0);
    for i in 0..100 {
        assert_eq!(
            std::fs::read(env.done.join(format!("{i:03}.jpg"))).unwrap(),
            variant(i)
        );
    }
    // One output per photo, under its one pseudonym; nothing partial or temporary.
    let names: BTreeSet<String> = (0..100)
        .map(|i| env.expected_name(&variant(i), "jpg"))
        .collect();
    assert_eq!(
        all_files(&env.outbox).into_iter().collect::<BTreeSet<_>>(),
        names,
        "{log2}"
    );
    for f in all_files(&env.outbox) {
        let out = env.outbox.join(&f);
        let img = decode(&out);
        assert_eq!((img.width(), img.height()), (320, 240), "{f}");
    }
    assert_no_canaries(&env.outbox);
}

#[test]
fn corrupt_files_go_to_failed_once_and_good_files_keep_flowing() {
    let env = Env::new();
    // No grace for photos that end early: truncated.jpg fails at once.
    let w = env.spawn(&["--incomplete-after", "0s"]);
    for bad in ["truncated.jpg", "not_an_image.jpg", "empty.jpg"] {
        std::fs::write(env.inbox.join(bad), fixture(&format!("bad/{bad}"))).unwrap();
    }
    std::fs::write(env.inbox.join("good1.jpg"), variant(1)).unwrap();
    wait_until("the failures", || count(&env.failed) == 6);
    wait_until("the good file", || count(&env.outbox) == 1);
    for bad in ["truncated.jpg", "not_an_image.jpg", "empty.jpg"] {
        assert_eq!(
            std::fs::read(env.failed.join(bad)).unwrap(),
            fixture(&format!("bad/{bad}"))
        );
        let why = std::fs::read_to_string(env.failed.join(format!("{bad}.error.txt"))).unwrap();
        let reason = why
            .lines()
            .find_map(|l| l.strip_prefix("reason: "))
            .unwrap_or_default();
        assert!(reason.len() > 5, "{bad}: {why}");
    }
    // Same name again: never overwritten.
    std::fs::write(env.inbox.join("truncated.jpg"), b"\xFF\xD8\xFF\xE0 nope").unwrap();
    std::fs::write(env.inbox.join("good2.jpg"), variant(2)).unwrap();
    wait_until("the second round", || {
        count(&env.failed) == 8 && count(&env.outbox) == 2
    });
    assert!(env.failed.join("truncated-1.jpg.error.txt").exists());
    assert_eq!(
        std::fs::read(env.failed.join("truncated.jpg")).unwrap(),
        fixture("bad/truncated.jpg")
    );
    // No retry loop: still four failure lines a while later.
    std::thread::sleep(Duration::from_millis(1000));
    let (status, log) = w.stop();
    assert!(status.success());
    assert_eq!(lines_with(&log, " failed: "), 4, "{log}");
    assert_eq!(count(&env.inbox), 0);
}

#[test]
fn once_exit_codes_keep_and_delete_originals() {
    let env = Env::new();
    std::fs::write(env.inbox.join("a.jpg"), variant(1)).unwrap();
    std::fs::write(env.inbox.join("same-photo-again.jpg"), variant(1)).unwrap();
    std::fs::write(env.inbox.join("b.png"), fixture("dirty/png_text.png")).unwrap();
    let o = env.once(&["--keep-originals"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(count(&env.outbox), 2, "one output per photo, not per copy");
    assert_eq!(count(&env.inbox), 3);
    assert_eq!(lines_with(&stderr(&o), "already published"), 1);
    // Remembered: a second run does nothing.
    let o = env.once(&["--keep-originals"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(lines_with(&stderr(&o), " cleaned: "), 0, "{}", stderr(&o));
    // A bad file: exit 1, copied to failed/ (originals kept).
    std::fs::write(env.inbox.join("bad.jpg"), fixture("bad/truncated.jpg")).unwrap();
    let o = env.once(&["--keep-originals", "--incomplete-after", "0s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(env.failed.join("bad.jpg.error.txt").exists());
    let o = env.once(&["--keep-originals"]);
    assert_eq!(o.status.code(), Some(0), "a failure is not retried");
    // Delete: only the good ones go.
    std::fs::remove_file(env.inbox.join("bad.jpg")).unwrap();
    let o = env.once(&["--delete-originals"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(count(&env.inbox), 0);
    assert_eq!(count(&env.outbox), 2);
    assert!(!env.done.exists() || count(&env.done) == 0);
}

#[test]
fn startup_errors_say_what_to_do() {
    let env = Env::new();
    let missing = env.root.join("nope");
    let o = run(&[
        "watch",
        missing.to_str().unwrap(),
        "-o",
        env.outbox.to_str().unwrap(),
        "--once",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("does not exist") && stderr(&o).contains("mkdir"),
        "{}",
        stderr(&o)
    );
    let inside = env.inbox.join("out");
    let o = run(&[
        "watch",
        env.inbox.to_str().unwrap(),
        "-o",
        inside.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("outside the inbox"), "{}", stderr(&o));
    let key_in_out = env.outbox.join("key");
    let o = run(&[
        "watch",
        env.inbox.to_str().unwrap(),
        "-o",
        env.outbox.to_str().unwrap(),
        "--name-key",
        key_in_out.to_str().unwrap(),
        "--once",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("inside the output folder"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "watch",
        env.inbox.to_str().unwrap(),
        "-o",
        "x",
        "--settle",
        "soon",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn polling_finds_new_files_and_verbose_shows_originals() {
    let env = Env::new();
    // Flat: the test is about polling (the layout has its own test).
    let w = env.spawn(&["--poll", "--poll-interval", "100ms", "--verbose", "--flat"]);
    let sub = env.inbox.join("case 12");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("Doe_Jane.jpg"), variant(3)).unwrap();
    wait_until("the polled file", || count(&env.done) == 1);
    let (status, log) = w.stop();
    assert!(status.success());
    assert!(log.contains("polling every"), "{log}");
    assert!(log.contains("<- ") && log.contains("Doe_Jane.jpg"), "{log}");
    assert_eq!(
        all_files(&env.outbox),
        [env.expected_name(&variant(3), "jpg")]
    );
    assert!(env.done.join("case 12/Doe_Jane.jpg").exists());
}

#[test]
fn done_names_never_collide_and_custom_folders_work() {
    let env = Env::new();
    let done = env.root.join("archive");
    let failed = env.root.join("rejects");
    let state = env.root.join("private-state");
    let map = env.root.join("map.csv");
    let extra = [
        "--done",
        done.to_str().unwrap(),
        "--failed",
        failed.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--map",
        map.to_str().unwrap(),
    ];
    for i in [1, 2] {
        std::fs::write(env.inbox.join("a.jpg"), variant(i)).unwrap();
        let o = env.once(&extra);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert_eq!(all_files(&done), ["a-1.jpg", "a.jpg"]);
    assert_eq!(std::fs::read(done.join("a.jpg")).unwrap(), variant(1));
    assert_eq!(std::fs::read(done.join("a-1.jpg")).unwrap(), variant(2));
    assert_eq!(count(&env.outbox), 2);
    assert!(state.is_dir() && !env.state.exists());
    assert!(!env.done.exists(), "the default done/ is not created");
    let rows = std::fs::read_to_string(&map).unwrap();
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 3, "{rows}");
    assert_eq!(lines[0], "original,pseudonym");
    let outputs: Vec<&str> = lines[1..]
        .iter()
        .map(|l| {
            let (orig, out) = l.split_once(',').unwrap();
            assert!(orig.ends_with("a.jpg"), "{rows}");
            out
        })
        .collect();
    assert_ne!(outputs[0], outputs[1]);
    for out in outputs {
        assert!(Path::new(out).starts_with(&env.outbox) && Path::new(out).exists());
    }
    let inside = env.inbox.join("map.csv");
    let o = env.once(&["--map", inside.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("inside the inbox"), "{}", stderr(&o));
}

#[test]
fn log_lines_and_warnings_name_pseudonyms_not_originals() {
    let env = Env::new();
    std::fs::write(env.inbox.join("Doe_Jane.jpg"), variant(6)).unwrap();
    std::fs::write(
        env.inbox.join("Roe_Richard.jpg"),
        fixture("bad/truncated.jpg"),
    )
    .unwrap();
    // A region partly outside the photo: cleaned, with a warning.
    let o = env.once(&["--region", "0,0,99999,99999", "--incomplete-after", "0s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let log = stderr(&o);
    let name = env.expected_name(&variant(6), "jpg");
    assert!(
        log.lines()
            .any(|l| l.contains(&name) && l.contains("warning:") && l.contains("clipped")),
        "{log}"
    );
    assert_eq!(lines_with(&log, " failed: "), 1, "{log}");
    assert!(
        !log.contains("Doe_Jane") && !log.contains("Roe_Richard"),
        "{log}"
    );
    assert!(env.done.join("Doe_Jane.jpg").exists());
    assert!(env.failed.join("Roe_Richard.jpg").exists());
}

#[test]
fn two_watchers_started_together_never_share_the_state() {
    let env = Env::new();
    let a = env.spawn(&[]);
    let b = env.spawn(&[]);
    let mut watchers = [Some(a), Some(b)];
    let mut refused = Vec::new();
    let start = Instant::now();
    // The loser exits after the lock's 3 s patience for a dying holder;
    // give the winner time to have failed too, were it to.
    while start.elapsed() < Duration::from_secs(7) {
        for w in watchers.iter_mut() {
            if let Some(st) = w.as_mut().and_then(|w| w.child.try_wait().unwrap()) {
                refused.push((st, w.take().unwrap().log()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    let (st, log) = &refused[0];
    assert_eq!(st.code(), Some(2), "{log}");
    assert!(log.contains("another photodeid watch (pid "), "{log}");
    let winner = watchers.into_iter().flatten().next().unwrap();
    let (st, log) = winner.stop();
    assert!(st.success(), "{log}");
    assert!(!env.state.join("lock").exists());
}

/// `/proc/PID/stat`'s state letter (`Z` for a zombie).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

#[test]
fn sigkill_then_restart_before_the_dead_watcher_is_reaped_finishes_the_burst() {
    let env = Env::new();
    let mut first = env.spawn(&["--settle", "200ms"]);
    for i in 0..30 {
        std::fs::write(env.inbox.join(format!("{i:03}.jpg")), variant(i)).unwrap();
    }
    wait_until("the first outputs", || count(&env.done) >= 3);
    // SIGKILL without wait(): the dead watcher stays a zombie, its
    // /proc/PID/comm still "photodeid", as under a supervisor that restarts
    // before it reaps.
    first.child.kill().unwrap();
    let pid = first.child.id();
    wait_until("the zombie", || proc_state(pid) == Some('Z'));
    let mut second = env.spawn(&["--settle", "200ms"]);
    wait_until("the whole burst", || {
        let gone = second.child.try_wait().unwrap();
        assert!(gone.is_none(), "the restart refused: {}", second.log());
        count(&env.done) == 30
    });
    assert_eq!(proc_state(pid), Some('Z'), "still unreaped");
    let (st, log) = second.stop();
    assert!(st.success(), "{log}");
    assert_eq!(count(&env.outbox), 30, "{log}");
    assert_eq!(count(&env.inbox), 0);
    drop(first);
}

#[test]
fn a_lock_file_naming_another_live_photodeid_does_not_block() {
    let env = Env::new();
    let other = Env::new();
    let neighbour = other.spawn(&[]);
    // What a watcher killed before a reboot leaves, its pid now a different
    // photodeid process.
    std::fs::create_dir_all(&env.state).unwrap();
    std::fs::write(
        env.state.join("lock"),
        format!("{}\n", neighbour.child.id()),
    )
    .unwrap();
    std::fs::write(env.inbox.join("a.jpg"), variant(1)).unwrap();
    let o = env.once(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(count(&env.outbox), 1);
    let (st, log) = neighbour.stop();
    assert!(st.success(), "{log}");
}

#[test]
fn a_symlink_dropped_into_the_inbox_is_failed_never_followed() {
    let env = Env::new();
    let elsewhere = env.root.join("other_patient");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("Roe_Richard.jpg"), variant(2)).unwrap();
    std::fs::write(env.inbox.join("a.jpg"), variant(1)).unwrap();
    std::os::unix::fs::symlink(
        elsewhere.join("Roe_Richard.jpg"),
        env.inbox.join("link.jpg"),
    )
    .unwrap();
    let o = env.once(&[]);
    let log = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{log}");
    assert_eq!(
        all_files(&env.outbox),
        [env.expected_name(&variant(1), "jpg")],
        "{log}"
    );
    assert_eq!(lines_with(&log, " failed: "), 1, "{log}");
    assert!(log.contains("symbolic link"), "{log}");
    // The link itself went to failed/, its target is untouched.
    let moved = env.failed.join("link.jpg");
    assert!(std::fs::symlink_metadata(&moved)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read(elsewhere.join("Roe_Richard.jpg")).unwrap(),
        variant(2)
    );
}

#[test]
fn a_thousand_files_dropped_at_once_each_land_once_and_failures_are_named() {
    let env = Env::new();
    let staging = env.root.join("staging");
    std::fs::create_dir(&staging).unwrap();
    let truncated = fixture("bad/truncated.jpg");
    let (good, bad, dup) = (950, 25, 25);
    for i in 0..good {
        std::fs::write(staging.join(format!("g{i:04}.jpg")), variant(i)).unwrap();
    }
    for i in 0..bad {
        std::fs::write(staging.join(format!("bad{i:02}.jpg")), &truncated).unwrap();
    }
    for i in 0..dup {
        // The same photo again under another name: one output, not two.
        std::fs::write(staging.join(format!("dup{i:02}.jpg")), variant(i)).unwrap();
    }
    // Truncated files fail at once, not after the grace for uploads still arriving.
    let w = env.spawn(&["--incomplete-after", "0s"]);
    let t0 = Instant::now();
    for e in std::fs::read_dir(&staging).unwrap() {
        let p = e.unwrap().path();
        std::fs::rename(&p, env.inbox.join(p.file_name().unwrap())).unwrap();
    }
    wait_until("every original handled", || {
        count(&env.done) == good + dup && all_files(&env.failed).len() == 2 * bad
    });
    let took = t0.elapsed();
    let (status, log) = w.stop();
    assert!(
        status.success(),
        "{}",
        &log[log.len().saturating_sub(2000)..]
    );
    eprintln!("watch load: {} files in {took:?}", good + bad + dup);
    let names: BTreeSet<String> = (0..good)
        .map(|i| env.expected_name(&variant(i), "jpg"))
        .collect();
    assert_eq!(
        all_files(&env.outbox).into_iter().collect::<BTreeSet<_>>(),
        names,
        "exactly one whole output per distinct photo, nothing temporary"
    );
    assert_eq!(count(&env.inbox), 0);
    for i in 0..bad {
        let reason = std::fs::read_to_string(env.failed.join(format!("bad{i:02}.jpg.error.txt")))
            .unwrap_or_else(|e| panic!("bad{i:02}: {e}"));
        assert!(!reason.trim().is_empty());
    }
    assert_eq!(
        lines_with(&log, " failed: "),
        bad,
        "each failure logged once"
    );
    assert_eq!(lines_with(&log, " cleaned: "), good);
}

#[test]
fn writer_pausing_longer_than_settle_twice_ends_in_one_cleaned_photo() {
    let env = Env::new();
    let w = env.spawn(&[]);
    let photo = variant(7);
    let path = env.inbox.join("slow.jpg");
    let (a, b) = (photo.len() / 3, 2 * photo.len() / 3);
    for part in [&photo[..a], &photo[a..b], &photo[b..]] {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, part).unwrap();
        drop(f);
        // Well past the settle time: the part is looked at, found to end early.
        std::thread::sleep(Duration::from_millis(1800));
    }
    wait_until("the photo", || {
        count(&env.outbox) == 1 && count(&env.inbox) == 0
    });
    let (status, log) = w.stop();
    assert!(status.success(), "{log}");
    assert_eq!(count(&env.failed), 0, "split into failures:\n{log}");
    assert!(log.contains("ends early"), "the waits are said:\n{log}");
    let name = env.expected_name(&photo, "jpg");
    assert!(env.outbox.join(&name).exists(), "{log}");
    assert_eq!(std::fs::read(env.done.join("slow.jpg")).unwrap(), photo);
}

#[test]
fn an_upload_that_never_completes_fails_after_the_grace_with_that_reason() {
    let env = Env::new();
    let photo = variant(8);
    std::fs::write(env.inbox.join("cut.jpg"), &photo[..photo.len() / 2]).unwrap();
    let o = env.once(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(env.inbox.join("cut.jpg").exists(), "left for the next run");
    assert!(stderr(&o).contains("ends early"), "{}", stderr(&o));
    std::thread::sleep(Duration::from_millis(1100));
    let o = env.once(&["--incomplete-after", "1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let why = std::fs::read_to_string(env.failed.join("cut.jpg.error.txt")).unwrap();
    assert!(
        why.contains("ends early and has not changed for 1s"),
        "{why}"
    );
}

#[test]
fn non_photos_stay_put_and_emptied_case_folders_go() {
    let env = Env::new();
    let case = env.inbox.join("Doe_Jane_1961");
    std::fs::create_dir(&case).unwrap();
    std::fs::write(case.join("a.jpg"), variant(9)).unwrap();
    std::fs::write(case.join("b.jpg"), variant(10)).unwrap();
    std::fs::write(env.inbox.join("notes.txt"), "call back monday").unwrap();
    let o = env.once(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let log = stderr(&o);
    assert!(
        env.inbox.join("notes.txt").exists(),
        "a non-photo is not moved"
    );
    assert_eq!(count(&env.failed), 0, "nor failed: {log}");
    assert_eq!(lines_with(&log, "not a photo"), 1, "{log}");
    assert!(!log.contains("notes"), "names stay out of the log: {log}");
    assert!(
        !case.exists(),
        "the emptied case folder (a patient's name) is gone"
    );
    assert!(
        env.done.join("Doe_Jane_1961/a.jpg").exists(),
        "done/ keeps the structure"
    );
    assert_eq!(count(&env.outbox), 2);
    // Reported once per watcher, not on every rescan.
    let w = env.spawn(&["--poll", "--poll-interval", "100ms"]);
    std::thread::sleep(Duration::from_millis(800));
    let (_, log) = w.stop();
    assert_eq!(lines_with(&log, "not a photo"), 1, "{log}");
}

#[test]
fn an_inbox_subfolder_becomes_a_case_folder_under_a_pseudonym() {
    let env = Env::new();
    for (case, v) in [("Doe_Jane", 1), ("Doe_Jane", 2), ("Smith_John", 3)] {
        let sub = env.inbox.join(case);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("IMG_{v}.jpg")), variant(v)).unwrap();
    }
    let o = env.once(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let outs = all_files(&env.outbox);
    assert_eq!(outs.len(), 3, "{outs:?}");
    let folder = |v: usize| {
        let name = env.expected_name(&variant(v), "jpg");
        let hit: Vec<&String> = outs.iter().filter(|o| o.ends_with(&name)).collect();
        assert_eq!(hit.len(), 1, "{name} in {outs:?}");
        let (dir, file) = hit[0].split_once('/').expect("in a case folder");
        assert_eq!(file, name, "no capture rank: photos arrive one by one");
        dir.to_string()
    };
    let (a, b, c) = (folder(1), folder(2), folder(3));
    assert_eq!(a, b, "one case, one folder");
    assert_ne!(a, c);
    for d in [&a, &c] {
        let hex = d.strip_prefix("case-").expect("case-xxxxxx");
        assert!(
            hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{d}"
        );
    }
    let log = stderr(&o);
    assert!(!log.contains("Doe") && !log.contains("Smith"), "{log}");
}

#[test]
fn watch_names_a_photo_as_clean_does_with_the_default_key() {
    let env = Env::new();
    let photo = variant(41);
    std::fs::write(env.inbox.join("Doe_Jane.jpg"), &photo).unwrap();
    let o = env.once(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !env.state.join("name.key").exists(),
        "a new install keeps no key of its own"
    );
    let watched = all_files(&env.outbox);
    assert_eq!(watched.len(), 1, "{watched:?}");
    assert!(
        stderr(&o).contains(" cleaned: hidden data removed ("),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("lossless"), "{}", stderr(&o));

    let input = env.root.join("clinic");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("IMG_1.jpg"), &photo).unwrap();
    let out = env.root.join("shared");
    let c = run(&[
        "clean",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--flat",
    ]);
    assert!(c.status.success(), "{}", stderr(&c));
    assert_eq!(
        all_files(&out),
        watched,
        "same photo, same default key, same name"
    );
    assert_eq!(watched[0], env.expected_name(&photo, "jpg"));
}

#[test]
fn an_older_install_keeps_its_state_folder_key() {
    let env = Env::new();
    std::fs::create_dir(&env.state).unwrap();
    let key = env.state.join("name.key");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).unwrap();
    let photo = variant(42);
    std::fs::write(env.inbox.join("a.jpg"), &photo).unwrap();
    let o = env.once(&["--verbose"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        all_files(&env.outbox),
        [env.expected_name(&photo, "jpg")],
        "named with the state folder's key"
    );
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        format!("{}\n", "ab".repeat(32))
    );
    assert!(
        stderr(&o).contains(" (lossless)"),
        "--verbose names the method: {}",
        stderr(&o)
    );
}
