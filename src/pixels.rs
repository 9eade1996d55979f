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
    let decoded = decode(bytes, format, limits)?;
    Ok(upright(decoded, orientation))
}

/// Like [`decode_upright`], but a JPEG is reduced in the DCT (N/8, the
/// strongest that keeps the upright picture at least `min_w` x `min_h`),
/// which costs a fraction of a full decode. Other formats, and JPEGs no
/// reduction fits, decode at full size. The caller resizes to the
/// exact size it wants.
pub fn decode_upright_reduced(
    bytes: &[u8],
    format: Format,
    orientation: u16,
    limits: &Limits,
    (min_w, min_h): (u32, u32),
) -> Result<Decoded> {
    // The reduction applies to the stored picture: swap for 90° turns.
    let stored_min = if (5..=8).contains(&orientation) {
        (min_h, min_w)
    } else {
        (min_w, min_h)
    };
    let decoded = match format {
        Format::Jpeg => match turbo::decode(bytes, limits, Some(stored_min))? {
            Some(d) => d,
            None => decode_with_image(bytes, format, limits)?,
        },
        _ => decode_with_image(bytes, format, limits)?,
    };
    Ok(upright(decoded, orientation))
}

/// A rectangle of a picture in pixels: x, y, width, height.
pub type PixelRect = (u32, u32, u32, u32);

/// Like [`decode_upright_reduced`], but only the part `window` of the
/// upright picture comes back. `window` is given the upright size of the
/// reduced picture and names the rectangle wanted in it (so a crop in
/// fractions lands on the same pixels whatever the reduction). A JPEG
/// decodes only the iMCU rows and columns that cover the window: nothing
/// after its last row is entropy-decoded and no block outside it is
/// transformed. Other formats decode whole and are cropped.
pub fn decode_upright_window(
    bytes: &[u8],
    format: Format,
    orientation: u16,
    limits: &Limits,
    min: (u32, u32),
    window: &dyn Fn(u32, u32) -> PixelRect,
) -> Result<Decoded> {
    let swapped = (5..=8).contains(&orientation);
    let stored_min = if swapped { (min.1, min.0) } else { min };
    if format == Format::Jpeg {
        let stored_window = |sw: u32, sh: u32| {
            let upright_size = if swapped { (sh, sw) } else { (sw, sh) };
            let rect = window(upright_size.0, upright_size.1);
            stored_rect(orientation, upright_size, rect)
        };
        if let Some(d) = turbo::decode_window(bytes, limits, stored_min, &stored_window)? {
            return Ok(upright(d, orientation));
        }
    }
    let mut decoded = decode_upright_reduced(bytes, format, orientation, limits, min)?;
    let (w, h) = (decoded.image.width(), decoded.image.height());
    let (x, y, cw, ch) = window(w, h);
    if (x, y, cw, ch) != (0, 0, w, h) {
        decoded.image = decoded.image.crop_imm(x, y, cw, ch);
    }
    Ok(decoded)
}

/// Where the upright rectangle `rect` of an upright `uw` x `uh` picture
/// lies in the stored picture that the EXIF `orientation` turns upright.
fn stored_rect(orientation: u16, (uw, uh): (u32, u32), (x, y, w, h): PixelRect) -> PixelRect {
    // Each case inverts the turn or flip that `upright` applies.
    match orientation {
        2 => (uw - x - w, y, w, h),
        3 => (uw - x - w, uh - y - h, w, h),
        4 => (x, uh - y - h, w, h),
        5 => (y, x, h, w),
        6 => (y, uw - x - w, h, w),
        7 => (uh - y - h, uw - x - w, h, w),
        8 => (uh - y - h, x, h, w),
        _ => (x, y, w, h),
    }
}

fn upright(mut decoded: Decoded, orientation: u16) -> Decoded {
    if let Some(o) = Orientation::from_exif(orientation as u8) {
        decoded.image.apply_orientation(o);
        if (5..=8).contains(&orientation) {
            decoded.tiff = decoded.tiff.transposed();
        }
    }
    decoded
}

/// Decodes the stored pixels (no orientation applied).
///
/// JPEGs go through libjpeg-turbo-rs (libjpeg-turbo's speed, in Rust); what
/// it does not take (CMYK, 12-bit, lossless, damaged streams it would only
/// decode with warnings, or any error) goes to the `image` crate as before,
/// so the set of files that decode, and their errors, do not change.
pub fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<Decoded> {
    if format == Format::Jpeg {
        if let Some(d) = turbo::decode(bytes, limits, None)? {
            return Ok(d);
        }
    }
    decode_with_image(bytes, format, limits)
}

fn decode_with_image(bytes: &[u8], format: Format, limits: &Limits) -> Result<Decoded> {
    if format.is_heif() {
        return crate::heic_decode::decode(bytes, format, limits);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    let mut l = image::Limits::default();
    l.max_alloc = Some(limits.max_alloc);
    let side = limits.max_pixels.min(u32::MAX as u64) as u32;
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    reader.limits(l);
    let decoded = reader.into_decoder().and_then(|mut decoder| {
        let icc = decoder.icc_profile().ok().flatten();
        Ok((DynamicImage::from_decoder(decoder)?, icc))
    });
    let (img, icc) = match decoded {
        Ok(d) => d,
        Err(e) if format == Format::Tiff => {
            tiff_gray_alpha(bytes, limits).ok_or_else(|| tiff_undecodable(e))?
        }
        Err(e) => return Err(e.into()),
    };
    let pixels = img.width() as u64 * img.height() as u64;
    if pixels > limits.max_pixels {
        return Err(too_large(img.width(), img.height(), limits));
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

/// A TIFF layout the decoder does not take (CIELab, float, ...): the
/// lossless clean works, pixel edits do not.
fn tiff_undecodable(e: image::ImageError) -> Error {
    Error::Decode(format!(
        "this TIFF's pixel layout cannot be decoded for regions or collages ({e}); \
         without regions it is cleaned losslessly"
    ))
}

/// Gray + alpha TIFFs (as ImageMagick writes them), which the image crate
/// maps to no colour type: decoded with the tiff crate directly, keeping 16 bits.
fn tiff_gray_alpha(bytes: &[u8], limits: &Limits) -> Option<(DynamicImage, Option<Vec<u8>>)> {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::ColorType;
    let mut tl = tiff::decoder::Limits::default();
    tl.decoding_buffer_size = usize::try_from(limits.max_alloc).ok()?;
    let mut d = Decoder::new(Cursor::new(bytes)).ok()?.with_limits(tl);
    let (w, h) = d.dimensions().ok()?;
    if w as u64 * h as u64 > limits.max_pixels {
        return None;
    }
    // The tiff crate calls min-is-black with one extra sample "Multiband".
    let black_is_zero = d.find_tag_unsigned::<u16>(tiff::tags::Tag::PhotometricInterpretation);
    let alpha = d.find_tag_unsigned::<u16>(tiff::tags::Tag::ExtraSamples);
    if !matches!(black_is_zero, Ok(Some(1))) || !matches!(alpha, Ok(Some(1 | 2))) {
        return None;
    }
    let bits = match d.colortype().ok()? {
        ColorType::GrayA(b) => b,
        ColorType::Multiband {
            bit_depth,
            num_samples: 2,
        } => bit_depth,
        _ => return None,
    };
    let icc = d.get_tag_u8_vec(tiff::tags::Tag::IccProfile).ok();
    let img = match (bits, d.read_image().ok()?) {
        (8, DecodingResult::U8(v)) => {
            DynamicImage::ImageLumaA8(image::ImageBuffer::from_raw(w, h, v)?)
        }
        (16, DecodingResult::U16(v)) => {
            DynamicImage::ImageLumaA16(image::ImageBuffer::from_raw(w, h, v)?)
        }
        _ => return None,
    };
    Some((img, icc))
}

fn too_large(w: u32, h: u32, limits: &Limits) -> Error {
    Error::TooLarge(format!(
        "{w}x{h} pixels (limit {} MP)",
        limits.max_pixels / 1_000_000
    ))
}

/// The fast JPEG path: libjpeg-turbo-rs, 8-bit gray or colour only.
mod turbo {
    use super::{too_large, Decoded};
    use crate::container::Limits;
    use crate::error::Result;
    use image::{DynamicImage, GrayImage, RgbImage};
    use libjpeg_turbo_rs as lt;
    use std::borrow::Cow;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// `Ok(None)` means "not for this decoder": the caller falls back.
    /// `min` asks for a DCT reduction that keeps the stored picture at
    /// least that large (`None`: full size).
    pub fn decode(
        bytes: &[u8],
        limits: &Limits,
        min: Option<(u32, u32)>,
    ) -> Result<Option<Decoded>> {
        let Some((w, h, decode_limits)) = header(bytes, limits)? else {
            return Ok(None);
        };
        // The least N/8 that keeps `min`; what the decoder refuses at N/8
        // decodes at 1/2, 1/4 or 1/8 as before.
        if let Some((mw, mh)) = min {
            let n = eighths(w, h, mw, mh);
            let fast = catch_unwind(AssertUnwindSafe(|| {
                run_scaled(bytes, decode_limits, (n, 8), None)
            }));
            if let Ok(Some(d)) = fast {
                return Ok(Some(d));
            }
        }
        let denom = min.map_or(1, |(mw, mh)| reduction(w, h, mw, mh));
        Ok(
            catch_unwind(AssertUnwindSafe(|| run(bytes, decode_limits, denom)))
                .ok()
                .flatten(),
        )
    }

    /// The stored size from the headers alone (no pixel buffer yet), and
    /// the decoder's limits; the size is checked against `limits` before
    /// anything the size of the picture is allocated. `None`: not a JPEG
    /// this decoder reads.
    fn header(bytes: &[u8], limits: &Limits) -> Result<Option<(u32, u32, lt::DecodeLimits)>> {
        let decode_limits = lt::DecodeLimits {
            max_pixels: limits.max_pixels,
            max_memory: Some(limits.max_alloc),
            ..lt::DecodeLimits::default()
        };
        let header = catch_unwind(AssertUnwindSafe(|| {
            lt::Decoder::new_with_limits(bytes, decode_limits)
                .ok()
                .map(|d| (d.header().width as u32, d.header().height as u32))
        }));
        let Ok(Some((w, h))) = header else {
            return Ok(None);
        };
        if w as u64 * h as u64 > limits.max_pixels {
            return Err(too_large(w, h, limits));
        }
        Ok(Some((w, h, decode_limits)))
    }

    /// The largest of 8, 4, 2 that keeps `w` x `h` at least `mw` x `mh`
    /// (libjpeg rounds scaled sizes up), else 1.
    pub fn reduction(w: u32, h: u32, mw: u32, mh: u32) -> u32 {
        [8, 4, 2]
            .into_iter()
            .find(|&d| w.div_ceil(d) >= mw.max(1) && h.div_ceil(d) >= mh.max(1))
            .unwrap_or(1)
    }

    /// [`decode`] reduced for `min`, of only the stored rectangle that
    /// `window` names (given the reduced stored size). The reduction is the
    /// least N/8 (not only 1/2, 1/4, 1/8) that keeps `min`: a crop 1.25x the
    /// panel decodes at 3/8 rather than 1/2, about half the pixels to
    /// transform, convert and resize. The rows after the window are not
    /// read at all: the decoder is given a frame that ends there.
    pub fn decode_window(
        bytes: &[u8],
        limits: &Limits,
        (mw, mh): (u32, u32),
        window: &dyn Fn(u32, u32) -> super::PixelRect,
    ) -> Result<Option<Decoded>> {
        let Some((w, h, decode_limits)) = header(bytes, limits)? else {
            return Ok(None);
        };
        let n = eighths(w, h, mw, mh);
        let (sw, sh) = (scaled(w, n), scaled(h, n));
        let rect = window(sw, sh);
        let crop = Some(rect).filter(|&r| r != (0, 0, sw, sh));
        let fast = catch_unwind(AssertUnwindSafe(|| {
            // The rows above the window stepped over here, not decoded there.
            let lower = crate::entropy::rows::from_row(bytes, limits, |mcu| {
                (rect.1 as usize * 8 / (mcu * n as usize)).saturating_sub(1)
            });
            let (mut src, h, crop) = match lower {
                Ok(Some((lower, dropped))) => {
                    let up = (dropped * n as usize / 8) as u32;
                    let (x, y, w, wh) = rect;
                    (
                        Cow::Owned(lower),
                        h - dropped as u32,
                        Some((x, y - up, w, wh)),
                    )
                }
                _ => (Cow::Borrowed(bytes), h, crop),
            };
            let crop_bottom = crop.map_or(sh, |c| c.1 + c.3);
            // The frame shortened in place when it is already a copy.
            if let Some((sof, height)) = short_height(&src, h, n, crop_bottom) {
                let at = sof + 5..sof + 7;
                src.to_mut()[at].copy_from_slice(&height.to_be_bytes());
            }
            run_scaled(&src, decode_limits, (n, 8), crop)
        }));
        if let Ok(Some(d)) = fast {
            return Ok(Some(d));
        }
        // What N/8 or the shortened frame does not take decodes as before.
        let denom = reduction(w, h, mw, mh);
        let (sw, sh) = (w.div_ceil(denom), h.div_ceil(denom));
        let rect = Some(window(sw, sh)).filter(|&r| r != (0, 0, sw, sh));
        Ok(catch_unwind(AssertUnwindSafe(|| {
            run_cropped(bytes, decode_limits, denom, rect)
        }))
        .ok()
        .flatten())
    }

    /// The least N in 1..=8 for which `w` x `h` at N/8 (rounded up, as
    /// libjpeg does) is at least `mw` x `mh`.
    pub fn eighths(w: u32, h: u32, mw: u32, mh: u32) -> u32 {
        (1..=8)
            .find(|&n| scaled(w, n) >= mw.max(1) && scaled(h, n) >= mh.max(1))
            .unwrap_or(8)
    }

    /// `d` pixels at N/8, rounded up.
    fn scaled(d: u32, n: u32) -> u32 {
        (d as u64 * n as u64).div_ceil(8) as u32
    }

    /// Where the frame header of `bytes` starts and the height that would
    /// make it only as tall as a decode at `n`/8 needs to give its first
    /// `rows` scaled rows, or `None` when that is the whole frame or the
    /// file is not a sequential one this can cut. One iMCU row more is
    /// kept, as the decoder's own vertical crop does, so the chroma
    /// upsampling of the last rows wanted sees real neighbours.
    pub(super) fn short_height(bytes: &[u8], h: u32, n: u32, rows: u32) -> Option<(usize, u16)> {
        let (sof, max_v) = sequential_frame(bytes)?;
        let scaled_mcu = max_v * n;
        let full_rows = (rows.div_ceil(scaled_mcu) + 1) * max_v * 8;
        if full_rows >= h {
            return None;
        }
        bytes.get(sof + 5..sof + 7)?;
        Some((sof, u16::try_from(full_rows).ok()?))
    }

    /// Where a baseline or extended sequential Huffman frame header
    /// (SOF0, SOF1) starts, and its largest vertical sampling factor.
    fn sequential_frame(bytes: &[u8]) -> Option<(usize, u32)> {
        if bytes.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut i = 2;
        loop {
            while bytes.get(i..i + 2)? == [0xFF, 0xFF] {
                i += 1; // fill bytes
            }
            if *bytes.get(i)? != 0xFF {
                return None;
            }
            let marker = *bytes.get(i + 1)?;
            let len = u16::from_be_bytes([*bytes.get(i + 2)?, *bytes.get(i + 3)?]) as usize;
            match marker {
                0xC0 | 0xC1 => {
                    let count = *bytes.get(i + 9)? as usize;
                    let comps = bytes.get(i + 10..i + 10 + 3 * count)?;
                    let max_v = comps.chunks_exact(3).map(|c| (c[1] & 15) as u32).max()?;
                    return (1..=4).contains(&max_v).then_some((i, max_v));
                }
                // Progressive, lossless, arithmetic, or pixels before a frame.
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDA | 0xD9 => return None,
                _ => i += 2 + len,
            }
        }
    }

    fn run(bytes: &[u8], limits: lt::DecodeLimits, denom: u32) -> Option<Decoded> {
        run_cropped(bytes, limits, denom, None)
    }

    /// Decodes at 1/`denom`, only `crop` (in scaled stored pixels) when given.
    fn run_cropped(
        bytes: &[u8],
        limits: lt::DecodeLimits,
        denom: u32,
        crop: impl Into<Option<super::PixelRect>>,
    ) -> Option<Decoded> {
        run_scaled(bytes, limits, (1, denom), crop.into())
    }

    /// Decodes at `num`/`denom`, only `crop` (in scaled stored pixels) when given.
    pub(super) fn run_scaled(
        bytes: &[u8],
        limits: lt::DecodeLimits,
        (num, denom): (u32, u32),
        crop: Option<super::PixelRect>,
    ) -> Option<Decoded> {
        let mut d = lt::Decoder::new_with_limits(bytes, limits).ok()?;
        let header = d.header();
        if header.precision != 8 || header.is_lossless {
            return None;
        }
        let max_h = header
            .components
            .iter()
            .map(|c| c.horizontal_sampling as u32)
            .max();
        let stored_w = header.width as u32;
        let gray = match (header.components.len(), d.jpeg_color_space()) {
            (1, lt::ColorSpace::Grayscale) => true,
            (3, lt::ColorSpace::YCbCr | lt::ColorSpace::Rgb) => false,
            _ => return None, // CMYK, YCCK, odd component counts
        };
        d.set_output_format(if gray {
            lt::PixelFormat::Grayscale
        } else {
            lt::PixelFormat::Rgb
        });
        d.set_stop_on_warning(true);
        if num != denom {
            let g = gcd(num, denom);
            d.set_scale(lt::ScalingFactor::try_new(num / g, denom / g).ok()?);
        }
        // The decoder upsamples a crop's chroma as if its sides were the
        // picture's: asked one iMCU wider on each side (where the picture
        // goes on), the columns kept see their real neighbours and come out
        // as the whole picture's do.
        let wide = crop.map(|(x, y, w, h)| {
            let imcu = max_h.unwrap_or(1).max(1) * (8 * num / denom).max(1);
            let full_w = (stored_w * num).div_ceil(denom);
            let left = x.saturating_sub(imcu);
            let right = (x + w).saturating_add(imcu).min(full_w.max(x + w));
            (left, y, right - left, h)
        });
        if let Some((x, y, w, h)) = wide {
            d.set_crop_region(x as usize, y as usize, w as usize, h as usize);
        }
        let icc = d.icc_profile().ok().flatten();
        let img = d.decode_image().ok()?;
        if !img.warnings.is_empty() {
            return None;
        }
        let (w, h) = (
            u32::try_from(img.width).ok()?,
            u32::try_from(img.height).ok()?,
        );
        let (data, w, h) = match (crop, wide) {
            (Some((x, _, cw, ch)), Some((wx, _, ww, _))) if (w, h) != (cw, ch) => {
                (h == ch).then_some(())?;
                // The decoder starts at the iMCU column at or before `wx`.
                let start = wx.checked_sub(w.checked_sub(ww)?)?;
                let left = x.checked_sub(start)?;
                (left + cw <= w).then_some(())?;
                (
                    keep_columns(img.data, w, (left, cw), if gray { 1 } else { 3 }),
                    cw,
                    ch,
                )
            }
            _ => (img.data, w, h),
        };
        let image = if gray {
            DynamicImage::ImageLuma8(GrayImage::from_raw(w, h, data)?)
        } else {
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, data)?)
        };
        Some(Decoded {
            image,
            icc,
            tiff: super::TiffLayout::default(),
        })
    }

    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }

    /// Rows of `width` pixels of `bpp` bytes cut to the `count` pixels from
    /// `left` on: a crop is decoded from the iMCU column at or before its
    /// left edge, and wider than asked (see [`run_scaled`]). Row slices, so
    /// it runs at memcpy speed.
    pub(super) fn keep_columns(
        mut data: Vec<u8>,
        width: u32,
        (left, count): (u32, u32),
        bpp: usize,
    ) -> Vec<u8> {
        let (row, skip) = (width as usize * bpp, left as usize * bpp);
        let kept = (count as usize * bpp).min(row - skip);
        // In place, row by row: no second buffer to allocate and fault in.
        for r in 0..data.len() / row.max(1) {
            data.copy_within(r * row + skip..r * row + skip + kept, r * kept);
        }
        data.truncate(data.len() / row.max(1) * kept);
        data
    }

    /// Baseline JPEG at `quality`, 4:2:0, with only the optional ICC profile.
    /// `None` when the encoder refuses (the caller falls back).
    pub fn encode(
        pixels: &[u8],
        w: u32,
        h: u32,
        gray: bool,
        quality: u8,
        icc: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        encode_with(pixels, w, h, gray, quality, icc, None)
    }

    /// `restart`: a restart marker every that many MCU rows.
    pub fn encode_with(
        pixels: &[u8],
        w: u32,
        h: u32,
        gray: bool,
        quality: u8,
        icc: Option<&[u8]>,
        restart: Option<u16>,
    ) -> Option<Vec<u8>> {
        catch_unwind(AssertUnwindSafe(|| {
            let format = if gray {
                lt::PixelFormat::Grayscale
            } else {
                lt::PixelFormat::Rgb
            };
            let mut enc = lt::Encoder::new(pixels, w as usize, h as usize, format)
                .quality(quality)
                .subsampling(if gray {
                    lt::Subsampling::S444
                } else {
                    lt::Subsampling::S420
                });
            if let Some(icc) = icc {
                enc = enc.icc_profile(icc);
            }
            if let Some(rows) = restart {
                enc = enc.restart_rows(rows);
            }
            enc.encode().ok()
        }))
        .ok()
        .flatten()
    }

    /// MCU rows per stripe of [`encode_striped`] (256 pixel rows in colour):
    /// a fixed count, so that the bytes never depend on the core count.
    pub const STRIPE_MCU_ROWS: u16 = 16;

    /// [`encode`] coded in stripes of [`STRIPE_MCU_ROWS`], in parallel, then
    /// joined with restart markers: the same bytes as one encode with a
    /// restart every stripe (each interval starts afresh, and 4:2:0 never
    /// mixes pixels across MCU rows), without waiting on one core.
    pub fn encode_striped(
        pixels: &[u8],
        w: u32,
        h: u32,
        gray: bool,
        quality: u8,
        icc: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        use rayon::prelude::*;
        let mcu = if gray { 8 } else { 16 };
        let stripe = STRIPE_MCU_ROWS as usize * mcu;
        let interval = (w as usize).div_ceil(mcu) * STRIPE_MCU_ROWS as usize;
        let row = w as usize * if gray { 1 } else { 3 };
        if h as usize <= stripe || interval > u16::MAX as usize || pixels.len() != row * h as usize
        {
            return encode(pixels, w, h, gray, quality, icc);
        }
        let parts: Option<Vec<Vec<u8>>> = pixels
            .par_chunks(stripe * row)
            .enumerate()
            .map(|(i, part)| {
                let rows = (part.len() / row) as u32;
                let icc = icc.filter(|_| i == 0);
                encode_with(part, w, rows, gray, quality, icc, Some(STRIPE_MCU_ROWS))
            })
            .collect();
        join_stripes(&parts?, h, interval as u16)
    }

    /// The first stripe's headers (its frame made `h` tall), then each
    /// stripe's entropy-coded data after a restart marker. `None` when a
    /// stripe is not laid out as expected (the caller encodes it whole).
    fn join_stripes(parts: &[Vec<u8>], h: u32, interval: u16) -> Option<Vec<u8>> {
        let first = parts.first()?;
        let mut head = split_scan(first, interval)?;
        let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        out.extend_from_slice(&first[..head.scan]);
        let [hi, lo] = u16::try_from(h).ok()?.to_be_bytes();
        out[head.sof + 5] = hi;
        out[head.sof + 6] = lo;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                head = split_scan(part, interval)?;
                out.extend_from_slice(&[0xFF, 0xD0 + ((i - 1) % 8) as u8]);
            }
            out.extend_from_slice(&part[head.scan..part.len() - 2]);
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        Some(out)
    }

    /// Where an encoder's output has its frame header and its scan data.
    #[derive(Clone, Copy)]
    struct Head {
        sof: usize,
        scan: usize,
    }

    /// The header offsets of one of our encoder's baseline files, which has
    /// one scan ending the file, and a restart interval of `interval`.
    fn split_scan(bytes: &[u8], interval: u16) -> Option<Head> {
        if !bytes.starts_with(&[0xFF, 0xD8]) || !bytes.ends_with(&[0xFF, 0xD9]) {
            return None;
        }
        let (mut pos, mut sof, mut dri) = (2usize, None, None);
        loop {
            let marker = *bytes.get(pos + 1).filter(|_| bytes[pos] == 0xFF)?;
            let len = u16::from_be_bytes([*bytes.get(pos + 2)?, *bytes.get(pos + 3)?]) as usize;
            let body = bytes.get(pos + 4..pos + 2 + len)?;
            match marker {
                0xC0 => sof = Some(pos).filter(|_| body.len() >= 5),
                0xDD => dri = body.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])),
                0xDA => {
                    let scan = pos + 2 + len;
                    (scan <= bytes.len() - 2 && dri == Some(interval)).then_some(())?;
                    return Some(Head { sof: sof?, scan });
                }
                // Another frame type, or a second image: not ours.
                0xC1..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xD8 | 0xD9 => return None,
                _ => {}
            }
            pos += 2 + len;
        }
    }
}

/// How to encode a re-encoded output.
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// JPEG quality 1..=100.
    pub quality: u8,
    pub icc: Option<Vec<u8>>,
    /// TIFF only: alpha meaning and resolution to keep.
    pub tiff: TiffLayout,
    /// JPEG only: coded in stripes on every core, with a restart marker
    /// between them (a collage, which nothing else runs beside).
    pub striped: bool,
}

/// Encodes `img` as `format` with no metadata but the optional ICC profile.
pub fn encode(img: &DynamicImage, format: Format, opts: &EncodeOptions) -> Result<Vec<u8>> {
    // Every re-encode carries the profile's colour only (a malformed one is dropped).
    let sanitised;
    let opts = match &opts.icc {
        Some(icc) => {
            sanitised = EncodeOptions {
                icc: crate::icc::sanitize(icc).ok(),
                ..opts.clone()
            };
            &sanitised
        }
        None => opts,
    };
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
            if opts.icc.is_some() {
                out = neutral_iccp(&out)?;
            }
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
        Format::Heif | Format::Avif => {
            return Err(Error::Encode(
                "photodeid writes HEIF/AVIF only losslessly; pixels go to JPEG or PNG".into(),
            ))
        }
    }
    Ok(out)
}

fn encode_jpeg(img: &DynamicImage, opts: &EncodeOptions, out: &mut Vec<u8>) -> Result<()> {
    let (w, h) = (img.width(), img.height());
    if w > u16::MAX as u32 || h > u16::MAX as u32 {
        return Err(Error::Encode(format!("{w}x{h} is too large for JPEG")));
    }
    let quality = opts.quality.clamp(1, 100);
    let rgb;
    let (pixels, gray) = match img {
        DynamicImage::ImageLuma8(g) => (g.as_raw().as_slice(), true),
        DynamicImage::ImageRgb8(c) => (c.as_raw().as_slice(), false),
        other => {
            rgb = other.to_rgb8();
            (rgb.as_raw().as_slice(), false)
        }
    };
    let icc = opts.icc.as_deref();
    let coded = if opts.striped {
        turbo::encode_striped(pixels, w, h, gray, quality, icc)
    } else {
        turbo::encode(pixels, w, h, gray, quality, icc)
    };
    if let Some(bytes) = coded {
        *out = bytes;
        return Ok(());
    }
    encode_jpeg_fallback(pixels, w, h, gray, quality, opts, out)
}

/// The encoder names its iCCP chunk itself: rewritten under the one
/// neutral keyword the PNG rewriter and the audit allow.
fn neutral_iccp(png: &[u8]) -> Result<Vec<u8>> {
    let unlimited = crate::container::Limits {
        max_pixels: u64::MAX,
        ..Default::default()
    };
    let parsed = crate::container::png::parse(png, &unlimited)?;
    Ok(parsed.rewrite(&crate::container::RewritePolicy::default()))
}

/// jpeg-encoder, should libjpeg-turbo-rs refuse an image.
fn encode_jpeg_fallback(
    pixels: &[u8],
    w: u32,
    h: u32,
    gray: bool,
    quality: u8,
    opts: &EncodeOptions,
    out: &mut Vec<u8>,
) -> Result<()> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    out.clear();
    let mut enc = Encoder::new(out, quality);
    enc.set_sampling_factor(SamplingFactor::R_4_2_0);
    if let Some(icc) = &opts.icc {
        enc.add_icc_profile(icc)
            .map_err(|e| Error::Encode(e.to_string()))?;
    }
    let color = if gray {
        ColorType::Luma
    } else {
        ColorType::Rgb
    };
    enc.encode(pixels, w as u16, h as u16, color)
        .map_err(|e| Error::Encode(e.to_string()))
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
    use crate::test_util::{fixture, psnr};

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

    use image::imageops::{self, FilterType};
    use image::RgbImage;

    /// A smooth, photo-like picture (JPEG-friendly, but not flat).
    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
            image::Rgb([
                (128.0 + 100.0 * (fx * 6.0).sin() * (fy * 3.0).cos()) as u8,
                (40.0 + 180.0 * fy) as u8,
                (200.0 - 150.0 * fx * fy) as u8,
            ])
        })
    }

    const JPEGS: &[&str] = &[
        "dirty/jpeg_full.jpg",
        "dirty/jpeg_gray.jpg",
        "dirty/jpeg_icc.jpg",
        "dirty/jpeg_photoshop.jpg",
        "dirty/jpeg_progressive.jpg",
        "dirty/jpeg_restart.jpg",
        "dirty/jpeg_cmyk.jpg",
        "dirty/jpeg_orient_6.jpg",
    ];

    #[test]
    fn fast_decode_matches_the_image_crate() {
        let limits = Limits::default();
        for name in JPEGS {
            let bytes = fixture(name);
            let fast = decode(&bytes, Format::Jpeg, &limits).unwrap();
            let reference = decode_with_image(&bytes, Format::Jpeg, &limits).unwrap();
            assert_eq!(fast.image.color(), reference.image.color(), "{name}");
            assert_eq!(fast.icc, reference.icc, "{name}");
            let (a, b) = (fast.image.to_rgb8(), reference.image.to_rgb8());
            let p = psnr(&a, &b);
            assert!(p > 38.0, "{name}: PSNR {p:.1} dB against the image crate");
        }
    }

    #[test]
    fn cmyk_goes_to_the_image_crate() {
        let bytes = fixture("dirty/jpeg_cmyk.jpg");
        let limits = Limits::default();
        assert!(turbo::decode(&bytes, &limits, None).unwrap().is_none());
    }

    #[test]
    fn bad_jpegs_fail_as_before() {
        let limits = Limits::default();
        for name in [
            "bad/bad_segment.jpg",
            "bad/empty.jpg",
            "bad/not_an_image.jpg",
            "bad/truncated.jpg",
        ] {
            let bytes = fixture(name);
            let fast = decode(&bytes, Format::Jpeg, &limits);
            let reference = decode_with_image(&bytes, Format::Jpeg, &limits);
            assert_eq!(fast.is_ok(), reference.is_ok(), "{name}");
        }
        // 65000 x 65000 from 1.3 kB: refused before any pixel buffer.
        let bomb = fixture("bad/bomb.jpg");
        assert!(matches!(
            decode(&bomb, Format::Jpeg, &limits),
            Err(Error::TooLarge(_))
        ));
    }

    #[test]
    fn pixel_limit_holds_before_the_fast_decode() {
        let img = DynamicImage::ImageRgb8(photo(64, 48));
        let opts = EncodeOptions {
            quality: 90,
            icc: None,
            ..EncodeOptions::default()
        };
        let bytes = encode(&img, Format::Jpeg, &opts).unwrap();
        let small = Limits {
            max_pixels: 1000,
            ..Limits::default()
        };
        assert!(matches!(
            turbo::decode(&bytes, &small, None),
            Err(Error::TooLarge(_))
        ));
        assert!(matches!(
            decode(&bytes, Format::Jpeg, &small),
            Err(Error::TooLarge(_))
        ));
    }

    #[test]
    fn reduction_is_the_strongest_that_keeps_the_size() {
        assert_eq!(turbo::reduction(4000, 3000, 973, 730), 4);
        assert_eq!(turbo::reduction(4000, 3000, 1001, 730), 2);
        assert_eq!(turbo::reduction(4000, 3000, 3000, 2250), 1);
        assert_eq!(turbo::reduction(4000, 3000, 500, 375), 8);
        assert_eq!(turbo::reduction(4001, 3001, 501, 376), 8); // sizes round up
        assert_eq!(turbo::reduction(96, 64, 0, 0), 8);
    }

    #[test]
    fn eighths_are_the_least_that_keep_the_size() {
        // A 1.25x crop of 4000 px for a 1040 px panel: 3/8 (1500), not 1/2.
        assert_eq!(turbo::eighths(4000, 3000, 1300, 974), 3);
        assert_eq!(turbo::eighths(4000, 3000, 1501, 974), 4);
        assert_eq!(turbo::eighths(4000, 3000, 500, 375), 1);
        assert_eq!(turbo::eighths(4001, 3001, 501, 376), 1); // sizes round up
        assert_eq!(turbo::eighths(4000, 3000, 501, 375), 2);
        assert_eq!(turbo::eighths(4000, 3000, 3501, 10), 8);
        assert_eq!(turbo::eighths(96, 64, 0, 0), 1);
    }

    /// The columns are cut row by row in place: every kept byte where a
    /// fresh copy would put it.
    #[test]
    fn keeping_columns_in_place_keeps_each_rows_middle_part() {
        let (w, h, bpp) = (7u32, 5u32, 3usize);
        let data: Vec<u8> = (0..w as usize * h as usize * bpp)
            .map(|i| i as u8)
            .collect();
        for (left, count) in [(3u32, 4u32), (0, 7), (2, 3), (0, 1), (6, 1)] {
            let want: Vec<u8> = data
                .chunks_exact(w as usize * bpp)
                .flat_map(|r| r[left as usize * bpp..(left + count) as usize * bpp].to_vec())
                .collect();
            assert_eq!(
                turbo::keep_columns(data.clone(), w, (left, count), bpp),
                want,
                "{left} {count}"
            );
        }
    }

    /// A frame cut after the rows a window needs decodes those rows to the
    /// very pixels the whole frame gives, at every N/8, and is really taken
    /// (no fallback): a cut stream the decoder refused would only be slow.
    #[test]
    fn a_frame_cut_after_the_window_gives_the_same_pixels() {
        let img = DynamicImage::ImageRgb8(photo(640, 480));
        let bytes = encode(&img, Format::Jpeg, &EncodeOptions::default()).unwrap();
        let limits = libjpeg_turbo_rs::DecodeLimits::default();
        for n in [1, 3, 4, 5, 6, 8] {
            let (sw, sh) = ((640u32 * n).div_ceil(8), (480u32 * n).div_ceil(8));
            let rect = (sw / 7, sh / 5, sw / 2, sh / 3);
            let (sof, height) = turbo::short_height(&bytes, 480, n, rect.1 + rect.3)
                .unwrap_or_else(|| panic!("{n}/8: no cut"));
            let mut cut = bytes.clone();
            cut[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
            assert!(cut.len() == bytes.len() && cut != bytes, "{n}/8");
            let part = turbo::run_scaled(&cut, limits, (n, 8), Some(rect))
                .unwrap_or_else(|| panic!("{n}/8: the cut frame was refused"));
            let whole = turbo::run_scaled(&bytes, limits, (n, 8), Some(rect)).unwrap();
            assert_eq!(
                (part.image.width(), part.image.height()),
                (rect.2, rect.3),
                "{n}/8"
            );
            assert_eq!(part.image, whole.image, "{n}/8");
        }
        // Nothing to cut when the window reaches the last iMCU row.
        assert!(turbo::short_height(&bytes, 480, 8, 470).is_none());
    }

    #[test]
    fn reduced_decode_is_upright_and_close_to_full_decode_then_resize() {
        let limits = Limits::default();
        for o in 1..=8u16 {
            let bytes = fixture(&format!("dirty/jpeg_orient_{o}.jpg"));
            let full = decode_upright(&bytes, Format::Jpeg, o, &limits)
                .unwrap()
                .image
                .to_rgb8();
            let (w, h) = full.dimensions();
            let min = (w / 4, h / 4);
            let reduced = decode_upright_reduced(&bytes, Format::Jpeg, o, &limits, min)
                .unwrap()
                .image
                .to_rgb8();
            assert_eq!(reduced.dimensions(), min, "orientation {o}");
            let expected = imageops::resize(&full, min.0, min.1, FilterType::Triangle);
            let p = psnr(&reduced, &expected);
            assert!(p > 25.0, "orientation {o}: PSNR {p:.1} dB");
        }
        // Non-JPEG formats decode at full size.
        let png = fixture("dirty/png_rgba.png");
        let full = decode_upright(&png, Format::Png, 1, &limits).unwrap();
        let reduced = decode_upright_reduced(&png, Format::Png, 1, &limits, (1, 1)).unwrap();
        assert_eq!(
            (full.image.width(), full.image.height()),
            (reduced.image.width(), reduced.image.height())
        );
    }

    #[test]
    fn reduced_decode_of_a_large_photo_matches_a_resize() {
        let limits = Limits::default();
        let src = photo(800, 600);
        let opts = EncodeOptions {
            quality: 92,
            icc: None,
            ..EncodeOptions::default()
        };
        let bytes = encode(&DynamicImage::ImageRgb8(src.clone()), Format::Jpeg, &opts).unwrap();
        let reduced = decode_upright_reduced(&bytes, Format::Jpeg, 1, &limits, (190, 140))
            .unwrap()
            .image
            .to_rgb8();
        assert_eq!(reduced.dimensions(), (200, 150));
        let expected = imageops::resize(&src, 200, 150, FilterType::Triangle);
        let p = psnr(&reduced, &expected);
        assert!(p > 32.0, "PSNR {p:.1} dB");
    }

    #[test]
    fn encoded_jpeg_round_trips_and_keeps_only_the_icc_profile() {
        let src = photo(333, 217); // not a multiple of the MCU size
        let icc = fixture("dirty/jpeg_icc.jpg");
        let icc = decode(&icc, Format::Jpeg, &Limits::default())
            .unwrap()
            .icc
            .expect("fixture has a profile");
        let opts = EncodeOptions {
            quality: 90,
            icc: Some(icc.clone()),
            ..EncodeOptions::default()
        };
        let bytes = encode(&DynamicImage::ImageRgb8(src.clone()), Format::Jpeg, &opts).unwrap();
        let back = decode_with_image(&bytes, Format::Jpeg, &Limits::default()).unwrap();
        let sanitised = crate::icc::sanitize(&icc).unwrap();
        assert_eq!(back.icc.as_deref(), Some(sanitised.as_slice()));
        assert_ne!(sanitised, icc, "the fixture's profile carries a date");
        let p = psnr(&back.image.to_rgb8(), &src);
        assert!(p > 35.0, "PSNR {p:.1} dB");
        // 4:2:0, as before.
        let parsed = crate::container::jpeg::parse(&bytes, &Limits::default()).unwrap();
        let sof = parsed.segments.iter().find(|s| s.marker == 0xC0).unwrap();
        assert_eq!(sof.payload[7], 0x22, "luma sampling 2x2");
        let q = parsed
            .segments
            .iter()
            .find(|s| s.marker == 0xDB)
            .and_then(|s| estimate_jpeg_quality(s.payload));
        assert_eq!(q, Some(90));
        // Gray stays gray.
        let gray = DynamicImage::ImageLuma8(DynamicImage::ImageRgb8(src).to_luma8());
        let bytes = encode(&gray, Format::Jpeg, &EncodeOptions::default()).unwrap();
        let back = decode(&bytes, Format::Jpeg, &Limits::default()).unwrap();
        assert!(matches!(back.image, DynamicImage::ImageLuma8(_)));
    }

    /// Stripes coded apart and joined are exactly the library's own
    /// encode with a restart marker every stripe, for colour and gray,
    /// heights that end mid-MCU and widths that are not a multiple of 16;
    /// and djpeg decodes them without a word.
    #[test]
    fn striped_jpeg_is_the_whole_encode_with_restarts() {
        let rows = turbo::STRIPE_MCU_ROWS;
        for (w, h) in [(257u32, 1350u32), (1080, 257), (64, 513), (33, 1000)] {
            let img = photo(w, h);
            for gray in [false, true] {
                let (pixels, mcu) = if gray {
                    (
                        DynamicImage::ImageRgb8(img.clone()).to_luma8().into_raw(),
                        8,
                    )
                } else {
                    (img.as_raw().clone(), 16)
                };
                let striped = turbo::encode_striped(&pixels, w, h, gray, 90, None).unwrap();
                let whole = turbo::encode_with(&pixels, w, h, gray, 90, None, Some(rows)).unwrap();
                assert_eq!(striped, whole, "{w}x{h} gray {gray}");
                let stripes = (h as usize).div_ceil(rows as usize * mcu);
                let markers = striped
                    .windows(2)
                    .filter(|p| p[0] == 0xFF && (0xD0..=0xD7).contains(&p[1]))
                    .count();
                assert_eq!(markers, stripes - 1, "{w}x{h} gray {gray}");
                assert_djpeg_decodes(&striped, w, h, gray);
            }
        }
        // One stripe or less: the plain encode, no restart marker.
        let img = photo(300, 200);
        let one = turbo::encode_striped(img.as_raw(), 300, 200, false, 90, None).unwrap();
        assert_eq!(
            one,
            turbo::encode(img.as_raw(), 300, 200, false, 90, None).unwrap()
        );
    }

    fn assert_djpeg_decodes(bytes: &[u8], w: u32, h: u32, gray: bool) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("djpeg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("skipped: djpeg not installed");
            return;
        };
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && out.stderr.is_empty(), "{stderr}");
        let head = format!("{}\n{w} {h}\n255\n", if gray { "P5" } else { "P6" });
        assert!(out.stdout.starts_with(head.as_bytes()));
    }

    #[test]
    fn encoded_jpeg_decodes_with_djpeg() {
        let src = photo(257, 129);
        let bytes = encode(
            &DynamicImage::ImageRgb8(src),
            Format::Jpeg,
            &EncodeOptions {
                quality: 85,
                icc: None,
                ..EncodeOptions::default()
            },
        )
        .unwrap();
        assert_djpeg_decodes(&bytes, 257, 129, false);
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
