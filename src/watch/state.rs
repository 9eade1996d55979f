//! The watcher's private state folder (never inside the outbox): the lock,
//! the name key of installs older than the shared default key (see
//! [`legacy_key`]) and, with `--keep-originals`, the journal of originals
//! already handled.
//!
//! The journal is append-only, one line per original:
//! `<blake3 of the inbox-relative path>\t<size>\t<mtime in ns>\t<ok|failed>`.
//! An original that changes (size or time) counts as a new photo.

use super::StartError;
use crate::commit::PrivateMode;
use crate::error::{Error, Result};
use crate::pseudonym::hex;
use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Name of the journal file inside the state folder.
pub const JOURNAL: &str = "seen.tsv";
/// The name key older versions created inside the state folder.
pub const NAME_KEY: &str = "name.key";

/// The state folder's own name key, if an older version created one: it is
/// kept in use, so the names of a running install do not change. A new
/// install uses the user's default key instead (the one `clean` and `serve`
/// use), so all three give a photo the same name.
pub fn legacy_key(state: &Path) -> Option<PathBuf> {
    let path = state.join(NAME_KEY);
    path.is_file().then_some(path)
}

/// What identifies one version of an original: where it is, its size and time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(relative: &Path, meta: &std::fs::Metadata) -> Fingerprint {
        let path_hash = blake3::hash(relative.to_string_lossy().as_bytes());
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Fingerprint(format!(
            "{}\t{}\t{mtime}",
            hex(&path_hash.as_bytes()[..16]),
            meta.len()
        ))
    }
}

/// Originals already handled (`--keep-originals`).
pub struct Journal {
    file: File,
    seen: HashSet<Fingerprint>,
}

impl Journal {
    pub fn open(state: &Path) -> Result<Journal> {
        let path = state.join(JOURNAL);
        let mut seen = HashSet::new();
        if let Ok(f) = File::open(&path) {
            for line in std::io::BufReader::new(f).lines() {
                let line = line.map_err(|e| Error::io("read journal", e))?;
                // A torn last line (crash mid-append) has fewer fields: skip it.
                let fields: Vec<&str> = line.split('\t').collect();
                if fields.len() == 4 {
                    seen.insert(Fingerprint(fields[..3].join("\t")));
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode_private()
            .open(&path)
            .map_err(|e| Error::io("open journal", e))?;
        Ok(Journal { file, seen })
    }

    pub fn contains(&self, f: &Fingerprint) -> bool {
        self.seen.contains(f)
    }

    /// Records an original durably.
    pub fn record(&mut self, f: Fingerprint, ok: bool) -> Result<()> {
        // A newline first ends any torn line a crash left behind.
        let line = format!("\n{}\t{}\n", f.0, if ok { "ok" } else { "failed" });
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| Error::io("write journal", e))?;
        self.seen.insert(f);
        Ok(())
    }
}

/// Removes the temporary files a killed run left in `dir` (and below):
/// only photodeid's own (`.photodeid-*.tmp`, `.photodeid-key-*`).
pub fn remove_stale_temps(dir: &Path) -> usize {
    let mut removed = 0;
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let name = entry.file_name().to_string_lossy();
        let ours = name.starts_with(".photodeid-")
            && (name.ends_with(".tmp") || name.starts_with(".photodeid-key-"));
        if ours && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// A kernel lock (`flock`) on the state folder's `lock` file, so two
/// watchers never share a state folder. The kernel drops it when its holder
/// dies, even by SIGKILL and before the parent reaps it, so a restart never
/// waits for a dead watcher. The pid written in the file only names the
/// holder in the refusal message.
pub struct Lock {
    path: PathBuf,
    _file: File,
}

impl Lock {
    /// Takes the lock in `state`, or says which watcher holds it.
    pub fn acquire(state: &Path) -> std::result::Result<Lock, StartError> {
        let path = state.join("lock");
        let io = |context, source| StartError::Io {
            context,
            path: path.clone(),
            source,
        };
        // A watcher killed a moment ago can still be closing its files
        // (a thread finishing an fsync) when a supervisor restarts us: its
        // lock dies with it, so wait that long before calling it live.
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode_private()
                .open(&path)
                .map_err(|e| io("cannot create the lock file", e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < patience => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StartError::Locked {
                        pid: lock_owner(&mut file),
                        state: state.to_path_buf(),
                    })
                }
                Err(TryLockError::Error(e)) => return Err(io("cannot lock", e)),
            }
            // A holder that was releasing removed the file between our open
            // and our lock: the lock we got is on a file nobody else sees.
            if !same_file(&file, &path) {
                continue;
            }
            // Best effort: the lock itself is what counts.
            let me = std::process::id();
            let _ = file
                .set_len(0)
                .and_then(|_| file.write_all(format!("{me}\n").as_bytes()))
                .and_then(|_| file.sync_all());
            return Ok(Lock { path, _file: file });
        }
    }
}

/// Whether `path` still names the open `file` (same device and inode).
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Windows cannot delete an open file: the race above does not arise.
#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

/// The pid the holder wrote, if it has written it yet.
fn lock_owner(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still locked: see the `same_file` check above.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Seconds since the epoch as `2026-11-25T13:01:02Z`.
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_611_662);
        assert_eq!(utc_timestamp(t), "2026-11-25T13:01:02Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn journal_survives_reopen_and_torn_lines() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a.jpg");
        std::fs::write(&f, b"x").unwrap();
        let fp = Fingerprint::of(Path::new("a.jpg"), &std::fs::metadata(&f).unwrap());
        {
            let mut j = Journal::open(d.path()).unwrap();
            assert!(!j.contains(&fp));
            j.record(fp.clone(), true).unwrap();
        }
        let mut raw = OpenOptions::new()
            .append(true)
            .open(d.path().join(JOURNAL))
            .unwrap();
        raw.write_all(b"deadbeef\t12").unwrap();
        let j = Journal::open(d.path()).unwrap();
        assert!(j.contains(&fp));
        std::fs::write(&f, b"changed").unwrap();
        let fp2 = Fingerprint::of(Path::new("a.jpg"), &std::fs::metadata(&f).unwrap());
        assert!(!j.contains(&fp2));
    }

    #[test]
    fn a_lock_of_a_dead_or_foreign_process_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        // pid 1 is alive but is not photodeid.
        std::fs::write(d.path().join("lock"), "1\n").unwrap();
        let lock = Lock::acquire(d.path()).unwrap();
        let mine = std::fs::read_to_string(d.path().join("lock")).unwrap();
        assert_eq!(mine.trim(), std::process::id().to_string());
        drop(lock);
        assert!(!d.path().join("lock").exists());
    }

    #[test]
    fn a_held_lock_is_never_taken_twice() {
        let d = tempfile::tempdir().unwrap();
        let first = Lock::acquire(d.path()).unwrap();
        let second = Lock::acquire(d.path());
        assert!(
            matches!(second, Err(StartError::Locked { pid: Some(p), .. }) if p == std::process::id())
        );
        drop(first);
        assert!(!d.path().join("lock").exists());
        Lock::acquire(d.path()).unwrap();
    }

    #[test]
    fn of_concurrent_acquisitions_exactly_one_wins() {
        let d = tempfile::tempdir().unwrap();
        let n = 8;
        let barrier = std::sync::Barrier::new(n);
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Lock::acquire(d.path())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    }

    #[test]
    fn an_abandoned_lock_is_taken_over() {
        // Our own pid, but not held by us (a dead watcher whose pid we inherited);
        // an empty file (killed between creating and writing it); garbage.
        for stale in [
            format!("{}\n", std::process::id()),
            String::new(),
            "x\n".into(),
        ] {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(d.path().join("lock"), &stale).unwrap();
            let _lock = Lock::acquire(d.path()).unwrap();
            let mine = std::fs::read_to_string(d.path().join("lock")).unwrap();
            assert_eq!(mine, format!("{}\n", std::process::id()));
        }
    }

    #[test]
    fn only_our_temps_are_removed() {
        let d = tempfile::tempdir().unwrap();
        for n in [".photodeid-abc.tmp", "keep.jpg", ".other.tmp"] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(d.path()), 1);
        assert!(d.path().join("keep.jpg").exists());
        assert!(d.path().join(".other.tmp").exists());
    }
}
