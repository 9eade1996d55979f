//! The per-file pipeline: read → sniff → parse → plan → rewrite or re-encode
//! → audit → atomic write. `clean_bytes` is the pure in-memory core (used by
//! benches, tests and the other commands); `process_file` adds the file system.

use crate::blocks;
use crate::commit::{self, WriteMode};
use crate::container::{self, Container, Format, Limits, Parsed, RewritePolicy};
use crate::error::{Error, Result};
use crate::faces::{self, FaceOptions};
use crate::metadata::Inventory;
use crate::pixels::{self, EncodeOptions};
use crate::pseudonym::Naming;
use crate::redact::{self, Redaction};
use crate::region::{self, ManifestRow, RegionSpec};
use crate::scan::Job;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What to do with the EXIF orientation of JPEG and WebP files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrientationMode {
    /// Keep an Orientation-only EXIF block: lossless, displays upright.
    #[default]
    Keep,
    /// Rotate the pixels and drop the tag (re-encodes rotated photos).
    Apply,
}

/// Options of the cleaning core.
#[derive(Clone, Default)]
pub struct CleanOptions<'a> {
    pub strip_icc: bool,
    pub orientation: OrientationMode,
    pub limits: Limits,
    /// JPEG quality of re-encodes; `None` matches the source's estimate, else 92.
    pub quality: Option<u8>,
    /// Regions to destroy. Any region forces a re-encode.
    pub redaction: Option<Redaction<'a>>,
    /// JPEG lossless path: transcode the coefficients instead of copying
    /// the entropy-coded data (see `blocks::transcode`).
    pub thorough: bool,
    /// `--keep` / `--shift-dates`: a fresh EXIF block with the allow-listed
    /// technical tags and shifted dates (see `keep`).
    pub keep: Option<crate::keep::KeepExif>,
}

/// How an output was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Container rewrite: the picture's bytes are copied, pixels bit-exact.
    Lossless,
    /// Decoded, edited or rotated, encoded again.
    Reencoded,
}

/// The result of cleaning one file in memory.
#[derive(Debug)]
pub struct Cleaned {
    /// The output's format.
    pub format: Format,
    /// The input's (differs only for a re-encoded HEIF/AVIF).
    pub input_format: Format,
    pub bytes: Vec<u8>,
    pub method: Method,
    /// What the input carried that is identifying (all of it is gone).
    pub removed: Inventory,
    /// The orientation the output displays with (kept tag), or 1.
    pub orientation: u16,
    /// Things the user should know (a region clipped at the image border).
    pub warnings: Vec<String>,
    /// Lossless TIFF: digest of the input's pages and pixel payloads, which the output must match.
    pub pixel_digest: Option<[u8; 32]>,
}

fn extension_of(path: &Path) -> Option<&str> {
    path.extension().and_then(|e| e.to_str())
}

/// Sniffs and parses: the shared front of `clean` and `check`.
pub fn inspect<'a>(
    bytes: &'a [u8],
    extension: Option<&str>,
    limits: &Limits,
) -> Result<Parsed<'a>> {
    let format = container::sniff(bytes, extension)?;
    container::parse(bytes, format, limits)
}

/// What `check --thorough` adds to the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deep {
    /// The picture data was decoded to its end; what it carries beyond the picture.
    Findings(Vec<crate::metadata::Finding>),
    /// This file's picture data is not analysed; why.
    NotAnalysed(&'static str),
}

/// `check --thorough`: decodes the picture data to find what only a full
/// decode reveals (bytes inside a JPEG's entropy-coded data after its last
/// block or before a restart marker, padding bits, redundant codes; bytes
/// after the coded data of a WebP bitstream).
pub fn inspect_thorough(parsed: &Parsed) -> Result<Deep> {
    match &parsed.container {
        Container::Jpeg(j) => {
            if let Some(plan) = crate::entropy::Plan::new(j)? {
                return Ok(Deep::Findings(plan.audit()?.findings()));
            }
            // Progressive and multi-scan files: every scan, into a buffer.
            let max_alloc = crate::container::Limits::default().max_alloc;
            match crate::entropy::scans::decode(j, max_alloc)? {
                Some(d) => Ok(Deep::Findings(d.hidden.findings())),
                None if j.is_arithmetic() => Ok(Deep::NotAnalysed(
                    "arithmetic-coded JPEG: check does not decode its compressed data, so bytes \
                     hidden inside it are not looked for; clean --thorough re-codes it as a \
                     baseline Huffman JPEG (through libjpeg-turbo-rs), which leaves none behind",
                )),
                None => Ok(Deep::NotAnalysed(
                    "lossless, hierarchical or scan-less JPEG: its compressed data is not decoded here",
                )),
            }
        }
        Container::Webp(w) => Ok(Deep::Findings(w.coded_data_slack()?)),
        _ => Ok(Deep::Findings(Vec::new())),
    }
}

fn is_animated(parsed: &Parsed) -> bool {
    match &parsed.container {
        Container::Png(p) => p.is_animated(),
        Container::Webp(w) => w.chunks.iter().any(|c| &c.fourcc == b"ANIM"),
        Container::Gif(g) => g.frame_count() > 1,
        _ => false,
    }
}

/// Cleans one file's bytes. Lossless unless pixels must change.
pub fn clean_bytes(input: &[u8], extension: Option<&str>, opts: &CleanOptions) -> Result<Cleaned> {
    let parsed = inspect(input, extension, &opts.limits)?;
    let format = parsed.format;
    let orientation = parsed.orientation();
    let must_reencode = opts.redaction.is_some()
        || (orientation != 1
            && (format == Format::Png || opts.orientation == OrientationMode::Apply));
    let removed = Inventory(parsed.inventory.identifying().cloned().collect());
    let mut warnings = Vec::new();
    let out_format = reencoded_format(&parsed);
    let (bytes, method, out_orientation) = if must_reencode {
        (
            reencode(input, &parsed, out_format, opts, &mut warnings)?,
            Method::Reencoded,
            1,
        )
    } else {
        let policy = RewritePolicy {
            keep_icc: !opts.strip_icc,
            orientation: (orientation != 1).then_some(orientation),
        };
        let bytes = match &parsed.container {
            Container::Jpeg(j) if opts.thorough => {
                blocks::transcode(input, j, &policy, &opts.limits)?
            }
            Container::Webp(_) if opts.thorough => {
                crate::recode::webp(&parsed.rewrite(&policy).expect("lossless formats rewrite"))?
            }
            _ => parsed.rewrite(&policy).expect("lossless formats rewrite"),
        };
        if let Container::Heif(h) = &parsed.container {
            h.verify_rewrite(&bytes, &opts.limits)?;
        }
        (bytes, Method::Lossless, orientation)
    };
    let bytes = match &opts.keep {
        Some(keep) => {
            let fmt = if method == Method::Lossless {
                format
            } else {
                out_format
            };
            crate::keep::apply(bytes, &parsed, fmt, out_orientation, keep, &mut warnings)?
        }
        None => bytes,
    };
    let pixel_digest = match (&parsed.container, method) {
        (Container::Tiff(t), Method::Lossless) => Some(t.pixel_digest()),
        _ => None,
    };
    Ok(Cleaned {
        input_format: format,
        format: if method == Method::Lossless {
            format
        } else {
            out_format
        },
        bytes,
        method,
        removed,
        orientation: out_orientation,
        warnings,
        pixel_digest,
    })
}

/// The format a re-encode writes: the input's, except HEIF/AVIF, which
/// become JPEG (PNG when the picture has alpha).
pub fn reencoded_format(parsed: &Parsed) -> Format {
    match &parsed.container {
        Container::Heif(h) if h.alpha.is_some() => Format::Png,
        Container::Heif(_) => Format::Jpeg,
        _ => parsed.format,
    }
}

fn reencode(
    input: &[u8],
    parsed: &Parsed,
    out_format: Format,
    opts: &CleanOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>> {
    if is_animated(parsed) {
        return Err(Error::Unsupported(
            "animated image: only the lossless metadata strip is possible, not rotation or regions"
                .into(),
        ));
    }
    let format = parsed.format;
    if let Container::Tiff(t) = &parsed.container {
        if t.pages.len() > 1 {
            return Err(Error::Unsupported(format!(
                "a TIFF of {} pages is only cleaned losslessly: regions and --orientation apply \
                 need a single-page file (split it with tiffsplit)",
                t.pages.len()
            )));
        }
    }
    // Regions in an upright JPEG kept at its own quality: re-encode only
    // the blocks they touch (see `blocks`); the rest stays as it was.
    if let (Container::Jpeg(j), Some(r), None, 1) = (
        &parsed.container,
        &opts.redaction,
        opts.quality,
        parsed.orientation(),
    ) {
        if let Some(edited) =
            blocks::redact(input, j, r, !opts.strip_icc, opts.thorough, &opts.limits)?
        {
            warnings.extend(edited.warnings);
            return Ok(edited.bytes);
        }
    }
    let mut decoded = pixels::decode_upright(input, format, parsed.orientation(), &opts.limits)?;
    if let Some(r) = &opts.redaction {
        warnings.extend(redact::apply(&mut decoded.image, r)?);
    }
    let quality = opts.quality.unwrap_or_else(|| match &parsed.container {
        Container::Jpeg(j) => j
            .segments
            .iter()
            .find(|s| s.marker == 0xDB)
            .and_then(|s| pixels::estimate_jpeg_quality(s.payload))
            .unwrap_or(92),
        _ => 92,
    });
    // The container's own strict reassembly first (a decoder may splice
    // in stray chunks); `pixels::encode` sanitises whichever it gets.
    let icc = if opts.strip_icc {
        None
    } else {
        parsed.icc_profile().or_else(|| decoded.icc.take())
    };
    let enc = EncodeOptions {
        quality,
        icc,
        tiff: decoded.tiff,
        striped: false,
    };
    let mut out = pixels::encode(&decoded.image, out_format, &enc)?;
    if let Container::Png(p) = &parsed.container {
        out = splice_png_colour_chunks(&out, p, opts)?;
    }
    if out_format == Format::Tiff {
        // The encoder's layout (IFD last, its own tag choice) through our own
        // writer: the output is then a fixed point of the lossless rewrite,
        // so cleaning it again changes nothing (a fuzz finding).
        let policy = RewritePolicy {
            keep_icc: !opts.strip_icc,
            orientation: None,
        };
        out = container::tiff::parse(&out, &opts.limits)?.rewrite(&policy);
    }
    Ok(out)
}

/// Carries gAMA/cHRM/sRGB/cICP/pHYs over into a re-encoded PNG (the ICC
/// profile already went through the encoder).
fn splice_png_colour_chunks(
    encoded: &[u8],
    src: &container::png::Png,
    opts: &CleanOptions,
) -> Result<Vec<u8>> {
    let policy = RewritePolicy {
        keep_icc: false,
        orientation: None,
    };
    let extra = src.colour_chunks(&policy);
    if extra.is_empty() {
        return Ok(encoded.to_vec());
    }
    let fresh = container::png::parse(encoded, &opts.limits)?;
    let mut out = container::png::SIGNATURE.to_vec();
    for (i, c) in fresh.chunks.iter().enumerate() {
        let duplicate = extra.iter().any(|e| e.kind == c.kind);
        if !duplicate {
            out.extend_from_slice(c.raw);
        }
        if i == 0 {
            for e in &extra {
                out.extend_from_slice(e.raw);
            }
        }
    }
    Ok(out)
}

/// The self-audit: re-parses `bytes` with the same parser as `check` and
/// refuses anything identifying, a changed format, or a lost orientation.
pub fn audit(bytes: &[u8], expected: &Cleaned, limits: &Limits) -> Result<()> {
    audit_encoded(bytes, expected.format, expected.orientation, limits)?;
    if let Some(digest) = expected.pixel_digest {
        let parsed = inspect(bytes, None, limits)
            .map_err(|e| Error::AuditFailed(format!("output does not parse: {e}")))?;
        let Container::Tiff(t) = &parsed.container else {
            return Err(Error::AuditFailed("output format changed".into()));
        };
        if t.pixel_digest() != digest {
            return Err(Error::AuditFailed(
                "output pages or pixel bytes differ from the input's".into(),
            ));
        }
    }
    Ok(())
}

/// The self-audit of any output photodeid made (cleaned photos, collages):
/// it must parse as `format`, carry nothing identifying, and display with
/// `orientation`.
pub fn audit_encoded(
    bytes: &[u8],
    format: Format,
    orientation: u16,
    limits: &Limits,
) -> Result<()> {
    let parsed = inspect(bytes, None, limits)
        .map_err(|e| Error::AuditFailed(format!("output does not parse: {e}")))?;
    if parsed.format != format {
        return Err(Error::AuditFailed("output format changed".into()));
    }
    if !parsed.inventory.is_clean() {
        return Err(Error::AuditFailed(format!(
            "output still carries {}",
            parsed.inventory.summary()
        )));
    }
    if parsed.orientation() != orientation {
        return Err(Error::AuditFailed(format!(
            "output orientation {} instead of {orientation}",
            parsed.orientation(),
        )));
    }
    Ok(())
}

/// Where outputs go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A folder; names come from the naming scheme.
    Folder { dir: PathBuf, naming: Naming },
    /// One explicit output file (single-input mode).
    File(PathBuf),
    /// A folder, below it the photo's place (`layout`): pseudonymous case
    /// folders, a capture-order rank in the name.
    Placed {
        dir: PathBuf,
        naming: Naming,
        place: crate::layout::Place,
    },
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Cleaned,
    /// `--dry-run`: nothing written.
    WouldClean,
    /// The output exists with exactly these bytes already (keyed names, reruns).
    UpToDate,
}

#[derive(Debug)]
pub struct Done {
    pub status: Status,
    pub warnings: Vec<String>,
    pub format: Format,
    pub method: Method,
    pub removed: Inventory,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// What the detector found, when faces were asked for.
    pub faces: Option<faces::Report>,
    /// Bytes of the output copied from the input by reference (0 when it
    /// was made in memory; see [`crate::splice`]).
    pub referenced: u64,
}

/// The outcome of one file of a batch.
#[derive(Debug)]
pub struct FileOutcome {
    pub input: PathBuf,
    pub output: Option<PathBuf>,
    pub result: Result<Done>,
}

/// Batch-level settings of `process_file`.
#[derive(Clone, Default)]
pub struct FileSettings<'a> {
    pub clean: CleanOptions<'a>,
    pub write: WriteMode,
    pub dry_run: bool,
    /// Largest input file read, in bytes.
    pub max_file_bytes: u64,
    /// Regions for every file (`--region`).
    pub regions: Vec<RegionSpec>,
    /// Regions per file (`--regions` manifest), matched on the path relative to its input.
    pub manifest: Vec<ManifestRow>,
    pub effect: region::Effect,
    pub fill: [u8; 3],
    /// Detect faces on each photo and add them (and/or eye bars) as regions.
    pub faces: Option<FaceOptions>,
}

impl FileSettings<'_> {
    /// The regions that apply to `job`: the global ones plus matching manifest rows.
    pub fn regions_for(&self, job: &Job) -> Vec<RegionSpec> {
        let rel = job.relative.to_string_lossy();
        let mut v = self.regions.clone();
        v.extend(
            self.manifest
                .iter()
                .filter(|row| row.matches(&rel))
                .map(|row| row.region.clone()),
        );
        v
    }
}

/// Reads, cleans, audits and publishes one file. Never panics on bad input;
/// on any error nothing is left at the destination.
pub fn process_file(job: &Job, dest: &Destination, settings: &FileSettings) -> FileOutcome {
    process_path(job, dest, settings, true)
}

/// [`process_file`] on bytes already read from `job.path` (the serve page
/// exports exactly the bytes it checked against what it showed).
pub fn process_input(
    job: &Job,
    input: Result<Vec<u8>>,
    dest: &Destination,
    settings: &FileSettings,
) -> FileOutcome {
    let mut output = None;
    let result = input.and_then(|input| process_inner(job, &input, dest, settings, &mut output));
    FileOutcome {
        input: job.path.clone(),
        output,
        result,
    }
}

/// Reads an input file, refusing anything but a regular file of at most `max`
/// bytes (0: no limit). Never blocks on a FIFO or device (opened non-blocking
/// and checked on the open handle, so a swap after the first look is caught
/// too), and never reads more than the limit, even from a file that grows.
pub fn read_input(path: &Path, max: u64) -> Result<Vec<u8>> {
    read_input_links(path, max, true)
}

/// A photo's bytes for a decode: the file mapped in place where it is large
/// enough and can be (no copy into memory first, as `clean` reads), read
/// otherwise. What is made from a map is published only after
/// [`Photo::confirm`]: a file that changed or lost a page meanwhile fails
/// by name, as `clean` does.
#[derive(Clone)]
pub struct Photo(PhotoBytes);

#[derive(Clone)]
enum PhotoBytes {
    Memory(Vec<u8>),
    /// Shared by clones: one map, one watch slot.
    Mapped(std::sync::Arc<(crate::mapped::Mapped, Opened)>),
}

impl Photo {
    /// [`read_input`]'s checks (a regular file of at most `max` bytes, never
    /// a FIFO), then the map or the read.
    pub fn open(path: &Path, max: u64) -> Result<Photo> {
        let opened = open_input(path, max, true, true)?;
        let len = opened.meta.len() as usize;
        if len >= crate::mapped::MIN_LEN && opened.settled() {
            if let Some(map) = crate::mapped::Mapped::new(&opened.file, 0, len) {
                return Ok(Photo(PhotoBytes::Mapped(std::sync::Arc::new((
                    map, opened,
                )))));
            }
        }
        opened.read_all(max).map(Photo::from)
    }

    /// Whether the bytes are still the file's: a map's pages all read and
    /// the file not changed since it was opened (its size, times, inode).
    pub fn confirm(&self) -> Result<()> {
        match &self.0 {
            PhotoBytes::Memory(_) => Ok(()),
            PhotoBytes::Mapped(m) if !m.0.intact() => Err(crate::mapped::pages_lost()),
            PhotoBytes::Mapped(m) => m.1.unchanged(),
        }
    }
}

impl From<Vec<u8>> for Photo {
    fn from(bytes: Vec<u8>) -> Photo {
        Photo(PhotoBytes::Memory(bytes))
    }
}

impl std::ops::Deref for Photo {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            PhotoBytes::Memory(v) => v,
            PhotoBytes::Mapped(m) => &m.0,
        }
    }
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0 {
            PhotoBytes::Memory(_) => "read",
            PhotoBytes::Mapped(_) => "mapped",
        };
        write!(f, "Photo({} bytes, {kind})", self.len())
    }
}

/// [`read_input`], refusing a symbolic link itself when `follow` is false
/// (checked again at open time with `O_NOFOLLOW`, so a swap is caught).
pub fn read_input_links(path: &Path, max: u64, follow: bool) -> Result<Vec<u8>> {
    open_input(path, max, follow, true)?.read_all(max)
}

/// An input opened for cleaning: the handle, and what it said about itself
/// when it was opened (the one `fstat` of the file).
#[derive(Debug)]
pub struct Opened {
    file: std::fs::File,
    meta: std::fs::Metadata,
}

/// Opens an input. `look_first`: look at the path before opening it, so a
/// FIFO or device is never even opened (a batch's files were looked at by
/// the scan already: their directory entries said "regular file").
fn open_input(path: &Path, max: u64, follow: bool, look_first: bool) -> Result<Opened> {
    let not_regular = || Error::Invalid("not a regular file".into());
    if look_first {
        let meta = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        }
        .map_err(|e| Error::io("cannot read", e))?;
        if meta.file_type().is_symlink() {
            return Err(Error::Invalid(
                "a symbolic link: not followed (it could lead to a photo outside the folder)"
                    .into(),
            ));
        }
        if !meta.is_file() {
            return Err(not_regular());
        }
    }
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        open.custom_flags(libc::O_NONBLOCK | nofollow);
    }
    let file = open.open(path).map_err(|e| Error::io("cannot read", e))?;
    let meta = file.metadata().map_err(|e| Error::io("cannot read", e))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if max > 0 && meta.len() > max {
        return Err(Error::TooLarge(format!(
            "file is {} bytes, limit {max}",
            meta.len()
        )));
    }
    Ok(Opened { file, meta })
}

/// Bytes read at once before the format is known (a TIFF's header and,
/// usually, its first directory).
const HEAD: usize = 64 << 10;

impl Opened {
    /// Reads the whole file, to its end even if it grew (up to `max`).
    fn read_all(&self, max: u64) -> Result<Vec<u8>> {
        use std::io::Read;
        let bound = if max > 0 { max } else { u64::MAX - 1 };
        let mut bytes = Vec::with_capacity((self.meta.len().min(bound) as usize).saturating_add(1));
        (&self.file)
            .take(bound + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read", e))?;
        if bytes.len() as u64 > bound {
            return Err(Error::TooLarge(format!(
                "file grew past the limit of {max} bytes while being read"
            )));
        }
        Ok(bytes)
    }

    /// Not changed for a while: a change after this look would show in its
    /// change time (file systems stamp changes with a coarse clock, so a
    /// file changed in the last second might change again unseen).
    fn settled(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            use std::time::{Duration, SystemTime, UNIX_EPOCH};
            let (secs, nanos) = (self.meta.ctime(), self.meta.ctime_nsec());
            let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
                return false;
            };
            let changed = UNIX_EPOCH + Duration::new(secs, nanos);
            SystemTime::now()
                .duration_since(changed)
                .is_ok_and(|d| d > Duration::from_secs(1))
        }
        #[cfg(not(unix))]
        false
    }

    /// Fails when the file changed since it was opened: payloads copied by
    /// reference come from the file, so they must be the bytes parsed.
    fn unchanged(&self) -> Result<()> {
        let now = self
            .file
            .metadata()
            .map_err(|e| Error::io("cannot read", e))?;
        let same = now.len() == self.meta.len() && now.modified().ok() == self.meta.modified().ok();
        #[cfg(unix)]
        let same = same && {
            use std::os::unix::fs::MetadataExt;
            (now.ctime(), now.ctime_nsec(), now.ino())
                == (self.meta.ctime(), self.meta.ctime_nsec(), self.meta.ino())
        };
        if same {
            Ok(())
        } else {
            Err(Error::Invalid(
                "the file changed while it was being read; nothing was written (run again)".into(),
            ))
        }
    }
}

/// [`process_file`] for the files of a scan (`batch`): their directory
/// entries said "regular file", so the file is opened without looking at
/// its path first (one `fstat` per input, on the open handle).
pub fn process_scanned(job: &Job, dest: &Destination, settings: &FileSettings) -> FileOutcome {
    process_path(job, dest, settings, false)
}

fn process_path(
    job: &Job,
    dest: &Destination,
    settings: &FileSettings,
    look_first: bool,
) -> FileOutcome {
    let mut output = None;
    let max = settings.max_file_bytes;
    let result = open_input(&job.path, max, true, look_first)
        .and_then(|opened| process_opened(job, &opened, dest, settings, &mut output));
    FileOutcome {
        input: job.path.clone(),
        output,
        result,
    }
}

/// Lossless cleans are written by reference (see [`crate::splice`]): the
/// headers from parsed values, the picture's bytes copied from the input in
/// the kernel. Anything else (regions, faces, `--thorough`, `--keep` /
/// `--shift-dates`, a file that just changed) takes the in-memory path,
/// [`process_inner`].
fn process_opened(
    job: &Job,
    opened: &Opened,
    dest: &Destination,
    settings: &FileSettings,
    output: &mut Option<PathBuf>,
) -> Result<Done> {
    let by_reference = settings.faces.is_none()
        && !settings.clean.thorough
        && settings.clean.keep.is_none()
        && settings.clean.redaction.is_none()
        && settings.regions_for(job).is_empty()
        && opened.settled();
    if !by_reference {
        let input = opened.read_all(settings.max_file_bytes)?;
        return process_inner(job, &input, dest, settings, output);
    }
    // A worker waiting in a join (see `commit::join`) may take another
    // file meanwhile: that one reads into a buffer of its own.
    READ_BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut pool) => clean_by_reference(job, opened, dest, settings, output, &mut pool),
        Err(_) => clean_by_reference(job, opened, dest, settings, output, &mut Vec::new()),
    })
}

thread_local! {
    /// Each worker's read buffer, reused from file to file: the kernel
    /// copies an input into pages already in place (no zero fill, no page
    /// faults after the first files).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Inputs up to this size are read in one call; a larger one's first
/// [`HEAD`] bytes are read first (a large TIFF is then read sparsely).
const WHOLE: usize = 16 << 20;

fn clean_by_reference(
    job: &Job,
    opened: &Opened,
    dest: &Destination,
    settings: &FileSettings,
    output: &mut Option<PathBuf>,
    pool: &mut Vec<u8>,
) -> Result<Done> {
    let mut map = None;
    let result = clean_in_place(job, opened, dest, settings, output, pool, &mut map);
    let Some(map) = map else {
        return result;
    };
    // Zeros stood in for a page the file lost (see `mapped`); whatever went
    // wrong after that is this.
    if !map.intact() {
        return Err(crate::mapped::pages_lost());
    }
    match result {
        // A page lost under a write from the map fails the write, not a read.
        Err(Error::Io { source, .. }) if crate::mapped::bad_address(&source) => {
            opened.unchanged()?;
            Err(crate::mapped::pages_lost())
        }
        Err(e) => opened.unchanged().and(Err(e)),
        done => done,
    }
}

/// [`clean_by_reference`], its input mapped into `map` (when it is large
/// enough and can be) or read into `pool`.
fn clean_in_place<'m>(
    job: &Job,
    opened: &Opened,
    dest: &Destination,
    settings: &FileSettings,
    output: &mut Option<PathBuf>,
    pool: &mut Vec<u8>,
    map: &'m mut Option<crate::mapped::Mapped>,
) -> Result<Done> {
    use crate::mapped::{Mapped, MIN_LEN};
    let ext = extension_of(&job.path);
    let len = opened.meta.len() as usize;
    if pool.len() > WHOLE && pool.len() / 4 > len {
        // One huge file must not pin its buffer for the rest of the batch.
        pool.truncate(len);
        pool.shrink_to_fit();
    }
    // Grown (zeroed) only as far as it is read: a sparse TIFF's never is.
    let grow = |pool: &mut Vec<u8>, n: usize| {
        if pool.len() < n {
            pool.resize(n, 0);
        }
    };
    let read_at = |buf: &mut [u8], off: usize| {
        crate::splice::read_exact_at(&opened.file, buf, off as u64).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Invalid("the file became shorter while it was being read".into())
            } else {
                Error::io("cannot read", e)
            }
        })
    };
    // A HEIF's coded pictures are never read (see `heif::load_sparse`):
    // only its head is read first, as a large file's. Unless its name hashes
    // every byte: then one whole read feeds the parse, the hash and the
    // write (a read to hash plus a kernel copy cost more CPU than that, on
    // the phone HEICs of the shared corpus).
    let heif_boxes_only = hashed_folder(dest).is_none()
        && ext.is_some_and(|e| {
            ["heic", "heif", "hif", "avif"]
                .iter()
                .any(|h| e.eq_ignore_ascii_case(h))
        });
    let first = if len <= WHOLE && !heif_boxes_only {
        len
    } else {
        HEAD.min(len)
    };
    // Read in place (no copy) when the whole file is wanted at once.
    if first == len && len >= MIN_LEN {
        *map = Mapped::new(&opened.file, 0, len);
    }
    if map.is_none() {
        grow(pool, first);
        read_at(&mut pool[..first], 0)?;
    }
    let head: &[u8] = match map.as_deref() {
        Some(m) => m,
        None => &pool[..first],
    };
    let format = container::sniff(head, ext).ok();
    // A large TIFF's strips need not be read at all: only its directories
    // are (memory independent of its size and page count).
    let sparse_ok = first < len && format == Some(Format::Tiff);
    let heif_ok = first < len && matches!(format, Some(Format::Heif | Format::Avif));
    let mut sparse = None;
    let mut heif_holes = None;
    let mut holey = Vec::new();
    if sparse_ok || heif_ok {
        // Zeroed lazily by the allocator: the pages never read cost nothing.
        holey = vec![0u8; len];
        holey[..first].copy_from_slice(&pool[..first]);
    }
    if sparse_ok {
        sparse =
            container::tiff::load_sparse(&mut holey, first, &opened.file, &settings.clean.limits)?;
    } else if heif_ok {
        heif_holes = container::heif::load_sparse(&mut holey, first, &opened.file)?;
    }
    let read_sparsely = sparse.is_some() || heif_holes.is_some();
    if !read_sparsely && first < len {
        *map = Mapped::new(&opened.file, 0, len);
        if map.is_none() {
            grow(pool, len);
            read_at(&mut pool[first..len], first)?;
        }
    }
    let map: &'m Option<Mapped> = map;
    let buf: &[u8] = match map {
        _ if read_sparsely => &holey,
        Some(m) => m,
        None => &pool[..len],
    };
    // Checked before anything made from the bytes is published.
    let unchanged = || {
        if map.as_ref().is_some_and(|m| !m.intact()) {
            return Err(crate::mapped::pages_lost());
        }
        opened.unchanged()
    };
    let plan = match &sparse {
        Some(s) => {
            let t = container::tiff::parse_sparse(buf, &settings.clean.limits, s)?;
            plan_by_reference(container::Parsed::sparse_tiff(t), &settings.clean)
        }
        None => match format {
            Some(f) => {
                let parsed = container::parse(buf, f, &settings.clean.limits)?;
                plan_by_reference(parsed, &settings.clean)
            }
            _ => None,
        },
    };
    let Some(plan) = plan else {
        // Pixels must change: the in-memory path, with every byte (read
        // into memory: a decode takes long, and a map would show it any
        // change made to the file meanwhile).
        if !read_sparsely && map.is_none() {
            return process_inner(job, buf, dest, settings, output);
        }
        use std::io::Seek;
        (&opened.file)
            .rewind()
            .map_err(|e| Error::io("cannot read", e))?;
        let input = opened.read_all(settings.max_file_bytes)?;
        return process_inner(job, &input, dest, settings, output);
    };
    let complete = !read_sparsely;
    // A keyed name hashes every byte: those of a file read sparsely (a TIFF;
    // a HEIF is read sparsely only when its name does not hash it) are
    // streamed through the hash from the file, never held whole, beside the
    // audit and the copy (the name is needed only by the rename: the
    // temporary file goes to the folder, which does not depend on it).
    let name = if read_sparsely {
        NameSource::File(&opened.file, opened.meta.len())
    } else {
        NameSource::Bytes(buf)
    };
    let folder = match &sparse {
        Some(_) => hashed_folder(dest),
        None => None,
    };
    let done = |status| Done {
        status,
        warnings: Vec::new(),
        format: plan.format,
        method: Method::Lossless,
        removed: plan.removed.clone(),
        bytes_in: opened.meta.len(),
        bytes_out: plan.out.len() as u64,
        faces: None,
        referenced: plan.out.referenced() as u64,
    };
    let limits = settings.clean.limits;
    let verify = |view: &[u8]| audit_view(view, &plan, &limits);
    let overwrite = settings.write.overwrite;
    // The output's path; with `--overwrite`, never the input itself.
    let named = |output: &mut Option<PathBuf>, check: bool| {
        let target = target_path(job, dest, plan.format, plan.format, name)?;
        debug_assert!(folder.as_deref().is_none_or(|f| target.parent() == Some(f)));
        *output = Some(target.clone());
        if check && overwrite && same_file(&target, &job.path) {
            return Err(replaces_input());
        }
        Ok(target)
    };
    if settings.dry_run {
        let (target, audited) = match folder {
            Some(_) => commit::join(|| named(output, false), || verify(&plan.out.audit_view())),
            None => (named(output, false), verify(&plan.out.audit_view())),
        };
        target?;
        audited?;
        return Ok(done(Status::WouldClean));
    }
    let src = crate::splice::Source {
        base: buf,
        file: &opened.file,
        complete,
    };
    let written = match &folder {
        Some(folder) => commit::write_spliced_named(
            folder,
            || named(output, true),
            &plan.out,
            &src,
            settings.write,
            verify,
            unchanged,
        ),
        None => {
            let target = named(output, true)?;
            commit::write_spliced(&target, &plan.out, &src, settings.write, verify, unchanged)
        }
    };
    match written {
        Err(Error::OutputExists(target)) => {
            if same_file(&target, &job.path) {
                return Err(replaces_input());
            }
            let old = std::fs::read(&target).unwrap_or_default();
            if plan
                .out
                .same_as(&old, &src)
                .map_err(|e| Error::io("cannot read", e))?
            {
                return Ok(done(Status::UpToDate));
            }
            Err(Error::OutputExists(target))
        }
        r => r.map(|()| done(Status::Cleaned)),
    }
}

/// The folder of an output named by a keyed hash of its input, which
/// [`target_path`] gives before the hash is done (`None` for other names:
/// they cost nothing, and a kept name's folder depends on the input's path).
fn hashed_folder(dest: &Destination) -> Option<PathBuf> {
    match dest {
        Destination::Folder {
            dir,
            naming: Naming::Keyed(_),
        } => Some(dir.clone()),
        Destination::Placed {
            dir,
            naming: Naming::Keyed(_),
            place,
        } => Some(dir.join(&place.folder)),
        _ => None,
    }
}

fn replaces_input() -> Error {
    Error::Invalid("output would replace the input; choose another output".into())
}

/// A lossless clean planned by reference.
struct Plan<'a> {
    format: Format,
    orientation: u16,
    removed: Inventory,
    out: crate::splice::Spliced<'a>,
    /// TIFF: the extent digest of the planned pages (see `tiff::Tiff::extent_digest`).
    extents: Option<[u8; 32]>,
    /// HEIF: the input's parse, which the audit compares the output with.
    heif: Option<Box<container::heif::Heif<'a>>>,
}

/// The lossless rewrite of `parsed` by reference, or `None` when pixels
/// must change (or the format is not written by reference).
fn plan_by_reference<'a>(parsed: Parsed<'a>, opts: &CleanOptions) -> Option<Plan<'a>> {
    let format = parsed.format;
    let orientation = parsed.orientation();
    let must_reencode =
        orientation != 1 && (format == Format::Png || opts.orientation == OrientationMode::Apply);
    if must_reencode {
        return None;
    }
    let policy = RewritePolicy {
        keep_icc: !opts.strip_icc,
        orientation: (orientation != 1).then_some(orientation),
    };
    let removed = Inventory(parsed.inventory.identifying().cloned().collect());
    if let Container::Heif(h) = parsed.container {
        return Some(Plan {
            format,
            orientation,
            removed,
            out: h.rewrite_spliced(&policy),
            extents: None,
            heif: Some(h),
        });
    }
    let (out, extents) = match &parsed.container {
        Container::Jpeg(j) => (j.rewrite_spliced(&policy, j), None),
        Container::Png(p) => (p.rewrite_spliced(&policy), None),
        Container::Tiff(t) => {
            let (out, digest) = t.rewrite_spliced(&policy);
            (out, Some(digest))
        }
        _ => (
            crate::splice::Spliced::from_vec(parsed.rewrite(&policy)?),
            None,
        ),
    };
    Some(Plan {
        format,
        orientation,
        removed,
        out,
        extents,
        heif: None,
    })
}

/// The self-audit of an output written by reference, on its audit view
/// (see [`crate::splice::Spliced::audit_view`]): the same parser as
/// `check`, nothing identifying, the same format and orientation, and for
/// TIFF the pages and chunks where the writer put them (their bytes are the
/// input's, copied from the very ranges the parser checked).
fn audit_view(view: &[u8], plan: &Plan, limits: &Limits) -> Result<()> {
    audit_encoded(view, plan.format, plan.orientation, limits)?;
    if let Some(h) = &plan.heif {
        h.verify_spliced(view, &plan.out, limits)?;
    }
    if let Some(digest) = plan.extents {
        let t = container::tiff::parse(view, limits)
            .map_err(|e| Error::AuditFailed(format!("output does not parse: {e}")))?;
        if t.extent_digest(view) != digest {
            return Err(Error::AuditFailed(
                "output pages or pixel data are not where the writer put them".into(),
            ));
        }
    }
    Ok(())
}

/// Where an output goes.
/// What an output's name is made from (a keyed name hashes it).
#[derive(Clone, Copy)]
enum NameSource<'a> {
    /// The input's bytes, in memory.
    Bytes(&'a [u8]),
    /// The input file and its length (a large TIFF read sparsely).
    File(&'a std::fs::File, u64),
}

fn target_path(
    job: &Job,
    dest: &Destination,
    format: Format,
    input_format: Format,
    name: NameSource,
) -> Result<PathBuf> {
    let pseudonym = |naming: &Naming| match name {
        NameSource::Bytes(b) => naming.pseudonym(b),
        NameSource::File(f, len) => naming.pseudonym_of_file(f, len),
    };
    Ok(match dest {
        Destination::File(p) => {
            check_extension(p, format)?;
            p.clone()
        }
        Destination::Folder { dir, naming } => match pseudonym(naming)? {
            Some(name) => dir.join(format!("{name}.{}", format.extension())),
            None if format == input_format => dir.join(&job.relative),
            // A re-encoded HEIC is a JPEG: the name says so.
            None => dir.join(&job.relative).with_extension(format.extension()),
        },
        Destination::Placed { dir, naming, place } => {
            crate::layout::target(dir, place, pseudonym(naming)?, format.extension())?
        }
    })
}

fn process_inner(
    job: &Job,
    input: &[u8],
    dest: &Destination,
    settings: &FileSettings,
    output: &mut Option<PathBuf>,
) -> Result<Done> {
    let mut regions = settings.regions_for(job);
    let mut warnings = Vec::new();
    let found = match &settings.faces {
        Some(f) => {
            let report = faces::Report {
                found: faces::detect_bytes(input, extension_of(&job.path), &settings.clean.limits)?,
                options: *f,
            };
            regions.extend(report.regions());
            warnings.extend(report.warnings());
            Some(report)
        }
        None => None,
    };
    let mut opts = settings.clean.clone();
    if let Some(k) = opts.keep.as_mut() {
        if let Some(key) = &k.shift_key {
            let case = crate::keep::case_label(job);
            k.shift_seconds = Some(crate::keep::case_offset(key, &case));
        }
    }
    if !regions.is_empty() {
        opts.redaction = Some(Redaction {
            regions: &regions,
            default_effect: settings.effect,
            fill: settings.fill,
        });
    }
    let cleaned = clean_bytes(input, extension_of(&job.path), &opts)?;
    // With --shift-dates the same photo in two cases comes out with two
    // different dates, so its name depends on the case's offset too.
    let salted;
    let name_source = match opts.keep.as_ref().and_then(|k| k.shift_seconds) {
        Some(secs) => {
            salted = [input, b"photodeid-shift-dates", &secs.to_le_bytes()].concat();
            &salted[..]
        }
        None => input,
    };
    let target = target_path(
        job,
        dest,
        cleaned.format,
        cleaned.input_format,
        NameSource::Bytes(name_source),
    )?;
    *output = Some(target.clone());
    warnings.extend(cleaned.warnings.iter().cloned());
    let done = |status| Done {
        status,
        warnings: warnings.clone(),
        format: cleaned.format,
        method: cleaned.method,
        removed: cleaned.removed.clone(),
        bytes_in: input.len() as u64,
        bytes_out: cleaned.bytes.len() as u64,
        faces: found.clone(),
        referenced: 0,
    };
    if settings.dry_run {
        audit(&cleaned.bytes, &cleaned, &settings.clean.limits)?;
        return Ok(done(Status::WouldClean));
    }
    // An existing output is found by the publish itself (its rename
    // refuses to replace one): no look at the destination before.
    if settings.write.overwrite && same_file(&target, &job.path) {
        return Err(replaces_input());
    }
    let limits = settings.clean.limits;
    let written = commit::write_verified(&target, &cleaned.bytes, settings.write, |written| {
        audit(written, &cleaned, &limits)
    });
    match written {
        Err(Error::OutputExists(_)) => {
            if same_file(&target, &job.path) {
                return Err(replaces_input());
            }
            if std::fs::read(&target).is_ok_and(|old| old == cleaned.bytes) {
                return Ok(done(Status::UpToDate));
            }
            Err(Error::OutputExists(target))
        }
        r => r.map(|()| done(Status::Cleaned)),
    }
}

/// An explicit output name must not lie about the format (photodeid never converts).
fn check_extension(path: &Path, format: Format) -> Result<()> {
    let Some(ext) = extension_of(path).map(str::to_ascii_lowercase) else {
        return Ok(());
    };
    let ok = match format {
        Format::Jpeg => matches!(ext.as_str(), "jpg" | "jpeg" | "jpe" | "jfif"),
        Format::Tiff => matches!(ext.as_str(), "tif" | "tiff"),
        Format::Heif => matches!(ext.as_str(), "heic" | "heif" | "hif"),
        other => ext == other.extension(),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "the input is {} but the output name ends in .{ext}; use .{}",
            format.name(),
            format.extension()
        )))
    }
}

/// Same file by device and inode (Unix: hard links, bind mounts and
/// case-insensitive file systems defeat path comparison), else by path.
/// Asked only when the output exists or is to be replaced.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_input_changed_after_it_was_opened_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.jpg");
        std::fs::write(&path, b"0123456789").unwrap();
        let opened = open_input(&path, 0, true, false).unwrap();
        assert!(opened.unchanged().is_ok());
        assert!(!opened.settled(), "just written: cleaned in memory");
        // The same size, rewritten in place (stamped at another time: a
        // file system's coarse clock could give a rewrite within the same
        // tick the same time, which is why a file changed in the last
        // second is never copied by reference; see `settled`).
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        (&f).write_all(b"9876543210").unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000))
            .unwrap();
        let err = opened.unchanged().unwrap_err();
        assert!(err.to_string().contains("changed"), "{err}");
        // Grown: noticed by its size alone.
        let opened = open_input(&path, 0, true, false).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"!")
            .unwrap();
        assert!(opened.unchanged().is_err());
    }

    #[test]
    fn a_photo_is_mapped_once_settled_and_confirmed_only_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.jpg");
        std::fs::write(&small, b"0123456789").unwrap();
        let photo = Photo::open(&small, 0).unwrap();
        assert_eq!(&*photo, b"0123456789");
        assert!(format!("{photo:?}").contains("read"));
        assert!(photo.confirm().is_ok());
        let big = dir.path().join("big.jpg");
        let bytes: Vec<u8> = (0..crate::mapped::MIN_LEN + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&big, &bytes).unwrap();
        // Just written: a writer may still be at it, so it is read.
        assert!(format!("{:?}", Photo::open(&big, 0).unwrap()).contains("read"));
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let photo = Photo::open(&big, 0).unwrap();
        assert!(format!("{photo:?}").contains("mapped"), "{photo:?}");
        assert_eq!(&*photo, &bytes[..]);
        assert!(photo.confirm().is_ok());
        // Rewritten in place, the same size: the map shows the new bytes,
        // and nothing made from them may be published.
        let f = std::fs::OpenOptions::new().write(true).open(&big).unwrap();
        (&f).write_all(&[0u8; 4096]).unwrap();
        let err = photo.confirm().unwrap_err();
        assert!(err.to_string().contains("changed"), "{err}");
        // Cut short under the map: the lost pages read as zeros, and say so.
        f.set_len(8192).unwrap();
        assert!(photo[8192..].iter().all(|&b| b == 0));
        let err = photo.confirm().unwrap_err();
        assert!(err.to_string().contains("could not be read"), "{err}");
        // Over the limit, or not a regular file: refused as `read_input` does.
        assert!(matches!(Photo::open(&big, 100), Err(Error::TooLarge(_))));
        assert!(Photo::open(dir.path(), 0).is_err());
    }
}
