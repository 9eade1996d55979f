//! AVIF pixels by re_rav1d, a pure-Rust port of dav1d (no system library),
//! behind the default `avif-decode` feature. Our parser has already checked
//! the file and its limits; this module takes the primary's AV1 payload (or
//! each grid tile's), converts YUV to RGB with the `nclx` matrix and range,
//! adds the `auxl` alpha plane, then applies `clap`, `irot`, `imir` in the
//! order HEIF specifies. More than 8 bits become 16-bit samples.

use crate::container::heif::{Heif, Item, Transform};
use crate::container::Limits;
use crate::error::{Error, Result};
use crate::pixels::Decoded;
use image::{DynamicImage, ImageBuffer};
use re_rav1d::{Decoder, PixelLayout, PlanarImageComponent as C, Settings};

fn bad(why: impl std::fmt::Display) -> Error {
    Error::Decode(format!("AVIF: {why}"))
}

/// Decodes the primary picture of a parsed AVIF, upright.
pub fn decode(parsed: &Heif, limits: &Limits) -> Result<Decoded> {
    let (w, h) = (parsed.width, parsed.height);
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(Error::TooLarge(format!(
            "AVIF of {w}x{h} (limit {} MP)",
            limits.max_pixels / 1_000_000
        )));
    }
    let primary = parsed
        .item(parsed.primary)
        .ok_or_else(|| bad("no primary item"))?;
    let nclx = parsed.nclx();
    let colour = |pic: &Planes| pic.rgb(nclx.map(|n| n.matrix), nclx.map(|n| n.full_range));
    let (depth, rgb) = match &primary.kind {
        b"av01" => {
            let pic = decode_item(parsed, primary, limits)?;
            if (pic.width, pic.height) != (w, h) {
                return Err(bad(format!(
                    "the coded picture is {}x{}, the file says {w}x{h}",
                    pic.width, pic.height
                )));
            }
            (pic.depth, colour(&pic)?)
        }
        b"grid" => grid(parsed, primary, limits, w, h, &colour)?,
        k => {
            return Err(bad(format!(
                "primary item is a {}",
                String::from_utf8_lossy(k)
            )))
        }
    };
    let alpha = match parsed.alpha.and_then(|id| parsed.item(id)) {
        Some(item) if item.kind == *b"av01" => {
            let a = decode_item(parsed, item, limits)?;
            if (a.width, a.height) != (w, h) {
                return Err(bad("the alpha plane's size differs from the picture's"));
            }
            Some(a.luma(depth))
        }
        Some(_) => return Err(bad("a grid alpha plane is not supported")),
        None => None,
    };
    let mut image = to_image(w, h, depth, rgb, alpha)?;
    image = orient(image, &parsed.transforms());
    let icc = parsed.icc_profile();
    if icc.is_none() {
        if let Some(nclx) = nclx {
            crate::heic_decode::nclx_to_srgb(&mut image, nclx);
        }
    }
    Ok(Decoded {
        image,
        icc,
        tiff: Default::default(),
    })
}

/// A grid primary: each tile decoded, converted, and placed per the grid
/// descriptor; the canvas is the output size (right and bottom tiles cropped).
fn grid(
    parsed: &Heif,
    item: &Item,
    limits: &Limits,
    w: u32,
    h: u32,
    colour: &dyn Fn(&Planes) -> Result<Vec<u16>>,
) -> Result<(u8, Vec<u16>)> {
    let desc = parsed.payload(item);
    let (rows, cols) = match desc.as_slice() {
        [_, _, r, c, ..] => (*r as u32 + 1, *c as u32 + 1),
        _ => return Err(bad("short grid descriptor")),
    };
    let tiles: Vec<u32> = parsed
        .references
        .iter()
        .find(|r| r.kind == *b"dimg" && r.from == item.id)
        .map(|r| r.to.clone())
        .unwrap_or_default();
    if tiles.len() != (rows * cols) as usize {
        return Err(bad("the grid's tile count disagrees with its descriptor"));
    }
    let mut canvas = vec![0u16; w as usize * h as usize * 3];
    let (mut depth, mut tw, mut th) = (0u8, 0u32, 0u32);
    for (i, id) in tiles.iter().enumerate() {
        let tile = parsed.item(*id).ok_or_else(|| bad("missing grid tile"))?;
        let pic = decode_item(parsed, tile, limits)?;
        if i == 0 {
            (depth, tw, th) = (pic.depth, pic.width, pic.height);
            if (tw as u64 * cols as u64) < w as u64 || (th as u64 * rows as u64) < h as u64 {
                return Err(bad("the grid's tiles do not cover its output size"));
            }
        } else if (pic.depth, pic.width, pic.height) != (depth, tw, th) {
            return Err(bad("grid tiles differ in size or depth"));
        }
        let px = colour(&pic)?;
        let (x0, y0) = ((i as u32 % cols) * tw, (i as u32 / cols) * th);
        for y in 0..th.min(h.saturating_sub(y0)) {
            let n = tw.min(w.saturating_sub(x0)) as usize * 3;
            let src = (y * tw) as usize * 3;
            let dst = ((y0 + y) as usize * w as usize + x0 as usize) * 3;
            canvas[dst..dst + n].copy_from_slice(&px[src..src + n]);
        }
    }
    Ok((depth, canvas))
}

/// One decoded AV1 picture's planes, as samples of `depth` bits.
struct Planes {
    width: u32,
    height: u32,
    depth: u8,
    layout: PixelLayout,
    /// Y, U, V samples and their row lengths (U and V empty for 4:0:0).
    planes: [(Vec<u16>, usize); 3],
    matrix: u16,
    full_range: bool,
}

/// Decodes an `av01` item's payload (one temporal unit) with one thread: the
/// batch is parallel per photo already.
fn decode_item(parsed: &Heif, item: &Item, limits: &Limits) -> Result<Planes> {
    let data = parsed.payload(item);
    if data.is_empty() {
        return Err(bad(format!("item {} has no AV1 data", item.id)));
    }
    let mut settings = Settings::new();
    settings.set_n_threads(1);
    settings.set_max_frame_delay(1);
    settings.set_frame_size_limit(limits.max_pixels.min(u32::MAX as u64) as u32);
    let mut dec = Decoder::with_settings(&settings).map_err(|e| bad(format!("decoder: {e}")))?;
    let err = |e: re_rav1d::Error| bad(format!("item {}: {e}", item.id));
    match dec.send_data(data, None, None, None) {
        Ok(()) | Err(re_rav1d::Error::Again) => {}
        Err(e) => return Err(err(e)),
    }
    // One frame with one thread and a frame delay of 1: it comes out after
    // the data is sent, or after a drain; a bounded number of tries either way.
    let mut tries = 0;
    let pic = loop {
        match dec.get_picture() {
            Ok(p) => break p,
            Err(re_rav1d::Error::Again) if tries < 8 => {
                tries += 1;
                match dec.send_pending_data() {
                    Ok(()) | Err(re_rav1d::Error::Again) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Err(re_rav1d::Error::Again) => {
                dec.flush();
                break dec
                    .get_picture()
                    .map_err(|_| bad(format!("item {} holds no complete AV1 frame", item.id)))?;
            }
            Err(e) => return Err(err(e)),
        }
    };
    let depth = pic.bit_depth() as u8;
    let layout = pic.pixel_layout();
    let wide = depth > 8;
    let plane = |c: C| -> Result<(Vec<u16>, usize)> {
        // The crate's geometry is (stride, rows): the width is ours to work out.
        let (_, ph) = pic.plane_data_geometry(c);
        let pw = match (c, layout) {
            (C::Y, _) | (_, PixelLayout::I444) => pic.width(),
            _ => pic.width().div_ceil(2),
        };
        let stride = pic.stride(c) as usize;
        let data = pic.plane(c);
        let bytes = if wide { 2 } else { 1 };
        let row = pw as usize * bytes;
        if ph > 0 && data.len() < stride * (ph as usize - 1) + row {
            return Err(bad("the decoder returned a short plane"));
        }
        let mut out = Vec::with_capacity(pw as usize * ph as usize);
        for r in data.chunks(stride.max(1)).take(ph as usize) {
            let r = &r[..row];
            match wide {
                true => out.extend(r.chunks_exact(2).map(|b| u16::from_ne_bytes([b[0], b[1]]))),
                false => out.extend(r.iter().map(|&b| b as u16)),
            }
        }
        Ok((out, pw as usize))
    };
    let y = plane(C::Y)?;
    let (u, v) = match layout {
        PixelLayout::I400 => ((Vec::new(), 0), (Vec::new(), 0)),
        _ => (plane(C::U)?, plane(C::V)?),
    };
    Ok(Planes {
        width: pic.width(),
        height: pic.height(),
        depth,
        layout,
        planes: [y, u, v],
        matrix: pic.matrix_coefficients() as u16,
        full_range: matches!(pic.color_range(), re_rav1d::pixel::YUVRange::Full),
    })
}

impl Planes {
    /// Interleaved RGB samples of `depth` bits. The file's `nclx` (matrix,
    /// range) wins over the AV1 sequence header's; chroma is upsampled by
    /// repetition (what libheif does).
    fn rgb(&self, matrix: Option<u16>, full: Option<bool>) -> Result<Vec<u16>> {
        let matrix = matrix.unwrap_or(self.matrix);
        let full = full.unwrap_or(self.full_range);
        let (kr, kb) = match matrix {
            1 => (0.2126, 0.0722),
            9 | 10 => (0.2627, 0.0593),
            4 => (0.30, 0.11),
            7 => (0.212, 0.087),
            _ => (0.299, 0.114),
        };
        let max = ((1u32 << self.depth) - 1) as f32;
        let scale = (1u32 << self.depth.saturating_sub(8)) as f32;
        let (y_off, y_range, c_range) = match full {
            true => (0.0, max, max),
            false => (16.0 * scale, 219.0 * scale, 224.0 * scale),
        };
        let half = (1u32 << (self.depth - 1)) as f32;
        let (sx, sy) = match self.layout {
            PixelLayout::I420 => (1, 1),
            PixelLayout::I422 => (1, 0),
            _ => (0, 0),
        };
        let (w, h) = (self.width as usize, self.height as usize);
        let [(ys, yw), (us, uw), (vs, _)] = &self.planes;
        let mono = self.layout == PixelLayout::I400;
        let identity = matrix == 0 && !mono;
        if identity && self.layout != PixelLayout::I444 {
            // AV1 forbids it (its colour_config requires 4:4:4 for identity):
            // G, B, R at different resolutions has no agreed meaning.
            return Err(bad(
                "the identity (GBR) matrix with subsampled chroma is not valid AV1",
            ));
        }
        let (ys_k, cs_k) = (1.0 / y_range, 1.0 / c_range);
        let (rv, bu) = (2.0 * (1.0 - kr), 2.0 * (1.0 - kb));
        let kg = 1.0 / (1.0 - kr - kb);
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            let yrow = &ys[y * yw..][..w];
            let c0 = (y >> sy) * uw;
            for (x, &luma) in yrow.iter().enumerate() {
                let l = (luma as f32 - y_off) * ys_k;
                let (cb, cr) = match mono {
                    true => (0.0, 0.0),
                    false => {
                        let i = c0 + (x >> sx);
                        ((us[i] as f32 - half) * cs_k, (vs[i] as f32 - half) * cs_k)
                    }
                };
                let (r, g, b) = if identity {
                    // Identity (GBR): Y is green, U blue, V red, each coded
                    // like luma (H.273: limited range is 16..235 for all three).
                    let i = c0 + x;
                    let at = |s: &[u16]| (s[i] as f32 - y_off) * ys_k;
                    (at(vs), l, at(us))
                } else {
                    let r = l + rv * cr;
                    let b = l + bu * cb;
                    (r, (l - kr * r - kb * b) * kg, b)
                };
                for v in [r, g, b] {
                    // Rounds half up (v is not negative): `round` is a libm call per sample.
                    out.push((v.clamp(0.0, 1.0) * max + 0.5) as u16);
                }
            }
        }
        Ok(out)
    }

    /// The luma plane as alpha samples scaled to `depth` bits (full range).
    fn luma(&self, depth: u8) -> Vec<u16> {
        let (ys, yw) = &self.planes[0];
        let (from, to) = (((1u32 << self.depth) - 1), ((1u32 << depth) - 1));
        let (w, h) = (self.width as usize, self.height as usize);
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (y, x)))
            .map(|(y, x)| ((ys[y * yw + x] as u32 * to + from / 2) / from) as u16)
            .collect()
    }
}

/// 8-bit samples stay 8-bit; deeper ones are spread over 16 bits (in
/// place: a 12 MP picture is not copied twice).
fn to_image(
    w: u32,
    h: u32,
    depth: u8,
    rgb: Vec<u16>,
    alpha: Option<Vec<u16>>,
) -> Result<DynamicImage> {
    let short = || bad("the picture's buffer is short");
    let has_alpha = alpha.is_some();
    let mut px = match alpha {
        Some(a) => rgb
            .chunks_exact(3)
            .zip(a)
            .flat_map(|(c, a)| [c[0], c[1], c[2], a])
            .collect(),
        None => rgb,
    };
    if depth <= 8 {
        let narrow: Vec<u8> = px.iter().map(|&v| v as u8).collect();
        drop(px);
        return Ok(match has_alpha {
            false => {
                DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, narrow).ok_or_else(short)?)
            }
            true => {
                DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, narrow).ok_or_else(short)?)
            }
        });
    }
    px.iter_mut()
        .for_each(|v| *v = crate::heic_decode::widen(*v, depth));
    Ok(match has_alpha {
        false => DynamicImage::ImageRgb16(ImageBuffer::from_raw(w, h, px).ok_or_else(short)?),
        true => DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, px).ok_or_else(short)?),
    })
}

/// `clap`, then `irot`, then `imir` (the order HEIF requires of a file).
fn orient(mut image: DynamicImage, transforms: &[Transform]) -> DynamicImage {
    for t in transforms
        .iter()
        .filter(|t| matches!(t, Transform::Crop(_)))
    {
        if let Transform::Crop([cw, ch, ho, vo]) = *t {
            let f = |(n, d): (i64, i64)| n as f64 / d as f64;
            let (w, h) = (image.width() as f64, image.height() as f64);
            let (cw, ch) = (f(cw).round().clamp(1.0, w), f(ch).round().clamp(1.0, h));
            let left = ((w - cw) / 2.0 + f(ho)).round().clamp(0.0, w - cw);
            let top = ((h - ch) / 2.0 + f(vo)).round().clamp(0.0, h - ch);
            image = image.crop_imm(left as u32, top as u32, cw as u32, ch as u32);
        }
    }
    for t in transforms {
        if let Transform::Rotate(r) = t {
            image = match r {
                1 => image.rotate270(),
                2 => image.rotate180(),
                3 => image.rotate90(),
                _ => image,
            };
        }
    }
    for t in transforms {
        if let Transform::Mirror(axis) = t {
            // Axis 0 swaps top and bottom, as libheif and heifer read it.
            image = match axis {
                0 => image.flipv(),
                _ => image.fliph(),
            };
        }
    }
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::read(dir.join("fixtures/heif/avif_meta.avif")).unwrap()
    }

    #[test]
    fn truncated_av1_is_an_error_and_garbage_never_panics() {
        let bytes = fixture();
        let limits = Limits::default();
        let whole = crate::container::heif::parse(&bytes, &limits).unwrap();
        assert!(decode(&whole, &limits).is_ok());
        let at = whole
            .items
            .iter()
            .position(|i| i.id == whole.primary)
            .unwrap();
        let (off, len) = whole.items[at].location.as_ref().unwrap().extents[0];
        for cut in [0, 1, 3, 8, len / 2, len - 1] {
            // The primary's extent shortened: OBUs that end early.
            let mut p = crate::container::heif::parse(&bytes, &limits).unwrap();
            p.items[at].location.as_mut().unwrap().extents[0].1 = cut;
            let Err(e) = decode(&p, &limits) else {
                panic!("cut at {cut} decoded");
            };
            assert!(e.to_string().contains("AVIF"), "{e}");
        }
        for seed in 1..8usize {
            let mut b = bytes.clone();
            let (s, e) = (off as usize + 2, (off + len) as usize);
            b[s..e]
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v ^= (i.wrapping_mul(seed * 2654435761) >> 7) as u8);
            let p = crate::container::heif::parse(&b, &limits).unwrap();
            let _ = decode(&p, &limits);
        }
    }

    #[test]
    fn a_picture_over_the_pixel_limit_is_refused_before_decoding() {
        let bytes = fixture();
        let p = crate::container::heif::parse(&bytes, &Limits::default()).unwrap();
        let tiny = Limits {
            max_pixels: 16,
            ..Limits::default()
        };
        assert!(matches!(decode(&p, &tiny), Err(Error::TooLarge(_))));
    }
}
