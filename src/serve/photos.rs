//! The folder's photos as the page sees them: a fixed list (ids are indices),
//! what `check` finds in each (in plain words), and pictures at screen size
//! made by the engine (decode under limits, upright, shrink; regions applied
//! with `redact::apply`). Decoded screen pictures are kept in a small cache,
//! so a preview after the thumbnail, or a second preview, skips the decode.

use super::guard::Root;
use crate::container::{Format, Limits};
use crate::error::{Error, Result};
use crate::metadata::{Category, Inventory};
use crate::pipeline;
use crate::pixels::{self, EncodeOptions};
use crate::redact::{self, Redaction};
use crate::region::{Effect, Length, RegionSpec};
use crate::scan;
use image::{DynamicImage, RgbImage};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Longest side of the screen-size picture previews are rendered at.
pub const SCREEN_SIDE: u32 = 1600;
/// Longest side of grid thumbnails.
pub const THUMB_SIDE: u32 = 320;
/// Decoded screen pictures kept in memory (about 5.8 MB each at 1600x1200).
const CACHE_ENTRIES: usize = 16;

/// One photo of the folder.
#[derive(Debug, Clone)]
pub struct Photo {
    pub id: usize,
    /// Canonical path, inside the folder.
    pub path: PathBuf,
    /// Path relative to the folder, `/`-separated (what a manifest row names).
    pub rel: String,
    /// The folder the photo is in, relative (`""` at the top): its series, or case.
    pub series: String,
}

/// What the page shows about a photo before it is opened.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoInfo {
    pub id: usize,
    pub name: String,
    pub series: String,
    pub format: Option<&'static str>,
    /// Displayed size (after orientation).
    pub width: u32,
    pub height: u32,
    /// What the photo carries that identifies, in plain words.
    pub carries: Vec<String>,
    /// The findings as `check` prints them (category: detail).
    pub details: Vec<String>,
    /// EXIF capture time, for the capture-order names of the output.
    #[serde(skip)]
    pub capture: Option<crate::collage::DateTime>,
    /// Why the file cannot be used, if it cannot, in plain words and what to do
    /// (`plain::explain`; the library's own reason, so a format it learns to
    /// read stops being listed here).
    pub error: Option<String>,
}

/// What the page lists at once, before any photo is read whole (the first
/// step of the listing, so the grid and its first thumbnails come at once):
/// the name, the size, and whether the file can be used as far as its size
/// and first bytes tell (empty, not a photo, no decoder in this build). A
/// damaged file is found by the details ([`PhotoInfo`]), which follow.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: usize,
    pub name: String,
    pub series: String,
    /// File size in bytes.
    pub size: u64,
    pub format: Option<&'static str>,
    /// Why the file cannot be used, in plain words (as [`PhotoInfo::error`]).
    pub error: Option<String>,
}

/// Enough of a file's start to tell its format (the magic bytes and a
/// HEIF `ftyp` box).
const HEAD_BYTES: u64 = 4096;

fn changed(photo: &Photo) -> Error {
    Error::Invalid(format!(
        "{} changed after it was shown (replaced or edited): reload the page and check \
         its regions on the new picture",
        photo.rel
    ))
}

/// A decoded picture shrunk to screen size.
pub struct Screen {
    pub image: RgbImage,
}

/// What the page was shown of a photo: the size and hash of the bytes
/// decoded for the screen (the bytes decide: a new time alone is no change). Regions are drawn on that picture, so
/// an export of different bytes would put them on something nobody saw.
#[derive(Debug, Clone)]
struct Shown {
    len: u64,
    hash: blake3::Hash,
}

impl Shown {
    fn of(bytes: &[u8]) -> Shown {
        Shown {
            len: bytes.len() as u64,
            hash: blake3::hash(bytes),
        }
    }

    fn same_bytes(&self, other: &Shown) -> bool {
        self.len == other.len && self.hash == other.hash
    }
}

/// A picture and the key of what drew it.
type Keyed = (String, Arc<Vec<u8>>);

pub struct Library {
    photos: Vec<Photo>,
    shown: Mutex<HashMap<usize, Shown>>,
    limits: Limits,
    max_file_bytes: u64,
    info: OnceLock<Vec<PhotoInfo>>,
    /// Details worked out one photo at a time before the whole listing's.
    one_info: Mutex<HashMap<usize, PhotoInfo>>,
    cache: Mutex<VecDeque<(usize, Arc<Screen>)>>,
    thumbs: Mutex<HashMap<usize, Arc<Vec<u8>>>>,
    /// Each photo's latest redacted thumbnail, by the key of what drew it
    /// (regions and fill): one per photo, so the cache stays bounded.
    redacted: Mutex<HashMap<usize, Keyed>>,
    /// One lock per photo, so two requests never decode the same photo twice.
    decoding: Vec<Mutex<()>>,
    /// Thumbnails being made for the page right now: the prefetcher waits
    /// while there are any, so what is in view always goes first.
    live: AtomicUsize,
    prefetching: AtomicBool,
}

/// Counts a live thumbnail request while it is served.
struct Live<'a>(&'a AtomicUsize);

impl<'a> Live<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        Live(n)
    }
}

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Library {
    /// Lists every file under `root` (recursively; hidden entries and
    /// `exclude`, the output folder, skipped), photo or not: those that cannot
    /// be used are shown with the reason. Files whose canonical path leaves
    /// the folder (symlinks out) are not listed.
    pub fn scan(root: &Root, exclude: Option<&Path>, limits: Limits, max_file_bytes: u64) -> Self {
        let found = scan::scan(&[root.path().to_path_buf()], exclude);
        let mut photos = Vec::new();
        for job in found.jobs {
            let Some(path) = root.contains(&job.path) else {
                continue;
            };
            let rel = job.relative.to_string_lossy().replace('\\', "/");
            let series = match rel.rfind('/') {
                Some(i) => rel[..i].to_string(),
                None => String::new(),
            };
            photos.push(Photo {
                id: photos.len(),
                path,
                rel,
                series,
            });
        }
        let decoding = photos.iter().map(|_| Mutex::new(())).collect();
        Library {
            photos,
            shown: Mutex::new(HashMap::new()),
            limits,
            max_file_bytes,
            info: OnceLock::new(),
            one_info: Mutex::new(HashMap::new()),
            cache: Mutex::new(VecDeque::new()),
            thumbs: Mutex::new(HashMap::new()),
            redacted: Mutex::new(HashMap::new()),
            decoding,
            live: AtomicUsize::new(0),
            prefetching: AtomicBool::new(false),
        }
    }

    pub fn photos(&self) -> &[Photo] {
        &self.photos
    }

    pub fn get(&self, id: usize) -> Option<&Photo> {
        self.photos.get(id)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Reads a photo's bytes, refusing it if it no longer lies inside the folder.
    pub fn read(&self, photo: &Photo, root: &Root) -> Result<Vec<u8>> {
        if root.contains(&photo.path).is_none() {
            return Err(Error::Invalid(
                "the photo is no longer inside the folder".into(),
            ));
        }
        pipeline::read_input(&photo.path, self.max_file_bytes)
    }

    /// The listing's first step: every file, its size and what its first
    /// bytes tell (no photo is read whole).
    pub fn entries(&self, root: &Root) -> Vec<Entry> {
        self.photos
            .par_iter()
            .map(|p| self.entry(p, root))
            .collect()
    }

    fn entry(&self, p: &Photo, root: &Root) -> Entry {
        let mut e = Entry {
            id: p.id,
            name: p.rel.clone(),
            series: p.series.clone(),
            size: 0,
            format: None,
            error: None,
        };
        let head = self.head(p, root).and_then(|(size, head)| {
            e.size = size;
            let ext = p.path.extension().and_then(|x| x.to_str());
            let format = crate::container::sniff(&head, ext)?;
            match crate::heic_decode::missing_decoder(format) {
                Some(err) => Err(err),
                None => Ok(format),
            }
        });
        match head {
            Ok(format) => e.format = Some(format.name()),
            Err(err) => e.error = Some(crate::plain::explain(&err)),
        }
        e
    }

    /// The file's size and its first [`HEAD_BYTES`].
    fn head(&self, p: &Photo, root: &Root) -> Result<(u64, Vec<u8>)> {
        use std::io::Read;
        if root.contains(&p.path).is_none() {
            return Err(Error::Invalid(
                "the photo is no longer inside the folder".into(),
            ));
        }
        let f = std::fs::File::open(&p.path).map_err(|e| Error::io("cannot open", e))?;
        let size = f.metadata().map_err(|e| Error::io("cannot read", e))?.len();
        let mut head = Vec::new();
        f.take(HEAD_BYTES)
            .read_to_end(&mut head)
            .map_err(|e| Error::io("cannot read", e))?;
        Ok((size, head))
    }

    /// One photo's details: from the whole listing once it is made, else
    /// worked out for this photo alone (a redacted thumbnail asked for
    /// before the details, which scales its regions by the photo's width).
    pub fn info_of(&self, id: usize, root: &Root) -> Option<PhotoInfo> {
        if let Some(all) = self.info.get() {
            return all.get(id).cloned();
        }
        let p = self.get(id)?;
        let mut one = self.one_info.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            one.entry(id)
                .or_insert_with(|| self.describe(p, root))
                .clone(),
        )
    }

    /// What each photo carries (computed once, in parallel).
    pub fn info(&self, root: &Root) -> &[PhotoInfo] {
        self.info.get_or_init(|| {
            self.photos
                .par_iter()
                .map(|p| self.describe(p, root))
                .collect()
        })
    }

    fn describe(&self, p: &Photo, root: &Root) -> PhotoInfo {
        let mut info = PhotoInfo {
            id: p.id,
            name: p.rel.clone(),
            series: p.series.clone(),
            format: None,
            width: 0,
            height: 0,
            carries: Vec::new(),
            details: Vec::new(),
            capture: None,
            error: None,
        };
        let result = self.read(p, root).and_then(|bytes| {
            let ext = p.path.extension().and_then(|e| e.to_str());
            let parsed = pipeline::inspect(&bytes, ext, &self.limits)?;
            let (w, h) = dimensions(&bytes, &parsed)?;
            let upright = matches!(parsed.orientation(), 5..=8);
            let capture = parsed
                .exif
                .capture_time
                .as_deref()
                .and_then(crate::collage::DateTime::parse_exif);
            Ok((
                parsed.format,
                if upright { (h, w) } else { (w, h) },
                parsed.inventory,
                capture,
            ))
        });
        match result {
            Ok((format, (w, h), inv, capture)) => {
                // A photo this build cannot decode cannot be edited: greyed, with the reason.
                info.error =
                    crate::heic_decode::missing_decoder(format).map(|e| crate::plain::explain(&e));
                info.capture = capture;
                info.format = Some(format.name());
                info.width = w;
                info.height = h;
                info.carries = plain_words(&inv);
                info.details = inv
                    .identifying()
                    .map(|f| format!("{}: {}", f.category.label(), f.detail))
                    .collect();
            }
            Err(e) => {
                info.error = Some(crate::plain::explain(&e));
                info.details.push(e.to_string());
            }
        }
        info.carries.extend(name_words(&p.rel));
        info
    }

    /// The photo decoded upright and shrunk to fit `SCREEN_SIDE` (cached).
    pub fn screen(&self, id: usize, root: &Root) -> Result<Arc<Screen>> {
        let photo = self
            .get(id)
            .ok_or_else(|| Error::Invalid("no such photo".into()))?;
        if let Some(s) = self.cached(id) {
            return Ok(s);
        }
        let _one_at_a_time = self.decoding[id].lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = self.cached(id) {
            return Ok(s);
        }
        let bytes = self.read(photo, root)?;
        self.note_shown(photo, &bytes)?;
        let ext = photo.path.extension().and_then(|e| e.to_str());
        let parsed = pipeline::inspect(&bytes, ext, &self.limits)?;
        let decoded =
            pixels::decode_upright(&bytes, parsed.format, parsed.orientation(), &self.limits)?;
        let screen = Arc::new(Screen {
            image: shrink(decoded.image.into_rgb8(), SCREEN_SIDE),
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.push_back((id, screen.clone()));
        while cache.len() > CACHE_ENTRIES {
            cache.pop_front();
        }
        Ok(screen)
    }

    /// Records what is about to be shown; refuses (and forgets the old
    /// record, so a reload shows the new picture) if it differs from what was
    /// shown before.
    fn note_shown(&self, photo: &Photo, bytes: &[u8]) -> Result<()> {
        let now = Shown::of(bytes);
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        match shown.get(&photo.id) {
            Some(before) if !before.same_bytes(&now) => {
                shown.remove(&photo.id);
                drop(shown);
                self.forget(photo.id);
                Err(changed(photo))
            }
            Some(_) => Ok(()),
            None => {
                shown.insert(photo.id, now);
                Ok(())
            }
        }
    }

    /// Refuses a photo whose bytes are no longer those that were shown (it
    /// was replaced or edited since); the caller asks the user to reload.
    /// `bytes` are the ones about to be exported.
    pub fn check_unchanged(&self, photo: &Photo, bytes: &[u8]) -> Result<()> {
        let before = self
            .shown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&photo.id)
            .cloned();
        match before {
            Some(before) if !before.same_bytes(&Shown::of(bytes)) => {
                self.shown
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&photo.id);
                self.forget(photo.id);
                Err(changed(photo))
            }
            _ => Ok(()),
        }
    }

    /// Drops the cached pictures of a photo, so the next view decodes it anew.
    fn forget(&self, id: usize) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, _)| *k != id);
        self.thumbs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.redacted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    fn cached(&self, id: usize) -> Option<Arc<Screen>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let i = cache.iter().position(|(k, _)| *k == id)?;
        let entry = cache.remove(i)?;
        let s = entry.1.clone();
        cache.push_back(entry);
        Some(s)
    }

    /// A JPEG thumbnail made from the decoded pixels (never the file's own
    /// embedded thumbnail, which may show something else). A JPEG is decoded
    /// reduced in the DCT (1/8 of a 12 MP photo is 504 x 378), a fraction of
    /// a full decode, so a folder of 500 photos fills its grid in seconds.
    pub fn thumbnail(&self, id: usize, root: &Root) -> Result<Arc<Vec<u8>>> {
        let _live = Live::new(&self.live);
        self.make_thumbnail(id, root)
    }

    /// Makes every thumbnail not made yet, in listing order, on the cores
    /// the page's own requests leave idle (so it never delays what is in
    /// view): scrolling down then finds them ready. Started once (later
    /// calls return at once); errors are the page's to see when it asks.
    pub fn prefetch_thumbnails(&self, root: &Root) {
        if self.prefetching.swap(true, Ordering::SeqCst) {
            return;
        }
        let usable: Vec<usize> = match self.info.get() {
            Some(info) => info
                .iter()
                .filter(|i| i.error.is_none())
                .map(|i| i.id)
                .collect(),
            None => (0..self.photos.len()).collect(),
        };
        // One worker per core; worker `k` runs only while fewer than
        // `workers - k` thumbnails are being made for the page, so the
        // prefetch fills idle cores and never competes with what is in view.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for k in 0..workers {
                let (next, usable) = (&next, &usable);
                scope.spawn(move || loop {
                    while self.live.load(Ordering::SeqCst) + k >= workers {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    let Some(&id) = usable.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let _ = self.make_thumbnail(id, root);
                });
            }
        });
    }

    fn make_thumbnail(&self, id: usize, root: &Root) -> Result<Arc<Vec<u8>>> {
        let photo = self
            .get(id)
            .ok_or_else(|| Error::Invalid("no such photo".into()))?;
        let hit = || {
            self.thumbs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
                .cloned()
        };
        if let Some(t) = hit() {
            return Ok(t);
        }
        let _one_at_a_time = self.decoding[id].lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = hit() {
            return Ok(t);
        }
        let picture = match self.cached(id) {
            Some(screen) => screen.image.clone(),
            None => {
                let bytes = self.read(photo, root)?;
                self.note_shown(photo, &bytes)?;
                let ext = photo.path.extension().and_then(|e| e.to_str());
                let parsed = pipeline::inspect(&bytes, ext, &self.limits)?;
                pixels::decode_upright_reduced(
                    &bytes,
                    parsed.format,
                    parsed.orientation(),
                    &self.limits,
                    (THUMB_SIDE, THUMB_SIDE),
                )?
                .image
                .into_rgb8()
            }
        };
        let small = DynamicImage::ImageRgb8(fit(&picture, THUMB_SIDE));
        let bytes = Arc::new(encode_jpeg(&small, 80)?);
        self.thumbs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, bytes.clone());
        Ok(bytes)
    }

    /// The thumbnail with `regions` destroyed, as the photo will be exported.
    /// Drawn on the thumbnail's own pixels (the photo is not decoded again
    /// when its regions change) and kept under `key`, what drew it.
    pub fn thumbnail_redacted(
        &self,
        id: usize,
        root: &Root,
        regions: &[RegionSpec],
        fill: [u8; 3],
        key: &str,
    ) -> Result<Arc<Vec<u8>>> {
        let raw = self.thumbnail(id, root)?;
        if regions.is_empty() {
            return Ok(raw);
        }
        if let Some((k, t)) = self
            .redacted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
        {
            if k == key {
                return Ok(t.clone());
            }
        }
        let mut img = image::load_from_memory_with_format(&raw, image::ImageFormat::Jpeg)?;
        // Rows in pixels name the full-size photo: scale them to the thumbnail.
        let full = self.info_of(id, root).map_or(0, |i| i.width);
        let factor = if full == 0 {
            1.0
        } else {
            img.width() as f64 / full as f64
        };
        let scaled: Vec<RegionSpec> = regions.iter().map(|r| scale_px(r, factor)).collect();
        redact::apply(
            &mut img,
            &Redaction {
                regions: &scaled,
                default_effect: Effect::Fill,
                fill,
            },
        )?;
        let bytes = Arc::new(encode_jpeg(&img, 80)?);
        self.redacted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (key.to_string(), bytes.clone()));
        Ok(bytes)
    }

    /// The photo at screen size with `regions` destroyed by the engine, as
    /// JPEG, and the warnings (regions clipped at the edge).
    pub fn preview(
        &self,
        id: usize,
        root: &Root,
        regions: &[RegionSpec],
        effect: Effect,
        fill: [u8; 3],
    ) -> Result<(Vec<u8>, Vec<String>)> {
        let screen = self.screen(id, root)?;
        let mut img = DynamicImage::ImageRgb8(screen.image.clone());
        let warnings = if regions.is_empty() {
            Vec::new()
        } else {
            redact::apply(
                &mut img,
                &Redaction {
                    regions,
                    default_effect: effect,
                    fill,
                },
            )?
        };
        Ok((encode_jpeg(&img, 85)?, warnings))
    }
}

/// A region given in pixels of the full photo, in pixels of a copy
/// `factor` times its size (percent lengths are kept as they are).
fn scale_px(r: &RegionSpec, factor: f64) -> RegionSpec {
    let s = |l: Length| match l {
        Length::Px(p) => Length::Px(((p as f64 * factor).round() as u32).max(1)),
        pct => pct,
    };
    RegionSpec {
        x: s(r.x),
        y: s(r.y),
        w: s(r.w),
        h: s(r.h),
        ..r.clone()
    }
}

/// `img` fitted inside `side` x `side` (aspect kept): a box mean by whole
/// factors, then a triangle filter for the rest (cheap on a reduced decode).
fn fit(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w.max(h) <= side {
        return img.clone();
    }
    let k = w.max(h) / side;
    let img = if k >= 2 {
        shrink(img.clone(), w.max(h).div_ceil(k))
    } else {
        img.clone()
    };
    let (w, h) = img.dimensions();
    let scale = side as f64 / w.max(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle)
}

/// Shrinks by the smallest whole factor that makes the longest side at most
/// `side`, each output pixel the mean of its k x k block (partial blocks at
/// the right and bottom edges averaged over what they hold). Rows in parallel:
/// on a 12 MP photo this takes a few ms, where a resampling filter takes
/// 150-400 ms, and the preview must appear within 300 ms of a click.
pub fn shrink(img: RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let k = w.max(h).div_ceil(side.max(1)).max(1);
    if k == 1 {
        return img;
    }
    let (nw, nh) = (w.div_ceil(k), h.div_ceil(k));
    let src = img.as_raw();
    let mut out = vec![0u8; nw as usize * nh as usize * 3];
    out.par_chunks_mut(nw as usize * 3)
        .enumerate()
        .for_each(|(oy, row)| {
            let y0 = oy as u32 * k;
            let y1 = (y0 + k).min(h);
            let mut sums = vec![0u32; nw as usize * 3];
            for y in y0..y1 {
                let line = &src[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
                for (sum, block) in sums.chunks_exact_mut(3).zip(line.chunks(k as usize * 3)) {
                    let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
                    for px in block.chunks_exact(3) {
                        r += px[0] as u32;
                        g += px[1] as u32;
                        b += px[2] as u32;
                    }
                    sum[0] += r;
                    sum[1] += g;
                    sum[2] += b;
                }
            }
            for (ox, (dst, sum)) in row
                .chunks_exact_mut(3)
                .zip(sums.chunks_exact(3))
                .enumerate()
            {
                let x0 = ox as u32 * k;
                let n = ((x0 + k).min(w) - x0) * (y1 - y0);
                for c in 0..3 {
                    dst[c] = ((sum[c] + n / 2) / n) as u8;
                }
            }
        });
    RgbImage::from_raw(nw, nh, out).expect("buffer sized for nw x nh")
}

fn encode_jpeg(img: &DynamicImage, quality: u8) -> Result<Vec<u8>> {
    pixels::encode(
        img,
        Format::Jpeg,
        &EncodeOptions {
            quality,
            ..EncodeOptions::default()
        },
    )
}

/// Stored width and height, from the header (HEIF: as displayed, its
/// crop and rotation are not EXIF's to apply).
fn dimensions(bytes: &[u8], parsed: &crate::container::Parsed) -> Result<(u32, u32)> {
    if let crate::container::Container::Heif(h) = &parsed.container {
        return Ok(h.display_size());
    }
    let reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), parsed.format.image_format());
    Ok(reader.into_dimensions()?)
}

/// What an inventory means to someone who is not a metadata expert:
/// "GPS location", "camera serial number", "a person's name".
pub fn plain_words(inv: &Inventory) -> Vec<String> {
    let mut out: Vec<&str> = Vec::new();
    let mut add = |s: &'static str| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for f in inv.identifying() {
        let d = f.detail.as_str();
        let has = |k: &str| d.contains(k);
        match f.category {
            Category::Gps => add("GPS location"),
            Category::Thumbnail => add("a hidden preview image"),
            Category::MakerNotes => add("camera maker notes"),
            Category::Provenance => add("a C2PA provenance record"),
            Category::TrailingData => add("hidden data after the picture"),
            Category::Comment => add("a comment"),
            _ => {}
        }
        if has("Serial") {
            add("camera serial number");
        }
        if has("Artist") || has("By-line") || has("Author") || has("creator") || has("Owner") {
            add("a person's name (author or owner)");
        }
        if has("DateTime") || has("Creation Time") || has("CreateDate") || has("DateCreated") {
            add("date and time");
        }
        if has("Make ") || has("Model ") {
            add("camera make and model");
        }
        if has("Description")
            || has("UserComment")
            || has("Caption")
            || has("description")
            || has("Comment")
        {
            add("a description or caption");
        }
        match f.category {
            Category::Exif => add("camera settings (EXIF)"),
            Category::Xmp => add("XMP metadata"),
            Category::IptcPhotoshop => add("IPTC/Photoshop data"),
            Category::TextChunk => add("text notes in the file"),
            Category::Other => add("other metadata"),
            _ => {}
        }
    }
    // Most telling first.
    const ORDER: &[&str] = &[
        "GPS location",
        "a person's name (author or owner)",
        "camera serial number",
        "date and time",
        "a description or caption",
        "a comment",
        "a hidden preview image",
        "hidden data after the picture",
        "camera make and model",
    ];
    out.sort_by_key(|s| ORDER.iter().position(|o| o == s).unwrap_or(ORDER.len()));
    out.into_iter().map(String::from).collect()
}

/// Words in the file or folder names that look like a patient's name or a
/// date (the output gets a pseudonymous name, so they are not carried over).
pub fn name_words(rel: &str) -> Vec<String> {
    const COMMON: &[&str] = &[
        "img",
        "dsc",
        "dscn",
        "dscf",
        "pxl",
        "mvimg",
        "photo",
        "photos",
        "image",
        "images",
        "pic",
        "picture",
        "scan",
        "copy",
        "edited",
        "before",
        "during",
        "after",
        "jpg",
        "jpeg",
        "png",
        "webp",
        "gif",
        "tif",
        "tiff",
        "heic",
        "heif",
        "avif",
        "rotated",
        "burst",
        "cover",
        "portrait",
        "screenshot",
        "case",
        "front",
        "left",
        "right",
        "side",
        "top",
        "bottom",
        "upper",
        "lower",
        "intraoral",
        "extraoral",
        "smile",
        "profile",
        "frontal",
        "lateral",
        "clean",
        "final",
        "new",
        "old",
        "raw",
        "the",
        "and",
        "week",
        "day",
        "month",
        "year",
        "visit",
        "pre",
        "post",
        "op",
        "preop",
        "postop",
    ];
    let stem = rel.rsplit_once('.').map_or(rel, |(s, _)| s);
    let mut name = false;
    let mut date = false;
    for token in stem.split(|c: char| !c.is_alphanumeric()) {
        let lower = token.to_lowercase();
        if token.chars().all(char::is_alphabetic)
            && token.chars().count() >= 3
            && !COMMON.contains(&lower.as_str())
        {
            name = true;
        }
        let digits = token.chars().filter(char::is_ascii_digit).count();
        if (token.len() == 4 && digits == 4 && (token.starts_with("19") || token.starts_with("20")))
            || (digits == 8
                && token.len() == 8
                && (token.starts_with("19") || token.starts_with("20")))
        {
            date = true;
        }
    }
    let mut out = Vec::new();
    if name {
        out.push("words in the file or folder name (a patient's name?)".to_string());
    }
    if date {
        out.push("a date in the file or folder name".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Finding;

    #[test]
    fn plain_words_for_findings() {
        let inv = Inventory(vec![
            Finding::new(Category::Exif, "BodySerialNumber \"SN-1\""),
            Finding::new(Category::Gps, "GPS 40.7 N"),
            Finding::new(Category::ColourProfile, "ICC profile"),
        ]);
        let w = plain_words(&inv);
        assert!(w.contains(&"GPS location".to_string()));
        assert!(w.contains(&"camera serial number".to_string()));
        assert!(!w.iter().any(|s| s.contains("colour")));
    }

    #[test]
    fn shrink_averages_whole_blocks() {
        let img = RgbImage::from_fn(10, 7, |x, y| {
            image::Rgb([(x * 20) as u8, (y * 30) as u8, 7])
        });
        let s = shrink(img.clone(), 4);
        // k = ceil(10 / 4) = 3: 4 x 3 blocks, the last column and row partial.
        assert_eq!(s.dimensions(), (4, 3));
        assert_eq!(s.get_pixel(0, 0).0, [20, 30, 7]);
        assert_eq!(s.get_pixel(3, 2).0, [180, 180, 7]);
        assert_eq!(shrink(img.clone(), 10).dimensions(), (10, 7));
        let big = shrink(RgbImage::new(4032, 3024), SCREEN_SIDE);
        assert_eq!(big.dimensions(), (1344, 1008));
    }

    #[test]
    fn thumbnails_fit_and_pixel_regions_follow_them() {
        let t = fit(&RgbImage::new(504, 378), THUMB_SIDE);
        assert_eq!(t.dimensions(), (320, 240));
        let t = fit(&RgbImage::new(4032, 3024), THUMB_SIDE);
        assert_eq!(t.dimensions(), (320, 240));
        assert_eq!(
            fit(&RgbImage::new(100, 80), THUMB_SIDE).dimensions(),
            (100, 80)
        );
        let r: RegionSpec = "400,300,800,600:blur".parse().unwrap();
        let s = scale_px(&r, 0.1);
        assert_eq!(
            (s.x, s.y, s.w, s.h),
            (
                Length::Px(40),
                Length::Px(30),
                Length::Px(80),
                Length::Px(60)
            )
        );
        assert_eq!(s.effect, r.effect);
        let p: RegionSpec = "10%,10%,5%,5%".parse().unwrap();
        assert_eq!(scale_px(&p, 0.1), p);
    }

    #[test]
    fn names_and_dates_in_file_names() {
        assert_eq!(
            name_words("Doe_Jane_1961-04-02/IMG_2021-03-04_before.jpg").len(),
            2
        );
        assert!(name_words("IMG_0041.jpg").is_empty());
        assert!(name_words("case-12/DSC_0001.JPG").is_empty());
        assert_eq!(name_words("IMG_20200301.jpg").len(), 1);
    }
}
