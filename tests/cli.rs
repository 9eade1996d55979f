//! The command line as a person at a terminal or a script meets it: refusals
//! that protect originals, summaries, maps, help, completions, man pages and
//! progress.

use crate::util::*;
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tool the test needs: skipped locally when missing, a failure on CI.
fn tool(name: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{name} missing on CI");
        eprintln!("{name} not installed: check skipped locally");
    }
    ok
}

/// A copy of the dirty fixtures, as a user's folder of photos.
fn photos(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("cases");
    std::fs::create_dir(&p).unwrap();
    for f in ["jpeg_full.jpg", "png_text.png", "webp_meta.webp"] {
        std::fs::copy(fixtures().join("dirty").join(f), p.join(f)).unwrap();
    }
    p
}

#[test]
fn output_that_is_the_input_folder_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let cases = photos(d.path());
    let before = files(&cases);
    let r = run(&["clean", s(&cases), "-o", s(&cases)]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("is the input folder"), "{}", stderr(&r));
    assert_eq!(files(&cases), before, "nothing written among the originals");
    // The input inside the output is the same mix, seen from the other side.
    let r = run(&["clean", s(&cases), "-o", s(d.path())]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("inside the output folder"));
    // A new subfolder of the input is fine: it is never scanned.
    let sub = cases.join("shared");
    let r = run(&["clean", "-q", s(&cases), "-o", s(&sub)]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert_eq!(files(&sub).len(), before.len());
}

#[test]
fn a_missing_input_creates_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let key = d.path().join("key");
    let map = d.path().join("map.csv");
    let r = run(&[
        "clean",
        s(&d.path().join("nosuch")),
        "-o",
        s(&out),
        "--name-key",
        s(&key),
        "--map",
        s(&map),
    ]);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("nosuch"), "{}", stderr(&r));
    for p in [&out, &key, &map] {
        assert!(!p.exists(), "{} was created", p.display());
    }
}

#[test]
fn map_is_extended_by_a_later_run_and_a_foreign_csv_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let cases = photos(d.path());
    let map = d.path().join("map.csv");
    for out in ["o1", "o2"] {
        let r = run(&[
            "clean",
            "-q",
            s(&cases),
            "-o",
            s(&d.path().join(out)),
            "--map",
            s(&map),
        ]);
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    }
    let text = std::fs::read_to_string(&map).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(rdr.headers().unwrap(), vec!["original", "pseudonym"]);
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6, "{text}");
    assert_eq!(text.matches("original,pseudonym").count(), 1, "{text}");
    for out in ["o1", "o2"] {
        assert_eq!(rows.iter().filter(|r| r[1].contains(out)).count(), 3);
    }
    let foreign = d.path().join("budget.csv");
    std::fs::write(&foreign, "item,cost\nlens,300\n").unwrap();
    let r = run(&[
        "clean",
        s(&cases),
        "-o",
        s(&d.path().join("o3")),
        "--map",
        s(&foreign),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("not a photodeid map"), "{}", stderr(&r));
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        "item,cost\nlens,300\n"
    );
    assert!(!d.path().join("o3").exists(), "refused before any work");
}

#[test]
fn check_ends_with_a_summary_line() {
    let d = tempfile::tempdir().unwrap();
    let cases = photos(d.path());
    let out = d.path().join("out");
    assert!(run(&["clean", "-q", s(&cases), "-o", s(&out)])
        .status
        .success());
    let bad = fixtures().join("bad/truncated.jpg");
    let r = run(&["check", s(&cases), s(&out), s(&bad)]);
    assert_eq!(r.status.code(), Some(2));
    let err = stderr(&r);
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last, "photodeid: 3 of 7 files carry identifying content, 1 could not be read",
        "{err}"
    );
    let r = run(&["check", s(&out)]);
    assert!(stderr(&r).contains("none of 3 files carry identifying content"));
}

#[test]
fn thread_option_has_one_default() {
    for sub in ["clean", "watch"] {
        let help = stdout(&run(&[sub, "--help"]));
        let block: String = help
            .split("-j, --threads")
            .nth(1)
            .unwrap()
            .lines()
            .take_while(|l| !l.trim_start().starts_with('-'))
            .collect();
        assert_eq!(block.matches("default").count(), 1, "{sub}: {block}");
    }
}

#[test]
fn an_error_says_its_cause_once() {
    let d = tempfile::tempdir().unwrap();
    let inbox = d.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let blocker = d.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let r = run(&[
        "watch",
        s(&inbox),
        "-o",
        s(&d.path().join("out")),
        "--failed",
        s(&blocker.join("failed")),
        "--once",
    ]);
    assert_eq!(r.status.code(), Some(2));
    let err = stderr(&r);
    assert!(err.contains("cannot create folder"), "{err}");
    // The OS error once, in words, without its number.
    assert_eq!(
        err.matches("a part of the path is a file, not a folder")
            .count(),
        1,
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
}

#[test]
fn help_shows_examples_that_run() {
    let help = stdout(&run(&["--help"]));
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("photodeid clean photo.jpg -o shared.jpg"));
}

#[test]
fn bash_completion_loads_and_knows_the_subcommands() {
    let r = run(&["completions", "bash"]);
    assert!(r.status.success());
    let script = stdout(&r);
    for sub in ["clean", "check", "collage", "serve", "watch"] {
        assert!(script.contains(sub), "{sub}");
    }
    if !tool("bash") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("photodeid.bash");
    std::fs::write(&f, &script).unwrap();
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p photodeid", s(&f)))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("photodeid"));
    assert!(run(&["completions", "tcsh"]).status.code() == Some(2));
}

#[test]
fn man_pages_render_for_every_subcommand() {
    let d = tempfile::tempdir().unwrap();
    let r = run(&["man", s(d.path())]);
    assert!(r.status.success(), "{}", stderr(&r));
    let mut names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "photodeid-check.1",
            "photodeid-clean.1",
            "photodeid-collage.1",
            "photodeid-completions.1",
            "photodeid-detect.1",
            "photodeid-keygen.1",
            "photodeid-merge.1",
            "photodeid-plan.1",
            "photodeid-serve.1",
            "photodeid-watch.1",
            "photodeid.1"
        ]
    );
    if !tool("man") {
        return;
    }
    let page = Command::new("man")
        .args(["-l", s(&d.path().join("photodeid-clean.1"))])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let text = stdout(&page);
    assert!(page.status.success(), "{}", stderr(&page));
    assert!(
        text.contains("--overwrite") && text.contains("--map"),
        "{text}"
    );
}

#[test]
fn json_progress_for_machines_and_no_bar_in_a_pipe() {
    let d = tempfile::tempdir().unwrap();
    let cases = photos(d.path());
    let r = run(&["clean", "--json", s(&cases), "-o", s(&d.path().join("o"))]);
    assert!(r.status.success(), "{}", stderr(&r));
    let progress: Vec<serde_json::Value> = stderr(&r)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("progress").cloned())
        .collect();
    let last = progress.last().expect("a progress object on stderr");
    assert_eq!(
        (last["done"].as_u64(), last["total"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(last["per_sec"].is_number() && last["eta_s"].is_number());
    // stdout stays one object per file plus the summary.
    assert_eq!(stdout(&r).lines().count(), 4);
    let r = run(&["clean", s(&cases), "-o", s(&d.path().join("p"))]);
    let err = stderr(&r);
    assert!(!err.contains('\r') && !err.contains("progress"), "{err}");
}

#[test]
fn a_terminal_sees_a_bar_with_rate_and_time_left() {
    if !tool("script") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let cases = photos(d.path());
    // Enough files that the bar is drawn at least once.
    for i in 0..40 {
        std::fs::copy(
            fixtures().join("dirty/jpeg_full.jpg"),
            cases.join(format!("x{i}.jpg")),
        )
        .unwrap();
    }
    let cmd = format!(
        "{} clean -q -j1 {} -o {} 2>&1 >/dev/null; {} check -q {} >/dev/null",
        env!("CARGO_BIN_EXE_photodeid"),
        s(&cases),
        s(&d.path().join("o")),
        env!("CARGO_BIN_EXE_photodeid"),
        s(&cases),
    );
    // -q hides the bar; without it, a pty (script) shows one.
    let quiet = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let quiet_out = stdout(&quiet);
    assert!(!quiet_out.contains("/43"), "-q drew a bar: {quiet_out}");
    let loud = cmd.replace(" -q", "");
    let r = Command::new("script")
        .args(["-qec", &loud, "/dev/null"])
        .output()
        .unwrap();
    let out = stdout(&r);
    assert!(out.contains("/43 files"), "no count: {out}");
    assert!(out.contains("carry identifying content"), "{out}");
    assert!(
        out.contains("/s") && out.contains("left"),
        "no rate or time left: {out}"
    );
}

#[test]
fn watch_once_and_case_collages_show_a_bar_at_a_terminal() {
    if !tool("script") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let inbox = d.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let cases = d.path().join("cases");
    for i in 0..6 {
        // Six different photos: watch names by content.
        let src = fixtures().join(format!("dirty/jpeg_orient_{}.jpg", i + 1));
        std::fs::copy(&src, inbox.join(format!("p{i}.jpg"))).unwrap();
        let case = cases.join(format!("case{i}"));
        std::fs::create_dir_all(&case).unwrap();
        std::fs::copy(&src, case.join("a.jpg")).unwrap();
    }
    let bin = env!("CARGO_BIN_EXE_photodeid");
    let cmd = format!(
        "{bin} watch {} -o {} --once --settle 10ms 2>&1; {bin} collage --cases {} -o {} 2>&1",
        s(&inbox),
        s(&d.path().join("outbox")),
        s(&cases),
        s(&d.path().join("collages")),
    );
    let r = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let out = stdout(&r);
    assert!(out.contains("/6 files"), "no watch bar: {out}");
    assert!(out.contains("/6 cases"), "no collage bar: {out}");
    assert_eq!(files(&d.path().join("outbox")).len(), 6, "{out}");
}

/// The unit's `Key=` values (continuation lines joined).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.replace("\\\n", " ")
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_service_unit_verifies_and_its_exact_command_cleans_a_photo() {
    let unit_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/photodeid-watch.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(unit.contains("UMask=0007") && unit.contains("StateDirectory=photodeid"));
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("srv");
    let state = d.path().join("state");
    let bin = env!("CARGO_BIN_EXE_photodeid");
    let local = |v: &str| {
        v.replace("/usr/local/bin/photodeid", bin)
            .replace("/srv/photos", s(&root))
            .replace("/var/lib/photodeid", s(&state))
    };
    if tool("systemd-analyze") {
        // The binary must exist where the unit says: verify a copy pointing at ours.
        let copy = d.path().join("photodeid-watch.service");
        std::fs::write(&copy, unit.replace("/usr/local/bin/photodeid", bin)).unwrap();
        // Documentation=man:photodeid-watch(1) is checked too: our pages, as installed.
        let man = d.path().join("man");
        assert!(run(&["man", s(&man.join("man1"))]).status.success());
        let v = Command::new("systemd-analyze")
            .args(["verify", s(&copy)])
            .env("MANPATH", &man)
            .output()
            .unwrap();
        let err = stderr(&v);
        let own: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("photodeid-watch"))
            .collect();
        assert!(
            v.status.success() && own.is_empty(),
            "systemd-analyze verify: {err}"
        );
    }
    // As root on CI the unit's user is made and the command runs as it
    // (setpriv); elsewhere it runs as whoever runs the tests.
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| stdout(&o).trim() == "0");
    let as_unit_user = as_root && std::env::var_os("CI").is_some() && tool("setpriv");
    if as_unit_user {
        let exists = Command::new("id")
            .arg("photodeid")
            .output()
            .unwrap()
            .status
            .success();
        if !exists {
            let made = Command::new("useradd")
                .args(["--system", "--user-group", "--no-create-home", "photodeid"])
                .status()
                .unwrap();
            assert!(made.success(), "useradd photodeid");
        }
        // The unit's user must be able to reach the temp folder.
        std::fs::set_permissions(
            d.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    std::fs::create_dir_all(&state).unwrap();
    for pre in unit_values(&unit, "ExecStartPre") {
        let mut argv: Vec<String> = local(pre.trim_start_matches('+'))
            .split_whitespace()
            .map(String::from)
            .collect();
        if !as_unit_user {
            // -o/-g photodeid need that user: keep the modes, drop the owner.
            while let Some(i) = argv.iter().position(|a| a == "-o" || a == "-g") {
                argv.drain(i..i + 2);
            }
        }
        let ok = Command::new(&argv[0]).args(&argv[1..]).status().unwrap();
        assert!(ok.success(), "{argv:?}");
    }
    if as_unit_user {
        let ok = Command::new("chown")
            .args(["photodeid:photodeid", s(&state)])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let inbox = root.join("inbox");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&inbox).unwrap().permissions());
    assert_eq!(mode & 0o7777, 0o2770, "setgid, group-writable inbox");
    std::fs::copy(
        fixtures().join("dirty/jpeg_full.jpg"),
        inbox.join("Doe_Jane.jpg"),
    )
    .unwrap();
    let start = unit_values(&unit, "ExecStart").pop().expect("ExecStart");
    let argv: Vec<String> = local(&start).split_whitespace().map(String::from).collect();
    let mut cmd = if as_unit_user {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            "photodeid",
            "--regid",
            "photodeid",
            "--init-groups",
        ]);
        c.args(&argv);
        c
    } else {
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    let log = d.path().join("log.txt");
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let outbox = root.join("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while files(&outbox).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    let out = files(&outbox);
    assert_eq!(out.len(), 1, "{text}");
    assert!(root.join("done/Doe_Jane.jpg").exists(), "{text}");
    let check = run(&["check", s(&out[0])]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
}

/// The sample cases with file names that sort against capture order:
/// `Doe/z.jpg` was taken first, `Doe/a.jpg` last.
fn nested_cases(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("cases");
    let doe = root.join("Doe_Jane_1961-04-02");
    let smith = root.join("Smith_John");
    std::fs::create_dir_all(&doe).unwrap();
    std::fs::create_dir_all(&smith).unwrap();
    let sample = fixtures().join("sample");
    for (from, to) in [
        ("IMG_2021-03-04_before.jpg", "z.jpg"),
        ("IMG_2021-09-10_during.jpg", "m.jpg"),
        ("IMG_2022-06-01_after.jpg", "a.jpg"),
    ] {
        std::fs::copy(sample.join("Doe_Jane_1961-04-02").join(from), doe.join(to)).unwrap();
    }
    for f in ["2020-01-15_wound_left_leg.png", "IMG_20200301_rotated.jpg"] {
        std::fs::copy(sample.join("Smith_John").join(f), smith.join(f)).unwrap();
    }
    root
}

/// The map's rows, original -> output.
fn map_rows(map: &Path) -> Vec<(String, String)> {
    let mut rdr = csv::Reader::from_path(map).unwrap();
    assert_eq!(rdr.headers().unwrap(), vec!["original", "pseudonym"]);
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].to_string())
        })
        .collect()
}

fn relative_files(dir: &Path) -> Vec<String> {
    files(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn nested_input_becomes_case_folders_under_pseudonyms_in_capture_order() {
    let d = tempfile::tempdir().unwrap();
    let cases = nested_cases(d.path());
    let (out, map) = (d.path().join("out"), d.path().join("map.csv"));
    let r = run(&["clean", s(&cases), "-o", s(&out), "--map", s(&map)]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let outs = relative_files(&out);
    assert_eq!(outs.len(), 5, "{outs:?}");
    for o in &outs {
        for needle in [
            // Dates as the originals spell them: a bare "2021" can turn up
            // in a random hex pseudonym.
            "Doe", "Jane", "1961-04", "Smith", "wound", "IMG", "2021-03", "2020-01", "20200301",
        ] {
            assert!(!o.contains(needle), "{o} carries {needle}");
        }
    }
    // The map links each original to its output and back, one to one.
    let rows = map_rows(&map);
    assert_eq!(rows.len(), 5);
    let output_of = |name: &str| -> std::path::PathBuf {
        let hits: Vec<_> = rows.iter().filter(|(i, _)| i.ends_with(name)).collect();
        assert_eq!(hits.len(), 1, "{name}: {rows:?}");
        std::path::PathBuf::from(&hits[0].1)
    };
    let mut seen: Vec<&String> = rows.iter().map(|(_, o)| o).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "no output named twice");
    let (z, m, a) = (
        output_of("Doe_Jane_1961-04-02/z.jpg"),
        output_of("Doe_Jane_1961-04-02/m.jpg"),
        output_of("Doe_Jane_1961-04-02/a.jpg"),
    );
    let png = output_of("Smith_John/2020-01-15_wound_left_leg.png");
    let case = |p: &Path| p.parent().unwrap().to_path_buf();
    assert_eq!(case(&z), case(&m));
    assert_eq!(case(&z), case(&a));
    assert_ne!(case(&z), case(&png), "one folder per case");
    let folder = case(&z).file_name().unwrap().to_string_lossy().into_owned();
    let hex = folder.strip_prefix("case-").unwrap();
    assert!(
        hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{folder}"
    );
    // Taken first sorts first, whatever the original names say.
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let mut order = vec![name(&a), name(&m), name(&z)];
    order.sort();
    assert_eq!(order, [name(&z), name(&m), name(&a)]);
    assert!(name(&z).starts_with("001-") && name(&a).starts_with("003-"));
    // ... and no output carries the date that ordered it.
    if tool("exiftool") {
        let o = Command::new("exiftool")
            .args(["-s", "-DateTimeOriginal", "-CreateDate"])
            .args([&z, &m, &a])
            .output()
            .unwrap();
        // Only tag lines count: the `========` file headers carry the random
        // case folder name, which may well contain "20".
        let text = stdout(&o);
        let tags: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("========") && !l.contains("image files read"))
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(tags.is_empty(), "dates survived: {tags:?}");
    }
}

#[test]
fn cleaning_twice_finds_every_output_up_to_date() {
    let d = tempfile::tempdir().unwrap();
    let cases = nested_cases(d.path());
    let out = d.path().join("out");
    let first = run(&["clean", s(&cases), "-o", s(&out)]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = files(&out)
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let again = run(&["clean", s(&cases), "-o", s(&out)]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let after: Vec<(std::path::PathBuf, Vec<u8>)> = files(&out)
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    assert_eq!(before, after, "the same files, no copy");
    let lines: Vec<&str> = std::str::from_utf8(&again.stdout)
        .unwrap()
        .lines()
        .collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(
        lines.iter().all(|l| l.ends_with(": up to date")),
        "{lines:?}"
    );
    assert!(
        stderr(&again).contains("5 already up to date"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn random_names_differ_between_runs_and_need_no_key() {
    let d = tempfile::tempdir().unwrap();
    let cases = nested_cases(d.path());
    let data = d.path().join("data");
    let names = |out: &str| {
        let o = d.path().join(out);
        let r = bin()
            .env("XDG_DATA_HOME", &data)
            .args(["clean", "-q", "--random-names", s(&cases), "-o", s(&o)])
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        relative_files(&o)
    };
    let (one, two) = (names("o1"), names("o2"));
    assert_eq!(one.len(), 5);
    assert!(one.iter().all(|n| !two.contains(n)), "{one:?} {two:?}");
    // Still laid out: case folders, capture ranks.
    assert!(
        one.iter()
            .all(|n| n.starts_with("case-") && n.contains("/00")),
        "{one:?}"
    );
    assert!(!data.exists(), "no key made for one-off names");
}

#[test]
fn flat_keeps_one_folder_of_pseudonyms() {
    let d = tempfile::tempdir().unwrap();
    let cases = nested_cases(d.path());
    let out = d.path().join("out");
    let r = run(&["clean", "-q", "--flat", s(&cases), "-o", s(&out)]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let outs = files(&out);
    assert_eq!(outs.len(), 5);
    for p in &outs {
        assert_eq!(p.parent().unwrap(), out);
        let stem = p.file_stem().unwrap().to_str().unwrap();
        assert!(
            stem.len() == 32 && stem.chars().all(|c| c.is_ascii_hexdigit()),
            "{stem}"
        );
    }
}

#[test]
fn the_default_name_key_is_made_once_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let cases = nested_cases(d.path());
    let data = d.path().join("data");
    let clean = |out: &str, extra: &[&str]| {
        let r = bin()
            .env("XDG_DATA_HOME", &data)
            .args(["clean", s(&cases), "-o", s(&d.path().join(out))])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
        (stderr(&r), relative_files(&d.path().join(out)))
    };
    let key = data.join("photodeid/name.key");
    let (log, first) = clean("o1", &[]);
    assert!(
        log.contains(&format!("created a name key in {}", key.display())),
        "{log}"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    let (log, second) = clean("o2", &[]);
    assert!(!log.contains("name key"), "printed once: {log}");
    assert_eq!(first, second, "the same key, the same names");
    let other = d.path().join("other.key");
    let (_, third) = clean("o3", &["--name-key", s(&other)]);
    assert!(
        first.iter().all(|n| !third.contains(n)),
        "another key, other names"
    );
}

#[test]
fn a_case_collage_lands_beside_its_photos() {
    let d = tempfile::tempdir().unwrap();
    let cases = nested_cases(d.path());
    let out = d.path().join("out");
    let r = run(&["clean", "-q", s(&cases), "-o", s(&out)]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let c = run(&["collage", "--cases", s(&cases), "-o", s(&out)]);
    assert_eq!(c.status.code(), Some(0), "{}", stderr(&c));
    let outs = relative_files(&out);
    let collages: Vec<&String> = outs.iter().filter(|n| n.contains("collage-")).collect();
    assert_eq!(collages.len(), 2, "{outs:?}");
    for col in &collages {
        let (dir, name) = col.split_once('/').unwrap();
        assert!(name.ends_with(".jpg"), "{name}");
        let photos = outs
            .iter()
            .filter(|n| n.starts_with(&format!("{dir}/0")))
            .count();
        assert!(photos >= 2, "{col} beside its case's photos: {outs:?}");
    }
    let again = run(&["collage", "--cases", s(&cases), "-o", s(&out)]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(
        stdout(&again).matches("up to date").count(),
        2,
        "{}",
        stdout(&again)
    );
    assert_eq!(relative_files(&out), outs, "no second copy");
}

/// Runs `photodeid ARGS` with stdout and stderr pipes whose reading ends are
/// closed before it writes, as `photodeid … 2>&1 | grep -q word` leaves them.
fn with_closed_pipes(args: &[&str]) -> std::process::ExitStatus {
    use std::process::Stdio;
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().unwrap()
}

#[test]
fn a_reader_that_goes_away_neither_crashes_nor_changes_the_answer() {
    let d = tempfile::tempdir().unwrap();
    let cases = photos(d.path());
    let out = d.path().join("out");
    // `clean` finishes the batch and says it went well (a panic is 101).
    let st = with_closed_pipes(&["clean", s(&cases), "-o", s(&out), "--json", "--verbose"]);
    assert_eq!(st.code(), Some(0), "clean with closed pipes: {st}");
    assert_eq!(files(&out).len(), 3, "every photo still cleaned");
    // `check` still fails on the originals (a closed stdout is not "all clean")
    // and passes on the cleaned copies.
    let st = with_closed_pipes(&["check", s(&cases), "--json"]);
    assert_eq!(
        st.code(),
        Some(1),
        "check of originals with closed pipes: {st}"
    );
    let st = with_closed_pipes(&["check", s(&cases)]);
    assert_eq!(
        st.code(),
        Some(1),
        "check (text) of originals with closed pipes: {st}"
    );
    let st = with_closed_pipes(&["check", s(&out)]);
    assert_eq!(
        st.code(),
        Some(0),
        "check of the outputs with closed pipes: {st}"
    );
    // A usage error still says so by its code.
    let st = with_closed_pipes(&["check", s(&d.path().join("missing"))]);
    assert_eq!(st.code(), Some(2), "check of a missing folder: {st}");
}
