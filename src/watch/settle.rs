//! Deciding when a file in the inbox is complete. A file is *settled* when
//! nothing has happened to it for the settle time: no file-system event, and
//! the same size and modification time when looked at again. Every event
//! restarts the timer, so a writer that opens, appends and closes the file
//! several times is waited for as long as its pauses are shorter than the
//! settle time. A file that was written to and not yet closed (inotify tells)
//! is held longer, up to [`Tracker::HOLD_MAX`] of silence.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What an event says about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Data written (a writer has it open).
    Write,
    /// Closed after writing.
    Closed,
    /// Created, renamed into place, metadata changed, seen by a scan.
    Other,
}

#[derive(Debug)]
struct Entry {
    last_change: Instant,
    stat: Option<(u64, Option<SystemTime>)>,
    writing: bool,
    not_before: Option<Instant>,
    attempts: u32,
    /// Ends early: waits for a change (or `not_before`, the grace's end).
    incomplete: bool,
}

/// What [`Tracker::confirm`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// Settled: hand it over (the entry is removed). Carries the earlier failed attempts.
    Ready { attempts: u32 },
    /// Changed since last seen: the timer restarted.
    NotYet,
    /// Gone or no longer a file (moved away, deleted): forgotten.
    Gone,
}

/// The files waiting to settle.
#[derive(Debug)]
pub struct Tracker {
    settle: Duration,
    entries: HashMap<PathBuf, Entry>,
}

fn stat(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    let m = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    Some((m.len(), m.modified().ok()))
}

impl Entry {
    /// The file changed: an incomplete one is due again after the settle time.
    fn changed(&mut self) {
        if self.incomplete {
            self.incomplete = false;
            self.not_before = None;
        }
    }
}

impl Tracker {
    /// How long a file written to but never closed is held, at most, after its last change.
    pub const HOLD_MAX: Duration = Duration::from_secs(30);

    pub fn new(settle: Duration) -> Tracker {
        Tracker {
            settle,
            entries: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.entries.contains_key(path)
    }

    /// A file-system event on `path`: the settle timer restarts.
    pub fn event(&mut self, path: &Path, touch: Touch, now: Instant) {
        let e = self.entries.entry(path.to_path_buf()).or_insert(Entry {
            last_change: now,
            stat: None,
            writing: false,
            not_before: None,
            attempts: 0,
            incomplete: false,
        });
        e.last_change = now;
        e.stat = stat(path);
        e.changed();
        match touch {
            Touch::Write => e.writing = true,
            Touch::Closed => e.writing = false,
            Touch::Other => {}
        }
    }

    /// A file found by a scan (start-up backlog, polling, rescan). A new file
    /// is watched for the settle time like any other, whatever its modification
    /// time says (copiers that preserve times may set an old one while still
    /// writing); a known one restarts its timer only if it changed.
    pub fn scanned(&mut self, path: &Path, meta: &std::fs::Metadata, now: Instant) {
        let seen = (meta.len(), meta.modified().ok());
        if let Some(e) = self.entries.get_mut(path) {
            if e.stat != Some(seen) {
                e.stat = Some(seen);
                e.last_change = now;
                e.changed();
            }
            return;
        }
        self.entries.insert(
            path.to_path_buf(),
            Entry {
                last_change: now,
                stat: Some(seen),
                writing: false,
                not_before: None,
                attempts: 0,
                incomplete: false,
            },
        );
    }

    /// Stops tracking `path` (removed, renamed away).
    pub fn forget(&mut self, path: &Path) {
        self.entries.remove(path);
    }

    /// Tries `path` again no sooner than `at` (a transient failure).
    pub fn retry_at(&mut self, path: &Path, at: Instant, attempts: u32) {
        self.entries.insert(
            path.to_path_buf(),
            Entry {
                last_change: at,
                stat: stat(path),
                writing: false,
                not_before: Some(at),
                attempts,
                incomplete: false,
            },
        );
    }

    /// `path` ends early: look again when it changes, or at `give_up` at the latest.
    pub fn hold_incomplete(&mut self, path: &Path, now: Instant, give_up: Instant) {
        self.entries.insert(
            path.to_path_buf(),
            Entry {
                last_change: now,
                stat: stat(path),
                writing: false,
                not_before: Some(give_up),
                attempts: 0,
                incomplete: true,
            },
        );
    }

    fn deadline(&self, e: &Entry) -> Instant {
        let quiet = if e.writing {
            Self::HOLD_MAX.max(self.settle)
        } else {
            self.settle
        };
        let d = e.last_change + quiet;
        e.not_before.map_or(d, |n| n.max(d))
    }

    /// The earliest moment something may become ready.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.values().map(|e| self.deadline(e)).min()
    }

    /// At most `limit` files whose timer ran out, oldest first (still to
    /// [`confirm`](Self::confirm)). Linear in the number of tracked files.
    pub fn due(&self, now: Instant, limit: usize) -> Vec<PathBuf> {
        let mut v: Vec<(Instant, &PathBuf)> = self
            .entries
            .iter()
            .map(|(p, e)| (self.deadline(e), p))
            .filter(|(d, _)| *d <= now)
            .collect();
        if limit == 0 {
            return Vec::new();
        }
        if v.len() > limit {
            v.select_nth_unstable(limit - 1);
            v.truncate(limit);
        }
        v.sort();
        v.into_iter().map(|(_, p)| p.clone()).collect()
    }

    /// Looks at a due file once more: unchanged means ready.
    pub fn confirm(&mut self, path: &Path, now: Instant) -> Check {
        let Some(e) = self.entries.get_mut(path) else {
            return Check::Gone;
        };
        let Some(current) = stat(path) else {
            self.entries.remove(path);
            return Check::Gone;
        };
        if e.stat != Some(current) {
            e.stat = Some(current);
            e.last_change = now;
            e.changed();
            return Check::NotYet;
        }
        let attempts = e.attempts;
        self.entries.remove(path);
        Check::Ready { attempts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(500);

    #[test]
    fn every_event_restarts_the_timer() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jpg");
        std::fs::write(&p, b"x").unwrap();
        let mut t = Tracker::new(SETTLE);
        let t0 = Instant::now();
        t.event(&p, Touch::Closed, t0);
        assert!(t.due(t0 + SETTLE / 2, 10).is_empty());
        // A second open-append-close cycle.
        t.event(&p, Touch::Write, t0 + SETTLE / 2);
        t.event(&p, Touch::Closed, t0 + SETTLE / 2);
        assert!(t.due(t0 + SETTLE, 10).is_empty());
        let due = t.due(t0 + SETTLE / 2 + SETTLE, 10);
        assert_eq!(due, vec![p.clone()]);
        assert_eq!(t.confirm(&p, t0 + SETTLE * 2), Check::Ready { attempts: 0 });
        assert!(t.is_empty());
    }

    #[test]
    fn open_writer_is_held_and_changes_are_noticed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jpg");
        std::fs::write(&p, b"x").unwrap();
        let mut t = Tracker::new(SETTLE);
        let t0 = Instant::now();
        t.event(&p, Touch::Write, t0);
        assert!(t.due(t0 + SETTLE * 4, 10).is_empty());
        assert_eq!(t.due(t0 + Tracker::HOLD_MAX, 10), vec![p.clone()]);
        // Grown behind our back (no event): not ready, timer restarts.
        std::fs::write(&p, b"xy").unwrap();
        assert_eq!(t.confirm(&p, t0 + Tracker::HOLD_MAX), Check::NotYet);
        std::fs::remove_file(&p).unwrap();
        let later = t0 + Tracker::HOLD_MAX * 3;
        assert_eq!(t.confirm(&p, later), Check::Gone);
    }

    #[test]
    fn scanned_files_wait_even_with_old_times_and_oldest_go_first() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join("old.jpg");
        std::fs::write(&old, b"x").unwrap();
        let f = std::fs::File::options().write(true).open(&old).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        let fresh = d.path().join("fresh.jpg");
        std::fs::write(&fresh, b"x").unwrap();
        let mut t = Tracker::new(SETTLE);
        let now = Instant::now();
        t.scanned(&old, &std::fs::metadata(&old).unwrap(), now);
        let later = now + SETTLE / 2;
        t.scanned(&fresh, &std::fs::metadata(&fresh).unwrap(), later);
        assert!(
            t.due(now, 10).is_empty(),
            "an old time is no proof of a finished file"
        );
        assert_eq!(t.next_deadline(), Some(now + SETTLE));
        assert_eq!(t.due(now + SETTLE, 10), vec![old.clone()]);
        assert_eq!(t.due(later + SETTLE, 1), vec![old.clone()], "oldest first");
        assert_eq!(t.due(later + SETTLE, 5).len(), 2);
        assert!(t.due(later + SETTLE, 0).is_empty());
        // A rescan of an unchanged file does not restart its timer; a change does.
        t.scanned(&old, &std::fs::metadata(&old).unwrap(), later);
        assert_eq!(t.due(now + SETTLE, 10), vec![old.clone()]);
        std::fs::write(&old, b"xy").unwrap();
        t.scanned(&old, &std::fs::metadata(&old).unwrap(), later);
        assert!(t.due(now + SETTLE, 10).is_empty());
    }
}
