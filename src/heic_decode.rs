//! HEIC pixels, for the paths that must change them (regions, collages, the
//! web page). Decoded by heifer, a pure-Rust HEVC decoder (no system
//! library), after our own parser has checked the file and its limits.
//! heifer applies `clap`, `irot` and `imir`, so the result is upright. The
//! ICC profile is carried; without one the samples are converted to sRGB
//! from `nclx` (heifer for HEIC, [`nclx_to_srgb`] for AVIF, see `avif_decode`),
//! so a wide-gamut photo is not washed out. 10-bit pictures stay 16-bit.

use crate::container::heif::Nclx;
use crate::container::{Format, Limits};
use crate::error::{Error, Result};
use crate::pixels::Decoded;

/// Decodes the primary picture of a HEIF/AVIF file, upright.
pub fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<Decoded> {
    if let Some(e) = missing_decoder(format) {
        return Err(e);
    }
    // Our parser first: refusals, size limits and grid checks before any
    // work. The decoder then reads our rebuilt file, which holds only the
    // allowlisted boxes (no vendor box or trailer to trip it up).
    let parsed = crate::container::heif::parse(bytes, limits)?;
    let clean = parsed.rewrite(&crate::container::RewritePolicy::default());
    parsed.verify_rewrite(&clean, limits)?;
    #[cfg(feature = "avif-decode")]
    if format == Format::Avif {
        return crate::avif_decode::decode(&parsed, limits);
    }
    #[cfg(all(feature = "avif-libheif", not(feature = "avif-decode")))]
    if format == Format::Avif {
        return avif::decode(&clean, &parsed, limits);
    }
    imp::decode(&clean, &parsed, limits)
}

/// Why this build cannot decode `format`'s pixels, if it cannot: the web
/// page greys such a photo with this reason, a region or collage fails with it.
pub fn missing_decoder(format: Format) -> Option<Error> {
    let feature = match format {
        Format::Avif if !cfg!(any(feature = "avif-decode", feature = "avif-libheif")) => {
            "AVIF pixels need photodeid built with the `avif-decode` feature (a pure-Rust AV1 \
             decoder, on by default)"
        }
        Format::Heif if !cfg!(feature = "heic-decode") => {
            "HEIC pixels need photodeid built with the `heic-decode` feature"
        }
        _ => return None,
    };
    Some(Error::Unsupported(format!(
        "{feature}: regions, collages and the web page decode the photo; the lossless \
         clean works without it"
    )))
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
        let short = || Error::Decode("HEIC: decoder returned a short buffer".into());
        let image = if parsed.bit_depth() <= 8 {
            let img = match srgb {
                true => heifer::decode_srgb_rgba8(bytes, &opts)
                    .or_else(|_| heifer::decode_rgba8(bytes, &opts)),
                false => heifer::decode_rgba8(bytes, &opts),
            }
            .map_err(err)?;
            let (w, h, alpha) = (img.width, img.height, img.has_alpha);
            match alpha {
                true => DynamicImage::ImageRgba8(
                    ImageBuffer::from_raw(w, h, img.data).ok_or_else(short)?,
                ),
                false => DynamicImage::ImageRgb8(
                    ImageBuffer::from_raw(w, h, drop_alpha(img.data)).ok_or_else(short)?,
                ),
            }
        } else {
            let img = match srgb {
                true => heifer::decode_srgb_with_options(bytes, &opts)
                    .or_else(|_| heifer::decode_with_options(bytes, &opts)),
                false => heifer::decode_with_options(bytes, &opts),
            }
            .map_err(err)?;
            let (w, h, alpha, depth) = (img.width, img.height, img.has_alpha, img.bit_depth);
            let mut data = img.data;
            data.iter_mut().for_each(|v| *v = widen(*v, depth));
            match alpha {
                true => {
                    DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, data).ok_or_else(short)?)
                }
                false => DynamicImage::ImageRgb16(
                    ImageBuffer::from_raw(w, h, drop_alpha(data)).ok_or_else(short)?,
                ),
            }
        };
        Ok(Decoded {
            image,
            icc,
            tiff: Default::default(),
        })
    }

    /// RGBA samples to RGB in the same buffer: a 12 MP photo is not held
    /// twice (the RGBA and an RGB copy) on its way to the redaction.
    fn drop_alpha<T: Copy>(mut px: Vec<T>) -> Vec<T> {
        let n = px.len() / 4;
        for i in 0..n {
            for c in 0..3 {
                px[i * 3 + c] = px[i * 4 + c];
            }
        }
        px.truncate(n * 3);
        px.shrink_to_fit();
        px
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn dropping_alpha_keeps_each_pixel_in_order() {
            let rgba: Vec<u16> = (0..20).collect();
            let rgb = super::drop_alpha(rgba);
            assert_eq!(rgb, [0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 16, 17, 18]);
        }

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
/// `avif-libheif` feature: a cross-check of `avif_decode`, used when the
/// pure-Rust `avif-decode` is off. libheif applies `clap`, `irot` and `imir` itself
/// (its default), and nothing after it does again: a HEIF's orientation is
/// never read from EXIF (see `container::parse`). More than 8 bits become
/// 16-bit samples; alpha is kept; the ICC profile is carried. Without a
/// profile, libheif converts YUV with the file's nclx matrix but does not map
/// other primaries to sRGB: [`nclx_to_srgb`] does.
#[cfg(all(feature = "avif-libheif", not(feature = "avif-decode")))]
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
        let icc = parsed.icc_profile();
        let mut image = image;
        if icc.is_none() {
            // libheif leaves the samples in the file's primaries: convert
            // them, or a wide-gamut photo is shown washed out as sRGB.
            if let Some(nclx) = parsed.nclx() {
                super::nclx_to_srgb(&mut image, nclx);
            }
        }
        Ok(Decoded {
            image,
            icc,
            tiff: Default::default(),
        })
    }
}

/// Converts RGB samples coded in an `nclx` colour space other than sRGB
/// (Display P3, BT.2020...) to sRGB with moxcms (the colour engine the
/// `image` crate uses; its own API refuses BT.2020). Returns whether it
/// converted: not when the file says sRGB or leaves the primaries
/// unspecified, nor for a transfer without an SDR meaning (PQ, HLG: kept as
/// coded, as heifer does).
pub fn nclx_to_srgb(image: &mut image::DynamicImage, nclx: Nclx) -> bool {
    use image::DynamicImage as D;
    use moxcms::{
        CicpColorPrimaries, CicpProfile, ColorProfile, Layout, MatrixCoefficients,
        TransferCharacteristics, TransformOptions,
    };
    if matches!(nclx.primaries, 1 | 2) || matches!(nclx.transfer, 16 | 18) {
        return false;
    }
    let code = |v: u16| u8::try_from(v).ok();
    let Some(primaries) = code(nclx.primaries).and_then(|v| CicpColorPrimaries::try_from(v).ok())
    else {
        return false;
    };
    // Unspecified transfer: the sRGB curve (what viewers assume).
    let transfer = match code(nclx.transfer).map(TransferCharacteristics::try_from) {
        Some(Ok(t)) if nclx.transfer != 2 => t,
        _ => TransferCharacteristics::Srgb,
    };
    let coded = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries: primaries,
        transfer_characteristics: transfer,
        matrix_coefficients: MatrixCoefficients::Identity,
        full_range: true,
    });
    let srgb = ColorProfile::new_srgb();
    let opts = TransformOptions::default();
    match image {
        D::ImageRgb8(b) => apply(
            coded.create_transform_8bit(Layout::Rgb, &srgb, Layout::Rgb, opts),
            b,
        ),
        D::ImageRgba8(b) => apply(
            coded.create_transform_8bit(Layout::Rgba, &srgb, Layout::Rgba, opts),
            b,
        ),
        D::ImageRgb16(b) => apply(
            coded.create_transform_16bit(Layout::Rgb, &srgb, Layout::Rgb, opts),
            b,
        ),
        D::ImageRgba16(b) => apply(
            coded.create_transform_16bit(Layout::Rgba, &srgb, Layout::Rgba, opts),
            b,
        ),
        _ => false,
    }
}

/// Runs a colour transform over interleaved samples in place (from a copy).
fn apply<T: Copy + Default>(
    transform: std::result::Result<
        std::sync::Arc<dyn moxcms::TransformExecutor<T> + Send + Sync>,
        moxcms::CmsError,
    >,
    samples: &mut [T],
) -> bool {
    let Ok(t) = transform else { return false };
    let src = samples.to_vec();
    t.transform(&src, samples).is_ok()
}

/// A `depth`-bit sample spread over 16 bits (full scale stays full scale).
#[cfg(any(
    feature = "heic-decode",
    feature = "avif-decode",
    feature = "avif-libheif"
))]
pub(crate) fn widen(v: u16, depth: u8) -> u16 {
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

#[cfg(test)]
mod colour_tests {
    use super::*;

    fn one(rgb: [u8; 3], primaries: u16) -> [u8; 3] {
        let mut img =
            image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(2, 2, image::Rgb(rgb)));
        let nclx = Nclx {
            primaries,
            transfer: 13,
            matrix: 6,
            full_range: true,
        };
        let converted = nclx_to_srgb(&mut img, nclx);
        assert_eq!(converted, primaries != 1 && primaries != 2);
        img.to_rgb8().get_pixel(0, 0).0
    }

    #[test]
    fn wide_gamut_samples_become_more_saturated_srgb_and_grey_stays_grey() {
        // Display P3 (176, 64, 64) is sRGB (190, 52, 57) per lcms (ImageMagick).
        let p3 = one([176, 64, 64], 12);
        for (got, want) in p3.iter().zip([190u8, 52, 57]) {
            assert!(got.abs_diff(want) <= 2, "{p3:?}");
        }
        let bt2020 = one([176, 64, 64], 9);
        assert!(bt2020[0] > 205 && bt2020[1] < 30, "{bt2020:?}");
        for p in [9, 12] {
            let g = one([128, 128, 128], p);
            assert!(g.iter().all(|&v| v.abs_diff(128) <= 1), "{g:?}");
        }
        assert_eq!(one([176, 64, 64], 1), [176, 64, 64], "sRGB: untouched");
        assert_eq!(
            one([176, 64, 64], 2),
            [176, 64, 64],
            "unspecified: untouched"
        );
    }

    #[test]
    fn pq_and_hlg_are_kept_as_coded() {
        let mut img = image::DynamicImage::ImageRgb8(image::RgbImage::new(1, 1));
        for transfer in [16, 18] {
            let nclx = Nclx {
                primaries: 9,
                transfer,
                matrix: 9,
                full_range: true,
            };
            assert!(!nclx_to_srgb(&mut img, nclx));
        }
    }
}
