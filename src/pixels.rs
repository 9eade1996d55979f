//! The re-encode path: decode under limits, turn the picture upright, and
//! encode with nothing but the pixels (and, when kept, the ICC profile).
//! Used only when pixels must change: regions, `--orientation apply`, TIFF,
//! and PNG orientation.

use crate::container::{Format, Limits};
use crate::error::{Error, Result};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageReader};
use std::io::Cursor;

/// A decoded picture and the colour profile it was stored with.
pub struct Decoded {
    pub image: DynamicImage,
    pub icc: Option<Vec<u8>>,
    /// TIFF only: structural tags a TIFF re-encode must carry over.
    pub tiff: TiffLayout,
}

/// What a TIFF's extra channel means and its print resolution: structural,
/// not identifying, and lost by a bare re-encode (an RGBA file with no
/// ExtraSamples leaves readers guessing whether its alpha is premultiplied).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TiffLayout {
    /// ExtraSamples of the alpha channel (1 associated, 2 unassociated).
    pub extra_samples: Option<u16>,
    pub resolution: Option<Resolution>,
}

/// X and Y resolution as (numerator, denominator), and the ResolutionUnit.
pub type Resolution = ((u32, u32), (u32, u32), u16);

impl TiffLayout {
    /// Reads the layout tags of the first image; anything unreadable is left out.
    fn read(bytes: &[u8]) -> TiffLayout {
        use tiff::decoder::{ifd::Value, Decoder};
        use tiff::tags::Tag;
        let Ok(mut d) = Decoder::new(Cursor::new(bytes)) else {
            return TiffLayout::default();
        };
        let extra_samples = d
            .find_tag_unsigned_vec::<u16>(Tag::ExtraSamples)
            .ok()
            .flatten()
            .and_then(|v| v.first().copied());
        let mut rational = |tag| match d.find_tag(tag) {
            Ok(Some(Value::Rational(n, d))) if n > 0 && d > 0 => Some((n, d)),
            _ => None,
        };
        let (x, y) = (rational(Tag::XResolution), rational(Tag::YResolution));
        let unit = d
            .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
            .ok()
            .flatten()
            .unwrap_or(2);
        TiffLayout {
            extra_samples,
            resolution: x.zip(y).map(|(x, y)| (x, y, unit)),
        }
    }

    /// The layout after a rotation by a quarter turn (axes swapped).
    fn transposed(self) -> TiffLayout {
        TiffLayout {
            resolution: self.resolution.map(|(x, y, u)| (y, x, u)),
            ..self
        }
    }
}

/// Decodes `bytes` under `limits` and applies the EXIF `orientation`, so the
/// result is what a viewer shows.
pub fn decode_upright(
    bytes: &[u8],
    format: Format,
    orientation: u16,
    limits: &Limits,
) -> Result<Decoded> {
    let mut decoded = decode(bytes, format, limits)?;
    if let Some(o) = Orientation::from_exif(orientation as u8) {
        decoded.image.apply_orientation(o);
        if (5..=8).contains(&orientation) {
            decoded.tiff = decoded.tiff.transposed();
        }
    }
    Ok(decoded)
}

/// Decodes the stored pixels (no orientation applied).
pub fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<Decoded> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_alloc);
    let side = limits.max_pixels.min(u32::MAX as u64) as u32;
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    reader.limits(l);
    let mut decoder = reader.into_decoder()?;
    let icc = decoder.icc_profile().ok().flatten();
    let img = DynamicImage::from_decoder(decoder)?;
    let pixels = img.width() as u64 * img.height() as u64;
    if pixels > limits.max_pixels {
        return Err(Error::TooLarge(format!(
            "{}x{} pixels (limit {} MP)",
            img.width(),
            img.height(),
            limits.max_pixels / 1_000_000
        )));
    }
    let tiff = match format {
        Format::Tiff => TiffLayout::read(bytes),
        _ => TiffLayout::default(),
    };
    Ok(Decoded {
        image: img,
        icc,
        tiff,
    })
}

/// How to encode a re-encoded output.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// JPEG quality 1..=100.
    pub quality: u8,
    pub icc: Option<Vec<u8>>,
    /// TIFF only: alpha meaning and resolution to keep.
    pub tiff: TiffLayout,
}

/// Encodes `img` as `format` with no metadata but the optional ICC profile.
pub fn encode(img: &DynamicImage, format: Format, opts: &EncodeOptions) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        Format::Jpeg => encode_jpeg(img, opts, &mut out)?,
        Format::Png => {
            let mut enc = image::codecs::png::PngEncoder::new(&mut out);
            if let Some(icc) = &opts.icc {
                let _ = enc.set_icc_profile(icc.clone());
            }
            enc.write_image(
                img.as_bytes(),
                img.width(),
                img.height(),
                img.color().into(),
            )?;
        }
        Format::Webp => {
            // image-webp encodes lossless only: no generation loss, larger files.
            let rgba;
            let (bytes, color) = if matches!(
                img,
                DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)
            ) {
                (img.as_bytes(), img.color())
            } else {
                rgba = img.to_rgba8();
                (rgba.as_raw().as_slice(), image::ColorType::Rgba8)
            };
            let mut enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            if let Some(icc) = &opts.icc {
                let _ = enc.set_icc_profile(icc.clone());
            }
            enc.write_image(bytes, img.width(), img.height(), color.into())?;
        }
        Format::Gif => {
            let rgba = img.to_rgba8();
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            enc.encode(
                rgba.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgba8,
            )?;
        }
        Format::Tiff => encode_tiff(img, opts, &mut out)?,
    }
    Ok(out)
}

fn encode_jpeg(img: &DynamicImage, opts: &EncodeOptions, out: &mut Vec<u8>) -> Result<()> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let (w, h) = (img.width(), img.height());
    if w > u16::MAX as u32 || h > u16::MAX as u32 {
        return Err(Error::Encode(format!("{w}x{h} is too large for JPEG")));
    }
    let mut enc = Encoder::new(out, opts.quality.clamp(1, 100));
    enc.set_sampling_factor(SamplingFactor::R_4_2_0);
    if let Some(icc) = &opts.icc {
        enc.add_icc_profile(icc)
            .map_err(|e| Error::Encode(e.to_string()))?;
    }
    let result = match img {
        DynamicImage::ImageLuma8(g) => enc.encode(g.as_raw(), w as u16, h as u16, ColorType::Luma),
        DynamicImage::ImageRgb8(rgb) => {
            enc.encode(rgb.as_raw(), w as u16, h as u16, ColorType::Rgb)
        }
        other => {
            let rgb = other.to_rgb8();
            enc.encode(rgb.as_raw(), w as u16, h as u16, ColorType::Rgb)
        }
    };
    result.map_err(|e| Error::Encode(e.to_string()))
}

/// TIFF with Deflate (lossless) and only the structural tags the tiff crate writes.
fn encode_tiff(img: &DynamicImage, opts: &EncodeOptions, out: &mut Vec<u8>) -> Result<()> {
    use tiff::encoder::{colortype, compression::DeflateLevel, Compression, Rational, TiffEncoder};
    use tiff::tags::{ResolutionUnit, Tag};
    let err = |e: tiff::TiffError| Error::Encode(e.to_string());
    let (w, h) = (img.width(), img.height());
    let mut cursor = Cursor::new(out);
    let mut enc = TiffEncoder::new(&mut cursor)
        .map_err(err)?
        .with_compression(Compression::Deflate(DeflateLevel::Balanced));
    let layout = opts.tiff;
    macro_rules! write {
        ($ct:ty, $data:expr) => {{
            let mut image = enc.new_image::<$ct>(w, h).map_err(err)?;
            if let Some(((xn, xd), (yn, yd), unit)) = layout.resolution {
                image.resolution_unit(
                    ResolutionUnit::from_u16(unit).unwrap_or(ResolutionUnit::Inch),
                );
                image.x_resolution(Rational { n: xn, d: xd });
                image.y_resolution(Rational { n: yn, d: yd });
            }
            if img.color().has_alpha() {
                // The colour type counts the alpha channel but does not say
                // what it means; unassociated unless the source said otherwise.
                let meaning = layout.extra_samples.filter(|&v| v == 1).unwrap_or(2);
                image
                    .encoder()
                    .write_tag(Tag::ExtraSamples, meaning)
                    .map_err(err)?;
            }
            if let Some(icc) = &opts.icc {
                image
                    .encoder()
                    .write_tag(Tag::IccProfile, icc.as_slice())
                    .map_err(err)?;
            }
            image.write_data($data).map_err(err)?;
        }};
    }
    match img {
        DynamicImage::ImageLuma8(g) => write!(colortype::Gray8, g.as_raw()),
        DynamicImage::ImageLuma16(g) => write!(colortype::Gray16, g.as_raw()),
        DynamicImage::ImageRgb8(rgb) => write!(colortype::RGB8, rgb.as_raw()),
        DynamicImage::ImageRgb16(rgb) => write!(colortype::RGB16, rgb.as_raw()),
        DynamicImage::ImageRgba16(rgba) => write!(colortype::RGBA16, rgba.as_raw()),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageRgba8(_) => {
            write!(colortype::RGBA8, img.to_rgba8().as_raw())
        }
        DynamicImage::ImageLumaA16(_) => write!(colortype::RGBA16, img.to_rgba16().as_raw()),
        other if other.color().has_alpha() => {
            write!(colortype::RGBA16, other.to_rgba16().as_raw())
        }
        other if other.color().bits_per_pixel() > 32 => {
            write!(colortype::RGB16, other.to_rgb16().as_raw())
        }
        other => write!(colortype::RGB8, other.to_rgb8().as_raw()),
    }
    Ok(())
}

/// The IJG standard luminance quantisation table (quality 50).
const STD_LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// Estimates the IJG quality of a JPEG from its luminance quantisation table,
/// so a re-encode neither bloats nor degrades the photo.
pub fn estimate_jpeg_quality(dqt_payload: &[u8]) -> Option<u8> {
    let (&pq_tq, rest) = dqt_payload.split_first()?;
    let values: Vec<u16> = if pq_tq >> 4 == 0 {
        rest.get(..64)?.iter().map(|&v| v as u16).collect()
    } else {
        rest.get(..128)?
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect()
    };
    // Zigzag order does not matter for a sum ratio.
    let sum: u32 = values.iter().map(|&v| v as u32).sum();
    let std_sum: u32 = STD_LUMA.iter().map(|&v| v as u32).sum();
    let scale = sum as f64 * 100.0 / std_sum as f64;
    let q = if scale <= 100.0 {
        (200.0 - scale) / 2.0
    } else {
        5000.0 / scale
    };
    Some(q.round().clamp(1.0, 100.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff_roundtrip(img: DynamicImage, tiff: TiffLayout) -> TiffLayout {
        let opts = EncodeOptions {
            tiff,
            ..EncodeOptions::default()
        };
        let bytes = encode(&img, Format::Tiff, &opts).unwrap();
        let back = decode(&bytes, Format::Tiff, &Limits::default()).unwrap();
        assert_eq!(back.image.as_bytes(), img.as_bytes(), "TIFF is lossless");
        back.tiff
    }

    #[test]
    fn tiff_keeps_alpha_meaning_and_resolution() {
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            5,
            3,
            image::Rgba([9, 8, 7, 6]),
        ));
        let layout = TiffLayout {
            extra_samples: Some(1),
            resolution: Some(((300, 1), (150, 1), 2)),
        };
        assert_eq!(tiff_roundtrip(rgba.clone(), layout), layout);
        // No source layout: alpha is declared unassociated, never left unspecified.
        let bare = tiff_roundtrip(rgba, TiffLayout::default());
        assert_eq!(bare.extra_samples, Some(2));
        let rgb = DynamicImage::ImageRgb8(image::RgbImage::new(4, 4));
        assert_eq!(
            tiff_roundtrip(rgb, TiffLayout::default()).extra_samples,
            None
        );
    }

    #[test]
    fn quality_estimate_inverts_ijg_scaling() {
        for q in [50u32, 75, 90, 95] {
            let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
            let mut payload = vec![0u8];
            for base in STD_LUMA {
                payload.push(((base as u32 * scale + 50) / 100).clamp(1, 255) as u8);
            }
            let est = estimate_jpeg_quality(&payload).unwrap() as i32;
            assert!((est - q as i32).abs() <= 2, "q {q} estimated {est}");
        }
    }
}
