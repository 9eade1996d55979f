//! `photodeid check`: the audit, on anything. Same parser as the scrubber.

use super::args::CheckArgs;
use super::progress::{Audience, Progress};
use super::{print_error, sanitize, show};
use photodeid::metadata::Category;
use photodeid::pipeline::{inspect, Deep};
use photodeid::{scan, Error, FileError, Inventory, Limits};
use rayon::prelude::*;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// The format, the inventory and, under `--thorough`, why the picture data
/// was not decoded to its end (when it was not).
type Audit = (photodeid::Format, Inventory, Option<&'static str>);

fn audit_file(path: &Path, limits: &Limits, thorough: bool) -> Result<Audit, Error> {
    let bytes = photodeid::pipeline::read_input(path, super::common::MAX_FILE_BYTES)?;
    let ext = path.extension().and_then(|e| e.to_str());
    let parsed = inspect(&bytes, ext, limits)?;
    let mut note = None;
    let mut inv = parsed.inventory.clone();
    if thorough {
        match photodeid::pipeline::inspect_thorough(&parsed)? {
            Deep::Findings(f) => inv.0.extend(f),
            Deep::NotAnalysed(why) => note = Some(why),
        }
    }
    Ok((parsed.format, inv, note))
}

pub fn run(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        max_pixels: a.max_megapixels.saturating_mul(1_000_000),
        ..Limits::default()
    };
    let found = scan::scan(&a.paths, None);
    let mut unreadable = found.errors.len();
    for e in &found.errors {
        print_error(e);
    }
    let progress = Progress::new(
        found.jobs.len() as u64,
        "files",
        Audience::pick(a.quiet, a.json),
    );
    let results: Vec<_> = found
        .jobs
        .par_iter()
        .map(|job| {
            let r = audit_file(&job.path, &limits, a.thorough);
            progress.inc();
            (job, r)
        })
        .collect();
    progress.finish();
    let mut identifying = 0;
    // Write errors are ignored, not returned: with stdout closed early
    // (`check … | head`) the exit code must still say what was found.
    let mut out = std::io::stdout().lock();
    for (job, result) in results {
        match result {
            Err(error) => {
                unreadable += 1;
                if a.json {
                    let _ = writeln!(
                        out,
                        "{}",
                        json!({"path": job.path, "error": error.to_string()})
                    );
                }
                print_error(&FileError::new(&job.path, error));
            }
            Ok((format, inv, note)) => {
                let clean = inv.is_clean();
                identifying += usize::from(!clean);
                if a.json {
                    let mut o = json!({"path": job.path, "format": format, "clean": clean, "findings": inv});
                    if let Some(why) = note {
                        o["not_decoded"] = json!(why);
                    }
                    let _ = writeln!(out, "{o}");
                } else if !(a.quiet && clean) {
                    let _ = write!(out, "{}", render(&job.path, &inv));
                    if let Some(why) = note {
                        let _ = writeln!(out, "  picture data not decoded to its end: {why}");
                    }
                }
            }
        }
    }
    drop(out);
    let total = found.jobs.len() + found.errors.len();
    if !a.quiet {
        say!(
            "photodeid: {}",
            summary_line(total, identifying, unreadable)
        );
    }
    Ok(ExitCode::from(if unreadable > 0 {
        2
    } else if identifying > 0 {
        1
    } else {
        0
    }))
}

/// `88 of 113 carry identifying content, 6 could not be read`
fn summary_line(total: usize, identifying: usize, unreadable: usize) -> String {
    let files = if total == 1 { "file" } else { "files" };
    let mut s = match identifying {
        0 => format!("none of {total} {files} carry identifying content"),
        n => format!("{n} of {total} {files} carry identifying content"),
    };
    if unreadable > 0 {
        s.push_str(&format!(", {unreadable} could not be read"));
    }
    s
}

fn render(path: &Path, inv: &Inventory) -> String {
    let mut s = if inv.is_clean() {
        format!("{}: clean\n", show(path))
    } else {
        format!("{}: identifying content found\n", show(path))
    };
    let mut cats: Vec<Category> = inv.0.iter().map(|f| f.category).collect();
    cats.sort();
    cats.dedup();
    for cat in cats {
        let details: Vec<&str> = inv
            .0
            .iter()
            .filter(|f| f.category == cat)
            .map(|f| f.detail.as_str())
            .collect();
        let kept = if cat.is_identifying() {
            ""
        } else {
            " (kept, not identifying)"
        };
        s.push_str(&format!(
            "  {}{kept}: {}\n",
            cat.label(),
            sanitize(&details.join("; "))
        ));
    }
    s
}
