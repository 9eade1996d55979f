//! `photodeid serve` over loopback: the real binary on a free port, driven by
//! a minimal HTTP client on a TcpStream.

use crate::util::{bin, canaries, contains, files, fixtures};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A running `photodeid serve`; killed on drop.
pub struct Serve {
    child: Child,
    pub port: u16,
    pub token: String,
    pub url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    pub fn start(folder: &Path, out: &Path) -> Serve {
        Self::start_with(env!("CARGO_BIN_EXE_photodeid").as_ref(), folder, out)
    }

    pub fn start_with(exe: &Path, folder: &Path, out: &Path) -> Serve {
        let mut cmd = std::process::Command::new(exe);
        cmd.env("XDG_DATA_HOME", crate::util::data_home())
            .args(["serve", "--no-open", "--port", "0", "-o"])
            .arg(out)
            .arg(folder);
        Self::spawn(cmd)
    }

    /// Runs `cmd` (a `photodeid` that serves) and reads the address it prints.
    pub fn spawn(mut cmd: std::process::Command) -> Serve {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start photodeid serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("serve printed no address")
                .expect("read stdout");
            if let Some(i) = line.find("http://") {
                break line[i..].trim().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        let rest = url.strip_prefix("http://127.0.0.1:").expect("loopback");
        let (port, tail) = rest.split_once('/').unwrap();
        let token = tail.strip_prefix("?t=").unwrap().to_string();
        assert_eq!(token.len(), 32, "128-bit token in hex");
        Serve {
            child,
            port: port.parse().unwrap(),
            token,
            url,
        }
    }

    /// Sends a raw request (headers given whole) and returns (status, body).
    pub fn raw(&self, head: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        // The server may answer (413) and close before the whole body is sent.
        let _ = s.write_all(body);
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let end = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response to {head:?}"));
        let head = String::from_utf8_lossy(&resp[..end]).to_string();
        let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, resp[end + 4..].to_vec())
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Vec<u8>) {
        let auth = token
            .map(|t| format!("X-Photodeid-Token: {t}\r\n"))
            .unwrap_or_default();
        self.raw(
            &format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{auth}Connection: close\r\n\r\n",
                self.port
            ),
            b"",
        )
    }

    pub fn post(&self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.raw(
            &format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Photodeid-Token: {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                self.port,
                self.token,
                body.len()
            ),
            body,
        )
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path, Some(&self.token));
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// Starts an export and waits for it to finish.
    pub fn export(&self, request: &serde_json::Value) -> serde_json::Value {
        let (status, body) = self.post("/api/export", request.to_string().as_bytes());
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
        let t0 = Instant::now();
        loop {
            let p = self.json("/api/export");
            if p["running"] == false {
                return p;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "export hangs");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A photo folder with two cases, plus a secret file beside it.
pub fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let photos = d.path().join("photos");
    let case = photos.join("Doe_Jane_1961-04-02");
    std::fs::create_dir_all(&case).unwrap();
    for f in std::fs::read_dir(fixtures().join("sample/Doe_Jane_1961-04-02")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, case.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::copy(
        fixtures().join("dirty/jpeg_full.jpg"),
        photos.join("Smith_John_badge.jpg"),
    )
    .unwrap();
    std::fs::write(d.path().join("secret.txt"), b"root:x:0:0 SECRET-OUTSIDE").unwrap();
    let out = d.path().join("out");
    (d, photos, out)
}

fn status_of(r: (u16, Vec<u8>)) -> u16 {
    r.0
}

fn error_message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("error body is JSON: {}", String::from_utf8_lossy(body)));
    v["error"].as_str().expect("error message").to_string()
}

#[test]
fn token_and_host_are_required() {
    let (_d, photos, out) = setup();
    let s = Serve::start(&photos, &out);
    // No token, wrong token, token of the right length but wrong.
    let (st, body) = s.get("/", None);
    assert_eq!(st, 401);
    assert!(error_message(&body).contains("token"));
    assert_eq!(status_of(s.get("/api/photos", None)), 401);
    assert_eq!(status_of(s.get("/api/photos", Some("nope"))), 403);
    assert_eq!(status_of(s.get("/api/photos", Some(&"0".repeat(32)))), 403);
    assert_eq!(status_of(s.get("/api/photos/0/thumb", None)), 401);
    assert_eq!(status_of(s.get("/app.js", None)), 401);
    // The page with the token in the query, as printed.
    let (st, page) = s.get(&format!("/?t={}", s.token), None);
    assert_eq!(st, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("<html lang=\"en\">"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no outside resources"
    );
    assert_eq!(
        status_of(s.get(&format!("/app.js?t={}", s.token), None)),
        200
    );
    assert_eq!(status_of(s.get("/api/photos", Some(&s.token))), 200);
    // DNS rebinding: right token, foreign Host.
    let (st, _) = s.raw(
        &format!(
            "GET /api/photos HTTP/1.1\r\nHost: evil.example:{}\r\nX-Photodeid-Token: {}\r\nConnection: close\r\n\r\n",
            s.port, s.token
        ),
        b"",
    );
    assert_eq!(st, 403);
    // A POST from another site's page.
    let (st, _) = s.raw(
        &format!(
            "POST /api/export HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Photodeid-Token: {}\r\nOrigin: http://evil.example\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
            s.port, s.token
        ),
        b"{}",
    );
    assert_eq!(st, 403);
    // Bound to loopback only.
    assert!(s.url.starts_with("http://127.0.0.1:"));
}

#[test]
fn listing_reports_metadata_in_plain_words() {
    let (_d, photos, out) = setup();
    let s = Serve::start(&photos, &out);
    // First step: every file, its size, nothing read whole yet.
    let v = s.json("/api/photos");
    let first = v["photos"].as_array().unwrap();
    assert_eq!(first.len(), 4);
    for p in first {
        let on_disk = std::fs::metadata(photos.join(p["name"].as_str().unwrap()))
            .unwrap()
            .len();
        assert_eq!(p["size"].as_u64(), Some(on_disk), "{p}");
        assert_eq!(p["format"], "JPEG", "{p}");
        assert!(p["error"].is_null() && p.get("carries").is_none(), "{p}");
    }
    // Second step: what each carries.
    let v = s.json("/api/photos/details");
    let list = v["photos"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    let badge = list
        .iter()
        .find(|p| p["name"] == "Smith_John_badge.jpg")
        .unwrap();
    let carries: Vec<&str> = badge["carries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for want in [
        "GPS location",
        "camera serial number",
        "words in the file or folder name (a patient's name?)",
    ] {
        assert!(carries.contains(&want), "{carries:?} lacks {want}");
    }
    // Thumbnails are decoded pixels: a small upright JPEG, no metadata.
    let id = badge["id"].as_u64().unwrap();
    let (st, thumb) = s.get(&format!("/api/photos/{id}/thumb"), Some(&s.token));
    assert_eq!(st, 200);
    let img = image::load_from_memory(&thumb).unwrap();
    assert_eq!((img.width(), img.height()), (320, 240));
    for c in canaries() {
        assert!(!contains(&thumb, c.as_bytes()), "thumbnail carries {c}");
    }
}

#[test]
fn traversal_and_escapes_are_refused() {
    let (d, photos, out) = setup();
    #[cfg(unix)]
    std::os::unix::fs::symlink(d.path().join("secret.txt"), photos.join("escape.jpg")).unwrap();
    let s = Serve::start(&photos, &out);
    let names: Vec<String> = s.json("/api/photos")["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.iter().any(|n| n.contains("escape")), "{names:?}");
    for path in [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/api/photos/../../secret.txt",
        "/api/photos/..%2f..%2fsecret.txt/thumb",
        "/api/photos/99/thumb",
        "/api/photos/-1/view",
        "/api/photos/0x1/view",
        "/api/photos/99999999999999999999/thumb",
        "/style.css/../../secret.txt",
        "/api/photos/0/thumb/../../../secret.txt",
    ] {
        let (st, body) = s.get(path, Some(&s.token));
        assert!((400..500).contains(&st), "{path}: {st}");
        assert!(!contains(&body, b"SECRET-OUTSIDE"), "{path} leaked");
        error_message(&body);
    }
}

#[test]
fn bad_requests_get_clear_4xx() {
    let (_d, photos, out) = setup();
    let s = Serve::start(&photos, &out);
    let cases: &[(&[u8], u16, &str)] = &[
        (b"{not json", 400, "bad JSON"),
        (b"", 400, "bad JSON"),
        (b"[1,2,3]", 400, "bad JSON"),
        (br#"{"regions":[{"x":10,"y":10,"w":10}]}"#, 400, "bad JSON"),
        (
            br#"{"regions":[{"x":10,"y":10,"w":10,"h":5,"colour":1}]}"#,
            400,
            "unknown field",
        ),
        (
            br#"{"regions":[{"x":500,"y":10,"w":10,"h":5}]}"#,
            400,
            "outside 0-100%",
        ),
        (
            br#"{"regions":[{"x":1,"y":1,"w":0,"h":5}]}"#,
            400,
            "more than 0",
        ),
        (
            br#"{"regions":[{"x":1,"y":1,"w":3,"h":5,"shape":"star"}]}"#,
            400,
            "unknown shape",
        ),
        (
            br#"{"regions":[{"x":1,"y":1,"w":3,"h":5,"effect":"smudge"}]}"#,
            400,
            "unknown effect",
        ),
        (br#"{"regions":[],"fill":"zzz"}"#, 400, "fill"),
    ];
    for (body, want, msg) in cases {
        let (st, resp) = s.post("/api/photos/0/preview", body);
        assert_eq!(st, *want, "{}", String::from_utf8_lossy(body));
        let m = error_message(&resp);
        assert!(m.contains(msg), "{m:?} should say {msg:?}");
    }
    // Too large: refused from its Content-Length, before reading it.
    let big = vec![b' '; 3 << 20];
    let (st, resp) = s.post("/api/photos/0/preview", &big);
    assert_eq!(st, 413);
    assert!(error_message(&resp).contains("too large"));
    // Too large without a Content-Length (chunked).
    let mut chunked = Vec::new();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 << 10).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 64 << 10));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (st, _) = s.raw(
        &format!(
            "POST /api/photos/0/preview HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Photodeid-Token: {}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            s.port, s.token
        ),
        &chunked,
    );
    assert_eq!(st, 413);
    // Not JSON at all.
    let (st, _) = s.raw(
        &format!(
            "POST /api/export HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Photodeid-Token: {}\r\n\
             Content-Type: multipart/form-data\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
            s.port, s.token
        ),
        b"{}",
    );
    assert_eq!(st, 415);
    // Export requests that make no sense.
    for (body, msg) in [
        (r#"{"photos":[]}"#, "no photo selected"),
        (r#"{"photos":[{"id":42}]}"#, "no photo with id 42"),
        (r#"{"photos":[{"id":0},{"id":0}]}"#, "twice"),
        (r#"{"photos":"all"}"#, "bad JSON"),
    ] {
        let (st, resp) = s.post("/api/export", body.as_bytes());
        assert_eq!(st, 400, "{body}");
        assert!(error_message(&resp).contains(msg), "{body}");
    }
    assert_eq!(status_of(s.raw(&format!("DELETE /api/export HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Photodeid-Token: {}\r\nConnection: close\r\n\r\n", s.port, s.token), b"")), 405);
    // Still serving after all that.
    assert_eq!(status_of(s.get("/api/photos", Some(&s.token))), 200);
}

/// Every file under `root` with its bytes.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(root)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn export_writes_only_into_the_output_folder() {
    let (d, photos, out) = setup();
    let s = Serve::start(&photos, &out);
    let before = snapshot(d.path());
    let list = s.json("/api/photos")["photos"].clone();
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    let badge = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Smith_John_badge.jpg")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let request = serde_json::json!({
        "photos": ids.iter().map(|&id| if id == badge {
            serde_json::json!({"id": id, "regions": [
                {"x": 25, "y": 25, "w": 50, "h": 50, "shape": "rect", "effect": "fill"}
            ]})
        } else {
            serde_json::json!({"id": id, "regions": [
                {"x": 0, "y": 0, "w": 100, "h": 10, "shape": "ellipse", "effect": "pixelate"}
            ]})
        }).collect::<Vec<_>>(),
        "fill": "ff00ff",
        "collage": true,
    });
    let p = s.export(&request);
    assert_eq!(p["done"], 5, "{p}");
    let results = p["results"].as_array().unwrap();
    assert!(results.iter().all(|r| r["error"].is_null()), "{p}");
    // The page shows the library's sentence as it is, built from the same
    // fields (one region each; what was removed).
    for r in results {
        let removed: Vec<String> = r["removed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            r["done"].as_str().unwrap(),
            photodeid::plain::exported(1, &removed, false, &[]),
            "{r}"
        );
        assert!(
            r["done"]
                .as_str()
                .unwrap()
                .starts_with("1 area covered; hidden data removed ("),
            "{r}"
        );
    }
    assert_eq!(p["collages"].as_array().unwrap().len(), 1, "{p}");
    assert!(p["collages"][0]["error"].is_null(), "{p}");

    // Outputs: pseudonymous, clean, only in `out`: the case's three photos
    // in capture order and its collage in `case-XXXXXX/`, the badge photo at
    // the top (it was at the top of the folder).
    let outputs = files(&out);
    assert_eq!(outputs.len(), 5);
    let rel: Vec<String> = outputs
        .iter()
        .map(|o| o.strip_prefix(&out).unwrap().to_string_lossy().into_owned())
        .collect();
    let case_dirs: std::collections::BTreeSet<&str> = rel
        .iter()
        .filter_map(|r| r.split_once('/'))
        .map(|(d, _)| d)
        .collect();
    assert_eq!(case_dirs.len(), 1, "{rel:?}");
    let case = case_dirs.iter().next().unwrap();
    assert!(case.starts_with("case-") && case.len() == 11, "{rel:?}");
    assert!(
        !rel.iter().any(|r| r.contains("Doe") || r.contains("Smith")),
        "{rel:?}"
    );
    let mut in_case: Vec<&str> = rel
        .iter()
        .filter_map(|r| r.strip_prefix(&format!("{case}/")))
        .collect();
    in_case.sort();
    assert!(
        in_case[0].starts_with("001-") && in_case[1].starts_with("002-"),
        "{rel:?}"
    );
    assert!(
        in_case[2].starts_with("003-") && in_case[3].starts_with("collage-"),
        "{rel:?}"
    );
    // Capture order: 001 is the "before" photo.
    let first = results
        .iter()
        .find(|r| r["name"].as_str().unwrap().ends_with("before.jpg"))
        .unwrap();
    assert!(
        first["output"].as_str().unwrap().contains("/001-"),
        "{first}"
    );
    for o in &outputs {
        let name = o.file_stem().unwrap().to_string_lossy();
        let hash = name.rsplit('-').next().unwrap();
        assert_eq!(hash.len(), 8, "{}", o.display());
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
        let bytes = std::fs::read(o).unwrap();
        for c in canaries() {
            assert!(
                !contains(&bytes, c.as_bytes()),
                "{} carries {c}",
                o.display()
            );
        }
    }
    let check = bin().arg("check").arg(&out).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    // The badge's region is filled with the chosen colour.
    let badge_out = results
        .iter()
        .find(|r| r["name"] == "Smith_John_badge.jpg")
        .unwrap()["output"]
        .as_str()
        .unwrap();
    let img = image::open(out.join(badge_out)).unwrap().to_rgb8();
    let px = img.get_pixel(img.width() / 2, img.height() / 2);
    assert!(px[0] > 230 && px[1] < 30 && px[2] > 230, "{px:?}");

    // Nothing else changed: only the manifest and the private results file
    // (input <-> output, never in the output) were added to the photo folder.
    let after = snapshot(d.path());
    let manifest = photos.join(".photodeid-regions.csv");
    let results_file = photos.join(".photodeid-results.json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&results_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the results file is private");
    }
    for (path, bytes) in &before {
        let now = after.iter().find(|(p, _)| p == path);
        assert_eq!(now.map(|n| &n.1), Some(bytes), "{} changed", path.display());
    }
    for (path, _) in &after {
        let known = before.iter().any(|(p, _)| p == path);
        assert!(
            known || path.starts_with(&out) || *path == manifest || *path == results_file,
            "unexpected {}",
            path.display()
        );
    }

    // The manifest is the CLI's: a re-run from the command line takes it.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let rows = photodeid::region::parse_manifest(&text).unwrap();
    assert_eq!(rows.len(), 4);
    assert!(text.starts_with("file,x,y,w,h,shape,effect"));
    let out2 = d.path().join("out2");
    let rerun = bin()
        .args(["clean", "-q"])
        .arg(&photos)
        .arg("-o")
        .arg(&out2)
        .arg("--regions")
        .arg(&manifest)
        .args(["--fill-color", "ff00ff"])
        .output()
        .unwrap();
    assert_eq!(rerun.status.code(), Some(0), "{rerun:?}");
    assert_eq!(files(&out2).len(), 4);

    // Exporting the same again finds every photo and the collage in place
    // (stable keyed names): nothing is written twice.
    let again = s.export(&request);
    for r in again["results"].as_array().unwrap() {
        assert_eq!(r["status"], "up to date", "{r}");
        assert!(
            r["done"].as_str().unwrap().contains("; up to date: "),
            "{r}"
        );
    }
    assert_eq!(again["collages"][0]["output"], p["collages"][0]["output"]);
    assert_eq!(files(&out), outputs);
    drop(s);
    // And after a restart (the key is kept in the data folder).
    let s = Serve::start(&photos, &out);
    let again = s.export(&request);
    assert!(
        again["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "up to date"),
        "{again}"
    );
    assert_eq!(files(&out), outputs);
}

#[cfg(unix)]
#[test]
fn a_photo_swapped_for_a_symlink_is_refused() {
    let (d, photos, out) = setup();
    let s = Serve::start(&photos, &out);
    let list = s.json("/api/photos");
    let badge = list["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Smith_John_badge.jpg")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let path = photos.join("Smith_John_badge.jpg");
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(d.path().join("secret.txt"), &path).unwrap();
    let (st, body) = s.get(&format!("/api/photos/{badge}/view"), Some(&s.token));
    assert_eq!(st, 400);
    assert!(error_message(&body).contains("no longer inside the folder"));
    let p = s.export(&serde_json::json!({ "photos": [{ "id": badge }] }));
    assert!(p["results"][0]["error"]
        .as_str()
        .unwrap()
        .contains("no longer inside"));
    assert!(files(&out).is_empty());
}

#[test]
fn default_output_is_beside_the_folder() {
    let (d, photos, _out) = setup();
    let mut child = bin()
        .args(["serve", "--port", "0"])
        .arg(&photos)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let expected = d.path().canonicalize().unwrap().join("photos-clean");
    assert!(
        first.contains(&format!("exports go to {}", expected.display())),
        "{first}"
    );
    assert!(expected.is_dir());
}

#[test]
fn output_must_differ_from_the_folder() {
    let (_d, photos, _out) = setup();
    let o = bin()
        .args(["serve", "--port", "0", "-o"])
        .arg(&photos)
        .arg(&photos)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("must not be the photo folder"));
}

/// The page's save file: saved at once, merged (other photos' rows and
/// hand-written rows kept), stale writes refused per photo, read back after
/// a restart, and an export of one photo keeps every other row.
#[test]
fn regions_are_saved_merged_and_survive_a_restart() {
    let (_d, photos, out) = setup();
    let manifest = photos.join(".photodeid-regions.csv");
    std::fs::write(
        &manifest,
        "file,x,y,w,h,shape,effect\n**/*.png,0,0,10,10,,\n",
    )
    .unwrap();
    let s = Serve::start(&photos, &out);
    let list = s.json("/api/photos");
    let id_of = |name: &str| {
        list["photos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["id"]
            .as_u64()
            .unwrap()
    };
    let badge = id_of("Smith_John_badge.jpg");
    let other = list["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] != badge && p["error"].is_null())
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let saved = s.json("/api/regions");
    let rev = |v: &serde_json::Value, id: u64| v["photos"][id.to_string()]["rev"].clone();
    let base = rev(&saved, badge);
    let region = serde_json::json!({"x": 10, "y": 20, "w": 30, "h": 40, "shape": "ellipse", "effect": "blur"});
    let save = |id: u64, base: &serde_json::Value, regions: serde_json::Value| {
        let body = serde_json::json!({"photos": [{"id": id, "base": base, "regions": regions}]});
        let (status, body) = s.post("/api/regions", body.to_string().as_bytes());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    // Tab 1 saves a region on the badge photo.
    let a = save(badge, &base, serde_json::json!([region]));
    assert_eq!(a["conflicts"], serde_json::json!([]));
    assert_ne!(rev(&a, badge), base);
    // Tab 2, still on the old revision, is refused and given tab 1's rows.
    let b = save(badge, &base, serde_json::json!([]));
    assert_eq!(b["conflicts"], serde_json::json!([badge]));
    assert_eq!(
        b["photos"][badge.to_string()]["regions"][0]["shape"],
        "ellipse"
    );
    // Tab 2 on another photo is merged.
    let c = save(other, &rev(&b, other), serde_json::json!([region]));
    assert_eq!(c["conflicts"], serde_json::json!([]));
    let text = std::fs::read_to_string(&manifest).unwrap();
    let rows = photodeid::region::parse_manifest(&text).unwrap();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows.iter().any(|r| r.pattern == "**/*.png"), "{text}");
    assert!(
        rows.iter().any(|r| r.pattern == "Smith_John_badge.jpg"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&manifest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    drop(s);

    // After a restart the page gets them back.
    let s = Serve::start(&photos, &out);
    let again = s.json("/api/regions");
    let r = &again["photos"][badge.to_string()]["regions"];
    assert_eq!(r.as_array().unwrap().len(), 1, "{again}");
    assert_eq!(
        (r[0]["x"].as_f64(), r[0]["h"].as_f64()),
        (Some(10.0), Some(40.0))
    );
    assert_eq!(r[0]["effect"], "blur");

    // Exporting the other photo alone keeps the badge's and the glob's rows.
    let p = s.export(&serde_json::json!({"photos": [{"id": other, "regions": [region]}]}));
    assert!(p["results"][0]["error"].is_null(), "{p}");
    let rows =
        photodeid::region::parse_manifest(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().any(|r| r.pattern == "Smith_John_badge.jpg"));

    // Bad input is refused without touching the file.
    let before = std::fs::read(&manifest).unwrap();
    for bad in [
        r#"{"photos":[{"id":999,"base":"","regions":[]}]}"#,
        r#"{"photos":[{"id":0,"base":"","regions":[{"x":-5,"y":0,"w":1,"h":1}]}]}"#,
        r#"{"photos":[{"id":0,"regions":[]}]}"#,
    ] {
        let (status, _) = s.post("/api/regions", bad.as_bytes());
        assert!(status == 400 || status == 422, "{bad}: {status}");
    }
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
}

/// `photodeid` alone (a double-click) serves the folder it starts in and
/// opens the browser on the tokenised address; the page's "Open the output
/// folder" hands that folder to the file manager. The desktop's opener is a
/// stand-in script here that writes down what it was given.
#[cfg(target_os = "linux")]
#[test]
fn starts_without_a_terminal_and_opens_the_browser() {
    use std::os::unix::fs::PermissionsExt;
    let (d, photos, _out) = setup();
    let fake = d.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    let log = d.path().join("opened.txt");
    let opener = fake.join("xdg-open");
    std::fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_photodeid"));
    cmd.current_dir(&photos)
        .env("PATH", path)
        .env("XDG_DATA_HOME", crate::util::data_home());
    let s = Serve::spawn(cmd);
    let opened = |what: &str| {
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().any(|l| l == what) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{what} not opened: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    opened(&s.url);
    // The current folder is served: its photos are listed, exports beside it.
    let list = s.json("/api/photos");
    assert_eq!(list["photos"].as_array().unwrap().len(), 4, "{list}");
    let out = d.path().join("photos-clean");
    assert_eq!(
        list["output"],
        out.canonicalize().unwrap().display().to_string()
    );
    let (status, body) = s.post("/api/open-output", b"{}");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    opened(&out.canonicalize().unwrap().display().to_string());
}

/// The grid's thumbnail and the review picture show the saved regions (in
/// the fill asked for); the ZIP holds the last export's files only; a
/// second export of the same photo is "up to date" (the private results
/// file), and `/api/results` links the photo to its output.
#[test]
fn thumbnails_review_zip_and_results_follow_the_saved_regions() {
    let (_d, photos, out) = setup();
    let s = Serve::start(&photos, &out);
    let list = s.json("/api/photos");
    let badge = list["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Smith_John_badge.jpg")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let picture = |path: &str| {
        let (status, body) = s.get(path, Some(&s.token));
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        image::load_from_memory(&body).unwrap().to_rgb8()
    };
    let centre = |img: &image::RgbImage| img.get_pixel(img.width() / 2, img.height() / 2).0;
    let raw = picture(&format!("/api/photos/{badge}/thumb"));
    let (status, body) = s.get("/api/export/zip", Some(&s.token));
    assert_eq!(status, 400);
    assert!(error_message(&body).contains("nothing has been exported yet"));

    let region =
        serde_json::json!({"x": 30, "y": 30, "w": 40, "h": 40, "shape": "rect", "effect": "fill"});
    let body = serde_json::json!({"photos": [{"id": badge, "base": s.json("/api/regions")["photos"][badge.to_string()]["rev"], "regions": [region]}]});
    let (status, saved) = s.post("/api/regions", body.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&saved));
    let rev = serde_json::from_slice::<serde_json::Value>(&saved).unwrap()["photos"]
        [badge.to_string()]["rev"]
        .as_str()
        .unwrap()
        .to_string();
    let thumb = picture(&format!("/api/photos/{badge}/thumb?rev={rev}&fill=ff00ff"));
    assert_eq!(thumb.dimensions(), raw.dimensions());
    let c = centre(&thumb);
    assert!(
        c[0] > 220 && c[1] < 40 && c[2] > 220,
        "thumbnail not redacted: {c:?}"
    );
    assert_ne!(centre(&raw), c);
    // Outside the region the thumbnail is the raw one.
    let corner = |img: &image::RgbImage| img.get_pixel(5, img.height() - 5).0;
    let (a, b) = (corner(&raw), corner(&thumb));
    assert!(
        (0..3).all(|i| (a[i] as i32 - b[i] as i32).abs() < 24),
        "{a:?} {b:?}"
    );
    let review = picture(&format!("/api/photos/{badge}/review?fill=00ff00"));
    let c = centre(&review);
    assert!(
        c[1] > 220 && c[0] < 40 && c[2] < 40,
        "review not redacted: {c:?}"
    );

    // Export twice: the second finds the first output there.
    let request = serde_json::json!({"photos": [{"id": badge, "regions": [region]}]});
    let first = s.export(&request);
    assert_eq!(first["results"][0]["status"], "cleaned", "{first}");
    let output = first["results"][0]["output"].as_str().unwrap().to_string();
    let (status, zip) = s.get("/api/export/zip", Some(&s.token));
    assert_eq!(status, 200);
    assert_eq!(&zip[..4], b"PK\x03\x04");
    assert!(contains(&zip, output.as_bytes()));
    assert!(!contains(&zip, b"Smith_John") && !contains(&zip, b".photodeid"));
    let second = s.export(&request);
    assert_eq!(second["results"][0]["status"], "up to date", "{second}");
    assert_eq!(second["results"][0]["output"], output.as_str());
    assert_eq!(files(&out).len(), 1, "a re-export wrote a copy");
    let results = s.json("/api/results");
    assert_eq!(
        results["photos"][badge.to_string()]["output"],
        output.as_str()
    );
    assert_eq!(results["photos"][badge.to_string()]["there"], true);
    assert!(results["file"]
        .as_str()
        .unwrap()
        .ends_with(".photodeid-results.json"));
    // Read again at the next start.
    drop(s);
    let s = Serve::start(&photos, &out);
    let again = s.export(&request);
    assert_eq!(again["results"][0]["status"], "up to date", "{again}");
}

/// An AVIF in the folder (the orientation picture, turned by irot and
/// mirrored by imir). With `avif-decode` (default): listed at its displayed size,
/// thumbnailed and previewed from decoded pixels, exported with a filled
/// region as a JPEG. Without it: listed greyed, the reason naming the feature.
#[test]
fn an_avif_is_listed_previewed_and_exported() {
    let (_d, photos, out) = setup();
    std::fs::copy(
        fixtures().join("heif/avif_irot_imir.avif"),
        photos.join("scan.avif"),
    )
    .unwrap();
    let s = Serve::start(&photos, &out);
    let list = s.json("/api/photos");
    let avif = list["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "scan.avif")
        .unwrap_or_else(|| panic!("not listed: {list}"))
        .clone();
    let id = avif["id"].as_u64().unwrap();
    if cfg!(not(any(feature = "avif-decode", feature = "avif-libheif"))) {
        let why = avif["error"].as_str().unwrap_or_else(|| panic!("{avif}"));
        assert!(why.contains("avif-decode"), "{why}");
        return;
    }
    assert!(avif["error"].is_null(), "{avif}");
    let details = s.json("/api/photos/details");
    let avif = &details["photos"][id as usize];
    assert_eq!(
        (avif["width"].as_u64(), avif["height"].as_u64()),
        (Some(64), Some(96))
    );
    let (st, thumb) = s.get(&format!("/api/photos/{id}/thumb"), Some(&s.token));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&thumb));
    let t = image::load_from_memory(&thumb).unwrap();
    assert!(
        t.height() > t.width(),
        "upright thumbnail: {}x{}",
        t.width(),
        t.height()
    );
    let region =
        serde_json::json!({"x": 0, "y": 0, "w": 50, "h": 50, "shape": "rect", "effect": "fill"});
    let body = serde_json::json!({"regions": [region], "fill": "00ff00"}).to_string();
    let (st, shown) = s.post(&format!("/api/photos/{id}/preview"), body.as_bytes());
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&shown));
    let green = |img: &image::RgbImage| {
        let p = img.get_pixel(img.width() / 8, img.height() / 8);
        p[0] < 40 && p[1] > 215 && p[2] < 40
    };
    let shown = image::load_from_memory(&shown).unwrap().to_rgb8();
    assert!(shown.height() > shown.width() && green(&shown), "preview");
    let p = s.export(
        &serde_json::json!({"photos": [{"id": id, "regions": [region]}], "fill": "00ff00"}),
    );
    assert!(p["results"][0]["error"].is_null(), "{p}");
    let name = p["results"][0]["output"].as_str().unwrap();
    assert!(name.ends_with(".jpg"), "a redacted AVIF is a JPEG: {name}");
    let img = image::open(out.join(name)).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (64, 96));
    assert!(green(&img), "the region is filled in the export");
    // Outside the region the picture is there, not the fill.
    assert!(!green(
        &image::imageops::crop_imm(&img, 40, 60, 24, 36).to_image()
    ));
}

/// A red logo PNG (with bytes after its end that no output may carry).
pub fn write_logo(path: &Path) {
    let img = image::RgbaImage::from_pixel(40, 20, image::Rgba([255, 0, 0, 255]));
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes.extend_from_slice(b"LOGO-SECRET");
    std::fs::write(path, bytes).unwrap();
}

/// A practice profile with a red logo in the top-left corner, on a square
/// dark-blue collage.
pub fn write_style(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    write_logo(&dir.join("logo.png"));
    let style = dir.join("practice.toml");
    std::fs::write(
        &style,
        "size = \"square\"\nbackground = \"#203040\"\nfooter = \"Individual results vary\"\n\
         [logo]\nfile = \"logo.png\"\ncorner = \"top-left\"\nsize = 0.25\nopacity = 1.0\n",
    )
    .unwrap();
    style
}

pub fn serve_with_style(photos: &Path, out: &Path, style: &Path) -> Serve {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_photodeid"));
    cmd.env("XDG_DATA_HOME", crate::util::data_home())
        .args(["serve", "--no-open", "--port", "0", "--style"])
        .arg(style)
        .arg("-o")
        .arg(out)
        .arg(photos);
    Serve::spawn(cmd)
}

fn is_red(p: &image::Rgb<u8>) -> bool {
    p[0] > 200 && p[1] < 60 && p[2] < 60
}

/// Practice styles on the page: `serve --style FILE` is offered and is the
/// default; a folder profile whose logo lies outside the folder is not
/// (named, with the reason); the preview and the export carry the logo
/// where asked and the profile's colours, never the logo file's bytes; the
/// recommended command, run as it is, makes the same collage.
#[test]
fn practice_styles_logo_and_the_recommended_command() {
    let (d, photos, out) = setup();
    let style = write_style(&d.path().join("brand"));
    // The folder's own profile tries to use a file outside the folder.
    write_logo(&d.path().join("outside.png"));
    std::fs::write(
        photos.join(".photodeid-style.toml"),
        "[logo]\nfile = \"../outside.png\"\n",
    )
    .unwrap();
    let s = serve_with_style(&photos, &out, &style);
    let styles = s.json("/api/collage/styles");
    assert_eq!(styles["default"], "practice", "{styles}");
    let list = styles["styles"].as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "the folder's profile is not offered: {styles}"
    );
    assert_eq!(list[0]["size"], "1080x1080");
    assert_eq!(list[0]["background"], "203040");
    assert_eq!(list[0]["logo"]["corner"], "top-left");
    let problem = styles["problems"][0].as_str().unwrap();
    assert!(
        problem.contains(".photodeid-style.toml") && problem.contains("not inside"),
        "{problem}"
    );

    let ids: Vec<u64> = s.json("/api/photos")["photos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["series"] == "Doe_Jane_1961-04-02")
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let preview = |settings: serde_json::Value| {
        let body = serde_json::json!({
            "photos": ids.iter().map(|id| serde_json::json!({"id": id})).collect::<Vec<_>>(),
            "settings": settings,
        });
        let (status, b) = s.post("/api/collage/preview", body.to_string().as_bytes());
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&b).unwrap(),
        )
    };
    let decode = |v: &serde_json::Value| {
        use base64::Engine;
        let data = v["image"].as_str().unwrap();
        let b64 = data.strip_prefix("data:image/jpeg;base64,").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert!(!contains(&bytes, b"LOGO-SECRET"));
        image::load_from_memory(&bytes).unwrap().to_rgb8()
    };
    // No settings: the default profile, whole.
    let (status, v) = preview(serde_json::json!({}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1080), Some(1080))
    );
    let img = decode(&v);
    // The logo: 25% of 1080 wide (270 x 135) at the top-left margin.
    assert!(
        is_red(img.get_pixel(150, 90)),
        "{:?}",
        img.get_pixel(150, 90)
    );
    assert!(!is_red(img.get_pixel(1080 - 150, 90)));
    let bg = img.get_pixel(2, 1078);
    assert!(
        (bg[0] as i32 - 0x20).abs() < 12 && (bg[2] as i32 - 0x40).abs() < 12,
        "{bg:?}"
    );
    let cmd = v["command"].as_str().unwrap();
    assert!(cmd.starts_with("photodeid collage --cases "), "{cmd}");
    assert!(
        cmd.contains(&format!("--style {}", style.display())),
        "{cmd}"
    );
    assert!(!cmd.contains("--size"), "the profile's own size: {cmd}");
    // Overrides: another corner, and the command says so.
    let (_, v) = preview(serde_json::json!({"logo_corner": "top-right", "logo_size": 0.2}));
    let img = decode(&v);
    assert!(!is_red(img.get_pixel(150, 90)));
    assert!(is_red(img.get_pixel(1080 - 100, 70)));
    let cmd = v["command"].as_str().unwrap();
    assert!(
        cmd.contains("--logo-corner top-right --logo-size 0.2"),
        "{cmd}"
    );
    // No logo, no profile, an unknown profile, a bad override.
    let (_, v) = preview(serde_json::json!({"logo": false}));
    assert!(!is_red(decode(&v).get_pixel(150, 90)));
    assert!(v["command"].as_str().unwrap().contains("--logo-opacity 0"));
    let (_, v) = preview(serde_json::json!({"style": ""}));
    // Nor the profile's size: as large as the photos allow.
    assert_ne!(
        (&v["width"], &v["height"]),
        (&1080.into(), &1080.into()),
        "{v}"
    );
    assert!(!v["command"].as_str().unwrap().contains("--style"), "{v}");
    assert!(!is_red(decode(&v).get_pixel(150, 90)));
    let (status, v) = preview(serde_json::json!({"style": "../../etc/passwd"}));
    assert_eq!(status, 400);
    assert!(
        v["error"].as_str().unwrap().contains("no practice style"),
        "{v}"
    );
    let (status, v) = preview(serde_json::json!({"logo_opacity": 3.0}));
    assert_eq!(status, 400, "{v}");

    // The export draws the same; nothing of the logo file but its pixels.
    let p = s.export(&serde_json::json!({
        "photos": ids.iter().map(|id| serde_json::json!({"id": id})).collect::<Vec<_>>(),
        "collage": true,
    }));
    let made = p["collages"][0]["output"]
        .as_str()
        .unwrap_or_else(|| panic!("{p}"));
    let exported = image::open(out.join(made)).unwrap().to_rgb8();
    assert_eq!(exported.dimensions(), (1080, 1080));
    assert!(is_red(exported.get_pixel(150, 90)));
    let check = bin().arg("check").arg(out.join(made)).output().unwrap();
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    for f in files(&out) {
        assert!(
            !contains(&std::fs::read(&f).unwrap(), b"LOGO-SECRET"),
            "{}",
            f.display()
        );
    }

    // The recommended command, run by a script, makes the same collage.
    let (_, v) = preview(serde_json::json!({}));
    let cmd = v["command"].as_str().unwrap().to_string();
    let scripted = d.path().join("scripted");
    let cmd = cmd.replacen(
        &format!("-o {}", out.display()),
        &format!("-o {}", scripted.display()),
        1,
    );
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("XDG_DATA_HOME", crate::util::data_home())
        .env("PATH", path_with_photodeid())
        .output()
        .unwrap();
    assert!(run.status.success(), "{cmd}: {run:?}");
    let made: Vec<PathBuf> = files(&scripted);
    assert_eq!(made.len(), 1, "{made:?}");
    let scripted = image::open(&made[0]).unwrap().to_rgb8();
    assert_eq!(scripted.dimensions(), (1080, 1080));
    assert!(is_red(scripted.get_pixel(150, 90)));
    drop(d);
}

/// The page's regions save keeps the `source` and `score` cells that face
/// proposals wrote (and any other column), for the rows it did not change
/// and for the photos it did not touch.
#[test]
fn a_regions_save_keeps_source_and_score() {
    let (_d, photos, out) = setup();
    let manifest = photos.join(".photodeid-regions.csv");
    std::fs::write(
        &manifest,
        "file,x,y,w,h,shape,effect,source,score\n\
         Smith_John_badge.jpg,10%,10%,20%,20%,ellipse,blur,detector:face,0.973\n\
         Doe_Jane_1961-04-02/other.jpg,1%,1%,5%,5%,rect,fill,detector:eyes,0.5\n",
    )
    .unwrap();
    let s = Serve::start(&photos, &out);
    let saved = s.json("/api/regions");
    let badge = s.json("/api/photos")["photos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Smith_John_badge.jpg")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let mine = &saved["photos"][badge.to_string()];
    let mut regions = mine["regions"].as_array().unwrap().clone();
    assert_eq!(regions.len(), 1, "{saved}");
    regions.push(
        serde_json::json!({"x": 50, "y": 50, "w": 10, "h": 10, "shape": "rect", "effect": "fill"}),
    );
    let body =
        serde_json::json!({"photos": [{"id": badge, "base": mine["rev"], "regions": regions}]});
    let (status, b) = s.post("/api/regions", body.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&b));
    let text = std::fs::read_to_string(&manifest).unwrap();
    let rows = photodeid::region::parse_manifest(&text).unwrap();
    assert_eq!(rows.len(), 3, "{text}");
    let kept = rows
        .iter()
        .find(|r| r.pattern == "Smith_John_badge.jpg" && r.region.x.to_string() == "10%")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        (kept.source.as_deref(), kept.score),
        (Some("detector:face"), Some(0.973)),
        "{text}"
    );
    let added = rows
        .iter()
        .find(|r| r.region.x.to_string() == "50%")
        .unwrap();
    assert_eq!((added.source.as_deref(), added.score), (None, None));
    let other = rows
        .iter()
        .find(|r| r.pattern.ends_with("other.jpg"))
        .unwrap();
    assert_eq!(
        (other.source.as_deref(), other.score),
        (Some("detector:eyes"), Some(0.5)),
        "{text}"
    );
}

/// A page started with its own name key and `--flat` shows commands that
/// name and lay out files the same way: the re-run of an export makes the
/// page's very file names, and the collage command carries the same flags.
#[test]
fn the_commands_shown_keep_the_pages_naming() {
    let (d, photos, out) = setup();
    let key = d.path().join("practice.key");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_photodeid"));
    cmd.env("XDG_DATA_HOME", crate::util::data_home())
        .args(["serve", "--no-open", "--port", "0", "--flat", "--name-key"])
        .arg(&key)
        .arg("-o")
        .arg(&out)
        .arg(&photos);
    let s = Serve::spawn(cmd);
    let listed = s.json("/api/photos");
    let all: Vec<&serde_json::Value> = listed["photos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["error"].is_null())
        .collect();
    let ids: Vec<u64> = all.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    let p = s.export(&serde_json::json!({
        "photos": ids.iter().map(|id| serde_json::json!({"id": id})).collect::<Vec<_>>(),
    }));
    let rerun = p["command"].as_str().unwrap_or_else(|| panic!("{p}"));
    let flags = format!("--name-key {} --flat", key.display());
    assert!(rerun.contains(&flags), "{rerun}");

    let scripted = d.path().join("scripted");
    let rerun = rerun.replacen(
        &format!("-o {}", out.display()),
        &format!("-o {}", scripted.display()),
        1,
    );
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{rerun} -q"))
        .env("XDG_DATA_HOME", crate::util::data_home())
        .env("PATH", path_with_photodeid())
        .output()
        .unwrap();
    assert!(run.status.success(), "{rerun}: {run:?}");
    let names = |dir: &Path| -> Vec<PathBuf> {
        files(dir)
            .iter()
            .map(|f| f.strip_prefix(dir).unwrap().to_path_buf())
            .collect()
    };
    let page = names(&out);
    assert!(!page.is_empty());
    assert!(page.iter().all(|f| f.components().count() == 1), "{page:?}");
    assert_eq!(names(&scripted), page);

    let series = all[0]["series"].clone();
    let case: Vec<u64> = all
        .iter()
        .filter(|p| p["series"] == series)
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    let body = serde_json::json!({
        "photos": case.iter().map(|id| serde_json::json!({"id": id})).collect::<Vec<_>>(),
        "settings": {},
    });
    let (status, b) = s.post("/api/collage/preview", body.to_string().as_bytes());
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(status, 200, "{v}");
    let collage = v["command"].as_str().unwrap();
    assert!(collage.contains(&flags), "{collage}");
}

/// `PATH` with the built `photodeid` first, for commands run through `sh`.
fn path_with_photodeid() -> String {
    let exe = Path::new(env!("CARGO_BIN_EXE_photodeid"));
    format!(
        "{}:{}",
        exe.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}
