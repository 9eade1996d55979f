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
    if format == Format::Avif {
        return Err(Error::Unsupported(
            "AVIF pixels cannot be decoded here (no AV1 decoder): regions, collages and the \
             web page need them; the lossless clean works"
                .into(),
        ));
    }
    // Our parser first: refusals, size limits and grid checks before any
    // work. The decoder then reads our rebuilt file, which holds only the
    // allowlisted boxes (no vendor box or trailer to trip it up).
    let parsed = crate::container::heif::parse(bytes, limits)?;
    let clean = parsed.rewrite(&crate::container::RewritePolicy::default());
    parsed.verify_rewrite(&clean, limits)?;
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

    /// A `depth`-bit sample spread over 16 bits (full scale stays full scale).
    fn widen(v: u16, depth: u8) -> u16 {
        if depth >= 16 {
            return v;
        }
        let depth = depth.max(1) as u32;
        let v = v as u32 & ((1 << depth) - 1);
        ((v << (16 - depth)) | (v >> (2 * depth).saturating_sub(16).min(15))) as u16
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
