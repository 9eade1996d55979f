//! `photodeid check`: the audit, on anything. Same parser as the scrubber.

use super::args::CheckArgs;
use super::{print_error, sanitize, show};
use photodeid::metadata::Category;
use photodeid::pipeline::inspect;
use photodeid::{scan, Error, FileError, Inventory, Limits};
use rayon::prelude::*;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn audit_file(path: &Path, limits: &Limits) -> Result<(photodeid::Format, Inventory), Error> {
    let bytes = photodeid::pipeline::read_input(path, super::common::MAX_FILE_BYTES)?;
    let ext = path.extension().and_then(|e| e.to_str());
    let parsed = inspect(&bytes, ext, limits)?;
    Ok((parsed.format, parsed.inventory))
}

pub fn run(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits {
        max_pixels: a.max_megapixels.saturating_mul(1_000_000),
        ..Limits::default()
    };
    let found = scan::scan(&a.paths, None);
    let mut unreadable = !found.errors.is_empty();
    for e in &found.errors {
        print_error(e);
    }
    let results: Vec<_> = found
        .jobs
        .par_iter()
        .map(|job| (job, audit_file(&job.path, &limits)))
        .collect();
    let mut identifying = false;
    let mut out = std::io::stdout().lock();
    for (job, result) in results {
        match result {
            Err(error) => {
                unreadable = true;
                if a.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"path": job.path, "error": error.to_string()})
                    )?;
                }
                print_error(&FileError::new(&job.path, error));
            }
            Ok((format, inv)) => {
                let clean = inv.is_clean();
                identifying |= !clean;
                if a.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"path": job.path, "format": format, "clean": clean, "findings": inv})
                    )?;
                } else if !(a.quiet && clean) {
                    write!(out, "{}", render(&job.path, &inv))?;
                }
            }
        }
    }
    Ok(ExitCode::from(if unreadable {
        2
    } else if identifying {
        1
    } else {
        0
    }))
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
