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
        // An arithmetic-coded file is valid, only not taken: not "damaged".
        let words = if name == "DAC" {
            "cannot be used: arithmetic-coded JPEG"
        } else {
            "this file is damaged"
        };
        assert!(stderr(&c).contains(words), "{name}: {}", stderr(&c));
        for (path, extra, _) in PATHS {
            let out = dir.path().join("out.jpg");
            let r = clean_to(&input, &out, extra);
            assert_eq!(r.status.code(), Some(1), "{name} {path}");
            assert!(stderr(&r).contains(words), "{name} {path}: {}", stderr(&r));
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
        // Only `check --thorough` decodes far enough to see them.
        let c = run(&["check", "--thorough", input.to_str().unwrap()]);
        assert_eq!(c.status.code(), Some(1), "{name}: {}", stdout(&c));
        assert!(
            stdout(&c).contains("inside the compressed data after its last block"),
            "{name}: {}",
            stdout(&c)
        );
        for (path, extra, lossless) in PATHS.iter().filter(|p| p.0 != "lossless") {
            let out = dir.path().join(format!("tail-{name}-{}.jpg", path.len()));
            let r = clean_to(&input, &out, extra);
            assert!(r.status.success(), "{name} {path}: {}", stderr(&r));
            let got = std::fs::read(&out).unwrap();
            assert!(!contains(&got, CANARY), "{name} {path}: canary kept");
            let c = run(&["check", "--thorough", out.to_str().unwrap()]);
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

/// Bytes put between the end of a restart interval and its marker, and
/// padding bits that are not ones: `check --thorough` names them, the
/// default path keeps them (they are inside the entropy-coded data) and
/// `--thorough` drops them with the pixels unchanged.
#[test]
fn thorough_finds_and_removes_data_before_restart_markers() {
    let dj = have("djpeg");
    let dir = tempfile::tempdir().unwrap();
    let b = base("jpeg_restart.jpg");
    let sos = find_marker(&b, 0xDA);
    let rst = sos + find_marker(&b[sos..], 0xD0);
    let bytes = insert(b, rst, CANARY);
    let input = write_fixture(dir.path(), "before-rst", &bytes);
    let c = run(&["check", "--thorough", input.to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(1), "{}", stdout(&c));
    assert!(
        stdout(&c).contains("inside the compressed data before restart markers"),
        "{}",
        stdout(&c)
    );
    let plain = dir.path().join("plain.jpg");
    assert!(clean_to(&input, &plain, &[]).status.success());
    assert!(contains(&std::fs::read(&plain).unwrap(), CANARY));
    let out = dir.path().join("thorough.jpg");
    let r = clean_to(&input, &out, &["--thorough"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(!contains(&std::fs::read(&out).unwrap(), CANARY));
    let c = run(&["check", "--thorough", out.to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(0), "{}", stdout(&c));
    if dj {
        assert!(
            djpeg(&out) == djpeg(&base_path("jpeg_restart.jpg")),
            "pixels changed"
        );
    }
    magick_decodes(&out);
}

/// Where the scan that starts at SOS `sos` ends: its first marker that is
/// not a restart (fill and stuffed bytes are data).
fn scan_data_end(b: &[u8], sos: usize) -> usize {
    let start = sos + 2 + u16::from_be_bytes([b[sos + 2], b[sos + 3]]) as usize;
    start
        + (start..b.len() - 1)
            .position(|i| b[i] == 0xFF && !matches!(b[i + 1], 0 | 0xD0..=0xD7))
            .unwrap()
}

fn markers(b: &[u8], marker: u8) -> Vec<usize> {
    (0..b.len() - 1)
        .filter(|&i| b[i] == 0xFF && b[i + 1] == marker)
        .collect()
}

/// A fixture's pixels coded by libjpeg's own tools: progressive with
/// restart intervals (cjpeg), progressive from a baseline file (jpegtran),
/// and sequential in one scan per component (jpegtran -scans).
fn multi_scan_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let ppm = dir.join("src.ppm");
    std::fs::write(&ppm, djpeg(&base_path("jpeg_icc.jpg"))).unwrap();
    let script = dir.join("sequential.scans");
    std::fs::write(&script, "0;\n1;\n2;\n").unwrap();
    let tool = |name: &str, args: &[&str], input: &Path| {
        let o = Command::new(name).args(args).arg(input).output().unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let baseline = base_path("jpeg_restart.jpg");
    vec![
        (
            "cjpeg -progressive -restart 1".into(),
            tool("cjpeg", &["-progressive", "-restart", "1"], &ppm),
        ),
        (
            "jpegtran -progressive -restart 2".into(),
            tool(
                "jpegtran",
                &["-copy", "none", "-progressive", "-restart", "2"],
                &baseline,
            ),
        ),
        (
            "jpegtran -scans (sequential)".into(),
            tool(
                "jpegtran",
                &[
                    "-copy",
                    "none",
                    "-restart",
                    "1",
                    "-scans",
                    script.to_str().unwrap(),
                ],
                &baseline,
            ),
        ),
    ]
}

/// Progressive and multi-scan sequential files: a canary after one scan's
/// data and one before a restart marker of another are found by `check
/// --thorough` on the input, kept by the default path (they are inside
/// the compressed data), and gone after `clean --thorough` with the pixels
/// unchanged; the files without canaries are not flagged.
#[test]
fn thorough_finds_canaries_in_progressive_and_multi_scan_files() {
    if !(have("cjpeg") && have("jpegtran") && have("djpeg")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, clean_bytes) in multi_scan_files(dir.path()) {
        let sos = markers(&clean_bytes, 0xDA);
        assert!(sos.len() >= 3, "{name}: {} scans", sos.len());
        let plain = write_fixture(dir.path(), &format!("plain {name}"), &clean_bytes);
        let c = run(&["check", "--thorough", plain.to_str().unwrap()]);
        assert_eq!(c.status.code(), Some(0), "{name}: {}", stdout(&c));
        assert!(
            !stdout(&c).contains("not decoded"),
            "{name}: {}",
            stdout(&c)
        );
        // Before the restart marker of the last scan first (offsets stay).
        let last = *sos.last().unwrap();
        let rst = last + find_marker(&clean_bytes[last..], 0xD0);
        let bytes = insert(clean_bytes.clone(), rst, CANARY);
        let end = scan_data_end(&bytes, sos[1]);
        let bytes = insert(bytes, end, CANARY);
        let input = write_fixture(dir.path(), &format!("dirty {name}"), &bytes);
        let c = run(&["check", "--thorough", input.to_str().unwrap()]);
        assert_eq!(c.status.code(), Some(1), "{name}: {}", stdout(&c));
        for what in [
            "inside the compressed data after its last block",
            "inside the compressed data before restart markers",
        ] {
            assert!(stdout(&c).contains(what), "{name}: {what}: {}", stdout(&c));
        }
        let kept = dir.path().join(format!("kept-{}.jpg", name.len()));
        assert!(clean_to(&input, &kept, &[]).status.success());
        assert!(contains(&std::fs::read(&kept).unwrap(), CANARY), "{name}");
        let out = dir.path().join(format!("thorough-{}.jpg", name.len()));
        let r = clean_to(&input, &out, &["--thorough"]);
        assert!(r.status.success(), "{name}: {}", stderr(&r));
        assert!(!contains(&std::fs::read(&out).unwrap(), CANARY), "{name}");
        let c = run(&["check", "--thorough", out.to_str().unwrap()]);
        assert_eq!(c.status.code(), Some(0), "{name}: {}", stdout(&c));
        assert!(djpeg(&out) == djpeg(&plain), "{name}: pixels changed");
        magick_decodes(&out);
    }
}

/// No false positives: every JPEG fixture, as it is and made progressive
/// by jpegtran, decodes to its end under `check --thorough` with nothing
/// found in its compressed data.
#[test]
fn thorough_check_flags_no_clean_fixture() {
    if !have("jpegtran") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for e in std::fs::read_dir(fixtures().join("dirty")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jpg") {
            let prog = dir.path().join(p.file_name().unwrap());
            let o = Command::new("jpegtran")
                .args(["-copy", "none", "-progressive", "-outfile"])
                .arg(&prog)
                .arg(&p)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", p.display());
            paths.push(p);
            paths.push(prog);
        }
    }
    assert!(paths.len() >= 20);
    let mut args = vec!["check", "--thorough"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = stdout(&run(&args));
    for bad in ["compressed data", "not decoded", "Huffman"] {
        assert!(!out.contains(bad), "{bad}: {out}");
    }
}

/// Arithmetic-coded JPEGs: one with a DAC segment (as cjpeg writes it) is
/// refused; without one, `check --thorough` says in plain words that it
/// did not look inside the compressed data, and `clean --thorough` re-codes
/// it as a baseline Huffman file with the same pixels.
#[test]
fn arithmetic_jpegs_are_refused_or_recoded_and_check_says_so() {
    if !(have("cjpeg") && have("djpeg")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ppm = dir.path().join("src.ppm");
    std::fs::write(&ppm, djpeg(&base_path("jpeg_icc.jpg"))).unwrap();
    let o = Command::new("cjpeg")
        .arg("-arithmetic")
        .arg(&ppm)
        .output()
        .unwrap();
    assert!(o.status.success());
    let with_dac = write_fixture(dir.path(), "dac", &o.stdout);
    let c = run(&["check", "--thorough", with_dac.to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(2), "{}", stdout(&c));
    assert!(stderr(&c).contains("DAC"), "{}", stderr(&c));
    let dac = find_marker(&o.stdout, 0xCC);
    let len = u16::from_be_bytes([o.stdout[dac + 2], o.stdout[dac + 3]]) as usize;
    let mut bytes = o.stdout.clone();
    bytes.drain(dac..dac + 2 + len);
    let input = write_fixture(dir.path(), "arith", &bytes);
    let c = run(&["check", "--thorough", input.to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(0), "{}", stdout(&c));
    assert!(
        stdout(&c).contains("arithmetic-coded JPEG: check does not decode its compressed data"),
        "{}",
        stdout(&c)
    );
    let out = dir.path().join("arith-out.jpg");
    let r = clean_to(&input, &out, &["--thorough"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let got = std::fs::read(&out).unwrap();
    assert!(markers(&got, 0xC9).is_empty() && !markers(&got, 0xC0).is_empty());
    assert!(djpeg(&out) == djpeg(&input), "pixels changed");
    let c = run(&["check", "--thorough", out.to_str().unwrap()]);
    assert_eq!(c.status.code(), Some(0), "{}", stdout(&c));
    assert!(!stdout(&c).contains("not decode"), "{}", stdout(&c));
}

/// A frame whose height comes from a DNL segment: the coefficient readers
/// know no DNL and would write a picture of 0 rows, so `--thorough` refuses
/// it (nothing written); the default path keeps the DNL it needs.
#[test]
fn thorough_refuses_a_dnl_height_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = base("jpeg_icc.jpg");
    let sof = find_marker(&b, 0xC0);
    let height = [b[sof + 5], b[sof + 6]];
    b[sof + 5..sof + 7].fill(0);
    let eoi = b.len() - 2;
    let b = insert(b, eoi, &[0xFF, 0xDC, 0, 4, height[0], height[1]]);
    let input = write_fixture(dir.path(), "dnl", &b);
    let out = dir.path().join("out");
    let r = clean_to(&input, &out, &["--thorough"]);
    assert!(!r.status.success());
    assert!(stderr(&r).contains("DNL"), "{}", stderr(&r));
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
    let plain = dir.path().join("plain");
    let r = clean_to(&input, &plain, &[]);
    assert!(r.status.success(), "{}", stderr(&r));
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

/// Property tests over files built from a grammar of segments and chunks,
/// valid and hostile: whatever the cleaner accepts comes out clean by the
/// audit's measure, and cleaning its output changes nothing (the writer
/// emits exactly the allowlisted structure the parser reads back).
mod grammar {
    use super::segment;
    use photodeid::pipeline::{clean_bytes, inspect, CleanOptions};
    use photodeid::Limits;
    use proptest::prelude::*;

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    /// Scan data: no 0xFF except stuffed or restart markers.
    fn scan_data() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                8 => (0u8..0xFF).prop_map(|b| vec![b]),
                1 => Just(vec![0xFF, 0x00]),
                1 => (0xD0u8..=0xD7).prop_map(|m| vec![0xFF, m]),
            ],
            1..40,
        )
        .prop_map(|v| v.concat())
    }

    fn dqt() -> impl Strategy<Value = Vec<u8>> {
        (0u8..4, any::<bool>(), bytes(129)).prop_map(|(slot, wide, v)| {
            let mut p = vec![if wide { 0x10 | slot } else { slot }];
            p.extend((0..if wide { 128 } else { 64 }).map(|i| v.get(i).copied().unwrap_or(1)));
            segment(0xDB, &p)
        })
    }

    fn dht() -> impl Strategy<Value = Vec<u8>> {
        (0u8..2, 0u8..4, 1u8..12, bytes(12)).prop_map(|(class, slot, n, sym)| {
            let mut p = vec![class << 4 | slot];
            let mut counts = [0u8; 16];
            counts[4] = n;
            p.extend_from_slice(&counts);
            p.extend((0..n as usize).map(|i| sym.get(i).copied().unwrap_or(0)));
            segment(0xC4, &p)
        })
    }

    /// Any segment a file may carry before, between or after its scans.
    fn extra() -> impl Strategy<Value = Vec<u8>> {
        let app = (0xE0u8..=0xEF, 0usize..6, bytes(40)).prop_map(|(m, kind, tail)| {
            let prefix: &[u8] = [
                &b"JFIF\0\x01\x02\x01\x00\x48\x00\x48\x00\x00"[..],
                b"Adobe\0\x64\x80\x00\x00\x00\x01",
                b"ICC_PROFILE\0\x01\x01",
                b"Exif\0\0MM\0\x2a\0\0\0\x08",
                b"http://ns.adobe.com/xap/1.0/\0",
                b"",
            ][kind];
            segment(m, &[prefix, &tail].concat())
        });
        prop_oneof![
            3 => app,
            1 => bytes(30).prop_map(|b| segment(0xFE, &b)),
            2 => dqt(),
            2 => dht(),
            1 => any::<u16>().prop_map(|n| segment(0xDD, &n.to_be_bytes())),
            1 => bytes(6).prop_map(|b| segment(0xDD, &b)),
            1 => any::<u16>().prop_map(|n| segment(0xDC, &n.to_be_bytes())),
            1 => (0xD0u8..=0xD7).prop_map(|m| vec![0xFF, m]),
            1 => Just(vec![0xFF, 0xFF]),
        ]
    }

    prop_compose! {
        fn jpeg()(
            head in proptest::collection::vec(extra(), 0..6),
            sof in prop_oneof![Just(0xC0u8), Just(0xC1), Just(0xC2)],
            colour in any::<bool>(),
            height in prop_oneof![Just(0u16), 1u16..64],
            mid in proptest::collection::vec(extra(), 0..4),
            scans in proptest::collection::vec((scan_data(), 0u8..2, 0u8..64, proptest::collection::vec(extra(), 0..3)), 1..4),
            tail in bytes(8),
        ) -> Vec<u8> {
            let n = if colour { 3u8 } else { 1 };
            let mut v = vec![0xFF, 0xD8];
            v.extend(head.concat());
            v.extend(segment(0xDB, &[vec![0u8], vec![2; 64]].concat()));
            let mut f = vec![8];
            f.extend_from_slice(&height.to_be_bytes());
            f.extend_from_slice(&16u16.to_be_bytes());
            f.push(n);
            for c in 1..=n {
                f.extend_from_slice(&[c, 0x11, 0]);
            }
            v.extend(segment(sof, &f));
            v.extend(mid.concat());
            for (data, table, ss, between) in scans {
                let mut s = vec![n];
                for c in 1..=n {
                    s.extend_from_slice(&[c, table << 4 | table]);
                }
                s.extend_from_slice(&[if sof == 0xC2 { ss } else { 0 }, 63, 0]);
                v.extend(segment(0xDA, &s));
                v.extend(data);
                v.extend(between.concat());
            }
            v.extend_from_slice(&[0xFF, 0xD9]);
            v.extend(tail);
            v
        }
    }

    /// Where the scan that starts at SOS `sos` ends (its first marker that
    /// is not a restart).
    fn scan_end(b: &[u8], sos: usize) -> usize {
        let start = sos + 2 + u16::from_be_bytes([b[sos + 2], b[sos + 3]]) as usize;
        (start..b.len() - 1)
            .find(|&i| b[i] == 0xFF && !matches!(b[i + 1], 0 | 0xD0..=0xD7))
            .unwrap_or(b.len())
    }

    prop_compose! {
        /// A real coded picture (baseline or progressive, gray or colour,
        /// with or without restart intervals) with grammar segments after
        /// SOI and before a later scan, and bytes hidden after one scan's
        /// data: what `--thorough` must re-code to a clean fixed point.
        fn coded_jpeg()(
            seed in any::<u32>(),
            (w, h) in (1usize..40, 1usize..40),
            (gray, progressive, restart) in (any::<bool>(), any::<bool>(), any::<bool>()),
            head in proptest::collection::vec(extra(), 0..4),
            between in proptest::collection::vec(extra(), 0..3),
            junk in proptest::collection::vec(1u8..0xFF, 0..12),
            which in any::<proptest::sample::Index>(),
        ) -> Vec<u8> {
            use libjpeg_turbo_rs as lt;
            let n = if gray { 1 } else { 3 };
            let px: Vec<u8> = (0..w * h * n)
                .map(|i| (seed.wrapping_mul(i as u32 + 7).rotate_left(i as u32 % 29) >> 7) as u8)
                .collect();
            let format = if gray { lt::PixelFormat::Grayscale } else { lt::PixelFormat::Rgb };
            let mut e = lt::Encoder::new(&px, w, h, format).quality(80).progressive(progressive);
            if restart {
                e = e.restart_blocks(2);
            }
            let mut v = e.encode().unwrap();
            let sos: Vec<usize> = (0..v.len() - 1)
                .filter(|&i| v[i] == 0xFF && v[i + 1] == 0xDA)
                .collect();
            let end = scan_end(&v, sos[which.index(sos.len())]);
            v.splice(end..end, junk);
            if sos.len() > 1 {
                let at = sos[sos.len() - 1];
                v.splice(at..at, between.concat());
            }
            v.splice(2..2, head.concat());
            v
        }
    }

    fn thorough() -> CleanOptions<'static> {
        CleanOptions {
            thorough: true,
            ..opts()
        }
    }

    /// libjpeg's pixels (djpeg; it latches each component's quantization
    /// table at its first scan, as the standard says), or libjpeg-turbo-rs'
    /// where djpeg is not installed. `None`: it does not decode (with a
    /// warning, when `strict`).
    fn pixels(b: &[u8], strict: bool) -> Option<Vec<u8>> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("djpeg")
            .arg("-ppm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            return libjpeg_turbo_rs::decompress(b).ok().map(|i| i.data);
        };
        let mut stdin = child.stdin.take()?;
        let input = b.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let o = child.wait_with_output().ok()?;
        let _ = writer.join();
        (o.status.success() && (o.stderr.is_empty() || !strict)).then_some(o.stdout)
    }

    /// `--thorough`: the output re-parses to the allowlisted structure, its
    /// compressed data hides nothing (`check --thorough`), re-cleaning it
    /// changes nothing, and it decodes to the input's pixels.
    fn assert_thorough_fixed_point(input: &[u8]) -> Result<(), TestCaseError> {
        let Ok(first) = clean_bytes(input, None, &thorough()) else {
            return Ok(()); // refused: nothing published
        };
        let back = inspect(&first.bytes, None, &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("output does not parse: {e}")))?;
        prop_assert!(back.inventory.is_clean(), "{:?}", back.inventory);
        let deep = photodeid::pipeline::inspect_thorough(&back)
            .map_err(|e| TestCaseError::fail(format!("output does not decode: {e}")))?;
        prop_assert_eq!(deep, photodeid::pipeline::Deep::Findings(Vec::new()));
        let second = clean_bytes(&first.bytes, None, &thorough())
            .map_err(|e| TestCaseError::fail(format!("output refused: {e}")))?;
        prop_assert_eq!(&second.bytes, &first.bytes, "thorough is not idempotent");
        let out = pixels(&first.bytes, true);
        prop_assert!(out.is_some(), "the output does not decode without warnings");
        // Junk in the input's scans makes libjpeg warn, not fail.
        if let Some(src) = pixels(input, false) {
            prop_assert!(out == Some(src), "pixels changed");
        }
        Ok(())
    }

    #[test]
    fn coded_files_are_mostly_accepted_by_thorough() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let accepted = (0..100)
            .filter(|_| {
                let file = coded_jpeg().new_tree(&mut runner).unwrap().current();
                clean_bytes(&file, None, &thorough()).is_ok()
            })
            .count();
        assert!(accepted >= 30, "only {accepted} of 100 accepted");
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body = chunks.concat();
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
        v.extend_from_slice(b"WEBP");
        v.extend(body);
        v
    }

    fn chunk(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = fourcc.to_vec();
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        if data.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    /// An 8x8 VP8L header (alpha or not) and arbitrary coded bytes.
    fn vp8l() -> impl Strategy<Value = Vec<u8>> {
        (any::<bool>(), bytes(20)).prop_map(|(alpha, d)| {
            let mut v = vec![0x2F, 0x07, 0xC0, 0x01, if alpha { 0x10 } else { 0 }];
            v.extend(d);
            chunk(b"VP8L", &v)
        })
    }

    fn webp_chunk() -> impl Strategy<Value = Vec<u8>> {
        let anmf = (
            bytes(16),
            proptest::collection::vec(
                prop_oneof![
                    vp8l(),
                    bytes(10).prop_map(|d| chunk(b"ALPH", &d)),
                    bytes(10).prop_map(|d| chunk(b"EXIF", &d))
                ],
                0..3,
            ),
        )
            .prop_map(|(h, subs)| {
                let mut d = (0..16)
                    .map(|i| h.get(i).copied().unwrap_or(0))
                    .collect::<Vec<u8>>();
                d.extend(subs.concat());
                chunk(b"ANMF", &d)
            });
        prop_oneof![
            3 => vp8l(),
            1 => bytes(12).prop_map(|d| chunk(b"ALPH", &d)),
            1 => bytes(10).prop_map(|d| chunk(b"ANIM", &d)),
            2 => anmf,
            1 => bytes(20).prop_map(|d| chunk(b"ICCP", &d)),
            1 => bytes(20).prop_map(|d| chunk(b"EXIF", &d)),
            1 => bytes(20).prop_map(|d| chunk(b"XMP ", &d)),
            1 => bytes(20).prop_map(|d| chunk(b"JUNK", &d)),
        ]
    }

    prop_compose! {
        fn webp()(
            flags in any::<u8>(),
            extended in any::<bool>(),
            chunks in proptest::collection::vec(webp_chunk(), 1..6),
        ) -> Vec<u8> {
            let mut all = Vec::new();
            if extended {
                all.push(chunk(b"VP8X", &[flags, 0, 0, 0, 7, 0, 0, 7, 0, 0]));
            }
            all.extend(chunks);
            riff(&all)
        }
    }

    fn opts() -> CleanOptions<'static> {
        CleanOptions {
            limits: Limits {
                max_pixels: 1_000_000,
                max_alloc: 64 << 20,
            },
            ..Default::default()
        }
    }

    fn assert_fixed_point(input: &[u8]) -> Result<(), TestCaseError> {
        let Ok(first) = clean_bytes(input, None, &opts()) else {
            return Ok(()); // refused: nothing published
        };
        let back = inspect(&first.bytes, None, &Limits::default())
            .map_err(|e| TestCaseError::fail(format!("output does not parse: {e}")))?;
        prop_assert!(back.inventory.is_clean(), "{:?}", back.inventory);
        let second = clean_bytes(&first.bytes, None, &opts())
            .map_err(|e| TestCaseError::fail(format!("output refused: {e}")))?;
        prop_assert_eq!(&second.bytes, &first.bytes, "rewrite is not idempotent");
        Ok(())
    }

    /// The properties above say nothing if every file is refused.
    #[test]
    fn the_grammar_builds_files_the_cleaner_accepts() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for (name, strategy) in [("JPEG", jpeg().boxed()), ("WebP", webp().boxed())] {
            let accepted = (0..200)
                .filter(|_| {
                    let file = strategy.new_tree(&mut runner).unwrap().current();
                    clean_bytes(&file, None, &opts()).is_ok()
                })
                .count();
            eprintln!("{name}: {accepted} of 200 accepted");
            assert!(accepted >= 40, "{name}: only {accepted} of 200 accepted");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn jpeg_rewrite_is_clean_and_idempotent(file in jpeg()) {
            assert_fixed_point(&file)?;
        }

        #[test]
        fn jpeg_thorough_is_clean_idempotent_and_pixel_identical(file in jpeg()) {
            assert_thorough_fixed_point(&file)?;
        }

        #[test]
        fn coded_jpeg_thorough_is_clean_idempotent_and_pixel_identical(file in coded_jpeg()) {
            assert_thorough_fixed_point(&file)?;
        }

        #[test]
        fn webp_rewrite_is_clean_and_idempotent(file in webp()) {
            assert_fixed_point(&file)?;
        }
    }
}

/// WebP: one bitstream per still file, no animation chunks in a still.
mod webp {
    use super::{have, CANARY};
    use crate::util::*;
    use std::process::Command;

    fn chunk(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut v = fourcc.to_vec();
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        if data.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    /// `base` with `extra` appended inside the RIFF container.
    fn with(base: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        let size = (v.len() - 8) as u32;
        v[4..8].copy_from_slice(&size.to_le_bytes());
        v
    }

    /// The first chunk of `fourcc` in `file`, whole (header and padding).
    fn first_chunk(file: &[u8], fourcc: &[u8; 4]) -> Vec<u8> {
        let mut i = 12;
        while i + 8 <= file.len() {
            let n = u32::from_le_bytes(file[i + 4..i + 8].try_into().unwrap()) as usize;
            if &file[i..i + 4] == fourcc {
                return file[i..i + 8 + n + (n & 1)].to_vec();
            }
            i += 8 + n + (n & 1);
        }
        panic!("no {fourcc:?}");
    }

    fn dwebp_pixels(path: &std::path::Path) -> Vec<u8> {
        let out = path.with_extension("pam");
        let o = Command::new("dwebp")
            .arg(path)
            .arg("-pam")
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "dwebp {}: {}",
            path.display(),
            stderr_of(&o)
        );
        std::fs::read(out).unwrap()
    }

    /// `base` with `extra` appended inside its `fourcc` chunk (after the
    /// coded data: decoders stop before it).
    fn inside(base: &[u8], fourcc: &[u8; 4], extra: &[u8]) -> Vec<u8> {
        let whole = first_chunk(base, fourcc);
        let at = base.windows(whole.len()).position(|w| w == whole).unwrap();
        let mut coded = whole[8..].to_vec();
        let n = u32::from_le_bytes(whole[4..8].try_into().unwrap()) as usize;
        coded.truncate(n);
        coded.extend_from_slice(extra);
        let mut v = base[..at].to_vec();
        v.extend(chunk(fourcc, &coded));
        v.extend_from_slice(&base[at + whole.len()..]);
        let size = (v.len() - 8) as u32;
        v[4..8].copy_from_slice(&size.to_le_bytes());
        v
    }

    /// Bytes after the coded data inside a VP8L or VP8 chunk: the default
    /// path copies the bitstream (it is the picture); `check --thorough`
    /// names them; `--thorough` encodes a VP8L's pixels again, losslessly,
    /// and cuts a VP8's partitions to their coded data, so they are gone
    /// with every pixel kept (see also tests/privacy_webp.rs).
    #[test]
    fn thorough_reencodes_a_lossless_bitstream_without_what_it_hid() {
        let tools = have("webpinfo") && have("dwebp");
        let dir = tempfile::tempdir().unwrap();
        for (name, fourcc) in [
            ("webp_lossless_orient_6.webp", b"VP8L"),
            ("webp_meta.webp", b"VP8 "),
        ] {
            let base = std::fs::read(fixtures().join("dirty").join(name)).unwrap();
            let input = dir.path().join(format!("in-{name}"));
            std::fs::write(&input, inside(&base, fourcc, CANARY)).unwrap();
            let c = run(&["check", "--thorough", input.to_str().unwrap()]);
            assert!(
                stdout(&c).contains("bytes after the coded data"),
                "{}",
                stdout(&c)
            );
            let out = dir.path().join(format!("out-{name}"));
            let r = run(&[
                "clean",
                "-q",
                "--thorough",
                input.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ]);
            assert!(r.status.success(), "{name}: {}", stderr(&r));
            let got = std::fs::read(&out).unwrap();
            assert!(!contains(&got, CANARY), "{name}: canary kept");
            let c = run(&["check", out.to_str().unwrap()]);
            assert_eq!(c.status.code(), Some(0), "{name}: {}", stdout(&c));
            if tools {
                let info = Command::new("webpinfo").arg(&out).output().unwrap();
                let text = String::from_utf8_lossy(&info.stdout);
                assert!(
                    info.status.success() && !text.contains("Warning"),
                    "{name}: {text}"
                );
                let original = dir.path().join(format!("orig-{name}"));
                std::fs::write(&original, &base).unwrap();
                assert!(
                    dwebp_pixels(&out) == dwebp_pixels(&original),
                    "{name}: pixels changed"
                );
            }
        }
    }

    fn stderr_of(o: &std::process::Output) -> String {
        String::from_utf8_lossy(&o.stderr).to_string()
    }

    #[test]
    fn a_still_keeps_one_bitstream_and_no_frames() {
        let (tools, im) = (have("webpinfo") && have("dwebp"), have("convert"));
        let dir = tempfile::tempdir().unwrap();
        for name in ["webp_meta.webp", "webp_lossless_orient_6.webp"] {
            let base = std::fs::read(fixtures().join("dirty").join(name)).unwrap();
            let stream = if contains(&base, b"VP8L") {
                b"VP8L"
            } else {
                b"VP8 "
            };
            let mut coded = first_chunk(&base, stream)[8..].to_vec();
            coded.extend_from_slice(CANARY);
            let mut anmf = vec![0u8; 16];
            anmf.extend(chunk(stream, &coded));
            let cases: Vec<(&str, Vec<u8>)> = vec![
                ("second bitstream", chunk(stream, &coded)),
                ("ANMF in a still", chunk(b"ANMF", &anmf)),
                ("ALPH after the bitstream", chunk(b"ALPH", CANARY)),
            ];
            for (case, extra) in cases {
                let input = dir.path().join(format!("{case}-{name}").replace(' ', "_"));
                std::fs::write(&input, with(&base, &extra)).unwrap();
                let c = run(&["check", input.to_str().unwrap()]);
                assert_eq!(c.status.code(), Some(1), "{case}: {}", stdout(&c));
                assert!(stdout(&c).contains("chunk"), "{case}: {}", stdout(&c));
                let out = dir
                    .path()
                    .join(format!("out-{case}-{name}").replace(' ', "_"));
                let r = run(&[
                    "clean",
                    "-q",
                    input.to_str().unwrap(),
                    "-o",
                    out.to_str().unwrap(),
                ]);
                assert!(r.status.success(), "{case}: {}", stderr(&r));
                let got = std::fs::read(&out).unwrap();
                assert!(!contains(&got, CANARY), "{case} {name}: canary kept");
                let c = run(&["check", out.to_str().unwrap()]);
                assert_eq!(c.status.code(), Some(0), "{case}: {}", stdout(&c));
                if tools {
                    let info = Command::new("webpinfo").arg(&out).output().unwrap();
                    let text = String::from_utf8_lossy(&info.stdout);
                    assert!(
                        info.status.success() && !text.contains("Warning"),
                        "{case}: {text}"
                    );
                    let original = dir.path().join(format!("orig-{name}"));
                    std::fs::write(&original, &base).unwrap();
                    assert!(
                        dwebp_pixels(&out) == dwebp_pixels(&original),
                        "{case}: pixels changed"
                    );
                }
                if im {
                    super::magick_decodes(&out);
                }
            }
        }
    }
}
