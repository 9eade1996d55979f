//! Researchers' options: `--keep GROUP,...` keeps an allow-list of technical
//! EXIF tags that identify nobody (exposure, aperture, ISO, focal length,
//! lens, white balance, flash, metering, scene), and `--shift-dates` keeps the
//! capture dates moved by a keyed per-case offset. Both are written as one
//! fresh, minimal EXIF block built from the parsed values (kamadak-exif's
//! writer), never by copying the original block; serial numbers, names,
//! dates (unshifted), GPS, maker notes and thumbnails never get in.
//!
//! The audit (`exif_block::summarize`) files the allow-listed tags as
//! [`Category::Technical`](crate::metadata::Category::Technical) and, in a
//! block that carries [`SHIFT_MARKER`], the dates as
//! [`Category::ShiftedDate`](crate::metadata::Category::ShiftedDate): both
//! are not identifying, so `check` of such an output is clean.

use crate::container::{Container, Format, Parsed};
use crate::error::{Error, Result};
use crate::pseudonym::Naming;
use crate::scan::Job;
use exif::{Field, In, Reader, Tag, Value};

/// A group of technical tags `--keep` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TagGroup {
    /// ExposureTime, ExposureProgram, ExposureBiasValue, ExposureMode, ShutterSpeedValue, BrightnessValue.
    Exposure,
    /// FNumber, ApertureValue, MaxApertureValue.
    Aperture,
    /// PhotographicSensitivity (ISO), SensitivityType.
    Iso,
    /// FocalLength, FocalLengthIn35mmFilm, DigitalZoomRatio.
    FocalLength,
    /// LensMake, LensModel, LensSpecification (never LensSerialNumber).
    Lens,
    /// WhiteBalance, LightSource.
    WhiteBalance,
    /// Flash.
    Flash,
    /// MeteringMode.
    Metering,
    /// SceneCaptureType, Contrast, Saturation, Sharpness, GainControl, SubjectDistanceRange.
    Scene,
}

impl TagGroup {
    pub const ALL: [TagGroup; 9] = [
        TagGroup::Exposure,
        TagGroup::Aperture,
        TagGroup::Iso,
        TagGroup::FocalLength,
        TagGroup::Lens,
        TagGroup::WhiteBalance,
        TagGroup::Flash,
        TagGroup::Metering,
        TagGroup::Scene,
    ];

    /// The tags of the group.
    pub fn tags(self) -> &'static [Tag] {
        match self {
            TagGroup::Exposure => &[
                Tag::ExposureTime,
                Tag::ExposureProgram,
                Tag::ExposureBiasValue,
                Tag::ExposureMode,
                Tag::ShutterSpeedValue,
                Tag::BrightnessValue,
            ],
            TagGroup::Aperture => &[Tag::FNumber, Tag::ApertureValue, Tag::MaxApertureValue],
            TagGroup::Iso => &[Tag::PhotographicSensitivity, Tag::SensitivityType],
            TagGroup::FocalLength => &[
                Tag::FocalLength,
                Tag::FocalLengthIn35mmFilm,
                Tag::DigitalZoomRatio,
            ],
            TagGroup::Lens => &[Tag::LensMake, Tag::LensModel, Tag::LensSpecification],
            TagGroup::WhiteBalance => &[Tag::WhiteBalance, Tag::LightSource],
            TagGroup::Flash => &[Tag::Flash],
            TagGroup::Metering => &[Tag::MeteringMode],
            TagGroup::Scene => &[
                Tag::SceneCaptureType,
                Tag::Contrast,
                Tag::Saturation,
                Tag::Sharpness,
                Tag::GainControl,
                Tag::SubjectDistanceRange,
            ],
        }
    }
}

/// Whether `field` is an allow-listed technical tag with a value of the
/// shape that tag has (numbers, a few of them; short printable text for the
/// lens names). Anything else is not technical, and the audit says so.
pub fn is_technical(field: &Field) -> bool {
    if field.ifd_num != In::PRIMARY || !TagGroup::ALL.iter().any(|g| g.tags().contains(&field.tag))
    {
        return false;
    }
    match &field.value {
        Value::Ascii(v) => {
            matches!(field.tag, Tag::LensMake | Tag::LensModel)
                && v.len() == 1
                && v[0].len() <= 64
                && v[0].iter().all(|&b| (0x20..0x7f).contains(&b))
        }
        Value::Byte(v) => v.len() <= 4,
        Value::Short(v) => v.len() <= 4,
        Value::Long(v) => v.len() <= 4,
        Value::Rational(v) => v.len() <= 4,
        Value::SRational(v) => v.len() <= 4,
        _ => false,
    }
}

/// The Software value of a block whose dates photodeid shifted. The audit
/// trusts it for the dates only (see the README: a forged marker could hide
/// real dates from `check`, nothing else).
pub const SHIFT_MARKER: &str = "photodeid: dates shifted per case (--shift-dates)";

/// The dates `--shift-dates` keeps, moved.
pub const DATE_TAGS: [Tag; 3] = [Tag::DateTimeOriginal, Tag::DateTimeDigitized, Tag::DateTime];

/// What the fresh EXIF block keeps (`CleanOptions::keep`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepExif {
    /// `--keep`: the technical tag groups.
    pub groups: Vec<TagGroup>,
    /// `--shift-dates`: the name key; each photo's offset comes from its case folder.
    pub shift_key: Option<[u8; 32]>,
    /// The offset in seconds for this photo (set per file from `shift_key`).
    pub shift_seconds: Option<i64>,
}

impl KeepExif {
    pub fn keeps(&self, tag: Tag) -> bool {
        self.groups.iter().any(|g| g.tags().contains(&tag))
    }
}

/// The case a photo belongs to: the first folder of its path below the
/// input (`cases/Doe_Jane/visit2/a.jpg` under `cases` is `Doe_Jane`), else
/// the name of the folder it is in (`clean Doe_Jane/ -o out`).
pub fn case_label(job: &Job) -> String {
    let mut parts = job.relative.components();
    let first = parts.next();
    if parts.next().is_some() {
        if let Some(c) = first {
            return c.as_os_str().to_string_lossy().into_owned();
        }
    }
    job.path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Offsets lie between one and ten years, either way, to the second.
const MIN_SHIFT: i64 = 365 * 86_400;
const SHIFT_SPAN: i64 = 9 * 365 * 86_400;

/// The keyed offset of a case: a MAC (BLAKE3 keyed hash, with a key derived
/// from the name key) of the case folder's keyed pseudonym. Same key and
/// case, same offset; without the key it cannot be worked out.
pub fn case_offset(key: &[u8; 32], case: &str) -> i64 {
    let pseudonym = Naming::Keyed(*key)
        .pseudonym_for_label(case)
        .expect("keyed pseudonyms need no randomness");
    let mac_key = blake3::derive_key("photodeid date shift v1", key);
    let h = blake3::keyed_hash(&mac_key, pseudonym.as_bytes());
    let n = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
    let magnitude = MIN_SHIFT + (n >> 1) as i64 % SHIFT_SPAN;
    if n & 1 == 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// An EXIF date (`YYYY:MM:DD HH:MM:SS`) moved by `secs`; `None` when it does
/// not parse or lands outside the years 1..=9999.
pub fn shift_date(value: &str, secs: i64) -> Option<String> {
    let value = value.trim().trim_end_matches('\0');
    let dt = jiff::civil::DateTime::strptime("%Y:%m:%d %H:%M:%S", value).ok()?;
    let moved = dt.checked_add(jiff::SignedDuration::from_secs(secs)).ok()?;
    (moved.year() >= 1).then(|| moved.strftime("%Y:%m:%d %H:%M:%S").to_string())
}

/// The fresh block (TIFF structure, no `Exif\0\0` prefix) for an output that
/// displays with `orientation`: the kept tags' values from `source`, the
/// shifted dates with [`SHIFT_MARKER`], and Orientation when not 1. `None`
/// when nothing is kept (the output then carries what it would anyway).
pub fn build(source: Option<&[u8]>, keep: &KeepExif, orientation: u16) -> Option<Vec<u8>> {
    let exif =
        source.and_then(
            |s| match Reader::new().continue_on_error(true).read_raw(s.to_vec()) {
                Ok(e) => Some(e),
                Err(exif::Error::PartialResult(p)) => Some(p.into_inner().0),
                Err(_) => None,
            },
        );
    let mut fields: Vec<Field> = Vec::new();
    if let Some(exif) = &exif {
        for f in exif.fields() {
            if keep.keeps(f.tag) && is_technical(f) && !fields.iter().any(|k| k.tag == f.tag) {
                fields.push(Field {
                    tag: f.tag,
                    ifd_num: In::PRIMARY,
                    value: f.value.clone(),
                });
            }
        }
        if let Some(secs) = keep.shift_seconds {
            let mut shifted = false;
            for tag in DATE_TAGS {
                let Some(Value::Ascii(v)) = exif.get_field(tag, In::PRIMARY).map(|f| &f.value)
                else {
                    continue;
                };
                let Some(moved) = v
                    .first()
                    .and_then(|s| shift_date(&String::from_utf8_lossy(s), secs))
                else {
                    continue;
                };
                fields.push(Field {
                    tag,
                    ifd_num: In::PRIMARY,
                    value: Value::Ascii(vec![moved.into_bytes()]),
                });
                shifted = true;
            }
            if shifted {
                fields.push(Field {
                    tag: Tag::Software,
                    ifd_num: In::PRIMARY,
                    value: Value::Ascii(vec![SHIFT_MARKER.as_bytes().to_vec()]),
                });
            }
        }
    }
    if fields.is_empty() {
        return None;
    }
    if orientation != 1 {
        fields.push(Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![orientation]),
        });
    }
    let mut w = exif::experimental::Writer::new();
    for f in &fields {
        w.push_field(f);
    }
    let mut buf = std::io::Cursor::new(Vec::new());
    w.write(&mut buf, false).ok()?;
    Some(buf.into_inner())
}

/// Puts `block` into `bytes` (an output of ours) as its only EXIF: JPEG APP1
/// (after JFIF; an Orientation-only block there is replaced), PNG `eXIf`
/// (before IDAT), WebP `EXIF` (a VP8X header added or flagged). `None` for
/// the other formats, which keep no EXIF.
pub fn embed(bytes: &[u8], format: Format, block: &[u8]) -> Result<Option<Vec<u8>>> {
    let bad = |why: &str| Error::Invalid(format!("cannot add the kept EXIF: {why}"));
    match format {
        Format::Jpeg => {
            if block.len() + 8 > 0xFFFF {
                return Err(bad("block too large"));
            }
            let mut pos = 2;
            let mut insert_at = 2;
            let mut replace = None;
            while let (Some(&0xFF), Some(&m)) = (bytes.get(pos), bytes.get(pos + 1)) {
                if !(0xE0..=0xEF).contains(&m) {
                    break;
                }
                let len = bytes
                    .get(pos + 2..pos + 4)
                    .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
                    .ok_or_else(|| bad("truncated segment"))?;
                let end = pos + 2 + len;
                if len < 2 || end > bytes.len() {
                    return Err(bad("segment runs past the end"));
                }
                if m == 0xE1 && bytes[pos + 4..end].starts_with(b"Exif\0") {
                    replace = Some((pos, end));
                    break;
                }
                if m == 0xE0 {
                    insert_at = end;
                }
                pos = end;
            }
            let (from, to) = replace.unwrap_or((insert_at, insert_at));
            let mut out = Vec::with_capacity(bytes.len() + block.len() + 10);
            out.extend_from_slice(&bytes[..from]);
            out.extend_from_slice(&[0xFF, 0xE1]);
            out.extend_from_slice(&((block.len() + 8) as u16).to_be_bytes());
            out.extend_from_slice(b"Exif\0\0");
            out.extend_from_slice(block);
            out.extend_from_slice(&bytes[to..]);
            Ok(Some(out))
        }
        Format::Png => {
            let sig = crate::container::png::SIGNATURE;
            if !bytes.starts_with(sig) {
                return Err(bad("not a PNG"));
            }
            let mut out = sig.to_vec();
            let mut pos = sig.len();
            let mut added = false;
            while pos + 12 <= bytes.len() {
                let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4")) as usize;
                let end = pos
                    .checked_add(12 + len)
                    .filter(|&e| e <= bytes.len())
                    .ok_or_else(|| bad("chunk runs past the end"))?;
                let kind = &bytes[pos + 4..pos + 8];
                if kind == b"IDAT" && !added {
                    let mut chunk = b"eXIf".to_vec();
                    chunk.extend_from_slice(block);
                    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                    out.extend_from_slice(&chunk);
                    out.extend_from_slice(&crc32fast::hash(&chunk).to_be_bytes());
                    added = true;
                }
                if kind != b"eXIf" {
                    out.extend_from_slice(&bytes[pos..end]);
                }
                pos = end;
            }
            out.extend_from_slice(&bytes[pos..]);
            if added {
                Ok(Some(out))
            } else {
                Err(bad("no IDAT"))
            }
        }
        Format::Webp => embed_webp(bytes, block)
            .map(Some)
            .ok_or_else(|| bad("bad WebP")),
        _ => Ok(None),
    }
}

/// The pipeline's hook: `bytes` (the cleaned output, `format`, displaying
/// with `orientation`) with the fresh block built from `parsed`'s first EXIF
/// block. Formats that keep no EXIF get a warning instead.
pub fn apply(
    bytes: Vec<u8>,
    parsed: &Parsed,
    format: Format,
    orientation: u16,
    keep: &KeepExif,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>> {
    let heif;
    let source: Option<&[u8]> = match &parsed.container {
        Container::Jpeg(j) => j.exif_blocks().first().copied(),
        Container::Png(p) => p.exif_blocks().first().copied(),
        Container::Webp(w) => w.exif_blocks().first().copied(),
        Container::Heif(h) => {
            heif = h.exif_payloads();
            heif.first().map(Vec::as_slice)
        }
        _ => {
            warnings.push(format!(
                "--keep/--shift-dates: nothing kept from a {} input (only JPEG, PNG, WebP and HEIF EXIF is read)",
                parsed.format.name()
            ));
            return Ok(bytes);
        }
    };
    let Some(block) = build(source, keep, orientation) else {
        return Ok(bytes);
    };
    match embed(&bytes, format, &block)? {
        Some(out) => Ok(out),
        None => {
            warnings.push(format!(
                "--keep/--shift-dates: a {} output keeps no EXIF (only JPEG, PNG and WebP do)",
                format.name()
            ));
            Ok(bytes)
        }
    }
}

fn embed_webp(bytes: &[u8], block: &[u8]) -> Option<Vec<u8>> {
    const FLAG_EXIF: u8 = 0x08;
    const FLAG_ALPHA: u8 = 0x10;
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return None;
    }
    let mut chunks: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let fourcc: [u8; 4] = bytes[pos..pos + 4].try_into().ok()?;
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        let data = bytes.get(pos + 8..pos.checked_add(8 + len)?)?;
        chunks.push((fourcc, data.to_vec()));
        pos += 8 + len + len % 2;
    }
    chunks.retain(|(f, _)| f != b"EXIF");
    if !chunks.iter().any(|(f, _)| f == b"VP8X") {
        // A simple file: an extended header with the canvas size first.
        let (f, data) = chunks.first()?;
        let (w, h, alpha) = match f {
            b"VP8L" if data.len() >= 5 && data[0] == 0x2f => {
                let bits = u32::from_le_bytes(data[1..5].try_into().ok()?);
                (
                    (bits & 0x3fff) + 1,
                    ((bits >> 14) & 0x3fff) + 1,
                    bits >> 28 & 1 == 1,
                )
            }
            b"VP8 " if data.len() >= 10 && data[3..6] == [0x9d, 0x01, 0x2a] => {
                let w = u16::from_le_bytes([data[6], data[7]]) & 0x3fff;
                let h = u16::from_le_bytes([data[8], data[9]]) & 0x3fff;
                (u32::from(w), u32::from(h), false)
            }
            _ => return None,
        };
        let mut x = vec![if alpha { FLAG_ALPHA } else { 0 }, 0, 0, 0];
        x.extend_from_slice(&w.checked_sub(1)?.to_le_bytes()[..3]);
        x.extend_from_slice(&h.checked_sub(1)?.to_le_bytes()[..3]);
        chunks.insert(0, (*b"VP8X", x));
    }
    let vp8x = chunks.iter_mut().find(|(f, _)| f == b"VP8X")?;
    *vp8x.1.first_mut()? |= FLAG_EXIF;
    // EXIF goes after the image data, before any XMP.
    let at = chunks
        .iter()
        .position(|(f, _)| f == b"XMP ")
        .unwrap_or(chunks.len());
    chunks.insert(at, (*b"EXIF", block.to_vec()));
    let mut body = Vec::with_capacity(bytes.len() + block.len() + 32);
    for (f, d) in &chunks {
        body.extend_from_slice(f);
        body.extend_from_slice(&(d.len() as u32).to_le_bytes());
        body.extend_from_slice(d);
        if d.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len() + 4).ok()?.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_block() -> Vec<u8> {
        let fields = [
            Field {
                tag: Tag::ExposureTime,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![(1, 125).into()]),
            },
            Field {
                tag: Tag::FNumber,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![(28, 10).into()]),
            },
            Field {
                tag: Tag::LensModel,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"EF100mm f/2.8L Macro IS USM".to_vec()]),
            },
            Field {
                tag: Tag::BodySerialNumber,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"SN-123456".to_vec()]),
            },
            Field {
                tag: Tag::Artist,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"Dr. Jane Smith".to_vec()]),
            },
            Field {
                tag: Tag::DateTimeOriginal,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"2021:03:04 09:10:11".to_vec()]),
            },
        ];
        let mut w = exif::experimental::Writer::new();
        for f in &fields {
            w.push_field(f);
        }
        let mut buf = std::io::Cursor::new(Vec::new());
        w.write(&mut buf, true).unwrap();
        buf.into_inner()
    }

    fn tags_of(block: &[u8]) -> Vec<Tag> {
        let exif = Reader::new().read_raw(block.to_vec()).unwrap();
        let mut t: Vec<Tag> = exif
            .fields()
            .map(|f| f.tag)
            .filter(|t| *t != Tag::ExifIFDPointer)
            .collect();
        t.sort_by_key(|t| t.number());
        t
    }

    #[test]
    fn only_the_groups_asked_for_are_kept() {
        let src = source_block();
        let keep = KeepExif {
            groups: vec![TagGroup::Exposure, TagGroup::Aperture],
            ..KeepExif::default()
        };
        let block = build(Some(&src), &keep, 1).unwrap();
        assert_eq!(tags_of(&block), [Tag::ExposureTime, Tag::FNumber]);
        let keep = KeepExif {
            groups: TagGroup::ALL.to_vec(),
            ..KeepExif::default()
        };
        let block = build(Some(&src), &keep, 6).unwrap();
        assert_eq!(
            tags_of(&block),
            [
                Tag::Orientation,
                Tag::ExposureTime,
                Tag::FNumber,
                Tag::LensModel
            ]
        );
        let s = crate::exif_block::summarize(&block);
        assert!(s.inventory.is_clean(), "{:?}", s.inventory);
        assert_eq!(s.orientation, Some(6));
        // Nothing to keep: no block.
        let keep = KeepExif {
            groups: vec![TagGroup::Flash],
            ..KeepExif::default()
        };
        assert!(build(Some(&src), &keep, 1).is_none());
        assert!(build(None, &keep, 1).is_none());
    }

    #[test]
    fn shifted_dates_carry_the_marker_and_pass_the_audit() {
        let src = source_block();
        let keep = KeepExif {
            shift_seconds: Some(-86_400 * 400 - 5),
            ..KeepExif::default()
        };
        let block = build(Some(&src), &keep, 1).unwrap();
        let exif = Reader::new().read_raw(block.clone()).unwrap();
        let date = exif
            .get_field(Tag::DateTimeOriginal, In::PRIMARY)
            .unwrap()
            .display_value()
            .to_string();
        assert_eq!(date, "2020-01-29 09:10:06");
        let s = crate::exif_block::summarize(&block);
        assert!(s.inventory.is_clean(), "{:?}", s.inventory);
        // The same block without the marker is flagged.
        let mut w = exif::experimental::Writer::new();
        let f = exif.get_field(Tag::DateTimeOriginal, In::PRIMARY).unwrap();
        w.push_field(f);
        let mut buf = std::io::Cursor::new(Vec::new());
        w.write(&mut buf, false).unwrap();
        assert!(!crate::exif_block::summarize(&buf.into_inner())
            .inventory
            .is_clean());
    }

    #[test]
    fn offsets_are_keyed_per_case_and_large() {
        let k1 = [7u8; 32];
        let k2 = [8u8; 32];
        let a = case_offset(&k1, "Doe_Jane");
        assert_eq!(a, case_offset(&k1, "Doe_Jane"));
        assert_ne!(a, case_offset(&k1, "Smith_John"));
        assert_ne!(a, case_offset(&k2, "Doe_Jane"));
        for case in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            let o = case_offset(&k1, case).abs();
            assert!((MIN_SHIFT..MIN_SHIFT + SHIFT_SPAN).contains(&o), "{o}");
        }
    }

    #[test]
    fn dates_shift_exactly() {
        assert_eq!(
            shift_date("2024:02:28 23:00:00", 3600 * 25).as_deref(),
            Some("2024:03:01 00:00:00")
        );
        assert_eq!(shift_date("0000:00:00 00:00:00", 5), None);
        assert_eq!(shift_date("garbage", 5), None);
        assert_eq!(shift_date("0001:01:01 00:00:00", -1), None);
    }

    #[test]
    fn case_is_the_first_folder_below_the_input() {
        let job = |path: &str, rel: &str| Job {
            path: path.into(),
            relative: rel.into(),
        };
        assert_eq!(case_label(&job("c/Doe/v2/a.jpg", "Doe/v2/a.jpg")), "Doe");
        assert_eq!(case_label(&job("c/Doe/a.jpg", "a.jpg")), "Doe");
        assert_eq!(case_label(&job("a.jpg", "a.jpg")), "");
    }

    #[test]
    fn embedding_into_simple_webp_adds_the_header() {
        // A 3x2 VP8L header (no alpha), payload padded.
        let bits: u32 = 2 | (1 << 14);
        let mut vp8l = vec![0x2f];
        vp8l.extend_from_slice(&bits.to_le_bytes());
        let mut webp = b"RIFF\0\0\0\0WEBPVP8L".to_vec();
        webp.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
        webp.extend_from_slice(&vp8l);
        webp.push(0);
        let n = (webp.len() - 8) as u32;
        webp[4..8].copy_from_slice(&n.to_le_bytes());
        let out = embed(&webp, Format::Webp, b"MM\0\x2a\0\0\0\x08\0\0")
            .unwrap()
            .unwrap();
        assert_eq!(&out[12..16], b"VP8X");
        assert_eq!(out[20], 0x08);
        assert_eq!(&out[24..27], &[2, 0, 0]);
        assert_eq!(&out[27..30], &[1, 0, 0]);
        let riff = u32::from_le_bytes(out[4..8].try_into().unwrap()) as usize;
        assert_eq!(riff + 8, out.len());
    }
}
