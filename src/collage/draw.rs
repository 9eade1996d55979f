//! Drawing: labels fitted to their band, resizing, the practice logo.

use crate::error::{Error, Result};
use crate::region::Rect;
use ab_glyph::{FontRef, PxScale};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage, RgbaImage};
use std::sync::{Arc, OnceLock};

/// DejaVu Sans Bold 2.37 (Bitstream Vera + Arev licence, `assets/fonts/LICENSE`).
pub const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Smallest label size; longer labels are cut short with an ellipsis.
const MIN_FONT_PX: f32 = 8.0;

pub fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT).expect("the embedded font parses")
}

/// Parses `RRGGBB` or `#RRGGBB`.
pub fn parse_color(s: &str) -> std::result::Result<[u8; 3], String> {
    let hex = s.trim().trim_start_matches('#');
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("bad colour {s:?}: use RRGGBB, as ff8800"));
    }
    let b = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    Ok([b(0), b(2), b(4)])
}

/// Draws `text` centred in `band` on `background`: smaller when it would
/// not fit, cut short with "…" when even the smallest size does not, never
/// outside the band.
pub fn draw_label(
    canvas: &mut RgbImage,
    font: &FontRef,
    text: &str,
    band: Rect,
    px: f32,
    (background, ink): ([u8; 3], [u8; 3]),
) {
    let text = text.trim();
    if text.is_empty() || band.w < 4 || band.h < 4 {
        return;
    }
    let room = band.w - 4;
    let width = |px: f32, t: &str| imageproc::drawing::text_size(PxScale::from(px), font, t).0;
    let w = width(px, text);
    let px = if w > room {
        (px * room as f32 / w as f32).max(MIN_FONT_PX).min(px)
    } else {
        px
    };
    let mut shown = text.to_string();
    let mut chars: Vec<char> = text.chars().collect();
    while width(px, &shown) > room && !chars.is_empty() {
        chars.pop();
        shown = chars.iter().collect::<String>().trim_end().to_string() + "\u{2026}";
    }
    let (w, h) = imageproc::drawing::text_size(PxScale::from(px), font, &shown);
    let mut strip = RgbImage::from_pixel(band.w, band.h, Rgb(background));
    let x = (band.w as i64 - w as i64) / 2;
    let y = (band.h as i64 - h as i64) / 2;
    imageproc::drawing::draw_text_mut(
        &mut strip,
        Rgb(ink),
        x as i32,
        y as i32,
        PxScale::from(px),
        font,
        &shown,
    );
    imageops::replace(canvas, &strip, band.x as i64, band.y as i64);
}

/// Resizes to exactly `w`×`h`: a reduction is an area average (each output
/// pixel the mean of the input pixels it covers: no aliasing), an
/// enlargement a triangle filter.
pub fn resize_to(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    resize_part(img, (0, 0, img.width(), img.height()), w, h)
}

/// The pixels `(x, y, cw, ch)` of `img` resized to exactly `w`×`h`, as
/// [`resize_to`] does, without copying the part out first. SIMD
/// (fast_image_resize: several times image's `thumbnail` on a panel);
/// image's own resize only should it refuse.
pub fn resize_part(
    img: &RgbImage,
    (x, y, cw, ch): (u32, u32, u32, u32),
    w: u32,
    h: u32,
) -> RgbImage {
    use fast_image_resize as fr;
    let shrink = w <= cw && h <= ch;
    let fast = || {
        let src =
            fr::images::ImageRef::new(img.width(), img.height(), img.as_raw(), fr::PixelType::U8x3)
                .ok()?;
        let mut dst = fr::images::Image::new(w, h, fr::PixelType::U8x3);
        let filter = if shrink {
            fr::FilterType::Box
        } else {
            fr::FilterType::Bilinear
        };
        let opts = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(filter))
            .crop(x as f64, y as f64, cw as f64, ch as f64);
        fr::Resizer::new().resize(&src, &mut dst, &opts).ok()?;
        RgbImage::from_raw(w, h, dst.into_vec())
    };
    if let Some(out) = fast() {
        return out;
    }
    let part = imageops::crop_imm(img, x, y, cw, ch).to_image();
    if shrink {
        imageops::thumbnail(&part, w, h)
    } else {
        imageops::resize(&part, w, h, FilterType::Triangle)
    }
}

/// A corner of the canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Corner {
    TopLeft,
    TopRight,
    BottomLeft,
    #[default]
    BottomRight,
}

impl std::str::FromStr for Corner {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(
            match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "top-left" => Corner::TopLeft,
                "top-right" => Corner::TopRight,
                "bottom-left" => Corner::BottomLeft,
                "bottom-right" => Corner::BottomRight,
                _ => {
                    return Err(format!(
                    "unknown corner {s:?}: use top-left, top-right, bottom-left or bottom-right"
                ))
                }
            },
        )
    }
}

/// The practice logo, drawn over the collage in a corner.
#[derive(Debug, Clone)]
pub struct Logo {
    pixels: Arc<LogoPixels>,
    pub corner: Corner,
    /// Width as a fraction of the canvas width (0.02..=1).
    pub size: f32,
    /// 0 (invisible) ..= 1 (as the PNG's own alpha says).
    pub opacity: f32,
}

/// A logo's pixels: its PNG checked when read (signature, header, size),
/// decoded once, when it is first drawn. A collage draws it while its
/// photos decode, so the decode (milliseconds for a 16-bit PNG) is off the
/// path every collage waits on.
struct LogoPixels {
    /// Shown in errors.
    name: String,
    png: Vec<u8>,
    size: (u32, u32),
    decoded: OnceLock<std::result::Result<RgbaImage, String>>,
}

impl std::fmt::Debug for LogoPixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogoPixels({}, {:?})", self.name, self.size)
    }
}

/// Larger logos are refused: a logo is drawn at most canvas-wide.
const MAX_LOGO_SIDE: u32 = 8000;

impl LogoPixels {
    fn reader(png: &[u8]) -> image::ImageReader<std::io::Cursor<&[u8]>> {
        let mut reader =
            image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png);
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_LOGO_SIDE);
        limits.max_image_height = Some(MAX_LOGO_SIDE);
        reader.limits(limits);
        reader
    }

    fn image(&self) -> Result<&RgbaImage> {
        self.decoded
            .get_or_init(|| {
                Self::reader(&self.png)
                    .decode()
                    .map(|i| i.into_rgba8())
                    .map_err(|e| format!("cannot decode: {e}"))
            })
            .as_ref()
            .map_err(|why| Error::Invalid(format!("logo {}: {why}", self.name)))
    }
}

impl Logo {
    /// Reads a PNG (its alpha is kept); the file name is in any error. A
    /// file that is not a PNG, or too large, fails here; one whose pixels
    /// do not decode fails when it is drawn.
    pub fn read(path: &std::path::Path, corner: Corner, size: f32, opacity: f32) -> Result<Logo> {
        let bad = |why: String| Error::Invalid(format!("logo {}: {why}", path.display()));
        if !(0.02..=1.0).contains(&size) {
            return Err(bad(format!(
                "size {size} must be a fraction of the width from 0.02 to 1"
            )));
        }
        if !(0.0..=1.0).contains(&opacity) {
            return Err(bad(format!("opacity {opacity} must be from 0 to 1")));
        }
        let png = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(bad(
                "not a PNG file (a PNG with transparency is expected)".into()
            ));
        }
        let (w, h) = LogoPixels::reader(&png)
            .into_dimensions()
            .map_err(|e| bad(format!("cannot decode: {e}")))?;
        if w == 0 || h == 0 || w > MAX_LOGO_SIDE || h > MAX_LOGO_SIDE {
            return Err(bad(format!(
                "cannot decode: {w}x{h} pixels (at most {MAX_LOGO_SIDE} a side)"
            )));
        }
        Ok(Logo {
            pixels: Arc::new(LogoPixels {
                name: path.display().to_string(),
                png,
                size: (w, h),
                decoded: OnceLock::new(),
            }),
            corner,
            size,
            opacity,
        })
    }

    /// A logo of these pixels (tests, and logos drawn by the program).
    pub fn of_image(image: RgbaImage, corner: Corner, size: f32, opacity: f32) -> Logo {
        Logo {
            pixels: Arc::new(LogoPixels {
                name: "(drawn)".into(),
                png: Vec::new(),
                size: image.dimensions(),
                decoded: OnceLock::from(Ok(image)),
            }),
            corner,
            size,
            opacity,
        }
    }

    /// Decodes the pixels now (they are kept): `Err` names the file when
    /// they do not decode.
    pub fn check(&self) -> Result<()> {
        self.pixels.image().map(|_| ())
    }

    /// The PNG's width and height.
    pub fn dimensions(&self) -> (u32, u32) {
        self.pixels.size
    }

    /// Where the logo goes on a `w` x `h` canvas with this margin.
    pub fn rect(&self, w: u32, h: u32, margin: u32) -> Rect {
        let (lw, lh) = self.pixels.size;
        let mut tw = ((w as f32 * self.size).round() as u32).max(1);
        let mut th = ((tw as u64 * lh as u64 / lw.max(1) as u64) as u32).max(1);
        // Never taller than half the canvas.
        if th > h / 2 {
            th = (h / 2).max(1);
            tw = ((th as u64 * lw as u64 / lh.max(1) as u64) as u32).max(1);
        }
        let (tw, th) = (tw.min(w), th.min(h));
        let x = match self.corner {
            Corner::TopLeft | Corner::BottomLeft => margin,
            Corner::TopRight | Corner::BottomRight => w.saturating_sub(margin + tw),
        };
        let y = match self.corner {
            Corner::TopLeft | Corner::TopRight => margin,
            Corner::BottomLeft | Corner::BottomRight => h.saturating_sub(margin + th),
        };
        Rect::at(x.min(w - tw), y.min(h - th)).of_size(tw, th)
    }

    /// Alpha-blends the logo over `canvas` at [`Logo::rect`].
    pub fn draw(&self, canvas: &mut RgbImage, margin: u32) -> Result<()> {
        self.scaled(canvas.width(), canvas.height(), margin)?
            .blend(canvas);
        Ok(())
    }

    /// The logo resized to its place on a `w` x `h` canvas (the costly part
    /// of drawing it, done before the canvas has its photos).
    pub fn scaled(&self, w: u32, h: u32, margin: u32) -> Result<ScaledLogo> {
        let rect = self.rect(w, h, margin);
        let full = self.pixels.image()?;
        let image = if full.dimensions() == (rect.w, rect.h) {
            full.clone()
        } else {
            imageops::resize(full, rect.w, rect.h, FilterType::Triangle)
        };
        Ok(ScaledLogo {
            image,
            rect,
            alpha: (self.opacity * 255.0).round() as u32,
        })
    }
}

/// A [`Logo`] at its size and place on one canvas.
pub struct ScaledLogo {
    image: RgbaImage,
    rect: Rect,
    /// The opacity, 0..=255.
    alpha: u32,
}

impl ScaledLogo {
    pub fn blend(&self, canvas: &mut RgbImage) {
        let (r, k) = (self.rect, self.alpha);
        for (x, y, p) in self.image.enumerate_pixels() {
            let a = p[3] as u32 * k / 255;
            if a == 0 {
                continue;
            }
            let o = canvas.get_pixel_mut(r.x + x, r.y + y);
            for c in 0..3 {
                o[c] = ((p[c] as u32 * a + o[c] as u32 * (255 - a) + 127) / 255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse() {
        assert_eq!(parse_color("#ff8800"), Ok([255, 136, 0]));
        assert_eq!(parse_color("000000"), Ok([0, 0, 0]));
        assert!(parse_color("red").is_err());
        assert!(parse_color("#fff").is_err());
    }

    #[test]
    fn logo_goes_in_its_corner_with_its_opacity() {
        let mut img = RgbaImage::from_pixel(40, 20, image::Rgba([255, 0, 0, 255]));
        img.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        for (corner, expect) in [
            (Corner::TopLeft, (10, 10)),
            (Corner::TopRight, (150, 10)),
            (Corner::BottomLeft, (10, 70)),
            (Corner::BottomRight, (150, 70)),
        ] {
            let logo = Logo::of_image(img.clone(), corner, 0.2, 0.5);
            let r = logo.rect(200, 100, 10);
            assert_eq!(
                (r.x, r.y, r.w, r.h),
                (expect.0, expect.1, 40, 20),
                "{corner:?}"
            );
            let mut canvas = RgbImage::from_pixel(200, 100, Rgb([0, 0, 255]));
            logo.draw(&mut canvas, 10).unwrap();
            let mid = canvas.get_pixel(r.x + 20, r.y + 10).0;
            assert!(
                mid[0].abs_diff(128) <= 2 && mid[2].abs_diff(127) <= 2,
                "{mid:?}"
            );
            // The transparent pixel leaves the canvas alone; outside is untouched.
            assert_eq!(canvas.get_pixel(r.x, r.y).0, [0, 0, 255]);
            let outside = if r.x > 100 { (5, 50) } else { (195, 50) };
            assert_eq!(canvas.get_pixel(outside.0, outside.1).0, [0, 0, 255]);
        }
    }

    #[test]
    fn corners_parse() {
        assert_eq!("top-left".parse::<Corner>(), Ok(Corner::TopLeft));
        assert_eq!("Bottom_Right".parse::<Corner>(), Ok(Corner::BottomRight));
        assert!("middle".parse::<Corner>().is_err());
    }
}
