//! `photodeid collage`: flags to [`case::CaseOptions`], then the library's
//! case pipeline: photos in the given order → one collage, or one collage
//! per case folder (`--cases`), ordered by capture time and named by a
//! pseudonym. A failed or refused case is reported as
//! `photodeid: <case>: <reason>` and the other cases go on; the exit code
//! is then 1.

use super::args::{AlignArg, CollageArgs, CollageFormatArg, LayoutArg, TransitionArg};
use super::common::{check_map, naming, refuse_inside, write_map, Keep, NameChoice};
use super::progress::{Audience, Progress};
use super::{print_error, show};
use anyhow::{bail, Context};
use photodeid::collage::align::Align;
use photodeid::collage::animate::Transition;
use photodeid::collage::case::{self, CaseOptions, Gate, Input, Order, RegionSource};
use photodeid::collage::consent::{check_purpose, Register};
use photodeid::collage::framing::{manifest_framing, read_framing};
use photodeid::collage::style::Style;
use photodeid::collage::{self, parse_color, CollageOptions, Corner, Layout, Logo};
use photodeid::commit::WriteMode;
use photodeid::{layout, region};
use photodeid::{FileError, Format, Limits};
use rayon::prelude::*;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(mut a: CollageArgs) -> anyhow::Result<ExitCode> {
    super::common::check_faces_available(&a.region)?;
    if a.align.is_some() && !photodeid::faces::AVAILABLE {
        bail!("{}", case::align_unavailable());
    }
    let opts = options(&a)?;
    let write = WriteMode {
        overwrite: a.overwrite,
        sync: false,
    };
    // Many collages: a logo whose pixels do not decode fails once, before
    // any (one collage decodes it while its photos decode).
    if let (Some(_), Some(logo)) = (&a.cases, &opts.collage.logo) {
        logo.check()?;
    }
    if let (Some(dir), Some(_)) = (a.cases.clone(), &a.run_dir) {
        let digest = super::shard::collage_options_digest(&mut a);
        return super::shard::collage_cases(&a, &dir, &opts, write, digest);
    }
    match &a.cases {
        Some(dir) => run_cases(&a, dir, &opts, write),
        None => run_photos(&a, &opts, write),
    }
}

/// Every flag (and the `--style` file under them) as library options.
pub(super) fn options(a: &CollageArgs) -> anyhow::Result<CaseOptions> {
    let style = match &a.style {
        Some(p) => Style::read(p)?,
        None => Style::default(),
    };
    let color =
        |flag: &Option<String>, style: Option<[u8; 3]>, default: [u8; 3], name: &str| match flag {
            Some(s) => parse_color(s).map_err(|e| anyhow::anyhow!("--{name}: {e}")),
            None => Ok(style.unwrap_or(default)),
        };
    let logo = match (&a.logo, &style.logo) {
        (None, None) => None,
        (file, s) => {
            let path = file
                .clone()
                .or_else(|| s.as_ref().map(|l| l.file.clone()))
                .expect("one of the two");
            let corner: Corner = match &a.logo_corner {
                Some(c) => c
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--logo-corner: {e}"))?,
                None => s.as_ref().and_then(|l| l.corner).unwrap_or_default(),
            };
            let size = a
                .logo_size
                .or(s.as_ref().and_then(|l| l.size))
                .unwrap_or(0.18);
            let opacity = a
                .logo_opacity
                .or(s.as_ref().and_then(|l| l.opacity))
                .unwrap_or(1.0);
            Some(Logo::read(&path, corner, size, opacity)?)
        }
    };
    if logo.is_none()
        && (a.logo_corner.is_some() || a.logo_size.is_some() || a.logo_opacity.is_some())
    {
        bail!("--logo-corner, --logo-size and --logo-opacity need --logo (or a [logo] in --style)");
    }
    let layout = match a.layout {
        Some(l) => match l {
            LayoutArg::Auto => Layout::Auto,
            LayoutArg::Row => Layout::Row,
            LayoutArg::Column => Layout::Column,
            LayoutArg::Grid => Layout::Grid,
            LayoutArg::Feature => Layout::Feature,
        },
        None => style.layout.unwrap_or_default(),
    };
    let text = |flag: &Option<String>, style: &Option<String>| {
        flag.clone()
            .or_else(|| style.clone())
            .filter(|t| !t.trim().is_empty())
    };
    // The regions manifest's framing column, then --framing (its rows win: the last match counts).
    let mut framing = match &a.region.regions_file {
        Some(p) => manifest_framing(p)?,
        None => Vec::new(),
    };
    if let Some(p) = &a.framing {
        framing.extend(read_framing(p)?);
    }
    let consent = match (&a.consent, &a.purpose) {
        (Some(path), purpose) => {
            refuse_inside(path, &a.output, Keep::OutOfOutput, "--consent")?;
            let register = Register::read(path)?;
            match purpose {
                Some(p) => Some(Gate {
                    register,
                    purpose: check_purpose(p).map_err(|e| anyhow::anyhow!("--purpose: {e}"))?,
                }),
                None => {
                    bail!("--consent needs --purpose (the use the collage is for, as social-media)")
                }
            }
        }
        (None, _) => None,
    };
    let format = match &a.cases {
        Some(_) => match a.format {
            CollageFormatArg::Jpg => Format::Jpeg,
            CollageFormatArg::Png => Format::Png,
            CollageFormatArg::Webp => Format::Webp,
            CollageFormatArg::Gif => Format::Gif,
        },
        None => format_of(&a.output)?,
    };
    if a.transition != TransitionArg::Cut && format != Format::Gif {
        bail!(
            "--transition is for an animated collage: name it .gif (or --format gif with --cases)"
        );
    }
    Ok(CaseOptions {
        collage: CollageOptions {
            layout,
            size: a.size.or(style.size),
            max_width: a.max_width,
            title: text(&a.title, &style.title),
            footer: text(&a.footer, &style.footer),
            background: color(
                &a.background,
                style.background,
                collage::BACKGROUND,
                "background",
            )?,
            label_color: color(
                &a.label_color,
                style.label_color,
                collage::INK,
                "label-color",
            )?,
            logo,
        },
        limits: Limits {
            max_pixels: a.max_megapixels.saturating_mul(1_000_000),
            ..Limits::default()
        },
        regions: RegionSource {
            every: a.region.regions.clone(),
            manifest: match &a.region.regions_file {
                Some(path) => region::read_manifest(path).map_err(|e| anyhow::anyhow!(e))?,
                None => Vec::new(),
            },
            effect: a.region.effect.into(),
            fill: a.region.fill_color,
            faces: super::common::face_options(&a.region),
        },
        framing,
        labels: a.labels.as_deref().map(collage::parse_labels),
        time_labels: a.time_labels,
        flip: a.flip.clone(),
        format,
        quality: a.quality,
        consent,
        align: a.align.map(|a| match a {
            AlignArg::Faces => Align::Faces,
            AlignArg::Eyes => Align::Eyes,
        }),
        transition: match a.transition {
            TransitionArg::Cut => Transition::Cut,
            TransitionArg::Wipe => Transition::Wipe,
        },
    })
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
        Some("gif") => Format::Gif,
        _ => bail!(
            "{}: the collage needs a .jpg, .png, .webp or .gif (animated) name",
            path.display()
        ),
    })
}

fn print_notes(notes: &[String]) {
    for n in notes {
        say!("photodeid: {n}");
    }
}

/// Collage of the photos named on the command line, in that order.
fn run_photos(a: &CollageArgs, opts: &CaseOptions, write: WriteMode) -> anyhow::Result<ExitCode> {
    let n = a.photos.len();
    if n < 2 {
        bail!("a collage needs at least two photos, got {n}");
    }
    case::check_counts(opts, n).map_err(anyhow::Error::new)?;
    if a.photos.iter().any(|p| same_file(p, &a.output)) {
        bail!(
            "{}: the collage would replace one of its photos",
            a.output.display()
        );
    }
    if let Some(gate) = &opts.consent {
        // The case is the folder the photos are in.
        let folders: std::collections::BTreeSet<String> = a
            .photos
            .iter()
            .map(|p| {
                let parent = p
                    .canonicalize()
                    .ok()
                    .and_then(|c| c.parent().map(Path::to_path_buf));
                parent.map(|d| case::case_label(&d)).unwrap_or_default()
            })
            .collect();
        let [label] = folders.iter().collect::<Vec<_>>()[..] else {
            bail!(
                "--purpose: the photos come from {} folders; the consent register names one case (folder) per collage",
                folders.len()
            );
        };
        if let Err(e) = gate.register.check(label, &gate.purpose) {
            print_error(&FileError::new(&a.output, e));
            return Ok(ExitCode::from(1));
        }
    }
    let rels: Vec<String> = a
        .photos
        .iter()
        .map(|p| case::manifest_name(p, None))
        .collect();
    if report_unmatched(a, &opts.regions, &rels) {
        return Ok(ExitCode::from(1));
    }
    let read: Vec<_> = a
        .photos
        .par_iter()
        .zip(&rels)
        .map(|(p, rel)| Input::read(p, show(p).to_string(), rel.clone()))
        .collect();
    let mut inputs = Vec::new();
    let mut failed = false;
    for (path, r) in a.photos.iter().zip(read) {
        match r {
            Ok(i) => inputs.push(i),
            Err(e) => {
                print_error(&FileError::new(path, e));
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    let result = case::make(inputs, opts, Order::Given).and_then(|(bytes, made)| {
        print_notes(&made.notes);
        collage::publish(&a.output, &bytes, opts.format, write, &opts.limits)
    });
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
fn run_cases(
    a: &CollageArgs,
    dir: &Path,
    opts: &CaseOptions,
    write: WriteMode,
) -> anyhow::Result<ExitCode> {
    if format_of(&a.output).is_ok() && !a.output.is_dir() {
        bail!(
            "with --cases, -o is an output folder, not {}",
            a.output.display()
        );
    }
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create output folder {}", a.output.display()))?;
    let choice = NameChoice {
        random: a.random_names,
        key: a.name_key.as_deref(),
        ..NameChoice::default()
    };
    let naming = naming(choice, &a.output, a.quiet)?;
    // Each collage in its case folder, beside the photos `clean` put there;
    // sharded runs keep one flat folder (their merge lists it).
    let folders = (!a.flat && a.shard.is_none()).then(|| layout::Folders::new(naming.clone()));
    let map_mode = match &a.map {
        Some(map) => Some(check_map(map, &a.output, a.overwrite)?),
        None => None,
    };
    let cases = case::list_cases(dir, &a.output)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    if cases.is_empty() {
        bail!(
            "{}: no case folders in it (one subfolder per case)",
            dir.display()
        );
    }
    if !opts.regions.manifest.is_empty() {
        let rels: Vec<String> = cases
            .iter()
            .filter_map(|c| case::list_photos(c).ok())
            .flatten()
            .map(|p| case::manifest_name(&p, Some(dir)))
            .collect();
        if report_unmatched(a, &opts.regions, &rels) {
            return Ok(ExitCode::from(1));
        }
    }
    let mut rows = Vec::new();
    let mut failed = false;
    let progress = Progress::new(cases.len() as u64, "cases", Audience::pick(a.quiet, false));
    for c in &cases {
        let made = match &folders {
            Some(f) => layout::run_case(c, &a.output, f, opts, write),
            None => case::run_case(c, &a.output, &naming, opts, write),
        };
        match made {
            Ok(done) => {
                progress.suspend(|| {
                    print_notes(&done.notes);
                    report(a, &done.dest, done.photos, done.up_to_date)
                });
                rows.push((c.display().to_string(), done.dest.display().to_string()));
            }
            Err(e) => {
                progress.suspend(|| print_error(&FileError::new(c, e)));
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
        say!(
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
    let line = if up_to_date {
        format!("{}: up to date ({n} photos)", show(dest))
    } else {
        format!("{}: collage of {n} photos", show(dest))
    };
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Prints the manifest rows that match no photo; true if there were any.
fn report_unmatched(a: &CollageArgs, regions: &RegionSource, rels: &[String]) -> bool {
    let unmatched = regions.unmatched(rels);
    let path = a
        .region
        .regions_file
        .as_deref()
        .unwrap_or(Path::new("regions"));
    for msg in &unmatched {
        print_error(&FileError::new(
            path,
            photodeid::Error::Invalid(msg.clone()),
        ));
    }
    !unmatched.is_empty()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
