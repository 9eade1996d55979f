//! Sharded collage runs (`collage --cases DIR --run-dir RUN --shard K/N`):
//! the same guarantees as `clean --manifest`, with one chunk per case folder
//! (a collage needs all of its case's photos).
//!
//! ```text
//! RUN/cases.tsv            frozen case list (private: names the case folders), written once,
//!                          create-if-absent, so every shard and every resume agrees on it
//! RUN/chunks/case-C.map.csv     the case folder and its collage (private)
//! RUN/chunks/case-C.failed.tsv  why the case has no collage (private)
//! RUN/chunks/case-C.done.json   written last: counts and digests, no patient data
//! ```
//!
//! Chunk `C` is the case on line `C` of the plan's body: ids depend only on
//! the plan, never on the number of shards.

use super::chunk::{RunContext, RunDir};
use super::manifest::{escape, path_from_bytes, unescape};
use super::{Result, ShardError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The plan's file name in the run folder.
pub const PLAN_NAME: &str = "cases.tsv";
const HEADER: &str = "# photodeid cases v1";
/// Done-marker format version of a case chunk.
pub const CASE_DONE_FORMAT: u32 = 1;

/// The frozen list of case folders and their photos.
#[derive(Debug, Clone)]
pub struct CasePlan {
    pub path: PathBuf,
    pub root: PathBuf,
    pub digest: String,
    pub cases: Vec<PlannedCase>,
}

/// One case folder (a chunk) and its photos' file names, sorted bytewise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCase {
    pub name: Vec<u8>,
    pub photos: Vec<Vec<u8>>,
}

impl PlannedCase {
    pub fn folder(&self, root: &Path) -> PathBuf {
        root.join(path_from_bytes(self.name.clone()))
    }

    pub fn photo_paths(&self, root: &Path) -> Vec<PathBuf> {
        let folder = self.folder(root);
        self.photos
            .iter()
            .map(|p| folder.join(path_from_bytes(p.clone())))
            .collect()
    }
}

fn body(root: &Path, cases: &[PlannedCase]) -> String {
    let mut s = format!(
        "# root\t{}\n",
        escape(&crate::scan::os_bytes(root.as_os_str()))
    );
    for (c, case) in cases.iter().enumerate() {
        // A case with no photos keeps its line (an empty photo): it is accounted for.
        let none = [Vec::new()];
        let photos = if case.photos.is_empty() {
            &none[..]
        } else {
            &case.photos[..]
        };
        for p in photos {
            s.push_str(&format!("{c}\t{}\t{}\n", escape(&case.name), escape(p)));
        }
    }
    s
}

impl CasePlan {
    /// Number of chunks: one per case.
    pub fn chunks(&self) -> u64 {
        self.cases.len() as u64
    }

    /// `RUN/cases.tsv` if it exists (it must be of `root`), else the listing
    /// `cases` frozen there, create-if-absent: shards that start together
    /// all end up reading the one that was published first.
    pub fn freeze(run: &RunDir, root: &Path, cases: Vec<PlannedCase>) -> Result<CasePlan> {
        let path = run.path.join(PLAN_NAME);
        if !path.exists() {
            let mut cases = cases;
            cases.sort_by(|a, b| a.name.cmp(&b.name));
            for c in &mut cases {
                c.photos.sort();
            }
            let b = body(root, &cases);
            let text = format!(
                "{HEADER}\n# digest\t{}\n{b}",
                blake3::hash(b.as_bytes()).to_hex()
            );
            publish_once(&path, text.as_bytes())?;
        }
        let plan = CasePlan::open(&path)?;
        let same = |p: &Path| crate::watch::resolve(p);
        if same(&plan.root) != same(root) {
            return Err(ShardError::Mixed(format!(
                "{} was planned for another case folder: use another --run-dir",
                path.display()
            )));
        }
        Ok(plan)
    }

    /// Reads and checks a plan (its digest covers everything after it).
    pub fn open(path: &Path) -> Result<CasePlan> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ShardError::io("cannot read", path, e))?;
        let bad = |line: u64, reason: &str| ShardError::Format {
            path: path.to_path_buf(),
            line,
            reason: reason.into(),
        };
        let mut lines = text.split_inclusive('\n');
        if lines.next().map(str::trim_end) != Some(HEADER) {
            return Err(bad(1, "not a photodeid case plan"));
        }
        let digest = lines
            .next()
            .and_then(|l| l.trim_end().strip_prefix("# digest\t"))
            .ok_or_else(|| bad(2, "no digest line"))?
            .to_string();
        let rest: String = lines.collect();
        if blake3::hash(rest.as_bytes()).to_hex().as_str() != digest {
            return Err(bad(
                2,
                "the digest does not match: the plan was edited or cut short",
            ));
        }
        let mut root = None;
        let mut cases: Vec<PlannedCase> = Vec::new();
        for (i, l) in rest.lines().enumerate() {
            let n = i as u64 + 3;
            if let Some(r) = l.strip_prefix("# root\t") {
                root = Some(path_from_bytes(
                    unescape(r).ok_or_else(|| bad(n, "bad root"))?,
                ));
                continue;
            }
            let f: Vec<&str> = l.split('\t').collect();
            let [c, name, photo] = f[..] else {
                return Err(bad(n, "expected: chunk, case, photo"));
            };
            let c: usize = c.parse().map_err(|_| bad(n, "bad chunk id"))?;
            let (name, photo) = unescape(name)
                .zip(unescape(photo))
                .ok_or_else(|| bad(n, "bad escape"))?;
            if c == cases.len() {
                cases.push(PlannedCase {
                    name,
                    photos: Vec::new(),
                });
            } else if c + 1 != cases.len() || cases[c].name != name {
                return Err(bad(n, "chunk ids out of order"));
            }
            if !photo.is_empty() {
                cases[c].photos.push(photo);
            }
        }
        Ok(CasePlan {
            path: path.to_path_buf(),
            root: root.ok_or_else(|| bad(3, "no root line"))?,
            digest,
            cases,
        })
    }
}

/// Writes `path` once: temp file, fsync, then a link that fails if another
/// process published first (theirs is kept; both describe the same walk
/// or the later one is refused by its digest check elsewhere).
fn publish_once(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = super::manifest::parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".photodeid-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ShardError::io("cannot create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| ShardError::io("cannot write", path, e))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            crate::commit::sync_dir(dir);
            Ok(())
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ShardError::io("cannot publish", path, e.error)),
    }
}

/// A case chunk's done marker. No patient data: counts, the collage's
/// pseudonymous file name, digests, the key's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseDone {
    pub format: u32,
    pub chunk: u64,
    pub photos: u64,
    /// The collage's file name in OUT (a pseudonym); none when it failed.
    pub collage: Option<String>,
    pub failed: bool,
    pub plan_digest: String,
    pub options_digest: String,
    pub key_fingerprint: String,
    pub output: String,
    /// BLAKE3 of the chunk's map or failed file.
    pub side_digest: String,
    pub tool_version: String,
}

impl CaseDone {
    fn context(&self) -> RunContext {
        RunContext {
            manifest_digest: self.plan_digest.clone(),
            options_digest: self.options_digest.clone(),
            key_fingerprint: self.key_fingerprint.clone(),
            output: self.output.clone(),
        }
    }

    /// Why this marker does not belong to the run `ctx`, if it does not.
    pub fn mismatch(&self, ctx: &RunContext) -> Option<String> {
        let c = self.chunk;
        let m = self.context();
        if m.manifest_digest != ctx.manifest_digest {
            Some(format!("chunk {c} was done from another case plan"))
        } else if m.key_fingerprint != ctx.key_fingerprint {
            Some(format!("chunk {c} was done with another name key"))
        } else if m != *ctx {
            Some(format!(
                "chunk {c} was done with other options, another output folder or another version"
            ))
        } else {
            None
        }
    }
}

/// How a case chunk ended.
pub enum CaseOutcome {
    /// The collage's path (in OUT) and its number of photos.
    Made { dest: PathBuf, photos: u64 },
    /// Why it has none (kept in the private failed file only).
    Failed { reason: String, photos: u64 },
}

fn file(run: &RunDir, chunk: u64, what: &str) -> PathBuf {
    run.path.join("chunks").join(format!("case-{chunk}.{what}"))
}

pub fn done_path(run: &RunDir, chunk: u64) -> PathBuf {
    file(run, chunk, "done.json")
}

/// The chunk's done marker, `None` when there is none.
pub fn read_done(run: &RunDir, chunk: u64) -> Result<Option<CaseDone>> {
    super::chunk::read_marker(done_path(run, chunk))
}

/// True when `chunk` has a done marker of this run (skip it). A marker of
/// another run is a refusal: mixing would make one map of two runs.
pub fn is_done(run: &RunDir, chunk: u64, ctx: &RunContext) -> Result<bool> {
    match read_done(run, chunk)? {
        Some(d) => match d.mismatch(ctx) {
            Some(why) => Err(ShardError::Mixed(format!(
                "{why}: use a new --run-dir, or remove {}",
                done_path(run, chunk).display()
            ))),
            None => Ok(true),
        },
        None => Ok(false),
    }
}

/// Publishes a finished chunk: its map or failed file, then its done
/// marker, each temp + fsync + rename.
pub fn finish(
    run: &RunDir,
    case_folder: &Path,
    chunk: u64,
    outcome: &CaseOutcome,
    ctx: &RunContext,
) -> Result<CaseDone> {
    let folder = crate::scan::os_bytes(case_folder.as_os_str());
    let (side_name, side, collage, photos, failed) = match outcome {
        CaseOutcome::Made { dest, photos } => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let dest_s = dest.to_string_lossy();
            w.write_record(["case", "collage"])
                .and_then(|_| w.write_record([&escape(&folder), dest_s.as_ref()]))
                .map_err(|e| ShardError::Invalid(format!("case map: {e}")))?;
            let bytes = w
                .into_inner()
                .map_err(|e| ShardError::Invalid(format!("case map: {e}")))?;
            let name = dest.file_name().map(|n| n.to_string_lossy().into_owned());
            ("map.csv", bytes, name, *photos, false)
        }
        CaseOutcome::Failed { reason, photos } => {
            let line = format!(
                "# case\treason\n{}\t{}\n",
                escape(&folder),
                super::chunk::one_line(reason)
            );
            ("failed.tsv", line.into_bytes(), None, *photos, true)
        }
    };
    // A retry that now ends the other way must not leave the old side file.
    let other = if failed { "map.csv" } else { "failed.tsv" };
    let _ = std::fs::remove_file(file(run, chunk, other));
    run.publish(&file(run, chunk, side_name), &side)?;
    let done = CaseDone {
        format: CASE_DONE_FORMAT,
        chunk,
        photos,
        collage,
        failed,
        plan_digest: ctx.manifest_digest.clone(),
        options_digest: ctx.options_digest.clone(),
        key_fingerprint: ctx.key_fingerprint.clone(),
        output: ctx.output.clone(),
        side_digest: blake3::hash(&side).to_hex().to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let json = serde_json::to_vec_pretty(&done)
        .map_err(|e| ShardError::Invalid(format!("done marker: {e}")))?;
    run.publish(&done_path(run, chunk), &json)?;
    Ok(done)
}

/// What merging a collage run found.
#[derive(Debug, Default)]
pub struct CaseMerged {
    pub chunks: u64,
    pub missing: Vec<u64>,
    /// (case folder, collage path) for every case with a collage, in plan order.
    pub rows: Vec<(String, String)>,
    /// (chunk, case folder, reason) for every case without one.
    pub failed: Vec<(u64, String, String)>,
    /// Collages the markers name that are not in OUT.
    pub missing_outputs: Vec<String>,
    /// Files in OUT no marker names.
    pub stray: Vec<PathBuf>,
    pub context: Option<RunContext>,
}

/// Accounts for every case of `plan`: done (a collage or a failure) once,
/// or missing. Mixed runs are refused; side files that do not match their
/// marker's digest count as missing (they are redone).
pub fn merge(plan: &CasePlan, run: &RunDir) -> Result<CaseMerged> {
    let mut m = CaseMerged {
        chunks: plan.chunks(),
        ..CaseMerged::default()
    };
    let mut named = std::collections::BTreeSet::new();
    for c in 0..plan.chunks() {
        let Some(d) = read_done(run, c)? else {
            m.missing.push(c);
            continue;
        };
        let ctx = d.context();
        match &m.context {
            None if ctx.manifest_digest != plan.digest => {
                return Err(ShardError::Mixed(format!(
                    "chunk {c} was done from another case plan"
                )))
            }
            None => m.context = Some(ctx),
            Some(first) => {
                if let Some(why) = d.mismatch(first) {
                    return Err(ShardError::Mixed(format!("{why} than chunk 0's")));
                }
            }
        }
        let side = file(run, c, if d.failed { "failed.tsv" } else { "map.csv" });
        let bytes = match std::fs::read(&side) {
            Ok(b) if blake3::hash(&b).to_hex().as_str() == d.side_digest => b,
            _ => {
                m.missing.push(c);
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let row = text.lines().nth(1).unwrap_or_default();
        if d.failed {
            let (case, reason) = row.split_once('\t').unwrap_or((row, ""));
            m.failed.push((c, case.to_string(), reason.to_string()));
        } else {
            let mut r = csv::Reader::from_reader(bytes.as_slice());
            let rec =
                r.records()
                    .next()
                    .and_then(|r| r.ok())
                    .ok_or_else(|| ShardError::Format {
                        path: side.clone(),
                        line: 2,
                        reason: "no row".into(),
                    })?;
            let (case, dest) = (rec.get(0).unwrap_or(""), rec.get(1).unwrap_or(""));
            if !Path::new(dest).is_file() {
                m.missing_outputs
                    .push(d.collage.clone().unwrap_or_default());
            }
            if let Some(n) = &d.collage {
                named.insert(n.clone());
            }
            m.rows.push((case.to_string(), dest.to_string()));
        }
    }
    if let Some(ctx) = &m.context {
        if let Ok(entries) = std::fs::read_dir(&ctx.output) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !named.contains(&name) {
                    m.stray.push(e.path());
                }
            }
        }
        m.stray.sort();
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, photos: &[&str]) -> PlannedCase {
        PlannedCase {
            name: name.as_bytes().to_vec(),
            photos: photos.iter().map(|p| p.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn a_plan_is_frozen_once_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::create(&d.path().join("run")).unwrap();
        let root = d.path().join("cases");
        let first = vec![case("B b", &["2.jpg", "1.jpg"]), case("A\tx", &["z.jpg"])];
        let p = CasePlan::freeze(&run, &root, first).unwrap();
        assert_eq!(p.chunks(), 2);
        assert_eq!(p.cases[0], case("A\tx", &["z.jpg"]));
        assert_eq!(p.cases[1], case("B b", &["1.jpg", "2.jpg"]));
        // A later shard with another listing gets the frozen one.
        let again = CasePlan::freeze(&run, &root, vec![case("C", &["1.jpg"])]).unwrap();
        assert_eq!(again.cases, p.cases);
        assert_eq!(again.digest, p.digest);
        // Another root is refused; an edited plan is refused.
        assert!(CasePlan::freeze(&run, &d.path().join("other"), Vec::new()).is_err());
        let text = std::fs::read_to_string(&p.path).unwrap();
        std::fs::write(&p.path, text.replace("z.jpg", "y.jpg")).unwrap();
        assert!(CasePlan::open(&p.path).is_err());
    }
}
