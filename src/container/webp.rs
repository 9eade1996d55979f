//! WebP at RIFF-chunk level: keep one bitstream (VP8 with its ALPH, or
//! VP8L) in a still file, or the ANIM and ANMF frames of an animation
//! (both rebuilt from their known fields, each frame holding only its
//! bitstream), and the ICC profile; drop everything else, then rebuild the
//! VP8X flags from what is kept and the RIFF size (forgetting the flags is
//! the classic WebP stripping bug). The bitstreams are copied as they are:
//! finding where VP8/VP8L data really ends needs a decode, done only under
//! `--thorough` ([`Webp::coded_data_slack`] for the audit, `recode::webp`
//! and [`cut_frame`] for the writer, all through `vp8::walk` /
//! `vp8l::coded_len`), for a still image and for every animation frame.

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::exif_block;
use crate::metadata::{human_bytes, Category, Finding, Inventory};

const FORMAT: &str = "WebP";

const FLAG_ICC: u8 = 0x20;
const FLAG_ALPHA: u8 = 0x10;
const FLAG_EXIF: u8 = 0x08;
#[cfg(test)]
const FLAG_XMP: u8 = 0x04;
const FLAG_ANIMATION: u8 = 0x02;

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
    layout: Layout,
}

/// What the rewrite writes after VP8X and ICCP: chunks rebuilt from parsed
/// fields, and what the source had beyond them.
#[derive(Debug, Default)]
struct Layout {
    chunks: Vec<([u8; 4], Vec<u8>)>,
    alpha: bool,
    animated: bool,
    dropped: Vec<Finding>,
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
    let layout = plan(&chunks)?;
    Ok(Webp {
        chunks,
        trailing: &b[riff_end..],
        width,
        height,
        layout,
    })
}

/// The sub-chunks of an ANMF frame (after its 16-byte header).
fn sub_chunks(mut d: &[u8]) -> Result<Vec<Chunk<'_>>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let size = d
            .get(4..8)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
            .ok_or_else(|| Error::malformed(FORMAT, "truncated chunk inside an animation frame"))?;
        let data = d
            .get(8..8 + size)
            .ok_or_else(|| Error::malformed(FORMAT, "chunk overflows its animation frame"))?;
        out.push(Chunk {
            fourcc: d[..4].try_into().expect("4 bytes"),
            data,
        });
        d = d.get(8 + size + (size & 1)..).unwrap_or_default();
    }
    Ok(out)
}

fn vp8l_alpha(data: &[u8]) -> bool {
    data.len() >= 5 && u32::from_le_bytes([data[1], data[2], data[3], data[4]]) >> 28 & 1 == 1
}

fn name(fourcc: &[u8; 4]) -> String {
    String::from_utf8_lossy(fourcc).trim_end().to_string()
}

/// One image: VP8 with the ALPH right before it, or VP8L. Returns the
/// chunks kept, whether they carry alpha, and a finding per chunk left out.
fn one_bitstream<'a>(
    chunks: &[Chunk<'a>],
    allow_alph: bool,
) -> (Vec<Chunk<'a>>, bool, Vec<Finding>) {
    let at = chunks
        .iter()
        .position(|c| matches!(&c.fourcc, b"VP8 " | b"VP8L"));
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    let mut alpha = false;
    for (i, c) in chunks.iter().enumerate() {
        let alph_for_vp8 = allow_alph
            && &c.fourcc == b"ALPH"
            && at.is_some_and(|a| a == i + 1 && &chunks[a].fourcc == b"VP8 ");
        if Some(i) == at {
            alpha |= &c.fourcc == b"VP8L" && vp8l_alpha(c.data);
            kept.push(*c);
        } else if alph_for_vp8 {
            alpha = true;
            kept.push(*c);
        } else if matches!(&c.fourcc, b"VP8 " | b"VP8L" | b"ALPH") {
            dropped.push(Finding::new(
                Category::Other,
                format!(
                    "{} chunk beside the image's bitstream, {} bytes",
                    name(&c.fourcc),
                    c.data.len()
                ),
            ));
        }
    }
    (kept, alpha, dropped)
}

/// Decides what the rewrite keeps: see the module docs.
fn plan(chunks: &[Chunk]) -> Result<Layout> {
    let mut l = Layout::default();
    let vp8x = chunks.first().filter(|c| &c.fourcc == b"VP8X");
    let anim = chunks.iter().find(|c| &c.fourcc == b"ANIM");
    l.animated = vp8x.is_some_and(|x| x.data.first().is_some_and(|f| f & FLAG_ANIMATION != 0))
        && anim.is_some();
    let other = |c: &Chunk, why: &str| {
        Finding::new(
            Category::Other,
            format!("{} chunk {why}, {} bytes", name(&c.fourcc), c.data.len()),
        )
    };
    if !l.animated {
        let (kept, alpha, dropped) = one_bitstream(chunks, vp8x.is_some());
        if kept.is_empty() {
            return Err(Error::malformed(FORMAT, "no VP8 or VP8L bitstream"));
        }
        l.alpha = alpha;
        l.dropped = dropped;
        l.dropped.extend(
            chunks
                .iter()
                .filter(|c| matches!(&c.fourcc, b"ANIM" | b"ANMF"))
                .map(|c| other(c, "in a still (not animated) file")),
        );
        l.chunks = kept.iter().map(|c| (c.fourcc, c.data.to_vec())).collect();
        return Ok(l);
    }
    // Background colour (4 bytes) and loop count (2): nothing else.
    let anim = anim.expect("animated has ANIM");
    let fields = anim
        .data
        .get(..6)
        .ok_or_else(|| Error::malformed(FORMAT, "ANIM chunk shorter than 6 bytes"))?;
    if anim.data.len() > 6 {
        l.dropped.push(other(anim, "with extra bytes"));
    }
    l.chunks.push((*b"ANIM", fields.to_vec()));
    let mut seen_anim = false;
    for c in chunks {
        match &c.fourcc {
            b"ANIM" if !seen_anim => seen_anim = true,
            b"ANMF" => {
                let f = frame(c.data, &mut l)?;
                l.chunks.push((*b"ANMF", f));
            }
            b"ANIM" | b"VP8 " | b"VP8L" | b"ALPH" => {
                l.dropped.push(other(c, "outside an animation frame"))
            }
            _ => {}
        }
    }
    Ok(l)
}

/// An ANMF frame rebuilt: position, size, duration, the blending and
/// disposal bits, then its one bitstream.
fn frame(d: &[u8], l: &mut Layout) -> Result<Vec<u8>> {
    let header = d
        .get(..16)
        .ok_or_else(|| Error::malformed(FORMAT, "ANMF chunk shorter than its 16-byte header"))?;
    let subs = sub_chunks(&d[16..])?;
    let (kept, alpha, dropped) = one_bitstream(&subs, true);
    if kept.is_empty() {
        return Err(Error::malformed(
            FORMAT,
            "animation frame without a bitstream",
        ));
    }
    l.alpha |= alpha;
    l.dropped.extend(dropped);
    for c in subs
        .iter()
        .filter(|c| !matches!(&c.fourcc, b"VP8 " | b"VP8L" | b"ALPH"))
    {
        l.dropped.push(Finding::new(
            Category::Other,
            format!(
                "{} chunk inside an animation frame, {} bytes",
                name(&c.fourcc),
                c.data.len()
            ),
        ));
    }
    let mut out = header.to_vec();
    out[15] &= 0x03;
    for c in kept {
        write_chunk(&mut out, &c.fourcc, c.data);
    }
    Ok(out)
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
        inv.0.extend(self.layout.dropped.iter().cloned());
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
            // Flags from what is kept; reserved bits and bytes zero.
            let mut data = header[..10].to_vec();
            data[..4].fill(0);
            if self.layout.alpha {
                data[0] |= FLAG_ALPHA;
            }
            if self.layout.animated {
                data[0] |= FLAG_ANIMATION;
            }
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
        for (fourcc, data) in &self.layout.chunks {
            write_chunk(&mut body, fourcc, data);
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

    /// `check --thorough`: bytes after the coded data of each bitstream
    /// (each VP8 partition's slack beyond an encoder's flush, or what follows
    /// the VP8L data), the still image's or every animation frame's, by the
    /// walk `clean --thorough` cuts by.
    pub fn coded_data_slack(&self) -> Result<Vec<Finding>> {
        let mut found = Vec::new();
        let size = (self.width, self.height);
        for (fourcc, data) in &self.layout.chunks {
            if fourcc == b"ANMF" {
                let frame_size = frame_size(data)?;
                for (n, c) in frame_bitstreams(data)?.iter().enumerate() {
                    let where_ = format!(" of frame {}", n + 1);
                    found.extend(slack_finding(&c.fourcc, c.data, frame_size, &where_)?);
                }
            } else {
                found.extend(slack_finding(fourcc, data, size, "")?);
            }
        }
        Ok(found)
    }

    /// A VP8X payload for a simple file: no flags, the canvas size.
    fn simple_header(&self) -> [u8; 10] {
        let mut h = [0u8; 10];
        h[4..7].copy_from_slice(&self.width.saturating_sub(1).to_le_bytes()[..3]);
        h[7..10].copy_from_slice(&self.height.saturating_sub(1).to_le_bytes()[..3]);
        h
    }
}

/// The chunks of an ANMF payload as our writer made it (16-byte header, then
/// its bitstream chunks).
fn frame_bitstreams(frame: &[u8]) -> Result<Vec<Chunk<'_>>> {
    sub_chunks(
        frame.get(16..).ok_or_else(|| {
            Error::malformed(FORMAT, "ANMF chunk shorter than its 16-byte header")
        })?,
    )
}

/// An ANMF payload's frame width and height (24-bit minus-one fields).
fn frame_size(frame: &[u8]) -> Result<(u32, u32)> {
    let h = frame
        .get(..16)
        .ok_or_else(|| Error::malformed(FORMAT, "ANMF chunk shorter than its 16-byte header"))?;
    Ok((le24(&h[6..9]) + 1, le24(&h[9..12]) + 1))
}

/// Bytes of a VP8/VP8L bitstream or an ALPH plane (of a `size` frame) that
/// its coded data uses, by the walks the audit and the writer share.
fn coded_len(fourcc: &[u8; 4], data: &[u8], size: (u32, u32)) -> Result<Option<usize>> {
    Ok(match fourcc {
        b"VP8 " => Some(data.len() - super::vp8::walk(data)?.reported_slack()),
        b"VP8L" => Some(super::vp8l::coded_len(data)?),
        b"ALPH" => Some(super::vp8l::alpha_coded_len(data, size.0, size.1)?),
        _ => None,
    })
}

/// The finding for bytes after the coded data of one bitstream or alpha plane.
fn slack_finding(
    fourcc: &[u8; 4],
    data: &[u8],
    size: (u32, u32),
    where_: &str,
) -> Result<Option<Finding>> {
    let what = match fourcc {
        b"VP8 " => "VP8 (lossy) bitstream",
        b"VP8L" => "VP8L (lossless) bitstream",
        b"ALPH" => "alpha plane (ALPH)",
        _ => return Ok(None),
    };
    let slack = coded_len(fourcc, data, size)?.map_or(0, |n| data.len() - n);
    Ok((slack > 0).then(|| {
        Finding::new(
            Category::TrailingData,
            format!("{slack} bytes after the coded data of the {what}{where_}"),
        )
    }))
}

/// `data` (a bitstream chunk's payload) cut to its coded data: every VP8
/// partition (sizes rebuilt), the VP8L data, the ALPH plane of a `size`
/// frame; other chunks as they are.
pub fn cut_bitstream(fourcc: &[u8; 4], data: &[u8], size: (u32, u32)) -> Result<Vec<u8>> {
    Ok(match fourcc {
        b"VP8 " => super::vp8::walk(data)?.rebuild(data),
        b"VP8L" | b"ALPH" => {
            let n = coded_len(fourcc, data, size)?.unwrap_or(data.len());
            data[..n].to_vec()
        }
        _ => data.to_vec(),
    })
}

/// `--thorough` for an animation frame (an ANMF payload our writer made):
/// its bitstream and alpha plane cut to their coded data ([`cut_bitstream`]),
/// the frame header as it is.
pub fn cut_frame(frame: &[u8]) -> Result<Vec<u8>> {
    let size = frame_size(frame)?;
    let mut out = frame[..16].to_vec();
    for c in frame_bitstreams(frame)? {
        write_chunk(
            &mut out,
            &c.fourcc,
            &cut_bitstream(&c.fourcc, c.data, size)?,
        );
    }
    Ok(out)
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

    /// An 8x8 VP8L header that says it uses alpha.
    const VP8L: &[u8] = &[0x2F, 0x07, 0xC0, 0x01, 0x10, 0x11];

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

    fn clean(bytes: &[u8]) -> Vec<u8> {
        parse(bytes, &Limits::default())
            .unwrap()
            .rewrite(&RewritePolicy::default())
    }

    #[test]
    fn a_still_keeps_one_bitstream() {
        let vp8x = [0x10 | FLAG_ANIMATION, 0, 0, 0, 7, 0, 0, 7, 0, 0];
        let mut second = VP8L.to_vec();
        second.extend_from_slice(b"Jane Q. Patientname");
        let mut anmf = vec![0u8; 16];
        write_chunk(&mut anmf, b"VP8L", &second);
        let bytes = webp(&[
            (b"VP8X", &vp8x),
            (b"ALPH", b"Jane"),
            (b"VP8L", VP8L),
            (b"VP8L", &second),
            (b"ANMF", &anmf),
        ]);
        let w = parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(
            w.inventory().identifying().count(),
            3,
            "{:?}",
            w.inventory()
        );
        let out = w.rewrite(&RewritePolicy::default());
        let vp8x_out = [0x10, 0, 0, 0, 7, 0, 0, 7, 0, 0];
        assert_eq!(out, webp(&[(b"VP8X", &vp8x_out), (b"VP8L", VP8L)]));
        assert!(parse(&out, &Limits::default())
            .unwrap()
            .inventory()
            .is_clean());
    }

    #[test]
    fn animation_chunks_are_rebuilt_from_their_fields() {
        let vp8x = [FLAG_ANIMATION | FLAG_XMP, 9, 9, 9, 7, 0, 0, 7, 0, 0];
        let mut anim = vec![1, 2, 3, 4, 0, 0];
        anim.extend_from_slice(b"Jane");
        let mut frame = vec![0u8; 15];
        frame.push(0xF3); // reserved bits set
        write_chunk(&mut frame, b"EXIF", b"Jane Q. Patientname");
        write_chunk(&mut frame, b"VP8L", VP8L);
        write_chunk(&mut frame, b"VP8L", VP8L);
        let bytes = webp(&[(b"VP8X", &vp8x), (b"ANIM", &anim), (b"ANMF", &frame)]);
        let w = parse(&bytes, &Limits::default()).unwrap();
        assert!(!w.inventory().is_clean());
        let out = w.rewrite(&RewritePolicy::default());
        let mut want_frame = vec![0u8; 15];
        want_frame.push(0x03);
        write_chunk(&mut want_frame, b"VP8L", VP8L);
        let want = webp(&[
            (
                b"VP8X",
                &[FLAG_ANIMATION | FLAG_ALPHA, 0, 0, 0, 7, 0, 0, 7, 0, 0],
            ),
            (b"ANIM", &anim[..6]),
            (b"ANMF", &want_frame),
        ]);
        assert_eq!(out, want);
        assert_eq!(clean(&out), out);
        assert!(parse(&out, &Limits::default())
            .unwrap()
            .inventory()
            .is_clean());
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
