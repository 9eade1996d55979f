//! Researchers' options: `--keep` (technical EXIF tags rewritten as a fresh
//! block) and `--shift-dates` (capture dates moved by a keyed per-case
//! offset), read back with exiftool, and `check` of the outputs.

use crate::util::{self, bin, exiftool, files, fixtures, stderr};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const TECHNICAL: &[&str] = &[
    "-ExposureTime=1/125",
    "-FNumber=2.8",
    "-ISO=200",
    "-FocalLength=100",
    "-LensModel=EF100mm f/2.8L Macro IS USM",
    "-WhiteBalance=Auto",
    "-ExifIFD:Flash#=16",
    "-MeteringMode#=5",
    "-LensSerialNumber=LENS-SN-4242",
    "-CameraOwnerName=Jane Q. Patientname",
];

/// Writes tags into `file` with exiftool (in place).
fn write_tags(file: &Path, tags: &[&str]) {
    let mut c = exiftool().expect("exiftool");
    let o = c
        .args(["-q", "-overwrite_original"])
        .args(tags)
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "exiftool: {}", stderr(&o));
}

/// Every metadata tag exiftool reads, as `Group:Tag` -> value, leaving out
/// what describes the file and the pixels (ExifTool, System, File, JFIF,
/// Composite, PNG/RIFF header fields, the ICC profile).
fn metadata(file: &Path) -> BTreeMap<String, String> {
    let o = exiftool()
        .expect("exiftool")
        .args(["-j", "-a", "-G1", "-s"])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "exiftool: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut out = BTreeMap::new();
    for (k, val) in v[0].as_object().unwrap() {
        let group = k.split(':').next().unwrap_or_default();
        let skip = matches!(
            group,
            "SourceFile" | "ExifTool" | "System" | "File" | "JFIF" | "Composite" | "PNG-pHYs"
        ) || group.starts_with("ICC")
            || (group == "PNG"
                && matches!(
                    k.as_str(),
                    "PNG:ImageWidth"
                        | "PNG:ImageHeight"
                        | "PNG:BitDepth"
                        | "PNG:ColorType"
                        | "PNG:Compression"
                        | "PNG:Filter"
                        | "PNG:Interlace"
                        | "PNG:Gamma"
                ))
            || (group == "RIFF" && !matches!(k.as_str(), "RIFF:WebP_Flags"));
        if !skip && k != "SourceFile" {
            out.insert(k.clone(), val.to_string().trim_matches('"').to_string());
        }
    }
    out
}

#[test]
fn keep_writes_back_only_the_allow_listed_tags() {
    if exiftool().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let case = d.path().join("in/Doe_Jane_1961-04-02");
    std::fs::create_dir_all(&case).unwrap();
    for name in [
        "jpeg_full.jpg",
        "jpeg_orient_6.jpg",
        "png_text.png",
        "webp_meta.webp",
    ] {
        let f = case.join(name);
        std::fs::copy(fixtures().join("dirty").join(name), &f).unwrap();
        write_tags(&f, TECHNICAL);
    }
    let out = d.path().join("out");
    let o = bin()
        .arg("clean")
        .arg(d.path().join("in"))
        .arg("-o")
        .arg(&out)
        .args([
            "--keep",
            "exposure,aperture,iso,focal-length,lens,white-balance,flash,metering",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let outputs = files(&out);
    assert_eq!(outputs.len(), 4);
    let mut orientations = Vec::new();
    for f in &outputs {
        let mut m = metadata(f);
        if let Some(o) = m.remove("IFD0:Orientation") {
            orientations.push(o);
        }
        m.remove("RIFF:WebP_Flags"); // "EXIF", checked below
        let tags: BTreeSet<&str> = m.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = [
            "ExifIFD:ExposureTime",
            "ExifIFD:FNumber",
            "ExifIFD:ISO",
            "ExifIFD:FocalLength",
            "ExifIFD:LensModel",
            "ExifIFD:WhiteBalance",
            "ExifIFD:Flash",
            "ExifIFD:MeteringMode",
        ]
        .into();
        assert_eq!(tags, expected, "{}: {m:?}", f.display());
        assert_eq!(m["ExifIFD:ExposureTime"], "1/125");
        assert_eq!(m["ExifIFD:FNumber"], "2.8");
        assert_eq!(m["ExifIFD:ISO"], "200");
        assert_eq!(m["ExifIFD:LensModel"], "EF100mm f/2.8L Macro IS USM");
        let bytes = std::fs::read(f).unwrap();
        for canary in util::canaries() {
            assert!(
                !util::contains(&bytes, canary.as_bytes()),
                "{}: {canary}",
                f.display()
            );
        }
        assert!(!util::contains(&bytes, b"LENS-SN-4242"));
        // The containers stay valid for their own tools.
        let tool = match f.extension().and_then(|e| e.to_str()) {
            Some("png") => Some(("pngcheck", vec!["-q"])),
            Some("webp") => Some(("webpinfo", vec!["-quiet"])),
            Some("jpg") => Some(("djpeg", vec!["-outfile", "/dev/null"])),
            _ => None,
        };
        if let Some((tool, args)) = tool {
            match std::process::Command::new(tool).args(&args).arg(f).output() {
                Ok(o) => assert!(o.status.success(), "{tool} {}: {}", f.display(), stderr(&o)),
                Err(_) => assert!(std::env::var_os("CI").is_none(), "{tool} missing on CI"),
            }
        }
    }
    // The rotated JPEG keeps its orientation in the same fresh block.
    assert_eq!(orientations, ["Rotate 90 CW"]);
    let check = bin().arg("check").arg(&out).output().unwrap();
    assert!(
        check.status.success(),
        "check flags the kept tags: {}{}",
        util::stdout(&check),
        stderr(&check)
    );
    // Without --keep the same inputs carry none of it.
    let plain = d.path().join("plain");
    let o = bin()
        .arg("clean")
        .arg(d.path().join("in"))
        .arg("-o")
        .arg(&plain)
        .output()
        .unwrap();
    assert!(o.status.success());
    for f in files(&plain) {
        assert!(!metadata(&f).contains_key("ExifIFD:ExposureTime"));
    }
}

/// `YYYY:MM:DD HH:MM:SS` as seconds (exiftool's output format).
fn seconds(date: &str) -> i64 {
    let dt = jiff::civil::DateTime::strptime("%Y:%m:%d %H:%M:%S", date)
        .unwrap_or_else(|e| panic!("{date}: {e}"));
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_second()
}

#[test]
fn shift_dates_moves_each_case_by_its_own_keyed_offset() {
    if exiftool().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let photos = [
        ("Doe_Jane/before.jpg", "2021:03:04 09:10:11"),
        ("Doe_Jane/after.jpg", "2021:09:10 16:00:00"),
        ("Smith_John/visit.jpg", "2021:03:04 09:10:12"),
    ];
    for (rel, date) in photos {
        let f = d.path().join("in").join(rel);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::copy(fixtures().join("dirty/jpeg_full.jpg"), &f).unwrap();
        let (a, b, c) = (
            format!("-DateTimeOriginal={date}"),
            format!("-CreateDate={date}"),
            format!("-ModifyDate={date}"),
        );
        write_tags(&f, &[&a, &b, &c, "-ExposureTime=1/60"]);
    }
    let key = d.path().join("name.key");
    let map = d.path().join("map.csv");
    let run = |out: &str| {
        let o = bin()
            .arg("clean")
            .arg(d.path().join("in"))
            .arg("-o")
            .arg(d.path().join(out))
            .args(["--shift-dates", "--keep", "exposure", "--name-key"])
            .arg(&key)
            .arg("--map")
            .arg(&map)
            .arg("--overwrite")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        // original -> output, by the photo's place below `in`.
        let mut r = csv::Reader::from_path(&map).unwrap();
        let mut by_rel = BTreeMap::new();
        for rec in r.records() {
            let rec = rec.unwrap();
            let orig = Path::new(&rec[0]).to_path_buf();
            let rel = orig
                .strip_prefix(d.path().join("in"))
                .unwrap()
                .to_string_lossy()
                .into_owned();
            by_rel.insert(rel, Path::new(&rec[1]).to_path_buf());
        }
        by_rel
    };
    let outputs = run("out");
    let mut offsets = BTreeMap::new();
    for (rel, date) in photos {
        let m = metadata(&outputs[rel]);
        let orig = seconds(date);
        let shifted = |tag: &str| seconds(&m[tag]) - orig;
        let off = shifted("ExifIFD:DateTimeOriginal");
        assert_eq!(shifted("ExifIFD:CreateDate"), off, "{rel}: {m:?}");
        assert_eq!(shifted("IFD0:ModifyDate"), off, "{rel}: {m:?}");
        assert!(off.abs() >= 365 * 86_400, "{rel}: offset {off} s");
        // Nothing but the kept tag, the three dates and the marker.
        let tags: BTreeSet<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(
            tags,
            [
                "ExifIFD:CreateDate",
                "ExifIFD:DateTimeOriginal",
                "ExifIFD:ExposureTime",
                "IFD0:ModifyDate",
                "IFD0:Software"
            ]
            .into(),
            "{rel}"
        );
        let bytes = std::fs::read(&outputs[rel]).unwrap();
        assert!(
            !util::contains(&bytes, b"2021:"),
            "{rel}: a real date survived"
        );
        offsets.insert(rel, off);
    }
    assert_eq!(
        offsets["Doe_Jane/before.jpg"], offsets["Doe_Jane/after.jpg"],
        "one case, one offset: the interval survives"
    );
    assert_ne!(
        offsets["Doe_Jane/before.jpg"], offsets["Smith_John/visit.jpg"],
        "another case, another offset"
    );
    let check = bin()
        .arg("check")
        .arg(d.path().join("out"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check flags the shifted dates: {}{}",
        util::stdout(&check),
        stderr(&check)
    );
    // Same key, same offsets on a later run.
    let again = run("again");
    for (rel, _) in photos {
        assert_eq!(
            metadata(&again[rel])["ExifIFD:DateTimeOriginal"],
            metadata(&outputs[rel])["ExifIFD:DateTimeOriginal"]
        );
    }
}

#[test]
fn shift_dates_needs_a_name_key() {
    let d = tempfile::tempdir().unwrap();
    let o = bin()
        .arg("clean")
        .arg(fixtures().join("sample"))
        .arg("-o")
        .arg(d.path().join("out"))
        .arg("--shift-dates")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--name-key"), "{}", stderr(&o));
    assert!(!d.path().join("out").exists());
}

#[test]
fn watch_keeps_the_same_tags_and_shifts_per_case() {
    if exiftool().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let inbox = d.path().join("inbox");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    for case in ["Doe_Jane", "Smith_John"] {
        let f = inbox.join(case).join("a.jpg");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::copy(fixtures().join("dirty/jpeg_full.jpg"), &f).unwrap();
        let unique = format!("-ImageUniqueID={case}");
        write_tags(&f, &["-ExposureTime=1/60", &unique]);
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let outbox = d.path().join("outbox");
    let o = bin()
        .arg("watch")
        .arg(&inbox)
        .arg("-o")
        .arg(&outbox)
        .args([
            "--once",
            "--settle",
            "0s",
            "--keep",
            "exposure",
            "--shift-dates",
        ])
        .arg("--name-key")
        .arg(d.path().join("key"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let outputs = files(&outbox);
    assert_eq!(outputs.len(), 2);
    let dates: BTreeSet<String> = outputs
        .iter()
        .map(|f| {
            let m = metadata(f);
            assert_eq!(m["ExifIFD:ExposureTime"], "1/60");
            assert!(!m.contains_key("ExifIFD:ImageUniqueID"));
            m["ExifIFD:DateTimeOriginal"].clone()
        })
        .collect();
    assert_eq!(dates.len(), 2, "two cases, two offsets: {dates:?}");
    assert!(!dates.contains("2021:03:04 09:10:11"));
    let check = bin().arg("check").arg(&outbox).output().unwrap();
    assert!(check.status.success(), "{}", util::stdout(&check));
}

#[test]
fn the_same_photo_in_two_cases_gets_two_names_when_dates_are_shifted() {
    if exiftool().is_none() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    for case in ["Doe_Jane", "Smith_John"] {
        let f = d.path().join("in").join(case).join("visit.jpg");
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::copy(fixtures().join("dirty/jpeg_full.jpg"), &f).unwrap();
        write_tags(&f, &["-DateTimeOriginal=2021:03:04 09:10:11"]);
    }
    let key = d.path().join("name.key");
    assert!(util::run(&["keygen", key.to_str().unwrap()])
        .status
        .success());
    let out = d.path().join("out");
    let o = bin()
        .arg("clean")
        .arg(d.path().join("in"))
        .arg("-o")
        .arg(&out)
        .args(["--shift-dates", "--name-key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let outs = files(&out);
    assert_eq!(outs.len(), 2, "one output per case: {outs:?}");
    let dates: Vec<String> = outs
        .iter()
        .map(|f| metadata(f)["ExifIFD:DateTimeOriginal"].clone())
        .collect();
    assert_ne!(dates[0], dates[1], "each case has its own offset");
}
