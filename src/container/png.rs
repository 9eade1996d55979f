//! PNG at chunk level: every chunk's length and CRC is checked, critical and
//! display chunks are kept, text, EXIF, time and provenance chunks are
//! dropped, and nothing after IEND survives (the aCropalypse leak).

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::metadata::{human_bytes, short_value, Category, Inventory};

const FORMAT: &str = "PNG";
pub const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

#[derive(Debug, Clone, Copy)]
pub struct Chunk<'a> {
    pub kind: [u8; 4],
    pub data: &'a [u8],
    /// Length, type, data and CRC: what is copied when the chunk is kept.
    pub raw: &'a [u8],
}

#[derive(Debug)]
pub struct Png<'a> {
    pub chunks: Vec<Chunk<'a>>,
    pub trailing: &'a [u8],
    pub width: u32,
    pub height: u32,
}

/// Ancillary chunks that change how the image displays (oxipng's "safe" set)
/// plus APNG animation.
const DISPLAY: &[&[u8; 4]] = &[
    b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"cICP", b"sBIT", b"bKGD", b"pHYs", b"acTL", b"fcTL",
    b"fdAT", b"mDCv", b"cLLi",
];

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub fn parse<'a>(b: &'a [u8], limits: &Limits) -> Result<Png<'a>> {
    if b.get(..8) != Some(SIGNATURE) {
        return Err(Error::malformed(FORMAT, "missing PNG signature"));
    }
    let mut chunks = Vec::new();
    let mut pos = 8;
    loop {
        let len =
            be32(b, pos).ok_or_else(|| Error::malformed(FORMAT, "truncated: no IEND chunk"))?;
        let end = pos
            .checked_add(12)
            .and_then(|p| p.checked_add(len as usize))
            .filter(|&e| e <= b.len() && len <= 0x7FFF_FFFF)
            .ok_or_else(|| {
                Error::malformed(FORMAT, "truncated: a chunk runs past the end of the file")
            })?;
        let kind: [u8; 4] = b[pos + 4..pos + 8].try_into().expect("4 bytes");
        let data = &b[pos + 8..end - 4];
        let crc = be32(b, end - 4).expect("bounds checked");
        if crc32fast::hash(&b[pos + 4..end - 4]) != crc {
            return Err(Error::malformed(
                FORMAT,
                format!(
                    "chunk {} has a bad CRC (corrupt file)",
                    String::from_utf8_lossy(&kind)
                ),
            ));
        }
        if chunks.is_empty() && &kind != b"IHDR" {
            return Err(Error::malformed(FORMAT, "first chunk is not IHDR"));
        }
        chunks.push(Chunk {
            kind,
            data,
            raw: &b[pos..end],
        });
        pos = end;
        if &kind == b"IEND" {
            break;
        }
    }
    let ihdr = chunks[0].data;
    let (width, height) = (be32(ihdr, 0).unwrap_or(0), be32(ihdr, 4).unwrap_or(0));
    if ihdr.len() != 13 || width == 0 || height == 0 {
        return Err(Error::malformed(FORMAT, "invalid IHDR"));
    }
    check_dimensions(FORMAT, width, height, limits)?;
    // A decoder must refuse an unknown critical chunk; copying it would let
    // anything through under an uppercase name.
    if let Some(c) = chunks
        .iter()
        .find(|c| c.kind[0].is_ascii_uppercase() && !is_critical(&c.kind))
    {
        return Err(Error::Unsupported(format!(
            "unknown critical PNG chunk {:?}",
            String::from_utf8_lossy(&c.kind)
        )));
    }
    if !chunks.iter().any(|c| &c.kind == b"IDAT") {
        return Err(Error::malformed(FORMAT, "no image data (IDAT)"));
    }
    Ok(Png {
        chunks,
        trailing: &b[pos..],
        width,
        height,
    })
}

/// The four critical chunks of PNG 1.2 / 3.
fn is_critical(kind: &[u8; 4]) -> bool {
    matches!(kind, b"IHDR" | b"PLTE" | b"IDAT" | b"IEND")
}

fn keep(kind: &[u8; 4], policy: &RewritePolicy) -> bool {
    is_critical(kind) || DISPLAY.contains(&kind) || (kind == b"iCCP" && policy.keep_icc)
}

impl<'a> Png<'a> {
    pub fn exif_blocks(&self) -> Vec<&'a [u8]> {
        self.chunks
            .iter()
            .filter(|c| &c.kind == b"eXIf")
            // Some writers put the JPEG-style `Exif\0\0` prefix in front.
            .map(|c| c.data.strip_prefix(b"Exif\0\0").unwrap_or(c.data))
            .collect()
    }

    pub fn is_animated(&self) -> bool {
        self.chunks.iter().any(|c| &c.kind == b"acTL")
    }

    /// The display chunks that survive a re-encode of the pixels (colour
    /// interpretation and density, not layout-dependent ones like tRNS).
    pub fn colour_chunks(&self, policy: &RewritePolicy) -> Vec<Chunk<'a>> {
        let wanted: &[&[u8; 4]] = &[b"gAMA", b"cHRM", b"sRGB", b"cICP", b"pHYs", b"iCCP"];
        self.chunks
            .iter()
            .filter(|c| wanted.contains(&&c.kind) && keep(&c.kind, policy))
            .copied()
            .collect()
    }

    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::default();
        let mut other: Vec<String> = Vec::new();
        for c in &self.chunks {
            let name = String::from_utf8_lossy(&c.kind).to_string();
            match &c.kind {
                k if is_critical(k) || DISPLAY.contains(&k) => {}
                b"iCCP" => inv.push(
                    Category::ColourProfile,
                    format!("iCCP \"{}\", {} bytes", keyword(c.data), c.data.len()),
                ),
                b"tEXt" => {
                    let (k, v) = split_keyword(c.data);
                    let text = String::from_utf8_lossy(v);
                    inv.push(
                        Category::TextChunk,
                        format!("tEXt {k} \"{}\"", short_value(&text, 60)),
                    );
                }
                b"zTXt" => inv.push(
                    Category::TextChunk,
                    format!(
                        "zTXt {} (compressed, {} bytes)",
                        keyword(c.data),
                        c.data.len()
                    ),
                ),
                b"iTXt" if keyword(c.data) == "XML:com.adobe.xmp" => inv.push(
                    Category::Xmp,
                    format!("XMP packet in iTXt, {} bytes", c.data.len()),
                ),
                b"iTXt" => inv.push(
                    Category::TextChunk,
                    format!("iTXt {}, {} bytes", keyword(c.data), c.data.len()),
                ),
                b"eXIf" => {} // summarised once, by container::parse
                b"tIME" => inv.push(Category::Exif, "tIME modification time"),
                b"caBX" => inv.push(
                    Category::Provenance,
                    format!("caBX C2PA manifest, {} bytes", c.data.len()),
                ),
                _ => other.push(name),
            }
        }
        if !other.is_empty() {
            inv.push(
                Category::Other,
                format!("ancillary chunks {}", other.join(", ")),
            );
        }
        if !self.trailing.is_empty() {
            inv.push(
                Category::TrailingData,
                format!("{} after IEND", human_bytes(self.trailing.len() as u64)),
            );
        }
        inv
    }

    /// Lossless rewrite. An orientation cannot be kept in a PNG without an
    /// eXIf chunk, so PNG orientation is applied to the pixels instead (see pipeline).
    pub fn rewrite(&self, policy: &RewritePolicy) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.chunks.iter().map(|c| c.raw.len()).sum::<usize>() + 8);
        out.extend_from_slice(SIGNATURE);
        for c in self.chunks.iter().filter(|c| keep(&c.kind, policy)) {
            out.extend_from_slice(c.raw);
        }
        out
    }
}

/// Writes one chunk with its CRC.
pub fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
}

fn split_keyword(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&c| c == 0) {
        Some(i) => (
            String::from_utf8_lossy(&data[..i]).to_string(),
            &data[i + 1..],
        ),
        None => (String::new(), data),
    }
}

fn keyword(data: &[u8]) -> String {
    short_value(&split_keyword(data).0, 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_with(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        let ihdr = [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0];
        write_chunk(&mut v, b"IHDR", &ihdr);
        for (k, d) in chunks {
            write_chunk(&mut v, k, d);
        }
        write_chunk(&mut v, b"IDAT", &[0x78, 0x9c, 0x63, 0x60, 0, 0, 0, 2, 0, 1]);
        write_chunk(&mut v, b"IEND", &[]);
        v
    }

    #[test]
    fn text_exif_time_and_trailer_go_display_chunks_stay() {
        let mut bytes = png_with(&[
            (b"gAMA", &[0, 0, 0xB1, 0x8F]),
            (b"tEXt", b"Author\0Jane"),
            (b"tIME", &[7, 0xE5, 3, 4, 9, 10, 11]),
            (b"prVt", b"secret"),
        ]);
        bytes.extend_from_slice(b"LEAK");
        let p = parse(&bytes, &Limits::default()).unwrap();
        let out = p.rewrite(&RewritePolicy::default());
        assert_eq!(out, png_with(&[(b"gAMA", &[0, 0, 0xB1, 0x8F])]));
        let cats = p.inventory().categories();
        for c in [Category::TextChunk, Category::TrailingData, Category::Other] {
            assert!(cats.contains(&c), "{c:?} in {cats:?}");
        }
    }

    #[test]
    fn unknown_critical_chunks_are_refused() {
        let bytes = png_with(&[(b"MRNa", b"MRN-00424242")]);
        let err = parse(&bytes, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }

    #[test]
    fn every_prefix_and_bad_crc_fail() {
        let bytes = png_with(&[(b"tEXt", b"a\0b")]);
        for n in 0..bytes.len() {
            assert!(
                parse(&bytes[..n], &Limits::default()).is_err(),
                "prefix {n}"
            );
        }
        let mut bad = bytes.clone();
        bad[40] ^= 1;
        assert!(parse(&bad, &Limits::default()).is_err());
    }
}
