//! The animated before/after: the case's photos one at a time in one
//! panel (same framing, redaction and label as a still panel), each held
//! [`HOLD_MS`], looping, as a GIF.
//!
//! A GIF rather than an animated WebP: the image crate's WebP encoder makes
//! still lossless pictures only, and no pure-Rust animated WebP encoder is
//! in the tree. All frames share one palette (NeuQuant over samples of
//! every frame), so a colour does not shift between before and after. The
//! file holds nothing but the picture blocks, the frame delays and the
//! NETSCAPE2.0 loop extension.

use crate::error::{Error, Result};
use image::RgbImage;
use rayon::prelude::*;
use std::borrow::Cow;

/// How long each frame shows.
pub const HOLD_MS: u16 = 1200;

/// The canvas when no `--size` is given (Instagram's square).
pub const DEFAULT_SIZE: (u32, u32) = (1080, 1080);

/// Pixels sampled from all frames to build the palette.
const SAMPLE: usize = 400_000;

/// `frames` (all the same size) as a looping GIF with one global palette.
pub fn encode_gif(frames: &[RgbImage]) -> Result<Vec<u8>> {
    let err = |e: String| Error::Encode(format!("animated GIF: {e}"));
    let Some(first) = frames.first() else {
        return Err(err("no frames".into()));
    };
    let (w, h) = first.dimensions();
    if frames.iter().any(|f| f.dimensions() != (w, h)) {
        return Err(err("frames differ in size".into()));
    }
    let (Ok(gw), Ok(gh)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(err(format!("{w}x{h} is larger than GIF's 65535 pixels")));
    };
    let step = (frames.len() * (w as usize) * (h as usize) / SAMPLE).max(1);
    let sample: Vec<u8> = frames
        .iter()
        .flat_map(|f| f.pixels().step_by(step))
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let nq = color_quant::NeuQuant::new(10, 256, &sample);
    let palette = nq.color_map_rgb();
    let mut out = Vec::new();
    {
        let mut enc =
            gif::Encoder::new(&mut out, gw, gh, &palette).map_err(|e| err(e.to_string()))?;
        enc.set_repeat(gif::Repeat::Infinite)
            .map_err(|e| err(e.to_string()))?;
        for f in frames {
            let indices: Vec<u8> = f
                .as_raw()
                .par_chunks(3)
                .map(|p| nq.index_of(&[p[0], p[1], p[2], 255]) as u8)
                .collect();
            let frame = gif::Frame {
                width: gw,
                height: gh,
                delay: HOLD_MS / 10,
                buffer: Cow::Owned(indices),
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_delays_loop_and_colours_survive() {
        let a = RgbImage::from_pixel(64, 48, image::Rgb([220, 30, 30]));
        let b = RgbImage::from_pixel(64, 48, image::Rgb([30, 200, 40]));
        let bytes = encode_gif(&[a, b]).unwrap();
        assert!(bytes.windows(11).any(|w| w == b"NETSCAPE2.0"));
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut d = opts.read_info(bytes.as_slice()).unwrap();
        let mut seen = Vec::new();
        while let Some(f) = d.read_next_frame().unwrap() {
            assert_eq!((f.width, f.height, f.delay), (64, 48, 120));
            seen.push([f.buffer[0], f.buffer[1], f.buffer[2]]);
        }
        assert_eq!(seen.len(), 2);
        for (got, want) in seen.iter().zip([[220, 30, 30], [30, 200, 40]]) {
            assert!(
                got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 8),
                "{got:?}"
            );
        }
        assert!(encode_gif(&[]).is_err());
    }
}
