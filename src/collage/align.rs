//! `--align faces|eyes`: a framing per photo so its one likely face (or
//! its eyes) sits at the same place and scale in every panel.
//!
//! Each photo's feature is a centre and a size in fractions of the photo
//! (the detector's face box, or the eye midpoint and eye distance). The
//! photo whose feature is largest relative to its panel-shaped crop is
//! shown unzoomed (zoom 1 is as far out as a panel goes); every other photo
//! is zoomed so its feature has that same relative size, and moved so the
//! feature lands where it does in that reference panel. Crops stay inside
//! the picture, so a feature near an edge may land a little off.

use super::framing::{FRect, Framing, MAX_ZOOM};
use crate::faces::Found;

/// What `--align` lines up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Faces,
    Eyes,
}

/// Where a feature goes in its panel when the pictures allow (fractions
/// of the panel): centred across, a little above the middle, as a portrait.
const PREFERRED: [f64; 2] = [0.5, 0.42];

/// One photo's feature: centre and size, in fractions of the photo's width
/// (size, centre x) and height (centre y).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feature {
    pub cx: f64,
    pub cy: f64,
    /// Width of the face box or distance between the eyes, over the photo's width.
    pub size: f64,
}

/// The feature of the one likely face of `found` (at or above
/// `threshold`), or why there is none, in plain words.
pub fn feature(found: &Found, align: Align, threshold: f32) -> Result<Feature, String> {
    let faces: Vec<_> = found.applied(threshold).collect();
    let face = match faces.as_slice() {
        [one] => one,
        [] => return Err("no face found to align on; the panel stays centred".into()),
        many => {
            return Err(format!(
                "{} faces found, not one to align on; the panel stays centred",
                many.len()
            ))
        }
    };
    let (w, h) = (found.width.max(1) as f64, found.height.max(1) as f64);
    match align {
        Align::Faces => {
            let c = face.bbox.centre();
            Ok(Feature {
                cx: c.x as f64 / w,
                cy: c.y as f64 / h,
                size: face.bbox.width() as f64 / w,
            })
        }
        Align::Eyes => {
            let Some([l, r]) = face.eyes.eyes else {
                return Err("the eyes were not found on the face; the panel stays centred".into());
            };
            let (dx, dy) = ((r.x - l.x) as f64, (r.y - l.y) as f64);
            Ok(Feature {
                cx: (l.x + r.x) as f64 / 2.0 / w,
                cy: (l.y + r.y) as f64 / 2.0 / h,
                size: dx.hypot(dy) / w,
            })
        }
    }
}

/// The framings that line up these features, one per photo (`None` where a
/// photo has no feature: it keeps its own framing). `photos` are the upright
/// sizes, `panels` the panel sizes.
pub fn framings(
    features: &[Option<Feature>],
    photos: &[(u32, u32)],
    panels: &[(u32, u32)],
) -> Vec<Option<Framing>> {
    // Each feature's size relative to the photo's largest panel-shaped crop.
    let base = |i: usize| Framing::default().crop(photos[i], panels[i]);
    let relative: Vec<Option<f64>> = features
        .iter()
        .enumerate()
        .map(|(i, f)| f.map(|f| f.size / base(i).w))
        .collect();
    let Some(target) = relative.iter().flatten().copied().max_by(f64::total_cmp) else {
        return vec![None; features.len()];
    };
    let zooms: Vec<Option<f64>> = relative
        .iter()
        .map(|r| r.map(|r| (target / r).clamp(1.0, MAX_ZOOM)))
        .collect();
    // Where the feature lands in every panel: the point nearest PREFERRED
    // that every photo's crop can reach while staying inside its picture.
    let (mut lo, mut hi) = ([f64::MIN; 2], [f64::MAX; 2]);
    for (i, f) in features.iter().enumerate() {
        let (Some(f), Some(z)) = (f, zooms[i]) else {
            continue;
        };
        let b = base(i);
        for (k, (c, side)) in [(f.cx, b.w / z), (f.cy, b.h / z)].into_iter().enumerate() {
            lo[k] = lo[k].max((c - (1.0 - side)) / side);
            hi[k] = hi[k].min(c / side);
        }
    }
    let at: Vec<f64> = (0..2)
        .map(|k| {
            if lo[k] <= hi[k] {
                PREFERRED[k].clamp(lo[k], hi[k])
            } else {
                // No place suits all: halfway between the nearest misses.
                (lo[k] + hi[k]) / 2.0
            }
        })
        .collect();
    features
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (f, zoom) = (f.as_ref()?, zooms[i]?);
            let b = base(i);
            let (cw, ch) = (b.w / zoom, b.h / zoom);
            // The crop centre that puts the feature at `at` in the panel.
            let cx = f.cx + (0.5 - at[0]) * cw;
            let cy = f.cy + (0.5 - at[1]) * ch;
            Some(Framing::Zoom {
                zoom,
                cx: cx.clamp(0.0, 1.0),
                cy: cy.clamp(0.0, 1.0),
            })
        })
        .collect()
}

/// The feature's centre in a panel showing `crop`, in fractions of the panel.
pub fn place(crop: FRect, f: Feature) -> (f64, f64) {
    ((f.cx - crop.x) / crop.w, (f.cy - crop.y) / crop.h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_land_at_the_same_place_and_scale() {
        // Photo 0: a small face off to the right; photo 1: a large one, left.
        let features = [
            Some(Feature {
                cx: 0.7,
                cy: 0.6,
                size: 0.1,
            }),
            Some(Feature {
                cx: 0.4,
                cy: 0.5,
                size: 0.3,
            }),
            None,
        ];
        let photos = [(1600, 1200), (1200, 1600), (800, 600)];
        let panels = [(500, 600); 3];
        let fr = framings(&features, &photos, &panels);
        assert!(fr[2].is_none());
        let placed: Vec<((f64, f64), f64)> = (0..2)
            .map(|i| {
                let crop = fr[i].unwrap().crop(photos[i], panels[i]);
                let f = features[i].unwrap();
                (place(crop, f), f.size / crop.w)
            })
            .collect();
        let ((a, sa), (b, sb)) = (placed[0], placed[1]);
        assert!(
            (a.0 - b.0).abs() < 0.01 && (a.1 - b.1).abs() < 0.01,
            "{a:?} {b:?}"
        );
        assert!((sa / sb - 1.0).abs() < 0.01, "{sa} {sb}");
        // The larger face is the unzoomed reference.
        assert!(matches!(fr[1], Some(Framing::Zoom { zoom, .. }) if zoom == 1.0));
    }
}
