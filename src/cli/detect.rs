//! `photodeid detect`: the faces and eye bars the detector proposes, per
//! photo, without writing anything (or, with --manifest, a regions manifest
//! that `clean --regions` applies, each row saying where it came from).

use super::args::DetectArgs;
use super::{print_error, sanitize, show};
use anyhow::{bail, Context};
use photodeid::commit::{self, WriteMode};
use photodeid::faces::{self, FaceOptions, Report};
use photodeid::pipeline::read_input;
use photodeid::region::Shape;
use photodeid::{scan, FileError, Limits};
use rayon::prelude::*;
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;

pub fn run(a: DetectArgs) -> anyhow::Result<ExitCode> {
    if !faces::AVAILABLE {
        bail!("{}", faces::unavailable());
    }
    if let Some(m) = &a.manifest {
        if m.exists() && !a.overwrite {
            bail!(
                "manifest {} exists (use --overwrite to replace it)",
                m.display()
            );
        }
    }
    let limits = Limits {
        max_pixels: a.max_megapixels.saturating_mul(1_000_000),
        ..Limits::default()
    };
    let options = FaceOptions {
        threshold: a.threshold,
        faces: true,
        eyes: a.eyes,
    };
    let found = scan::scan(&a.paths, None);
    let mut failed = found.errors.len();
    for err in &found.errors {
        print_error(err);
    }
    // In parallel, printed in input order.
    let results: Vec<_> = found
        .jobs
        .par_iter()
        .map(|job| {
            let r = read_input(&job.path, super::common::MAX_FILE_BYTES).and_then(|bytes| {
                let ext = job.path.extension().and_then(|e| e.to_str());
                faces::detect_bytes(&bytes, ext, &limits)
            });
            (job, r.map(|found| Report { found, options }))
        })
        .collect();
    let mut rows = Vec::new();
    for (job, r) in &results {
        match r {
            Err(e) => {
                failed += 1;
                print_error(&FileError::new(
                    &job.path,
                    photodeid::Error::Invalid(e.to_string()),
                ));
                if a.json {
                    out!("{}", json!({"input": job.path, "error": e.to_string()}));
                }
            }
            Ok(report) => {
                print_report(&a, &job.path, report);
                rows.extend(manifest_rows(&job.relative.to_string_lossy(), report));
            }
        }
    }
    if let Some(m) = &a.manifest {
        let bytes = manifest_csv(&rows)?;
        let mode = WriteMode {
            overwrite: a.overwrite,
            sync: true,
        };
        commit::write_atomic(m, &bytes, mode)
            .with_context(|| format!("cannot write manifest {}", m.display()))?;
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(a: &DetectArgs, path: &std::path::Path, r: &Report) {
    let mut out = std::io::stdout().lock();
    if a.json {
        let mut v = r.to_json();
        v["input"] = json!(path);
        let _ = writeln!(out, "{v}");
        return;
    }
    let mut text = format!("{}: {}", show(path), r.describe());
    if r.applied() == 0 {
        text.push_str(": check this photo yourself");
    }
    let _ = writeln!(out, "{}", sanitize(&text));
    let j = r.to_json();
    for f in j["faces"].as_array().into_iter().flatten() {
        let maybe = if f["applied"].as_bool() == Some(true) {
            ""
        } else {
            " (maybe, not applied)"
        };
        let _ = writeln!(
            out,
            "  face {} {}{maybe}; eyes {} (from {})",
            f["score"],
            f["face"].as_str().unwrap_or("-"),
            f["eyes"].as_str().unwrap_or("-"),
            f["eyes_from"].as_str().unwrap_or("-"),
        );
    }
}

/// One row per applied face (and eye bar with --eyes): `file,x,y,w,h,shape,effect,source,score`.
fn manifest_rows(rel: &str, r: &Report) -> Vec<[String; 9]> {
    let (w, h) = (r.found.width as f32, r.found.height as f32);
    let mut rows = Vec::new();
    for f in r.found.applied(r.options.threshold) {
        let score = format!("{:.3}", f.score);
        let mut push = |spec: Option<photodeid::region::RegionSpec>, source: &str| {
            if let Some(s) = spec {
                let shape = if s.shape == Shape::Ellipse {
                    "ellipse"
                } else {
                    "rect"
                };
                rows.push([
                    rel.to_string(),
                    s.x.to_string(),
                    s.y.to_string(),
                    s.w.to_string(),
                    s.h.to_string(),
                    shape.into(),
                    String::new(),
                    source.into(),
                    score.clone(),
                ]);
            }
        };
        push(f.region.to_spec(w, h, Shape::Ellipse), "detector:face");
        if r.options.eyes {
            push(f.eyes.bbox.to_spec(w, h, Shape::Rect), "detector:eyes");
        }
    }
    rows
}

fn manifest_csv(rows: &[[String; 9]]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "file", "x", "y", "w", "h", "shape", "effect", "source", "score",
    ])?;
    for r in rows {
        w.write_record(r)?;
    }
    w.into_inner().context("manifest")
}
