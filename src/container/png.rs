//! PNG at chunk level: every chunk's length and CRC is checked, critical and
//! display chunks are kept, text, EXIF, time and provenance chunks are
//! dropped, and nothing after IEND survives (the aCropalypse leak).
//!
//! A kept display chunk must have the length PNG 3 gives it for this image
//! (every byte of it is then one of its fields), else it is dropped; APNG
//! chunks survive only in an APNG (acTL before the first IDAT); the image
//! data is inflated so that bytes after its zlib stream are cut, and data
//! past what the image needs is recompressed away; the ICC profile is
//! rebuilt (see [`crate::icc`]) under a neutral name. [`Png::fates`] is the
//! one rule the writer and the audit share.

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::metadata::{human_bytes, short_value, Category, Inventory};
use crate::splice::{AuditAs, Spliced};

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

/// The keyword of every rebuilt iCCP chunk (the original names the profile freely).
const ICC_KEYWORD: &[u8] = b"ICC profile";
/// iCCP profiles that inflate past this are dropped (profiles are kilobytes).
const MAX_ICC: usize = 16 << 20;
const APNG: &[&[u8; 4]] = &[b"acTL", b"fcTL", b"fdAT"];

/// What a rewrite does with one chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Keep,
    /// These bytes (whole chunks) replace it.
    Rebuild(Vec<u8>),
    /// Dropped, and why when the audit must report it (`None`: dropped by
    /// the metadata policy, which the inventory reports by kind).
    Drop(Option<String>),
}

/// How a zlib stream inflated.
enum Inflated {
    /// The whole stream, and how many input bytes it took.
    Ended(Vec<u8>, usize),
    /// More output than the limit: the first `limit` bytes.
    TooLong(Vec<u8>),
    /// Corrupt or truncated.
    Bad,
}

/// Inflates the zlib stream at the start of `data`, at most `limit` bytes out.
fn inflate(data: &[u8], limit: usize) -> Inflated {
    let mut z = flate2::Decompress::new(true);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                out.truncate(limit);
                return Inflated::TooLong(out);
            }
            out.reserve(out.len().max(4096).min(limit + 1 - out.len()));
        }
        let (was_in, was_out) = (z.total_in(), z.total_out());
        let rest = data.get(z.total_in() as usize..).unwrap_or_default();
        match z.decompress_vec(rest, &mut out, flate2::FlushDecompress::None) {
            Ok(flate2::Status::StreamEnd) if out.len() <= limit => {
                return Inflated::Ended(out, z.total_in() as usize)
            }
            Ok(flate2::Status::StreamEnd) => {
                out.truncate(limit);
                return Inflated::TooLong(out);
            }
            Ok(_) if (z.total_in(), z.total_out()) != (was_in, was_out) => {}
            _ => return Inflated::Bad,
        }
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(data);
    z.finish().unwrap_or_default()
}

/// The profile an iCCP chunk carries, and whether its zlib stream fills the chunk.
fn iccp_profile(data: &[u8]) -> Option<(Vec<u8>, bool)> {
    let nul = data.iter().position(|&c| c == 0)?;
    (data.get(nul + 1) == Some(&0)).then_some(())?;
    let z = &data[nul + 2..];
    match inflate(z, MAX_ICC) {
        Inflated::Ended(p, used) => Some((p, used == z.len())),
        _ => None,
    }
}

/// The iCCP chunk with a neutral keyword and the sanitised profile.
fn rebuilt_iccp(data: &[u8]) -> Option<Vec<u8>> {
    let clean = crate::icc::sanitize(&iccp_profile(data)?.0).ok()?;
    let mut d = ICC_KEYWORD.to_vec();
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(&deflate(&clean));
    let mut out = Vec::new();
    write_chunk(&mut out, b"iCCP", &d);
    Some(out)
}

/// Bytes of filtered image data the IHDR implies (Adam7 passes included).
fn raw_size(ihdr: &[u8]) -> Option<u64> {
    let (w, h) = (be32(ihdr, 0)? as u64, be32(ihdr, 4)? as u64);
    let channels = match ihdr.get(9)? {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return None,
    };
    let bits = channels * *ihdr.get(8)? as u64;
    let rows = |w: u64, h: u64| h * (1 + (w * bits).div_ceil(8));
    if *ihdr.get(12)? == 0 {
        return Some(rows(w, h));
    }
    let passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    Some(
        passes
            .iter()
            .map(|&(x0, y0, dx, dy)| {
                let pw = w.saturating_sub(x0).div_ceil(dx);
                let ph = h.saturating_sub(y0).div_ceil(dy);
                if pw == 0 {
                    0
                } else {
                    rows(pw, ph)
                }
            })
            .sum(),
    )
}

/// Whether a display chunk has the length (and values) PNG 3 gives it in
/// an image of colour type `ct` with `palette` entries.
fn well_formed(kind: &[u8; 4], d: &[u8], ct: u8, palette: usize) -> bool {
    let n = d.len();
    match kind {
        b"gAMA" | b"cICP" => n == 4,
        b"cHRM" => n == 32,
        b"sRGB" => n == 1 && d[0] <= 3,
        b"pHYs" => n == 9 && d[8] <= 1,
        b"sBIT" => n == [1, 0, 3, 3, 2, 0, 4].get(ct as usize).copied().unwrap_or(0),
        b"bKGD" => n == [2, 0, 6, 1, 2, 0, 6].get(ct as usize).copied().unwrap_or(0),
        b"tRNS" => match ct {
            0 => n == 2,
            2 => n == 6,
            3 => (1..=palette).contains(&n),
            _ => false,
        },
        b"mDCv" => n == 24,
        b"cLLi" | b"acTL" => n == 8,
        b"fcTL" => n == 26,
        b"fdAT" => n >= 4,
        _ => true,
    }
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

    /// EXIF that ImageMagick stored the old way: a `Raw profile type exif`
    /// tEXt/zTXt chunk holding it hex-encoded. Only read for its orientation.
    pub fn raw_profile_exif(&self) -> Option<Vec<u8>> {
        self.chunks.iter().find_map(|c| {
            let (key, value) = split_keyword(c.data);
            if key != "Raw profile type exif" {
                return None;
            }
            match &c.kind {
                b"tEXt" => crate::exif_block::from_raw_profile(value),
                // A text chunk is no place for more than 4 MiB.
                b"zTXt" => match inflate(value.get(1..)?, 4 << 20) {
                    Inflated::Ended(text, _) => crate::exif_block::from_raw_profile(&text),
                    _ => None,
                },
                _ => None,
            }
        })
    }

    /// An APNG declares its animation (acTL) before the first IDAT.
    pub fn is_animated(&self) -> bool {
        self.chunks
            .iter()
            .take_while(|c| &c.kind != b"IDAT")
            .any(|c| &c.kind == b"acTL")
    }

    /// What the rewrite does with each chunk, in order: the single rule
    /// the writer and the audit share.
    pub fn fates(&self, policy: &RewritePolicy) -> Vec<Fate> {
        let ct = self.chunks[0].data[9];
        let palette = self
            .chunks
            .iter()
            .find(|c| &c.kind == b"PLTE")
            .map_or(0, |c| c.data.len() / 3);
        let animated = self.is_animated();
        let idat = self.idat_rebuild();
        let (mut idat_done, mut icc_done, mut seen) = (false, false, Vec::new());
        self.chunks
            .iter()
            .map(|c| {
                let name = String::from_utf8_lossy(&c.kind).to_string();
                let first = !seen.contains(&c.kind);
                seen.push(c.kind);
                match &c.kind {
                    b"IDAT" => match &idat {
                        None => Fate::Keep,
                        Some(_) if idat_done => Fate::Drop(None),
                        Some(bytes) => {
                            idat_done = true;
                            Fate::Rebuild(bytes.clone())
                        }
                    },
                    b"iCCP" if !policy.keep_icc => Fate::Drop(None),
                    b"iCCP" if icc_done => Fate::Drop(Some("a second iCCP chunk".into())),
                    b"iCCP" => {
                        icc_done = true;
                        match rebuilt_iccp(c.data) {
                            Some(b) if b == c.raw => Fate::Keep,
                            Some(b) => Fate::Rebuild(b),
                            None => Fate::Drop(Some(
                                "an iCCP profile that does not inflate or is malformed".into(),
                            )),
                        }
                    }
                    k if APNG.contains(&k) && !animated => {
                        Fate::Drop(Some(format!("{name} in a file that is not an APNG")))
                    }
                    k if DISPLAY.contains(&k) && !well_formed(k, c.data, ct, palette) => {
                        Fate::Drop(Some(format!(
                            "{name} with {} bytes (not its length)",
                            c.data.len()
                        )))
                    }
                    k if DISPLAY.contains(&k) && !first && !matches!(k, b"fcTL" | b"fdAT") => {
                        Fate::Drop(Some(format!("a second {name} chunk")))
                    }
                    k if keep(k, policy) => Fate::Keep,
                    _ => Fate::Drop(None),
                }
            })
            .collect()
    }

    /// The IDAT chunk that replaces the image data when bytes follow its
    /// zlib stream or it inflates past what the image needs; `None` when
    /// the data is exact (or broken: the decoder then says so).
    fn idat_rebuild(&self) -> Option<Vec<u8>> {
        let data: Vec<u8> = self
            .chunks
            .iter()
            .filter(|c| &c.kind == b"IDAT")
            .flat_map(|c| c.data.iter().copied())
            .collect();
        let need = usize::try_from(raw_size(self.chunks[0].data)?).ok()?;
        let body = match inflate(&data, need) {
            Inflated::Ended(raw, used) if raw.len() == need && used < data.len() => {
                data[..used].to_vec()
            }
            Inflated::TooLong(raw) => deflate(&raw),
            _ => return None,
        };
        let mut out = Vec::new();
        write_chunk(&mut out, b"IDAT", &body);
        Some(out)
    }

    /// The display chunks that survive a re-encode of the pixels (colour
    /// interpretation and density, not layout-dependent ones like tRNS).
    pub fn colour_chunks(&self, policy: &RewritePolicy) -> Vec<Chunk<'a>> {
        let wanted: &[&[u8; 4]] = &[b"gAMA", b"cHRM", b"sRGB", b"cICP", b"pHYs"];
        let policy = RewritePolicy {
            keep_icc: false,
            ..*policy
        };
        self.chunks
            .iter()
            .zip(self.fates(&policy))
            .filter(|(c, fate)| wanted.contains(&&c.kind) && *fate == Fate::Keep)
            .map(|(c, _)| *c)
            .collect()
    }

    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::default();
        let mut other: Vec<String> = Vec::new();
        for c in &self.chunks {
            let name = String::from_utf8_lossy(&c.kind).to_string();
            match &c.kind {
                k if is_critical(k) || DISPLAY.contains(&k) => {}
                // One that does not inflate is reported by its fate.
                b"iCCP" => {
                    if let Some((p, whole)) = iccp_profile(c.data) {
                        crate::icc::audit(&p, &mut inv);
                        if split_keyword(c.data).0.as_bytes() != ICC_KEYWORD {
                            inv.push(
                                Category::ColourProfileText,
                                format!("iCCP name \"{}\"", keyword(c.data)),
                            );
                        }
                        if !whole {
                            inv.push(
                                Category::ColourProfileText,
                                "bytes after the iCCP chunk's compressed profile",
                            );
                        }
                    }
                }
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
        let fates = self.fates(&RewritePolicy::default());
        for (c, fate) in self.chunks.iter().zip(&fates) {
            match (fate, &c.kind) {
                (Fate::Drop(Some(why)), _) => inv.push(Category::Other, why.clone()),
                (Fate::Rebuild(_), b"IDAT") => {
                    inv.push(
                        Category::TrailingData,
                        "data hidden in the image data's zlib stream (after its end or past the image)",
                    );
                }
                _ => {}
            }
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
        self.rewrite_spliced(policy).to_vec()
    }

    /// [`Png::rewrite`] with the kept chunks (IDAT) by reference (see [`crate::splice`]).
    pub fn rewrite_spliced(&self, policy: &RewritePolicy) -> Spliced<'a> {
        let mut out = Spliced::new();
        out.extend_from_slice(SIGNATURE);
        for (c, fate) in self.chunks.iter().zip(self.fates(policy)) {
            match fate {
                // The audit inflates IDAT: it sees the real bytes.
                Fate::Keep => out.payload(c.raw, AuditAs::Bytes),
                Fate::Rebuild(bytes) => out.extend_from_slice(&bytes),
                Fate::Drop(_) => {}
            }
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
