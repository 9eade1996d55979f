//! JPEG at segment level: split into marker segments and entropy-coded
//! scans, classify each segment, and write back only what decoding and
//! display need. Pixels are never touched: the scans are copied verbatim.

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::exif_block;
use crate::metadata::{human_bytes, short_value, Category, Inventory};

const FORMAT: &str = "JPEG";

/// One marker segment. For SOS, `raw` also holds the entropy-coded data that follows.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub marker: u8,
    /// Payload after the 2-byte length (empty for standalone markers).
    pub payload: &'a [u8],
    /// The full bytes to copy when the segment is kept.
    pub raw: &'a [u8],
}

/// What a segment is, for the policy and the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Needed to decode: SOI, SOF, DHT, DQT, DRI, SOS + scan, EOI.
    Structure,
    /// APP14 Adobe (colour transform): kept as its 12 standard bytes only.
    Adobe,
    /// APP0 JFIF: kept, but its embedded thumbnail is dropped.
    Jfif,
    Icc,
    Exif,
    Drop(Category),
}

#[derive(Debug)]
pub struct Jpeg<'a> {
    pub segments: Vec<Segment<'a>>,
    /// Bytes after the first image's EOI (MPF images, gain maps, junk).
    pub trailing: &'a [u8],
    pub width: u32,
    pub height: u32,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// True for markers that stand alone, without a length (RSTn, TEM, SOI, EOI).
fn is_standalone(marker: u8) -> bool {
    matches!(marker, 0xD0..=0xD9 | 0x01)
}

fn truncated(what: &str) -> Error {
    Error::malformed(FORMAT, format!("truncated: {what}"))
}

/// Finds the end of an entropy-coded scan: the first marker that is not a
/// stuffed 0xFF00, a restart marker or fill bytes.
fn scan_end(b: &[u8], mut i: usize) -> Result<usize> {
    loop {
        let ff = memchr::memchr(0xFF, &b[i..]).ok_or_else(|| {
            truncated("scan data runs to the end of the file (no end-of-image marker)")
        })?;
        i += ff;
        match b.get(i + 1) {
            None => return Err(truncated("scan data runs to the end of the file")),
            Some(0x00) | Some(0xD0..=0xD7) => i += 2,
            Some(0xFF) => i += 1,
            Some(_) => return Ok(i),
        }
    }
}

pub fn parse<'a>(b: &'a [u8], limits: &Limits) -> Result<Jpeg<'a>> {
    if b.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(Error::malformed(FORMAT, "missing start-of-image marker"));
    }
    let mut segments = vec![Segment {
        marker: 0xD8,
        payload: &[],
        raw: &b[..2],
    }];
    let mut pos = 2;
    let mut dims = None;
    let mut saw_scan = false;
    loop {
        let start = pos;
        if b.get(pos) != Some(&0xFF) {
            return Err(match b.get(pos) {
                None => truncated("no end-of-image marker"),
                Some(x) => Error::malformed(
                    FORMAT,
                    format!("expected a marker at byte {pos}, found 0x{x:02X}"),
                ),
            });
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1; // fill bytes before a marker are legal
        }
        let marker = *b
            .get(pos)
            .ok_or_else(|| truncated("no end-of-image marker"))?;
        pos += 1;
        if is_standalone(marker) {
            segments.push(Segment {
                marker,
                payload: &[],
                raw: &b[start..pos],
            });
            if marker == 0xD9 {
                if !saw_scan {
                    return Err(Error::malformed(FORMAT, "end of image before any scan"));
                }
                let (width, height) =
                    dims.ok_or_else(|| Error::malformed(FORMAT, "no frame header (SOF)"))?;
                return Ok(Jpeg {
                    segments,
                    trailing: &b[pos..],
                    width,
                    height,
                });
            }
            continue;
        }
        if matches!(marker, 0xDE | 0xDF | 0xF7 | 0xF8) {
            // Hierarchical (DHP, EXP) and JPEG-LS (SOF55, LSE) files: neither
            // decodable here nor checkable segment by segment.
            return Err(Error::Unsupported(
                "hierarchical or JPEG-LS JPEG; export it as a baseline or progressive JPEG".into(),
            ));
        }
        let len = be16(b, pos).ok_or_else(|| truncated("segment length"))? as usize;
        if len < 2 {
            return Err(Error::malformed(
                FORMAT,
                format!("segment 0x{marker:02X} has length {len}"),
            ));
        }
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| {
                truncated(&format!(
                    "segment 0x{marker:02X} runs past the end of the file"
                ))
            })?;
        let payload = &b[pos + 2..end];
        pos = end;
        if is_sof(marker) {
            let h = be16(payload, 1).unwrap_or(0) as u32;
            let w = be16(payload, 3).unwrap_or(0) as u32;
            if w == 0 {
                return Err(Error::malformed(FORMAT, "frame header declares zero width"));
            }
            check_dimensions(FORMAT, w, h.max(1), limits)?;
            dims.get_or_insert((w, h));
        }
        if marker == 0xDA {
            if dims.is_none() {
                return Err(Error::malformed(FORMAT, "scan before frame header"));
            }
            saw_scan = true;
            pos = scan_end(b, pos)?;
        }
        segments.push(Segment {
            marker,
            payload,
            raw: &b[start..pos],
        });
    }
}

/// "Adobe", version, flags0, flags1, transform: all a decoder reads.
const ADOBE_LEN: usize = 12;

fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

fn role(seg: &Segment) -> Role {
    let p = seg.payload;
    match seg.marker {
        0xD8 | 0xD9 | 0xD0..=0xD7 | 0x01 => Role::Structure,
        m if is_sof(m) => Role::Structure,
        // DHT, DAC, DQT, DRI, SOS, DNL.
        0xC4 | 0xCC | 0xDB | 0xDD | 0xDA | 0xDC => Role::Structure,
        0xE0 if p.starts_with(b"JFIF\0") => Role::Jfif,
        0xE0 if p.starts_with(b"JFXX\0") => Role::Drop(Category::Thumbnail),
        0xE1 if p.starts_with(b"Exif\0") => Role::Exif,
        0xE1 if p.starts_with(b"http://ns.adobe.com/") => Role::Drop(Category::Xmp),
        0xE2 if p.starts_with(b"ICC_PROFILE\0") => Role::Icc,
        0xE2 if p.starts_with(b"MPF\0") => Role::Drop(Category::Thumbnail),
        0xE2 if p.starts_with(b"FPXR\0") => Role::Drop(Category::MakerNotes),
        0xEB => Role::Drop(Category::Provenance),
        0xED => Role::Drop(Category::IptcPhotoshop),
        0xEE if p.starts_with(b"Adobe") => Role::Adobe,
        0xFE => Role::Drop(Category::Comment),
        _ => Role::Drop(Category::Other),
    }
}

/// JFIF thumbnail size in bytes (3 bytes a pixel after the 14-byte header).
fn jfif_thumbnail_len(p: &[u8]) -> usize {
    match (p.get(12), p.get(13)) {
        (Some(&w), Some(&h)) => 3 * w as usize * h as usize,
        _ => 0,
    }
}

impl<'a> Jpeg<'a> {
    /// The TIFF bytes of every EXIF block (cameras sometimes write two).
    pub fn exif_blocks(&self) -> Vec<&'a [u8]> {
        self.segments
            .iter()
            .filter(|s| role(s) == Role::Exif)
            .map(|s| &s.payload[6.min(s.payload.len())..])
            .collect()
    }

    /// The ICC profile, reassembled from its APP2 chunks in sequence order.
    pub fn icc_profile(&self) -> Option<Vec<u8>> {
        self.icc_chunks().0
    }

    /// The profile and the count of ICC_PROFILE chunks outside its sequence.
    fn icc_chunks(&self) -> (Option<Vec<u8>>, usize) {
        crate::icc::from_app2(
            self.segments
                .iter()
                .filter(|s| role(s) == Role::Icc)
                .map(|s| s.payload),
        )
    }

    /// The sanitised profile's APP2 segments (none when it is malformed).
    fn icc_segments(&self) -> Vec<u8> {
        self.icc_profile()
            .and_then(|p| crate::icc::sanitize(&p).ok())
            .map(|p| crate::icc::app2_segments(&p))
            .unwrap_or_default()
    }

    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::default();
        let mut icc_bytes = 0;
        for seg in &self.segments {
            match role(seg) {
                Role::Structure => {}
                Role::Adobe if seg.payload.len() > ADOBE_LEN => inv.push(
                    Category::Other,
                    format!(
                        "APP14 Adobe with {} extra bytes",
                        seg.payload.len() - ADOBE_LEN
                    ),
                ),
                Role::Adobe => {}
                Role::Jfif => {
                    let n = jfif_thumbnail_len(seg.payload);
                    if n > 0 {
                        inv.push(Category::Thumbnail, format!("JFIF thumbnail, {n} bytes"));
                    }
                }
                Role::Icc => icc_bytes += seg.payload.len().saturating_sub(14),
                Role::Exif => {} // summarised once, by container::parse
                Role::Drop(cat) => inv.push(cat, describe_dropped(seg, cat)),
            }
        }
        if icc_bytes > 0 {
            let (profile, stray) = self.icc_chunks();
            match profile {
                Some(p) => crate::icc::audit(&p, &mut inv),
                None => inv.push(
                    Category::ColourProfileText,
                    format!("ICC profile, {icc_bytes} bytes, chunks missing (cleaning drops it)"),
                ),
            }
            if stray > 0 {
                inv.push(
                    Category::ColourProfileText,
                    format!("{stray} ICC_PROFILE segments outside the profile's sequence"),
                );
            }
        }
        if !self.trailing.is_empty() {
            inv.push(Category::TrailingData, trailing_detail(self.trailing));
        }
        inv
    }

    /// Writes the JPEG back with only the structure, JFIF (thumbnail-free),
    /// the ICC profile (unless stripped) and, when asked, an Orientation-only EXIF block.
    pub fn rewrite(&self, policy: &RewritePolicy) -> Vec<u8> {
        let total: usize = self.segments.iter().map(|s| s.raw.len()).sum();
        let mut out = Vec::with_capacity(total + 64);
        let mut exif_written = false;
        let mut icc_written = !policy.keep_icc;
        let mut write_exif = |out: &mut Vec<u8>| {
            if let (Some(o), false) = (policy.orientation, exif_written) {
                let tiff = exif_block::orientation_only(o);
                out.extend_from_slice(&[0xFF, 0xE1]);
                out.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
                out.extend_from_slice(b"Exif\0\0");
                out.extend_from_slice(&tiff);
            }
            exif_written = true;
        };
        for (i, seg) in self.segments.iter().enumerate() {
            let r = role(seg);
            // The EXIF block goes right after SOI, or after APP0 JFIF when that comes first.
            if i == 1 && r != Role::Jfif {
                write_exif(&mut out);
            }
            match r {
                Role::Structure => out.extend_from_slice(seg.raw),
                Role::Adobe if seg.payload.len() > ADOBE_LEN => {
                    out.extend_from_slice(&[0xFF, 0xEE, 0, ADOBE_LEN as u8 + 2]);
                    out.extend_from_slice(&seg.payload[..ADOBE_LEN]);
                }
                Role::Adobe => out.extend_from_slice(seg.raw),
                Role::Jfif => {
                    if seg.payload.len() >= 14 {
                        out.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
                        out.extend_from_slice(&seg.payload[..12]);
                        out.extend_from_slice(&[0, 0]); // no thumbnail
                    }
                    if i == 1 {
                        write_exif(&mut out);
                    }
                }
                // Rebuilt once, where the first chunk was.
                Role::Icc if !icc_written => {
                    out.extend_from_slice(&self.icc_segments());
                    icc_written = true;
                }
                Role::Icc | Role::Exif | Role::Drop(_) => {}
            }
        }
        out
    }
}

fn describe_dropped(seg: &Segment, cat: Category) -> String {
    let n = seg.payload.len();
    match (seg.marker, cat) {
        (0xFE, _) => format!(
            "COM \"{}\"",
            short_value(&String::from_utf8_lossy(seg.payload), 60)
        ),
        (0xE1, Category::Xmp)
            if seg
                .payload
                .starts_with(b"http://ns.adobe.com/xmp/extension/") =>
        {
            format!("extended XMP, {n} bytes")
        }
        (0xE1, Category::Xmp) => crate::describe::xmp(seg.payload),
        (0xED, _) => crate::describe::photoshop(seg.payload),
        (0xE2, Category::Thumbnail) => format!("MPF index of secondary images, {n} bytes"),
        (0xE0, Category::Thumbnail) => format!("JFXX thumbnail, {n} bytes"),
        (0xE2, Category::MakerNotes) => format!("FlashPix (FPXR) data, {n} bytes"),
        (0xEB, _) => format!("APP11 JUMBF/C2PA manifest, {n} bytes"),
        (m, _) => {
            let id: String = seg
                .payload
                .iter()
                .take(16)
                .take_while(|&&c| c.is_ascii_graphic() || c == b' ')
                .map(|&c| c as char)
                .collect();
            let name = if (0xE0..=0xEF).contains(&m) {
                format!("APP{}", m - 0xE0)
            } else {
                format!("marker 0x{m:02X}")
            };
            if id.is_empty() {
                format!("{name}, {n} bytes")
            } else {
                format!("{name} \"{id}\", {n} bytes")
            }
        }
    }
}

fn trailing_detail(t: &[u8]) -> String {
    let images = t.windows(3).filter(|w| *w == [0xFF, 0xD8, 0xFF]).count();
    if images > 0 {
        format!(
            "{} after the end of the image ({images} embedded JPEG image(s): MPF/gain map/preview)",
            human_bytes(t.len() as u64)
        )
    } else {
        format!("{} after the end of the image", human_bytes(t.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal structurally valid JPEG (not decodable, but parseable).
    fn tiny(extra: &[u8], scan: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        v.extend_from_slice(extra);
        v.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
        v.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
        v.extend_from_slice(scan);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    #[test]
    fn scan_with_stuffing_and_restarts_is_kept_whole() {
        let scan = [1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4, 0xFF, 0xFF, 0xD1, 5];
        let com = [0xFF, 0xFE, 0, 6, b'a', b'b', b'c', b'd'];
        let mut bytes = tiny(&com, &scan);
        bytes.extend_from_slice(b"TRAILER");
        let j = parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(j.trailing, b"TRAILER");
        let out = j.rewrite(&RewritePolicy::default());
        assert_eq!(out, tiny(&[], &scan));
        let inv = j.inventory();
        assert!(inv.categories().contains(&Category::Comment));
        assert!(inv.categories().contains(&Category::TrailingData));
    }

    #[test]
    fn adobe_keeps_its_12_bytes_and_hierarchical_is_refused() {
        let mut adobe = vec![0xFF, 0xEE, 0, 14 + 13];
        adobe.extend_from_slice(b"Adobe\0\x64\0\0\0\0\x01");
        adobe.extend_from_slice(b"MRN-00424242!");
        let input = tiny(&adobe, &[1]);
        let j = parse(&input, &Limits::default()).unwrap();
        assert!(j.inventory().categories().contains(&Category::Other));
        let out = j.rewrite(&RewritePolicy::default());
        let mut kept = vec![0xFF, 0xEE, 0, 14];
        kept.extend_from_slice(&adobe[4..16]);
        assert_eq!(out, tiny(&kept, &[1]));
        assert!(parse(&out, &Limits::default())
            .unwrap()
            .inventory()
            .is_clean());
        let dhp = [0xFF, 0xDE, 0, 6, b'J', b'a', b'n', b'e'];
        let err = parse(&tiny(&dhp, &[1]), &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }

    #[test]
    fn every_prefix_fails_cleanly() {
        let bytes = tiny(&[0xFF, 0xFE, 0, 4, b'h', b'i'], &[1, 2, 3]);
        for n in 0..bytes.len() {
            assert!(
                parse(&bytes[..n], &Limits::default()).is_err(),
                "prefix {n}"
            );
        }
        assert!(parse(&bytes, &Limits::default()).is_ok());
    }

    #[test]
    fn orientation_block_goes_after_jfif() {
        let jfif = [
            0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
        ];
        let bytes = tiny(&jfif, &[1]);
        let j = parse(&bytes, &Limits::default()).unwrap();
        let policy = RewritePolicy {
            orientation: Some(6),
            keep_icc: true,
        };
        let out = j.rewrite(&policy);
        assert_eq!(&out[..jfif.len() + 2], &bytes[..jfif.len() + 2]);
        assert_eq!(&out[jfif.len() + 2..jfif.len() + 4], &[0xFF, 0xE1]);
        let back = parse(&out, &Limits::default()).unwrap();
        let s = exif_block::summarize(back.exif_blocks()[0]);
        assert_eq!(s.orientation, Some(6));
    }

    #[test]
    fn huge_declared_frame_is_refused() {
        let mut bytes = tiny(&[], &[1]);
        bytes[7] = 0xFF; // height 0xFF10
        bytes[9] = 0xFF; // width 0xFF10
        let err = parse(&bytes, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err}");
    }
}
