//! Export: the selected photos go through `pipeline::process_file`, the very
//! function `clean` runs per file (read → plan → re-encode with regions or
//! lossless rewrite → audit → atomic publish under a pseudonymous name); a
//! case's collage goes through `collage` and the same audit. The regions are
//! saved as the CSV manifest `clean --regions` reads.

use super::guard::Root;
use super::photos::{Library, Photo};
use crate::collage::{self, case, DateTime, SortKey};
use crate::commit::WriteMode;
use crate::error::{Error, Result};
use crate::layout::{self, Folders, Place};
use crate::pipeline::{self, CleanOptions, Destination, FileSettings, Method, Status};
use crate::region::{Effect, RegionSpec, Shape};
use crate::scan::Job;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Name of the regions manifest, written at the top of the photo folder.
/// Hidden, so `clean FOLDER` does not take it for a photo.
pub const MANIFEST_NAME: &str = ".photodeid-regions.csv";
/// Most regions per photo a request may carry.
pub const MAX_REGIONS: usize = 500;

/// A region as the page sends it: percent of the displayed photo.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionJson {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    #[serde(default)]
    pub shape: Option<String>,
    #[serde(default)]
    pub effect: Option<String>,
}

impl RegionJson {
    /// Through the CLI's own grammar, so the checks are the same.
    pub fn spec(&self) -> Result<RegionSpec> {
        let vals = [self.x, self.y, self.w, self.h];
        if vals.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid("region values must be numbers".into()));
        }
        let [x, y, w, h] = vals.map(|v| (v * 1000.0).round() / 1000.0);
        let mut s = format!("{x}%,{y}%,{w}%,{h}%");
        if let Some(shape) = self.shape.as_deref().filter(|s| !s.is_empty()) {
            s = format!("{shape}:{s}");
        }
        if let Some(effect) = self.effect.as_deref().filter(|s| !s.is_empty()) {
            s = format!("{s}:{effect}");
        }
        s.parse().map_err(Error::Invalid)
    }
}

pub fn specs(regions: &[RegionJson]) -> Result<Vec<RegionSpec>> {
    if regions.len() > MAX_REGIONS {
        return Err(Error::Invalid(format!(
            "too many regions ({}, limit {MAX_REGIONS})",
            regions.len()
        )));
    }
    regions.iter().map(RegionJson::spec).collect()
}

/// Parses `fill` as RRGGBB.
pub fn parse_fill(s: Option<&str>) -> Result<[u8; 3]> {
    let Some(s) = s else { return Ok([0, 0, 0]) };
    let hex = s.trim_start_matches('#');
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::Invalid(format!("bad fill colour {s:?}: use RRGGBB")));
    }
    let b = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    Ok([b(0), b(2), b(4)])
}

pub fn parse_effect(s: Option<&str>) -> Result<Effect> {
    s.map_or(Ok(Effect::Fill), |s| s.parse().map_err(Error::Invalid))
}

/// One photo of an export request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoRequest {
    pub id: usize,
    #[serde(default)]
    pub regions: Vec<RegionJson>,
    /// Export it (otherwise only its regions go into the manifest).
    #[serde(default = "yes")]
    pub export: bool,
    /// Its panel's framing in the case's collage.
    #[serde(default)]
    pub framing: Option<super::collage::FramingJson>,
}

fn yes() -> bool {
    true
}

/// `POST /api/export`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub photos: Vec<PhotoRequest>,
    #[serde(default)]
    pub effect: Option<String>,
    #[serde(default)]
    pub fill: Option<String>,
    /// One before/during/after collage per folder (case) with two or more exported photos.
    #[serde(default)]
    pub collage: bool,
    /// Each case's collage settings (size, layout, labels, ...), by folder.
    #[serde(default)]
    pub collage_settings: BTreeMap<String, super::collage::Settings>,
    /// What the collages are for (`social-media`, ...): a case without
    /// written permission for it in the consent register gets no collage.
    #[serde(default)]
    pub purpose: Option<String>,
}

/// A checked export request.
pub struct Plan {
    pub photos: Vec<(usize, Vec<RegionSpec>, bool)>,
    pub effect: Effect,
    pub fill: [u8; 3],
    pub collage: bool,
    pub framing: BTreeMap<usize, crate::collage::Framing>,
    pub collage_settings: BTreeMap<String, super::collage::Settings>,
    pub purpose: Option<String>,
}

impl ExportRequest {
    pub fn check(&self, lib: &Library) -> Result<Plan> {
        let mut photos = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut framing = BTreeMap::new();
        for p in &self.photos {
            if lib.get(p.id).is_none() {
                return Err(Error::Invalid(format!("no photo with id {}", p.id)));
            }
            if !seen.insert(p.id) {
                return Err(Error::Invalid(format!("photo {} is listed twice", p.id)));
            }
            photos.push((p.id, specs(&p.regions)?, p.export));
            if let Some(f) = p.framing {
                framing.insert(p.id, f.framing()?);
            }
        }
        if !photos.iter().any(|p| p.2) {
            return Err(Error::Invalid("no photo selected for export".into()));
        }
        Ok(Plan {
            photos,
            effect: parse_effect(self.effect.as_deref())?,
            fill: parse_fill(self.fill.as_deref())?,
            collage: self.collage,
            framing,
            collage_settings: self.collage_settings.clone(),
            purpose: self
                .purpose
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(crate::collage::consent::check_purpose)
                .transpose()
                .map_err(Error::Invalid)?,
        })
    }
}

/// How one photo's export went.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoResult {
    pub id: usize,
    pub name: String,
    /// The output's file name (a pseudonym).
    pub output: Option<String>,
    pub status: &'static str,
    pub method: Option<&'static str>,
    /// What was removed, by category.
    pub removed: Vec<String>,
    pub regions: usize,
    pub warnings: Vec<String>,
    /// What was done, in plain words ([`crate::plain::exported`]): the page
    /// shows it as it is.
    pub done: String,
    pub error: Option<String>,
}

/// A collage made for a case.
#[derive(Debug, Clone, Serialize)]
pub struct CollageResult {
    pub series: String,
    pub output: Option<String>,
    pub photos: usize,
    /// Files of the case that cannot be used, so are not in the collage:
    /// "name: reason" (said, never dropped silently).
    pub left_out: Vec<String>,
    pub error: Option<String>,
}

/// The export's progress and results (`GET /api/export`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub running: bool,
    pub done: usize,
    pub total: usize,
    pub results: Vec<PhotoResult>,
    pub collages: Vec<CollageResult>,
    pub output_dir: String,
    pub manifest: Option<String>,
    /// The command that re-runs this export from the command line.
    pub command: Option<String>,
    pub error: Option<String>,
}

/// How the output folder is laid out (`layout`): pseudonymous case folders
/// and capture-order names, or one flat folder.
pub struct Layout {
    pub folders: Folders,
    pub flat: bool,
    /// The `--name-key` file given, if any (else the default key).
    pub key_file: Option<std::path::PathBuf>,
}

impl Layout {
    /// The command-line flags that name and lay out outputs as this page
    /// does, so a command it shows makes the same files.
    pub fn naming_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        match self.folders.naming() {
            crate::pseudonym::Naming::Random => args.push("--random-names".to_string()),
            crate::pseudonym::Naming::Keep => args.push("--keep-names".to_string()),
            crate::pseudonym::Naming::Keyed(_) => {
                if let Some(k) = &self.key_file {
                    args.push("--name-key".to_string());
                    args.push(shell_quote(&k.display().to_string()));
                }
            }
        }
        if self.flat {
            args.push("--flat".to_string());
        }
        args
    }

    /// Each photo's place: its case folder, its rank in the case's capture
    /// order (among all the case's usable photos, so a name does not depend
    /// on what else is exported).
    fn places(&self, lib: &Library, folder: &Root) -> Result<Vec<Place>> {
        let info = lib.info(folder);
        let mut places = vec![Place::default(); info.len()];
        if self.flat {
            return Ok(places);
        }
        let mut cases: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for i in info.iter().filter(|i| i.error.is_none()) {
            cases.entry(i.series.as_str()).or_default().push(i.id);
        }
        for (series, ids) in cases {
            let keys: Vec<SortKey> = ids
                .iter()
                .map(|&id| SortKey {
                    capture: info[id].capture,
                    file_time: lib.get(id).and_then(|p| file_time(&p.path)),
                    name: info[id].name.clone(),
                })
                .collect();
            let dir = self.folders.folder(series)?;
            for (id, rank) in ids.iter().zip(layout::ranks(&keys)) {
                places[*id] = Place {
                    folder: dir.clone(),
                    rank: Some(rank),
                };
            }
        }
        Ok(places)
    }
}

fn file_time(path: &std::path::Path) -> Option<DateTime> {
    case::file_time(path)
}

/// Runs the export; `progress` is updated as files finish.
// Each argument is a separate piece of server state the export reads.
#[allow(clippy::too_many_arguments)]
pub fn run(
    lib: &Library,
    folder: &Root,
    out: &Root,
    store: &super::regions::Store,
    collages: &super::collage::Store,
    layout: &Layout,
    plan: &Plan,
    progress: &Mutex<Progress>,
    thorough: bool,
    results: &super::results::Results,
) {
    let lock = || progress.lock().unwrap_or_else(|p| p.into_inner());
    let selected: Vec<&(usize, Vec<RegionSpec>, bool)> =
        plan.photos.iter().filter(|p| p.2).collect();
    let groups = collage_groups(lib, plan);
    lock().total = selected.len() + groups.len();

    // The manifest first: it holds the work, even if an export fails.
    match write_manifest(lib, store, plan) {
        Ok(m) => {
            let mut p = lock();
            p.command = Some(rerun_command(folder, out, m.as_deref(), plan, layout));
            p.manifest = m.map(|m| m.display().to_string());
        }
        Err(e) => {
            lock().error = Some(format!(
                "the regions were not saved in the regions file: {}",
                crate::plain::explain(&e)
            ))
        }
    }

    let settings = FileSettings {
        clean: CleanOptions {
            limits: lib.limits(),
            thorough,
            ..CleanOptions::default()
        },
        write: WriteMode::default(),
        dry_run: false,
        max_file_bytes: lib.max_file_bytes(),
        regions: Vec::new(),
        manifest: Vec::new(),
        effect: plan.effect,
        fill: plan.fill,
        faces: None,
    };
    let places = match layout.places(lib, folder) {
        Ok(p) => p,
        Err(e) => {
            let mut p = lock();
            p.error = Some(format!(
                "cannot name the exported files: {}",
                crate::plain::explain(&e)
            ));
            p.running = false;
            return;
        }
    };
    selected
        .par_iter()
        .with_max_len(1)
        .for_each(|(id, regions, _)| {
            let photo = lib.get(*id).expect("checked");
            let dest = Destination::Placed {
                dir: out.path().to_path_buf(),
                naming: layout.folders.naming().clone(),
                place: places[*id].clone(),
            };
            let made_with = made_with(regions, plan, thorough, layout);
            let mut result = export_one(
                lib,
                folder,
                out,
                photo,
                regions,
                &dest,
                &settings,
                (results, &made_with),
            );
            if result.error.is_none() {
                result.done = crate::plain::exported(
                    result.regions,
                    &result.removed,
                    result.status == "up to date",
                    &result.warnings,
                );
            }
            let mut p = lock();
            p.done += 1;
            p.results.push(result);
        });

    for (series, members) in groups {
        let result = make_collage(lib, folder, out, collages, layout, plan, &series, &members);
        let mut p = lock();
        p.done += 1;
        p.collages.push(result);
    }
    let mut p = lock();
    p.results.sort_by_key(|r| r.id);
    p.running = false;
}

/// What an output is made with: two exports of the same input with the same
/// key make the same picture, so the second is "up to date".
fn made_with(regions: &[RegionSpec], plan: &Plan, thorough: bool, layout: &Layout) -> String {
    let specs: Vec<RegionSpec> = regions
        .iter()
        .map(|r| RegionSpec {
            effect: Some(r.effect.unwrap_or(plan.effect)),
            ..r.clone()
        })
        .collect();
    format!(
        "regions {}; fill {}; thorough {thorough}; flat {}",
        super::regions::revision(&specs),
        crate::pseudonym::hex(&plan.fill),
        layout.flat
    )
}

#[allow(clippy::too_many_arguments)]
fn export_one(
    lib: &Library,
    folder: &Root,
    out: &Root,
    photo: &Photo,
    regions: &[RegionSpec],
    dest: &Destination,
    settings: &FileSettings,
    (results, made_with): (&super::results::Results, &str),
) -> PhotoResult {
    let mut r = PhotoResult {
        id: photo.id,
        name: photo.rel.clone(),
        output: None,
        status: "failed",
        method: None,
        removed: Vec::new(),
        regions: regions.len(),
        warnings: Vec::new(),
        done: String::new(),
        error: None,
    };
    if folder.contains(&photo.path).is_none() {
        r.error = Some("the photo is no longer inside the folder".into());
        return r;
    }
    let job = Job {
        path: photo.path.clone(),
        relative: photo.rel.clone().into(),
    };
    let settings = FileSettings {
        regions: regions.to_vec(),
        ..settings.clone()
    };
    // Exactly the bytes that were shown, or nothing.
    let input = lib
        .read(photo, folder)
        .and_then(|b| lib.check_unchanged(photo, &b).map(|_| b));
    let input_hash = input
        .as_ref()
        .map(|b| blake3::hash(b).to_hex().to_string())
        .unwrap_or_default();
    // Exported before, the same way, and still there: nothing to write.
    if let Some(e) = results.up_to_date(&photo.rel, &input_hash, made_with, out) {
        r.status = "up to date";
        r.output = Some(e.output);
        r.removed = e.removed;
        r.method = e.method.as_deref().and_then(|m| match m {
            "lossless" => Some("lossless"),
            "re-encoded" => Some("re-encoded"),
            _ => None,
        });
        return r;
    }
    let outcome = pipeline::process_input(&job, input, dest, &settings);
    r.output = outcome
        .output
        .as_deref()
        .and_then(|o| o.strip_prefix(out.path()).ok())
        .map(|rel| rel.to_string_lossy().replace('\\', "/"));
    match outcome.result {
        Ok(done) => {
            r.status = match done.status {
                Status::Cleaned => "cleaned",
                Status::UpToDate => "up to date",
                Status::WouldClean => "dry run",
            };
            r.method = Some(match done.method {
                Method::Lossless => "lossless",
                Method::Reencoded => "re-encoded",
            });
            r.removed = super::photos::plain_words(&done.removed);
            if r.removed.is_empty() {
                r.removed.push(crate::plain::NOTHING_IDENTIFYING.into());
            }
            r.warnings = done.warnings;
            if let (Some(rel), Some(path)) = (&r.output, &outcome.output) {
                let recorded = std::fs::read(path)
                    .map_err(|e| Error::io("cannot read the output back", e))
                    .and_then(|b| {
                        results.record(super::results::Entry {
                            input: photo.rel.clone(),
                            input_hash,
                            settings: made_with.to_string(),
                            output_dir: out.path().display().to_string(),
                            output: rel.clone(),
                            output_hash: blake3::hash(&b).to_hex().to_string(),
                            removed: r.removed.clone(),
                            method: r.method.map(str::to_string),
                        })
                    });
                if let Err(e) = recorded {
                    r.warnings.push(format!(
                        "not noted in the results file: {}",
                        crate::plain::explain(&e)
                    ));
                }
            }
        }
        Err(e) => {
            r.output = None;
            r.error = Some(crate::plain::explain(&e));
        }
    }
    r
}

/// Cases (folders) with at least two exported photos, when collages are asked for.
fn collage_groups(lib: &Library, plan: &Plan) -> Vec<(String, Vec<usize>)> {
    if !plan.collage {
        return Vec::new();
    }
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (id, _, export) in &plan.photos {
        if *export {
            let series = lib.get(*id).expect("checked").series.clone();
            groups.entry(series).or_default().push(*id);
        }
    }
    groups.into_iter().filter(|(_, v)| v.len() >= 2).collect()
}

#[allow(clippy::too_many_arguments)]
fn make_collage(
    lib: &Library,
    folder: &Root,
    out: &Root,
    collages: &super::collage::Store,
    layout: &Layout,
    plan: &Plan,
    series: &str,
    members: &[usize],
) -> CollageResult {
    let mut r = CollageResult {
        series: if series.is_empty() {
            "(top folder)".into()
        } else {
            series.to_string()
        },
        output: None,
        photos: members.len(),
        left_out: lib
            .info(folder)
            .iter()
            .filter(|i| i.series == series)
            .filter_map(|i| Some(format!("{}: {}", i.name, i.error.as_ref()?)))
            .collect(),
        error: None,
    };
    match build_collage(lib, folder, out, collages, layout, plan, series, members) {
        Ok(name) => r.output = Some(name),
        Err(e) => r.error = Some(crate::plain::explain(&e)),
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn build_collage(
    lib: &Library,
    folder: &Root,
    out: &Root,
    collages: &super::collage::Store,
    layout: &Layout,
    plan: &Plan,
    series: &str,
    members: &[usize],
) -> Result<String> {
    // The consent gate first: nothing is read or written for a case without it.
    if let Some(purpose) = &plan.purpose {
        if series.is_empty() {
            return Err(Error::Invalid(
                "photos at the top of the folder are not a case: no consent can be on file for them"
                    .into(),
            ));
        }
        collages.register()?.check(series, purpose)?;
    }
    let limits = lib.limits();
    let photos: Vec<(usize, Vec<RegionSpec>, Option<crate::collage::Framing>)> = members
        .iter()
        .map(|id| {
            let regions = plan
                .photos
                .iter()
                .find(|p| p.0 == *id)
                .expect("member")
                .1
                .clone();
            (*id, regions, plan.framing.get(id).copied())
        })
        .collect();
    let inputs = super::collage::inputs(lib, folder, &photos)?;
    let settings = plan
        .collage_settings
        .get(series)
        .cloned()
        .unwrap_or_default();
    let opts = super::collage::case_options(
        lib,
        &settings,
        &collages.profiles,
        members.len(),
        plan.effect,
        plan.fill,
    )?;
    let (bytes, _) = case::make(inputs, &opts, case::Order::Capture)?;
    let format = opts.format;
    // Beside the case's photos (at the top with --flat).
    let name = layout::collage_name(layout.folders.naming(), &bytes, format.extension())?;
    let sub = if layout.flat {
        std::path::PathBuf::new()
    } else {
        layout.folders.folder(series)?
    };
    let dir = out.path().join(&sub);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create output folder", e))?;
    collage::publish(
        &dir.join(&name),
        &bytes,
        format,
        WriteMode::default(),
        &limits,
    )?;
    Ok(sub.join(name).to_string_lossy().replace('\\', "/"))
}

/// Saves the regions of the photos the export names into the manifest,
/// keeping every other row (`regions::Store::merge`).
fn write_manifest(
    lib: &Library,
    store: &super::regions::Store,
    plan: &Plan,
) -> Result<Option<std::path::PathBuf>> {
    let effect = plan.effect;
    let photos: Vec<(String, Vec<RegionSpec>)> = plan
        .photos
        .iter()
        .map(|(id, regions, _)| {
            let rel = lib.get(*id).expect("checked").rel.clone();
            // The effect is written out, so the file means the same whatever `--effect` says.
            let specs = regions
                .iter()
                .map(|r| RegionSpec {
                    effect: Some(r.effect.unwrap_or(effect)),
                    ..r.clone()
                })
                .collect();
            (rel, specs)
        })
        .collect();
    store.merge(&photos)?;
    Ok(store.path().exists().then(|| store.path().to_path_buf()))
}

/// `file,x,y,w,h,shape,effect`, one row per region; a region without an
/// effect gets `default`, or an empty column (the run's `--effect`) without one.
pub fn manifest_csv(rows: &[(&str, &RegionSpec)], default: Option<Effect>) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Invalid(format!("manifest: {e}"));
    w.write_record(["file", "x", "y", "w", "h", "shape", "effect"])
        .map_err(csv_err)?;
    for (photo, r) in rows {
        let mut rec = vec![photo.to_string()];
        rec.extend(region_cells(r, default));
        w.write_record(&rec).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Invalid(format!("manifest: {e}")))
}

/// A region's `x,y,w,h,shape,effect` cells.
pub fn region_cells(r: &RegionSpec, default: Option<Effect>) -> [String; 6] {
    let shape = match r.shape {
        Shape::Rect => "rect",
        Shape::Ellipse => "ellipse",
    };
    let effect = match r.effect.or(default) {
        None => "",
        Some(Effect::Fill) => "fill",
        Some(Effect::Pixelate) => "pixelate",
        Some(Effect::Blur) => "blur",
    };
    [
        r.x.to_string(),
        r.y.to_string(),
        r.w.to_string(),
        r.h.to_string(),
        shape.to_string(),
        effect.to_string(),
    ]
}

fn rerun_command(
    folder: &Root,
    out: &Root,
    manifest: Option<&std::path::Path>,
    plan: &Plan,
    layout: &Layout,
) -> String {
    let q = |p: &std::path::Path| shell_quote(&p.display().to_string());
    let mut cmd = format!("photodeid clean {} -o {}", q(folder.path()), q(out.path()));
    if let Some(m) = manifest {
        cmd.push_str(&format!(" --regions {}", q(m)));
    }
    if plan.fill != [0, 0, 0] {
        cmd.push_str(&format!(
            " --fill-color {}",
            crate::pseudonym::hex(&plan.fill)
        ));
    }
    for a in layout.naming_args() {
        cmd.push(' ');
        cmd.push_str(&a);
    }
    cmd
}

pub(super) fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,=:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::parse_manifest;
    use crate::region::Length;

    #[test]
    fn regions_from_json_use_the_cli_grammar() {
        let r = RegionJson {
            x: 10.5,
            y: 20.0,
            w: 30.0,
            h: 5.25,
            shape: Some("ellipse".into()),
            effect: Some("blur".into()),
        };
        let s = r.spec().unwrap();
        assert_eq!(s.shape, Shape::Ellipse);
        assert_eq!(s.effect, Some(Effect::Blur));
        assert_eq!(s.x, Length::Percent(10.5));
        for bad in [
            (-1.0, 0.0, 5.0, 5.0),
            (0.0, 0.0, 0.0, 5.0),
            (0.0, 0.0, 500.0, 5.0),
        ] {
            let r = RegionJson {
                x: bad.0,
                y: bad.1,
                w: bad.2,
                h: bad.3,
                shape: None,
                effect: None,
            };
            assert!(r.spec().is_err(), "{bad:?}");
        }
        let nan = RegionJson {
            x: f64::NAN,
            y: 0.0,
            w: 1.0,
            h: 1.0,
            shape: None,
            effect: None,
        };
        assert!(nan.spec().is_err());
    }

    #[test]
    fn manifest_round_trips_through_the_cli_parser() {
        let photo = Photo {
            id: 0,
            path: "/x/a, b.jpg".into(),
            rel: "case 1/a, b.jpg".into(),
            series: "case 1".into(),
        };
        let r1: RegionSpec = "ellipse:10.5%,20%,30%,5.25%".parse().unwrap();
        let r2: RegionSpec = "0%,0%,100%,12%:pixelate".parse().unwrap();
        let rel = photo.rel.as_str();
        let csv = manifest_csv(&[(rel, &r1), (rel, &r2)], Some(Effect::Blur)).unwrap();
        let rows = parse_manifest(&csv).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].pattern, "case 1/a, b.jpg");
        assert_eq!(rows[0].region.x, r1.x);
        assert_eq!(rows[0].region.shape, Shape::Ellipse);
        assert_eq!(rows[0].region.effect, Some(Effect::Blur));
        assert_eq!(rows[1].region.effect, Some(Effect::Pixelate));
        assert_eq!(rows[1].region.h, r2.h);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
