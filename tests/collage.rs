//! `photodeid collage`, end to end through the binary.

use photodeid::collage::{self, CollageOptions, Layout, Rect};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn photodeid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_photodeid"))
        .args(args)
        .output()
        .expect("run photodeid")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A TIFF (big-endian) EXIF block holding only DateTimeOriginal.
fn exif_date(date: &str) -> Vec<u8> {
    assert_eq!(date.len(), 19);
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    // IFD0 at 8: one entry, ExifIFDPointer -> 26.
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x87, 0x69, 0, 4, 0, 0, 0, 1, 0, 0, 0, 26]);
    t.extend_from_slice(&0u32.to_be_bytes());
    // Exif IFD at 26: DateTimeOriginal, ASCII, 20 bytes at 44.
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x90, 0x03, 0, 2, 0, 0, 0, 20, 0, 0, 0, 44]);
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(date.as_bytes());
    t.push(0);
    t
}

/// A solid-colour JPEG, with a DateTimeOriginal when `date` is given.
fn jpeg(colour: [u8; 3], w: u32, h: u32, date: Option<&str>) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(colour));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(&img)
        .expect("encode");
    if let Some(date) = date {
        let tiff = exif_date(date);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&tiff);
        out.splice(2..2, app1);
    }
    out
}

fn decode(path: &Path) -> image::RgbImage {
    image::open(path).expect("decode output").to_rgb8()
}

fn centre(img: &image::RgbImage, r: Rect) -> [u8; 3] {
    img.get_pixel(r.x + r.w / 2, r.y + r.h / 2).0
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 12)
}

fn pixels(img: &image::RgbImage, r: Rect) -> Vec<u8> {
    let mut v = Vec::new();
    for y in r.y..r.y + r.h {
        for x in r.x..r.x + r.w {
            v.extend_from_slice(&img.get_pixel(x, y).0);
        }
    }
    v
}

const RED: [u8; 3] = [220, 30, 30];
const GREEN: [u8; 3] = [30, 200, 40];
const BLUE: [u8; 3] = [30, 40, 220];

#[test]
fn case_order_follows_capture_time_not_file_names() {
    let d = tempfile::tempdir().unwrap();
    let case = d.path().join("cases/Doe_Jane");
    std::fs::create_dir_all(&case).unwrap();
    // Names sort a, b, c; capture times sort c, a, b.
    std::fs::write(
        case.join("a.jpg"),
        jpeg(RED, 120, 90, Some("2020:03:01 10:00:00")),
    )
    .unwrap();
    std::fs::write(
        case.join("b.jpg"),
        jpeg(GREEN, 120, 90, Some("2021:05:02 10:00:00")),
    )
    .unwrap();
    std::fs::write(
        case.join("c.jpg"),
        jpeg(BLUE, 120, 90, Some("2020:01:01 10:00:00")),
    )
    .unwrap();
    let out = d.path().join("out");
    let o = photodeid(&[
        "collage",
        "--flat", // the test is not about the layout
        "--cases",
        s(&d.path().join("cases")),
        "-o",
        s(&out),
        "--format",
        "png",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let img = decode(&files[0]);
    let plan = collage::plan(&[(120, 90); 3], &CollageOptions::default()).unwrap();
    assert_eq!(img.dimensions(), (plan.width, plan.height));
    let got: Vec<[u8; 3]> = plan.tiles.iter().map(|r| centre(&img, *r)).collect();
    for (g, want) in got.iter().zip([BLUE, RED, GREEN]) {
        assert!(near(*g, want), "tiles {got:?}");
    }
}

#[test]
fn photos_keep_the_given_order_and_labels_are_drawn() {
    let d = tempfile::tempdir().unwrap();
    let mut args = vec!["collage".to_string()];
    for (i, c) in [GREEN, RED].iter().enumerate() {
        let p = d.path().join(format!("{i}.jpg"));
        std::fs::write(&p, jpeg(*c, 160, 120, None)).unwrap();
        args.push(s(&p).into());
    }
    let run = |labels: &str, name: &str| {
        let out = d.path().join(name);
        let mut a = args.clone();
        a.extend([
            "-o".into(),
            s(&out).into(),
            "--labels".into(),
            labels.into(),
        ]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = photodeid(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        decode(&out)
    };
    let one = run("Week 0,Week 12", "one.png");
    let two = run("Week 0,Month 40", "two.png");
    let blank = run(",", "blank.png");
    let plan = collage::plan(&[(160, 120); 2], &CollageOptions::default()).unwrap();
    assert!(near(centre(&one, plan.tiles[0]), GREEN) && near(centre(&one, plan.tiles[1]), RED));
    let b = |img: &image::RgbImage, i: usize| pixels(img, plan.bands[i]);
    assert_ne!(b(&one, 0), b(&blank, 0), "label band 0 is blank");
    assert_ne!(b(&one, 0), b(&one, 1), "different labels draw the same");
    assert_eq!(b(&one, 0), b(&two, 0));
    assert_ne!(b(&one, 1), b(&two, 1));
    assert!(b(&blank, 1).iter().all(|&v| v == 255));
}

#[test]
fn layouts_and_width_cap_as_documented() {
    let d = tempfile::tempdir().unwrap();
    let sizes = [(300, 200), (200, 300), (300, 200), (300, 200)];
    let mut paths = Vec::new();
    for (i, (w, h)) in sizes.iter().enumerate() {
        let p = d.path().join(format!("{i}.jpg"));
        std::fs::write(&p, jpeg(RED, *w, *h, None)).unwrap();
        paths.push(p);
    }
    for (layout, name, max_width) in [
        (Layout::Row, "row", 3000),
        (Layout::Row, "row", 500),
        (Layout::Column, "column", 3000),
        (Layout::Grid, "grid", 3000),
    ] {
        let out = d.path().join(format!("{name}{max_width}.png"));
        let mut a: Vec<&str> = vec!["collage"];
        a.extend(paths.iter().map(|p| s(p)));
        let mw = max_width.to_string();
        a.extend(["-o", s(&out), "--layout", name, "--max-width", &mw]);
        let o = photodeid(&a);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let plan = collage::plan(
            &sizes,
            &CollageOptions {
                layout,
                max_width,
                ..CollageOptions::default()
            },
        )
        .unwrap();
        let img = decode(&out);
        assert_eq!(img.dimensions(), (plan.width, plan.height), "{name}");
        assert!(img.width() <= max_width);
        for r in &plan.tiles {
            assert!(near(centre(&img, *r), RED), "{name}: {r:?}");
        }
        match layout {
            Layout::Row => assert!(plan.tiles.iter().all(|t| t.h == plan.tiles[0].h)),
            Layout::Column => assert!(plan.tiles.iter().all(|t| t.w == 200)),
            Layout::Grid => assert_eq!(plan.tiles[0].y, plan.tiles[1].y),
            _ => unreachable!(),
        }
    }
}

#[test]
fn orientation_and_flip_are_honoured() {
    let d = tempfile::tempdir().unwrap();
    let o6 = fixtures().join("dirty/jpeg_orient_6.jpg");
    let o1 = fixtures().join("dirty/jpeg_orient_1.jpg");
    let out = d.path().join("o.png");
    let args = |flip: &str| {
        vec![
            "collage".to_string(),
            s(&o1).into(),
            s(&o6).into(),
            "-o".into(),
            s(&out).into(),
            "--flip".into(),
            flip.into(),
            "--size".into(),
            "200x400".into(),
            "--layout".into(),
            "column".into(),
        ]
    };
    let run = |a: Vec<String>| photodeid(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("1"));
    assert!(o.status.success(), "{}", stderr(&o));
    let img = decode(&out);
    // Stored 96x64 both; orientation 6 displays 64x96. Both panels the same
    // size, each photo cropped (centred) to it.
    let opts = CollageOptions {
        layout: Layout::Column,
        size: Some((200, 400)),
        ..CollageOptions::default()
    };
    let plan = collage::plan(&[(96, 64), (64, 96)], &opts).unwrap();
    assert_eq!(img.dimensions(), (200, 400));
    assert_eq!(
        (plan.tiles[0].w, plan.tiles[0].h),
        (plan.tiles[1].w, plan.tiles[1].h)
    );
    let at = |t: Rect, fx: f64, fy: f64| {
        img.get_pixel(
            t.x + (t.w as f64 * fx) as u32,
            t.y + (t.h as f64 * fy) as u32,
        )
        .0
    };
    // Tile 1 (orientation 1, flipped): its red block (top-left) is now top-right.
    let red = at(plan.tiles[0], 0.92, 0.08);
    assert!(red[0] > 150 && red[1] < 100, "{red:?}");
    let grey = at(plan.tiles[0], 0.08, 0.08);
    assert!(grey[0] < 180, "not flipped: {grey:?}");
    // Tile 2 (orientation 6 = 90° clockwise): red top-right, blue bottom-left.
    let red = at(plan.tiles[1], 0.92, 0.08);
    let blue = at(plan.tiles[1], 0.08, 0.92);
    assert!(red[0] > 150 && red[2] < 100, "{red:?}");
    assert!(blue[2] > 150 && blue[0] < 100, "{blue:?}");
    let o = run(args("3"));
    assert_eq!(o.status.code(), Some(2), "a usage error");
    assert!(stderr(&o).contains("--flip 3"), "{}", stderr(&o));
}

#[test]
fn collage_carries_no_metadata_and_passes_check() {
    let d = tempfile::tempdir().unwrap();
    let jane = fixtures().join("sample/Doe_Jane_1961-04-02");
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&jane)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    photos.sort();
    let canaries = std::fs::read_to_string(fixtures().join("CANARIES.txt")).unwrap();
    for ext in ["jpg", "png", "webp"] {
        let out = d.path().join(format!("c.{ext}"));
        let mut a: Vec<&str> = vec!["collage"];
        a.extend(photos.iter().map(|p| s(p)));
        a.extend(["-o", s(&out), "--time-labels", "--title", "Case 7"]);
        let o = photodeid(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&out).unwrap();
        for c in canaries.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
                "{ext}: {c}"
            );
        }
        for marker in [
            &b"Exif\0\0"[..],
            b"http://ns.adobe.com/xap",
            b"2021:03:04",
            b"ICC_PROFILE",
        ] {
            assert!(!bytes.windows(marker.len()).any(|w| w == marker), "{ext}");
        }
        let check = photodeid(&["check", s(&out)]);
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

#[test]
fn time_labels_differ_from_plain_labels() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.jpg");
    let b = d.path().join("b.jpg");
    std::fs::write(&a, jpeg(RED, 100, 100, Some("2020:01:31 09:00:00"))).unwrap();
    std::fs::write(&b, jpeg(RED, 100, 100, Some("2021:04:30 09:00:00"))).unwrap();
    let plain = d.path().join("plain.png");
    let timed = d.path().join("timed.png");
    assert!(photodeid(&["collage", s(&a), s(&b), "-o", s(&plain)])
        .status
        .success());
    assert!(
        photodeid(&["collage", s(&a), s(&b), "-o", s(&timed), "--time-labels"])
            .status
            .success()
    );
    let plan = collage::plan(&[(100, 100); 2], &CollageOptions::default()).unwrap();
    let (p, t) = (decode(&plain), decode(&timed));
    assert_ne!(pixels(&p, plan.bands[1]), pixels(&t, plan.bands[1]));
}

#[test]
fn case_names_are_pseudonyms_keyed_and_mapped() {
    let d = tempfile::tempdir().unwrap();
    let cases = fixtures().join("sample");
    let key = d.path().join("names.key");
    let map = d.path().join("map.csv");
    let names = |out: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let out1 = d.path().join("out1");
    let o = photodeid(&[
        "collage",
        "--flat", // the test is not about the layout
        "--cases",
        s(&cases),
        "-o",
        s(&out1),
        "--name-key",
        s(&key),
        "--map",
        s(&map),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = names(&out1);
    assert_eq!(first.len(), 2);
    for n in &first {
        let stem = n.strip_suffix(".jpg").expect("jpg by default");
        assert!(
            stem.len() == 32 && stem.chars().all(|c| c.is_ascii_hexdigit()),
            "{n}"
        );
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        !stdout.contains("Doe") && !stdout.contains("Smith"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(&map).unwrap();
    assert!(
        csv.contains("Doe_Jane_1961-04-02") && csv.contains("Smith_John"),
        "{csv}"
    );
    assert!(csv.contains(&first[0]) && csv.contains(&first[1]));
    // Same key, same names; no key, other names.
    let out2 = d.path().join("out2");
    let o = photodeid(&[
        "collage",
        "--flat", // the test is not about the layout
        "--cases",
        s(&cases),
        "-o",
        s(&out2),
        "--name-key",
        s(&key),
    ]);
    assert!(o.status.success());
    assert_eq!(names(&out2), first);
    let out3 = d.path().join("out3");
    assert!(
        photodeid(&["collage", "--flat", "--cases", s(&cases), "-o", s(&out3)])
            .status
            .success()
    );
    assert!(names(&out3).iter().all(|n| !first.contains(n)));
}

#[test]
fn a_bad_case_is_reported_and_the_others_go_on() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    for c in ["good", "lonely", "broken"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    std::fs::write(root.join("good/1.jpg"), jpeg(RED, 64, 48, None)).unwrap();
    std::fs::write(root.join("good/2.jpg"), jpeg(BLUE, 64, 48, None)).unwrap();
    std::fs::write(root.join("lonely/1.jpg"), jpeg(RED, 64, 48, None)).unwrap();
    std::fs::write(root.join("broken/1.jpg"), jpeg(RED, 64, 48, None)).unwrap();
    std::fs::copy(
        fixtures().join("bad/truncated.jpg"),
        root.join("broken/2.jpg"),
    )
    .unwrap();
    let out = d.path().join("out");
    let o = photodeid(&["collage", "--cases", s(&root), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let lonely = format!("photodeid: {}: ", root.join("lonely").display());
    let broken = format!("photodeid: {}: 2.jpg: ", root.join("broken").display());
    assert!(
        err.contains(&lonely) && err.contains("at least two photos"),
        "{err}"
    );
    assert!(err.contains(&broken), "{err}");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "the good case is written"
    );
}

/// The left and right halves of a tile rectangle, shrunk by a margin so JPEG
/// ringing at the boundary does not count.
fn halves(r: Rect) -> (Rect, Rect) {
    let m = 6;
    let half = r.w / 2;
    let h = r.h - 2 * m;
    (
        Rect::at(r.x + m, r.y + m).of_size(half - 2 * m, h),
        Rect::at(r.x + half + m, r.y + m).of_size(half - 2 * m, h),
    )
}

fn all_near(img: &image::RgbImage, r: Rect, c: [u8; 3]) -> bool {
    pixels(img, r)
        .chunks(3)
        .all(|p| near([p[0], p[1], p[2]], c))
}

#[test]
fn regions_are_destroyed_in_every_tile_before_layout() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.jpg"), d.path().join("b.jpg"));
    std::fs::write(&a, jpeg(GREEN, 160, 120, None)).unwrap();
    std::fs::write(&b, jpeg(RED, 160, 120, None)).unwrap();
    let out = d.path().join("c.png");
    let o = photodeid(&[
        "collage",
        s(&a),
        s(&b),
        "-o",
        s(&out),
        "--region",
        "0,0,50%,100%:fill",
        "--fill-color",
        "0000ff",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = decode(&out);
    let plan = collage::plan(&[(160, 120); 2], &CollageOptions::default()).unwrap();
    for (i, keep) in [GREEN, RED].into_iter().enumerate() {
        let (left, right) = halves(plan.tiles[i]);
        assert!(
            all_near(&img, left, [0, 0, 255]),
            "tile {i}: left half not filled"
        );
        assert!(all_near(&img, right, keep), "tile {i}: right half changed");
    }
}

#[test]
fn case_manifest_rows_apply_per_photo_and_typos_fail() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    std::fs::create_dir_all(root.join("Jane Doe")).unwrap();
    std::fs::write(
        root.join("Jane Doe/1.jpg"),
        jpeg(GREEN, 160, 120, Some("2020:01:01 09:00:00")),
    )
    .unwrap();
    std::fs::write(
        root.join("Jane Doe/2.jpg"),
        jpeg(RED, 160, 120, Some("2020:06:01 09:00:00")),
    )
    .unwrap();
    let manifest = d.path().join("regions.csv");
    std::fs::write(
        &manifest,
        "file,x,y,w,h,shape,effect\n*/2.jpg,0,0,50%,100%,rect,fill\n",
    )
    .unwrap();
    let out = d.path().join("out");
    let base = [
        "collage",
        "--cases",
        s(&root),
        "-o",
        s(&out),
        "--format",
        "png",
        "--flat", // the test is not about the layout
    ];
    let mut args = base.to_vec();
    args.extend(["--regions", s(&manifest), "--fill-color", "0000ff"]);
    let o = photodeid(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let written: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1);
    let img = decode(&written[0]);
    let plan = collage::plan(&[(160, 120); 2], &CollageOptions::default()).unwrap();
    let (l0, r0) = halves(plan.tiles[0]);
    let (l1, r1) = halves(plan.tiles[1]);
    assert!(
        all_near(&img, l0, GREEN) && all_near(&img, r0, GREEN),
        "photo 1 has no row"
    );
    assert!(
        all_near(&img, l1, [0, 0, 255]),
        "photo 2's region not filled"
    );
    assert!(all_near(&img, r1, RED));

    std::fs::write(&manifest, "file,x,y,w,h\n*/3.jpg,0,0,10,10\n").unwrap();
    let out2 = d.path().join("out2");
    let mut args = base.to_vec();
    args[4] = s(&out2);
    args.extend(["--regions", s(&manifest)]);
    let o = photodeid(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("matches no photo"), "{}", stderr(&o));
    assert!(!out2.exists() || std::fs::read_dir(&out2).unwrap().count() == 0);
}

/// A quadrant target: red top-left, green top-right, blue bottom-left,
/// white bottom-right.
fn quadrants(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb(match (x < w / 2, y < h / 2) {
            (true, true) => RED,
            (false, true) => GREEN,
            (true, false) => BLUE,
            (false, false) => [250, 250, 250],
        })
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(&img)
        .expect("encode");
    out
}

/// Exiftool sees only the container and codec: no EXIF, XMP, IPTC, ICC,
/// maker notes or comments.
fn assert_exiftool_sees_no_metadata(path: &Path) {
    let Some(mut et) = super::util::exiftool() else {
        return;
    };
    let o = et
        .args(["-a", "-G1", "-s", "-u"])
        .arg(path)
        .output()
        .unwrap();
    let allowed = [
        "ExifTool",
        "System",
        "File",
        "Composite",
        "JFIF",
        "PNG",
        "RIFF",
    ];
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let group = line.trim_start_matches('[').split(']').next().unwrap_or("");
        assert!(
            allowed.contains(&group),
            "{}: exiftool sees {line}",
            path.display()
        );
        assert!(!line.contains("Warning"), "{}: {line}", path.display());
    }
}

fn assert_check_passes(path: &Path) {
    let check = photodeid(&["check", s(path)]);
    assert!(
        check.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn every_size_gives_exactly_its_dimensions_clean() {
    let d = tempfile::tempdir().unwrap();
    let mut photos = Vec::new();
    for (i, (w, h)) in [(400, 300), (300, 400), (400, 300)].iter().enumerate() {
        let p = d.path().join(format!("{i}.jpg"));
        std::fs::write(&p, jpeg(RED, *w, *h, Some("2021:03:04 10:00:00"))).unwrap();
        photos.push(p);
    }
    for (i, (size, want)) in [
        ("square", (1080, 1080)),
        ("portrait", (1080, 1350)),
        ("story", (1080, 1920)),
        ("landscape", (1200, 630)),
        ("640x480", (640, 480)),
    ]
    .into_iter()
    .enumerate()
    {
        let ext = ["jpg", "png", "webp"][i % 3];
        for layout in ["auto", "row", "column", "grid", "feature"] {
            let out = d.path().join(format!("{size}-{layout}.{ext}"));
            let mut a: Vec<&str> = vec!["collage"];
            a.extend(photos.iter().map(|p| s(p)));
            a.extend([
                "-o",
                s(&out),
                "--size",
                size,
                "--layout",
                layout,
                "--time-labels",
                "--footer",
                "Individual results vary",
            ]);
            let o = photodeid(&a);
            assert!(o.status.success(), "{size} {layout}: {}", stderr(&o));
            assert_eq!(decode(&out).dimensions(), want, "{size} {layout}");
            if layout == "auto" {
                assert_check_passes(&out);
                assert_exiftool_sees_no_metadata(&out);
            }
        }
    }
    let o = photodeid(&[
        "collage",
        s(&photos[0]),
        s(&photos[1]),
        "-o",
        "x.jpg",
        "--size",
        "huge",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("portrait"), "{}", stderr(&o));
}

#[test]
fn portrait_and_landscape_panels_come_out_the_same_size_and_filled() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.jpg"), d.path().join("b.jpg"));
    std::fs::write(&a, jpeg(RED, 400, 300, None)).unwrap();
    std::fs::write(&b, jpeg(GREEN, 300, 400, None)).unwrap();
    for size in [None, Some("portrait")] {
        let out = d.path().join("c.png");
        let mut args = vec!["collage", s(&a), s(&b), "-o", s(&out), "--overwrite"];
        if let Some(sz) = size {
            args.extend(["--size", sz]);
        }
        let o = photodeid(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let img = decode(&out);
        let opts = CollageOptions {
            size: size.map(|s| collage::parse_size(s).unwrap()),
            ..CollageOptions::default()
        };
        let plan = collage::plan(&[(400, 300), (300, 400)], &opts).unwrap();
        assert_eq!(img.dimensions(), (plan.width, plan.height));
        let (t0, t1) = (plan.tiles[0], plan.tiles[1]);
        assert_eq!((t0.w, t0.h), (t1.w, t1.h), "{size:?}");
        // Cropped, not letterboxed: each panel is its colour edge to edge.
        let inner = |r: Rect| Rect::at(r.x + 3, r.y + 3).of_size(r.w - 6, r.h - 6);
        assert!(all_near(&img, inner(t0), RED), "{size:?}");
        assert!(all_near(&img, inner(t1), GREEN), "{size:?}");
    }
}

/// Writes `case/1.jpg` and `case/2.jpg` (quadrant targets) under `root`.
fn quadrant_case(root: &Path) {
    let case = root.join("case");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::write(case.join("1.jpg"), quadrants(800, 600)).unwrap();
    std::fs::write(case.join("2.jpg"), quadrants(800, 600)).unwrap();
}

fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn a_framing_file_moves_the_content_as_asked() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    quadrant_case(&root);
    let framing = d.path().join("framing.csv");
    // Photo 1 zoomed onto its red quarter; photo 2 cropped to its white quarter.
    std::fs::write(
        &framing,
        "file,zoom,center_x,center_y,x,y,w,h\n\
         case/1.jpg,2,25%,25%,,,,\n\
         case/2.jpg,,,,55%,60%,40%,15%\n",
    )
    .unwrap();
    let out = d.path().join("out");
    let o = photodeid(&[
        "collage",
        "--flat", // the test is not about the layout
        "--cases",
        s(&root),
        "-o",
        s(&out),
        "--format",
        "png",
        "--size",
        "square",
        "--framing",
        s(&framing),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = decode(&only_file(&out));
    assert_eq!(img.dimensions(), (1080, 1080));
    let plan = collage::plan(
        &[(800, 600); 2],
        &CollageOptions {
            size: Some((1080, 1080)),
            ..CollageOptions::default()
        },
    )
    .unwrap();
    let inner = |r: Rect| Rect::at(r.x + 4, r.y + 4).of_size(r.w - 8, r.h - 8);
    assert!(
        all_near(&img, inner(plan.tiles[0]), RED),
        "panel 1 not all red"
    );
    assert!(
        all_near(&img, inner(plan.tiles[1]), [250, 250, 250]),
        "panel 2 not all white"
    );
    // Without the framing file both panels show all four quarters.
    let out2 = d.path().join("out2");
    let o = photodeid(&[
        "collage",
        "--flat", // the test is not about the layout
        "--cases",
        s(&root),
        "-o",
        s(&out2),
        "--format",
        "png",
        "--size",
        "square",
    ]);
    assert!(o.status.success());
    let img = decode(&only_file(&out2));
    assert!(!all_near(&img, inner(plan.tiles[0]), RED));
    // A bad row is refused, naming the file and line.
    std::fs::write(&framing, "file,zoom\ncase/1.jpg,0.2\n").unwrap();
    let o = photodeid(&[
        "collage",
        "--flat", // the test is not about the layout
        "--cases",
        s(&root),
        "-o",
        s(&out2),
        "--framing",
        s(&framing),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("framing.csv") && stderr(&o).contains("line 2"),
        "{}",
        stderr(&o)
    );
}

/// The regions manifest's `framing` column frames the panels exactly as the
/// older framing file does, read through `--regions` (no `--framing`)
/// or given to `--framing`.
#[test]
fn the_manifest_framing_column_frames_like_the_framing_file() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    quadrant_case(&root);
    let old = d.path().join("framing.csv");
    std::fs::write(
        &old,
        "file,zoom,center_x,center_y,x,y,w,h\n\
         case/1.jpg,2,25%,25%,,,,\n\
         case/2.jpg,,,,55%,60%,40%,15%\n",
    )
    .unwrap();
    let manifest = d.path().join("regions.csv");
    std::fs::write(
        &manifest,
        "file,x,y,w,h,framing\n\
         case/1.jpg,,,,,zoom 2 25% 25%\n\
         case/2.jpg,,,,,crop 55% 60% 40% 15%\n",
    )
    .unwrap();
    let run = |name: &str, flags: &[&str]| {
        let out = d.path().join(name);
        let mut args = vec!["collage", "--cases", s(&root), "-o", s(&out), "--flat"];
        args.extend(["--format", "png", "--size", "square"]);
        args.extend(flags);
        let o = photodeid(&args);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        decode(&only_file(&out))
    };
    let by_file = run("file", &["--framing", s(&old)]);
    let by_column = run("column", &["--regions", s(&manifest)]);
    let by_flag = run("flag", &["--framing", s(&manifest)]);
    let centred = run("centred", &[]);
    assert!(
        by_file == by_column,
        "manifest column differs from framing file"
    );
    assert!(
        by_file == by_flag,
        "--framing MANIFEST differs from framing file"
    );
    assert!(by_file != centred, "framing changed nothing");
    // A bad cell is refused, naming the manifest and line.
    std::fs::write(&manifest, "file,x,y,w,h,framing\ncase/1.jpg,,,,,zoom 0.5\n").unwrap();
    let out = d.path().join("bad");
    let o = photodeid(&[
        "collage",
        "--cases",
        s(&root),
        "-o",
        s(&out),
        "--regions",
        s(&manifest),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("regions.csv") && stderr(&o).contains("line 2"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[test]
fn a_region_stays_destroyed_after_framing_and_resizing() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    quadrant_case(&root);
    let manifest = d.path().join("regions.csv");
    std::fs::write(
        &manifest,
        "file,x,y,w,h,shape,effect\ncase/*.jpg,0,0,50%,50%,rect,fill\n",
    )
    .unwrap();
    let framing = d.path().join("framing.csv");
    // Zoomed right onto the hidden quarter, and a crop around it.
    std::fs::write(
        &framing,
        "file,zoom,center_x,center_y,x,y,w,h\ncase/1.jpg,3,20%,20%,,,,\ncase/2.jpg,,,,0,0,50%,50%\n",
    )
    .unwrap();
    for size in ["portrait", "story", "landscape", "300x300"] {
        let out = d.path().join(format!("out-{size}"));
        let o = photodeid(&[
            "collage",
            "--flat", // the test is not about the layout
            "--cases",
            s(&root),
            "-o",
            s(&out),
            "--format",
            "png",
            "--size",
            size,
            "--regions",
            s(&manifest),
            "--framing",
            s(&framing),
            "--fill-color",
            "000000",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let img = decode(&only_file(&out));
        for (i, p) in img.pixels().enumerate() {
            let [r, g, b] = p.0;
            assert!(
                !(r > 150 && g < 100 && b < 100),
                "{size}: red shows at pixel {i}: {:?}",
                p.0
            );
        }
    }
}

fn write_logo(path: &Path) {
    // 100x50: opaque magenta, its left half transparent.
    let img = image::RgbaImage::from_fn(100, 50, |x, _| {
        image::Rgba(if x < 50 {
            [0, 0, 0, 0]
        } else {
            [255, 0, 255, 255]
        })
    });
    img.save(path).unwrap();
}

#[test]
fn the_logo_goes_where_asked_from_a_flag_or_a_style_file() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.jpg"), d.path().join("b.jpg"));
    std::fs::write(&a, jpeg(GREEN, 400, 300, None)).unwrap();
    std::fs::write(&b, jpeg(GREEN, 400, 300, None)).unwrap();
    let logo = d.path().join("logo.png");
    write_logo(&logo);
    let magenta = |p: [u8; 3]| p[0] > 200 && p[1] < 60 && p[2] > 200;
    // A flag: bottom-right, a fifth of the width.
    let out = d.path().join("flag.png");
    let o = photodeid(&[
        "collage",
        s(&a),
        s(&b),
        "-o",
        s(&out),
        "--size",
        "1000x500",
        "--logo",
        s(&logo),
        "--logo-size",
        "0.2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = decode(&out);
    let plan = collage::plan(
        &[(400, 300); 2],
        &CollageOptions {
            size: Some((1000, 500)),
            ..CollageOptions::default()
        },
    )
    .unwrap();
    let m = plan.margin;
    // The logo is 200x100: its opaque right half ends at the margin.
    let (x1, y1) = (1000 - m, 500 - m);
    assert!(magenta(img.get_pixel(x1 - 10, y1 - 10).0));
    assert!(magenta(img.get_pixel(x1 - 90, y1 - 90).0));
    // Its transparent half shows what is under it; the other corners have no logo.
    assert!(!magenta(img.get_pixel(x1 - 150, y1 - 50).0));
    for (x, y) in [(m + 10, m + 10), (x1 - 10, m + 10), (m + 10, y1 - 10)] {
        assert!(!magenta(img.get_pixel(x, y).0), "{x},{y}");
    }
    // A style file: top-left, half opacity, colours and a footer.
    let style = d.path().join("practice.toml");
    std::fs::write(
        &style,
        "size = \"square\"\nbackground = \"#000000\"\nlabel_color = \"#ffffff\"\n\
         footer = \"Individual results vary\"\n\
         [logo]\nfile = \"logo.png\"\ncorner = \"top-left\"\nsize = 0.2\nopacity = 0.5\n",
    )
    .unwrap();
    let out = d.path().join("style.png");
    let o = photodeid(&["collage", s(&a), s(&b), "-o", s(&out), "--style", s(&style)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = decode(&out);
    assert_eq!(img.dimensions(), (1080, 1080));
    let plan = collage::plan(
        &[(400, 300); 2],
        &CollageOptions {
            size: Some((1080, 1080)),
            footer: Some("x".into()),
            ..CollageOptions::default()
        },
    )
    .unwrap();
    let m = plan.margin;
    // 216x108 at (m, m); its opaque half at 50% over the black margin or the green panel.
    let p = img.get_pixel(m + 200, m + 5).0;
    assert!(
        p[0] > 100 && p[0] < 160 && p[2] > 100 && p[2] < 160,
        "{p:?}"
    );
    assert_eq!(
        img.get_pixel(1080 - m / 2, 1080 - m / 2).0,
        [0, 0, 0],
        "background"
    );
    let footer = plan.footer.unwrap();
    assert!(
        pixels(&img, footer).iter().any(|&v| v > 200),
        "the footer is drawn in the label colour"
    );
    // A flag wins over the file.
    let o = photodeid(&[
        "collage",
        s(&a),
        s(&b),
        "-o",
        s(&out),
        "--style",
        s(&style),
        "--size",
        "landscape",
        "--overwrite",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(decode(&out).dimensions(), (1200, 630));
    // Not a PNG: refused, naming the file.
    let o = photodeid(&[
        "collage",
        s(&a),
        s(&b),
        "-o",
        s(&out),
        "--logo",
        s(&a),
        "--overwrite",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("a.jpg") && stderr(&o).contains("PNG"),
        "{}",
        stderr(&o)
    );
    // A PNG whose pixels do not decode (its header whole, its data cut short):
    // the collage fails naming the logo, and nothing is written.
    let png = std::fs::read(&logo).unwrap();
    let broken = d.path().join("broken.png");
    std::fs::write(&broken, &png[..png.len() - 30]).unwrap();
    let out = d.path().join("broken-logo.jpg");
    let o = photodeid(&["collage", s(&a), s(&b), "-o", s(&out), "--logo", s(&broken)]);
    assert!(!o.status.success(), "a logo that does not decode must fail");
    assert!(
        stderr(&o).contains("broken.png") && stderr(&o).contains("cannot decode"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "nothing is written");
    // Many collages: the logo fails once, before any of them is drawn.
    for case in ["one", "two"] {
        let dir = d.path().join("cases").join(case);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&a, dir.join("a.jpg")).unwrap();
        std::fs::copy(&b, dir.join("b.jpg")).unwrap();
    }
    let out = d.path().join("cases-out");
    let o = photodeid(&[
        "collage",
        "--cases",
        s(&d.path().join("cases")),
        "-o",
        s(&out),
        "--logo",
        s(&broken),
    ]);
    assert!(!o.status.success(), "a logo that does not decode must fail");
    let err = stderr(&o);
    assert_eq!(err.matches("cannot decode").count(), 1, "{err}");
    assert!(err.contains("broken.png"), "{err}");
    let written = walkdir::WalkDir::new(&out)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(written, 0, "nothing is written");
}

fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn the_consent_gate_refuses_a_case_by_name_and_writes_nothing_for_it() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    for c in ["Doe_Jane", "Smith_John"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
        std::fs::write(root.join(c).join("1.jpg"), jpeg(RED, 64, 48, None)).unwrap();
        std::fs::write(root.join(c).join("2.jpg"), jpeg(BLUE, 64, 48, None)).unwrap();
    }
    let register = d.path().join("consent.csv");
    std::fs::write(
        &register,
        "case,purposes,signed\nDoe_Jane,social-media;colleague,2024-03-01\nSmith_John,research,2024-01-05\n",
    )
    .unwrap();
    private(&register);
    let map = d.path().join("map.csv");
    let out = d.path().join("out");
    let run = |out: &Path, extra: &[&str]| {
        let mut a = vec![
            "collage",
            "--flat", // the test is not about the layout
            "--cases",
            s(&root),
            "-o",
            s(out),
            "--consent",
            s(&register),
        ];
        a.extend(extra);
        photodeid(&a)
    };
    let o = run(&out, &["--purpose", "social-media", "--map", s(&map)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "photodeid: {}: ",
            root.join("Smith_John").display()
        )) && err.contains("no written consent for social-media"),
        "{err}"
    );
    assert!(!err.contains("Doe_Jane"), "{err}");
    let written = only_file(&out);
    let csv = std::fs::read_to_string(&map).unwrap();
    assert!(
        csv.contains("Doe_Jane") && !csv.contains("Smith_John"),
        "{csv}"
    );
    assert!(csv.contains(&*written.file_name().unwrap().to_string_lossy()));
    // The register is never copied into the output.
    let bytes = std::fs::read(&written).unwrap();
    assert!(!bytes.windows(8).any(|w| w == b"Doe_Jane"));
    // For research, only Smith_John passes.
    let out2 = d.path().join("out2");
    let o = run(&out2, &["--purpose", "research"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Doe_Jane"), "{}", stderr(&o));
    only_file(&out2);
    // With Smith_John's form recorded, both pass.
    std::fs::write(
        &register,
        "case,purposes,signed\nDoe_Jane,social-media,2024-03-01\nSmith_John,research social-media,2024-06-05\n",
    )
    .unwrap();
    private(&register);
    let out3 = d.path().join("out3");
    let o = run(&out3, &["--purpose", "social-media"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&out3).unwrap().count(), 2);
    // Refused: a register others can read, one inside the output, a purpose without one.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&register, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&d.path().join("out4"), &["--purpose", "social-media"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    private(&register);
    let inside = out3.join("consent.csv");
    std::fs::copy(&register, &inside).unwrap();
    let o = photodeid(&[
        "collage",
        "--flat", // the test is not about the layout
        "--cases",
        s(&root),
        "-o",
        s(&out3),
        "--consent",
        s(&inside),
        "--purpose",
        "social-media",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("inside the output"), "{}", stderr(&o));
    let o = photodeid(&[
        "collage",
        "--flat", // the test is not about the layout
        "--cases",
        s(&root),
        "-o",
        s(&out3),
        "--purpose",
        "research",
    ]);
    assert_eq!(o.status.code(), Some(2), "--purpose needs --consent");
    // A collage of photos named on the command line: the case is their folder.
    let o = photodeid(&[
        "collage",
        s(&root.join("Smith_John/1.jpg")),
        s(&root.join("Smith_John/2.jpg")),
        "-o",
        s(&d.path().join("one.jpg")),
        "--consent",
        s(&register),
        "--purpose",
        "colleague",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Smith_John"), "{}", stderr(&o));
    assert!(!d.path().join("one.jpg").exists());
}

/// The astronaut fixture scaled by `scale`, pasted at `at` on a grey
/// `w` x `h` canvas, as a JPEG.
#[cfg(feature = "faces")]
fn astronaut_on(w: u32, h: u32, scale: f32, at: (i64, i64)) -> Vec<u8> {
    let a = image::open(fixtures().join("faces/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let side = (a.width() as f32 * scale).round() as u32;
    let a = image::imageops::resize(&a, side, side, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128]));
    image::imageops::overlay(&mut canvas, &a, at.0, at.1);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(&canvas)
        .unwrap();
    out
}

/// The one face the detector finds in a panel: centre and width, in
/// fractions of the panel.
#[cfg(feature = "faces")]
fn face_in(img: &image::RgbImage, r: Rect) -> (f32, f32, f32) {
    let panel = image::imageops::crop_imm(img, r.x, r.y, r.w, r.h).to_image();
    let found = photodeid::faces::detect(&panel, false).unwrap();
    let faces: Vec<_> = found.applied(photodeid::faces::DEFAULT_THRESHOLD).collect();
    assert_eq!(faces.len(), 1, "faces in panel {r:?}");
    let c = faces[0].bbox.centre();
    (
        c.x / r.w as f32,
        c.y / r.h as f32,
        faces[0].bbox.width() / r.w as f32,
    )
}

#[cfg(feature = "faces")]
#[test]
fn align_faces_puts_each_face_at_the_same_place_and_size() {
    let d = tempfile::tempdir().unwrap();
    // The same face: small and left on a square; 1.6x larger, higher and right on a wide one.
    let (a, b) = (d.path().join("a.jpg"), d.path().join("b.jpg"));
    std::fs::write(&a, astronaut_on(1000, 1000, 0.8, (40, 300))).unwrap();
    std::fs::write(&b, astronaut_on(1400, 1000, 1.3, (600, 150))).unwrap();
    // A photo with no face keeps the centred default and is reported.
    let c = d.path().join("c.jpg");
    std::fs::write(&c, quadrants(800, 600)).unwrap();
    let out = d.path().join("aligned.png");
    let o = photodeid(&[
        "collage",
        s(&a),
        s(&b),
        s(&c),
        "-o",
        s(&out),
        "--layout",
        "row",
        "--size",
        "1200x630",
        "--align",
        "faces",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("c.jpg: --align: no face found to align on"),
        "{err}"
    );
    let img = decode(&out);
    let plan = collage::plan(
        &[(1000, 1000), (1400, 1000), (800, 600)],
        &CollageOptions {
            size: Some((1200, 630)),
            layout: Layout::Row,
            ..CollageOptions::default()
        },
    )
    .unwrap();
    let (fa, fb) = (face_in(&img, plan.tiles[0]), face_in(&img, plan.tiles[1]));
    assert!(
        (fa.0 - fb.0).abs() < 0.04 && (fa.1 - fb.1).abs() < 0.04,
        "face centres {fa:?} {fb:?}"
    );
    assert!((fa.2 / fb.2 - 1.0).abs() < 0.1, "face widths {fa:?} {fb:?}");
    // Unaligned, the same photos put the faces at different places and sizes.
    let plain = d.path().join("plain.png");
    let o = photodeid(&[
        "collage",
        s(&a),
        s(&b),
        s(&c),
        "-o",
        s(&plain),
        "--layout",
        "row",
        "--size",
        "1200x630",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = decode(&plain);
    let (pa, pb) = (face_in(&img, plan.tiles[0]), face_in(&img, plan.tiles[1]));
    assert!(
        (pa.1 - pb.1).abs() > 0.1 || (pa.2 / pb.2 - 1.0).abs() > 0.3,
        "the test photos must differ unaligned: {pa:?} {pb:?}"
    );
    // The third panel is the centred default: all four quarters show.
    let t = plan.tiles[2];
    let at = |fx: f32, fy: f32| {
        img.get_pixel(
            t.x + (t.w as f32 * fx) as u32,
            t.y + (t.h as f32 * fy) as u32,
        )
        .0
    };
    assert!(near(at(0.1, 0.1), RED) && near(at(0.9, 0.9), [250, 250, 250]));
    assert_exiftool_sees_no_metadata(&out);
    assert_check_passes(&out);
}

#[cfg(feature = "faces")]
#[test]
fn an_explicit_framing_wins_over_align() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    let case = root.join("case");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::write(case.join("1.jpg"), astronaut_on(1000, 1000, 0.8, (40, 500))).unwrap();
    std::fs::write(case.join("2.jpg"), quadrants(800, 600)).unwrap();
    // Photo 1 framed by hand onto the grey top-right corner: no face shows.
    let framing = d.path().join("framing.csv");
    std::fs::write(
        &framing,
        "file,zoom,center_x,center_y\ncase/1.jpg,4,90%,10%\n",
    )
    .unwrap();
    let out = d.path().join("out");
    let o = photodeid(&[
        "collage",
        "--flat",
        "--cases",
        s(&root),
        "-o",
        s(&out),
        "--format",
        "png",
        "--size",
        "square",
        "--align",
        "faces",
        "--framing",
        s(&framing),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = decode(&only_file(&out));
    let plan = collage::plan(
        &[(1000, 1000), (800, 600)],
        &CollageOptions {
            size: Some((1080, 1080)),
            ..CollageOptions::default()
        },
    )
    .unwrap();
    let inner = |r: Rect| Rect::at(r.x + 4, r.y + 4).of_size(r.w - 8, r.h - 8);
    assert!(all_near(&img, inner(plan.tiles[0]), [128, 128, 128]));
}

#[cfg(not(feature = "faces"))]
#[test]
fn align_without_the_faces_feature_fails_naming_it_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    quadrant_case(&root);
    let out = d.path().join("out");
    let o = photodeid(&[
        "collage",
        "--cases",
        s(&root),
        "-o",
        s(&out),
        "--align",
        "eyes",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--align") && err.contains("--features faces"),
        "{err}"
    );
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[test]
fn a_plain_regions_manifest_given_as_framing_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    quadrant_case(&root);
    let manifest = d.path().join("regions.csv");
    std::fs::write(&manifest, "file,x,y,w,h\ncase/1.jpg,0,0,50%,50%\n").unwrap();
    let out = d.path().join("out");
    let o = photodeid(&[
        "collage",
        "--cases",
        s(&root),
        "-o",
        s(&out),
        "--framing",
        s(&manifest),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("regions.csv") && err.contains("no \"framing\" column"),
        "{err}"
    );
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

/// The one panel of a 600x750 animated collage, as a still plans it.
fn gif_panel_plan() -> collage::Plan {
    collage::plan_one(
        (600, 750),
        &CollageOptions {
            size: Some((600, 750)),
            ..CollageOptions::default()
        },
    )
    .unwrap()
}

/// The frames of a GIF, as RGB, with their delays (centiseconds), and
/// whether it loops forever: read by the gif crate, not by photodeid.
fn gif_frames(path: &Path) -> (Vec<(image::RgbImage, u16)>, bool) {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut d = opts.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = d.read_next_frame().unwrap() {
        let rgba =
            image::RgbaImage::from_raw(f.width as u32, f.height as u32, f.buffer.to_vec()).unwrap();
        frames.push((image::DynamicImage::ImageRgba8(rgba).to_rgb8(), f.delay));
    }
    (frames, d.repeat() == gif::Repeat::Infinite)
}

#[test]
fn an_animated_gif_alternates_before_and_after_clean_and_redacted() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("cases");
    let case = root.join("Doe_Jane");
    std::fs::create_dir_all(&case).unwrap();
    // Named against capture order: the GREEN photo was taken first.
    std::fs::write(
        case.join("a.jpg"),
        jpeg(RED, 800, 600, Some("2022:03:04 10:00:00")),
    )
    .unwrap();
    std::fs::write(
        case.join("b.jpg"),
        jpeg(GREEN, 800, 600, Some("2021:03:04 10:00:00")),
    )
    .unwrap();
    let out = d.path().join("out");
    let o = photodeid(&[
        "collage",
        "--flat",
        "--cases",
        s(&root),
        "-o",
        s(&out),
        "--format",
        "gif",
        "--size",
        "600x750",
        "--region",
        "0,0,50%,100%:fill",
        "--fill-color",
        "0000ff",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let gif = only_file(&out);
    let name = gif.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with(".gif") && !name.contains("Doe"), "{name}");
    let (frames, loops) = gif_frames(&gif);
    assert!(loops, "the GIF must loop");
    assert_eq!(frames.len(), 2);
    let plan = gif_panel_plan();
    let (panel, band) = (plan.tiles[0], plan.bands[0]);
    let mut bands = Vec::new();
    for (i, ((img, delay), colour)) in frames.iter().zip([GREEN, RED]).enumerate() {
        assert_eq!(img.dimensions(), (600, 750), "frame {i}");
        assert_eq!(*delay, 120, "frame {i} held 1.2 s");
        // The same panel as a still: left half destroyed, right half the photo.
        let (left, right) = halves(panel);
        assert!(all_near(img, left, [0, 0, 255]), "frame {i}: region shows");
        assert!(all_near(img, right, colour), "frame {i}: not photo {i}");
        bands.push(pixels(img, band));
    }
    // Each frame's label is drawn (Before, After): the bands differ.
    assert_ne!(bands[0], bands[1]);
    assert!(bands[0].iter().any(|&v| v < 128), "no label drawn");
    // Structure only: no comment or other extension but the loop.
    let bytes = std::fs::read(&gif).unwrap();
    assert!(gif_has_no_comment(&bytes), "a comment extension");
    assert!(bytes.windows(11).any(|w| w == b"NETSCAPE2.0"));
    if let Some(mut et) = super::util::exiftool() {
        let o = et
            .args(["-a", "-G1", "-s", "-u"])
            .arg(&gif)
            .output()
            .unwrap();
        let allowed = ["ExifTool", "System", "File", "Composite", "GIF"];
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let group = line.trim_start_matches('[').split(']').next().unwrap_or("");
            assert!(allowed.contains(&group), "exiftool sees {line}");
            for bad in ["Comment", "XMP", "ICC", "Warning"] {
                assert!(!line.contains(bad), "exiftool sees {line}");
            }
        }
    }
    assert_check_passes(&gif);
}

/// The frames of a GIF as a viewer shows them (each drawn over the last),
/// with their delays: composed by the image crate, not by photodeid.
fn gif_shown(path: &Path) -> Vec<(image::RgbImage, u32)> {
    use image::AnimationDecoder;
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .map(|f| {
            let f = f.unwrap();
            let (num, den) = f.delay().numer_denom_ms();
            let rgb = image::DynamicImage::ImageRgba8(f.into_buffer()).to_rgb8();
            (rgb, num / den)
        })
        .collect()
}

/// `--transition wipe`: a divider sweeps across, the next photo behind it,
/// every shown frame keeps the region destroyed, each photo is held, and
/// the file stays as bare as the cut.
#[test]
fn an_animated_gif_wipes_from_before_to_after() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a.jpg"), d.path().join("b.jpg"));
    std::fs::write(&a, jpeg(GREEN, 800, 600, Some("2021:03:04 10:00:00"))).unwrap();
    std::fs::write(&b, jpeg(RED, 800, 600, Some("2022:03:04 10:00:00"))).unwrap();
    let gif = d.path().join("wipe.gif");
    let o = photodeid(&[
        "collage",
        s(&a),
        s(&b),
        "-o",
        s(&gif),
        "--size",
        "600x750",
        "--transition",
        "wipe",
        "--region",
        "0,0,50%,100%:fill",
        "--fill-color",
        "0000ff",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = gif_shown(&gif);
    // Before held, 15 steps to after (held), 15 steps back.
    assert_eq!(shown.len(), 31);
    let plan = gif_panel_plan();
    let panel = plan.tiles[0];
    let (left, right) = halves(panel);
    for (i, (img, _)) in shown.iter().enumerate() {
        assert_eq!(img.dimensions(), (600, 750), "frame {i}");
        // Only the fill, or the divider passing over it.
        let hidden = pixels(img, left)
            .chunks(3)
            .all(|p| near([p[0], p[1], p[2]], [0, 0, 255]) || p.iter().all(|&v| v > 230));
        assert!(hidden, "frame {i}: region shows");
    }
    assert_eq!(shown[0].1, 1200, "before is held");
    assert!(all_near(&shown[0].0, right, GREEN));
    assert_eq!(shown[15].1, 1200, "after is held");
    assert!(all_near(&shown[15].0, right, RED));
    assert!(all_near(&shown[30].0, right, GREEN), "wiped back to before");
    assert!(
        shown[30].1 < 100,
        "the loop's start holds before, not the end"
    );
    // Mid-wipe: after to the left of the divider, before to its right.
    let (img, delay) = &shown[10];
    assert!(*delay < 100, "a wipe step is short: {delay}");
    let divider = 600 * 10 / 15;
    assert!(divider > right.x + 10 && divider + 12 < right.x + right.w);
    let span = |x0: u32, x1: u32| Rect::at(x0, right.y).of_size(x1 - x0, right.h);
    assert!(all_near(img, span(right.x, divider - 3), RED));
    assert!(all_near(img, span(divider + 6, right.x + right.w), GREEN));
    assert!(all_near(img, span(divider, divider + 2), [255, 255, 255]));

    let bytes = std::fs::read(&gif).unwrap();
    assert!(gif_has_no_comment(&bytes), "a comment extension");
    for date in [&b"2021:03"[..], b"2022:03"] {
        assert!(!bytes.windows(date.len()).any(|w| w == date), "a date");
    }
    assert_check_passes(&gif);

    // A still collage has no transition to make.
    let o = photodeid(&[
        "collage",
        s(&a),
        s(&b),
        "-o",
        s(&d.path().join("still.jpg")),
        "--transition",
        "wipe",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("animated"), "{}", stderr(&o));
    assert!(!d.path().join("still.jpg").exists());
}

/// Walks the GIF's blocks: true when none is a comment extension.
fn gif_has_no_comment(b: &[u8]) -> bool {
    let mut i = 13;
    if b[10] & 0x80 != 0 {
        i += 3 << ((b[10] & 7) + 1);
    }
    while i < b.len() {
        match b[i] {
            0x3B => return true,
            0x21 => {
                if b[i + 1] == 0xFE {
                    return false;
                }
                i += 2;
                while b[i] != 0 {
                    i += b[i] as usize + 1;
                }
                i += 1;
            }
            0x2C => {
                let flags = b[i + 9];
                i += 10;
                if flags & 0x80 != 0 {
                    i += 3 << ((flags & 7) + 1);
                }
                i += 1; // LZW minimum code size
                while b[i] != 0 {
                    i += b[i] as usize + 1;
                }
                i += 1;
            }
            _ => return false,
        }
    }
    false
}
