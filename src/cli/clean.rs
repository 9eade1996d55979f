//! `photodeid clean`: options → library settings, batch run, per-file lines,
//! the summary and the optional original → pseudonym map.

use super::args::CleanArgs;
use super::common::{check_map, file_settings, naming, write_map, NameChoice};
use super::hook::FailureHook;
use super::progress::{Audience, Progress};
use super::{print_error, sanitize, show};
use anyhow::{bail, Context};
use photodeid::batch::{self, Destinations, Summary};
use photodeid::commit::WriteMode;
use photodeid::pipeline::{Destination, FileOutcome, FileSettings, Status};
use photodeid::pseudonym::Naming;
use photodeid::{layout, region, scan, FileError};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

struct State {
    summary: Summary,
    map_rows: Vec<(String, String)>,
    on_failure: Option<FailureHook>,
}

pub fn run(a: CleanArgs) -> anyhow::Result<ExitCode> {
    if a.sharding.manifest.is_some() {
        // Sharded runs keep their flat keyed names (each chunk names its
        // files alone; capture ranks would need the whole case first).
        if a.cleaning.random_names {
            bail!("--random-names in a sharded run: names must be the same on every attempt of a chunk");
        }
        return super::shard::clean_manifest(a);
    }
    let a = super::shard::read_files_from(a)?;
    super::set_verbose(a.verbose);
    let single_file = a.inputs.len() == 1
        && a.inputs[0].is_file()
        && !a.output.is_dir()
        && (a.output.extension().is_some() || a.output.is_file());
    let out_dir = if single_file {
        a.output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    } else {
        a.output.clone()
    };
    refuse_output_among_inputs(&a.inputs, &out_dir, single_file)?;
    let found = scan::scan(&a.inputs, (!single_file).then_some(out_dir.as_path()));
    let mut summary = Summary::default();
    for err in &found.errors {
        print_error(err);
        summary.record_failure();
    }
    if found.jobs.is_empty() && !found.errors.is_empty() {
        // Nothing to clean: no output folder, no name key, no map appear.
        if !a.quiet {
            say!(
                "photodeid: {}; nothing written",
                render(&summary, a.verbose)
            );
        }
        return Ok(ExitCode::from(1));
    }
    let map_mode = match &a.map {
        Some(map) => Some(check_map(map, &out_dir, a.overwrite)?),
        None => None,
    };
    if !a.dry_run {
        std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("cannot create output folder {}", out_dir.display()))?;
    }
    let c = &a.cleaning;
    super::common::check_faces_available(&c.region)?;
    let choice = NameChoice {
        keep: c.keep_names,
        // One file to one named file needs no name (nor a default key).
        random: c.random_names || single_file && c.name_key.is_none(),
        key: c.name_key.as_deref(),
    };
    let naming = naming(choice, &out_dir, a.quiet)?;
    let keep = super::common::keep_exif(c, &naming)?;
    let dest = if single_file {
        Destination::File(a.output.clone())
    } else {
        Destination::Folder {
            dir: out_dir.clone(),
            naming: naming.clone(),
        }
    };
    let placed = match (&dest, &naming) {
        (Destination::Folder { .. }, Naming::Keyed(_) | Naming::Random) if !c.flat => {
            Some(placed(&found.jobs, &out_dir, naming, a.threads)?)
        }
        _ => None,
    };
    let dests = match &placed {
        Some(each) => Destinations::Each(each),
        None => Destinations::One(&dest),
    };
    let manifest = match &c.region.regions_file {
        Some(path) => region::read_manifest(path).map_err(|e| anyhow::anyhow!(e))?,
        None => Vec::new(),
    };
    // A typo in the manifest must never silently leave a face unredacted:
    // an unmatched row stops the run before anything is written.
    let mut unmatched = 0;
    for row in &manifest {
        let matched = found
            .jobs
            .iter()
            .any(|j| row.matches(&j.relative.to_string_lossy()));
        if !matched {
            let path = c
                .region
                .regions_file
                .as_deref()
                .unwrap_or(Path::new("regions"));
            print_error(&FileError::new(
                path,
                photodeid::Error::Invalid(format!(
                    "line {}: {:?} matches no input file (names are case-sensitive)",
                    row.line, row.pattern
                )),
            ));
            unmatched += 1;
        }
    }
    if unmatched > 0 {
        say!(
            "photodeid: nothing written: {unmatched} manifest row(s) match no photo; \
             fix the manifest and run again"
        );
        return Ok(ExitCode::from(1));
    }
    let mut settings = FileSettings {
        write: WriteMode {
            overwrite: a.overwrite,
            sync: a.sync,
        },
        dry_run: a.dry_run,
        ..file_settings(c, manifest)
    };
    settings.clean.keep = keep;
    // Areas covered per photo, for the line that says what was done.
    let covered: HashMap<&Path, usize> = found
        .jobs
        .iter()
        .map(|j| (j.path.as_path(), settings.regions_for(j).len()))
        .filter(|(_, n)| *n > 0)
        .collect();
    let progress = Progress::new(
        found.jobs.len() as u64,
        "files",
        Audience::pick(a.quiet, a.json),
    );
    let state = Mutex::new(State {
        summary,
        map_rows: Vec::new(),
        on_failure: FailureHook::new(a.on_failure.as_deref(), "clean"),
    });
    let sink = |outcome: FileOutcome| {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.summary.record(&outcome);
        if let (Some(out), Ok(d)) = (&outcome.output, &outcome.result) {
            if d.status != Status::WouldClean {
                st.map_rows.push((
                    outcome.input.display().to_string(),
                    out.display().to_string(),
                ));
            }
        }
        let areas = covered.get(outcome.input.as_path()).copied().unwrap_or(0);
        progress.suspend(|| report(&a, &outcome, areas));
        if let (Some(hook), Err(e)) = (&mut st.on_failure, &outcome.result) {
            hook.fire(&failed_name(&outcome, &dest), &super::reason(e));
        }
        progress.inc();
    };
    batch::run_to(&found.jobs, &dests, &settings, a.threads, &sink)
        .context("cannot start threads")?;
    progress.finish();
    let st = state.into_inner().unwrap_or_else(|p| p.into_inner());
    if let (Some(map), Some(mode)) = (&a.map, map_mode) {
        if !a.dry_run {
            write_map(map, &st.map_rows, mode)?;
        }
    }
    if a.json {
        out!("{}", json!({ "summary": st.summary }));
    }
    if !a.quiet {
        say!("photodeid: {}", render(&st.summary, a.verbose));
    }
    Ok(if st.summary.any_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Each job's destination in the layout: its case folder under a
/// pseudonym, its capture rank in the name (see `photodeid::layout`).
fn placed(
    jobs: &[scan::Job],
    out_dir: &Path,
    naming: Naming,
    threads: usize,
) -> anyhow::Result<Vec<Destination>> {
    let folders = layout::Folders::new(naming);
    let places = layout::places(jobs, &folders, threads).map_err(anyhow::Error::new)?;
    Ok(places
        .into_iter()
        .map(|place| Destination::Placed {
            dir: out_dir.to_path_buf(),
            naming: folders.naming().clone(),
            place,
        })
        .collect())
}

/// Refuses an output folder that is an input folder or holds an input:
/// cleaned copies must never land among the originals. A new subfolder of an
/// input is fine (the scan never enters it). One file to one file is checked
/// per file by the library (the same file, hard links included).
fn refuse_output_among_inputs(
    inputs: &[std::path::PathBuf],
    out_dir: &Path,
    single_file: bool,
) -> anyhow::Result<()> {
    if single_file {
        return Ok(());
    }
    let out = photodeid::watch::resolve(out_dir);
    for input in inputs {
        let Ok(inp) = input.canonicalize() else {
            continue; // reported by the scan
        };
        if inp == out {
            bail!(
                "output folder {} is the input folder: cleaned copies would mix with the \
                 originals; choose a folder outside it, or a new subfolder",
                out_dir.display()
            );
        }
        if inp.starts_with(&out) {
            bail!(
                "input {} is inside the output folder {}: cleaned copies would mix with the \
                 originals; choose an output folder outside the inputs",
                input.display(),
                out_dir.display()
            );
        }
    }
    Ok(())
}

/// The summary: in plain words, or with the technical counts (`--verbose`).
fn render(summary: &Summary, verbose: bool) -> String {
    if verbose {
        summary.render()
    } else {
        summary.render_plain()
    }
}

/// One file's lines: what was done in a person's terms (`areas` covered by
/// `--region`/`--regions`; faces add theirs); the method and sizes only
/// with `--verbose`.
fn report(a: &CleanArgs, outcome: &FileOutcome, areas: usize) {
    let out_name = outcome.output.as_deref().map(show).unwrap_or_default();
    if let Ok(d) = &outcome.result {
        // The output's pseudonym, not the original name, unless --verbose.
        let who = match &outcome.output {
            Some(out) if !a.verbose => show(out),
            _ => show(&outcome.input),
        };
        if let (Some(f), false) = (&d.faces, a.quiet || a.json) {
            let line = format!("photodeid: {who}: {}\n", f.describe());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        for w in &d.warnings {
            let line = format!("photodeid: {who}: warning: {w}\n");
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
    match &outcome.result {
        Err(e) => {
            super::print_failure(&outcome.input, e);
            if a.json {
                out!(
                    "{}",
                    json!({"status": "failed", "input": outcome.input, "error": e.to_string()})
                );
            }
        }
        Ok(d) if a.json => {
            let mut v = json!({
                "status": d.status,
                "output": outcome.output,
                "format": d.format,
                "method": d.method,
                "removed": d.removed.categories(),
                "bytes_in": d.bytes_in,
                "bytes_out": d.bytes_out,
            });
            if let Some(f) = &d.faces {
                v["faces"] = f.to_json();
            }
            // The values removed (names, serial numbers, GPS) and the
            // original path would link the pseudonym back to the patient.
            if a.verbose || d.status == Status::WouldClean {
                v["input"] = json!(outcome.input);
                v["removed_values"] = json!(d.removed);
            }
            out!("{v}");
        }
        Ok(_) if a.quiet => {}
        Ok(d) => {
            let removed = d.bytes_in.saturating_sub(d.bytes_out);
            let method = match d.method {
                photodeid::Method::Lossless => "lossless",
                photodeid::Method::Reencoded => "re-encoded",
            };
            let what = d.removed.summary();
            let faces = d.faces.as_ref().map_or(0, |f| f.regions().len());
            let line = match d.status {
                Status::WouldClean if a.verbose => format!(
                    "{}: would remove {what} ({}, {method})",
                    show(&outcome.input),
                    photodeid::metadata::human_bytes(removed)
                ),
                Status::WouldClean => {
                    format!("{}: would remove {what}", show(&outcome.input))
                }
                Status::UpToDate => format!("{out_name}: up to date"),
                Status::Cleaned if a.verbose => format!(
                    "{} -> {out_name}: {method}, removed {what} ({})",
                    show(&outcome.input),
                    photodeid::metadata::human_bytes(removed)
                ),
                Status::Cleaned => format!(
                    "{out_name}: {}",
                    photodeid::plain::done(areas + faces, &d.removed)
                ),
            };
            let _ = writeln!(std::io::stdout().lock(), "{}", sanitize(&line));
        }
    }
}

/// The name `--on-failure` gets for a failed file: the output's pseudonym
/// when one was chosen, else the one its bytes would get (keyed names: the
/// same as on a later successful run); never the original path.
fn failed_name(outcome: &FileOutcome, dest: &Destination) -> String {
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if let Some(out) = &outcome.output {
        return stem(out);
    }
    match dest {
        Destination::File(p) => stem(p),
        Destination::Folder {
            naming: Naming::Keep,
            ..
        } => outcome
            .input
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Destination::Folder { naming, .. } | Destination::Placed { naming, .. } => {
            photodeid::pipeline::read_input(&outcome.input, super::common::MAX_FILE_BYTES)
                .ok()
                .and_then(|b| naming.pseudonym(&b).ok().flatten())
                .unwrap_or_else(|| "(unreadable)".into())
        }
    }
}
