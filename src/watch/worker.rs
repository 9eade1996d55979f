//! What happens to one settled original: clean it through the ordinary
//! pipeline (audit, atomic write, fsync), and only then move it to done/,
//! delete it, or remember it. A file that cannot be cleaned goes to failed/
//! with `<name>.error.txt`; a disk problem is retried a few times first.

use super::mover;
use super::state::{utc_timestamp, Fingerprint};
use super::{Originals, Report, ReportKind, WatchConfig};
use crate::commit::{self, WriteMode};
use crate::error::Error;
use crate::pipeline::{self, Destination, FileSettings, Status};
use crate::pseudonym::Naming;
use crate::scan::Job;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Delays before retrying after a disk or permission error; then failed/.
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(60),
];

/// Everything a worker needs, shared by reference.
pub struct Ctx<'a> {
    pub cfg: &'a WatchConfig,
    pub settings: &'a FileSettings<'a>,
    pub dest: Destination,
    pub naming: &'a Naming,
    /// Case folders under pseudonyms (`None`: flat). Photos arrive one by
    /// one, so a name carries no capture rank: a later arrival may have been
    /// taken earlier, and a name never changes once written.
    pub folders: Option<crate::layout::Folders>,
}

impl Ctx<'_> {
    /// Where `job` goes: its case folder (the inbox subfolder it came in)
    /// under a pseudonym, or the outbox itself.
    fn dest_for(&self, job: &Job) -> crate::Result<Destination> {
        let Some(folders) = &self.folders else {
            return Ok(self.dest.clone());
        };
        Ok(Destination::Placed {
            dir: self.cfg.outbox.clone(),
            naming: self.naming.clone(),
            place: crate::layout::Place {
                folder: folders.folder(&crate::layout::case_of(job))?,
                rank: None,
            },
        })
    }
}

/// The result of one file, for the main loop.
pub struct Handled {
    pub path: PathBuf,
    pub report: Option<Report>,
    /// Try again after this delay, with this attempt count.
    pub retry: Option<(Duration, u32)>,
    /// `--keep-originals`: remember this version (ok or failed).
    pub remember: Option<(Fingerprint, bool)>,
    /// Output done but the original could not be moved: leave it alone until it changes.
    pub stuck: bool,
    /// The file changed while it was being cleaned: watch it settle again.
    pub retrack: bool,
    /// The photo ends early: wait for it to change, at most this long more.
    pub incomplete: Option<Duration>,
}

/// Whether a photo that failed to parse is one still arriving.
enum Arrival {
    /// Complete as far as its structure tells: the failure is the file's.
    Complete,
    /// Ends early and changed recently: wait up to this long for the rest.
    Arriving(Duration),
    /// Ends early, unchanged for `incomplete_after`: an interrupted upload.
    GaveUp,
}

fn arrival(cfg: &WatchConfig, path: &Path, meta: &std::fs::Metadata) -> Arrival {
    let truncated = std::fs::read(path).is_ok_and(|b| crate::container::complete::ends_early(&b));
    if !truncated {
        return Arrival::Complete;
    }
    // The file's own time, so restarts and `--once` runs agree on its age.
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    match cfg.incomplete_after.checked_sub(age) {
        Some(left) if !left.is_zero() => Arrival::Arriving(left),
        _ => Arrival::GaveUp,
    }
}

/// Removes the folders above `path` that are empty now, up to the inbox:
/// a case folder's name often identifies the patient.
fn remove_emptied_folders(cfg: &WatchConfig, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d == cfg.inbox || !d.starts_with(&cfg.inbox) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Same size, time and (on Unix) inode: nobody wrote or replaced the file meanwhile.
fn unchanged(before: &std::fs::Metadata, path: &Path) -> bool {
    let Ok(now) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    let same_inode = {
        use std::os::unix::fs::MetadataExt;
        (before.dev(), before.ino()) == (now.dev(), now.ino())
    };
    #[cfg(not(unix))]
    let same_inode = true;
    same_inode && before.len() == now.len() && before.modified().ok() == now.modified().ok()
}

pub fn relative<'p>(cfg: &WatchConfig, path: &'p Path) -> &'p Path {
    path.strip_prefix(&cfg.inbox).unwrap_or(path)
}

/// An original's bytes. A symbolic link is never followed and nothing whose
/// canonical path leaves the inbox is read: a link dropped into the inbox
/// could name another patient's photo anywhere on the disk.
fn read_original(cfg: &WatchConfig, path: &Path, max: u64) -> crate::Result<Vec<u8>> {
    let bytes = pipeline::read_input_links(path, max, false)?;
    let inside = crate::serve::guard::Root::new(&cfg.inbox)
        .ok()
        .and_then(|root| root.contains(path));
    if inside.is_none() {
        // A folder on the way is a link (the file itself is not).
        return Err(Error::Invalid(
            "its real location is outside the inbox".into(),
        ));
    }
    Ok(bytes)
}

pub fn handle(ctx: &Ctx, path: &Path, attempts: u32) -> Handled {
    let cfg = ctx.cfg;
    let rel = relative(cfg, path).to_path_buf();
    let mut h = Handled {
        path: path.to_path_buf(),
        report: None,
        retry: None,
        remember: None,
        stuck: false,
        retrack: false,
        incomplete: None,
    };
    let Ok(meta) = std::fs::metadata(path) else {
        return h; // gone before we got to it
    };
    let fingerprint = Fingerprint::of(&rel, &meta);
    let job = Job {
        path: path.to_path_buf(),
        relative: rel.clone(),
    };
    let process = || {
        let input = read_original(cfg, path, ctx.settings.max_file_bytes);
        match ctx.dest_for(&job) {
            Ok(dest) => pipeline::process_input(&job, input, &dest, ctx.settings),
            Err(e) => pipeline::FileOutcome {
                input: path.to_path_buf(),
                output: None,
                result: Err(e),
            },
        }
    };
    let mut outcome = process();
    if matches!(outcome.result, Err(Error::OutputExists(_))) {
        // The same photo twice in one burst: the other copy won the race to
        // publish. A second pass finds identical bytes and says up to date.
        outcome = process();
    }
    let report = |label: String, kind: ReportKind| {
        Some(Report {
            time: SystemTime::now(),
            input: path.to_path_buf(),
            label,
            kind,
        })
    };
    if std::fs::symlink_metadata(path).is_ok() && !unchanged(&meta, path) {
        // Written to (a writer paused longer than --settle) or replaced while
        // we read it: never move or fail it on the strength of what we read.
        h.retrack = true;
        h.report = report(failure_label(ctx.naming, path, &rel), ReportKind::Changed);
        return h;
    }
    match outcome.result {
        Ok(done) => {
            let output = outcome.output.unwrap_or_default();
            let label = output
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let up_to_date = done.status == Status::UpToDate;
            if up_to_date {
                // Published by an earlier run that may have died before syncing the folder.
                if let Ok(f) = std::fs::File::open(&output) {
                    let _ = f.sync_all();
                }
                commit::sync_dir(output.parent().unwrap_or(Path::new(".")));
            }
            let disposed = match &cfg.originals {
                Originals::MoveTo(done_dir) => {
                    mover::move_unique(path, &done_dir.join(&rel)).map(Some)
                }
                Originals::Delete => mover::delete(path).map(|_| None),
                Originals::Keep => {
                    h.remember = Some((fingerprint, true));
                    Ok(None)
                }
            };
            if disposed.is_ok() && !matches!(cfg.originals, Originals::Keep) {
                remove_emptied_folders(cfg, path);
            }
            h.report = match disposed {
                Ok(moved_to) => report(
                    label,
                    ReportKind::Cleaned {
                        done: crate::plain::done(
                            ctx.settings.regions_for(&job).len(),
                            &done.removed,
                        ),
                        method: done.method,
                        up_to_date,
                        moved_to,
                        warnings: done.warnings,
                    },
                ),
                Err(e) => {
                    h.stuck = true;
                    report(
                        label,
                        ReportKind::Stuck {
                            reason: crate::plain::explain(&e),
                        },
                    )
                }
            };
        }
        Err(e) => {
            if std::fs::symlink_metadata(path).is_err() {
                return h; // removed while we read it: nothing to report
            }
            let transient = matches!(e, Error::Io { .. });
            if transient && (attempts as usize) < RETRY_DELAYS.len() {
                let delay = RETRY_DELAYS[attempts as usize];
                h.retry = Some((delay, attempts + 1));
                h.report = report(
                    failure_label(ctx.naming, path, &rel),
                    ReportKind::Retrying {
                        reason: crate::plain::explain(&e),
                        after: delay,
                    },
                );
                return h;
            }
            let gave_up = match e.is_input_problem().then(|| arrival(cfg, path, &meta)) {
                Some(Arrival::Arriving(left)) => {
                    h.incomplete = Some(left);
                    h.report = report(
                        failure_label(ctx.naming, path, &rel),
                        ReportKind::Incomplete {
                            reason: crate::plain::explain(&e),
                        },
                    );
                    return h;
                }
                Some(Arrival::GaveUp) => true,
                _ => false,
            };
            let reason = match e {
                other if gave_up => format!(
                    "{}; the file ends early and has not changed for {}: an interrupted \
                     upload? send it again",
                    crate::plain::explain(&other),
                    humantime::format_duration(cfg.incomplete_after)
                ),
                Error::OutputExists(_) => {
                    "a different cleaned copy of this photo is already in the \
                    outbox under its pseudonym (cleaned earlier with other options?); \
                    remove it to clean the photo again"
                        .to_string()
                }
                // Words a person can act on, the technical reason after them.
                other => crate::plain::explain(&other),
            };
            let label = failure_label(ctx.naming, path, &rel);
            h.report = match fail(cfg, path, &rel, &reason) {
                Ok(moved_to) => {
                    if matches!(cfg.originals, Originals::Keep) {
                        h.remember = Some((fingerprint, false));
                    } else {
                        remove_emptied_folders(cfg, path);
                    }
                    report(
                        label,
                        ReportKind::Failed {
                            reason,
                            moved_to: Some(moved_to),
                        },
                    )
                }
                Err(e2) => {
                    h.stuck = true;
                    report(
                        label,
                        ReportKind::Stuck {
                            reason: format!("{reason}; and it could not be moved to failed/: {e2}"),
                        },
                    )
                }
            }
        }
    }
    h
}

/// What a worker that panicked (a bug) reports: the original stays in the inbox, left alone.
pub fn panicked(ctx: &Ctx, path: &Path) -> Handled {
    let rel = relative(ctx.cfg, path);
    Handled {
        path: path.to_path_buf(),
        report: Some(Report {
            time: SystemTime::now(),
            input: path.to_path_buf(),
            label: failure_label(ctx.naming, path, rel),
            kind: ReportKind::Stuck {
                reason: "internal error (a bug in photodeid, please report it)".into(),
            },
        }),
        retry: None,
        remember: None,
        stuck: true,
        retrack: false,
        incomplete: None,
    }
}

/// A pseudonym for the log line of a file that produced no output.
fn failure_label(naming: &Naming, path: &Path, rel: &Path) -> String {
    match naming {
        Naming::Keep => rel.display().to_string(),
        _ => crate::pipeline::read_input_links(path, 1 << 30, false)
            .ok()
            .and_then(|b| naming.pseudonym(&b).ok().flatten())
            .unwrap_or_else(|| "(unreadable)".into()),
    }
}

/// failed/<relative> (free name) plus `<that name>.error.txt`, the reason
/// written first so a crash never leaves an original there without it.
fn fail(cfg: &WatchConfig, path: &Path, rel: &Path, reason: &str) -> crate::Result<PathBuf> {
    let target = mover::unique_path(&cfg.failed.join(rel));
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".error.txt");
    let text = format!(
        "photodeid could not clean this file; it was not published.\n\
         reason: {reason}\n\
         when: {}\n\
         original: {}\n\
         Fix or replace the file, then put it into the inbox again.\n",
        utc_timestamp(SystemTime::now()),
        rel.display()
    );
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create failed folder", e))?;
    }
    commit::write_atomic(
        &target.with_file_name(name),
        text.as_bytes(),
        WriteMode {
            overwrite: true,
            sync: true,
        },
    )?;
    if matches!(cfg.originals, Originals::Keep) {
        mover::copy_unique(path, &target)
    } else {
        mover::move_exact(path, &target).map(|_| target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_or_a_replacement_counts_as_a_change() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jpg");
        std::fs::write(&p, b"abc").unwrap();
        let before = std::fs::metadata(&p).unwrap();
        assert!(unchanged(&before, &p));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"d"))
            .unwrap();
        assert!(!unchanged(&before, &p));
        let before = std::fs::metadata(&p).unwrap();
        let other = d.path().join("b.jpg");
        std::fs::write(&other, b"abcd").unwrap();
        let f = std::fs::File::options().write(true).open(&other).unwrap();
        f.set_modified(before.modified().unwrap()).unwrap();
        std::fs::rename(&other, &p).unwrap();
        assert_eq!(
            cfg!(unix),
            !unchanged(&before, &p),
            "same size and time, new inode"
        );
        std::fs::remove_file(&p).unwrap();
        assert!(!unchanged(&before, &p));
    }
}
