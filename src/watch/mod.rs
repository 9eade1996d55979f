//! Watch-folder automation: clean whatever lands in an inbox, crash-safe.
//!
//! ```text
//! notify (inotify…) ─┐                               ┌─► outbox/<pseudonym>.<ext>  (audited, fsynced, atomic)
//! start-up scan ─────┼─► settle tracker ─► workers ──┤   then original ─► done/ | deleted | journal
//! rescans / --poll ──┘   (quiet for --settle)        └─► failed/<name> + <name>.error.txt
//! ```
//!
//! Never losing a photo rests on three rules:
//! 1. an original leaves the inbox only after its output is written, synced and audited;
//! 2. names are keyed hashes of the photo's bytes (key in the state folder), so a
//!    photo re-processed after a crash maps to the *same* output, which is
//!    recognised as up to date instead of published a second time;
//! 3. temporary files of a killed run are removed at start-up, and outputs
//!    only ever appear by atomic rename.
//!
//! Modules: [`settle`] (when a file is complete), [`state`] (state folder,
//! journal, lock), [`mover`] (no-clobber moves), `worker` (one file).

pub mod mover;
pub mod settle;
pub mod state;
mod worker;

use crate::pipeline::{Destination, FileSettings, Method};
use crate::pseudonym::Naming;
use settle::{Check, Touch, Tracker};
use state::{Fingerprint, Journal, Lock};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// What becomes of an original once its cleaned copy is safely published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Originals {
    /// Moved into this folder, keeping its sub-folder (default: `done` beside the inbox).
    MoveTo(PathBuf),
    /// Left in the inbox and remembered in the state folder's journal.
    Keep,
    /// Deleted (explicit only).
    Delete,
}

/// How changes in the inbox are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// inotify / FSEvents / ReadDirectoryChangesW through `notify`, plus a rescan now and then.
    Native,
    /// Scan the inbox at this interval (network shares, where events never arrive).
    Poll(Duration),
}

/// The watcher's folders and behaviour. Paths are used as given; [`prepare`]
/// resolves and checks them.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub inbox: PathBuf,
    pub outbox: PathBuf,
    pub failed: PathBuf,
    pub state: PathBuf,
    pub originals: Originals,
    /// How long a file must stay untouched before it is processed.
    pub settle: Duration,
    pub source: Source,
    /// Process what is there, then return.
    pub once: bool,
    /// Worker threads (0: [`default_threads`], so that fsync waits overlap).
    pub threads: usize,
}

impl WatchConfig {
    /// The defaults beside the inbox: `done/`, `failed/` and `.photodeid-state/`.
    pub fn beside_inbox(inbox: &Path, name: &str) -> PathBuf {
        let abs = std::path::absolute(inbox).unwrap_or_else(|_| inbox.to_path_buf());
        abs.parent().unwrap_or(Path::new("/")).join(name)
    }
}

/// Why the watcher cannot start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("inbox {} does not exist: create it (mkdir -p {}) or check the path", .0.display(), .0.display())]
    InboxMissing(PathBuf),
    #[error("inbox {} is not a folder", .0.display())]
    InboxNotAFolder(PathBuf),
    #[error("{what} {} is inside the {inside_what} {}: {hint}", path.display(), inside.display())]
    Nested {
        what: &'static str,
        path: PathBuf,
        inside_what: &'static str,
        inside: PathBuf,
        hint: &'static str,
    },
    #[error("cannot watch {}: the inotify limit is reached ({detail}); raise it \
             (sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=1024, \
             and put the same in /etc/sysctl.d/ to keep it) or use --poll", inbox.display())]
    WatchLimit { inbox: PathBuf, detail: String },
    #[error("cannot watch {}: {detail}; try --poll", inbox.display())]
    Watch { inbox: PathBuf, detail: String },
    #[error("another photodeid watch (pid {pid}) uses the state folder {}: stop it first, \
             or give this one its own --state", state.display())]
    Locked { pid: u32, state: PathBuf },
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// What start-up did: the lock (held until dropped) and the leftovers removed.
pub struct Prepared {
    pub config: WatchConfig,
    pub lock: Lock,
    pub stale_temps_removed: usize,
}

/// An absolute path with symlinks of its existing part resolved.
fn resolve(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return rest.iter().rev().fold(c, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}

/// Checks and creates the folders, takes the state lock and removes what a
/// killed run left behind. Returns the configuration with resolved paths.
pub fn prepare(cfg: &WatchConfig) -> Result<Prepared, StartError> {
    match std::fs::metadata(&cfg.inbox) {
        Err(_) => return Err(StartError::InboxMissing(cfg.inbox.clone())),
        Ok(m) if !m.is_dir() => return Err(StartError::InboxNotAFolder(cfg.inbox.clone())),
        Ok(_) => {}
    }
    let mut c = cfg.clone();
    c.inbox = resolve(&cfg.inbox);
    c.outbox = resolve(&cfg.outbox);
    c.failed = resolve(&cfg.failed);
    c.state = resolve(&cfg.state);
    if let Originals::MoveTo(d) = &cfg.originals {
        c.originals = Originals::MoveTo(resolve(d));
    }
    check_layout(&c)?;
    let mut dirs = vec![&c.outbox, &c.failed, &c.state];
    if let Originals::MoveTo(d) = &c.originals {
        dirs.push(d);
    }
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|source| StartError::Io {
            context: "cannot create folder",
            path: d.to_path_buf(),
            source,
        })?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&c.state, std::fs::Permissions::from_mode(0o700));
    }
    let lock = Lock::acquire(&c.state).map_err(|pid| StartError::Locked {
        pid,
        state: c.state.clone(),
    })?;
    let stale_temps_removed = dirs.iter().map(|d| state::remove_stale_temps(d)).sum();
    Ok(Prepared {
        config: c,
        lock,
        stale_temps_removed,
    })
}

fn check_layout(c: &WatchConfig) -> Result<(), StartError> {
    let nested = |what, path: &Path, inside_what, inside: &Path, hint| {
        if path.starts_with(inside) {
            Err(StartError::Nested {
                what,
                path: path.to_path_buf(),
                inside_what,
                inside: inside.to_path_buf(),
                hint,
            })
        } else {
            Ok(())
        }
    };
    let (inbox, outbox) = (c.inbox.as_path(), c.outbox.as_path());
    nested(
        "outbox",
        outbox,
        "inbox",
        inbox,
        "cleaned copies would be taken for new photos; choose an outbox outside the inbox",
    )?;
    nested(
        "inbox",
        inbox,
        "outbox",
        outbox,
        "originals would be shared with the cleaned copies; keep them apart",
    )?;
    let mut private = vec![
        ("failed folder", c.failed.as_path()),
        ("state folder", c.state.as_path()),
    ];
    if let Originals::MoveTo(d) = &c.originals {
        private.push(("done folder", d.as_path()));
    }
    for (what, p) in private {
        nested(
            what,
            p,
            "inbox",
            inbox,
            "it would be watched as new photos; put it beside the inbox",
        )?;
        nested(
            what,
            p,
            "outbox",
            outbox,
            "it holds originals or the name key, which must never be shared; put it elsewhere",
        )?;
    }
    Ok(())
}

/// One line of the log: what happened to one file.
#[derive(Debug, Clone)]
pub struct Report {
    pub time: SystemTime,
    /// The original path (show only with `--verbose`).
    pub input: PathBuf,
    /// The output's file name, or the photo's pseudonym when there is no output.
    pub label: String,
    pub kind: ReportKind,
}

#[derive(Debug, Clone)]
pub enum ReportKind {
    /// Published (or found already published), original dealt with.
    Cleaned {
        method: Method,
        up_to_date: bool,
        /// Where the original went (`None`: deleted or kept).
        moved_to: Option<PathBuf>,
    },
    /// Could not be cleaned; moved (or copied, with `--keep-originals`) to failed/.
    Failed {
        reason: String,
        moved_to: Option<PathBuf>,
    },
    /// A disk or permission error; tried again later.
    Retrying { reason: String, after: Duration },
    /// The file changed while it was being cleaned: it is left in place and
    /// cleaned again once it settles (an output of the earlier content may exist).
    Changed,
    /// Something went wrong after the output (or the failure) was recorded: the
    /// original stays where it is and is left alone until it changes.
    Stuck { reason: String },
    /// Not about one file (a rescan after lost events...).
    Notice(String),
}

/// Counts for the closing line and the exit code.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub cleaned: usize,
    pub up_to_date: usize,
    pub failed: usize,
    pub stuck: usize,
}

impl Summary {
    pub fn any_failed(&self) -> bool {
        self.failed > 0 || self.stuck > 0
    }
}

/// Names that are never processed until renamed: dotfiles (and anything in a
/// dot-folder), partial downloads and editor or system leftovers.
pub fn is_ignored(relative: &Path) -> bool {
    if relative
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    {
        return true;
    }
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    const PARTIAL: [&str; 7] = [
        ".part",
        ".tmp",
        ".partial",
        ".crdownload",
        ".download",
        ".filepart",
        ".swp",
    ];
    name.ends_with('~')
        || PARTIAL.iter().any(|s| name.ends_with(s))
        || matches!(name.as_str(), "thumbs.db" | "desktop.ini")
}

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
) -> Result<notify::RecommendedWatcher, StartError> {
    use notify::Watcher;
    let as_start_error = |e| watch_error(inbox, e);
    let mut w = notify::recommended_watcher(move |res| {
        if tx.try_send(Msg::Fs(res)).is_err() {
            overflow.store(true, Ordering::Relaxed);
        }
    })
    .map_err(as_start_error)?;
    w.watch(inbox, notify::RecursiveMode::Recursive)
        .map_err(as_start_error)?;
    Ok(w)
}

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
    let native = !cfg.once && cfg.source == Source::Native;
    // Started before the first scan, so nothing falls in between.
    let _watcher = if native {
        Some(start_watcher(&cfg.inbox, tx.clone(), overflow.clone())?)
    } else {
        None
    };
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
    };
    let rescan_every = match cfg.source {
        Source::Poll(iv) => iv,
        Source::Native => RESCAN,
    };
    pool.in_place_scope(|scope| {
        // The backlog; `--once` scans only this once, then drains.
        lp.scan(&cfg.inbox, Instant::now());
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
}

impl Loop<'_> {
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
        for entry in walker.filter_map(Result::ok) {
            let path = entry.path();
            if entry.file_type().is_dir()
                || self.in_flight.contains(path)
                || self.stuck.contains(path)
            {
                continue;
            }
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.is_file() {
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
            Msg::Fs(Ok(event)) => self.event(event),
            Msg::Fs(Err(e)) => {
                sink(&notice(&format!("watch error ({e}): rescanning the inbox")));
                let inbox = self.cfg.inbox.clone();
                self.scan(&inbox, Instant::now());
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
                        Ok(_) => self.tracker.event(path, t, now),
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
    fn partial_and_hidden_names_are_ignored() {
        for n in [
            "a.jpg.part",
            "a.JPG.TMP",
            "a.jpg~",
            ".a.jpg",
            ".sync/a.jpg",
            "x/.hidden/a.jpg",
            "Thumbs.db",
            "a.jpg.crdownload",
        ] {
            assert!(is_ignored(Path::new(n)), "{n}");
        }
        for n in ["a.jpg", "sub/b.png", "part.jpg", "tmp/a.jpg"] {
            assert!(!is_ignored(Path::new(n)), "{n}");
        }
    }

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

    #[test]
    fn layout_errors_say_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let inbox = d.path().join("in");
        let base = WatchConfig {
            inbox: inbox.clone(),
            outbox: d.path().join("out"),
            failed: d.path().join("failed"),
            state: d.path().join("state"),
            originals: Originals::MoveTo(d.path().join("done")),
            settle: Duration::from_secs(1),
            source: Source::Native,
            once: true,
            threads: 1,
        };
        let e = prepare(&base).err().unwrap().to_string();
        assert!(e.contains("does not exist") && e.contains("mkdir"), "{e}");
        std::fs::create_dir(&inbox).unwrap();
        let mut c = base.clone();
        c.outbox = inbox.join("out");
        let e = prepare(&c).err().unwrap().to_string();
        assert!(e.contains("outside the inbox"), "{e}");
        let mut c = base.clone();
        c.state = d.path().join("out/state");
        let e = prepare(&c).err().unwrap().to_string();
        assert!(e.contains("never be shared"), "{e}");
        assert!(!d.path().join("out").exists(), "nothing created on refusal");
        let p = prepare(&base).unwrap();
        assert!(d.path().join("done").is_dir() && d.path().join("state/lock").exists());
        drop(p);
        assert!(!d.path().join("state/lock").exists());
    }
}
