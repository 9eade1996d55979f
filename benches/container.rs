//! In-memory cost of the lossless path (parse + rewrite + audit parse) on the
//! fixtures, per format. `cargo bench --bench container`.

use photodeid::pipeline::{clean_bytes, inspect, CleanOptions};
use photodeid::Limits;
use std::path::Path;

fn main() {
    divan::main();
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/dirty")
            .join(name),
    )
    .expect("fixture")
}

#[divan::bench(args = ["jpeg_full.jpg", "jpeg_icc.jpg", "png_text.png", "webp_meta.webp", "gif_comment.gif"])]
fn clean_lossless(bencher: divan::Bencher, name: &str) {
    let bytes = fixture(name);
    let opts = CleanOptions::default();
    bencher.bench(|| clean_bytes(divan::black_box(&bytes), None, &opts).expect("clean"));
}

#[divan::bench(args = ["jpeg_full.jpg", "png_text.png"])]
fn audit_parse(bencher: divan::Bencher, name: &str) {
    let bytes = fixture(name);
    bencher.bench(|| inspect(divan::black_box(&bytes), None, &Limits::default()).expect("parse"));
}

/// The ICC rebuild alone, per profile: the fixture's (sRGB, v4) and
/// Ghostscript's Adobe RGB (v2) when installed. Compare with
/// `clean_lossless` for its share of a file's cost.
#[divan::bench(args = ["jpeg_icc.jpg", "/usr/share/color/icc/ghostscript/a98.icc", "/usr/share/color/icc/ghostscript/ps_cmyk.icc", "/usr/share/color/icc/ghostscript/default_cmyk.icc"])]
fn icc_sanitize(bencher: divan::Bencher, name: &str) {
    let profile = if name.ends_with(".icc") {
        match std::fs::read(name) {
            Ok(p) => p,
            Err(_) => return,
        }
    } else {
        let bytes = fixture(name);
        photodeid::container::jpeg::parse(&bytes, &Limits::default())
            .expect("parse")
            .icc_profile()
            .expect("profile")
    };
    bencher.bench(|| photodeid::icc::sanitize(divan::black_box(&profile)).expect("sanitize"));
}
