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
//! without loss; it is copied as the default path copies it.

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

/// `rewritten` (a WebP our writer made) with its VP8L bitstream encoded
/// again from its decoded pixels; unchanged when it has none (lossy VP8).
pub fn webp(rewritten: &[u8]) -> Result<Vec<u8>> {
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
    let mut out = Vec::with_capacity(rewritten.len() - (end - start) + (e - s));
    out.extend_from_slice(&rewritten[..start]);
    out.extend_from_slice(&simple[s..e]);
    out.extend_from_slice(&rewritten[end..]);
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(out)
}
