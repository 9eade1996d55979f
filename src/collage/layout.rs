//! Where the panels go: equal panels in rows, a column, balanced rows or one
//! large plus the rest, on a canvas of an exact size (`--size`) or one that
//! follows from the photos (capped by `--max-width`). No layout leaves an
//! empty cell: a shorter last row is centred.

use crate::error::{Error, Result};
use crate::region::Rect;

/// No output side may exceed this (JPEG's limit is 65,535).
pub const MAX_SIDE: u32 = 65_000;

/// Smallest panel side a layout may come to.
pub const MIN_TILE: u32 = 8;

/// How panels are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// A row without `--size`; with one, whichever of row, column and
    /// balanced rows gives panels closest to the first photo's shape.
    #[default]
    Auto,
    /// Side by side.
    Row,
    /// Stacked.
    Column,
    /// Balanced rows: `ceil(sqrt(n))` per row at most, the rows as even as
    /// possible (5 = 3 + 2, 7 = 3 + 2 + 2), a shorter row centred.
    Grid,
    /// The first photo large on the left, the others stacked on its right,
    /// all of the same shape.
    Feature,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Auto => "auto",
            Layout::Row => "row",
            Layout::Column => "column",
            Layout::Grid => "grid",
            Layout::Feature => "feature",
        }
    }
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Layout::Auto,
            "row" => Layout::Row,
            "column" => Layout::Column,
            "grid" => Layout::Grid,
            "feature" | "large" => Layout::Feature,
            _ => {
                return Err(format!(
                    "unknown layout {s:?}: use auto, row, column, grid or feature"
                ))
            }
        })
    }
}

/// The named social sizes.
pub const SIZES: &[(&str, (u32, u32))] = &[
    ("square", (1080, 1080)),
    ("portrait", (1080, 1350)),
    ("story", (1080, 1920)),
    ("landscape", (1200, 630)),
];

/// `square`, `portrait`, `story`, `landscape` or `WxH` (64..=65000 each).
pub fn parse_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let t = s.trim().to_ascii_lowercase();
    if let Some((_, wh)) = SIZES.iter().find(|(n, _)| *n == t) {
        return Ok(*wh);
    }
    let bad = || {
        format!(
            "bad size {s:?}: use square, portrait, story, landscape or WIDTHxHEIGHT (1080x1350)"
        )
    };
    let (w, h) = t.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(64..=MAX_SIDE).contains(&w) || !(64..=MAX_SIDE).contains(&h) {
        return Err(format!(
            "size {w}x{h}: each side must be 64 to {MAX_SIDE} pixels"
        ));
    }
    Ok((w, h))
}

/// What the layout needs besides the photo sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub layout: Layout,
    /// The exact canvas size; `None`: from the photos, no wider than `max_width`.
    pub size: Option<(u32, u32)>,
    pub max_width: u32,
    pub title: bool,
    pub footer: bool,
}

/// Where everything goes: computed from the photo sizes alone.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub width: u32,
    pub height: u32,
    /// Space around and between panels.
    pub margin: u32,
    /// Label text size in pixels (a label too wide for its band is drawn smaller).
    pub font_px: f32,
    /// The layout used (never `Auto`).
    pub layout: Layout,
    pub title: Option<Rect>,
    pub footer: Option<Rect>,
    /// Where each panel goes, in input order. All the same size (the first
    /// panel of `Feature` is larger, of the same shape).
    pub tiles: Vec<Rect>,
    /// The label band under each panel (as wide as the panel).
    pub bands: Vec<Rect>,
}

/// Sizes that scale with the canvas: `base` is its shorter side (fixed
/// size) or 2.5x the panel height (size from the photos).
#[derive(Debug, Clone, Copy)]
struct Metrics {
    margin: u32,
    font_px: f32,
    band: u32,
    title: u32,
    footer: u32,
}

fn metrics(base: u32, title: bool, footer: bool) -> Metrics {
    let font_px = (base as f32 / 30.0).clamp(10.0, 96.0).round();
    Metrics {
        margin: (base / 54).max(4),
        font_px,
        band: (font_px * 1.5).ceil() as u32,
        title: if title {
            (font_px * 1.9).ceil() as u32
        } else {
            0
        },
        footer: if footer {
            (font_px * 1.2).ceil() as u32
        } else {
            0
        },
    }
}

/// Panels per row: balanced rows for `Grid`.
pub fn rows_for(n: usize, layout: Layout) -> Vec<usize> {
    match layout {
        Layout::Column => vec![1; n],
        Layout::Grid => {
            let cols = (1..=n).find(|c| c * c >= n).unwrap_or(n).max(1);
            let rows = n.div_ceil(cols).max(1);
            let (base, extra) = (n / rows, n % rows);
            (0..rows).map(|r| base + usize::from(r < extra)).collect()
        }
        _ => vec![n],
    }
}

/// Lays out `sizes.len()` panels (the upright photo sizes, in order).
///
/// With `size`, the canvas is exactly that and the panels fill it: their
/// shape follows from the canvas and the layout, and each photo is cropped
/// to it. Without, the panels take the first photo's shape, at the largest
/// height every photo covers without enlarging, shrunk until the canvas
/// fits `max_width`.
pub fn plan(sizes: &[(u32, u32)], f: &Frame) -> Result<Plan> {
    let n = sizes.len();
    if n < 2 {
        return Err(Error::Invalid(format!(
            "a collage needs at least two photos, found {n}"
        )));
    }
    if sizes.iter().any(|&(w, h)| w == 0 || h == 0) {
        return Err(Error::Invalid("a photo has no pixels".into()));
    }
    let aspect = sizes[0].0 as f64 / sizes[0].1 as f64;
    let p = match f.size {
        Some((w, h)) => {
            let layout = match f.layout {
                Layout::Auto => best_layout(n, (w, h), aspect, f),
                l => l,
            };
            plan_fixed(n, (w, h), layout, f)?
        }
        None => plan_auto(sizes, aspect, f)?,
    };
    if p.width > MAX_SIDE || p.height > MAX_SIDE {
        return Err(Error::Invalid(format!(
            "the collage would be {}x{} pixels; use --layout grid, --size or a smaller --max-width",
            p.width, p.height
        )));
    }
    Ok(p)
}

/// Row, column or balanced rows: whichever gives panels closest in shape
/// to the first photo (so the least is cropped away).
fn best_layout(n: usize, size: (u32, u32), aspect: f64, f: &Frame) -> Layout {
    let mut best = (f64::INFINITY, Layout::Row);
    for l in [Layout::Row, Layout::Column, Layout::Grid] {
        if let Ok(p) = plan_fixed(n, size, l, f) {
            let t = p.tiles[0];
            let d = ((t.w as f64 / t.h as f64) / aspect).ln().abs();
            if d < best.0 - 1e-9 {
                best = (d, l);
            }
        }
    }
    best.1
}

fn too_small(n: usize, size: (u32, u32), layout: Layout) -> Error {
    Error::Invalid(format!(
        "a {}x{} collage is too small for {n} photos in a {} layout",
        size.0,
        size.1,
        layout.name()
    ))
}

/// One panel filling a `size` canvas (the animated before/after's frame).
pub fn plan_one(size: (u32, u32), f: &Frame) -> Result<Plan> {
    plan_fixed(1, size, Layout::Row, f)
}

fn plan_fixed(n: usize, (w, h): (u32, u32), layout: Layout, f: &Frame) -> Result<Plan> {
    let m = metrics(w.min(h), f.title, f.footer);
    let chrome = 2 * m.margin + m.title + m.footer;
    if layout == Layout::Feature && n >= 3 {
        let k = (n - 1) as i64;
        let (mg, band) = (m.margin as i64, m.band as i64);
        let large_h = h as i64 - chrome as i64 - band;
        let small_h = (large_h + band - (k - 1) * mg) / k - band;
        if small_h < MIN_TILE as i64 {
            return Err(too_small(n, (w, h), layout));
        }
        let r = (w as i64 - 3 * mg) as f64 / (large_h + small_h) as f64;
        let large_w = (r * large_h as f64).round() as i64;
        let small_w = w as i64 - 3 * mg - large_w;
        if small_w < MIN_TILE as i64 || large_w < MIN_TILE as i64 {
            return Err(too_small(n, (w, h), layout));
        }
        return Ok(place_feature(
            (w, h),
            (large_w as u32, large_h as u32),
            (small_w as u32, small_h as u32),
            n,
            m,
            layout,
        ));
    }
    let layout = if layout == Layout::Feature {
        Layout::Row
    } else {
        layout
    };
    let rows = rows_for(n, layout);
    let (r, c) = (rows.len() as i64, *rows.iter().max().unwrap_or(&1) as i64);
    let pw = (w as i64 - (c + 1) * m.margin as i64) / c;
    let ph = (h as i64 - chrome as i64 - (r - 1) * m.margin as i64 - r * m.band as i64) / r;
    if pw < MIN_TILE as i64 || ph < MIN_TILE as i64 {
        return Err(too_small(n, (w, h), layout));
    }
    Ok(place_rows((w, h), (pw as u32, ph as u32), &rows, m, layout))
}

/// Panels of the first photo's shape, as tall as every photo allows.
fn plan_auto(sizes: &[(u32, u32)], aspect: f64, f: &Frame) -> Result<Plan> {
    let n = sizes.len();
    let layout = match f.layout {
        Layout::Auto => Layout::Row,
        Layout::Feature if n < 3 => Layout::Row,
        l => l,
    };
    // The tallest panel every photo covers: min over photos of min(h, w / aspect).
    let start = sizes
        .iter()
        .map(|&(w, h)| (h as f64).min(w as f64 / aspect).floor() as u32)
        .min()
        .unwrap_or(MIN_TILE)
        .max(1);
    let at = |t: u32| plan_auto_at(n, aspect, t, layout, f);
    let fits = |t: u32| at(t).width <= f.max_width;
    let t = if fits(start) {
        start
    } else if start <= MIN_TILE || !fits(MIN_TILE) {
        return Err(Error::Invalid(format!(
            "--max-width {} is too small for {n} photos in a {} layout",
            f.max_width,
            layout.name()
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
    Ok(at(t))
}

fn plan_auto_at(n: usize, aspect: f64, t: u32, layout: Layout, f: &Frame) -> Plan {
    let m = metrics(t * 5 / 2, f.title, f.footer);
    let pw = ((aspect * t as f64).round() as u32).max(1);
    let chrome = 2 * m.margin + m.title + m.footer;
    if layout == Layout::Feature {
        let k = (n - 1) as u32;
        let large_h = k * (t + m.band) + (k - 1) * m.margin - m.band;
        let large_w = ((aspect * large_h as f64).round() as u32).max(1);
        let w = 3 * m.margin + large_w + pw;
        let h = chrome + large_h + m.band;
        return place_feature((w, h), (large_w, large_h), (pw, t), n, m, layout);
    }
    let rows = rows_for(n, layout);
    let (r, c) = (rows.len() as u32, *rows.iter().max().unwrap_or(&1) as u32);
    let w = (c + 1) * m.margin + c * pw;
    let h = chrome + (r - 1) * m.margin + r * (t + m.band);
    place_rows((w, h), (pw, t), &rows, m, layout)
}

/// The plan around placed panels: size, metrics and the title and footer bands.
fn assemble(
    (w, h): (u32, u32),
    m: Metrics,
    layout: Layout,
    tiles: Vec<Rect>,
    bands: Vec<Rect>,
) -> Plan {
    let (title, footer) = chrome_rects(w, h, m);
    Plan {
        width: w,
        height: h,
        margin: m.margin,
        font_px: m.font_px,
        layout,
        title,
        footer,
        tiles,
        bands,
    }
}

fn chrome_rects(w: u32, h: u32, m: Metrics) -> (Option<Rect>, Option<Rect>) {
    let inner = w.saturating_sub(2 * m.margin);
    let title = (m.title > 0).then(|| Rect::at(m.margin, m.margin).of_size(inner, m.title));
    let footer = (m.footer > 0)
        .then(|| Rect::at(m.margin, h - m.margin - m.footer).of_size(inner, m.footer));
    (title, footer)
}

/// Panels of `pw` x `ph` in rows of `rows[i]`, each row centred, the block
/// centred vertically between the title and the footer.
fn place_rows(
    (w, h): (u32, u32),
    (pw, ph): (u32, u32),
    rows: &[usize],
    m: Metrics,
    layout: Layout,
) -> Plan {
    let r = rows.len() as u32;
    let used = 2 * m.margin + m.title + m.footer + (r - 1) * m.margin + r * (ph + m.band);
    let mut y = m.margin + m.title + h.saturating_sub(used) / 2;
    let (mut tiles, mut bands) = (Vec::new(), Vec::new());
    for &k in rows {
        let k = k as u32;
        let row_w = k * pw + (k - 1) * m.margin;
        let mut x = w.saturating_sub(row_w) / 2;
        for _ in 0..k {
            tiles.push(Rect::at(x, y).of_size(pw, ph));
            bands.push(Rect::at(x, y + ph).of_size(pw, m.band));
            x += pw + m.margin;
        }
        y += ph + m.band + m.margin;
    }
    assemble((w, h), m, layout, tiles, bands)
}

/// The first panel large on the left, the others stacked on the right.
fn place_feature(
    (w, h): (u32, u32),
    (lw, lh): (u32, u32),
    (sw, sh): (u32, u32),
    n: usize,
    m: Metrics,
    layout: Layout,
) -> Plan {
    let top = m.margin + m.title;
    let mut tiles = vec![Rect::at(m.margin, top).of_size(lw, lh)];
    let mut bands = vec![Rect::at(m.margin, top + lh).of_size(lw, m.band)];
    let x = 2 * m.margin + lw;
    let mut y = top;
    for _ in 1..n {
        tiles.push(Rect::at(x, y).of_size(sw, sh));
        bands.push(Rect::at(x, y + sh).of_size(sw, m.band));
        y += sh + m.band + m.margin;
    }
    assemble((w, h), m, layout, tiles, bands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(layout: Layout, size: Option<(u32, u32)>) -> Frame {
        Frame {
            layout,
            size,
            max_width: 3000,
            title: false,
            footer: false,
        }
    }

    fn assert_disjoint_and_inside(p: &Plan) {
        let all: Vec<Rect> = p
            .tiles
            .iter()
            .chain(&p.bands)
            .chain(&p.title)
            .chain(&p.footer)
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
    fn sizes_parse() {
        assert_eq!(parse_size("square"), Ok((1080, 1080)));
        assert_eq!(parse_size("Portrait"), Ok((1080, 1350)));
        assert_eq!(parse_size("story"), Ok((1080, 1920)));
        assert_eq!(parse_size("landscape"), Ok((1200, 630)));
        assert_eq!(parse_size("800x600"), Ok((800, 600)));
        for bad in ["", "big", "10x10", "800", "800x", "x600", "70000x100"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn balanced_rows() {
        assert_eq!(rows_for(2, Layout::Grid), [2]);
        assert_eq!(rows_for(3, Layout::Grid), [2, 1]);
        assert_eq!(rows_for(4, Layout::Grid), [2, 2]);
        assert_eq!(rows_for(5, Layout::Grid), [3, 2]);
        assert_eq!(rows_for(7, Layout::Grid), [3, 2, 2]);
        assert_eq!(rows_for(9, Layout::Grid), [3, 3, 3]);
        assert_eq!(rows_for(3, Layout::Column), [1, 1, 1]);
    }

    /// Every layout, every count 2..=9, fixed and automatic size: one panel
    /// per photo, all the same size (Feature: the others), nothing
    /// overlapping or outside, exactly the asked size, and no empty cell
    /// (each row's panels are centred: as much room left as right).
    #[test]
    fn no_empty_cell_and_equal_panels_for_2_to_9() {
        let shapes = [(4000, 3000), (3000, 4000), (4000, 3000), (3000, 3000)];
        for n in 2..=9 {
            let sizes: Vec<(u32, u32)> = (0..n).map(|i| shapes[i % 4]).collect();
            for layout in [
                Layout::Auto,
                Layout::Row,
                Layout::Column,
                Layout::Grid,
                Layout::Feature,
            ] {
                for size in [
                    None,
                    Some((1080, 1350)),
                    Some((1080, 1920)),
                    Some((1200, 630)),
                ] {
                    let mut f = frame(layout, size);
                    f.title = n % 2 == 0;
                    f.footer = n % 3 == 0;
                    let p = match plan(&sizes, &f) {
                        Ok(p) => p,
                        // Nine stacked photos do not fit 630 pixels high.
                        Err(e) if size.is_some() && layout == Layout::Column => {
                            assert!(e.to_string().contains("too small"), "{e}");
                            continue;
                        }
                        Err(e) => panic!("{n} {layout:?} {size:?}: {e}"),
                    };
                    let what = format!("{n} {layout:?} {size:?}");
                    assert_eq!(p.tiles.len(), n, "{what}");
                    if let Some(s) = size {
                        assert_eq!((p.width, p.height), s, "{what}");
                    } else {
                        assert!(p.width <= 3000, "{what}");
                    }
                    let first = usize::from(p.layout == Layout::Feature);
                    let t = p.tiles[first];
                    assert!(
                        p.tiles[first..].iter().all(|r| (r.w, r.h) == (t.w, t.h)),
                        "{what}: {:?}",
                        p.tiles
                    );
                    if p.layout == Layout::Feature {
                        let big = p.tiles[0];
                        let (a, b) = (big.w as f64 / big.h as f64, t.w as f64 / t.h as f64);
                        assert!((a / b - 1.0).abs() < 0.05, "{what}: {a} vs {b}");
                    } else {
                        // Each row centred: the gap left equals the gap right (±1).
                        let mut ys: Vec<u32> = p.tiles.iter().map(|r| r.y).collect();
                        ys.dedup();
                        for y in ys {
                            let row: Vec<&Rect> = p.tiles.iter().filter(|r| r.y == y).collect();
                            let left = row[0].x;
                            let last = row[row.len() - 1];
                            let right = p.width - last.x - last.w;
                            assert!(left.abs_diff(right) <= 1, "{what}: {left} vs {right}");
                        }
                    }
                    assert_disjoint_and_inside(&p);
                }
            }
        }
    }

    #[test]
    fn portrait_and_landscape_get_the_same_panel() {
        let p = plan(&[(4000, 3000), (3000, 4000)], &frame(Layout::Row, None)).unwrap();
        assert_eq!((p.tiles[0].w, p.tiles[0].h), (p.tiles[1].w, p.tiles[1].h));
        // The first photo's shape, 4:3.
        let a = p.tiles[0].w as f64 / p.tiles[0].h as f64;
        assert!((a - 4.0 / 3.0).abs() < 0.01, "{a}");
        assert!(p.width <= 3000);
    }

    #[test]
    fn auto_picks_the_shape_that_crops_least() {
        let two_landscape = [(4000, 3000); 2];
        let p = plan(&two_landscape, &frame(Layout::Auto, Some((1080, 1350)))).unwrap();
        assert_eq!(p.layout, Layout::Column, "stacked in a portrait canvas");
        let p = plan(&two_landscape, &frame(Layout::Auto, Some((1200, 630)))).unwrap();
        assert_eq!(p.layout, Layout::Row);
        let four = [(3000, 3000); 4];
        let p = plan(&four, &frame(Layout::Auto, Some((1080, 1080)))).unwrap();
        assert_eq!(p.layout, Layout::Grid);
    }

    #[test]
    fn margins_and_bands_scale_with_the_size() {
        let sizes = [(4000, 3000); 2];
        let small = plan(&sizes, &frame(Layout::Row, Some((540, 540)))).unwrap();
        let big = plan(&sizes, &frame(Layout::Row, Some((2160, 2160)))).unwrap();
        assert_eq!(big.margin, small.margin * 4);
        assert!(big.bands[0].h >= small.bands[0].h * 3, "{big:?} {small:?}");
        assert!(big.font_px > small.font_px * 3.0);
    }

    #[test]
    fn width_cap_shrinks_panels_and_too_small_is_refused() {
        let sizes = [(4000, 3000); 3];
        let mut f = frame(Layout::Row, None);
        f.max_width = 1200;
        let p = plan(&sizes, &f).unwrap();
        assert!(p.width <= 1200 && p.width > 1100, "{}", p.width);
        f.max_width = 20;
        assert!(plan(&sizes, &f).is_err());
        let nine = [(4000, 3000); 9];
        let e = plan(&nine, &frame(Layout::Row, Some((64, 64)))).unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        let e = plan(&[(10, 10)], &f).unwrap_err();
        assert!(e.to_string().contains("at least two"), "{e}");
    }
}
