//! Every container parser, the lossless rewrite and the audit, through the
//! one entry point all front ends use (`pipeline::clean_bytes`), so a new
//! format is covered by adding seeds. The first byte picks the extension
//! hint and the options; the rest is the file.
//!
//! Invariants: whatever is accepted comes out clean by the audit's own
//! measure, re-parses as the same format, and cleaning the output again is
//! lossless and changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use photodeid::pipeline::{
    audit, clean_bytes, inspect, inspect_thorough, CleanOptions, Deep, Method, OrientationMode,
};
use photodeid::Limits;

const HINTS: [Option<&str>; 8] = [
    None,
    Some("jpg"),
    Some("png"),
    Some("webp"),
    Some("gif"),
    Some("tif"),
    Some("heic"),
    Some("txt"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, file)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_pixels: 1 << 20,
        max_alloc: 64 << 20,
    };
    let opts = CleanOptions {
        strip_icc: knobs & 0x08 != 0,
        orientation: if knobs & 0x10 != 0 {
            OrientationMode::Apply
        } else {
            OrientationMode::Keep
        },
        limits,
        // The coded-data walks (JPEG transcode, VP8 partitions, VP8L).
        thorough: knobs & 0x20 != 0,
        ..CleanOptions::default()
    };
    let hint = HINTS[usize::from(knobs & 0x07)];
    let _ = inspect(file, hint, &limits);
    let Ok(cleaned) = clean_bytes(file, hint, &opts) else {
        return;
    };
    if let Err(e) = audit(&cleaned.bytes, &cleaned, &limits) {
        panic!("accepted output fails the audit: {e}");
    }
    if opts.thorough {
        // The thorough audit agrees with the thorough writer.
        let parsed = inspect(&cleaned.bytes, None, &limits).expect("output parses");
        if let Ok(Deep::Findings(f)) = inspect_thorough(&parsed) {
            assert!(f.is_empty(), "the thorough output still has {f:?}");
        }
    }
    let again = match clean_bytes(&cleaned.bytes, None, &opts) {
        Ok(a) => a,
        Err(e) => panic!("our own output does not clean again: {e}"),
    };
    assert_eq!(again.format, cleaned.format, "format changed");
    if cleaned.method == Method::Lossless || again.method == Method::Lossless {
        assert!(
            again.bytes == cleaned.bytes,
            "cleaning the output again changed it ({} -> {} bytes)",
            cleaned.bytes.len(),
            again.bytes.len()
        );
    }
    assert!(
        again.removed.0.is_empty(),
        "the output still carried {}",
        again.removed.summary()
    );
});
