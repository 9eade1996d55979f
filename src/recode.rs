//! `--thorough` for WebP: a lossless (VP8L) bitstream is decoded to its
//! pixels and encoded again (image-webp's VP8L encoder), so nothing the
//! source hid inside or after its coded data (bytes past the end of the
//! bitstream, unused prefix codes, colour-cache or transform choices) can
//! come through, while every pixel, alpha included, stays the same
//! (lossless both ways). Why not a bit-reader pass that finds where the
//! source's bitstream ends and cuts there: that removes trailing bytes only,
//! while a re-encode removes every free choice of the encoder, by
//! construction, for the cost of a decode and an encode (and usually a
//! larger file than cwebp's). A lossy VP8 bitstream cannot be re-encoded
//! without loss: it is walked to the end of each partition's coded data
//! (`container::vp8`) and every partition cut there, which the default
//! path does not do (the token walk costs about a decode; see the README).

use crate::container::webp::cut_bitstream;
use crate::error::{Error, Result};
use image_webp::{ColorType, WebPDecoder, WebPEncoder};
use std::io::Cursor;

fn le32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// The start and end (padding included) of the top-level chunk `fourcc`.
fn chunk(riff: &[u8], fourcc: &[u8; 4]) -> Option<(usize, usize)> {
    let mut at = 12;
    while at + 8 <= riff.len() {
        let len = le32(riff, at + 4)?;
        let end = (at + 8).checked_add(len)?.checked_add(len & 1)?;
        if &riff[at..at + 4] == fourcc {
            return Some((at, end.min(riff.len())));
        }
        at = end;
    }
    None
}

/// The payload of the chunk at `start..end`.
fn payload(riff: &[u8], start: usize, end: usize) -> &[u8] {
    let len = le32(riff, start + 4).unwrap_or_default();
    &riff[start + 8..(start + 8 + len).min(end)]
}

/// `rewritten` (a WebP our writer made) with its VP8L bitstream encoded
/// again from its decoded pixels, or its VP8 bitstream cut to its coded
/// data; an animation with each frame's bitstream cut (see [`animation`]).
pub fn webp(rewritten: &[u8]) -> Result<Vec<u8>> {
    if chunk(rewritten, b"ANIM").is_some() {
        return animation(rewritten);
    }
    if let Some((start, end)) = chunk(rewritten, b"VP8 ") {
        let data = payload(rewritten, start, end);
        let cut = cut_bitstream(b"VP8 ", data, (0, 0))?;
        let out = splice(rewritten, start, end, b"VP8 ", &cut);
        // Its alpha plane, cut to the plane of the frame's size.
        let Some((s, e)) = chunk(&out, b"ALPH") else {
            return Ok(out);
        };
        let size = match cut.get(6..10) {
            Some(d) => (
                u32::from(u16::from_le_bytes([d[0], d[1]]) & 0x3FFF),
                u32::from(u16::from_le_bytes([d[2], d[3]]) & 0x3FFF),
            ),
            None => (0, 0),
        };
        let alpha = cut_bitstream(b"ALPH", payload(&out, s, e), size)?;
        return Ok(splice(&out, s, e, b"ALPH", &alpha));
    }
    let Some((start, end)) = chunk(rewritten, b"VP8L") else {
        return Ok(rewritten.to_vec());
    };
    let fail =
        |why: String| Error::Decode(format!("cannot re-encode the WebP (--thorough): {why}"));
    let mut d = WebPDecoder::new(Cursor::new(rewritten)).map_err(|e| fail(e.to_string()))?;
    if d.is_animated() {
        return Ok(rewritten.to_vec());
    }
    let (w, h) = d.dimensions();
    let alpha = d.has_alpha();
    let size = d
        .output_buffer_size()
        .ok_or_else(|| fail("image too large".into()))?;
    let mut pixels = vec![0u8; size];
    d.read_image(&mut pixels).map_err(|e| fail(e.to_string()))?;
    let mut simple = Vec::new();
    let colour = if alpha {
        ColorType::Rgba8
    } else {
        ColorType::Rgb8
    };
    WebPEncoder::new(&mut simple)
        .encode(&pixels, w, h, colour)
        .map_err(|e| fail(e.to_string()))?;
    let (s, e) = chunk(&simple, b"VP8L").ok_or_else(|| fail("the encoder wrote no VP8L".into()))?;
    let len = le32(&simple, s + 4).unwrap_or_default();
    Ok(splice(
        rewritten,
        start,
        end,
        b"VP8L",
        &simple[s + 8..(s + 8 + len).min(e)],
    ))
}

/// An animation with every frame's bitstream cut to its coded data (its
/// lossless frames are cut, not encoded again: a frame's pixels depend on
/// the frames before it only through blending, which a cut cannot change).
fn animation(riff: &[u8]) -> Result<Vec<u8>> {
    let mut out = riff[..12.min(riff.len())].to_vec();
    let mut at = 12;
    while at + 8 <= riff.len() {
        let len = le32(riff, at + 4).unwrap_or_default();
        let end = (at + 8 + len).min(riff.len());
        let (fourcc, data) = (&riff[at..at + 4], &riff[at + 8..end]);
        let data = if fourcc == b"ANMF" {
            std::borrow::Cow::Owned(crate::container::webp::cut_frame(data)?)
        } else {
            std::borrow::Cow::Borrowed(data)
        };
        out.extend_from_slice(fourcc);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        if data.len() % 2 == 1 {
            out.push(0);
        }
        at = end + (len & 1);
    }
    let size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

/// `riff` with the chunk at `start..end` replaced by `fourcc` holding
/// `data`, and the RIFF size written for the new length.
fn splice(riff: &[u8], start: usize, end: usize, fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(riff.len() - (end - start) + data.len() + 9);
    out.extend_from_slice(&riff[..start]);
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out.extend_from_slice(&riff[end..]);
    let size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    out
}
