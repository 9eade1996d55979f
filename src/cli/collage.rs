//! `photodeid collage`: photos in the given order → one collage, or one
//! collage per case folder (`--cases`), ordered by capture time and named by
//! a pseudonym. A failed case is reported as `photodeid: <case>: <reason>`
//! and the other cases go on; the exit code is then 1.

use super::args::{CollageArgs, CollageFormatArg, LayoutArg};
use super::common::{check_map, naming, write_map};
use super::progress::{Audience, Progress};
use super::{print_error, show};
use anyhow::{bail, Context};
use photodeid::collage::{
    self, CollageOptions, DateTime, Layout, Prepared, SortKey, Tile, TileOptions,
};
use photodeid::commit::WriteMode;
use photodeid::faces;
use photodeid::pipeline;
use photodeid::redact::Redaction;
use photodeid::region::{self, Effect, ManifestRow, RegionSpec};
use photodeid::{Error, FileError, Format, Limits};
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

/// Largest input file read (bytes), as for `clean`.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Files that land in photo folders but are not photos.
const NOT_PHOTOS: &[&str] = &["thumbs.db", "desktop.ini"];

struct Settings<'a> {
    collage: CollageOptions,
    tile: TileOptions<'a>,
    regions: Regions,
    labels: Option<Vec<String>>,
    time_labels: bool,
    flip: Vec<u32>,
    quality: u8,
    write: WriteMode,
}

/// `--region` and `--regions`, applied to each tile at full size.
struct Regions {
    every: Vec<RegionSpec>,
    manifest: Vec<ManifestRow>,
    effect: Effect,
    fill: [u8; 3],
    /// `--faces` / `--eyes`.
    faces: Option<faces::FaceOptions>,
}

impl Regions {
    /// The regions of the photo whose manifest path is `rel`.
    fn for_photo(&self, rel: &str) -> Vec<RegionSpec> {
        let mut v = self.every.clone();
        v.extend(
            self.manifest
                .iter()
                .filter(|row| row.matches(rel))
                .map(|row| row.region.clone()),
        );
        v
    }

    /// Manifest rows that match none of `rels`: each is an error, since a
    /// typo must never silently leave a face unredacted.
    fn unmatched(&self, rels: &[String]) -> Vec<String> {
        self.manifest
            .iter()
            .filter(|row| !rels.iter().any(|r| row.matches(r)))
            .map(|row| format!("line {}: {:?} matches no photo", row.line, row.pattern))
            .collect()
    }
}

/// One photo, read and shrunk, with what it sorts by.
struct Photo {
    prepared: Prepared,
    file_time: Option<DateTime>,
    name: String,
}

pub fn run(a: CollageArgs) -> anyhow::Result<ExitCode> {
    super::common::check_faces_available(&a.region)?;
    let limits = Limits {
        max_pixels: a.max_megapixels.saturating_mul(1_000_000),
        ..Limits::default()
    };
    let settings = Settings {
        collage: CollageOptions {
            layout: match a.layout {
                LayoutArg::Row => Layout::Row,
                LayoutArg::Column => Layout::Column,
                LayoutArg::Grid => Layout::Grid,
            },
            max_width: a.max_width,
            title: a.title.clone().filter(|t| !t.trim().is_empty()),
        },
        tile: TileOptions {
            limits,
            fit: a.max_width,
            redaction: None,
            target: None,
        },
        regions: Regions {
            every: a.region.regions.clone(),
            manifest: match &a.region.regions_file {
                Some(path) => region::read_manifest(path).map_err(|e| anyhow::anyhow!(e))?,
                None => Vec::new(),
            },
            effect: a.region.effect.into(),
            fill: a.region.fill_color,
            faces: super::common::face_options(&a.region),
        },
        labels: a.labels.as_deref().map(collage::parse_labels),
        time_labels: a.time_labels,
        flip: a.flip.clone(),
        quality: a.quality,
        write: WriteMode {
            overwrite: a.overwrite,
            sync: false,
        },
    };
    match &a.cases {
        Some(dir) => run_cases(&a, dir, &settings),
        None => run_photos(&a, &settings),
    }
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("jpg" | "jpeg") => Format::Jpeg,
        Some("png") => Format::Png,
        Some("webp") => Format::Webp,
        _ => bail!(
            "{}: the collage needs a .jpg, .png or .webp name",
            path.display()
        ),
    })
}

/// Collage of the photos named on the command line, in that order.
fn run_photos(a: &CollageArgs, s: &Settings) -> anyhow::Result<ExitCode> {
    let format = format_of(&a.output)?;
    let n = a.photos.len();
    if n < 2 {
        bail!("a collage needs at least two photos, got {n}");
    }
    check_counts(s, n).map_err(anyhow::Error::new)?;
    if a.photos.iter().any(|p| same_file(p, &a.output)) {
        bail!(
            "{}: the collage would replace one of its photos",
            a.output.display()
        );
    }
    let rels: Vec<String> = a.photos.iter().map(|p| manifest_name(p, None)).collect();
    if report_unmatched(a, s, &rels) {
        return Ok(ExitCode::from(1));
    }
    let read = read_photos(&a.photos, &rels, s);
    let mut photos = Vec::new();
    let mut failed = false;
    for (path, r) in a.photos.iter().zip(read) {
        match r {
            Ok(p) => photos.push(p),
            Err(e) => {
                print_error(&FileError::new(path, e));
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    let result = build(photos, s, format).and_then(|bytes| publish(&a.output, &bytes, format, s));
    match result {
        Ok(up_to_date) => {
            report(a, &a.output, n, up_to_date);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            print_error(&FileError::new(&a.output, e));
            Ok(ExitCode::from(1))
        }
    }
}

/// One collage per subfolder of `dir`, named by a pseudonym of the folder name.
fn run_cases(a: &CollageArgs, dir: &Path, s: &Settings) -> anyhow::Result<ExitCode> {
    let format = match a.format {
        CollageFormatArg::Jpg => Format::Jpeg,
        CollageFormatArg::Png => Format::Png,
        CollageFormatArg::Webp => Format::Webp,
    };
    if format_of(&a.output).is_ok() && !a.output.is_dir() {
        bail!(
            "with --cases, -o is an output folder, not {}",
            a.output.display()
        );
    }
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create output folder {}", a.output.display()))?;
    let naming = naming(false, a.name_key.as_deref(), &a.output, a.quiet)?;
    let map_mode = match &a.map {
        Some(map) => Some(check_map(map, &a.output, a.overwrite)?),
        None => None,
    };
    let cases =
        list_cases(dir, &a.output).with_context(|| format!("cannot read {}", dir.display()))?;
    if cases.is_empty() {
        bail!(
            "{}: no case folders in it (one subfolder per case)",
            dir.display()
        );
    }
    if !s.regions.manifest.is_empty() {
        let rels: Vec<String> = cases
            .iter()
            .filter_map(|c| list_photos(c).ok())
            .flatten()
            .map(|p| manifest_name(&p, Some(dir)))
            .collect();
        if report_unmatched(a, s, &rels) {
            return Ok(ExitCode::from(1));
        }
    }
    let mut rows = Vec::new();
    let mut failed = false;
    let progress = Progress::new(cases.len() as u64, "cases", Audience::pick(a.quiet, false));
    for case in &cases {
        let label = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let done = make_case(case, s, format).and_then(|(bytes, n)| {
            let name = naming.pseudonym_for_label(&label)?;
            let dest = a.output.join(format!("{name}.{}", format.extension()));
            let up_to_date = publish(&dest, &bytes, format, s)?;
            Ok((dest, n, up_to_date))
        });
        match done {
            Ok((dest, n, up_to_date)) => {
                progress.suspend(|| report(a, &dest, n, up_to_date));
                rows.push((case.display().to_string(), dest.display().to_string()));
            }
            Err(e) => {
                progress.suspend(|| print_error(&FileError::new(case, e)));
                failed = true;
            }
        }
        progress.inc();
    }
    progress.finish();
    if let (Some(map), Some(mode)) = (&a.map, map_mode) {
        write_map(map, &rows, mode)?;
    }
    if !a.quiet {
        eprintln!(
            "photodeid: {} of {} case collages written",
            rows.len(),
            cases.len()
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn report(a: &CollageArgs, dest: &Path, n: usize, up_to_date: bool) {
    if a.quiet {
        return;
    }
    let what = if up_to_date { "up to date" } else { "collage" };
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}: {what} of {n} photos",
        show(dest)
    );
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Subfolders of `dir`, sorted, without hidden ones and the output folder.
fn list_cases(dir: &Path, output: &Path) -> std::io::Result<Vec<PathBuf>> {
    let out = output.canonicalize().ok();
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && !is_hidden(&path) && path.canonicalize().ok() != out {
            cases.push(path);
        }
    }
    cases.sort();
    Ok(cases)
}

/// The photos of a case folder: its files (not its subfolders), sorted by name.
fn list_photos(case: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(case).map_err(|e| Error::Io {
        context: "cannot read folder",
        source: e,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|e| Error::Io {
                context: "cannot read folder",
                source: e,
            })?
            .path();
        let skip = is_hidden(&path)
            || path.file_name().is_some_and(|n| {
                NOT_PHOTOS.contains(&n.to_string_lossy().to_ascii_lowercase().as_str())
            });
        if path.is_file() && !skip {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads photos in two passes, results in the order given: headers first
/// (capture time, size), which settle the layout; then pixels, each photo
/// decoded reduced and resized once, straight to its size in the layout.
fn read_photos(paths: &[PathBuf], rels: &[String], s: &Settings) -> Vec<Result<Photo, Error>> {
    let probed: Vec<Result<Probed, Error>> = paths
        .par_iter()
        .zip(rels)
        .map(|(p, rel)| probe_photo(p, rel, s))
        .collect();
    // Each tile's size does not depend on the order of the others, so the
    // layout of the photos as given is the layout of any order.
    let sizes: Option<Vec<(u32, u32)>> = probed
        .iter()
        .map(|r| r.as_ref().ok().and_then(|p| p.probe.size))
        .collect();
    let targets: Vec<Option<(u32, u32)>> =
        match sizes.and_then(|v| collage::plan(&v, &s.collage).ok()) {
            Some(plan) => plan.tiles.iter().map(|r| Some((r.w, r.h))).collect(),
            None => vec![None; paths.len()],
        };
    probed
        .into_par_iter()
        .zip(targets)
        .map(|(r, target)| r.and_then(|p| read_pixels(p, target, s)))
        .collect()
}

/// One photo's bytes and headers.
struct Probed<'p> {
    path: &'p Path,
    bytes: Vec<u8>,
    specs: Vec<RegionSpec>,
    probe: collage::Probe,
}

fn probe_photo<'p>(path: &'p Path, rel: &str, s: &Settings) -> Result<Probed<'p>, Error> {
    let bytes = pipeline::read_input(path, MAX_FILE_BYTES)?;
    let ext = path.extension().and_then(|e| e.to_str());
    let probe = collage::probe_tile(&bytes, ext, &s.tile)?;
    let mut specs = s.regions.for_photo(rel);
    // Faces are found and destroyed on the full-size photo, before it shrinks.
    if let Some(f) = s.regions.faces {
        let report = faces::Report {
            found: faces::detect_bytes(&bytes, ext, &s.tile.limits)?,
            options: f,
        };
        eprintln!("photodeid: {}: {}", show(path), report.describe());
        for w in report.warnings() {
            eprintln!("photodeid: {}: warning: {w}", show(path));
        }
        specs.extend(report.regions());
    }
    Ok(Probed {
        path,
        bytes,
        specs,
        probe,
    })
}

fn read_pixels(p: Probed, target: Option<(u32, u32)>, s: &Settings) -> Result<Photo, Error> {
    let path = p.path;
    let ext = path.extension().and_then(|e| e.to_str());
    let mut opts = s.tile.clone();
    opts.target = target;
    if !p.specs.is_empty() {
        opts.redaction = Some(Redaction {
            regions: &p.specs,
            default_effect: s.regions.effect,
            fill: s.regions.fill,
        });
    }
    let prepared = collage::prepare_tile(&p.bytes, ext, &opts)?;
    for w in &prepared.warnings {
        eprintln!("photodeid: {}: warning: {w}", show(path));
    }
    let file_time = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| DateTime::from_unix(d.as_secs().min(i64::MAX as u64) as i64));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Photo {
        prepared,
        file_time,
        name,
    })
}

/// Reads a case's photos and makes its collage: (bytes, photo count).
fn make_case(case: &Path, s: &Settings, format: Format) -> Result<(Vec<u8>, usize), Error> {
    let files = list_photos(case)?;
    if files.len() < 2 {
        return Err(Error::Invalid(format!(
            "a collage needs at least two photos, the folder has {}",
            files.len()
        )));
    }
    check_counts(s, files.len())?;
    let rels: Vec<String> = files
        .iter()
        .map(|p| manifest_name(p, case.parent()))
        .collect();
    let read = read_photos(&files, &rels, s);
    let mut photos = Vec::new();
    for (path, r) in files.iter().zip(read) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        photos.push(r.map_err(|e| Error::Invalid(format!("{name}: {e}")))?);
    }
    let keys: Vec<SortKey> = photos
        .iter()
        .map(|p| SortKey {
            capture: p.prepared.capture,
            file_time: p.file_time,
            name: p.name.clone(),
        })
        .collect();
    let ordered: Vec<Photo> = collage::in_chronological_order(photos, &keys);
    let n = ordered.len();
    Ok((build(ordered, s, format)?, n))
}

/// `--labels` and `--flip` must match the number of photos.
fn check_counts(s: &Settings, n: usize) -> Result<(), Error> {
    if let Some(l) = &s.labels {
        if l.len() != n {
            return Err(Error::Invalid(format!(
                "--labels gives {} labels for {n} photos",
                l.len()
            )));
        }
    }
    if let Some(f) = s.flip.iter().find(|&&f| f as usize > n) {
        return Err(Error::Invalid(format!(
            "--flip {f}: there are only {n} photos"
        )));
    }
    Ok(())
}

/// Labels, time intervals, flips, layout, encode + audit.
fn build(photos: Vec<Photo>, s: &Settings, format: Format) -> Result<Vec<u8>, Error> {
    let n = photos.len();
    check_counts(s, n)?;
    let mut labels = s
        .labels
        .clone()
        .unwrap_or_else(|| collage::default_labels(n));
    if s.time_labels {
        let times: Vec<Option<DateTime>> = photos
            .iter()
            .map(|p| p.prepared.capture.or(p.file_time))
            .collect();
        for (i, (label, t)) in labels.iter_mut().zip(&times).enumerate() {
            let (Some(first), Some(t)) = (times[0], t) else {
                return Err(Error::Invalid(format!(
                    "photo {} has no capture or file time for --time-labels",
                    if times[0].is_none() { 1 } else { i + 1 }
                )));
            };
            let interval = collage::interval_label(first, *t);
            *label = if label.is_empty() {
                interval
            } else {
                format!("{label} \u{b7} {interval}")
            };
        }
    }
    let tiles: Vec<Tile> = photos
        .into_iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (p, label))| {
            let mut image = p.prepared.image;
            if s.flip.contains(&(i as u32 + 1)) {
                collage::flip(&mut image);
            }
            Tile { image, label }
        })
        .collect();
    let img = collage::compose(&tiles, &s.collage)?;
    collage::encode(&img, format, s.quality, &s.tile.limits)
}

/// Writes atomically after auditing the bytes read back. True when an
/// identical file was there already.
fn publish(dest: &Path, bytes: &[u8], format: Format, s: &Settings) -> Result<bool, Error> {
    collage::publish(dest, bytes, format, s.write, &s.tile.limits)
}

/// The name a manifest row matches: the path under the `--cases` folder
/// (`case/photo.jpg`), or the file name of a photo given on the command line.
fn manifest_name(path: &Path, base: Option<&Path>) -> String {
    let rel = match base {
        Some(b) => path.strip_prefix(b).unwrap_or(path),
        None => Path::new(path.file_name().unwrap_or(path.as_os_str())),
    };
    rel.to_string_lossy().replace('\\', "/")
}

/// Prints the manifest rows that match no photo; true if there were any.
fn report_unmatched(a: &CollageArgs, s: &Settings, rels: &[String]) -> bool {
    let unmatched = s.regions.unmatched(rels);
    let path = a
        .region
        .regions_file
        .as_deref()
        .unwrap_or(Path::new("regions"));
    for msg in &unmatched {
        print_error(&FileError::new(path, Error::Invalid(msg.clone())));
    }
    !unmatched.is_empty()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
