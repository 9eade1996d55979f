//! The describers that turn metadata into the words `check` and the page
//! show: EXIF (TIFF-structured), XMP, Photoshop/IPTC, ICC. Never a panic,
//! and what they say stays short (they summarise; they never echo a
//! hostile megabyte back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use photodeid::{describe, exif_block, icc};

fuzz_target!(|data: &[u8]| {
    let bound = 4096 + data.len() / 4;
    let _ = exif_block::summarize(data);
    for s in [describe::xmp(data), describe::photoshop(data), icc::describe(data)] {
        assert!(s.len() <= bound, "{} bytes of description", s.len());
    }
});
