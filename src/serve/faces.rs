//! `GET /api/photos/ID/faces`: the faces and eye bars the detector proposes,
//! computed on the screen-size pixels already made for the editor (never a
//! second decode of the file) and cached per photo. The page draws them as
//! dashed outlines for a person to accept or dismiss; nothing is applied here.

use super::guard::Root;
use super::photos::Library;
use crate::error::Result;
use crate::faces::{self, BBox, Found};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Proposals already computed, by photo index.
#[derive(Default)]
pub struct Proposals {
    cache: Mutex<HashMap<usize, Arc<Value>>>,
}

impl Proposals {
    /// The proposals of photo `id` as the page wants them (percent of the photo).
    pub fn get(&self, lib: &Library, id: usize, root: &Root) -> Result<Arc<Value>> {
        if let Some(v) = self.lock().get(&id) {
            return Ok(v.clone());
        }
        if !faces::AVAILABLE {
            return Ok(Arc::new(json!({
                "available": false,
                "message": faces::unavailable().to_string(),
                "faces": [],
            })));
        }
        let screen = lib.screen(id, root)?;
        // The screen picture is already upright; turned tries cost little here.
        let found = faces::detect(&screen.image, true)?;
        let v = Arc::new(to_page(&found));
        self.lock().insert(id, v.clone());
        Ok(v)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Arc<Value>>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `{x, y, w, h}` in percent, rounded outwards to 0.01%.
fn percent(b: &BBox, w: f32, h: f32) -> Value {
    let c = b.clipped(w, h);
    let lo = |v: f32, full: f32| (v / full * 10_000.0).floor() / 100.0;
    let hi = |v: f32, full: f32| (v / full * 10_000.0).ceil() / 100.0;
    let (x0, y0, x1, y1) = (lo(c.x0, w), lo(c.y0, h), hi(c.x1, w), hi(c.y1, h));
    json!({ "x": x0, "y": y0, "w": round2(x1 - x0), "h": round2(y1 - y0) })
}

fn round2(v: f32) -> f32 {
    (v * 100.0).round() / 100.0
}

pub fn to_page(found: &Found) -> Value {
    let (w, h) = (found.width as f32, found.height as f32);
    let faces: Vec<Value> = found
        .faces
        .iter()
        .map(|f| {
            json!({
                "score": round2(f.score),
                "likely": f.score >= faces::DEFAULT_THRESHOLD,
                "face": percent(&f.region, w, h),
                "eyes": percent(&f.eyes.bbox, w, h),
                "eyes_from": f.eyes.source,
            })
        })
        .collect();
    json!({
        "available": true,
        "threshold": faces::DEFAULT_THRESHOLD,
        "found": found.applied(faces::DEFAULT_THRESHOLD).count(),
        "faces": faces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faces::{EyeBar, EyeSource, Face};

    #[test]
    fn page_form_is_percent_rounded_outwards() {
        let b = BBox {
            x0: 10.0,
            y0: 20.0,
            x1: 30.3,
            y1: 60.0,
        };
        let found = Found {
            width: 200,
            height: 100,
            faces: vec![Face {
                score: 0.42,
                bbox: b,
                region: b,
                eyes: EyeBar {
                    bbox: b,
                    source: EyeSource::Band,
                    eyes: None,
                },
            }],
            turned: None,
        };
        let v = to_page(&found);
        assert_eq!(v["found"], 0);
        assert_eq!(v["faces"][0]["likely"], false);
        assert_eq!(v["faces"][0]["face"]["x"].as_f64().unwrap(), 5.0);
        // 30.3 / 200 = 15.15% → the width reaches at least 15.15 - 5.
        assert!(v["faces"][0]["face"]["w"].as_f64().unwrap() >= 10.15 - 1e-6);
        assert_eq!(v["faces"][0]["eyes_from"], "band");
    }
}
