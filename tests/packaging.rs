//! What ships beside the binary: the launchd and Windows task files (well
//! formed, running the README's command line), and `--on-failure`.

use crate::util::{bin, files, fixtures, stderr};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

fn parse(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

/// The launchd job's ProgramArguments.
fn plist_args(text: &str) -> Vec<String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).expect("well-formed plist");
    let dict = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("dict"))
        .expect("dict");
    let elems: Vec<_> = dict.children().filter(|n| n.is_element()).collect();
    let at = elems
        .iter()
        .position(|n| n.has_tag_name("key") && n.text() == Some("ProgramArguments"))
        .expect("ProgramArguments");
    let array = elems[at + 1];
    assert!(array.has_tag_name("array"));
    array
        .children()
        .filter(|n| n.has_tag_name("string"))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect()
}

/// The scheduled task's command and arguments.
fn task_command(text: &str) -> (String, String) {
    let doc = roxmltree::Document::parse(text).expect("well-formed task XML");
    let find = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or_else(|| panic!("no <{name}>"))
            .to_string()
    };
    (find("Command"), find("Arguments"))
}

/// Runs `photodeid ARGS` with the inbox and outbox swapped for fresh
/// folders holding one sample photo: the scheduled command line must work.
fn runs_on_a_fresh_tree(args: &[String], inbox: &str, outbox: &str) {
    let d = tempfile::tempdir().unwrap();
    let (i, o) = (d.path().join("inbox"), d.path().join("outbox"));
    std::fs::create_dir_all(&i).unwrap();
    std::fs::copy(
        fixtures().join("sample/Doe_Jane_1961-04-02/IMG_2021-03-04_before.jpg"),
        i.join("a.jpg"),
    )
    .unwrap();
    let args: Vec<PathBuf> = args
        .iter()
        .map(|a| match a.as_str() {
            x if x == inbox => i.clone(),
            x if x == outbox => o.clone(),
            x => PathBuf::from(x),
        })
        .collect();
    let out = bin().args(&args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    assert_eq!(files(&o).len(), 1, "{args:?}");
}

#[test]
fn launchd_plist_runs_the_documented_command() {
    let text = parse("scripts/photodeid-watch.plist");
    assert!(
        text.contains("UNTESTED"),
        "the plist must say it is untested"
    );
    let args = plist_args(&text);
    assert_eq!(args[0], "/usr/local/bin/photodeid");
    let line = args.join(" ");
    assert!(readme().contains(&line), "README does not document: {line}");
    runs_on_a_fresh_tree(
        &args[1..],
        "/Users/Shared/photos/inbox",
        "/Users/Shared/photos/outbox",
    );
}

#[test]
fn windows_task_runs_the_documented_command() {
    let text = parse("scripts/photodeid-watch-task.xml");
    assert!(
        text.contains("UNTESTED"),
        "the task must say it is untested"
    );
    let (command, arguments) = task_command(&text);
    assert_eq!(command, r"C:\Program Files\photodeid\photodeid.exe");
    let line = format!("\"{command}\" {arguments}");
    assert!(readme().contains(&line), "README does not document: {line}");
    let args: Vec<String> = arguments.split_whitespace().map(String::from).collect();
    runs_on_a_fresh_tree(&args, r"C:\Photos\inbox", r"C:\Photos\outbox");
}

#[test]
fn deb_metadata_names_files_that_exist() {
    let toml = parse("Cargo.toml");
    let deb = toml
        .split("[package.metadata.deb]")
        .nth(1)
        .expect("[package.metadata.deb]");
    let mut n = 0;
    for line in deb.lines().filter(|l| l.trim_start().starts_with("[\"")) {
        let src = line.trim_start().trim_start_matches("[\"");
        let src = &src[..src.find('"').unwrap()];
        n += 1;
        // target/ is made by scripts/package.sh.
        if !src.starts_with("target/") {
            assert!(repo().join(src).is_file(), "asset {src} missing");
        }
    }
    assert!(n >= 8, "only {n} assets");
    for script in ["postinst", "prerm", "postrm"] {
        let p = repo().join("scripts/deb").join(script);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{script}");
        assert!(text.contains("#DEBHELPER#"), "{script}");
        let o = std::process::Command::new("sh")
            .arg("-n")
            .arg(&p)
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}: {}", stderr(&o));
    }
}

/// A file with a photo's name that is no photo: it fails, in clean and watch.
fn bad_photo(dir: &Path) -> PathBuf {
    let p = dir.join("Doe_Jane_scan.jpg");
    std::fs::write(&p, b"%PDF-1.4 not a photo at all").unwrap();
    p
}

fn hook_cmd(log: &Path) -> String {
    format!(
        "printf '%s|%s|%s\\n' \"$1\" \"$2\" \"$PHOTODEID_PSEUDONYM\" >> '{}'",
        log.display()
    )
}

fn check_log(log: &Path, dir: &Path) {
    let text = std::fs::read_to_string(log).expect("the hook ran");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let parts: Vec<&str> = lines[0].split('|').collect();
    assert_eq!(parts.len(), 3, "{text}");
    assert_eq!(parts[0].len(), 32, "a pseudonym: {text}");
    assert!(parts[0].chars().all(|c| c.is_ascii_hexdigit()), "{text}");
    assert_eq!(parts[0], parts[2]);
    assert!(parts[1].contains("PDF"), "the reason: {text}");
    assert!(!text.contains("Doe_Jane"), "original name leaked: {text}");
    assert!(
        !text.contains(&dir.display().to_string()),
        "path leaked: {text}"
    );
}

#[test]
fn on_failure_runs_with_pseudonym_and_reason_in_clean() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    bad_photo(&input);
    std::fs::copy(
        fixtures().join("dirty/jpeg_full.jpg"),
        input.join("good.jpg"),
    )
    .unwrap();
    let log = d.path().join("hook.log");
    let o = bin()
        .arg("clean")
        .arg(&input)
        .arg("-o")
        .arg(d.path().join("out"))
        .arg("--name-key")
        .arg(d.path().join("key"))
        .arg("--on-failure")
        .arg(hook_cmd(&log))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    check_log(&log, &input);
}

#[test]
fn on_failure_runs_with_pseudonym_and_reason_in_watch() {
    let d = tempfile::tempdir().unwrap();
    let inbox = d.path().join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let bad = bad_photo(&inbox);
    // Old enough to be settled at once.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&bad)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let log = d.path().join("hook.log");
    let o = bin()
        .arg("watch")
        .arg(&inbox)
        .arg("-o")
        .arg(d.path().join("outbox"))
        .args(["--once", "--settle", "0s", "--on-failure"])
        .arg(hook_cmd(&log))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    check_log(&log, &inbox);
}
