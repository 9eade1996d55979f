//! `photodeid check`: exit codes and what it names.

use crate::util::*;

#[test]
fn check_names_categories_and_values() {
    let f = fixtures().join("dirty/jpeg_full.jpg");
    let r = run(&["check", f.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    let s = stdout(&r);
    for want in [
        "GPS 40.7128 N 74.0060 W",
        "Artist \"Jane Q. Patientname\"",
        "XMP",
        "IPTC/Photoshop",
        "comments",
        "trailing data",
        "thumbnails/previews",
        "SN-PHI-7731-XQ",
    ] {
        assert!(s.contains(want), "missing {want} in\n{s}");
    }
}

#[test]
fn check_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o");
    assert!(run(&[
        "clean",
        "-q",
        fixtures().join("dirty").to_str().unwrap(),
        "-o",
        o.to_str().unwrap()
    ])
    .status
    .success());
    let clean = run(&["check", o.to_str().unwrap()]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    let bad = run(&[
        "check",
        fixtures().join("bad/truncated.jpg").to_str().unwrap(),
        o.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("truncated.jpg: this file is damaged: it ends early"),
        "{}",
        stderr(&bad)
    );
    let json = run(&[
        "check",
        "--json",
        fixtures().join("dirty/png_text.png").to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(v["clean"], false);
    let cats: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["category"].as_str().unwrap())
        .collect();
    for c in ["text_chunk", "xmp", "trailing_data", "exif"] {
        assert!(cats.contains(&c), "{c} not in {cats:?}");
    }
}
