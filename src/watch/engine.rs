//! The event loop: file-system events and scans feed the settle tracker;
//! settled files go to a bounded set of workers; results come back on the
//! same bounded channel and are logged from the calling thread.

use super::settle::{Check, Touch, Tracker};
use super::state::{Fingerprint, Journal};
use super::{
    is_ignored, is_photo_name, worker, Originals, Report, ReportKind, Source, StartError, Summary,
    WatchConfig,
};
use crate::pipeline::{Destination, FileSettings};
use crate::pseudonym::Naming;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

enum Msg {
    Fs(notify::Result<notify::Event>),
    Done(Box<worker::Handled>),
}

/// Bound of the event queue; beyond it events are dropped and a rescan is made instead.
const QUEUE: usize = 16_384;
/// With native events, a safety rescan this often (events lost by the kernel...).
const RESCAN: Duration = Duration::from_secs(30);
/// Longest sleep of the main loop (how fast a stop request is seen).
const TICK: Duration = Duration::from_millis(100);

/// A watcher that cannot start, with the inotify limits told apart.
fn watch_error(inbox: &Path, e: notify::Error) -> StartError {
    let limit = match &e.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        // EMFILE: too many inotify instances; ENOSPC: too many watches.
        notify::ErrorKind::Io(io) => matches!(io.raw_os_error(), Some(24 | 28)),
        _ => false,
    };
    let detail = e.to_string();
    let inbox = inbox.to_path_buf();
    if limit {
        StartError::WatchLimit { inbox, detail }
    } else {
        StartError::Watch { inbox, detail }
    }
}

fn start_watcher(
    inbox: &Path,
    tx: SyncSender<Msg>,
    overflow: Arc<AtomicBool>,
) -> Result<Option<notify::RecommendedWatcher>, StartError> {
    use notify::Watcher;
    let as_start_error = |e| watch_error(inbox, e);
    let mut w = notify::recommended_watcher(move |res| {
        if tx.try_send(Msg::Fs(res)).is_err() {
            overflow.store(true, Ordering::Relaxed);
        }
    })
    .map_err(as_start_error)?;
    match w.watch(inbox, notify::RecursiveMode::Recursive) {
        Ok(()) => Ok(Some(w)),
        // inotify needs read rights on every folder: one the watcher's user
        // cannot read must not stop the whole inbox (the scan names it).
        Err(notify::Error {
            kind: notify::ErrorKind::Io(io),
            ..
        }) if io.kind() == std::io::ErrorKind::PermissionDenied => Ok(None),
        Err(e) => Err(as_start_error(e)),
    }
}

/// Polling interval when file-system events cannot cover the whole inbox.
const POLL_FALLBACK: Duration = Duration::from_secs(2);

/// Each file waits on two fsyncs (its data, its folder): workers well beyond
/// the cores keep the CPUs busy meanwhile (measured: 4 per core beat 2 per
/// core by about 20 % on 2 cores). Capped, since each worker may hold a
/// decoded photo.
pub fn default_threads(cores: usize) -> usize {
    (4 * cores).min(cores + 16)
}

/// Runs the watcher until `stop` is set (or, with `once`, until the inbox is
/// done). Files in flight are always finished. `sink` gets one report per
/// file, from the calling thread.
pub fn run(
    cfg: &WatchConfig,
    settings: &FileSettings,
    naming: &Naming,
    stop: &AtomicBool,
    sink: &mut dyn FnMut(&Report),
) -> Result<Summary, StartError> {
    let threads = if cfg.threads == 0 {
        default_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
    } else {
        cfg.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("photodeid-watch-{i}"))
        .build()
        .map_err(|e| StartError::Other(format!("cannot start worker threads: {e}")))?;
    let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
    let overflow = Arc::new(AtomicBool::new(false));
    let mut native = !cfg.once && cfg.source == Source::Native;
    // Started before the first scan, so nothing falls in between.
    let _watcher = if native {
        start_watcher(&cfg.inbox, tx.clone(), overflow.clone())?
    } else {
        None
    };
    let events_refused = native && _watcher.is_none();
    if events_refused {
        native = false;
        sink(&notice(&format!(
            "a folder in the inbox cannot be read, so file-system events cannot cover it: \
             polling every {POLL_FALLBACK:?} instead"
        )));
    }
    let journal = match cfg.originals {
        Originals::Keep => Some(Journal::open(&cfg.state).map_err(|e| {
            StartError::Other(format!(
                "cannot open the journal in {}: {e}",
                cfg.state.display()
            ))
        })?),
        _ => None,
    };
    let ctx = worker::Ctx {
        cfg,
        settings,
        dest: Destination::Folder {
            dir: cfg.outbox.clone(),
            naming: naming.clone(),
        },
        naming,
        folders: match naming {
            Naming::Keep => None,
            _ if cfg.flat => None,
            n => Some(crate::layout::Folders::new(n.clone())),
        },
    };
    let mut lp = Loop {
        cfg,
        native,
        tracker: Tracker::new(cfg.settle),
        in_flight: HashSet::new(),
        stuck: HashSet::new(),
        journal,
        summary: Summary::default(),
        max_in_flight: threads * 2,
        not_photos: HashSet::new(),
        pending: Vec::new(),
        unreadable: HashSet::new(),
    };
    let rescan_every = match cfg.source {
        Source::Poll(iv) => iv,
        Source::Native if events_refused => POLL_FALLBACK,
        Source::Native => RESCAN,
    };
    pool.in_place_scope(|scope| {
        // The backlog; `--once` scans only this once, then drains.
        lp.scan(&cfg.inbox, Instant::now());
        lp.flush(sink);
        sink(&Report {
            kind: ReportKind::Backlog(lp.tracker.len()),
            ..notice("")
        });
        let mut next_rescan = Instant::now() + rescan_every;
        let mut stopping = false;
        loop {
            let now = Instant::now();
            stopping |= stop.load(Ordering::Relaxed);
            let lost_events = overflow.swap(false, Ordering::Relaxed);
            if lost_events {
                sink(&notice(
                    "events were lost (queue full): rescanning the inbox",
                ));
            }
            if !stopping && (lost_events || (now >= next_rescan && !cfg.once)) {
                lp.scan(&cfg.inbox, now);
                lp.flush(sink);
                next_rescan = now + rescan_every;
            }
            if !stopping {
                for path in lp.dispatchable(now) {
                    let tx = tx.clone();
                    let ctx = &ctx;
                    let attempts = path.1;
                    scope.spawn(move |_| {
                        // A panic (a bug) must not leave the file "in flight" forever.
                        let h = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            worker::handle(ctx, &path.0, attempts)
                        }))
                        .unwrap_or_else(|_| worker::panicked(ctx, &path.0));
                        let _ = tx.send(Msg::Done(Box::new(h)));
                    });
                }
            }
            if lp.in_flight.is_empty() && (stopping || (cfg.once && lp.tracker.is_empty())) {
                break;
            }
            let wait = if lp.in_flight.len() >= lp.max_in_flight {
                TICK
            } else {
                lp.tracker
                    .next_deadline()
                    .map_or(TICK, |d| d.saturating_duration_since(now))
                    .min(TICK)
                    .min(if cfg.once {
                        TICK
                    } else {
                        next_rescan.saturating_duration_since(now)
                    })
                    .max(Duration::from_millis(1))
            };
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            for msg in first
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            {
                lp.handle(msg, sink);
            }
        }
    });
    Ok(lp.summary)
}

fn notice(text: &str) -> Report {
    Report {
        time: SystemTime::now(),
        input: PathBuf::new(),
        label: String::new(),
        kind: ReportKind::Notice(text.to_string()),
    }
}

struct Loop<'a> {
    cfg: &'a WatchConfig,
    native: bool,
    tracker: Tracker,
    in_flight: HashSet<PathBuf>,
    stuck: HashSet<PathBuf>,
    journal: Option<Journal>,
    summary: Summary,
    max_in_flight: usize,
    /// Files that are not photos by name, each reported once and left alone.
    not_photos: HashSet<PathBuf>,
    /// Reports made while scanning, for the sink.
    pending: Vec<Report>,
    /// Folders found unreadable, each reported once per run.
    unreadable: HashSet<PathBuf>,
}

impl Loop<'_> {
    /// A photo by name; anything else is reported once and left where it is
    /// (a stray notes.txt is not a failure, and failed/ is for photos).
    fn is_photo(&mut self, path: &Path) -> bool {
        let rel = worker::relative(self.cfg, path);
        if is_photo_name(rel) {
            return true;
        }
        if self.not_photos.insert(path.to_path_buf()) {
            self.pending.push(Report {
                time: SystemTime::now(),
                input: path.to_path_buf(),
                // The name may be a patient's: shown only with --verbose.
                label: String::new(),
                kind: ReportKind::NotAPhoto,
            });
        }
        false
    }

    /// A folder the walk could not open: the photos in it are invisible, so
    /// it is a failure (named once), not a silent skip.
    fn cannot_read(&mut self, e: walkdir::Error) {
        let Some(path) = e.path().map(Path::to_path_buf) else {
            return;
        };
        if !self.unreadable.insert(path.clone()) {
            return;
        }
        let reason = match e.io_error() {
            Some(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
                "cannot be read (permission denied): the photos in it are not seen; \
                 give the watcher's user read and search rights on it"
                    .to_string()
            }
            Some(io) => format!("cannot be read: {io}"),
            None => format!("cannot be read: {e}"),
        };
        self.summary.failed += 1;
        self.pending.push(Report {
            time: SystemTime::now(),
            input: path,
            // The folder's name may be a patient's: shown only with --verbose.
            label: String::new(),
            kind: ReportKind::Unreadable { reason },
        });
    }

    fn flush(&mut self, sink: &mut dyn FnMut(&Report)) {
        for r in std::mem::take(&mut self.pending) {
            sink(&r);
        }
    }

    /// Adds every file below `dir` that is not ignored, in flight or stuck.
    fn scan(&mut self, dir: &Path, now: Instant) {
        let inbox = self.cfg.inbox.clone();
        let walker = walkdir::WalkDir::new(dir)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| {
                let rel = e.path().strip_prefix(&inbox).unwrap_or(e.path());
                rel.as_os_str().is_empty() || !is_ignored(rel)
            });
        for entry in walker {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.cannot_read(e);
                    continue;
                }
            };
            let path = entry.path();
            if entry.file_type().is_dir()
                || self.in_flight.contains(path)
                || self.stuck.contains(path)
            {
                continue;
            }
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.is_file() && self.is_photo(path) {
                    self.tracker.scanned(path, &meta, now);
                }
            }
        }
    }

    /// Settled files to start now, with their attempt counts, within the in-flight bound.
    fn dispatchable(&mut self, now: Instant) -> Vec<(PathBuf, u32)> {
        let mut out = Vec::new();
        if self.in_flight.len() >= self.max_in_flight {
            return out;
        }
        let room = self.max_in_flight - self.in_flight.len();
        // A few more than the room, for the ones that turn out not ready.
        for path in self.tracker.due(now, room * 4) {
            if self.in_flight.len() >= self.max_in_flight {
                break;
            }
            let Check::Ready { attempts } = self.tracker.confirm(&path, now) else {
                continue;
            };
            if let Some(j) = &self.journal {
                let known = std::fs::metadata(&path).is_ok_and(|m| {
                    j.contains(&Fingerprint::of(worker::relative(self.cfg, &path), &m))
                });
                if known {
                    continue;
                }
            }
            self.in_flight.insert(path.clone());
            out.push((path, attempts));
        }
        out
    }

    fn handle(&mut self, msg: Msg, sink: &mut dyn FnMut(&Report)) {
        match msg {
            Msg::Fs(Ok(event)) => {
                self.event(event);
                self.flush(sink);
            }
            Msg::Fs(Err(mut e)) => {
                // notify names the paths in its message: those go only to
                // the report's input (shown with --verbose), not the text.
                let paths = std::mem::take(&mut e.paths);
                sink(&Report {
                    input: paths.into_iter().next().unwrap_or_default(),
                    ..notice(&format!("watch error ({e}): rescanning the inbox"))
                });
                let inbox = self.cfg.inbox.clone();
                self.scan(&inbox, Instant::now());
                self.flush(sink);
            }
            Msg::Done(h) => {
                self.in_flight.remove(&h.path);
                if let Some((delay, attempts)) = h.retry {
                    self.tracker
                        .retry_at(&h.path, Instant::now() + delay, attempts);
                }
                if h.stuck {
                    self.stuck.insert(h.path.clone());
                }
                if h.retrack {
                    self.tracker.event(&h.path, Touch::Other, Instant::now());
                }
                if let Some(left) = h.incomplete {
                    if self.cfg.once {
                        self.summary.incomplete += 1;
                    } else {
                        let now = Instant::now();
                        self.tracker.hold_incomplete(&h.path, now, now + left);
                    }
                }
                if let (Some(j), Some((fp, ok))) = (&mut self.journal, h.remember) {
                    if let Err(e) = j.record(fp, ok) {
                        sink(&notice(&format!("cannot write the journal: {e}")));
                    }
                }
                if let Some(r) = &h.report {
                    match &r.kind {
                        ReportKind::Cleaned { up_to_date, .. } => {
                            self.summary.cleaned += 1;
                            self.summary.up_to_date += usize::from(*up_to_date);
                        }
                        ReportKind::Failed { .. } => self.summary.failed += 1,
                        ReportKind::Stuck { .. } => self.summary.stuck += 1,
                        ReportKind::Retrying { .. }
                        | ReportKind::Changed
                        | ReportKind::Backlog(_)
                        | ReportKind::Incomplete { .. }
                        | ReportKind::NotAPhoto
                        | ReportKind::Unreadable { .. }
                        | ReportKind::Notice(_) => {}
                    }
                    sink(r);
                }
            }
        }
    }

    fn event(&mut self, event: notify::Event) {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode,
        };
        let now = Instant::now();
        if event.need_rescan() {
            let inbox = self.cfg.inbox.clone();
            self.scan(&inbox, now);
            return;
        }
        let touch = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Touch::Closed),
            EventKind::Access(_) => return, // our own reads, anyone's reads
            EventKind::Modify(ModifyKind::Data(_)) | EventKind::Create(CreateKind::File)
                if self.native =>
            {
                Some(Touch::Write)
            }
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => None,
            // From and To come as separate events too.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return,
            _ => Some(Touch::Other),
        };
        for path in &event.paths {
            let Ok(rel) = path.strip_prefix(&self.cfg.inbox) else {
                continue;
            };
            if rel.as_os_str().is_empty() || is_ignored(rel) || self.in_flight.contains(path) {
                continue;
            }
            match touch {
                None => {
                    self.tracker.forget(path);
                    self.stuck.remove(path);
                }
                Some(t) => {
                    self.stuck.remove(path);
                    match std::fs::symlink_metadata(path) {
                        // A new or moved-in folder: its files may predate our watch on it.
                        Ok(m) if m.is_dir() => self.scan(&path.clone(), now),
                        Ok(_) if self.is_photo(path) => self.tracker.event(path, t, now),
                        Ok(_) => {}
                        Err(_) => self.tracker.forget(path),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inotify_limits_say_what_to_do() {
        let inbox = Path::new("/srv/inbox");
        for e in [
            notify::Error::new(notify::ErrorKind::MaxFilesWatch),
            notify::Error::io(std::io::Error::from_raw_os_error(24)),
        ] {
            let msg = watch_error(inbox, e).to_string();
            assert!(
                msg.contains("max_user_watches") && msg.contains("--poll"),
                "{msg}"
            );
        }
        let other = watch_error(inbox, notify::Error::path_not_found()).to_string();
        assert!(
            other.contains("--poll") && !other.contains("sysctl"),
            "{other}"
        );
    }
}
