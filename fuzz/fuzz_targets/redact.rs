//! Regions on any input: decode, destroy, re-encode (or the JPEG block
//! path), audit. The first 9 bytes are a region (percentages, shape,
//! effect); the rest is the file. An accepted output passes the audit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use photodeid::pipeline::{audit, clean_bytes, CleanOptions};
use photodeid::redact::Redaction;
use photodeid::region::{Effect, RegionSpec};
use photodeid::Limits;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let (head, file) = data.split_at(9);
    let pct = |b: u8| u32::from(b) % 101;
    let shape = if head[4] & 1 == 0 { "rect" } else { "ellipse" };
    let effect = ["blur", "pixelate", "fill"][usize::from(head[5] % 3)];
    let spec = format!(
        "{shape}:{}%,{}%,{}%,{}%:{effect}",
        pct(head[0]),
        pct(head[1]),
        pct(head[2]).max(1),
        pct(head[3]).max(1)
    );
    let Ok(region) = spec.parse::<RegionSpec>() else {
        return;
    };
    let regions = [region];
    let limits = Limits {
        max_pixels: 1 << 18,
        max_alloc: 32 << 20,
    };
    let opts = CleanOptions {
        limits,
        quality: (head[6] & 1 == 1).then_some(head[7] % 100 + 1),
        redaction: Some(Redaction {
            regions: &regions,
            default_effect: Effect::default(),
            fill: [head[8], 0, 0],
        }),
        ..CleanOptions::default()
    };
    if let Ok(cleaned) = clean_bytes(file, None, &opts) {
        if let Err(e) = audit(&cleaned.bytes, &cleaned, &limits) {
            panic!("redacted output fails the audit: {e}");
        }
    }
});
