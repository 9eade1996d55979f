//! `merge`: proves a sharded run complete and writes its one map.
//!
//! Every chunk needs a done marker of the same manifest, options and key;
//! then, chunk by chunk in manifest order (memory bounded by one chunk plus
//! a 16-byte hash per output), every manifest line must appear exactly once
//! in its chunk's map or failed file, with the manifest's path, every mapped
//! output must exist, and the output folder must hold nothing else.

use super::chunk::{Done, RunContext, RunDir, CHUNK_MAP_HEADER};
use super::manifest::{self, Manifest};
use super::{Result, ShardError};
use crate::container::Limits;
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where merged rows go (the CLI writes the map and the failed list).
pub trait MergeSink {
    fn row(&mut self, original: &str, pseudonym: &str) -> Result<()>;
    fn failed(&mut self, line: u64, path: &str, reason: &str) -> Result<()>;
}

/// What `merge` found.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub chunks: u64,
    /// Chunks without a (consistent) done marker: resubmit exactly these.
    pub missing: Vec<u64>,
    /// Chunks whose side files disagree with their marker (their markers are
    /// removed, so they count as missing and are redone).
    pub inconsistent: Vec<(u64, String)>,
    pub mapped: u64,
    pub failed: u64,
    pub lossless: u64,
    pub reencoded: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Mapped outputs that are not in the output folder: how many, and the first few.
    pub missing_outputs: u64,
    pub missing_examples: Vec<String>,
    /// Files in the output folder that no map row names.
    pub stray: Vec<PathBuf>,
    /// Temporary files left by killed tasks, removed.
    pub temp_removed: u64,
    /// Whether the rows came out sorted as the single-machine map sorts them
    /// (false only for names that are not UTF-8); the CLI sorts them then.
    pub sorted: bool,
    pub context: Option<RunContext>,
}

impl Merged {
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.inconsistent.is_empty()
    }

    /// Complete, every output present and nothing stray.
    pub fn sound(&self) -> bool {
        self.complete() && self.missing_outputs == 0 && self.stray.is_empty()
    }
}

fn key_of(s: &str) -> [u8; 16] {
    blake3::hash(s.as_bytes()).as_bytes()[..16]
        .try_into()
        .expect("16 bytes")
}

/// Reads the done markers of all chunks: the ones present must agree with
/// each other and with the manifest (else [`ShardError::Mixed`]).
pub fn markers(
    manifest: &Manifest,
    run: &RunDir,
) -> Result<(Vec<Option<Done>>, Option<RunContext>)> {
    let mut ctx: Option<RunContext> = None;
    let mut out = Vec::with_capacity(manifest.chunks() as usize);
    for c in 0..manifest.chunks() {
        let d = run.read_done(c)?;
        if let Some(d) = &d {
            if d.manifest_digest != manifest.digest {
                return Err(ShardError::Mixed(format!(
                    "chunk {c} was done from another manifest than {} (digest {} instead of {})",
                    manifest.path.display(),
                    short(&d.manifest_digest),
                    short(&manifest.digest)
                )));
            }
            match &ctx {
                None => ctx = Some(d.context()),
                Some(x) => {
                    if let Some(why) = d.mismatch(x) {
                        return Err(ShardError::Mixed(format!(
                            "{why} than chunk {}: the run mixes keys or options; redo the odd chunks \
                             in a new run folder",
                            out.iter().position(Option::is_some).unwrap_or(0)
                        )));
                    }
                }
            }
        }
        out.push(d);
    }
    Ok((out, ctx))
}

fn short(d: &str) -> &str {
    &d[..d.len().min(12)]
}

/// Merges the run. Rows reach `sink` only once every chunk is present.
pub fn merge(manifest: &Manifest, run: &RunDir, sink: &mut dyn MergeSink) -> Result<Merged> {
    let (dones, ctx) = markers(manifest, run)?;
    let mut m = Merged {
        chunks: manifest.chunks(),
        sorted: true,
        context: ctx.clone(),
        ..Merged::default()
    };
    m.missing = dones
        .iter()
        .enumerate()
        .filter(|(_, d)| d.is_none())
        .map(|(c, _)| c as u64)
        .collect();
    if !m.missing.is_empty() {
        return Ok(m);
    }
    let mut outputs: HashSet<[u8; 16]> = HashSet::new();
    let mut last: Option<(String, String)> = None;
    for (c, d) in dones.iter().enumerate() {
        let c = c as u64;
        let d = d.as_ref().expect("all present");
        match read_chunk(manifest, run, c, d) {
            Ok(chunk) => {
                for (orig, pseudo) in &chunk.rows {
                    let row = (orig.clone(), pseudo.clone());
                    if last.as_ref().is_some_and(|l| row < *l) {
                        m.sorted = false;
                    }
                    if !Path::new(pseudo).is_file() {
                        m.missing_outputs += 1;
                        if m.missing_examples.len() < 10 {
                            m.missing_examples.push(pseudo.clone());
                        }
                    }
                    outputs.insert(key_of(pseudo));
                    sink.row(orig, pseudo)?;
                    last = Some(row);
                }
                for (line, path, reason) in &chunk.failed {
                    sink.failed(*line, path, reason)?;
                }
                m.mapped += chunk.rows.len() as u64;
                m.failed += chunk.failed.len() as u64;
                m.lossless += d.lossless;
                m.reencoded += d.reencoded;
                m.bytes_in += d.bytes_in;
                m.bytes_out += d.bytes_out;
            }
            Err(why) => m.inconsistent.push((c, why)),
        }
    }
    if !m.inconsistent.is_empty() {
        for (c, _) in &m.inconsistent {
            let p = run.done_path(*c);
            std::fs::remove_file(&p).map_err(|e| ShardError::io("cannot remove", &p, e))?;
            m.missing.push(*c);
        }
        return Ok(m);
    }
    if let Some(ctx) = &ctx {
        let out = Path::new(&ctx.output);
        if out.is_dir() {
            for e in walkdir::WalkDir::new(out).follow_links(false) {
                let e = e.map_err(|e| {
                    ShardError::io(
                        "cannot list",
                        e.path().unwrap_or(out).to_path_buf(),
                        e.into_io_error()
                            .unwrap_or_else(|| std::io::Error::other("loop")),
                    )
                })?;
                if e.file_type().is_dir() {
                    continue;
                }
                let name = e.file_name().to_string_lossy();
                if name.starts_with(".photodeid-") && name.ends_with(".tmp") {
                    // Every chunk is done: no attempt that could still rename it is unfinished.
                    std::fs::remove_file(e.path())
                        .map_err(|err| ShardError::io("cannot remove", e.path(), err))?;
                    m.temp_removed += 1;
                    continue;
                }
                if !outputs.contains(&key_of(&e.path().display().to_string())) {
                    m.stray.push(e.into_path());
                }
            }
        }
    }
    Ok(m)
}

struct ChunkRows {
    rows: Vec<(String, String)>,
    failed: Vec<(u64, String, String)>,
}

/// Reads and checks one chunk's side files against its marker and the manifest.
fn read_chunk(
    manifest: &Manifest,
    run: &RunDir,
    c: u64,
    d: &Done,
) -> std::result::Result<ChunkRows, String> {
    let (first, len) = manifest.chunk_range(c);
    if d.chunk != c || d.entries != len || d.first_line != manifest.line_of(first) {
        return Err(format!(
            "chunk {c}: its done marker describes another chunk"
        ));
    }
    let read = |what: &str, digest: &str| -> std::result::Result<Vec<u8>, String> {
        let p = run.chunk_file(c, what);
        let b = std::fs::read(&p).map_err(|e| format!("chunk {c}: cannot read {what}: {e}"))?;
        if blake3::hash(&b).to_hex().as_str() != digest {
            return Err(format!("chunk {c}: {what} does not match its done marker"));
        }
        Ok(b)
    };
    let map = read("map.csv", &d.map_digest)?;
    let failed = read("failed.tsv", &d.failed_digest)?;
    let entries = manifest
        .chunk_entries(c)
        .map_err(|e| format!("chunk {c}: {e}"))?;
    let mut seen = vec![false; len as usize];
    let mut slot = |line: u64| -> std::result::Result<usize, String> {
        let idx = line
            .checked_sub(manifest.header_lines + 1)
            .filter(|i| (first..first + len).contains(i))
            .ok_or_else(|| format!("chunk {c}: line {line} is not in this chunk"))?;
        let i = (idx - first) as usize;
        if std::mem::replace(&mut seen[i], true) {
            return Err(format!("chunk {c}: line {line} is accounted for twice"));
        }
        Ok(i)
    };
    let mut rows = Vec::new();
    let mut rdr = csv::ReaderBuilder::new().from_reader(map.as_slice());
    let header_ok = rdr
        .headers()
        .map(|h| h.iter().eq(CHUNK_MAP_HEADER))
        .unwrap_or(false);
    if !header_ok {
        return Err(format!("chunk {c}: map.csv has another header"));
    }
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("chunk {c}: map.csv: {e}"))?;
        let (Some(line), Some(orig), Some(pseudo)) = (rec.get(0), rec.get(1), rec.get(2)) else {
            return Err(format!("chunk {c}: map.csv row with missing fields"));
        };
        let line: u64 = line
            .parse()
            .map_err(|_| format!("chunk {c}: map.csv: bad line number"))?;
        let i = slot(line)?;
        let expected = entries[i].job(&manifest.roots).path.display().to_string();
        if orig != expected {
            return Err(format!(
                "chunk {c}: line {line} names another file than the manifest"
            ));
        }
        rows.push((orig.to_string(), pseudo.to_string()));
    }
    let text =
        String::from_utf8(failed).map_err(|_| format!("chunk {c}: failed.tsv is not UTF-8"))?;
    let mut fails = Vec::new();
    for l in text.lines() {
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let mut f = l.splitn(3, '\t');
        let (Some(line), Some(path), Some(reason)) = (f.next(), f.next(), f.next()) else {
            return Err(format!("chunk {c}: failed.tsv row with missing fields"));
        };
        let line: u64 = line
            .parse()
            .map_err(|_| format!("chunk {c}: failed.tsv: bad line number"))?;
        let i = slot(line)?;
        let expected = manifest::escape(&crate::scan::os_bytes(
            entries[i].job(&manifest.roots).path.as_os_str(),
        ));
        if path != expected {
            return Err(format!(
                "chunk {c}: line {line} names another file than the manifest"
            ));
        }
        fails.push((line, path.to_string(), reason.to_string()));
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(format!(
            "chunk {c}: line {} is not accounted for",
            manifest.line_of(first + i as u64)
        ));
    }
    if rows.len() as u64 != d.mapped || fails.len() as u64 != d.failed {
        return Err(format!("chunk {c}: counts differ from its done marker"));
    }
    Ok(ChunkRows {
        rows,
        failed: fails,
    })
}

/// A problem `--verify` found with one output.
#[derive(Debug, Clone)]
pub struct Problem {
    pub chunk: u64,
    pub line: u64,
    pub output: String,
    pub reason: String,
}

/// Re-audits the outputs of `chunks` with the same parser as `check`:
/// each must be present and carry nothing identifying.
pub fn verify(run: &RunDir, chunks: &[u64], limits: &Limits) -> Result<(u64, Vec<Problem>)> {
    let mut checked = 0u64;
    let mut problems = Vec::new();
    // One chunk's rows at a time: memory stays bounded whatever the run's size.
    for &c in chunks {
        let p = run.chunk_file(c, "map.csv");
        let mut rdr = csv::Reader::from_path(&p)
            .map_err(|e| ShardError::Invalid(format!("cannot read {}: {e}", p.display())))?;
        let mut rows = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| ShardError::Invalid(format!("{}: {e}", p.display())))?;
            let line = rec.get(0).and_then(|l| l.parse().ok()).unwrap_or(0);
            rows.push((line, rec.get(2).unwrap_or_default().to_string()));
        }
        checked += rows.len() as u64;
        problems.extend(
            rows.par_iter()
                .filter_map(|(line, out)| {
                    let why = match std::fs::read(out) {
                        Err(e) => Some(format!("cannot read: {e}")),
                        Ok(b) => match crate::pipeline::inspect(&b, None, limits) {
                            Err(e) => Some(format!("does not parse: {e}")),
                            Ok(p) if !p.inventory.is_clean() => {
                                Some(format!("still carries {}", p.inventory.summary()))
                            }
                            Ok(_) => None,
                        },
                    };
                    why.map(|reason| Problem {
                        chunk: c,
                        line: *line,
                        output: out.clone(),
                        reason,
                    })
                })
                .collect::<Vec<_>>(),
        );
    }
    Ok((checked, problems))
}
