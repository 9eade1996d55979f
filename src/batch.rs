//! Many files in parallel: a rayon pool sized by `-j`, outcomes streamed to a
//! sink as they complete (nothing per-file is held, so memory stays flat
//! whatever the folder size), and a summary folded from them.

use crate::metadata::human_bytes;
use crate::pipeline::{process_scanned, Destination, FileOutcome, FileSettings, Method, Status};
use crate::scan::Job;
use rayon::prelude::*;
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// Counts over a batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub cleaned: u64,
    pub lossless: u64,
    pub reencoded: u64,
    pub would_clean: u64,
    pub up_to_date: u64,
    pub failed: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// With --faces/--eyes: photos where faces were found and covered, and
    /// photos where none was found (they need a person's look).
    pub faces_covered: u64,
    pub no_face_found: u64,
}

impl Summary {
    pub fn record(&mut self, outcome: &FileOutcome) {
        match &outcome.result {
            Err(_) => self.failed += 1,
            Ok(done) => {
                match done.status {
                    Status::Cleaned => self.cleaned += 1,
                    Status::WouldClean => self.would_clean += 1,
                    Status::UpToDate => self.up_to_date += 1,
                }
                if let Some(f) = &done.faces {
                    if f.applied() > 0 {
                        self.faces_covered += 1;
                    } else {
                        self.no_face_found += 1;
                    }
                }
                if done.status != Status::UpToDate {
                    match done.method {
                        Method::Lossless => self.lossless += 1,
                        Method::Reencoded => self.reencoded += 1,
                    }
                    self.bytes_in += done.bytes_in;
                    self.bytes_out += done.bytes_out;
                }
            }
        }
    }

    /// Records a failure that happened before processing (scan errors).
    pub fn record_failure(&mut self) {
        self.failed += 1;
    }

    pub fn any_failed(&self) -> bool {
        self.failed > 0
    }

    /// `12 photos cleaned, 3 already up to date, 1 failed`: the summary in a
    /// person's terms ([`Summary::render`] has the technical counts).
    pub fn render_plain(&self) -> String {
        let mut parts = Vec::new();
        let photos = |n: u64| {
            if n == 1 {
                "1 photo".to_string()
            } else {
                format!("{n} photos")
            }
        };
        if self.would_clean > 0 {
            parts.push(format!("{} would be cleaned", photos(self.would_clean)));
        } else if self.cleaned > 0 || self.up_to_date == 0 {
            parts.push(format!("{} cleaned", photos(self.cleaned)));
        }
        if self.up_to_date > 0 {
            parts.push(format!("{} already up to date", self.up_to_date));
        }
        parts.push(format!("{} failed", self.failed));
        let mut line = parts.join(", ");
        line.push_str(&self.faces_note());
        line
    }

    /// Never "anonymous": the detector proposes, a person checks.
    fn faces_note(&self) -> String {
        if self.faces_covered + self.no_face_found == 0 {
            return String::new();
        }
        format!(
            "; faces found and covered on {} photo(s), no face found on {} (check those \
             yourself; detection can miss faces, so look at every output before sharing)",
            self.faces_covered, self.no_face_found
        )
    }

    /// `12 cleaned (10 lossless, 2 re-encoded), 1 failed; 3.4 MB of metadata removed`
    pub fn render(&self) -> String {
        let mut parts = Vec::new();
        if self.would_clean > 0
            || self.cleaned == 0 && self.would_clean == 0 && self.up_to_date == 0
        {
            if self.would_clean > 0 {
                parts.push(format!(
                    "{} would be cleaned ({} lossless, {} re-encoded)",
                    self.would_clean, self.lossless, self.reencoded
                ));
            } else {
                parts.push("0 cleaned".to_string());
            }
        } else {
            parts.push(format!(
                "{} cleaned ({} lossless, {} re-encoded)",
                self.cleaned, self.lossless, self.reencoded
            ));
        }
        if self.up_to_date > 0 {
            parts.push(format!("{} already up to date", self.up_to_date));
        }
        parts.push(format!("{} failed", self.failed));
        let removed = self.bytes_in.saturating_sub(self.bytes_out);
        let mut line = format!("{}; {} removed", parts.join(", "), human_bytes(removed));
        line.push_str(&self.faces_note());
        line
    }
}

/// Where each job of a batch goes: one destination for all, or one per job
/// (the layout's places, see [`crate::layout::places`]).
pub enum Destinations<'a> {
    One(&'a Destination),
    Each(&'a [Destination]),
}

impl Destinations<'_> {
    fn get(&self, i: usize) -> &Destination {
        match self {
            Destinations::One(d) => d,
            Destinations::Each(v) => &v[i],
        }
    }
}

/// The pool of `threads` threads (0: one per core), built once and kept for
/// the next call with the same count: the layout's look at capture times and
/// the clean after it share their threads (each pool starts its own).
pub fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, rayon::ThreadPoolBuildError> {
    static POOL: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let mut kept = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((n, pool)) = kept.as_ref() {
        if *n == threads {
            return Ok(Arc::clone(pool));
        }
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?,
    );
    *kept = Some((threads, Arc::clone(&pool)));
    Ok(pool)
}

/// Runs `process_file` over `jobs` (the files of a scan: see
/// `pipeline::process_scanned`) on `threads` threads (0 = all cores) and
/// hands each outcome to `sink` as soon as it is done.
pub fn run(
    jobs: &[Job],
    dest: &Destination,
    settings: &FileSettings,
    threads: usize,
    sink: &(dyn Fn(FileOutcome) + Sync),
) -> Result<(), rayon::ThreadPoolBuildError> {
    run_to(jobs, &Destinations::One(dest), settings, threads, sink)
}

/// [`run`] with a destination per job (or one for all).
pub fn run_to(
    jobs: &[Job],
    dest: &Destinations,
    settings: &FileSettings,
    threads: usize,
    sink: &(dyn Fn(FileOutcome) + Sync),
) -> Result<(), rayon::ThreadPoolBuildError> {
    if let Destinations::Each(v) = dest {
        assert_eq!(v.len(), jobs.len(), "one destination per job");
    }
    if threads == 1 {
        for (i, job) in jobs.iter().enumerate() {
            sink(process_scanned(job, dest.get(i), settings));
        }
        return Ok(());
    }
    let pool = pool(threads)?;
    pool.install(|| {
        jobs.par_iter()
            .enumerate()
            .with_max_len(1)
            .for_each(|(i, job)| sink(process_scanned(job, dest.get(i), settings)))
    });
    Ok(())
}
