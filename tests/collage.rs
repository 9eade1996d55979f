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
                title: None,
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
        }
    }
}

#[test]
fn orientation_and_flip_are_honoured() {
    let d = tempfile::tempdir().unwrap();
    let o6 = fixtures().join("dirty/jpeg_orient_6.jpg");
    let o1 = fixtures().join("dirty/jpeg_orient_1.jpg");
    let out = d.path().join("o.png");
    let o = photodeid(&["collage", s(&o1), s(&o6), "-o", s(&out), "--flip", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let img = decode(&out);
    // Stored 96x64; orientation 6 displays 64x96, scaled to the common height 64.
    let plan = collage::plan(&[(96, 64), (64, 96)], &CollageOptions::default()).unwrap();
    assert_eq!(img.dimensions(), (plan.width, plan.height));
    assert_eq!(plan.tiles[1].w, 43);
    // Tile 1 (orientation 1, flipped): red block now top-right.
    let t = plan.tiles[0];
    let red = img.get_pixel(t.x + t.w - 10, t.y + 5).0;
    assert!(red[0] > 150 && red[1] < 100, "{red:?}");
    // Tile 2 (orientation 6 = 90° clockwise): red top-right, blue bottom-left.
    let t = plan.tiles[1];
    let red = img.get_pixel(t.x + t.w - 4, t.y + 8).0;
    let blue = img.get_pixel(t.x + 4, t.y + t.h - 8).0;
    assert!(red[0] > 150 && red[2] < 100, "{red:?}");
    assert!(blue[2] > 150 && blue[0] < 100, "{blue:?}");
    let o = photodeid(&["collage", s(&o1), s(&o6), "-o", s(&out), "--flip", "3"]);
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
        photodeid(&["collage", "--cases", s(&cases), "-o", s(&out3)])
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
