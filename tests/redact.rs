//! Region redaction end to end: detail destroyed (measured), the rest of the
//! photo intact, regions placed on the photo as displayed, nothing left in
//! the file but the pixels.
//!
//! Thresholds, stated once:
//! - inside a region, edge energy (mean |dx| + |dy| of the luma) falls below
//!   10 % of the original's, and the luma's correlation with the original is
//!   below 0.1 for a checkerboard and 0.35 for text (pixelate keeps at most
//!   8 x 8 block means of a line of text, which correlate a little with
//!   where the ink is; the letters themselves are gone: see the edge energy);
//! - outside, beyond one 16-px JPEG block (4:2:0 MCU) from the region, the
//!   re-encode stays above 35 dB PSNR against the original.

use super::util::{canaries, contains, decode, exif_tags, exiftool, files, run, stderr};
use ab_glyph::{FontRef, PxScale};
use image::{GrayImage, Luma, Rgb, RgbImage};
use std::path::{Path, PathBuf};

const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A mid-grey photo-like background with a smooth gradient.
fn background(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = 90 + (x * 60 / w) as u8 + (y * 40 / h) as u8;
        Rgb([v, v.saturating_sub(10), v.saturating_add(12)])
    })
}

/// 2-px black and white checks inside `r`.
fn draw_checker(img: &mut RgbImage, (x0, y0, w, h): (u32, u32, u32, u32)) {
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let on = ((x - x0) / 2 + (y - y0) / 2) % 2 == 0;
            img.put_pixel(x, y, if on { Rgb([255; 3]) } else { Rgb([0; 3]) });
        }
    }
}

/// A name badge: black text on white inside `r`.
fn draw_badge(img: &mut RgbImage, (x0, y0, w, h): (u32, u32, u32, u32)) {
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            img.put_pixel(x, y, Rgb([255; 3]));
        }
    }
    let font = FontRef::try_from_slice(FONT).unwrap();
    let scale = PxScale::from(28.0);
    for (i, line) in ["Jane Q. Patientname", "DOB 02.04.1961"].iter().enumerate() {
        imageproc::drawing::draw_text_mut(
            img,
            Rgb([0; 3]),
            (x0 + 8) as i32,
            (y0 + 6 + 34 * i as u32) as i32,
            scale,
            &font,
            line,
        );
    }
}

fn write_jpeg(path: &Path, img: &RgbImage, quality: u8) {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    std::fs::write(path, out).unwrap();
}

fn luma(img: &RgbImage, (x0, y0, w, h): (u32, u32, u32, u32)) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let p = img.get_pixel(x0 + x, y0 + y).0;
        Luma([((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114) / 1000) as u8])
    })
}

fn edge_energy(g: &GrayImage) -> f64 {
    let (w, h) = g.dimensions();
    let mut sum = 0u64;
    for y in 0..h - 1 {
        for x in 0..w - 1 {
            let p = g.get_pixel(x, y).0[0] as i32;
            sum += (p - g.get_pixel(x + 1, y).0[0] as i32).unsigned_abs() as u64;
            sum += (p - g.get_pixel(x, y + 1).0[0] as i32).unsigned_abs() as u64;
        }
    }
    sum as f64 / ((w - 1) * (h - 1)) as f64
}

/// Pearson correlation; 0 when either side is constant.
fn correlation(a: &GrayImage, b: &GrayImage) -> f64 {
    let n = a.len() as f64;
    let xs: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let ys: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(&ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// PSNR of `b` against `a` over the pixels where `keep(x, y)`.
fn psnr_where(a: &RgbImage, b: &RgbImage, keep: impl Fn(u32, u32) -> bool) -> f64 {
    let (mut se, mut n) = (0f64, 0f64);
    for (x, y, p) in a.enumerate_pixels() {
        if keep(x, y) {
            for (c, d) in p.0.iter().zip(b.get_pixel(x, y).0) {
                se += (*c as f64 - d as f64).powi(2);
                n += 1.0;
            }
        }
    }
    10.0 * (255.0f64.powi(2) / (se / n)).log10()
}

fn only_output(dir: &Path) -> PathBuf {
    let f = files(dir);
    assert_eq!(f.len(), 1, "{f:?}");
    f.into_iter().next().unwrap()
}

#[test]
fn detail_inside_is_destroyed_and_the_rest_survives() {
    let d = tempfile::tempdir().unwrap();
    let (w, h) = (640, 480);
    let checks = (64, 64, 256, 128);
    let badge = (336, 288, 288, 80);
    let mut img = background(w, h);
    draw_checker(&mut img, checks);
    draw_badge(&mut img, badge);
    let input = d.path().join("IMG_0001.jpg");
    write_jpeg(&input, &img, 95);
    let orig = decode(&input).to_rgb8();
    let region = |(x, y, w, h): (u32, u32, u32, u32)| format!("{x},{y},{w},{h}");
    for effect in ["fill", "pixelate", "blur"] {
        let out = d.path().join(format!("out-{effect}"));
        let o = run(&[
            "clean",
            s(&input),
            "-o",
            s(&out),
            "--effect",
            effect,
            "--region",
            &region(checks),
            "--region",
            &region(badge),
        ]);
        assert!(o.status.success(), "{effect}: {}", stderr(&o));
        let got = decode(&only_output(&out)).to_rgb8();
        assert_eq!(got.dimensions(), (w, h));
        for (what, r, max_corr) in [("checkerboard", checks, 0.1), ("text", badge, 0.35)] {
            let (a, b) = (luma(&orig, r), luma(&got, r));
            let (ea, eb) = (edge_energy(&a), edge_energy(&b));
            assert!(
                ea > 20.0,
                "{what}: the test pattern has too little detail ({ea})"
            );
            assert!(
                eb < 0.10 * ea,
                "{effect} {what}: edge energy {eb:.2} is not below 10% of {ea:.2}"
            );
            let c = correlation(&a, &b).abs();
            assert!(c < max_corr, "{effect} {what}: correlation {c:.3}");
        }
        let far = |x: u32, y: u32| {
            [checks, badge].iter().all(|&(rx, ry, rw, rh)| {
                x + 16 < rx || x >= rx + rw + 16 || y + 16 < ry || y >= ry + rh + 16
            })
        };
        let p = psnr_where(&orig, &got, far);
        assert!(p > 35.0, "{effect}: PSNR outside the regions {p:.1} dB");
    }
}

#[test]
fn percent_regions_land_in_the_same_place_on_any_size() {
    let d = tempfile::tempdir().unwrap();
    for (w, h) in [(400, 300), (1600, 1200)] {
        let input = d.path().join(format!("p{w}.png"));
        RgbImage::from_pixel(w, h, Rgb([128; 3]))
            .save(&input)
            .unwrap();
        let out = d.path().join(format!("o{w}.png"));
        let o = run(&[
            "clean",
            s(&input),
            "-o",
            s(&out),
            "--region",
            "25%,50%,50%,25%:fill",
            "--fill-color",
            "ff0000",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let got = decode(&out).to_rgb8();
        let red: Vec<(u32, u32)> = got
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0 == [255, 0, 0])
            .map(|(x, y, _)| (x, y))
            .collect();
        let (x0, x1) = (red.iter().map(|p| p.0).min(), red.iter().map(|p| p.0).max());
        let (y0, y1) = (red.iter().map(|p| p.1).min(), red.iter().map(|p| p.1).max());
        assert_eq!(red.len() as u32, (w / 2) * (h / 4), "{w}x{h}: PNG is exact");
        assert_eq!((x0, x1), (Some(w / 4), Some(w * 3 / 4 - 1)));
        assert_eq!((y0, y1), (Some(h / 2), Some(h * 3 / 4 - 1)));
    }
}

/// A JPEG whose stored pixels show `upright` once rotated by `orientation`.
fn sideways_jpeg(path: &Path, upright: &RgbImage, orientation: u16) {
    let stored = match orientation {
        6 => image::imageops::rotate270(upright),
        8 => image::imageops::rotate90(upright),
        _ => unreachable!(),
    };
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(&stored)
        .unwrap();
    // APP1 Exif: big-endian TIFF, IFD0 with one entry, Orientation.
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    jpeg.splice(2..2, app1);
    std::fs::write(path, jpeg).unwrap();
}

#[test]
fn orientation_6_and_8_are_redacted_where_the_user_saw_the_eyes() {
    let d = tempfile::tempdir().unwrap();
    // Upright portrait 240x320; "eyes" (a black bar) at 60..180 x 80..120.
    let mut upright = background(240, 320);
    for y in 80..120 {
        for x in 60..180 {
            upright.put_pixel(x, y, Rgb([0; 3]));
        }
    }
    for orientation in [6, 8] {
        let input = d.path().join(format!("o{orientation}.jpg"));
        sideways_jpeg(&input, &upright, orientation);
        assert_eq!(super::util::exif_orientation(&input), orientation as u32);
        let out = d.path().join(format!("out{orientation}.jpg"));
        let o = run(&[
            "clean",
            s(&input),
            "-o",
            s(&out),
            "--region",
            "25%,25%,50%,12.5%:fill",
            "--fill-color",
            "ffffff",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(super::util::exif_orientation(&out), 1, "tag dropped");
        let got = decode(&out).to_rgb8();
        assert_eq!(got.dimensions(), (240, 320), "stored upright");
        // The bar is gone: white where it was, with JPEG tolerance.
        for (x, y) in [(70, 90), (120, 100), (170, 110)] {
            let p = got.get_pixel(x, y).0;
            assert!(
                p.iter().all(|&v| v > 235),
                "o{orientation}: ({x},{y}) = {p:?}"
            );
        }
        // And the rest of the picture is where the viewer saw it.
        let p = psnr_where(&upright, &got, |x, y| {
            !(44..196).contains(&x) || !(64..136).contains(&y)
        });
        assert!(p > 35.0, "o{orientation}: PSNR outside {p:.1} dB");
    }
}

#[test]
fn redacted_outputs_carry_no_metadata_thumbnail_or_preview() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let dirty = super::util::fixtures().join("dirty");
    let inputs = [
        "jpeg_full.jpg",
        "jpeg_photoshop.jpg",
        "jpeg_orient_6.jpg",
        "png_text.png",
        "webp_meta.webp",
    ];
    let mut args = vec!["clean".to_string()];
    args.extend(inputs.iter().map(|n| dirty.join(n).display().to_string()));
    args.extend(["-o", s(&out), "--region", "10%,10%,30%,30%:pixelate"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let outputs = files(&out);
    assert_eq!(outputs.len(), inputs.len());
    for f in &outputs {
        let bytes = std::fs::read(f).unwrap();
        for c in canaries() {
            assert!(!contains(&bytes, c.as_bytes()), "{}: {c}", f.display());
        }
        for marker in [
            &b"Exif\0\0"[..],
            b"http://ns.adobe.com/xap",
            b"8BIM",
            b"Photoshop 3.0",
            b"MPF\0",
        ] {
            assert!(!contains(&bytes, marker), "{}: {:?}", f.display(), marker);
        }
        if bytes.starts_with(&[0xFF, 0xD8]) {
            // One image: no second SOI (an embedded thumbnail or preview).
            assert!(
                !contains(&bytes[2..], &[0xFF, 0xD8, 0xFF]),
                "{}",
                f.display()
            );
        }
        assert!(
            exif_tags(f).is_empty(),
            "{}: {:?}",
            f.display(),
            exif_tags(f)
        );
    }
    let check = run(&["check", s(&out)]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        super::util::stdout(&check)
    );
    if let Some(mut et) = exiftool() {
        let o = et
            .args([
                "-a",
                "-G1",
                "-s",
                "-ThumbnailImage",
                "-PreviewImage",
                "-JpgFromRaw",
                "-Orientation",
                "-GPS:all",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        let found: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
        assert!(found.is_empty(), "exiftool still finds: {found:?}");
    }
}

#[test]
fn manifest_rows_apply_per_file_and_a_typo_fails_the_run() {
    let d = tempfile::tempdir().unwrap();
    let inp = d.path().join("in");
    std::fs::create_dir_all(inp.join("case1")).unwrap();
    for name in ["case1/a.png", "case1/b.png"] {
        RgbImage::from_pixel(100, 100, Rgb([128; 3]))
            .save(inp.join(name))
            .unwrap();
    }
    let manifest = d.path().join("regions.csv");
    std::fs::write(
        &manifest,
        "file,x,y,w,h,shape,effect\ncase1/b.png,0,0,50,50,,fill\n",
    )
    .unwrap();
    let out = d.path().join("out");
    let base = [
        "clean",
        s(&inp),
        "--keep-names",
        "--fill-color",
        "ff0000",
        "--regions",
        s(&manifest),
    ];
    let o = run(&[&base[..], &["-o", s(&out)]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let a = decode(&out.join("case1/a.png")).to_rgb8();
    let b = decode(&out.join("case1/b.png")).to_rgb8();
    assert!(a.pixels().all(|p| p.0 == [128; 3]), "a.png has no row");
    assert_eq!(b.get_pixel(10, 10).0, [255, 0, 0]);
    assert_eq!(b.get_pixel(60, 60).0, [128; 3]);

    std::fs::write(
        &manifest,
        "file,x,y,w,h\ncase1/b.png,0,0,50,50\ncase1/c.png,0,0,50,50\n",
    )
    .unwrap();
    let out2 = d.path().join("out2");
    let o = run(&[&base[..], &["-o", s(&out2)]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(s(&manifest)) && err.contains("case1/c.png"),
        "{err}"
    );
    assert!(
        !out2.exists() || files(&out2).is_empty(),
        "a manifest typo must stop the run before anything is written"
    );
    // `#` is not a comment: a folder named `#12 Smith` is a file pattern.
    std::fs::create_dir_all(inp.join("#12 Smith")).unwrap();
    RgbImage::from_pixel(100, 100, Rgb([128; 3]))
        .save(inp.join("#12 Smith/c.png"))
        .unwrap();
    std::fs::write(
        &manifest,
        "file,x,y,w,h\ncase1/b.png,0,0,50,50\n#12 Smith/c.png,0,0,50,50\n",
    )
    .unwrap();
    let out3 = d.path().join("out3");
    let o = run(&[&base[..], &["-o", s(&out3)]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let c = decode(&out3.join("#12 Smith/c.png")).to_rgb8();
    assert_eq!(
        c.get_pixel(10, 10).0,
        [255, 0, 0],
        "a row starting with # was ignored"
    );
}

#[test]
fn clipped_regions_warn_and_regions_outside_fail_that_file() {
    let d = tempfile::tempdir().unwrap();
    let small = d.path().join("small.png");
    let big = d.path().join("big.png");
    RgbImage::from_pixel(100, 100, Rgb([128; 3]))
        .save(&small)
        .unwrap();
    RgbImage::from_pixel(400, 400, Rgb([128; 3]))
        .save(&big)
        .unwrap();
    let out = d.path().join("out");
    let o = run(&[
        "clean",
        s(&small),
        s(&big),
        "-o",
        s(&out),
        "--region",
        "150,150,300,300",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("photodeid: {}: ", small.display())),
        "{err}"
    );
    assert!(err.contains("outside"), "{err}");
    let written = files(&out);
    assert_eq!(written.len(), 1, "only the big photo is written");
    // The warning names the output (a pseudonym), not the original.
    assert!(
        err.contains(&format!("photodeid: {}: warning:", written[0].display())),
        "{err}"
    );
    assert!(!err.contains("big.png"), "{err}");
    let got = decode(&written[0]).to_rgb8();
    assert_eq!(
        got.get_pixel(250, 250).0,
        [0, 0, 0],
        "clipped region still filled"
    );
}

#[test]
fn png_stays_lossless_outside_the_region() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("photo.png");
    let img = background(200, 150);
    img.save(&input).unwrap();
    let out = d.path().join("clean.png");
    let o = run(&[
        "clean",
        s(&input),
        "-o",
        s(&out),
        "--region",
        "ellipse:50,40,80,60:blur",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = decode(&out).to_rgb8();
    let mut changed = 0;
    for (x, y, p) in got.enumerate_pixels() {
        if (50..130).contains(&x) && (40..100).contains(&y) {
            changed += usize::from(p != img.get_pixel(x, y));
        } else {
            assert_eq!(p, img.get_pixel(x, y), "({x},{y}) changed outside");
        }
    }
    assert!(changed > 0);
}
