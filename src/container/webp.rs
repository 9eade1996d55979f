//! WebP at RIFF-chunk level: keep the bitstream, alpha, animation and ICC
//! chunks, drop EXIF/XMP/unknown chunks, then rebuild the VP8X flags and the
//! RIFF size (forgetting the flags is the classic WebP stripping bug).

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::exif_block;
use crate::metadata::{human_bytes, Category, Inventory};

const FORMAT: &str = "WebP";

const FLAG_ICC: u8 = 0x20;
const FLAG_ALPHA: u8 = 0x10;
const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;

#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    pub fourcc: [u8; 4],
    pub data: &'a [u8],
}

#[derive(Debug)]
pub struct Webp<'a> {
    pub chunks: Vec<Chunk<'a>>,
    /// Bytes after the RIFF container.
    pub trailing: &'a [u8],
    pub width: u32,
    pub height: u32,
}

fn le24(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

pub fn parse<'a>(b: &'a [u8], limits: &Limits) -> Result<Webp<'a>> {
    if b.len() < 12 || &b[..4] != b"RIFF" || &b[8..12] != b"WEBP" {
        return Err(Error::malformed(FORMAT, "missing RIFF/WEBP header"));
    }
    let riff_size = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")) as usize;
    let riff_end = riff_size
        .checked_add(8)
        .filter(|&e| e <= b.len() && e >= 12)
        .ok_or_else(|| {
            Error::malformed(FORMAT, "truncated: RIFF size runs past the end of the file")
        })?;
    let mut chunks = Vec::new();
    let mut pos = 12;
    while pos < riff_end {
        let header = b
            .get(pos..pos + 8)
            .filter(|_| pos + 8 <= riff_end)
            .ok_or_else(|| Error::malformed(FORMAT, "truncated chunk header"))?;
        let fourcc: [u8; 4] = header[..4].try_into().expect("4 bytes");
        let size = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        let data_end = (pos + 8)
            .checked_add(size)
            .filter(|&e| e <= riff_end)
            .ok_or_else(|| Error::malformed(FORMAT, "chunk overflows the RIFF container"))?;
        chunks.push(Chunk {
            fourcc,
            data: &b[pos + 8..data_end],
        });
        pos = data_end + (size & 1); // chunks are padded to even sizes
    }
    let (width, height) = dimensions(&chunks)?;
    check_dimensions(FORMAT, width, height, limits)?;
    Ok(Webp {
        chunks,
        trailing: &b[riff_end..],
        width,
        height,
    })
}

fn dimensions(chunks: &[Chunk]) -> Result<(u32, u32)> {
    let first = chunks
        .first()
        .ok_or_else(|| Error::malformed(FORMAT, "no chunks"))?;
    let d = first.data;
    let dims = match &first.fourcc {
        b"VP8X" if d.len() >= 10 => Some((le24(&d[4..7]) + 1, le24(&d[7..10]) + 1)),
        b"VP8 " if d.len() >= 10 && d[3..6] == [0x9D, 0x01, 0x2A] => Some((
            u16::from_le_bytes([d[6], d[7]]) as u32 & 0x3FFF,
            u16::from_le_bytes([d[8], d[9]]) as u32 & 0x3FFF,
        )),
        b"VP8L" if d.len() >= 5 && d[0] == 0x2F => {
            let bits = u32::from_le_bytes([d[1], d[2], d[3], d[4]]);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => None,
    };
    dims.filter(|&(w, h)| w > 0 && h > 0)
        .ok_or_else(|| Error::malformed(FORMAT, "no valid VP8X, VP8 or VP8L header"))
}

fn keep(fourcc: &[u8; 4], policy: &RewritePolicy) -> bool {
    matches!(fourcc, b"VP8 " | b"VP8L" | b"ALPH" | b"ANIM" | b"ANMF")
        || (fourcc == b"ICCP" && policy.keep_icc)
}

impl<'a> Webp<'a> {
    pub fn exif_blocks(&self) -> Vec<&'a [u8]> {
        self.chunks
            .iter()
            .filter(|c| &c.fourcc == b"EXIF")
            .map(|c| c.data.strip_prefix(b"Exif\0\0").unwrap_or(c.data))
            .collect()
    }

    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::default();
        for c in &self.chunks {
            let n = c.data.len();
            match &c.fourcc {
                b"VP8X" | b"VP8 " | b"VP8L" | b"ALPH" | b"ANIM" | b"ANMF" => {}
                b"ICCP" => crate::icc::audit(c.data, &mut inv),
                b"EXIF" => {} // summarised once, by container::parse
                b"XMP " => inv.push(Category::Xmp, crate::describe::xmp(c.data)),
                other => inv.push(
                    Category::Other,
                    format!("chunk {}, {n} bytes", String::from_utf8_lossy(other)),
                ),
            }
        }
        if !self.trailing.is_empty() {
            inv.push(
                Category::TrailingData,
                format!(
                    "{} after the RIFF container",
                    human_bytes(self.trailing.len() as u64)
                ),
            );
        }
        inv
    }

    pub fn rewrite(&self, policy: &RewritePolicy) -> Vec<u8> {
        let mut body = Vec::new();
        let vp8x = self.chunks.iter().find(|c| &c.fourcc == b"VP8X");
        // One profile, sanitised (a malformed one is dropped).
        let icc = self
            .chunks
            .iter()
            .find(|c| &c.fourcc == b"ICCP" && policy.keep_icc)
            .and_then(|c| crate::icc::sanitize(c.data).ok());
        let has_icc = icc.is_some();
        // A simple file (VP8/VP8L alone) gets an extended header when it must
        // carry the orientation or the profile: only VP8X files may hold them.
        let synthesized;
        let header = match vp8x.filter(|x| x.data.len() >= 10) {
            Some(x) => Some(x.data),
            None if vp8x.is_none() && (policy.orientation.is_some() || has_icc) => {
                synthesized = self.simple_header();
                Some(&synthesized[..])
            }
            None => None,
        };
        if let Some(header) = header {
            let mut data = header[..10].to_vec();
            data[0] &= !(FLAG_ICC | FLAG_EXIF | FLAG_XMP);
            if has_icc {
                data[0] |= FLAG_ICC;
            }
            if policy.orientation.is_some() {
                data[0] |= FLAG_EXIF;
            }
            write_chunk(&mut body, b"VP8X", &data);
        }
        // Order per the container spec: ICCP, ANIM/ANMF or bitstream, then EXIF.
        if let Some(icc) = &icc {
            write_chunk(&mut body, b"ICCP", icc);
        }
        for c in self
            .chunks
            .iter()
            .filter(|c| keep(&c.fourcc, policy) && &c.fourcc != b"ICCP")
        {
            write_chunk(&mut body, &c.fourcc, c.data);
        }
        if let (Some(o), Some(_)) = (policy.orientation, header) {
            write_chunk(&mut body, b"EXIF", &exif_block::orientation_only(o));
        }
        let mut out = Vec::with_capacity(body.len() + 12);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        out.extend_from_slice(b"WEBP");
        out.extend_from_slice(&body);
        out
    }

    /// A VP8X payload for a simple file: no flags, the canvas size.
    fn simple_header(&self) -> [u8; 10] {
        let mut h = [0u8; 10];
        // VP8L says in its header whether alpha is used; VP8X repeats it.
        let alpha = self.chunks.iter().any(|c| {
            &c.fourcc == b"VP8L"
                && c.data.len() >= 5
                && u32::from_le_bytes([c.data[1], c.data[2], c.data[3], c.data[4]]) >> 28 & 1 == 1
        });
        if alpha {
            h[0] = FLAG_ALPHA;
        }
        h[4..7].copy_from_slice(&self.width.saturating_sub(1).to_le_bytes()[..3]);
        h[7..10].copy_from_slice(&self.height.saturating_sub(1).to_le_bytes()[..3]);
        h
    }
}

fn write_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webp(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, d) in chunks {
            write_chunk(&mut body, k, d);
        }
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&((body.len() + 4) as u32).to_le_bytes());
        v.extend_from_slice(b"WEBP");
        v.extend_from_slice(&body);
        v
    }

    const VP8L: &[u8] = &[0x2F, 0x07, 0xC0, 0x01, 0x00, 0x11];

    #[test]
    fn exif_xmp_dropped_and_flags_rebuilt() {
        let vp8x = [FLAG_EXIF | FLAG_XMP | 0x10, 0, 0, 0, 7, 0, 0, 7, 0, 0];
        let bytes = webp(&[
            (b"VP8X", &vp8x),
            (b"VP8L", VP8L),
            (b"EXIF", b"MM\0\x2a\0\0\0\x08\0\0"),
            (b"XMP ", b"<x/>"),
        ]);
        let w = parse(&bytes, &Limits::default()).unwrap();
        assert_eq!((w.width, w.height), (8, 8));
        let out = w.rewrite(&RewritePolicy::default());
        let back = parse(&out, &Limits::default()).unwrap();
        assert_eq!(back.chunks.len(), 2);
        assert_eq!(
            back.chunks[0].data[0], 0x10,
            "alpha kept, EXIF/XMP flags cleared"
        );
        assert!(back.inventory().is_clean());
    }

    #[test]
    fn every_prefix_fails() {
        let bytes = webp(&[(b"VP8L", VP8L), (b"XMP ", b"<x/>")]);
        for n in 0..bytes.len() {
            assert!(
                parse(&bytes[..n], &Limits::default()).is_err(),
                "prefix {n}"
            );
        }
    }

    #[test]
    fn a_simple_file_gets_an_extended_header_to_keep_its_orientation() {
        let img = image::RgbaImage::from_pixel(3, 2, image::Rgba([1, 2, 3, 128]));
        let mut simple = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut simple)
            .encode(img.as_raw(), 3, 2, image::ExtendedColorType::Rgba8)
            .unwrap();
        assert_eq!(&simple[12..16], b"VP8L");
        // An EXIF chunk such a file should not have, holding Orientation 6.
        write_chunk(&mut simple, b"EXIF", &exif_block::orientation_only(6));
        let size = (simple.len() - 8) as u32;
        simple[4..8].copy_from_slice(&size.to_le_bytes());
        let w = parse(&simple, &Limits::default()).unwrap();
        let policy = RewritePolicy {
            orientation: Some(6),
            keep_icc: true,
        };
        let out = w.rewrite(&policy);
        assert_eq!(&out[12..16], b"VP8X");
        assert_eq!(out[20], FLAG_EXIF | FLAG_ALPHA);
        let back = parse(&out, &Limits::default()).unwrap();
        assert_eq!((back.width, back.height), (3, 2));
        let s = exif_block::summarize(back.exif_blocks()[0]);
        assert_eq!(s.orientation, Some(6));
        let decoded = image::load_from_memory(&out).unwrap().to_rgba8();
        assert_eq!(decoded, img, "the picture is untouched");
    }
}
