//! One collage panel from any input, as every front end makes it
//! (`collage::prepare_tile` with a target size and a framing): the header
//! probe, the decode reduced in the DCT to a window (the scan stepped over
//! above it and the frame cut below it, both made by our own code and fed
//! to the decoder), the crop and the resize. The first 4 bytes are the
//! framing (zoom, centre) and the panel's size; the rest is the file.
//!
//! Invariant: an accepted panel is exactly the size asked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use photodeid::collage::{prepare_tile, Framing, TileOptions};
use photodeid::Limits;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, file) = data.split_at(4);
    let framing = Framing::Zoom {
        zoom: 1.0 + f64::from(head[0] % 64) / 8.0,
        cx: f64::from(head[1]) / 255.0,
        cy: f64::from(head[2]) / 255.0,
    };
    // Small panels, so a photo of a few hundred pixels decodes reduced.
    let target = (
        8 + u32::from(head[3] & 0x0f) * 12,
        8 + u32::from(head[3] >> 4) * 12,
    );
    let opts = TileOptions {
        limits: Limits {
            max_pixels: 1 << 20,
            max_alloc: 64 << 20,
        },
        target: Some(target),
        framing,
        ..TileOptions::default()
    };
    if let Ok(panel) = prepare_tile(file, None, &opts) {
        assert_eq!(panel.image.dimensions(), target, "panel size");
    }
});
