//! Before/after collages a practice can post: equal panels, each photo
//! cropped to its panel (centred, or as its framing says), a label band
//! under each, an optional title, footer and logo, on a canvas of an exact
//! social size (`--size portrait` = 1080x1350) or one that follows from the
//! photos.
//!
//! ```text
//! case folder ──► list photos ──► read headers (capture time, size) ──► order
//!   ──► plan (layout, equal panels) ──► per photo: decode upright, reduced
//!   ──► destroy regions ──► crop to its framing ──► resize to its panel
//!   ──► paste + labels + title + footer + logo ──► encode ──► audit ──► publish
//! ```
//!
//! [`case`] is the whole pipeline, used by the CLI, the page and sharded
//! runs; [`layout`] places the panels, [`framing`] crops, [`draw`] draws
//! labels and the logo, [`order`] sorts by capture time and writes the
//! interval labels ("Day 12", "Month 6", "Year 1 Month 3": never dates,
//! which identify patients), [`style`] reads a practice profile and
//! [`consent`] keeps the register of signed permissions.

pub mod align;
pub mod animate;
pub mod case;
pub mod consent;
pub mod draw;
pub mod framing;
pub mod layout;
pub mod order;
pub mod style;

use crate::container::{Format, Limits};
use crate::error::{Error, Result};
use crate::pipeline;
use crate::pixels::{self, EncodeOptions};
use crate::redact::{self, Redaction};
use image::{imageops, DynamicImage, Rgb, RgbImage};

pub use crate::region::Rect;
pub use draw::{parse_color, resize_to, Corner, Logo, FONT};
pub use framing::{FRect, Framing, FramingRow};
pub use layout::{parse_size, Layout, Plan, SIZES};
pub use order::{
    chronological_order, default_labels, in_chronological_order, interval_label, parse_labels,
    DateTime, SortKey,
};

/// Default `--max-width`, in pixels.
pub const DEFAULT_MAX_WIDTH: u32 = 3000;

pub const BACKGROUND: [u8; 3] = [255, 255, 255];
pub const INK: [u8; 3] = [20, 20, 20];

/// Collage settings.
#[derive(Debug, Clone)]
pub struct CollageOptions {
    pub layout: Layout,
    /// The exact output size (`--size`); `None`: from the photos.
    pub size: Option<(u32, u32)>,
    /// Without `size`, the output is never wider than this; panels shrink to fit.
    pub max_width: u32,
    /// A title band above the panels.
    pub title: Option<String>,
    /// A line under the panels ("Individual results vary").
    pub footer: Option<String>,
    pub background: [u8; 3],
    pub label_color: [u8; 3],
    pub logo: Option<Logo>,
}

impl Default for CollageOptions {
    fn default() -> Self {
        CollageOptions {
            layout: Layout::Auto,
            size: None,
            max_width: DEFAULT_MAX_WIDTH,
            title: None,
            footer: None,
            background: BACKGROUND,
            label_color: INK,
            logo: None,
        }
    }
}

impl CollageOptions {
    pub fn frame(&self) -> layout::Frame {
        layout::Frame {
            layout: self.layout,
            size: self.size,
            max_width: self.max_width,
            title: self.title.is_some(),
            footer: self.footer.is_some(),
        }
    }
}

/// Lays out panels for photos of these upright sizes (see [`layout::plan`]).
pub fn plan(sizes: &[(u32, u32)], opts: &CollageOptions) -> Result<Plan> {
    layout::plan(sizes, &opts.frame())
}

/// One panel at `size`, with the title, footer and logo of `opts`.
pub fn plan_one(size: (u32, u32), opts: &CollageOptions) -> Result<Plan> {
    layout::plan_one(size, &opts.frame())
}

/// One upright picture and the text of its label band.
#[derive(Debug, Clone)]
pub struct Tile {
    pub image: RgbImage,
    pub label: String,
}

/// Lays `tiles` out: each is cropped (centred) to its panel and resized.
pub fn compose(tiles: &[Tile], opts: &CollageOptions) -> Result<RgbImage> {
    use rayon::prelude::*;
    let sizes: Vec<(u32, u32)> = tiles.iter().map(|t| t.image.dimensions()).collect();
    let plan = plan(&sizes, opts)?;
    let panels: Vec<RgbImage> = tiles
        .par_iter()
        .zip(plan.tiles.par_iter())
        .map(|(t, r)| frame_image(&t.image, (r.w, r.h), &Framing::default()))
        .collect();
    let labels: Vec<String> = tiles.iter().map(|t| t.label.clone()).collect();
    draw_planned(&plan, &panels, &labels, opts)
}

/// `img` cropped to `framing` in the panel's shape and resized to it.
pub fn frame_image(img: &RgbImage, target: (u32, u32), framing: &Framing) -> RgbImage {
    crop_resize(img, framing.crop(img.dimensions(), target), target)
}

/// The part `crop` of `img`, resized to `tw` x `th`.
pub(crate) fn crop_resize(img: &RgbImage, crop: FRect, (tw, th): (u32, u32)) -> RgbImage {
    let part = crop.pixels(img.width(), img.height());
    if part == (0, 0, img.width(), img.height()) {
        return resize_to(img, tw, th);
    }
    draw::resize_part(img, part, tw, th)
}

/// Draws panels (already at their panel size, or resized to it), labels,
/// title, footer and logo on the plan's canvas.
pub fn draw_planned(
    plan: &Plan,
    panels: &[RgbImage],
    labels: &[String],
    opts: &CollageOptions,
) -> Result<RgbImage> {
    Ok(Backdrop::draw(plan, labels, opts)?.finish(plan, panels, labels, opts))
}

/// A collage's canvas before its photos: what does not depend on them
/// (the background, the texts, the logo scaled to its corner), so that it
/// can be drawn while the photos decode.
pub struct Backdrop {
    canvas: RgbImage,
    logo: Option<draw::ScaledLogo>,
    /// A text overlaps a panel: the texts go on after the panels, over them.
    texts_later: bool,
}

impl Backdrop {
    pub fn draw(plan: &Plan, labels: &[String], opts: &CollageOptions) -> Result<Backdrop> {
        let mut canvas = RgbImage::from_pixel(plan.width, plan.height, Rgb(opts.background));
        let mut texts = plan.bands.iter().chain(&plan.title).chain(&plan.footer);
        let texts_later = texts.any(|b| plan.tiles.iter().any(|t| t.overlaps(b)));
        if !texts_later {
            draw_texts(&mut canvas, plan, labels, opts);
        }
        let logo = opts
            .logo
            .as_ref()
            .map(|l| l.scaled(plan.width, plan.height, plan.margin))
            .transpose()?;
        Ok(Backdrop {
            canvas,
            logo,
            texts_later,
        })
    }

    /// The panels pasted in (each at its tile, fitted when not its size),
    /// then the logo over them.
    pub fn finish(
        self,
        plan: &Plan,
        panels: &[RgbImage],
        labels: &[String],
        opts: &CollageOptions,
    ) -> RgbImage {
        let mut canvas = self.canvas;
        for (img, r) in panels.iter().zip(&plan.tiles) {
            if img.dimensions() == (r.w, r.h) {
                paste(&mut canvas, img, r.x, r.y);
            } else {
                let fitted = frame_image(img, (r.w, r.h), &Framing::default());
                paste(&mut canvas, &fitted, r.x, r.y);
            }
        }
        if self.texts_later {
            draw_texts(&mut canvas, plan, labels, opts);
        }
        if let Some(logo) = &self.logo {
            logo.blend(&mut canvas);
        }
        canvas
    }
}

/// Each panel's label, the title and the footer, in that order.
fn draw_texts(canvas: &mut RgbImage, plan: &Plan, labels: &[String], opts: &CollageOptions) {
    let font = draw::font();
    let colors = (opts.background, opts.label_color);
    for (l, band) in labels.iter().zip(&plan.bands).take(plan.tiles.len()) {
        draw::draw_label(canvas, &font, l, *band, plan.font_px, colors);
    }
    if let (Some(text), Some(r)) = (&opts.title, plan.title) {
        draw::draw_label(canvas, &font, text, r, plan.font_px * 1.25, colors);
    }
    if let (Some(text), Some(r)) = (&opts.footer, plan.footer) {
        draw::draw_label(canvas, &font, text, r, plan.font_px * 0.75, colors);
    }
}

/// `img` copied onto `canvas` at (`x`, `y`), clipped at its edges: row by
/// row (`imageops::replace` goes pixel by pixel, 7% of a posting collage).
fn paste(canvas: &mut RgbImage, img: &RgbImage, x: u32, y: u32) {
    let (cw, ch) = canvas.dimensions();
    let (iw, ih) = img.dimensions();
    let w = iw.min(cw.saturating_sub(x)) as usize * 3;
    let rows = ih.min(ch.saturating_sub(y)) as usize;
    if w == 0 {
        return;
    }
    let (cstride, istride) = (cw as usize * 3, iw as usize * 3);
    let start = y as usize * cstride + x as usize * 3;
    let buf: &mut [u8] = canvas;
    let Some(dst) = buf.get_mut(start..) else {
        return;
    };
    for (d, s) in dst
        .chunks_mut(cstride)
        .zip(img.as_raw().chunks(istride))
        .take(rows)
    {
        d[..w].copy_from_slice(&s[..w]);
    }
}

/// Writes a collage atomically after auditing the very bytes written (no
/// metadata, upright). True when an identical file was there already.
pub fn publish(
    dest: &std::path::Path,
    bytes: &[u8],
    format: Format,
    mode: crate::commit::WriteMode,
    limits: &Limits,
) -> Result<bool> {
    if !mode.overwrite && std::fs::read(dest).is_ok_and(|old| old == bytes) {
        return Ok(true);
    }
    crate::commit::write_verified(dest, bytes, mode, |written| {
        pipeline::audit_encoded(written, format, 1, limits)
    })?;
    Ok(false)
}

/// How each photo becomes a tile.
#[derive(Clone)]
pub struct TileOptions<'a> {
    pub limits: Limits,
    /// Tiles are shrunk at once to fit in a square of this side (the
    /// collage is never wider), so a batch of 12 MP photos stays small.
    pub fit: u32,
    /// Regions destroyed in the full-size upright picture, before it shrinks.
    pub redaction: Option<Redaction<'a>>,
    /// The exact size the tile will be drawn at, when the layout is known
    /// beforehand (see [`probe_tile`] and [`plan`]): the photo is then
    /// decoded reduced, cropped to `framing` in the target's shape and
    /// resized once, straight to this size, and `fit` is not used.
    pub target: Option<(u32, u32)>,
    /// Which part of the upright, redacted photo fills the target.
    pub framing: Framing,
}

impl Default for TileOptions<'_> {
    fn default() -> Self {
        TileOptions {
            limits: Limits::default(),
            fit: DEFAULT_MAX_WIDTH,
            redaction: None,
            target: None,
            framing: Framing::default(),
        }
    }
}

/// A photo read for a collage: its upright, edited, shrunk picture and its
/// EXIF capture time (read before any metadata is dropped).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub image: RgbImage,
    pub capture: Option<DateTime>,
    /// Regions clipped at the photo's edge.
    pub warnings: Vec<String>,
}

/// What [`prepare_tile`] will give, known from the headers alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub capture: Option<DateTime>,
    /// The size of the prepared tile without a `target`: the upright
    /// picture shrunk to fit `fit` (`None` when only a decode can tell).
    pub size: Option<(u32, u32)>,
    /// The upright picture size (`None` when only a decode can tell).
    pub upright: Option<(u32, u32)>,
    /// The container, and its EXIF orientation (1 when none).
    pub format: Format,
    pub orientation: u16,
}

/// Reads a photo's headers: capture time and the size [`prepare_tile`]
/// gives it without a `target`. With every photo's size, [`plan`] gives
/// each its target before any pixel is decoded.
pub fn probe_tile(bytes: &[u8], extension: Option<&str>, opts: &TileOptions) -> Result<Probe> {
    let parsed = pipeline::inspect(bytes, extension, &opts.limits)?;
    Ok(probed(&parsed, opts))
}

fn probed(parsed: &crate::container::Parsed, opts: &TileOptions) -> Probe {
    Probe {
        capture: capture_time(parsed),
        size: upright_size(parsed).map(|(w, h)| fitted(w, h, opts.fit)),
        upright: upright_size(parsed),
        format: parsed.format,
        orientation: parsed.orientation(),
    }
}

fn capture_time(parsed: &crate::container::Parsed) -> Option<DateTime> {
    parsed
        .exif
        .capture_time
        .as_deref()
        .and_then(DateTime::parse_exif)
}

/// The upright picture size from the container headers, when they tell it.
fn upright_size(parsed: &crate::container::Parsed) -> Option<(u32, u32)> {
    use crate::container::Container;
    let (w, h) = match &parsed.container {
        Container::Jpeg(j) => (j.width, j.height),
        Container::Png(p) => (p.width, p.height),
        Container::Webp(w) => (w.width, w.height),
        Container::Gif(g) => (g.width, g.height),
        Container::Tiff(t) => (t.pages[0].width, t.pages[0].height),
        Container::Heif(h) => return Some(h.display_size()),
    };
    if w == 0 || h == 0 {
        return None; // e.g. a JPEG height given later by a DNL marker
    }
    Some(if (5..=8).contains(&parsed.orientation()) {
        (h, w)
    } else {
        (w, h)
    })
}

/// `w` x `h` shrunk (never enlarged) to fit in a `fit` x `fit` square.
fn fitted(w: u32, h: u32, fit: u32) -> (u32, u32) {
    let fit = fit.max(1);
    if w <= fit && h <= fit {
        return (w, h);
    }
    let s = (fit as f64 / w as f64).min(fit as f64 / h as f64);
    let tw = ((w as f64 * s).round() as u32).clamp(1, fit);
    let th = ((h as f64 * s).round() as u32).clamp(1, fit);
    (tw, th)
}

/// Parses, decodes upright, edits and shrinks one photo.
///
/// Without regions, a JPEG is decoded reduced in the DCT (1/2, 1/4, 1/8)
/// to no less than the tile size, then resized once: most of the decode
/// and resize work of a 12 MP photo is skipped. With regions, the photo is
/// decoded at full size and the regions destroyed there, exactly as in
/// `clean`, before it shrinks: the region coordinates, block sizes and the
/// irreversibility argument of [`redact`] stay those of the original
/// photo, whatever the collage size.
pub fn prepare_tile(bytes: &[u8], extension: Option<&str>, opts: &TileOptions) -> Result<Prepared> {
    let probe = probe_tile(bytes, extension, opts)?;
    prepare_probed(bytes, &probe, opts)
}

/// [`prepare_tile`] of a photo [`probe_tile`] read already (the same
/// `bytes`): its headers are not parsed again.
pub fn prepare_probed(bytes: &[u8], probe: &Probe, opts: &TileOptions) -> Result<Prepared> {
    let (capture, upright) = (probe.capture, probe.upright);
    let (format, orientation) = (probe.format, probe.orientation);
    // The least decoded size that still gives the target its pixels.
    // The crop, in fractions of the photo (so pixel crops stay true on a reduced decode).
    let crop = opts
        .target
        .zip(upright)
        .map(|(t, full)| opts.framing.crop(full, t));
    let min = match (opts.target, crop) {
        (Some(t), Some(c)) => {
            let need = |side: u32, frac: f64| ((side as f64 / frac.max(1e-6)).ceil() as u32).max(1);
            Some((need(t.0, c.w), need(t.1, c.h)))
        }
        (Some(_), None) => None,
        (None, _) => upright.map(|(w, h)| fitted(w, h, opts.fit)),
    };
    // Without regions, and with the crop known, only the crop is decoded.
    if let (Some(t), Some(c), Some(min), None) = (opts.target, crop, min, &opts.redaction) {
        let window = |w, h| c.pixels(w, h);
        let decoded =
            pixels::decode_upright_window(bytes, format, orientation, &opts.limits, min, &window)?;
        return Ok(Prepared {
            image: resize_to(&flatten(decoded.image), t.0, t.1),
            capture,
            warnings: Vec::new(),
        });
    }
    let mut decoded = match (min, &opts.redaction) {
        (Some(min), None) => {
            pixels::decode_upright_reduced(bytes, format, orientation, &opts.limits, min)?
        }
        _ => pixels::decode_upright(bytes, format, orientation, &opts.limits)?,
    };
    // Regions first, on the whole upright photo: a crop never shows what a region hid.
    let warnings = match &opts.redaction {
        Some(r) => redact::apply(&mut decoded.image, r)?,
        None => Vec::new(),
    };
    let rgb = flatten(decoded.image);
    let image = match opts.target {
        Some(t) => {
            let c = crop.unwrap_or_else(|| opts.framing.crop(rgb.dimensions(), t));
            crop_resize(&rgb, c, t)
        }
        None => {
            let (tw, th) = fitted(rgb.width(), rgb.height(), opts.fit);
            if rgb.dimensions() == (tw, th) {
                rgb
            } else {
                resize_to(&rgb, tw, th)
            }
        }
    };
    Ok(Prepared {
        image,
        capture,
        warnings,
    })
}

/// 8-bit RGB; transparent pixels are composited over the white background.
fn flatten(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * a + BACKGROUND[c] as u32 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// Mirrors a tile left-right (mirror shots).
pub fn flip(tile: &mut RgbImage) {
    imageops::flip_horizontal_in_place(tile);
}

/// Encodes a collage with no metadata at all and audits the result with the
/// parser `check` uses. JPEG, PNG and WebP (lossless) only.
pub fn encode(img: &mut RgbImage, format: Format, quality: u8, limits: &Limits) -> Result<Vec<u8>> {
    if !matches!(format, Format::Jpeg | Format::Png | Format::Webp) {
        return Err(Error::Unsupported(format!(
            "{} collages; use .jpg, .png or .webp",
            format.name()
        )));
    }
    // The pixels lent to the encoder and taken back: no 4 MB copy.
    let dynamic = DynamicImage::ImageRgb8(std::mem::take(img));
    let bytes = pixels::encode(
        &dynamic,
        format,
        &EncodeOptions {
            quality,
            striped: true,
            ..EncodeOptions::default()
        },
    );
    if let DynamicImage::ImageRgb8(back) = dynamic {
        *img = back;
    }
    let bytes = bytes?;
    pipeline::audit_encoded(&bytes, format, 1, limits)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{fixture, psnr};

    fn band_pixels(img: &RgbImage, r: Rect) -> Vec<u8> {
        let mut v = Vec::new();
        for y in r.y..r.y + r.h {
            for x in r.x..r.x + r.w {
                v.extend_from_slice(&img.get_pixel(x, y).0);
            }
        }
        v
    }

    #[test]
    fn labels_are_drawn_and_differ() {
        let tile = |c: u8, label: &str| Tile {
            image: RgbImage::from_pixel(240, 180, Rgb([c, 100, 50])),
            label: label.into(),
        };
        let tiles = [tile(200, "Before"), tile(10, "After"), tile(90, "")];
        let o = CollageOptions::default();
        let img = compose(&tiles, &o).unwrap();
        let p = plan(&[(240, 180); 3], &o).unwrap();
        assert_eq!(img.dimensions(), (p.width, p.height));
        let b: Vec<Vec<u8>> = p.bands.iter().map(|r| band_pixels(&img, *r)).collect();
        assert!(b[0].iter().any(|&v| v < 128), "label band 0 is blank");
        assert_ne!(b[0], b[1]);
        assert!(
            b[2].iter().all(|&v| v == 255),
            "an empty label leaves its band blank"
        );
        let centre = |r: Rect| *img.get_pixel(r.x + r.w / 2, r.y + r.h / 2);
        assert_eq!(centre(p.tiles[0]), Rgb([200, 100, 50]));
        assert_eq!(centre(p.tiles[1]), Rgb([10, 100, 50]));
    }

    #[test]
    fn long_labels_shrink_to_their_band() {
        let tiles = [
            Tile {
                image: RgbImage::from_pixel(60, 200, Rgb([0, 0, 0])),
                label: "A very long label that cannot fit".into(),
            },
            Tile {
                image: RgbImage::from_pixel(60, 200, Rgb([0, 0, 0])),
                label: "B".into(),
            },
        ];
        let img = compose(&tiles, &CollageOptions::default()).unwrap();
        let p = plan(&[(60, 200); 2], &CollageOptions::default()).unwrap();
        assert_eq!(img.dimensions(), (p.width, p.height));
        // Nothing drawn in the margin between the two bands.
        let gap = Rect {
            x: p.bands[0].x + p.bands[0].w,
            y: p.bands[0].y,
            w: p.margin,
            h: p.bands[0].h,
        };
        assert!(band_pixels(&img, gap).iter().all(|&v| v == 255));
    }

    #[test]
    fn transparent_pixels_become_white() {
        let mut rgba = image::RgbaImage::from_pixel(2, 1, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 255]));
        let out = flatten(DynamicImage::ImageRgba8(rgba));
        assert_eq!(out.get_pixel(0, 0), &Rgb([255, 255, 255]));
        assert_eq!(out.get_pixel(1, 0), &Rgb([10, 20, 30]));
    }

    #[test]
    fn encoded_collages_carry_no_metadata() {
        let img = RgbImage::from_pixel(64, 32, Rgb([1, 2, 3]));
        for f in [Format::Jpeg, Format::Png, Format::Webp] {
            let bytes = encode(&mut img.clone(), f, 90, &Limits::default()).unwrap();
            let parsed = pipeline::inspect(&bytes, None, &Limits::default()).unwrap();
            assert!(parsed.inventory.is_clean(), "{f:?}: {:?}", parsed.inventory);
        }
        assert!(encode(&mut img.clone(), Format::Gif, 90, &Limits::default()).is_err());
    }

    #[test]
    fn probe_tells_the_prepared_size() {
        for (name, fit) in [
            ("dirty/jpeg_orient_6.jpg", 3000),
            ("dirty/jpeg_orient_6.jpg", 40),
            ("dirty/jpeg_orient_1.jpg", 50),
            ("dirty/jpeg_full.jpg", 100),
            ("dirty/jpeg_progressive.jpg", 70),
            ("dirty/png_orient_6.png", 30),
            ("dirty/webp_meta.webp", 3000),
        ] {
            let bytes = fixture(name);
            let opts = TileOptions {
                fit,
                ..TileOptions::default()
            };
            let probe = probe_tile(&bytes, Some(name.rsplit('.').next().unwrap()), &opts).unwrap();
            let prepared = prepare_tile(&bytes, None, &opts).unwrap();
            assert_eq!(
                probe.size,
                Some(prepared.image.dimensions()),
                "{name} fit {fit}"
            );
            assert_eq!(probe.capture, prepared.capture, "{name}");
        }
    }

    /// Gradients and soft bands, like a photo.
    fn photo_like(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                (((x / 7 + y / 5) % 64) * 2 + 60) as u8,
            ])
        })
    }

    /// A tile decoded reduced and resized once looks like the full decode
    /// resized as before, and has exactly the size asked for.
    #[test]
    fn targeted_tiles_match_full_decode_then_resize() {
        let src = photo_like(1200, 900);
        let bytes = encode(&mut src.clone(), Format::Jpeg, 92, &Limits::default()).unwrap();
        let old = prepare_tile(&bytes, None, &TileOptions::default()).unwrap();
        assert_eq!(old.image.dimensions(), (1200, 900));
        for target in [(293, 220), (600, 450), (151, 113)] {
            let opts = TileOptions {
                target: Some(target),
                ..TileOptions::default()
            };
            let fast = prepare_tile(&bytes, None, &opts).unwrap();
            assert_eq!(fast.image.dimensions(), target);
            let expected = resize_to(&old.image, target.0, target.1);
            let p = psnr(&fast.image, &expected);
            assert!(p > 30.0, "{target:?}: PSNR {p:.1} dB");
        }
    }

    /// With regions, the tile is decoded at full size and the regions are
    /// destroyed there: the targeted tile equals the old tile resized.
    #[test]
    fn targeted_tiles_with_regions_are_redacted_at_full_size() {
        let src = RgbImage::from_fn(640, 480, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let bytes = encode(&mut src.clone(), Format::Jpeg, 92, &Limits::default()).unwrap();
        let regions = ["100,100,300,200".parse().unwrap()];
        let redaction = Redaction {
            regions: &regions,
            default_effect: crate::region::Effect::Fill,
            fill: [0, 0, 0],
        };
        let full = prepare_tile(
            &bytes,
            None,
            &TileOptions {
                redaction: Some(redaction.clone()),
                ..TileOptions::default()
            },
        )
        .unwrap();
        let fast = prepare_tile(
            &bytes,
            None,
            &TileOptions {
                redaction: Some(redaction),
                target: Some((160, 120)),
                ..TileOptions::default()
            },
        )
        .unwrap();
        assert_eq!(fast.image, resize_to(&full.image, 160, 120));
        // The filled region, well inside, is black.
        for y in 30..45 {
            for x in 30..95 {
                assert_eq!(fast.image.get_pixel(x, y), &Rgb([0, 0, 0]), "{x},{y}");
            }
        }
    }

    #[test]
    fn paste_is_replace_row_by_row() {
        let img = textured(37, 23);
        for (x, y) in [(0, 0), (5, 7), (40, 30), (60, 3), (2, 50)] {
            let mut a = RgbImage::from_pixel(64, 48, Rgb([1, 2, 3]));
            let mut b = a.clone();
            paste(&mut a, &img, x, y);
            imageops::replace(&mut b, &img, x as i64, y as i64);
            assert_eq!(a, b, "{x},{y}");
        }
    }

    /// A picture with detail everywhere, so a misplaced window shows.
    fn textured(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                if (x / 24 + y / 24) % 2 == 0 { 40 } else { 220 },
            ])
        })
    }

    /// Framed tiles of a posting collage (the crop at N/8, the frame cut
    /// after the crop's last row) look like the full decode cropped to the
    /// same framing and resized, and have exactly the panel's size.
    #[test]
    fn framed_tiles_match_a_full_decode_crop_and_resize() {
        // Photo-like (a hard 24 px checker aliases differently in any two
        // resizes, whatever the decode).
        let src = photo_like(1600, 1200);
        let bytes = encode(&mut src.clone(), Format::Jpeg, 92, &Limits::default()).unwrap();
        let full = pixels::decode_upright(&bytes, Format::Jpeg, 1, &Limits::default())
            .unwrap()
            .image
            .into_rgb8();
        for (zoom, cx, cy, target) in [
            (1.25, 0.45, 0.55, (416, 148)),
            (1.5, 0.5, 0.4, (300, 107)),
            (1.1, 0.6, 0.5, (520, 185)),
            (2.0, 0.5, 0.1, (200, 150)),
        ] {
            let framing = Framing::Zoom { zoom, cx, cy };
            let opts = TileOptions {
                target: Some(target),
                framing,
                ..TileOptions::default()
            };
            let fast = prepare_tile(&bytes, None, &opts).unwrap();
            assert_eq!(fast.image.dimensions(), target);
            let expected = frame_image(&full, target, &framing);
            let p = psnr(&fast.image, &expected);
            assert!(p > 30.0, "zoom {zoom} at {cx},{cy}: PSNR {p:.1} dB");
        }
    }

    /// Decoding only a window (reduced, any orientation) gives exactly the
    /// pixels that decoding the whole reduced picture and cropping gives.
    #[test]
    fn a_window_decode_matches_a_whole_decode_then_crop() {
        let bytes = encode(
            &mut textured(643, 418),
            Format::Jpeg,
            95,
            &Limits::default(),
        )
        .unwrap();
        let crop = FRect {
            x: 0.23,
            y: 0.31,
            w: 0.41,
            h: 0.37,
        };
        let window = |w, h| crop.pixels(w, h);
        let limits = Limits::default();
        for orientation in 1..=8u16 {
            // Full size, 1/2 and 1/4 (upright minimum sizes).
            for min in [(600, 600), (300, 200), (150, 100)] {
                let part = pixels::decode_upright_window(
                    &bytes,
                    Format::Jpeg,
                    orientation,
                    &limits,
                    min,
                    &window,
                )
                .unwrap()
                .image
                .into_rgb8();
                let whole =
                    pixels::decode_upright_reduced(&bytes, Format::Jpeg, orientation, &limits, min)
                        .unwrap()
                        .image
                        .into_rgb8();
                let (x, y, w, h) = window(whole.width(), whole.height());
                let expected = imageops::crop_imm(&whole, x, y, w, h).to_image();
                assert_eq!(
                    part.dimensions(),
                    expected.dimensions(),
                    "{orientation} {min:?}"
                );
                // The very pixels, edges included: the window's first and
                // last columns upsample their chroma from real neighbours.
                let differ = part
                    .pixels()
                    .zip(expected.pixels())
                    .filter(|(a, b)| a != b)
                    .count();
                assert_eq!(differ, 0, "orientation {orientation}, {min:?}");
            }
        }
    }
}
