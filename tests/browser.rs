//! The page in a real browser: headless Chromium (Debian's `chromium`),
//! driven by playwright-core (`tests/browser/run.mjs`), draws a region with
//! the mouse on the editor, exports, and this test checks the exported file
//! on disk. Needs node and chromium: on CI (`CI` set) their absence fails the
//! test; locally it is skipped with a message. `scripts/test.sh` installs both.
//! The editor's screenshot is saved as `target/browser-artifacts/editor.png`.

use crate::serve::{setup, Serve};
use crate::util::{bin, canaries, contains, files};
use std::path::{Path, PathBuf};
use std::process::Command;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fails on CI, skips (returns false) locally.
fn require(ok: bool, what: &str) -> bool {
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is missing on CI (scripts/test.sh installs it)"
        );
        eprintln!("browser test skipped: {what} is missing (bash scripts/test.sh installs it)");
    }
    ok
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// node, chromium and playwright-core are there (npm ci when the latter is not).
fn ready() -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(node, "node (Node.js)") || !require(chromium().exists(), "chromium") {
        return false;
    }
    let dir = browser_dir();
    if !dir.join("node_modules/playwright-core").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        return require(ok, "playwright-core (npm ci in tests/browser failed)");
    }
    true
}

/// Mean of |a - b| over the channels, and the largest channel value of `b`,
/// in the box (x0, y0)-(x1, y1) given in fractions of the picture.
fn compare(a: &image::RgbImage, b: &image::RgbImage, f: [f64; 4]) -> (f64, u8) {
    let (w, h) = (a.width() as f64, a.height() as f64);
    let (x0, y0, x1, y1) = (
        (f[0] * w) as u32,
        (f[1] * h) as u32,
        (f[2] * w) as u32,
        (f[3] * h) as u32,
    );
    let mut diff = 0u64;
    let mut n = 0u64;
    let mut max = 0u8;
    for y in y0..y1 {
        for x in x0..x1 {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            for c in 0..3 {
                diff += (p[c] as i32 - q[c] as i32).unsigned_abs() as u64;
                max = max.max(q[c]);
            }
            n += 3;
        }
    }
    (diff as f64 / n.max(1) as f64, max)
}

#[test]
fn draw_a_region_in_chromium_and_export() {
    if !ready() {
        return;
    }
    let (_d, photos, out) = setup();
    let original = photos.join("Smith_John_badge.jpg");
    let before = crate::util::upright(&original);
    let s = Serve::start(&photos, &out);
    let shot = artifacts().join("editor.png");
    let run = Command::new("node")
        .arg(browser_dir().join("run.mjs"))
        .arg(&s.url)
        .arg("Smith_John_badge.jpg")
        .arg(&shot)
        .env("CHROMIUM", chromium())
        .current_dir(browser_dir())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!("browser timings: {}", report["timings"]);
    assert!(shot.exists(), "no screenshot");
    let blocked: Vec<_> = report["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m.as_str().unwrap().contains("blocked") || m.as_str().unwrap().contains("error")
        })
        .collect();
    assert!(blocked.is_empty(), "console: {blocked:?}");
    assert_eq!(report["regions"], 1, "{report}");
    assert_eq!(
        report["unlabelled"],
        serde_json::json!([]),
        "controls without a label"
    );
    // Keyboard: the region moved right by 2% and grew 1% taller; copied to
    // the two other photos of the case; every card shows its region.
    let kb = &report["keyboard"];
    assert_eq!(
        (kb["x0"].as_str(), kb["x1"].as_str()),
        (Some("40"), Some("42")),
        "{kb}"
    );
    assert_eq!(kb["h"], "21", "{kb}");
    assert!(
        kb["copied"].as_str().unwrap().contains("to 2 other photos"),
        "{kb}"
    );
    assert_eq!(kb["toCheck"], 2, "copies are marked to check: {kb}");
    assert_eq!(
        kb["cards"],
        serde_json::json!([true, true, true, true]),
        "{kb}"
    );

    // The exported badge photo, found by the page's own report.
    let results = report["export"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 4, "{report}");
    for r in results {
        assert_eq!(r["regions"], 1, "{r}");
        assert_eq!(r["method"], "re-encoded", "{r}");
    }
    let r = results
        .iter()
        .find(|r| r["name"] == "Smith_John_badge.jpg")
        .unwrap();
    assert_eq!(r["regions"], 1);
    let name = r["output"].as_str().unwrap();
    let exported = out.join(name);
    assert!(exported.is_file(), "{}", exported.display());
    assert_eq!(files(&out).len(), 4);

    // Pseudonymous name: its capture rank and 8 hex digits, nothing of the
    // original; at the top, as it was at the top of the folder.
    let stem = exported.file_stem().unwrap().to_string_lossy();
    let (rank, hash) = stem.split_once('-').unwrap();
    assert_eq!((rank, hash.len()), ("001", 8), "{name}");
    assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!name.contains("Smith") && !name.contains("badge") && !name.contains('/'));

    // No metadata: no canary bytes, and `check` finds nothing identifying.
    let bytes = std::fs::read(&exported).unwrap();
    for c in canaries() {
        assert!(!contains(&bytes, c.as_bytes()), "export carries {c}");
    }
    let check = bin().arg("check").arg(&exported).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");

    // The region drawn (20%..60% both ways) is destroyed: black where the
    // original was not; outside it the picture is unchanged but for JPEG noise.
    let after = crate::util::upright(&exported);
    let (a, b) = (
        image::DynamicImage::ImageRgba8(before).to_rgb8(),
        image::DynamicImage::ImageRgba8(after).to_rgb8(),
    );
    assert_eq!(a.dimensions(), b.dimensions());
    let (diff_in, max_in) = compare(&a, &b, [0.23, 0.23, 0.57, 0.57]);
    assert!(max_in < 40, "region not filled (max channel {max_in})");
    assert!(diff_in > 60.0, "region looks like the original ({diff_in})");
    let (diff_out, _) = compare(&a, &b, [0.7, 0.7, 0.98, 0.98]);
    assert!(diff_out < 8.0, "outside the region changed ({diff_out})");
}

fn node(script: &str, args: &[&str]) -> serde_json::Value {
    let run = Command::new("node")
        .arg(browser_dir().join(script))
        .args(args)
        .env("CHROMIUM", chromium())
        .current_dir(browser_dir())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let errors: Vec<_> = report["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.as_str().unwrap().starts_with("pageerror"))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    report
}

/// Draw, reload: the region is there; undo/redo; leaving with a save
/// pending asks; two tabs do not overwrite each other; restart the server:
/// the regions are there; export one photo: every other row is kept.
#[test]
fn work_is_never_lost() {
    if !ready() {
        return;
    }
    let (_d, photos, out) = setup();
    let (badge, other) = (
        "Smith_John_badge.jpg",
        "Doe_Jane_1961-04-02/IMG_2021-09-10_during.jpg",
    );
    let manifest = photos.join(".photodeid-regions.csv");
    let s = Serve::start(&photos, &out);
    let r = node("work.mjs", &[&s.url, "edit", badge, other]);
    assert_eq!(r["before"], "No regions marked", "{r}");
    assert!(
        r["saveStatus"]
            .as_str()
            .unwrap()
            .contains("All changes saved"),
        "{r}"
    );
    assert_eq!(r["afterReload"], "1 region marked", "{r}");
    assert_eq!(r["regionsAfterReload"], 1, "{r}");
    assert_eq!(
        (&r["afterUndo"], &r["afterRedo"]),
        (&0.into(), &1.into()),
        "{r}"
    );
    assert_eq!(r["unsavedFlag"], true, "{r}");
    assert_eq!(r["askedBeforeLeaving"], true, "{r}");
    // Tab a added a second region; tab b, stale, deleted one: refused, and
    // b shows a's two.
    assert_eq!(r["tabA"], 2, "{r}");
    assert_eq!(r["tabBBefore"], 1, "{r}");
    assert_eq!(r["tabBAfter"], 2, "{r}");
    assert!(
        r["tabBStatus"].as_str().unwrap().contains("another tab"),
        "{r}"
    );
    assert!(
        r["tabBOtherStatus"]
            .as_str()
            .unwrap()
            .contains("All changes saved"),
        "{r}"
    );
    let rows = |text: &str| photodeid::region::parse_manifest(text).unwrap();
    let text = std::fs::read_to_string(&manifest).unwrap();
    let count = |t: &str, f: &str| rows(t).iter().filter(|r| r.pattern == f).count();
    // The other photo: tab b's region, plus the one left by the unload
    // test (its save went through after the tab closed, or not at all).
    assert_eq!(count(&text, badge), 2, "{text}");
    assert!((1..=2).contains(&count(&text, other)), "{text}");
    let other_rows = count(&text, other);
    drop(s);

    let s = Serve::start(&photos, &out);
    let r = node("work.mjs", &[&s.url, "restart", badge, other]);
    assert_eq!(r["afterRestart"], "2 regions marked", "{r}");
    assert_eq!(r["exported"], 1, "{r}");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert_eq!(count(&text, badge), 2, "export dropped rows: {text}");
    assert_eq!(count(&text, other), other_rows, "{text}");
    assert_eq!(files(&out).len(), 1);
}

/// Every file is listed; damaged and unsupported ones greyed with a reason
/// and what to do; a collage missing one of its case's files asks first.
#[test]
fn nothing_is_hidden() {
    if !ready() {
        return;
    }
    let (d, photos, out) = setup();
    let case = photos.join("Doe_Jane_1961-04-02");
    let bad = crate::util::fixtures().join("bad");
    std::fs::copy(bad.join("truncated.jpg"), case.join("IMG_2021-10-01.jpg")).unwrap();
    std::fs::copy(bad.join("unsupported.heic"), photos.join("IMG_0001.HEIC")).unwrap();
    std::fs::write(photos.join("notes.txt"), b"patient notes").unwrap();
    let s = Serve::start(&photos, &out);
    let r = node("files.mjs", &[&s.url, artifacts().to_str().unwrap()]);
    let cards = r["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 7, "every file listed: {r}");
    let card = |name: &str| {
        cards
            .iter()
            .find(|c| c["name"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not listed: {r}"))
    };
    let damaged = card("IMG_2021-10-01.jpg");
    assert_eq!(
        (&damaged["unusable"], &damaged["disabled"]),
        (&true.into(), &true.into())
    );
    let reason = damaged["reason"].as_str().unwrap();
    assert!(
        reason.contains("damaged: it ends early; copy it again"),
        "{reason}"
    );
    let notes = card("notes.txt");
    assert_eq!(notes["unusable"], true);
    assert!(
        notes["reason"].as_str().unwrap().contains("cannot be used"),
        "{notes}"
    );
    // HEIC: the library's reason while it cannot read it (another branch adds support).
    let heic = card("IMG_0001.HEIC");
    if heic["unusable"] == true {
        assert!(heic["reason"].as_str().unwrap().contains("HEIC"), "{heic}");
    }
    assert!(r["status"].as_str().unwrap().contains("cannot"), "{r}");
    assert_eq!(r["exportInView"], true, "the export bar stays in view");
    assert!(
        r["question"]
            .as_str()
            .unwrap()
            .contains("IMG_2021-10-01.jpg"),
        "{r}"
    );
    assert_eq!(r["afterCancel"], "Export not started.", "{r}");
    let collages = r["collages"].as_array().unwrap();
    assert!(
        collages.iter().any(|c| c
            .as_str()
            .unwrap()
            .contains("made without Doe_Jane_1961-04-02/IMG_2021-10-01.jpg")),
        "{r}"
    );
    // Previous/Next walk the usable photos; zoom enlarges the picture.
    assert_eq!(r["prevDisabled"], true, "{r}");
    assert_ne!(r["nextName"], r["firstName"], "{r}");
    assert_eq!(r["backName"], r["firstName"], "{r}");
    assert_eq!(r["zoomLevel"], "150%", "{r}");
    let ratio = r["zoomRatio"].as_f64().unwrap();
    assert!((1.4..1.6).contains(&ratio), "{r}");
    for shot in ["grid", "results", "editor"] {
        for size in ["1280x900", "390x844"] {
            assert!(artifacts().join(format!("{shot}-{size}.png")).is_file());
        }
    }
    drop(d);
}

/// The two-step listing: the first thumbnail is shown before the details
/// are even asked for, with every file already listed (the non-photo greyed,
/// the cards saying their details are being read, never "no identifying
/// metadata"); the details then fill the cards in and grey the damaged file.
#[test]
fn thumbnails_come_before_the_details_which_then_fill_in() {
    if !ready() {
        return;
    }
    let (d, photos, out) = setup();
    let case = photos.join("Doe_Jane_1961-04-02");
    let bad = crate::util::fixtures().join("bad");
    std::fs::copy(bad.join("truncated.jpg"), case.join("IMG_2021-10-01.jpg")).unwrap();
    std::fs::write(photos.join("notes.txt"), b"patient notes").unwrap();
    let s = Serve::start(&photos, &out);
    let r = node("listing.mjs", &[&s.url, artifacts().to_str().unwrap()]);
    let names = |cards: &serde_json::Value| -> Vec<String> {
        let mut v: Vec<String> = cards
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let first = &r["atFirstThumb"];
    assert!(first["details"].is_null(), "details already in: {r}");
    assert_eq!(
        names(&first["cards"]).len(),
        6,
        "every file listed at once: {r}"
    );
    assert_eq!(names(&first["cards"]), names(&r["after"]), "{r}");
    let find = |cards: &serde_json::Value, name: &str| {
        cards
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name}: {r}"))
            .clone()
    };
    let notes = find(&first["cards"], "notes.txt");
    assert_eq!(notes["unusable"], true, "{notes}");
    assert!(notes["reason"].as_str().unwrap().contains("cannot be used"));
    for c in first["cards"].as_array().unwrap() {
        if c["unusable"] == false {
            assert_eq!(c["pending"], true, "{c}");
            assert_eq!(c["carries"], "", "{c}");
            assert!(c["size"].as_str().unwrap().ends_with(" KB JPEG"), "{c}");
        }
    }
    assert!(
        first["status"].as_str().unwrap().contains("Reading what"),
        "{r}"
    );
    // The requests: the details asked for only after a thumbnail arrived.
    let reqs = r["requests"].as_array().unwrap();
    let at = |pred: &dyn Fn(&str) -> bool, k: &str| -> Vec<f64> {
        reqs.iter()
            .filter(|q| pred(q["path"].as_str().unwrap()))
            .map(|q| q[k].as_f64().unwrap())
            .collect()
    };
    let thumbs_end = at(&|p| p.ends_with("/thumb"), "end");
    let details_start = at(&|p| p == "/api/photos/details", "start");
    assert_eq!(details_start.len(), 1, "{r}");
    let first_thumb = thumbs_end.iter().cloned().fold(f64::MAX, f64::min);
    assert!(first_thumb <= details_start[0], "{r}");
    // Then filled in: what the badge carries; the damaged file greyed.
    let badge = find(&r["after"], "Smith_John_badge.jpg");
    assert!(
        badge["carries"].as_str().unwrap().contains("GPS location"),
        "{badge}"
    );
    assert_eq!(badge["pending"], false);
    assert!(badge["size"].as_str().unwrap().contains(" × "), "{badge}");
    let damaged = find(&r["after"], "IMG_2021-10-01.jpg");
    assert_eq!(
        (&damaged["unusable"], &damaged["thumb"]),
        (&true.into(), &false.into())
    );
    assert!(
        damaged["reason"].as_str().unwrap().contains("damaged"),
        "{damaged}"
    );
    assert!(
        !r["status"].as_str().unwrap().contains("Reading what"),
        "{r}"
    );
    for size in ["1280x900", "390x844"] {
        assert!(artifacts().join(format!("listing-{size}.png")).is_file());
    }
    drop(d);
}

/// The collage editor: the first case previewed at its final size; change
/// the size, drag a panel, zoom another, edit a label; export for social
/// media asks for the signed permission and records it. The screenshot is
/// `target/browser-artifacts/collage-editor.png`.
#[test]
fn collage_editor_in_chromium() {
    if !ready() {
        return;
    }
    let (_d, photos, out) = setup();
    let s = Serve::start(&photos, &out);
    let shot = artifacts().join("collage-editor.png");
    let r = node("collage.mjs", &[&s.url, shot.to_str().unwrap()]);
    assert!(shot.exists(), "no screenshot");
    let case = "Doe_Jane_1961-04-02";
    assert_eq!(r["series"], case, "{r}");
    // Portrait by default, at its final size; then square.
    assert_eq!(
        r["first"],
        serde_json::json!({"width": 1080, "height": 1350}),
        "{r}"
    );
    assert_eq!(r["natural"], serde_json::json!([1080, 1350]), "{r}");
    assert_eq!(
        r["square"],
        serde_json::json!({"width": 1080, "height": 1080, "tiles": 3}),
        "{r}"
    );
    assert_eq!(
        r["final"],
        serde_json::json!({"width": 1080, "height": 1350}),
        "{r}"
    );
    // Dragged right: the photo moved right, so the panel shows more of its left.
    let dragged = &r["dragged"]["framing"];
    assert!(dragged["cx"].as_f64().unwrap() < 0.5, "{r}");
    let crop_x = r["dragged"]["crop"]["x"].as_f64().unwrap();
    assert!(crop_x < 0.2, "the crop moved left: {r}");
    assert!(
        (r["zoomed"]["framing"]["zoom"].as_f64().unwrap() - 1.25).abs() < 1e-6,
        "{r}"
    );
    assert!(r["zoomed"]["crop"]["w"].as_f64().unwrap() < 0.9, "{r}");
    assert_eq!(r["labels"][0], "Week 0", "{r}");
    let timings: Vec<f64> = r["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ms"].as_f64().unwrap())
        .collect();
    eprintln!(
        "collage preview refresh, ms (page, end to end): {timings:?}; from the input change \
         to the image's load: {}",
        r["timing"]
    );
    // Consent: none on file, asked, recorded, then the collage is made.
    assert!(
        r["consentBefore"]
            .as_str()
            .unwrap()
            .contains("No written permission for social media"),
        "{r}"
    );
    assert!(
        r["badgeBefore"]
            .as_str()
            .unwrap()
            .contains("No written permission"),
        "{r}"
    );
    assert!(r["question"].as_str().unwrap().contains(case), "{r}");
    assert!(
        r["consentAfter"]
            .as_str()
            .unwrap()
            .contains("on file (signed 2024-03-01)"),
        "{r}"
    );
    assert_eq!(r["unlabelled"], serde_json::json!([]), "{r}");
    let register = photos.join(".photodeid-consent.csv");
    let text = std::fs::read_to_string(&register).unwrap();
    assert!(
        text.contains(&format!("{case},social-media,2024-03-01")),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&register).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the register is private");
    // The framing is saved with the case: the regions manifest's framing
    // column, which `collage --regions` reads; no separate framing file.
    let manifest = photos.join(".photodeid-regions.csv");
    let rows = photodeid::collage::framing::manifest_framing(&manifest).unwrap();
    assert!(
        rows.iter().any(|r| r.pattern.starts_with(case)),
        "{}",
        std::fs::read_to_string(&manifest).unwrap()
    );
    assert!(!photos.join(".photodeid-framing.csv").exists());
    // The collage: final size, no metadata, and nothing of the register in the output.
    let collages = r["collages"].as_array().unwrap();
    let line = collages
        .iter()
        .find(|c| c.as_str().unwrap().starts_with(case))
        .unwrap_or_else(|| panic!("{r}"));
    let rel = line
        .as_str()
        .unwrap()
        .split(": ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    let path = out.join(rel);
    let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!((img.width(), img.height()), (1080, 1350));
    let check = bin().arg("check").arg(&path).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    for f in files(&out) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!contains(&bytes, b"Doe_Jane"), "{}", f.display());
        assert!(!f.to_string_lossy().contains("consent"));
    }
}

/// The collage editor with a practice style (`serve --style`): the profile
/// is the default (square, its background, its logo); choosing no style and
/// back, moving the logo, drawing a crop on a panel (snapped to its shape,
/// saved as the framing's crop form), the recommended command, export. The
/// preview refresh (input change to image load) is reported, not asserted.
/// The screenshot is `target/browser-artifacts/collage-style.png`.
#[test]
fn collage_style_crop_and_command_in_chromium() {
    if !ready() {
        return;
    }
    let (d, photos, out) = setup();
    let style = crate::serve::write_style(&d.path().join("brand"));
    let s = crate::serve::serve_with_style(&photos, &out, &style);
    let shot = artifacts().join("collage-style.png");
    let r = node("collage-style.mjs", &[&s.url, shot.to_str().unwrap()]);
    assert!(shot.exists(), "no screenshot");
    eprintln!(
        "collage preview refresh, ms from the input change to the image's load: {}",
        r["timing"]
    );
    assert_eq!(r["styleDefault"], "practice", "{r}");
    assert_eq!(
        r["first"],
        serde_json::json!({"width": 1080, "height": 1080, "background": "203040"}),
        "{r}"
    );
    assert_eq!(r["logoFieldsShown"], true, "{r}");
    let none = r["none"]["command"].as_str().unwrap();
    assert!(!none.contains("--style"), "{r}");
    let styled = r["styled"]["command"].as_str().unwrap();
    assert!(
        styled.contains(&format!("--style {}", style.display())),
        "{r}"
    );
    assert!(styled.contains("--logo-corner bottom-left"), "{r}");
    assert_eq!(
        (r["pressed"].as_str(), r["pressedAfter"].as_str()),
        (Some("true"), Some("false"))
    );
    // The drawn rectangle is the framing's crop form, and the panel shows
    // it: same place and size (it was snapped to the panel's shape).
    let crop: Vec<f64> = r["cropped"]["framing"]["crop"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let shown = &r["cropped"]["crop"];
    for (i, k) in ["x", "y", "w", "h"].iter().enumerate() {
        assert!(
            (crop[i] - shown[k].as_f64().unwrap()).abs() < 0.02,
            "{k}: drawn {crop:?}, shown {shown}"
        );
    }
    let before_w = r["cropBefore"]["w"].as_f64().unwrap();
    assert!(crop[2] < before_w * 0.6, "a smaller part: {r}");
    assert!(r["command"]
        .as_str()
        .unwrap()
        .starts_with("photodeid collage --cases"));
    assert_eq!(r["unlabelled"], serde_json::json!([]), "{r}");
    // Saved in the manifest's framing column as a crop.
    let manifest = std::fs::read_to_string(photos.join(".photodeid-regions.csv")).unwrap();
    assert!(manifest.contains(",crop "), "{manifest}");
    // The exported collage: the profile's size, the logo bottom-left.
    let case = "Doe_Jane_1961-04-02";
    let line = r["collages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .find(|c| c.starts_with(case))
        .unwrap_or_else(|| panic!("{r}"));
    let rel = line.split(": ").nth(1).unwrap().split(' ').next().unwrap();
    let img = image::open(out.join(rel)).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1080, 1080));
    let p = img.get_pixel(150, 1080 - 90);
    assert!(
        p[0] > 200 && p[1] < 60 && p[2] < 60,
        "logo bottom-left: {p:?}"
    );
    let check = bin().arg("check").arg(out.join(rel)).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    for f in files(&out) {
        assert!(
            !contains(&std::fs::read(&f).unwrap(), b"LOGO-SECRET"),
            "{}",
            f.display()
        );
    }
}

/// The report of `review.mjs` on the sample folder, with the ZIP it
/// downloaded written to `zip` (one run serves every test below).
fn review_run() -> Option<(serde_json::Value, tempfile::TempDir, PathBuf, PathBuf)> {
    if !ready() {
        return None;
    }
    let (d, photos, out) = setup();
    let s = Serve::start(&photos, &out);
    let r = node(
        "review.mjs",
        &[
            &s.url,
            "Smith_John_badge.jpg",
            "Doe_Jane_1961-04-02",
            artifacts().to_str().unwrap(),
        ],
    );
    drop(s);
    Some((r, d, photos, out))
}

/// Thumbnails show the regions as exported; the review shows every ticked
/// photo, redacted; filter and per-case ticking; the ZIP holds exactly the
/// exported files; plain words; a second export is "up to date"; the
/// private results file, outside the output, links both ways.
#[test]
fn review_thumbnails_zip_and_up_to_date() {
    let Some((r, _d, photos, out)) = review_run() else {
        return;
    };
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    // The raw thumbnail shows the photo; the redacted one is filled black there.
    let (raw, red) = (&r["rawThumb"], &r["redactedThumb"]);
    assert_ne!(r["rawSrc"], r["redactedSrc"], "{r}");
    assert!(f(red, "max") < 40.0, "thumbnail not redacted: {r}");
    assert!(
        (f(raw, "mean") - f(red, "mean")).abs() > 30.0,
        "redacted thumbnail looks like the raw one: {r}"
    );
    // Plain words, the timing only in the details line.
    let status = r["previewStatus"].as_str().unwrap();
    assert_eq!(status, "1 area covered, as the export will make it.", "{r}");
    assert!(r["previewTiming"].as_str().unwrap().contains(" ms"), "{r}");
    // Filter: 4 photos; one marked, three need regions; the case's three by name.
    let names = |k: &str| -> Vec<String> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(r["allCards"], 4, "{r}");
    assert_eq!(names("filterMarked"), ["Smith_John_badge.jpg"], "{r}");
    assert_eq!(names("filterNeeds").len(), 3, "{r}");
    assert!(!names("filterNeeds").contains(&"Smith_John_badge.jpg".to_string()));
    let case = names("filterText");
    assert_eq!(case.len(), 3, "{r}");
    assert!(
        case.iter().all(|n| n.starts_with("Doe_Jane_1961-04-02/")),
        "{r}"
    );
    assert_eq!(r["filterCount"], "Showing 3 of 4 files.", "{r}");
    // Per case.
    assert_eq!(names("afterUntickCase"), ["Smith_John_badge.jpg"], "{r}");
    assert_eq!(names("afterTickCase").len(), 4, "{r}");
    let ticked = names("ticked");
    assert_eq!(ticked.len(), 3, "{r}");
    // The review: exactly the ticked photos, loaded, the badge redacted.
    let mut review = names("review");
    review.sort();
    let mut want = ticked.clone();
    want.sort();
    assert_eq!(review, want, "{r}");
    assert_eq!(r["reviewLoaded"], true, "{r}");
    assert!(f(&r["reviewRedacted"], "max") < 40.0, "{r}");
    assert!(
        r["reviewWords"]
            .as_str()
            .unwrap()
            .contains("1 area covered"),
        "{r}"
    );
    for shot in ["review-grid", "review"] {
        for size in ["1280x900", "390x844"] {
            assert!(artifacts().join(format!("{shot}-{size}.png")).is_file());
        }
    }
    // First export: what was done, in a person's terms.
    let first = r["first"].as_array().unwrap();
    assert_eq!(first.len(), 3, "{r}");
    let badge = first
        .iter()
        .find(|x| x["name"] == "Smith_John_badge.jpg")
        .unwrap();
    let words = badge["words"].as_str().unwrap();
    assert!(
        words.starts_with("1 area covered; hidden data removed"),
        "{words}"
    );
    for row in first {
        let w = row["words"].as_str().unwrap();
        assert!(!w.contains("re-encoded") && !w.contains("os error"), "{w}");
        assert!(!w.contains(" ms"), "{w}");
    }
    assert!(
        badge["details"].as_str().unwrap().contains("Re-encoded"),
        "{badge}"
    );
    // The ZIP: exactly the exported files, byte for byte, read by unzip.
    let zip = &r["zip"];
    assert_eq!(zip["status"], 200, "{zip}");
    assert_eq!(zip["type"], "application/zip");
    assert!(zip["disposition"].as_str().unwrap().contains("attachment"));
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(zip["base64"].as_str().unwrap())
        .unwrap();
    let zdir = tempfile::tempdir().unwrap();
    let zpath = zdir.path().join("export.zip");
    std::fs::write(&zpath, &bytes).unwrap();
    let list = Command::new("unzip").arg("-Z1").arg(&zpath).output();
    let exported: Vec<String> = files(&out)
        .iter()
        .map(|p| {
            p.strip_prefix(&out)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    assert_eq!(exported.len(), 3, "{exported:?}");
    let mut outputs: Vec<String> = first
        .iter()
        .map(|x| x["output"].as_str().unwrap().to_string())
        .collect();
    outputs.sort();
    assert_eq!(outputs, exported, "{r}");
    if let Ok(list) = list {
        assert!(list.status.success());
        let mut inside: Vec<String> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        inside.sort();
        assert_eq!(inside, exported, "the ZIP holds exactly the exported files");
        let x = zdir.path().join("x");
        let ok = Command::new("unzip")
            .arg("-q")
            .arg(&zpath)
            .arg("-d")
            .arg(&x)
            .status()
            .unwrap();
        assert!(ok.success());
        for name in &exported {
            assert_eq!(
                std::fs::read(x.join(name)).unwrap(),
                std::fs::read(out.join(name)).unwrap(),
                "{name}"
            );
        }
    }
    assert_eq!(r["zipText"], "Download the 3 exported files (ZIP)", "{r}");
    for secret in [&b"Doe_Jane"[..], b"Smith", b".photodeid"] {
        assert!(!contains(&bytes, secret), "the ZIP carries a private name");
    }
    // Second export: up to date, no copy written.
    let second = r["second"].as_array().unwrap();
    assert_eq!(second.len(), 3, "{r}");
    for row in second {
        let w = row["words"].as_str().unwrap();
        assert!(w.contains("up to date"), "{w}");
    }
    assert_eq!(files(&out).len(), 3, "a re-export wrote a copy");
    assert_eq!(
        r["finished"],
        serde_json::json!([
            "Finished: 3 photos exported.",
            "Finished: 3 photos up to date (exported before in the same way; nothing written again)."
        ]),
        "{r}"
    );
    // The results file: in the photo folder's private state, owner-only,
    // linking input and output both ways; the cards say it after a reload.
    let results = photos.join(".photodeid-results.json");
    let text = std::fs::read_to_string(&results).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = v["exports"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{text}");
    for name in &exported {
        assert!(
            entries.iter().any(|e| e["output"] == name.as_str()),
            "{name}: {text}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&results).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let badge_out = badge["output"].as_str().unwrap();
    assert_eq!(
        r["exportedLine"],
        format!("Exported before as {badge_out}"),
        "{r}"
    );
    assert!(!files(&out)
        .iter()
        .any(|p| p.to_string_lossy().contains("results")));
}

/// Face proposals in the page (tests/browser/faces.mjs): on the portrait the
/// proposed face is where the hand-checked face is (within 3% of the photo),
/// an eye bar alone raises the eyes-only note, accepted proposals are saved
/// regions, copied to the series they land on the other photo's face, and
/// the exported faces are destroyed; on the cat the "No face found" banner
/// shows. Screenshot: `target/browser-artifacts/faces.png`.
#[cfg(feature = "faces")]
mod faces {
    use super::*;

    /// tests/faces.rs's hand-checked face box on the 512 x 512 astronaut.jpg
    /// (x 180-272, y 72-184), scaled by `k`, moved by `at`: centre and size
    /// in fractions of a `size` photo.
    fn hand_face(k: f64, at: (f64, f64), size: (f64, f64)) -> [f64; 4] {
        [
            (at.0 + 226.0 * k) / size.0,
            (at.1 + 128.0 * k) / size.1,
            92.0 * k / size.0,
            112.0 * k / size.1,
        ]
    }

    /// The same face farther away: the portrait at 60% on a 640 x 480 canvas.
    const FAR: (f64, (f64, f64), (f64, f64)) = (0.6, (250.0, 100.0), (640.0, 480.0));

    fn write_farther(src: &Path, dst: &Path) {
        let img = image::open(src).unwrap().to_rgb8();
        let small = image::imageops::resize(&img, 307, 307, image::imageops::FilterType::Triangle);
        let mut canvas = image::RgbImage::from_pixel(640, 480, image::Rgb([120, 124, 130]));
        image::imageops::overlay(&mut canvas, &small, 250, 100);
        canvas.save(dst).unwrap();
    }

    /// A proposed face region (x0, y0, x1, y1 in fractions: the detector's
    /// box grown 1.3x) is where the hand-checked face is: the box's centre
    /// and sides within 3% of the photo. (Centre and size, not edges: the
    /// detector's box starts at the hairline, the hand-checked one at the brow.)
    fn near(region: [f64; 4], hand: [f64; 4], what: &str) {
        let got = [
            (region[0] + region[2]) / 2.0,
            (region[1] + region[3]) / 2.0,
            (region[2] - region[0]) / 1.3,
            (region[3] - region[1]) / 1.3,
        ];
        for (g, w) in got.iter().zip(hand) {
            assert!(
                (g - w).abs() <= 0.03,
                "{what}: centre and size {got:?}, hand-checked {hand:?}"
            );
        }
    }

    /// The exported photo's `inner` box (fractions) is black where `original` was not.
    fn destroyed(original: &image::RgbImage, exported: &Path, inner: [f64; 4]) {
        let after = image::DynamicImage::ImageRgba8(crate::util::upright(exported)).to_rgb8();
        assert_eq!(original.dimensions(), after.dimensions());
        let (diff_in, max_in) = compare(original, &after, inner);
        assert!(max_in < 40, "face not filled (max channel {max_in})");
        assert!(diff_in > 60.0, "face looks like the original ({diff_in})");
    }

    fn fractions(v: &serde_json::Value) -> [f64; 4] {
        let a: Vec<f64> = v
            .as_array()
            .unwrap_or_else(|| panic!("not a box: {v}"))
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        [a[0], a[1], a[2], a[3]]
    }

    #[test]
    fn accept_proposed_face_in_chromium_and_export() {
        if !ready() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let (photos, out) = (d.path().join("photos"), d.path().join("out"));
        let case = photos.join("Doe_Jane");
        std::fs::create_dir_all(&case).unwrap();
        let faces = crate::util::fixtures().join("faces");
        std::fs::copy(faces.join("astronaut.jpg"), case.join("astronaut.jpg")).unwrap();
        write_farther(&faces.join("astronaut.jpg"), &case.join("farther.png"));
        std::fs::copy(faces.join("chelsea.jpg"), photos.join("chelsea.jpg")).unwrap();
        let s = Serve::start(&photos, &out);
        let shot = artifacts().join("faces.png");
        let _ = std::fs::remove_file(&shot);
        let r = node(
            "faces.mjs",
            &[
                &s.url,
                "Doe_Jane/astronaut.jpg",
                "Doe_Jane/farther.png",
                "chelsea.jpg",
                shot.to_str().unwrap(),
            ],
        );
        assert!(shot.exists(), "no screenshot");

        // The cat: the banner, no likely face, nothing to accept.
        let neg = &r["negative"];
        assert!(
            neg["banner"][0]
                .as_str()
                .is_some_and(|b| b.contains("No face found: check the photo yourself")),
            "{neg}"
        );
        assert_eq!(
            (neg["likely"].as_u64(), neg["acceptAll"].as_u64()),
            (Some(0), Some(0)),
            "{neg}"
        );

        // The portrait: one likely face, drawn where the face is.
        assert_eq!(r["likely"], 1, "{}", r["listed"]);
        assert_eq!(r["banner"], 0);
        let got = fractions(&r["faces"][0]["box"]);
        near(
            got,
            hand_face(1.0, (0.0, 0.0), (512.0, 512.0)),
            "face outline",
        );
        // The eye bar lies inside the face region, in its upper part (the
        // region is the box grown 1.3x, so the eyes sit near its middle).
        let eyes = fractions(&r["eyesBox"]);
        assert!(
            eyes[0] >= got[0] && eyes[2] <= got[2],
            "{eyes:?} in {got:?}"
        );
        let upper = got[1] + 0.6 * (got[3] - got[1]);
        assert!(eyes[1] >= got[1] && eyes[3] <= upper, "{eyes:?} in {got:?}");

        // Eyes alone: the note; with the face: no note; both saved.
        let note = &r["eyesOnly"]["note"];
        assert_eq!(r["eyesOnly"]["regions"], 1, "{r}");
        assert!(
            note[0]
                .as_str()
                .is_some_and(|t| t.contains("does not make a face anonymous")),
            "{note}"
        );
        assert_eq!(r["withFace"]["regions"], 2, "{r}");
        assert_eq!(r["withFace"]["note"], 0, "{r}");
        assert_eq!(
            r["afterReload"]["regions"], 2,
            "accepted regions not saved: {r}"
        );
        assert_eq!(r["afterReload"]["note"], 0, "{r}");

        // Copied to the series: the face region lands on the farther face.
        let copy = &r["copy"];
        assert!(
            copy["status"]
                .as_str()
                .unwrap()
                .contains("On 1 of them the regions follow the face"),
            "{copy}"
        );
        let face = copy["regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["shape"] == "ellipse")
            .unwrap_or_else(|| panic!("{copy}"));
        let f = |k: &str| face[k].as_f64().unwrap() / 100.0;
        let copied = [f("x"), f("y"), f("x") + f("w"), f("y") + f("h")];
        near(copied, hand_face(FAR.0, FAR.1, FAR.2), "copied face");

        // The export: the faces are destroyed, the rest is the photo.
        let results = r["export"]["results"].as_array().unwrap();
        let exported = |name: &str| {
            let x = results
                .iter()
                .find(|x| x["name"].as_str().unwrap().ends_with(name))
                .unwrap_or_else(|| panic!("{name}: {results:?}"));
            assert_eq!(x["regions"], 2, "{x}");
            out.join(x["output"].as_str().unwrap())
        };
        let before = image::open(faces.join("astronaut.jpg")).unwrap().to_rgb8();
        // The hand-checked face box, shrunk by a tenth on each side.
        destroyed(
            &before,
            &exported("astronaut.jpg"),
            [0.37, 0.16, 0.51, 0.34],
        );
        let after =
            image::DynamicImage::ImageRgba8(crate::util::upright(&exported("astronaut.jpg")))
                .to_rgb8();
        let (diff_out, _) = compare(&before, &after, [0.7, 0.7, 0.98, 0.98]);
        assert!(diff_out < 8.0, "outside the face changed ({diff_out})");
        let far = image::open(case.join("farther.png")).unwrap().to_rgb8();
        let [cx, cy, _, _] = hand_face(FAR.0, FAR.1, FAR.2);
        destroyed(
            &far,
            &exported("farther.png"),
            [cx - 0.03, cy - 0.05, cx + 0.03, cy + 0.05],
        );
    }
}
