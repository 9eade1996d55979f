//! `photodeid clean` end to end, checked with independent readers.

use crate::util::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files(dir)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

/// Cleans all of fixtures/dirty into a temp folder once per test.
fn clean_dirty(extra: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["clean", "-q"];
    let dirty = fixtures().join("dirty");
    let o = out.path().join("out");
    args.push(dirty.to_str().unwrap());
    args.extend_from_slice(&["-o", o.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let output = run(&args);
    (out, output)
}

#[test]
fn no_injected_identifier_survives_anywhere() {
    let (dir, o) = clean_dirty(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let outs = files(&dir.path().join("out"));
    assert_eq!(outs.len(), files(&fixtures().join("dirty")).len());
    for path in &outs {
        let bytes = std::fs::read(path).unwrap();
        for c in canaries() {
            assert!(
                !contains(&bytes, c.as_bytes()),
                "{} still holds {c:?}",
                path.display()
            );
        }
        for marker in [
            &b"http://ns.adobe.com/xap"[..],
            b"Photoshop 3.0",
            b"8BIM",
            b"GPS",
        ] {
            assert!(
                !contains(&bytes, marker),
                "{} holds {:?}",
                path.display(),
                String::from_utf8_lossy(marker)
            );
        }
    }
}

#[test]
fn jpeg_outputs_end_at_eoi_and_hold_one_image() {
    let (dir, _) = clean_dirty(&[]);
    for path in files(&dir.path().join("out")) {
        if path.extension().unwrap() != "jpg" {
            continue;
        }
        let b = std::fs::read(&path).unwrap();
        assert!(
            b.ends_with(&[0xFF, 0xD9]),
            "{}: bytes after EOI",
            path.display()
        );
        let sois = b.windows(3).filter(|w| *w == [0xFF, 0xD8, 0xFF]).count();
        assert_eq!(sois, 1, "{}: embedded images remain", path.display());
    }
}

#[test]
fn kamadak_exif_finds_nothing_but_orientation() {
    let (dir, _) = clean_dirty(&[]);
    for path in files(&dir.path().join("out")) {
        let tags = exif_tags(&path);
        if path.extension().unwrap() == "tif" {
            // A TIFF is an EXIF structure: only layout tags may remain.
            for t in &tags {
                let allowed = [
                    "ImageWidth",
                    "ImageLength",
                    "BitsPerSample",
                    "Compression",
                    "PhotometricInterpretation",
                    "StripOffsets",
                    "SamplesPerPixel",
                    "RowsPerStrip",
                    "StripByteCounts",
                    "XResolution",
                    "YResolution",
                    "ResolutionUnit",
                    "PlanarConfiguration",
                    "Predictor",
                    "SampleFormat",
                    "ExtraSamples",
                    "Orientation",
                    "Tag(Tiff, 317)",
                    "Tag(Tiff, 339)",
                    "Tag(Tiff, 338)",
                ];
                assert!(allowed.contains(&t.as_str()), "{}: {t}", path.display());
            }
        } else {
            assert!(
                tags.iter().all(|t| t == "Orientation"),
                "{}: {tags:?}",
                path.display()
            );
        }
    }
}

#[test]
fn lossless_outputs_have_identical_pixels_and_display_upright() {
    let out = tempfile::tempdir().unwrap();
    let map = out.path().join("map.csv");
    let o = out.path().join("out");
    let r = run(&[
        "clean",
        "-q",
        fixtures().join("dirty").to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
        "--map",
        map.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let mut rdr = csv::Reader::from_path(&map).unwrap();
    let mut n = 0;
    for row in rdr.records() {
        let row = row.unwrap();
        let (input, output) = (Path::new(&row[0]), Path::new(&row[1]));
        let name = input.file_name().unwrap().to_str().unwrap();
        // What the viewer sees is unchanged, for every format and orientation.
        assert_eq!(
            upright(input),
            upright(output),
            "{name}: displayed picture changed"
        );
        let lossless = !name.starts_with("png_orient");
        if lossless {
            assert_eq!(
                decode(input).to_rgba8(),
                decode(output).to_rgba8(),
                "{name}: stored pixels changed on the lossless path"
            );
            assert_eq!(exif_orientation(input), exif_orientation(output), "{name}");
        } else {
            assert_eq!(
                exif_orientation(output),
                1,
                "{name}: re-encodes are upright"
            );
        }
        n += 1;
    }
    assert_eq!(n, files(&fixtures().join("dirty")).len());
}

#[test]
fn orientation_apply_rotates_pixels_and_drops_the_tag() {
    let (dir, o) = clean_dirty(&["--orientation", "apply", "--map"]);
    // --map needs a value: the run must fail at argument parsing, not half-way.
    assert_eq!(o.status.code(), Some(2));
    drop(dir);
    let out = tempfile::tempdir().unwrap();
    for n in 1..=8 {
        let input = fixtures().join(format!("dirty/jpeg_orient_{n}.jpg"));
        let dest = out.path().join(format!("o{n}.jpg"));
        let r = run(&[
            "clean",
            "-q",
            input.to_str().unwrap(),
            "-o",
            dest.to_str().unwrap(),
            "--orientation",
            "apply",
        ]);
        assert!(r.status.success(), "{}", stderr(&r));
        assert_eq!(exif_orientation(&dest), 1);
        let (a, b) = (upright(&input), upright(&dest));
        assert_eq!(a.dimensions(), b.dimensions(), "orientation {n}");
        // Re-encoded: compare the corner colours the fixture was built with.
        let diff: f64 = a
            .pixels()
            .zip(b.pixels())
            .map(|(p, q)| {
                (0..3)
                    .map(|i| (p[i] as f64 - q[i] as f64).abs())
                    .sum::<f64>()
            })
            .sum::<f64>()
            / (a.width() * a.height() * 3) as f64;
        assert!(diff < 12.0, "orientation {n}: mean abs diff {diff}");
    }
}

#[test]
fn output_names_share_nothing_with_inputs() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("out");
    let r = run(&[
        "clean",
        "-q",
        fixtures().join("sample").to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let outs = files(&o);
    assert_eq!(outs.len(), 6);
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    for p in &outs {
        // Case folders under pseudonyms (folder names are patient names),
        // photos named `NNN-hhhhhhhh` (rank, keyed hash).
        let rel = p.strip_prefix(&o).unwrap();
        let parts: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(parts.len(), 2, "{}", rel.display());
        let case = parts[0].strip_prefix("case-").unwrap();
        assert!(case.len() == 6 && hex(case), "{}", parts[0]);
        let stem = p.file_stem().unwrap().to_str().unwrap();
        let (rank, hash) = stem.split_once('-').unwrap();
        assert!(rank.len() == 3 && rank.parse::<u32>().is_ok(), "{stem}");
        assert!(hash.len() == 8 && hex(hash), "{stem}");
    }
    for needle in ["Doe", "Jane", "Smith", "IMG", "wound", "2021-03", "before"] {
        for p in &outs {
            assert!(
                !p.to_str().unwrap().contains(needle),
                "{} contains {needle}",
                p.display()
            );
        }
        assert!(!stdout(&r).contains(needle) && !stderr(&r).contains(needle));
    }
}

#[test]
fn inputs_are_never_modified() {
    let before = snapshot(&fixtures());
    let (_dir, _) = clean_dirty(&["--orientation", "apply"]);
    let tmp = tempfile::tempdir().unwrap();
    let _ = run(&[
        "clean",
        "-q",
        fixtures().join("bad").to_str().unwrap(),
        "-o",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(before, snapshot(&fixtures()));
}

#[test]
fn bad_inputs_are_named_and_leave_nothing() {
    let out = tempfile::tempdir().unwrap();
    let bad = fixtures().join("bad");
    let good = fixtures().join("dirty/jpeg_full.jpg");
    let r = run(&[
        "clean",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        "-o",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    let err = stderr(&r);
    for f in files(&bad) {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("photodeid: {}: ", f.display())))
            .unwrap_or_else(|| panic!("no error line for {}:\n{err}", f.display()));
        assert!(
            line.len() > f.display().to_string().len() + 14,
            "no reason: {line}"
        );
    }
    for (file, reason) in [
        ("empty.jpg", "empty"),
        ("bomb.png", "too large"),
        ("bomb.jpg", "too large"),
        ("unsupported.heic", "HEIC"),
        ("truncated.jpg", "ends early"),
        ("not_an_image.jpg", "cannot be used"),
    ] {
        assert!(
            err.lines().any(|l| l.contains(file) && l.contains(reason)),
            "{file}: expected '{reason}' in\n{err}"
        );
    }
    assert!(!err.contains("panicked"));
    // Only the good file was written, and no temporary file was left.
    let written = files(out.path());
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].extension().unwrap() == "jpg");
}

#[test]
fn unreadable_path_is_reported() {
    let out = tempfile::tempdir().unwrap();
    let r = run(&[
        "clean",
        "/nonexistent/patient.jpg",
        "-o",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        stderr(&r).contains("photodeid: /nonexistent/patient.jpg: cannot read"),
        "{}",
        stderr(&r)
    );
}

#[test]
fn single_file_mode_and_no_overwrite() {
    let out = tempfile::tempdir().unwrap();
    let src = fixtures().join("dirty/jpeg_full.jpg");
    let dest = out.path().join("shared.jpg");
    let args = [
        "clean",
        "-q",
        src.to_str().unwrap(),
        "-o",
        dest.to_str().unwrap(),
    ];
    assert!(run(&args).status.success());
    assert_eq!(files(out.path()), vec![dest.clone()]);
    // Same bytes again: up to date, not an error.
    assert!(run(&args).status.success());
    // Different content at the destination: refused, untouched.
    std::fs::write(&dest, b"precious").unwrap();
    let r = run(&args);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("output exists"), "{}", stderr(&r));
    assert_eq!(std::fs::read(&dest).unwrap(), b"precious");
    let mut forced = args.to_vec();
    forced.push("--overwrite");
    assert!(run(&forced).status.success());
    assert_ne!(std::fs::read(&dest).unwrap(), b"precious");
}

#[test]
fn refuses_to_replace_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.jpg");
    std::fs::copy(fixtures().join("dirty/jpeg_full.jpg"), &p).unwrap();
    let before = std::fs::read(&p).unwrap();
    let r = run(&[
        "clean",
        p.to_str().unwrap(),
        "-o",
        p.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(std::fs::read(&p).unwrap(), before);
    // A hard link is the same file under another name.
    let link = dir.path().join("b.jpg");
    std::fs::hard_link(&p, &link).unwrap();
    let r = run(&[
        "clean",
        p.to_str().unwrap(),
        "-o",
        link.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert_eq!(std::fs::read(&p).unwrap(), before);
}

#[test]
fn keyed_names_are_idempotent_and_map_stays_outside() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("names.key");
    let map = dir.path().join("map.csv");
    let o = dir.path().join("out");
    let sample = fixtures().join("sample");
    let args = |extra: &[&str]| {
        let mut v = vec![
            "clean",
            "-q",
            sample.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
            "--name-key",
            key.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        run(&v)
    };
    assert!(args(&["--map", map.to_str().unwrap()]).status.success());
    let first = files(&o);
    let rerun = args(&[]);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(
        first,
        files(&o),
        "rerun with the same key gives the same names"
    );
    let csv = std::fs::read_to_string(&map).unwrap();
    assert!(
        csv.contains("Doe_Jane_1961-04-02") && csv.lines().count() == 7,
        "{csv}"
    );
    // The map (and the key) may not be written inside the shared folder.
    let inside = o.join("map.csv");
    let r = args(&["--map", inside.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(!inside.exists());
    assert!(stderr(&r).contains("inside the output folder"));
}

#[test]
fn dry_run_writes_nothing_and_says_what_would_go() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("out");
    let src = fixtures().join("dirty/jpeg_full.jpg");
    let r = run(&[
        "clean",
        "--dry-run",
        src.to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    assert!(!o.exists());
    let s = stdout(&r);
    assert!(
        s.contains("would remove") && s.contains("GPS") && s.contains("trailing data"),
        "{s}"
    );
}

#[test]
fn keep_names_mirrors_the_tree_and_strip_icc_drops_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("out");
    let r = run(&[
        "clean",
        "-q",
        "--keep-names",
        "--strip-icc",
        fixtures().join("dirty").to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let icc = std::fs::read(o.join("jpeg_icc.jpg")).unwrap();
    assert!(!contains(&icc, b"ICC_PROFILE"));
    let with_icc = tempfile::tempdir().unwrap();
    let d = with_icc.path().join("x.jpg");
    run(&[
        "clean",
        "-q",
        fixtures().join("dirty/jpeg_icc.jpg").to_str().unwrap(),
        "-o",
        d.to_str().unwrap(),
    ]);
    assert!(
        contains(&std::fs::read(&d).unwrap(), b"ICC_PROFILE"),
        "ICC kept by default"
    );
}

#[test]
fn json_lines_parse_and_hold_no_original_names() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("out");
    let r = run(&[
        "clean",
        "--json",
        fixtures().join("sample").to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    let out = stdout(&r);
    let values: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(values.len(), 7);
    assert_eq!(values[6]["summary"]["cleaned"], 6);
    assert!(!out.contains("Doe_Jane") && !out.contains("Smith"));
    // Categories only: the values removed would link pseudonym and patient.
    for c in canaries() {
        assert!(!out.contains(&c), "--json prints {c}");
    }
    assert!(values[..6].iter().all(
        |v| v["status"] == "cleaned" && v["removed"].as_array().is_some_and(|a| !a.is_empty())
    ));
}

#[test]
fn exiftool_sees_no_identifying_tag() {
    let Some(mut cmd) = exiftool() else { return };
    let (dir, _) = clean_dirty(&[]);
    let o = dir.path().join("out");
    let out = cmd
        .args(["-a", "-G1", "-s", "-q", "-q"])
        .arg(&o)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let forbidden = [
        "[GPS]",
        "[ExifIFD]",
        "[IFD1]",
        "[XMP",
        "[IPTC]",
        "[Photoshop]",
        "[MakerNotes",
        "[Comment]",
        "[MPF",
        "Artist",
        "SerialNumber",
        "DateTimeOriginal",
        "Warning",
    ];
    for line in text.lines() {
        for f in forbidden {
            assert!(!line.contains(f), "exiftool still sees: {line}");
        }
    }
    assert!(
        text.contains("Orientation"),
        "orientation kept for rotated JPEG/WebP"
    );
}
