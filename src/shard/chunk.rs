//! The run folder and the chunk runner.
//!
//! ```text
//! RUN/                      0700, never inside an output
//!   manifest.tsv            from `plan`
//!   chunks/C.map.csv        line,original,pseudonym   (private: names originals)
//!   chunks/C.failed.tsv     line, path, reason        (private)
//!   chunks/C.done.json      counts, digests, key fingerprint: no patient data; written last
//!   missing.txt             from `merge`, when chunks are missing
//! ```
//!
//! Every side file is written to a temporary file, fsynced and renamed. Their
//! content is a function of the chunk's inputs, key and options only (no
//! times, no host names, no cleaned-versus-up-to-date status), so when two
//! attempts of a chunk race, whichever rename lands last leaves the same bytes.

use super::manifest::{self, Entry, Manifest};
use super::{Result, ShardError};
use crate::commit::{self, WriteMode};
use crate::pipeline::{self, Destination, FileOutcome, FileSettings, Method};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Done-marker format version.
pub const DONE_FORMAT: u32 = 1;

/// Creates `dir` (and missing parents) owner-only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| ShardError::io("cannot create folder", dir, e))
}

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Opens `path`, creating it and its `chunks` folder (0700) when missing.
    pub fn create(path: &Path) -> Result<RunDir> {
        create_private_dir(&path.join("chunks"))?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing run folder.
    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.join("chunks").is_dir() {
            return Err(ShardError::Invalid(format!(
                "{} is not a run folder (no chunks/ inside): no shard has run there yet",
                path.display()
            )));
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    pub fn chunk_file(&self, chunk: u64, what: &str) -> PathBuf {
        self.path.join("chunks").join(format!("{chunk}.{what}"))
    }

    pub fn done_path(&self, chunk: u64) -> PathBuf {
        self.chunk_file(chunk, "done.json")
    }

    /// The chunk's done marker, `None` when there is none.
    pub fn read_done(&self, chunk: u64) -> Result<Option<Done>> {
        read_marker(self.done_path(chunk))
    }

    /// Writes a private run file: temporary file, fsync, rename, fsync of the folder.
    pub fn publish(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        commit::write_atomic(
            path,
            bytes,
            WriteMode {
                overwrite: true,
                sync: true,
            },
        )
        .map_err(|e| ShardError::Invalid(format!("cannot write {}: {e}", path.display())))
    }

    /// Publishes a chunk's side files in order, each written to a temporary
    /// file (0600), fsynced and renamed; the folder is fsynced once after the
    /// last (the done marker), so a marker never outlives what it describes.
    fn publish_chunk(&self, files: &[(PathBuf, &[u8])]) -> Result<()> {
        use std::io::Write;
        let dir = self.path.join("chunks");
        for (path, bytes) in files {
            let mut tmp = tempfile::Builder::new()
                .prefix(".photodeid-")
                .suffix(".tmp")
                .tempfile_in(&dir)
                .map_err(|e| ShardError::io("cannot create a temporary file in", &dir, e))?;
            tmp.write_all(bytes)
                .and_then(|_| tmp.as_file().sync_all())
                .map_err(|e| ShardError::io("cannot write", path, e))?;
            tmp.persist(path)
                .map_err(|e| ShardError::io("cannot publish", path, e.error))?;
        }
        commit::sync_dir(&dir);
        Ok(())
    }
}

/// What every chunk of one run must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub manifest_digest: String,
    /// Digest of everything that shapes the outputs (options, output folder, version).
    pub options_digest: String,
    pub key_fingerprint: String,
    /// The output folder as given (the map's pseudonym column starts with it).
    pub output: String,
}

/// A chunk's done marker. No patient data: counts, digests, the key's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    pub format: u32,
    pub chunk: u64,
    /// File line of the chunk's first entry, and its number of entries.
    pub first_line: u64,
    pub entries: u64,
    pub mapped: u64,
    pub failed: u64,
    pub lossless: u64,
    pub reencoded: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Identifying categories removed, and on how many files.
    pub categories: BTreeMap<String, u64>,
    pub manifest_digest: String,
    pub options_digest: String,
    pub key_fingerprint: String,
    pub output: String,
    /// BLAKE3 of the chunk's map and failed files, so a stray copy is caught.
    pub map_digest: String,
    pub failed_digest: String,
    pub tool_version: String,
}

impl Done {
    /// Why this marker does not belong to the run `ctx`, if it does not.
    pub fn mismatch(&self, ctx: &RunContext) -> Option<String> {
        let c = self.chunk;
        if self.manifest_digest != ctx.manifest_digest {
            Some(format!("chunk {c} was done from another manifest"))
        } else if self.key_fingerprint != ctx.key_fingerprint {
            Some(format!("chunk {c} was done with another name key"))
        } else if self.options_digest != ctx.options_digest || self.output != ctx.output {
            Some(format!(
                "chunk {c} was done with other options, another output folder or another version"
            ))
        } else {
            None
        }
    }

    pub fn context(&self) -> RunContext {
        RunContext {
            manifest_digest: self.manifest_digest.clone(),
            options_digest: self.options_digest.clone(),
            key_fingerprint: self.key_fingerprint.clone(),
            output: self.output.clone(),
        }
    }
}

/// The header of a chunk map (the merged map has the single-machine header).
pub const CHUNK_MAP_HEADER: [&str; 3] = ["line", "original", "pseudonym"];
/// The header line of a chunk's failed file.
pub const FAILED_HEADER: &str = "# line\tpath\treason\n";

/// A reason on one line of a TSV.
pub fn one_line(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// Told what happens, as it happens (the CLI prints from here).
pub trait Observer: Sync {
    /// A chunk with a matching done marker: not redone.
    fn skipped(&self, chunk: u64);
    /// One file is through; `line` is its manifest file line.
    fn file(&self, chunk: u64, line: u64, outcome: &FileOutcome);
    /// The chunk's side files and done marker are published.
    fn finished(&self, done: &Done);
    /// The chunk could not be finished (its files may be; it will be redone).
    fn chunk_failed(&self, chunk: u64, err: &ShardError);
}

/// Counts over the chunks of one process.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    pub done: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// Everything the chunk runner needs.
pub struct ChunkJob<'a> {
    pub manifest: &'a Manifest,
    pub run: &'a RunDir,
    pub dest: &'a Destination,
    pub settings: &'a FileSettings<'a>,
    pub ctx: &'a RunContext,
}

/// Checks the done markers of `chunks` against `ctx` before anything is
/// done: a run that mixes manifests, options or keys stops here.
pub fn check_markers(run: &RunDir, chunks: &[u64], ctx: &RunContext) -> Result<()> {
    for &c in chunks {
        if let Some(d) = run.read_done(c)? {
            if let Some(why) = d.mismatch(ctx) {
                return Err(ShardError::Mixed(format!(
                    "{why} (see {}); use a new run folder, or the same manifest, options and key",
                    run.done_path(c).display()
                )));
            }
        }
    }
    Ok(())
}

/// Runs `chunks` on `threads` threads: chunks side by side, their files in
/// parallel inside; a chunk with a matching done marker is skipped.
pub fn run_chunks(
    job: &ChunkJob,
    chunks: &[u64],
    threads: usize,
    obs: &dyn Observer,
) -> Result<Ran> {
    check_markers(job.run, chunks, job.ctx)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| ShardError::Invalid(format!("cannot start threads: {e}")))?;
    let results: Vec<Result<bool>> = pool.install(|| {
        chunks
            .par_iter()
            .with_max_len(1)
            .map(|&c| {
                let r = run_one(job, c, obs);
                if let Err(e) = &r {
                    obs.chunk_failed(c, e);
                }
                r
            })
            .collect()
    });
    let mut ran = Ran::default();
    for r in results {
        match r {
            Ok(true) => ran.done += 1,
            Ok(false) => ran.skipped += 1,
            Err(e) if e.is_refusal() => return Err(e),
            Err(_) => ran.failed += 1,
        }
    }
    Ok(ran)
}

enum LineResult {
    Mapped {
        original: String,
        output: String,
        method: Method,
        bytes_in: u64,
        bytes_out: u64,
        categories: Vec<&'static str>,
    },
    Failed {
        path: String,
        reason: String,
    },
}

/// Refuses a file that changed since the plan: the run must do what was planned.
fn unchanged(path: &Path, e: &Entry) -> crate::Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|err| crate::Error::Invalid(format!("cannot read: {err}")))?;
    if manifest::stamp(&meta) != (e.size, e.mtime_ns) {
        return Err(crate::Error::Invalid(
            "changed since the plan (size or modification time differs): plan again".into(),
        ));
    }
    Ok(())
}

/// One chunk: `Ok(false)` when it was done already.
fn run_one(job: &ChunkJob, c: u64, obs: &dyn Observer) -> Result<bool> {
    if let Some(d) = job.run.read_done(c)? {
        if let Some(why) = d.mismatch(job.ctx) {
            return Err(ShardError::Mixed(why));
        }
        obs.skipped(c);
        return Ok(false);
    }
    let m = job.manifest;
    let entries = m.chunk_entries(c)?;
    let results: Vec<(u64, LineResult)> = entries
        .par_iter()
        .with_max_len(1)
        .map(|e| {
            let j = e.job(&m.roots);
            let input = unchanged(&j.path, e)
                .and_then(|_| pipeline::read_input(&j.path, job.settings.max_file_bytes));
            let outcome = pipeline::process_input(&j, input, job.dest, job.settings);
            let line = m.line_of(e.index);
            obs.file(c, line, &outcome);
            let r = match (&outcome.result, &outcome.output) {
                (Ok(d), Some(out)) => LineResult::Mapped {
                    original: outcome.input.display().to_string(),
                    output: out.display().to_string(),
                    method: d.method,
                    bytes_in: d.bytes_in,
                    bytes_out: d.bytes_out,
                    categories: d.removed.categories().iter().map(|c| c.label()).collect(),
                },
                (Ok(_), None) => LineResult::Failed {
                    path: manifest::escape(&crate::scan::os_bytes(j.path.as_os_str())),
                    reason: "no output was named".into(),
                },
                (Err(err), _) => LineResult::Failed {
                    path: manifest::escape(&crate::scan::os_bytes(j.path.as_os_str())),
                    reason: one_line(&err.to_string()),
                },
            };
            (line, r)
        })
        .collect();
    let (first, len) = m.chunk_range(c);
    let mut done = Done {
        format: DONE_FORMAT,
        chunk: c,
        first_line: m.line_of(first),
        entries: len,
        mapped: 0,
        failed: 0,
        lossless: 0,
        reencoded: 0,
        bytes_in: 0,
        bytes_out: 0,
        categories: BTreeMap::new(),
        manifest_digest: job.ctx.manifest_digest.clone(),
        options_digest: job.ctx.options_digest.clone(),
        key_fingerprint: job.ctx.key_fingerprint.clone(),
        output: job.ctx.output.clone(),
        map_digest: String::new(),
        failed_digest: String::new(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut map = csv::Writer::from_writer(Vec::new());
    let mut failed = FAILED_HEADER.to_string();
    let csv_err = |e: csv::Error| ShardError::Invalid(format!("chunk {c} map: {e}"));
    map.write_record(CHUNK_MAP_HEADER).map_err(csv_err)?;
    for (line, r) in &results {
        match r {
            LineResult::Mapped {
                original,
                output,
                method,
                bytes_in,
                bytes_out,
                categories,
            } => {
                map.write_record([line.to_string().as_str(), original, output])
                    .map_err(csv_err)?;
                done.mapped += 1;
                match method {
                    Method::Lossless => done.lossless += 1,
                    Method::Reencoded => done.reencoded += 1,
                }
                done.bytes_in += bytes_in;
                done.bytes_out += bytes_out;
                for cat in categories {
                    *done.categories.entry((*cat).to_string()).or_default() += 1;
                }
            }
            LineResult::Failed { path, reason } => {
                failed.push_str(&format!("{line}\t{path}\t{reason}\n"));
                done.failed += 1;
            }
        }
    }
    let map = map
        .into_inner()
        .map_err(|e| ShardError::Invalid(format!("chunk {c} map: {e}")))?;
    done.map_digest = blake3::hash(&map).to_hex().to_string();
    done.failed_digest = blake3::hash(failed.as_bytes()).to_hex().to_string();
    let mut marker = serde_json::to_vec_pretty(&done).expect("serialisable");
    marker.push(b'\n');
    job.run.publish_chunk(&[
        (job.run.chunk_file(c, "map.csv"), &map),
        (job.run.chunk_file(c, "failed.tsv"), failed.as_bytes()),
        (job.run.done_path(c), &marker),
    ])?;
    obs.finished(&done);
    Ok(true)
}

/// A done marker (of a clean or a collage chunk) read back, `None` when
/// there is none.
pub fn read_marker<T: serde::de::DeserializeOwned>(p: PathBuf) -> Result<Option<T>> {
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ShardError::Format {
                path: p,
                line: e.line() as u64,
                reason: format!("not a done marker: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ShardError::io("cannot read", p, e)),
    }
}
