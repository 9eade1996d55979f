//! Region redaction in the DCT domain: only the MCUs (16x16 or 8x8 pixel
//! groups of 8x8 blocks) that a region touches are decoded, redacted and
//! encoded again. Every other block keeps the quantized coefficients the
//! camera wrote, so the rest of the photo loses nothing (no generation
//! loss), and the cost is an entropy decode and encode, not a full decode
//! and encode, whatever the effect and its strength.
//!
//! ```text
//! coefficients ──► crop decode of the regions' MCUs ──► redact (same code as
//! the pixel path) ──► colour convert, subsample, DCT, quantize (the file's
//! own tables) ──► replace those blocks ──► entropy encode
//! ```
//!
//! Irreversibility is that of the pixel path: a touched MCU is rebuilt from
//! redacted pixels, and its original coefficients are discarded. Pixels of a
//! touched MCU outside the region are decoded and encoded once more (one
//! generation, at the source's quality).
//!
//! A fill of rectangles needs no pixel decode inside them (flat blocks)
//! and tells the band splice which blocks it made flat and which a
//! region's edge cuts ([`entropy::Freedom`]): the scan then keeps the
//! source's Huffman tables, whatever they are, and its bytes outside the
//! band (see `entropy::band`).
//!
//! Only for what this can do exactly: upright (orientation 1) 8-bit
//! Huffman-coded YCbCr or gray JPEGs whose chroma is 1x1 against a luma of
//! 1 or 2 in each direction (4:4:4, 4:2:2, 4:4:0, 4:2:0). Anything else,
//! and any error or panic inside the codec, gives `Ok(None)`: the caller
//! re-encodes pixels as before.

use crate::container::jpeg::Jpeg;
use crate::container::{Limits, RewritePolicy};
use crate::entropy::{self, Made};
use crate::error::{Error, Result};
use crate::redact::{self, Buf, Redaction};
use crate::region::{Effect, Rect, Resolved, Shape};
use image::{DynamicImage, ImageBuffer, Luma, Rgb, Rgba};
use libjpeg_turbo_rs as lt;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A redacted JPEG and the warnings (clipped regions) of the redaction.
#[derive(Debug)]
pub struct Edited {
    pub bytes: Vec<u8>,
    pub warnings: Vec<String>,
}

/// Redacts `r`'s regions in the DCT domain; `Ok(None)` when this file is
/// not one it can do (see the module docs). `bytes` must be the file
/// `jpeg` was parsed from, displayed without rotation. The ICC profile is
/// carried over when `keep_icc`; nothing else from the source's markers is.
/// The scan after a spliced band is stepped over to its last block, so
/// what the source hides after that is dropped; with `thorough`, a fill's
/// blocks take its exact colour (no length matching for a byte copy).
pub fn redact(
    bytes: &[u8],
    jpeg: &Jpeg,
    r: &Redaction,
    keep_icc: bool,
    thorough: bool,
    limits: &Limits,
) -> Result<Option<Edited>> {
    let (w, h) = (jpeg.width, jpeg.height);
    if w == 0 || h == 0 {
        return Ok(None);
    }
    // Region errors (a region wholly outside) are the caller's, as in the
    // pixel path.
    let (resolved, warnings) = redact::resolve_all(r, w, h)?;
    let edited = catch_unwind(AssertUnwindSafe(|| {
        edit(bytes, jpeg, (w, h), &resolved, r.fill, thorough, limits)
    }));
    let Ok(Some(out)) = edited else {
        return Ok(None);
    };
    // The codec's markers go through the same writer as a lossless clean.
    let policy = RewritePolicy {
        keep_icc,
        orientation: None,
    };
    let out = crate::container::jpeg::parse(&out, limits)?.rewrite_with_icc(&policy, jpeg);
    Ok(Some(Edited {
        bytes: out,
        warnings,
    }))
}

/// `--thorough`: a lossless transcode at the level of the quantized DCT
/// coefficients. The entropy-coded data is decoded and coded again with
/// the standard Huffman tables, and every marker is rebuilt, so nothing the
/// source hid in its compressed data (bytes after the last MCU, padding
/// bits, redundant codes, MCU padding blocks) can survive, while the
/// decoded pixels stay bit-exact (same coefficients, same quantization
/// tables). Baseline files take one streaming pass ([`entropy::Plan`]);
/// progressive and arithmetic-coded ones are read by libjpeg-turbo-rs and
/// come out baseline.
pub fn transcode(
    bytes: &[u8],
    jpeg: &Jpeg,
    policy: &RewritePolicy,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let fail =
        |why: String| Error::Decode(format!("cannot transcode losslessly (--thorough): {why}"));
    if jpeg.height == 0 {
        // The coefficient readers know no DNL: they would write 0 rows.
        return Err(Error::Unsupported(
            "JPEG whose height is given by a DNL segment: --thorough cannot re-code it \
             (clean it without --thorough)"
                .into(),
        ));
    }
    if let Some(plan) = entropy::Plan::new(jpeg)? {
        // One pass, no coefficient buffer; a coefficient the standard
        // tables cannot code (not 8-bit data) goes the general way.
        if let Ok(coded) = plan.transcode(jpeg) {
            return Ok(
                crate::container::jpeg::parse(&coded, limits)?.rewrite_with_icc(policy, jpeg)
            );
        }
    }
    // Progressive and multi-scan files: every scan through our decoder into
    // a coefficient buffer, then the same writer; libjpeg-turbo-rs below
    // only for what that does not take (arithmetic, 12-bit).
    if let Ok(Some(d)) = entropy::scans::decode(jpeg, limits.max_alloc) {
        if let Ok(mut coeffs) = d.coefficients() {
            keep_used_tables(&mut coeffs);
            if let Ok(coded) = entropy::write_coefficients(&coeffs, jpeg) {
                return Ok(
                    crate::container::jpeg::parse(&coded, limits)?.rewrite_with_icc(policy, jpeg)
                );
            }
        }
    }
    let blocks = (jpeg.width as u64).div_ceil(8) * (jpeg.height.max(1) as u64).div_ceil(8);
    // Up to 4 components of 128-byte blocks, plus the written stream.
    if blocks * 4 * 128 > limits.max_alloc {
        return Err(Error::TooLarge(format!(
            "{}x{} JPEG needs more memory than the limit to transcode",
            jpeg.width, jpeg.height
        )));
    }
    let coded = catch_unwind(AssertUnwindSafe(
        || -> std::result::Result<Vec<u8>, String> {
            let mut coeffs = lt::read_coefficients(bytes).map_err(|e| e.to_string())?;
            keep_used_tables(&mut coeffs);
            match entropy::write_coefficients(&coeffs, jpeg) {
                Ok(coded) => Ok(coded),
                // 12-bit data: libjpeg-turbo-rs' optimized tables.
                Err(_) => lt::write_coefficients_optimized(&coeffs).map_err(|e| e.to_string()),
            }
        },
    ))
    .map_err(|_| fail("the codec failed".into()))?
    .map_err(fail)?;
    Ok(crate::container::jpeg::parse(&coded, limits)?.rewrite_with_icc(policy, jpeg))
}

/// The luma sampling (h, v), each 1 or 2, when the file is one this module
/// edits; `None` otherwise.
fn supported(d: &lt::Decoder) -> Option<(usize, usize, bool)> {
    let f = d.header();
    if f.precision != 8 || f.is_lossless || d.is_arithmetic() {
        return None;
    }
    let gray = match (f.components.len(), d.jpeg_color_space()) {
        (1, lt::ColorSpace::Grayscale) => true,
        (3, lt::ColorSpace::YCbCr) => false,
        _ => return None,
    };
    let c0 = &f.components[0];
    let (h0, v0) = (
        c0.horizontal_sampling as usize,
        c0.vertical_sampling as usize,
    );
    if gray {
        // One component: its blocks are the MCUs.
        return ((h0, v0) == (1, 1)).then_some((1, 1, true));
    }
    let chroma_1x1 = f.components[1..]
        .iter()
        .all(|c| c.horizontal_sampling == 1 && c.vertical_sampling == 1);
    ((1..=2).contains(&h0) && (1..=2).contains(&v0) && chroma_1x1).then_some((h0, v0, false))
}

fn edit(
    bytes: &[u8],
    jpeg: &Jpeg,
    (w, h): (u32, u32),
    resolved: &[Resolved],
    fill: [u8; 3],
    thorough: bool,
    limits: &Limits,
) -> Option<Vec<u8>> {
    let probe = lt::Decoder::new(bytes).ok()?;
    let (h0, v0, gray) = supported(&probe)?;
    if (probe.header().width as u32, probe.header().height as u32) != (w, h) {
        return None;
    }
    // Coefficients held: 128 bytes a block, luma plus two chroma planes, for
    // `rows` image rows (the band pass holds only its MCU rows, the whole
    // buffer all of them); plus the decoded crop (3 bytes a pixel, twice: RGB
    // and its YCbCr planes).
    let fits = |rows: u64| {
        let luma_blocks = (w as u64).div_ceil(8) * rows.div_ceil(8) + 64;
        let chroma_blocks = if gray {
            0
        } else {
            2 * (luma_blocks / (h0 * v0) as u64 + 64)
        };
        let crop = 6 * w as u64 * rows;
        (luma_blocks + chroma_blocks) * 128 + crop <= limits.max_alloc
    };
    let geometry = (h0, v0, gray);
    // Baseline files: one pass of our decoder and encoder, holding back
    // only the MCU rows the regions touch (and one each side: the chroma
    // upsampler's context); others: libjpeg-turbo-rs' whole buffer.
    if let Some(plan) = entropy::Plan::new(jpeg).ok()? {
        let mh = 8 * v0 as u32;
        let top = resolved.iter().map(|r| r.rect.y).min()? / mh;
        let bottom = resolved
            .iter()
            .map(|r| r.rect.y + r.rect.h)
            .max()?
            .div_ceil(mh);
        let rows = top.saturating_sub(1) as usize..bottom as usize + 1;
        if !fits(rows.len() as u64 * mh as u64) {
            return None;
        }
        let oy = rows.start as u32 * mh;
        // The regions in the band's coordinates.
        let moved: Vec<Resolved> = resolved
            .iter()
            .map(|r| Resolved {
                rect: Rect::at(r.rect.x, r.rect.y - oy).of_size(r.rect.w, r.rect.h),
                ..*r
            })
            .collect();
        let edit = |band: &mut lt::JpegCoefficients, masks: &mut Vec<Vec<u64>>| {
            let size = (w, band.height as u32);
            let mut m = Some(std::mem::take(masks));
            let done = edit_coefficients(band, &mut m, geometry, size, &moved, fill);
            *masks = m.unwrap_or_default();
            done.ok_or_else(|| Error::Decode("the region edit does not fit this file".into()))
        };
        let plain = |band: &mut lt::JpegCoefficients, masks: &mut Vec<Vec<u64>>| {
            edit(band, masks).map(drop)
        };
        // The source's tables and bits outside the band; where they cannot
        // code the band (or anything is unexpected), everything recoded. A
        // fill settles its blocks for any tables; other effects need tables
        // that code every symbol, as does `--thorough` (as before).
        if (thorough || !fills_only(resolved)) && !plan.tables_code_every_symbol() {
            return plan.transcode_band(rows, jpeg, plain).ok();
        }
        let splice = |band: &mut lt::JpegCoefficients, masks: &mut Vec<Vec<u64>>| {
            edit(band, masks).map(|f| f.filter(|_| !thorough))
        };
        return match plan.splice_band(rows.clone(), jpeg, !thorough, splice) {
            Ok(entropy::Spliced::Done(out)) => Some(out),
            // Edited once: the fallback takes the band as it is.
            Ok(entropy::Spliced::Edited(done, done_masks)) => plan
                .transcode_band(rows, jpeg, move |band, masks| {
                    *band = done;
                    *masks = done_masks;
                    Ok(())
                })
                .ok(),
            Err(_) => plan.transcode_band(rows, jpeg, plain).ok(),
        };
    }
    if !fits(h as u64) {
        return None;
    }
    let mut coeffs = lt::read_coefficients(bytes).ok()?;
    let mut masks = None;
    edit_coefficients(&mut coeffs, &mut masks, geometry, (w, h), resolved, fill)?;
    keep_used_tables(&mut coeffs);
    entropy::write_coefficients_masked(&coeffs, masks.as_deref(), jpeg).ok()
}

/// Redacts `resolved` (in the coordinates of `coeffs`, a `w` x `h`
/// picture, or a band of whole MCU rows of one) in the quantized
/// coefficients: the touched MCUs are decoded, redacted and coded again;
/// `masks`, when given, follow the blocks that change. A fill also says
/// which blocks it made flat or edited ([`entropy::Freedom`]).
fn edit_coefficients(
    coeffs: &mut lt::JpegCoefficients,
    masks: &mut Option<Vec<Vec<u64>>>,
    (h0, v0, gray): (usize, usize, bool),
    (w, h): (u32, u32),
    resolved: &[Resolved],
    fill: [u8; 3],
) -> Option<Option<entropy::Freedom>> {
    let (mw, mh) = (8 * h0 as u32, 8 * v0 as u32);
    check_layout(coeffs, h0, v0, gray)?;

    // The MCU-aligned box around every region.
    let x0 = resolved.iter().map(|r| r.rect.x).min()? / mw * mw;
    let y0 = resolved.iter().map(|r| r.rect.y).min()? / mh * mh;
    let x1 = resolved.iter().map(|r| r.rect.x + r.rect.w).max()?;
    let y1 = resolved.iter().map(|r| r.rect.y + r.rect.h).max()?;
    let x1 = x1.div_ceil(mw).saturating_mul(mw).min(w);
    let y1 = y1.div_ceil(mh).saturating_mul(mh).min(h);
    let (cw, ch) = (x1 - x0, y1 - y0);
    let one = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(
        1,
        1,
        Rgba([fill[0], fill[1], fill[2], 255]),
    ));
    let tables: Vec<[u16; 64]> = coeffs
        .components
        .iter()
        .map(|c| {
            coeffs
                .quant_tables
                .get(c.quant_table_index as usize)
                .copied()
        })
        .collect::<Option<_>>()?;
    if fills_only(resolved) {
        let colour = if gray {
            vec![one.to_luma8().get_pixel(0, 0).0[0]]
        } else {
            one.to_rgb8().get_pixel(0, 0).0.to_vec()
        };
        let geometry = ((h0, v0, gray), (w, h), (x0, y0, x1, y1));
        let freedom = fill_rects(
            coeffs, masks, geometry.0, geometry.1, geometry.2, resolved, &colour, &tables,
        )?;
        return Some(Some(freedom));
    }

    let data = decode_crop(coeffs, (h0, v0), gray, (w, h), (x0, y0, x1, y1))?;
    let moved: Vec<Resolved> = resolved
        .iter()
        .map(|r| Resolved {
            rect: Rect::at(r.rect.x - x0, r.rect.y - y0).of_size(r.rect.w, r.rect.h),
            ..*r
        })
        .collect();
    let touched = |mx: u32, my: u32| {
        let m = Rect::at(mx * mw, my * mh).of_size(mw, mh);
        resolved.iter().any(|r| m.overlaps(&r.rect))
    };
    let mcus = (x0 / mw..x1.div_ceil(mw), y0 / mh..y1.div_ceil(mh));
    let mut data = data;
    if gray {
        let mut buf: Buf<Luma<u8>> = ImageBuffer::from_raw(cw, ch, data)?;
        let colour = *one.to_luma8().get_pixel(0, 0);
        for r in &moved {
            redact::apply_one(&mut buf, r, colour);
        }
        data = buf.into_raw();
    } else {
        let mut buf: Buf<Rgb<u8>> = ImageBuffer::from_raw(cw, ch, data)?;
        let colour = *one.to_rgb8().get_pixel(0, 0);
        for r in &moved {
            redact::apply_one(&mut buf, r, colour);
        }
        data = buf.into_raw();
    }
    // Whole MCUs, the image's right and bottom edges repeated as libjpeg pads.
    let (pw, ph) = (
        cw.div_ceil(mw) as usize * mw as usize,
        ch.div_ceil(mh) as usize * mh as usize,
    );
    let planes = ycc_planes(&data, (cw as usize, ch as usize), gray, (pw, ph));
    for my in mcus.1.clone() {
        for mx in mcus.0.clone() {
            if !touched(mx, my) {
                continue;
            }
            let origin = ((mx * mw - x0) as usize, (my * mh - y0) as usize);
            for j in 0..v0 {
                for i in 0..h0 {
                    let o = (origin.0 + 8 * i, origin.1 + 8 * j);
                    let block = plane_block(&planes[0], pw, o, (1, 1));
                    let (bx, by) = (mx as usize * h0 + i, my as usize * v0 + j);
                    store(&mut coeffs.components[0], bx, by, &block, &tables[0])?;
                    remask(masks, coeffs, 0, bx, by);
                }
            }
            for c in 1..planes.len() {
                let block = plane_block(&planes[c], pw, origin, (h0, v0));
                let (bx, by) = (mx as usize, my as usize);
                store(&mut coeffs.components[c], bx, by, &block, &tables[c])?;
                remask(masks, coeffs, c, bx, by);
            }
        }
    }
    Some(None)
}

/// Every region a rectangle filled with the colour: the blocks it covers
/// are flat, which [`fill_rects`] does without a pixel decode.
fn fills_only(resolved: &[Resolved]) -> bool {
    resolved
        .iter()
        .all(|r| r.effect == Effect::Fill && r.shape == Shape::Rect)
}

/// Block (`bx`, `by`) of component `c` changed: its nonzero mask again.
fn remask(
    masks: &mut Option<Vec<Vec<u64>>>,
    c: &lt::JpegCoefficients,
    ci: usize,
    bx: usize,
    by: usize,
) {
    let comp = &c.components[ci];
    let i = by * comp.blocks_x + bx;
    let m = masks.as_mut().and_then(|m| m.get_mut(ci)?.get_mut(i));
    if let (Some(m), Some(b)) = (m, comp.blocks.get(i)) {
        *m = entropy::nonzero_mask(b);
    }
}

/// Drops the quantization tables no component uses (the writer emits every
/// table it holds, and an unused one can carry anything), renumbering the
/// components' references.
pub(crate) fn keep_used_tables(c: &mut lt::JpegCoefficients) {
    let mut kept: Vec<[u16; 64]> = Vec::new();
    let mut map = [None; 4];
    for comp in &mut c.components {
        let i = comp.quant_table_index as usize;
        let (Some(&table), Some(slot)) = (c.quant_tables.get(i), map.get_mut(i)) else {
            continue;
        };
        comp.quant_table_index = *slot.get_or_insert_with(|| {
            kept.push(table);
            kept.len() as u8 - 1
        });
    }
    c.quant_tables = kept;
}

/// The coefficient planes are laid out as this module assumes.
fn check_layout(c: &lt::JpegCoefficients, h0: usize, v0: usize, gray: bool) -> Option<()> {
    if c.effective_precision() != 8 || c.components.len() != if gray { 1 } else { 3 } {
        return None;
    }
    let (w, h) = (c.width as usize, c.height as usize);
    for (i, comp) in c.components.iter().enumerate() {
        let (sh, sv) = if i == 0 && !gray { (h0, v0) } else { (1, 1) };
        let (fh, fv) = if gray { (1, 1) } else { (h0, v0) };
        // Blocks needed to cover the component, at least.
        let need_x = (w * sh).div_ceil(8 * fh);
        let need_y = (h * sv).div_ceil(8 * fv);
        if (comp.h_sampling as usize, comp.v_sampling as usize) != (sh, sv)
            || comp.blocks_x < need_x
            || comp.blocks_y < need_y
            || comp.blocks.len() < comp.blocks_x * comp.blocks_y
        {
            return None;
        }
    }
    Some(())
}

/// The Y, Cb, Cr planes (or the one gray plane) of `cw` x `ch` pixels,
/// rounded to 8 bits as libjpeg converts, padded to `pw` x `ph` by
/// repeating the last column and row.
fn ycc_planes(
    data: &[u8],
    (cw, ch): (usize, usize),
    gray: bool,
    (pw, ph): (usize, usize),
) -> Vec<Vec<u8>> {
    let n = if gray { 1 } else { 3 };
    let mut planes = vec![vec![0u8; pw * ph]; n];
    for y in 0..ph {
        let sy = y.min(ch - 1);
        for x in 0..pw {
            let sx = x.min(cw - 1);
            let i = y * pw + x;
            if gray {
                planes[0][i] = data[sy * cw + sx];
                continue;
            }
            let p = &data[(sy * cw + sx) * 3..][..3];
            let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
            let px = [
                0.299 * r + 0.587 * g + 0.114 * b,
                -0.168_736 * r - 0.331_264 * g + 0.5 * b + 128.0,
                0.5 * r - 0.418_688 * g - 0.081_312 * b + 128.0,
            ];
            for (plane, v) in planes.iter_mut().zip(px) {
                plane[i] = (v + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    planes
}

/// One 8x8 block of level-shifted samples from a `pw`-wide plane, from
/// `origin` on, each the mean of an `sx` x `sy` cell (chroma subsampling).
fn plane_block(
    plane: &[u8],
    pw: usize,
    origin: (usize, usize),
    (sx, sy): (usize, usize),
) -> [f32; 64] {
    let mut out = [0f32; 64];
    if (sx, sy) == (1, 1) {
        for (y, row) in out.chunks_exact_mut(8).enumerate() {
            let at = (origin.1 + y) * pw + origin.0;
            for (o, &v) in row.iter_mut().zip(&plane[at..at + 8]) {
                *o = v as f32 - 128.0;
            }
        }
        return out;
    }
    let n = (sx * sy) as f32;
    for y in 0..8 {
        for x in 0..8 {
            let mut sum = 0u32;
            for dy in 0..sy {
                let row = (origin.1 + y * sy + dy) * pw + origin.0 + x * sx;
                for dx in 0..sx {
                    sum += plane[row + dx] as u32;
                }
            }
            out[y * 8 + x] = sum as f32 / n - 128.0;
        }
    }
    out
}

/// `NATURAL[k]`: the row-major position of the k-th coefficient in zigzag order.
const NATURAL: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Forward DCT (JPEG's scaling), quantized with `q` (row-major), written in
/// zigzag order as block (`bx`, `by`) of `comp`.
fn store(
    comp: &mut lt::ComponentCoefficients,
    bx: usize,
    by: usize,
    samples: &[f32; 64],
    q: &[u16; 64],
) -> Option<()> {
    put(comp, bx, by, &quantize(samples, q))
}

/// Block (`bx`, `by`) of `comp` becomes `block`.
fn put(
    comp: &mut lt::ComponentCoefficients,
    bx: usize,
    by: usize,
    block: &[i16; 64],
) -> Option<()> {
    if bx >= comp.blocks_x || by >= comp.blocks_y {
        return Some(()); // past the padded plane: nothing is coded there
    }
    *comp.blocks.get_mut(by * comp.blocks_x + bx)? = *block;
    Some(())
}

/// Forward DCT of level-shifted samples, quantized with `q` (row-major),
/// in zigzag order.
fn quantize(samples: &[f32; 64], q: &[u16; 64]) -> [i16; 64] {
    let coefs = fdct(samples);
    let mut block = [0i16; 64];
    for (k, &n) in NATURAL.iter().enumerate() {
        let v = coefs[n] / q[n].max(1) as f32;
        // Half away from zero, as libjpeg; `as` truncates toward zero.
        let v = if v < 0.0 { v - 0.5 } else { v + 0.5 };
        let limit = if k == 0 { 2047.0 } else { 1023.0 };
        block[k] = v.clamp(-limit, limit) as i16;
    }
    block
}

/// Rectangular fill regions, the common case, at the cost of their edges
/// only: an MCU wholly inside a region is the fill colour, so its blocks
/// are a constant (DC only) computed once; an MCU the region's edge cuts
/// is decoded (from the source's coefficients, with its chroma context),
/// filled where the region covers it, and coded again, as the general path does.
#[allow(clippy::too_many_arguments)]
fn fill_rects(
    coeffs: &mut lt::JpegCoefficients,
    masks: &mut Option<Vec<Vec<u64>>>,
    (h0, v0, gray): (usize, usize, bool),
    (w, h): (u32, u32),
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    resolved: &[Resolved],
    colour: &[u8],
    tables: &[[u16; 64]],
) -> Option<entropy::Freedom> {
    let (mw, mh) = (8 * h0 as u32, 8 * v0 as u32);
    let level = ycc_planes(colour, (1, 1), gray, (1, 1));
    let flat: Vec<[i16; 64]> = level
        .iter()
        .zip(tables)
        .map(|(p, q)| quantize(&[p[0] as f32 - 128.0; 64], q))
        .collect();
    let inside = |x: u32, y: u32| {
        resolved.iter().any(|r| {
            let r = r.rect;
            x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h
        })
    };
    // (component, block x, block y, coefficients, how it was made)
    let mut edits: Vec<(usize, usize, usize, [i16; 64], Made)> = Vec::new();
    // A block of pixels `(x, y, w, h)`: flat when a region covers it and it
    // codes the fill, an edge when a region cuts it.
    let made = |(x, y, bw, bh): (u32, u32, u32, u32), c: usize, block: &[i16; 64]| {
        let (x1, y1) = ((x + bw).min(w), (y + bh).min(h));
        let covers = resolved.iter().any(|r| {
            let r = r.rect;
            r.x <= x && r.y <= y && r.x + r.w >= x1 && r.y + r.h >= y1
        });
        let b = Rect::at(x, y).of_size(bw, bh);
        if covers && *block == flat[c] {
            Made::Flat
        } else if resolved.iter().any(|r| b.overlaps(&r.rect)) {
            Made::Edge
        } else {
            Made::Coded
        }
    };
    let n = if gray { 1 } else { 3 };
    for my in y0 / mh..y1.div_ceil(mh) {
        for mx in x0 / mw..x1.div_ceil(mw) {
            let (bx0, by0) = (mx * mw, my * mh);
            let (bx1, by1) = ((bx0 + mw).min(w), (by0 + mh).min(h));
            let m = Rect::at(bx0, by0).of_size(mw, mh);
            if !resolved.iter().any(|r| m.overlaps(&r.rect)) {
                continue;
            }
            let covered = resolved.iter().any(|r| {
                let r = r.rect;
                r.x <= bx0 && r.y <= by0 && r.x + r.w >= bx1 && r.y + r.h >= by1
            });
            let (mx, my) = (mx as usize, my as usize);
            if covered {
                for (c, block) in flat.iter().enumerate() {
                    let (bh, bv) = if c == 0 { (h0, v0) } else { (1, 1) };
                    for j in 0..bv {
                        for i in 0..bh {
                            edits.push((c, mx * bh + i, my * bv + j, *block, Made::Flat));
                        }
                    }
                }
                continue;
            }
            let mut data = decode_crop(coeffs, (h0, v0), gray, (w, h), (bx0, by0, bx1, by1))?;
            let cw = (bx1 - bx0) as usize;
            for (i, px) in data.chunks_exact_mut(n).enumerate() {
                if inside(bx0 + (i % cw) as u32, by0 + (i / cw) as u32) {
                    px.copy_from_slice(colour);
                }
            }
            let pw = mw as usize;
            let planes = ycc_planes(&data, (cw, (by1 - by0) as usize), gray, (pw, mh as usize));
            for j in 0..v0 {
                for i in 0..h0 {
                    let block = plane_block(&planes[0], pw, (8 * i, 8 * j), (1, 1));
                    let block = quantize(&block, &tables[0]);
                    let at = (bx0 + 8 * i as u32, by0 + 8 * j as u32, 8, 8);
                    let how = made(at, 0, &block);
                    edits.push((0, mx * h0 + i, my * v0 + j, block, how));
                }
            }
            for c in 1..planes.len() {
                let block = plane_block(&planes[c], pw, (0, 0), (h0, v0));
                let block = quantize(&block, &tables[c]);
                let how = made((bx0, by0, mw, mh), c, &block);
                edits.push((c, mx, my, block, how));
            }
        }
    }
    let mut freedom = entropy::Freedom {
        made: coeffs
            .components
            .iter()
            .map(|c| vec![Made::Kept; c.blocks.len()])
            .collect(),
        fill: flat.iter().map(|b| b[0]).collect(),
    };
    for (c, bx, by, block, how) in edits {
        put(&mut coeffs.components[c], bx, by, &block)?;
        remask(masks, coeffs, c, bx, by);
        let comp = &coeffs.components[c];
        if bx < comp.blocks_x && by < comp.blocks_y {
            *freedom.made[c].get_mut(by * comp.blocks_x + bx)? = how;
        }
    }
    Some(freedom)
}

/// F(v, u) = 1/4 C(u) C(v) sum f(y, x) cos((2x+1)u pi/16) cos((2y+1)v pi/16),
/// row-major (v the row).
/// `COS[u][x]` = C(u)/2 cos((2x+1)u pi/16), C(0) = 1/sqrt(2), C(u) = 1.
fn cos_table() -> &'static [[f32; 8]; 8] {
    static COS: std::sync::OnceLock<[[f32; 8]; 8]> = std::sync::OnceLock::new();
    COS.get_or_init(|| {
        let mut c = [[0f32; 8]; 8];
        for (u, row) in c.iter_mut().enumerate() {
            let cu = if u == 0 {
                std::f32::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            for (x, v) in row.iter_mut().enumerate() {
                let angle = (2 * x + 1) as f32 * u as f32 * std::f32::consts::PI / 16.0;
                *v = 0.5 * cu * angle.cos();
            }
        }
        c
    })
}

/// `COS_T[x][u]` = `COS[u][x]`: the inner loops below run over 8
/// contiguous outputs, which the compiler turns into vector code.
fn cos_t() -> &'static [[f32; 8]; 8] {
    static T: std::sync::OnceLock<[[f32; 8]; 8]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let c = cos_table();
        let mut t = [[0f32; 8]; 8];
        for (u, row) in c.iter().enumerate() {
            for (x, &v) in row.iter().enumerate() {
                t[x][u] = v;
            }
        }
        t
    })
}

/// out = M * f (8x8 row-major, in place of a matrix product per row): for
/// each row y, `out[y][..] = sum_x f[y][x] * m[x][..]`.
#[inline(always)]
fn rows_times(f: &[f32; 64], m: &[[f32; 8]; 8]) -> [f32; 64] {
    let mut out = [0f32; 64];
    for y in 0..8 {
        let mut acc = [0f32; 8];
        for x in 0..8 {
            let fx = f[y * 8 + x];
            for u in 0..8 {
                acc[u] += fx * m[x][u];
            }
        }
        out[y * 8..y * 8 + 8].copy_from_slice(&acc);
    }
    out
}

/// The transpose of an 8x8 block.
#[inline(always)]
fn transpose(f: &[f32; 64]) -> [f32; 64] {
    let mut t = [0f32; 64];
    for y in 0..8 {
        for x in 0..8 {
            t[x * 8 + y] = f[y * 8 + x];
        }
    }
    t
}

/// F(v, u) = 1/4 C(u) C(v) sum f(y, x) cos((2x+1)u pi/16) cos((2y+1)v pi/16),
/// row-major (v the row).
fn fdct(f: &[f32; 64]) -> [f32; 64] {
    let ct = cos_t();
    // Rows (tmp[y][u]), then columns on the transpose (out^T[u][v]).
    let tmp = rows_times(f, ct);
    transpose(&rows_times(&transpose(&tmp), ct))
}

/// The inverse of [`fdct`] on a dequantized block (row-major), plus the
/// level shift, rounded to 8-bit samples.
fn idct(f: &[f32; 64]) -> [u8; 64] {
    let c = cos_table();
    // tmp[v][x] = sum_u f[v][u] c[u][x]; then the columns likewise.
    let tmp = rows_times(f, c);
    let t = rows_times(&transpose(&tmp), c);
    let mut out = [0u8; 64];
    for y in 0..8 {
        for x in 0..8 {
            out[y * 8 + x] = (t[x * 8 + y] + 128.5).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// One component's samples over a rectangle of its plane, decoded from the
/// coefficients; reads past the component's real size repeat its edge, as
/// libjpeg's upsampler sees it.
struct Plane {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    /// The component's real size in samples.
    full: (usize, usize),
    data: Vec<u8>,
}

impl Plane {
    fn decode(
        comp: &lt::ComponentCoefficients,
        q: &[u16; 64],
        full: (usize, usize),
        (x0, y0, x1, y1): (usize, usize, usize, usize),
    ) -> Option<Plane> {
        let (x0, y0) = (x0.min(full.0 - 1), y0.min(full.1 - 1));
        let (x1, y1) = (x1.min(full.0), y1.min(full.1));
        let (bx0, by0) = (x0 / 8, y0 / 8);
        let (bx1, by1) = (x1.div_ceil(8), y1.div_ceil(8));
        let (w, h) = ((bx1 - bx0) * 8, (by1 - by0) * 8);
        let mut data = vec![0u8; w * h];
        let mut deq = [0f32; 64];
        for by in by0..by1 {
            for bx in bx0..bx1 {
                let block = comp.blocks.get(by * comp.blocks_x + bx)?;
                for (k, &n) in NATURAL.iter().enumerate() {
                    deq[n] = block[k] as f32 * q[n] as f32;
                }
                let px = idct(&deq);
                let (ox, oy) = ((bx - bx0) * 8, (by - by0) * 8);
                for r in 0..8 {
                    let row = (oy + r) * w + ox;
                    data[row..row + 8].copy_from_slice(&px[r * 8..r * 8 + 8]);
                }
            }
        }
        Some(Plane {
            x: bx0 * 8,
            y: by0 * 8,
            w,
            h,
            full,
            data,
        })
    }

    /// The samples of `x0..x0 + w`, `y0..y0 + h` (plane coordinates, which
    /// may reach past the plane: edges repeat), row-major.
    fn window(&self, x0: isize, y0: isize, w: usize, h: usize) -> Vec<i32> {
        let clamp_x = |x: isize| {
            let x = x.clamp(0, self.full.0 as isize - 1) as usize;
            x.clamp(self.x, self.x + self.w - 1) - self.x
        };
        let cols: Vec<usize> = (0..w).map(|i| clamp_x(x0 + i as isize)).collect();
        let mut out = Vec::with_capacity(w * h);
        for j in 0..h {
            let y = (y0 + j as isize).clamp(0, self.full.1 as isize - 1) as usize;
            let row = &self.data[(y.clamp(self.y, self.y + self.h - 1) - self.y) * self.w..];
            out.extend(cols.iter().map(|&c| row[c] as i32));
        }
        out
    }
}

/// libjpeg's YCbCr to RGB tables (jdcolor.c): red from Cr, blue from Cb,
/// and green's two terms in 16-bit fixed point.
struct ColourTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl ColourTables {
    fn new() -> Self {
        const ONE: f64 = 65536.0;
        let fix = |v: f64| (v * ONE + 0.5) as i32;
        let mut t = ColourTables {
            cr_r: [0; 256],
            cb_b: [0; 256],
            cr_g: [0; 256],
            cb_g: [0; 256],
        };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (fix(1.402) * x + (1 << 15)) >> 16;
            t.cb_b[i] = (fix(1.772) * x + (1 << 15)) >> 16;
            t.cr_g[i] = -fix(0.714_14) * x;
            t.cb_g[i] = -fix(0.344_14) * x + (1 << 15);
        }
        t
    }
}

/// The pixels (RGB, or gray) of the MCU-aligned crop `x0..x1`, `y0..y1` of
/// a `w` x `h` image, decoded from its coefficients as libjpeg would, with
/// its "fancy" (triangle) chroma upsampling and colour tables (within a
/// level or two: a float rather than integer inverse DCT).
fn decode_crop(
    c: &lt::JpegCoefficients,
    (h0, v0): (usize, usize),
    gray: bool,
    (w, h): (u32, u32),
    (x0, y0, x1, y1): (u32, u32, u32, u32),
) -> Option<Vec<u8>> {
    let (w, h) = (w as usize, h as usize);
    let (x0, y0, x1, y1) = (x0 as usize, y0 as usize, x1 as usize, y1 as usize);
    let (cw, ch) = (x1 - x0, y1 - y0);
    let table = |i: usize| {
        c.quant_tables
            .get(c.components[i].quant_table_index as usize)
    };
    let luma = Plane::decode(&c.components[0], table(0)?, (w, h), (x0, y0, x1, y1))?;
    let luma = luma.window(x0 as isize, y0 as isize, cw, ch);
    if gray {
        return Some(luma.into_iter().map(|v| v as u8).collect());
    }
    // Chroma, with one sample of context around for the upsampler.
    let full = (w.div_ceil(h0), h.div_ceil(v0));
    let (cx0, cy0) = (x0 / h0, y0 / v0);
    let (ww, wh) = (x1.div_ceil(h0) - cx0 + 2, y1.div_ceil(v0) - cy0 + 2);
    let area = (
        cx0.saturating_sub(1),
        cy0.saturating_sub(1),
        cx0 + ww,
        cy0 + wh,
    );
    let window = |i: usize| -> Option<Vec<i32>> {
        let plane = Plane::decode(&c.components[i], table(i)?, full, area)?;
        Some(plane.window(cx0 as isize - 1, cy0 as isize - 1, ww, wh))
    };
    let (cb, cr) = (window(1)?, window(2)?);
    let t = ColourTables::new();
    // Chroma at full resolution for pixel (x, y), from a window whose
    // sample (1, 1) is chroma sample (cx0, cy0).
    let upsample = |win: &[i32], x: usize, y: usize| -> i32 {
        let (i, j) = (x / h0 - cx0 + 1, y / v0 - cy0 + 1);
        let at = |i: usize, j: usize| win[j * ww + i];
        let (ni, nj) = (
            if x & 1 == 0 { i - 1 } else { i + 1 },
            if y & 1 == 0 { j - 1 } else { j + 1 },
        );
        match (h0, v0) {
            (2, 2) => {
                let col = |i| 3 * at(i, j) + at(i, nj);
                let bias = if x & 1 == 0 { 8 } else { 7 };
                (3 * col(i) + col(ni) + bias) >> 4
            }
            (2, 1) => (3 * at(i, j) + at(ni, j) + if x & 1 == 0 { 1 } else { 2 }) >> 2,
            (1, 2) => (3 * at(i, j) + at(i, nj) + if y & 1 == 0 { 1 } else { 2 }) >> 2,
            _ => at(i, j),
        }
    };
    let mut out = Vec::with_capacity(cw * ch * 3);
    for y in y0..y1 {
        for x in x0..x1 {
            let l = luma[(y - y0) * cw + (x - x0)];
            let b = upsample(&cb, x, y).clamp(0, 255) as usize;
            let r = upsample(&cr, x, y).clamp(0, 255) as usize;
            let g = l + ((t.cb_g[b] + t.cr_g[r]) >> 16);
            for v in [l + t.cr_r[r], g, l + t.cb_b[b]] {
                out.push(v.clamp(0, 255) as u8);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::jpeg;
    use crate::pixels::{self, EncodeOptions};
    use crate::region::{Effect, RegionSpec};
    use crate::test_util::{fixture, psnr};
    use crate::Format;
    use image::{DynamicImage, RgbImage};

    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
            Rgb([
                (128.0 + 100.0 * (fx * 9.0).sin() * (fy * 5.0).cos()) as u8,
                (40.0 + 180.0 * fy + 10.0 * ((x / 3 + y) % 5) as f64) as u8,
                (200.0 - 150.0 * fx * fy) as u8,
            ])
        })
    }

    fn jpeg_444(img: &RgbImage, quality: u8) -> Vec<u8> {
        lt::Encoder::new(
            img.as_raw(),
            img.width() as usize,
            img.height() as usize,
            lt::PixelFormat::Rgb,
        )
        .quality(quality)
        .subsampling(lt::Subsampling::S444)
        .encode()
        .unwrap()
    }

    /// Not optimised: the standard tables, as most cameras write them (the
    /// region edit's splice takes only such tables).
    fn jpeg_annex_k(img: &RgbImage, s: lt::Subsampling) -> Vec<u8> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        lt::Encoder::new(img.as_raw(), w, h, lt::PixelFormat::Rgb)
            .quality(90)
            .subsampling(s)
            .optimize_huffman(false)
            .encode()
            .unwrap()
    }

    fn jpeg_420(img: &RgbImage, quality: u8) -> Vec<u8> {
        let opts = EncodeOptions {
            quality,
            ..EncodeOptions::default()
        };
        pixels::encode(&DynamicImage::ImageRgb8(img.clone()), Format::Jpeg, &opts).unwrap()
    }

    fn run(bytes: &[u8], spec: &str, effect: Effect) -> Option<Edited> {
        let j = jpeg::parse(bytes, &Limits::default()).unwrap();
        let regions: Vec<RegionSpec> = vec![spec.parse().unwrap()];
        let r = Redaction {
            regions: &regions,
            default_effect: effect,
            fill: [10, 200, 30],
        };
        redact(bytes, &j, &r, true, false, &Limits::default()).unwrap()
    }

    /// What the pixel path gives before its re-encode: decode, redact.
    fn pixel_path(bytes: &[u8], spec: &str, effect: Effect) -> RgbImage {
        let mut d = pixels::decode(bytes, Format::Jpeg, &Limits::default()).unwrap();
        let regions: Vec<RegionSpec> = vec![spec.parse().unwrap()];
        let r = Redaction {
            regions: &regions,
            default_effect: effect,
            fill: [10, 200, 30],
        };
        redact::apply(&mut d.image, &r).unwrap();
        d.image.to_rgb8()
    }

    fn decode(bytes: &[u8]) -> RgbImage {
        pixels::decode(bytes, Format::Jpeg, &Limits::default())
            .unwrap()
            .image
            .to_rgb8()
    }

    #[test]
    fn only_the_touched_mcus_change() {
        for (bytes, mcu) in [
            (jpeg_420(&photo(333, 250), 90), 16),
            (jpeg_444(&photo(333, 250), 90), 8),
        ] {
            let spec = "100,60,90,70";
            let out = run(&bytes, spec, Effect::Fill).expect("supported").bytes;
            let (a, b) = (
                lt::read_coefficients(&bytes).unwrap(),
                lt::read_coefficients(&out).unwrap(),
            );
            assert_eq!(a.quant_tables, b.quant_tables);
            let (h0, v0) = (
                a.components[0].h_sampling as usize,
                a.components[0].v_sampling as usize,
            );
            let mut changed = 0;
            for (ci, (ca, cb)) in a.components.iter().zip(&b.components).enumerate() {
                // Pixel size of one block of this component.
                let (bw, bh) = if ci == 0 { (8, 8) } else { (8 * h0, 8 * v0) };
                for by in 0..ca.blocks_y.min(cb.blocks_y) {
                    for bx in 0..ca.blocks_x.min(cb.blocks_x) {
                        let (px, py) = (bx * bw, by * bh);
                        // The MCU this block is in.
                        let (mx, my) = (px / mcu * mcu, py / mcu * mcu);
                        let inside = mx + mcu > 100 && mx < 190 && my + mcu > 60 && my < 130;
                        let (x, y) = (
                            &ca.blocks[by * ca.blocks_x + bx],
                            &cb.blocks[by * cb.blocks_x + bx],
                        );
                        if !inside {
                            assert_eq!(x, y, "component {ci} block {bx},{by} changed");
                        } else if x != y {
                            changed += 1;
                        }
                    }
                }
            }
            assert!(changed > 50, "only {changed} blocks changed");
            // The region is the fill colour.
            let img = decode(&out);
            for y in 64..126 {
                for x in 104..186 {
                    let p = img.get_pixel(x, y).0;
                    let near = p
                        .iter()
                        .zip([10, 200, 30])
                        .all(|(&a, b)| a.abs_diff(b) <= 8);
                    assert!(near, "{x},{y}: {p:?}");
                }
            }
        }
    }

    #[test]
    fn looks_like_the_pixel_path_for_every_effect_and_shape() {
        let bytes = jpeg_420(&photo(320, 240), 92);
        for effect in [Effect::Fill, Effect::Pixelate, Effect::Blur] {
            for spec in ["40,30,200,150", "ellipse:17,9,250,201", "0,0,320,240"] {
                let out = run(&bytes, spec, effect).expect("supported").bytes;
                let expected = pixel_path(&bytes, spec, effect);
                let p = psnr(&decode(&out), &expected);
                // The pixel path's own output: the same edit, encoded whole.
                let whole = pixels::encode(
                    &DynamicImage::ImageRgb8(expected.clone()),
                    Format::Jpeg,
                    &EncodeOptions {
                        quality: 92,
                        icc: None,
                        ..EncodeOptions::default()
                    },
                )
                .unwrap();
                let reference = psnr(&decode(&whole), &expected);
                eprintln!("{effect:?} {spec}: {p:.1} dB (pixel path {reference:.1} dB)");
                assert!(p > reference - 1.0, "{effect:?} {spec}: PSNR {p:.1} dB");
            }
        }
    }

    #[test]
    fn several_regions_and_clipping() {
        let bytes = jpeg_420(&photo(320, 240), 92);
        let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
        let regions: Vec<RegionSpec> = ["5,5,30,30", "250,180,100,100:pixelate"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let r = Redaction {
            regions: &regions,
            default_effect: Effect::Fill,
            fill: [0, 0, 0],
        };
        let e = redact(&bytes, &j, &r, false, false, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
        let mut expected = pixels::decode(&bytes, Format::Jpeg, &Limits::default()).unwrap();
        redact::apply(&mut expected.image, &r).unwrap();
        let p = psnr(&decode(&e.bytes), &expected.image.to_rgb8());
        assert!(p > 36.0, "PSNR {p:.1} dB");
        // A region wholly outside is an error, as in the pixel path.
        let outside: Vec<RegionSpec> = vec!["400,400,10,10".parse().unwrap()];
        let r = Redaction {
            regions: &outside,
            ..r
        };
        assert!(redact(&bytes, &j, &r, false, false, &Limits::default()).is_err());
    }

    #[test]
    fn fixtures_gray_progressive_restart_icc_and_cmyk() {
        for name in [
            "jpeg_gray.jpg",
            "jpeg_progressive.jpg",
            "jpeg_restart.jpg",
            "jpeg_icc.jpg",
            "jpeg_full.jpg",
        ] {
            let bytes = fixture(&format!("dirty/{name}"));
            let spec = "20,20,50,40";
            let out = run(&bytes, spec, Effect::Pixelate)
                .unwrap_or_else(|| panic!("{name}: not supported"))
                .bytes;
            let p = psnr(&decode(&out), &pixel_path(&bytes, spec, Effect::Pixelate));
            assert!(p > 34.0, "{name}: PSNR {p:.1} dB");
            let parsed = crate::pipeline::inspect(&out, None, &Limits::default()).unwrap();
            assert!(
                parsed.inventory.is_clean(),
                "{name}: {:?}",
                parsed.inventory
            );
            let src = jpeg::parse(&bytes, &Limits::default()).unwrap();
            let dst = jpeg::parse(&out, &Limits::default()).unwrap();
            let sanitised = src.icc_profile().map(|p| crate::icc::sanitize(&p).unwrap());
            assert_eq!(sanitised, dst.icc_profile(), "{name}");
        }
        assert!(run(&fixture("dirty/jpeg_cmyk.jpg"), "20,20,50,40", Effect::Fill).is_none());
    }

    #[test]
    fn forward_dct_requantizes_a_decoded_block_to_its_coefficients() {
        let bytes = jpeg_444(&photo(64, 64), 95);
        let coeffs = lt::read_coefficients(&bytes).unwrap();
        let img = decode(&bytes);
        let planes = ycc_planes(img.as_raw(), (64, 64), false, (64, 64));
        let q = coeffs.quant_tables[coeffs.components[0].quant_table_index as usize];
        let mut comp = coeffs.components[0].clone();
        let (mut same, mut total) = (0, 0);
        for by in 0..8 {
            for bx in 0..8 {
                let block = plane_block(&planes[0], 64, (bx * 8, by * 8), (1, 1));
                store(&mut comp, bx, by, &block, &q).unwrap();
                let i = by * comp.blocks_x + bx;
                for (a, b) in comp.blocks[i].iter().zip(&coeffs.components[0].blocks[i]) {
                    assert!((a - b).abs() <= 2, "block {bx},{by}: {a} vs {b}");
                    same += (a == b) as u32;
                    total += 1;
                }
            }
        }
        assert!(same * 100 > total * 95, "{same}/{total} identical");
    }

    #[test]
    fn own_crop_decode_matches_libjpeg() {
        let img = photo(333, 250);
        for sub in [
            lt::Subsampling::S420,
            lt::Subsampling::S422,
            lt::Subsampling::S440,
            lt::Subsampling::S444,
        ] {
            let bytes = lt::Encoder::new(img.as_raw(), 333, 250, lt::PixelFormat::Rgb)
                .quality(90)
                .subsampling(sub)
                .encode()
                .unwrap();
            let d = lt::Decoder::new(&bytes).unwrap();
            let (h0, v0, gray) = supported(&d).unwrap_or_else(|| panic!("{sub:?}"));
            let coeffs = lt::read_coefficients(&bytes).unwrap();
            let full = decode(&bytes);
            let (mw, mh) = (8 * h0 as u32, 8 * v0 as u32);
            for (x0, y0, x1, y1) in [(0, 0, 333, 250), (2, 3, 9, 7), (5, 4, 21, 16)] {
                let (x0, y0) = (x0 * mw, y0 * mh);
                let (x1, y1) = ((x1 * mw).min(333), (y1 * mh).min(250));
                let data =
                    decode_crop(&coeffs, (h0, v0), gray, (333, 250), (x0, y0, x1, y1)).unwrap();
                let crop = RgbImage::from_raw(x1 - x0, y1 - y0, data).unwrap();
                let (mut worst, mut sum) = (0u8, 0u64);
                for (x, y, p) in crop.enumerate_pixels() {
                    let q = full.get_pixel(x0 + x, y0 + y);
                    for c in 0..3 {
                        let d = p[c].abs_diff(q[c]);
                        worst = worst.max(d);
                        sum += d as u64;
                    }
                }
                let mean = sum as f64 / (crop.as_raw().len() as f64);
                assert!(
                    worst <= 3 && mean < 0.1,
                    "{sub:?} {x0},{y0}: worst {worst}, mean {mean:.3}"
                );
            }
        }
    }

    /// Regions on the right and bottom edges of a photo whose size is not a
    /// multiple of the MCU: partial MCUs, edge padding, chroma context.
    #[test]
    fn edge_regions_in_partial_mcus() {
        let src = photo(333, 250);
        for bytes in [jpeg_420(&src, 90), jpeg_444(&src, 90)] {
            for effect in [Effect::Fill, Effect::Pixelate, Effect::Blur] {
                for spec in ["300,200,33,50", "ellipse:250,0,83,250", "0,241,333,9"] {
                    let out = run(&bytes, spec, effect).expect("supported").bytes;
                    let got = decode(&out);
                    assert_eq!(got.dimensions(), (333, 250));
                    let expected = pixel_path(&bytes, spec, effect);
                    let p = psnr(&got, &expected);
                    assert!(p > 34.0, "{effect:?} {spec}: PSNR {p:.1} dB");
                }
            }
        }
    }

    /// The edit on a whole coefficient buffer, as it was done before the
    /// one-pass band: the reference the band must match byte for byte.
    fn whole_buffer(bytes: &[u8], specs: &[&str], effect: Effect) -> Vec<u8> {
        let j = jpeg::parse(bytes, &Limits::default()).unwrap();
        let regions: Vec<RegionSpec> = specs.iter().map(|s| s.parse().unwrap()).collect();
        let r = Redaction {
            regions: &regions,
            default_effect: effect,
            fill: [10, 200, 30],
        };
        let (resolved, _) = redact::resolve_all(&r, j.width, j.height).unwrap();
        let probe = lt::Decoder::new(bytes).unwrap();
        let geometry = supported(&probe).unwrap();
        let plan = entropy::Plan::new(&j).unwrap().expect("baseline");
        let (mut coeffs, masks) = plan.coefficients().unwrap();
        let mut masks = Some(masks);
        let size = (j.width, j.height);
        edit_coefficients(&mut coeffs, &mut masks, geometry, size, &resolved, r.fill).unwrap();
        keep_used_tables(&mut coeffs);
        entropy::write_coefficients_masked(&coeffs, masks.as_deref(), &j).unwrap()
    }

    fn band_pass(bytes: &[u8], specs: &[&str], effect: Effect) -> Vec<u8> {
        let j = jpeg::parse(bytes, &Limits::default()).unwrap();
        let regions: Vec<RegionSpec> = specs.iter().map(|s| s.parse().unwrap()).collect();
        let r = Redaction {
            regions: &regions,
            default_effect: effect,
            fill: [10, 200, 30],
        };
        let (resolved, _) = redact::resolve_all(&r, j.width, j.height).unwrap();
        let limits = Limits::default();
        edit(
            bytes,
            &j,
            (j.width, j.height),
            &resolved,
            r.fill,
            false,
            &limits,
        )
        .expect("supported")
    }

    /// The one pass holds back only the regions' MCU rows; what it writes
    /// is what coding the whole edited buffer writes: regions at the top,
    /// bottom and sides, several at once, restart intervals, gray.
    #[test]
    fn the_band_pass_writes_what_the_whole_buffer_does() {
        let src = photo(333, 250);
        let inputs = [
            ("4:2:0", jpeg_420(&src, 90)),
            ("4:4:4", jpeg_444(&src, 92)),
            (
                "4:2:0 Annex K tables",
                jpeg_annex_k(&src, lt::Subsampling::S420),
            ),
            (
                "4:4:4 Annex K tables",
                jpeg_annex_k(&src, lt::Subsampling::S444),
            ),
            ("restart", fixture("dirty/jpeg_restart.jpg")),
            ("gray", fixture("dirty/jpeg_gray.jpg")),
        ];
        let cases: [&[&str]; 6] = [
            &["30%,24%,27%,28%"],
            &["0,0,40%,10%"],
            &["ellipse:60%,80%,40%,20%"],
            &["0,0,100%,100%"],
            &["5%,5%,10%,10%", "70%,60%,20%,30%"],
            &["50%,99%,10%,1%"],
        ];
        let mut spliced = 0;
        for (name, bytes) in &inputs {
            for specs in cases {
                for effect in [Effect::Fill, Effect::Pixelate, Effect::Blur] {
                    let band = band_pass(bytes, specs, effect);
                    let whole = whole_buffer(bytes, specs, effect);
                    // The same coefficients; the bytes too where the
                    // source's tables could not code the band (the fallback).
                    // Picture blocks only: the splice keeps the source's
                    // MCU padding blocks outside the band.
                    let coefficients = |b: &[u8]| {
                        let c = lt::read_coefficients(b).unwrap();
                        let hmax = c.components.iter().map(|c| c.h_sampling).max().unwrap();
                        let vmax = c.components.iter().map(|c| c.v_sampling).max().unwrap();
                        let (w, h) = (c.width as usize, c.height as usize);
                        let blocks: Vec<Vec<[i16; 64]>> = c
                            .components
                            .iter()
                            .map(|p| {
                                let bx = (w * p.h_sampling as usize).div_ceil(hmax as usize * 8);
                                let by = (h * p.v_sampling as usize).div_ceil(vmax as usize * 8);
                                (0..by * bx)
                                    .map(|i| p.blocks[i / bx * p.blocks_x + i % bx])
                                    .collect()
                            })
                            .collect();
                        (blocks, c.quant_tables)
                    };
                    let ((a, qa), (b, qb)) = (coefficients(&band), coefficients(&whole));
                    assert!(qa == qb, "{name}: quantization tables differ");
                    if effect == Effect::Fill {
                        // The fill's flat blocks may be 2 DC steps off, and
                        // an edge block the tables cannot code filled whole.
                        let gray = a.len() == 1;
                        let rgb = ImageBuffer::from_pixel(1, 1, Rgb([10u8, 200, 30]));
                        let colour = match gray {
                            true => DynamicImage::ImageRgb8(rgb).to_luma8().into_raw(),
                            false => rgb.into_raw(),
                        };
                        let level = ycc_planes(&colour, (1, 1), gray, (1, 1));
                        let c = lt::read_coefficients(&whole).unwrap();
                        let restarts = jpeg::parse(bytes, &Limits::default())
                            .unwrap()
                            .segments
                            .iter()
                            .any(|s| s.marker == 0xDD);
                        for (ci, (pa, pb)) in a.iter().zip(&b).enumerate() {
                            let q = &c.quant_tables[c.components[ci].quant_table_index as usize];
                            let f = quantize(&[level[ci][0] as f32 - 128.0; 64], q)[0] as i32;
                            let flat = |v: &[i16; 64]| v[1..].iter().all(|&v| v == 0);
                            let fill = |v: &[i16; 64]| flat(v) && (v[0] as i32 - f).abs() <= 2;
                            let hmax = c.components.iter().map(|c| c.h_sampling).max().unwrap();
                            let row = (c.width as usize * c.components[ci].h_sampling as usize)
                                .div_ceil(hmax as usize * 8);
                            for (i, (x, y)) in pa.iter().zip(pb).enumerate() {
                                let near = |d: i32| (x[0] as i32 - d).abs() <= 2;
                                let moved = flat(y) && near(y[0] as i32) || near(f);
                                // Further off only next to the fill's end
                                // or after a restart (a category the table
                                // lacks on the way in or out).
                                let end = restarts
                                    || i % row == 0
                                    || [i.wrapping_sub(1), i + 1].iter().any(|&k| {
                                        k / row == i / row && pa.get(k).is_some_and(|n| !fill(n))
                                    });
                                assert!(
                                    x == y || flat(x) && (moved || end),
                                    "{name} {specs:?}: component {ci} block {i} differs"
                                );
                            }
                        }
                        continue;
                    }
                    assert!(a == b, "{name} {specs:?} {effect:?}: coefficients differ");
                    // With the standard tables the splice (the source's
                    // bits outside the band) is even byte-identical.
                    let j = jpeg::parse(bytes, &Limits::default()).unwrap();
                    let plan = entropy::Plan::new(&j).unwrap().unwrap();
                    if plan.tables_code_every_symbol() {
                        assert!(band == whole, "{name} {specs:?} {effect:?}: bytes differ");
                        spliced += 1;
                    }
                }
            }
        }
        eprintln!("{spliced} of {} spliced", inputs.len() * cases.len() * 3);
        assert!(spliced >= 30, "the standard-table sources were not spliced");
    }

    /// The memory budget sizes what the band pass holds (its MCU rows), not
    /// the whole picture: a budget far below a full decode still gets the
    /// band edit, identical to the one under the default budget, while a
    /// region spanning the picture under the same budget is refused.
    #[test]
    fn a_budget_below_a_full_decode_still_gets_the_band_edit() {
        let bytes = jpeg_444(&photo(1024, 1024), 92);
        let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
        let small = Limits {
            max_alloc: 2 << 20,
            ..Limits::default()
        };
        // Below even the decoded pixels (3 MB), let alone the coefficients.
        assert!(3 * 1024 * 1024 > small.max_alloc);
        for effect in [Effect::Fill, Effect::Pixelate, Effect::Blur] {
            let regions: Vec<RegionSpec> = vec!["400,500,200,16".parse().unwrap()];
            let r = Redaction {
                regions: &regions,
                default_effect: effect,
                fill: [10, 200, 30],
            };
            let got = redact(&bytes, &j, &r, false, false, &small)
                .unwrap()
                .unwrap_or_else(|| panic!("{effect:?}: band edit refused under a 2 MB budget"));
            let reference = redact(&bytes, &j, &r, false, false, &Limits::default())
                .unwrap()
                .expect("default budget");
            assert!(got.bytes == reference.bytes, "{effect:?}: outputs differ");
            assert!(got.bytes != bytes);
            let all: Vec<RegionSpec> = vec!["0,0,100%,100%".parse().unwrap()];
            let whole = Redaction { regions: &all, ..r };
            assert!(
                redact(&bytes, &j, &whole, false, false, &small)
                    .unwrap()
                    .is_none(),
                "{effect:?}: a band of every row must not fit 2 MB"
            );
        }
    }

    /// djpeg (an independent reader) decodes every pixel outside the
    /// touched MCUs as it did before the edit (4:2:0: outside them grown by
    /// one MCU, where djpeg's chroma upsampling reads a touched sample).
    #[test]
    fn djpeg_sees_no_change_outside_the_touched_mcus() {
        use std::process::{Command, Stdio};
        let djpeg = |b: &[u8]| -> Option<Vec<u8>> {
            use std::io::Write;
            let mut child = Command::new("djpeg")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            child.stdin.take()?.write_all(b).ok()?;
            let o = child.wait_with_output().ok()?;
            assert!(o.status.success(), "djpeg failed");
            // A binary PPM of 333 x 250: the header, then the samples.
            Some(o.stdout[o.stdout.len() - 333 * 250 * 3..].to_vec())
        };
        let src = photo(333, 250);
        for (bytes, mcu, margin) in [(jpeg_444(&src, 92), 8, 0), (jpeg_420(&src, 90), 16, 16)] {
            let Some(before) = djpeg(&bytes) else {
                eprintln!("skipped: djpeg not installed");
                return;
            };
            for effect in [Effect::Fill, Effect::Blur] {
                let out = run(&bytes, "101,61,90,70", effect)
                    .expect("supported")
                    .bytes;
                let after = djpeg(&out).expect("djpeg");
                let (x0, y0) = (96 - margin, 48 - margin);
                let (x1, y1) = (192usize.div_ceil(mcu) * mcu + margin, 144 + margin);
                let (mut same, mut changed) = (0, 0);
                for y in 0..250 {
                    for x in 0..333 {
                        let i = 3 * (y * 333 + x);
                        let eq = before[i..i + 3] == after[i..i + 3];
                        if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                            changed += !eq as usize;
                        } else {
                            assert!(eq, "{effect:?} MCU {mcu}: pixel {x},{y} changed");
                            same += 1;
                        }
                    }
                }
                assert!(
                    same > 60_000 && changed > 5000,
                    "{same} same, {changed} changed"
                );
            }
        }
    }
    /// The DHT segments' payloads of a JPEG, in order.
    fn dht(bytes: &[u8]) -> Vec<Vec<u8>> {
        let j = jpeg::parse(bytes, &Limits::default()).unwrap();
        let s = j.segments.iter().filter(|s| s.marker == 0xC4);
        s.map(|s| s.payload.to_vec()).collect()
    }

    /// Sources from other encoders, when installed: `cjpeg -optimize`,
    /// ImageMagick (which optimises its tables).
    fn made_by_tools(img: &RgbImage) -> Vec<(String, Vec<u8>)> {
        use std::process::Command;
        let dir = std::env::temp_dir().join(format!("photodeid-blocks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ppm = dir.join("src.ppm");
        let head = format!("P6\n{} {}\n255\n", img.width(), img.height());
        std::fs::write(&ppm, [head.as_bytes(), img.as_raw()].concat()).unwrap();
        let mut out = Vec::new();
        let runs: [(&str, &str, Vec<&str>); 3] = [
            (
                "cjpeg -optimize 4:2:0",
                "cjpeg",
                vec!["-optimize", "-quality", "90"],
            ),
            (
                "cjpeg -optimize 4:4:4",
                "cjpeg",
                vec!["-optimize", "-sample", "1x1"],
            ),
            (
                "ImageMagick q92 4:4:4",
                "convert",
                vec!["-quality", "92", "-sampling-factor", "1x1"],
            ),
        ];
        for (name, tool, args) in runs {
            let to = dir.join("out.jpg");
            let mut c = Command::new(tool);
            if tool == "cjpeg" {
                c.args(&args).arg("-outfile").arg(&to).arg(&ppm);
            } else {
                c.arg(&ppm).args(&args).arg(&to);
            }
            if c.output().is_ok_and(|o| o.status.success()) {
                out.push((name.to_string(), std::fs::read(&to).unwrap()));
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    /// A fill keeps optimised tables (the splice, not the recode with the
    /// standard ones): every block outside the touched MCUs is the
    /// source's, every block inside the region flat near the fill's DC.
    #[test]
    fn a_fill_keeps_optimised_tables_and_every_block_outside() {
        let img = photo(333, 250);
        let opt = |s: lt::Subsampling| {
            lt::Encoder::new(img.as_raw(), 333, 250, lt::PixelFormat::Rgb)
                .quality(90)
                .subsampling(s)
                .optimize_huffman(true)
                .encode()
                .unwrap()
        };
        let mut inputs = vec![
            ("optimised 4:2:0".to_string(), opt(lt::Subsampling::S420)),
            ("optimised 4:4:4".to_string(), opt(lt::Subsampling::S444)),
        ];
        inputs.extend(made_by_tools(&img));
        let (x0, y0, x1, y1) = (100usize, 60usize, 190usize, 130usize);
        for (name, bytes) in &inputs {
            let j = jpeg::parse(bytes, &Limits::default()).unwrap();
            assert!(!entropy::Plan::new(&j)
                .unwrap()
                .unwrap()
                .tables_code_every_symbol());
            let out = run(bytes, "100,60,90,70", Effect::Fill)
                .expect("supported")
                .bytes;
            assert_eq!(dht(&out), dht(bytes), "{name}: not spliced");
            let (a, b) = (
                lt::read_coefficients(bytes).unwrap(),
                lt::read_coefficients(&out).unwrap(),
            );
            let (h0, v0) = (
                a.components[0].h_sampling as usize,
                a.components[0].v_sampling as usize,
            );
            let (mw, mh) = (8 * h0, 8 * v0);
            let (mut far, mut flat) = (0, 0);
            for (ci, (ca, cb)) in a.components.iter().zip(&b.components).enumerate() {
                let (bw, bh) = if ci == 0 { (8, 8) } else { (mw, mh) };
                let q = &a.quant_tables[ca.quant_table_index as usize];
                let rgb = ImageBuffer::from_pixel(1, 1, Rgb([10u8, 200, 30]));
                let level = ycc_planes(&rgb.into_raw(), (1, 1), false, (1, 1));
                let f = quantize(&[level[ci][0] as f32 - 128.0; 64], q)[0] as i32;
                for by in 0..ca.blocks_y.min(cb.blocks_y) {
                    for bx in 0..ca.blocks_x.min(cb.blocks_x) {
                        let (px, py) = (bx * bw, by * bh);
                        let (x, y) = (
                            &ca.blocks[by * ca.blocks_x + bx],
                            &cb.blocks[by * cb.blocks_x + bx],
                        );
                        let (mx, my) = (px / mw * mw, py / mh * mh);
                        let touched = mx + mw > x0 && mx < x1 && my + mh > y0 && my < y1;
                        let inside = px >= x0 && px + bw <= x1 && py >= y0 && py + bh <= y1;
                        if !touched && px < 333 && py < 250 {
                            assert_eq!(x, y, "{name}: component {ci} block {bx},{by} changed");
                        } else if inside {
                            assert!(y[1..].iter().all(|&v| v == 0), "{name}: {ci} {bx},{by}");
                            flat += 1;
                            far += ((y[0] as i32 - f).abs() > 2) as usize;
                        }
                    }
                }
            }
            // Off by more than 2 steps: only where a run of the fill starts
            // or ends (a category its DC table lacks), at most two a row.
            let rows = (y1 - y0).div_ceil(8) * 3;
            assert!(
                flat > 100 && far <= 2 * rows,
                "{name}: {far} of {flat} far off"
            );
            djpeg_clean(&out, name);
        }
        assert!(inputs.len() >= 2);
    }

    /// Bytes after the last block of the scan: a fill drops them, with
    /// `--thorough` or without (the lossless strip keeps them).
    #[test]
    fn fills_drop_what_follows_the_last_block() {
        let clean = jpeg_444(&photo(333, 250), 92);
        let end = clean.len() - 2;
        let bytes = [&clean[..end], &[0x12, 0x34, 0x56], &clean[end..]].concat();
        let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
        let regions: Vec<RegionSpec> = vec!["100,60,90,70".parse().unwrap()];
        let r = Redaction {
            regions: &regions,
            default_effect: Effect::Fill,
            fill: [10, 200, 30],
        };
        for thorough in [false, true] {
            let out = redact(&bytes, &j, &r, false, thorough, &Limits::default())
                .unwrap()
                .expect("supported")
                .bytes;
            let oj = jpeg::parse(&out, &Limits::default()).unwrap();
            let tail = entropy::Plan::new(&oj)
                .unwrap()
                .unwrap()
                .audit()
                .unwrap()
                .tail;
            assert_eq!(tail, 0, "thorough {thorough}");
            djpeg_clean(&out, "fill");
        }
    }

    /// libjpeg's djpeg (when installed) decodes `bytes` with no warning.
    fn djpeg_clean(bytes: &[u8], what: &str) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("djpeg")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
        else {
            return;
        };
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success() && o.stderr.is_empty(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
