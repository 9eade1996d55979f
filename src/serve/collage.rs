//! The page's collage editor, over the library's case pipeline
//! ([`crate::collage::case`]): the preview at final size, the settings and
//! framing saved with the case, and the consent register.
//!
//! ```text
//!   POST /api/collage/preview   a case's collage at its final size (JPEG, base64) and its plan
//!   GET  /api/collage/settings  saved settings (FOLDER/.photodeid-collages.json) and framing
//!   POST /api/collage/settings  save a case's settings and its photos' framing
//!                               (the regions manifest's `framing` column, which
//!                               `collage --regions` reads)
//!   GET  /api/consent?purpose=P which cases have written permission for P on file
//!   POST /api/consent           record a signed form (FOLDER/.photodeid-consent.csv)
//! ```
//!
//! All files are owner-only, in the photo folder, never in the output.

use super::export::{parse_effect, parse_fill, shell_quote, specs, RegionJson};
use super::guard::Root;
use super::photos::Library;
use super::style::Profiles;
use crate::collage::case::{self, CaseOptions, Input, Order, RegionSource};

use crate::collage::consent::{self, Register};
use crate::collage::framing::Framing;
use crate::collage::{parse_color, parse_size, CollageOptions, Layout, BACKGROUND, INK};
use crate::commit::{self, WriteMode};
use crate::container::Format;
use crate::error::{Error, Result};
use crate::region::Length;
use base64::Engine;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Saved collage settings, by case, beside the regions manifest.
pub const SETTINGS_NAME: &str = ".photodeid-collages.json";

/// Longest title, footer or label accepted.
const MAX_TEXT: usize = 200;

/// A photo's framing as the page sends it: zoom 1..20 and centre, or a
/// crop rectangle (all in fractions of the upright photo).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FramingJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoom: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cx: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cy: Option<f64>,
    /// `[x, y, w, h]`: the panel shows this part whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<[f64; 4]>,
}

impl FramingJson {
    pub fn framing(&self) -> Result<Framing> {
        let f = match self.crop {
            Some([x, y, w, h]) => {
                let ok = [x, y, w, h]
                    .iter()
                    .all(|v| v.is_finite() && (0.0..=1.0).contains(v))
                    && w > 0.0
                    && h > 0.0
                    && x + w <= 1.0 + 1e-9
                    && y + h <= 1.0 + 1e-9;
                if !ok {
                    return Err(Error::Invalid(format!(
                        "framing: crop {x},{y},{w},{h} is not inside the photo"
                    )));
                }
                let pct = |v: f64| Length::Percent((v * 100_000.0).round() / 1000.0);
                Framing::Crop {
                    x: pct(x),
                    y: pct(y),
                    w: pct(w),
                    h: pct(h),
                }
            }
            None => Framing::Zoom {
                zoom: self.zoom.unwrap_or(1.0),
                cx: self.cx.unwrap_or(0.5),
                cy: self.cy.unwrap_or(0.5),
            },
        };
        f.check()
            .map_err(|e| Error::Invalid(format!("framing: {e}")))?;
        Ok(f)
    }

    /// For the page; a crop in pixels needs the photo's size (none: `None`).
    pub fn of(f: &Framing, w: u32, h: u32) -> Option<FramingJson> {
        let frac = |l: Length, full: u32| match l {
            Length::Percent(p) => Some(p / 100.0),
            Length::Px(_) if full == 0 => None,
            Length::Px(p) => Some(p as f64 / full as f64),
        };
        Some(match *f {
            Framing::Zoom { zoom, cx, cy } => FramingJson {
                zoom: Some(zoom),
                cx: Some(cx),
                cy: Some(cy),
                crop: None,
            },
            Framing::Crop { x, y, w: cw, h: ch } => FramingJson {
                crop: Some([frac(x, w)?, frac(y, h)?, frac(cw, w)?, frac(ch, h)?]),
                ..FramingJson::default()
            },
        })
    }
}

/// A case's collage settings, as the page edits and saves them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// square, portrait, story, landscape, WxH; none: from the photos.
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub layout: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub footer: Option<String>,
    /// One per photo, in collage order; none: Before / During / After.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    #[serde(default)]
    pub time_labels: bool,
    #[serde(default)]
    pub background: Option<String>,
    #[serde(default)]
    pub label_color: Option<String>,
    /// The practice profile's id ([`super::style`]); none: the default
    /// (the first), `""`: none.
    #[serde(default)]
    pub style: Option<String>,
    /// `false`: no logo, though the profile has one.
    #[serde(default)]
    pub logo: Option<bool>,
    /// The profile's logo in another corner, size or opacity.
    #[serde(default)]
    pub logo_corner: Option<String>,
    #[serde(default)]
    pub logo_size: Option<f32>,
    #[serde(default)]
    pub logo_opacity: Option<f32>,
}

fn text(t: &Option<String>, what: &str) -> Result<Option<String>> {
    match t.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > MAX_TEXT => Err(Error::Invalid(format!(
            "{what} is longer than {MAX_TEXT} characters"
        ))),
        Some(t) => Ok(Some(t.to_string())),
        None => Ok(None),
    }
}

/// What a case's settings draw with: the options, the labels, time labels.
pub type Chosen = (CollageOptions, Option<Vec<String>>, bool);

impl Settings {
    /// Checked options for the library: each setting, else the chosen
    /// practice profile's, else the default (as `collage` flags over `--style`).
    pub fn options(&self, n: usize, profiles: &Profiles) -> Result<Chosen> {
        let bad = |e: String| Error::Invalid(e);
        let profile = profiles.chosen(self.style.as_deref())?;
        let style = profile.map(|p| p.style.clone()).unwrap_or_default();
        let color = |c: &Option<String>, style: Option<[u8; 3]>, default: [u8; 3]| {
            c.as_deref()
                .filter(|c| !c.is_empty())
                .map_or(Ok(style.unwrap_or(default)), |c| {
                    parse_color(c).map_err(bad)
                })
        };
        let logo = match profile.and_then(|p| p.logo.as_ref()) {
            Some(_) if self.logo == Some(false) => None,
            Some(l) => {
                let mut l = l.clone();
                if let Some(c) = self.logo_corner.as_deref().filter(|c| !c.is_empty()) {
                    l.corner = c.parse().map_err(|e| bad(format!("logo corner: {e}")))?;
                }
                if let Some(size) = self.logo_size {
                    if !(0.02..=1.0).contains(&size) {
                        return Err(bad(format!(
                            "logo size {size} must be a fraction of the width from 0.02 to 1"
                        )));
                    }
                    l.size = size;
                }
                if let Some(o) = self.logo_opacity {
                    if !(0.0..=1.0).contains(&o) {
                        return Err(bad(format!("logo opacity {o} must be from 0 to 1")));
                    }
                    l.opacity = o;
                }
                Some(l)
            }
            None => None,
        };
        let labels = match &self.labels {
            Some(l) if l.len() == n => Some(
                l.iter()
                    .map(|s| Ok(text(&Some(s.clone()), "a label")?.unwrap_or_default()))
                    .collect::<Result<Vec<_>>>()?,
            ),
            // Labels for another number of photos (one was deselected): the defaults.
            _ => None,
        };
        Ok((
            CollageOptions {
                layout: match self.layout.as_deref().filter(|l| !l.is_empty()) {
                    Some(l) => l.parse().map_err(bad)?,
                    None => style.layout.unwrap_or(Layout::Auto),
                },
                size: match self.size.as_deref().filter(|s| !s.is_empty()) {
                    Some(s) => Some(parse_size(s).map_err(bad)?),
                    None => style.size,
                },
                title: text(&self.title.clone().or(style.title), "the title")?,
                footer: text(&self.footer.clone().or(style.footer), "the footer")?,
                background: color(&self.background, style.background, BACKGROUND)?,
                label_color: color(&self.label_color, style.label_color, INK)?,
                logo,
                ..CollageOptions::default()
            },
            labels,
            self.time_labels,
        ))
    }
}

/// One photo of a collage request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoJson {
    pub id: usize,
    #[serde(default)]
    pub regions: Vec<RegionJson>,
    #[serde(default)]
    pub framing: Option<FramingJson>,
}

/// `POST /api/collage/preview`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub photos: Vec<PhotoJson>,
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub effect: Option<String>,
    #[serde(default)]
    pub fill: Option<String>,
    /// What the collage is for (`social-media`...): the command then checks consent.
    #[serde(default)]
    pub purpose: Option<String>,
}

/// Where the recommended command reads and writes.
pub struct Places<'a> {
    pub folder: &'a Path,
    pub output: &'a Path,
    /// The regions manifest (regions and framing), when it exists.
    pub manifest: Option<&'a Path>,
    pub consent: &'a Path,
    /// The naming and layout flags (`--name-key`, `--random-names`, `--flat`).
    pub naming: Vec<String>,
}

/// The `photodeid collage` command that makes what the page shows, for
/// every case of the folder (so the IT person can run it on a schedule):
/// each setting the page changed from the profile, the profile as `--style`.
pub fn command(
    settings: &Settings,
    profiles: &Profiles,
    n: usize,
    effect: crate::region::Effect,
    fill: [u8; 3],
    purpose: Option<&str>,
    at: &Places,
) -> Result<String> {
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let mut c = vec![
        "photodeid collage --cases".to_string(),
        q(at.folder),
        "-o".into(),
        q(at.output),
    ];
    c.extend(at.naming.iter().cloned());
    let mut flag = |name: &str, value: Option<String>| {
        c.push(format!("--{name}"));
        if let Some(v) = value {
            c.push(shell_quote(&v));
        }
    };
    if let Some(m) = at.manifest {
        flag("regions", Some(m.display().to_string()));
    }
    match effect {
        crate::region::Effect::Fill => {}
        crate::region::Effect::Pixelate => flag("effect", Some("pixelate".into())),
        crate::region::Effect::Blur => flag("effect", Some("blur".into())),
    }
    if fill != [0, 0, 0] {
        flag("fill-color", Some(crate::pseudonym::hex(&fill)));
    }
    let profile = profiles.chosen(settings.style.as_deref())?;
    let style = profile.map(|p| p.style.clone()).unwrap_or_default();
    if let Some(p) = profile {
        flag("style", Some(p.path.display().to_string()));
    }
    let (o, labels, time_labels) = settings.options(n, profiles)?;
    if let Some((w, h)) = o.size.filter(|s| Some(*s) != style.size) {
        flag("size", Some(format!("{w}x{h}")));
    }
    if o.layout != style.layout.unwrap_or_default() {
        flag("layout", Some(o.layout.name().into()));
    }
    for (name, v, from_style) in [
        ("title", &o.title, &style.title),
        ("footer", &o.footer, &style.footer),
    ] {
        if v != from_style {
            flag(name, Some(v.clone().unwrap_or_default()));
        }
    }
    // The CLI splits labels at commas: one with a comma cannot be passed.
    if let Some(l) = labels.filter(|l| l.iter().all(|l| !l.contains(','))) {
        flag("labels", Some(l.join(",")));
    }
    if time_labels {
        flag("time-labels", None);
    }
    let hex = |c: [u8; 3]| crate::pseudonym::hex(&c);
    if o.background != style.background.unwrap_or(BACKGROUND) {
        flag("background", Some(hex(o.background)));
    }
    if o.label_color != style.label_color.unwrap_or(INK) {
        flag("label-color", Some(hex(o.label_color)));
    }
    if let Some(from) = profile.and_then(|p| p.logo.as_ref()) {
        match &o.logo {
            // No `--no-logo`: an invisible logo draws the same pixels.
            None => flag("logo-opacity", Some("0".into())),
            Some(l) => {
                if l.corner != from.corner {
                    flag("logo-corner", Some(corner_name(l.corner).into()));
                }
                if l.size != from.size {
                    flag("logo-size", Some(l.size.to_string()));
                }
                if l.opacity != from.opacity {
                    flag("logo-opacity", Some(l.opacity.to_string()));
                }
            }
        }
    }
    // The page's quality; the CLI's default is 92.
    flag("quality", Some("90".into()));
    if let Some(p) = purpose.filter(|p| !p.is_empty()) {
        flag("consent", Some(at.consent.display().to_string()));
        flag("purpose", Some(p.to_string()));
    }
    Ok(c.join(" "))
}

/// How the CLI and the profile spell a corner.
pub fn corner_name(c: crate::collage::Corner) -> &'static str {
    use crate::collage::Corner;
    match c {
        Corner::TopLeft => "top-left",
        Corner::TopRight => "top-right",
        Corner::BottomLeft => "bottom-left",
        Corner::BottomRight => "bottom-right",
    }
}

/// The photos of a collage, read as shown, with their regions and framing.
pub fn inputs(
    lib: &Library,
    folder: &Root,
    photos: &[(usize, Vec<crate::region::RegionSpec>, Option<Framing>)],
) -> Result<Vec<Input>> {
    photos
        .par_iter()
        .map(|(id, regions, framing)| {
            let photo = lib
                .get(*id)
                .ok_or_else(|| Error::Invalid(format!("no photo with id {id}")))?;
            // Exactly the bytes that were shown, or nothing.
            let bytes = lib.read(photo, folder)?;
            lib.check_unchanged(photo, &bytes)?;
            Ok(Input {
                name: photo.rel.clone(),
                rel: photo.rel.clone(),
                bytes: bytes.into(),
                extension: photo
                    .path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_string),
                file_time: case::file_time(&photo.path),
                regions: regions.clone(),
                framing: *framing,
            })
        })
        .collect()
}

/// The case options for these settings.
pub fn case_options(
    lib: &Library,
    settings: &Settings,
    profiles: &Profiles,
    n: usize,
    effect: crate::region::Effect,
    fill: [u8; 3],
) -> Result<CaseOptions> {
    let (collage, labels, time_labels) = settings.options(n, profiles)?;
    Ok(CaseOptions {
        collage,
        limits: lib.limits(),
        regions: RegionSource {
            effect,
            fill,
            ..RegionSource::default()
        },
        labels,
        time_labels,
        format: Format::Jpeg,
        quality: 90,
        ..CaseOptions::default()
    })
}

/// Pictures kept for the preview: shrunk to fit this square.
const PREVIEW_SIDE: u32 = 2000;
/// Most pictures kept (about 9 MB each).
const PREVIEW_CACHE: usize = 32;

/// One decoded picture kept between preview refreshes.
type Cached = std::sync::Arc<(std::sync::Arc<image::RgbImage>, crate::collage::Probe)>;

impl Store {
    /// The preview: the collage at its final size, drawn by the library
    /// from pictures decoded once per photo and set of regions (so a
    /// refresh is a crop, resize and draw), and where each panel is.
    pub fn preview(
        &self,
        lib: &Library,
        folder: &Root,
        req: &PreviewRequest,
        at: &Places,
    ) -> Result<serde_json::Value> {
        let started = std::time::Instant::now();
        let mut seen = std::collections::HashSet::new();
        let mut photos = Vec::new();
        for p in &req.photos {
            if !seen.insert(p.id) {
                return Err(Error::Invalid(format!("photo {} is listed twice", p.id)));
            }
            photos.push((
                p.id,
                specs(&p.regions)?,
                p.framing.as_ref().map(FramingJson::framing).transpose()?,
            ));
        }
        let (effect, fill) = (
            parse_effect(req.effect.as_deref())?,
            parse_fill(req.fill.as_deref())?,
        );
        let opts = case_options(
            lib,
            &req.settings,
            &self.profiles,
            photos.len(),
            effect,
            fill,
        )?;
        let pictures: Vec<case::Picture> = photos
            .par_iter()
            .map(|(id, regions, framing)| {
                let photo = lib
                    .get(*id)
                    .ok_or_else(|| Error::Invalid(format!("no photo with id {id}")))?;
                let key = format!("{id}|{regions:?}|{effect:?}|{fill:?}");
                let hit = self
                    .cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    .cloned();
                let cached = match hit {
                    Some(c) => c,
                    None => {
                        let input = inputs(lib, folder, &[(*id, regions.clone(), None)])?
                            .pop()
                            .expect("one photo");
                        let (image, probe, _) = case::decode_picture(&input, &opts, PREVIEW_SIDE)?;
                        let c: Cached = std::sync::Arc::new((std::sync::Arc::new(image), probe));
                        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                        if cache.len() >= PREVIEW_CACHE {
                            cache.clear();
                        }
                        cache.insert(key, c.clone());
                        c
                    }
                };
                let (image, probe) = &*cached;
                Ok(case::Picture {
                    name: photo.rel.clone(),
                    rel: photo.rel.clone(),
                    image: image.clone(),
                    upright: probe.upright.unwrap_or(image.dimensions()),
                    capture: probe.capture,
                    file_time: case::file_time(&photo.path),
                    framing: *framing,
                })
            })
            .collect::<Result<_>>()?;
        let mut made = case::render_pictures(pictures, &opts, Order::Capture)?;
        let command = command(
            &req.settings,
            &self.profiles,
            photos.len(),
            effect,
            fill,
            req.purpose.as_deref(),
            at,
        )?;
        let jpeg = crate::collage::encode(&mut made.image, Format::Jpeg, 85, &opts.limits)?;
        let by_rel: BTreeMap<&str, usize> = photos
            .iter()
            .filter_map(|(id, _, _)| lib.get(*id).map(|p| (p.rel.as_str(), *id)))
            .collect();
        let order: Vec<usize> = made
            .order
            .iter()
            .filter_map(|n| by_rel.get(n.as_str()).copied())
            .collect();
        let rect = |r: &crate::region::Rect| json!({ "x": r.x, "y": r.y, "w": r.w, "h": r.h });
        Ok(json!({
            "width": made.plan.width,
            "height": made.plan.height,
            "layout": made.plan.layout.name(),
            "tiles": made.plan.tiles.iter().map(rect).collect::<Vec<_>>(),
            "crops": made.crops,
            "order": order,
            "labels": made.labels,
            "command": command,
            "ms": started.elapsed().as_millis() as u64,
            "image": format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&jpeg)
            ),
        }))
    }
}

/// The settings file and the consent register, read-merge-written under one
/// lock (framing is the regions manifest's, [`super::regions::Store`]).
pub struct Store {
    settings: PathBuf,
    consent: PathBuf,
    lock: Mutex<()>,
    cache: Mutex<std::collections::HashMap<String, Cached>>,
    /// The practice profiles the page offers.
    pub profiles: Profiles,
}

/// `POST /api/collage/settings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    pub series: String,
    pub settings: Settings,
    /// The case's photos' framing (a photo not listed keeps its row).
    #[serde(default)]
    pub framing: BTreeMap<usize, FramingJson>,
}

/// `POST /api/consent`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    pub series: String,
    pub purpose: String,
    pub signed: String,
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    commit::write_atomic(
        path,
        bytes,
        WriteMode {
            overwrite: true,
            sync: true,
        },
    )
}

impl Store {
    pub fn new(folder: &Path, profiles: Profiles) -> Store {
        Store {
            settings: folder.join(SETTINGS_NAME),
            consent: folder.join(consent::CONSENT_NAME),
            lock: Mutex::new(()),
            cache: Mutex::default(),
            profiles,
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn read_settings(&self) -> Result<BTreeMap<String, Settings>> {
        match std::fs::read(&self.settings) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Invalid(format!("{}: {e}", self.settings.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::io("read the collage settings", e)),
        }
    }

    /// Every case's settings, and every photo's framing (by id).
    pub fn snapshot(
        &self,
        lib: &Library,
        folder: &Root,
        manifest: &super::regions::Store,
    ) -> Result<serde_json::Value> {
        let cells = manifest.framing()?;
        let mut framing = BTreeMap::new();
        for info in lib.info(folder) {
            let Some(photo) = lib.get(info.id) else {
                continue;
            };
            if let Some(f) = cells
                .get(&photo.rel)
                .and_then(|f| FramingJson::of(f, info.width, info.height))
            {
                framing.insert(info.id, f);
            }
        }
        let settings = {
            let _g = self.guard();
            self.read_settings()?
        };
        Ok(json!({
            "settings": settings,
            "framing": framing,
            "file": manifest.path().display().to_string(),
        }))
    }

    /// Saves a case's settings and its photos' framing, keeping every other row.
    pub fn save(
        &self,
        lib: &Library,
        folder: &Root,
        manifest: &super::regions::Store,
        req: &SaveRequest,
    ) -> Result<serde_json::Value> {
        req.settings.options(
            req.settings.labels.as_ref().map_or(0, Vec::len),
            &self.profiles,
        )?;
        let mut changed = Vec::new();
        for (id, f) in &req.framing {
            let photo = lib
                .get(*id)
                .ok_or_else(|| Error::Invalid(format!("no photo with id {id}")))?;
            changed.push((photo.rel.clone(), Some(f.framing()?)));
        }
        {
            let _g = self.guard();
            let mut all = self.read_settings()?;
            all.insert(req.series.clone(), req.settings.clone());
            let bytes = serde_json::to_vec_pretty(&all)
                .map_err(|e| Error::Invalid(format!("collage settings: {e}")))?;
            write_private(&self.settings, &bytes)?;
        }
        if !changed.is_empty() {
            manifest.set_framing(&changed)?;
        }
        self.snapshot(lib, folder, manifest)
    }

    pub fn consent_path(&self) -> &Path {
        &self.consent
    }

    /// Which cases have written permission for `purpose` on file.
    pub fn consent(
        &self,
        lib: &Library,
        folder: &Root,
        purpose: &str,
    ) -> Result<serde_json::Value> {
        let purpose = consent::check_purpose(purpose).map_err(Error::Invalid)?;
        let register = Register::read_or_empty(&self.consent)?;
        let mut cases = BTreeMap::new();
        for info in lib.info(folder) {
            if info.series.is_empty() {
                continue;
            }
            cases.entry(info.series.clone()).or_insert_with(|| {
                register
                    .find(&info.series, &purpose)
                    .map(|c| c.signed.clone())
            });
        }
        Ok(json!({
            "purpose": purpose,
            "cases": cases,
            "file": self.consent.display().to_string(),
        }))
    }

    /// Records a signed form in the register.
    pub fn record(
        &self,
        lib: &Library,
        folder: &Root,
        req: &ConsentRequest,
    ) -> Result<serde_json::Value> {
        if req.series.is_empty() || !lib.info(folder).iter().any(|i| i.series == req.series) {
            return Err(Error::Invalid(format!(
                "{:?} is not a case folder of this folder",
                req.series
            )));
        }
        {
            let _g = self.guard();
            let mut register = Register::read_or_empty(&self.consent)?;
            register.record(&req.series, &req.purpose, &req.signed)?;
        }
        self.consent(lib, folder, &req.purpose)
    }

    /// The register, for the export's gate.
    pub fn register(&self) -> Result<Register> {
        let _g = self.guard();
        Register::read_or_empty(&self.consent)
    }
}
