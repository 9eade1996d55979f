//! Per-photo framing: which part of the upright, redacted photo fills its
//! panel. By default the largest centred crop of the panel's shape; a
//! framing row moves it (`center_x`, `center_y`), zooms in (`zoom`), or
//! names a crop rectangle (`x,y,w,h`, pixels or percent) that the panel
//! then shows whole.
//!
//! Framing is a `framing` column of the regions manifest (like `source`
//! and `score`), matched like its rows (`case/photo.jpg`, globs). A row with
//! no region (empty `x,y,w,h`) only frames its photo:
//!
//! ```text
//! file,x,y,w,h,framing
//! Doe_Jane/1.jpg,,,,,zoom 1.5 50% 40%
//! Doe_Jane/2.jpg,10%,70%,20%,10%,crop 10% 5% 60% 80%
//! ```
//!
//! The older separate framing file (one row per photo) is still read:
//!
//! ```text
//! file,zoom,center_x,center_y,x,y,w,h
//! Doe_Jane/1.jpg,1.5,50%,40%,,,,
//! Doe_Jane/2.jpg,,,,10%,5%,60%,80%
//! ```
//!
//! [`read_framing`] takes either, told apart by the header.

use crate::error::{Error, Result};
use crate::region::{compile_glob, Length};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Name of the framing file the page saves beside its regions manifest.
pub const FRAMING_NAME: &str = ".photodeid-framing.csv";

/// Largest zoom.
pub const MAX_ZOOM: f64 = 20.0;

/// How one photo fills its panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Framing {
    /// The panel-shaped crop, `1/zoom` of the largest one, centred at
    /// (`cx`, `cy`) (fractions of the photo; moved inwards at the edges).
    Zoom { zoom: f64, cx: f64, cy: f64 },
    /// The smallest panel-shaped crop that holds this rectangle, centred on it.
    Crop {
        x: Length,
        y: Length,
        w: Length,
        h: Length,
    },
}

impl Default for Framing {
    fn default() -> Self {
        Framing::Zoom {
            zoom: 1.0,
            cx: 0.5,
            cy: 0.5,
        }
    }
}

/// The manifest column's form: `zoom Z [CX CY]` (centre in percent,
/// default 50% 50%) or `crop X Y W H` (pixels or percent); space-separated,
/// so a cell needs no CSV quoting.
impl std::str::FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Framing, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let framing = match words.as_slice() {
            ["zoom", z, rest @ ..] if rest.is_empty() || rest.len() == 2 => {
                let zoom = z.parse().map_err(|_| format!("bad zoom {z:?}"))?;
                let (cx, cy) = match rest {
                    [cx, cy] => (percent(cx)?, percent(cy)?),
                    _ => (0.5, 0.5),
                };
                Framing::Zoom { zoom, cx, cy }
            }
            ["crop", x, y, w, h] => Framing::Crop {
                x: x.parse()?,
                y: y.parse()?,
                w: w.parse()?,
                h: h.parse()?,
            },
            _ => {
                return Err(format!(
                    "bad framing {s:?} (\"zoom Z [CX% CY%]\" or \"crop X Y W H\")"
                ))
            }
        };
        framing.check()?;
        Ok(framing)
    }
}

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |v: f64| format!("{}%", (v * 100_000.0).round() / 1000.0);
        match *self {
            Framing::Zoom { zoom, cx, cy } => {
                write!(
                    f,
                    "zoom {} {} {}",
                    (zoom * 1000.0).round() / 1000.0,
                    pct(cx),
                    pct(cy)
                )
            }
            Framing::Crop { x, y, w, h } => write!(f, "crop {x} {y} {w} {h}"),
        }
    }
}

/// A part of a photo, in fractions of its width and height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FRect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

fn resolve(l: Length, full: u32) -> f64 {
    match l {
        Length::Px(p) => p as f64,
        Length::Percent(p) => p / 100.0 * full as f64,
    }
}

impl Framing {
    /// Checks the numbers (zoom 1..=20, centre 0..=1).
    pub fn check(&self) -> std::result::Result<(), String> {
        if let Framing::Zoom { zoom, cx, cy } = *self {
            if !zoom.is_finite() || !(1.0..=MAX_ZOOM).contains(&zoom) {
                return Err(format!("zoom {zoom} must be from 1 to {MAX_ZOOM}"));
            }
            for (name, v) in [("center_x", cx), ("center_y", cy)] {
                if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                    return Err(format!("{name} must be from 0% to 100%"));
                }
            }
        }
        Ok(())
    }

    /// The part of a `photo`-sized picture shown in a `panel`-sized panel:
    /// the panel's shape, inside the photo.
    pub fn crop(&self, (pw, ph): (u32, u32), (tw, th): (u32, u32)) -> FRect {
        let (w, h) = (pw.max(1) as f64, ph.max(1) as f64);
        let shape = tw.max(1) as f64 / th.max(1) as f64;
        // The largest panel-shaped crop, in pixels.
        let (bw, bh) = if w / h > shape {
            (h * shape, h)
        } else {
            (w, w / shape)
        };
        let (cw, ch, cx, cy) = match *self {
            Framing::Zoom { zoom, cx, cy } => {
                let z = if zoom.is_finite() {
                    zoom.clamp(1.0, MAX_ZOOM)
                } else {
                    1.0
                };
                (bw / z, bh / z, cx * w, cy * h)
            }
            Framing::Crop { x, y, w: rw, h: rh } => {
                let (x, y) = (resolve(x, pw), resolve(y, ph));
                let (rw, rh) = (resolve(rw, pw).max(1.0), resolve(rh, ph).max(1.0));
                let (mut cw, mut ch) = if rw / rh > shape {
                    (rw, rw / shape)
                } else {
                    (rh * shape, rh)
                };
                if cw > bw {
                    (cw, ch) = (bw, bh);
                }
                (cw, ch, x + rw / 2.0, y + rh / 2.0)
            }
        };
        let x0 = (cx - cw / 2.0).clamp(0.0, (w - cw).max(0.0));
        let y0 = (cy - ch / 2.0).clamp(0.0, (h - ch).max(0.0));
        FRect {
            x: x0 / w,
            y: y0 / h,
            w: cw / w,
            h: ch / h,
        }
    }
}

impl FRect {
    /// In pixels of a `w` x `h` picture: at least one pixel, inside it.
    pub fn pixels(&self, w: u32, h: u32) -> (u32, u32, u32, u32) {
        let cw = ((self.w * w as f64).round() as u32).clamp(1, w.max(1));
        let ch = ((self.h * h as f64).round() as u32).clamp(1, h.max(1));
        let x = ((self.x * w as f64).round() as u32).min(w.saturating_sub(cw));
        let y = ((self.y * h as f64).round() as u32).min(h.saturating_sub(ch));
        (x, y, cw, ch)
    }
}

/// One row of a framing file.
#[derive(Debug, Clone)]
pub struct FramingRow {
    pub line: usize,
    pub pattern: String,
    pub framing: Framing,
    matcher: globset::GlobMatcher,
}

impl FramingRow {
    pub fn new(pattern: &str, framing: Framing) -> std::result::Result<FramingRow, String> {
        framing.check()?;
        Ok(FramingRow {
            line: 0,
            pattern: pattern.to_string(),
            framing,
            matcher: compile_glob(pattern)?,
        })
    }

    pub fn matches(&self, relative: &str) -> bool {
        self.matcher.is_match(relative.replace('\\', "/"))
    }
}

/// The framing of the photo at `rel`: the last matching row, or centred.
pub fn framing_for(rows: &[FramingRow], rel: &str) -> Framing {
    framing_given(rows, rel).unwrap_or_default()
}

/// The last matching row's framing, if a row matches (an explicit framing
/// wins over `--align`).
pub fn framing_given(rows: &[FramingRow], rel: &str) -> Option<Framing> {
    rows.iter()
        .rev()
        .find(|r| r.matches(rel))
        .map(|r| r.framing)
}

/// Reads framing rows from a regions manifest's `framing` column or from
/// a framing file (told apart by the header); the path and line are in any
/// error.
pub fn read_framing(path: &Path) -> Result<Vec<FramingRow>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Invalid(format!("framing file {}: {e}", path.display())))?;
    parse_any_framing(&text)
        .map_err(|e| Error::Invalid(format!("framing file {}: {e}", path.display())))
}

/// The framing column of the regions manifest at `path` (none without the column).
pub fn manifest_framing(path: &Path) -> Result<Vec<FramingRow>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Invalid(format!("regions manifest {}: {e}", path.display())))?;
    parse_manifest_framing(&text)
        .map_err(|e| Error::Invalid(format!("regions manifest {}: {e}", path.display())))
}

/// [`parse_manifest_framing`] when the header has a `framing` column (a
/// regions manifest), else [`parse_framing`] (a framing file).
pub fn parse_any_framing(text: &str) -> std::result::Result<Vec<FramingRow>, String> {
    if header_names(text)?.iter().any(|h| h == "framing") {
        parse_manifest_framing(text)
    } else {
        parse_framing(text)
    }
}

fn header_names(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    Ok(rdr
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect())
}

/// The framing rows of a regions manifest: each row with a non-empty
/// `framing` cell (the region columns are read by [`crate::region`]).
pub fn parse_manifest_framing(text: &str) -> std::result::Result<Vec<FramingRow>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = header_names(text)?;
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(file), Some(framing)) = (col("file"), col("framing")) else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let at = |e: String| format!("line {line}: {e}");
        let rec = rec.map_err(|e| at(e.to_string()))?;
        let cell = rec.get(framing).unwrap_or("");
        if cell.is_empty() {
            continue;
        }
        let pattern = rec.get(file).unwrap_or("");
        if pattern.is_empty() {
            return Err(at("no file name".into()));
        }
        let mut row = FramingRow::new(pattern, cell.parse().map_err(at)?).map_err(at)?;
        row.line = line;
        rows.push(row);
    }
    Ok(rows)
}

/// Parses a number that may end in `%` into a fraction (50% = 0.5; bare numbers are percent).
fn percent(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("bad percentage {s:?}"))?;
    Ok(v / 100.0)
}

pub fn parse_framing(text: &str) -> std::result::Result<Vec<FramingRow>, String> {
    let (mut rdr, headers) = crate::region::manifest_csv(text)?;
    let known = ["file", "zoom", "center_x", "center_y", "x", "y", "w", "h"];
    // A regions manifest (file,x,y,w,h[,shape,...]) must not be read as
    // crop rectangles: a framing file names its zoom and centre columns.
    let region_only = ["shape", "effect", "source", "score"];
    let zoom_cols = ["zoom", "center_x", "center_y"];
    if headers.iter().any(|h| region_only.contains(&h.as_str()))
        || !headers.iter().any(|h| zoom_cols.contains(&h.as_str()))
    {
        return Err(format!(
            "this is a regions manifest with no \"framing\" column (header {}), \
             not framing: pass it as --regions, add a framing column \
             (\"crop X Y W H\" or \"zoom Z CX% CY%\"), or use the framing file's \
             header file,zoom,center_x,center_y,x,y,w,h",
            headers.join(",")
        ));
    }
    if let Some(h) = headers.iter().find(|h| !known.contains(&h.as_str())) {
        return Err(format!(
            "unknown column {h:?} (columns: {})",
            known.join(",")
        ));
    }
    if !headers.iter().any(|h| h == "file") {
        return Err("no \"file\" column".into());
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let get = |name: &str| {
            col(name)
                .and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let at = |e: String| format!("line {line}: {e}");
        let Some(pattern) = get("file") else {
            return Err(at("no file name".into()));
        };
        let crop: Vec<Option<&str>> = ["x", "y", "w", "h"].iter().map(|c| get(c)).collect();
        let framing = if crop.iter().any(Option::is_some) {
            let vals: Vec<Length> = crop
                .iter()
                .map(|v| {
                    v.ok_or_else(|| "a crop needs all of x, y, w and h".to_string())
                        .and_then(str::parse)
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(at)?;
            Framing::Crop {
                x: vals[0],
                y: vals[1],
                w: vals[2],
                h: vals[3],
            }
        } else {
            let zoom = match get("zoom") {
                Some(z) => z.parse().map_err(|_| at(format!("bad zoom {z:?}")))?,
                None => 1.0,
            };
            let cx = get("center_x").map_or(Ok(0.5), percent).map_err(at)?;
            let cy = get("center_y").map_or(Ok(0.5), percent).map_err(at)?;
            Framing::Zoom { zoom, cx, cy }
        };
        let mut row = FramingRow::new(pattern, framing).map_err(at)?;
        row.line = line;
        rows.push(row);
    }
    Ok(rows)
}

/// Writes framing rows as the CSV [`parse_framing`] reads.
pub fn framing_csv(rows: &[(String, Framing)]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Invalid(format!("framing: {e}"));
    w.write_record(["file", "zoom", "center_x", "center_y", "x", "y", "w", "h"])
        .map_err(err)?;
    let pct = |v: f64| format!("{}%", (v * 100_000.0).round() / 1000.0);
    for (file, f) in rows {
        let rec: Vec<String> = match *f {
            Framing::Zoom { zoom, cx, cy } => vec![
                file.clone(),
                format!("{}", (zoom * 1000.0).round() / 1000.0),
                pct(cx),
                pct(cy),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
            Framing::Crop { x, y, w: cw, h } => vec![
                file.clone(),
                String::new(),
                String::new(),
                String::new(),
                x.to_string(),
                y.to_string(),
                cw.to_string(),
                h.to_string(),
            ],
        };
        w.write_record(&rec).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Invalid(format!("framing: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Invalid(format!("framing: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(a: FRect, b: FRect) -> bool {
        [(a.x, b.x), (a.y, b.y), (a.w, b.w), (a.h, b.h)]
            .iter()
            .all(|(p, q)| (p - q).abs() < 1e-6)
    }

    #[test]
    fn default_is_the_largest_centred_crop() {
        let c = Framing::default().crop((4000, 3000), (100, 100));
        assert!(
            near(
                c,
                FRect {
                    x: 0.125,
                    y: 0.0,
                    w: 0.75,
                    h: 1.0
                }
            ),
            "{c:?}"
        );
        let c = Framing::default().crop((3000, 4000), (400, 300));
        assert!(
            near(
                c,
                FRect {
                    x: 0.0,
                    y: 0.21875,
                    w: 1.0,
                    h: 0.5625
                }
            ),
            "{c:?}"
        );
    }

    #[test]
    fn zoom_and_centre_move_the_crop_but_never_outside() {
        let f = Framing::Zoom {
            zoom: 2.0,
            cx: 0.25,
            cy: 0.25,
        };
        let c = f.crop((1000, 1000), (100, 100));
        assert!(
            near(
                c,
                FRect {
                    x: 0.0,
                    y: 0.0,
                    w: 0.5,
                    h: 0.5
                }
            ),
            "{c:?}"
        );
        let f = Framing::Zoom {
            zoom: 4.0,
            cx: 0.5,
            cy: 0.75,
        };
        let c = f.crop((1000, 1000), (100, 100));
        assert!(
            near(
                c,
                FRect {
                    x: 0.375,
                    y: 0.625,
                    w: 0.25,
                    h: 0.25
                }
            ),
            "{c:?}"
        );
        let f = Framing::Zoom {
            zoom: 2.0,
            cx: 1.0,
            cy: 1.0,
        };
        let c = f.crop((1000, 1000), (100, 100));
        assert!(
            near(
                c,
                FRect {
                    x: 0.5,
                    y: 0.5,
                    w: 0.5,
                    h: 0.5
                }
            ),
            "{c:?}"
        );
    }

    #[test]
    fn a_crop_rectangle_is_shown_whole_in_the_panel_shape() {
        let f = Framing::Crop {
            x: Length::Px(100),
            y: Length::Px(100),
            w: Length::Px(200),
            h: Length::Px(100),
        };
        // A square panel: 200x200 around the rectangle's centre (200, 150).
        let c = f.crop((1000, 1000), (50, 50));
        assert!(
            near(
                c,
                FRect {
                    x: 0.1,
                    y: 0.05,
                    w: 0.2,
                    h: 0.2
                }
            ),
            "{c:?}"
        );
    }

    #[test]
    fn files_parse_and_round_trip() {
        let text = "file,zoom,center_x,center_y,x,y,w,h\n\
                    a/1.jpg,1.5,40%,60%,,,,\n\
                    a/2.jpg,,,,10%,5%,60%,80%\n\
                    */3.jpg,,,,,,,\n";
        let rows = parse_framing(text).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            framing_for(&rows, "a/1.jpg"),
            Framing::Zoom {
                zoom: 1.5,
                cx: 0.4,
                cy: 0.6
            }
        );
        assert!(matches!(
            framing_for(&rows, "a/2.jpg"),
            Framing::Crop { .. }
        ));
        assert_eq!(framing_for(&rows, "b/3.jpg"), Framing::default());
        assert_eq!(framing_for(&rows, "zzz.jpg"), Framing::default());
        let pairs: Vec<(String, Framing)> = rows
            .iter()
            .map(|r| (r.pattern.clone(), r.framing))
            .collect();
        let again = parse_framing(&framing_csv(&pairs).unwrap()).unwrap();
        for (a, b) in rows.iter().zip(&again) {
            assert_eq!(
                (a.pattern.as_str(), a.framing),
                (b.pattern.as_str(), b.framing)
            );
        }
        for bad in [
            "file,zoom\na.jpg,0.5\n",
            "file,zoom\na.jpg,big\n",
            "file,x,y\na.jpg,1,2\n",
            "file,center_x\na.jpg,150%\n",
            "name,zoom\na.jpg,2\n",
            "file,zoom,colour\na.jpg,2,red\n",
        ] {
            assert!(parse_framing(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_manifest_column_is_read_and_either_form_by_one_function() {
        let manifest = "file,x,y,w,h,source,framing\n\
            a.jpg,,,,,,zoom 1.5 50% 40%\n\
            b.jpg,1%,2%,3%,4%,me,crop 10% 5% 60% 80%\n\
            c.jpg,1,2,3,4,,\n";
        let rows = parse_any_framing(manifest).unwrap();
        assert_eq!(rows.len(), 2, "c.jpg has no framing");
        assert_eq!(
            rows[0].framing,
            Framing::Zoom {
                zoom: 1.5,
                cx: 0.5,
                cy: 0.4
            }
        );
        assert_eq!(rows[1].framing, "crop 10% 5% 60% 80%".parse().unwrap());
        assert_eq!(rows[1].line, 3);
        // The old framing file gives the same framings.
        let old = "file,zoom,center_x,center_y,x,y,w,h\n\
            a.jpg,1.5,50%,40%,,,,\nb.jpg,,,,10%,5%,60%,80%\n";
        let again = parse_any_framing(old).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.framing).collect::<Vec<_>>(),
            again.iter().map(|r| r.framing).collect::<Vec<_>>()
        );
        // The cell's text round-trips.
        for r in &rows {
            assert_eq!(r.framing.to_string().parse::<Framing>().unwrap(), r.framing);
        }
        // A plain regions manifest is never read as crop rectangles.
        for plain in [
            "file,x,y,w,h\na.jpg,1,2,3,4\n",
            "file,x,y,w,h,shape,effect\na.jpg,1,2,3,4,rect,fill\n",
        ] {
            let e = parse_any_framing(plain).unwrap_err();
            assert!(
                e.contains("regions manifest with no \"framing\" column"),
                "{e}"
            );
        }
        // No column: no rows. Bad cells name their line.
        assert!(parse_manifest_framing("file,x,y,w,h\na.jpg,1,2,3,4\n")
            .unwrap()
            .is_empty());
        for bad in [
            "zoom",
            "zoom 0.5",
            "zoom 2 50%",
            "crop 1 2 3",
            "pan 1 2",
            "zoom x",
        ] {
            let text = format!("file,x,y,w,h,framing\na.jpg,,,,,{bad}\n");
            let e = parse_any_framing(&text).unwrap_err();
            assert!(e.starts_with("line 2:"), "{bad}: {e}");
        }
    }

    /// The regions reader skips framing-only rows and keeps the others.
    #[test]
    fn regions_ignore_framing_only_rows() {
        let rows = crate::region::parse_manifest(
            "file,x,y,w,h,framing\na.jpg,,,,,zoom 2\nb.jpg,1,2,3,4,zoom 2\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].pattern, "b.jpg");
        // Without a framing an empty region is still an error.
        assert!(crate::region::parse_manifest("file,x,y,w,h,framing\na.jpg,,,,,\n").is_err());
    }
}
