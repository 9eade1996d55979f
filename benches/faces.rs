//! Face detection cost: CenterFace inference alone (the floor) against what
//! `clean --faces` adds per photo, on a 12 MP JPEG with one face.
//! `cargo bench --features faces --bench faces` (the feature is off by default).

use image::{Rgb, RgbImage};
use photodeid::faces::{self, FaceOptions};
use photodeid::pipeline::{clean_bytes, CleanOptions};
use photodeid::redact::Redaction;
use photodeid::region::Effect;
use photodeid::Limits;
use std::path::Path;

fn main() {
    divan::main();
}

fn astronaut() -> RgbImage {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faces/astronaut.jpg");
    image::open(p).expect("fixture").to_rgb8()
}

/// 4000 x 3000, the portrait scaled to 3000 x 3000 in the middle, JPEG q90.
fn photo_12mp() -> Vec<u8> {
    let face = image::imageops::resize(
        &astronaut(),
        3000,
        3000,
        image::imageops::FilterType::Triangle,
    );
    let mut canvas = RgbImage::from_pixel(4000, 3000, Rgb([120, 124, 130]));
    image::imageops::overlay(&mut canvas, &face, 500, 0);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&canvas)
        .expect("encode");
    out
}

/// The model alone on the 640 x 480 input `clean --faces` gives a 4:3 photo.
#[divan::bench]
fn inference_640x480(bencher: divan::Bencher) {
    let img = image::imageops::resize(
        &astronaut(),
        640,
        480,
        image::imageops::FilterType::Triangle,
    );
    faces::infer(&img, faces::MAYBE_THRESHOLD).expect("warm");
    bencher.bench(|| faces::infer(divan::black_box(&img), faces::MAYBE_THRESHOLD).expect("infer"));
}

/// Reduced decode + shrink + inference + eye checks of a 12 MP JPEG.
#[divan::bench(sample_count = 10)]
fn detect_12mp(bencher: divan::Bencher) {
    let bytes = photo_12mp();
    let limits = Limits::default();
    faces::detect_bytes(&bytes, None, &limits).expect("warm");
    bencher.bench(|| faces::detect_bytes(divan::black_box(&bytes), None, &limits).expect("detect"));
}

/// What `clean --faces` does per photo in memory: detect, then redact.
#[divan::bench(sample_count = 10)]
fn clean_faces_12mp(bencher: divan::Bencher) {
    let bytes = photo_12mp();
    let limits = Limits::default();
    let opts = FaceOptions::default();
    bencher.bench(|| {
        let found = faces::detect_bytes(&bytes, None, &limits).expect("detect");
        let regions = found.regions(&opts);
        assert_eq!(regions.len(), 1);
        redact_with(&bytes, &regions)
    });
}

/// The same redaction with the regions given (no detection): the redaction cost.
#[divan::bench(sample_count = 10)]
fn clean_region_12mp(bencher: divan::Bencher) {
    let bytes = photo_12mp();
    let found = faces::detect_bytes(&bytes, None, &Limits::default()).expect("detect");
    let regions = found.regions(&FaceOptions::default());
    bencher.bench(|| redact_with(&bytes, &regions));
}

fn redact_with(bytes: &[u8], regions: &[photodeid::region::RegionSpec]) -> usize {
    let opts = CleanOptions {
        redaction: Some(Redaction {
            regions,
            default_effect: Effect::Fill,
            fill: [0, 0, 0],
        }),
        ..CleanOptions::default()
    };
    clean_bytes(bytes, None, &opts).expect("clean").bytes.len()
}
