//! HEIC pixels, for the paths that must change them (regions, collages, the
//! web page). Decoded by heifer, a pure-Rust HEVC decoder (no system
//! library), after our own parser has checked the file and its limits.
//! heifer applies `clap`, `irot` and `imir`, so the result is upright. The
//! ICC profile is carried; without one the samples are converted to sRGB
//! from `nclx`, so the photo is not washed out. 10-bit pictures stay 16-bit.

use crate::container::{Format, Limits};
use crate::error::{Error, Result};
use crate::pixels::Decoded;

/// Decodes the primary picture of a HEIF/AVIF file, upright.
pub fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<Decoded> {
    if format == Format::Avif && !cfg!(feature = "avif-decode") {
        return Err(Error::Unsupported(
            "AVIF pixels need photodeid built with the `avif-decode` feature (an AV1 decoder \
             from the system libheif): regions, collages and the web page decode the photo; \
             the lossless clean works without it"
                .into(),
        ));
    }
    // Our parser first: refusals, size limits and grid checks before any
    // work. The decoder then reads our rebuilt file, which holds only the
    // allowlisted boxes (no vendor box or trailer to trip it up).
    let parsed = crate::container::heif::parse(bytes, limits)?;
    let clean = parsed.rewrite(&crate::container::RewritePolicy::default());
    parsed.verify_rewrite(&clean, limits)?;
    #[cfg(feature = "avif-decode")]
    if format == Format::Avif {
        return avif::decode(&clean, &parsed, limits);
    }
    imp::decode(&clean, &parsed, limits)
}

#[cfg(feature = "heic-decode")]
mod imp {
    use super::*;
    use crate::container::heif::Heif;
    use image::{DynamicImage, ImageBuffer};

    pub fn decode(bytes: &[u8], parsed: &Heif, limits: &Limits) -> Result<Decoded> {
        let icc = parsed.icc_profile();
        let opts = heifer::Options {
            max_threads: 1,
            max_pixels: limits.max_pixels,
        };
        let err = |e: heifer::Error| Error::Decode(format!("HEIC: {e}"));
        // Without a profile, heifer converts from nclx to sRGB; where it
        // cannot (PQ/HLG), the samples are kept as coded.
        let srgb = icc.is_none();
        let image = if parsed.bit_depth() <= 8 {
            let img = match srgb {
                true => heifer::decode_srgb_rgba8(bytes, &opts)
                    .or_else(|_| heifer::decode_rgba8(bytes, &opts)),
                false => heifer::decode_rgba8(bytes, &opts),
            }
            .map_err(err)?;
            let (w, h, alpha) = (img.width, img.height, img.has_alpha);
            let buf = ImageBuffer::from_raw(w, h, img.data)
                .ok_or_else(|| Error::Decode("HEIC: decoder returned a short buffer".into()))?;
            let rgba = DynamicImage::ImageRgba8(buf);
            if alpha {
                rgba
            } else {
                DynamicImage::ImageRgb8(rgba.to_rgb8())
            }
        } else {
            let img = match srgb {
                true => heifer::decode_srgb_with_options(bytes, &opts)
                    .or_else(|_| heifer::decode_with_options(bytes, &opts)),
                false => heifer::decode_with_options(bytes, &opts),
            }
            .map_err(err)?;
            let (w, h, alpha, depth) = (img.width, img.height, img.has_alpha, img.bit_depth);
            let data: Vec<u16> = img.data.iter().map(|&v| widen(v, depth)).collect();
            let buf = ImageBuffer::from_raw(w, h, data)
                .ok_or_else(|| Error::Decode("HEIC: decoder returned a short buffer".into()))?;
            let rgba = DynamicImage::ImageRgba16(buf);
            if alpha {
                rgba
            } else {
                DynamicImage::ImageRgb16(rgba.to_rgb16())
            }
        };
        Ok(Decoded {
            image,
            icc,
            tiff: Default::default(),
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn widening_keeps_black_and_white() {
            assert_eq!(super::widen(0, 10), 0);
            assert_eq!(super::widen(1023, 10), 65535);
            assert_eq!(super::widen(255, 8), 65535);
            assert!(super::widen(512, 10) > 32768 && super::widen(512, 10) < 33000);
        }
    }
}

/// AVIF through the system libheif (AV1 by dav1d or aom), behind the opt-in
/// `avif-decode` feature. libheif applies `clap`, `irot` and `imir` itself
/// (its default), and nothing after it does again: a HEIF's orientation is
/// never read from EXIF (see `container::parse`). More than 8 bits become
/// 16-bit samples; alpha is kept; the ICC profile is carried. Without a
/// profile the RGB is as coded (libheif converts YUV with the file's nclx
/// matrix but does not map other primaries to sRGB).
#[cfg(feature = "avif-decode")]
mod avif {
    use super::*;
    use crate::container::heif::Heif;
    use image::{DynamicImage, ImageBuffer};
    use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};

    pub fn decode(bytes: &[u8], parsed: &Heif, limits: &Limits) -> Result<Decoded> {
        let err = |e: libheif_rs::HeifError| Error::Decode(format!("AVIF: {e}"));
        let lib = LibHeif::new();
        let mut ctx = HeifContext::read_from_bytes(bytes).map_err(err)?;
        ctx.set_max_decoding_threads(1);
        let handle = ctx.primary_image_handle().map_err(err)?;
        let (w, h) = (handle.width(), handle.height());
        if w as u64 * h as u64 > limits.max_pixels {
            return Err(Error::Decode(format!(
                "AVIF: {w}x{h} is over the pixel limit ({} pixels)",
                limits.max_pixels
            )));
        }
        let alpha = handle.has_alpha_channel();
        let deep = handle.luma_bits_per_pixel() > 8;
        let chroma = match (deep, alpha) {
            (false, false) => RgbChroma::Rgb,
            (false, true) => RgbChroma::Rgba,
            (true, false) => RgbChroma::HdrRgbLe,
            (true, true) => RgbChroma::HdrRgbaLe,
        };
        let img = lib
            .decode(&handle, ColorSpace::Rgb(chroma), None)
            .map_err(err)?;
        let planes = img.planes();
        let plane = planes
            .interleaved
            .ok_or_else(|| Error::Decode("AVIF: the decoder returned no RGB plane".into()))?;
        let (pw, ph) = (plane.width as usize, plane.height as usize);
        let channels = if alpha { 4 } else { 3 };
        let sample = if deep { 2 } else { 1 };
        let row = pw * channels * sample;
        if plane.stride < row || plane.data.len() < plane.stride * ph.saturating_sub(1) + row {
            return Err(Error::Decode(
                "AVIF: decoder returned a short buffer".into(),
            ));
        }
        let rows = plane.data.chunks(plane.stride).take(ph).map(|r| &r[..row]);
        let short = || Error::Decode("AVIF: decoder returned a short buffer".into());
        let image = if deep {
            let depth = img
                .bits_per_pixel(libheif_rs::Channel::Interleaved)
                .unwrap_or(16);
            let data: Vec<u16> = rows
                .flat_map(|r| r.chunks_exact(2))
                .map(|b| super::widen(u16::from_le_bytes([b[0], b[1]]), depth))
                .collect();
            match alpha {
                true => DynamicImage::ImageRgba16(
                    ImageBuffer::from_raw(pw as u32, ph as u32, data).ok_or_else(short)?,
                ),
                false => DynamicImage::ImageRgb16(
                    ImageBuffer::from_raw(pw as u32, ph as u32, data).ok_or_else(short)?,
                ),
            }
        } else {
            let data: Vec<u8> = rows.flatten().copied().collect();
            match alpha {
                true => DynamicImage::ImageRgba8(
                    ImageBuffer::from_raw(pw as u32, ph as u32, data).ok_or_else(short)?,
                ),
                false => DynamicImage::ImageRgb8(
                    ImageBuffer::from_raw(pw as u32, ph as u32, data).ok_or_else(short)?,
                ),
            }
        };
        Ok(Decoded {
            image,
            icc: parsed.icc_profile(),
            tiff: Default::default(),
        })
    }
}

/// A `depth`-bit sample spread over 16 bits (full scale stays full scale).
#[cfg(any(feature = "heic-decode", feature = "avif-decode"))]
fn widen(v: u16, depth: u8) -> u16 {
    if depth >= 16 {
        return v;
    }
    let depth = depth.max(1) as u32;
    let v = v as u32 & ((1 << depth) - 1);
    ((v << (16 - depth)) | (v >> (2 * depth).saturating_sub(16).min(15))) as u16
}

#[cfg(not(feature = "heic-decode"))]
mod imp {
    use super::*;

    pub fn decode(_: &[u8], _: &crate::container::heif::Heif, _: &Limits) -> Result<Decoded> {
        Err(Error::Unsupported(
            "HEIC pixels need photodeid built with the `heic-decode` feature (regions, \
             collages and the web page decode the photo); the lossless clean works without it"
                .into(),
        ))
    }
}
