//! GIF at block level: comment extensions and application extensions other
//! than the looping one (NETSCAPE2.0 / ANIMEXTS1.0) and the ICC profile are
//! dropped, nothing after the trailer stays. What is kept is re-emitted from
//! its fields: graphic controls and the loop count without extra
//! sub-blocks, each frame's LZW data up to its end code (decoded to find
//! it; data coding more pixels than the frame has is re-encoded). A frame
//! wholly outside the logical screen is dropped with its graphic control; a
//! frame partly outside is cropped to the screen (decoded, re-encoded,
//! lossless for every pixel a viewer shows). [`Gif::fates`] is the one rule
//! the writer and the audit share.

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::metadata::{human_bytes, short_value, Category, Inventory};

const FORMAT: &str = "GIF";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Structure,
    Comment,
    /// Plain text extension (0x01): text drawn over the picture, or hidden.
    PlainText,
    /// An extension label GIF89a does not define.
    Unknown(u8),
    /// Application extension, with its 11-byte identifier.
    Application([u8; 11]),
}

#[derive(Debug, Clone, Copy)]
struct Block<'a> {
    kind: Kind,
    raw: &'a [u8],
}

#[derive(Debug)]
pub struct Gif<'a> {
    blocks: Vec<Block<'a>>,
    pub trailing: &'a [u8],
    pub width: u32,
    pub height: u32,
}

fn truncated() -> Error {
    Error::malformed(FORMAT, "truncated: no trailer")
}

/// Skips a chain of data sub-blocks starting at `pos`; returns the position after the terminator.
fn skip_sub_blocks(b: &[u8], mut pos: usize) -> Result<usize> {
    loop {
        let n = *b.get(pos).ok_or_else(truncated)? as usize;
        pos += 1;
        if n == 0 {
            return Ok(pos);
        }
        pos += n;
        if pos > b.len() {
            return Err(truncated());
        }
    }
}

fn color_table_len(packed: u8) -> usize {
    if packed & 0x80 != 0 {
        3 << ((packed & 0x07) + 1)
    } else {
        0
    }
}

pub fn parse<'a>(b: &'a [u8], limits: &Limits) -> Result<Gif<'a>> {
    if b.len() < 13 || !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return Err(Error::malformed(FORMAT, "missing GIF header"));
    }
    let width = u16::from_le_bytes([b[6], b[7]]) as u32;
    let height = u16::from_le_bytes([b[8], b[9]]) as u32;
    if width == 0 || height == 0 {
        return Err(Error::malformed(FORMAT, "zero-sized logical screen"));
    }
    check_dimensions(FORMAT, width, height, limits)?;
    let header_end = 13 + color_table_len(b[10]);
    if header_end > b.len() {
        return Err(truncated());
    }
    let mut blocks = vec![Block {
        kind: Kind::Structure,
        raw: &b[..header_end],
    }];
    let mut pos = header_end;
    loop {
        let start = pos;
        match *b.get(pos).ok_or_else(truncated)? {
            0x3B => {
                blocks.push(Block {
                    kind: Kind::Structure,
                    raw: &b[pos..pos + 1],
                });
                return Ok(Gif {
                    blocks,
                    trailing: &b[pos + 1..],
                    width,
                    height,
                });
            }
            0x21 => {
                let label = *b.get(pos + 1).ok_or_else(truncated)?;
                let kind = match label {
                    0xFE => Kind::Comment,
                    0x01 => Kind::PlainText,
                    0xF9 => Kind::Structure, // graphic control (delay, transparency)
                    0xFF => {
                        let id = b.get(pos + 3..pos + 14).ok_or_else(truncated)?;
                        Kind::Application(id.try_into().expect("11 bytes"))
                    }
                    other => Kind::Unknown(other),
                };
                pos = skip_sub_blocks(b, pos + 2)?;
                blocks.push(Block {
                    kind,
                    raw: &b[start..pos],
                });
            }
            0x2C => {
                let desc = b.get(pos..pos + 10).ok_or_else(truncated)?;
                pos += 10 + color_table_len(desc[9]) + 1; // + LZW minimum code size
                if pos > b.len() {
                    return Err(truncated());
                }
                if b[pos - 1] > 11 {
                    return Err(Error::malformed(FORMAT, "LZW code size above 11"));
                }
                pos = skip_sub_blocks(b, pos)?;
                blocks.push(Block {
                    kind: Kind::Structure,
                    raw: &b[start..pos],
                });
            }
            x => {
                return Err(Error::malformed(
                    FORMAT,
                    format!("unexpected block 0x{x:02X} at byte {pos}"),
                ))
            }
        }
    }
}

fn is_looping(id: &[u8; 11]) -> bool {
    id == b"NETSCAPE2.0" || id == b"ANIMEXTS1.0"
}

fn is_icc(id: &[u8; 11]) -> bool {
    id == b"ICCRGBG1012"
}

impl Gif<'_> {
    /// Image descriptors (frames), counted from the parsed blocks.
    pub fn frame_count(&self) -> usize {
        self.blocks
            .iter()
            .filter(|b| b.kind == Kind::Structure && b.raw.first() == Some(&0x2C))
            .count()
    }

    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::default();
        for fate in self.fates(&RewritePolicy::default()) {
            if let Fate::Rebuild(_, Some(why)) | Fate::Drop(Some(why)) = fate {
                inv.push(Category::Other, why);
            }
        }
        for block in &self.blocks {
            match block.kind {
                Kind::Structure => {}
                Kind::Comment => {
                    let text = comment_text(block.raw);
                    inv.push(
                        Category::Comment,
                        format!("comment \"{}\"", short_value(&text, 60)),
                    );
                }
                Kind::PlainText => inv.push(
                    Category::TextChunk,
                    format!(
                        "plain text extension \"{}\"",
                        short_value(&comment_text(block.raw), 60)
                    ),
                ),
                Kind::Unknown(label) => inv.push(
                    Category::Other,
                    format!("unknown extension 0x{label:02X}, {} bytes", block.raw.len()),
                ),
                Kind::Application(id) if is_looping(&id) => {}
                Kind::Application(id) if is_icc(&id) => {
                    crate::icc::audit(&icc_profile(block.raw), &mut inv)
                }
                Kind::Application(id) if &id == b"XMP DataXMP" => inv.push(
                    Category::Xmp,
                    format!("XMP packet, {} bytes", block.raw.len()),
                ),
                Kind::Application(id) => inv.push(
                    Category::Other,
                    format!(
                        "application extension \"{}\", {} bytes",
                        short_value(&String::from_utf8_lossy(&id), 11),
                        block.raw.len()
                    ),
                ),
            }
        }
        if !self.trailing.is_empty() {
            inv.push(
                Category::TrailingData,
                format!(
                    "{} after the trailer",
                    human_bytes(self.trailing.len() as u64)
                ),
            );
        }
        inv
    }

    /// What the rewrite does with each block, in order.
    pub fn fates(&self, policy: &RewritePolicy) -> Vec<Fate> {
        let mut icc_done = !policy.keep_icc;
        let screen = (self.width, self.height);
        self.blocks
            .iter()
            .enumerate()
            .map(|(i, block)| match block.kind {
                Kind::Structure => match block.raw.get(..2) {
                    Some([0x21, 0xF9]) => {
                        rebuilt(block.raw, graphic_control(block.raw), "graphic control")
                    }
                    Some([0x2C, _]) => frame(block.raw, screen, i),
                    _ => Fate::Keep,
                },
                Kind::Comment | Kind::PlainText | Kind::Unknown(_) => Fate::Drop(None),
                Kind::Application(id) if is_icc(&id) => {
                    if icc_done {
                        return Fate::Drop(None);
                    }
                    icc_done = true;
                    match crate::icc::sanitize(&icc_profile(block.raw)) {
                        Ok(p) => {
                            let mut out = Vec::new();
                            write_icc(&mut out, &p);
                            if out == block.raw {
                                Fate::Keep
                            } else {
                                Fate::Rebuild(out, None)
                            }
                        }
                        Err(_) => Fate::Drop(None), // the audit says why
                    }
                }
                Kind::Application(id) if is_looping(&id) => {
                    rebuilt(block.raw, looping(block.raw, &id), "loop count")
                }
                Kind::Application(_) => Fate::Drop(None),
            })
            .collect()
    }

    pub fn rewrite(&self, policy: &RewritePolicy) -> Vec<u8> {
        let mut out = Vec::new();
        // A graphic control waits for the frame it belongs to.
        let mut control: Option<Vec<u8>> = None;
        for (block, fate) in self.blocks.iter().zip(self.fates(policy)) {
            let bytes = match fate {
                Fate::Keep => block.raw.to_vec(),
                Fate::Rebuild(b, _) => b,
                Fate::Drop(_) => {
                    if block.raw.first() == Some(&0x2C) {
                        control = None;
                    }
                    continue;
                }
            };
            if block.raw.get(..2) == Some(&[0x21, 0xF9]) {
                control = Some(bytes);
                continue;
            }
            if block.raw.first() == Some(&0x2C) || block.raw == [0x3B] {
                if let Some(c) = control.take() {
                    out.extend_from_slice(&c);
                }
            }
            out.extend_from_slice(&bytes);
        }
        out
    }
}

/// What the rewrite does with one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Keep,
    /// Re-emitted as these bytes; why, when the audit must report it.
    Rebuild(Vec<u8>, Option<String>),
    /// Dropped; why, when the audit must report it (the inventory reports
    /// dropped metadata by kind).
    Drop(Option<String>),
}

fn rebuilt(raw: &[u8], fields: Option<Vec<u8>>, what: &str) -> Fate {
    match fields {
        Some(b) if b == raw => Fate::Keep,
        Some(b) => Fate::Rebuild(b, Some(format!("{what} extension with extra bytes"))),
        None => Fate::Drop(Some(format!("{what} extension of the wrong length"))),
    }
}

/// A graphic control extension from its fields (reserved bits cleared).
fn graphic_control(raw: &[u8]) -> Option<Vec<u8>> {
    let f = raw.get(2..7).filter(|f| f[0] == 4)?;
    Some(vec![0x21, 0xF9, 4, f[1] & 0x1F, f[2], f[3], f[4], 0])
}

/// The looping extension from its one field, the loop count.
fn looping(raw: &[u8], id: &[u8; 11]) -> Option<Vec<u8>> {
    let f = raw.get(14..18).filter(|f| f[0] == 3 && f[1] == 1)?;
    let mut out = vec![0x21, 0xFF, 0x0B];
    out.extend_from_slice(id);
    out.extend_from_slice(&[3, 1, f[2], f[3], 0]);
    Some(out)
}

fn le16(b: &[u8], at: usize) -> u32 {
    u16::from_le_bytes([b[at], b[at + 1]]) as u32
}

/// An image descriptor block: dropped when wholly outside the screen,
/// cropped when partly outside, its LZW data cut at the end code.
fn frame(raw: &[u8], (sw, sh): (u32, u32), index: usize) -> Fate {
    let (left, top, w, h) = (le16(raw, 1), le16(raw, 3), le16(raw, 5), le16(raw, 7));
    let flags = raw[9];
    if w == 0 || h == 0 || left >= sw || top >= sh {
        return Fate::Drop(Some(format!(
            "frame at block {index} outside the logical screen"
        )));
    }
    let code_at = 10 + color_table_len(flags);
    let min = raw[code_at];
    let data = sub_blocks(raw, code_at + 1);
    let pixels = (w * h) as usize;
    let (indices, used, excess) = lzw_decode(&data, min, pixels);
    let (cw, ch) = (w.min(sw - left), h.min(sh - top));
    let (body, why) = if (cw, ch) != (w, h) {
        let rows = display_rows(h, flags & 0x40 != 0);
        let mut cropped = Vec::with_capacity((cw * ch) as usize);
        for y in 0..ch as usize {
            // Stored row holding display row y (interlaced files store passes).
            let Some(stored) = rows.iter().position(|&r| r == y) else {
                break;
            };
            let start = stored * w as usize;
            let row = indices.get(start..start + cw as usize).unwrap_or_default();
            cropped.extend_from_slice(row);
            cropped.resize(((y + 1) * cw as usize).max(cropped.len()), 0);
        }
        let mut d = raw[..code_at].to_vec();
        d[5..7].copy_from_slice(&(cw as u16).to_le_bytes());
        d[7..9].copy_from_slice(&(ch as u16).to_le_bytes());
        d[9] &= !0x40; // written in display order
        return finish(
            d,
            min.clamp(2, 11),
            lzw_encode(&cropped, min),
            Some(format!(
                "frame at block {index} partly outside the logical screen"
            )),
        );
    } else if excess {
        (
            lzw_encode(&indices, min),
            Some(format!(
                "frame at block {index} codes more pixels than it has"
            )),
        )
    } else {
        (
            data[..used].to_vec(),
            Some(format!(
                "data after the LZW end code of the frame at block {index}"
            )),
        )
    };
    let d = raw[..code_at].to_vec();
    let min = if excess { min.clamp(2, 11) } else { min };
    match finish(d, min, body, why) {
        Fate::Rebuild(b, _) if b == raw => Fate::Keep,
        other => other,
    }
}

fn finish(mut out: Vec<u8>, min: u8, body: Vec<u8>, why: Option<String>) -> Fate {
    out.push(min);
    for c in body.chunks(255) {
        out.push(c.len() as u8);
        out.extend_from_slice(c);
    }
    out.push(0);
    Fate::Rebuild(out, why)
}

/// Display row of each stored row.
fn display_rows(h: u32, interlaced: bool) -> Vec<usize> {
    let h = h as usize;
    if !interlaced {
        return (0..h).collect();
    }
    [(0, 8), (4, 8), (2, 4), (1, 2)]
        .iter()
        .flat_map(|&(start, step)| (start..h).step_by(step))
        .collect()
}

/// Decodes at most `pixels` indices (and one more, to see an excess):
/// the indices, the input bytes used up to the end code (all of them when
/// there is none or the data is corrupt), and whether it coded more pixels.
fn lzw_decode(data: &[u8], min: u8, pixels: usize) -> (Vec<u8>, usize, bool) {
    let mut dec = weezl::decode::Decoder::new(weezl::BitOrder::Lsb, min.clamp(1, 11));
    let mut out = vec![0u8; pixels + 1];
    let (mut used, mut made) = (0, 0);
    loop {
        let r = dec.decode_bytes(&data[used..], &mut out[made..]);
        used += r.consumed_in;
        made += r.consumed_out;
        match r.status {
            Ok(weezl::LzwStatus::Done) => break,
            _ if made > pixels => break,
            Ok(weezl::LzwStatus::Ok) if r.consumed_in + r.consumed_out > 0 => {}
            _ => {
                used = data.len();
                break;
            }
        }
    }
    let excess = made > pixels;
    out.truncate(made.min(pixels));
    (out, used, excess)
}

fn lzw_encode(indices: &[u8], min: u8) -> Vec<u8> {
    weezl::encode::Encoder::new(weezl::BitOrder::Lsb, min.clamp(2, 11))
        .encode(indices)
        .unwrap_or_default()
}

/// The profile an ICCRGBG1012 application extension carries: its data
/// sub-blocks after the identifier block.
fn icc_profile(raw: &[u8]) -> Vec<u8> {
    sub_blocks(raw, 2 + 12)
}

/// An ICCRGBG1012 application extension carrying `profile`.
fn write_icc(out: &mut Vec<u8>, profile: &[u8]) {
    out.extend_from_slice(&[0x21, 0xFF, 0x0B]);
    out.extend_from_slice(b"ICCRGBG1012");
    for c in profile.chunks(255) {
        out.push(c.len() as u8);
        out.extend_from_slice(c);
    }
    out.push(0);
}

/// The data of the sub-blocks that start at `pos`, up to the terminator.
fn sub_blocks(raw: &[u8], mut pos: usize) -> Vec<u8> {
    let mut data = Vec::new();
    while let Some(&n) = raw.get(pos) {
        if n == 0 {
            break;
        }
        let end = (pos + 1 + n as usize).min(raw.len());
        data.extend_from_slice(&raw[pos + 1..end]);
        pos = end;
    }
    data
}

fn comment_text(raw: &[u8]) -> String {
    String::from_utf8_lossy(&sub_blocks(raw, 2)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif() -> Vec<u8> {
        let mut v = b"GIF89a\x01\x00\x01\x00\x80\x00\x00".to_vec();
        v.extend_from_slice(&[0, 0, 0, 255, 255, 255]); // global colour table
        v.extend_from_slice(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00");
        v.extend_from_slice(b"\x21\xFE\x05MRN-1\x00");
        v.extend_from_slice(b"\x21\xFF\x0BXMP DataXMP\x03abc\x00");
        v.extend_from_slice(b"\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00");
        v.push(0x3B);
        v
    }

    #[test]
    fn comment_and_xmp_go_loop_stays() {
        let mut bytes = gif();
        bytes.extend_from_slice(b"junk");
        let g = parse(&bytes, &Limits::default()).unwrap();
        let cats = g.inventory().categories();
        assert!(cats.contains(&Category::Comment) && cats.contains(&Category::Xmp));
        let out = g.rewrite(&RewritePolicy::default());
        assert!(out.windows(11).any(|w| w == b"NETSCAPE2.0"));
        assert!(!out.windows(5).any(|w| w == b"MRN-1"));
        assert!(parse(&out, &Limits::default())
            .unwrap()
            .inventory()
            .is_clean());
    }

    #[test]
    fn plain_text_and_unknown_extensions_go() {
        let mut bytes = gif();
        let trailer = bytes.pop().unwrap();
        // Plain text: 12-byte grid header, then the text; then label 0x99.
        bytes.extend_from_slice(
            b"\x21\x01\x0C\0\0\0\0\x08\0\x08\0\x08\x08\x01\x00\x0BJane Q. Doe\x00",
        );
        bytes.extend_from_slice(b"\x21\x99\x06MRN-42\x00");
        bytes.push(trailer);
        let g = parse(&bytes, &Limits::default()).unwrap();
        let cats = g.inventory().categories();
        assert!(cats.contains(&Category::TextChunk) && cats.contains(&Category::Other));
        let out = g.rewrite(&RewritePolicy::default());
        assert!(!out.windows(4).any(|w| w == b"Jane" || w == b"MRN-"));
        assert!(parse(&out, &Limits::default())
            .unwrap()
            .inventory()
            .is_clean());
    }

    #[test]
    fn frames_are_counted() {
        let one = gif();
        assert_eq!(parse(&one, &Limits::default()).unwrap().frame_count(), 1);
        let mut two = one.clone();
        two.pop();
        two.extend_from_slice(b"\x2C\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3B");
        assert_eq!(parse(&two, &Limits::default()).unwrap().frame_count(), 2);
    }

    #[test]
    fn every_prefix_fails() {
        let bytes = gif();
        for n in 0..bytes.len() {
            assert!(
                parse(&bytes[..n], &Limits::default()).is_err(),
                "prefix {n}"
            );
        }
    }
}
