//! `photodeid serve`: a local web page over the same engine as the CLI.
//!
//! ```text
//! browser ──► 127.0.0.1:PORT ──► Host check ──► token check ──► route
//!   GET  /                      page (HTML, CSS, JS embedded in the binary)
//!   GET  /api/photos            the folder's files: names, sizes, usable or not by their first bytes
//!   GET  /api/photos/details    what each photo carries (check), its size, why a damaged one cannot be used
//!   GET  /api/photos/ID/thumb   upright thumbnail from decoded pixels, saved regions destroyed
//!   GET  /api/photos/ID/review  the photo at screen size as it will be exported (saved regions)
//!   GET  /api/photos/ID/view    the photo at screen size
//!   GET  /api/photos/ID/faces   faces and eye bars proposed on it (faces.rs), to accept or dismiss
//!   POST /api/photos/ID/preview the photo at screen size, regions destroyed (redact::apply)
//!   POST /api/export            clean the selection (pipeline::process_file), collages, manifest
//!   GET  /api/export            progress and results
//!   GET  /api/export/zip        the last export's files as one ZIP (zip.rs)
//!   GET  /api/results           earlier exports to this output (results.rs, the private results file)
//!   POST /api/open-output       show the output folder in the file manager
//!   GET  /api/regions           the saved regions (FOLDER/.photodeid-regions.csv)
//!   POST /api/regions           save changed photos' regions (merged, stale ones refused)
//!   POST /api/collage/preview   a case's collage at its final size (collage.rs)
//!   GET|POST /api/collage/settings  a case's collage settings and framing, saved with it
//!   GET  /api/collage/styles    the practice profiles offered (style.rs; `serve --style`)
//!   GET  /api/consent, POST /api/consent  the consent register (who signed what, when)
//! ```
//!
//! The server binds 127.0.0.1 only. Every request carries the per-run token
//! (query `t=` for the page and images, header `X-Photodeid-Token` for API
//! calls) and a `Host` naming the loopback address and port; a POST with an
//! `Origin` must come from the page itself. Photos are addressed by index,
//! never by a client-supplied path. Files are read only inside FOLDER
//! (canonical paths, symlinks out refused) and written only into the output
//! folder (cleaned photos, collages) and FOLDER's private state (the regions
//! manifest, the results file).

pub mod collage;
pub mod desktop;
pub mod export;
pub mod faces;
pub mod guard;
pub mod http;
pub mod photos;
pub mod regions;
pub mod results;
pub mod style;
pub mod zip;

use crate::container::Limits;
use crate::error::{Error, Result};
use export::{ExportRequest, Progress};
use guard::{Root, Token};
use http::{BodyError, Request, Response};
use photos::Library;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const FACES_JS: &str = include_str!("assets/faces.js");

/// Largest request body accepted (region lists are a few KB).
pub const MAX_BODY: u64 = 1 << 20;
/// The header API calls carry the token in.
pub const TOKEN_HEADER: &str = "X-Photodeid-Token";

/// How to serve.
#[derive(Debug, Clone)]
pub struct Config {
    /// The photo folder.
    pub folder: PathBuf,
    /// Where exports go (created if missing).
    pub output: PathBuf,
    /// 0 takes a free port.
    pub port: u16,
    pub limits: Limits,
    pub max_file_bytes: u64,
    /// Connections served at once (see [`http`]).
    pub connections: usize,
    /// Exports of untouched JPEGs are transcoded losslessly (`--thorough`).
    pub thorough: bool,
    /// How outputs are named (keyed: re-exports are "up to date").
    pub naming: crate::pseudonym::Naming,
    /// One flat folder instead of pseudonymous case folders.
    pub flat: bool,
    /// The `--name-key` file, when one was given: the commands the page
    /// shows name their outputs with it too (none: the default key).
    pub key_file: Option<PathBuf>,
    /// Practice profiles offered for collages (`--style`, see [`style`]).
    pub styles: Vec<PathBuf>,
}

struct State {
    token: Token,
    port: u16,
    folder: Root,
    output: Root,
    library: Library,
    regions: regions::Store,
    collages: collage::Store,
    layout: export::Layout,
    export: Mutex<Progress>,
    thorough: bool,
    proposals: faces::Proposals,
    results: results::Results,
}

/// A bound server, not yet answering.
pub struct Server {
    listener: std::net::TcpListener,
    state: Arc<State>,
    addr: SocketAddr,
    connections: usize,
}

impl Server {
    /// Checks the folders, lists the photos and binds 127.0.0.1:`port`.
    pub fn bind(config: &Config) -> Result<Server> {
        let folder = Root::new(&config.folder)?;
        std::fs::create_dir_all(&config.output)
            .map_err(|e| Error::io("cannot create output folder", e))?;
        let output = Root::new(&config.output)?;
        if output.path() == folder.path() {
            return Err(Error::Invalid(
                "the output folder must not be the photo folder".into(),
            ));
        }
        let library = Library::scan(
            &folder,
            Some(output.path()),
            config.limits,
            config.max_file_bytes,
        );
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port)).map_err(|e| {
            Error::Invalid(format!(
                "cannot listen on 127.0.0.1:{}: {e} (is another program using that port? \
                 --port 0 takes a free one)",
                config.port
            ))
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("cannot listen", e))?;
        let regions = regions::Store::new(folder.child(export::MANIFEST_NAME)?);
        // The page once kept framing in a file of its own: into the manifest, once.
        let old = folder.path().join(crate::collage::framing::FRAMING_NAME);
        match regions.migrate_framing(&old) {
            Ok(0) => {}
            Ok(n) => note(format_args!(
                "moved {n} framing row(s) from {} into {}",
                old.display(),
                regions.path().display()
            )),
            Err(e) => note(format_args!("the old framing file was not moved: {e}")),
        }
        let results = results::Results::open(folder.child(results::RESULTS_NAME)?);
        let profiles = style::Profiles::load(&config.styles, &folder)?;
        for p in &profiles.problems {
            note(format_args!("practice style not offered: {p}"));
        }
        let state = State {
            regions,
            collages: collage::Store::new(folder.path(), profiles),
            layout: export::Layout {
                folders: crate::layout::Folders::new(config.naming.clone()),
                flat: config.flat,
                key_file: config.key_file.clone(),
            },
            token: Token::random()?,
            port: addr.port(),
            folder,
            output,
            library,
            export: Mutex::new(Progress::default()),
            thorough: config.thorough,
            proposals: faces::Proposals::default(),
            results,
        };
        Ok(Server {
            listener,
            state: Arc::new(state),
            addr,
            connections: config.connections.max(1),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address to open, token included.
    pub fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/?t={}",
            self.addr.port(),
            self.state.token.as_str()
        )
    }

    pub fn photo_count(&self) -> usize {
        self.state.library.photos().len()
    }

    pub fn folder(&self) -> &std::path::Path {
        self.state.folder.path()
    }

    pub fn output(&self) -> &std::path::Path {
        self.state.output.path()
    }

    /// Answers requests until the process ends.
    pub fn run(self) {
        let state = self.state;
        http::serve(self.listener, self.connections, move |rq| {
            handle(&state, rq)
        });
    }
}

/// An answer: status, content type, body.
struct Reply {
    status: u16,
    kind: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, v: serde_json::Value) -> Reply {
        Reply {
            status,
            kind: "application/json",
            body: v.to_string().into_bytes(),
        }
    }

    fn error(status: u16, msg: impl Into<String>) -> Reply {
        Reply::json(status, json!({ "error": msg.into() }))
    }

    fn bytes(kind: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            kind,
            body,
        }
    }
}

/// A library error as an HTTP answer: the request's fault (4xx) or ours.
fn engine_error(e: Error) -> Reply {
    let status = match &e {
        Error::Io { .. } => 500,
        Error::TooLarge(_) => 413,
        Error::Invalid(_) => 400,
        _ => 422,
    };
    Reply::error(status, crate::plain::explain(&e))
}

fn header<'a>(rq: &'a Request, name: &str) -> Option<&'a str> {
    rq.header(name)
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn handle(state: &Arc<State>, rq: &mut Request) -> Response {
    let reply = answer(state, rq);
    let mut headers = vec![
        ("Content-Type", reply.kind),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
    ];
    if reply.kind == "application/zip" {
        headers.push((
            "Content-Disposition",
            "attachment; filename=\"photodeid-export.zip\"",
        ));
    }
    if reply.kind.starts_with("text/html") {
        headers.push((
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ));
    }
    Response {
        status: reply.status,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
        body: reply.body,
    }
}

fn answer(state: &Arc<State>, rq: &mut Request) -> Reply {
    if !guard::host_allowed(header(rq, "Host"), state.port) {
        return Reply::error(
            403,
            "refused: the Host header must be 127.0.0.1 or localhost with this port",
        );
    }
    let url = rq.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let given = header(rq, TOKEN_HEADER)
        .map(str::to_string)
        .or_else(|| query_param(query, "t").map(str::to_string));
    match given {
        None => {
            return Reply::error(
                401,
                "refused: this address needs the token printed by photodeid serve",
            )
        }
        Some(t) if !state.token.matches(&t) => return Reply::error(403, "refused: wrong token"),
        Some(_) => {}
    }
    let method = rq.method().to_string();
    if method == "POST" {
        if let Some(origin) = header(rq, "Origin") {
            let ok = ["127.0.0.1", "localhost"]
                .iter()
                .any(|h| origin == format!("http://{h}:{}", state.port));
            if !ok {
                return Reply::error(403, "refused: request from another site");
            }
        }
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", [""] | ["index.html"]) => Reply::bytes(
            "text/html; charset=utf-8",
            INDEX_HTML
                .replace("__TOKEN__", state.token.as_str())
                .into_bytes(),
        ),
        ("GET", ["app.js"]) => {
            Reply::bytes("text/javascript; charset=utf-8", APP_JS.as_bytes().to_vec())
        }
        ("GET", ["faces.js"]) => Reply::bytes(
            "text/javascript; charset=utf-8",
            FACES_JS.as_bytes().to_vec(),
        ),
        ("GET", ["api", "photos", id, "faces"]) => match photo_id(state, id) {
            None => Reply::error(404, "no such photo"),
            Some(id) => match state.proposals.get(&state.library, id, &state.folder) {
                Ok(v) => Reply::json(200, (*v).clone()),
                Err(e) => engine_error(e),
            },
        },
        ("GET", ["style.css"]) => {
            Reply::bytes("text/css; charset=utf-8", STYLE_CSS.as_bytes().to_vec())
        }
        ("GET", ["api", "photos"]) => list(state),
        ("GET", ["api", "photos", "details"]) => details(state),
        ("GET", ["api", "photos", id, what @ ("thumb" | "view" | "review")]) => {
            let Some(id) = photo_id(state, id) else {
                return Reply::error(404, "no such photo");
            };
            let r = match *what {
                "thumb" => redacted_thumb(state, id, query),
                "review" => review(state, id, query),
                _ => state
                    .library
                    .preview(id, &state.folder, &[], Default::default(), [0; 3])
                    .map(|(b, _)| b),
            };
            r.map_or_else(engine_error, |b| Reply::bytes("image/jpeg", b))
        }
        ("GET", ["api", "export", "zip"]) => {
            export_zip(state).map_or_else(engine_error, |b| Reply::bytes("application/zip", b))
        }
        ("GET", ["api", "results"]) => results_reply(state),
        ("POST", ["api", "photos", id, "preview"]) => {
            let Some(id) = photo_id(state, id) else {
                return Reply::error(404, "no such photo");
            };
            match read_json::<PreviewRequest>(rq) {
                Ok(p) => preview(state, id, &p),
                Err(r) => r,
            }
        }
        ("POST", ["api", "export"]) => match read_json::<ExportRequest>(rq) {
            Ok(req) => start_export(state, &req),
            Err(r) => r,
        },
        ("GET", ["api", "regions"]) => {
            regions_reply(state.regions.snapshot(&state.library, &state.folder))
        }
        ("POST", ["api", "regions"]) => match read_json::<regions::SaveRequest>(rq) {
            Ok(req) => regions_reply(state.regions.save(
                &state.library,
                &state.folder,
                &req.photos,
            )),
            Err(r) => r,
        },
        ("POST", ["api", "collage", "preview"]) => match read_json::<collage::PreviewRequest>(rq) {
            Ok(req) => {
                let manifest = state.regions.path();
                let at = collage::Places {
                    folder: state.folder.path(),
                    output: state.output.path(),
                    manifest: manifest.exists().then_some(manifest),
                    consent: state.collages.consent_path(),
                    naming: state.layout.naming_args(),
                };
                json_or_error(
                    state
                        .collages
                        .preview(&state.library, &state.folder, &req, &at),
                )
            }
            Err(r) => r,
        },
        ("GET", ["api", "collage", "styles"]) => Reply::json(200, state.collages.profiles.json()),
        ("GET", ["api", "collage", "settings"]) => json_or_error(state.collages.snapshot(
            &state.library,
            &state.folder,
            &state.regions,
        )),
        ("POST", ["api", "collage", "settings"]) => match read_json::<collage::SaveRequest>(rq) {
            Ok(req) => json_or_error(state.collages.save(
                &state.library,
                &state.folder,
                &state.regions,
                &req,
            )),
            Err(r) => r,
        },
        ("GET", ["api", "consent"]) => {
            let purpose = query_param(query, "purpose").unwrap_or("social-media");
            json_or_error(
                state
                    .collages
                    .consent(&state.library, &state.folder, purpose),
            )
        }
        ("POST", ["api", "consent"]) => match read_json::<collage::ConsentRequest>(rq) {
            Ok(req) => json_or_error(state.collages.record(&state.library, &state.folder, &req)),
            Err(r) => r,
        },
        ("POST", ["api", "open-output"]) => match desktop::open(state.output.path().as_os_str()) {
            Ok(()) => Reply::json(
                200,
                json!({ "opened": state.output.path().display().to_string() }),
            ),
            Err(e) => Reply::error(
                500,
                format!(
                    "cannot open the file manager: {}",
                    crate::plain::io_words(&e)
                ),
            ),
        },
        ("GET", ["api", "export"]) => {
            let p = state.export.lock().unwrap_or_else(|p| p.into_inner());
            Reply::json(200, json!(*p))
        }
        ("GET" | "POST", _) => Reply::error(404, "not found"),
        _ => Reply::error(405, "method not allowed"),
    }
}

fn photo_id(state: &State, s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 9 {
        return None;
    }
    let id: usize = s.parse().ok()?;
    state.library.get(id).map(|p| p.id)
}

/// Reads a JSON body: at most `MAX_BODY` bytes, `application/json`, well formed.
fn read_json<T: for<'de> Deserialize<'de>>(rq: &mut Request) -> std::result::Result<T, Reply> {
    let kind = header(rq, "Content-Type").unwrap_or("");
    if !kind
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return Err(Reply::error(415, "send the body as application/json"));
    }
    let too_large = || {
        Reply::error(
            413,
            format!("request body too large (limit {MAX_BODY} bytes)"),
        )
    };
    let body = match rq.read_body(MAX_BODY) {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Err(too_large()),
        Err(BodyError::Bad(e)) => {
            return Err(Reply::error(
                400,
                format!("cannot read the request body: {e}"),
            ))
        }
    };
    serde_json::from_slice(&body).map_err(|e| Reply::error(400, format!("bad JSON: {e}")))
}

/// The listing's first step: names, sizes and whether each file can be
/// used as far as its first bytes tell, so the grid (and the requests for
/// its first thumbnails) come before any photo is read whole.
fn list(state: &State) -> Reply {
    Reply::json(
        200,
        json!({
            "folder": state.folder.path().display().to_string(),
            "output": state.output.path().display().to_string(),
            "screen_side": photos::SCREEN_SIDE,
            "photos": state.library.entries(&state.folder),
        }),
    )
}

/// The second step: what each photo carries, its size in pixels, and why
/// one that looked usable cannot be (a damaged file). The page asks for it
/// once its first screen of thumbnails is in; the rest are then made in
/// the background, behind whatever the page asks for.
fn details(state: &Arc<State>) -> Reply {
    let reply = Reply::json(200, json!({ "photos": state.library.info(&state.folder) }));
    let state = state.clone();
    let _ = std::thread::Builder::new()
        .name("thumbnails".into())
        .spawn(move || state.library.prefetch_thumbnails(&state.folder));
    reply
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    #[serde(default)]
    regions: Vec<export::RegionJson>,
    #[serde(default)]
    effect: Option<String>,
    #[serde(default)]
    fill: Option<String>,
}

fn preview(state: &State, id: usize, p: &PreviewRequest) -> Reply {
    let checked = export::specs(&p.regions).and_then(|regions| {
        Ok((
            regions,
            export::parse_effect(p.effect.as_deref())?,
            export::parse_fill(p.fill.as_deref())?,
        ))
    });
    let (regions, effect, fill) = match checked {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    match state
        .library
        .preview(id, &state.folder, &regions, effect, fill)
    {
        Ok((bytes, _warnings)) => Reply::bytes("image/jpeg", bytes),
        Err(e) => engine_error(e),
    }
}

/// The photo's saved regions (the manifest's rows, what an export of it
/// applies) and the fill colour the page asks for.
fn saved_regions(
    state: &State,
    id: usize,
    query: &str,
) -> Result<(Vec<crate::region::RegionSpec>, String, [u8; 3])> {
    let photo = state
        .library
        .get(id)
        .ok_or_else(|| Error::Invalid("no such photo".into()))?;
    let (rows, rev) = state.regions.rows_of(&photo.rel)?;
    let fill = export::parse_fill(query_param(query, "fill"))?;
    Ok((rows, rev, fill))
}

/// The grid's thumbnail, its saved regions destroyed (`rev=` in the address
/// only tells the browser that they changed).
fn redacted_thumb(state: &State, id: usize, query: &str) -> Result<Vec<u8>> {
    let (rows, rev, fill) = saved_regions(state, id, query)?;
    let key = format!("{rev}/{}", crate::pseudonym::hex(&fill));
    let t = state
        .library
        .thumbnail_redacted(id, &state.folder, &rows, fill, &key)?;
    Ok(t.to_vec())
}

/// The review view's picture: at screen size, as it will be exported.
fn review(state: &State, id: usize, query: &str) -> Result<Vec<u8>> {
    let (rows, _, fill) = saved_regions(state, id, query)?;
    let (bytes, _) =
        state
            .library
            .preview(id, &state.folder, &rows, crate::region::Effect::Fill, fill)?;
    Ok(bytes)
}

/// The last export's files (photos and collages, nothing else: never the
/// regions manifest or the results file, which stay in the photo folder) as
/// one ZIP.
fn export_zip(state: &State) -> Result<Vec<u8>> {
    let names: Vec<String> = {
        let p = state.export.lock().unwrap_or_else(|p| p.into_inner());
        if p.running {
            return Err(Error::Invalid(
                "the export is still running: wait until it has finished".into(),
            ));
        }
        p.results
            .iter()
            .filter(|r| r.error.is_none())
            .filter_map(|r| r.output.clone())
            .chain(p.collages.iter().filter_map(|c| c.output.clone()))
            .collect()
    };
    if names.is_empty() {
        return Err(Error::Invalid("nothing has been exported yet".into()));
    }
    let mut files = Vec::new();
    for name in names {
        let path = state
            .output
            .contains(&state.output.path().join(&name))
            .ok_or_else(|| Error::Invalid(format!("{name} is no longer in the output folder")))?;
        let bytes =
            std::fs::read(&path).map_err(|e| Error::io("cannot read an exported file", e))?;
        files.push((name, bytes));
    }
    zip::stored(&files)
}

/// What the results file says about this output folder: each photo's
/// output, and whether it is still there.
fn results_reply(state: &State) -> Reply {
    let by_input: std::collections::HashMap<&str, usize> = state
        .library
        .photos()
        .iter()
        .map(|p| (p.rel.as_str(), p.id))
        .collect();
    let mut photos = serde_json::Map::new();
    for e in state.results.for_output(&state.output) {
        if let Some(id) = by_input.get(e.input.as_str()) {
            let there = state.output.path().join(&e.output).is_file();
            photos.insert(
                id.to_string(),
                json!({ "output": e.output, "there": there }),
            );
        }
    }
    Reply::json(
        200,
        json!({ "file": state.results.path().display().to_string(), "photos": photos }),
    )
}

fn json_or_error(r: Result<serde_json::Value>) -> Reply {
    match r {
        Ok(v) => Reply::json(200, v),
        Err(e) => engine_error(e),
    }
}

fn regions_reply(r: Result<regions::SaveAnswer>) -> Reply {
    match r {
        Ok(a) => Reply::json(200, json!(a)),
        Err(e) => engine_error(e),
    }
}

fn start_export(state: &Arc<State>, req: &ExportRequest) -> Reply {
    let plan = match req.check(&state.library) {
        Ok(p) => p,
        Err(e) => return engine_error(e),
    };
    {
        let mut p = state.export.lock().unwrap_or_else(|p| p.into_inner());
        if p.running {
            return Reply::error(409, "an export is running already");
        }
        *p = Progress {
            running: true,
            output_dir: state.output.path().display().to_string(),
            ..Progress::default()
        };
    }
    let state = state.clone();
    std::thread::spawn(move || {
        export::run(
            &state.library,
            &state.folder,
            &state.output,
            &state.regions,
            &state.collages,
            &state.layout,
            &plan,
            &state.export,
            state.thorough,
            &state.results,
        )
    });
    Reply::json(202, json!({ "started": true }))
}

/// One `photodeid: …` line on stderr. Not `eprintln!`, which panics when
/// stderr is a closed pipe; the page must go on without its log.
fn note(line: std::fmt::Arguments) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "photodeid: {line}");
}
