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

/// A 12 MP lossy WebP from cwebp (photo-like: the astronaut fixture scaled
/// up, with grain), made once under target/; `None` without cwebp.
fn lossy_12mp() -> Option<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let webp = dir.join("bench-12mp.webp");
    if !webp.exists() {
        let src =
            image::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faces/astronaut.jpg"))
                .ok()?
                .to_rgb8();
        let mut big =
            image::imageops::resize(&src, 4000, 3000, image::imageops::FilterType::Triangle);
        let mut seed = 0x9E37_79B9u32;
        for p in big.pixels_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let g = (seed % 17) as i16 - 8;
            for c in &mut p.0 {
                *c = (i16::from(*c) + g).clamp(0, 255) as u8;
            }
        }
        let png = dir.join("bench-12mp.png");
        big.save(&png).ok()?;
        let ok = std::process::Command::new("cwebp")
            .args(["-quiet", "-q", "80"])
            .arg(&png)
            .arg("-o")
            .arg(&webp)
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
    }
    std::fs::read(webp).ok()
}

/// The VP8 token walk alone (what `check --thorough` and `clean
/// --thorough` add for a lossy WebP), per 12 MP file; compare with
/// `dwebp target/bench-12mp.webp -o /dev/null` on the same file.
#[divan::bench(sample_count = 10)]
fn vp8_walk_12mp(bencher: divan::Bencher) {
    let Some(file) = lossy_12mp() else {
        eprintln!("cwebp not installed: vp8_walk_12mp skipped");
        return;
    };
    let len = u32::from_le_bytes(file[16..20].try_into().expect("4 bytes")) as usize;
    let vp8 = &file[20..20 + len];
    bencher.bench(|| photodeid::container::vp8::walk(divan::black_box(vp8)).expect("walk"));
}

/// `clean --thorough` of the same file in memory, for the whole cost.
#[divan::bench(sample_count = 10)]
fn clean_thorough_lossy_webp_12mp(bencher: divan::Bencher) {
    let Some(file) = lossy_12mp() else {
        return;
    };
    let opts = CleanOptions {
        thorough: true,
        ..CleanOptions::default()
    };
    bencher.bench(|| clean_bytes(divan::black_box(&file), None, &opts).expect("clean"));
}
