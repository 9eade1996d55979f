//! `plan`, `keygen`, `merge`, and `clean --manifest` / `--files-from`: the
//! thin CLI over [`photodeid::shard`]. In manifest runs stdout and stderr
//! carry chunk ids, manifest line numbers and pseudonyms only (scheduler job
//! logs are not private); original paths go to the chunk's failed file.

use super::args::{CleanArgs, CollageArgs, KeygenArgs, MergeArgs, PlanArgs, ShardArgs};
use super::common::{file_settings, refuse_inside, Keep, MAP_HEADER};
use super::{print_error, sanitize, show};
use anyhow::{bail, Context};
use photodeid::batch::Summary;
use photodeid::collage::case::{self, CaseOptions};
use photodeid::commit::{self, WriteMode};
use photodeid::pipeline::{Destination, FileOutcome, Status};
use photodeid::pseudonym::{self, KeyError, Naming};
use photodeid::shard::cases::{self, CaseOutcome, CasePlan, PlannedCase};
use photodeid::shard::chunk::{self, ChunkJob, Done, Observer, RunContext, RunDir};
use photodeid::shard::manifest::{self, Manifest};
use photodeid::shard::merge::{self, MergeSink};
use photodeid::shard::select::{self, Selection, ShardArg};
use photodeid::shard::{self as sh, ShardError};
use serde_json::json;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

fn say(quiet: bool, line: &str) {
    if !quiet {
        let _ = std::io::stderr()
            .lock()
            .write_all(format!("photodeid: {line}\n").as_bytes());
    }
}

/// `photodeid plan IN... -o RUN/manifest.tsv`
pub fn plan(a: PlanArgs) -> anyhow::Result<ExitCode> {
    for input in &a.inputs {
        if input.is_dir() {
            refuse_inside(&a.output, input, Keep::OutOfInbox, "the manifest")
                .map_err(|_| anyhow::anyhow!(
                    "the manifest {} is inside the input {}: it would list itself; write it elsewhere",
                    a.output.display(),
                    input.display()
                ))?;
        }
    }
    let mut errors = 0u64;
    let planned = manifest::plan(&a.inputs, &a.output, a.chunk_size, &mut |e| {
        errors += 1;
        print_error(&e);
    })
    .map_err(anyhow::Error::new)?;
    say(
        a.quiet,
        &format!(
            "planned {} files in {} chunk(s) of {} into {} (digest {}); {} could not be listed",
            planned.entries,
            planned.chunks,
            a.chunk_size,
            show(&a.output),
            &planned.digest[..16],
            errors
        ),
    );
    if !a.quiet && planned.chunks > 0 {
        say(
            false,
            &format!(
                "e.g. sbatch --array=0-{} ... clean --manifest {} --chunks $SLURM_ARRAY_TASK_ID, \
                 or any N shards with --shard K/N",
                planned.chunks - 1,
                show(&a.output)
            ),
        );
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `photodeid keygen FILE`
pub fn keygen(a: KeygenArgs) -> anyhow::Result<ExitCode> {
    if a.file.exists() {
        bail!(
            "{} exists already: a key is made once (replacing it would change every name)",
            a.file.display()
        );
    }
    let key = pseudonym::create_key(&a.file)
        .with_context(|| format!("cannot create name key {}", a.file.display()))?;
    say!(
        "photodeid: created name key {} (0600, fingerprint {}); keep it private, give every shard the same file",
        show(&a.file),
        sh::key_fingerprint(&key)
    );
    Ok(ExitCode::SUCCESS)
}

/// The key of a sharded or list run: it must exist (N shards creating
/// their own would make N different keys).
fn existing_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    match pseudonym::load_key(path) {
        Ok(k) => Ok(k),
        Err(KeyError::Missing) => bail!(
            "name key {} does not exist: sharded and list runs never create one (shards starting \
             together would each make their own); create it once with `photodeid keygen {}`",
            path.display(),
            path.display()
        ),
        Err(KeyError::Other(e)) => Err(e).with_context(|| format!("name key {}", path.display())),
    }
}

/// The digest of everything that shapes a collage run's outputs: the flags
/// (less those that only pick this process's share or its verbosity) and
/// the contents of the files they name.
pub fn collage_options_digest(a: &mut CollageArgs) -> String {
    let shard = a.shard.take();
    let count = a.shard_count.take();
    let quiet = std::mem::take(&mut a.quiet);
    let mut h = blake3::Hasher::new();
    h.update(b"photodeid collage options v1\n");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(format!("\n{a:?}\n").as_bytes());
    let files = [
        &a.region.regions_file,
        &a.framing,
        &a.style,
        &a.logo,
        &a.consent,
    ];
    for f in files.into_iter().flatten() {
        h.update(blake3::hash(&std::fs::read(f).unwrap_or_default()).as_bytes());
    }
    (a.shard, a.shard_count, a.quiet) = (shard, count, quiet);
    h.finalize().to_hex().to_string()
}

/// `collage --cases DIR --run-dir RUN [--shard K/N|auto]`: one chunk per
/// case of the frozen RUN/cases.tsv; a chunk with a done marker of this run
/// is skipped (a failed one is redone). Logs carry chunk ids and
/// pseudonyms only: case folder names are patient names.
pub fn collage_cases(
    a: &CollageArgs,
    dir: &Path,
    opts: &CaseOptions,
    write: WriteMode,
    options_digest: String,
) -> anyhow::Result<ExitCode> {
    let run_path = a.run_dir.clone().expect("run mode");
    refuse_inside(
        &run_path.join("chunks"),
        &a.output,
        Keep::OutOfOutput,
        "--run-dir",
    )?;
    if let Some(m) = &a.map {
        bail!(
            "--map {} in a sharded run: each case chunk writes its own map in the run folder; \
             `photodeid merge --run-dir RUN --map FILE` writes the one map",
            m.display()
        );
    }
    let (naming, fingerprint) = match &a.name_key {
        Some(k) => {
            refuse_inside(k, &a.output, Keep::OutOfOutput, "--name-key")?;
            let key = existing_key(k)?;
            (Naming::Keyed(key), sh::key_fingerprint(&key))
        }
        None => bail!(
            "a sharded run needs --name-key FILE (create it once with `photodeid keygen FILE`): \
             random names would differ between attempts of a case"
        ),
    };
    let run = RunDir::create(&run_path).map_err(anyhow::Error::new)?;
    let plan_path = run.path.join(cases::PLAN_NAME);
    let listing = if plan_path.exists() {
        Vec::new() // frozen already: not walked again
    } else {
        list_cases(dir, &a.output)?
    };
    let plan = CasePlan::freeze(&run, dir, listing).map_err(anyhow::Error::new)?;
    if plan.cases.is_empty() {
        bail!(
            "{}: no case folders in it (one subfolder per case)",
            dir.display()
        );
    }
    // A typo must never leave a face unredacted: every row matches some photo of the plan.
    let rels: Vec<String> = plan
        .cases
        .iter()
        .flat_map(|c| c.photo_paths(&plan.root))
        .map(|p| case::manifest_name(&p, Some(&plan.root)))
        .collect();
    if let Some(row) = opts
        .regions
        .manifest
        .iter()
        .find(|row| !rels.iter().any(|r| row.matches(r)))
    {
        bail!(
            "regions file line {} matches no photo of the case plan (names are case-sensitive); \
             nothing written",
            row.line
        );
    }
    let ctx = RunContext {
        manifest_digest: plan.digest.clone(),
        options_digest,
        key_fingerprint: fingerprint,
        output: a.output.display().to_string(),
    };
    let sel = selection(a.shard, a.shard_count, None, a.quiet)?;
    let chunks = sel.chunks(plan.chunks()).map_err(anyhow::Error::new)?;
    say(
        a.quiet,
        &format!(
            "case plan {}: {} case(s); this process: {} chunk(s)",
            &plan.digest[..16],
            plan.chunks(),
            chunks.len()
        ),
    );
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create output folder {}", a.output.display()))?;
    let (mut made, mut skipped, mut failed) = (0, 0, 0);
    for c in chunks {
        let planned = &plan.cases[c as usize];
        if let Some(d) = cases::read_done(&run, c).map_err(anyhow::Error::new)? {
            if let Some(why) = d.mismatch(&ctx) {
                return Err(anyhow::Error::new(ShardError::Mixed(format!(
                    "{why}: use a new --run-dir, or remove {}",
                    show(&cases::done_path(&run, c))
                ))));
            }
            if !d.failed {
                say(
                    a.quiet,
                    &format!("chunk {c}: done already (its done marker matches), skipped"),
                );
                skipped += 1;
                continue;
            }
        }
        let folder = planned.folder(&plan.root);
        let photos = planned.photo_paths(&plan.root);
        let n = photos.len() as u64;
        let outcome = match case::run_case_photos(&folder, &photos, &a.output, &naming, opts, write)
        {
            Ok(done) => {
                if !a.quiet {
                    let what = if done.up_to_date {
                        "up to date"
                    } else {
                        "collage"
                    };
                    let _ = writeln!(
                        std::io::stdout().lock(),
                        "chunk {c}: {}: {what} of {} photos",
                        show(&done.dest),
                        done.photos
                    );
                }
                made += 1;
                CaseOutcome::Made {
                    dest: done.dest,
                    photos: done.photos as u64,
                }
            }
            Err(e) => {
                failed += 1;
                // The reason may name the case: it goes to the private failed file only.
                let l = format!(
                    "photodeid: chunk {c}: failed (the reason is in {})\n",
                    show(&run.path.join("chunks").join(format!("case-{c}.failed.tsv")))
                );
                let _ = std::io::stderr().lock().write_all(l.as_bytes());
                CaseOutcome::Failed {
                    reason: e.to_string(),
                    photos: n,
                }
            }
        };
        cases::finish(&run, &folder, c, &outcome, &ctx).map_err(anyhow::Error::new)?;
    }
    say(
        a.quiet,
        &format!(
            "chunks: {made} collage(s) made, {skipped} skipped (done before), {failed} failed"
        ),
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The case folders and their photos, as a single-machine run lists them.
fn list_cases(dir: &Path, output: &Path) -> anyhow::Result<Vec<PlannedCase>> {
    let bytes =
        |p: &Path| photodeid::scan::os_bytes(p.file_name().unwrap_or_default()).into_owned();
    let mut out = Vec::new();
    for c in
        case::list_cases(dir, output).with_context(|| format!("cannot read {}", dir.display()))?
    {
        // An unreadable case folder is planned with no photos: it then fails, and is accounted for.
        let photos = case::list_photos(&c).unwrap_or_default();
        out.push(PlannedCase {
            name: bytes(&c),
            photos: photos.iter().map(|p| bytes(p)).collect(),
        });
    }
    Ok(out)
}

/// `merge` of a collage run: every case of RUN/cases.tsv accounted for.
fn merge_cases(a: &MergeArgs, run: &RunDir) -> anyhow::Result<ExitCode> {
    let plan = CasePlan::open(&run.path.join(cases::PLAN_NAME)).map_err(anyhow::Error::new)?;
    let (map_path, overwrite) = match &a.map {
        Some(m) => (m.clone(), a.overwrite),
        None => (a.run_dir.join("map.csv"), true),
    };
    if !overwrite && map_path.exists() {
        bail!(
            "--map {} exists already; choose a new file, or --overwrite",
            map_path.display()
        );
    }
    let m = cases::merge(&plan, run).map_err(anyhow::Error::new)?;
    let missing_txt = a.run_dir.join("missing.txt");
    if !report_missing(
        run,
        &missing_txt,
        &m.missing,
        m.chunks,
        "case chunk(s)",
        "collage --cases ... --shard ...",
    )? {
        return Ok(ExitCode::from(1));
    }
    if let Some(ctx) = &m.context {
        refuse_inside(
            &map_path,
            Path::new(&ctx.output),
            Keep::OutOfOutput,
            "--map",
        )?;
    }
    let mut map = csv::Writer::from_writer(private_temp(manifest::parent_dir(&map_path))?);
    map.write_record(MAP_HEADER)?;
    for (case, dest) in &m.rows {
        let case = manifest::unescape(case)
            .map(manifest::path_from_bytes)
            .unwrap_or_default();
        map.write_record([case.to_string_lossy().as_ref(), dest.as_str()])?;
    }
    let map_tmp = map
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the map: {e}"))?;
    persist(map_tmp, &map_path, overwrite)?;
    let mut failed_tmp = private_temp(&a.run_dir)?;
    failed_tmp.write_all(b"# chunk\tcase\treason\n")?;
    for (c, case, reason) in &m.failed {
        writeln!(failed_tmp, "{c}\t{case}\t{reason}")?;
    }
    persist(failed_tmp, &a.run_dir.join("failed.tsv"), true)?;
    say(
        a.quiet,
        &format!(
            "merged {} case chunk(s): {} collage(s), {} failed{}; map: {}",
            m.chunks,
            m.rows.len(),
            m.failed.len(),
            if m.failed.is_empty() {
                String::new()
            } else {
                format!(" (reasons in {})", show(&a.run_dir.join("failed.tsv")))
            },
            show(&map_path)
        ),
    );
    let mut sound = true;
    if !m.missing_outputs.is_empty() {
        sound = false;
        say!(
            "photodeid: {} mapped collage(s) are missing from the output folder, e.g. {}",
            m.missing_outputs.len(),
            sanitize(&m.missing_outputs[0])
        );
    }
    if !m.stray.is_empty() {
        sound = false;
        report_stray(run, &a.run_dir, &m.stray)?;
    }
    Ok(if sound {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `clean --files-from FILE|-`: the listed paths become the inputs.
/// Chunks without a done marker: listed in Slurm array syntax in
/// `missing_txt` and on stderr with the line to resubmit them
/// (`resubmit`); false then. When none is missing, an old `missing_txt`
/// goes and it is true.
fn report_missing(
    run: &RunDir,
    missing_txt: &Path,
    missing: &[u64],
    chunks: u64,
    what: &str,
    resubmit: &str,
) -> anyhow::Result<bool> {
    if missing.is_empty() {
        if missing_txt.exists() {
            std::fs::remove_file(missing_txt)
                .with_context(|| format!("cannot remove {}", missing_txt.display()))?;
        }
        return Ok(true);
    }
    let list = select::format_ranges(missing.iter().copied());
    run.publish(missing_txt, format!("{list}\n").as_bytes())
        .map_err(anyhow::Error::new)?;
    say!(
        "photodeid: incomplete: {} of {chunks} {what} missing: {list} (also in {}); resubmit \
         exactly these, e.g. sbatch --array={list} ... {resubmit}",
        missing.len(),
        show(missing_txt)
    );
    Ok(false)
}

/// Files in the output folder that no map row accounts for (a clean or a
/// collage run): listed in `RUN/stray.txt`, the count and one example on stderr.
fn report_stray(run: &RunDir, run_dir: &Path, stray: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let list: String = stray.iter().map(|p| format!("{}\n", p.display())).collect();
    let stray_txt = run_dir.join("stray.txt");
    run.publish(&stray_txt, list.as_bytes())
        .map_err(anyhow::Error::new)?;
    say!(
        "photodeid: {} file(s) in the output folder are not in the map, e.g. {} (all in {})",
        stray.len(),
        show(&stray[0]),
        show(&stray_txt)
    );
    Ok(())
}

pub fn read_files_from(mut a: CleanArgs) -> anyhow::Result<CleanArgs> {
    let Some(src) = a.sharding.files_from.clone() else {
        return Ok(a);
    };
    if let Some(k) = &a.cleaning.name_key {
        existing_key(k)?;
    }
    let mut bytes = Vec::new();
    if src.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("cannot read the file list from stdin")?;
    } else {
        bytes = std::fs::read(&src)
            .with_context(|| format!("cannot read the file list {}", src.display()))?;
    }
    let sep = if a.sharding.null { b'\0' } else { b'\n' };
    for item in bytes.split(|&b| b == sep) {
        let item = if a.sharding.null {
            item
        } else {
            item.strip_suffix(b"\r").unwrap_or(item)
        };
        if !item.is_empty() {
            a.inputs.push(manifest::path_from_bytes(item.to_vec()));
        }
    }
    if a.inputs.is_empty() {
        bail!("the file list {} names no file", src.display());
    }
    if a.threads == 0 {
        a.threads = sh::granted_cpus(&sh::process_env);
    }
    Ok(a)
}

/// Everything that shapes the outputs, as one digest: every `clean` option
/// except those that only change where logs and run files go (new options
/// are included automatically, which only makes the check stricter).
fn options_digest(a: &mut CleanArgs, regions: Option<&[u8]>) -> String {
    let inputs = std::mem::take(&mut a.inputs);
    let threads = std::mem::take(&mut a.threads);
    let quiet = std::mem::take(&mut a.quiet);
    let json = std::mem::take(&mut a.json);
    let map = a.map.take();
    let sync = std::mem::take(&mut a.sync);
    let key = a.cleaning.name_key.take();
    let rfile = a.cleaning.region.regions_file.take();
    let sharding = std::mem::replace(
        &mut a.sharding,
        ShardArgs {
            manifest: None,
            run_dir: None,
            shard: None,
            shard_count: None,
            chunks: None,
            files_from: None,
            null: false,
        },
    );
    let mut h = blake3::Hasher::new();
    h.update(b"photodeid options v1\n");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(format!("\n{a:?}\n").as_bytes());
    if let Some(r) = regions {
        h.update(blake3::hash(r).as_bytes());
    }
    (a.inputs, a.threads, a.quiet, a.json, a.map, a.sync) =
        (inputs, threads, quiet, json, map, sync);
    a.cleaning.name_key = key;
    a.cleaning.region.regions_file = rfile;
    a.sharding = sharding;
    h.finalize().to_hex().to_string()
}

struct Printer {
    quiet: bool,
    json: bool,
    summary: Mutex<Summary>,
}

impl Printer {
    fn line(&self, l: &str) {
        say(self.quiet, l);
    }
}

impl Observer for Printer {
    fn skipped(&self, c: u64) {
        self.line(&format!(
            "chunk {c}: done already (its done marker matches), skipped"
        ));
    }

    fn file(&self, c: u64, line: u64, o: &FileOutcome) {
        self.summary
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(o);
        let out = o.output.as_deref().map(show).unwrap_or_default();
        match &o.result {
            Err(e) => {
                // The reason only: the path is in the chunk's private failed file.
                let reason = sanitize(&chunk::one_line(&e.to_string()));
                let l = format!("photodeid: chunk {c} line {line}: failed: {reason}\n");
                let _ = std::io::stderr().lock().write_all(l.as_bytes());
                if self.json {
                    out!(
                        "{}",
                        json!({"chunk": c, "line": line, "status": "failed", "error": e.to_string()})
                    );
                }
            }
            Ok(d) => {
                if !self.quiet && !self.json {
                    for w in &d.warnings {
                        self.line(&format!(
                            "chunk {c} line {line}: {out}: warning: {}",
                            sanitize(w)
                        ));
                    }
                }
                if self.json {
                    out!(
                        "{}",
                        json!({
                            "chunk": c, "line": line, "status": d.status, "output": o.output,
                            "format": d.format, "method": d.method,
                            "removed": d.removed.categories(),
                            "bytes_in": d.bytes_in, "bytes_out": d.bytes_out,
                        })
                    );
                } else if !self.quiet {
                    let method = match d.method {
                        photodeid::Method::Lossless => "lossless",
                        photodeid::Method::Reencoded => "re-encoded",
                    };
                    let what = match d.status {
                        Status::UpToDate => "up to date".to_string(),
                        _ => format!(
                            "{method}, removed {} ({})",
                            d.removed.summary(),
                            photodeid::metadata::human_bytes(
                                d.bytes_in.saturating_sub(d.bytes_out)
                            )
                        ),
                    };
                    let _ = writeln!(
                        std::io::stdout().lock(),
                        "chunk {c} line {line}: {out}: {what}"
                    );
                }
            }
        }
    }

    fn finished(&self, d: &Done) {
        self.line(&format!(
            "chunk {}: done ({} mapped, {} failed)",
            d.chunk, d.mapped, d.failed
        ));
    }

    fn chunk_failed(&self, c: u64, e: &ShardError) {
        let l = format!(
            "photodeid: chunk {c}: not finished, it will be redone: {}\n",
            sanitize(&e.to_string())
        );
        let _ = std::io::stderr().lock().write_all(l.as_bytes());
    }
}

/// The selection of `--shard` / `--chunks` (logged when it comes from the environment).
fn selection(
    shard: Option<ShardArg>,
    count: Option<u64>,
    chunks: Option<&super::args::ChunkList>,
    quiet: bool,
) -> anyhow::Result<Selection> {
    Ok(match (shard, chunks) {
        (Some(ShardArg::Fixed { k, n }), _) => {
            if count.is_some_and(|c| c != n) {
                bail!(
                    "--shard {k}/{n} and --shard-count {} disagree",
                    count.unwrap_or(0)
                );
            }
            Selection::Shard { k, n }
        }
        (Some(ShardArg::Auto), _) => {
            let s = select::from_env(&sh::process_env, count).map_err(anyhow::Error::new)?;
            say(quiet, &format!("shard {}/{} (from {})", s.k, s.n, s.source));
            Selection::Shard { k: s.k, n: s.n }
        }
        (None, Some(list)) => Selection::Chunks(list.0.clone()),
        (None, None) => Selection::All,
    })
}

/// `clean --manifest RUN/manifest.tsv [--run-dir RUN] [--shard K/N|auto | --chunks LIST]`
pub fn clean_manifest(mut a: CleanArgs) -> anyhow::Result<ExitCode> {
    let manifest_path = a.sharding.manifest.clone().expect("manifest mode");
    let run_path = a
        .sharding
        .run_dir
        .clone()
        .unwrap_or_else(|| manifest::parent_dir(&manifest_path).to_path_buf());
    let out_dir = a.output.clone();
    refuse_inside(&manifest_path, &out_dir, Keep::OutOfOutput, "--manifest")?;
    refuse_inside(
        &run_path.join("chunks"),
        &out_dir,
        Keep::OutOfOutput,
        "--run-dir",
    )?;
    if let Some(m) = &a.map {
        bail!(
            "--map {} in a sharded run: each chunk writes its own map in the run folder; \
             `photodeid merge --run-dir RUN --map FILE` writes the one map",
            m.display()
        );
    }
    let c = &a.cleaning;
    super::common::check_faces_available(&c.region)?;
    let (naming, fingerprint) = match (&c.name_key, c.keep_names) {
        (Some(k), _) => {
            refuse_inside(k, &out_dir, Keep::OutOfOutput, "--name-key")?;
            let key = existing_key(k)?;
            (Naming::Keyed(key), sh::key_fingerprint(&key))
        }
        (None, true) => (Naming::Keep, "keep-names".to_string()),
        (None, false) => bail!(
            "a sharded run needs --name-key FILE (create it once with `photodeid keygen FILE`): \
             random names would differ between attempts of a chunk"
        ),
    };
    let manifest = Manifest::open(&manifest_path).map_err(anyhow::Error::new)?;
    let out_abs = photodeid::watch::resolve(&out_dir);
    for r in &manifest.roots {
        let root = photodeid::watch::resolve(&r.path);
        if out_abs.starts_with(&root) {
            bail!(
                "the output folder {} is inside root {} of the plan: outputs would mix with the \
                 originals; choose an output folder outside every input",
                out_dir.display(),
                r.path.display()
            );
        }
    }
    let regions_bytes = match &c.region.regions_file {
        Some(p) => {
            Some(std::fs::read(p).with_context(|| format!("cannot read regions {}", p.display()))?)
        }
        None => None,
    };
    let rows = match &c.region.regions_file {
        Some(p) => photodeid::region::read_manifest(p).map_err(|e| anyhow::anyhow!(e))?,
        None => Vec::new(),
    };
    if !rows.is_empty() {
        // A typo must never leave a face unredacted: every row must match
        // some file of the whole plan (not only this shard's).
        let mut matched = vec![false; rows.len()];
        for ch in 0..manifest.chunks() {
            for e in manifest.chunk_entries(ch).map_err(anyhow::Error::new)? {
                let rel = e.relative.to_string_lossy();
                for (i, row) in rows.iter().enumerate() {
                    matched[i] = matched[i] || row.matches(&rel);
                }
            }
        }
        if let Some(i) = matched.iter().position(|m| !m) {
            bail!(
                "regions file line {} matches no file of the plan (names are case-sensitive); \
                 nothing written",
                rows[i].line
            );
        }
    }
    let sel = selection(
        a.sharding.shard,
        a.sharding.shard_count,
        a.sharding.chunks.as_ref(),
        a.quiet,
    )?;
    let chunks = sel.chunks(manifest.chunks()).map_err(anyhow::Error::new)?;
    let threads = if a.threads == 0 {
        sh::granted_cpus(&sh::process_env)
    } else {
        a.threads
    };
    let ctx = RunContext {
        manifest_digest: manifest.digest.clone(),
        options_digest: options_digest(&mut a, regions_bytes.as_deref()),
        key_fingerprint: fingerprint,
        output: out_dir.display().to_string(),
    };
    say(
        a.quiet,
        &format!(
            "manifest {}: {} files in {} chunk(s); this process: {} chunk(s), {threads} thread(s)",
            &manifest.digest[..16],
            manifest.entries,
            manifest.chunks(),
            chunks.len()
        ),
    );
    let run = RunDir::create(&run_path).map_err(anyhow::Error::new)?;
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create output folder {}", out_dir.display()))?;
    let mut settings = file_settings(&a.cleaning, rows);
    settings.write = WriteMode {
        overwrite: a.overwrite,
        sync: a.sync,
    };
    let dest = Destination::Folder {
        dir: out_dir.clone(),
        naming,
    };
    let printer = Printer {
        quiet: a.quiet,
        json: a.json,
        summary: Mutex::new(Summary::default()),
    };
    let job = ChunkJob {
        manifest: &manifest,
        run: &run,
        dest: &dest,
        settings: &settings,
        ctx: &ctx,
    };
    let ran = chunk::run_chunks(&job, &chunks, threads, &printer).map_err(anyhow::Error::new)?;
    let summary = printer
        .summary
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    if a.json {
        out!(
            "{}",
            json!({"summary": summary, "chunks": {"done": ran.done, "skipped": ran.skipped, "failed": ran.failed}})
        );
    }
    say(
        a.quiet,
        &format!(
            "{}; chunks: {} done, {} skipped (done before), {} not finished",
            summary.render(),
            ran.done,
            ran.skipped,
            ran.failed
        ),
    );
    Ok(if summary.any_failed() || ran.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Streams merged rows into a temporary map and a temporary failed list.
struct Sink {
    map: csv::Writer<std::io::BufWriter<tempfile::NamedTempFile>>,
    failed: std::io::BufWriter<tempfile::NamedTempFile>,
}

fn sink_err(what: &str, e: impl std::fmt::Display) -> ShardError {
    ShardError::Invalid(format!("cannot write {what}: {e}"))
}

impl MergeSink for Sink {
    fn row(&mut self, original: &str, pseudonym: &str) -> sh::Result<()> {
        self.map
            .write_record([original, pseudonym])
            .map_err(|e| sink_err("the map", e))
    }

    fn failed(&mut self, line: u64, path: &str, reason: &str) -> sh::Result<()> {
        writeln!(self.failed, "{line}\t{path}\t{reason}").map_err(|e| sink_err("failed.tsv", e))
    }
}

fn private_temp(dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".photodeid-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))
}

fn persist(tmp: tempfile::NamedTempFile, dest: &Path, overwrite: bool) -> anyhow::Result<()> {
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot write {}", dest.display()))?;
    if overwrite {
        tmp.persist(dest).map(|_| ()).map_err(|e| e.error)
    } else {
        tmp.persist_noclobber(dest).map(|_| ()).map_err(|e| e.error)
    }
    .with_context(|| format!("cannot write {}", dest.display()))?;
    commit::sync_dir(manifest::parent_dir(dest));
    Ok(())
}

/// `photodeid merge --run-dir RUN [--map FILE] [--verify]`
pub fn merge(a: MergeArgs) -> anyhow::Result<ExitCode> {
    let run = RunDir::open(&a.run_dir).map_err(anyhow::Error::new)?;
    let collage_run = a.manifest.is_none()
        && run.path.join(cases::PLAN_NAME).exists()
        && !run.path.join("manifest.tsv").exists();
    if collage_run {
        if a.verify {
            bail!(
                "--verify re-audits a clean run; a collage run's merge checks its collages exist"
            );
        }
        return merge_cases(&a, &run);
    }
    let manifest_path = a
        .manifest
        .clone()
        .unwrap_or_else(|| a.run_dir.join("manifest.tsv"));
    let manifest = Manifest::open(&manifest_path).map_err(anyhow::Error::new)?;
    let threads = if a.threads == 0 {
        sh::granted_cpus(&sh::process_env)
    } else {
        a.threads
    };
    if a.verify && (a.shard.is_some() || a.chunks.is_some()) {
        // A share of the re-audit only: no map, no completeness verdict.
        let sel = selection(a.shard, a.shard_count, a.chunks.as_ref(), a.quiet)?;
        let chunks = sel.chunks(manifest.chunks()).map_err(anyhow::Error::new)?;
        return verify(&run, &chunks, threads, a.quiet);
    }
    let (map_path, overwrite) = match &a.map {
        Some(m) => (m.clone(), a.overwrite),
        None => (a.run_dir.join("map.csv"), true),
    };
    if !overwrite && map_path.exists() {
        bail!(
            "--map {} exists already; choose a new file, or --overwrite",
            map_path.display()
        );
    }
    let (_, ctx) = merge::markers(&manifest, &run).map_err(anyhow::Error::new)?;
    if let Some(ctx) = &ctx {
        refuse_inside(
            &map_path,
            Path::new(&ctx.output),
            Keep::OutOfOutput,
            "--map",
        )?;
    }
    let map_tmp = private_temp(manifest::parent_dir(&map_path))?;
    let failed_tmp = private_temp(&a.run_dir)?;
    let mut map = csv::Writer::from_writer(std::io::BufWriter::new(map_tmp));
    map.write_record(MAP_HEADER)?;
    let mut failed = std::io::BufWriter::new(failed_tmp);
    failed.write_all(chunk::FAILED_HEADER.as_bytes())?;
    let mut sink = Sink { map, failed };
    let m = merge::merge(&manifest, &run, &mut sink).map_err(anyhow::Error::new)?;
    let missing_txt = a.run_dir.join("missing.txt");
    for (_, why) in &m.inconsistent {
        say(
            false,
            &format!(
                "{}; its done marker was removed, so it counts as missing",
                sanitize(why)
            ),
        );
    }
    if !report_missing(
        &run,
        &missing_txt,
        &m.missing,
        m.chunks,
        "chunk(s)",
        "clean --chunks $SLURM_ARRAY_TASK_ID ...",
    )? {
        return Ok(ExitCode::from(1));
    }
    let map_tmp = sink
        .map
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the map: {e}"))?
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the map: {}", e.error()))?;
    let failed_tmp = sink
        .failed
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write failed.tsv: {}", e.error()))?;
    let map_tmp = if m.sorted {
        map_tmp
    } else {
        sorted_map(map_tmp, manifest::parent_dir(&map_path))?
    };
    persist(map_tmp, &map_path, overwrite)?;
    persist(failed_tmp, &a.run_dir.join("failed.tsv"), true)?;
    say(
        a.quiet,
        &format!(
            "merged {} chunk(s): {} mapped ({} lossless, {} re-encoded), {} failed{}; map: {}",
            m.chunks,
            m.mapped,
            m.lossless,
            m.reencoded,
            m.failed,
            if m.failed > 0 {
                format!(" (reasons in {})", show(&a.run_dir.join("failed.tsv")))
            } else {
                String::new()
            },
            show(&map_path)
        ),
    );
    if m.temp_removed > 0 {
        say(
            a.quiet,
            &format!(
                "removed {} temporary file(s) left by killed tasks",
                m.temp_removed
            ),
        );
    }
    let mut sound = true;
    if m.missing_outputs > 0 {
        sound = false;
        say!(
            "photodeid: {} mapped output(s) are missing from the output folder, e.g. {}",
            m.missing_outputs,
            sanitize(&m.missing_examples.join(", "))
        );
    }
    if !m.stray.is_empty() {
        sound = false;
        report_stray(&run, &a.run_dir, &m.stray)?;
    }
    if a.verify {
        let all: Vec<u64> = (0..manifest.chunks()).collect();
        if verify(&run, &all, threads, a.quiet)? != ExitCode::SUCCESS {
            sound = false;
        }
    }
    Ok(if sound {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The map's rows sorted as `clean --map` sorts them (names that are not UTF-8 only).
fn sorted_map(tmp: tempfile::NamedTempFile, dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut rdr = csv::Reader::from_path(tmp.path())?;
    let mut rows: Vec<(String, String)> = Vec::new();
    for r in rdr.records() {
        let r = r?;
        rows.push((
            r.get(0).unwrap_or_default().into(),
            r.get(1).unwrap_or_default().into(),
        ));
    }
    rows.sort();
    let out = private_temp(dir)?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(out));
    w.write_record(MAP_HEADER)?;
    for (o, p) in &rows {
        w.write_record([o, p])?;
    }
    w.into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the map: {e}"))?
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write the map: {}", e.error()))
}

fn verify(run: &RunDir, chunks: &[u64], threads: usize, quiet: bool) -> anyhow::Result<ExitCode> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let limits = photodeid::Limits::default();
    let (checked, problems) = pool
        .install(|| merge::verify(run, chunks, &limits))
        .map_err(anyhow::Error::new)?;
    for p in &problems {
        let l = format!(
            "photodeid: chunk {} line {}: {}: {}\n",
            p.chunk,
            p.line,
            sanitize(&p.output),
            sanitize(&p.reason)
        );
        let _ = std::io::stderr().lock().write_all(l.as_bytes());
    }
    say(
        quiet,
        &format!(
            "verified {checked} output(s) of {} chunk(s): {} problem(s)",
            chunks.len(),
            problems.len()
        ),
    );
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
