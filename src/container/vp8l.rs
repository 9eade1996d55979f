//! Where a VP8L (lossless WebP) bitstream's coded data ends, found with
//! image-webp's own lossless decoder: it refuses to consume a bit past its
//! input, so the shortest prefix of the chunk that still decodes is exactly
//! the coded data, and a prefix that decodes decodes to the same pixels
//! (the bits it reads are the same). A clean file costs one decode of the
//! chunk less its last byte (which fails); one with slack, a binary search
//! (about 20 decodes for a megabyte).

use crate::error::{Error, Result};
use image_webp::WebPDecoder;
use std::io::Cursor;

const FORMAT: &str = "WebP (VP8L)";

/// Bytes of `data` (a VP8L chunk's payload) that its decoder reads.
pub fn coded_len(data: &[u8]) -> Result<usize> {
    // Each try decodes the whole picture: its size is bounded first (a
    // VP8X canvas, which the parser checks, may understate it).
    let pixels = match data {
        [0x2F, b @ ..] if b.len() >= 4 => {
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            u64::from((bits & 0x3FFF) + 1) * u64::from(((bits >> 14) & 0x3FFF) + 1)
        }
        _ => return Err(Error::malformed(FORMAT, "no VP8L header")),
    };
    if pixels > crate::Limits::default().max_pixels {
        return Err(Error::malformed(
            FORMAT,
            format!("{pixels} pixels: too large to decode"),
        ));
    }
    if !decodes(data) {
        return Err(Error::malformed(
            "WebP (VP8L)",
            "the lossless bitstream does not decode",
        ));
    }
    if data.is_empty() || !decodes(&data[..data.len() - 1]) {
        return Ok(data.len());
    }
    // `lo` does not decode, `hi` does.
    let (mut lo, mut hi) = (0, data.len() - 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if decodes(&data[..mid]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// Bytes of `alph` (an ALPH chunk's payload for a `width` x `height` frame)
/// that its alpha plane uses: the header byte and either the raw plane or
/// its lossless coded data, an image stream without a VP8L header (one is
/// put in front, for the same decoder to find its end).
pub fn alpha_coded_len(alph: &[u8], width: u32, height: u32) -> Result<usize> {
    let bad = |why: &str| Error::malformed("WebP (ALPH)", why.to_string());
    let header = *alph.first().ok_or_else(|| bad("empty alpha chunk"))?;
    if !(1..=16384).contains(&width) || !(1..=16384).contains(&height) {
        return Err(bad("frame size out of range"));
    }
    match header & 0x03 {
        0 => {
            let raw = 1 + width as usize * height as usize;
            if alph.len() < raw {
                return Err(bad("the raw alpha plane is shorter than the frame"));
            }
            Ok(raw)
        }
        1 => {
            let bits = (width - 1) | (height - 1) << 14;
            let mut stream = vec![0x2F];
            stream.extend_from_slice(&bits.to_le_bytes());
            stream.extend_from_slice(&alph[1..]);
            Ok(coded_len(&stream)? - 5 + 1)
        }
        _ => Err(bad("unknown alpha compression")),
    }
}

/// Whether `vp8l`, alone in a simple WebP file, decodes.
fn decodes(vp8l: &[u8]) -> bool {
    let pad = vp8l.len() & 1;
    let mut file = Vec::with_capacity(vp8l.len() + 21);
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&((vp8l.len() + pad + 12) as u32).to_le_bytes());
    file.extend_from_slice(b"WEBPVP8L");
    file.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    file.extend_from_slice(vp8l);
    file.resize(file.len() + pad, 0);
    let Ok(mut d) = WebPDecoder::new(Cursor::new(&file[..])) else {
        return false;
    };
    let Some(size) = d.output_buffer_size() else {
        return false;
    };
    let mut pixels = vec![0u8; size];
    d.read_image(&mut pixels).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8l_coded_len_finds_appended_bytes() {
        let img = image::RgbaImage::from_fn(37, 23, |x, y| {
            image::Rgba([x as u8 * 7, y as u8 * 11, 3, 200])
        });
        let mut file = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut file)
            .encode(img.as_raw(), 37, 23, image::ExtendedColorType::Rgba8)
            .unwrap();
        assert_eq!(&file[12..16], b"VP8L");
        let len = u32::from_le_bytes(file[16..20].try_into().unwrap()) as usize;
        let chunk = file[20..20 + len].to_vec();
        let n = coded_len(&chunk).unwrap();
        assert!(
            n <= chunk.len() && n + 1 >= chunk.len(),
            "{n} of {}",
            chunk.len()
        );
        let mut dirty = chunk[..n].to_vec();
        dirty.extend_from_slice(b"Jane Q. Patientname");
        assert_eq!(coded_len(&dirty).unwrap(), n);
        assert!(coded_len(&chunk[..n - 1]).is_err());
    }
}
