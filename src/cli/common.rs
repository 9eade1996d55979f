//! Helpers shared by the commands that name outputs: the naming scheme from
//! `--keep-names` / `--name-key`, the guard that keeps re-identifying files
//! out of the shared output, and the original → pseudonym map.

use super::args::{CleaningArgs, OrientationArg, RegionArgs};
use anyhow::{bail, Context};
use photodeid::commit::{self, WriteMode};
use photodeid::faces::{self, FaceOptions};
use photodeid::pipeline::{CleanOptions, FileSettings, OrientationMode};
use photodeid::pseudonym::{self, Naming};
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

/// The naming scheme: kept names, keyed pseudonyms (`--name-key`, the key is
/// created when missing), or random pseudonyms.
pub fn naming(
    keep_names: bool,
    name_key: Option<&Path>,
    out_dir: &Path,
    quiet: bool,
) -> anyhow::Result<Naming> {
    if keep_names {
        return Ok(Naming::Keep);
    }
    let Some(key_path) = name_key else {
        return Ok(Naming::Random);
    };
    refuse_inside(key_path, out_dir, Keep::OutOfOutput, "--name-key")?;
    let (key, created) = pseudonym::load_or_create_key(key_path)
        .with_context(|| format!("name key {}", key_path.display()))?;
    if created && !quiet {
        eprintln!(
            "photodeid: created a new name key in {} (keep it private: it links names across runs)",
            key_path.display()
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
    let (Ok(p), Ok(d)) = (parent.canonicalize(), dir.canonicalize()) else {
        return Ok(());
    };
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

/// Refuses an existing map unless `--overwrite`, before any work is done.
pub fn check_map(map: &Path, out_dir: &Path, overwrite: bool) -> anyhow::Result<()> {
    refuse_inside(map, out_dir, Keep::OutOfOutput, "--map")?;
    if map.exists() && !overwrite {
        bail!(
            "map file {} exists (use --overwrite to replace it)",
            map.display()
        );
    }
    Ok(())
}

/// Writes the `original,pseudonym` CSV atomically, rows sorted.
pub fn write_map(path: &Path, rows: &[(String, String)], overwrite: bool) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["original", "pseudonym"])?;
    let mut sorted: Vec<&(String, String)> = rows.iter().collect();
    sorted.sort();
    for (orig, out) in sorted {
        w.write_record([orig, out])?;
    }
    let bytes = w.into_inner().context("map")?;
    commit::write_atomic(
        path,
        &bytes,
        WriteMode {
            overwrite,
            sync: true,
        },
    )
    .with_context(|| format!("cannot write map {}", path.display()))?;
    Ok(())
}
