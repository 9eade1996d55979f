//! Shared helpers: the built binary, fixture paths, independent readers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_photodeid"));
    c.env("XDG_DATA_HOME", data_home());
    c
}

/// The data folder spawned binaries see (`XDG_DATA_HOME`), one per test
/// process: a default name key is never written into the real home.
pub fn data_home() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp data folder"))
        .path()
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run photodeid")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The strings injected into fixtures that must never survive.
pub fn canaries() -> Vec<String> {
    std::fs::read_to_string(fixtures().join("CANARIES.txt"))
        .expect("CANARIES.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// All regular files below `dir`, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

/// Pixels as decoded by the image crate (independent of our container code).
pub fn decode(path: &Path) -> image::DynamicImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// EXIF orientation read by kamadak-exif, 1 when absent.
pub fn exif_orientation(path: &Path) -> u32 {
    let file = std::fs::File::open(path).unwrap();
    let mut r = std::io::BufReader::new(file);
    match exif::Reader::new().read_from_container(&mut r) {
        Ok(e) => e
            .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            .unwrap_or(1),
        Err(_) => 1,
    }
}

/// All EXIF fields kamadak-exif finds, as tag names.
pub fn exif_tags(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap();
    let mut r = std::io::BufReader::new(file);
    match exif::Reader::new().read_from_container(&mut r) {
        Ok(e) => e.fields().map(|f| f.tag.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

/// What a viewer shows: stored pixels with the EXIF orientation applied.
pub fn upright(path: &Path) -> image::RgbaImage {
    let mut img = decode(path);
    if let Some(o) = image::metadata::Orientation::from_exif(exif_orientation(path) as u8) {
        img.apply_orientation(o);
    }
    img.to_rgba8()
}

pub fn exiftool() -> Option<Command> {
    let ok = Command::new("exiftool")
        .arg("-ver")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        // CI installs exiftool: there its absence is a failure, not a skip.
        assert!(std::env::var_os("CI").is_none(), "exiftool missing on CI");
        eprintln!("exiftool not installed: cross-check skipped locally");
        return None;
    }
    Some(Command::new("exiftool"))
}
