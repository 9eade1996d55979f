//! Helpers shared by the commands that name outputs: the naming scheme from
//! `--keep-names` / `--random-names` / `--name-key`, the guard that keeps re-identifying files
//! out of the shared output, and the original → pseudonym map.

use super::args::{CleaningArgs, OrientationArg, RegionArgs};
use anyhow::{bail, Context};
use photodeid::commit::{self, WriteMode};
use photodeid::faces::{self, FaceOptions};
use photodeid::layout;
use photodeid::pipeline::{CleanOptions, FileSettings, OrientationMode};
use photodeid::pseudonym::Naming;
use photodeid::region::ManifestRow;
use photodeid::Limits;
use std::path::Path;

/// Largest input file read (bytes): far above any photo, below memory trouble.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The per-file settings from the cleaning options shared by `clean` and `watch`
/// (writes: no overwrite, no sync; callers adjust).
pub fn file_settings(c: &CleaningArgs, manifest: Vec<ManifestRow>) -> FileSettings<'static> {
    FileSettings {
        clean: CleanOptions {
            strip_icc: c.strip_icc,
            thorough: c.thorough,
            orientation: match c.orientation {
                OrientationArg::Keep => OrientationMode::Keep,
                OrientationArg::Apply => OrientationMode::Apply,
            },
            limits: Limits {
                max_pixels: c.max_megapixels.saturating_mul(1_000_000),
                ..Limits::default()
            },
            quality: c.quality,
            redaction: None,
            keep: None,
        },
        write: WriteMode::default(),
        dry_run: false,
        max_file_bytes: MAX_FILE_BYTES,
        regions: c.region.regions.clone(),
        manifest,
        effect: c.region.effect.into(),
        fill: c.region.fill_color,
        faces: face_options(&c.region),
    }
}

/// `--faces[=T]` / `--eyes` as library options (`None`: no detection).
pub fn face_options(r: &RegionArgs) -> Option<FaceOptions> {
    (r.faces.is_some() || r.eyes).then(|| FaceOptions {
        threshold: r.faces.unwrap_or(faces::DEFAULT_THRESHOLD),
        faces: r.faces.is_some(),
        eyes: r.eyes,
    })
}

/// Refuses `--faces`/`--eyes` in a build without the detector, before any
/// file is touched: never a run that silently finds nothing.
pub fn check_faces_available(r: &RegionArgs) -> anyhow::Result<()> {
    if (r.faces.is_some() || r.eyes) && !faces::AVAILABLE {
        bail!("{}", faces::unavailable());
    }
    Ok(())
}

/// How outputs are named, as asked on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct NameChoice<'a> {
    /// `--keep-names`: the original names (they often identify).
    pub keep: bool,
    /// `--random-names`: one-off names that link to nothing.
    pub random: bool,
    /// `--name-key FILE` (else the default key in the user's data folder).
    pub key: Option<&'a Path>,
}

/// The naming scheme: kept names, random pseudonyms, or keyed ones (the
/// default): the key given, else the one in the user's data folder, created
/// once (folder 0700, file 0600) and its path printed when it is.
pub fn naming(choice: NameChoice, out_dir: &Path, quiet: bool) -> anyhow::Result<Naming> {
    if choice.keep {
        return Ok(Naming::Keep);
    }
    if choice.random {
        return Ok(Naming::Random);
    }
    let key_path = match choice.key {
        Some(p) => p.to_path_buf(),
        None => layout::default_key_path().context(
            "no data folder for the name key (HOME is not set): give --name-key FILE or --random-names",
        )?,
    };
    refuse_inside(&key_path, out_dir, Keep::OutOfOutput, "--name-key")?;
    let (key, created) = layout::load_or_create_key(&key_path)
        .with_context(|| format!("name key {}", key_path.display()))?;
    if created && !quiet {
        say!(
            "photodeid: created a name key in {} (keep it private: it gives the same photo the \
             same name on every run)",
            super::show(&key_path)
        );
    }
    Ok(Naming::Keyed(key))
}

/// A folder a private file (the map, the name key) must stay out of.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    /// The shared output: the map and the key re-identify patients.
    OutOfOutput,
    /// The watched inbox: anything there is taken for a photo.
    OutOfInbox,
}

/// Refuses `path` (given as option `what`) when it lies inside `dir`.
pub fn refuse_inside(path: &Path, dir: &Path, keep: Keep, what: &str) -> anyhow::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Resolved even when not created yet: `-o out --map out/map.csv` on a
    // first run is as wrong as on the second.
    let (p, d) = (
        photodeid::watch::resolve(parent),
        photodeid::watch::resolve(dir),
    );
    if p.starts_with(&d) {
        let (folder, why) = match keep {
            Keep::OutOfOutput => ("the output folder", "it links photos back to patients"),
            Keep::OutOfInbox => ("the inbox", "it would be taken for a photo"),
        };
        bail!(
            "{what} {} is inside {folder} {}: {why}; keep it elsewhere",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The header of every original -> pseudonym map.
pub const MAP_HEADER: [&str; 2] = ["original", "pseudonym"];

/// What to do with the map file at the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapMode {
    /// No map there yet: write it, never over one that appeared meanwhile.
    Create,
    /// `--overwrite`: replace whatever is there.
    Replace,
    /// A map of ours is there: add this run's rows to it.
    Append,
}

/// Checks the map before any work is done: outside the output, and either
/// new, replaced (`--overwrite`) or a map of ours to extend.
pub fn check_map(map: &Path, out_dir: &Path, overwrite: bool) -> anyhow::Result<MapMode> {
    refuse_inside(map, out_dir, Keep::OutOfOutput, "--map")?;
    if map.is_dir() {
        bail!("--map {} is a folder; name a file", map.display());
    }
    // The map is written like every output: a temporary file beside it,
    // then a rename. Creating one now proves both will work.
    let dir = map
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".photodeid-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot write map {} (its folder {} must exist and be writable)",
                map.display(),
                dir.display()
            )
        })?;
    if overwrite {
        return Ok(MapMode::Replace);
    }
    if !map.exists() {
        return Ok(MapMode::Create);
    }
    check_map_header(map)?;
    Ok(MapMode::Append)
}

/// Refuses a non-empty file whose first row is not [`MAP_HEADER`]: appending
/// to someone else's CSV would corrupt it.
pub fn check_map_header(map: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(map).with_context(|| format!("cannot read map {}", map.display()))?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file);
    let mut first = csv::StringRecord::new();
    let has_row = rdr
        .read_record(&mut first)
        .with_context(|| format!("cannot read map {}", map.display()))?;
    if has_row && first.iter().ne(MAP_HEADER) {
        bail!(
            "map file {} is not a photodeid map (its header is {:?}, not \"{}\"): \
             choose another file, or --overwrite to replace it",
            map.display(),
            first.iter().collect::<Vec<_>>().join(","),
            MAP_HEADER.join(",")
        );
    }
    Ok(())
}

/// Writes the `original,pseudonym` CSV atomically, rows sorted. In append
/// mode the existing rows come first and rows already there are not repeated.
pub fn write_map(path: &Path, rows: &[(String, String)], mode: MapMode) -> anyhow::Result<()> {
    let mut existing: Vec<(String, String)> = Vec::new();
    if mode == MapMode::Append {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .with_context(|| format!("cannot read map {}", path.display()))?;
        for rec in rdr.records() {
            let rec = rec.with_context(|| format!("cannot read map {}", path.display()))?;
            existing.push((
                rec.get(0).unwrap_or_default().to_string(),
                rec.get(1).unwrap_or_default().to_string(),
            ));
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(MAP_HEADER)?;
    for (orig, out) in &existing {
        w.write_record([orig, out])?;
    }
    let mut sorted: Vec<&(String, String)> =
        rows.iter().filter(|r| !existing.contains(r)).collect();
    sorted.sort();
    for (orig, out) in sorted {
        w.write_record([orig, out])?;
    }
    let bytes = w.into_inner().context("map")?;
    commit::write_atomic(
        path,
        &bytes,
        WriteMode {
            overwrite: mode != MapMode::Create,
            sync: true,
        },
    )
    .with_context(|| format!("cannot write map {}", path.display()))?;
    Ok(())
}

/// `--keep` / `--shift-dates` as library options (`None`: keep no EXIF).
/// The date shift is keyed with the name key (`--name-key`, required).
pub fn keep_exif(
    c: &CleaningArgs,
    naming: &Naming,
) -> anyhow::Result<Option<photodeid::keep::KeepExif>> {
    use super::args::KeepArg;
    use photodeid::keep::TagGroup;
    if c.keep.is_empty() && !c.shift_dates {
        return Ok(None);
    }
    let mut groups: Vec<TagGroup> = Vec::new();
    for k in &c.keep {
        let g: &[TagGroup] = match k {
            KeepArg::Exposure => &[TagGroup::Exposure],
            KeepArg::Aperture => &[TagGroup::Aperture],
            KeepArg::Iso => &[TagGroup::Iso],
            KeepArg::FocalLength => &[TagGroup::FocalLength],
            KeepArg::Lens => &[TagGroup::Lens],
            KeepArg::WhiteBalance => &[TagGroup::WhiteBalance],
            KeepArg::Flash => &[TagGroup::Flash],
            KeepArg::Metering => &[TagGroup::Metering],
            KeepArg::Scene => &[TagGroup::Scene],
            KeepArg::All => &TagGroup::ALL,
        };
        groups.extend_from_slice(g);
    }
    groups.sort();
    groups.dedup();
    let shift_key = match (c.shift_dates, naming) {
        (false, _) => None,
        (true, Naming::Keyed(key)) => Some(*key),
        (true, _) => bail!("--shift-dates needs --name-key (the offsets are keyed with it)"),
    };
    Ok(Some(photodeid::keep::KeepExif {
        groups,
        shift_key,
        shift_seconds: None,
    }))
}
