//! The case pipeline, once for the CLI, the page and sharded runs: list a
//! case folder's photos, read their headers, order them by capture time,
//! read each reduced with its regions destroyed and its framing applied,
//! compose, encode, audit, and publish under a pseudonym.
//!
//! [`run_case`] does one case folder start to finish (the unit a sharded
//! run hands out); [`make`] does the middle for photos already read (the
//! page, which reads exactly the bytes it showed).

use super::align::{self, Align, Feature};
use super::consent::Register;
use super::framing::{framing_for, framing_given, Framing, FramingRow};
use super::order::{default_labels, in_chronological_order, interval_label, DateTime, SortKey};
use super::{draw_planned, flip, probe_tile, CollageOptions, Plan, Probe, TileOptions};
use crate::commit::WriteMode;
use crate::container::{Format, Limits};
use crate::error::{Error, Result};
use crate::faces;
use crate::pipeline::{self, Photo};
use crate::pseudonym::Naming;
use crate::redact::Redaction;
use crate::region::{Effect, ManifestRow, RegionSpec};
use image::RgbImage;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Largest input file read (bytes), as for `clean`.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Files that land in photo folders but are not photos.
const NOT_PHOTOS: &[&str] = &["thumbs.db", "desktop.ini"];

/// Regions destroyed in every photo before it is framed or shrunk.
#[derive(Debug, Clone, Default)]
pub struct RegionSource {
    /// `--region`: in every photo.
    pub every: Vec<RegionSpec>,
    /// `--regions FILE`: per photo, by manifest name.
    pub manifest: Vec<ManifestRow>,
    pub effect: Effect,
    pub fill: [u8; 3],
    /// `--faces` / `--eyes`.
    pub faces: Option<faces::FaceOptions>,
}

impl RegionSource {
    /// The regions of the photo whose manifest name is `rel`.
    pub fn for_photo(&self, rel: &str) -> Vec<RegionSpec> {
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
    pub fn unmatched(&self, rels: &[String]) -> Vec<String> {
        self.manifest
            .iter()
            .filter(|row| !rels.iter().any(|r| row.matches(r)))
            .map(|row| format!("line {}: {:?} matches no photo", row.line, row.pattern))
            .collect()
    }
}

/// The consent gate: a case is made only when the register has its
/// written permission for `purpose`.
#[derive(Debug, Clone)]
pub struct Gate {
    pub register: Register,
    pub purpose: String,
}

/// Everything about making a case's collage.
#[derive(Debug, Clone)]
pub struct CaseOptions {
    pub collage: CollageOptions,
    pub limits: Limits,
    pub regions: RegionSource,
    /// Framing rows, matched like the manifest.
    pub framing: Vec<FramingRow>,
    /// One label per photo (in collage order); default Before/During/After.
    pub labels: Option<Vec<String>>,
    /// Add the interval since the first photo to each label.
    pub time_labels: bool,
    /// 1-based positions (in collage order) mirrored left-right.
    pub flip: Vec<u32>,
    pub format: Format,
    pub quality: u8,
    pub consent: Option<Gate>,
    /// `--align`: frame each photo without an explicit framing on its face or eyes.
    pub align: Option<Align>,
    /// How an animated collage moves from one photo to the next.
    pub transition: super::animate::Transition,
}

impl Default for CaseOptions {
    fn default() -> Self {
        CaseOptions {
            collage: CollageOptions::default(),
            limits: Limits::default(),
            regions: RegionSource::default(),
            framing: Vec::new(),
            labels: None,
            time_labels: false,
            flip: Vec::new(),
            format: Format::Jpeg,
            quality: 92,
            consent: None,
            align: None,
            transition: Default::default(),
        }
    }
}

/// One photo, read.
#[derive(Debug, Clone)]
pub struct Input {
    /// Shown in errors ("2.jpg: cannot decode ...").
    pub name: String,
    /// The name manifest and framing rows match (`case/photo.jpg`).
    pub rel: String,
    /// Mapped where it can be (see [`Photo`]): [`render`] confirms it before
    /// anything made from it is returned.
    pub bytes: Photo,
    pub extension: Option<String>,
    /// The file's modification time, when the EXIF has no capture time.
    pub file_time: Option<DateTime>,
    /// Regions besides the [`RegionSource`] ones (the page's).
    pub regions: Vec<RegionSpec>,
    /// Framing that wins over the framing rows (the page's).
    pub framing: Option<Framing>,
}

impl Input {
    /// Reads a photo file (bounded, not following links, as `clean` does).
    pub fn read(path: &Path, name: String, rel: String) -> Result<Input> {
        let bytes = Photo::open(path, MAX_FILE_BYTES)?;
        Ok(Input {
            name,
            rel,
            bytes,
            extension: path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_string),
            file_time: file_time(path),
            regions: Vec::new(),
            framing: None,
        })
    }
}

/// A file's modification time (UTC), when it has one.
pub fn file_time(path: &Path) -> Option<DateTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| DateTime::from_unix(d.as_secs().min(i64::MAX as u64) as i64))
}

/// Panel order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As given.
    Given,
    /// By capture time, then file time, then name.
    Capture,
}

/// A collage, drawn.
#[derive(Debug, Clone)]
pub struct Made {
    pub image: RgbImage,
    pub plan: Plan,
    /// The inputs' names, in collage order.
    pub order: Vec<String>,
    /// The labels drawn, in collage order.
    pub labels: Vec<String>,
    /// "name: warning" lines (clipped regions, face detection).
    pub notes: Vec<String>,
    /// The part of each photo its panel shows, in collage order.
    pub crops: Vec<super::FRect>,
    /// The animation's frames, one photo each (a GIF); empty for a still.
    pub frames: Vec<RgbImage>,
}

/// `--labels` and `--flip` must match the number of photos.
pub fn check_counts(opts: &CaseOptions, n: usize) -> Result<()> {
    if let Some(l) = &opts.labels {
        if l.len() != n {
            return Err(Error::Invalid(format!(
                "--labels gives {} labels for {n} photos",
                l.len()
            )));
        }
    }
    if let Some(f) = opts.flip.iter().find(|&&f| f as usize > n) {
        return Err(Error::Invalid(format!(
            "--flip {f}: there are only {n} photos"
        )));
    }
    Ok(())
}

struct Probed {
    input: Input,
    /// Its headers, read once: the panel's decode does not parse them again.
    probe: Probe,
    capture: Option<DateTime>,
    upright: (u32, u32),
    specs: Vec<RegionSpec>,
    notes: Vec<String>,
    /// `--align`'s feature, or why the photo has none.
    feature: Option<std::result::Result<Feature, String>>,
}

fn named(name: &str, e: Error) -> Error {
    Error::Invalid(format!("{name}: {e}"))
}

fn probe(input: Input, opts: &CaseOptions) -> Result<Probed> {
    let ext = input.extension.as_deref();
    let tile = TileOptions {
        limits: opts.limits,
        ..TileOptions::default()
    };
    let p = probe_tile(&input.bytes, ext, &tile).map_err(|e| named(&input.name, e))?;
    let upright = match p.upright {
        Some(s) => s,
        // A JPEG whose height comes later (DNL): only a decode tells.
        None => {
            let parsed = pipeline::inspect(&input.bytes, ext, &opts.limits)
                .map_err(|e| named(&input.name, e))?;
            let d = crate::pixels::decode_upright(
                &input.bytes,
                parsed.format,
                parsed.orientation(),
                &opts.limits,
            )
            .map_err(|e| named(&input.name, e))?;
            (d.image.width(), d.image.height())
        }
    };
    let mut specs = opts.regions.for_photo(&input.rel);
    specs.extend(input.regions.iter().cloned());
    let mut notes = Vec::new();
    // An explicit framing wins over --align: no detection for it.
    let aligning = opts
        .align
        .filter(|_| input.framing.is_none() && framing_given(&opts.framing, &input.rel).is_none());
    let found = if opts.regions.faces.is_some() || aligning.is_some() {
        Some(
            faces::detect_bytes(&input.bytes, ext, &opts.limits)
                .map_err(|e| named(&input.name, e))?,
        )
    } else {
        None
    };
    // Faces are found and destroyed on the full-size photo, before it shrinks.
    if let (Some(f), Some(found)) = (opts.regions.faces, &found) {
        let report = faces::Report {
            found: found.clone(),
            options: f,
        };
        notes.push(format!("{}: {}", input.name, report.describe()));
        for w in report.warnings() {
            notes.push(format!("{}: warning: {w}", input.name));
        }
        specs.extend(report.regions());
    }
    let threshold = opts
        .regions
        .faces
        .map_or(faces::DEFAULT_THRESHOLD, |f| f.threshold);
    let feature = aligning
        .zip(found.as_ref())
        .map(|(a, found)| align::feature(found, a, threshold));
    Ok(Probed {
        input,
        capture: p.capture,
        probe: p,
        upright,
        specs,
        notes,
        feature,
    })
}

/// Draws the collage of these photos: headers first (order and layout),
/// then each photo decoded reduced straight to its panel.
pub fn render(inputs: Vec<Input>, opts: &CaseOptions, order: Order) -> Result<Made> {
    let n = inputs.len();
    if n < 2 {
        return Err(Error::Invalid(format!(
            "a collage needs at least two photos, found {n}"
        )));
    }
    check_counts(opts, n)?;
    if opts.align.is_some() && !faces::AVAILABLE {
        return Err(align_unavailable());
    }
    let probed: Vec<Probed> = inputs
        .into_par_iter()
        .map(|i| probe(i, opts))
        .collect::<Result<_>>()?;
    let probed = match order {
        Order::Given => probed,
        Order::Capture => {
            let keys: Vec<SortKey> = probed
                .iter()
                .map(|p| SortKey {
                    capture: p.capture,
                    file_time: p.input.file_time,
                    name: p.input.name.clone(),
                })
                .collect();
            in_chronological_order(probed, &keys)
        }
    };
    let times: Vec<Option<DateTime>> = probed
        .iter()
        .map(|p| p.capture.or(p.input.file_time))
        .collect();
    let labels = labels_for(&times, opts)?;
    let sizes: Vec<(u32, u32)> = probed.iter().map(|p| p.upright).collect();
    // The animation shows the photos one at a time, each in the one panel.
    let animated = opts.format == Format::Gif;
    let plan = if animated {
        let size = opts.collage.size.unwrap_or(super::animate::DEFAULT_SIZE);
        super::plan_one(size, &opts.collage)?
    } else {
        super::plan(&sizes, &opts.collage)?
    };
    let tiles: Vec<super::Rect> = if animated {
        vec![plan.tiles[0]; n]
    } else {
        plan.tiles.clone()
    };
    let framings = framings_of(&probed, &tiles, opts);
    let crops = probed
        .iter()
        .zip(&tiles)
        .zip(&framings)
        .map(|((p, r), f)| f.crop(p.upright, (r.w, r.h)))
        .collect();
    let decode_panel = |i: usize| -> Result<(RgbImage, Vec<String>)> {
        let (p, r) = (&probed[i], tiles[i]);
        let tile = TileOptions {
            limits: opts.limits,
            fit: u32::MAX,
            redaction: (!p.specs.is_empty()).then_some(Redaction {
                regions: &p.specs,
                default_effect: opts.regions.effect,
                fill: opts.regions.fill,
            }),
            target: Some((r.w, r.h)),
            framing: framings[i],
        };
        let mut prepared = super::prepare_probed(&p.input.bytes, &p.probe, &tile)
            .map_err(|e| named(&p.input.name, e))?;
        if opts.flip.contains(&(i as u32 + 1)) {
            flip(&mut prepared.image);
        }
        let notes = prepared
            .warnings
            .iter()
            .map(|w| format!("{}: warning: {w}", p.input.name))
            .collect();
        Ok((prepared.image, notes))
    };
    // The canvas, texts and scaled logo are drawn while the photos decode,
    // queued after them: a worker that finishes its photo early takes the
    // next photo first, then the canvas (drawn first, the canvas held up a
    // photo, and three photos on two cores left one core idle for a
    // quarter of the time).
    let mut panels: Vec<Result<(RgbImage, Vec<String>)>> = (0..n)
        .map(|_| Err(Error::Invalid("not decoded".into())))
        .collect();
    let mut backdrop = None;
    rayon::scope_fifo(|s| {
        let decode_panel = &decode_panel;
        for (i, slot) in panels.iter_mut().enumerate() {
            s.spawn_fifo(move |_| *slot = decode_panel(i));
        }
        if !animated {
            let backdrop = &mut backdrop;
            let (plan, labels) = (&plan, &labels);
            s.spawn_fifo(move |_| {
                *backdrop = Some(super::Backdrop::draw(plan, labels, &opts.collage))
            });
        }
    });
    let panels = panels.into_iter().collect::<Result<Vec<_>>>();
    let (panels, backdrop) = (panels?, backdrop.transpose()?);
    // Every pixel is in memory now: the photos must still be what was decoded.
    for p in &probed {
        p.input
            .bytes
            .confirm()
            .map_err(|e| named(&p.input.name, e))?;
    }
    let mut notes: Vec<String> = probed.iter().flat_map(|p| p.notes.clone()).collect();
    notes.extend(probed.iter().filter_map(|p| match &p.feature {
        Some(Err(why)) => Some(format!("{}: --align: {why}", p.input.name)),
        _ => None,
    }));
    let images: Vec<RgbImage> = panels
        .into_iter()
        .map(|(img, n)| {
            notes.extend(n);
            img
        })
        .collect();
    let frames: Vec<RgbImage> = if animated {
        images
            .par_iter()
            .zip(labels.par_iter())
            .map(|(img, l)| {
                draw_planned(
                    &plan,
                    std::slice::from_ref(img),
                    std::slice::from_ref(l),
                    &opts.collage,
                )
            })
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    let image = match (frames.first(), backdrop) {
        (Some(f), _) => f.clone(),
        (None, Some(b)) => b.finish(&plan, &images, &labels, &opts.collage),
        (None, None) => draw_planned(&plan, &images, &labels, &opts.collage)?,
    };
    Ok(Made {
        image,
        plan,
        order: probed.iter().map(|p| p.input.name.clone()).collect(),
        labels,
        notes,
        crops,
        frames,
    })
}

/// `--align` in a build without face detection.
pub fn align_unavailable() -> Error {
    Error::Unsupported(
        "--align needs face detection, which is not in this build of photodeid; \
         rebuild with `cargo build --release --features faces`"
            .into(),
    )
}

/// Each photo's framing: its own (the page's), a framing row, `--align`'s
/// from its feature, or centred.
fn framings_of(probed: &[Probed], tiles: &[super::Rect], opts: &CaseOptions) -> Vec<Framing> {
    let features: Vec<Option<Feature>> = probed
        .iter()
        .map(|p| p.feature.clone().and_then(|f| f.ok()))
        .collect();
    let photos: Vec<(u32, u32)> = probed.iter().map(|p| p.upright).collect();
    let panels: Vec<(u32, u32)> = tiles.iter().map(|r| (r.w, r.h)).collect();
    let aligned = align::framings(&features, &photos, &panels);
    probed
        .iter()
        .zip(aligned)
        .map(|(p, a)| {
            p.input
                .framing
                .or_else(|| framing_given(&opts.framing, &p.input.rel))
                .or(a)
                .unwrap_or_default()
        })
        .collect()
}

/// Labels given or by count, with the interval since the first photo.
fn labels_for(times: &[Option<DateTime>], opts: &CaseOptions) -> Result<Vec<String>> {
    let n = times.len();
    let mut labels = opts.labels.clone().unwrap_or_else(|| default_labels(n));
    if opts.time_labels {
        for (i, (label, t)) in labels.iter_mut().zip(times).enumerate() {
            let (Some(first), Some(t)) = (times[0], t) else {
                return Err(Error::Invalid(format!(
                    "photo {} has no capture or file time for --time-labels",
                    if times[0].is_none() { 1 } else { i + 1 }
                )));
            };
            let interval = interval_label(first, *t);
            *label = if label.is_empty() {
                interval
            } else {
                format!("{label} \u{b7} {interval}")
            };
        }
    }
    Ok(labels)
}

/// A photo already decoded upright, its regions destroyed, shrunk (the
/// page's preview keeps these between refreshes).
#[derive(Debug, Clone)]
pub struct Picture {
    pub name: String,
    pub rel: String,
    pub image: std::sync::Arc<RgbImage>,
    /// The photo's own upright size (the layout and crops follow it).
    pub upright: (u32, u32),
    pub capture: Option<DateTime>,
    pub file_time: Option<DateTime>,
    pub framing: Option<Framing>,
}

/// Decodes one photo for [`render_pictures`]: upright, regions destroyed
/// at full size, then shrunk to fit a `side` square (decoded reduced when
/// it has no regions). Returns the picture and the clipped-region notes.
pub fn decode_picture(
    input: &Input,
    opts: &CaseOptions,
    side: u32,
) -> Result<(RgbImage, Probe, Vec<String>)> {
    let mut specs = opts.regions.for_photo(&input.rel);
    specs.extend(input.regions.iter().cloned());
    let tile = TileOptions {
        limits: opts.limits,
        fit: side,
        redaction: (!specs.is_empty()).then_some(Redaction {
            regions: &specs,
            default_effect: opts.regions.effect,
            fill: opts.regions.fill,
        }),
        target: None,
        framing: Framing::default(),
    };
    let ext = input.extension.as_deref();
    let probe = probe_tile(&input.bytes, ext, &tile).map_err(|e| named(&input.name, e))?;
    let p =
        super::prepare_probed(&input.bytes, &probe, &tile).map_err(|e| named(&input.name, e))?;
    input.bytes.confirm().map_err(|e| named(&input.name, e))?;
    let probe = Probe {
        upright: probe.upright.or(Some(p.image.dimensions())),
        ..probe
    };
    Ok((p.image, probe, p.warnings))
}

/// The collage of pictures already decoded ([`decode_picture`]): the same
/// order, labels, layout and drawing as [`render`], each panel cropped
/// from its picture. Fast enough for a live preview.
pub fn render_pictures(pics: Vec<Picture>, opts: &CaseOptions, order: Order) -> Result<Made> {
    let n = pics.len();
    if n < 2 {
        return Err(Error::Invalid(format!(
            "a collage needs at least two photos, found {n}"
        )));
    }
    check_counts(opts, n)?;
    let pics = match order {
        Order::Given => pics,
        Order::Capture => {
            let keys: Vec<SortKey> = pics
                .iter()
                .map(|p| SortKey {
                    capture: p.capture,
                    file_time: p.file_time,
                    name: p.name.clone(),
                })
                .collect();
            in_chronological_order(pics, &keys)
        }
    };
    let times: Vec<Option<DateTime>> = pics.iter().map(|p| p.capture.or(p.file_time)).collect();
    let labels = labels_for(&times, opts)?;
    let sizes: Vec<(u32, u32)> = pics.iter().map(|p| p.upright).collect();
    let plan = super::plan(&sizes, &opts.collage)?;
    let framings: Vec<Framing> = pics
        .iter()
        .map(|p| {
            p.framing
                .unwrap_or_else(|| framing_for(&opts.framing, &p.rel))
        })
        .collect();
    let crops: Vec<super::FRect> = pics
        .iter()
        .zip(&plan.tiles)
        .zip(&framings)
        .map(|((p, r), f)| f.crop(p.upright, (r.w, r.h)))
        .collect();
    let panels: Vec<RgbImage> = pics
        .par_iter()
        .zip(plan.tiles.par_iter())
        .zip(crops.par_iter())
        .enumerate()
        .map(|(i, ((p, r), c))| {
            let mut img = super::crop_resize(&p.image, *c, (r.w, r.h));
            if opts.flip.contains(&(i as u32 + 1)) {
                flip(&mut img);
            }
            img
        })
        .collect();
    let image = draw_planned(&plan, &panels, &labels, &opts.collage)?;
    Ok(Made {
        image,
        plan,
        order: pics.iter().map(|p| p.name.clone()).collect(),
        labels,
        notes: Vec::new(),
        crops,
        frames: Vec::new(),
    })
}

/// [`render`], encoded with no metadata and audited: (bytes, what was drawn).
pub fn make(inputs: Vec<Input>, opts: &CaseOptions, order: Order) -> Result<(Vec<u8>, Made)> {
    let mut made = render(inputs, opts, order)?;
    let bytes = match opts.format {
        Format::Gif => {
            let bytes = super::animate::encode_gif(&made.frames, opts.transition)?;
            pipeline::audit_encoded(&bytes, Format::Gif, 1, &opts.limits)?;
            bytes
        }
        f => super::encode(&mut made.image, f, opts.quality, &opts.limits)?,
    };
    Ok((bytes, made))
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Subfolders of `dir`, sorted, without hidden ones and the output folder.
pub fn list_cases(dir: &Path, output: &Path) -> std::io::Result<Vec<PathBuf>> {
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
pub fn list_photos(case: &Path) -> Result<Vec<PathBuf>> {
    let io = |e| Error::Io {
        context: "cannot read folder",
        source: e,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(case).map_err(io)? {
        let path = entry.map_err(io)?.path();
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

/// The name a manifest row matches: the path under `base` (the `--cases`
/// folder: `case/photo.jpg`), or the file name without one.
pub fn manifest_name(path: &Path, base: Option<&Path>) -> String {
    let rel = match base {
        Some(b) => path.strip_prefix(b).unwrap_or(path),
        None => Path::new(path.file_name().unwrap_or(path.as_os_str())),
    };
    rel.to_string_lossy().replace('\\', "/")
}

/// The name a case goes by in the consent register and the map: its folder name.
pub fn case_label(case: &Path) -> String {
    case.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A case's collage, made.
#[derive(Debug, Clone)]
pub struct CaseDone {
    pub dest: PathBuf,
    pub photos: usize,
    /// An identical file was there already.
    pub up_to_date: bool,
    pub notes: Vec<String>,
}

/// One case folder, start to finish: the consent gate (before anything is
/// read), its photos in capture order, the collage, published into
/// `out_dir` under the case's pseudonym. Manifest and framing rows match
/// `case/photo.jpg` (the path under the case folder's parent).
pub fn run_case(
    case: &Path,
    out_dir: &Path,
    naming: &Naming,
    opts: &CaseOptions,
    write: WriteMode,
) -> Result<CaseDone> {
    let label = case_label(case);
    if let Some(gate) = &opts.consent {
        gate.register.check(&label, &gate.purpose)?;
    }
    run_listed(case, &list_photos(case)?, out_dir, naming, opts, write)
}

/// [`run_case`] of the photos `files` of `case` (a frozen listing: a
/// sharded run's plan), past the consent gate.
pub fn run_case_photos(
    case: &Path,
    files: &[PathBuf],
    out_dir: &Path,
    naming: &Naming,
    opts: &CaseOptions,
    write: WriteMode,
) -> Result<CaseDone> {
    if let Some(gate) = &opts.consent {
        gate.register.check(&case_label(case), &gate.purpose)?;
    }
    run_listed(case, files, out_dir, naming, opts, write)
}

fn run_listed(
    case: &Path,
    files: &[PathBuf],
    out_dir: &Path,
    naming: &Naming,
    opts: &CaseOptions,
    write: WriteMode,
) -> Result<CaseDone> {
    let label = case_label(case);
    let (bytes, made) = make_listed(case, files, opts)?;
    let name = naming.pseudonym_for_label(&label)?;
    let dest = out_dir.join(format!("{name}.{}", opts.format.extension()));
    let up_to_date = super::publish(&dest, &bytes, opts.format, write, &opts.limits)?;
    Ok(CaseDone {
        dest,
        photos: made.order.len(),
        up_to_date,
        notes: made.notes,
    })
}

/// A case folder's collage, in memory: (bytes, what was drawn).
pub fn make_case(case: &Path, opts: &CaseOptions) -> Result<(Vec<u8>, Made)> {
    make_listed(case, &list_photos(case)?, opts)
}

fn make_listed(case: &Path, files: &[PathBuf], opts: &CaseOptions) -> Result<(Vec<u8>, Made)> {
    if files.len() < 2 {
        return Err(Error::Invalid(format!(
            "a collage needs at least two photos, the folder has {}",
            files.len()
        )));
    }
    check_counts(opts, files.len())?;
    let inputs: Vec<Input> = files
        .par_iter()
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Input::read(p, name.clone(), manifest_name(p, case.parent()))
                .map_err(|e| named(&name, e))
        })
        .collect::<Result<_>>()?;
    make(inputs, opts, Order::Capture)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Limits;

    fn jpeg(img: &RgbImage) -> Vec<u8> {
        super::super::encode(&mut img.clone(), Format::Jpeg, 95, &Limits::default()).unwrap()
    }

    fn input(name: &str, img: &RgbImage) -> Input {
        Input {
            name: name.into(),
            rel: format!("case/{name}"),
            bytes: jpeg(img).into(),
            extension: Some("jpg".into()),
            file_time: None,
            regions: Vec::new(),
            framing: None,
        }
    }

    /// A quadrant target: red top-left, green top-right, blue bottom-left,
    /// white bottom-right.
    fn quadrants(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb(match (x < w / 2, y < h / 2) {
                (true, true) => [230, 20, 20],
                (false, true) => [20, 230, 20],
                (true, false) => [20, 20, 230],
                (false, false) => [250, 250, 250],
            })
        })
    }

    fn near(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 30)
    }

    #[test]
    fn portrait_and_landscape_panels_come_out_the_same_size() {
        let opts = CaseOptions::default();
        let made = render(
            vec![
                input("a.jpg", &quadrants(400, 300)),
                input("b.jpg", &quadrants(300, 400)),
            ],
            &opts,
            Order::Given,
        )
        .unwrap();
        let t = &made.plan.tiles;
        assert_eq!((t[0].w, t[0].h), (t[1].w, t[1].h));
        // The portrait photo is cropped, centred: all four colours show.
        let r = t[1];
        let px = |fx: f64, fy: f64| {
            made.image
                .get_pixel(
                    r.x + (r.w as f64 * fx) as u32,
                    r.y + (r.h as f64 * fy) as u32,
                )
                .0
        };
        assert!(near(px(0.2, 0.2), [230, 20, 20]), "{:?}", px(0.2, 0.2));
        assert!(near(px(0.8, 0.8), [250, 250, 250]));
    }

    #[test]
    fn framing_moves_the_content_as_asked() {
        // Zoom 2 centred on the top-left quadrant's centre: the panel is all red.
        let mut a = input("a.jpg", &quadrants(800, 600));
        a.framing = Some(Framing::Zoom {
            zoom: 2.0,
            cx: 0.25,
            cy: 0.25,
        });
        // Zoom 2 on the bottom-right quadrant: all white.
        let mut b = input("b.jpg", &quadrants(800, 600));
        b.framing = Some(Framing::Zoom {
            zoom: 2.0,
            cx: 0.75,
            cy: 0.75,
        });
        let mut opts = CaseOptions::default();
        opts.collage.size = Some((1080, 1080));
        let made = render(vec![a, b], &opts, Order::Given).unwrap();
        assert_eq!(made.image.dimensions(), (1080, 1080));
        for (i, want) in [[230, 20, 20], [250, 250, 250]].into_iter().enumerate() {
            let r = made.plan.tiles[i];
            for (fx, fy) in [(0.1, 0.1), (0.9, 0.1), (0.5, 0.5), (0.1, 0.9), (0.9, 0.9)] {
                let p = made
                    .image
                    .get_pixel(
                        r.x + (r.w as f64 * fx) as u32,
                        r.y + (r.h as f64 * fy) as u32,
                    )
                    .0;
                assert!(near(p, want), "panel {i} at {fx},{fy}: {p:?}");
            }
        }
    }

    #[test]
    fn a_region_stays_destroyed_after_framing_and_resizing() {
        // The region covers the top-left quadrant; framing zooms right onto it.
        let spec: RegionSpec = "0,0,50%,50%:fill".parse().unwrap();
        let mut a = input("a.jpg", &quadrants(1600, 1200));
        a.regions = vec![spec.clone()];
        a.framing = Some(Framing::Zoom {
            zoom: 3.0,
            cx: 0.2,
            cy: 0.2,
        });
        let mut b = input("b.jpg", &quadrants(1600, 1200));
        b.regions = vec![spec];
        let mut opts = CaseOptions::default();
        opts.collage.size = Some((1080, 1350));
        opts.regions.fill = [0, 0, 0];
        let made = render(vec![a, b], &opts, Order::Given).unwrap();
        let r = made.plan.tiles[0];
        let mut dark = 0;
        for y in r.y + 2..r.y + r.h - 2 {
            for x in r.x + 2..r.x + r.w - 2 {
                let p = made.image.get_pixel(x, y).0;
                assert!(p[0] < 40, "red shows through at {x},{y}: {p:?}");
                dark += 1;
            }
        }
        assert!(dark > 1000);
        // In the unframed panel the quadrant is black and the others show.
        let r = made.plan.tiles[1];
        let at = |fx: f64, fy: f64| {
            made.image
                .get_pixel(
                    r.x + (r.w as f64 * fx) as u32,
                    r.y + (r.h as f64 * fy) as u32,
                )
                .0
        };
        assert!(near(at(0.1, 0.3), [0, 0, 0]), "{:?}", at(0.1, 0.3));
        assert!(near(at(0.1, 0.7), [20, 20, 230]));
    }

    #[test]
    fn a_photo_cut_short_while_the_collage_is_drawn_fails_by_name() {
        let dir = tempfile::tempdir().unwrap();
        // Noise, so the JPEG is large enough to be mapped.
        let mut seed = 7u32;
        let noisy = RgbImage::from_fn(900, 700, |_, _| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            image::Rgb([(seed >> 24) as u8, (seed >> 16) as u8, (seed >> 8) as u8])
        });
        let bytes = jpeg(&noisy);
        assert!(bytes.len() >= crate::mapped::MIN_LEN, "{}", bytes.len());
        let (a, b) = (dir.path().join("a.jpg"), dir.path().join("b.jpg"));
        std::fs::write(&a, &bytes).unwrap();
        std::fs::write(&b, &bytes).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let read =
            |p: &Path, name: &str| Input::read(p, name.into(), format!("case/{name}")).unwrap();
        let opts = CaseOptions::default();
        let made = render(
            vec![read(&a, "a.jpg"), read(&b, "b.jpg")],
            &opts,
            Order::Given,
        )
        .unwrap();
        assert_eq!(made.order, ["a.jpg", "b.jpg"]);
        let (ia, ib) = (read(&a, "a.jpg"), read(&b, "b.jpg"));
        assert!(
            format!("{:?}", ib.bytes).contains("mapped"),
            "{:?}",
            ib.bytes
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&b)
            .unwrap()
            .set_len(bytes.len() as u64 / 2)
            .unwrap();
        let err = render(vec![ia, ib], &opts, Order::Given)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("b.jpg: "), "{err}");
    }

    #[test]
    fn capture_order_and_counts() {
        let mut opts = CaseOptions {
            labels: Some(vec!["A".into()]),
            ..CaseOptions::default()
        };
        let two = || {
            vec![
                input("a.jpg", &quadrants(64, 48)),
                input("b.jpg", &quadrants(64, 48)),
            ]
        };
        let e = render(two(), &opts, Order::Capture).unwrap_err();
        assert!(e.to_string().contains("--labels gives 1"), "{e}");
        opts.labels = None;
        opts.flip = vec![3];
        assert!(render(two(), &opts, Order::Capture).is_err());
        opts.flip = vec![];
        let mut inputs = two();
        inputs[0].file_time = DateTime::parse_exif("2022:01:01 00:00:00");
        inputs[1].file_time = DateTime::parse_exif("2021:01:01 00:00:00");
        let made = render(inputs, &opts, Order::Capture).unwrap();
        assert_eq!(made.order, ["b.jpg", "a.jpg"]);
        assert_eq!(made.labels, ["Before", "After"]);
    }

    /// The preview path (pictures decoded once, shrunk) draws the same
    /// collage as the export path, at the same size and layout.
    #[test]
    fn preview_pictures_match_the_export() {
        let mut opts = CaseOptions::default();
        opts.collage.size = Some((600, 750));
        let mut a = input("a.jpg", &quadrants(1600, 1200));
        a.framing = Some(Framing::Zoom {
            zoom: 1.5,
            cx: 0.4,
            cy: 0.6,
        });
        let b = input("b.jpg", &quadrants(1200, 1600));
        let full = render(vec![a.clone(), b.clone()], &opts, Order::Given).unwrap();
        let pics: Vec<Picture> = [a, b]
            .iter()
            .map(|i| {
                let (image, probe, _) = decode_picture(i, &opts, 800).unwrap();
                Picture {
                    name: i.name.clone(),
                    rel: i.rel.clone(),
                    image: std::sync::Arc::new(image),
                    upright: probe.upright.unwrap(),
                    capture: probe.capture,
                    file_time: None,
                    framing: i.framing,
                }
            })
            .collect();
        let fast = render_pictures(pics, &opts, Order::Given).unwrap();
        assert_eq!(fast.plan, full.plan);
        assert_eq!(fast.crops, full.crops);
        let p = crate::test_util::psnr(&fast.image, &full.image);
        assert!(p > 28.0, "PSNR {p:.1} dB");
    }
}
