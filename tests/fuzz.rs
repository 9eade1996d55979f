//! Property tests: arbitrary and mutated bytes never panic any parser, and
//! whatever `clean_bytes` accepts comes out clean by the audit's own measure.

use crate::util::fixtures;
use photodeid::pipeline::{clean_bytes, inspect, CleanOptions};
use photodeid::redact::Redaction;
use photodeid::region::{Effect, RegionSpec};
use photodeid::Limits;
use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    [
        "dirty/jpeg_full.jpg",
        "dirty/png_text.png",
        "dirty/webp_meta.webp",
        "dirty/gif_comment.gif",
        "dirty/jpeg_progressive.jpg",
    ]
    .iter()
    .map(|f| std::fs::read(fixtures().join(f)).unwrap())
    .collect()
}

fn small_limits() -> CleanOptions<'static> {
    CleanOptions {
        limits: Limits {
            max_pixels: 4_000_000,
            max_alloc: 64 << 20,
        },
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = inspect(&bytes, None, &Limits::default());
        let _ = clean_bytes(&bytes, Some("jpg"), &small_limits());
    }

    #[test]
    fn mutated_fixtures_never_panic_and_outputs_stay_clean(
        which in 0usize..5,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = seeds()[which].clone();
        for (i, v) in edits {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(c) = clean_bytes(&bytes, None, &small_limits()) {
            let back = inspect(&c.bytes, None, &Limits::default()).expect("output parses");
            prop_assert!(back.inventory.is_clean(), "{:?}", back.inventory);
        }
    }

    /// Regions take the DCT-domain path (or the decode/re-encode path when
    /// the codec refuses): damaged JPEGs must never panic or leak metadata.
    #[test]
    fn mutated_jpegs_with_regions_never_panic_and_stay_clean(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let name = ["dirty/jpeg_full.jpg", "dirty/jpeg_progressive.jpg", "dirty/jpeg_restart.jpg"][which];
        let mut bytes = std::fs::read(fixtures().join(name)).unwrap();
        for (i, v) in edits {
            let at = i.index(bytes.len());
            bytes[at] = v;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let regions: Vec<RegionSpec> = ["10,10,60,40", "ellipse:40%,40%,30%,30%:pixelate"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut opts = small_limits();
        opts.redaction = Some(Redaction {
            regions: &regions,
            default_effect: Effect::Blur,
            fill: [0, 0, 0],
        });
        if let Ok(c) = clean_bytes(&bytes, None, &opts) {
            let back = inspect(&c.bytes, None, &Limits::default()).expect("output parses");
            prop_assert!(back.inventory.is_clean(), "{:?}", back.inventory);
        }
    }
}
