//! Reading an EXIF (TIFF-structured) block with kamadak-exif: what it holds
//! that identifies, the orientation to keep, and the capture time for
//! collages. Also writes the one EXIF block photodeid ever emits: a lone
//! Orientation tag, so a lossless output still displays upright.

use crate::metadata::{short_value, Category, Inventory};
use exif::{Context, Field, In, Reader, Tag, Value};

/// What an EXIF block holds, summarised.
#[derive(Debug, Default, Clone)]
pub struct ExifSummary {
    /// EXIF Orientation (1..=8) when present and valid.
    pub orientation: Option<u16>,
    /// DateTimeOriginal, else DateTimeDigitized (CreateDate), as `YYYY:MM:DD HH:MM:SS`.
    pub capture_time: Option<String>,
    pub inventory: Inventory,
}

/// Tags that describe the pixel layout only (TIFF structure, pointers). They
/// identify nobody, and a re-encoded TIFF necessarily carries some of them.
fn is_structural(tag: Tag) -> bool {
    match tag.context() {
        Context::Tiff => matches!(
            tag.number(),
            254 | 255
                | 256
                | 257
                | 258
                | 259
                | 262
                | 266
                | 273
                | 277
                | 278
                | 279
                | 282
                | 283
                | 284
                | 296
                | 317
                | 318
                | 319
                | 320
                | 322
                | 323
                | 324
                | 325
                | 338
                | 339
                | 529
                | 530
                | 531
                | 532
                | 34665
                | 34853
        ),
        Context::Exif => matches!(
            tag.number(),
            36864 | 37121 | 40960 | 40961 | 40962 | 40963 | 40965
        ),
        Context::Interop => true,
        _ => false,
    }
}

/// Notable tags shown by name and value; other tags are only counted.
const NOTABLE: &[Tag] = &[
    Tag::Artist,
    Tag::Copyright,
    Tag::ImageDescription,
    Tag::UserComment,
    Tag::CameraOwnerName,
    Tag::BodySerialNumber,
    Tag::LensSerialNumber,
    Tag::ImageUniqueID,
    Tag::Make,
    Tag::Model,
    Tag::LensModel,
    Tag::Software,
    Tag::DateTimeOriginal,
    Tag::DateTimeDigitized,
    Tag::DateTime,
];

/// Windows XP tags and the DNG serial number, which kamadak-exif has no names for.
fn extra_tag_name_of(tag: Tag) -> Option<&'static str> {
    match (tag.context(), tag.number()) {
        (Context::Tiff, 0x9c9b) => Some("XPTitle"),
        (Context::Tiff, 0x9c9c) => Some("XPComment"),
        (Context::Tiff, 0x9c9d) => Some("XPAuthor"),
        (Context::Tiff, 0x9c9e) => Some("XPKeywords"),
        (Context::Tiff, 0x9c9f) => Some("XPSubject"),
        (Context::Tiff, 0xc62f) => Some("CameraSerialNumber"),
        (Context::Tiff, 0x010d) => Some("DocumentName"),
        (Context::Tiff, 0x013c) => Some("HostComputer"),
        (Context::Tiff, 0x011d) => Some("PageName"),
        _ => None,
    }
}

/// [`extra_tag_name_of`] for a tag of a TIFF's IFD0, by number.
pub(crate) fn extra_tag_name(number: u16) -> Option<&'static str> {
    extra_tag_name_of(Tag(Context::Tiff, number))
}

/// Embedded blobs that TIFF files carry as tags.
fn blob_category(tag: Tag) -> Option<(Category, &'static str)> {
    match (tag.context(), tag.number()) {
        (Context::Tiff, 700) => Some((Category::Xmp, "XMP packet (TIFF tag 700)")),
        (Context::Tiff, 33723) => Some((Category::IptcPhotoshop, "IPTC (TIFF tag 33723)")),
        (Context::Tiff, 34377) => Some((
            Category::IptcPhotoshop,
            "Photoshop resources (TIFF tag 34377)",
        )),
        (Context::Tiff, 34675) => Some((Category::ColourProfile, "ICC profile (TIFF tag 34675)")),
        (Context::Tiff, 50341) => Some((Category::Other, "PrintIM (TIFF tag 50341)")),
        _ => None,
    }
}

/// Parses a TIFF-structured EXIF block (without the `Exif\0\0` prefix).
/// A block kamadak-exif cannot parse is still reported, by size.
pub fn summarize(tiff: &[u8]) -> ExifSummary {
    let mut summary = ExifSummary::default();
    let exif = match Reader::new()
        .continue_on_error(true)
        .read_raw(tiff.to_vec())
    {
        Ok(exif) => exif,
        Err(exif::Error::PartialResult(partial)) => {
            let (exif, errors) = partial.into_inner();
            summary.inventory.push(
                Category::Exif,
                format!(
                    "partly unreadable EXIF block, {} bytes ({} errors)",
                    tiff.len(),
                    errors.len()
                ),
            );
            exif
        }
        Err(e) => {
            summary.inventory.push(
                Category::Exif,
                format!("unreadable EXIF block, {} bytes ({e})", tiff.len()),
            );
            return summary;
        }
    };
    let mut other_tags = 0usize;
    let mut gps_tags = 0usize;
    let mut thumbnail = false;
    let mut technical: Vec<String> = Vec::new();
    // photodeid's own `--shift-dates` block: its dates are shifted, not real.
    let shifted = exif
        .get_field(Tag::Software, In::PRIMARY)
        .is_some_and(|f| field_text(f) == crate::keep::SHIFT_MARKER);
    for field in exif.fields() {
        if field.ifd_num == In::THUMBNAIL {
            thumbnail = true;
            continue;
        }
        let tag = field.tag;
        if tag == Tag::Orientation {
            match field.value.get_uint(0) {
                Some(o @ 1..=8) => {
                    summary.orientation = Some(o as u16);
                    summary
                        .inventory
                        .push(Category::Orientation, format!("Orientation {o}"));
                }
                _ => summary
                    .inventory
                    .push(Category::Exif, "invalid Orientation value"),
            }
            continue;
        }
        if tag == Tag::DateTimeOriginal
            || (tag == Tag::DateTimeDigitized && summary.capture_time.is_none())
        {
            if let Value::Ascii(ref v) = field.value {
                if let Some(first) = v.first() {
                    summary.capture_time = Some(String::from_utf8_lossy(first).trim().to_string());
                }
            }
        }
        if tag.context() == Context::Gps {
            gps_tags += 1;
            continue;
        }
        if tag == Tag::MakerNote {
            let len = match &field.value {
                Value::Undefined(b, _) => b.len(),
                _ => 0,
            };
            summary
                .inventory
                .push(Category::MakerNotes, format!("MakerNote, {len} bytes"));
            continue;
        }
        if let Some((cat, what)) = blob_category(tag) {
            summary.inventory.push(cat, what);
            continue;
        }
        if is_structural(tag) {
            continue;
        }
        if crate::keep::is_technical(field) {
            technical.push(tag.to_string());
            continue;
        }
        if shifted && (tag == Tag::Software || crate::keep::DATE_TAGS.contains(&tag)) {
            let what = if tag == Tag::Software {
                "marker: dates shifted by photodeid".to_string()
            } else {
                format!(
                    "{tag} \"{}\" (shifted)",
                    short_value(&field_text(field), 60)
                )
            };
            summary.inventory.push(Category::ShiftedDate, what);
            continue;
        }
        if NOTABLE.contains(&tag) {
            let value = field_text(field);
            summary.inventory.push(
                Category::Exif,
                format!("{tag} \"{}\"", short_value(&value, 60)),
            );
        } else if let Some(name) = extra_tag_name_of(tag) {
            summary.inventory.push(
                Category::Exif,
                format!("{name} \"{}\"", short_value(&field_text(field), 60)),
            );
        } else {
            other_tags += 1;
        }
    }
    if !technical.is_empty() {
        summary.inventory.push(
            Category::Technical,
            format!(
                "{} technical EXIF tag{} ({})",
                technical.len(),
                if technical.len() == 1 { "" } else { "s" },
                short_value(&technical.join(", "), 60)
            ),
        );
    }
    if other_tags > 0 {
        summary
            .inventory
            .push(Category::Exif, format!("{other_tags} more EXIF tags"));
    }
    if gps_tags > 0 {
        summary
            .inventory
            .push(Category::Gps, gps_detail(&exif, gps_tags));
    }
    if thumbnail {
        let len = exif
            .get_field(Tag::JPEGInterchangeFormatLength, In::THUMBNAIL)
            .and_then(|f| f.value.get_uint(0));
        let detail = match len {
            Some(n) => format!("EXIF thumbnail, {n} bytes"),
            None => "second image directory (thumbnail or page)".to_string(),
        };
        summary.inventory.push(Category::Thumbnail, detail);
    }
    summary
}

/// Text of a field: ASCII without quotes, UserComment without its charset
/// prefix, the UTF-16 Windows XP tags decoded.
fn field_text(field: &Field) -> String {
    match &field.value {
        Value::Ascii(v) => v
            .iter()
            .map(|s| String::from_utf8_lossy(s).to_string())
            .collect::<Vec<_>>()
            .join(" "),
        Value::Undefined(b, _) if field.tag == Tag::UserComment && b.len() >= 8 => {
            let (charset, text) = b.split_at(8);
            if charset.starts_with(b"UNICODE") {
                let units: Vec<u16> = text
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16_lossy(&units)
            } else {
                String::from_utf8_lossy(text).to_string()
            }
        }
        Value::Byte(b) | Value::Undefined(b, _) if b.len() % 2 == 0 => {
            let units: Vec<u16> = b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => field.display_value().to_string(),
    }
}

/// `40.7128 N 74.0060 W (+5 GPS tags)`, or a count when there is no position.
fn gps_detail(exif: &exif::Exif, gps_tags: usize) -> String {
    let coord = |tag: Tag, reference: Tag| -> Option<(f64, String)> {
        let value = &exif.get_field(tag, In::PRIMARY)?.value;
        let Value::Rational(parts) = value else {
            return None;
        };
        let mut deg = 0.0;
        for (i, r) in parts.iter().take(3).enumerate() {
            if r.denom == 0 {
                return None;
            }
            deg += r.to_f64() / 60f64.powi(i as i32);
        }
        let r = exif
            .get_field(reference, In::PRIMARY)
            .map(|f| f.display_value().to_string())
            .unwrap_or_default();
        Some((deg, r.trim_matches('"').to_string()))
    };
    match (
        coord(Tag::GPSLatitude, Tag::GPSLatitudeRef),
        coord(Tag::GPSLongitude, Tag::GPSLongitudeRef),
    ) {
        (Some((lat, lat_ref)), Some((lon, lon_ref))) => {
            format!("GPS {lat:.4} {lat_ref} {lon:.4} {lon_ref} ({gps_tags} GPS tags)")
        }
        _ => format!("{gps_tags} GPS tags"),
    }
}

/// Decodes ImageMagick's hex "raw profile" text (`\nexif\n  <length>\n<hex lines>`)
/// into the TIFF-structured EXIF block (without the `Exif\0\0` prefix).
pub fn from_raw_profile(text: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut parts = text.split_ascii_whitespace();
    let _name = parts.next()?;
    let len: usize = parts.next()?.parse().ok()?;
    let hex: Vec<u8> = parts.flat_map(str::bytes).collect();
    if hex.len() < len.checked_mul(2)? {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes: Option<Vec<u8>> = hex[..len * 2]
        .chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect();
    let bytes = bytes?;
    Some(match bytes.strip_prefix(b"Exif\0\0") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    })
}

/// The only EXIF block photodeid writes: a big-endian TIFF header and one
/// IFD holding Orientation. Returned without the `Exif\0\0` prefix.
pub fn orientation_only(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::with_capacity(26);
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // header, IFD0 at offset 8
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // count
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    tiff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_block_reads_back_with_kamadak_exif() {
        for o in 1..=8u16 {
            let tiff = orientation_only(o);
            let exif = Reader::new().read_raw(tiff.clone()).unwrap();
            assert_eq!(exif.fields().len(), 1);
            let f = exif.get_field(Tag::Orientation, In::PRIMARY).unwrap();
            assert_eq!(f.value.get_uint(0), Some(o as u32));
            let s = summarize(&tiff);
            assert_eq!(s.orientation, Some(o));
            assert!(s.inventory.is_clean(), "{:?}", s.inventory);
        }
    }

    #[test]
    fn raw_profile_text_decodes_to_the_block() {
        let block = orientation_only(6);
        let mut hex = String::new();
        for b in b"Exif\0\0".iter().chain(&block) {
            hex.push_str(&format!("{b:02x}"));
        }
        let text = format!("\nexif\n      {}\n{}\n", block.len() + 6, hex);
        let back = from_raw_profile(text.as_bytes()).unwrap();
        assert_eq!(back, block);
        assert_eq!(summarize(&back).orientation, Some(6));
        assert!(from_raw_profile(b"\nexif\n 99\nzz").is_none());
    }

    #[test]
    fn garbage_is_reported_not_panicking() {
        let s = summarize(b"MM\0\x2a\xff\xff\xff\xff garbage");
        assert!(!s.inventory.is_clean());
    }
}
