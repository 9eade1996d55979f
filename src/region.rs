//! Regions to redact, as the user writes them: `[SHAPE:]X,Y,W,H[:EFFECT]`,
//! each value in pixels or percent of the photo *as displayed* (after
//! orientation). Resolved against a concrete size, clipped to the image.
//! Also the CSV manifest (`file,x,y,w,h[,shape][,effect]`) for batches.

use crate::error::{Error, Result};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A coordinate or size: pixels, or percent of the displayed width/height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    Px(u32),
    Percent(f64),
}

impl Length {
    fn resolve(self, full: u32) -> f64 {
        match self {
            Length::Px(p) => p as f64,
            Length::Percent(p) => p / 100.0 * full as f64,
        }
    }
}

impl FromStr for Length {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("bad percentage {s:?}"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("percentage {s:?} is outside 0-100%"));
            }
            Ok(Length::Percent(v))
        } else {
            let p = s.strip_suffix("px").unwrap_or(s).trim();
            p.parse()
                .map(Length::Px)
                .map_err(|_| format!("bad pixel value {s:?}"))
        }
    }
}

impl fmt::Display for Length {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Length::Px(p) => write!(f, "{p}"),
            Length::Percent(p) => write!(f, "{p}%"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    #[default]
    Rect,
    Ellipse,
}

/// How a region is destroyed. All three are irreversible (see `redact`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Effect {
    /// Solid colour: the safest.
    #[default]
    Fill,
    /// Block means over blocks of at least 16 px and 1/8 of the region.
    Pixelate,
    /// Smooth interpolation of coarse block means (looks blurred, carries only the block grid).
    Blur,
}

impl FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rect" | "rectangle" | "box" => Ok(Shape::Rect),
            "ellipse" | "oval" | "circle" => Ok(Shape::Ellipse),
            other => Err(format!("unknown shape {other:?} (rect or ellipse)")),
        }
    }
}

impl FromStr for Effect {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fill" => Ok(Effect::Fill),
            "pixelate" | "pixelize" | "mosaic" => Ok(Effect::Pixelate),
            "blur" => Ok(Effect::Blur),
            other => Err(format!("unknown effect {other:?} (blur, pixelate or fill)")),
        }
    }
}

/// A region as requested.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionSpec {
    pub x: Length,
    pub y: Length,
    pub w: Length,
    pub h: Length,
    pub shape: Shape,
    /// `None`: the run's default effect.
    pub effect: Option<Effect>,
}

impl FromStr for RegionSpec {
    type Err = String;
    /// `[SHAPE:]X,Y,W,H[:EFFECT]`, e.g. `35%,20%,30%,15%`, `ellipse:10,10,200,80:pixelate`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let (shape, coords, effect) = match parts.as_slice() {
            [c] => (None, *c, None),
            [a, b] if a.contains(',') => (None, *a, Some(*b)),
            [a, b] => (Some(*a), *b, None),
            [a, b, c] => (Some(*a), *b, Some(*c)),
            _ => {
                return Err(format!(
                    "bad region {s:?}: expected [SHAPE:]X,Y,W,H[:EFFECT]"
                ))
            }
        };
        let nums: Vec<&str> = coords.split(',').collect();
        let [x, y, w, h] = nums.as_slice() else {
            return Err(format!("bad region {s:?}: expected four values X,Y,W,H"));
        };
        let spec = RegionSpec {
            x: x.parse()?,
            y: y.parse()?,
            w: w.parse()?,
            h: h.parse()?,
            shape: shape.map(str::parse).transpose()?.unwrap_or_default(),
            effect: effect.map(str::parse).transpose()?,
        };
        for (name, v) in [("width", spec.w), ("height", spec.h)] {
            if matches!(v, Length::Px(0)) || matches!(v, Length::Percent(p) if p <= 0.0) {
                return Err(format!("bad region {s:?}: {name} must be more than 0"));
            }
        }
        Ok(spec)
    }
}

impl fmt::Display for RegionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shape == Shape::Ellipse {
            write!(f, "ellipse:")?;
        }
        write!(f, "{},{},{},{}", self.x, self.y, self.w, self.h)
    }
}

/// A region in pixels, inside the image. Built with `Rect::at(x, y).of_size(w, h)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

pub struct RectAt {
    x: u32,
    y: u32,
}

impl Rect {
    pub fn at(x: u32, y: u32) -> RectAt {
        RectAt { x, y }
    }

    /// True when the two rectangles share at least one pixel.
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

impl RectAt {
    pub fn of_size(self, w: u32, h: u32) -> Rect {
        Rect {
            x: self.x,
            y: self.y,
            w,
            h,
        }
    }
}

/// A region ready to apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    pub rect: Rect,
    pub shape: Shape,
    pub effect: Effect,
    /// Part of the requested region fell outside the image.
    pub clipped: bool,
}

impl RegionSpec {
    /// Resolves against a `width` x `height` displayed image; a region wholly outside is an error.
    pub fn resolve(&self, width: u32, height: u32, default: Effect) -> Result<Resolved> {
        // Rounded outwards: every pixel the region touches, even partly, is
        // destroyed (the tolerance keeps 30% of 1000 from growing to 301).
        let (fx0, fy0) = (self.x.resolve(width), self.y.resolve(height));
        let (fx1, fy1) = (fx0 + self.w.resolve(width), fy0 + self.h.resolve(height));
        let lo = |v: f64| (v + 1e-6).floor() as i64;
        let hi = |v: f64| (v - 1e-6).ceil() as i64;
        let (x0, y0, x1, y1) = (lo(fx0), lo(fy0), hi(fx1), hi(fy1));
        let cx0 = x0.clamp(0, width as i64);
        let cy0 = y0.clamp(0, height as i64);
        let cx1 = x1.clamp(0, width as i64);
        let cy1 = y1.clamp(0, height as i64);
        if cx1 <= cx0 || cy1 <= cy0 {
            return Err(Error::Invalid(format!(
                "region {self} lies wholly outside the {width}x{height} image"
            )));
        }
        Ok(Resolved {
            rect: Rect::at(cx0 as u32, cy0 as u32).of_size((cx1 - cx0) as u32, (cy1 - cy0) as u32),
            shape: self.shape,
            effect: self.effect.unwrap_or(default),
            clipped: (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1),
        })
    }
}

/// One manifest row: a file path (relative to the input folder) or glob, and a region.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    /// 1-based line number, for error messages.
    pub line: usize,
    pub pattern: String,
    pub region: RegionSpec,
    matcher: globset::GlobMatcher,
    /// Where the row came from (`detector:face`, a person's initials...): optional, kept for the record.
    pub source: Option<String>,
    /// The detector's score, for rows it proposed.
    pub score: Option<f32>,
}

/// Reads a regions manifest: CSV with a header `file,x,y,w,h[,shape][,effect][,source][,score]`
/// (and `framing`, which collages read: see `collage::framing`).
pub fn read_manifest(path: &Path) -> Result<Vec<ManifestRow>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io("cannot read regions manifest", e))?;
    parse_manifest(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// A manifest's CSV reader (cells trimmed, rows of any length) and its
/// header, lowercased: how every reader of a regions or framing file starts.
pub fn manifest_csv(text: &str) -> std::result::Result<(csv::Reader<&[u8]>, Vec<String>), String> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    Ok((rdr, headers))
}

pub fn parse_manifest(text: &str) -> std::result::Result<Vec<ManifestRow>, String> {
    let (mut rdr, headers) = manifest_csv(text)?;
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(f), Some(x), Some(y), Some(w), Some(h)) =
        (col("file"), col("x"), col("y"), col("w"), col("h"))
    else {
        return Err(
            "header must name the columns file,x,y,w,h[,shape][,effect][,source][,score]".into(),
        );
    };
    let (shape, effect) = (col("shape"), col("effect"));
    let (source, score) = (col("source"), col("score"));
    let framing = col("framing");
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let get = |c: usize| rec.get(c).unwrap_or("").to_string();
        let opt = |c: Option<usize>| c.map(get).filter(|v| !v.is_empty());
        // A row with only a framing (collages read it) has no region.
        if opt(framing).is_some() && [x, y, w, h].iter().all(|&c| get(c).is_empty()) {
            continue;
        }
        let mut spec = format!("{},{},{},{}", get(x), get(y), get(w), get(h));
        if let Some(s) = opt(shape) {
            spec = format!("{s}:{spec}");
        }
        if let Some(e) = opt(effect) {
            spec = format!("{spec}:{e}");
        }
        let region = spec.parse().map_err(|e| format!("line {line}: {e}"))?;
        let pattern = get(f);
        if pattern.is_empty() {
            return Err(format!("line {line}: empty file column"));
        }
        let matcher = compile_glob(&pattern).map_err(|e| format!("line {line}: {e}"))?;
        let source = opt(source);
        if source
            .as_ref()
            .is_some_and(|s| s.len() > 100 || s.chars().any(char::is_control))
        {
            return Err(format!("line {line}: source must be a short line of text"));
        }
        let score = match opt(score) {
            None => None,
            Some(v) => match v.parse::<f32>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Some(x),
                _ => {
                    return Err(format!(
                        "line {line}: score {v:?} is not a number from 0 to 1"
                    ))
                }
            },
        };
        rows.push(ManifestRow {
            line,
            pattern,
            region,
            matcher,
            source,
            score,
        });
    }
    Ok(rows)
}

/// Compiles a manifest pattern: `*` and `?` stay within a path segment,
/// `**` crosses segments; everything else is literal (a file named
/// `case [1].jpg` matches itself, not a character class). `\\` counts as `/`.
pub fn compile_glob(pattern: &str) -> std::result::Result<globset::GlobMatcher, String> {
    let mut literal = String::with_capacity(pattern.len());
    for c in pattern.replace('\\', "/").trim_start_matches("./").chars() {
        match c {
            '[' | ']' | '{' | '}' => {
                literal.push('[');
                literal.push(c);
                literal.push(']');
            }
            c => literal.push(c),
        }
    }
    globset::GlobBuilder::new(&literal)
        .literal_separator(true)
        .backslash_escape(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("bad pattern {pattern:?}: {e}"))
}

/// Glob match on `/`-separated paths (see [`compile_glob`]); a pattern that
/// does not compile matches nothing.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    compile_glob(pattern).is_ok_and(|m| m.is_match(path.replace('\\', "/")))
}

impl ManifestRow {
    /// Whether this row applies to the photo at `relative` (to the input folder).
    pub fn matches(&self, relative: &str) -> bool {
        self.matcher.is_match(relative.replace('\\', "/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_glob_is_matched_in_polynomial_time() {
        // Found by fuzzing: took minutes with the backtracking matcher.
        let pattern = format!("{}0*10pn", "*".repeat(40));
        let path = "Ug 0pn010,01.p1 0/ 0".repeat(4);
        let t = std::time::Instant::now();
        assert!(!glob_match(&pattern, &path));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(glob_match("**/*.jpg", "a/b/c.jpg"));
        assert!(glob_match("a/**/c.jpg", "a/c.jpg"));
        assert!(!glob_match("*.jpg", "a/c.jpg"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "a/c"));
    }

    #[test]
    fn grammar() {
        let r: RegionSpec = "ellipse:35%,20%,30%,15%:pixelate".parse().unwrap();
        assert_eq!(r.shape, Shape::Ellipse);
        assert_eq!(r.effect, Some(Effect::Pixelate));
        assert_eq!(r.x, Length::Percent(35.0));
        let r: RegionSpec = "10,10,200,80:fill".parse().unwrap();
        assert_eq!(
            (r.shape, r.effect, r.w),
            (Shape::Rect, Some(Effect::Fill), Length::Px(200))
        );
        assert!("1,2,3".parse::<RegionSpec>().is_err());
        assert!("1,2,0,4".parse::<RegionSpec>().is_err());
        assert!("star:1,2,3,4".parse::<RegionSpec>().is_err());
        assert!("1,2,3,4:smudge".parse::<RegionSpec>().is_err());
        assert!("1,2,3,140%".parse::<RegionSpec>().is_err());
    }

    #[test]
    fn percent_scales_and_clipping() {
        let r: RegionSpec = "50%,50%,50%,25%".parse().unwrap();
        let a = r.resolve(200, 100, Effect::Fill).unwrap();
        assert_eq!(a.rect, Rect::at(100, 50).of_size(100, 25));
        let b = r.resolve(4000, 3000, Effect::Fill).unwrap();
        assert_eq!(b.rect, Rect::at(2000, 1500).of_size(2000, 750));
        let partly: RegionSpec = "150,10,100,10".parse().unwrap();
        let c = partly.resolve(200, 100, Effect::Blur).unwrap();
        assert!(c.clipped);
        assert_eq!(c.rect.w, 50);
        // Fractional edges round outwards: pixel 100 is 80% inside.
        let frac: RegionSpec = "0.04%,0%,10.04%,100%".parse().unwrap();
        let f = frac.resolve(1000, 10, Effect::Fill).unwrap();
        assert_eq!(f.rect, Rect::at(0, 0).of_size(101, 10));
        let exact: RegionSpec = "10%,30%,30%,40%".parse().unwrap();
        let e = exact.resolve(1000, 1000, Effect::Fill).unwrap();
        assert_eq!(e.rect, Rect::at(100, 300).of_size(300, 400));
        let outside: RegionSpec = "300,10,10,10".parse().unwrap();
        assert!(outside.resolve(200, 100, Effect::Fill).is_err());
    }

    #[test]
    fn manifest_and_globs() {
        let m = parse_manifest(
            "file,x,y,w,h,shape,effect\ncase1/*.jpg,1,2,3,4,ellipse,\nb.png,10%,10%,5%,5%,,blur\n",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].region.shape, Shape::Ellipse);
        assert_eq!(m[1].region.effect, Some(Effect::Blur));
        assert!(parse_manifest("name,x\n").is_err());
        // Rows proposed by the detector say so; older manifests still read.
        let d = parse_manifest(
            "file,x,y,w,h,shape,effect,source,score\na.jpg,1%,2%,3%,4%,ellipse,,detector:face,0.973\nb.jpg,1,2,3,4,,,,\n",
        )
        .unwrap();
        assert_eq!(d[0].source.as_deref(), Some("detector:face"));
        assert_eq!(d[0].score, Some(0.973));
        assert_eq!((d[1].source.as_deref(), d[1].score), (None, None));
        assert!(parse_manifest("file,x,y,w,h,score\na.jpg,1,2,3,4,1.5\n").is_err());
        assert!(parse_manifest("file,x,y,w,h,score\na.jpg,1,2,3,4,high\n").is_err());
        assert!(glob_match("case1/*.jpg", "case1/a.jpg"));
        assert!(!glob_match("case1/*.jpg", "case1/sub/a.jpg"));
        assert!(glob_match("**/*.jpg", "case1/sub/a.jpg"));
        assert!(glob_match("a?.png", "ab.png"));
        assert!(!glob_match("a.png", "b/a.png"));
        assert!(glob_match("case [1]/{a}.jpg", "case [1]/{a}.jpg"));
        assert!(!glob_match("case [1]/a.jpg", "case 1/a.jpg"));
        assert!(glob_match("./x\\*.jpg", "x/b.jpg"));
        assert!(glob_match("**", "a/b/c.jpg"));
    }
}
