//! HEIF/HEIC/AVIF (ISOBMFF still images): parsed over borrowed bytes with
//! every length checked, then rebuilt from the parsed values as a fresh
//! `ftyp`/`meta`/`mdat` that holds only the primary picture, the tiles it is
//! made of and its alpha plane. The HEVC/AV1 bytes are copied verbatim.
//! Parser, writer and audit share the allowlists below.

use super::{check_dimensions, Limits, RewritePolicy};
use crate::error::{Error, Result};
use crate::metadata::{human_bytes, short_value, Category, Inventory};
use crate::splice::{AuditAs, Spliced};
use std::collections::{HashMap, HashSet};

const FORMAT: &str = "HEIC/HEIF";

/// Image item types an output may hold: coded pictures and grids of them.
pub const KEPT_ITEM_TYPES: &[&[u8; 4]] = &[b"hvc1", b"av01", b"grid"];
/// Properties an output may hold: what a viewer needs to display the picture.
/// `auxC` only ever marks the alpha plane.
pub const KEPT_PROPERTIES: &[&[u8; 4]] = &[
    b"hvcC", b"av1C", b"ispe", b"colr", b"irot", b"imir", b"clap", b"pixi", b"pasp", b"clli",
    b"mdcv", b"auxC",
];
/// References an output may hold: grid tiles and the alpha plane.
pub const KEPT_REFERENCES: &[&[u8; 4]] = &[b"dimg", b"auxl"];
/// Brands carried into the output's `ftyp` (others, like Apple's MiPr, describe what is dropped).
const KEPT_BRANDS: &[&[u8; 4]] = &[
    b"mif1", b"mif2", b"heic", b"heix", b"heim", b"heis", b"avif", b"miaf", b"MA1A", b"MA1B",
    b"MiHE", b"MiHB", b"MiHA",
];
/// The auxiliary types that mean "alpha plane" (HEVC and MPEG-B spellings).
const ALPHA_URNS: &[&[u8]] = &[
    b"urn:mpeg:hevc:2015:auxid:1",
    b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha",
];
/// Grids larger than this are refused even within the pixel limit (each tile costs a decode).
const MAX_TILES: u64 = 65_536;

fn bad(reason: impl Into<String>) -> Error {
    Error::malformed(FORMAT, reason)
}

fn fourcc(k: &[u8; 4]) -> String {
    short_value(&String::from_utf8_lossy(k), 8)
}

/// A bounds-checked reader over one box body.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8], what: &'static str) -> Self {
        Cur { b, pos: 0, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| bad(format!("truncated {} box", self.what)))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok((self.u32()? as u64) << 32 | self.u32()? as u64)
    }
    /// An unsigned integer of 0, 4 or 8 bytes (the `iloc` field sizes).
    fn sized(&mut self, size: u8) -> Result<u64> {
        match size {
            0 => Ok(0),
            4 => Ok(self.u32()? as u64),
            8 => self.u64(),
            n => Err(bad(format!(
                "{} field size {n} is not 0, 4 or 8",
                self.what
            ))),
        }
    }
    fn id(&mut self, wide: bool) -> Result<u32> {
        if wide {
            self.u32()
        } else {
            Ok(self.u16()? as u32)
        }
    }
    fn kind(&mut self) -> Result<[u8; 4]> {
        Ok(self.take(4)?.try_into().expect("4 bytes"))
    }
    /// A NUL-terminated string; a missing NUL ends it at the box end.
    fn cstr(&mut self) -> &'a [u8] {
        let rest = &self.b[self.pos..];
        let n = rest.iter().position(|&c| c == 0);
        self.pos += n.map_or(rest.len(), |n| n + 1);
        &rest[..n.unwrap_or(rest.len())]
    }
    /// Version and flags of a full box.
    fn full(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }
    fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }
}

/// One box: its type, where it starts in the file, and its body.
#[derive(Debug, Clone, Copy)]
pub struct BoxRef<'a> {
    pub kind: [u8; 4],
    /// Offset of the box header in the file.
    pub start: usize,
    /// Offset of the body in the file.
    pub body_start: usize,
    pub body: &'a [u8],
}

impl BoxRef<'_> {
    pub fn end(&self) -> usize {
        self.body_start + self.body.len()
    }
}

/// Splits `data` (which starts at file offset `base`) into boxes. Size 0
/// ("to the end") is allowed only where `to_end_ok` (the top level).
fn boxes(data: &[u8], base: usize, to_end_ok: bool) -> Result<Vec<BoxRef<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let (b, next) = one_box(data, pos, base, to_end_ok)?;
        out.push(b);
        pos = next;
    }
    Ok(out)
}

fn one_box(data: &[u8], pos: usize, base: usize, to_end_ok: bool) -> Result<(BoxRef<'_>, usize)> {
    let mut c = Cur::new(&data[pos..], "box header");
    let size32 = c.u32()?;
    let kind = c.kind()?;
    let size = match size32 {
        0 if to_end_ok => (data.len() - pos) as u64,
        0 => {
            return Err(bad(format!(
                "box {} of size 0 inside another box",
                fourcc(&kind)
            )))
        }
        1 => c.u64()?,
        n => n as u64,
    };
    if kind == *b"uuid" {
        c.take(16)?;
    }
    let header = c.pos as u64;
    let end = (pos as u64)
        .checked_add(size)
        .filter(|&e| size >= header && e <= data.len() as u64)
        .ok_or_else(|| {
            bad(format!(
                "box {} declares {size} bytes, past the end of its container",
                fourcc(&kind)
            ))
        })? as usize;
    let body_at = pos + header as usize;
    Ok((
        BoxRef {
            kind,
            start: base + pos,
            body_start: base + body_at,
            body: &data[body_at..end],
        },
        end,
    ))
}

/// Where an item's bytes are: in the file (method 0) or in `idat` (method 1).
/// A `colr` box of type `nclx`: the coding-independent code points of H.273.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nclx {
    pub primaries: u16,
    pub transfer: u16,
    pub matrix: u16,
    pub full_range: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub in_idat: bool,
    /// (offset, length): absolute file offsets, or offsets into `idat`.
    pub extents: Vec<(u64, u64)>,
}

/// One property association of an item (`ipma`): 1-based index into `ipco`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assoc {
    pub index: u16,
    pub essential: bool,
}

#[derive(Debug, Clone)]
pub struct Item<'a> {
    pub id: u32,
    pub kind: [u8; 4],
    pub hidden: bool,
    pub protected: bool,
    pub name: &'a [u8],
    /// `mime` items: content type and encoding (XMP may be deflated).
    pub content_type: &'a [u8],
    pub content_encoding: &'a [u8],
    pub location: Option<Location>,
    pub props: Vec<Assoc>,
}

#[derive(Debug, Clone, Copy)]
pub struct Property<'a> {
    pub kind: [u8; 4],
    pub body: &'a [u8],
}

#[derive(Debug, Clone)]
pub struct Reference {
    pub kind: [u8; 4],
    pub from: u32,
    pub to: Vec<u32>,
}

#[derive(Debug)]
pub struct Heif<'a> {
    pub bytes: &'a [u8],
    /// Top-level boxes in file order.
    pub top: Vec<BoxRef<'a>>,
    /// Bytes after the last box that do not form one (vendor trailers).
    pub trailing: usize,
    pub major_brand: [u8; 4],
    pub minor_version: u32,
    pub brands: Vec<[u8; 4]>,
    pub handler_name: &'a [u8],
    /// `meta` children by type, for the inventory (grpl, dinf...).
    pub meta_children: Vec<[u8; 4]>,
    pub primary: u32,
    /// Items in `iinf` order.
    pub items: Vec<Item<'a>>,
    /// `ipco` properties; association index `i` is `properties[i - 1]`.
    pub properties: Vec<Property<'a>>,
    pub references: Vec<Reference>,
    pub idat: &'a [u8],
    /// The items an output keeps (primary, tiles, alpha and its tiles), in `iinf` order.
    pub kept: Vec<u32>,
    /// The alpha item of the primary, if any.
    pub alpha: Option<u32>,
    pub width: u32,
    pub height: u32,
}

/// Parses and validates a HEIF file, and selects what an output keeps.
/// Everything an output would need is checked here, so a rewrite cannot fail.
pub fn parse<'a>(b: &'a [u8], limits: &Limits) -> Result<Heif<'a>> {
    let mut h = layout(b)?;
    h.check_extents()?;
    h.select(limits)?;
    Ok(h)
}

/// The boxes, items, properties and references, before any check of what
/// they point at (what [`load_sparse`] needs to know which bytes to read).
fn layout(b: &[u8]) -> Result<Heif<'_>> {
    let (top, trailing) = top_level(b)?;
    let ftyp = top
        .first()
        .filter(|x| x.kind == *b"ftyp")
        .ok_or_else(|| bad("the file does not start with an ftyp box"))?;
    let (major_brand, minor_version, brands) = parse_ftyp(ftyp.body)?;
    if top.iter().any(|x| x.kind == *b"moov") {
        return Err(Error::Unsupported(
            "HEIF image sequence or video (moov track): only still images can be cleaned".into(),
        ));
    }
    let metas: Vec<&BoxRef> = top.iter().filter(|x| x.kind == *b"meta").collect();
    let meta = match metas.as_slice() {
        [m] => *m,
        [] => return Err(bad("no meta box")),
        _ => return Err(bad("more than one top-level meta box")),
    };
    let mut h = Heif {
        bytes: b,
        top: top.clone(),
        trailing,
        major_brand,
        minor_version,
        brands,
        handler_name: &[],
        meta_children: Vec::new(),
        primary: 0,
        items: Vec::new(),
        properties: Vec::new(),
        references: Vec::new(),
        idat: &[],
        kept: Vec::new(),
        alpha: None,
        width: 0,
        height: 0,
    };
    parse_meta(&mut h, meta)?;
    Ok(h)
}

/// Coded pictures: the parser reads their extents, never their bytes, so a
/// lossless clean copies them by reference without reading them at all.
const CODED: &[&[u8; 4]] = &[b"hvc1", b"av01", b"hvt1"];

/// Loads a HEIF file for the lossless clean by reference: every byte but
/// the coded pictures' extents inside `mdat` (HEVC/AV1 tiles, thumbnails,
/// depth and gain maps), which are left as the zeros `buf` holds. So the
/// parse reads what it reads in a whole file (boxes, `meta`, Exif, XMP and
/// grid descriptors in `mdat`, trailers) and the picture is never read.
/// `buf` is the file's length, its first `head` bytes read. Returns the
/// ranges left unread (offset, length), or `None` when the layout does not
/// parse: the caller then reads the whole file and the parse says why.
pub fn load_sparse(
    buf: &mut [u8],
    head: usize,
    file: &std::fs::File,
) -> Result<Option<Vec<(u64, u64)>>> {
    let len = buf.len();
    let ensure = |buf: &mut [u8], a: usize, b: usize| -> Result<()> {
        let (a, b) = (a.max(head), b.min(len));
        if a < b {
            crate::splice::read_exact_at(file, &mut buf[a..b], a as u64).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    Error::Invalid("the file became shorter while it was being read".into())
                } else {
                    Error::io("cannot read", e)
                }
            })?;
        }
        Ok(())
    };
    // The top level as `top_level` walks it: every box read but mdat's body.
    let mut mdats = Vec::new();
    let mut pos = 0;
    while pos < len {
        // The header alone (size, type, then largesize and uuid if any):
        // not a byte of mdat's body.
        ensure(buf, pos, pos + 8)?;
        let large = buf.get(pos..pos + 4) == Some(&[0, 0, 0, 1][..]);
        let uuid = buf.get(pos + 4..pos + 8) == Some(&b"uuid"[..]);
        ensure(buf, pos, pos + 8 + 8 * large as usize + 16 * uuid as usize)?;
        match one_box(buf, pos, 0, true).map(|(x, end)| (x.kind, x.body_start, end)) {
            Ok((kind, body, end)) if kind == *b"mdat" => {
                mdats.push((body, end));
                pos = end;
            }
            Ok((_, _, end)) => {
                ensure(buf, pos, end)?;
                pos = end;
            }
            Err(_) => {
                // Trailing bytes: the parser looks at them.
                ensure(buf, pos, len)?;
                break;
            }
        }
    }
    let (mut holes, reads) = {
        let Ok(h) = layout(buf) else { return Ok(None) };
        let extents = |coded: bool| -> Vec<(u64, u64)> {
            h.items
                .iter()
                .filter(|i| CODED.contains(&&i.kind) == coded)
                .filter_map(|i| i.location.as_ref())
                .filter(|l| !l.in_idat)
                .flat_map(|l| l.extents.iter().copied())
                .filter(|e| e.1 > 0)
                .collect()
        };
        (extents(true), extents(false))
    };
    if holes
        .iter()
        .any(|&(o, n)| o.checked_add(n).is_none_or(|e| e > len as u64))
    {
        return Ok(None); // the parse refuses it, with the whole file's reason
    }
    holes.sort_unstable();
    // mdat's bytes outside the coded pictures, then every other item's
    // extents (they may overlap a picture's: read them whole).
    for (start, end) in mdats {
        let mut at = start as u64;
        for &(o, n) in &holes {
            let (o, e) = (o.max(at), (o + n).min(end as u64));
            if o < e {
                ensure(buf, at as usize, o as usize)?;
                at = e;
            }
        }
        ensure(buf, at as usize, end)?;
    }
    for (o, n) in reads {
        let end = o.saturating_add(n).min(len as u64);
        ensure(buf, o.min(len as u64) as usize, end as usize)?;
    }
    Ok(Some(holes))
}

/// Top-level boxes, and the count of trailing bytes that do not form a box
/// once `ftyp`, `meta` and an `mdat` have been seen whole.
fn top_level(b: &[u8]) -> Result<(Vec<BoxRef<'_>>, usize)> {
    let mut out: Vec<BoxRef> = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        match one_box(b, pos, 0, true) {
            Ok((x, next)) => {
                out.push(x);
                pos = next;
            }
            Err(e) => {
                let seen = |k: &[u8; 4]| out.iter().any(|x| x.kind == *k);
                if seen(b"ftyp") && seen(b"meta") && seen(b"mdat") {
                    return Ok((out, b.len() - pos));
                }
                return Err(e);
            }
        }
    }
    Ok((out, 0))
}

fn parse_ftyp(body: &[u8]) -> Result<([u8; 4], u32, Vec<[u8; 4]>)> {
    let mut c = Cur::new(body, "ftyp");
    let major = c.kind()?;
    let minor = c.u32()?;
    let mut brands = Vec::new();
    while !c.at_end() {
        brands.push(c.kind()?);
    }
    Ok((major, minor, brands))
}

fn parse_meta<'a>(h: &mut Heif<'a>, meta: &BoxRef<'a>) -> Result<()> {
    let mut c = Cur::new(meta.body, "meta");
    c.full()?;
    let children = boxes(&meta.body[4..], meta.body_start + 4, false)?;
    let mut seen = HashSet::new();
    let mut pitm = None;
    let mut locations = HashMap::new();
    let mut assocs = HashMap::new();
    for child in &children {
        if !seen.insert(child.kind) {
            return Err(bad(format!("two {} boxes in meta", fourcc(&child.kind))));
        }
        match &child.kind {
            b"hdlr" => h.handler_name = parse_hdlr(child.body)?,
            b"pitm" => pitm = Some(parse_pitm(child.body)?),
            b"iinf" => h.items = parse_iinf(child)?,
            b"iloc" => locations = parse_iloc(child.body)?,
            b"iref" => h.references = parse_iref(child.body)?,
            b"iprp" => {
                let (props, map) = parse_iprp(child)?;
                h.properties = props;
                assocs = map;
            }
            b"idat" => h.idat = child.body,
            _ => {}
        }
        h.meta_children.push(child.kind);
    }
    h.primary = pitm.ok_or_else(|| bad("no primary item (pitm)"))?;
    if h.items.is_empty() {
        return Err(bad("no item information (iinf)"));
    }
    let mut ids = HashSet::new();
    for item in &mut h.items {
        if !ids.insert(item.id) {
            return Err(bad(format!("item {} is declared twice", item.id)));
        }
        item.location = locations.remove(&item.id);
        item.props = assocs.remove(&item.id).unwrap_or_default();
    }
    if let Some(id) = locations.keys().chain(assocs.keys()).next() {
        return Err(bad(format!("location or properties for unknown item {id}")));
    }
    let count = h.properties.len();
    // Index 0 means "no property" (phones write it); essential, it is nonsense.
    for item in &mut h.items {
        if item.props.iter().any(|a| a.index == 0 && a.essential) {
            return Err(bad(format!(
                "item {} needs property 0, which does not exist",
                item.id
            )));
        }
        item.props.retain(|a| a.index != 0);
    }
    for a in h.items.iter().flat_map(|i| &i.props) {
        if a.index as usize > count {
            return Err(bad(format!(
                "property index {} out of range (1..={count})",
                a.index
            )));
        }
    }
    Ok(())
}

fn parse_hdlr(body: &[u8]) -> Result<&[u8]> {
    let mut c = Cur::new(body, "hdlr");
    c.full()?;
    c.u32()?;
    let handler = c.kind()?;
    if handler != *b"pict" {
        return Err(Error::Unsupported(format!(
            "HEIF meta handler {} (not a picture)",
            fourcc(&handler)
        )));
    }
    c.take(12)?;
    Ok(c.cstr())
}

fn parse_pitm(body: &[u8]) -> Result<u32> {
    let mut c = Cur::new(body, "pitm");
    let (v, _) = c.full()?;
    c.id(v >= 1)
}

fn parse_iinf<'a>(iinf: &BoxRef<'a>) -> Result<Vec<Item<'a>>> {
    let mut c = Cur::new(iinf.body, "iinf");
    let (v, _) = c.full()?;
    let declared = if v == 0 { c.u16()? as u32 } else { c.u32()? };
    let entries = boxes(&iinf.body[c.pos..], iinf.body_start + c.pos, false)?;
    if entries.len() != declared as usize {
        return Err(bad(format!(
            "iinf declares {declared} items but holds {}",
            entries.len()
        )));
    }
    entries
        .iter()
        .map(|e| {
            if e.kind != *b"infe" {
                return Err(bad(format!("{} box inside iinf", fourcc(&e.kind))));
            }
            parse_infe(e.body)
        })
        .collect()
}

fn parse_infe(body: &[u8]) -> Result<Item<'_>> {
    let mut c = Cur::new(body, "infe");
    let (v, flags) = c.full()?;
    if v < 2 {
        return Err(Error::Unsupported(format!(
            "HEIF item info version {v} (only 2 and 3 are images)"
        )));
    }
    let id = c.id(v >= 3)?;
    let protection = c.u16()?;
    let kind = c.kind()?;
    let name = c.cstr();
    let (mut content_type, mut content_encoding): (&[u8], &[u8]) = (&[], &[]);
    if kind == *b"mime" {
        content_type = c.cstr();
        content_encoding = c.cstr();
    }
    Ok(Item {
        id,
        kind,
        hidden: flags & 1 == 1,
        protected: protection != 0,
        name,
        content_type,
        content_encoding,
        location: None,
        props: Vec::new(),
    })
}

fn parse_iloc(body: &[u8]) -> Result<HashMap<u32, Location>> {
    let mut c = Cur::new(body, "iloc");
    let (v, _) = c.full()?;
    if v > 2 {
        return Err(Error::Unsupported(format!("HEIF iloc version {v}")));
    }
    let sizes = c.u16()?;
    let (off_size, len_size, base_size) = (
        (sizes >> 12) as u8,
        (sizes >> 8 & 15) as u8,
        (sizes >> 4 & 15) as u8,
    );
    let index_size = if v >= 1 { (sizes & 15) as u8 } else { 0 };
    let count = if v < 2 { c.u16()? as u32 } else { c.u32()? };
    let mut out = HashMap::new();
    for _ in 0..count {
        let id = c.id(v >= 2)?;
        let method = if v >= 1 { c.u16()? & 15 } else { 0 };
        match method {
            0 | 1 => {}
            2 => {
                return Err(Error::Unsupported(
                    "HEIF item built from another item (iloc construction method 2)".into(),
                ))
            }
            m => return Err(bad(format!("iloc construction method {m}"))),
        }
        if c.u16()? != 0 {
            return Err(Error::Unsupported(
                "HEIF item whose data is in another file (external data reference)".into(),
            ));
        }
        let base = c.sized(base_size)?;
        let extents = c.u16()?;
        let mut loc = Location {
            in_idat: method == 1,
            extents: Vec::new(),
        };
        for _ in 0..extents {
            c.sized(index_size)?;
            let offset = base
                .checked_add(c.sized(off_size)?)
                .ok_or_else(|| bad(format!("iloc offset of item {id} overflows")))?;
            let length = c.sized(len_size)?;
            if length == 0 {
                return Err(Error::Unsupported(
                    "HEIF extent of length 0 (\"to the end of the file\")".into(),
                ));
            }
            loc.extents.push((offset, length));
        }
        if out.insert(id, loc).is_some() {
            return Err(bad(format!("item {id} has two locations")));
        }
    }
    Ok(out)
}

fn parse_iref(body: &[u8]) -> Result<Vec<Reference>> {
    let mut c = Cur::new(body, "iref");
    let (v, _) = c.full()?;
    let wide = v >= 1;
    boxes(&body[4..], 0, false)?
        .iter()
        .map(|r| {
            let mut c = Cur::new(r.body, "iref");
            let from = c.id(wide)?;
            let n = c.u16()?;
            let to = (0..n).map(|_| c.id(wide)).collect::<Result<Vec<_>>>()?;
            Ok(Reference {
                kind: r.kind,
                from,
                to,
            })
        })
        .collect()
}

type Associations = HashMap<u32, Vec<Assoc>>;

fn parse_iprp<'a>(iprp: &BoxRef<'a>) -> Result<(Vec<Property<'a>>, Associations)> {
    let children = boxes(iprp.body, iprp.body_start, false)?;
    let mut ipco = None;
    let mut map = HashMap::new();
    for child in &children {
        match &child.kind {
            b"ipco" if ipco.is_some() => return Err(bad("two ipco boxes")),
            b"ipco" => {
                let props = boxes(child.body, child.body_start, false)?;
                ipco = Some(
                    props
                        .iter()
                        .map(|p| Property {
                            kind: p.kind,
                            body: p.body,
                        })
                        .collect(),
                );
            }
            b"ipma" => parse_ipma(child.body, &mut map)?,
            _ => {}
        }
    }
    Ok((
        ipco.ok_or_else(|| bad("no property container (ipco)"))?,
        map,
    ))
}

fn parse_ipma(body: &[u8], map: &mut Associations) -> Result<()> {
    let mut c = Cur::new(body, "ipma");
    let (v, flags) = c.full()?;
    let count = c.u32()?;
    for _ in 0..count {
        let id = c.id(v >= 1)?;
        let n = c.u8()?;
        let mut list = Vec::new();
        for _ in 0..n {
            let a = if flags & 1 == 1 {
                let x = c.u16()?;
                Assoc {
                    index: x & 0x7FFF,
                    essential: x & 0x8000 != 0,
                }
            } else {
                let x = c.u8()?;
                Assoc {
                    index: (x & 0x7F) as u16,
                    essential: x & 0x80 != 0,
                }
            };
            list.push(a);
        }
        if map.insert(id, list).is_some() {
            return Err(bad(format!("item {id} has two property lists")));
        }
    }
    Ok(())
}

/// The colour type of a `colr` property: `nclx`, `prof`, `rICC`...
fn colour_type(body: &[u8]) -> Option<[u8; 4]> {
    body.get(..4)?.try_into().ok()
}

/// The one place a kept ICC profile passes through: rebuilt from its colour
/// tags by `icc::sanitize`; a profile it cannot trust is dropped.
fn kept_icc(profile: &[u8]) -> Option<Vec<u8>> {
    crate::icc::sanitize(profile).ok()
}

fn is_alpha(aux: &Property) -> bool {
    let mut c = Cur::new(aux.body, "auxC");
    c.full().is_ok() && ALPHA_URNS.contains(&c.cstr())
}

impl<'a> Heif<'a> {
    pub fn item(&self, id: u32) -> Option<&Item<'a>> {
        self.items.iter().find(|i| i.id == id)
    }

    fn props_of<'s>(
        &'s self,
        item: &'s Item<'a>,
    ) -> impl Iterator<Item = (Assoc, &'s Property<'a>)> + 's {
        item.props
            .iter()
            .filter_map(|a| Some((*a, self.properties.get((a.index as usize).checked_sub(1)?)?)))
    }

    fn prop<'s>(&'s self, item: &'s Item<'a>, kind: &[u8; 4]) -> Option<&'s Property<'a>> {
        self.props_of(item)
            .map(|(_, p)| p)
            .find(|p| p.kind == *kind)
    }

    /// `ispe`: the coded size of an image item.
    fn ispe(&self, item: &Item<'a>) -> Result<(u32, u32)> {
        let p = self
            .prop(item, b"ispe")
            .ok_or_else(|| bad(format!("image item {} has no size (ispe)", item.id)))?;
        let mut c = Cur::new(p.body, "ispe");
        c.full()?;
        Ok((c.u32()?, c.u32()?))
    }

    fn refs(&self, kind: &[u8; 4], from: u32) -> Vec<&Reference> {
        self.references
            .iter()
            .filter(|r| r.kind == *kind && r.from == from)
            .collect()
    }

    /// Every extent lies inside the file or `idat`, without wrapping.
    fn check_extents(&self) -> Result<()> {
        for item in &self.items {
            let Some(loc) = &item.location else { continue };
            let limit = if loc.in_idat {
                self.idat.len()
            } else {
                self.bytes.len()
            } as u64;
            for &(off, len) in &loc.extents {
                if off.checked_add(len).is_none_or(|e| e > limit) {
                    return Err(bad(format!(
                        "item {} points past the end of the {}",
                        item.id,
                        if loc.in_idat { "idat box" } else { "file" }
                    )));
                }
            }
        }
        Ok(())
    }

    /// The bytes of an item: its extents, concatenated.
    pub fn payload(&self, item: &Item) -> Vec<u8> {
        self.payload_parts(item).concat()
    }

    /// The item's bytes, extent by extent, borrowed from the file or `idat`
    /// (no copy: the rewrite and the audit read them in place).
    pub fn payload_parts(&self, item: &Item) -> Vec<&'a [u8]> {
        let Some(loc) = &item.location else {
            return Vec::new();
        };
        let src = if loc.in_idat { self.idat } else { self.bytes };
        // Checked in `check_extents`; `get` keeps a bad call harmless.
        loc.extents
            .iter()
            .filter_map(|&(off, len)| src.get(off as usize..off.saturating_add(len) as usize))
            .collect()
    }

    fn payload_len(&self, item: &Item) -> u64 {
        self.payload_parts(item)
            .iter()
            .map(|p| p.len() as u64)
            .sum()
    }

    fn payload_hash(&self, item: &Item) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        for part in self.payload_parts(item) {
            h.update(part);
        }
        h.finalize()
    }

    /// Chooses what an output keeps, refusing what cannot be kept faithfully.
    fn select(&mut self, limits: &Limits) -> Result<()> {
        let primary = self
            .item(self.primary)
            .ok_or_else(|| bad(format!("primary item {} is not declared", self.primary)))?
            .clone();
        let mut kept = vec![primary.id];
        match &primary.kind {
            b"hvc1" | b"av01" => {
                let (w, h) = self.ispe(&primary)?;
                check_dimensions(FORMAT, w, h, limits)?;
            }
            b"grid" => kept.extend(self.grid_tiles(&primary, limits)?),
            b"iovl" => {
                return Err(Error::Unsupported(
                    "HEIF overlay (iovl) primary image".into(),
                ))
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "HEIF primary image of type {}",
                    fourcc(other)
                )))
            }
        }
        (self.width, self.height) = self.ispe(&primary)?;
        // The alpha plane: an auxiliary image of the primary marked as alpha.
        let alpha = self
            .references
            .iter()
            .filter(|r| r.kind == *b"auxl" && r.to.contains(&primary.id))
            .filter_map(|r| self.item(r.from))
            .find(|i| self.prop(i, b"auxC").is_some_and(is_alpha))
            .cloned();
        if let Some(a) = alpha {
            kept.push(a.id);
            match &a.kind {
                b"hvc1" | b"av01" => {}
                b"grid" => kept.extend(self.grid_tiles(&a, limits)?),
                other => {
                    return Err(Error::Unsupported(format!(
                        "HEIF alpha plane of type {}",
                        fourcc(other)
                    )))
                }
            }
            self.alpha = Some(a.id);
        }
        let set: HashSet<u32> = kept.iter().copied().collect();
        if set.len() != kept.len() {
            return Err(bad("an item is used twice by the picture"));
        }
        for id in &kept {
            let item = self.item(*id).expect("kept items exist");
            self.check_kept(item)?;
        }
        self.kept = self
            .items
            .iter()
            .map(|i| i.id)
            .filter(|id| set.contains(id))
            .collect();
        Ok(())
    }

    /// The tiles of a grid, in order, after checking the grid's size first.
    fn grid_tiles(&self, grid: &Item<'a>, limits: &Limits) -> Result<Vec<u32>> {
        let desc = self.payload(grid);
        let mut c = Cur::new(&desc, "grid descriptor");
        c.u8()?;
        let flags = c.u8()?;
        let rows = c.u8()? as u64 + 1;
        let cols = c.u8()? as u64 + 1;
        let wide = flags & 1 == 1;
        let (w, h) = (c.id(wide)?, c.id(wide)?);
        check_dimensions(FORMAT, w, h, limits)?;
        let count = rows * cols;
        if count > MAX_TILES {
            return Err(Error::TooLarge(format!("HEIF grid of {count} tiles")));
        }
        let refs = self.refs(b"dimg", grid.id);
        let [r] = refs.as_slice() else {
            return Err(bad(format!(
                "grid {} has {} tile lists",
                grid.id,
                refs.len()
            )));
        };
        if r.to.len() as u64 != count {
            return Err(bad(format!(
                "grid {} declares {rows}x{cols} tiles but lists {}",
                grid.id,
                r.to.len()
            )));
        }
        let mut tile_pixels = 0u64;
        let mut sizes = Vec::with_capacity(r.to.len());
        for id in &r.to {
            let tile = self
                .item(*id)
                .ok_or_else(|| bad(format!("grid tile {id} is not declared")))?;
            if !matches!(&tile.kind, b"hvc1" | b"av01") {
                return Err(bad(format!(
                    "grid tile {id} is a {} (a grid of derived images, or a cycle)",
                    fourcc(&tile.kind)
                )));
            }
            let (tw, th) = self.ispe(tile)?;
            tile_pixels = tile_pixels.saturating_add(tw as u64 * th as u64);
            sizes.push((tw as u64, th as u64));
        }
        if tile_pixels > limits.max_pixels {
            return Err(Error::TooLarge(format!(
                "HEIF grid tiles hold {} MP (limit {} MP)",
                tile_pixels / 1_000_000,
                limits.max_pixels / 1_000_000
            )));
        }
        // HEIF (ISO 23008-12, 6.6.2.3): tiles of one size that cover the
        // output, cropped only in the last row and column.
        let (tw, th) = sizes.first().copied().unwrap_or_default();
        if sizes.iter().any(|&s| s != (tw, th)) {
            return Err(bad(format!(
                "grid {} has tiles of different sizes",
                grid.id
            )));
        }
        let (w, h) = (w as u64, h as u64);
        if tw * cols < w || th * rows < h || tw * (cols - 1) >= w || th * (rows - 1) >= h {
            return Err(bad(format!(
                "grid {} of {rows}x{cols} tiles of {tw}x{th} does not fit its {w}x{h} output",
                grid.id
            )));
        }
        if let Ok((iw, ih)) = self.ispe(grid) {
            if (iw as u64, ih as u64) != (w, h) {
                return Err(bad(format!(
                    "grid {} says {w}x{h} in its descriptor and {iw}x{ih} in its ispe",
                    grid.id
                )));
            }
        }
        Ok(r.to.clone())
    }

    /// A kept item must be readable here and carry nothing essential we drop.
    fn check_kept(&self, item: &Item<'a>) -> Result<()> {
        if item.protected {
            return Err(Error::Unsupported(format!(
                "HEIF item {} is encrypted (protected)",
                item.id
            )));
        }
        if item.location.is_none() {
            return Err(bad(format!("image item {} has no data (iloc)", item.id)));
        }
        for (a, p) in self.props_of(item) {
            if a.essential && !KEPT_PROPERTIES.contains(&&p.kind) {
                return Err(Error::Unsupported(format!(
                    "HEIF item {} needs property {}, which photodeid does not know",
                    item.id,
                    fourcc(&p.kind)
                )));
            }
        }
        Ok(())
    }

    /// Whether the output keeps property `p` on kept item `item`.
    fn keeps_property(&self, item: &Item<'a>, p: &Property, policy: &RewritePolicy) -> bool {
        match &p.kind {
            b"auxC" => Some(item.id) == self.alpha && is_alpha(p),
            b"colr" => match colour_type(p.body).as_ref() {
                Some(b"nclx") => true,
                Some(b"prof" | b"rICC") => {
                    policy.keep_icc && p.body.get(4..).and_then(kept_icc).is_some()
                }
                _ => false,
            },
            k => KEPT_PROPERTIES.contains(&k),
        }
    }

    /// Bits per sample of the coded picture (`hvcC` of the primary or its
    /// first tile; 8 when unknown).
    pub fn bit_depth(&self) -> u8 {
        self.kept
            .iter()
            .filter_map(|&id| self.item(id))
            .find_map(|i| self.prop(i, b"hvcC"))
            .and_then(|p| p.body.get(18))
            .map_or(8, |b| (b & 7) + 8)
    }

    /// The embedded ICC profile of the primary image.
    pub fn icc_profile(&self) -> Option<Vec<u8>> {
        let primary = self.item(self.primary)?;
        self.props_of(primary)
            .map(|(_, p)| p)
            .find(|p| {
                p.kind == *b"colr"
                    && matches!(colour_type(p.body).as_ref(), Some(b"prof" | b"rICC"))
            })
            .and_then(|p| kept_icc(&p.body[4..]))
    }

    /// The primary's `nclx` colour description (H.273 primaries, transfer,
    /// matrix, full range), or its first tile's for a grid.
    pub fn nclx(&self) -> Option<Nclx> {
        let primary = self.item(self.primary)?;
        let tile = self
            .refs(b"dimg", primary.id)
            .first()
            .and_then(|r| r.to.first())
            .and_then(|&id| self.item(id));
        [Some(primary), tile]
            .into_iter()
            .flatten()
            .find_map(|item| {
                self.props_of(item).map(|(_, p)| p).find_map(|p| {
                    let b = p.body;
                    (p.kind == *b"colr" && b.len() >= 11 && &b[..4] == b"nclx").then(|| Nclx {
                        primaries: u16::from_be_bytes([b[4], b[5]]),
                        transfer: u16::from_be_bytes([b[6], b[7]]),
                        matrix: u16::from_be_bytes([b[8], b[9]]),
                        full_range: b[10] & 0x80 != 0,
                    })
                })
            })
    }

    /// The TIFF blocks of the Exif items (after their header offset).
    pub fn exif_payloads(&self) -> Vec<Vec<u8>> {
        self.items
            .iter()
            .filter(|i| i.kind == *b"Exif")
            .filter_map(|i| {
                let data = self.payload(i);
                let skip = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
                let tiff = data.get(4usize.checked_add(skip)?..)?;
                Some(tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff).to_vec())
            })
            .collect()
    }

    /// Rotation and mirroring of the primary (`irot` quarter turns anticlockwise, `imir` axis).
    pub fn transforms(&self) -> Vec<Transform> {
        let Some(primary) = self.item(self.primary) else {
            return Vec::new();
        };
        self.props_of(primary)
            .filter_map(|(_, p)| match (&p.kind, p.body.first()) {
                (b"irot", Some(r)) => Some(Transform::Rotate(r & 3)),
                (b"imir", Some(m)) => Some(Transform::Mirror(m & 1)),
                (b"clap", _) => clap(p.body).map(Transform::Crop),
                _ => None,
            })
            .collect()
    }
}

impl Heif<'_> {
    /// The size a viewer shows: `ispe`, cropped by `clap`, turned by `irot`.
    pub fn display_size(&self) -> (u32, u32) {
        let (mut w, mut h) = (self.width, self.height);
        for t in self.transforms() {
            match t {
                Transform::Crop([cw, ch, _, _]) => {
                    let f = |(n, d): (i64, i64), max: u32| {
                        ((n as f64 / d as f64).round().max(1.0) as u32).min(max)
                    };
                    (w, h) = (f(cw, w), f(ch, h));
                }
                Transform::Rotate(r) if r % 2 == 1 => (w, h) = (h, w),
                _ => {}
            }
        }
        (w, h)
    }
}

/// A display transform of the primary, in the order the file lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// Quarter turns anticlockwise.
    Rotate(u8),
    /// The `imir` axis as libheif (and so every viewer built on it) reads it: 0 swaps top and
    /// bottom, 1 swaps left and right.
    Mirror(u8),
    /// Clean aperture: (width, height, horizontal offset, vertical offset) as fractions.
    Crop([(i64, i64); 4]),
}

fn clap(body: &[u8]) -> Option<[(i64, i64); 4]> {
    let mut c = Cur::new(body, "clap");
    let mut f = || -> Option<(i64, i64)> {
        let n = c.u32().ok()?;
        let d = c.u32().ok()?;
        (d != 0).then_some((n as i32 as i64, d as i32 as i64))
    };
    Some([f()?, f()?, f()?, f()?])
}

/// What `check` says about a HEIF file.
impl Heif<'_> {
    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::default();
        let kept: HashSet<u32> = self.kept.iter().copied().collect();
        for x in &self.top {
            match &x.kind {
                b"ftyp" | b"meta" => {}
                b"mdat" => {}
                b"free" | b"skip" if x.body.iter().all(|&b| b == 0) => {}
                b"free" | b"skip" => inv.push(
                    Category::Other,
                    format!(
                        "{} box holding {}",
                        fourcc(&x.kind),
                        human_bytes(x.body.len() as u64)
                    ),
                ),
                other => inv.push(
                    Category::Other,
                    format!(
                        "vendor box {} at the top level, {}",
                        fourcc(other),
                        human_bytes(x.body.len() as u64)
                    ),
                ),
            }
        }
        if self.trailing > 0 {
            inv.push(
                Category::TrailingData,
                format!("{} after the last box", human_bytes(self.trailing as u64)),
            );
        }
        if !self.handler_name.is_empty() {
            inv.push(
                Category::Other,
                format!(
                    "handler name \"{}\"",
                    short_value(&String::from_utf8_lossy(self.handler_name), 40)
                ),
            );
        }
        for k in &self.meta_children {
            match k {
                b"hdlr" | b"pitm" | b"iinf" | b"iloc" | b"iref" | b"iprp" | b"idat" | b"dinf" => {}
                b"grpl" => inv.push(
                    Category::Other,
                    "entity groups (grpl: a burst, a stereo pair or alternatives)",
                ),
                other => inv.push(Category::Other, format!("meta box {}", fourcc(other))),
            }
        }
        let mut described = HashSet::new();
        for item in &self.items {
            if kept.contains(&item.id) {
                self.describe_kept(item, &mut described, &mut inv);
            } else {
                self.describe_dropped(item, &mut inv);
            }
        }
        if let Some(n) = self.unreferenced_mdat() {
            inv.push(
                Category::Other,
                format!("{} of mdat that no item uses", human_bytes(n)),
            );
        }
        inv
    }

    /// Names what a kept item carries; each shared property once.
    fn describe_kept(&self, item: &Item, described: &mut HashSet<u16>, inv: &mut Inventory) {
        if !item.name.is_empty() {
            inv.push(
                Category::Other,
                format!(
                    "item name \"{}\"",
                    short_value(&String::from_utf8_lossy(item.name), 40)
                ),
            );
        }
        for (a, p) in self.props_of(item) {
            if !described.insert(a.index) {
                continue;
            }
            match (&p.kind, colour_type(p.body).as_ref()) {
                (b"colr", Some(b"prof" | b"rICC")) => {
                    inv.push(Category::ColourProfile, crate::icc::describe(&p.body[4..]))
                }
                (b"auxC", _) if !is_alpha(p) => {
                    inv.push(Category::Other, "auxiliary type on the picture")
                }
                (k, _) if KEPT_PROPERTIES.contains(&k) => {}
                (k, _) => inv.push(
                    Category::Other,
                    format!("property {} on the picture", fourcc(k)),
                ),
            }
        }
    }

    fn describe_dropped(&self, item: &Item, inv: &mut Inventory) {
        // A derived image's size includes its tiles.
        let tiles: u64 = self
            .refs(b"dimg", item.id)
            .iter()
            .flat_map(|r| &r.to)
            .filter_map(|&t| self.item(t))
            .map(|t| self.payload_len(t))
            .sum();
        let size = human_bytes(self.payload_len(item) + tiles);
        let refs_to = |kind: &[u8; 4]| {
            self.references
                .iter()
                .any(|r| r.kind == *kind && r.from == item.id)
        };
        let aux = self.prop(item, b"auxC").map(|p| {
            let mut c = Cur::new(p.body, "auxC");
            let _ = c.full();
            String::from_utf8_lossy(c.cstr()).to_ascii_lowercase()
        });
        let dims = self
            .ispe(item)
            .map(|(w, h)| format!("{w}x{h}, "))
            .unwrap_or_default();
        let tile = self
            .references
            .iter()
            .any(|r| r.kind == *b"dimg" && r.to.contains(&item.id));
        let (cat, what) = match &item.kind {
            b"Exif" => return, // summarised by container::parse from `exif_payloads`
            b"mime" => {
                let deflated = if item.content_encoding.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({}-encoded)",
                        short_value(&String::from_utf8_lossy(item.content_encoding), 16)
                    )
                };
                if item.content_type.starts_with(b"application/rdf+xml") {
                    let data = self.payload(item);
                    (
                        Category::Xmp,
                        format!("{}{deflated}", crate::describe::xmp(&data)),
                    )
                } else {
                    (
                        Category::Other,
                        format!(
                            "{} item{deflated}, {size}",
                            short_value(&String::from_utf8_lossy(item.content_type), 40)
                        ),
                    )
                }
            }
            b"uri " => (Category::Other, format!("URI item, {size}")),
            b"uuid" => (Category::Other, format!("vendor (uuid) item, {size}")),
            b"iptc" => (Category::IptcPhotoshop, format!("IPTC item, {size}")),
            b"tmap" => (
                Category::Other,
                format!("HDR gain map (tmap), {dims}{size}"),
            ),
            _ if tile => return, // described with the image it belongs to
            _ if refs_to(b"thmb") => (
                Category::Thumbnail,
                format!("thumbnail image, {dims}{size}"),
            ),
            _ if aux.as_deref().is_some_and(|a| {
                a.contains("depth") || a.contains("disparity") || a.ends_with("auxid:2")
            }) =>
            {
                (Category::Other, format!("depth map, {dims}{size}"))
            }
            _ if aux
                .as_deref()
                .is_some_and(|a| a.contains("hdrgainmap") || a.contains("gainmap")) =>
            {
                (Category::Other, format!("HDR gain map, {dims}{size}"))
            }
            _ if aux.is_some() => (
                Category::Other,
                format!(
                    "auxiliary image \"{}\", {dims}{size}",
                    short_value(aux.as_deref().unwrap_or(""), 60)
                ),
            ),
            k if refs_to(b"auxl") || refs_to(b"cdsc") => (
                Category::Other,
                format!("{} item attached to the picture, {size}", fourcc(k)),
            ),
            b"hvc1" | b"av01" | b"grid" | b"iovl" | b"iden" | b"jpeg" => {
                (Category::Other, format!("second image, {dims}{size}"))
            }
            k => (Category::Other, format!("{} item, {size}", fourcc(k))),
        };
        inv.push(cat, format!("{what} (item {})", item.id));
    }

    /// Bytes inside `mdat` boxes that no item's extents cover.
    fn unreferenced_mdat(&self) -> Option<u64> {
        let mut spans: Vec<(u64, u64)> = self
            .items
            .iter()
            .filter_map(|i| i.location.as_ref())
            .filter(|l| !l.in_idat)
            .flat_map(|l| l.extents.iter().map(|&(o, n)| (o, o + n)))
            .collect();
        spans.sort_unstable();
        let mut total = 0u64;
        for m in self.top.iter().filter(|x| x.kind == *b"mdat") {
            let (start, end) = (m.body_start as u64, m.end() as u64);
            let mut covered = 0u64;
            let mut at = start;
            for &(s, e) in &spans {
                let (s, e) = (s.max(at), e.min(end));
                if s < e {
                    covered += e - s;
                    at = e;
                }
            }
            total += (end - start) - covered;
        }
        (total > 0).then_some(total)
    }
}

/// Whether an output keeps `item`'s bytes in `idat`: where the input had
/// them, and grid descriptors always (a few bytes of meta, not picture data;
/// the spliced audit reads mdat payloads as zeros, so a descriptor left in
/// mdat could not be checked, and libavif writes them there).
fn out_in_idat(item: &Item) -> bool {
    item.kind == *b"grid" || item.location.as_ref().is_some_and(|l| l.in_idat)
}

fn put_box(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    let size = body.len() as u64 + 8;
    if let Ok(s) = u32::try_from(size) {
        out.extend_from_slice(&s.to_be_bytes());
        out.extend_from_slice(kind);
    } else {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(&(size + 8).to_be_bytes());
    }
    out.extend_from_slice(body);
}

fn full_box(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) {
    let mut b = (((version as u32) << 24) | flags).to_be_bytes().to_vec();
    b.extend_from_slice(body);
    put_box(out, kind, &b);
}

fn put_id(out: &mut Vec<u8>, id: u32, wide: bool) {
    if wide {
        out.extend_from_slice(&id.to_be_bytes());
    } else {
        out.extend_from_slice(&(id as u16).to_be_bytes());
    }
}

impl<'a> Heif<'a> {
    /// Rebuilds the file: a fresh ftyp, a meta with only the kept items,
    /// properties and references, and an mdat with only their bytes.
    pub fn rewrite(&self, policy: &RewritePolicy) -> Vec<u8> {
        self.rewrite_spliced(policy).to_vec()
    }

    /// [`Heif::rewrite`] with the mdat payloads kept by reference (see
    /// [`crate::splice`]): the same bytes, the HEVC/AV1 data copied from the
    /// input in the kernel. The audit sees the payloads as zeros and checks
    /// where they come from instead ([`Heif::verify_spliced`]).
    pub fn rewrite_spliced(&self, policy: &RewritePolicy) -> Spliced<'a> {
        let kept: Vec<&Item> = self.kept.iter().filter_map(|&id| self.item(id)).collect();
        let wide = kept.iter().any(|i| i.id > 0xFFFF);
        let parts: Vec<Vec<&'a [u8]>> = kept.iter().map(|i| self.payload_parts(i)).collect();
        let payloads: Vec<u64> = parts
            .iter()
            .map(|p| p.iter().map(|s| s.len() as u64).sum())
            .collect();
        let in_idat = |i: &Item| out_in_idat(i);
        let idat: Vec<u8> = kept
            .iter()
            .zip(&parts)
            .filter(|(i, _)| in_idat(i))
            .flat_map(|(_, p)| p.concat())
            .collect();
        let mdat_len: u64 = kept
            .iter()
            .zip(&payloads)
            .filter(|(i, _)| !in_idat(i))
            .map(|(_, &len)| len)
            .sum();
        let mut head = Vec::new();
        put_box(&mut head, b"ftyp", &self.ftyp());
        let mdat_header = if mdat_len + 8 > u32::MAX as u64 {
            16
        } else {
            8
        };
        // The meta's size does not depend on the offsets (fixed-width fields).
        let probe = self.meta(policy, &kept, &payloads, &idat, wide, 0);
        let data_at = (head.len() + probe.len()) as u64 + mdat_header;
        let meta = self.meta(policy, &kept, &payloads, &idat, wide, data_at);
        head.extend_from_slice(&meta);
        // The mdat header as `put_box` writes it, then the payloads in place.
        if mdat_header == 8 {
            head.extend_from_slice(&((mdat_len + 8) as u32).to_be_bytes());
            head.extend_from_slice(b"mdat");
        } else {
            head.extend_from_slice(&1u32.to_be_bytes());
            head.extend_from_slice(b"mdat");
            head.extend_from_slice(&(mdat_len + 16).to_be_bytes());
        }
        let mut out = Spliced::from_vec(head);
        for (i, p) in kept.iter().zip(&parts) {
            if !in_idat(i) {
                p.iter().for_each(|s| out.payload(s, AuditAs::Zeros));
            }
        }
        out
    }

    /// The output's ftyp body: the input's brands that describe what is kept.
    fn ftyp(&self) -> Vec<u8> {
        let mut ftyp = self.major_brand.to_vec();
        ftyp.extend_from_slice(&self.minor_version.to_be_bytes());
        let mut brands: Vec<&[u8; 4]> = self
            .brands
            .iter()
            .filter(|b| KEPT_BRANDS.contains(b))
            .collect();
        // Readers want mif1 and the major brand listed (some writers leave the list empty).
        for must in [b"mif1", &self.major_brand] {
            if KEPT_BRANDS.contains(&must) && !brands.contains(&must) {
                brands.push(must);
            }
        }
        for b in brands {
            ftyp.extend_from_slice(b);
        }
        ftyp
    }

    fn meta(
        &self,
        policy: &RewritePolicy,
        kept: &[&Item],
        payloads: &[u64],
        idat: &[u8],
        wide: bool,
        data_at: u64,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        // hdlr: pre_defined, 'pict', reserved, empty name.
        let mut hdlr = vec![0u8; 4];
        hdlr.extend_from_slice(b"pict");
        hdlr.extend_from_slice(&[0u8; 13]);
        full_box(&mut body, b"hdlr", 0, 0, &hdlr);
        let mut pitm = Vec::new();
        put_id(&mut pitm, self.primary, wide);
        full_box(&mut body, b"pitm", wide as u8, 0, &pitm);
        body.extend_from_slice(&self.iloc(kept, payloads, wide, data_at, idat.len()));
        let mut iinf = (kept.len() as u16).to_be_bytes().to_vec();
        for i in kept {
            let mut infe = Vec::new();
            put_id(&mut infe, i.id, i.id > 0xFFFF);
            infe.extend_from_slice(&[0, 0]);
            infe.extend_from_slice(&i.kind);
            infe.push(0);
            full_box(
                &mut iinf,
                b"infe",
                if i.id > 0xFFFF { 3 } else { 2 },
                i.hidden as u32,
                &infe,
            );
        }
        full_box(&mut body, b"iinf", 0, 0, &iinf);
        let ids: HashSet<u32> = kept.iter().map(|i| i.id).collect();
        let mut iref = Vec::new();
        for r in &self.references {
            if !KEPT_REFERENCES.contains(&&r.kind) || !ids.contains(&r.from) {
                continue;
            }
            let to: Vec<u32> = r.to.iter().copied().filter(|t| ids.contains(t)).collect();
            if to.is_empty() {
                continue;
            }
            let mut e = Vec::new();
            put_id(&mut e, r.from, wide);
            e.extend_from_slice(&(to.len() as u16).to_be_bytes());
            for t in to {
                put_id(&mut e, t, wide);
            }
            put_box(&mut iref, &r.kind, &e);
        }
        if !iref.is_empty() {
            full_box(&mut body, b"iref", wide as u8, 0, &iref);
        }
        body.extend_from_slice(&self.iprp(policy, kept, wide));
        if !idat.is_empty() {
            put_box(&mut body, b"idat", idat);
        }
        let mut meta = Vec::new();
        full_box(&mut meta, b"meta", 0, 0, &body);
        meta
    }

    /// ipco with the kept properties (each once, original order), and ipma.
    fn iprp(&self, policy: &RewritePolicy, kept: &[&Item], wide: bool) -> Vec<u8> {
        let mut used: Vec<u16> = kept
            .iter()
            .flat_map(|i| {
                i.props
                    .iter()
                    .filter(|a| {
                        let p = &self.properties[a.index as usize - 1];
                        self.keeps_property(i, p, policy)
                    })
                    .map(|a| a.index)
            })
            .collect();
        used.sort_unstable();
        used.dedup();
        let new_index: HashMap<u16, u16> = used
            .iter()
            .enumerate()
            .map(|(n, &old)| (old, n as u16 + 1))
            .collect();
        let mut ipco = Vec::new();
        for &old in &used {
            let p = &self.properties[old as usize - 1];
            if p.kind == *b"colr" && matches!(colour_type(p.body).as_ref(), Some(b"prof" | b"rICC"))
            {
                let mut b = p.body[..4].to_vec();
                b.extend_from_slice(&kept_icc(&p.body[4..]).unwrap_or_default());
                put_box(&mut ipco, b"colr", &b);
            } else {
                put_box(&mut ipco, &p.kind, p.body);
            }
        }
        let big = used.len() > 127;
        let mut ipma = (kept.len() as u32).to_be_bytes().to_vec();
        for i in kept {
            put_id(&mut ipma, i.id, wide);
            let list: Vec<(u16, bool)> = i
                .props
                .iter()
                .filter_map(|a| Some((*new_index.get(&a.index)?, a.essential)))
                .collect();
            ipma.push(list.len() as u8);
            for (idx, ess) in list {
                if big {
                    ipma.extend_from_slice(&(idx | (ess as u16) << 15).to_be_bytes());
                } else {
                    ipma.push(idx as u8 | (ess as u8) << 7);
                }
            }
        }
        let mut iprp = Vec::new();
        put_box(&mut iprp, b"ipco", &ipco);
        full_box(&mut iprp, b"ipma", wide as u8, big as u32, &ipma);
        let mut out = Vec::new();
        put_box(&mut out, b"iprp", &iprp);
        out
    }

    /// iloc version 1 (2 for 32-bit ids): one extent per item, 8-byte fields
    /// when the file needs them.
    fn iloc(
        &self,
        kept: &[&Item],
        payloads: &[u64],
        wide: bool,
        data_at: u64,
        idat_len: usize,
    ) -> Vec<u8> {
        let total: u64 = data_at + payloads.iter().sum::<u64>() + idat_len as u64;
        let field = if total > u32::MAX as u64 { 8u8 } else { 4 };
        let mut b = vec![field << 4 | field, 0];
        if wide {
            b.extend_from_slice(&(kept.len() as u32).to_be_bytes());
        } else {
            b.extend_from_slice(&(kept.len() as u16).to_be_bytes());
        }
        let (mut at_file, mut at_idat) = (data_at, 0u64);
        for (i, &len) in kept.iter().zip(payloads) {
            let in_idat = out_in_idat(i);
            put_id(&mut b, i.id, wide);
            b.extend_from_slice(&(in_idat as u16).to_be_bytes());
            b.extend_from_slice(&[0, 0]); // data_reference_index: this file
            b.extend_from_slice(&1u16.to_be_bytes());
            let at = if in_idat { &mut at_idat } else { &mut at_file };
            let put = |b: &mut Vec<u8>, v: u64| {
                if field == 8 {
                    b.extend_from_slice(&v.to_be_bytes());
                } else {
                    b.extend_from_slice(&(v as u32).to_be_bytes());
                }
            };
            put(&mut b, *at);
            put(&mut b, len);
            *at += len;
        }
        let mut out = Vec::new();
        full_box(&mut out, b"iloc", if wide { 2 } else { 1 }, 0, &b);
        out
    }

    /// The audit of a rewrite: the output re-parsed by this parser holds
    /// exactly `ftyp meta mdat`, only allowlisted items, properties and
    /// references, extents that tile mdat and idat with no byte left over,
    /// and every kept payload hash-equal to the input's.
    pub fn verify_rewrite(&self, out: &[u8], limits: &Limits) -> Result<()> {
        let o = self.verify_structure(out, limits)?;
        for item in &o.items {
            let src = self.item(item.id).expect("checked in verify_structure");
            if self.payload_hash(src) != o.payload_hash(item) {
                return audit_fail(format!("item {} differs from the input's", item.id));
            }
        }
        Ok(())
    }

    /// The audit of [`Heif::rewrite_spliced`] on its audit view (the made
    /// bytes, each mdat payload as zeros): the structure as in
    /// [`Heif::verify_rewrite`]; the `idat` payloads hash-equal to the
    /// input's; and every mdat item's extent, as the written header says,
    /// filled exactly by the input ranges of the same item, in order. Those
    /// ranges were parsed here, and the input is checked unchanged after the
    /// copy, so no payload is hashed (or read) twice.
    pub fn verify_spliced(&self, view: &[u8], out: &Spliced, limits: &Limits) -> Result<()> {
        let o = self.verify_structure(view, limits)?;
        // Output offset -> (input offset, length) of each referenced range.
        let refs: HashMap<u64, (Option<u64>, u64)> = out
            .payload_sources(self.bytes)
            .into_iter()
            .map(|(at, from, len)| (at, (from, len)))
            .collect();
        let mut used = 0;
        for item in &o.items {
            let src = self.item(item.id).expect("checked in verify_structure");
            let Some(loc) = &item.location else { continue };
            if loc.in_idat {
                if self.payload_hash(src) != o.payload_hash(item) {
                    return audit_fail(format!("item {} differs from the input's", item.id));
                }
                continue;
            }
            let mut got = Vec::new();
            for &(mut at, len) in &loc.extents {
                let end = at + len;
                while at < end {
                    let Some(&(from, n)) = refs.get(&at) else {
                        return audit_fail(format!(
                            "item {} holds bytes that are not the input's",
                            item.id
                        ));
                    };
                    got.push((from, n));
                    used += 1;
                    at += n;
                }
                if at != end {
                    return audit_fail(format!("item {} overlaps another payload", item.id));
                }
            }
            let want: Vec<(Option<u64>, u64)> = src
                .location
                .iter()
                .flat_map(|l| l.extents.iter())
                .filter(|e| e.1 > 0)
                .map(|&(off, len)| (Some(off), len))
                .collect();
            if got != want {
                return audit_fail(format!("item {} differs from the input's", item.id));
            }
        }
        if used != refs.len() {
            return audit_fail("input bytes written outside the kept items".into());
        }
        Ok(())
    }

    /// The checks every audit shares; returns the output's parse.
    fn verify_structure<'o>(&self, out: &'o [u8], limits: &Limits) -> Result<Heif<'o>> {
        let o = match parse(out, limits) {
            Ok(o) => o,
            Err(e) => return audit_fail(format!("does not parse ({e})")),
        };
        let kinds: Vec<[u8; 4]> = o.top.iter().map(|x| x.kind).collect();
        if kinds != [*b"ftyp", *b"meta", *b"mdat"] || o.trailing != 0 {
            return audit_fail("top level is not exactly ftyp meta mdat".into());
        }
        if o.kept != self.kept || o.items.len() != self.kept.len() || o.primary != self.primary {
            return audit_fail("items differ from the ones kept".into());
        }
        if let Some(i) = o
            .items
            .iter()
            .find(|i| !KEPT_ITEM_TYPES.contains(&&i.kind) || !i.name.is_empty())
        {
            return audit_fail(format!(
                "item {} of type {} is not allowed",
                i.id,
                fourcc(&i.kind)
            ));
        }
        if let Some(p) = o
            .properties
            .iter()
            .find(|p| !KEPT_PROPERTIES.contains(&&p.kind))
        {
            return audit_fail(format!("property {} is not allowed", fourcc(&p.kind)));
        }
        if let Some(r) = o
            .references
            .iter()
            .find(|r| !KEPT_REFERENCES.contains(&&r.kind))
        {
            return audit_fail(format!("reference {} is not allowed", fourcc(&r.kind)));
        }
        if !o.handler_name.is_empty() {
            return audit_fail("handler name kept".into());
        }
        let mdat = &o.top[2];
        if !tiles(&o, false, (mdat.body_start as u64, mdat.end() as u64))
            || !tiles(&o, true, (0, o.idat.len() as u64))
        {
            return audit_fail("item extents do not cover mdat and idat exactly".into());
        }
        for item in &o.items {
            match self.item(item.id) {
                Some(src) if src.kind == item.kind => {}
                Some(_) => return audit_fail(format!("item {} changed type", item.id)),
                None => return audit_fail(format!("item {} was not in the input", item.id)),
            }
        }
        Ok(o)
    }
}

fn audit_fail<T>(why: String) -> Result<T> {
    Err(Error::AuditFailed(format!("HEIF output: {why}")))
}

/// Whether the extents in `idat` (or in the file) cover `span` exactly, without overlap.
fn tiles(h: &Heif, in_idat: bool, span: (u64, u64)) -> bool {
    let mut ext: Vec<(u64, u64)> = h
        .items
        .iter()
        .filter_map(|i| i.location.as_ref())
        .filter(|l| l.in_idat == in_idat)
        .flat_map(|l| l.extents.iter().copied())
        .collect();
    ext.sort_unstable();
    let mut at = span.0;
    for (off, len) in ext {
        if off != at {
            return false;
        }
        at += len;
    }
    at == span.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        put_box(&mut v, kind, body);
        v
    }

    fn fbx(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        full_box(&mut v, kind, version, flags, body);
        v
    }

    /// (id, type, payload, in idat, protection index)
    type TestItem = (u32, [u8; 4], Vec<u8>, bool, u16);

    /// A hand-built HEIF file, laid out by a builder independent of the writer.
    #[derive(Clone)]
    struct Spec {
        primary: u32,
        /// (id, type, payload, in idat, protection index)
        items: Vec<TestItem>,
        props: Vec<Vec<u8>>,
        /// (id, [(index, essential)])
        assoc: Vec<(u32, Vec<(u16, bool)>)>,
        refs: Vec<([u8; 4], u32, Vec<u32>)>,
        /// Top-level boxes before meta, between meta and mdat, after mdat.
        before: Vec<u8>,
        after: Vec<u8>,
        meta_after_mdat: bool,
        iloc_override: Option<Vec<u8>>,
    }

    fn ispe(w: u32, h: u32) -> Vec<u8> {
        let mut b = w.to_be_bytes().to_vec();
        b.extend_from_slice(&h.to_be_bytes());
        fbx(b"ispe", 0, 0, &b)
    }

    fn aux(urn: &str) -> Vec<u8> {
        let mut b = urn.as_bytes().to_vec();
        b.push(0);
        fbx(b"auxC", 0, 0, &b)
    }

    fn hvcc() -> Vec<u8> {
        bx(b"hvcC", &[1u8; 23])
    }

    fn exif_payload() -> Vec<u8> {
        let mut p = 6u32.to_be_bytes().to_vec();
        p.extend_from_slice(b"Exif\0\0");
        p.extend_from_slice(&crate::exif_block::orientation_only(6));
        p
    }

    /// Primary hvc1 item 1 (64x48) with Exif, XMP and a thumbnail around it.
    fn simple() -> Spec {
        Spec {
            primary: 1,
            items: vec![
                (1, *b"hvc1", b"PICTURE-BYTES".to_vec(), false, 0),
                (2, *b"Exif", exif_payload(), false, 0),
                (
                    3,
                    *b"mime",
                    b"<x:xmpmeta><dc:creator>Dr Canary</dc:creator></x:xmpmeta>".to_vec(),
                    false,
                    0,
                ),
                (4, *b"hvc1", b"THUMB".to_vec(), false, 0),
            ],
            props: vec![hvcc(), ispe(64, 48), bx(b"irot", &[1]), ispe(8, 6)],
            assoc: vec![
                (1, vec![(1, true), (2, false), (3, true)]),
                (4, vec![(1, true), (4, false)]),
            ],
            refs: vec![
                (*b"cdsc", 2, vec![1]),
                (*b"cdsc", 3, vec![1]),
                (*b"thmb", 4, vec![1]),
            ],
            before: bx(b"free", b"not empty"),
            after: Vec::new(),
            meta_after_mdat: false,
            iloc_override: None,
        }
    }

    fn build(s: &Spec) -> Vec<u8> {
        let ftyp = bx(b"ftyp", b"heic\0\0\0\0mif1heicMiPr");
        // Two passes: the meta's size does not depend on the offsets.
        let meta0 = meta(s, 0);
        let data_at = if s.meta_after_mdat {
            ftyp.len() + s.before.len() + 8
        } else {
            ftyp.len() + s.before.len() + meta0.len() + 8
        };
        let meta = meta(s, data_at as u32);
        let mdat_body: Vec<u8> = s
            .items
            .iter()
            .filter(|i| !i.3)
            .flat_map(|i| i.2.clone())
            .collect();
        let mdat = bx(b"mdat", &mdat_body);
        let mut f = ftyp;
        f.extend_from_slice(&s.before);
        if s.meta_after_mdat {
            f.extend_from_slice(&mdat);
            f.extend_from_slice(&meta);
        } else {
            f.extend_from_slice(&meta);
            f.extend_from_slice(&mdat);
        }
        f.extend_from_slice(&s.after);
        f
    }

    fn meta(s: &Spec, data_at: u32) -> Vec<u8> {
        let mut hdlr = vec![0u8; 4];
        hdlr.extend_from_slice(b"pict");
        hdlr.extend_from_slice(&[0u8; 12]);
        hdlr.extend_from_slice(b"Apple handler\0");
        let mut body = fbx(b"hdlr", 0, 0, &hdlr);
        body.extend(fbx(b"pitm", 0, 0, &(s.primary as u16).to_be_bytes()));
        let mut iinf = (s.items.len() as u16).to_be_bytes().to_vec();
        for (id, kind, _, _, prot) in &s.items {
            let mut e = (*id as u16).to_be_bytes().to_vec();
            e.extend_from_slice(&prot.to_be_bytes());
            e.extend_from_slice(kind);
            e.extend_from_slice(b"name\0");
            if kind == b"mime" {
                e.extend_from_slice(b"application/rdf+xml\0");
            }
            iinf.extend(fbx(b"infe", 2, 0, &e));
        }
        body.extend(fbx(b"iinf", 0, 0, &iinf));
        let mut iloc = vec![0x44, 0x00];
        iloc.extend_from_slice(&(s.items.len() as u16).to_be_bytes());
        let (mut at, mut at_idat) = (data_at, 0u32);
        let mut idat = Vec::new();
        for (id, _, payload, in_idat, _) in &s.items {
            iloc.extend_from_slice(&(*id as u16).to_be_bytes());
            iloc.extend_from_slice(&(*in_idat as u16).to_be_bytes());
            iloc.extend_from_slice(&[0, 0, 0, 1]);
            let off = if *in_idat { &mut at_idat } else { &mut at };
            iloc.extend_from_slice(&off.to_be_bytes());
            iloc.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            *off += payload.len() as u32;
            if *in_idat {
                idat.extend_from_slice(payload);
            }
        }
        body.extend(
            s.iloc_override
                .clone()
                .unwrap_or_else(|| fbx(b"iloc", 1, 0, &iloc)),
        );
        let mut iref = Vec::new();
        for (kind, from, to) in &s.refs {
            let mut e = (*from as u16).to_be_bytes().to_vec();
            e.extend_from_slice(&(to.len() as u16).to_be_bytes());
            for t in to {
                e.extend_from_slice(&(*t as u16).to_be_bytes());
            }
            iref.extend(bx(kind, &e));
        }
        body.extend(fbx(b"iref", 0, 0, &iref));
        let mut ipco = Vec::new();
        for p in &s.props {
            ipco.extend_from_slice(p);
        }
        let mut ipma = (s.assoc.len() as u32).to_be_bytes().to_vec();
        for (id, list) in &s.assoc {
            ipma.extend_from_slice(&(*id as u16).to_be_bytes());
            ipma.push(list.len() as u8);
            for (i, e) in list {
                ipma.push(*i as u8 | (*e as u8) << 7);
            }
        }
        let mut iprp = bx(b"ipco", &ipco);
        iprp.extend(fbx(b"ipma", 0, 0, &ipma));
        body.extend(bx(b"iprp", &iprp));
        if !idat.is_empty() {
            body.extend(bx(b"idat", &idat));
        }
        fbx(b"meta", 0, 0, &body)
    }

    fn limits() -> Limits {
        Limits::default()
    }

    /// Rewrites and checks the output with the audit and a re-parse.
    fn clean<'a>(bytes: &'a [u8], policy: &RewritePolicy) -> (Heif<'a>, Vec<u8>) {
        let h = parse(bytes, &limits()).unwrap();
        let out = h.rewrite(policy);
        h.verify_rewrite(&out, &limits()).unwrap();
        let back = parse(&out, &limits()).unwrap();
        assert!(back.inventory().is_clean(), "{:?}", back.inventory());
        drop(back);
        (h, out)
    }

    fn grid_desc(rows: u8, cols: u8, w: u16, h: u16) -> Vec<u8> {
        let mut d = vec![0, 0, rows - 1, cols - 1];
        d.extend_from_slice(&w.to_be_bytes());
        d.extend_from_slice(&h.to_be_bytes());
        d
    }

    /// A 2x1 grid primary (item 10, descriptor in idat) of tiles 11 and 12.
    fn grid() -> Spec {
        let mut s = simple();
        s.primary = 10;
        s.items = vec![
            (11, *b"hvc1", b"TILE-ONE".to_vec(), false, 0),
            (12, *b"hvc1", b"TILE-TWO".to_vec(), false, 0),
            (10, *b"grid", grid_desc(1, 2, 128, 48), true, 0),
            (2, *b"Exif", exif_payload(), false, 0),
        ];
        s.assoc = vec![
            (11, vec![(1, true), (2, false)]),
            (12, vec![(1, true), (2, false)]),
            (10, vec![(4, false), (3, true)]),
        ];
        s.props = vec![hvcc(), ispe(64, 48), bx(b"irot", &[1]), ispe(128, 48)];
        s.refs = vec![(*b"dimg", 10, vec![11, 12]), (*b"cdsc", 2, vec![10])];
        s
    }

    #[test]
    fn keeps_the_picture_and_drops_everything_else() {
        let bytes = build(&simple());
        let h = parse(&bytes, &limits()).unwrap();
        let inv = h.inventory();
        let cats = inv.categories();
        assert!(cats.contains(&Category::Xmp), "{inv:?}");
        assert!(cats.contains(&Category::Thumbnail), "{inv:?}");
        assert!(
            cats.contains(&Category::Other),
            "free box with content: {inv:?}"
        );
        assert_eq!(h.exif_payloads().len(), 1);
        assert_eq!((h.width, h.height), (64, 48));
        assert_eq!(h.display_size(), (48, 64), "irot turns it");
        let (_, out) = clean(&bytes, &RewritePolicy::default());
        for canary in [
            &b"Dr Canary"[..],
            b"THUMB",
            b"Exif",
            b"name",
            b"Apple",
            b"MiPr",
        ] {
            assert!(
                !out.windows(canary.len()).any(|w| w == canary),
                "{canary:?} left"
            );
        }
        assert!(out.windows(13).any(|w| w == b"PICTURE-BYTES"));
        let back = parse(&out, &limits()).unwrap();
        assert_eq!(back.items.len(), 1);
        assert_eq!(back.transforms(), vec![Transform::Rotate(1)]);
    }

    #[test]
    fn every_prefix_fails() {
        for spec in [simple(), grid()] {
            let bytes = build(&spec);
            for n in 0..bytes.len() {
                assert!(parse(&bytes[..n], &limits()).is_err(), "prefix {n}");
            }
        }
    }

    #[test]
    fn grid_tiles_are_kept_and_the_descriptor_moves_to_idat() {
        let bytes = build(&grid());
        let (h, out) = clean(&bytes, &RewritePolicy::default());
        assert_eq!(h.kept, vec![11, 12, 10], "iinf order and ids kept");
        let back = parse(&out, &limits()).unwrap();
        assert_eq!(back.idat, &grid_desc(1, 2, 128, 48)[..]);
        assert_eq!(back.display_size(), (48, 128));
    }

    #[test]
    fn a_grid_descriptor_in_mdat_moves_to_idat() {
        // libavif writes the descriptor in mdat (construction method 0).
        let mut s = grid();
        s.items[2].3 = false;
        let bytes = build(&s);
        let (h, out) = clean(&bytes, &RewritePolicy::default());
        assert_eq!(h.kept, vec![11, 12, 10]);
        let back = parse(&out, &limits()).unwrap();
        assert_eq!(back.idat, &grid_desc(1, 2, 128, 48)[..]);
        assert_eq!((back.width, back.height), (128, 48));
    }

    #[test]
    fn grid_with_wrong_tile_count_or_cycle_is_refused() {
        let mut s = grid();
        s.refs[0].2 = vec![11];
        assert!(matches!(
            parse(&build(&s), &limits()),
            Err(Error::Malformed { .. })
        ));
        let mut s = grid();
        s.refs[0].2 = vec![11, 10];
        let e = parse(&build(&s), &limits()).unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
    }

    #[test]
    fn grid_tiles_that_do_not_fit_the_output_are_refused() {
        // Output wider than the tiles cover, a whole tile column cropped
        // away, and a descriptor that disagrees with the grid's ispe.
        for (desc, why) in [
            (grid_desc(1, 2, 129, 48), "does not fit"),
            (grid_desc(1, 2, 64, 48), "does not fit"),
            (grid_desc(1, 2, 120, 40), "ispe"),
        ] {
            let mut s = grid();
            s.items[2].2 = desc;
            let e = parse(&build(&s), &limits()).unwrap_err();
            assert!(matches!(e, Error::Malformed { .. }), "{e}");
            assert!(e.to_string().contains(why), "{e}");
        }
        let mut s = grid();
        s.props.push(ispe(60, 48));
        s.assoc[1].1[1] = (5, false);
        let e = parse(&build(&s), &limits()).unwrap_err();
        assert!(e.to_string().contains("different sizes"), "{e}");
    }

    #[test]
    fn a_grid_too_large_is_refused_before_decoding() {
        let mut s = grid();
        s.items[2].2 = grid_desc(1, 2, 60000, 60000);
        let e = parse(&build(&s), &limits()).unwrap_err();
        assert!(matches!(e, Error::TooLarge(_)), "{e}");
        let small = Limits {
            max_pixels: 1000,
            ..limits()
        };
        assert!(matches!(
            parse(&build(&grid()), &small),
            Err(Error::TooLarge(_))
        ));
    }

    #[test]
    fn alpha_is_kept_depth_and_gain_maps_are_not() {
        let mut s = simple();
        s.items.push((5, *b"hvc1", b"ALPHA".to_vec(), false, 0));
        s.items.push((6, *b"hvc1", b"DEPTH".to_vec(), false, 0));
        s.items.push((7, *b"hvc1", b"GAINMAP".to_vec(), false, 0));
        s.items.push((8, *b"hvc1", b"SECOND".to_vec(), false, 0));
        s.props.push(aux("urn:mpeg:hevc:2015:auxid:1"));
        s.props.push(aux("urn:mpeg:hevc:2015:auxid:2"));
        s.props.push(aux("urn:com:apple:photo:2020:aux:hdrgainmap"));
        s.assoc.push((5, vec![(1, true), (2, false), (5, true)]));
        s.assoc.push((6, vec![(1, true), (4, false), (6, true)]));
        s.assoc.push((7, vec![(1, true), (4, false), (7, true)]));
        s.assoc.push((8, vec![(1, true), (2, false)]));
        s.refs.push((*b"auxl", 5, vec![1]));
        s.refs.push((*b"auxl", 6, vec![1]));
        s.refs.push((*b"auxl", 7, vec![1]));
        let bytes = build(&s);
        let h = parse(&bytes, &limits()).unwrap();
        let text = format!("{:?}", h.inventory());
        for what in ["depth map", "HDR gain map", "second image", "thumbnail"] {
            assert!(text.contains(what), "{what}: {text}");
        }
        let (h, out) = clean(&bytes, &RewritePolicy::default());
        assert_eq!(h.alpha, Some(5));
        let back = parse(&out, &limits()).unwrap();
        assert_eq!(back.kept, vec![1, 5]);
        assert_eq!(back.references.len(), 1);
        for gone in [
            &b"DEPTH"[..],
            b"GAINMAP",
            b"SECOND",
            b"hdrgainmap",
            b"auxid:2",
        ] {
            assert!(!out.windows(gone.len()).any(|w| w == gone));
        }
    }

    #[test]
    fn icc_is_kept_unless_stripped_and_nclx_always() {
        let mut s = simple();
        let mut prof = b"prof".to_vec();
        let jpeg = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/dirty/jpeg_icc.jpg"
        ))
        .unwrap();
        let icc = crate::container::jpeg::parse(&jpeg, &limits())
            .unwrap()
            .icc_profile()
            .unwrap();
        prof.extend_from_slice(&icc);
        s.props.push(bx(b"colr", &prof));
        s.props.push(bx(b"colr", b"nclx\0\x01\0\x0d\0\x01\x80"));
        s.assoc[0].1.extend([(5, false), (6, false)]);
        let bytes = build(&s);
        let (_, kept) = clean(&bytes, &RewritePolicy::default());
        assert!(kept.windows(4).any(|w| w == b"prof"));
        let strip = RewritePolicy {
            keep_icc: false,
            orientation: None,
        };
        let (_, stripped) = clean(&bytes, &strip);
        assert!(!stripped.windows(4).any(|w| w == b"prof"));
        assert!(stripped.windows(4).any(|w| w == b"nclx"));
    }

    #[test]
    fn refusals() {
        let unsupported = |s: &Spec, why: &str| {
            let e = parse(&build(s), &limits()).unwrap_err();
            assert!(
                matches!(e, Error::Unsupported(_)) && e.to_string().contains(why),
                "{why}: {e}"
            );
        };
        let mut s = simple();
        s.props.push(bx(b"xyzw", b"?"));
        s.assoc[0].1.push((5, true));
        unsupported(&s, "xyzw");
        s.assoc[0].1.last_mut().unwrap().1 = false;
        assert!(
            parse(&build(&s), &limits()).is_ok(),
            "unknown, not essential: dropped"
        );
        let mut s = simple();
        s.items[0].1 = *b"iovl";
        unsupported(&s, "overlay");
        let mut s = simple();
        s.items[0].4 = 1;
        unsupported(&s, "protected");
        let mut s = simple();
        s.after = bx(b"moov", b"");
        unsupported(&s, "sequence");
        // Construction method 2, and an external data reference.
        for (method, dref, why) in [(2u16, 0u16, "method 2"), (0, 1, "another file")] {
            let mut s = simple();
            let mut iloc = vec![0x44, 0x00, 0, 1, 0, 1];
            iloc.extend_from_slice(&method.to_be_bytes());
            iloc.extend_from_slice(&dref.to_be_bytes());
            iloc.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
            s.iloc_override = Some(fbx(b"iloc", 1, 0, &iloc));
            unsupported(&s, why);
        }
    }

    #[test]
    fn malformed_boxes_are_refused() {
        let malformed = |bytes: &[u8], why: &str| {
            let e = parse(bytes, &limits()).unwrap_err();
            assert!(matches!(e, Error::Malformed { .. }), "{why}: {e}");
        };
        malformed(&[], "zero bytes");
        let good = build(&simple());
        // size 1 with a largesize past the end, and one smaller than the header.
        for large in [u64::MAX, 1 << 40, 4] {
            let mut b = good.clone();
            let mut free = 1u32.to_be_bytes().to_vec();
            free.extend_from_slice(b"free");
            free.extend_from_slice(&large.to_be_bytes());
            b.splice(0..0, free);
            malformed(&b, "largesize");
        }
        // Size 0 inside meta.
        let mut s = simple();
        s.iloc_override = Some(vec![0, 0, 0, 0, b'i', b'l', b'o', b'c']);
        malformed(&build(&s), "size 0 in meta");
        // Duplicate item ids.
        let mut s = simple();
        s.items[1].0 = 1;
        malformed(&build(&s), "duplicate id");
        // ipma: index out of range, and an essential index 0.
        let mut s = simple();
        s.assoc[0].1.push((9, false));
        malformed(&build(&s), "index out of range");
        let mut s = simple();
        s.assoc[0].1.push((0, true));
        malformed(&build(&s), "essential index 0");
        let mut s = simple();
        s.assoc[0].1.push((0, false));
        assert!(
            parse(&build(&s), &limits()).is_ok(),
            "index 0 means no property"
        );
        // iloc: base + offset wrapping u64, and offset + length past the end.
        for (base, off, len) in [
            (u64::MAX, 2u64, 1u64),
            (0, u64::MAX - 1, 4),
            (0, 0, 1 << 40),
        ] {
            let mut s = simple();
            let mut iloc = vec![0x88, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
            iloc.extend_from_slice(&base.to_be_bytes());
            iloc.extend_from_slice(&[0, 1]);
            iloc.extend_from_slice(&off.to_be_bytes());
            iloc.extend_from_slice(&len.to_be_bytes());
            s.iloc_override = Some(fbx(b"iloc", 1, 0, &iloc));
            malformed(&build(&s), "iloc overflow");
        }
    }

    #[test]
    fn meta_after_mdat_and_trailers_are_rebuilt_in_order() {
        let mut s = simple();
        s.meta_after_mdat = true;
        s.after = b"SEFHvendor trailer".to_vec();
        let bytes = build(&s);
        let h = parse(&bytes, &limits()).unwrap();
        assert_eq!(h.trailing, 18);
        assert!(h.inventory().categories().contains(&Category::TrailingData));
        let (_, out) = clean(&bytes, &RewritePolicy::default());
        assert!(!out.windows(4).any(|w| w == b"SEFH"));
        let back = parse(&out, &limits()).unwrap();
        let kinds: Vec<_> = back.top.iter().map(|b| b.kind).collect();
        assert_eq!(kinds, [*b"ftyp", *b"meta", *b"mdat"]);
    }

    #[test]
    fn unreferenced_mdat_bytes_are_reported_and_dropped() {
        let mut bytes = build(&simple());
        // Stray bytes inside mdat (it is last): no item points at them.
        let mdat = bytes.windows(4).rposition(|w| w == b"mdat").unwrap() - 4;
        bytes.extend_from_slice(b"HIDDEN-IN-MDAT");
        let size = (bytes.len() - mdat) as u32;
        bytes[mdat..mdat + 4].copy_from_slice(&size.to_be_bytes());
        let h = parse(&bytes, &limits()).unwrap();
        let text = format!("{:?}", h.inventory());
        assert!(text.contains("no item uses"), "{text}");
        let (_, out) = clean(&bytes, &RewritePolicy::default());
        assert!(!out.windows(6).any(|w| w == b"HIDDEN"));
    }

    #[test]
    fn the_audit_catches_a_changed_payload_or_an_extra_box() {
        let bytes = build(&simple());
        let h = parse(&bytes, &limits()).unwrap();
        let out = h.rewrite(&RewritePolicy::default());
        let mut changed = out.clone();
        let at = changed.windows(7).position(|w| w == b"PICTURE").unwrap();
        changed[at] = b'X';
        assert!(matches!(
            h.verify_rewrite(&changed, &limits()),
            Err(Error::AuditFailed(_))
        ));
        let mut extra = out.clone();
        extra.extend(bx(b"free", b""));
        assert!(matches!(
            h.verify_rewrite(&extra, &limits()),
            Err(Error::AuditFailed(_))
        ));
    }

    #[test]
    fn the_spliced_writer_gives_the_same_bytes_and_its_audit_checks_the_sources() {
        for spec in [simple(), grid()] {
            let bytes = build(&spec);
            let h = parse(&bytes, &limits()).unwrap();
            let policy = RewritePolicy::default();
            let out = h.rewrite_spliced(&policy);
            let whole = out.to_vec();
            h.verify_rewrite(&whole, &limits()).unwrap();
            assert!(out.referenced() > 0, "the payloads go by reference");
            let view = out.audit_view();
            // The view holds zeros where the payloads go, not the picture.
            assert!(!view.windows(7).any(|w| w == b"PICTURE"));
            h.verify_spliced(&view, &out, &limits()).unwrap();
            // The same bytes made in memory: none of them is the input's.
            let made = Spliced::from_vec(whole.clone());
            assert!(matches!(
                h.verify_spliced(&made.audit_view(), &made, &limits()),
                Err(Error::AuditFailed(_))
            ));
        }
    }

    #[test]
    fn a_sparse_load_reads_all_but_the_coded_pictures_and_rewrites_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut mdat_grid = grid();
        mdat_grid.items[2].3 = false; // the descriptor in mdat: it must be read
        let mut after = simple();
        after.meta_after_mdat = true;
        after.after = b"trailing vendor bytes".to_vec();
        for (n, spec) in [simple(), grid(), mdat_grid, after].iter().enumerate() {
            let bytes = build(spec);
            let path = dir.path().join(format!("{n}.heic"));
            std::fs::write(&path, &bytes).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let full = parse(&bytes, &limits()).unwrap();
            let mut coded: Vec<(u64, u64)> = full
                .items
                .iter()
                .filter(|i| CODED.contains(&&i.kind))
                .flat_map(|i| i.location.as_ref().unwrap().extents.clone())
                .collect();
            coded.sort_unstable();
            assert!(!coded.is_empty());
            for head in [0, 16, bytes.len() / 2] {
                let mut buf = vec![0u8; bytes.len()];
                buf[..head].copy_from_slice(&bytes[..head]);
                let holes = load_sparse(&mut buf, head, &file).unwrap().expect("parses");
                assert_eq!(holes, coded, "spec {n}: the holes are the coded pictures");
                let in_hole =
                    |i: usize| holes.iter().any(|&(o, l)| (o..o + l).contains(&(i as u64)));
                for i in head..bytes.len() {
                    let want = if in_hole(i) { 0 } else { bytes[i] };
                    assert_eq!(buf[i], want, "spec {n}, head {head}: byte {i}");
                }
                let sparse = parse(&buf, &limits()).unwrap();
                assert_eq!(sparse.kept, full.kept);
                assert_eq!(sparse.inventory().summary(), full.inventory().summary());
                for strip_icc in [false, true] {
                    let policy = RewritePolicy {
                        keep_icc: !strip_icc,
                        ..RewritePolicy::default()
                    };
                    let out = sparse.rewrite_spliced(&policy);
                    sparse
                        .verify_spliced(&out.audit_view(), &out, &limits())
                        .unwrap();
                    let mut written = tempfile::tempfile().unwrap();
                    let src = crate::splice::Source {
                        base: &buf,
                        file: &file,
                        complete: false,
                    };
                    out.write_to(&mut written, &src).unwrap();
                    let mut got = Vec::new();
                    use std::io::{Read, Seek};
                    written.rewind().unwrap();
                    written.read_to_end(&mut got).unwrap();
                    assert!(got == full.rewrite(&policy), "spec {n}: same bytes");
                }
            }
        }
        // A layout that does not parse: the caller reads the whole file.
        let bytes = build(&simple());
        let cut = &bytes[..bytes.len() - 4];
        let path = dir.path().join("cut.heic");
        std::fs::write(&path, cut).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut buf = vec![0u8; cut.len()];
        assert!(parse(cut, &limits()).is_err());
        assert!(load_sparse(&mut buf, 0, &file).unwrap().is_none());
    }

    #[test]
    fn the_spliced_audit_refuses_a_payload_from_the_wrong_place() {
        let bytes = build(&simple());
        let h = parse(&bytes, &limits()).unwrap();
        let out = h.rewrite_spliced(&RewritePolicy::default());
        let whole = out.to_vec();
        // Same header, same length, but the primary's bytes taken from
        // elsewhere in the input (here its first byte is skipped).
        let head = whole.len() - out.referenced();
        let primary = h.item(h.primary).unwrap();
        let (off, len) = primary.location.as_ref().unwrap().extents[0];
        let mut wrong = Spliced::from_vec(whole[..head].to_vec());
        for item in h.kept.iter().filter_map(|&id| h.item(id)) {
            for part in h.payload_parts(item) {
                if item.id == h.primary {
                    let shifted = &bytes[off as usize + 1..(off + len) as usize + 1];
                    wrong.payload(shifted, AuditAs::Zeros);
                } else {
                    wrong.payload(part, AuditAs::Zeros);
                }
            }
        }
        assert_eq!(wrong.len(), out.len());
        assert!(matches!(
            h.verify_spliced(&wrong.audit_view(), &wrong, &limits()),
            Err(Error::AuditFailed(_))
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// Damaged files never panic; whatever still parses rewrites to a
        /// file that passes its audit and carries nothing identifying.
        #[test]
        fn damaged_files_never_panic(
            which in 0..2usize,
            edits in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 1..6),
        ) {
            let mut bytes = build(&[simple(), grid()][which]);
            for (at, v) in edits {
                let n = bytes.len();
                bytes[at % n] = v;
            }
            if let Ok(h) = parse(&bytes, &limits()) {
                let spliced = h.rewrite_spliced(&RewritePolicy::default());
                let out = spliced.to_vec();
                h.verify_rewrite(&out, &limits()).unwrap();
                h.verify_spliced(&spliced.audit_view(), &spliced, &limits()).unwrap();
                proptest::prop_assert!(parse(&out, &limits()).unwrap().inventory().is_clean());
            }
        }
    }
}
