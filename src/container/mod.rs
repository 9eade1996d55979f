//! Container parsers: one module per format, each splitting a file into
//! segments or chunks over borrowed bytes, classifying them for the audit and
//! writing back only what display needs. Every length read is checked.

pub mod complete;
pub mod gif;
pub mod heif;
pub mod jpeg;
pub mod png;
pub mod tiff;
pub mod vp8;
pub mod vp8l;
pub mod webp;

use crate::error::{Error, Result};
use crate::exif_block::{self, ExifSummary};
use crate::metadata::Inventory;
use serde::Serialize;

/// The formats photodeid can clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
    /// HEIF/HEIC (HEVC pictures).
    Heif,
    /// AVIF (AV1 pictures in the same container).
    Avif,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Webp => "WebP",
            Format::Gif => "GIF",
            Format::Tiff => "TIFF",
            Format::Heif => "HEIF",
            Format::Avif => "AVIF",
        }
    }

    /// The extension outputs get (pseudonyms carry no trace of the original's spelling).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tif",
            Format::Heif => "heic",
            Format::Avif => "avif",
        }
    }

    pub fn image_format(self) -> image::ImageFormat {
        match self {
            Format::Jpeg => image::ImageFormat::Jpeg,
            Format::Png => image::ImageFormat::Png,
            Format::Webp => image::ImageFormat::WebP,
            Format::Gif => image::ImageFormat::Gif,
            Format::Tiff => image::ImageFormat::Tiff,
            // Never decoded by `image`: see `pixels::decode`.
            Format::Heif | Format::Avif => image::ImageFormat::Avif,
        }
    }

    /// HEIF and AVIF share one container (ISOBMFF) and one module.
    pub fn is_heif(self) -> bool {
        matches!(self, Format::Heif | Format::Avif)
    }
}

/// Extensions of camera RAW formats, most of which are TIFF inside: they are
/// refused rather than cleaned as a TIFF that would lose the raw data.
const RAW_EXTENSIONS: &[&str] = &[
    "cr2", "cr3", "nef", "nrw", "arw", "srf", "sr2", "dng", "orf", "rw2", "pef", "raf", "srw",
    "3fr", "erf", "kdc", "mos", "mrw", "x3f", "iiq", "rwl",
];

/// Identifies the format by its magic bytes (never by the file name, except
/// to refuse TIFF-based RAW files). Known but unsupported formats are named.
pub fn sniff(bytes: &[u8], extension: Option<&str>) -> Result<Format> {
    if bytes.is_empty() {
        return Err(Error::Empty);
    }
    let ext = extension.map(|e| e.to_ascii_lowercase());
    if let Some(ext) = ext.as_deref().filter(|e| RAW_EXTENSIONS.contains(e)) {
        return Err(Error::Unsupported(format!(
            "camera RAW (.{ext}); export it to JPEG, PNG or TIFF first"
        )));
    }
    let starts = |m: &[u8]| bytes.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if starts(png::SIGNATURE) {
        return Ok(Format::Png);
    }
    if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Ok(Format::Webp);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if starts(b"II*\0") || starts(b"MM\0*") || starts(b"II+\0") || starts(b"MM\0+") {
        return Ok(Format::Tiff);
    }
    if let Some(f) = heif_brand(bytes) {
        return Ok(f);
    }
    Err(Error::Unsupported(describe_unsupported(bytes).to_string()))
}

/// HEIF/AVIF still-image brands (major or compatible) in an `ftyp` box.
/// Sequences (`msf1`, `hevc`, `avis`) are sniffed too, and refused by the parser.
fn heif_brand(b: &[u8]) -> Option<Format> {
    if b.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let size = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let body = b.get(8..size.min(b.len())).filter(|x| x.len() >= 8)?;
    let brands: Vec<&[u8]> = std::iter::once(&body[..4])
        .chain(body.get(8..).unwrap_or_default().chunks_exact(4))
        .collect();
    let has = |list: &[&[u8]]| brands.iter().any(|b| list.contains(b));
    if has(&[b"avif", b"avis"]) && !has(&[b"heic", b"heix", b"heim", b"heis"]) {
        return Some(Format::Avif);
    }
    has(&[
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
    ])
    .then_some(Format::Heif)
}

fn describe_unsupported(b: &[u8]) -> &'static str {
    let at = |i: usize, m: &[u8]| b.get(i..i + m.len()) == Some(m);
    if at(4, b"ftyp") {
        let brand = b.get(8..12).unwrap_or_default();
        return match brand {
            b"heic" | b"heix" | b"mif1" | b"msf1" | b"heim" | b"heis" | b"hevc" | b"hevx" => {
                "HEIC/HEIF image; export it to JPEG first"
            }
            b"avif" | b"avis" => "AVIF image",
            b"crx " => "camera RAW (CR3)",
            b"qt  " => "QuickTime video",
            _ => "ISO media file (video or HEIF)",
        };
    }
    if at(0, b"%PDF") {
        return "PDF document";
    }
    if at(0, b"BM") {
        return "BMP image";
    }
    if at(0, &[0x00, 0x00, 0x00, 0x0C, b'j', b'P']) || at(0, &[0xFF, 0x0A]) {
        return "JPEG 2000 / JPEG XL image";
    }
    if at(0, b"RIFF") {
        return "RIFF file that is not WebP (AVI/WAV?)";
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return "Matroska/WebM video";
    }
    if at(0, b"8BPS") {
        return "Photoshop document";
    }
    if at(0, &[0xFF, 0xD8]) {
        return "not a JPEG (bad start-of-image marker)";
    }
    "not an image photodeid knows (JPEG, PNG, WebP, GIF, TIFF, HEIF or AVIF)"
}

/// Guards against decompression bombs: checked on the header, before any decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_pixels: u64,
    /// Bytes the pixel decoder may allocate.
    pub max_alloc: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pixels: 200_000_000,
            max_alloc: 2 << 30,
        }
    }
}

pub(crate) fn check_dimensions(format: &str, w: u32, h: u32, limits: &Limits) -> Result<()> {
    let pixels = w as u64 * h as u64;
    if pixels > limits.max_pixels {
        return Err(Error::TooLarge(format!(
            "{format} header declares {w}x{h} pixels ({} MP, limit {} MP)",
            pixels / 1_000_000,
            limits.max_pixels / 1_000_000
        )));
    }
    Ok(())
}

/// What a lossless rewrite keeps besides the picture.
#[derive(Debug, Clone, Copy)]
pub struct RewritePolicy {
    pub keep_icc: bool,
    /// Orientation to keep as an Orientation-only EXIF block (never 1: that is the default).
    pub orientation: Option<u16>,
}

impl Default for RewritePolicy {
    fn default() -> Self {
        RewritePolicy {
            keep_icc: true,
            orientation: None,
        }
    }
}

/// A parsed file: the container structure plus what it carries.
#[derive(Debug)]
pub enum Container<'a> {
    Jpeg(jpeg::Jpeg<'a>),
    Png(png::Png<'a>),
    Webp(webp::Webp<'a>),
    Gif(gif::Gif<'a>),
    Tiff(tiff::Tiff<'a>),
    /// Boxed: the parse is much larger than the other variants.
    Heif(Box<heif::Heif<'a>>),
}

/// The parse of one file, shared by the scrubber and the audit.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub format: Format,
    pub container: Container<'a>,
    pub exif: ExifSummary,
    pub inventory: Inventory,
}

impl<'a> Parsed<'a> {
    pub fn orientation(&self) -> u16 {
        self.exif.orientation.unwrap_or(1)
    }

    /// The embedded ICC profile, when the container has one we can carry into a re-encode.
    pub fn icc_profile(&self) -> Option<Vec<u8>> {
        match &self.container {
            Container::Jpeg(j) => j.icc_profile(),
            Container::Heif(h) => h.icc_profile(),
            _ => None,
        }
    }

    /// The parse of a TIFF read sparsely (see [`tiff::load_sparse`]).
    pub fn sparse_tiff(t: tiff::Tiff<'a>) -> Self {
        Parsed {
            format: Format::Tiff,
            inventory: t.inventory(),
            exif: t.exif_summary(),
            container: Container::Tiff(t),
        }
    }

    /// Lossless rewrite (`Option` for formats that may only be re-encoded).
    pub fn rewrite(&self, policy: &RewritePolicy) -> Option<Vec<u8>> {
        Some(match &self.container {
            Container::Jpeg(j) => j.rewrite(policy),
            Container::Png(p) => p.rewrite(policy),
            Container::Webp(w) => w.rewrite(policy),
            Container::Gif(g) => g.rewrite(policy),
            Container::Tiff(t) => t.rewrite(policy),
            Container::Heif(h) => h.rewrite(policy),
        })
    }
}

/// Parses `bytes` as `format`, validating the structure and the declared size.
pub fn parse<'a>(bytes: &'a [u8], format: Format, limits: &Limits) -> Result<Parsed<'a>> {
    let (container, mut inventory) = match format {
        Format::Jpeg => {
            let j = jpeg::parse(bytes, limits)?;
            let inv = j.inventory();
            (Container::Jpeg(j), inv)
        }
        Format::Png => {
            let p = png::parse(bytes, limits)?;
            let inv = p.inventory();
            (Container::Png(p), inv)
        }
        Format::Webp => {
            let w = webp::parse(bytes, limits)?;
            let inv = w.inventory();
            (Container::Webp(w), inv)
        }
        Format::Gif => {
            let g = gif::parse(bytes, limits)?;
            let inv = g.inventory();
            (Container::Gif(g), inv)
        }
        Format::Tiff => {
            let t = tiff::parse(bytes, limits)?;
            let inv = t.inventory();
            (Container::Tiff(t), inv)
        }
        Format::Heif | Format::Avif => {
            let h = heif::parse(bytes, limits)?;
            let inv = h.inventory();
            (Container::Heif(Box::new(h)), inv)
        }
    };
    let heif_exif = match &container {
        Container::Heif(h) => h.exif_payloads(),
        _ => Vec::new(),
    };
    let blocks = match &container {
        Container::Jpeg(j) => j.exif_blocks(),
        Container::Png(p) => p.exif_blocks(),
        Container::Webp(w) => w.exif_blocks(),
        Container::Heif(_) => heif_exif.iter().map(Vec::as_slice).collect(),
        _ => Vec::new(),
    };
    // The first block rules orientation and capture time; every block is inventoried.
    let mut exif = match &container {
        Container::Tiff(t) => t.exif_summary(),
        _ => ExifSummary::default(),
    };
    for (i, tiff) in blocks.into_iter().enumerate() {
        let s = exif_block::summarize(tiff);
        inventory.extend(s.inventory.clone());
        if i == 0 {
            exif = s;
        }
    }
    // ImageMagick's old way of storing EXIF in PNG: honoured for its orientation only.
    if let (Container::Png(p), None) = (&container, exif.orientation) {
        if let Some(block) = p.raw_profile_exif() {
            exif.orientation = exif_block::summarize(&block).orientation;
        }
    }
    if format.is_heif() {
        // HEIF orientation is irot/imir; the EXIF tag is informative only
        // and never applied (viewers would rotate twice).
        exif.orientation = None;
        inventory
            .0
            .retain(|f| f.category != crate::metadata::Category::Orientation);
    }
    Ok(Parsed {
        format,
        container,
        exif,
        inventory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF header and one IFD declaring `w` x `h` gray pixels.
    fn tiff_declaring(w: u32, h: u32) -> Vec<u8> {
        let entries: [(u16, u16, u32); 9] = [
            (256, 4, w),
            (257, 4, h),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, 8),
            (277, 3, 1),
            (278, 4, h),
            (279, 4, 1),
        ];
        let mut v = b"II*\0".to_vec();
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, value) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&kind.to_le_bytes());
            v.extend_from_slice(&1u32.to_le_bytes());
            v.extend_from_slice(&value.to_le_bytes());
        }
        v.extend_from_slice(&0u32.to_le_bytes());
        v
    }

    #[test]
    fn tiff_bombs_are_refused_before_decoding() {
        let bomb = tiff_declaring(100_000, 100_000);
        let err = parse(&bomb, Format::Tiff, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err}");
        assert!(parse(&tiff_declaring(1, 1), Format::Tiff, &Limits::default()).is_ok());
    }
}
