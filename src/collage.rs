//! Before/after collages: tiles in a row, a column or a grid, a label band
//! under each tile, an optional title, all under a width cap.
//!
//! ```text
//! bytes ──► parse (capture time) ──► decode upright ──► edit ──► fit in a
//! max_width square ──► [order, flip] ──► plan ──► scale + paste + labels ──► encode ──► audit
//! ```
//!
//! Everything here works in memory: [`prepare_tile`] turns one photo's bytes
//! into a [`Tile`], [`compose`] lays tiles out, [`encode`] makes the output
//! bytes and audits them with the parser `check` uses. The file system
//! (case folders, file times, atomic writes) is the caller's.
//!
//! Time labels are intervals since the first photo ("Day 12", "Month 6",
//! "Year 1 Month 3"), never calendar dates: dates identify patients.

use crate::container::{Format, Limits};
use crate::error::{Error, Result};
use crate::pipeline;
use crate::pixels::{self, EncodeOptions};
use crate::redact::{self, Redaction};
use ab_glyph::{FontRef, PxScale};
use image::imageops::{self, FilterType};
use image::{DynamicImage, Rgb, RgbImage};
use rayon::prelude::*;

/// DejaVu Sans Bold 2.37 (Bitstream Vera + Arev licence, `assets/fonts/LICENSE`).
pub const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

/// Default `--max-width`, in pixels.
pub const DEFAULT_MAX_WIDTH: u32 = 3000;

/// No output side may exceed this (JPEG's limit is 65,535).
const MAX_SIDE: u32 = 65_000;

/// Smallest common tile side the width cap may force.
const MIN_TILE: u32 = 8;

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([20, 20, 20]);

/// How tiles are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Side by side, all scaled to a common height.
    #[default]
    Row,
    /// Stacked, all scaled to a common width.
    Column,
    /// `ceil(sqrt(n))` columns; tiles at a common height, centred in equal cells.
    Grid,
}

/// Collage settings.
#[derive(Debug, Clone)]
pub struct CollageOptions {
    pub layout: Layout,
    /// The output is never wider than this; tiles shrink to fit.
    pub max_width: u32,
    /// A title band above the tiles.
    pub title: Option<String>,
}

impl Default for CollageOptions {
    fn default() -> Self {
        CollageOptions {
            layout: Layout::Row,
            max_width: DEFAULT_MAX_WIDTH,
            title: None,
        }
    }
}

/// One upright picture and the text of its label band.
#[derive(Debug, Clone)]
pub struct Tile {
    pub image: RgbImage,
    pub label: String,
}

pub use crate::region::Rect;

/// Where everything goes: computed from the tile sizes alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub width: u32,
    pub height: u32,
    /// Space around and between tiles.
    pub margin: u32,
    /// Label text size in pixels (a label too wide for its band is drawn smaller).
    pub font_px: f32,
    /// The title band, when there is a title.
    pub title: Option<Rect>,
    /// Where each scaled picture goes, in input order.
    pub tiles: Vec<Rect>,
    /// The label band under each picture (as wide as the picture).
    pub bands: Vec<Rect>,
}

/// Sizes that follow from the common tile side `t` (height for row and
/// grid, width for column).
struct Metrics {
    margin: u32,
    font_px: f32,
    band: u32,
    title: u32,
}

fn metrics(t: u32, has_title: bool) -> Metrics {
    let font_px = (t as f32 / 12.0).clamp(12.0, 72.0).round();
    Metrics {
        margin: (t / 40).max(4),
        font_px,
        band: (font_px * 1.6).ceil() as u32,
        title: if has_title {
            (font_px * 2.0).ceil() as u32
        } else {
            0
        },
    }
}

/// `side * num / den`, rounded, at least 1.
fn scaled(side: u32, num: u32, den: u32) -> u32 {
    ((side as u64 * num as u64 + den as u64 / 2) / den.max(1) as u64).max(1) as u32
}

/// Lays out tiles of these sizes (width, height). Tiles are never enlarged:
/// the common side starts at the smallest tile's and shrinks until the
/// collage fits in `max_width`.
///
/// - Row: all tiles at the smallest height; width = margins + tile widths.
/// - Column: all tiles at the smallest width; width = that + 2 margins.
/// - Grid: as row, in `ceil(sqrt(n))` columns of equal cells (the widest tile).
///
/// Each tile has a label band under it; the margin is `max(4, side / 40)`,
/// the label size `side / 12` clamped to 12..=72 px, the band 1.6× that.
pub fn plan(sizes: &[(u32, u32)], opts: &CollageOptions) -> Result<Plan> {
    if sizes.len() < 2 {
        return Err(Error::Invalid(format!(
            "a collage needs at least two photos, found {}",
            sizes.len()
        )));
    }
    if sizes.iter().any(|&(w, h)| w == 0 || h == 0) {
        return Err(Error::Invalid("a photo has no pixels".into()));
    }
    let start = match opts.layout {
        Layout::Row | Layout::Grid => sizes.iter().map(|s| s.1).min(),
        Layout::Column => sizes.iter().map(|s| s.0).min(),
    }
    .unwrap_or(MIN_TILE);
    let fits = |t: u32| {
        let p = plan_at(sizes, opts, t);
        p.width <= opts.max_width
    };
    let t = if fits(start) {
        start
    } else if start <= MIN_TILE || !fits(MIN_TILE) {
        return Err(Error::Invalid(format!(
            "--max-width {} is too small for {} photos in a {:?} layout",
            opts.max_width,
            sizes.len(),
            opts.layout
        )));
    } else {
        // Largest t in [MIN_TILE, start) that fits; the width grows with t.
        let (mut lo, mut hi) = (MIN_TILE, start);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let p = plan_at(sizes, opts, t);
    if p.width > MAX_SIDE || p.height > MAX_SIDE {
        return Err(Error::Invalid(format!(
            "the collage would be {}x{} pixels; use --layout grid or a smaller --max-width",
            p.width, p.height
        )));
    }
    Ok(p)
}

fn plan_at(sizes: &[(u32, u32)], opts: &CollageOptions, t: u32) -> Plan {
    let m = metrics(t, opts.title.is_some());
    let top = m.margin + m.title;
    let mut tiles = Vec::new();
    let mut bands = Vec::new();
    let (width, height) = match opts.layout {
        Layout::Row => {
            let mut x = m.margin;
            for &(w, h) in sizes {
                let tw = scaled(w, t, h);
                tiles.push(Rect::at(x, top).of_size(tw, t));
                bands.push(Rect::at(x, top + t).of_size(tw, m.band));
                x += tw + m.margin;
            }
            (x, top + t + m.band + m.margin)
        }
        Layout::Column => {
            let mut y = top;
            for &(w, h) in sizes {
                let th = scaled(h, t, w);
                tiles.push(Rect::at(m.margin, y).of_size(t, th));
                bands.push(Rect::at(m.margin, y + th).of_size(t, m.band));
                y += th + m.band + m.margin;
            }
            (t + 2 * m.margin, y)
        }
        Layout::Grid => {
            let n = sizes.len();
            let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n);
            let rows = n.div_ceil(cols) as u32;
            let widths: Vec<u32> = sizes.iter().map(|&(w, h)| scaled(w, t, h)).collect();
            let cell = widths.iter().copied().max().unwrap_or(1);
            for (i, &tw) in widths.iter().enumerate() {
                let (c, r) = ((i % cols) as u32, (i / cols) as u32);
                let x = m.margin + c * (cell + m.margin) + (cell - tw) / 2;
                let y = top + r * (t + m.band + m.margin);
                tiles.push(Rect::at(x, y).of_size(tw, t));
                bands.push(Rect::at(x, y + t).of_size(tw, m.band));
            }
            (
                m.margin + cols as u32 * (cell + m.margin),
                top + rows * (t + m.band + m.margin),
            )
        }
    };
    let title = opts
        .title
        .as_ref()
        .map(|_| Rect::at(m.margin, m.margin).of_size(width.saturating_sub(2 * m.margin), m.title));
    Plan {
        width,
        height,
        margin: m.margin,
        font_px: m.font_px,
        title,
        tiles,
        bands,
    }
}

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT).expect("the embedded font parses")
}

/// Smallest label size; longer labels are cut short with an ellipsis.
const MIN_FONT_PX: f32 = 8.0;

/// Draws `text` centred in `band`: smaller when it would not fit, cut short
/// with "…" when even the smallest size does not, never outside the band.
fn draw_label(canvas: &mut RgbImage, font: &FontRef, text: &str, band: Rect, px: f32) {
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
    let mut strip = RgbImage::from_pixel(band.w, band.h, BACKGROUND);
    let x = (band.w as i64 - w as i64) / 2;
    let y = (band.h as i64 - h as i64) / 2;
    imageproc::drawing::draw_text_mut(
        &mut strip,
        INK,
        x as i32,
        y as i32,
        PxScale::from(px),
        font,
        &shown,
    );
    imageops::replace(canvas, &strip, band.x as i64, band.y as i64);
}

/// Downscales (or, rarely, slightly enlarges) to exactly `w`×`h`: area
/// averaging for large reductions, then a triangle filter.
fn resize_to(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    if img.dimensions() == (w, h) {
        return img.clone();
    }
    if w * 2 <= img.width() && h * 2 <= img.height() {
        // Box-average close to the target (fast on 12 MP), finish with a filter.
        let pre = imageops::thumbnail(img, w * 2, h * 2);
        return imageops::resize(&pre, w, h, FilterType::Triangle);
    }
    imageops::resize(img, w, h, FilterType::Triangle)
}

/// Lays `tiles` out and draws their labels and the title.
pub fn compose(tiles: &[Tile], opts: &CollageOptions) -> Result<RgbImage> {
    let sizes: Vec<(u32, u32)> = tiles.iter().map(|t| t.image.dimensions()).collect();
    let plan = plan(&sizes, opts)?;
    let scaled: Vec<RgbImage> = tiles
        .par_iter()
        .zip(plan.tiles.par_iter())
        .map(|(tile, r)| resize_to(&tile.image, r.w, r.h))
        .collect();
    let font = font();
    let mut canvas = RgbImage::from_pixel(plan.width, plan.height, BACKGROUND);
    for (i, img) in scaled.iter().enumerate() {
        let r = plan.tiles[i];
        imageops::replace(&mut canvas, img, r.x as i64, r.y as i64);
        draw_label(
            &mut canvas,
            &font,
            &tiles[i].label,
            plan.bands[i],
            plan.font_px,
        );
    }
    if let (Some(text), Some(r)) = (&opts.title, plan.title) {
        draw_label(&mut canvas, &font, text, r, plan.font_px * 1.25);
    }
    Ok(canvas)
}

/// Labels when none are given: Before / After, Before / During / After,
/// Before / During 1..k / After.
pub fn default_labels(n: usize) -> Vec<String> {
    let mut v: Vec<String> = match n {
        0 => return Vec::new(),
        1 => return vec!["Before".into()],
        2 => Vec::new(),
        3 => vec!["During".into()],
        _ => (1..=n - 2).map(|i| format!("During {i}")).collect(),
    };
    v.insert(0, "Before".into());
    v.push("After".into());
    v
}

/// Splits `--labels "Week 0,Week 12"`; each label is trimmed.
pub fn parse_labels(s: &str) -> Vec<String> {
    s.split(',').map(|l| l.trim().to_string()).collect()
}

/// A wall-clock time as a camera records it (no time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// Parses EXIF's `YYYY:MM:DD HH:MM:SS` (`-` in the date and a missing
    /// time are accepted). Blank or impossible values ("0000:00:00") give `None`.
    pub fn parse_exif(s: &str) -> Option<DateTime> {
        let s = s.trim().trim_end_matches('\0');
        let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
        let num = |p: &str| p.trim().parse::<u32>().ok();
        let d: Vec<&str> = date.split([':', '-']).collect();
        let t: Vec<&str> = time.split(':').collect();
        if d.len() != 3 || t.len() < 2 {
            return None;
        }
        let dt = DateTime {
            year: num(d[0])? as i32,
            month: num(d[1])?,
            day: num(d[2])?,
            hour: num(t[0])?,
            minute: num(t[1])?,
            second: t.get(2).map_or(Some(0), |s| num(s.get(..2).unwrap_or(s)))?,
        };
        let valid = (1..=9999).contains(&dt.year)
            && dt.civil_date().is_some()
            && dt.hour < 24
            && dt.minute < 60
            && dt.second < 61;
        valid.then_some(dt)
    }

    /// The UTC date and time of `secs` since 1970-01-01 (jiff), clamped to
    /// the years -9999..=9999.
    pub fn from_unix(secs: i64) -> DateTime {
        const EPOCH: jiff::civil::DateTime = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
        let d = EPOCH
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap_or(if secs < 0 {
                jiff::civil::DateTime::MIN
            } else {
                jiff::civil::DateTime::MAX
            });
        DateTime {
            year: d.year().into(),
            month: d.month() as u32,
            day: d.day() as u32,
            hour: d.hour() as u32,
            minute: d.minute() as u32,
            second: d.second() as u32,
        }
    }

    /// The calendar date, when it exists (jiff checks month lengths and leap years).
    fn civil_date(&self) -> Option<jiff::civil::Date> {
        let year = i16::try_from(self.year).ok()?;
        let month = i8::try_from(self.month).ok()?;
        let day = i8::try_from(self.day).ok()?;
        jiff::civil::Date::new(year, month, day).ok()
    }

    /// Days since 1970-01-01.
    fn day_number(&self) -> i64 {
        const EPOCH: jiff::civil::Date = jiff::civil::date(1970, 1, 1);
        self.civil_date()
            .and_then(|d| d.since(EPOCH).ok())
            .map_or(0, |span| span.get_days().into())
    }
}

/// The interval from `first` to `this`, as clinicians count it: "Day N"
/// (calendar days) within the first month, then "Month N", then "Year N"
/// or "Year N Month M". Whole months only count once the day of the month
/// (and time of day) is reached again. An earlier `this` reads "… before".
pub fn interval_label(first: DateTime, this: DateTime) -> String {
    if this < first {
        return format!("{} before", interval_label(this, first));
    }
    let mut months = (this.year - first.year) as i64 * 12 + this.month as i64 - first.month as i64;
    let clock = |d: &DateTime| (d.day, d.hour, d.minute, d.second);
    if clock(&this) < clock(&first) {
        months -= 1;
    }
    if months <= 0 {
        return format!("Day {}", this.day_number() - first.day_number());
    }
    let (years, months) = (months / 12, months % 12);
    match (years, months) {
        (0, m) => format!("Month {m}"),
        (y, 0) => format!("Year {y}"),
        (y, m) => format!("Year {y} Month {m}"),
    }
}

/// How a photo sorts within its case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// EXIF DateTimeOriginal, else DateTimeDigitized (CreateDate).
    pub capture: Option<DateTime>,
    /// The file's modification time, when the EXIF has none.
    pub file_time: Option<DateTime>,
    /// The file name, the last tie-breaker.
    pub name: String,
}

impl SortKey {
    /// The time the photo sorts (and is labelled) by.
    pub fn time(&self) -> Option<DateTime> {
        self.capture.or(self.file_time)
    }
}

/// The chronological order of `keys`, as indices: by capture time, then
/// file time, then name; photos with no time at all come last.
pub fn chronological_order(keys: &[SortKey]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ka, kb) = (&keys[a], &keys[b]);
        (ka.time().is_none(), ka.time(), &ka.name).cmp(&(kb.time().is_none(), kb.time(), &kb.name))
    });
    idx
}

/// `items` (one per key) put in the chronological order of `keys`.
pub fn in_chronological_order<T>(items: Vec<T>, keys: &[SortKey]) -> Vec<T> {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    chronological_order(keys)
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
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
    /// decoded reduced and resized once, straight to this size, and `fit`
    /// is not used.
    pub target: Option<(u32, u32)>,
}

impl Default for TileOptions<'_> {
    fn default() -> Self {
        TileOptions {
            limits: Limits::default(),
            fit: DEFAULT_MAX_WIDTH,
            redaction: None,
            target: None,
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
}

/// Reads a photo's headers: capture time and the size [`prepare_tile`]
/// gives it without a `target`. With every photo's size, [`plan`] gives
/// each its target before any pixel is decoded.
pub fn probe_tile(bytes: &[u8], extension: Option<&str>, opts: &TileOptions) -> Result<Probe> {
    let parsed = pipeline::inspect(bytes, extension, &opts.limits)?;
    Ok(Probe {
        capture: capture_time(&parsed),
        size: upright_size(&parsed).map(|(w, h)| fitted(w, h, opts.fit)),
    })
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
    let parsed = pipeline::inspect(bytes, extension, &opts.limits)?;
    let capture = capture_time(&parsed);
    let size = opts
        .target
        .or_else(|| upright_size(&parsed).map(|(w, h)| fitted(w, h, opts.fit)));
    let (format, orientation) = (parsed.format, parsed.orientation());
    let mut decoded = match (size, &opts.redaction) {
        (Some(min), None) => {
            pixels::decode_upright_reduced(bytes, format, orientation, &opts.limits, min)?
        }
        _ => pixels::decode_upright(bytes, format, orientation, &opts.limits)?,
    };
    let warnings = match &opts.redaction {
        Some(r) => redact::apply(&mut decoded.image, r)?,
        None => Vec::new(),
    };
    let rgb = flatten(decoded.image);
    let (tw, th) = size.unwrap_or_else(|| fitted(rgb.width(), rgb.height(), opts.fit));
    let image = if rgb.dimensions() == (tw, th) {
        rgb
    } else {
        resize_to(&rgb, tw, th)
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
pub fn encode(img: &RgbImage, format: Format, quality: u8, limits: &Limits) -> Result<Vec<u8>> {
    if !matches!(format, Format::Jpeg | Format::Png | Format::Webp) {
        return Err(Error::Unsupported(format!(
            "{} collages; use .jpg, .png or .webp",
            format.name()
        )));
    }
    let dynamic = DynamicImage::ImageRgb8(img.clone());
    let bytes = pixels::encode(
        &dynamic,
        format,
        &EncodeOptions {
            quality,
            ..EncodeOptions::default()
        },
    )?;
    pipeline::audit_encoded(&bytes, format, 1, limits)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{fixture, psnr};

    fn dt(s: &str) -> DateTime {
        DateTime::parse_exif(s).unwrap()
    }

    fn label(a: &str, b: &str) -> String {
        interval_label(dt(a), dt(b))
    }

    #[test]
    fn exif_times_parse_and_reject_blanks() {
        let d = dt("2021:03:04 09:10:11");
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute, d.second),
            (2021, 3, 4, 9, 10, 11)
        );
        assert_eq!(dt("2021-03-04"), dt("2021:03:04 00:00:00"));
        for bad in [
            "0000:00:00 00:00:00",
            "    :  :     :  :  ",
            "",
            "2021:02:30 00:00:00",
            "2021:13:01 00:00:00",
        ] {
            assert_eq!(DateTime::parse_exif(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn intervals_in_days_months_and_years() {
        let t0 = "2021:03:04 09:10:11";
        assert_eq!(label(t0, t0), "Day 0");
        assert_eq!(label(t0, "2021:03:04 23:59:59"), "Day 0");
        assert_eq!(label(t0, "2021:03:05 08:00:00"), "Day 1");
        assert_eq!(label(t0, "2021:04:03 09:10:11"), "Day 30");
        assert_eq!(label(t0, "2021:04:04 09:10:10"), "Day 31");
        assert_eq!(label(t0, "2021:04:04 09:10:11"), "Month 1");
        assert_eq!(label(t0, "2021:09:10 10:20:30"), "Month 6");
        assert_eq!(label(t0, "2022:03:03 09:10:11"), "Month 11");
        assert_eq!(label(t0, "2022:03:04 09:10:11"), "Year 1");
        assert_eq!(label(t0, "2022:06:01 11:22:33"), "Year 1 Month 2");
        assert_eq!(label(t0, "2022:06:04 11:22:33"), "Year 1 Month 3");
        assert_eq!(label(t0, "2031:03:04 09:10:11"), "Year 10");
        // Across a year end and February of a leap year.
        assert_eq!(
            label("2019:12:20 12:00:00", "2020:01:19 12:00:00"),
            "Day 30"
        );
        assert_eq!(
            label("2019:12:20 12:00:00", "2020:01:20 12:00:00"),
            "Month 1"
        );
        assert_eq!(
            label("2020:02:01 00:00:00", "2020:03:01 00:00:00"),
            "Month 1"
        );
        assert_eq!(
            label("2020:02:10 00:00:00", "2020:03:09 00:00:00"),
            "Day 28"
        );
        assert_eq!(
            label("2021:02:10 00:00:00", "2021:03:09 00:00:00"),
            "Day 27"
        );
        assert_eq!(
            label("2022:06:01 00:00:00", "2021:03:04 00:00:00"),
            "Year 1 Month 2 before"
        );
    }

    #[test]
    fn unix_times_convert_to_civil() {
        assert_eq!(DateTime::from_unix(0), dt("1970:01:01 00:00:00"));
        assert_eq!(DateTime::from_unix(951_782_400), dt("2000:02:29 00:00:00"));
        assert_eq!(
            DateTime::from_unix(1_614_849_011),
            dt("2021:03:04 09:10:11")
        );
        assert_eq!(DateTime::from_unix(-86_400), dt("1969:12:31 00:00:00"));
        for days in [-800_000i64, -1, 0, 59, 60, 365, 11_016, 2_932_896] {
            let d = DateTime::from_unix(days * 86_400);
            assert_eq!(d.day_number(), days);
        }
    }

    #[test]
    fn default_labels_by_count() {
        assert_eq!(default_labels(2), ["Before", "After"]);
        assert_eq!(default_labels(3), ["Before", "During", "After"]);
        assert_eq!(
            default_labels(5),
            ["Before", "During 1", "During 2", "During 3", "After"]
        );
        assert_eq!(
            parse_labels("Week 0, Week 12 ,Week 40"),
            ["Week 0", "Week 12", "Week 40"]
        );
    }

    #[test]
    fn order_is_capture_time_then_file_time_then_name() {
        let key = |c: Option<&str>, f: Option<&str>, n: &str| SortKey {
            capture: c.map(dt),
            file_time: f.map(dt),
            name: n.into(),
        };
        let keys = [
            key(
                Some("2022:01:01 00:00:00"),
                Some("2000:01:01 00:00:00"),
                "a.jpg",
            ),
            key(None, None, "0.jpg"),
            key(Some("2021:01:01 00:00:00"), None, "z.jpg"),
            key(None, Some("2021:06:01 00:00:00"), "b.jpg"),
            key(Some("2021:01:01 00:00:00"), None, "y.jpg"),
        ];
        assert_eq!(chronological_order(&keys), [4, 2, 3, 0, 1]);
    }

    fn opts(layout: Layout, max_width: u32) -> CollageOptions {
        CollageOptions {
            layout,
            max_width,
            title: None,
        }
    }

    fn assert_disjoint_and_inside(p: &Plan) {
        let all: Vec<Rect> = p
            .tiles
            .iter()
            .chain(&p.bands)
            .chain(&p.title)
            .copied()
            .collect();
        for (i, a) in all.iter().enumerate() {
            assert!(
                a.x + a.w <= p.width && a.y + a.h <= p.height,
                "{a:?} outside {p:?}"
            );
            for b in &all[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn row_tiles_share_the_smallest_height() {
        let p = plan(
            &[(400, 300), (300, 400), (200, 200)],
            &opts(Layout::Row, 3000),
        )
        .unwrap();
        assert!(p.tiles.iter().all(|t| t.h == 200 && t.y == p.tiles[0].y));
        let widths: Vec<u32> = p.tiles.iter().map(|t| t.w).collect();
        assert_eq!(widths, [267, 150, 200]);
        assert_eq!(p.margin, 5);
        assert!(p
            .tiles
            .windows(2)
            .all(|w| w[1].x == w[0].x + w[0].w + p.margin));
        assert_eq!(p.width, 5 + 267 + 5 + 150 + 5 + 200 + 5);
        for (t, b) in p.tiles.iter().zip(&p.bands) {
            assert_eq!((b.x, b.y, b.w), (t.x, t.y + t.h, t.w));
        }
        assert_eq!(p.height, p.bands[0].y + p.bands[0].h + p.margin);
        assert_disjoint_and_inside(&p);
    }

    #[test]
    fn width_cap_shrinks_tiles() {
        let sizes = [(4000, 3000); 3];
        let p = plan(&sizes, &opts(Layout::Row, 1200)).unwrap();
        assert!(p.width <= 1200 && p.width > 1150, "{}", p.width);
        assert!(p.tiles.iter().all(|t| t.h == p.tiles[0].h && t.h < 300));
        let grid = plan(&[(4000, 3000); 5], &opts(Layout::Grid, 1200)).unwrap();
        assert!(grid.width <= 1200);
        let col = plan(&sizes, &opts(Layout::Column, 500)).unwrap();
        assert!(col.width <= 500 && col.tiles.iter().all(|t| t.w == col.tiles[0].w));
        assert!(plan(&sizes, &opts(Layout::Row, 20)).is_err());
    }

    #[test]
    fn column_tiles_share_the_smallest_width() {
        let mut o = opts(Layout::Column, 3000);
        o.title = Some("Case 1".into());
        let p = plan(&[(400, 300), (300, 400)], &o).unwrap();
        assert!(p.tiles.iter().all(|t| t.w == 300 && t.x == p.margin));
        assert_eq!(p.tiles[0].h, 225);
        assert_eq!(p.tiles[1].h, 400);
        assert_eq!(p.width, 300 + 2 * p.margin);
        let title = p.title.unwrap();
        assert!(title.y + title.h <= p.tiles[0].y);
        assert_disjoint_and_inside(&p);
    }

    #[test]
    fn grid_uses_square_ish_cells() {
        let sizes = [(300, 200), (150, 200), (200, 200), (300, 200), (300, 200)];
        let p = plan(&sizes, &opts(Layout::Grid, 3000)).unwrap();
        // 5 tiles: 3 columns, 2 rows; cells as wide as the widest tile (300).
        let rows: Vec<u32> = p.tiles.iter().map(|t| t.y).collect();
        assert_eq!(rows[0], rows[2]);
        assert!(rows[3] > rows[0] && rows[3] == rows[4]);
        assert_eq!(p.width, p.margin + 3 * (300 + p.margin));
        assert_eq!(p.tiles[1].x, p.margin + 300 + p.margin + 75);
        assert_disjoint_and_inside(&p);
    }

    #[test]
    fn one_photo_is_refused() {
        let e = plan(&[(10, 10)], &CollageOptions::default()).unwrap_err();
        assert!(e.to_string().contains("at least two"), "{e}");
    }

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
            let bytes = encode(&img, f, 90, &Limits::default()).unwrap();
            let parsed = pipeline::inspect(&bytes, None, &Limits::default()).unwrap();
            assert!(parsed.inventory.is_clean(), "{f:?}: {:?}", parsed.inventory);
        }
        assert!(encode(&img, Format::Gif, 90, &Limits::default()).is_err());
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

    /// A tile decoded reduced and resized once looks like the full decode
    /// resized as before, and has exactly the size asked for.
    #[test]
    fn targeted_tiles_match_full_decode_then_resize() {
        let src = RgbImage::from_fn(1200, 900, |x, y| {
            Rgb([
                (x * 255 / 1200) as u8,
                (y * 255 / 900) as u8,
                (((x / 7 + y / 5) % 64) * 2 + 60) as u8,
            ])
        });
        let bytes = encode(&src, Format::Jpeg, 92, &Limits::default()).unwrap();
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
        let bytes = encode(&src, Format::Jpeg, 92, &Limits::default()).unwrap();
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
}
