//! Sharded runs: the shard algebra, N processes against one, duplicate
//! attempts, kill -9 and resume with another N, the scheduler environment,
//! merge's refusals, and what a manifest run lets into its logs.

use crate::util::{bin, fixtures, stderr, stdout};
use photodeid::shard::select::{self, Selection};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A corpus under identifying folder names: every fixture twice (duplicates
/// across folders), one made unique by a trailing byte, and a corrupt file.
fn corpus(root: &Path) -> PathBuf {
    let input = root.join("PATIENT-Smith-1234");
    for (i, sub) in ["ward-A", "ward-B"].iter().enumerate() {
        let d = input.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        for f in std::fs::read_dir(fixtures().join("dirty")).unwrap() {
            let f = f.unwrap().path();
            let name = format!("Smith_{}", f.file_name().unwrap().to_string_lossy());
            std::fs::copy(&f, d.join(name)).unwrap();
        }
        if i == 1 {
            let mut b = std::fs::read(fixtures().join("dirty/jpeg_full.jpg")).unwrap();
            b.extend_from_slice(b"unique tail");
            std::fs::write(d.join("Smith_unique.jpg"), b).unwrap();
            std::fs::write(d.join("Smith_corrupt.jpg"), b"not a photo at all").unwrap();
        }
    }
    input
}

struct Run {
    dir: tempfile::TempDir,
    input: PathBuf,
    key: PathBuf,
    run: PathBuf,
    manifest: PathBuf,
}

impl Run {
    fn new(chunk_size: u64) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path());
        let key = dir.path().join("key");
        let k = bin().args(["keygen", s(&key)]).output().unwrap();
        assert!(k.status.success(), "{}", stderr(&k));
        let run = dir.path().join("run");
        let manifest = run.join("manifest.tsv");
        let p = bin()
            .current_dir(dir.path())
            .args([
                "plan",
                "PATIENT-Smith-1234",
                "-o",
                "run/manifest.tsv",
                "--chunk-size",
            ])
            .arg(chunk_size.to_string())
            .output()
            .unwrap();
        assert!(p.status.success(), "{}", stderr(&p));
        Run {
            dir,
            input,
            key,
            run,
            manifest,
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn clean(&self, extra: &[&str]) -> Command {
        let mut c = bin();
        c.current_dir(self.dir.path()).args([
            "clean",
            "--manifest",
            "run/manifest.tsv",
            "-o",
            "out",
            "--name-key",
            "key",
        ]);
        c.args(extra);
        c
    }

    fn merge(&self, extra: &[&str]) -> Output {
        bin()
            .current_dir(self.dir.path())
            .args(["merge", "--run-dir", "run"])
            .args(extra)
            .output()
            .unwrap()
    }

    /// The same files cleaned by one ordinary run, same key, in `name`/.
    fn single(&self, name: &str) -> (PathBuf, Vec<u8>) {
        let here = self.dir.path().join(name);
        std::fs::create_dir_all(&here).unwrap();
        let link = here.join("PATIENT-Smith-1234");
        std::os::unix::fs::symlink(&self.input, &link).unwrap();
        let r = bin()
            .current_dir(&here)
            .args([
                "clean",
                "--flat", // sharded runs keep flat keyed names
                "PATIENT-Smith-1234",
                "-o",
                "out",
                "--map",
                "map.csv",
                "--name-key",
            ])
            .arg(&self.key)
            .output()
            .unwrap();
        assert_eq!(
            r.status.code(),
            Some(1),
            "the corrupt file fails: {}",
            stderr(&r)
        );
        (
            here.join("out"),
            std::fs::read(here.join("map.csv")).unwrap(),
        )
    }

    fn chunks(&self) -> u64 {
        photodeid::shard::manifest::Manifest::open(&self.manifest)
            .unwrap()
            .chunks()
    }

    fn done(&self) -> Vec<u64> {
        let Ok(dir) = std::fs::read_dir(self.run.join("chunks")) else {
            return Vec::new();
        };
        let mut v: Vec<u64> = dir
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.strip_suffix(".done.json").and_then(|c| c.parse().ok())
            })
            .collect();
        v.sort();
        v
    }
}

/// Every file below `dir`, relative, with its bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    crate::util::files(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn assert_same_as_single(r: &Run, name: &str) {
    let m = r.merge(&["--verify"]);
    assert!(m.status.success(), "merge: {}", stderr(&m));
    let (single_out, single_map) = r.single(name);
    let merged = std::fs::read(r.run.join("map.csv")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&merged),
        String::from_utf8_lossy(&single_map),
        "merged map equals the single-machine map"
    );
    let (a, b) = (tree(&r.out()), tree(&single_out));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len());
    assert!(a == b, "outputs equal byte for byte");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// For any number of chunks and shards: the shards' selections are
    /// disjoint and cover every chunk once.
    #[test]
    fn shards_are_disjoint_and_cover(total in 0u64..400, n in 1u64..70) {
        let mut seen = vec![0u32; total as usize];
        for k in 0..n {
            let sel = Selection::Shard { k, n };
            for c in sel.chunks(total).unwrap() {
                seen[c as usize] += 1;
                prop_assert!(sel.contains(c), "chunk {} in shard {}/{}", c, k, n);
            }
        }
        prop_assert!(seen.iter().all(|&x| x == 1));
    }

    /// A listed selection round-trips through the Slurm syntax merge prints.
    #[test]
    fn chunk_lists_round_trip(ids in proptest::collection::btree_set(0u64..500, 1..60)) {
        let text = select::format_ranges(ids.iter().copied());
        let parsed = select::parse_chunk_list(&text).unwrap();
        let back: Vec<u64> = Selection::Chunks(parsed).chunks(500).unwrap();
        prop_assert_eq!(back, ids.into_iter().collect::<Vec<_>>());
    }
}

/// Chunk ids depend on the manifest and chunk size only: whatever N, the
/// entries of chunk c are the same, and every entry is in exactly one chunk.
#[test]
fn chunk_ids_do_not_depend_on_the_shard_count() {
    let r = Run::new(4);
    let m = photodeid::shard::manifest::Manifest::open(&r.manifest).unwrap();
    let by_chunk: Vec<Vec<u64>> = (0..m.chunks())
        .map(|c| {
            m.chunk_entries(c)
                .unwrap()
                .iter()
                .map(|e| e.index)
                .collect()
        })
        .collect();
    for n in 1..=7 {
        let mut got = vec![Vec::new(); m.chunks() as usize];
        for k in 0..n {
            for c in (Selection::Shard { k, n }).chunks(m.chunks()).unwrap() {
                got[c as usize] = m
                    .chunk_entries(c)
                    .unwrap()
                    .iter()
                    .map(|e| e.index)
                    .collect();
            }
        }
        assert_eq!(got, by_chunk, "N = {n}");
    }
    let all: Vec<u64> = by_chunk.concat();
    assert_eq!(all, (0..m.entries).collect::<Vec<_>>());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&r.manifest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the manifest names originals");
        let mode = std::fs::metadata(&r.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn four_concurrent_shards_equal_one_run() {
    let r = Run::new(5);
    let children: Vec<_> = (0..4)
        .map(|k| {
            r.clean(&["--shard", &format!("{k}/4"), "-j", "2", "-q"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut failed_somewhere = 0;
    for c in children {
        let o = c.wait_with_output().unwrap();
        // Exit 1 only in the shard holding the corrupt file.
        match o.status.code() {
            Some(0) => {}
            Some(1) => failed_somewhere += 1,
            other => panic!("{other:?}: {}", stderr(&o)),
        }
    }
    assert_eq!(failed_somewhere, 1);
    assert_eq!(r.done(), (0..r.chunks()).collect::<Vec<_>>());
    assert_same_as_single(&r, "single");
    // The merged failed list names the corrupt file, privately.
    let failed = std::fs::read_to_string(r.run.join("failed.tsv")).unwrap();
    assert!(failed.contains("Smith_corrupt.jpg"), "{failed}");
}

#[test]
fn duplicate_attempts_of_the_same_chunks_agree() {
    let r = Run::new(3);
    // Three attempts of all chunks at once, as a scheduler retrying or
    // duplicating tasks would start them.
    let children: Vec<_> = (0..3)
        .map(|_| {
            r.clean(&["--shard", "0/1", "-q"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        let err = stderr(&o);
        // An attempt may find the corrupt file's chunk done by another and skip it.
        assert!(matches!(o.status.code(), Some(0 | 1)), "{err}");
        assert!(!err.contains("output exists"), "{err}");
        assert!(
            err.matches("failed:").count() <= 1,
            "only the corrupt file fails: {err}"
        );
    }
    // Once more, sequentially: everything is skipped.
    let again = r.clean(&["--shard", "0/1"]).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stderr(&again).contains("done already"));
    assert!(
        !stdout(&again).contains("chunk"),
        "nothing redone: {}",
        stdout(&again)
    );
    assert_same_as_single(&r, "single");
}

#[test]
fn killed_then_resumed_with_another_shard_count() {
    let r = Run::new(1);
    let total = r.chunks();
    let mut child = r
        .clean(&["--shard", "0/1", "-j", "1", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // SIGKILL as soon as the first chunk is done: mid-run, mid-chunk likely.
    loop {
        if !r.done().is_empty() || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before = r.done();
    assert!(!done_before.is_empty());
    let m = r.merge(&[]);
    if (done_before.len() as u64) < total {
        assert_eq!(m.status.code(), Some(1), "{}", stderr(&m));
        let missing: Vec<u64> = (0..total).filter(|c| !done_before.contains(c)).collect();
        let listed = std::fs::read_to_string(r.run.join("missing.txt")).unwrap();
        assert_eq!(
            listed.trim(),
            select::format_ranges(missing.iter().copied())
        );
        assert!(stderr(&m).contains(listed.trim()), "{}", stderr(&m));
    }
    // Resume with three shards: finished chunks are skipped, the rest done.
    let mut skipped = 0;
    for k in 0..3 {
        let o = r.clean(&["--shard", &format!("{k}/3")]).output().unwrap();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        skipped += stderr(&o).matches("done already").count();
    }
    assert_eq!(skipped, done_before.len());
    assert_eq!(r.done(), (0..total).collect::<Vec<_>>());
    assert_same_as_single(&r, "single");
}

fn env_clean(r: &Run, env: &[(&str, &str)], extra: &[&str]) -> Output {
    let mut c = r.clean(&["--shard", "auto", "-q"]);
    c.args(extra);
    for v in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_ARRAY_TASK_STEP",
        "JOB_COMPLETION_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
        "AWS_BATCH_JOB_ARRAY_SIZE",
        "BATCH_TASK_INDEX",
        "BATCH_TASK_COUNT",
    ] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c.output().unwrap()
}

#[test]
fn shard_auto_reads_each_scheduler_and_refuses_a_partial_array() {
    let r = Run::new(4);
    let total = r.chunks();
    let partial = env_clean(
        &r,
        &[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "17"),
        ],
        &[],
    );
    assert_eq!(partial.status.code(), Some(2));
    assert!(
        stderr(&partial).contains("stepped or partial"),
        "{}",
        stderr(&partial)
    );
    let stepped = env_clean(
        &r,
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "2"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ],
        &[],
    );
    assert_eq!(stepped.status.code(), Some(2), "{}", stderr(&stepped));
    let none = env_clean(&r, &[], &[]);
    assert_eq!(none.status.code(), Some(2));
    let k8s = env_clean(&r, &[("JOB_COMPLETION_INDEX", "0")], &[]);
    assert_eq!(k8s.status.code(), Some(2), "Kubernetes needs --shard-count");
    assert!(stderr(&k8s).contains("--shard-count"));
    // One shard from each scheduler, four in all, covering the run.
    type Vars<'a> = &'a [(&'a str, &'a str)];
    let runs: [(Vars, &[&str], &str); 4] = [
        (
            &[
                ("SLURM_ARRAY_TASK_ID", "0"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
                ("SLURM_ARRAY_TASK_MAX", "3"),
            ],
            &[],
            "SLURM_ARRAY_TASK_ID",
        ),
        (
            &[("JOB_COMPLETION_INDEX", "1")],
            &["--shard-count", "4"],
            "JOB_COMPLETION_INDEX",
        ),
        (
            &[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
                ("AWS_BATCH_JOB_ARRAY_SIZE", "4"),
            ],
            &[],
            "AWS_BATCH_JOB_ARRAY_INDEX",
        ),
        (
            &[("BATCH_TASK_INDEX", "3"), ("BATCH_TASK_COUNT", "4")],
            &[],
            "BATCH_TASK_INDEX",
        ),
    ];
    for (env, extra, source) in runs {
        let mut c = r.clean(&["--shard", "auto"]);
        c.args(extra).envs(env.iter().copied());
        let o = c.output().unwrap();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("(from {source}")),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(r.done(), (0..total).collect::<Vec<_>>());
    let m = r.merge(&[]);
    assert!(m.status.success(), "{}", stderr(&m));
}

#[test]
fn merge_refuses_mixed_keys_and_options_and_a_missing_key() {
    let r = Run::new(4);
    // No key file: never created implicitly.
    let o = bin()
        .current_dir(r.dir.path())
        .args([
            "clean",
            "--manifest",
            "run/manifest.tsv",
            "-o",
            "out",
            "--name-key",
            "nokey",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("photodeid keygen"), "{}", stderr(&o));
    assert!(!r.dir.path().join("nokey").exists());
    // keygen never replaces a key.
    let again = bin().args(["keygen", s(&r.key)]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    let other_key = r.dir.path().join("key2");
    assert!(bin()
        .args(["keygen", s(&other_key)])
        .status()
        .unwrap()
        .success());
    let a = r.clean(&["--shard", "0/2", "-q"]).output().unwrap();
    assert!(matches!(a.status.code(), Some(0 | 1)));
    let mut b = bin();
    b.current_dir(r.dir.path()).args([
        "clean",
        "--manifest",
        "run/manifest.tsv",
        "-o",
        "out",
        "--name-key",
        "key2",
        "--shard",
        "1/2",
        "-q",
    ]);
    let b = b.output().unwrap();
    assert!(matches!(b.status.code(), Some(0 | 1)), "{}", stderr(&b));
    let m = r.merge(&[]);
    assert_eq!(m.status.code(), Some(2), "{}", stderr(&m));
    assert!(stderr(&m).contains("another name key"), "{}", stderr(&m));
    assert!(!r.run.join("map.csv").exists());
    // A process with other options refuses chunks done with these.
    let odd = r
        .clean(&["--shard", "0/2", "--strip-icc"])
        .output()
        .unwrap();
    assert_eq!(odd.status.code(), Some(2));
    assert!(stderr(&odd).contains("other options"), "{}", stderr(&odd));
    // A changed manifest is refused by every command.
    let text = std::fs::read_to_string(&r.manifest).unwrap();
    std::fs::write(&r.manifest, text.replacen("Smith_", "Smyth_", 1)).unwrap();
    let m = r.merge(&[]);
    assert_eq!(m.status.code(), Some(2));
    assert!(stderr(&m).contains("digest mismatch"), "{}", stderr(&m));
}

#[test]
fn merge_lists_missing_chunks_and_stray_files() {
    let r = Run::new(3);
    let total = r.chunks();
    assert!(total >= 6);
    let o = r
        .clean(&["--chunks", &format!("0-2,5-{}", total - 1), "-q"])
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)));
    let m = r.merge(&[]);
    assert_eq!(m.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(r.run.join("missing.txt")).unwrap(),
        "3-4\n"
    );
    assert!(stderr(&m).contains("3-4"));
    let o = r.clean(&["--chunks", "3-4", "-q"]).output().unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)));
    std::fs::write(r.out().join("stray.jpg"), b"x").unwrap();
    let m = r.merge(&[]);
    assert_eq!(m.status.code(), Some(1), "{}", stderr(&m));
    assert!(stderr(&m).contains("not in the map"), "{}", stderr(&m));
    assert!(!r.run.join("missing.txt").exists());
    std::fs::remove_file(r.out().join("stray.jpg")).unwrap();
    let m = r.merge(&["--map", "run/final.csv"]);
    assert!(m.status.success(), "{}", stderr(&m));
    let m = r.merge(&["--map", "run/final.csv"]);
    assert_eq!(
        m.status.code(),
        Some(2),
        "an explicit map is never replaced silently"
    );
    // A chunk's side file edited after its marker: the chunk is redone.
    let map1 = r.run.join("chunks/1.map.csv");
    let text = std::fs::read_to_string(&map1).unwrap();
    std::fs::write(&map1, text.replace(".jpg", ".jpeg")).unwrap();
    let m = r.merge(&[]);
    assert_eq!(m.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(r.run.join("missing.txt")).unwrap(),
        "1\n"
    );
    // Outside OUT, always: the run folder and the manifest.
    let inside = bin()
        .current_dir(r.dir.path())
        .args([
            "clean",
            "--manifest",
            "run/manifest.tsv",
            "-o",
            "run",
            "--name-key",
            "key",
        ])
        .output()
        .unwrap();
    assert_eq!(inside.status.code(), Some(2), "{}", stderr(&inside));
}

#[test]
fn a_manifest_run_prints_no_original_path() {
    let r = Run::new(4);
    let forbidden = ["Smith", "PATIENT", "ward-", s(&r.input)];
    let mut streams = Vec::new();
    for extra in [&["--shard", "0/2"][..], &["--shard", "1/2", "--json"][..]] {
        let o = r.clean(extra).output().unwrap();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        streams.push(stdout(&o));
        streams.push(stderr(&o));
    }
    let m = r.merge(&["--verify"]);
    streams.push(stdout(&m));
    streams.push(stderr(&m));
    let all = streams.concat();
    assert!(all.contains("chunk ") && all.contains(" line "), "{all}");
    assert!(
        all.contains("failed:"),
        "the corrupt file is reported: {all}"
    );
    for f in forbidden {
        assert!(!all.contains(f), "{f:?} leaked into a log: {all}");
    }
    // The paths are in the private failed file instead.
    let failed: String = std::fs::read_dir(r.run.join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| s(p).ends_with(".failed.tsv"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(failed.contains("Smith_corrupt.jpg"));
}

#[test]
fn files_from_stdin_nul_separated_with_json_lines() {
    let d = tempfile::tempdir().unwrap();
    let a = fixtures().join("dirty/jpeg_full.jpg");
    let b = fixtures().join("dirty/png_text.png");
    let list = format!("{}\0{}\0", s(&a), s(&b));
    let mut c = bin()
        .args(["clean", "--files-from", "-", "-0", "--json", "-o"])
        .arg(d.path().join("out"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(list.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.iter().filter(|v| v["status"] == "cleaned").count(), 2);
    assert!(lines.last().unwrap()["summary"].is_object());
    // A list run with a key file that is not there: refused, nothing created.
    let o = bin()
        .args(["clean", "--files-from", "-", "--name-key"])
        .arg(d.path().join("missing-key"))
        .arg("-o")
        .arg(d.path().join("out2"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.path().join("missing-key").exists());
}

/// `collage --cases --run-dir RUN --shard K/N`: a frozen case list, one
/// chunk per case, done markers, resume with another N, a merge that
/// accounts for every case, and logs without case folder names.
#[test]
fn collage_cases_sharded_runs_have_plan_markers_and_merge() {
    let d = tempfile::tempdir().unwrap();
    let cases = d.path().join("cases");
    for i in 0..8 {
        let c = cases.join(format!("Smith_Case_{i}"));
        std::fs::create_dir_all(&c).unwrap();
        for f in ["jpeg_full.jpg", "jpeg_gray.jpg"] {
            std::fs::copy(fixtures().join("dirty").join(f), c.join(format!("{i}-{f}"))).unwrap();
        }
    }
    // One photo is no collage: that case fails, and is accounted for.
    let lone = cases.join("Smith_Lone");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::copy(fixtures().join("dirty/jpeg_full.jpg"), lone.join("1.jpg")).unwrap();
    let key = d.path().join("key");
    assert!(bin().args(["keygen", s(&key)]).status().unwrap().success());
    let collage = |out: &str, extra: &[&str]| {
        bin()
            .current_dir(d.path())
            .args([
                "collage",
                "--cases",
                "cases",
                "-o",
                out,
                "--name-key",
                "key",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let merge = |extra: &[&str]| {
        bin()
            .current_dir(d.path())
            .args(["merge", "--run-dir", "run"])
            .args(extra)
            .output()
            .unwrap()
    };
    // Sharded collages stay flat; the single run is asked for the same.
    let one = collage("single", &["--flat"]);
    assert_eq!(one.status.code(), Some(1), "{}", stderr(&one));
    let mut logs = String::new();
    for k in 0..3 {
        let o = collage(
            "sharded",
            &["--run-dir", "run", "--shard", &format!("{k}/3")],
        );
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        logs += &(stdout(&o) + &stderr(&o));
    }
    assert!(logs.contains("chunk ") && logs.contains("failed"), "{logs}");
    assert!(
        !logs.contains("Smith"),
        "a case folder name leaked into a log: {logs}"
    );
    assert!(tree(&d.path().join("sharded")) == tree(&d.path().join("single")));
    assert_eq!(tree(&d.path().join("single")).len(), 8);
    let chunks = d.path().join("run/chunks");
    for c in 0..9 {
        assert!(
            chunks.join(format!("case-{c}.done.json")).is_file(),
            "chunk {c}"
        );
        let marker = std::fs::read_to_string(chunks.join(format!("case-{c}.done.json"))).unwrap();
        assert!(!marker.contains("Smith"), "{marker}");
    }
    // Merge: every case accounted for, one map in the single-machine format.
    let m = merge(&["--map", "map.csv"]);
    assert!(m.status.success(), "{}", stderr(&m));
    let map = std::fs::read_to_string(d.path().join("map.csv")).unwrap();
    assert_eq!(map.lines().count(), 1 + 8, "{map}");
    assert!(
        map.contains("Smith_Case_3") && !map.contains("Smith_Lone"),
        "{map}"
    );
    let failed = std::fs::read_to_string(d.path().join("run/failed.tsv")).unwrap();
    assert!(failed.contains("Smith_Lone"), "{failed}");
    // A lost chunk: merge names exactly it; redoing only it completes the run.
    std::fs::remove_file(chunks.join("case-4.done.json")).unwrap();
    let m = merge(&["--map", "map.csv", "--overwrite"]);
    assert_eq!(m.status.code(), Some(1));
    assert!(stderr(&m).contains("missing: 4 "), "{}", stderr(&m));
    assert_eq!(
        std::fs::read_to_string(d.path().join("run/missing.txt")).unwrap(),
        "4\n"
    );
    // Resume with another N: done chunks are skipped, the lost one redone.
    let o = collage("sharded", &["--run-dir", "run", "--shard", "0/2"]);
    let o2 = collage("sharded", &["--run-dir", "run", "--shard", "1/2"]);
    let both = stderr(&o) + &stderr(&o2);
    assert_eq!(both.matches("skipped").count() - 2, 7, "{both}");
    assert!(merge(&["--map", "map.csv", "--overwrite"]).status.success());
    assert!(!d.path().join("run/missing.txt").exists());
    // The plan is frozen: a case added later is not in this run.
    let late = cases.join("Smith_Late");
    std::fs::create_dir_all(&late).unwrap();
    for f in ["jpeg_full.jpg", "jpeg_gray.jpg"] {
        std::fs::copy(fixtures().join("dirty").join(f), late.join(f)).unwrap();
    }
    let o = collage("sharded", &["--run-dir", "run", "--shard", "0/1"]);
    assert!(stderr(&o).contains("9 case(s)"), "{}", stderr(&o));
    assert_eq!(tree(&d.path().join("sharded")).len(), 8);
    // Other options against the same run are refused (exit 2), nothing written.
    let o = collage(
        "sharded",
        &["--run-dir", "run", "--shard", "0/1", "--size", "square"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("other options"), "{}", stderr(&o));
    assert_eq!(tree(&d.path().join("sharded")).len(), 8);
    // --shard needs a run folder; sharded collages never make a key.
    let o = collage("x", &["--shard", "0/2"]);
    assert_eq!(o.status.code(), Some(2));
    let o = bin()
        .args(["collage", "--cases", s(&cases), "-o"])
        .arg(d.path().join("x"))
        .args(["--run-dir"])
        .arg(d.path().join("run2"))
        .args(["--shard", "0/2", "--name-key"])
        .arg(d.path().join("nokey"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!d.path().join("nokey").exists());
}
