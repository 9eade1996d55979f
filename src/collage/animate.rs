//! The animated before/after: the case's photos one at a time in one
//! panel (same framing, redaction and label as a still panel), each held
//! [`HOLD_MS`], looping, as a GIF; from one to the next either a cut or a
//! wipe (a divider sweeping left to right uncovers the next photo).
//!
//! A GIF rather than an animated WebP: the image crate's WebP encoder makes
//! still lossless pictures only, and no pure-Rust animated WebP encoder is
//! in the tree. All frames share one palette (NeuQuant over samples of
//! every frame), so a colour does not shift between before and after. The
//! file holds nothing but the picture blocks, the frame delays and the
//! NETSCAPE2.0 loop extension. A wipe step is a sub-frame of just the strip
//! that changed (drawn over the last), so a wipe costs about one frame.

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

/// Steps of a wipe, each shown [`WIPE_STEP_CS`] hundredths: 0.6 s in all.
const WIPE_STEPS: u32 = 15;
const WIPE_STEP_CS: u16 = 4;

/// The wipe's divider colour (white, as editors draw it).
const DIVIDER: [u8; 3] = [255, 255, 255];

/// How one photo gives way to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transition {
    /// The next photo replaces the last at once.
    #[default]
    Cut,
    /// A divider sweeps left to right, uncovering the next photo.
    Wipe,
}

/// `frames` (all the same size) as a looping GIF with one global palette.
pub fn encode_gif(frames: &[RgbImage], transition: Transition) -> Result<Vec<u8>> {
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
    let mut sample: Vec<u8> = frames
        .iter()
        .flat_map(|f| f.pixels().step_by(step))
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    if transition == Transition::Wipe {
        // Enough of the divider that the palette holds its colour.
        for _ in 0..(sample.len() / 400).max(16) {
            sample.extend([DIVIDER[0], DIVIDER[1], DIVIDER[2], 255]);
        }
    }
    let nq = color_quant::NeuQuant::new(10, 256, &sample);
    let palette = nq.color_map_rgb();
    let index = |p: &[u8]| nq.index_of(&[p[0], p[1], p[2], 255]) as u8;
    let indexed: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| f.as_raw().par_chunks(3).map(index).collect())
        .collect();
    let divider = index(&DIVIDER);
    let mut out = Vec::new();
    {
        let mut enc =
            gif::Encoder::new(&mut out, gw, gh, &palette).map_err(|e| err(e.to_string()))?;
        enc.set_repeat(gif::Repeat::Infinite)
            .map_err(|e| err(e.to_string()))?;
        let mut write = |frame: gif::Frame| enc.write_frame(&frame).map_err(|e| err(e.to_string()));
        let whole = |i: usize, delay: u16| gif::Frame {
            width: gw,
            height: gh,
            delay,
            dispose: gif::DisposalMethod::Keep,
            buffer: Cow::Borrowed(indexed[i].as_slice()),
            ..gif::Frame::default()
        };
        match transition {
            Transition::Cut => {
                for i in 0..indexed.len() {
                    write(whole(i, HOLD_MS / 10))?;
                }
            }
            Transition::Wipe => {
                write(whole(0, HOLD_MS / 10))?;
                let n = indexed.len();
                for i in (0..n).filter(|_| n > 1) {
                    let next = (i + 1) % n;
                    // The loop's start shows the first photo whole and held.
                    let last = if next == 0 {
                        WIPE_STEP_CS
                    } else {
                        HOLD_MS / 10
                    };
                    let strips = wipe_strips(w, h, &indexed[next], divider);
                    let steps = strips.len();
                    for (k, strip) in strips.into_iter().enumerate() {
                        let delay = if k + 1 == steps { last } else { WIPE_STEP_CS };
                        write(strip_frame(strip, gh, delay))?;
                    }
                }
            }
        }
    }
    Ok(out)
}

/// (left, width, pixels) of each wipe step: the columns from the last
/// divider to the new one, from the next photo, then the divider itself.
fn wipe_strips(w: u32, h: u32, next: &[u8], divider: u8) -> Vec<(u16, u16, Vec<u8>)> {
    let bar = (w / 270).max(2);
    let at = |k: u32| w * k / WIPE_STEPS;
    (1..=WIPE_STEPS)
        .map(|k| {
            let (from, to) = (at(k - 1), at(k));
            // The last divider's columns are redrawn; the last step has none.
            let end = if k == WIPE_STEPS {
                w
            } else {
                (to + bar).min(w)
            };
            let width = end - from;
            let mut px = Vec::with_capacity(width as usize * h as usize);
            for row in next.chunks_exact(w as usize) {
                px.extend_from_slice(&row[from as usize..to as usize]);
                px.extend(std::iter::repeat_n(divider, (end - to) as usize));
            }
            (from as u16, width as u16, px)
        })
        .collect()
}

fn strip_frame(
    (left, width, px): (u16, u16, Vec<u8>),
    height: u16,
    delay: u16,
) -> gif::Frame<'static> {
    gif::Frame {
        left,
        width,
        height,
        delay,
        dispose: gif::DisposalMethod::Keep,
        buffer: Cow::Owned(px),
        ..gif::Frame::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_delays_loop_and_colours_survive() {
        let a = RgbImage::from_pixel(64, 48, image::Rgb([220, 30, 30]));
        let b = RgbImage::from_pixel(64, 48, image::Rgb([30, 200, 40]));
        let bytes = encode_gif(&[a, b], Transition::Cut).unwrap();
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
        assert!(encode_gif(&[], Transition::Cut).is_err());
    }
}
