//! Issue 9, JPEG: every byte an output keeps is one the structure accounts
//! for. Each fixture is a real JPEG with a canary put, byte by byte, in one
//! place a copying rewriter would keep; it is cleaned on each path (lossless,
//! `--region` in the DCT domain, `--region` with `--quality`, `--thorough`),
//! and the output must lack the canary, decode with libjpeg and ImageMagick
//! without a warning, keep the input's pixels when lossless, and pass
//! `check`, while `check` of the input names what was there.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const CANARY: &[u8] = b"JPEG-CANARY-Jane-Q-Patientname";

fn base(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("dirty").join(name)).unwrap()
}

/// Whether an independent tool is installed; on CI its absence fails.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("-version").output().is_ok();
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{tool} missing on CI");
        eprintln!("{tool} not installed: that cross-check is skipped locally");
    }
    ok
}

/// Byte offset of the first `FF marker`.
fn find_marker(b: &[u8], marker: u8) -> usize {
    b.windows(2).position(|w| w == [0xFF, marker]).unwrap()
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, marker];
    v.extend_from_slice(&(payload.len() as u16 + 2).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn insert(mut b: Vec<u8>, at: usize, what: &[u8]) -> Vec<u8> {
    b.splice(at..at, what.iter().copied());
    b
}

/// Before the last EOI (after the scan data).
fn before_eoi(b: Vec<u8>, what: &[u8]) -> Vec<u8> {
    let at = b.len() - 2;
    assert_eq!(b[at..], [0xFF, 0xD9]);
    insert(b, at, what)
}

fn unused_dqt() -> Vec<u8> {
    let mut p = vec![3];
    p.extend((0..64).map(|i| CANARY[i % CANARY.len()]));
    segment(0xDB, &p)
}

fn unused_dht() -> Vec<u8> {
    let mut p = vec![0x13];
    let mut counts = [0u8; 16];
    counts[7] = CANARY.len() as u8; // 8-bit codes
    p.extend_from_slice(&counts);
    p.extend_from_slice(CANARY);
    segment(0xC4, &p)
}

fn jfif_named() -> Vec<u8> {
    let mut p = b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00".to_vec();
    p.extend_from_slice(CANARY);
    segment(0xE0, &p)
}

fn adobe_named() -> Vec<u8> {
    let mut p = b"Adobe\0\x64\x00\x00\x00\x00\x01".to_vec();
    p.extend_from_slice(CANARY);
    segment(0xEE, &p)
}

/// Fixtures the rewrite can clean, each with the words `check` must show.
fn cleanable() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let b = base("jpeg_icc.jpg");
    let first_dqt = find_marker(&b, 0xDB);
    let sos = find_marker(&b, 0xDA);
    let mut two_jfif = b.clone();
    let after_jfif = 4 + u16::from_be_bytes([b[4], b[5]]) as usize;
    two_jfif = insert(two_jfif, after_jfif, &jfif_named());
    let prog = base("jpeg_progressive.jpg");
    let last_sos = prog.len()
        - prog
            .windows(2)
            .rev()
            .position(|w| w == [0xFF, 0xDA])
            .unwrap()
        - 2;
    vec![
        (
            "unused DQT",
            insert(b.clone(), first_dqt, &unused_dqt()),
            "quantization table",
        ),
        (
            "unused DHT before the scan",
            insert(b.clone(), sos, &unused_dht()),
            "Huffman table",
        ),
        (
            "unused DHT between progressive scans",
            insert(prog.clone(), last_sos, &unused_dht()),
            "Huffman table",
        ),
        ("second APP0 JFIF", two_jfif, "second APP0 JFIF"),
        (
            "second APP14 Adobe",
            insert(
                insert(b.clone(), sos, &adobe_named()),
                sos,
                &segment(0xEE, b"Adobe\0\x64\x00\x00\x00\x00\x01"),
            ),
            "APP14 Adobe",
        ),
        (
            "DNL the frame does not need",
            before_eoi(b.clone(), &segment(0xDC, &[0, 120])),
            "DNL",
        ),
    ]
}

/// Fixtures libjpeg refuses too: `check` calls them malformed, `clean` writes nothing.
fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    let b = base("jpeg_icc.jpg");
    let sof = find_marker(&b, 0xC0);
    let sos = find_marker(&b, 0xDA);
    let grow = |b: &[u8], at: usize| {
        let mut v = b.to_vec();
        let len = u16::from_be_bytes([v[at + 2], v[at + 3]]) + CANARY.len() as u16;
        v[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
        let end = at + 2 + len as usize - CANARY.len();
        insert(v, end, CANARY)
    };
    let mut dnl = vec![0, 120];
    dnl.extend_from_slice(CANARY);
    let mut dri = vec![0, 0];
    dri.extend_from_slice(CANARY);
    let mut spliced = b[..b.len() - 2].to_vec();
    spliced.extend_from_slice(&[0xFF, 0xD8]);
    spliced.extend(segment(0xFE, CANARY));
    spliced.extend_from_slice(&b[2..]);
    vec![
        ("SOF with trailing bytes", grow(&b, sof)),
        ("SOS with trailing bytes", grow(&b, sos)),
        (
            "DRI with trailing bytes",
            insert(b.clone(), sos, &segment(0xDD, &dri)),
        ),
        (
            "DNL with trailing data",
            before_eoi(b.clone(), &segment(0xDC, &dnl)),
        ),
        ("DAC", insert(b.clone(), sos, &segment(0xCC, &[0x00, 0x11]))),
        ("second SOI stream after an EOI-less scan", spliced),
    ]
}

/// djpeg's pixels; any warning (or failure) fails the test.
fn djpeg(path: &Path) -> Vec<u8> {
    let o = Command::new("djpeg")
        .arg("-ppm")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "djpeg {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn magick_decodes(path: &Path) {
    let o = Command::new("convert")
        .arg("-regard-warnings")
        .arg(path)
        .arg("null:")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ImageMagick {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The four ways a JPEG is cleaned, and whether its pixels must stay.
const PATHS: &[(&str, &[&str], bool)] = &[
    ("lossless", &[], true),
    ("--region (DCT domain)", &["--region", "8,8,24,24"], false),
    (
        "--region --quality",
        &["--region", "8,8,24,24", "--quality", "85"],
        false,
    ),
    ("--thorough", &["--thorough"], true),
];

fn clean_to(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "clean",
        "-q",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn write_fixture(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(format!("{}.jpg", name.replace(' ', "_")));
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn every_canary_class_is_removed_on_every_path() {
    let (dj, im) = (have("djpeg"), have("convert"));
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, finding) in cleanable() {
        assert!(
            contains(&bytes, CANARY) || name.starts_with("DNL"),
            "{name}"
        );
        let input = write_fixture(dir.path(), name, &bytes);
        let c = run(&["check", input.to_str().unwrap()]);
        assert_eq!(c.status.code(), Some(1), "{name}: {}", stdout(&c));
        assert!(stdout(&c).contains(finding), "{name}: {}", stdout(&c));
        for (path, extra, lossless) in PATHS {
            let out = dir
                .path()
                .join(format!("{}-{}.jpg", name.replace(' ', "_"), path.len()));
            let r = clean_to(&input, &out, extra);
            assert!(r.status.success(), "{name} {path}: {}", stderr(&r));
            let got = std::fs::read(&out).unwrap();
            assert!(!contains(&got, CANARY), "{name} {path}: canary kept");
            let c = run(&["check", out.to_str().unwrap()]);
            assert_eq!(c.status.code(), Some(0), "{name} {path}: {}", stdout(&c));
            if dj {
                let pixels = djpeg(&out);
                if *lossless {
                    assert!(pixels == djpeg(&input), "{name} {path}: pixels changed");
                }
            }
            if im {
                magick_decodes(&out);
            }
        }
    }
}

#[test]
fn malformed_structures_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in malformed() {
        let input = write_fixture(dir.path(), name, &bytes);
        let c = run(&["check", input.to_str().unwrap()]);
        assert_eq!(c.status.code(), Some(2), "{name}: {}", stdout(&c));
        assert!(
            stderr(&c).contains("malformed JPEG"),
            "{name}: {}",
            stderr(&c)
        );
        for (path, extra, _) in PATHS {
            let out = dir.path().join("out.jpg");
            let r = clean_to(&input, &out, extra);
            assert_eq!(r.status.code(), Some(1), "{name} {path}");
            assert!(
                stderr(&r).contains("malformed JPEG"),
                "{name} {path}: {}",
                stderr(&r)
            );
            assert!(!out.exists(), "{name} {path}: output written");
        }
    }
}

/// Bytes after the last MCU inside the entropy-coded data look like scan
/// data to any parser; only the coefficient transcode drops them.
#[test]
fn thorough_removes_data_hidden_after_the_last_mcu() {
    let dj = have("djpeg");
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "jpeg_icc.jpg",
        "jpeg_progressive.jpg",
        "jpeg_restart.jpg",
        "jpeg_gray.jpg",
    ] {
        let bytes = before_eoi(base(name), CANARY);
        let input = write_fixture(dir.path(), &format!("tail-{name}"), &bytes);
        for (path, extra, lossless) in PATHS.iter().filter(|p| p.0 != "lossless") {
            let out = dir.path().join(format!("tail-{name}-{}.jpg", path.len()));
            let r = clean_to(&input, &out, extra);
            assert!(r.status.success(), "{name} {path}: {}", stderr(&r));
            let got = std::fs::read(&out).unwrap();
            assert!(!contains(&got, CANARY), "{name} {path}: canary kept");
            let c = run(&["check", out.to_str().unwrap()]);
            assert_eq!(c.status.code(), Some(0), "{name} {path}: {}", stdout(&c));
            if dj && *lossless {
                assert!(
                    djpeg(&out) == djpeg(&base_path(name)),
                    "{name} {path}: pixels changed"
                );
            }
        }
    }
}

fn base_path(name: &str) -> PathBuf {
    fixtures().join("dirty").join(name)
}

/// `--thorough` keeps what display needs: the ICC profile and orientation.
#[test]
fn thorough_keeps_colour_and_orientation() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["jpeg_icc.jpg", "jpeg_orient_6.jpg", "jpeg_cmyk.jpg"] {
        let out = dir.path().join(name);
        let r = clean_to(&base_path(name), &out, &["--thorough"]);
        assert!(r.status.success(), "{name}: {}", stderr(&r));
        assert_eq!(
            exif_orientation(&out),
            exif_orientation(&base_path(name)),
            "{name}"
        );
        let had_icc = contains(&base(name), b"ICC_PROFILE\0");
        assert_eq!(
            contains(&std::fs::read(&out).unwrap(), b"ICC_PROFILE\0"),
            had_icc
        );
        assert_eq!(
            upright(&out),
            upright(&base_path(name)),
            "{name}: pixels changed"
        );
    }
}
