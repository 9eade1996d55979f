//! A JPEG of a source's lower MCU rows, for a decoder that needs only
//! those (a collage panel cropped from the middle of a photo). A decoder
//! asked for a crop still Huffman-decodes every block above it; stepping
//! over them here costs less, and the decoder then sees a frame that
//! starts near the crop.
//!
//! ```text
//! the source's header (its frame one MCU row taller than the rows kept)
//! one made MCU row: flat blocks that take the DC predictors from 0 to the
//!   source's at the first row kept, one block carrying a few AC values so
//!   the row ends on the bit where the source's row starts in its byte
//! the source's scan from that byte on, as bytes (no bit shifting)
//! ```
//!
//! The made row is never shown: the caller crops below it, and keeps one
//! real row above its crop so the chroma upsampling sees real neighbours.
//! Only scans without restart markers are taken (`Ok(None)` otherwise), as
//! are any whose tables cannot code the made row: the caller decodes the
//! source as it is.

use super::*;

/// The source `bytes` from MCU row `row_for(pixel rows of an MCU row)`
/// on, after one made row, and how many pixel rows fewer than the source's
/// come before the first row kept (the made row counts as one MCU row).
/// `None` when this scan cannot be cut so (restart markers, a
/// non-sequential or odd scan, tables that cannot code the made row, a
/// row out of range).
pub fn from_row(
    bytes: &[u8],
    limits: &crate::container::Limits,
    row_for: impl FnOnce(usize) -> usize,
) -> Result<Option<(Vec<u8>, usize)>> {
    let Ok(jpeg) = crate::container::jpeg::parse(bytes, limits) else {
        return Ok(None);
    };
    let Some(plan) = Plan::new(&jpeg)? else {
        return Ok(None);
    };
    let mcu_px = plan.mcu_rows_px();
    let row = row_for(mcu_px);
    if plan.restart != 0 || row == 0 || row >= plan.mcus_y {
        return Ok(None);
    }
    let kept = plan.height as usize - row * mcu_px;
    let Ok(height) = u16::try_from(mcu_px + kept) else {
        return Ok(None);
    };
    // Where row `row` starts, and the DC predictors there.
    let mut r = Reader::new(plan.data);
    let mut pred = [0i32; 4];
    plan.walk_range(
        &mut r,
        &mut pred,
        0..row * plan.mcus_x,
        &mut Hidden::default(),
        &mut Skip,
    )?;
    let at = r.position()?;
    let tables = plan.encode_tables();
    // The made row's length modulo 8 without its extra AC values, then
    // the values that bring it to the source's bit.
    let mut probe = Writer::new(plan.mcus_x * 16);
    if made_row(&mut probe, &plan, &tables, &pred, &[]).is_err() {
        return Ok(None);
    }
    let (_, n0) = probe.whole_bytes();
    let Some(extra) = sizes_adding(&tables[0].1, (at.1 + 8 - n0) % 8) else {
        return Ok(None);
    };
    // One buffer for all of it: the rest of the scan is copied once.
    let header = bytes.len().saturating_sub(plan.data.len());
    let rest = plan.data.len() - at.0.min(plan.data.len());
    let mut out = Vec::with_capacity(header + plan.mcus_x * 16 + rest + 2);
    if !write_header(&mut out, &jpeg, height) {
        return Ok(None);
    }
    let mut w = Writer::after(out);
    if made_row(&mut w, &plan, &tables, &pred, &extra).is_err() {
        return Ok(None);
    }
    // To the end of the data: the decoder stops at the frame's last row.
    band::copy_rest(&mut w, plan.data, at, (plan.data.len(), 0))?;
    let mut out = w.finish();
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(Some((out, (row - 1) * mcu_px)))
}

impl Plan<'_> {
    /// The (DC, AC) coding tables of each of the scan's components, in
    /// scan order.
    pub(super) fn encode_tables(&self) -> Vec<(EncodeTable, EncodeTable)> {
        self.comps
            .iter()
            .map(|c| {
                let (dc, ac) = (self.specs[c.dc], self.specs[c.ac]);
                (
                    EncodeTable::from_counts(dc.0, dc.1),
                    EncodeTable::from_counts(ac.0, ac.1),
                )
            })
            .collect()
    }

    /// Pixel rows of one MCU row of the scan.
    pub(super) fn mcu_rows_px(&self) -> usize {
        if self.interleaved() {
            8 * self.frame.iter().map(|c| c.2 as usize).max().unwrap_or(1)
        } else {
            8
        }
    }
}

/// `jpeg`'s segments up to its scan's header, the frame `height` rows
/// tall. `false` when there is no frame before the scan.
fn write_header(out: &mut Vec<u8>, jpeg: &Jpeg, height: u16) -> bool {
    let mut framed = false;
    for seg in &jpeg.segments {
        match seg.marker {
            0xC0 | 0xC1 if seg.payload.len() >= 6 => {
                let mut p = seg.payload.to_vec();
                p[1..3].copy_from_slice(&height.to_be_bytes());
                put_segment(out, seg.marker, &p);
                framed = true;
            }
            0xDA => {
                put_segment(out, seg.marker, seg.payload);
                return framed;
            }
            _ => out.extend_from_slice(seg.raw),
        }
    }
    false
}

fn put_segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
}

/// One MCU row of flat blocks whose DCs step from 0 to `pred`, per
/// component, in differences its DC table codes; the very first block
/// also carries AC values of the magnitude categories `extra` (at
/// positions 1, 2, ...).
fn made_row(
    w: &mut Writer,
    plan: &Plan,
    tables: &[(EncodeTable, EncodeTable)],
    pred: &[i32; 4],
    extra: &[u32],
) -> Result<()> {
    let per_mcu = |c: &Comp| if plan.interleaved() { c.h * c.v } else { 1 };
    let steps = plan
        .comps
        .iter()
        .enumerate()
        .map(|(ci, c)| dc_steps(&tables[ci].0, pred[ci], plan.mcus_x * per_mcu(c)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Unsupported("a DC the tables cannot reach".into()))?;
    let mut prev = [0i16; 4];
    let mut next = [0usize; 4];
    let mut first = true;
    for _ in 0..plan.mcus_x {
        for (ci, c) in plan.comps.iter().enumerate() {
            for _ in 0..per_mcu(c) {
                let mut blk = [0i16; 64];
                blk[0] = steps[ci][next[ci]];
                next[ci] += 1;
                if first {
                    for (k, &s) in extra.iter().enumerate() {
                        blk[k + 1] = 1 << (s - 1);
                    }
                    first = false;
                }
                let mask = nonzero_mask(&blk) | 1;
                encode_block(w, &blk, mask, &mut prev[ci], &tables[ci].0, &tables[ci].1)?;
            }
        }
    }
    Ok(())
}

/// `count` DC values from 0 to `target`, each difference one the table
/// `dc` codes: the largest steps it has first, then `target` held (a
/// difference of 0) or, when the table has no 0 (an optimised table of a
/// busy picture), left and come back to. `None` when that cannot be done
/// in `count`.
fn dc_steps(dc: &EncodeTable, target: i32, count: usize) -> Option<Vec<i16>> {
    let has = |s: u32| s <= 11 && dc.size[s as usize] > 0;
    let mut out = Vec::with_capacity(count);
    let mut v = 0i32;
    while v != target {
        let r = target - v;
        let s = (1..=category(r).0).rev().find(|&s| has(s))?;
        v += r.unsigned_abs().min((1 << s) - 1) as i32 * r.signum();
        out.push(v);
    }
    let mut left = count.checked_sub(out.len())?;
    if has(0) {
        out.resize(count, v);
    } else {
        // Away and back in pairs; an odd count takes one trip of three:
        // x, y, then -(x + y), each a category the table has.
        let low = |s: u32| 1i32 << (s - 1);
        let cats: Vec<u32> = (1..=11).filter(|&s| has(s)).collect();
        if left % 2 == 1 {
            let (x, y) = cats
                .iter()
                .flat_map(|&p| cats.iter().map(move |&q| (low(p), low(q))))
                .find(|&(x, y)| has(category(x + y).0))?;
            out.extend([v + x, v + x + y, v]);
            left = left.checked_sub(3)?;
        }
        let a = low(*cats.first()?);
        for _ in 0..left / 2 {
            out.extend([v + a, v]);
        }
    }
    out.iter().map(|&d| i16::try_from(d).ok()).collect()
}

/// Magnitude categories (1..=4, at most 8 values) of AC values at
/// positions 1, 2, ... whose codes and value bits add `need` bits modulo
/// 8 with the table `ac`, fewest values first. `None` when the table
/// cannot.
fn sizes_adding(ac: &EncodeTable, need: u32) -> Option<Vec<u32>> {
    // Each residue reached, and how: a breadth-first search, so the first
    // way found to a residue is a shortest one.
    let mut how: [Option<Vec<u32>>; 8] = Default::default();
    how[0] = Some(Vec::new());
    let mut frontier = vec![0u32];
    for _ in 0..8 {
        if how[need as usize].is_some() {
            break;
        }
        let mut next = Vec::new();
        for &r in &frontier {
            for s in 1..=4u32 {
                let size = ac.size[s as usize] as u32;
                if size == 0 {
                    continue;
                }
                let to = ((r + size + s) % 8) as usize;
                if how[to].is_none() {
                    let mut v = how[r as usize].clone().unwrap_or_default();
                    v.push(s);
                    how[to] = Some(v);
                    next.push(to as u32);
                }
            }
        }
        frontier = next;
    }
    how[need as usize].take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Limits;

    fn photo(w: u32, h: u32, sub: lt::Subsampling, seed: u32) -> Vec<u8> {
        let mut px = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let v = (x * 7 + y * 13 + seed).wrapping_mul(2654435761) >> 24;
                px.extend_from_slice(&[
                    (x ^ y) as u8 ^ v as u8,
                    (x * 3 + seed) as u8,
                    (y * 5) as u8 ^ (v as u8 >> 2),
                ]);
            }
        }
        lt::Encoder::new(&px, w as usize, h as usize, lt::PixelFormat::Rgb)
            .quality(88)
            .subsampling(sub)
            .optimize_huffman(seed % 2 == 1)
            .encode()
            .unwrap()
    }

    fn rgb(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut d = lt::Decoder::new(bytes).unwrap();
        d.set_output_format(lt::PixelFormat::Rgb);
        let img = d.decode_image().unwrap();
        (img.width, img.height, img.data)
    }

    #[test]
    fn rows_cut_decode_as_the_same_rows_of_the_source() {
        let mut cuts = 0;
        for sub in [
            lt::Subsampling::S420,
            lt::Subsampling::S444,
            lt::Subsampling::S422,
        ] {
            for seed in 0..4 {
                let src = photo(203, 157, sub, seed);
                let (w, h, full) = rgb(&src);
                let mcu = if sub == lt::Subsampling::S420 { 16 } else { 8 };
                for row in 1..h.div_ceil(mcu) {
                    let Some((cut, dropped)) = from_row(&src, &Limits::default(), |m| {
                        assert_eq!(m, mcu);
                        row
                    })
                    .unwrap() else {
                        // An optimised table of noise may lack the small
                        // DC steps: the caller decodes the source then.
                        assert!(seed % 2 == 1, "{sub:?} seed {seed} row {row}: not cut");
                        continue;
                    };
                    cuts += 1;
                    assert_eq!(dropped, (row - 1) * mcu);
                    let (cw, ch, part) = rgb(&cut);
                    assert_eq!((cw, ch), (w, h - row * mcu + mcu), "{sub:?} row {row}");
                    // The made row is not compared, nor the first real row
                    // (its chroma upsampling sees the made row).
                    if h <= (row + 1) * mcu {
                        continue;
                    }
                    let skip = 2 * mcu * w * 3;
                    let from = (row + 1) * mcu * w * 3;
                    assert!(
                        part[skip..] == full[from..],
                        "{sub:?} seed {seed} row {row}: pixels differ"
                    );
                }
            }
        }
        // 4:2:0: 9 rows a picture, 4:4:4 and 4:2:2: 19; most optimised ones cut too.
        assert!(cuts > 4 * 9 + 4 * 19 * 2 - 40, "only {cuts} cut");
    }

    #[test]
    fn scans_it_cannot_cut_are_left_alone() {
        let src = photo(64, 64, lt::Subsampling::S420, 1);
        let l = Limits::default();
        assert!(from_row(&src, &l, |_| 0).unwrap().is_none());
        assert!(from_row(&src, &l, |_| 4).unwrap().is_none());
        assert!(from_row(b"not a jpeg", &l, |_| 1).unwrap().is_none());
        let restarts = lt::Encoder::new(&[128u8; 64 * 64 * 3], 64, 64, lt::PixelFormat::Rgb)
            .restart_rows(1)
            .encode()
            .unwrap();
        assert!(from_row(&restarts, &l, |_| 2).unwrap().is_none());
    }

    #[test]
    fn any_residue_is_reached_with_the_standard_table() {
        let t = &StandardTables::get().ac[0];
        for need in 0..8 {
            let v = sizes_adding(t, need).expect("reachable");
            let bits: u32 = v.iter().map(|&s| t.size[s as usize] as u32 + s).sum();
            assert_eq!(bits % 8, need);
        }
    }
}
