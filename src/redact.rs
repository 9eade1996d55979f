//! Destroying what is inside a region, irreversibly by construction:
//!
//! - **fill**: every pixel becomes one colour; nothing of the original remains.
//! - **pixelate**: every pixel becomes the mean of its block; blocks are at
//!   least 16 px and at least 1/8 of the region's longer side, so a face or a
//!   line of text is reduced to at most 8 x 8 numbers.
//! - **blur**: the same coarse block means (at most 10 across), smoothly
//!   interpolated. It looks like a heavy blur, but unlike a Gaussian it is not
//!   a deblurring problem: the output depends only on the coarse grid.
//!
//! Cost is linear in the region's area whatever the strength.

use crate::error::Result;
use crate::region::{Effect, Rect, RegionSpec, Resolved, Shape};
use image::{DynamicImage, ImageBuffer, Pixel, Primitive, Rgba};
use num_traits::{NumCast, ToPrimitive};

/// Regions and how to apply them.
#[derive(Debug, Clone)]
pub struct Redaction<'a> {
    pub regions: &'a [RegionSpec],
    pub default_effect: Effect,
    pub fill: [u8; 3],
}

/// Applies the redaction to the upright image; returns warnings (clipped regions).
pub fn apply(img: &mut DynamicImage, r: &Redaction) -> Result<Vec<String>> {
    let (resolved, warnings) = resolve_all(r, img.width(), img.height())?;
    let one = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(
        1,
        1,
        Rgba([r.fill[0], r.fill[1], r.fill[2], 255]),
    ));
    macro_rules! each {
        ($($variant:ident => $conv:ident),*) => {
            match img {
                $(DynamicImage::$variant(buf) => {
                    let colour = *one.$conv().get_pixel(0, 0);
                    for res in &resolved {
                        apply_one(buf, res, colour);
                    }
                })*
                other => {
                    let mut rgba = other.to_rgba8();
                    let colour = *one.to_rgba8().get_pixel(0, 0);
                    for res in &resolved {
                        apply_one(&mut rgba, res, colour);
                    }
                    *other = DynamicImage::ImageRgba8(rgba);
                }
            }
        };
    }
    each!(
        ImageLuma8 => to_luma8, ImageLumaA8 => to_luma_alpha8, ImageRgb8 => to_rgb8,
        ImageRgba8 => to_rgba8, ImageLuma16 => to_luma16, ImageLumaA16 => to_luma_alpha16,
        ImageRgb16 => to_rgb16, ImageRgba16 => to_rgba16, ImageRgb32F => to_rgb32f,
        ImageRgba32F => to_rgba32f
    );
    Ok(warnings)
}

/// The regions resolved against a `w` x `h` upright image, in order, and a
/// warning for each one clipped at the edge.
pub(crate) fn resolve_all(r: &Redaction, w: u32, h: u32) -> Result<(Vec<Resolved>, Vec<String>)> {
    let mut resolved = Vec::with_capacity(r.regions.len());
    let mut warnings = Vec::new();
    for spec in r.regions {
        let res = spec.resolve(w, h, r.default_effect)?;
        if res.clipped {
            warnings.push(format!(
                "region {spec} extends outside the {w}x{h} image; clipped"
            ));
        }
        resolved.push(res);
    }
    Ok((resolved, warnings))
}

pub(crate) type Buf<P> = ImageBuffer<P, Vec<<P as Pixel>::Subpixel>>;

/// Destroys one resolved region of `buf`. Reads and writes only the pixels
/// of `res.rect`, so a crop that holds the rectangle (with the rectangle
/// moved by the crop's offset) gives the same pixels as the whole image.
pub(crate) fn apply_one<P: Pixel>(buf: &mut Buf<P>, res: &Resolved, fill: P) {
    let rect = res.rect;
    let inside = mask(rect, res.shape);
    match res.effect {
        Effect::Fill => for_each_in(rect, &inside, |x, y| buf.put_pixel(x, y, fill)),
        Effect::Pixelate => {
            let grid = BlockGrid::measure(buf, rect, pixelate_block(rect));
            for_each_in(rect, &inside, |x, y| {
                let mean = grid.at(x - rect.x, y - rect.y);
                set(buf, x, y, mean);
            });
        }
        Effect::Blur => {
            let grid = BlockGrid::measure(buf, rect, blur_block(rect));
            // The interpolation's cell and weight depend on one axis each:
            // computed once per column and per row, not per pixel (the
            // per-pixel floor was a tenth of a blurred edit's time).
            let cols: Vec<(u32, f64)> = (0..rect.w).map(|dx| grid.axis_x(dx)).collect();
            let rows: Vec<(u32, f64)> = (0..rect.h).map(|dy| grid.axis_y(dy)).collect();
            for_each_in(rect, &inside, |x, y| {
                let v = grid.lerp(cols[(x - rect.x) as usize], rows[(y - rect.y) as usize]);
                set(buf, x, y, v);
            });
        }
    }
}

/// Pixelation block: at least 16 px and at least 1/8 of the longer side.
pub fn pixelate_block(rect: Rect) -> u32 {
    rect.w.max(rect.h).div_ceil(8).max(16)
}

/// Blur grid: at least 16 px and at least 1/10 of the longer side.
pub fn blur_block(rect: Rect) -> u32 {
    rect.w.max(rect.h).div_ceil(10).max(16)
}

fn mask(rect: Rect, shape: Shape) -> impl Fn(u32, u32) -> bool {
    let (cx, cy) = (rect.w as f64 / 2.0, rect.h as f64 / 2.0);
    move |dx, dy| match shape {
        Shape::Rect => true,
        Shape::Ellipse => {
            let nx = (dx as f64 + 0.5 - cx) / cx;
            let ny = (dy as f64 + 0.5 - cy) / cy;
            nx * nx + ny * ny <= 1.0
        }
    }
}

fn for_each_in(rect: Rect, inside: &impl Fn(u32, u32) -> bool, mut f: impl FnMut(u32, u32)) {
    for y in rect.y..rect.y + rect.h {
        for x in rect.x..rect.x + rect.w {
            if inside(x - rect.x, y - rect.y) {
                f(x, y);
            }
        }
    }
}

fn set<P: Pixel>(buf: &mut Buf<P>, x: u32, y: u32, v: [f64; 4]) {
    let is_float = P::Subpixel::DEFAULT_MAX_VALUE.to_f64() == Some(1.0);
    let px = buf.get_pixel_mut(x, y);
    for (c, ch) in px.channels_mut().iter_mut().enumerate() {
        let value = if is_float { v[c] } else { v[c].round() };
        if let Some(n) = <P::Subpixel as NumCast>::from(value) {
            *ch = n;
        }
    }
}

/// Per-block channel means over a region. Each axis holds as many whole
/// blocks of the stated size as fit, and the remainder is spread over them
/// (block sizes differ by at most one pixel), so no block is smaller than
/// the stated size: a short last block would keep pixels close to their
/// original values (a 1 px block keeps them exactly). A region smaller
/// than one block is one block.
struct BlockGrid {
    w: u32,
    h: u32,
    nx: u32,
    ny: u32,
    means: Vec<[f64; 4]>,
}

/// Block index of offset `d` on an axis of `len` pixels cut into `n` blocks.
fn block_of(d: u32, len: u32, n: u32) -> u32 {
    (d as u64 * n as u64 / len.max(1) as u64) as u32
}

impl BlockGrid {
    fn measure<P: Pixel>(buf: &Buf<P>, rect: Rect, block: u32) -> Self {
        let block = block.max(1);
        let nx = (rect.w / block).max(1);
        let ny = (rect.h / block).max(1);
        let mut sums = vec![([0f64; 4], 0u32); (nx * ny) as usize];
        for y in 0..rect.h {
            let row = block_of(y, rect.h, ny) * nx;
            for x in 0..rect.w {
                let px = buf.get_pixel(rect.x + x, rect.y + y);
                let cell = &mut sums[(row + block_of(x, rect.w, nx)) as usize];
                for (c, ch) in px.channels().iter().enumerate().take(4) {
                    cell.0[c] += ch.to_f64().unwrap_or(0.0);
                }
                cell.1 += 1;
            }
        }
        let means = sums
            .into_iter()
            .map(|(s, n)| s.map(|v| v / n.max(1) as f64))
            .collect();
        BlockGrid {
            w: rect.w,
            h: rect.h,
            nx,
            ny,
            means,
        }
    }

    fn cell(&self, bx: u32, by: u32) -> [f64; 4] {
        self.means[(by.min(self.ny - 1) * self.nx + bx.min(self.nx - 1)) as usize]
    }

    fn at(&self, dx: u32, dy: u32) -> [f64; 4] {
        self.cell(block_of(dx, self.w, self.nx), block_of(dy, self.h, self.ny))
    }

    /// Column `dx`'s left block centre and its weight towards the next.
    fn axis_x(&self, dx: u32) -> (u32, f64) {
        axis(dx, self.w as f64 / self.nx as f64)
    }

    /// Row `dy`'s upper block centre and its weight towards the next.
    fn axis_y(&self, dy: u32) -> (u32, f64) {
        axis(dy, self.h as f64 / self.ny as f64)
    }

    /// Bilinear interpolation between block centres, from the two axes'
    /// cells and weights.
    fn lerp(&self, (bx, tx): (u32, f64), (by, ty): (u32, f64)) -> [f64; 4] {
        let (a, b) = (self.cell(bx, by), self.cell(bx + 1, by));
        let (c, d) = (self.cell(bx, by + 1), self.cell(bx + 1, by + 1));
        let mut out = [0.0; 4];
        for i in 0..4 {
            let top = a[i] * (1.0 - tx) + b[i] * tx;
            let bottom = c[i] * (1.0 - tx) + d[i] * tx;
            out[i] = top * (1.0 - ty) + bottom * ty;
        }
        out
    }
}

/// Offset `d`'s block (centre to its left) and weight on an axis of blocks
/// `size` pixels long.
fn axis(d: u32, size: f64) -> (u32, f64) {
    let f = ((d as f64 + 0.5) / size - 0.5).max(0.0);
    let b = f.floor() as u32;
    (b, f - b as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    fn checker(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            if (x / 2 + y / 2) % 2 == 0 {
                image::Rgb([255, 255, 255])
            } else {
                image::Rgb([0, 0, 0])
            }
        }))
    }

    fn run(img: &mut DynamicImage, spec: &str, effect: Effect) {
        let regions = [spec.parse().unwrap()];
        let r = Redaction {
            regions: &regions,
            default_effect: effect,
            fill: [10, 20, 30],
        };
        apply(img, &r).unwrap();
    }

    #[test]
    fn nothing_outside_the_region_changes() {
        for effect in [Effect::Fill, Effect::Pixelate, Effect::Blur] {
            let orig = checker(120, 90);
            let mut img = orig.clone();
            run(&mut img, "ellipse:20,10,60,50", effect);
            let (a, b) = (orig.to_rgb8(), img.to_rgb8());
            let mut changed_inside = 0;
            for (x, y, p) in b.enumerate_pixels() {
                let inside = (20..80).contains(&x) && (10..60).contains(&y);
                if !inside {
                    assert_eq!(p, a.get_pixel(x, y), "{effect:?} leaked at {x},{y}");
                } else if p != a.get_pixel(x, y) {
                    changed_inside += 1;
                }
            }
            assert!(
                changed_inside > 1000,
                "{effect:?} changed only {changed_inside}"
            );
        }
    }

    #[test]
    fn pixelate_blocks_are_constant() {
        let mut img = checker(200, 200);
        run(&mut img, "0,0,200,200", Effect::Pixelate);
        let b = img.to_rgb8();
        let block = pixelate_block(Rect::at(0, 0).of_size(200, 200));
        assert_eq!(block, 25);
        for y in 0..25 {
            for x in 0..25 {
                assert_eq!(b.get_pixel(x, y), b.get_pixel(0, 0));
            }
        }
    }

    #[test]
    fn works_on_16_bit_and_gray() {
        let mut img = DynamicImage::ImageRgb16(checker(64, 64).to_rgb16());
        run(&mut img, "0,0,32,32", Effect::Fill);
        assert!(matches!(img, DynamicImage::ImageRgb16(_)));
        assert_eq!(img.to_rgb8().get_pixel(5, 5), &image::Rgb([10, 20, 30]));
        let mut g = DynamicImage::ImageLuma8(checker(64, 64).to_luma8());
        run(&mut g, "0,0,32,32", Effect::Blur);
        assert!(matches!(g, DynamicImage::ImageLuma8(_)));
    }

    /// Lengths of the runs of equal pixels along a line of the output.
    fn runs(line: impl Iterator<Item = image::Rgb<u8>>) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        let mut last = None;
        for p in line {
            match out.last_mut() {
                Some(n) if last == Some(p) => *n += 1,
                _ => out.push(1),
            }
            last = Some(p);
        }
        out
    }

    #[test]
    fn every_pixelate_block_holds_the_minimum() {
        // Noise, so neighbouring blocks never share a mean.
        let noise = |w, h| {
            let mut s = 0x2545_F491u32;
            DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |_, _| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                image::Rgb([s as u8, (s >> 8) as u8, (s >> 16) as u8])
            }))
        };
        for (w, h) in [(33, 33), (47, 16), (16, 100), (100, 47), (31, 31), (5, 9)] {
            let orig = noise(120, 120);
            let mut img = orig.clone();
            run(&mut img, &format!("3,4,{w},{h}"), Effect::Pixelate);
            let (a, b) = (orig.to_rgb8(), img.to_rgb8());
            let min = pixelate_block(Rect::at(0, 0).of_size(w, h)).min(w).min(h);
            for y in 4..4 + h {
                let r = runs((3..3 + w).map(|x| *b.get_pixel(x, y)));
                assert!(r.iter().all(|&n| n >= min.min(w)), "{w}x{h} row {y}: {r:?}");
            }
            for x in 3..3 + w {
                let r = runs((4..4 + h).map(|y| *b.get_pixel(x, y)));
                assert!(
                    r.iter().all(|&n| n >= min.min(h)),
                    "{w}x{h} column {x}: {r:?}"
                );
            }
            let same = (4..4 + h)
                .flat_map(|y| (3..3 + w).map(move |x| (x, y)))
                .filter(|&(x, y)| a.get_pixel(x, y) == b.get_pixel(x, y))
                .count();
            assert!(same <= 2, "{w}x{h}: {same} pixels kept their value");
            assert_ne!(
                a.get_pixel(2 + w, 3 + h),
                b.get_pixel(2 + w, 3 + h),
                "corner"
            );
        }
    }
}
