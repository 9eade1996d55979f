//! ICC colour profiles: what one says about itself (for the audit) and a
//! sanitiser that keeps the colour and nothing else.
//!
//! A profile's header date is often the capture time to the second, and its
//! text tags (`desc`, `cprt`, `dmnd`, `dmdd`), private tags and any bytes
//! between or after the tags can carry a name. [`sanitize`] rebuilds the
//! profile from its colour-defining tags only (ICC.1:2022 §9.2: white and
//! black point, colorants, TRCs, `chad`, `chrm`, `lumi`, `cicp`, the LUT
//! based A2B/B2A/D2B/B2D transforms), each trimmed to the length its type
//! declares (the LUT types `mAB `, `mBA ` and `mpet` rebuilt element by
//! element from their values), with a neutral description, a fixed copyright line and every
//! header field that names a date, device, platform, CMM or creator zeroed.
//! The rebuilt profile renders exactly as the original (the same tag data,
//! re-laid out), and rebuilding it again gives the same bytes: the audit
//! calls a profile clean exactly when it is already in that form.

use crate::error::{Error, Result};
use crate::metadata::{short_value, Category, Inventory};
use std::collections::HashMap;

const FORMAT: &str = "ICC profile";
const HEADER: usize = 128;
/// The copyright line every rebuilt profile carries (the tag is required).
const COPYRIGHT: &str = "No copyright, use freely";

/// `ICC profile "Display P3", 536 bytes, dated 2017-07-07, device "..."`.
pub fn describe(profile: &[u8]) -> String {
    let mut s = match text_tag(profile, b"desc") {
        Some(d) => format!(
            "ICC profile \"{}\", {} bytes",
            short_value(&d, 60),
            profile.len()
        ),
        None => format!("ICC profile, {} bytes", profile.len()),
    };
    if let Some(date) = date(profile) {
        s.push_str(&format!(", dated {date}"));
    }
    let device: Vec<String> = [b"dmnd", b"dmdd"]
        .iter()
        .filter_map(|sig| text_tag(profile, sig))
        .map(|t| short_value(&t, 40))
        .filter(|t| !t.is_empty())
        .collect();
    if !device.is_empty() {
        s.push_str(&format!(", device \"{}\"", device.join(" ")));
    }
    s
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// The header's creation date, `YYYY-MM-DD`.
fn date(p: &[u8]) -> Option<String> {
    let (y, m, d) = (be16(p, 24)?, be16(p, 26)?, be16(p, 28)?);
    (y > 0 && (1..=12).contains(&m) && (1..=31).contains(&d))
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// The text of tag `sig`: `desc`/`text` (ICC v2) or `mluc` (v4, first record).
fn text_tag(p: &[u8], sig: &[u8; 4]) -> Option<String> {
    let count = be32(p, 128)?.min(256);
    let (off, size) = (0..count).find_map(|i| {
        let e = 132 + 12 * i;
        (p.get(e..e + 4)? == sig).then_some(())?;
        Some((be32(p, e + 4)?, be32(p, e + 8)?))
    })?;
    let t = p.get(off..off.checked_add(size)?)?;
    match t.get(..4)? {
        b"desc" => {
            let n = be32(t, 8)?;
            ascii(t.get(12..12usize.checked_add(n)?)?)
        }
        b"text" => ascii(t.get(8..)?),
        b"mluc" => {
            let (len, at) = (be32(t, 20)?, be32(t, 24)?);
            let units: Vec<u16> = t
                .get(at..at.checked_add(len)?)?
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

fn ascii(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Some(String::from_utf8_lossy(&b[..end]).into_owned())
}

/// One entry of the tag table.
#[derive(Debug, Clone, Copy)]
struct Entry {
    sig: [u8; 4],
    off: usize,
    len: usize,
}

fn malformed(why: impl Into<String>) -> Error {
    Error::malformed(FORMAT, why)
}

fn sig_name(sig: &[u8]) -> String {
    short_value(&String::from_utf8_lossy(sig), 4)
}

/// The tag table, every entry inside the declared size; errors on a header
/// or table a reader could not trust.
fn table(p: &[u8]) -> Result<Vec<Entry>> {
    let size = be32(p, 0).ok_or_else(|| malformed("shorter than its header"))?;
    if size < HEADER + 4 || size > p.len() {
        return Err(malformed(format!(
            "declares {size} bytes but has {}",
            p.len()
        )));
    }
    if p.get(36..40) != Some(b"acsp") {
        return Err(malformed("no 'acsp' signature"));
    }
    let count = be32(p, HEADER).unwrap_or(0);
    let table_end = count
        .checked_mul(12)
        .and_then(|n| n.checked_add(HEADER + 4))
        .filter(|&e| e <= size)
        .ok_or_else(|| malformed("its tag table runs past its end"))?;
    (0..count)
        .map(|i| {
            let e = HEADER + 4 + 12 * i;
            let sig: [u8; 4] = p[e..e + 4].try_into().expect("inside the table");
            let (off, len) = (be32(p, e + 4).unwrap_or(0), be32(p, e + 8).unwrap_or(0));
            match off.checked_add(len) {
                Some(end) if off >= table_end && end <= size => Ok(Entry { sig, off, len }),
                _ => Err(malformed(format!(
                    "tag {} lies outside the profile",
                    sig_name(&sig)
                ))),
            }
        })
        .collect()
}

/// The tag types a colour-defining tag may have; `None` for every other tag
/// (text, device, calibration, private), which the sanitiser drops.
fn colour_tag_types(sig: &[u8; 4]) -> Option<&'static [&'static [u8; 4]]> {
    const XYZ: &[&[u8; 4]] = &[b"XYZ "];
    const CURVE: &[&[u8; 4]] = &[b"curv", b"para"];
    const LUT: &[&[u8; 4]] = &[b"mft1", b"mft2", b"mAB ", b"mBA "];
    Some(match sig {
        b"wtpt" | b"bkpt" | b"rXYZ" | b"gXYZ" | b"bXYZ" | b"lumi" => XYZ,
        b"rTRC" | b"gTRC" | b"bTRC" | b"kTRC" => CURVE,
        b"chad" => &[b"sf32"],
        b"chrm" => &[b"chrm"],
        b"cicp" => &[b"cicp"],
        b"A2B0" | b"A2B1" | b"A2B2" | b"B2A0" | b"B2A1" | b"B2A2" => LUT,
        b"D2B0" | b"D2B1" | b"D2B2" | b"D2B3" | b"B2D0" | b"B2D1" | b"B2D2" | b"B2D3" => &[b"mpet"],
        _ => return None,
    })
}

/// The length the tag type's own fields declare (bytes a writer may have
/// added after them are not colour); `None` when the data is shorter. The
/// offset-based LUT types (mAB, mBA, mpet) keep their declared size.
fn type_len(t: &[u8]) -> Option<usize> {
    let n = t.len();
    let byte = |i: usize| t.get(i).map(|&v| v as usize);
    let len = match t.get(..4)? {
        b"XYZ " => 8 + 12 * (n.checked_sub(8)? / 12).max(1),
        b"sf32" => 8 + 4 * (n.checked_sub(8)? / 4).max(1),
        b"curv" => 12 + 2 * be32(t, 8)?,
        b"para" => {
            let params = match be16(t, 8)? {
                0 => 1,
                1 => 3,
                2 => 4,
                3 => 5,
                4 => 7,
                _ => return None,
            };
            12 + 4 * params
        }
        b"chrm" => 12 + 8 * be16(t, 8)? as usize,
        b"cicp" => 12,
        b"mft1" => {
            let (i, o, g) = (byte(8)?, byte(9)?, byte(10)?);
            let clut = g.checked_pow(i as u32)?.checked_mul(o)?;
            48 + 256 * i + clut + 256 * o
        }
        b"mft2" => {
            let (i, o, g) = (byte(8)?, byte(9)?, byte(10)?);
            let (ie, oe) = (be16(t, 48)? as usize, be16(t, 50)? as usize);
            let clut = g.checked_pow(i as u32)?.checked_mul(o)?;
            52 + 2 * (i * ie + clut + o * oe)
        }
        b"mAB " | b"mBA " | b"mpet" => n,
        _ => return None,
    };
    (len <= n && len >= 12.min(n)).then_some(len)
}

/// The tag's data as the rebuilt profile carries it: trimmed to its type's
/// length, reserved and padding bytes zeroed.
fn clean_tag(t: &[u8]) -> Option<Vec<u8>> {
    match t.get(..4)? {
        b"mAB " | b"mBA " => return rebuild_lut_ab(t),
        b"mpet" => return rebuild_mpet(t),
        _ => {}
    }
    let mut d = t.get(..type_len(t)?)?.to_vec();
    d.get_mut(4..8)?.fill(0);
    match &d[..4] {
        b"para" => d[10..12].fill(0),
        b"mft1" | b"mft2" => d[11] = 0,
        _ => {}
    }
    Some(d)
}

/// A lutAtoBType (`mAB `) or lutBtoAType (`mBA `) tag rebuilt from its
/// elements: B curves, matrix, M curves, CLUT, A curves, each written
/// right after the last at a 4-byte boundary, with reserved bytes and
/// padding zeroed. Whatever a writer left in the gaps between elements, or
/// after them, is not colour and does not come through; the elements'
/// values, and so the colour, are the same. `None` when an element lies
/// outside the tag or is not of its type.
fn rebuild_lut_ab(t: &[u8]) -> Option<Vec<u8>> {
    let (i, o) = (*t.get(8)? as usize, *t.get(9)? as usize);
    if !(1..=15).contains(&i) || !(1..=15).contains(&o) {
        return None;
    }
    let a2b = t.get(..4)? == b"mAB ";
    // mAB: A (i curves) -> CLUT (i -> o) -> M (o) -> matrix -> B (o);
    // mBA: B (i) -> matrix -> M (i) -> CLUT (i -> o) -> A (o).
    let (n_bm, n_a) = if a2b { (o, i) } else { (i, o) };
    let curves = |at: usize, n: usize| -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut p = at;
        for _ in 0..n {
            let c = t.get(p..)?;
            if !matches!(c.get(..4)?, b"curv" | b"para") {
                return None;
            }
            let clean = clean_tag(c)?;
            p = p.checked_add(clean.len().next_multiple_of(4))?;
            out.extend_from_slice(&clean);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        Some(out)
    };
    let clut = |at: usize| -> Option<Vec<u8>> {
        let grid = t.get(at..at.checked_add(16)?)?;
        let precision = *t.get(at + 16)? as usize;
        if !matches!(precision, 1 | 2) || grid[..i].contains(&0) {
            return None;
        }
        let n = grid[..i]
            .iter()
            .try_fold(o * precision, |a, &g| a.checked_mul(g as usize))?;
        let data = t.get(at + 20..(at + 20).checked_add(n)?)?;
        let mut out = grid[..i].to_vec();
        out.resize(16, 0);
        out.extend_from_slice(&[precision as u8, 0, 0, 0]);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
        Some(out)
    };
    let mut out = vec![0u8; 32];
    out[..4].copy_from_slice(&t[..4]);
    out[8] = i as u8;
    out[9] = o as u8;
    // Offsets in the header: B, matrix, M, CLUT, A.
    for (k, count) in [(0, n_bm), (1, 0), (2, n_bm), (3, 0), (4, n_a)] {
        let at = be32(t, 12 + 4 * k)?;
        if at == 0 {
            continue;
        }
        let element = match k {
            1 => t.get(at..at.checked_add(48)?)?.to_vec(),
            3 => clut(at)?,
            _ => curves(at, count)?,
        };
        let here = out.len() as u32;
        out[12 + 4 * k..16 + 4 * k].copy_from_slice(&here.to_be_bytes());
        out.extend_from_slice(&element);
    }
    Some(out)
}

/// The most processing elements, curve segments or CLUT entries a rebuilt
/// `mpet` tag carries (real profiles have a handful; this bounds the work).
const MPET_MAX_ITEMS: usize = 1 << 16;

/// A multiProcessElementsType (`mpet`, the float D2Bx/B2Dx transforms,
/// ICC.1:2022 §10.15) rebuilt from its elements: the element table, then
/// each element (curve set `cvst` of segmented curves `curf` with formula
/// `parf` and sampled `samf` segments, matrix `matf`, `clut`) written from
/// its values right after the last, reserved fields zeroed. Gaps, bytes
/// after the elements and shared or out-of-order positions do not come
/// through. `None` when an element is of a kind this does not know (such a
/// tag is dropped: a CMM then uses the A2Bx/B2Ax tag beside it, as one that
/// does not read floats does anyway), its channels do not chain, or it
/// holds a value that is not a finite number.
fn rebuild_mpet(t: &[u8]) -> Option<Vec<u8>> {
    let (ins, outs) = (be16(t, 8)? as usize, be16(t, 10)? as usize);
    let n = be32(t, 12)?;
    if ins == 0 || outs == 0 || n == 0 || n > MPET_MAX_ITEMS {
        return None;
    }
    let mut elements = Vec::with_capacity(n);
    let mut channels = ins;
    for i in 0..n {
        let (at, len) = (be32(t, 16 + 8 * i)?, be32(t, 20 + 8 * i)?);
        let e = t.get(at..at.checked_add(len)?)?;
        let (e_in, e_out) = (be16(e, 8)? as usize, be16(e, 10)? as usize);
        if e_in != channels {
            return None;
        }
        elements.push(mpet_element(e, e_in, e_out)?);
        channels = e_out;
    }
    if channels != outs {
        return None;
    }
    let mut out = t[..16].to_vec();
    out[4..8].fill(0);
    let mut at = 16 + 8 * n;
    out.resize(at, 0);
    for (i, e) in elements.iter().enumerate() {
        out[16 + 8 * i..20 + 8 * i].copy_from_slice(&(at as u32).to_be_bytes());
        out[20 + 8 * i..24 + 8 * i].copy_from_slice(&(e.len() as u32).to_be_bytes());
        at += e.len();
    }
    elements.iter().for_each(|e| out.extend_from_slice(e));
    Some(out)
}

/// An element header: signature, zero reserved, input and output channels.
fn element_head(sig: &[u8], ins: usize, outs: usize) -> Vec<u8> {
    let mut h = sig[..4].to_vec();
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(&(ins as u16).to_be_bytes());
    h.extend_from_slice(&(outs as u16).to_be_bytes());
    h
}

/// `count` float32 values from `at`, each finite (a NaN's payload bits
/// could carry anything and no colour), negative zero written as zero.
fn floats(b: &[u8], at: usize, count: usize) -> Option<Vec<u8>> {
    if count > MPET_MAX_ITEMS * 16 {
        return None;
    }
    let raw = b.get(at..at.checked_add(count.checked_mul(4)?)?)?;
    let mut out = Vec::with_capacity(raw.len());
    for c in raw.chunks_exact(4) {
        let v = f32::from_be_bytes(c.try_into().ok()?);
        if !v.is_finite() {
            return None;
        }
        out.extend_from_slice(&(v + 0.0).to_be_bytes());
    }
    Some(out)
}

/// One processing element rebuilt from its values (see [`rebuild_mpet`]).
fn mpet_element(e: &[u8], ins: usize, outs: usize) -> Option<Vec<u8>> {
    let mut out = element_head(e, ins, outs);
    match e.get(..4)? {
        b"cvst" => {
            if ins != outs || ins > 16 {
                return None;
            }
            let curves: Vec<Vec<u8>> = (0..ins)
                .map(|k| {
                    let (at, len) = (be32(e, 12 + 8 * k)?, be32(e, 16 + 8 * k)?);
                    segmented_curve(e.get(at..at.checked_add(len)?)?)
                })
                .collect::<Option<_>>()?;
            let mut at = 12 + 8 * ins;
            for c in &curves {
                out.extend_from_slice(&(at as u32).to_be_bytes());
                out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                at += c.len();
            }
            curves.iter().for_each(|c| out.extend_from_slice(c));
        }
        b"matf" => out.extend_from_slice(&floats(e, 12, ins.checked_mul(outs)? + outs)?),
        b"clut" => {
            let grid = e.get(12..28)?;
            if ins > 16 || grid[..ins].contains(&0) || grid[ins..].iter().any(|&g| g != 0) {
                return None;
            }
            let points = grid[..ins]
                .iter()
                .try_fold(outs, |a, &g| a.checked_mul(g as usize))
                .filter(|&p| p <= MPET_MAX_ITEMS * 16)?;
            out.extend_from_slice(grid);
            out.extend_from_slice(&floats(e, 28, points)?);
        }
        _ => return None,
    }
    Some(out)
}

/// A segmented curve (`curf`): break points, then one formula (`parf`) or
/// sampled (`samf`, never first) segment per interval.
fn segmented_curve(c: &[u8]) -> Option<Vec<u8>> {
    let n = be16(c, 8)? as usize;
    if c.get(..4)? != b"curf" || n == 0 {
        return None;
    }
    let mut out = b"curf\0\0\0\0".to_vec();
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&floats(c, 12, n - 1)?);
    let mut at = 12 + 4 * (n - 1);
    for k in 0..n {
        let s = c.get(at..)?;
        let seg = match s.get(..4)? {
            b"parf" => {
                let params = match be16(s, 8)? {
                    0 => 4,
                    1 | 2 => 5,
                    _ => return None,
                };
                let mut p = b"parf\0\0\0\0".to_vec();
                p.extend_from_slice(&s[8..10]);
                p.extend_from_slice(&[0, 0]);
                p.extend_from_slice(&floats(s, 12, params)?);
                p
            }
            b"samf" if k > 0 => {
                let count = be32(s, 8)?;
                let mut p = b"samf\0\0\0\0".to_vec();
                p.extend_from_slice(&(count as u32).to_be_bytes());
                p.extend_from_slice(&floats(s, 12, count)?);
                p
            }
            _ => return None,
        };
        at += seg.len();
        out.extend_from_slice(&seg);
    }
    Some(out)
}

/// Rebuilds `profile` from its colour-defining tags only (see the module
/// docs). Errors on a profile whose structure cannot be trusted (sizes or
/// tags out of bounds, colour tags of the wrong type or overlapping, no
/// colour at all): callers drop such a profile, and the audit reports it.
pub fn sanitize(profile: &[u8]) -> Result<Vec<u8>> {
    let entries = table(profile)?;
    if profile.get(12..16) == Some(b"nmcl") {
        return Err(Error::Unsupported(
            "named-colour ICC profile (its colours are names)".into(),
        ));
    }
    let mut kept: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for e in &entries {
        let Some(types) = colour_tag_types(&e.sig) else {
            continue;
        };
        let name = sig_name(&e.sig);
        if kept.iter().any(|k| k.0 == e.sig) {
            return Err(malformed(format!("tag {name} appears twice")));
        }
        let (start, end) = (e.off, e.off + e.len);
        if ranges
            .iter()
            .any(|&(a, b)| (a, b) != (start, end) && start < b && a < end)
        {
            return Err(malformed(format!("tag {name} overlaps another")));
        }
        ranges.push((start, end));
        let data = &profile[start..end];
        if !types.iter().any(|t| data.get(..4) == Some(&t[..])) {
            return Err(malformed(format!("tag {name} has the wrong type")));
        }
        match clean_tag(data) {
            Some(data) => kept.push((e.sig, data)),
            // An mpet the rebuild cannot account for goes; A2Bx/B2Ax stay.
            None if data.starts_with(b"mpet") => {}
            None => {
                return Err(malformed(format!(
                    "tag {name} is shorter than its type needs"
                )))
            }
        }
    }
    if kept.is_empty() {
        return Err(malformed("no colour-defining tags"));
    }
    let v4 = profile[8] >= 4;
    let name = standard_name(&kept, &profile[16..20]);
    let mut tags = vec![(*b"desc", description(name, v4))];
    tags.extend(kept);
    tags.push((*b"cprt", text(COPYRIGHT, v4)));
    Ok(layout(profile, &tags))
}

/// Header (only the fields that say how to read the colour), tag table,
/// then each distinct tag data once, 4-byte aligned.
fn layout(src: &[u8], tags: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    out[8..10].copy_from_slice(&src[8..10]); // version
    out[12..24].copy_from_slice(&src[12..24]); // class, colour space, PCS
    out[36..40].copy_from_slice(b"acsp");
    out[47] = src[47] & 0x03; // embedded / dependent flags
    if let Some(intent @ 0..=3) = be32(src, 64) {
        out[67] = intent as u8;
    }
    out[68..80].copy_from_slice(&src[68..80]); // PCS illuminant
    out.extend_from_slice(&(tags.len() as u32).to_be_bytes());
    let table_at = out.len();
    out.resize(table_at + 12 * tags.len(), 0);
    let mut placed: HashMap<&[u8], usize> = HashMap::new();
    for (i, (sig, data)) in tags.iter().enumerate() {
        let off = *placed.entry(data.as_slice()).or_insert_with(|| {
            let at = out.len();
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(4), 0);
            at
        });
        let e = table_at + 12 * i;
        out[e..e + 4].copy_from_slice(sig);
        out[e + 4..e + 8].copy_from_slice(&(off as u32).to_be_bytes());
        out[e + 8..e + 12].copy_from_slice(&(data.len() as u32).to_be_bytes());
    }
    let size = out.len() as u32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    out
}

/// A `desc` tag: textDescriptionType in v2, multiLocalizedUnicodeType in v4.
fn description(name: &str, v4: bool) -> Vec<u8> {
    if v4 {
        return mluc(name);
    }
    let mut t = b"desc\0\0\0\0".to_vec();
    t.extend_from_slice(&(name.len() as u32 + 1).to_be_bytes());
    t.extend_from_slice(name.as_bytes());
    t.push(0);
    // No Unicode (language, count), no ScriptCode (code, count, 67 bytes).
    t.extend_from_slice(&[0u8; 4 + 4 + 2 + 1 + 67]);
    t
}

/// A `cprt` tag: textType in v2, multiLocalizedUnicodeType in v4.
fn text(s: &str, v4: bool) -> Vec<u8> {
    if v4 {
        return mluc(s);
    }
    let mut t = b"text\0\0\0\0".to_vec();
    t.extend_from_slice(s.as_bytes());
    t.push(0);
    t
}

fn mluc(s: &str) -> Vec<u8> {
    let units: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let mut t = b"mluc\0\0\0\0".to_vec();
    t.extend_from_slice(&1u32.to_be_bytes());
    t.extend_from_slice(&12u32.to_be_bytes());
    t.extend_from_slice(b"enUS");
    t.extend_from_slice(&(units.len() as u32).to_be_bytes());
    t.extend_from_slice(&28u32.to_be_bytes());
    t.extend_from_slice(&units);
    t
}

/// The D50-adapted colorants of the RGB spaces whose standard name a
/// rebuilt profile gets, and whether their TRC is the sRGB curve (else 2.2).
const KNOWN_RGB: &[(&str, [[f64; 3]; 3], bool)] = &[
    (
        "sRGB IEC61966-2.1",
        [
            [0.4361, 0.2225, 0.0139],
            [0.3851, 0.7169, 0.0971],
            [0.1431, 0.0606, 0.7141],
        ],
        true,
    ),
    (
        "Display P3",
        [
            [0.5151, 0.2412, -0.0011],
            [0.2920, 0.6922, 0.0419],
            [0.1571, 0.0666, 0.7841],
        ],
        true,
    ),
    (
        "Adobe RGB (1998)",
        [
            [0.6097, 0.3111, 0.0195],
            [0.2053, 0.6257, 0.0609],
            [0.1492, 0.0632, 0.7446],
        ],
        false,
    ),
];

/// The neutral description: a standard name when the colorants and curves
/// match a known space, else the colour space's generic name.
fn standard_name(tags: &[([u8; 4], Vec<u8>)], space: &[u8]) -> &'static str {
    match space {
        b"RGB " => known_rgb(tags).unwrap_or("RGB profile"),
        b"GRAY" => "Gray profile",
        b"CMYK" => "CMYK profile",
        _ => "Colour profile",
    }
}

fn known_rgb(tags: &[([u8; 4], Vec<u8>)]) -> Option<&'static str> {
    let get = |sig: &[u8; 4]| tags.iter().find(|t| &t.0 == sig).map(|t| t.1.as_slice());
    let xyz = |sig: &[u8; 4]| -> Option<[f64; 3]> {
        let d = get(sig).filter(|d| d.starts_with(b"XYZ "))?;
        Some([s15(d, 8)?, s15(d, 12)?, s15(d, 16)?])
    };
    let cols = [xyz(b"rXYZ")?, xyz(b"gXYZ")?, xyz(b"bXYZ")?];
    let trcs = [get(b"rTRC")?, get(b"gTRC")?, get(b"bTRC")?];
    let curve_is = |f: fn(f64) -> f64| {
        trcs.iter().all(|t| {
            [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]
                .iter()
                .all(|&x| eval_curve(t, x).is_some_and(|y| (y - f(x)).abs() < 0.004))
        })
    };
    KNOWN_RGB.iter().find_map(|(name, known, srgb_trc)| {
        let close = cols
            .iter()
            .flatten()
            .zip(known.iter().flatten())
            .all(|(a, b)| (a - b).abs() < 0.003);
        let curve: fn(f64) -> f64 = if *srgb_trc { srgb_eotf } else { gamma_22 };
        (close && curve_is(curve)).then_some(*name)
    })
}

fn srgb_eotf(x: f64) -> f64 {
    if x <= 0.04045 {
        x / 12.92
    } else {
        ((x + 0.055) / 1.055).powf(2.4)
    }
}

fn gamma_22(x: f64) -> f64 {
    x.powf(563.0 / 256.0)
}

fn s15(b: &[u8], at: usize) -> Option<f64> {
    Some(be32(b, at)? as u32 as i32 as f64 / 65536.0)
}

/// A `curv` or `para` curve at `x` in 0..=1.
fn eval_curve(t: &[u8], x: f64) -> Option<f64> {
    match t.get(..4)? {
        b"curv" => match be32(t, 8)? {
            0 => Some(x),
            1 => Some(x.powf(be16(t, 12)? as f64 / 256.0)),
            n => {
                let pos = x * (n - 1) as f64;
                let i = (pos.floor() as usize).min(n - 1);
                let at = |k: usize| be16(t, 12 + 2 * k.min(n - 1)).map(|v| v as f64 / 65535.0);
                let (a, b) = (at(i)?, at(i + 1)?);
                Some(a + (b - a) * (pos - i as f64))
            }
        },
        b"para" => {
            let p = |k: usize| s15(t, 12 + 4 * k);
            let g = p(0)?;
            Some(match be16(t, 8)? {
                0 => x.powf(g),
                1 | 2 => {
                    let (a, b) = (p(1)?, p(2)?);
                    let c = if be16(t, 8)? == 2 { p(3)? } else { 0.0 };
                    if a * x + b >= 0.0 {
                        (a * x + b).powf(g) + c
                    } else {
                        c
                    }
                }
                3 => {
                    let (a, b, c, d) = (p(1)?, p(2)?, p(3)?, p(4)?);
                    if x >= d {
                        (a * x + b).powf(g)
                    } else {
                        c * x
                    }
                }
                4 => {
                    let (a, b, c, d, e, f) = (p(1)?, p(2)?, p(3)?, p(4)?, p(5)?, p(6)?);
                    if x >= d {
                        (a * x + b).powf(g) + e
                    } else {
                        c * x + f
                    }
                }
                _ => return None,
            })
        }
        _ => None,
    }
}

/// The audit of one embedded profile: always a (non-identifying) colour
/// profile finding, plus an identifying one when the profile is not in its
/// sanitised form (a date, free text, device fields, other tags or bytes).
pub fn audit(profile: &[u8], inv: &mut Inventory) {
    inv.push(Category::ColourProfile, describe(profile));
    match sanitize(profile) {
        Ok(clean) if clean == profile => {}
        Ok(_) => inv.push(
            Category::ColourProfileText,
            format!("ICC profile {}", leaks(profile).join(", ")),
        ),
        Err(e) => inv.push(
            Category::ColourProfileText,
            format!("{e} (cleaning drops it)"),
        ),
    }
}

/// What a profile carries beyond its colour, in words.
fn leaks(p: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if p.get(24..36).is_some_and(|d| d.iter().any(|&b| b != 0)) {
        out.push(match date(p) {
            Some(d) => format!("dated {d}"),
            None => "date field set".to_string(),
        });
    }
    let fields: &[(usize, usize, &str)] = &[
        (4, 8, "CMM"),
        (40, 44, "platform"),
        (48, 56, "device"),
        (56, 64, "device attributes"),
        (80, 84, "creator"),
        (84, 100, "profile ID"),
        (100, 128, "reserved bytes"),
    ];
    for &(a, b, what) in fields {
        if p.get(a..b).is_some_and(|f| f.iter().any(|&c| c != 0)) {
            out.push(format!("{what} field set"));
        }
    }
    for e in table(p).unwrap_or_default() {
        let data = &p[e.off..e.off + e.len];
        if data.starts_with(b"mpet") && colour_tag_types(&e.sig).is_some() {
            if rebuild_mpet(data).is_none() {
                out.push(format!(
                    "tag {} with unknown or malformed processing elements \
                     (cleaning drops it; a CMM then uses {})",
                    sig_name(&e.sig),
                    fallback_tag(&e.sig)
                ));
            }
            continue;
        }
        if colour_tag_types(&e.sig).is_some() {
            continue;
        }
        let name = sig_name(&e.sig);
        out.push(match text_tag(p, &e.sig) {
            Some(t) => format!("{name} \"{}\"", short_value(&t, 40)),
            None => format!("tag {name}"),
        });
    }
    if out.is_empty() {
        out.push("bytes outside its colour tags".to_string());
    }
    out
}

/// The 16-bit tag a CMM reads when float tag `sig` (D2Bx, B2Dx) is absent.
fn fallback_tag(sig: &[u8; 4]) -> String {
    // Absolute colorimetric (3) has no 16-bit tag of its own.
    let n = if sig[3] == b'3' { '1' } else { sig[3] as char };
    match &sig[..3] {
        b"D2B" => format!("A2B{n}"),
        _ => format!("B2A{n}"),
    }
}

/// The largest profile chunk one APP2 segment holds (65535 - length - header).
const APP2_CHUNK: usize = 65535 - 2 - 14;

/// Reassembles a profile from JPEG APP2 `ICC_PROFILE` payloads: chunk k of
/// n for k = 1..=n (the first of each, n from the first chunk). Returns the
/// profile (`None` when a chunk is missing) and how many chunks lie outside
/// that sequence (a duplicate, another count, a number past n).
pub fn from_app2<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> (Option<Vec<u8>>, usize) {
    let chunks: Vec<(u8, u8, &[u8])> = payloads
        .into_iter()
        .filter(|p| p.len() >= 14)
        .map(|p| (p[12], p[13], &p[14..]))
        .collect();
    let Some(&(_, n, _)) = chunks.first() else {
        return (None, 0);
    };
    let mut profile = Vec::new();
    for k in 1..=n {
        match chunks.iter().find(|c| c.0 == k && c.1 == n) {
            Some(c) => profile.extend_from_slice(c.2),
            None => return (None, chunks.len()),
        }
    }
    let used = if n == 0 { 0 } else { n as usize };
    (
        (n > 0).then_some(profile),
        chunks.len().saturating_sub(used),
    )
}

/// The APP2 segments, markers included, that carry `profile` in a JPEG;
/// empty when it needs more than the 255 chunks the format allows.
pub fn app2_segments(profile: &[u8]) -> Vec<u8> {
    let chunks: Vec<&[u8]> = profile.chunks(APP2_CHUNK).collect();
    let Ok(n) = u8::try_from(chunks.len()) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(profile.len() + 18 * chunks.len());
    for (k, c) in chunks.iter().enumerate() {
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((c.len() + 16) as u16).to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.extend_from_slice(&[k as u8 + 1, n]);
        out.extend_from_slice(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile header with a date and the given tags.
    fn profile(tags: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![0u8; 128];
        p[24..30].copy_from_slice(&[0x07, 0xE1, 0, 7, 0, 7]); // 2017-07-07
        p.extend_from_slice(&(tags.len() as u32).to_be_bytes());
        let mut data_at = 132 + 12 * tags.len();
        let mut data = Vec::new();
        for (sig, body) in tags {
            p.extend_from_slice(*sig);
            p.extend_from_slice(&(data_at as u32).to_be_bytes());
            p.extend_from_slice(&(body.len() as u32).to_be_bytes());
            data.extend_from_slice(body);
            data_at += body.len();
        }
        p.extend_from_slice(&data);
        p
    }

    fn desc_v2(text: &str) -> Vec<u8> {
        let mut t = b"desc\0\0\0\0".to_vec();
        t.extend_from_slice(&(text.len() as u32 + 1).to_be_bytes());
        t.extend_from_slice(text.as_bytes());
        t.push(0);
        t
    }

    #[test]
    fn names_description_date_and_device() {
        let p = profile(&[
            (b"desc", desc_v2("Display P3")),
            (b"dmdd", mluc("Dr Smith's scanner")),
        ]);
        let d = describe(&p);
        assert!(d.starts_with("ICC profile \"Display P3\""), "{d}");
        assert!(d.contains("dated 2017-07-07"), "{d}");
        assert!(d.contains("device \"Dr Smith's scanner\""), "{d}");
    }

    #[test]
    fn bad_tables_never_panic() {
        let p = profile(&[(b"desc", desc_v2("sRGB"))]);
        for n in 0..p.len() {
            let _ = describe(&p[..n]);
        }
        let mut huge = p.clone();
        huge[128..132].copy_from_slice(&u32::MAX.to_be_bytes());
        let _ = describe(&huge);
    }

    fn xyz(v: [f64; 3]) -> Vec<u8> {
        let mut t = b"XYZ \0\0\0\0".to_vec();
        for x in v {
            t.extend_from_slice(&((x * 65536.0).round() as i32).to_be_bytes());
        }
        t
    }

    /// The sRGB curve as a parametric curve (type 3).
    fn srgb_para() -> Vec<u8> {
        let mut t = b"para\0\0\0\0\0\x03\0\0".to_vec();
        for x in [2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045] {
            t.extend_from_slice(&((x * 65536.0f64).round() as i32).to_be_bytes());
        }
        t
    }

    fn gamma(g: f64) -> Vec<u8> {
        let mut t = b"curv\0\0\0\0\0\0\0\x01".to_vec();
        t.extend_from_slice(&((g * 256.0).round() as u16).to_be_bytes());
        t
    }

    /// An RGB display profile (v2 or v4) with the given colorants and curve.
    fn rgb(v4: bool, cols: [[f64; 3]; 3], trc: Vec<u8>, extra: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut tags: Vec<(&[u8; 4], Vec<u8>)> = vec![
            (b"wtpt", xyz([0.9642, 1.0, 0.8249])),
            (b"rXYZ", xyz(cols[0])),
            (b"gXYZ", xyz(cols[1])),
            (b"bXYZ", xyz(cols[2])),
            (b"rTRC", trc.clone()),
            (b"gTRC", trc.clone()),
            (b"bTRC", trc),
        ];
        tags.extend(extra.iter().cloned());
        let mut p = profile(&tags);
        p[8] = if v4 { 4 } else { 2 };
        p[12..24].copy_from_slice(b"mntrRGB XYZ ");
        p[36..40].copy_from_slice(b"acsp");
        let n = p.len() as u32;
        p[..4].copy_from_slice(&n.to_be_bytes());
        p
    }

    /// A 3-in, 3-out lutAtoBType with every element (B, matrix, M, CLUT,
    /// A) and `gap` before each and after the last.
    fn lut_ab(gap: &[u8]) -> Vec<u8> {
        let mut t = b"mAB \0\0\0\0\x03\x03\0\0".to_vec();
        t.resize(32, 0);
        let curves = |g: f64| {
            let mut c = Vec::new();
            for _ in 0..3 {
                c.extend_from_slice(&gamma(g));
                c.resize(c.len().next_multiple_of(4), 0);
            }
            c
        };
        let mut matrix = Vec::new();
        for v in [
            0.4361, 0.3851, 0.1431, 0.2225, 0.7169, 0.0606, 0.0139, 0.0971, 0.7141, 0.0, 0.0, 0.0,
        ] {
            matrix.extend_from_slice(&((v * 65536.0f64).round() as i32).to_be_bytes());
        }
        let mut clut = vec![2, 2, 2];
        clut.resize(16, 0);
        clut.extend_from_slice(&[2, 0, 0, 0]);
        for n in 0..8u16 {
            for bit in [4, 2, 1] {
                clut.extend_from_slice(&(if n & bit != 0 { 0xFFFFu16 } else { 0 }).to_be_bytes());
            }
        }
        for (k, body) in [curves(1.0), matrix, curves(2.2), clut, curves(1.0)]
            .iter()
            .enumerate()
        {
            t.extend_from_slice(gap);
            t.resize(t.len().next_multiple_of(4), 0);
            let at = t.len() as u32;
            t[12 + 4 * k..16 + 4 * k].copy_from_slice(&at.to_be_bytes());
            t.extend_from_slice(body);
        }
        t.extend_from_slice(gap);
        t
    }

    #[test]
    fn lut_ab_tags_are_rebuilt_without_their_gaps() {
        let dirty = rgb(
            true,
            [
                [0.4361, 0.2225, 0.0139],
                [0.3851, 0.7169, 0.0971],
                [0.1431, 0.0606, 0.7141],
            ],
            srgb_para(),
            &[
                (b"A2B0", lut_ab(CANARY)),
                (b"B2A0", {
                    let mut b = lut_ab(CANARY);
                    b[..4].copy_from_slice(b"mBA ");
                    b
                }),
            ],
        );
        assert!(contains(&dirty, CANARY));
        let clean = sanitize(&dirty).unwrap();
        assert!(!contains(&clean, CANARY));
        let tags = table(&clean).unwrap();
        let tag = |sig: &[u8; 4]| {
            let e = tags.iter().find(|e| &e.sig == sig).unwrap();
            clean[e.off..e.off + e.len].to_vec()
        };
        // The elements, in place, with nothing between them.
        assert_eq!(tag(b"A2B0"), lut_ab(b""));
        let mut b2a = lut_ab(b"");
        b2a[..4].copy_from_slice(b"mBA ");
        assert_eq!(tag(b"B2A0"), b2a);
        // The audit calls the input's gaps out and the output clean.
        let mut inv = Inventory::default();
        audit(&dirty, &mut inv);
        assert!(!inv.is_clean());
        let mut inv = Inventory::default();
        audit(&clean, &mut inv);
        assert!(inv.is_clean(), "{inv:?}");
        assert_eq!(sanitize(&clean).unwrap(), clean);
        // An element past the end is malformed, not copied.
        let mut bad = lut_ab(b"");
        let past = bad.len() as u32 + 8;
        bad[28..32].copy_from_slice(&past.to_be_bytes());
        assert!(rebuild_lut_ab(&bad).is_none());
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    /// Elements laid out after a position table, `gap` before each and after
    /// the last; `table_at` is where the (offset, size) pairs start.
    fn positioned(mut head: Vec<u8>, table_at: usize, parts: &[Vec<u8>], gap: &[u8]) -> Vec<u8> {
        head.resize(table_at + 8 * parts.len(), 0);
        for (k, part) in parts.iter().enumerate() {
            head.extend_from_slice(gap);
            head.resize(head.len().next_multiple_of(4), 0);
            let at = head.len() as u32;
            head[table_at + 8 * k..table_at + 8 * k + 4].copy_from_slice(&at.to_be_bytes());
            head[table_at + 8 * k + 4..table_at + 8 * k + 8]
                .copy_from_slice(&(part.len() as u32).to_be_bytes());
            head.extend_from_slice(part);
        }
        head.extend_from_slice(gap);
        head
    }

    /// A 3-in, 3-out mpet: a curve set (a gamma formula below 0.5, then 5
    /// samples), a matrix, a 2x2x2 CLUT; `gap` between the elements and
    /// their curves, `reserved` in every reserved field.
    fn mpet(gap: &[u8], reserved: &[u8; 4]) -> Vec<u8> {
        let head = |sig: &[u8; 4], i: u16, o: u16| {
            let mut h = sig.to_vec();
            h.extend_from_slice(reserved);
            h.extend_from_slice(&i.to_be_bytes());
            h.extend_from_slice(&o.to_be_bytes());
            h
        };
        let curve = |g: f32| {
            let mut c = b"curf".to_vec();
            c.extend_from_slice(reserved);
            c.extend_from_slice(&[0, 2]);
            c.extend_from_slice(&reserved[..2]);
            c.extend_from_slice(&f32s(&[0.5]));
            c.extend_from_slice(b"parf");
            c.extend_from_slice(reserved);
            c.extend_from_slice(&[0, 0]);
            c.extend_from_slice(&reserved[..2]);
            c.extend_from_slice(&f32s(&[g, 1.0, 0.0, 0.0]));
            c.extend_from_slice(b"samf");
            c.extend_from_slice(reserved);
            c.extend_from_slice(&5u32.to_be_bytes());
            c.extend_from_slice(&f32s(&[0.3, 0.45, 0.6, 0.8, 1.0]));
            c
        };
        let curves = [curve(2.2), curve(1.8), curve(2.4)];
        let cvst = positioned(head(b"cvst", 3, 3), 12, &curves, gap);
        let mut matf = head(b"matf", 3, 3);
        matf.extend_from_slice(&f32s(&[
            0.4361, 0.3851, 0.1431, 0.2225, 0.7169, 0.0606, 0.0139, 0.0971, 0.7141, 0.0, 0.0, -0.0,
        ]));
        let mut clut = head(b"clut", 3, 3);
        clut.extend_from_slice(&[2, 2, 2]);
        clut.resize(28, 0);
        for n in 0..8 {
            let v: Vec<f32> = [4, 2, 1]
                .iter()
                .map(|b| (n & b != 0) as u8 as f32)
                .collect();
            clut.extend_from_slice(&f32s(&v));
        }
        positioned(
            head(b"mpet", 3, 3)[..12]
                .to_vec()
                .into_iter()
                .chain([0, 0, 0, 3])
                .collect(),
            16,
            &[cvst, matf, clut],
            gap,
        )
    }

    #[test]
    fn mpet_tags_are_rebuilt_from_their_elements() {
        let dirty = mpet(CANARY, b"CANA");
        assert!(contains(&dirty, CANARY) && contains(&dirty, b"CANA"));
        let clean = rebuild_mpet(&dirty).unwrap();
        assert!(!contains(&clean, CANARY) && !contains(&clean, b"CANA"));
        // The same elements, packed, every reserved field zero, -0 as 0.
        let mut expected = mpet(b"", &[0; 4]);
        let matf = expected.windows(4).position(|w| w == b"matf").unwrap();
        let neg = matf + 12 + 4 * 11;
        assert_eq!(expected[neg..neg + 4], f32s(&[-0.0])[..]);
        expected[neg..neg + 4].fill(0);
        assert_eq!(clean, expected);
        assert_eq!(rebuild_mpet(&clean).unwrap(), clean, "a fixed point");
        // In a profile: kept, rebuilt, and the audit tells dirty from clean.
        let p = rgb(
            true,
            KNOWN_RGB[0].1,
            srgb_para(),
            &[(b"D2B0", dirty), (b"B2D0", mpet(b"", &[0; 4]))],
        );
        let out = sanitize(&p).unwrap();
        assert!(!contains(&out, CANARY));
        let tags = table(&out).unwrap();
        let d2b0 = tags.iter().find(|e| &e.sig == b"D2B0").unwrap();
        assert_eq!(&out[d2b0.off..d2b0.off + d2b0.len], &expected[..]);
        assert_eq!(sanitize(&out).unwrap(), out);
        let mut inv = Inventory::default();
        audit(&out, &mut inv);
        assert!(inv.is_clean(), "{inv:?}");
    }

    #[test]
    fn mpet_tags_that_cannot_be_accounted_for_are_dropped() {
        let good = mpet(b"", &[0; 4]);
        let first = be32(&good, 16).unwrap();
        let mut cases = Vec::new();
        let mut unknown = good.clone();
        unknown[first..first + 4].copy_from_slice(b"bACS");
        cases.push(("unknown element", unknown));
        let mut nan = good.clone();
        let at = nan.len() - 4; // the CLUT's last entry
        nan[at..at + 4].copy_from_slice(&0x7FC0_CAFEu32.to_be_bytes());
        cases.push(("NaN payload", nan));
        let mut chain = good.clone();
        chain[first + 10..first + 12].copy_from_slice(&4u16.to_be_bytes());
        cases.push(("channels that do not chain", chain));
        let mut past = good.clone();
        past[20..24].copy_from_slice(&(good.len() as u32).to_be_bytes());
        cases.push(("element past the end", past));
        let mut count = good.clone();
        count[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        cases.push(("element count", count));
        for (what, t) in cases {
            assert!(rebuild_mpet(&t).is_none(), "{what}");
            let p = rgb(true, KNOWN_RGB[0].1, srgb_para(), &[(b"D2B3", t)]);
            let out = sanitize(&p).unwrap();
            assert!(!table_of(&out).contains(b"D2B3"), "{what}: dropped");
            assert!(table_of(&out).contains(b"rXYZ"), "{what}: the rest stays");
            let mut inv = Inventory::default();
            audit(&p, &mut inv);
            let said = format!("{inv:?}");
            assert!(
                said.contains("D2B3 with unknown or malformed"),
                "{what}: {said}"
            );
            assert!(said.contains("uses A2B1"), "{what}: {said}");
        }
        for n in 0..good.len() {
            let _ = rebuild_mpet(&good[..n]);
        }
    }

    fn table_of(p: &[u8]) -> Vec<[u8; 4]> {
        table(p).unwrap().iter().map(|e| e.sig).collect()
    }

    const CANARY: &[u8] = b"CANARY-ICC";

    /// A v2 profile with a canary in every place a profile can hide one.
    fn dirty() -> Vec<u8> {
        let text = |s: &str| {
            let mut t = b"text\0\0\0\0".to_vec();
            t.extend_from_slice(s.as_bytes());
            t
        };
        let mut xyz_pad = xyz([0.9642, 1.0, 0.8249]);
        xyz_pad.extend_from_slice(CANARY); // bytes after the type's fields
        let mut p = rgb(
            false,
            KNOWN_RGB[0].1,
            srgb_para(),
            &[
                (b"desc", desc_v2("CANARY-ICC Dr Smith calibration")),
                (b"cprt", text("CANARY-ICC Clinic")),
                (b"dmnd", desc_v2("CANARY-ICC maker")),
                (b"dmdd", mluc("CANARY-ICC model")),
                (b"Priv", CANARY.to_vec()),
                (b"bkpt", xyz_pad),
            ],
        );
        p[4..8].copy_from_slice(b"CANA"); // CMM
        p[48..56].copy_from_slice(b"RY-ICC!!"); // device
        p[80..84].copy_from_slice(b"CANA"); // creator
        p[100..110].copy_from_slice(CANARY); // reserved
                                             // A gap between tag data and bytes after the declared size.
        let size = p.len() + CANARY.len();
        p.extend_from_slice(CANARY);
        p[..4].copy_from_slice(&(size as u32).to_be_bytes());
        p.extend_from_slice(CANARY);
        p
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn sanitised_profiles_keep_colour_tags_only_and_no_canary() {
        let p = dirty();
        assert!(contains(&p, CANARY));
        let clean = sanitize(&p).unwrap();
        assert!(!contains(&clean, CANARY), "{clean:?}");
        assert!(!contains(&clean, b"CANA"), "{clean:?}");
        assert!(clean[24..36].iter().all(|&b| b == 0), "date zeroed");
        assert_eq!(be32(&clean, 0), Some(clean.len()));
        assert_eq!(clean.len() % 4, 0);
        let tags = table_of(&clean);
        assert_eq!(tags.first(), Some(b"desc"));
        assert_eq!(tags.last(), Some(b"cprt"));
        for sig in [b"dmnd", b"dmdd", b"Priv"] {
            assert!(!tags.contains(sig), "{sig:?} kept");
        }
        for sig in [
            b"wtpt", b"bkpt", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC",
        ] {
            assert!(tags.contains(sig), "{sig:?} lost");
        }
        // The colour data itself is the original's, the shared curve stored once.
        let (src, out) = (table(&p).unwrap(), table(&clean).unwrap());
        let data = |p: &[u8], t: &[Entry], sig: &[u8; 4]| {
            let e = t.iter().find(|e| &e.sig == sig).unwrap();
            p[e.off..e.off + e.len].to_vec()
        };
        assert_eq!(data(&p, &src, b"rXYZ"), data(&clean, &out, b"rXYZ"));
        assert_eq!(data(&p, &src, b"rTRC"), data(&clean, &out, b"rTRC"));
        assert_eq!(data(&clean, &out, b"bkpt").len(), 20, "padding trimmed");
        let off = |sig: &[u8; 4]| out.iter().find(|e| &e.sig == sig).unwrap().off;
        assert_eq!(off(b"rTRC"), off(b"bTRC"));
        assert_eq!(
            text_tag(&clean, b"desc").as_deref(),
            Some("sRGB IEC61966-2.1")
        );
        assert_eq!(text_tag(&clean, b"cprt").as_deref(), Some(COPYRIGHT));
    }

    #[test]
    fn sanitising_is_idempotent_and_the_audit_agrees() {
        for p in [dirty(), rgb(true, KNOWN_RGB[1].1, srgb_para(), &[])] {
            let clean = sanitize(&p).unwrap();
            assert_eq!(sanitize(&clean).unwrap(), clean);
            let mut inv = Inventory::default();
            audit(&clean, &mut inv);
            assert!(inv.is_clean(), "{inv:?}");
            let mut inv = Inventory::default();
            audit(&p, &mut inv);
            assert!(!inv.is_clean(), "{inv:?}");
        }
        let mut inv = Inventory::default();
        audit(&dirty(), &mut inv);
        let said = format!("{inv:?}");
        for what in ["dated 2017-07-07", "dmnd", "Priv", "device field"] {
            assert!(said.contains(what), "{what} in {said}");
        }
    }

    #[test]
    fn known_spaces_get_their_standard_name_and_v4_gets_mluc() {
        let cases = [
            (KNOWN_RGB[0].1, srgb_para(), "sRGB IEC61966-2.1"),
            (KNOWN_RGB[1].1, srgb_para(), "Display P3"),
            (KNOWN_RGB[2].1, gamma(563.0 / 256.0), "Adobe RGB (1998)"),
            (KNOWN_RGB[2].1, srgb_para(), "RGB profile"),
            (KNOWN_RGB[0].1, gamma(1.8), "RGB profile"),
        ];
        for (cols, trc, name) in cases {
            for v4 in [false, true] {
                let clean = sanitize(&rgb(v4, cols, trc.clone(), &[])).unwrap();
                assert_eq!(text_tag(&clean, b"desc").as_deref(), Some(name));
                let e = table(&clean).unwrap()[0];
                let ty = &clean[e.off..e.off + 4];
                assert_eq!(ty, if v4 { b"mluc" } else { b"desc" });
            }
        }
    }

    #[test]
    fn malformed_profiles_are_refused() {
        let good = rgb(false, KNOWN_RGB[0].1, srgb_para(), &[]);
        assert!(sanitize(&good).is_ok());
        let entry = |i: usize| HEADER + 4 + 12 * i;
        let mut cases: Vec<Vec<u8>> = Vec::new();
        let mut p = good.clone();
        p[entry(1) + 4..entry(1) + 8].copy_from_slice(&(good.len() as u32 - 4).to_be_bytes());
        cases.push(p); // rXYZ runs past the end
        let mut p = good.clone();
        let woff = be32(&good, entry(0) + 4).unwrap() as u32;
        p[entry(1) + 4..entry(1) + 8].copy_from_slice(&(woff + 8).to_be_bytes());
        cases.push(p); // rXYZ overlaps wtpt
        let mut p = good.clone();
        p[entry(4)..entry(4) + 4].copy_from_slice(b"rXYZ");
        cases.push(p); // a tag twice
        let mut p = good.clone();
        let toff = be32(&good, entry(4) + 4).unwrap();
        p[toff..toff + 4].copy_from_slice(b"text");
        cases.push(p); // a curve of the wrong type
        let mut p = good.clone();
        p[128..132].copy_from_slice(&u32::MAX.to_be_bytes());
        cases.push(p); // tag count
        let mut p = good.clone();
        p[36] = b'x';
        cases.push(p); // no acsp
        let mut p = good.clone();
        p[..4].copy_from_slice(&(good.len() as u32 + 1).to_be_bytes());
        cases.push(p); // declared size past the bytes
        cases.push(profile(&[(b"desc", desc_v2("only text"))])); // no colour
        for (i, p) in cases.iter().enumerate() {
            assert!(sanitize(p).is_err(), "case {i}");
            let mut inv = Inventory::default();
            audit(p, &mut inv);
            assert!(!inv.is_clean(), "case {i}");
        }
        for n in 0..good.len() {
            let _ = sanitize(&good[..n]);
        }
    }

    #[test]
    fn app2_chunks_outside_the_sequence_are_counted_not_used() {
        let p = sanitize(&rgb(false, KNOWN_RGB[0].1, srgb_para(), &[])).unwrap();
        let segs = app2_segments(&p);
        let payload = segs[4..].to_vec();
        let mut stray = b"ICC_PROFILE\0\x02\x01".to_vec();
        stray.extend_from_slice(CANARY);
        let (got, extra) = from_app2([payload.as_slice(), stray.as_slice()]);
        assert_eq!(got.as_deref(), Some(p.as_slice()));
        assert_eq!(extra, 1);
        let (got, _) = from_app2([b"ICC_PROFILE\0\x02\x02abc".as_slice()]);
        assert_eq!(got, None, "chunk 1 of 2 missing");
        let big = vec![7u8; APP2_CHUNK * 2 + 5];
        let segs = app2_segments(&big);
        let mut at = 0;
        let mut payloads = Vec::new();
        while at < segs.len() {
            let len = u16::from_be_bytes([segs[at + 2], segs[at + 3]]) as usize;
            payloads.push(&segs[at + 4..at + 2 + len]);
            at += 2 + len;
        }
        assert_eq!(payloads.len(), 3);
        assert_eq!(from_app2(payloads).0, Some(big));
    }
}
