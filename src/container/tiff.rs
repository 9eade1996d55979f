//! TIFF (classic and BigTIFF, either byte order) as a lossless rewrite.
//!
//! The parser walks the IFD chain over borrowed bytes and keeps, per
//! full-resolution page, the entries of one allowlist ([`rule`]) and the
//! strip or tile payloads. The writer builds a fresh file from exactly that:
//! the payloads are copied verbatim (any compression), the tags are the kept
//! entries' raw bytes (same byte order, so nothing is swapped), and the
//! strip/tile tables are rebuilt. The audit re-parses the output with the
//! same parser: any tag off the allowlist is a finding, and the payloads'
//! digest must equal the input's.

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::exif_block::{extra_tag_name, ExifSummary};
use crate::metadata::{short_value, Category, Inventory};
use crate::splice::{AuditAs, Mark, Sink, Spliced};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;

const FORMAT: &str = "TIFF";

fn bad(reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, reason)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

/// Checked reads at absolute offsets of the file.
#[derive(Debug, Clone, Copy)]
struct Reader<'a> {
    b: &'a [u8],
    order: Order,
    big: bool,
    /// When the file was read sparsely: which parts of `b` hold its bytes.
    sparse: Option<&'a Sparse>,
}

/// A TIFF read sparsely: `b` has the file's length, but only the ranges
/// the parser asked for (header, directories, tag values) hold its bytes;
/// strips and tiles are never read (they are copied by reference).
#[derive(Debug, Default)]
pub struct Sparse {
    /// Sorted, disjoint (start, end) ranges that hold the file's bytes.
    loaded: RefCell<Vec<(u64, u64)>>,
    /// The first range the parser wanted that is not loaded.
    miss: Cell<Option<(u64, u64)>>,
}

impl Sparse {
    fn has(&self, off: u64, len: u64) -> bool {
        let end = off + len;
        self.loaded
            .borrow()
            .iter()
            .any(|&(s, e)| s <= off && end <= e)
    }

    fn add(&self, start: u64, end: u64) {
        let mut v = self.loaded.borrow_mut();
        v.push((start, end));
        v.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(v.len());
        for &(s, e) in v.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *v = merged;
    }

    /// Bytes read so far.
    pub fn loaded_bytes(&self) -> u64 {
        self.loaded.borrow().iter().map(|(s, e)| e - s).sum()
    }
}

/// Reads what a sparse parse of `buf` (zeroed, the file's length, its first
/// `head` bytes already read) needs from `file`, parsing again after each
/// read, until the parse needs nothing more. `None` when the directories
/// are so scattered that reading the whole file is cheaper.
pub fn load_sparse(
    buf: &mut [u8],
    head: usize,
    file: &std::fs::File,
    limits: &Limits,
) -> Result<Option<Sparse>> {
    const BLOCK: u64 = 64 << 10;
    let sparse = Sparse::default();
    sparse.add(0, head as u64);
    let len = buf.len() as u64;
    for _ in 0..512 {
        let miss = {
            let r = parse_in(buf, limits, Some(&sparse));
            let miss = sparse.miss.take();
            if miss.is_none() {
                r?;
                return Ok(Some(sparse));
            }
            miss
        };
        let (off, want) = miss.expect("a miss");
        let start = off & !4095;
        let end = (off + want).max(start + BLOCK).min(len);
        crate::splice::read_exact_at(file, &mut buf[start as usize..end as usize], start)
            .map_err(|e| Error::io("cannot read", e))?;
        sparse.add(start, end);
    }
    Ok(None)
}

/// Parses a file loaded by [`load_sparse`].
pub fn parse_sparse<'a>(b: &'a [u8], limits: &Limits, sparse: &'a Sparse) -> Result<Tiff<'a>> {
    parse_in(b, limits, Some(sparse))
}

impl<'a> Reader<'a> {
    fn bytes(&self, off: u64, len: u64) -> Result<&'a [u8]> {
        let b = self.extent(off, len)?;
        match self.sparse {
            Some(s) if !s.has(off, len) => {
                if s.miss.get().is_none() {
                    s.miss.set(Some((off, len)));
                }
                Err(bad(format!("{len} bytes at offset {off} not read yet")))
            }
            _ => Ok(b),
        }
    }

    /// A range that must lie in the file, but whose bytes the parser does
    /// not read (payloads, dropped values): never read in a sparse file.
    fn extent(&self, off: u64, len: u64) -> Result<&'a [u8]> {
        let end = off.checked_add(len).filter(|&e| e <= self.b.len() as u64);
        match end {
            Some(end) => Ok(&self.b[off as usize..end as usize]),
            None => Err(bad(format!(
                "{len} bytes at offset {off} run past the end of the file ({} bytes)",
                self.b.len()
            ))),
        }
    }

    fn uint(&self, raw: &[u8]) -> u64 {
        let mut v = 0u64;
        match self.order {
            Order::Big => raw.iter().for_each(|&x| v = v << 8 | x as u64),
            Order::Little => raw.iter().rev().for_each(|&x| v = v << 8 | x as u64),
        }
        v
    }

    fn read(&self, off: u64, len: u64) -> Result<u64> {
        Ok(self.uint(self.bytes(off, len)?))
    }

    /// Bytes of an offset field and of an entry (4 and 12, or 8 and 20).
    fn word(&self) -> u64 {
        if self.big {
            8
        } else {
            4
        }
    }

    fn put(&self, out: &mut impl Sink, v: u64, len: usize) {
        let mut bytes = v.to_le_bytes();
        if self.order == Order::Big {
            bytes[..len].reverse();
        }
        out.put_slice(&bytes[..len]);
    }
}

/// One IFD entry with its value bytes (inline or pointed to), as stored.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub tag: u16,
    pub kind: u16,
    pub count: u64,
    pub value: &'a [u8],
}

fn type_size(kind: u16) -> Option<u64> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16 | 17 | 18 => Some(8),
        _ => None,
    }
}

impl Entry<'_> {
    /// The values of an unsigned integer entry (BYTE, SHORT, LONG, LONG8, IFD).
    fn uints(&self, r: &Reader) -> Option<Vec<u64>> {
        let size = match self.kind {
            1 => 1,
            3 => 2,
            4 | 13 => 4,
            16 | 18 => 8,
            _ => return None,
        };
        Some(self.value.chunks_exact(size).map(|c| r.uint(c)).collect())
    }

    fn uint(&self, r: &Reader) -> Option<u64> {
        match self.uints(r)?.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(self.value)
            .split('\0')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How many values an allowlisted tag may hold.
#[derive(Debug, Clone, Copy)]
enum Count {
    One,
    /// 1 or SamplesPerPixel.
    PerSample,
    /// At most SamplesPerPixel.
    AtMostSamples,
    Exactly(u64),
    /// `n` times 2^BitsPerSample (colour maps, response curves).
    TimesLevels(u64),
    /// A byte blob (JPEG tables, ICC profile).
    Blob,
}

/// What the rewrite does with an allowlisted tag.
#[derive(Debug, Clone, Copy)]
struct Rule {
    count: Count,
    /// Decoding depends on it: a malformed value refuses the file rather than dropping the tag.
    core: bool,
}

const fn keep(count: Count, core: bool) -> Option<Rule> {
    Some(Rule { count, core })
}

/// Strip and tile tables: read by the parser, rebuilt by the writer.
const STRIP_OFFSETS: u16 = 273;
const STRIP_BYTE_COUNTS: u16 = 279;
const TILE_OFFSETS: u16 = 324;
const TILE_BYTE_COUNTS: u16 = 325;
const ORIENTATION: u16 = 274;
const ICC: u16 = 34675;
const JPEG_TABLES: u16 = 347;

/// THE allowlist, shared by parser, writer and audit: tags that describe
/// how to decode and display the pixels and nothing else. Text tags (even
/// harmless-sounding ones like InkNames or PageName) are never on it.
fn rule(tag: u16) -> Option<Rule> {
    use Count::*;
    match tag {
        254 | 255 => keep(One, false),       // NewSubfileType, SubfileType
        256 | 257 => keep(One, true),        // ImageWidth, ImageLength
        258 => keep(PerSample, true),        // BitsPerSample
        259 | 262 => keep(One, true),        // Compression, PhotometricInterpretation
        263..=265 => keep(One, false),       // Threshholding, CellWidth, CellLength
        266 => keep(One, true),              // FillOrder
        ORIENTATION => keep(One, false),     // validated separately
        277 | 278 => keep(One, true),        // SamplesPerPixel, RowsPerStrip
        280 | 281 => keep(PerSample, false), // Min/MaxSampleValue
        282 | 283 => keep(One, false),       // X/YResolution
        284 => keep(One, true),              // PlanarConfiguration
        290 => keep(One, false),             // GrayResponseUnit
        291 => keep(TimesLevels(1), false),  // GrayResponseCurve
        292 | 293 => keep(One, true),        // T4Options, T6Options
        296 => keep(One, false),             // ResolutionUnit
        301 => keep(TimesLevels(3), false),  // TransferFunction
        317 => keep(One, true),              // Predictor
        318 => keep(Exactly(2), false),      // WhitePoint
        319 => keep(Exactly(6), false),      // PrimaryChromaticities
        320 => keep(TimesLevels(3), true),   // ColorMap
        321 => keep(Exactly(2), false),      // HalftoneHints
        322 | 323 => keep(One, true),        // TileWidth, TileLength
        332 | 334 => keep(One, false),       // InkSet, NumberOfInks
        336 => keep(AtMostSamples, false),   // DotRange (pairs; bounded below)
        338 => keep(AtMostSamples, true),    // ExtraSamples
        339 => keep(PerSample, true),        // SampleFormat
        340 | 341 => keep(PerSample, false), // SMin/SMaxSampleValue
        342 => keep(Exactly(6), false),      // TransferRange
        JPEG_TABLES => keep(Blob, true),
        529 => keep(Exactly(3), false), // YCbCrCoefficients
        530 => keep(Exactly(2), true),  // YCbCrSubSampling
        531 => keep(One, false),        // YCbCrPositioning
        532 => keep(Exactly(6), false), // ReferenceBlackWhite
        ICC => keep(Blob, false),
        STRIP_OFFSETS | STRIP_BYTE_COUNTS | TILE_OFFSETS | TILE_BYTE_COUNTS => keep(Blob, true),
        _ => None,
    }
}

/// Tags and values that mark a camera-raw TIFF (DNG, CR2, NEF, ARW, ...).
fn is_camera_raw(tag: u16, value: Option<u64>) -> bool {
    match tag {
        // DNGVersion, DNGBackwardVersion, UniqueCameraModel; CFA layout
        50706 | 50707 | 50708 | 33421 | 33422 | 50710 => true,
        // Photometric: CFA, LinearRaw
        262 => matches!(value, Some(32803 | 34892)),
        // Compression: packed/vendor raw, Nikon NEF, lossy DNG, Kodak, Pentax, Sony
        259 => matches!(
            value,
            Some(32767 | 32769 | 32770 | 32867 | 34713 | 34892 | 65000)
        ),
        _ => false,
    }
}

/// One full-resolution page: the kept entries and its pixel payloads.
#[derive(Debug)]
pub struct Page<'a> {
    pub width: u32,
    pub height: u32,
    /// Allowlisted entries, sorted by tag, without the strip/tile tables and ICC.
    entries: Vec<Entry<'a>>,
    tiled: bool,
    /// Strip or tile payloads in table order, copied verbatim.
    pub chunks: Vec<&'a [u8]>,
    /// A valid Orientation other than 1.
    pub orientation: Option<u16>,
    pub icc: Option<&'a [u8]>,
    /// JPEG-compressed chunks: the audit reads their headers.
    jpeg: bool,
}

/// A parsed TIFF.
#[derive(Debug)]
pub struct Tiff<'a> {
    order: Order,
    big: bool,
    /// Where the file's bytes start in memory: a chunk's offset in the input
    /// is its address minus this one.
    base: usize,
    pub pages: Vec<Page<'a>>,
    inventory: Inventory,
    capture_time: Option<String>,
}

/// Parses the header and the IFD chain, refusing what cannot be rewritten
/// losslessly and safely (camera raw, loops, bad tables, bombs).
pub fn parse<'a>(b: &'a [u8], limits: &Limits) -> Result<Tiff<'a>> {
    parse_in(b, limits, None)
}

fn parse_in<'a>(b: &'a [u8], limits: &Limits, sparse: Option<&'a Sparse>) -> Result<Tiff<'a>> {
    let order = match b.get(..2) {
        Some(b"II") => Order::Little,
        Some(b"MM") => Order::Big,
        _ => return Err(bad("no TIFF byte-order mark")),
    };
    let mut r = Reader {
        b,
        order,
        big: false,
        sparse,
    };
    let first = match r.read(2, 2)? {
        42 => r.read(4, 4)?,
        43 => {
            r.big = true;
            if r.read(4, 2)? != 8 || r.read(6, 2)? != 0 {
                return Err(bad("BigTIFF header with an unknown offset size"));
            }
            r.read(8, 8)?
        }
        m => return Err(bad(format!("unknown TIFF version {m}"))),
    };
    if !r.big && b.get(8..10) == Some(b"CR") {
        return Err(raw_refusal("Canon CR2"));
    }
    let mut tiff = Tiff {
        order,
        big: r.big,
        base: b.as_ptr() as usize,
        pages: Vec::new(),
        inventory: Inventory::default(),
        capture_time: None,
    };
    let mut seen = HashSet::new();
    let mut next = first;
    let mut index = 0usize;
    while next != 0 {
        if !seen.insert(next) {
            return Err(bad("the chain of image directories loops"));
        }
        let (entries, following) = read_ifd(&r, next)?;
        tiff.directory(&r, index, &entries, limits)?;
        next = following;
        index += 1;
    }
    if tiff.pages.is_empty() {
        return Err(bad("no full-resolution image"));
    }
    Ok(tiff)
}

fn raw_refusal(what: &str) -> Error {
    Error::Unsupported(format!(
        "camera raw is not supported ({what}); export it to TIFF, JPEG or PNG first"
    ))
}

/// The entries of the IFD at `off` and the offset of the next one.
fn read_ifd<'a>(r: &Reader<'a>, off: u64) -> Result<(Vec<Entry<'a>>, u64)> {
    let word = r.word();
    let (n, table) = if r.big {
        (r.read(off, 8)?, off + 8)
    } else {
        (r.read(off, 2)?, off + 2)
    };
    let entry_len = 4 + 2 * word;
    let len = n
        .checked_mul(entry_len)
        .ok_or_else(|| bad("IFD entry count overflows"))?;
    let raw = r.bytes(table, len)?;
    let next = r.read(table + len, word)?;
    let mut entries = Vec::new();
    for e in raw.chunks_exact(entry_len as usize) {
        let tag = r.uint(&e[0..2]) as u16;
        let kind = r.uint(&e[2..4]) as u16;
        let count = r.uint(&e[4..4 + word as usize]);
        let field = &e[4 + word as usize..];
        let Some(size) = type_size(kind) else {
            // Unknown type: readers skip it; keep it visible to the inventory.
            entries.push(Entry {
                tag,
                kind,
                count: 0,
                value: &[],
            });
            continue;
        };
        let total = count
            .checked_mul(size)
            .ok_or_else(|| bad(format!("tag {tag}: value count overflows")))?;
        // Values only counted in the inventory (XMP, IPTC, Photoshop
        // layers, private blobs) are not read from a sparse file.
        let read = rule(tag).is_some()
            || kind == 2
            || extra_tag_name(tag).is_some()
            || matches!(tag, 330 | 34665 | 34853 | 40965);
        let value = if total <= word {
            &field[..total as usize]
        } else if read {
            r.bytes(r.uint(field), total)
                .map_err(|e| bad(format!("tag {tag}: {e}")))?
        } else {
            r.extent(r.uint(field), total)
                .map_err(|e| bad(format!("tag {tag}: {e}")))?
        };
        entries.push(Entry {
            tag,
            kind,
            count,
            value,
        });
    }
    Ok((entries, next))
}

fn find<'e, 'a>(entries: &'e [Entry<'a>], tag: u16) -> Option<&'e Entry<'a>> {
    entries.iter().find(|e| e.tag == tag)
}

impl<'a> Tiff<'a> {
    /// Takes one IFD: refuses raw, keeps it as a page or records it as a preview.
    fn directory(
        &mut self,
        r: &Reader<'a>,
        index: usize,
        entries: &[Entry<'a>],
        limits: &Limits,
    ) -> Result<()> {
        let get = |tag| find(entries, tag).and_then(|e| e.uint(r));
        for e in entries {
            if is_camera_raw(e.tag, e.uint(r)) {
                let what = if e.tag >= 50706 {
                    "DNG"
                } else {
                    "raw sensor data"
                };
                return Err(raw_refusal(what));
            }
        }
        let (w, h) = match (get(256), get(257)) {
            (Some(w), Some(h)) => (
                u32::try_from(w).map_err(|_| bad("image width out of range"))?,
                u32::try_from(h).map_err(|_| bad("image height out of range"))?,
            ),
            _ => return Err(bad(format!("image directory {index} has no size"))),
        };
        // The size limit holds before any table is looked at.
        check_dimensions(FORMAT, w, h, limits)?;
        let reduced = get(254).is_some_and(|v| v & 1 == 1) || get(255) == Some(2);
        // Findings name the page (as a viewer counts them) or the directory of a preview.
        let where_ = match (index, reduced) {
            (0, _) => String::new(),
            (_, true) => format!("IFD{index}: "),
            (_, false) => format!("page {}: ", self.pages.len() + 1),
        };
        if reduced {
            self.inventory.push(
                Category::Thumbnail,
                format!("{where_}reduced-resolution image {w}x{h}"),
            );
            return Ok(());
        }
        self.inventory_dropped(r, &where_, entries);
        let page = page(r, w, h, entries, &mut self.inventory, &where_)?;
        if self.pages.is_empty() {
            self.capture_time = capture_time(r, entries);
        }
        self.pages.push(page);
        Ok(())
    }

    /// Reports every entry the allowlist drops, by category.
    fn inventory_dropped(&mut self, r: &Reader<'a>, where_: &str, entries: &[Entry<'a>]) {
        let inv = &mut self.inventory;
        let mut geo = false;
        let mut others = Vec::new();
        for e in entries.iter().filter(|e| rule(e.tag).is_none()) {
            let n = e.value.len();
            match e.tag {
                34665 => inv.push(Category::Exif, format!("{where_}{}", sub_ifd(r, e, "EXIF"))),
                34853 => inv.push(Category::Gps, format!("{where_}{}", sub_ifd(r, e, "GPS"))),
                40965 => inv.push(Category::Exif, format!("{where_}Interoperability IFD")),
                330 => inv.push(
                    Category::Thumbnail,
                    format!("{where_}{} SubIFDs (previews or reduced images)", e.count),
                ),
                513 | 514 => inv.push(Category::Thumbnail, format!("{where_}JPEG thumbnail")),
                700 => inv.push(Category::Xmp, format!("{where_}XMP packet, {n} bytes")),
                33723 => inv.push(Category::IptcPhotoshop, format!("{where_}IPTC, {n} bytes")),
                34377 => inv.push(
                    Category::IptcPhotoshop,
                    format!("{where_}Photoshop resources, {n} bytes"),
                ),
                37724 => inv.push(
                    Category::IptcPhotoshop,
                    format!("{where_}ImageSourceData (Photoshop layers), {n} bytes"),
                ),
                33550 | 33922 | 34264 | 34735..=34737 => geo = true,
                _ if e.kind == 2 || extra_tag_name(e.tag).is_some() => {
                    let value = if e.kind == 2 {
                        e.text()
                    } else {
                        String::from_utf8_lossy(e.value).replace('\0', "")
                    };
                    inv.push(
                        Category::Exif,
                        format!(
                            "{where_}{} \"{}\"",
                            tag_name(e.tag),
                            short_value(&value, 60)
                        ),
                    );
                }
                _ => others.push(e.tag),
            }
        }
        if geo {
            inv.push(Category::Gps, format!("{where_}GeoTIFF tags (a location)"));
        }
        if !others.is_empty() {
            let list: Vec<String> = others.iter().take(5).map(|t| tag_name(*t)).collect();
            inv.push(
                Category::Other,
                format!("{where_}{} other tags ({})", others.len(), list.join(", ")),
            );
        }
    }

    /// What `check` reports and the audit requires to be clean.
    pub fn inventory(&self) -> Inventory {
        let mut inv = self.inventory.clone();
        for (i, p) in self.pages.iter().enumerate() {
            let where_ = if i == 0 {
                String::new()
            } else {
                format!("page {}: ", i + 1)
            };
            if let Some(icc) = p.icc {
                let mut found = Inventory::default();
                crate::icc::audit(icc, &mut found);
                for f in found.0 {
                    inv.push(f.category, format!("{where_}{}", f.detail));
                }
            }
            if let Some(o) = p.orientation {
                inv.push(Category::Orientation, format!("{where_}Orientation {o}"));
            }
        }
        inv
    }

    /// Orientation of the first page and the capture time, as for EXIF blocks.
    pub fn exif_summary(&self) -> ExifSummary {
        ExifSummary {
            orientation: self.pages[0].orientation,
            capture_time: self.capture_time.clone(),
            inventory: Inventory::default(),
        }
    }

    /// A digest of every page's size and payloads in order: equal digests
    /// mean the same pages with the same pixel bytes.
    pub fn pixel_digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&(self.pages.len() as u64).to_le_bytes());
        for p in &self.pages {
            h.update(&p.width.to_le_bytes());
            h.update(&p.height.to_le_bytes());
            h.update(&(p.chunks.len() as u64).to_le_bytes());
            for c in &p.chunks {
                h.update(&(c.len() as u64).to_le_bytes());
                h.update(c);
            }
        }
        *h.finalize().as_bytes()
    }

    /// Writes a fresh TIFF: every page, its payloads verbatim, allowlisted tags only.
    pub fn rewrite(&self, policy: &RewritePolicy) -> Vec<u8> {
        self.rewrite_spliced(policy).0.to_vec()
    }

    /// The pages' sizes and where their chunks lie in `base` (this file's
    /// bytes): an output whose extent digest equals its writer's plan holds
    /// the planned chunks in the planned places.
    pub fn extent_digest(&self, base: &[u8]) -> [u8; 32] {
        let at = base.as_ptr() as usize;
        extent_digest(self.pages.iter().map(|p| {
            let chunks = p.chunks.iter().map(|c| {
                let off = (c.as_ptr() as usize).wrapping_sub(at) as u64;
                (off, c.len() as u64)
            });
            (p.width, p.height, chunks.collect())
        }))
    }

    /// [`Tiff::rewrite`] with the strips and tiles by reference (see
    /// [`crate::splice`]), and the extent digest of what it plans.
    pub fn rewrite_spliced(&self, policy: &RewritePolicy) -> (Spliced<'a>, [u8; 32]) {
        let payload: u64 = self
            .pages
            .iter()
            .flat_map(|p| p.chunks.iter())
            .map(|c| c.len() as u64)
            .sum();
        let tables: u64 = self.pages.iter().map(|p| page_overhead(p) + 4096).sum();
        // A classic file whose new layout would pass 4 GiB becomes BigTIFF.
        let big = self.big || payload + tables + 16 > u32::MAX as u64;
        let w = Reader {
            b: &[],
            order: self.order,
            big,
            sparse: None,
        };
        let mut out = Spliced::new();
        out.extend_from_slice(match self.order {
            Order::Little => b"II",
            Order::Big => b"MM",
        });
        if big {
            w.put(&mut out, 43, 2);
            w.put(&mut out, 8, 2);
            w.put(&mut out, 0, 2);
        } else {
            w.put(&mut out, 42, 2);
        }
        let mut link = out.mark();
        w.put(&mut out, 0, w.word() as usize);
        let mut plan = Vec::with_capacity(self.pages.len());
        for p in &self.pages {
            self.align_payload(p, &mut out);
            let (ifd, next_link, extents) = write_page(&w, p, policy, &mut out);
            patch(&w, &mut out, link, ifd);
            link = next_link;
            plan.push((p.width, p.height, extents));
        }
        (out, extent_digest(plan.into_iter()))
    }
}

impl Tiff<'_> {
    /// Pads with zeros so that a large page's first chunk lands at the same
    /// offset within a 4 KiB page of the output as it has in the input: the
    /// kernel then copies it whole pages at a time (`copy_file_range` of a
    /// 72 MB strip run took 38 ms of system time misaligned, 28 ms aligned,
    /// here). The padding is zeros that no tag points at, less than 4 KiB.
    fn align_payload(&self, p: &Page, out: &mut Spliced) {
        const PAGE: usize = 4096;
        let Some(first) = p.chunks.first() else {
            return;
        };
        if p.chunks.iter().map(|c| c.len()).sum::<usize>() < 64 * PAGE {
            return;
        }
        let in_off = (first.as_ptr() as usize).wrapping_sub(self.base);
        let pad = (in_off % PAGE + PAGE - out.len() % PAGE) % PAGE;
        out.extend(std::iter::repeat_n(0, pad));
    }
}

/// Upper bound of a page's IFD and values (for sizing the output).
fn page_overhead(p: &Page) -> u64 {
    let values: u64 = p.entries.iter().map(|e| e.value.len() as u64 + 2).sum();
    let icc = p.icc.map_or(0, |i| i.len() as u64 + 2);
    (p.entries.len() as u64 + 4) * 20 + values + icc + 16 * p.chunks.len() as u64 + 32
}

fn patch(w: &Reader, out: &mut Spliced, at: Mark, value: u64) {
    let mut v = Vec::new();
    w.put(&mut v, value, w.word() as usize);
    out.patch(at, &v);
}

/// Pages (width, height, chunk offsets and lengths), hashed.
fn extent_digest(pages: impl Iterator<Item = (u32, u32, Vec<(u64, u64)>)>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    let mut n = 0u64;
    for (w, ht, chunks) in pages {
        n += 1;
        h.update(&w.to_le_bytes());
        h.update(&ht.to_le_bytes());
        h.update(&(chunks.len() as u64).to_le_bytes());
        for (off, len) in chunks {
            h.update(&off.to_le_bytes());
            h.update(&len.to_le_bytes());
        }
    }
    h.update(&n.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The one place a kept ICC profile passes through on its way out: rebuilt
/// from its colour tags by the shared sanitiser; one it cannot trust is dropped.
fn icc_to_keep(profile: &[u8]) -> Option<Cow<'_, [u8]>> {
    crate::icc::sanitize(profile).ok().map(Cow::Owned)
}

/// An entry to write: the stored one, or a rebuilt table.
struct OutEntry<'v> {
    tag: u16,
    kind: u16,
    count: u64,
    value: Cow<'v, [u8]>,
}

/// Appends the page's payloads (by reference), then its values and IFD;
/// returns the IFD offset, where its link to the next goes, and where the
/// chunks went. Every kept Orientation stays (each page displays as it
/// did); values of 1 were never kept.
fn write_page<'a>(
    w: &Reader,
    p: &Page<'a>,
    policy: &RewritePolicy,
    out: &mut Spliced<'a>,
) -> (u64, Mark, Vec<(u64, u64)>) {
    let mut offsets = Vec::with_capacity(p.chunks.len() * 8);
    let mut counts = Vec::with_capacity(p.chunks.len() * 8);
    let mut extents = Vec::with_capacity(p.chunks.len());
    let (kind, size) = if w.big { (16, 8) } else { (4, 4) };
    // The audit checks where chunks lie, not their bytes (the digest of
    // the plan); JPEG chunks it reads, for their segment headers.
    let audit = if p.jpeg {
        AuditAs::Bytes
    } else {
        AuditAs::Zeros
    };
    for c in &p.chunks {
        w.put(&mut offsets, out.len() as u64, size);
        w.put(&mut counts, c.len() as u64, size);
        extents.push((out.len() as u64, c.len() as u64));
        out.payload(c, audit);
    }
    let n = p.chunks.len() as u64;
    let (off_tag, count_tag) = if p.tiled {
        (TILE_OFFSETS, TILE_BYTE_COUNTS)
    } else {
        (STRIP_OFFSETS, STRIP_BYTE_COUNTS)
    };
    let mut entries: Vec<OutEntry> = p
        .entries
        .iter()
        .map(|e| OutEntry {
            tag: e.tag,
            kind: e.kind,
            count: e.count,
            value: Cow::Borrowed(e.value),
        })
        .collect();
    entries.push(OutEntry {
        tag: off_tag,
        kind,
        count: n,
        value: Cow::Owned(offsets),
    });
    entries.push(OutEntry {
        tag: count_tag,
        kind,
        count: n,
        value: Cow::Owned(counts),
    });
    if let Some(icc) = p.icc.filter(|_| policy.keep_icc).and_then(icc_to_keep) {
        entries.push(OutEntry {
            tag: ICC,
            kind: 7,
            count: icc.len() as u64,
            value: icc,
        });
    }
    entries.sort_by_key(|e| e.tag);
    let word = w.word() as usize;
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let ifd = out.len() as u64;
    let entry_len = 4 + 2 * word;
    let table_len = if w.big { 8 } else { 2 } + entries.len() * entry_len + word;
    // Values too long for the entry go right after the IFD, word-aligned.
    let mut value_at = ifd + table_len as u64;
    let mut values = Vec::new();
    w.put(out, entries.len() as u64, if w.big { 8 } else { 2 });
    for e in &entries {
        w.put(out, e.tag as u64, 2);
        w.put(out, e.kind as u64, 2);
        w.put(out, e.count, word);
        if e.value.len() <= word {
            out.extend_from_slice(&e.value);
            out.extend(std::iter::repeat_n(0, word - e.value.len()));
        } else {
            w.put(out, value_at, word);
            values.extend_from_slice(&e.value);
            if values.len() % 2 == 1 {
                values.push(0);
            }
            value_at = ifd + table_len as u64 + values.len() as u64;
        }
    }
    let link = out.mark();
    w.put(out, 0, word); // next IFD, patched by the caller
    out.extend_from_slice(&values);
    (ifd, link, extents)
}

/// The page's layout, checked: tables in bounds, the right number of
/// chunks for the declared size, no overlaps, kept tags well-formed.
fn page<'a>(
    r: &Reader<'a>,
    width: u32,
    height: u32,
    entries: &[Entry<'a>],
    inv: &mut Inventory,
    where_: &str,
) -> Result<Page<'a>> {
    let get = |tag| find(entries, tag).and_then(|e| e.uint(r));
    let spp = get(277).unwrap_or(1);
    if spp == 0 || spp > 64 {
        return Err(bad(format!("{spp} samples per pixel")));
    }
    let bits = find(entries, 258)
        .and_then(|e| e.uints(r))
        .unwrap_or_else(|| vec![1]);
    let bits0 = bits.first().copied().unwrap_or(1);
    if bits.iter().any(|&b| b == 0 || b > 64) {
        return Err(bad("bits per sample out of range"));
    }
    let compression = get(259).unwrap_or(1);
    if compression == 6 {
        return Err(Error::Unsupported(
            "TIFF with old-style JPEG compression (6); convert it with tiffcp -c jpeg first".into(),
        ));
    }
    let planar = get(284).unwrap_or(1);
    let mut kept = Vec::new();
    let mut orientation = None;
    let mut icc = None;
    for e in entries {
        let Some(rule) = rule(e.tag) else { continue };
        if matches!(
            e.tag,
            STRIP_OFFSETS | STRIP_BYTE_COUNTS | TILE_OFFSETS | TILE_BYTE_COUNTS
        ) {
            continue;
        }
        if !well_formed(e, rule, spp, bits0) {
            if rule.core {
                return Err(bad(format!(
                    "{} has an unexpected type or count",
                    tag_name(e.tag)
                )));
            }
            inv.push(
                Category::Other,
                format!("{where_}malformed {} (dropped)", tag_name(e.tag)),
            );
            continue;
        }
        match e.tag {
            ORIENTATION => match e.uint(r) {
                Some(1) => {}
                Some(o @ 2..=8) => {
                    orientation = Some(o as u16);
                    kept.push(*e);
                }
                _ => inv.push(Category::Exif, format!("{where_}invalid Orientation value")),
            },
            ICC => icc = Some(e.value),
            JPEG_TABLES => {
                jpeg_without_metadata(e.value, "JPEGTables")?;
                kept.push(*e);
            }
            _ => kept.push(*e),
        }
    }
    let tiled = find(entries, TILE_OFFSETS).is_some();
    let (off_tag, count_tag) = if tiled {
        (TILE_OFFSETS, TILE_BYTE_COUNTS)
    } else {
        (STRIP_OFFSETS, STRIP_BYTE_COUNTS)
    };
    let table = |tag| {
        find(entries, tag)
            .and_then(|e| e.uints(r))
            .ok_or_else(|| bad(format!("no readable {}", tag_name(tag))))
    };
    let (offsets, counts) = (table(off_tag)?, table(count_tag)?);
    let planes = if planar == 2 { spp } else { 1 };
    let pixel_bits: u64 = if planar == 2 {
        bits0
    } else {
        (0..spp as usize)
            .map(|i| bits.get(i).copied().unwrap_or(bits0))
            .sum()
    };
    let (w, h) = (width as u64, height as u64);
    // (chunks per plane, rows per chunk, bytes of one uncompressed row of a chunk)
    let (per_plane, rows, row_bytes) = if tiled {
        let (tw, th) = (get(322).unwrap_or(0), get(323).unwrap_or(0));
        if tw == 0 || th == 0 {
            return Err(bad("tiled image without a tile size"));
        }
        (
            w.div_ceil(tw) * h.div_ceil(th),
            th,
            (tw * pixel_bits).div_ceil(8),
        )
    } else {
        let rps = get(278).unwrap_or(h).clamp(1, h.max(1));
        (h.div_ceil(rps), rps, (w * pixel_bits).div_ceil(8))
    };
    let expected = per_plane * planes;
    if offsets.len() as u64 != expected || counts.len() as u64 != expected {
        return Err(bad(format!(
            "{}: {} entries, but a {width}x{height} image needs {expected}",
            tag_name(off_tag),
            offsets.len()
        )));
    }
    let mut chunks = Vec::with_capacity(offsets.len());
    let mut spans = Vec::new();
    for (i, (&off, &len)) in offsets.iter().zip(&counts).enumerate() {
        // JPEG chunks are read for their segment headers; others only located.
        let chunk = if compression == 7 {
            r.bytes(off, len)
        } else {
            r.extent(off, len)
        };
        let chunk =
            chunk.map_err(|e| bad(format!("{} {i}: {e}", if tiled { "tile" } else { "strip" })))?;
        if compression == 1 && len > 0 {
            // An uncompressed chunk must hold its declared rows (the last strip may be short).
            let chunk_rows = if tiled {
                rows
            } else {
                rows.min(h - (i as u64 % per_plane) * rows)
            };
            let need = row_bytes * chunk_rows;
            if len < need {
                return Err(bad(format!(
                    "strip {i} holds {len} bytes, the declared size needs {need}"
                )));
            }
        }
        if compression == 7 && len > 0 {
            jpeg_without_metadata(chunk, "a JPEG strip")?;
        }
        if len > 0 {
            spans.push((off, off + len));
        }
        chunks.push(chunk);
    }
    spans.sort_unstable();
    if spans.windows(2).any(|s| s[1].0 < s[0].1) {
        return Err(bad("strips or tiles overlap"));
    }
    kept.sort_by_key(|e| e.tag);
    Ok(Page {
        width,
        height,
        entries: kept,
        tiled,
        chunks,
        orientation,
        icc,
        jpeg: compression == 7,
    })
}

/// Whether an allowlisted entry has a numeric type (blobs: bytes) and the count its rule allows.
fn well_formed(e: &Entry, rule: Rule, spp: u64, bits: u64) -> bool {
    let numeric = matches!(e.kind, 1 | 3 | 4 | 5 | 8 | 9 | 10 | 11 | 12 | 16 | 17);
    let levels = |n: u64| (bits <= 16).then(|| n << bits);
    match rule.count {
        Count::Blob => matches!(e.kind, 1 | 7),
        Count::One => numeric && e.count == 1,
        Count::PerSample => numeric && (e.count == 1 || e.count == spp),
        Count::AtMostSamples => numeric && e.count <= spp * 2,
        Count::Exactly(n) => numeric && e.count == n,
        Count::TimesLevels(n) => {
            numeric && (Some(e.count) == levels(n) || (n == 3 && Some(e.count) == levels(1)))
        }
    }
}

/// JPEG streams inside a TIFF (tables, strips) are copied verbatim, so they
/// must not carry metadata segments: APP1..APP13, APP15 or COM before the scan.
fn jpeg_without_metadata(b: &[u8], what: &str) -> Result<()> {
    let mut i = 2usize;
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err(bad(format!("{what} is not a JPEG stream")));
    }
    while let (Some(&0xFF), Some(&m)) = (b.get(i), b.get(i + 1)) {
        if m == 0xFF {
            i += 1;
            continue;
        }
        if m == 0xDA || m == 0xD9 {
            return Ok(());
        }
        if (0xE1..=0xED).contains(&m) || m == 0xEF || m == 0xFE {
            return Err(Error::Unsupported(format!(
                "{what} carries a JPEG metadata segment (marker 0x{m:02X}) that cannot be removed losslessly"
            )));
        }
        let len = b
            .get(i + 2..i + 4)
            .map(|l| u16::from_be_bytes([l[0], l[1]]));
        match len {
            Some(len) if len >= 2 => i += 2 + len as usize,
            _ => return Err(bad(format!("{what}: truncated JPEG segment"))),
        }
    }
    Ok(())
}

/// `EXIF IFD, 12 tags: Make "X", ...` (text values named, the rest counted).
fn sub_ifd(r: &Reader, e: &Entry, what: &str) -> String {
    let Some(off) = e.uint(r) else {
        return format!("{what} IFD (unreadable pointer)");
    };
    let Ok((entries, _)) = read_ifd(r, off) else {
        return format!("{what} IFD (unreadable)");
    };
    let context = if what == "GPS" {
        exif::Context::Gps
    } else {
        exif::Context::Exif
    };
    let texts: Vec<String> = entries
        .iter()
        .filter(|e| e.kind == 2)
        .take(4)
        .map(|e| {
            format!(
                "{} \"{}\"",
                exif::Tag(context, e.tag),
                short_value(&e.text(), 40)
            )
        })
        .collect();
    let mut s = format!("{what} IFD, {} tags", entries.len());
    if !texts.is_empty() {
        s.push_str(": ");
        s.push_str(&texts.join(", "));
    }
    s
}

/// DateTimeOriginal, else DateTimeDigitized, from the EXIF IFD (collage dates).
fn capture_time(r: &Reader, entries: &[Entry]) -> Option<String> {
    let exif = find(entries, 34665)?.uint(r)?;
    let (sub, _) = read_ifd(r, exif).ok()?;
    [36867, 36868]
        .iter()
        .find_map(|&t| find(&sub, t).filter(|e| e.kind == 2))
        .map(|e| e.text().trim().to_string())
}

fn tag_name(tag: u16) -> String {
    match extra_tag_name(tag) {
        Some(n) => n.to_string(),
        None => match tag {
            285 => "PageName".into(),
            297 => "PageNumber".into(),
            333 => "InkNames".into(),
            _ => exif::Tag(exif::Context::Tiff, tag).to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic TIFF: one `w` x `h` 8-bit gray page per entry of `pages`,
    /// each with extra `(tag, type, count, value)` entries (inline only).
    /// Width, height and extra `(tag, type, count, inline value)` entries of one page.
    type TestPage = (u32, u32, Vec<(u16, u16, u32, u32)>);

    pub(crate) fn build(le: bool, pages: &[TestPage]) -> Vec<u8> {
        let r = Reader {
            b: &[],
            order: if le { Order::Little } else { Order::Big },
            big: false,
            sparse: None,
        };
        let mut v = if le { b"II".to_vec() } else { b"MM".to_vec() };
        r.put(&mut v, 42, 2);
        let mut link = v.len();
        r.put(&mut v, 0, 4);
        for (i, (w, h, extra)) in pages.iter().enumerate() {
            let data = v.len() as u32;
            v.extend((0..w * h).map(|p| (p as u8).wrapping_mul(7).wrapping_add(i as u8)));
            if v.len() % 2 == 1 {
                v.push(0);
            }
            let mut entries: Vec<(u16, u16, u32, u32)> = vec![
                (256, 4, 1, *w),
                (257, 4, 1, *h),
                (258, 3, 1, 8),
                (259, 3, 1, 1),
                (262, 3, 1, 1),
                (273, 4, 1, data),
                (277, 3, 1, 1),
                (278, 4, 1, *h),
                (279, 4, 1, w * h),
            ];
            entries.extend(extra.iter().copied());
            entries.sort_by_key(|e| e.0);
            let ifd = v.len() as u64;
            let mut tmp = Vec::new();
            r.put(&mut tmp, ifd, 4);
            v[link..link + 4].copy_from_slice(&tmp);
            r.put(&mut v, entries.len() as u64, 2);
            for (tag, kind, count, value) in entries {
                r.put(&mut v, tag as u64, 2);
                r.put(&mut v, kind as u64, 2);
                r.put(&mut v, count as u64, 4);
                if kind == 3 && count == 1 {
                    r.put(&mut v, value as u64, 2);
                    r.put(&mut v, 0, 2);
                } else {
                    r.put(&mut v, value as u64, 4);
                }
            }
            link = v.len();
            r.put(&mut v, 0, 4);
        }
        v
    }

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn rewrite_keeps_every_page_and_payload_in_both_byte_orders() {
        for le in [true, false] {
            let src = build(
                le,
                &[
                    (
                        8,
                        4,
                        vec![(274, 3, 1, 6), (305, 2, 4, u32::from_le_bytes(*b"abc\0"))],
                    ),
                    (
                        5,
                        3,
                        vec![(254, 4, 1, 2), (315, 2, 4, u32::from_le_bytes(*b"xyz\0"))],
                    ),
                ],
            );
            let t = parse(&src, &limits()).unwrap();
            assert_eq!(t.pages.len(), 2);
            assert!(!t.inventory().is_clean());
            let policy = RewritePolicy {
                keep_icc: true,
                orientation: Some(6),
            };
            let out = t.rewrite(&policy);
            let back = parse(&out, &limits()).unwrap();
            assert!(back.inventory().is_clean(), "{:?}", back.inventory());
            assert_eq!(back.pages.len(), 2);
            assert_eq!(back.pixel_digest(), t.pixel_digest());
            assert_eq!(back.pages[0].orientation, Some(6));
            // An independent reader decodes both pages to the same pixels.
            let mut d = ::tiff::decoder::Decoder::new(std::io::Cursor::new(&out)).unwrap();
            let mut s = ::tiff::decoder::Decoder::new(std::io::Cursor::new(&src)).unwrap();
            for _ in 0..2 {
                assert_eq!(
                    format!("{:?}", d.read_image().unwrap()),
                    format!("{:?}", s.read_image().unwrap())
                );
                if d.more_images() {
                    d.next_image().unwrap();
                    s.next_image().unwrap();
                }
            }
        }
    }

    #[test]
    fn reduced_resolution_pages_are_dropped_and_reported() {
        let src = build(true, &[(8, 4, vec![]), (2, 1, vec![(254, 4, 1, 1)])]);
        let t = parse(&src, &limits()).unwrap();
        assert_eq!(t.pages.len(), 1);
        let inv = t.inventory();
        assert!(
            inv.0.iter().any(|f| f.category == Category::Thumbnail),
            "{inv:?}"
        );
    }

    #[test]
    fn hostile_structures_are_refused() {
        // DNG
        let dng = build(true, &[(4, 4, vec![(50706, 1, 4, 0x0104)])]);
        let e = parse(&dng, &limits()).unwrap_err();
        assert!(e.to_string().contains("camera raw is not supported"), "{e}");
        // A loop: the next-IFD pointer points back at IFD0.
        let mut looped = build(true, &[(4, 4, vec![])]);
        let first = u32::from_le_bytes(looped[4..8].try_into().unwrap());
        let n = looped.len();
        looped[n - 4..].copy_from_slice(&first.to_le_bytes());
        assert!(parse(&looped, &limits())
            .unwrap_err()
            .to_string()
            .contains("loops"));
        // A strip that is shorter than the declared size.
        let short = build(true, &[(4, 4, vec![])]);
        let t = parse(&short, &limits()).unwrap();
        assert_eq!(t.pages[0].chunks[0].len(), 16);
        let mut lying = build(true, &[(4, 8, vec![])]);
        lying.truncate(lying.len()); // same bytes, height patched below
        let patched = patch_tag(&lying, 257, 9);
        assert!(parse(&patched, &limits()).is_err());
        // A bomb: refused as too large before the tables are read.
        let bomb = patch_tag(&build(true, &[(4, 4, vec![])]), 256, 100_000_000);
        assert!(matches!(parse(&bomb, &limits()), Err(Error::TooLarge(_))));
    }

    /// Sets the inline value of `tag` in IFD0 of a little-endian file from `build`.
    fn patch_tag(b: &[u8], tag: u16, value: u32) -> Vec<u8> {
        let mut v = b.to_vec();
        let ifd = u32::from_le_bytes(v[4..8].try_into().unwrap()) as usize;
        let n = u16::from_le_bytes([v[ifd], v[ifd + 1]]) as usize;
        for i in 0..n {
            let at = ifd + 2 + i * 12;
            if u16::from_le_bytes([v[at], v[at + 1]]) == tag {
                v[at + 8..at + 12].copy_from_slice(&value.to_le_bytes());
            }
        }
        v
    }

    #[test]
    fn truncations_and_bit_flips_never_panic() {
        let src = build(false, &[(6, 5, vec![(274, 3, 1, 3)]), (3, 3, vec![])]);
        for n in 0..src.len() {
            let _ = parse(&src[..n], &limits()).map(|t| t.rewrite(&RewritePolicy::default()));
        }
        for i in 0..src.len() {
            for bit in 0..8 {
                let mut b = src.clone();
                b[i] ^= 1 << bit;
                if let Ok(t) = parse(&b, &limits()) {
                    let out = t.rewrite(&RewritePolicy::default());
                    let back = parse(&out, &limits()).expect("our output parses");
                    assert_eq!(back.pixel_digest(), t.pixel_digest());
                }
            }
        }
    }

    #[test]
    fn jpeg_strips_with_metadata_are_refused() {
        let app1 = [0xFF, 0xD8, 0xFF, 0xE1, 0, 4, b'x', b'y', 0xFF, 0xDA];
        assert!(jpeg_without_metadata(&app1, "a strip").is_err());
        let clean = [0xFF, 0xD8, 0xFF, 0xDB, 0, 3, 1, 0xFF, 0xDA];
        assert!(jpeg_without_metadata(&clean, "a strip").is_ok());
    }
}
