//! GIF at block level: comment extensions and application extensions other
//! than the looping one (NETSCAPE2.0 / ANIMEXTS1.0) are dropped, frames and
//! graphic controls are copied as they are, nothing after the trailer stays.

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

    pub fn rewrite(&self, policy: &RewritePolicy) -> Vec<u8> {
        let mut out = Vec::new();
        let mut icc_written = !policy.keep_icc;
        for block in &self.blocks {
            let keep = match block.kind {
                Kind::Structure => true,
                Kind::Comment | Kind::PlainText | Kind::Unknown(_) => false,
                Kind::Application(id) if is_icc(&id) => {
                    // One profile, sanitised (a malformed one is dropped).
                    if !icc_written {
                        if let Ok(p) = crate::icc::sanitize(&icc_profile(block.raw)) {
                            write_icc(&mut out, &p);
                        }
                        icc_written = true;
                    }
                    false
                }
                Kind::Application(id) => is_looping(&id),
            };
            if keep {
                out.extend_from_slice(block.raw);
            }
        }
        out
    }
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
