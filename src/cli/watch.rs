//! `photodeid watch`: options → library configuration, signals, one log
//! line per file on stderr (pseudonyms only unless `--verbose`).

use super::args::WatchArgs;
use super::common::{file_settings, naming, refuse_inside, Keep, NameChoice};
use super::progress::{Audience, Progress};
use super::{sanitize, show};
use anyhow::Context;
use photodeid::commit::{PrivateMode, WriteMode};
use photodeid::pipeline::FileSettings;
use photodeid::pseudonym::Naming;
use photodeid::watch::{self, state, Originals, Report, ReportKind, Source, WatchConfig};
use photodeid::{region, Method};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub fn run(a: WatchArgs) -> anyhow::Result<ExitCode> {
    let beside = |name| WatchConfig::beside_inbox(&a.inbox, name);
    let originals = if a.keep_originals {
        Originals::Keep
    } else if a.delete_originals {
        Originals::Delete
    } else {
        Originals::MoveTo(a.done.clone().unwrap_or_else(|| beside("done")))
    };
    let requested = WatchConfig {
        inbox: a.inbox.clone(),
        outbox: a.output.clone(),
        failed: a.failed.clone().unwrap_or_else(|| beside("failed")),
        state: a
            .state
            .clone()
            .unwrap_or_else(|| beside(".photodeid-state")),
        originals,
        settle: a.settle,
        source: if a.poll {
            Source::Poll(a.poll_interval)
        } else {
            Source::Native
        },
        once: a.once,
        threads: a.threads,
        incomplete_after: a.incomplete_after,
        flat: a.cleaning.flat,
    };
    let prepared = watch::prepare(&requested)?;
    let cfg = prepared.config.clone();
    if prepared.stale_temps_removed > 0 && !a.quiet {
        say!(
            "photodeid: removed {} temporary file(s) left by an interrupted run",
            prepared.stale_temps_removed
        );
    }
    let c = &a.cleaning;
    if c.random_names {
        anyhow::bail!(
            "--random-names with watch: a photo cleaned again after a crash must get the same name"
        );
    }
    super::common::check_faces_available(&c.region)?;
    for (what, path) in [("--name-key", &c.name_key), ("--map", &a.map)] {
        if let Some(p) = path {
            refuse_inside(p, &cfg.inbox, Keep::OutOfInbox, what)?;
        }
    }
    let mut map = match &a.map {
        Some(path) => Some(MapFile::open(path, &cfg.outbox)?),
        None => None,
    };
    let naming = if c.keep_names {
        Naming::Keep
    } else {
        // Keyed names always: a photo re-processed after a crash gets the same name.
        let key = c
            .name_key
            .clone()
            .or_else(|| state::legacy_key(&cfg.state))
            .or_else(photodeid::layout::default_key_path);
        if let Some(k) = &key {
            refuse_inside(k, &cfg.inbox, Keep::OutOfInbox, "the name key")?;
        }
        let choice = NameChoice {
            key: key.as_deref(),
            ..NameChoice::default()
        };
        naming(choice, &cfg.outbox, a.quiet)?
    };
    let manifest = match &c.region.regions_file {
        Some(path) => region::read_manifest(path).map_err(|e| anyhow::anyhow!(e))?,
        None => Vec::new(),
    };
    let mut settings = FileSettings {
        write: WriteMode {
            overwrite: false,
            sync: true,
        },
        ..file_settings(c, manifest)
    };
    settings.clean.keep = super::common::keep_exif(c, &naming)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while finishing stops at once (exit 130).
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .context("cannot install signal handlers")?;
    }
    if !a.quiet {
        let how = match cfg.source {
            Source::Native if a.once => "once".to_string(),
            Source::Native => "file-system events".to_string(),
            Source::Poll(iv) => format!("polling every {iv:?}"),
        };
        let originals = match &cfg.originals {
            Originals::MoveTo(d) => format!("originals to {}", show(d)),
            Originals::Keep => "originals kept".into(),
            Originals::Delete => "originals deleted".into(),
        };
        say!(
            "photodeid: watching {} -> {} ({how}, settle {:?}, {originals})",
            show(&cfg.inbox),
            show(&cfg.outbox),
            cfg.settle
        );
    }
    // A bar over the start-up backlog (and all of `--once`); later arrivals
    // are single log lines.
    let mut backlog: Option<(Progress, usize)> = None;
    let mut on_failure = super::hook::FailureHook::new(a.on_failure.as_deref(), "watch");
    let mut sink = |r: &Report| {
        if let ReportKind::Backlog(n) = r.kind {
            backlog = Some((
                Progress::new(n as u64, "files", Audience::pick(a.quiet, false)),
                n,
            ));
            return;
        }
        match &mut backlog {
            Some((bar, _)) => bar.suspend(|| log(&a, r)),
            None => log(&a, r),
        }
        if let (Some(hook), ReportKind::Failed { reason, .. } | ReportKind::Stuck { reason }) =
            (&mut on_failure, &r.kind)
        {
            hook.fire(&r.label, reason);
        }
        let finished = matches!(
            r.kind,
            ReportKind::Cleaned { .. } | ReportKind::Failed { .. } | ReportKind::Stuck { .. }
        );
        if let (Some((bar, left)), true) = (&mut backlog, finished) {
            bar.inc();
            *left = left.saturating_sub(1);
            if *left == 0 {
                bar.finish();
                backlog = None;
            }
        }
        if let (Some(m), ReportKind::Cleaned { .. }) = (&mut map, &r.kind) {
            if let Err(e) = m.append(&r.input, &cfg.outbox.join(&r.label)) {
                say!("photodeid: cannot write the map: {}", super::error_text(&e));
            }
        }
    };
    let summary = watch::run(&cfg, &settings, &naming, &stop, &mut sink)?;
    drop(prepared);
    if !a.quiet {
        say!(
            "photodeid: {} cleaned ({} already published), {} failed{}",
            summary.cleaned,
            summary.up_to_date,
            summary.failed,
            if summary.stuck > 0 {
                format!(", {} left in the inbox after an error", summary.stuck)
            } else {
                String::new()
            }
        );
        if summary.incomplete > 0 {
            say!(
                "photodeid: {} photo(s) end early (still arriving?), left in the inbox",
                summary.incomplete
            );
        }
    }
    Ok(if a.once && summary.any_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The original -> pseudonym CSV, appended to and synced per photo (a crash
/// can at most repeat a row).
struct MapFile {
    file: std::fs::File,
}

impl MapFile {
    fn open(path: &Path, outbox: &Path) -> anyhow::Result<MapFile> {
        refuse_inside(path, outbox, Keep::OutOfOutput, "--map")?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode_private()
            .open(path)
            .with_context(|| format!("cannot open map {}", path.display()))?;
        if file.metadata()?.len() == 0 {
            file.write_all(b"original,pseudonym\n")?;
        }
        Ok(MapFile { file })
    }

    fn append(&mut self, original: &Path, output: &Path) -> anyhow::Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record([original.display().to_string(), output.display().to_string()])?;
        let row = w.into_inner().context("map row")?;
        self.file.write_all(&row)?;
        self.file.sync_data()?;
        Ok(())
    }
}

/// `2026-11-25T13:01:02Z 3fa9…c1.jpg cleaned: hidden data removed (EXIF, GPS)`
/// (the method, "(lossless)", only with `--verbose`)
fn log(a: &WatchArgs, r: &Report) {
    let important = matches!(r.kind, ReportKind::Failed { .. } | ReportKind::Stuck { .. });
    if a.quiet && !important {
        return;
    }
    let what = match &r.kind {
        ReportKind::Cleaned {
            up_to_date: true, ..
        } => "already published".to_string(),
        ReportKind::Cleaned {
            done,
            method,
            warnings,
            ..
        } => {
            let mut text = format!("cleaned: {done}");
            if a.verbose {
                text.push_str(match method {
                    Method::Lossless => " (lossless)",
                    Method::Reencoded => " (re-encoded)",
                });
            }
            for w in warnings {
                text.push_str(&format!("; warning: {w}"));
            }
            text
        }
        ReportKind::Failed { reason, .. } if a.keep_originals => {
            format!("failed: {reason} (copied to failed/)")
        }
        ReportKind::Failed { reason, .. } => format!("failed: {reason} (moved to failed/)"),
        ReportKind::Retrying { reason, after } => {
            format!("error, retrying in {after:?}: {reason}")
        }
        ReportKind::Changed => {
            "changed while being cleaned: left in the inbox, cleaned again once it settles"
                .to_string()
        }
        ReportKind::Stuck { reason } => format!("error, original left in the inbox: {reason}"),
        ReportKind::Notice(text) => text.clone(),
        ReportKind::Backlog(n) => format!("{n} file(s) waiting in the inbox"),
        ReportKind::Incomplete { reason } if a.once => {
            format!("ends early (still arriving?): left in the inbox for the next run: {reason}")
        }
        ReportKind::Incomplete { reason } => format!(
            "ends early (still arriving?): left in the inbox, tried again when it changes: {reason}"
        ),
        ReportKind::Unreadable { reason } => format!("a folder in the inbox {reason}"),
        ReportKind::NotAPhoto => format!(
            "a file that is not a photo by its name (.{}) is left where it is",
            r.input
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
    };
    let mut line = format!("{} ", state::utc_timestamp(r.time));
    if !r.label.is_empty() {
        line.push_str(&r.label);
        line.push(' ');
    }
    line.push_str(&what);
    if a.verbose && !r.input.as_os_str().is_empty() {
        line.push_str(&format!(" <- {}", r.input.display()));
    }
    let line = sanitize(&line) + "\n";
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
