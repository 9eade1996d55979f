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
            Some(a.luma(depth)?)
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
    colour: &dyn Fn(&Planes) -> Result<Rgb>,
) -> Result<(u8, Rgb)> {
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
    let size = w as usize * h as usize * 3;
    let mut canvas = Rgb::Narrow(Vec::new());
    let (mut depth, mut tw, mut th) = (0u8, 0u32, 0u32);
    for (i, id) in tiles.iter().enumerate() {
        let tile = parsed.item(*id).ok_or_else(|| bad("missing grid tile"))?;
        let pic = decode_item(parsed, tile, limits)?;
        if i == 0 {
            (depth, tw, th) = (pic.depth, pic.width, pic.height);
            if (tw as u64 * cols as u64) < w as u64 || (th as u64 * rows as u64) < h as u64 {
                return Err(bad("the grid's tiles do not cover its output size"));
            }
            canvas = match depth > 8 {
                true => Rgb::Wide(vec![0; size]),
                false => Rgb::Narrow(vec![0; size]),
            };
        } else if (pic.depth, pic.width, pic.height) != (depth, tw, th) {
            return Err(bad("grid tiles differ in size or depth"));
        }
        let at = ((i as u32 % cols) * tw, (i as u32 / cols) * th);
        match (&mut canvas, colour(&pic)?) {
            (Rgb::Narrow(c), Rgb::Narrow(px)) => place(c, &px, (w, h), (tw, th), at),
            (Rgb::Wide(c), Rgb::Wide(px)) => place(c, &px, (w, h), (tw, th), at),
            _ => return Err(bad("grid tiles differ in size or depth")),
        }
    }
    Ok((depth, canvas))
}

/// Copies a `tile`-sized RGB picture into the `size` canvas at `(x0, y0)`,
/// cropped at the canvas's right and bottom edges.
fn place<T: Copy>(
    canvas: &mut [T],
    px: &[T],
    (w, h): (u32, u32),
    (tw, th): (u32, u32),
    (x0, y0): (u32, u32),
) {
    let n = tw.min(w.saturating_sub(x0)) as usize * 3;
    for y in 0..th.min(h.saturating_sub(y0)) {
        let src = (y * tw) as usize * 3;
        let dst = ((y0 + y) as usize * w as usize + x0 as usize) * 3;
        canvas[dst..dst + n].copy_from_slice(&px[src..src + n]);
    }
}

/// Interleaved RGB samples: 8-bit pictures straight to bytes, deeper ones
/// as `depth`-bit values in u16.
enum Rgb {
    Narrow(Vec<u8>),
    Wide(Vec<u16>),
}

/// One decoded AV1 picture's planes, as samples of `depth` bits.
struct Planes {
    width: u32,
    height: u32,
    depth: u8,
    layout: PixelLayout,
    samples: Samples,
    matrix: u16,
    full_range: bool,
}

/// Y, U, V (only Y for 4:0:0), each with its row stride in samples.
enum Samples {
    /// 8-bit: the decoder's own buffers, read in place.
    Narrow(Vec<(re_rav1d::Plane, usize)>),
    /// Deeper: copied out of the decoder's native-endian bytes.
    Wide(Vec<(Vec<u16>, usize)>),
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
    if !(8..=12).contains(&depth) {
        return Err(bad(format!("item {}: {depth}-bit samples", item.id)));
    }
    let layout = pic.pixel_layout();
    let mut components = vec![C::Y];
    if layout != PixelLayout::I400 {
        components.extend([C::U, C::V]);
    }
    // Each plane's (data, stride in bytes, bytes per row), checked whole.
    let mut narrow = Vec::new();
    for c in components {
        // The crate's geometry is (stride, rows): the width is ours to work out.
        let (_, ph) = pic.plane_data_geometry(c);
        let pw = match (c, layout) {
            (C::Y, _) | (_, PixelLayout::I444) => pic.width(),
            _ => pic.width().div_ceil(2),
        };
        let stride = pic.stride(c) as usize;
        let data = pic.plane(c);
        let row = pw as usize * if depth > 8 { 2 } else { 1 };
        if stride < row || (ph > 0 && data.len() < stride * (ph as usize - 1) + row) {
            return Err(bad("the decoder returned a short plane"));
        }
        narrow.push((data, stride, row, ph as usize));
    }
    let samples = match depth > 8 {
        false => Samples::Narrow(narrow.into_iter().map(|(d, s, _, _)| (d, s)).collect()),
        true => Samples::Wide(
            narrow
                .into_iter()
                .map(|(data, stride, row, rows)| {
                    let mut out = Vec::with_capacity(row / 2 * rows);
                    for r in data.chunks(stride.max(1)).take(rows) {
                        let b = r[..row].chunks_exact(2);
                        out.extend(b.map(|b| u16::from_ne_bytes([b[0], b[1]])));
                    }
                    (out, row / 2)
                })
                .collect(),
        ),
    };
    Ok(Planes {
        width: pic.width(),
        height: pic.height(),
        depth,
        layout,
        samples,
        matrix: pic.matrix_coefficients() as u16,
        full_range: matches!(pic.color_range(), re_rav1d::pixel::YUVRange::Full),
    })
}

impl Planes {
    /// Interleaved RGB samples of `depth` bits. The file's `nclx` (matrix,
    /// range) wins over the AV1 sequence header's; chroma is upsampled by
    /// repetition (what libheif does).
    fn rgb(&self, matrix: Option<u16>, full: Option<bool>) -> Result<Rgb> {
        let matrix = matrix.unwrap_or(self.matrix);
        let full = full.unwrap_or(self.full_range);
        let identity = matrix == 0 && self.layout != PixelLayout::I400;
        if identity && self.layout != PixelLayout::I444 {
            // AV1 forbids it (its colour_config requires 4:4:4 for identity):
            // G, B, R at different resolutions has no agreed meaning.
            return Err(bad(
                "the identity (GBR) matrix with subsampled chroma is not valid AV1",
            ));
        }
        let k = Coeffs::new(matrix, full, self.depth);
        let (w, h) = (self.width as usize, self.height as usize);
        Ok(match &self.samples {
            Samples::Narrow(p) => Rgb::Narrow(convert(views(p), w, h, self.layout, identity, &k)?),
            Samples::Wide(p) => Rgb::Wide(convert(views(p), w, h, self.layout, identity, &k)?),
        })
    }

    /// The luma plane as alpha samples scaled to `depth` bits (full range).
    fn luma(&self, depth: u8) -> Result<Vec<u16>> {
        let (w, h) = (self.width as usize, self.height as usize);
        let (from, to) = (((1u32 << self.depth) - 1), ((1u32 << depth) - 1));
        fn scaled<T: Copy + Into<u32>>(
            y: Rows<T>,
            w: usize,
            h: usize,
            from: u32,
            to: u32,
        ) -> Result<Vec<u16>> {
            let mut out = Vec::with_capacity(w * h);
            for r in 0..h {
                let row = y.row(r, w)?;
                out.extend(
                    row.iter()
                        .map(|&v| ((v.into() * to + from / 2) / from) as u16),
                );
            }
            Ok(out)
        }
        match &self.samples {
            Samples::Narrow(p) => scaled(views(p)[0], w, h, from, to),
            Samples::Wide(p) => scaled(views(p)[0], w, h, from, to),
        }
    }
}

/// One plane's samples: rows `stride` samples apart.
#[derive(Clone, Copy)]
struct Rows<'a, T> {
    data: &'a [T],
    stride: usize,
}

impl<'a, T> Rows<'a, T> {
    /// The first `len` samples of row `y` (an error past the data, never a panic).
    fn row(&self, y: usize, len: usize) -> Result<&'a [T]> {
        self.data
            .get(y * self.stride..)
            .and_then(|r| r.get(..len))
            .ok_or_else(|| bad("the decoder returned a short plane"))
    }
}

/// Y, U, V views of stored planes (U and V empty for 4:0:0).
fn views<T, P: AsRef<[T]>>(planes: &[(P, usize)]) -> [Rows<'_, T>; 3] {
    let at = |i: usize| match planes.get(i) {
        Some((p, stride)) => Rows {
            data: p.as_ref(),
            stride: *stride,
        },
        None => Rows {
            data: &[],
            stride: 0,
        },
    };
    [at(0), at(1), at(2)]
}

/// `(Kr, Kb)` of an H.273 matrix (BT.601 for 5, 6 and anything unknown).
fn kr_kb(matrix: u16) -> (f64, f64) {
    match matrix {
        1 => (0.2126, 0.0722),
        9 | 10 => (0.2627, 0.0593),
        4 => (0.30, 0.11),
        7 => (0.212, 0.087),
        _ => (0.299, 0.114),
    }
}

/// Fractional bits of the fixed-point conversion: with 12-bit samples every
/// term stays far inside an i32, and the coefficients' rounding moves an
/// output by under a quarter of a step.
const FRAC: u32 = 14;

/// One matrix, range and depth's YUV->RGB as integers, scaled by `1 << FRAC`
/// and by the output's full scale: `out = (y_mul (Y - y_off) + terms) >> FRAC`.
#[derive(Debug, Clone, Copy)]
struct Coeffs {
    y_off: i32,
    y_mul: i32,
    c_mid: i32,
    /// Cr to R, Cb to B, and Cb, Cr to the G term subtracted.
    rv: i32,
    bu: i32,
    gu: i32,
    gv: i32,
    max: i32,
}

impl Coeffs {
    fn new(matrix: u16, full: bool, depth: u8) -> Self {
        let (kr, kb) = kr_kb(matrix);
        let max = ((1u32 << depth) - 1) as f64;
        let scale = (1u32 << depth.saturating_sub(8)) as f64;
        let (y_off, y_range, c_range) = match full {
            true => (0.0, max, max),
            false => (16.0 * scale, 219.0 * scale, 224.0 * scale),
        };
        let one = (1u32 << FRAC) as f64 * max;
        let fixed = |v: f64| (v * one).round() as i32;
        // G = Y - (Kr R' + Kb B') / Kg, with R' and B' the chroma terms of R and B.
        let (rv, bu, kg) = (2.0 * (1.0 - kr), 2.0 * (1.0 - kb), 1.0 - kr - kb);
        Coeffs {
            y_off: y_off as i32,
            y_mul: fixed(1.0 / y_range),
            c_mid: 1 << (depth - 1),
            rv: fixed(rv / c_range),
            bu: fixed(bu / c_range),
            gu: fixed(kb * bu / kg / c_range),
            gv: fixed(kr * rv / kg / c_range),
            max: max as i32,
        }
    }

    /// A fixed-point value to an output sample, rounded half up and clamped.
    #[inline(always)]
    fn out<O: Out>(&self, v: i32) -> O {
        O::from_i32(((v + (1 << (FRAC - 1))) >> FRAC).clamp(0, self.max))
    }

    /// A luma-like sample (Y, or a plane of the identity matrix) scaled.
    #[inline(always)]
    fn luma(&self, v: i32) -> i32 {
        self.y_mul * (v - self.y_off)
    }
}

/// An output sample type (u8 for 8 bits, u16 deeper); `from_i32` gets a
/// value already clamped to the depth.
trait Out: Copy + Default {
    fn from_i32(v: i32) -> Self;
}

impl Out for u8 {
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as u8
    }
}

impl Out for u16 {
    #[inline(always)]
    fn from_i32(v: i32) -> Self {
        v as u16
    }
}

/// YUV planes to interleaved RGB, in one pass into the output type. Chroma
/// is repeated over its 2 or 4 luma samples: each chroma row's R, G, B terms
/// are worked out once at luma width, so the per-pixel loop is plain
/// arithmetic over rows, without branches (what the compiler vectorises).
fn convert<T: Copy + Into<i32>, O: Out>(
    [ys, us, vs]: [Rows<T>; 3],
    w: usize,
    h: usize,
    layout: PixelLayout,
    identity: bool,
    k: &Coeffs,
) -> Result<Vec<O>> {
    let mut out = vec![O::default(); w * h * 3];
    if w == 0 {
        return Ok(out);
    }
    let (sx, sy) = match layout {
        PixelLayout::I420 => (1, 1),
        PixelLayout::I422 => (1, 0),
        _ => (0, 0),
    };
    let cw = (w + sx) >> sx;
    // Each chroma row's R, G, B terms at luma width, and at chroma width.
    let (mut r, mut g, mut b) = (vec![0i32; w], vec![0i32; w], vec![0i32; w]);
    let (mut cr, mut cg, mut cb) = (vec![0i32; cw], vec![0i32; cw], vec![0i32; cw]);
    let mut loaded = usize::MAX;
    for (y, o) in out.chunks_exact_mut(w * 3).enumerate() {
        let luma = ys.row(y, w)?;
        if layout == PixelLayout::I400 {
            for (px, &l) in o.chunks_exact_mut(3).zip(luma) {
                let v = k.out(k.luma(l.into()));
                px.copy_from_slice(&[v, v, v]);
            }
            continue;
        }
        if identity {
            // Y is green, U blue, V red, each coded like luma (H.273:
            // limited range is 16..235 for all three).
            let (u, v) = (us.row(y, w)?, vs.row(y, w)?);
            for (((px, &gy), &bu), &rv) in o.chunks_exact_mut(3).zip(luma).zip(u).zip(v) {
                px[0] = k.out(k.luma(rv.into()));
                px[1] = k.out(k.luma(gy.into()));
                px[2] = k.out(k.luma(bu.into()));
            }
            continue;
        }
        let cy = y >> sy;
        if cy != loaded {
            let (u, v) = (us.row(cy, cw)?, vs.row(cy, cw)?);
            // At chroma width (one plain loop per term), then repeated.
            let [tr, tg, tb] = match sx {
                0 => [&mut r, &mut g, &mut b],
                _ => [&mut cr, &mut cg, &mut cb],
            };
            for (t, &v) in tr.iter_mut().zip(v) {
                *t = k.rv * (v.into() - k.c_mid);
            }
            for ((t, &u), &v) in tg.iter_mut().zip(u).zip(v) {
                *t = k.gu * (u.into() - k.c_mid) + k.gv * (v.into() - k.c_mid);
            }
            for (t, &u) in tb.iter_mut().zip(u) {
                *t = k.bu * (u.into() - k.c_mid);
            }
            if sx == 1 {
                for (wide, half) in [(&mut r, &cr), (&mut g, &cg), (&mut b, &cb)] {
                    let pairs = wide.chunks_exact_mut(2);
                    for (o, &t) in pairs.zip(half.iter()) {
                        o[0] = t;
                        o[1] = t;
                    }
                    if w % 2 == 1 {
                        wide[w - 1] = half[cw - 1];
                    }
                }
            }
            loaded = cy;
        }
        let pixels = o.chunks_exact_mut(3).zip(luma).zip(&r).zip(&g).zip(&b);
        for ((((px, &l), &r), &g), &b) in pixels {
            let l = k.luma(l.into());
            px[0] = k.out(l + r);
            px[1] = k.out(l - g);
            px[2] = k.out(l + b);
        }
    }
    Ok(out)
}

/// 8-bit samples stay 8-bit; deeper ones are spread over 16 bits (in
/// place: a 12 MP picture is not copied twice).
fn to_image(w: u32, h: u32, depth: u8, rgb: Rgb, alpha: Option<Vec<u16>>) -> Result<DynamicImage> {
    let short = || bad("the picture's buffer is short");
    Ok(match (rgb, alpha) {
        (Rgb::Narrow(px), None) => {
            DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, px).ok_or_else(short)?)
        }
        (Rgb::Narrow(px), Some(a)) => {
            // Alpha was scaled to the picture's 8 bits.
            let px = px.chunks_exact(3).zip(a);
            let px = px.flat_map(|(c, a)| [c[0], c[1], c[2], a as u8]).collect();
            DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, px).ok_or_else(short)?)
        }
        (Rgb::Wide(px), alpha) => {
            let has_alpha = alpha.is_some();
            let mut px = match alpha {
                Some(a) => px
                    .chunks_exact(3)
                    .zip(a)
                    .flat_map(|(c, a)| [c[0], c[1], c[2], a])
                    .collect(),
                None => px,
            };
            px.iter_mut()
                .for_each(|v| *v = crate::heic_decode::widen(*v, depth));
            match has_alpha {
                false => {
                    DynamicImage::ImageRgb16(ImageBuffer::from_raw(w, h, px).ok_or_else(short)?)
                }
                true => {
                    DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, px).ok_or_else(short)?)
                }
            }
        }
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

    /// The float conversion this module used before the fixed-point one:
    /// the reference the integer one must stay within 1 of.
    #[allow(clippy::too_many_arguments)]
    fn float_rgb(
        [ys, us, vs]: [Rows<u16>; 3],
        w: usize,
        h: usize,
        depth: u8,
        layout: PixelLayout,
        matrix: u16,
        full: bool,
    ) -> Vec<u16> {
        let (kr, kb) = kr_kb(matrix);
        let (kr, kb) = (kr as f32, kb as f32);
        let max = ((1u32 << depth) - 1) as f32;
        let scale = (1u32 << depth.saturating_sub(8)) as f32;
        let (y_off, y_range, c_range) = match full {
            true => (0.0, max, max),
            false => (16.0 * scale, 219.0 * scale, 224.0 * scale),
        };
        let half = (1u32 << (depth - 1)) as f32;
        let (sx, sy) = match layout {
            PixelLayout::I420 => (1, 1),
            PixelLayout::I422 => (1, 0),
            _ => (0, 0),
        };
        let mono = layout == PixelLayout::I400;
        let identity = matrix == 0 && !mono;
        let (ys_k, cs_k) = (1.0 / y_range, 1.0 / c_range);
        let (rv, bu) = (2.0 * (1.0 - kr), 2.0 * (1.0 - kb));
        let kg = 1.0 / (1.0 - kr - kb);
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let l = (ys.data[y * ys.stride + x] as f32 - y_off) * ys_k;
                let i = (y >> sy) * us.stride + (x >> sx);
                let (cb, cr) = match mono {
                    true => (0.0, 0.0),
                    false => (
                        (us.data[i] as f32 - half) * cs_k,
                        (vs.data[i] as f32 - half) * cs_k,
                    ),
                };
                let (r, g, b) = if identity {
                    let at = |s: Rows<u16>| (s.data[i] as f32 - y_off) * ys_k;
                    (at(vs), l, at(us))
                } else {
                    let r = l + rv * cr;
                    let b = l + bu * cb;
                    (r, (l - kr * r - kb * b) * kg, b)
                };
                for v in [r, g, b] {
                    out.push((v.clamp(0.0, 1.0) * max + 0.5) as u16);
                }
            }
        }
        out
    }

    #[test]
    fn fixed_point_rgb_is_within_one_of_the_float_conversion() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let layouts = [
            PixelLayout::I400,
            PixelLayout::I420,
            PixelLayout::I422,
            PixelLayout::I444,
        ];
        let (mut cases, mut off_by_one, mut samples) = (0, 0usize, 0usize);
        for depth in [8u8, 10, 12] {
            for layout in layouts {
                for matrix in [0u16, 1, 2, 4, 5, 6, 7, 9, 10] {
                    if matrix == 0 && !matches!(layout, PixelLayout::I444) {
                        continue;
                    }
                    for full in [false, true] {
                        // Odd sizes: the last chroma column and row cover one luma sample.
                        let (w, h) = (1 + (next() % 40) as usize, 1 + (next() % 9) as usize);
                        let (cw, ch) = match layout {
                            PixelLayout::I420 => (w.div_ceil(2), h.div_ceil(2)),
                            PixelLayout::I422 => (w.div_ceil(2), h),
                            _ => (w, h),
                        };
                        // Strides past the width, as the decoder's are.
                        let (ystride, cstride) = (w + 3, cw + 5);
                        let mut plane = |stride: usize, rows: usize| -> Vec<u16> {
                            (0..stride * rows)
                                .map(|_| (next() % (1u64 << depth)) as u16)
                                .collect()
                        };
                        let y = plane(ystride, h);
                        let (u, v) = match layout {
                            PixelLayout::I400 => (Vec::new(), Vec::new()),
                            _ => (plane(cstride, ch), plane(cstride, ch)),
                        };
                        let stored = [(y, ystride), (u, cstride), (v, cstride)];
                        let n = if layout == PixelLayout::I400 { 1 } else { 3 };
                        let rows = views(&stored[..n]);
                        let want = float_rgb(rows, w, h, depth, layout, matrix, full);
                        let k = Coeffs::new(matrix, full, depth);
                        let identity = matrix == 0 && layout != PixelLayout::I400;
                        let got: Vec<u16> =
                            convert(rows, w, h, layout, identity, &k).expect("whole planes");
                        assert_eq!(got.len(), want.len());
                        samples += got.len();
                        for (i, (&g, &f)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                g.abs_diff(f) <= 1,
                                "{depth}-bit {layout:?} matrix {matrix} full {full}: \
                                 sample {i} is {g}, float says {f}"
                            );
                            off_by_one += (g != f) as usize;
                        }
                        if depth == 8 {
                            // The one-pass 8-bit output is the same numbers.
                            let narrow: Vec<Vec<u8>> = stored[..n]
                                .iter()
                                .map(|(p, _)| p.iter().map(|&v| v as u8).collect())
                                .collect();
                            let narrow: Vec<(Vec<u8>, usize)> = narrow
                                .into_iter()
                                .zip([ystride, cstride, cstride])
                                .collect();
                            let bytes: Vec<u8> =
                                convert(views(&narrow), w, h, layout, identity, &k)
                                    .expect("whole planes");
                            assert!(bytes.iter().zip(&got).all(|(&b, &g)| b as u16 == g));
                        }
                        cases += 1;
                    }
                }
            }
        }
        // 3 depths x (4 layouts x 8 matrices + identity at 4:4:4) x 2 ranges.
        assert_eq!(cases, 3 * (4 * 8 + 1) * 2);
        // Rounding differences exist but are rare: the two agree on the rule.
        assert!(
            off_by_one * 50 < samples,
            "{off_by_one} of {samples} samples off by one"
        );
    }

    #[test]
    fn a_short_plane_is_an_error_not_a_panic() {
        let y = vec![(vec![16u8; 10], 4)];
        let k = Coeffs::new(1, false, 8);
        let r: Result<Vec<u8>> = convert(views(&y), 4, 3, PixelLayout::I400, false, &k);
        assert!(r.is_err(), "3 rows of 4 need 12 samples, there are 10");
        let y = vec![
            (vec![16u8; 12], 4),
            (vec![128u8; 3], 2),
            (vec![128u8; 4], 2),
        ];
        let r: Result<Vec<u8>> = convert(views(&y), 4, 3, PixelLayout::I420, false, &k);
        assert!(r.is_err(), "the second chroma row of U is short");
        let r: Result<Vec<u8>> = convert(views(&y[..1]), 4, 3, PixelLayout::I400, false, &k);
        assert_eq!(r.expect("whole luma"), vec![0u8; 36], "limited-range black");
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
