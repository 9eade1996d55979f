//! JPEG at segment level: split into marker segments and entropy-coded
//! scans, classify each segment, and write back only what decoding and
//! display need, rebuilt from parsed values: the frame and scan headers,
//! the quantization and Huffman tables that a scan really uses (each in its
//! own canonical segment, in force when its scan starts), the restart
//! interval, one JFIF and one Adobe segment with their known fields. Pixels
//! are never touched: the entropy-coded data is copied verbatim.
//!
//! Parser, writer and audit share one [`Layout`]: what is kept is written
//! from it, and what the source carried beyond it is a finding of `check`.

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::exif_block;
use crate::metadata::{human_bytes, short_value, Category, Finding, Inventory};
use crate::splice::{AuditAs, Spliced};

const FORMAT: &str = "JPEG";

/// One marker segment. For SOS, `raw` also holds the entropy-coded data that follows.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub marker: u8,
    /// Payload after the 2-byte length (empty for standalone markers).
    pub payload: &'a [u8],
    /// The full bytes of the segment in the source (fill bytes, marker, length, payload, scan data).
    pub raw: &'a [u8],
    /// For SOS: the entropy-coded data after the header, fill bytes before
    /// the next marker left out. Empty otherwise.
    pub data: &'a [u8],
}

/// What a segment is, for the policy and the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Needed to decode: rebuilt from the [`Layout`].
    Structure,
    /// APP14 Adobe (colour transform): kept as its transform byte only.
    Adobe,
    /// APP0 JFIF: its version and density are kept, nothing else.
    Jfif,
    Icc,
    Exif,
    Drop(Category),
}

#[derive(Debug)]
pub struct Jpeg<'a> {
    pub segments: Vec<Segment<'a>>,
    /// Bytes after the first image's EOI (MPF images, gain maps, junk).
    pub trailing: &'a [u8],
    pub width: u32,
    pub height: u32,
    layout: Layout<'a>,
}

/// A quantization table as a decoder reads it (natural zigzag order of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quant {
    values: [u16; 64],
}

/// A Huffman table: 16 code counts and the symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Huff<'a> {
    counts: &'a [u8],
    symbols: &'a [u8],
}

/// One piece of the rebuilt structure, in output order.
#[derive(Debug, Clone, Copy)]
enum Piece<'a> {
    Dqt(u8, Quant),
    /// Class (0 DC, 1 AC), slot, table.
    Dht(u8, u8, Huff<'a>),
    /// Marker and payload (length checked against the component count).
    Sof(u8, &'a [u8]),
    Dri(u16),
    /// Header payload (length checked) and entropy-coded data.
    Sos(&'a [u8], &'a [u8]),
    /// The image height, when the frame header left it 0.
    Dnl(u16),
}

/// What the rewrite keeps, decided once at parse time, and what it drops
/// beyond whole segments (unused tables, second JFIF, ...).
#[derive(Debug, Default)]
struct Layout<'a> {
    /// Index of the first APP0 JFIF and APP14 Adobe segment kept.
    jfif: Option<usize>,
    adobe: Option<usize>,
    pieces: Vec<Piece<'a>>,
    dropped: Vec<Finding>,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// True for markers that stand alone, without a length (RSTn, TEM, SOI, EOI).
fn is_standalone(marker: u8) -> bool {
    matches!(marker, 0xD0..=0xD9 | 0x01)
}

fn truncated(what: &str) -> Error {
    Error::malformed(FORMAT, format!("truncated: {what}"))
}

fn bad(what: impl Into<String>) -> Error {
    Error::malformed(FORMAT, what)
}

/// Finds the end of an entropy-coded scan: the first marker that is not a
/// stuffed 0xFF00, a restart marker or fill bytes.
fn scan_end(b: &[u8], mut i: usize) -> Result<usize> {
    loop {
        let ff = memchr::memchr(0xFF, &b[i..]).ok_or_else(|| {
            truncated("scan data runs to the end of the file (no end-of-image marker)")
        })?;
        i += ff;
        match b.get(i + 1) {
            None => return Err(truncated("scan data runs to the end of the file")),
            Some(0x00) | Some(0xD0..=0xD7) => i += 2,
            Some(0xFF) => i += 1,
            Some(_) => return Ok(i),
        }
    }
}

/// Entropy-coded data never ends in 0xFF (it would be stuffed): trailing
/// 0xFF bytes are fill before the next marker.
fn without_fill(data: &[u8]) -> &[u8] {
    let n = data.iter().rev().take_while(|&&c| c == 0xFF).count();
    &data[..data.len() - n]
}

pub fn parse<'a>(b: &'a [u8], limits: &Limits) -> Result<Jpeg<'a>> {
    if b.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(bad("missing start-of-image marker"));
    }
    let mut segments = vec![Segment {
        marker: 0xD8,
        payload: &[],
        raw: &b[..2],
        data: &[],
    }];
    let mut pos = 2;
    let mut dims = None;
    let mut saw_scan = false;
    loop {
        let start = pos;
        if b.get(pos) != Some(&0xFF) {
            return Err(match b.get(pos) {
                None => truncated("no end-of-image marker"),
                Some(x) => bad(format!("expected a marker at byte {pos}, found 0x{x:02X}")),
            });
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1; // fill bytes before a marker are legal
        }
        let marker = *b
            .get(pos)
            .ok_or_else(|| truncated("no end-of-image marker"))?;
        pos += 1;
        if marker == 0xD8 {
            // libjpeg stops at a second SOI too: a stream spliced in is not one image.
            return Err(bad(format!(
                "a second start-of-image marker at byte {start} (two images spliced together)"
            )));
        }
        if is_standalone(marker) {
            segments.push(Segment {
                marker,
                payload: &[],
                raw: &b[start..pos],
                data: &[],
            });
            if marker == 0xD9 {
                if !saw_scan {
                    return Err(bad("end of image before any scan"));
                }
                let (width, height) = dims.ok_or_else(|| bad("no frame header (SOF)"))?;
                let layout = plan(&segments)?;
                return Ok(Jpeg {
                    segments,
                    trailing: &b[pos..],
                    width,
                    height,
                    layout,
                });
            }
            continue;
        }
        if matches!(marker, 0xDE | 0xDF | 0xF7 | 0xF8 | 0xC5..=0xC7 | 0xCD..=0xCF) {
            // Hierarchical (DHP, EXP, differential SOFs) and JPEG-LS (SOF55,
            // LSE) files: neither decodable here nor checkable segment by segment.
            return Err(Error::Unsupported(
                "hierarchical or JPEG-LS JPEG; export it as a baseline or progressive JPEG".into(),
            ));
        }
        if marker == 0xCC {
            // A valid file this tool does not take: not "damaged".
            return Err(Error::Unsupported(
                "arithmetic-coded JPEG (a DAC segment); export it as a baseline or progressive JPEG"
                    .into(),
            ));
        }
        let len = be16(b, pos).ok_or_else(|| truncated("segment length"))? as usize;
        if len < 2 {
            return Err(bad(format!("segment 0x{marker:02X} has length {len}")));
        }
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| {
                truncated(&format!(
                    "segment 0x{marker:02X} runs past the end of the file"
                ))
            })?;
        let payload = &b[pos + 2..end];
        pos = end;
        let mut data: &[u8] = &[];
        if is_sof(marker) {
            if dims.is_some() {
                return Err(bad("a second frame header (SOF)"));
            }
            check_sof(payload)?;
            let h = be16(payload, 1).unwrap_or(0) as u32;
            let w = be16(payload, 3).unwrap_or(0) as u32;
            if w == 0 {
                return Err(bad("frame header declares zero width"));
            }
            check_dimensions(FORMAT, w, h.max(1), limits)?;
            dims = Some((w, h));
        }
        if marker == 0xDA {
            if dims.is_none() {
                return Err(bad("scan before frame header"));
            }
            saw_scan = true;
            pos = scan_end(b, pos)?;
            data = without_fill(&b[end..pos]);
        }
        segments.push(Segment {
            marker,
            payload,
            raw: &b[start..pos],
            data,
        });
    }
}

fn is_sof(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

fn is_lossless(sof: u8) -> bool {
    matches!(sof, 0xC3 | 0xC7 | 0xCB | 0xCF)
}

fn is_progressive(sof: u8) -> bool {
    matches!(sof, 0xC2 | 0xC6 | 0xCA | 0xCE)
}

fn is_arithmetic(sof: u8) -> bool {
    sof >= 0xC8
}

/// SOF: precision, height, width, count, then 3 bytes a component; nothing more.
fn check_sof(p: &[u8]) -> Result<()> {
    let n = *p.get(5).ok_or_else(|| bad("frame header too short"))? as usize;
    if !(1..=4).contains(&n) || p.len() != 6 + 3 * n {
        return Err(bad(format!(
            "frame header of {} bytes for {n} components",
            p.len() + 2
        )));
    }
    for c in p[6..].chunks(3) {
        let (h, v) = (c[1] >> 4, c[1] & 15);
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err(bad("frame header with a bad component sampling or table"));
        }
    }
    Ok(())
}

/// The frame as the tables need it: component id and quantization slot.
struct Frame<'a> {
    marker: u8,
    payload: &'a [u8],
    height: u16,
    comps: Vec<(u8, u8)>,
}

/// The scan components (id, DC slot, AC slot) and the spectral selection.
struct ScanHeader {
    comps: Vec<(u8, u8, u8)>,
    ss: u8,
    ah: u8,
}

fn parse_sos(p: &[u8], frame: &Frame) -> Result<ScanHeader> {
    let n = *p.first().ok_or_else(|| bad("empty scan header"))? as usize;
    if !(1..=4).contains(&n) || p.len() != 1 + 2 * n + 3 {
        return Err(bad(format!(
            "scan header of {} bytes for {n} components",
            p.len() + 2
        )));
    }
    let mut comps = Vec::new();
    for c in p[1..1 + 2 * n].chunks(2) {
        if !frame.comps.iter().any(|f| f.0 == c[0]) {
            return Err(bad(format!(
                "scan of component {} the frame does not have",
                c[0]
            )));
        }
        let (td, ta) = (c[1] >> 4, c[1] & 15);
        if td > 3 || ta > 3 {
            return Err(bad("scan header names a Huffman table past slot 3"));
        }
        comps.push((c[0], td, ta));
    }
    let tail = &p[1 + 2 * n..];
    Ok(ScanHeader {
        comps,
        ss: tail[0],
        ah: tail[2] >> 4,
    })
}

/// The tables of one DQT segment, each with its slot; lengths must add up exactly.
fn parse_dqt(mut p: &[u8]) -> Result<Vec<(u8, Quant)>> {
    let mut out = Vec::new();
    while let Some((&pq_tq, rest)) = p.split_first() {
        let (pq, tq) = (pq_tq >> 4, pq_tq & 15);
        let size = match pq {
            0 => 64,
            1 => 128,
            _ => return Err(bad(format!("quantization table of precision {pq}"))),
        };
        if tq > 3 || rest.len() < size {
            return Err(bad("quantization table segment with a bad length or slot"));
        }
        let mut values = [0u16; 64];
        for (k, v) in values.iter_mut().enumerate() {
            *v = if pq == 0 {
                rest[k] as u16
            } else {
                u16::from_be_bytes([rest[2 * k], rest[2 * k + 1]])
            };
        }
        out.push((tq, Quant { values }));
        p = &rest[size..];
    }
    Ok(out)
}

/// The tables of one DHT segment: (class, slot, table); lengths must add up exactly.
fn parse_dht(mut p: &[u8]) -> Result<Vec<(u8, u8, Huff<'_>)>> {
    let mut out = Vec::new();
    while let Some((&tc_th, rest)) = p.split_first() {
        let (tc, th) = (tc_th >> 4, tc_th & 15);
        let counts = rest
            .get(..16)
            .ok_or_else(|| bad("Huffman table segment with a bad length"))?;
        let n: usize = counts.iter().map(|&c| c as usize).sum();
        if tc > 1 || th > 3 || n > 256 || rest.len() < 16 + n {
            return Err(bad(
                "Huffman table segment with a bad length, class or slot",
            ));
        }
        out.push((
            tc,
            th,
            Huff {
                counts,
                symbols: &rest[16..16 + n],
            },
        ));
        p = &rest[16 + n..];
    }
    Ok(out)
}

/// A table definition of the source, and whether a scan used it.
struct Def<T> {
    table: T,
    used: bool,
}

/// The tables in force in the source stream and the last ones written, per slot.
struct Tables<'a> {
    quant: Vec<Def<Quant>>,
    huff: Vec<(u8, Def<Huff<'a>>)>,
    /// Index into `quant` / `huff` of what each slot holds now.
    q_now: [Option<usize>; 4],
    h_now: [[Option<usize>; 4]; 2],
    q_out: [Option<Quant>; 4],
    h_out: [[Option<Huff<'a>>; 4]; 2],
    /// Components whose quantization table is fixed (libjpeg latches it at their first scan).
    latched: Vec<u8>,
}

impl<'a> Tables<'a> {
    /// The DQT and DHT pieces a scan needs before it starts.
    fn for_scan(
        &mut self,
        frame: &Frame,
        scan: &ScanHeader,
    ) -> Result<(Vec<Piece<'a>>, Vec<Piece<'a>>)> {
        let (mut dqt, mut dht) = (Vec::new(), Vec::new());
        for &(id, td, ta) in &scan.comps {
            let tq = frame.comps.iter().find(|c| c.0 == id).map_or(0, |c| c.1);
            if !is_lossless(frame.marker) && !self.latched.contains(&id) {
                self.latched.push(id);
                let i = self.q_now[tq as usize].ok_or_else(|| {
                    bad(format!(
                        "scan uses quantization table {tq}, which is not defined"
                    ))
                })?;
                self.quant[i].used = true;
                let table = self.quant[i].table;
                if self.q_out[tq as usize] != Some(table) {
                    self.q_out[tq as usize] = Some(table);
                    dqt.push(Piece::Dqt(tq, table));
                }
            }
            if is_arithmetic(frame.marker) {
                continue;
            }
            let progressive = is_progressive(frame.marker);
            let dc = if progressive {
                scan.ss == 0 && scan.ah == 0
            } else {
                true
            };
            let ac = if progressive {
                scan.ss > 0
            } else {
                !is_lossless(frame.marker)
            };
            for (class, slot, needed) in [(0u8, td, dc), (1u8, ta, ac)] {
                // A slot never defined: libjpeg-turbo falls back to the
                // standard tables (Motion-JPEG), so nothing is written.
                let Some(i) = self.h_now[class as usize][slot as usize].filter(|_| needed) else {
                    continue;
                };
                self.huff[i].1.used = true;
                let table = self.huff[i].1.table;
                let out = &mut self.h_out[class as usize][slot as usize];
                if *out != Some(table) {
                    *out = Some(table);
                    dht.push(Piece::Dht(class, slot, table));
                }
            }
        }
        Ok((dqt, dht))
    }
}

/// Walks the segments as a decoder does and decides what the rewrite
/// writes: the tables in force when each scan starts, the frame, the scans,
/// the restart interval that each scan runs under.
fn plan<'a>(segments: &[Segment<'a>]) -> Result<Layout<'a>> {
    let mut layout = Layout::default();
    let mut t = Tables {
        quant: Vec::new(),
        huff: Vec::new(),
        q_now: [None; 4],
        h_now: [[None; 4]; 2],
        q_out: [None; 4],
        h_out: [[None; 4]; 2],
        latched: Vec::new(),
    };
    let mut frame: Option<Frame> = None;
    let (mut dri, mut dri_out) = (0u16, 0u16);
    let mut scans = 0;
    for (i, seg) in segments.iter().enumerate() {
        let p = seg.payload;
        match seg.marker {
            0xDB => {
                for (slot, table) in parse_dqt(p)? {
                    t.q_now[slot as usize] = Some(t.quant.len());
                    t.quant.push(Def { table, used: false });
                }
            }
            0xC4 => {
                for (class, slot, table) in parse_dht(p)? {
                    t.h_now[class as usize][slot as usize] = Some(t.huff.len());
                    t.huff.push((slot, Def { table, used: false }));
                }
            }
            0xDD => {
                if p.len() != 2 {
                    return Err(bad(format!(
                        "restart interval segment of {} bytes",
                        p.len() + 2
                    )));
                }
                dri = be16(p, 0).unwrap_or(0);
            }
            m if is_sof(m) => {
                frame = Some(Frame {
                    marker: m,
                    payload: p,
                    height: be16(p, 1).unwrap_or(0),
                    comps: p[6..].chunks(3).map(|c| (c[0], c[2])).collect(),
                });
            }
            0xDA => {
                let f = frame
                    .as_ref()
                    .ok_or_else(|| bad("scan before frame header"))?;
                let scan = parse_sos(p, f)?;
                let (dqt, dht) = t.for_scan(f, &scan)?;
                layout.pieces.extend(dqt);
                if scans == 0 {
                    layout.pieces.push(Piece::Sof(f.marker, f.payload));
                }
                layout.pieces.extend(dht);
                if dri != dri_out {
                    layout.pieces.push(Piece::Dri(dri));
                    dri_out = dri;
                }
                layout.pieces.push(Piece::Sos(p, seg.data));
                scans += 1;
            }
            0xDC => {
                if p.len() != 2 {
                    return Err(bad(format!(
                        "DNL segment of {} bytes (4 expected)",
                        p.len() + 2
                    )));
                }
                match frame.as_ref() {
                    Some(f) if f.height == 0 && scans == 1 => {
                        layout.pieces.push(Piece::Dnl(be16(p, 0).unwrap_or(0)));
                    }
                    _ => layout.dropped.push(Finding::new(
                        Category::Other,
                        "DNL segment the frame does not need",
                    )),
                }
            }
            _ => match role(seg) {
                Role::Jfif if layout.jfif.is_none() && p.len() >= 14 => layout.jfif = Some(i),
                Role::Adobe if layout.adobe.is_none() && p.len() >= ADOBE_LEN => {
                    layout.adobe = Some(i)
                }
                Role::Jfif | Role::Adobe => layout.dropped.push(Finding::new(
                    Category::Other,
                    format!(
                        "{} {} segment, {} bytes",
                        if p.len() < 14 { "malformed" } else { "second" },
                        if seg.marker == 0xE0 {
                            "APP0 JFIF"
                        } else {
                            "APP14 Adobe"
                        },
                        p.len()
                    ),
                )),
                _ => {}
            },
        }
    }
    let unused_q = t.quant.iter().filter(|d| !d.used).count();
    if unused_q > 0 {
        layout.dropped.push(Finding::new(
            Category::Other,
            format!("{unused_q} quantization table(s) no scan uses"),
        ));
    }
    let unused_h: Vec<usize> = t
        .huff
        .iter()
        .filter(|d| !d.1.used)
        .map(|d| d.1.table.symbols.len() + 17)
        .collect();
    if !unused_h.is_empty() {
        layout.dropped.push(Finding::new(
            Category::Other,
            format!(
                "{} Huffman table(s) no scan uses, {} bytes",
                unused_h.len(),
                unused_h.iter().sum::<usize>()
            ),
        ));
    }
    Ok(layout)
}

/// "Adobe", version, flags0, flags1, transform: all a decoder reads.
const ADOBE_LEN: usize = 12;

fn role(seg: &Segment) -> Role {
    let p = seg.payload;
    match seg.marker {
        0xD8 | 0xD9 | 0xD0..=0xD7 | 0x01 => Role::Structure,
        m if is_sof(m) => Role::Structure,
        // DHT, DQT, DRI, SOS, DNL.
        0xC4 | 0xDB | 0xDD | 0xDA | 0xDC => Role::Structure,
        0xE0 if p.starts_with(b"JFIF\0") => Role::Jfif,
        0xE0 if p.starts_with(b"JFXX\0") => Role::Drop(Category::Thumbnail),
        0xE1 if p.starts_with(b"Exif\0") => Role::Exif,
        0xE1 if p.starts_with(b"http://ns.adobe.com/") => Role::Drop(Category::Xmp),
        0xE2 if p.starts_with(b"ICC_PROFILE\0") => Role::Icc,
        0xE2 if p.starts_with(b"MPF\0") => Role::Drop(Category::Thumbnail),
        0xE2 if p.starts_with(b"FPXR\0") => Role::Drop(Category::MakerNotes),
        0xEB => Role::Drop(Category::Provenance),
        0xED => Role::Drop(Category::IptcPhotoshop),
        0xEE if p.starts_with(b"Adobe") => Role::Adobe,
        0xFE => Role::Drop(Category::Comment),
        _ => Role::Drop(Category::Other),
    }
}

/// JFIF thumbnail size in bytes (3 bytes a pixel after the 14-byte header).
fn jfif_thumbnail_len(p: &[u8]) -> usize {
    match (p.get(12), p.get(13)) {
        (Some(&w), Some(&h)) => 3 * w as usize * h as usize,
        _ => 0,
    }
}

/// APP0 JFIF rebuilt: version 1.0x, density unit and values; no thumbnail.
fn write_jfif(out: &mut Spliced, p: &[u8]) {
    let minor = p[6].min(2);
    let unit = if p[7] <= 2 { p[7] } else { 0 };
    let (x, y) = (
        be16(p, 8).unwrap_or(1).max(1),
        be16(p, 10).unwrap_or(1).max(1),
    );
    out.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
    out.extend_from_slice(b"JFIF\0");
    out.extend_from_slice(&[1, minor, unit]);
    out.extend_from_slice(&x.to_be_bytes());
    out.extend_from_slice(&y.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// APP14 Adobe rebuilt: version 100, no flags, the colour transform (0 none,
/// 1 YCbCr, 2 YCCK; libjpeg reads any other value as 1 or 2, so it is written so).
fn write_adobe(out: &mut Spliced, p: &[u8], components: usize) {
    let transform = match p[11] {
        t @ 0..=2 => t,
        _ if components == 4 => 2,
        _ => 1,
    };
    out.extend_from_slice(&[0xFF, 0xEE, 0, ADOBE_LEN as u8 + 2]);
    out.extend_from_slice(b"Adobe\0\x64\0\0\0\0");
    out.push(transform);
}

fn write_segment(out: &mut Spliced, marker: u8, payload: &[&[u8]]) {
    let len: usize = 2 + payload.iter().map(|p| p.len()).sum::<usize>();
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    for p in payload {
        out.extend_from_slice(p);
    }
}

fn write_piece<'a>(out: &mut Spliced<'a>, piece: &Piece<'a>) {
    match *piece {
        Piece::Dqt(slot, q) => {
            if q.values.iter().all(|&v| v <= 255) {
                let bytes: Vec<u8> = q.values.iter().map(|&v| v as u8).collect();
                write_segment(out, 0xDB, &[&[slot], &bytes]);
            } else {
                let bytes: Vec<u8> = q.values.iter().flat_map(|v| v.to_be_bytes()).collect();
                write_segment(out, 0xDB, &[&[0x10 | slot], &bytes]);
            }
        }
        Piece::Dht(class, slot, h) => {
            write_segment(out, 0xC4, &[&[class << 4 | slot], h.counts, h.symbols])
        }
        Piece::Sof(marker, p) => write_segment(out, marker, &[p]),
        Piece::Dri(n) => write_segment(out, 0xDD, &[&n.to_be_bytes()]),
        Piece::Sos(p, data) => {
            write_segment(out, 0xDA, &[p]);
            // Verbatim, by reference; parsing the input proved it holds no marker.
            out.payload(data, AuditAs::Elided);
        }
        Piece::Dnl(h) => write_segment(out, 0xDC, &[&h.to_be_bytes()]),
    }
}

impl<'a> Jpeg<'a> {
    /// Whether the frame is arithmetic-coded (SOF9..SOF15).
    pub fn is_arithmetic(&self) -> bool {
        self.segments
            .iter()
            .any(|s| is_sof(s.marker) && is_arithmetic(s.marker))
    }

    /// The TIFF bytes of every EXIF block (cameras sometimes write two).
    pub fn exif_blocks(&self) -> Vec<&'a [u8]> {
        self.segments
            .iter()
            .filter(|s| role(s) == Role::Exif)
            .map(|s| &s.payload[6.min(s.payload.len())..])
            .collect()
    }

    /// The ICC profile, reassembled from its APP2 chunks in sequence order.
    pub fn icc_profile(&self) -> Option<Vec<u8>> {
        self.icc_chunks().0
    }

    /// The profile and the count of ICC_PROFILE chunks outside its sequence.
    fn icc_chunks(&self) -> (Option<Vec<u8>>, usize) {
        crate::icc::from_app2(
            self.segments
                .iter()
                .filter(|s| role(s) == Role::Icc)
                .map(|s| s.payload),
        )
    }

    /// The sanitised profile's APP2 segments (none when it is malformed).
    fn icc_segments(&self) -> Vec<u8> {
        self.icc_profile()
            .and_then(|p| crate::icc::sanitize(&p).ok())
            .map(|p| crate::icc::app2_segments(&p))
            .unwrap_or_default()
    }

    /// The number of frame components (1 gray, 3 colour, 4 CMYK).
    fn components(&self) -> usize {
        self.layout
            .pieces
            .iter()
            .find_map(|p| match p {
                Piece::Sof(_, p) => p.get(5).map(|&n| n as usize),
                _ => None,
            })
            .unwrap_or(3)
    }

    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::default();
        let mut icc_bytes = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            match role(seg) {
                Role::Structure => {}
                Role::Adobe if seg.payload.len() > ADOBE_LEN && self.layout.adobe == Some(i) => inv
                    .push(
                        Category::Other,
                        format!(
                            "APP14 Adobe with {} extra bytes",
                            seg.payload.len() - ADOBE_LEN
                        ),
                    ),
                Role::Adobe => {}
                Role::Jfif if self.layout.jfif == Some(i) => {
                    let n = jfif_thumbnail_len(seg.payload);
                    if n > 0 {
                        inv.push(Category::Thumbnail, format!("JFIF thumbnail, {n} bytes"));
                    }
                    let extra = seg.payload.len().saturating_sub(14 + n);
                    if extra > 0 {
                        inv.push(
                            Category::Other,
                            format!("APP0 JFIF with {extra} extra bytes"),
                        );
                    }
                }
                Role::Jfif => {}
                Role::Icc => icc_bytes += seg.payload.len().saturating_sub(14),
                Role::Exif => {} // summarised once, by container::parse
                Role::Drop(cat) => inv.push(cat, describe_dropped(seg, cat)),
            }
        }
        inv.0.extend(self.layout.dropped.iter().cloned());
        if icc_bytes > 0 {
            let (profile, stray) = self.icc_chunks();
            match profile {
                Some(p) => crate::icc::audit(&p, &mut inv),
                None => inv.push(
                    Category::ColourProfileText,
                    format!("ICC profile, {icc_bytes} bytes, chunks missing (cleaning drops it)"),
                ),
            }
            if stray > 0 {
                inv.push(
                    Category::ColourProfileText,
                    format!("{stray} ICC_PROFILE segments outside the profile's sequence"),
                );
            }
        }
        if !self.trailing.is_empty() {
            inv.push(Category::TrailingData, trailing_detail(self.trailing));
        }
        inv
    }

    /// Writes the JPEG back from its layout: JFIF (rebuilt), when asked an
    /// Orientation-only EXIF block, the ICC profile (unless stripped), Adobe
    /// (rebuilt), then the tables, frame and scans the picture needs.
    pub fn rewrite(&self, policy: &RewritePolicy) -> Vec<u8> {
        self.rewrite_with_icc(policy, self)
    }

    /// [`Jpeg::rewrite`] with the ICC profile taken from `source` (a file
    /// this one was transcoded or redacted from).
    pub fn rewrite_with_icc(&self, policy: &RewritePolicy, source: &Jpeg) -> Vec<u8> {
        self.rewrite_spliced(policy, source).to_vec()
    }

    /// [`Jpeg::rewrite_with_icc`] with the entropy-coded data kept by
    /// reference (see [`crate::splice`]): the same bytes, written without
    /// copying the scans through memory.
    pub fn rewrite_spliced(&self, policy: &RewritePolicy, source: &Jpeg) -> Spliced<'a> {
        let mut out = Spliced::new();
        out.extend_from_slice(&[0xFF, 0xD8]);
        if let Some(i) = self.layout.jfif {
            write_jfif(&mut out, self.segments[i].payload);
        }
        if let Some(o) = policy.orientation {
            let tiff = exif_block::orientation_only(o);
            write_segment(&mut out, 0xE1, &[b"Exif\0\0", &tiff]);
        }
        if policy.keep_icc {
            out.extend_from_slice(&source.icc_segments());
        }
        if let Some(i) = self.layout.adobe {
            write_adobe(&mut out, self.segments[i].payload, self.components());
        }
        for piece in &self.layout.pieces {
            write_piece(&mut out, piece);
        }
        out.extend_from_slice(&[0xFF, 0xD9]);
        out
    }
}

fn describe_dropped(seg: &Segment, cat: Category) -> String {
    let n = seg.payload.len();
    match (seg.marker, cat) {
        (0xFE, _) => format!(
            "COM \"{}\"",
            short_value(&String::from_utf8_lossy(seg.payload), 60)
        ),
        (0xE1, Category::Xmp)
            if seg
                .payload
                .starts_with(b"http://ns.adobe.com/xmp/extension/") =>
        {
            format!("extended XMP, {n} bytes")
        }
        (0xE1, Category::Xmp) => crate::describe::xmp(seg.payload),
        (0xED, _) => crate::describe::photoshop(seg.payload),
        (0xE2, Category::Thumbnail) => format!("MPF index of secondary images, {n} bytes"),
        (0xE0, Category::Thumbnail) => format!("JFXX thumbnail, {n} bytes"),
        (0xE2, Category::MakerNotes) => format!("FlashPix (FPXR) data, {n} bytes"),
        (0xEB, _) => format!("APP11 JUMBF/C2PA manifest, {n} bytes"),
        (m, _) => {
            let id: String = seg
                .payload
                .iter()
                .take(16)
                .take_while(|&&c| c.is_ascii_graphic() || c == b' ')
                .map(|&c| c as char)
                .collect();
            let name = if (0xE0..=0xEF).contains(&m) {
                format!("APP{}", m - 0xE0)
            } else {
                format!("marker 0x{m:02X}")
            };
            if id.is_empty() {
                format!("{name}, {n} bytes")
            } else {
                format!("{name} \"{id}\", {n} bytes")
            }
        }
    }
}

fn trailing_detail(t: &[u8]) -> String {
    let images = t.windows(3).filter(|w| *w == [0xFF, 0xD8, 0xFF]).count();
    if images > 0 {
        format!(
            "{} after the end of the image ({images} embedded JPEG image(s): MPF/gain map/preview)",
            human_bytes(t.len() as u64)
        )
    } else {
        format!("{} after the end of the image", human_bytes(t.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DQT for slot 0 whose 64 values spell `fill` (a canary when unused).
    fn dqt(slot: u8, fill: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xDB, 0, 67, slot];
        v.extend((0..64).map(|i| fill[i % fill.len()]));
        v
    }

    /// A DHT of one table: one code of length 1 for `symbol`.
    fn dht(class: u8, slot: u8, symbol: u8) -> Vec<u8> {
        let mut v = vec![0xFF, 0xC4, 0, 20, class << 4 | slot, 1];
        v.extend_from_slice(&[0; 15]);
        v.push(symbol);
        v
    }

    /// A minimal structurally valid JPEG (not decodable, but parseable), in
    /// the writer's canonical layout when `extra` is empty.
    fn tiny(extra: &[u8], scan: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        v.extend_from_slice(extra);
        v.extend(dqt(0, &[1]));
        v.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
        v.extend(dht(0, 0, 0));
        v.extend(dht(1, 0, 0));
        v.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
        v.extend_from_slice(scan);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    fn clean(bytes: &[u8]) -> Vec<u8> {
        parse(bytes, &Limits::default())
            .unwrap()
            .rewrite(&RewritePolicy::default())
    }

    fn assert_refused(bytes: &[u8], what: &str) {
        let err = parse(bytes, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{what}: {err}");
    }

    #[test]
    fn unused_tables_go_and_are_reported() {
        let mut extra = dqt(1, b"MRN-00424242");
        extra.extend(dqt(0, b"Jane"));
        extra.extend(dht(1, 3, b'J'));
        let input = tiny(&extra, &[1]);
        let j = parse(&input, &Limits::default()).unwrap();
        let found: Vec<String> = j.inventory().0.iter().map(|f| f.detail.clone()).collect();
        assert!(
            found.iter().any(|d| d.contains("2 quantization")),
            "{found:?}"
        );
        assert!(found.iter().any(|d| d.contains("1 Huffman")), "{found:?}");
        let out = j.rewrite(&RewritePolicy::default());
        assert_eq!(out, tiny(&[], &[1]));
        assert!(parse(&out, &Limits::default())
            .unwrap()
            .inventory()
            .is_clean());
    }

    #[test]
    fn tables_redefined_between_scans_are_in_force_for_each() {
        // Progressive: a DC scan, then an AC scan after a new AC table 0.
        let mut v = vec![0xFF, 0xD8];
        v.extend(dqt(0, &[2]));
        v.extend_from_slice(&[0xFF, 0xC2, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
        v.extend(dht(0, 0, 0));
        v.extend(dht(1, 0, 0)); // overwritten before any AC scan: unused
        v.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0, 7]);
        v.extend(dht(1, 0, 5));
        v.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 1, 63, 0, 9]);
        v.extend_from_slice(&[0xFF, 0xD9]);
        let j = parse(&v, &Limits::default()).unwrap();
        assert!(!j.inventory().is_clean());
        let out = j.rewrite(&RewritePolicy::default());
        let mut want = vec![0xFF, 0xD8];
        want.extend(dqt(0, &[2]));
        want.extend_from_slice(&[0xFF, 0xC2, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
        want.extend(dht(0, 0, 0));
        want.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0, 7]);
        want.extend(dht(1, 0, 5));
        want.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 1, 63, 0, 9]);
        want.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(out, want);
        assert_eq!(clean(&out), out);
    }

    #[test]
    fn one_jfif_and_one_adobe_rebuilt() {
        let jfif = |name: &[u8]| {
            let mut v = vec![0xFF, 0xE0, 0, 16 + name.len() as u8];
            v.extend_from_slice(b"JFIF\x00\x01\x09\x07\x00H\x00H\x00\x00");
            v.extend_from_slice(name);
            v
        };
        let mut extra = jfif(b"");
        extra.extend(jfif(b"Jane Q. Patientname"));
        extra.extend_from_slice(&[0xFF, 0xEE, 0, 14]);
        extra.extend_from_slice(b"Adobe\x00d\x80\x00\x00\x00\x07");
        extra.extend_from_slice(&[0xFF, 0xEE, 0, 17]);
        extra.extend_from_slice(b"Adobe\x00d\x00\x00\x00\x00\x00Jan");
        let input = tiny(&extra, &[1]);
        let j = parse(&input, &Limits::default()).unwrap();
        assert!(!j.inventory().is_clean());
        let out = j.rewrite(&RewritePolicy::default());
        let mut want = vec![0xFF, 0xE0, 0, 16];
        want.extend_from_slice(b"JFIF\x00\x01\x02\x00\x00H\x00H\x00\x00");
        want.extend_from_slice(&[0xFF, 0xEE, 0, 14]);
        want.extend_from_slice(b"Adobe\x00d\x00\x00\x00\x00\x01");
        assert_eq!(out, tiny(&want, &[1]));
        assert!(parse(&out, &Limits::default())
            .unwrap()
            .inventory()
            .is_clean());
    }

    #[test]
    fn dnl_is_kept_only_when_the_frame_needs_it() {
        let dnl = [0xFF, 0xDC, 0, 4, 0, 16];
        let mut with_dnl = tiny(&[], &[1]);
        let eoi = with_dnl.len() - 2;
        with_dnl.splice(eoi..eoi, dnl);
        let j = parse(&with_dnl, &Limits::default()).unwrap();
        assert!(!j.inventory().is_clean());
        assert_eq!(j.rewrite(&RewritePolicy::default()), tiny(&[], &[1]));
        // Height 0 in the frame header: the DNL gives it, and stays.
        let sof = with_dnl.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        with_dnl[sof + 6] = 0;
        assert_eq!(clean(&with_dnl), with_dnl);
        let mut long = with_dnl.clone();
        long.splice(eoi..eoi + 6, *b"\xFF\xDC\x00\x08\x00\x10Jane");
        assert_refused(&long, "DNL with trailing data");
    }

    #[test]
    fn mislength_headers_dac_and_a_second_soi_are_refused() {
        let base = tiny(&[], &[1]);
        let sof = base.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut long_sof = base.clone();
        long_sof[sof + 3] += 4;
        long_sof.splice(sof + 13..sof + 13, *b"Jane");
        assert_refused(&long_sof, "SOF with extra bytes");
        let sos = base.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let mut long_sos = base.clone();
        long_sos[sos + 3] += 4;
        long_sos.splice(sos + 10..sos + 10, *b"Jane");
        assert_refused(&long_sos, "SOS with extra bytes");
        assert_refused(&tiny(b"\xFF\xDD\x00\x08\x00\x01Jane", &[1]), "DRI");
        let dac = parse(&tiny(b"\xFF\xCC\x00\x04\x00\x11", &[1]), &Limits::default()).unwrap_err();
        assert!(
            matches!(&dac, Error::Unsupported(w) if w.contains("DAC")),
            "{dac}"
        );
        let mut two = base.clone();
        let eoi = two.len() - 2;
        two.splice(eoi..eoi, *b"\xFF\xD8\xFF\xFE\x00\x06Jane");
        assert_refused(&two, "second SOI");
        assert_refused(&tiny(&[], &[1])[..].to_vec().tap(), "second SOF");
    }

    trait Tap {
        fn tap(self) -> Vec<u8>;
    }
    impl Tap for Vec<u8> {
        /// Adds a second frame header right after the first.
        fn tap(mut self) -> Vec<u8> {
            let sof = self.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
            let copy = self[sof..sof + 13].to_vec();
            self.splice(sof..sof, copy);
            self
        }
    }

    #[test]
    fn scan_with_stuffing_and_restarts_is_kept_whole() {
        let scan = [1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4, 0xFF, 0xFF, 0xD1, 5];
        let com = [0xFF, 0xFE, 0, 6, b'a', b'b', b'c', b'd'];
        let mut bytes = tiny(&com, &scan);
        bytes.extend_from_slice(b"TRAILER");
        let j = parse(&bytes, &Limits::default()).unwrap();
        assert_eq!(j.trailing, b"TRAILER");
        let out = j.rewrite(&RewritePolicy::default());
        assert_eq!(out, tiny(&[], &scan));
        assert_eq!(clean(&out), out);
        let inv = j.inventory();
        assert!(inv.categories().contains(&Category::Comment));
        assert!(inv.categories().contains(&Category::TrailingData));
    }

    #[test]
    fn adobe_keeps_its_12_bytes_and_hierarchical_is_refused() {
        let mut adobe = vec![0xFF, 0xEE, 0, 14 + 13];
        adobe.extend_from_slice(b"Adobe\0\x64\0\0\0\0\x01");
        adobe.extend_from_slice(b"MRN-00424242!");
        let input = tiny(&adobe, &[1]);
        let j = parse(&input, &Limits::default()).unwrap();
        assert!(j.inventory().categories().contains(&Category::Other));
        let out = j.rewrite(&RewritePolicy::default());
        let mut kept = vec![0xFF, 0xEE, 0, 14];
        kept.extend_from_slice(&adobe[4..16]);
        assert_eq!(out, tiny(&kept, &[1]));
        assert!(parse(&out, &Limits::default())
            .unwrap()
            .inventory()
            .is_clean());
        let dhp = [0xFF, 0xDE, 0, 6, b'J', b'a', b'n', b'e'];
        let err = parse(&tiny(&dhp, &[1]), &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }

    #[test]
    fn every_prefix_fails_cleanly() {
        let bytes = tiny(&[0xFF, 0xFE, 0, 4, b'h', b'i'], &[1, 2, 3]);
        for n in 0..bytes.len() {
            assert!(
                parse(&bytes[..n], &Limits::default()).is_err(),
                "prefix {n}"
            );
        }
        assert!(parse(&bytes, &Limits::default()).is_ok());
    }

    #[test]
    fn orientation_block_goes_after_jfif() {
        let jfif = [
            0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
        ];
        let bytes = tiny(&jfif, &[1]);
        let j = parse(&bytes, &Limits::default()).unwrap();
        let policy = RewritePolicy {
            orientation: Some(6),
            keep_icc: true,
        };
        let out = j.rewrite(&policy);
        assert_eq!(&out[..jfif.len() + 2], &bytes[..jfif.len() + 2]);
        assert_eq!(&out[jfif.len() + 2..jfif.len() + 4], &[0xFF, 0xE1]);
        let back = parse(&out, &Limits::default()).unwrap();
        let s = exif_block::summarize(back.exif_blocks()[0]);
        assert_eq!(s.orientation, Some(6));
    }

    #[test]
    fn huge_declared_frame_is_refused() {
        let mut bytes = tiny(&[], &[1]);
        let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5] = 0xFF; // height 0xFF10
        bytes[sof + 7] = 0xFF; // width 0xFF10
        let err = parse(&bytes, &Limits::default()).unwrap_err();
        assert!(matches!(err, Error::TooLarge(_)), "{err}");
    }
}
