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
//! 2. names are keyed hashes of the photo's bytes (the user's default key, as
//!    for `clean` and `serve`, or an older install's key in the state folder), so a
//!    photo re-processed after a crash maps to the *same* output, which is
//!    recognised as up to date instead of published a second time;
//! 3. temporary files of a killed run are removed at start-up, and outputs
//!    only ever appear by atomic rename.
//!
//! Modules: [`settle`] (when a file is complete), [`state`] (state folder,
//! journal, lock), [`mover`] (no-clobber moves), `worker` (one file),
//! `engine` (the event loop, [`run`]).

mod engine;
pub mod mover;
pub mod settle;
pub mod state;
mod worker;

pub use engine::{default_threads, run};

use crate::pipeline::Method;
use state::Lock;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
    /// A photo that ends early (still arriving) waits in the inbox until it
    /// changes; it fails only once it has not changed for this long.
    pub incomplete_after: Duration,
    /// All outputs in the outbox itself (else each inbox subfolder becomes
    /// a pseudonymous case folder, see [`crate::layout`]).
    pub flat: bool,
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
    #[error("another photodeid watch{} uses the state folder {}: stop it first, \
             or give this one its own --state",
             .pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), state.display())]
    Locked { pid: Option<u32>, state: PathBuf },
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

/// An absolute path with symlinks of its existing part resolved (the path
/// itself need not exist yet).
pub fn resolve(p: &Path) -> PathBuf {
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
    let lock = Lock::acquire(&c.state)?;
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
        /// What was done, in plain words ([`crate::plain::done`]).
        done: String,
        method: Method,
        up_to_date: bool,
        /// Where the original went (`None`: deleted or kept).
        moved_to: Option<PathBuf>,
        /// Things to know (a region clipped at the image's edge); they never
        /// name the original.
        warnings: Vec<String>,
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
    /// Files found in the inbox at start-up, to be cleaned first (for progress).
    Backlog(usize),
    /// The photo ends early (an upload still arriving?): left in the inbox,
    /// tried again when it changes, failed after `incomplete_after`.
    Incomplete { reason: String },
    /// Not a photo by its name: left where it is (reported once).
    NotAPhoto,
    /// A folder (or entry) in the inbox that cannot be read, so the photos in
    /// it cannot be seen: reported once, counted as a failure, never moved.
    Unreadable { reason: String },
}

/// Counts for the closing line and the exit code.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub cleaned: usize,
    pub up_to_date: usize,
    pub failed: usize,
    pub stuck: usize,
    /// Photos that end early, left in the inbox (with `--once`).
    pub incomplete: usize,
}

impl Summary {
    pub fn any_failed(&self) -> bool {
        self.failed > 0 || self.stuck > 0
    }
}

/// Extensions of the photos the watcher cleans; anything else is left alone.
const PHOTO_EXTENSIONS: [&str; 12] = [
    "jpg", "jpeg", "jpe", "jfif", "png", "webp", "tif", "tiff", "gif", "heic", "heif", "avif",
];

/// Whether `relative` is a photo by its name (extension, any case).
pub fn is_photo_name(relative: &Path) -> bool {
    relative
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
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
            incomplete_after: Duration::from_secs(600),
            flat: false,
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
