//! The region edit at less than a transcode's cost: the scan keeps the
//! source's Huffman tables, so every block outside the edited MCU rows
//! keeps its bits.
//!
//! ```text
//! prefix (rows before the band): decoded only to find where the band
//!   starts (bit position, DC predictors), its bytes copied as they are
//! band: decoded, edited, coded with the source's tables (a fill: its
//!   untouched MCUs after untouched ones copied as the source's bits)
//! then MCUs coded again until the DC predictors agree with the source's
//!   (or the next restart marker), and the rest copied: as bytes after a
//!   restart marker, else as bits shifted to the output's bit offset
//! ```
//!
//! Without restart markers the rest is decoded once (no coding) to find
//! where its last block ends: the source's padding bits and anything after
//! them are not copied. Any error (a symbol the source's tables cannot
//! code, a damaged scan) is the caller's cue to take
//! [`Plan::transcode_band`], which codes everything with the standard tables.
//!
//! A fill ([`Freedom`]) needs neither tables that code every symbol nor the
//! rest's bits shifted. Its flat blocks code as a DC difference and an end
//! of block, and their exact DC is ours to choose (a step is about q0/8
//! grey levels):
//!
//! ```text
//! each flat block's DC: the fill's, or the nearest (at most 2 steps off)
//!   whose differences (in and out) the source's DC table codes
//! an edge block (partly in the region) the tables cannot code: filled whole
//! then a few interior flat blocks moved by 1 or 2 steps, so that the band's
//!   coded length is the source's, modulo 8 bits
//! the rest: the source's bytes from the junction byte on (its low bits
//!   under our high ones) to its last block's end, copied as bytes
//! ```
//!
//! The rest is still stepped over (no coding) to find that end: what the
//! source hides after its last block is never copied, unlike in the
//! lossless strip. `--thorough` (`copy_tail` false) shifts the bits instead.

use super::*;

/// Stores the band's blocks (the band's first MCU row at block row 0).
struct BandStore<'p> {
    band: &'p mut lt::JpegCoefficients,
    masks: &'p mut [Vec<u64>],
    /// First block row of the band, per frame component.
    row0: Vec<usize>,
    /// Where each MCU of the band starts in the data.
    starts: &'p mut Vec<(usize, u32)>,
}

impl Sink for BandStore<'_> {
    const STARTS: bool = true;
    fn mcu_start(&mut self, at: (usize, u32)) {
        self.starts.push(at);
    }

    #[inline(always)]
    fn block(&mut self, fi: usize, bx: usize, by: usize, blk: &[i16; 64], mask: u64) -> Result<()> {
        let c = &mut self.band.components[fi];
        let i = (by - self.row0[fi]) * c.blocks_x + bx;
        match (c.blocks.get_mut(i), self.masks[fi].get_mut(i)) {
            (Some(b), Some(m)) => {
                *b = *blk;
                *m = mask;
                Ok(())
            }
            _ => Err(corrupt("a block outside the band")),
        }
    }
}

/// The offset just past the `k`-th restart marker of `data` from `from`
/// on, the markers checked to count up from `first_index`.
fn after_markers(data: &[u8], from: usize, k: usize, first_index: usize) -> Result<usize> {
    let mut p = from;
    for j in 0..k {
        loop {
            let q = memchr::memchr(0xFF, data.get(p..).unwrap_or(&[]))
                .ok_or_else(|| corrupt("fewer restart markers than the restart interval puts"))?;
            p += q;
            match data.get(p + 1) {
                Some(0) | Some(0xFF) => p += 1,
                Some(&m) if m == 0xD0 + ((first_index + j) & 7) as u8 => {
                    p += 2;
                    break;
                }
                _ => return Err(corrupt("a restart marker out of order")),
            }
        }
    }
    Ok(p)
}

/// The scan's byte at `p` unstuffed (0xFF00 is 0xFF) and how many bytes
/// it takes; a marker there is an error.
fn source_byte(data: &[u8], p: usize) -> Result<(u8, usize)> {
    match data.get(p..p + 2) {
        Some([0xFF, 0]) => Ok((0xFF, 2)),
        Some([0xFF, _]) => Err(corrupt("a marker inside the data")),
        _ => match data.get(p) {
            Some(&b) => Ok((b, 1)),
            None => Err(corrupt("the data ends early")),
        },
    }
}

/// Source bits from `from` to `to` (byte offset in the stuffed data, bits
/// of that byte already taken) onto `w`, unstuffed then stuffed again.
fn copy_bits(w: &mut Writer, data: &[u8], from: (usize, u32), to: (usize, u32)) -> Result<()> {
    let byte = |p: usize| source_byte(data, p);
    let (mut p, taken) = from;
    if (p, taken) >= to {
        return Ok(());
    }
    if p == to.0 {
        // Both ends in one byte (a short run of small MCUs).
        let (b, _) = byte(p)?;
        let k = to.1 - taken;
        w.put((b >> (8 - to.1)) as u32 & ((1 << k) - 1), k);
        return Ok(());
    }
    if taken > 0 {
        let (b, step) = byte(p)?;
        let k = 8 - taken;
        w.put(b as u32 & ((1 << k) - 1), k);
        p += step;
    }
    while p < to.0 {
        if let Some(x) = data.get(p..p + 4).filter(|_| p + 4 <= to.0) {
            let x = u32::from_be_bytes([x[0], x[1], x[2], x[3]]);
            let y = !x;
            // No 0xFF in the four: no stuffing to undo.
            if (y.wrapping_sub(0x0101_0101) & !y & 0x8080_8080) == 0 {
                w.put(x, 32);
                p += 4;
                continue;
            }
        }
        let (b, step) = byte(p)?;
        w.put(b as u32, 8);
        p += step;
    }
    if p != to.0 {
        return Err(corrupt("a bit position inside stuffing"));
    }
    if to.1 > 0 {
        let (b, _) = byte(p)?;
        w.put((b >> (8 - to.1)) as u32, to.1);
    }
    Ok(())
}

/// What [`Plan::splice_band`] made.
pub enum Spliced {
    /// The file.
    Done(Vec<u8>),
    /// The edited band, which the source's tables cannot code (or the scan
    /// after it is not as expected): for [`Plan::transcode_band`], so that
    /// the edit is not done twice.
    Edited(lt::JpegCoefficients, Vec<Vec<u64>>),
}

/// How an edit made one block of the band (see [`Freedom`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// The source's block, untouched.
    Kept,
    /// Coded again from pixels outside every region (in a touched MCU):
    /// coded as the edit left it.
    Coded,
    /// A flat block of the fill (DC only): its DC may move by 2 steps.
    Flat,
    /// Partly in a region: filled whole (flat) where the source's tables
    /// cannot code it, so the region grows to the block grid there.
    Edge,
}

/// What a fill tells [`Plan::splice_band`] of the band it edited.
#[derive(Debug, Clone)]
pub struct Freedom {
    /// Per frame component, one per band block (the band's layout).
    pub made: Vec<Vec<Made>>,
    /// Per frame component: the DC of the fill's flat block.
    pub fill: Vec<i16>,
}

/// The bits of a DC difference `d` with table `t` (`None`: it lacks the category).
fn dc_bits(d: i32, t: &EncodeTable) -> Option<u32> {
    let (s, _) = category(d);
    let size = *t.size.get(s as usize)? as u32;
    (s <= 11 && size > 0).then_some(size + s)
}

/// The bits [`encode_block`] writes for `blk` after DC `prev`; `None` where
/// the tables lack a symbol it needs.
fn block_bits(
    blk: &[i16; 64],
    mask: u64,
    prev: i32,
    dc: &EncodeTable,
    ac: &EncodeTable,
) -> Option<u32> {
    let mut n = dc_bits(blk[0] as i32 - prev, dc)?;
    let have = |sym: usize| (ac.size[sym] > 0).then_some(ac.size[sym] as u32);
    let mut m = mask & !1;
    let mut last = 0u32;
    while m != 0 {
        let k = m.trailing_zeros();
        let mut run = k - last - 1;
        while run > 15 {
            n += have(0xF0)?;
            run -= 16;
        }
        let (s, _) = category(blk[k as usize & 63] as i32);
        if s > 10 {
            return None;
        }
        n += have(((run << 4 | s) & 0xFF) as usize)? + s;
        last = k;
        m &= m - 1;
    }
    if last != 63 {
        n += have(0)?;
    }
    Some(n)
}

/// The source's scan from bit `at` (byte, bits of it read) to bit `to`
/// (the end of its last block), after `w`, which holds as many bits of its
/// last byte: that byte merged (stuffed again if it becomes 0xFF, unstuffed
/// if it no longer is), the whole bytes copied as they are, the bits of the
/// last one put (the writer pads them). What follows the last block (the
/// source's padding, anything hidden there) is not copied.
pub(super) fn copy_rest(
    w: &mut Writer,
    data: &[u8],
    (at, taken): (usize, u32),
    to: (usize, u32),
) -> Result<()> {
    let (bits, n) = w.whole_bytes();
    if n != taken {
        return Err(corrupt("the junction is not on the source's bit"));
    }
    if (at, taken) > to {
        return Err(corrupt("the rest ends before it starts"));
    }
    if (at, taken) == to {
        return Ok(());
    }
    let byte = |p: usize| source_byte(data, p).map(|(b, _)| b);
    if at == to.0 {
        // The end inside the junction byte.
        let k = to.1 - taken;
        w.put((byte(at)? >> (8 - to.1)) as u32 & ((1 << k) - 1), k);
        return Ok(());
    }
    let mut p = at;
    if taken > 0 {
        let b = byte(at)?;
        let merged = (bits << (8 - n)) as u8 | (b & ((1u16 << (8 - n)) - 1) as u8);
        w.out.push(merged);
        if merged == 0xFF {
            w.out.push(0);
        }
        p += 1 + (b == 0xFF) as usize;
    }
    let whole = data
        .get(p..to.0)
        .ok_or_else(|| corrupt("the data ends early"))?;
    w.out.extend_from_slice(whole);
    if to.1 > 0 {
        w.put((byte(to.0)? >> (8 - to.1)) as u32, to.1);
    }
    Ok(())
}

impl Plan<'_> {
    /// Whether every table the scan uses can code any block: DC categories
    /// 0..=11, EOB, ZRL and every AC run/size (as the Annex K tables can).
    /// An edge block of a region can need any symbol, so with a table that
    /// lacks some (an optimised one) the splice would often fail after its
    /// decode, and the caller goes straight to [`Plan::transcode_band`].
    pub fn tables_code_every_symbol(&self) -> bool {
        let has = |spec: (&[u8], &[u8]), mut want: Box<dyn Iterator<Item = u8>>| {
            let n: usize = spec.0.iter().map(|&c| c as usize).sum();
            let symbols = spec.1.get(..n).unwrap_or(spec.1);
            want.all(|s| symbols.contains(&s))
        };
        self.comps.iter().all(|c| {
            let ac = (0u8..16).flat_map(|r| (1u8..=10).map(move |z| (r << 4) | z));
            has(self.specs[c.dc], Box::new(0u8..=11))
                && has(
                    self.specs[c.ac],
                    Box::new([0x00, 0xF0].into_iter().chain(ac)),
                )
        })
    }
}

impl Plan<'_> {
    /// [`Plan::transcode_band`]'s output (the same coefficients in every
    /// block) with the source's tables and, outside the band, its bits.
    /// An error when a symbol the edited band needs is not in the source's
    /// tables or the scan is not as expected: the caller then takes
    /// `transcode_band`.
    ///
    /// When `edit` returns a [`Freedom`] (a fill), its flat blocks' DCs
    /// and edge blocks are settled for the source's tables first (see the
    /// module docs) and, with `copy_tail`, the scan after the band is the
    /// source's bytes as they are, to the end of its last block.
    pub fn splice_band(
        &self,
        rows: std::ops::Range<usize>,
        source: &Jpeg,
        copy_tail: bool,
        edit: impl FnOnce(&mut lt::JpegCoefficients, &mut Vec<Vec<u64>>) -> Result<Option<Freedom>>,
    ) -> Result<Spliced> {
        let rows = rows.start.min(self.mcus_y)..rows.end.min(self.mcus_y);
        if rows.is_empty() {
            return Err(corrupt("an empty band"));
        }
        let ri = self.restart as usize;
        let (first, last) = (rows.start * self.mcus_x, rows.end * self.mcus_x);
        let per_row: Vec<usize> = self
            .frame
            .iter()
            .map(|f| if self.interleaved() { f.2 as usize } else { 1 })
            .collect();
        let enc_tables = self.encode_tables();
        let mut tables = vec![(&enc_tables[0].0, &enc_tables[0].1); self.frame.len()];
        for (c, t) in self.comps.iter().zip(&enc_tables) {
            tables[c.frame_index] = (&t.0, &t.1);
        }
        let hmax = self.frame.iter().map(|c| c.1 as usize).max().unwrap_or(1);
        let vmax = self.frame.iter().map(|c| c.2 as usize).max().unwrap_or(1);
        let mut hidden = Hidden::default();

        // Prefix: from the start of the band's restart interval (or the
        // scan) to the band, stepped over.
        let (base, start) = match first.checked_div(ri) {
            Some(k) => (after_markers(self.data, 0, k, 0)?, k * ri),
            None => (0, 0),
        };
        let data = &self.data[base..];
        let mut r = Reader::new(data);
        let mut pred = [0i32; 4];
        self.walk_range(&mut r, &mut pred, start..first, &mut hidden, &mut Skip)?;
        let (at, taken) = r.position()?;
        let mut enc = Encode {
            w: Writer::new(self.data.len() + self.data.len() / 8 + 4096),
            prev: [0; 4],
            tables,
            data_blocks: data_blocks(&self.frame, (self.width, self.height), (hmax, vmax)),
            dummy: [0; 64],
        };
        // The file in one buffer: the header, then the scan (no copy of it).
        self.write_header(&mut enc.w.out, source)?;
        enc.w.out.extend_from_slice(&self.data[..base + at]);
        if taken > 0 {
            let b = data.get(at).copied().unwrap_or(0);
            enc.w.put((b >> (8 - taken)) as u32, taken);
        }
        for (ci, c) in self.comps.iter().enumerate() {
            enc.prev[c.frame_index] = pred[ci] as i16;
        }

        // The band: decoded, edited, coded.
        let (mut band, mut masks) = self.empty_coefficients(rows.clone())?;
        let row0: Vec<usize> = per_row.iter().map(|p| p * rows.start).collect();
        let mut starts = Vec::with_capacity(last - first + 1);
        self.walk_range(
            &mut r,
            &mut pred,
            first..last,
            &mut hidden,
            &mut BandStore {
                band: &mut band,
                masks: &mut masks,
                row0,
                starts: &mut starts,
            },
        )?;
        // The band read whole (not into zeros past the data's end).
        let end = r.position()?;
        let freedom = edit(&mut band, &mut masks)?;
        let mut copy = false;
        // MCUs of the band whose bits are the source's (none: all coded).
        let mut spans = Vec::new();
        if let Some(freedom) = &freedom {
            let total = self.mcus_x * self.mcus_y;
            if ri == 0 {
                starts.push(end);
                spans = self.untouched(freedom, &enc, rows.clone());
            }
            // The bits of the junction byte: ours before the band, the
            // source's after it.
            let aim = (copy_tail && ri == 0 && last < total).then_some((taken, end.1, pred));
            let copied = (spans.as_slice(), starts.as_slice());
            match self.settle(
                (&mut band, &mut masks),
                freedom,
                &enc,
                rows.clone(),
                aim,
                copied,
            ) {
                Ok(aligned) => copy = aligned,
                Err(_) => return Ok(Spliced::Edited(band, masks)),
            }
        }
        let copied = (spans.as_slice(), starts.as_slice());
        match self.code_band_and_rest(enc, (&band, &masks), r, pred, base, rows, copy, copied) {
            Ok(scan) => {
                let mut out = scan;
                out.extend_from_slice(&[0xFF, 0xD9]);
                Ok(Spliced::Done(out))
            }
            Err(_) => Ok(Spliced::Edited(band, masks)),
        }
    }

    /// The edited band coded after the prefix in `enc`, then the rest of
    /// the scan from `r` (which stands after the band, `pred` its DC
    /// predictors; `base`: where `r`'s data starts in the scan).
    /// With `copy`, the rest after a band that ends in step with the source
    /// (DC predictors, bit offset) is its bytes, not decoded. `spans` (per
    /// band MCU, see [`Plan::untouched`]) and `starts` (where each starts in
    /// the source, then the band's end): MCUs copied as the source's bits.
    #[allow(clippy::too_many_arguments)]
    fn code_band_and_rest(
        &self,
        mut enc: Encode,
        (band, masks): (&lt::JpegCoefficients, &[Vec<u64>]),
        mut r: Reader,
        mut pred: [i32; 4],
        base: usize,
        rows: std::ops::Range<usize>,
        copy: bool,
        (spans, starts): (&[bool], &[(usize, u32)]),
    ) -> Result<Vec<u8>> {
        let ri = self.restart as usize;
        let total = self.mcus_x * self.mcus_y;
        let (first, last) = (rows.start * self.mcus_x, rows.end * self.mcus_x);
        let data = &self.data[base..];
        let mut hidden = Hidden::default();
        let row0: Vec<usize> = self
            .frame
            .iter()
            .map(|f| rows.start * if self.interleaved() { f.2 as usize } else { 1 })
            .collect();
        let mut next = first;
        while next < last {
            let mcu = next;
            next += 1;
            if spans.get(mcu - first) == Some(&true) {
                // Untouched MCUs after untouched ones: the source's bits.
                let a = mcu - first;
                let b = a + spans[a..].iter().take_while(|&&c| c).count();
                let (Some(&from), Some(&to)) = (starts.get(a), starts.get(b)) else {
                    return Err(corrupt("an MCU of the band not found"));
                };
                copy_bits(&mut enc.w, data, from, to)?;
                // The predictors: the last MCU's blocks (the source's).
                let (mx, my) = ((first + b - 1) % self.mcus_x, (first + b - 1) / self.mcus_x);
                for c in &self.comps {
                    let fi = c.frame_index;
                    let comp = &band.components[fi];
                    let (bh, bv) = if self.interleaved() {
                        (c.h, c.v)
                    } else {
                        (1, 1)
                    };
                    let (bx, by) = ((mx + 1) * bh - 1, (my - rows.start + 1) * bv - 1);
                    let dc = comp.blocks.get(by * comp.blocks_x + bx).map(|b| b[0]);
                    enc.prev[fi] = dc.ok_or_else(|| corrupt("a block outside the band"))?;
                }
                next = first + b;
                continue;
            }
            if ri > 0 && mcu > first && mcu.is_multiple_of(ri) {
                enc.restart(((mcu / ri - 1) & 7) as u8);
            }
            let (mx, my) = (mcu % self.mcus_x, mcu / self.mcus_x - rows.start);
            for c in &self.comps {
                let fi = c.frame_index;
                let (bh, bv) = if self.interleaved() {
                    (c.h, c.v)
                } else {
                    (1, 1)
                };
                let comp = &band.components[fi];
                for v in 0..bv {
                    for h in 0..bh {
                        let (bx, by) = (mx * bh + h, my * bv + v);
                        let i = by * comp.blocks_x + bx;
                        let (Some(blk), Some(&mask)) = (comp.blocks.get(i), masks[fi].get(i))
                        else {
                            return Err(corrupt("a block outside the band"));
                        };
                        enc.block(fi, bx, by + row0[fi], blk, mask)?;
                    }
                }
            }
        }

        // After the band: MCUs coded again until the source's bits apply.
        let mut mcu = last;
        loop {
            if mcu == total {
                r.end_interval(None, &mut hidden)?;
                break;
            }
            if ri > 0 && mcu.is_multiple_of(ri) {
                // A restart: the DC predictors start again at 0 on both
                // sides, so the rest is the source's bytes, up to the end of
                // its last block (found by stepping over the last interval).
                let index = ((mcu / ri - 1) & 7) as u8;
                r.end_interval(Some(0xD0 + index), &mut hidden)?;
                let marker = base + r.pos - 2;
                let k_last = (total - 1) / ri;
                let k_here = mcu / ri;
                let last_base = after_markers(self.data, base + r.pos, k_last - k_here, k_here)?;
                let mut rl = Reader::new(&self.data[last_base..]);
                let mut p0 = [0i32; 4];
                self.walk_range(&mut rl, &mut p0, k_last * ri..total, &mut hidden, &mut Skip)?;
                let (end, bits) = rl.position()?;
                rl.end_interval(None, &mut hidden)?;
                enc.w.flush();
                enc.w
                    .out
                    .extend_from_slice(&self.data[marker..last_base + end]);
                if bits > 0 {
                    let b = self.data.get(last_base + end).copied().unwrap_or(0);
                    enc.w.put((b >> (8 - bits)) as u32, bits);
                }
                break;
            }
            let synced = self
                .comps
                .iter()
                .enumerate()
                .all(|(ci, c)| enc.prev[c.frame_index] as i32 == pred[ci]);
            if ri == 0 && synced {
                // Every later block codes as the source coded it.
                // Stepped over to find where the last block ends: the
                // source's padding and anything hidden after it are dropped.
                let from = r.position()?;
                self.walk_range(&mut r, &mut pred, mcu..total, &mut hidden, &mut Skip)?;
                let to = r.position()?;
                r.end_interval(None, &mut hidden)?;
                if copy {
                    copy_rest(&mut enc.w, data, from, to)?;
                } else {
                    copy_bits(&mut enc.w, data, from, to)?;
                }
                break;
            }
            self.walk_range(&mut r, &mut pred, mcu..mcu + 1, &mut hidden, &mut enc)?;
            mcu += 1;
        }
        Ok(enc.w.finish())
    }

    /// Per MCU of the band: whether its bits may be the source's, as
    /// they are (it and the MCU before it in the band untouched, no
    /// padding blocks: the DC predictors agree with the source's).
    fn untouched(
        &self,
        freedom: &Freedom,
        enc: &Encode,
        rows: std::ops::Range<usize>,
    ) -> Vec<bool> {
        let first = rows.start * self.mcus_x;
        let n = rows.len() * self.mcus_x;
        let kept: Vec<bool> = (first..first + n)
            .map(|mcu| {
                let (mx, my) = (mcu % self.mcus_x, mcu / self.mcus_x - rows.start);
                self.comps.iter().all(|c| {
                    let fi = c.frame_index;
                    let (bh, bv) = if self.interleaved() {
                        (c.h, c.v)
                    } else {
                        (1, 1)
                    };
                    let stride = freedom.made[fi].len() / (rows.len() * bv).max(1);
                    let (dx, dy) = enc.data_blocks[fi];
                    (0..bv).all(|v| {
                        (0..bh).all(|h| {
                            let (bx, by) = (mx * bh + h, my * bv + v);
                            bx < dx
                                && by + rows.start * bv < dy
                                && freedom.made[fi].get(by * stride + bx) == Some(&Made::Kept)
                        })
                    })
                })
            })
            .collect();
        (0..n).map(|k| kept[k] && (k == 0 || kept[k - 1])).collect()
    }

    /// Settles a fill's blocks for the source's tables (see the module
    /// docs): edge blocks they cannot code filled whole, each flat block's
    /// DC the fill's or the nearest whose differences they code. With `aim`
    /// (the bits of the band's first byte written before it, those of the
    /// source's byte after it, the source's DC predictors there): also a few
    /// interior flat blocks moved so that the band ends on the source's bit
    /// offset, in step with its predictors; `Ok(true)` when it does.
    fn settle(
        &self,
        (band, masks): (&mut lt::JpegCoefficients, &mut [Vec<u64>]),
        freedom: &Freedom,
        enc: &Encode,
        rows: std::ops::Range<usize>,
        aim: Option<(u32, u32, [i32; 4])>,
        (spans, starts): (&[bool], &[(usize, u32)]),
    ) -> Result<bool> {
        let ri = self.restart as usize;
        let nf = self.frame.len();
        let lacks = || Error::Unsupported("a symbol the Huffman tables do not code".into());
        if freedom.made.len() != nf || freedom.fill.len() != nf || masks.len() != nf {
            return Err(corrupt("a fill of another band"));
        }
        // Each component's band blocks in scan order (index, after a
        // restart); MCU padding blocks (DC as before, no AC) only counted.
        let mut chains: Vec<Vec<(usize, bool, bool)>> = vec![Vec::new(); nf];
        let mut padding = vec![0u64; nf];
        let mut reset = vec![false; nf];
        let first = rows.start * self.mcus_x;
        for mcu in first..rows.end * self.mcus_x {
            if ri > 0 && mcu > first && mcu.is_multiple_of(ri) {
                reset.fill(true);
            }
            let (mx, my) = (mcu % self.mcus_x, mcu / self.mcus_x - rows.start);
            for c in &self.comps {
                let fi = c.frame_index;
                let (bh, bv) = if self.interleaved() {
                    (c.h, c.v)
                } else {
                    (1, 1)
                };
                let row0 = rows.start * bv;
                let (dx, dy) = enc.data_blocks[fi];
                let stride = band.components[fi].blocks_x;
                for v in 0..bv {
                    for h in 0..bh {
                        let (bx, by) = (mx * bh + h, my * bv + v);
                        if bx >= dx || by + row0 >= dy {
                            padding[fi] += 1;
                        } else {
                            let copied = spans.get(mcu - first) == Some(&true);
                            let reset = std::mem::take(&mut reset[fi]);
                            chains[fi].push((by * stride + bx, reset, copied));
                        }
                    }
                }
            }
        }

        // Copied MCUs: their bits modulo 8 (all that matters), from where
        // they start and end in the source.
        let mut bits = 0u64;
        let mut k = 0;
        while k < spans.len() {
            if !spans[k] {
                k += 1;
                continue;
            }
            let b = k + spans[k..].iter().take_while(|&&c| c).count();
            if let (Some(a), Some(z)) = (starts.get(k), starts.get(b)) {
                bits += (8 + z.1 as u64 - a.1 as u64) % 8;
            }
            k = b;
        }
        let mut made = freedom.made.clone();
        let mut end = [0i32; 4];
        for fi in 0..nf {
            let (dct, act) = enc.tables[fi];
            let f = freedom.fill[fi] as i32;
            let (blocks, m, made) = (
                &mut band.components[fi].blocks,
                &mut masks[fi],
                &mut made[fi],
            );
            if made.len() != blocks.len() || m.len() != blocks.len() {
                return Err(corrupt("a fill of another band"));
            }
            let eob = act.size[0] as u32;
            if padding[fi] > 0 {
                let zero = dc_bits(0, dct).filter(|_| eob > 0).ok_or_else(lacks)?;
                bits += padding[fi] * (zero + eob) as u64;
            }
            let chain = &chains[fi];
            let mut prev = enc.prev[fi] as i32;
            for (j, &(i, reset, copied)) in chain.iter().enumerate() {
                if reset {
                    prev = 0;
                }
                if copied {
                    prev = blocks[i][0] as i32;
                    continue;
                }
                // The next block's DC when it is kept (no restart between):
                // the way out of this one must be coded too.
                let next = chain
                    .get(j + 1)
                    .filter(|&&(n, reset, _)| !reset && matches!(made[n], Made::Kept | Made::Coded))
                    .map(|&(n, _, _)| blocks[n][0] as i32);
                let out = |dc: i32| next.is_none_or(|n| dc_bits(n - dc, dct).is_some());
                if made[i] == Made::Edge {
                    let dc = blocks[i][0] as i32;
                    match block_bits(&blocks[i], m[i], prev, dct, act) {
                        Some(b) if out(dc) => {
                            bits += b as u64;
                            prev = dc;
                            continue;
                        }
                        _ => made[i] = Made::Flat,
                    }
                }
                if made[i] == Made::Flat {
                    // The fill's DC, else the nearest whose ways in and out
                    // the table codes (a category it lacks: far from the
                    // fill only next to the run's ends).
                    let pick = (0..=2047).flat_map(|o| [o, -o]).find_map(|o| {
                        let dc = f + o;
                        let b = dc_bits(dc - prev, dct)?;
                        (eob > 0 && (-2047..=2047).contains(&dc) && out(dc))
                            .then_some((dc, b + eob))
                    });
                    let (dc, b) = pick.ok_or_else(lacks)?;
                    blocks[i] = [0; 64];
                    blocks[i][0] = dc as i16;
                    m[i] = 0;
                    bits += b as u64;
                    prev = dc;
                    continue;
                }
                bits += block_bits(&blocks[i], m[i], prev, dct, act).ok_or_else(lacks)? as u64;
                prev = blocks[i][0] as i32;
            }
            end[fi] = prev;
        }

        let Some((taken, target, pred)) = aim else {
            return Ok(false);
        };
        let synced = self
            .comps
            .iter()
            .enumerate()
            .all(|(ci, c)| end[c.frame_index] == pred[ci]);
        if !synced {
            return Ok(false);
        }
        let need = |bits: u64| ((target as u64 + 8 - (taken as u64 + bits) % 8) % 8) as usize;
        if need(bits) == 0 {
            return Ok(true);
        }
        // Moves: k (1..3) consecutive flat blocks of one component at the
        // fill's DC, between two more, offset by `o`: the band's length
        // changes by `delta` bits. The cheapest of each residue per component.
        let mut moves: Vec<(usize, Vec<i32>, i64)> = Vec::new();
        for fi in 0..nf {
            let dct = enc.tables[fi].0;
            let Some(zero) = dc_bits(0, dct) else {
                continue;
            };
            let mut best: [Option<(Vec<i32>, i64)>; 8] = Default::default();
            for k in 1..=3u32 {
                for code in 0..4usize.pow(k) {
                    let o: Vec<i32> = (0..k)
                        .map(|t| [-1, 1, -2, 2][code / 4usize.pow(t) % 4])
                        .collect();
                    let mut prev = 0;
                    let delta: Option<i64> = o.iter().chain([0].iter()).try_fold(0, |d, &x| {
                        let b = dc_bits(x - prev, dct)?;
                        prev = x;
                        Some(d + b as i64 - zero as i64)
                    });
                    let Some(delta) = delta else {
                        continue;
                    };
                    let slot = &mut best[delta.rem_euclid(8) as usize];
                    if slot.is_none() {
                        *slot = Some((o, delta));
                    }
                }
            }
            for (o, delta) in best.into_iter().skip(1).flatten() {
                moves.push((fi, o, delta));
            }
        }
        // Fewest moves to the residue needed: breadth first.
        let want = need(bits);
        let mut from: [Option<(usize, usize)>; 8] = [None; 8];
        let mut seen = [false; 8];
        seen[0] = true;
        let mut frontier = vec![0usize];
        while !seen[want] && !frontier.is_empty() {
            let mut next = Vec::new();
            for &r in &frontier {
                for (mi, mv) in moves.iter().enumerate() {
                    let q = (r + mv.2.rem_euclid(8) as usize) % 8;
                    if !seen[q] {
                        seen[q] = true;
                        from[q] = Some((mi, r));
                        next.push(q);
                    }
                }
            }
            frontier = next;
        }
        let mut plan = Vec::new();
        let mut r = want;
        while r != 0 {
            let Some((mi, back)) = from[r] else {
                return Ok(false);
            };
            plan.push(mi);
            r = back;
        }
        // Places: runs of flat blocks at the fill's DC, a cursor on each
        // component's (a pattern, then its right neighbour as the next
        // left one).
        let mut cursor = vec![0usize; nf];
        for mi in plan {
            let (fi, o, delta) = &moves[mi];
            let (fi, k) = (*fi, o.len());
            let f = freedom.fill[fi];
            let chain = &chains[fi];
            let blocks = &mut band.components[fi].blocks;
            let still = |j: usize| {
                chain.get(j).is_some_and(|&(i, reset, _)| {
                    made[fi][i] == Made::Flat && blocks[i][0] == f && !(reset && ri > 0)
                })
            };
            let mut at = cursor[fi];
            while at + k + 1 < chain.len() && !(at..=at + k + 1).all(&still) {
                at += 1;
            }
            if at + k + 1 >= chain.len() {
                return Ok(false);
            }
            for (t, &x) in o.iter().enumerate() {
                blocks[chain[at + 1 + t].0][0] = f + x as i16;
            }
            bits = (bits as i64 + delta) as u64;
            cursor[fi] = at + k + 1;
        }
        Ok(need(bits) == 0)
    }

    /// SOI, the source's JFIF and Adobe segments, then the tables the scan
    /// uses in their own slots, the frame, the restart interval, the scan
    /// header: what the source's scan needs to decode as it did.
    fn write_header(&self, out: &mut Vec<u8>, source: &Jpeg) -> Result<()> {
        out.extend_from_slice(&[0xFF, 0xD8]);
        let mut sof = 0xC0;
        for seg in &source.segments {
            match seg.marker {
                0xE0 | 0xEE => {
                    out.extend_from_slice(&seg.raw[seg.raw.len() - seg.payload.len() - 4..])
                }
                0xC0 | 0xC1 => sof = seg.marker,
                _ => {}
            }
        }
        let mut written = [false; 4];
        for &(_, _, _, tq) in &self.frame {
            let slot = tq as usize & 3;
            let q = self.quant[slot]
                .ok_or_else(|| corrupt(format!("quantization table {tq} is not defined")))?;
            if !std::mem::replace(&mut written[slot], true) {
                lt::encode::marker_writer::write_dqt(out, slot as u8, &q);
            }
        }
        out.extend_from_slice(&[0xFF, sof]);
        out.extend_from_slice(&((8 + 3 * self.frame.len()) as u16).to_be_bytes());
        out.push(8);
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.width.to_be_bytes());
        out.push(self.frame.len() as u8);
        for &(id, h, v, tq) in &self.frame {
            out.extend_from_slice(&[id, h << 4 | v, tq]);
        }
        let mut dht = [[false; 4]; 2];
        for c in &self.comps {
            for (class, slot, t) in [(0u8, c.dc_slot, c.dc), (1, c.ac_slot, c.ac)] {
                if std::mem::replace(&mut dht[class as usize][slot as usize & 3], true) {
                    continue;
                }
                let (counts, symbols) = self.specs[t];
                out.extend_from_slice(&[0xFF, 0xC4]);
                out.extend_from_slice(&((3 + 16 + symbols.len()) as u16).to_be_bytes());
                out.push(class << 4 | (slot & 3));
                out.extend_from_slice(counts);
                out.extend_from_slice(symbols);
            }
        }
        if self.restart > 0 {
            out.extend_from_slice(&[0xFF, 0xDD, 0, 4]);
            out.extend_from_slice(&self.restart.to_be_bytes());
        }
        out.extend_from_slice(&[0xFF, 0xDA]);
        out.extend_from_slice(&((6 + 2 * self.comps.len()) as u16).to_be_bytes());
        out.push(self.comps.len() as u8);
        for c in &self.comps {
            out.extend_from_slice(&[self.frame[c.frame_index].0, c.dc_slot << 4 | c.ac_slot]);
        }
        out.extend_from_slice(&[0, 63, 0]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{jpeg, Limits};
    use crate::test_util::fixture;

    type Edit = Box<dyn FnOnce(&mut lt::JpegCoefficients, &mut Vec<Vec<u64>>) -> Result<()>>;

    /// An edit that says nothing of the blocks it made (no [`Freedom`]).
    fn plain(
        f: impl FnOnce(&mut lt::JpegCoefficients, &mut Vec<Vec<u64>>) -> Result<()> + 'static,
    ) -> impl FnOnce(&mut lt::JpegCoefficients, &mut Vec<Vec<u64>>) -> Result<Option<Freedom>> {
        let f: Edit = Box::new(f);
        move |b, m| f(b, m).map(|()| None)
    }

    fn photo(w: usize, h: usize, s: lt::Subsampling, restart: bool, optimize: bool) -> Vec<u8> {
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i * 7 + (i / (3 * w)) * 13) % 251) as u8 ^ (i % 3 * 40) as u8)
            .collect();
        let mut e = lt::Encoder::new(&rgb, w, h, lt::PixelFormat::Rgb)
            .quality(90)
            .subsampling(s)
            .optimize_huffman(optimize);
        if restart {
            e = e.restart_rows(1);
        }
        e.encode().expect("encodes")
    }

    #[test]
    fn copy_bits_copies_any_span_even_within_one_byte() {
        // 0xFF 0x00 is one stuffed byte: the bits are 0xA5 0xFF 0x3C 0x81.
        let data = [0xA5, 0xFF, 0x00, 0x3C, 0x81];
        let (bits, at): (Vec<bool>, Vec<(usize, u32)>) = {
            let (bytes, starts) = ([0xA5u8, 0xFF, 0x3C, 0x81], [0usize, 1, 3, 4]);
            let mut bits = Vec::new();
            let mut at = Vec::new();
            for (b, s) in bytes.iter().zip(starts) {
                for i in 0..8 {
                    bits.push(b >> (7 - i) & 1 == 1);
                    at.push((s, i as u32));
                }
            }
            at.push((5, 0));
            (bits, at)
        };
        for i in 0..=bits.len() {
            for j in i..=bits.len() {
                let mut w = Writer::new(16);
                copy_bits(&mut w, &data, at[i], at[j]).expect("a span of whole data");
                let want: Vec<bool> = bits[i..j].to_vec();
                let n = want.len() as u32;
                // Pad to bytes with ones as the writer does, then compare.
                w.flush();
                let mut got = Vec::new();
                let mut k = 0;
                while k < w.out.len() {
                    let b = w.out[k];
                    for t in 0..8 {
                        got.push(b >> (7 - t) & 1 == 1);
                    }
                    k += if b == 0xFF { 2 } else { 1 };
                }
                assert_eq!(&got[..n as usize], &want[..], "span {i}..{j}");
                assert!(
                    got[n as usize..].iter().all(|&b| b),
                    "span {i}..{j}: padding"
                );
            }
        }
    }

    #[test]
    fn only_tables_that_code_every_symbol_take_the_splice() {
        let plan_of = |bytes: &[u8]| {
            let j = jpeg::parse(bytes, &Limits::default()).expect("parses");
            Plan::new(&j)
                .expect("plans")
                .expect("baseline")
                .tables_code_every_symbol()
        };
        let s = lt::Subsampling::S420;
        assert!(
            plan_of(&photo(64, 64, s, false, false)),
            "the Annex K tables"
        );
        assert!(!plan_of(&photo(64, 64, s, false, true)), "optimised tables");
    }

    fn inputs() -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = [
            "jpeg_icc.jpg",
            "jpeg_restart.jpg",
            "jpeg_gray.jpg",
            "jpeg_full.jpg",
            "jpeg_cmyk.jpg",
        ]
        .iter()
        .map(|n| (n.to_string(), fixture(&format!("dirty/{n}"))))
        .collect();
        for (s, name) in [
            (lt::Subsampling::S420, "420"),
            (lt::Subsampling::S444, "444"),
        ] {
            for restart in [false, true] {
                v.push((
                    format!("{name} 333x250 restart {restart}"),
                    photo(333, 250, s, restart, false),
                ));
            }
        }
        v
    }

    /// A region edit's stand-in: the blocks of the band's middle MCU row in
    /// the left third become flat (a new DC, no AC), the rest as decoded.
    #[allow(clippy::ptr_arg)] // the shape of the edit closure
    fn flatten(band: &mut lt::JpegCoefficients, masks: &mut Vec<Vec<u64>>) -> Result<()> {
        let vmax = band
            .components
            .iter()
            .map(|c| c.v_sampling)
            .max()
            .unwrap_or(1) as usize;
        let rows = band.height.div_ceil(8 * vmax as u16) as usize;
        for (c, m) in band.components.iter_mut().zip(masks.iter_mut()) {
            let per = c.blocks_y / rows.max(1);
            let mid = rows / 2 * per;
            for by in mid..(mid + per).min(c.blocks_y) {
                for bx in 0..c.blocks_x / 3 + 1 {
                    let i = by * c.blocks_x + bx;
                    c.blocks[i] = [0; 64];
                    c.blocks[i][0] = 37 - (bx % 5) as i16 * 20;
                    m[i] = 0;
                }
            }
        }
        Ok(())
    }

    fn picture(bytes: &[u8]) -> Vec<Vec<[i16; 64]>> {
        let j = jpeg::parse(bytes, &Limits::default()).expect("parses");
        let plan = Plan::new(&j).expect("plans").expect("baseline");
        let (c, _) = plan.coefficients().expect("decodes");
        let (w, h) = (c.width as usize, c.height as usize);
        let hmax = c.components.iter().map(|c| c.h_sampling).max().unwrap_or(1) as usize;
        let vmax = c.components.iter().map(|c| c.v_sampling).max().unwrap_or(1) as usize;
        c.components
            .iter()
            .map(|comp| {
                let bx = (w * comp.h_sampling as usize).div_ceil(hmax * 8);
                let by = (h * comp.v_sampling as usize).div_ceil(vmax * 8);
                (0..by)
                    .flat_map(|y| (0..bx).map(move |x| (x, y)))
                    .map(|(x, y)| comp.blocks[y * comp.blocks_x + x])
                    .collect()
            })
            .collect()
    }

    /// Decodes with libjpeg's djpeg when it is installed: no warning.
    fn djpeg_clean(bytes: &[u8], what: &str) {
        // One folder a call: the tests run in parallel.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("photodeid-band-{}-{call}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let f = dir.join("t.jpg");
        std::fs::write(&f, bytes).expect("writes");
        let o = std::process::Command::new("djpeg")
            .arg("-outfile")
            .arg(dir.join("t.ppm"))
            .arg(&f)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let Ok(o) = o else {
            return;
        };
        if !o.status.success() {
            let _ = std::fs::write("/tmp/fillsplice-fail.jpg", bytes);
        }
        assert!(
            o.status.success(),
            "{what}: djpeg failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    #[test]
    fn splice_gives_the_transcodes_coefficients() {
        for (name, bytes) in inputs() {
            let j = jpeg::parse(&bytes, &Limits::default()).expect("parses");
            let plan = Plan::new(&j).expect("plans").expect("baseline");
            let n = plan.mcus_y;
            // Top edge, bottom edge, everything, one row, the middle.
            let bands = [0..2, n - 2..n, 0..n, n / 2..n / 2 + 1, 1..n - 1];
            for rows in bands {
                let what = format!("{name} rows {rows:?}");
                let spliced = match plan.splice_band(rows.clone(), &j, false, plain(flatten)) {
                    Ok(Spliced::Done(out)) => out,
                    Ok(Spliced::Edited(..)) => panic!("{what}: not spliced"),
                    Err(e) => panic!("{what}: {e}"),
                };
                let coded = plan
                    .transcode_band(rows.clone(), &j, flatten)
                    .expect("codes");
                assert_eq!(picture(&spliced), picture(&coded), "{what}");
                assert_ne!(picture(&spliced), picture(&bytes), "{what}: nothing edited");
                djpeg_clean(&spliced, &what);
                // Rows before the band: the source's bytes.
                if rows.start > 0 {
                    let head = &plan.data[..16];
                    assert!(spliced.windows(16).any(|w| w == head), "{what}: no prefix");
                }
            }
        }
    }

    /// A fill's stand-in: the left half of the band's middle MCU row flat
    /// (at the DC its first block had, so the tables code the way in), the
    /// block after it in each block row an edge left as decoded.
    #[allow(clippy::ptr_arg)] // the shape of the edit closure
    fn fill_left_half(
        band: &mut lt::JpegCoefficients,
        masks: &mut Vec<Vec<u64>>,
    ) -> Result<Option<Freedom>> {
        let vmax = band
            .components
            .iter()
            .map(|c| c.v_sampling)
            .max()
            .unwrap_or(1) as usize;
        let rows = band.height.div_ceil(8 * vmax as u16) as usize;
        let (mut made, mut fill) = (Vec::new(), Vec::new());
        for (c, m) in band.components.iter_mut().zip(masks.iter_mut()) {
            let per = c.blocks_y / rows.max(1);
            let mid = rows / 2 * per;
            let f = c.blocks[mid * c.blocks_x][0];
            let mut k = vec![Made::Kept; c.blocks.len()];
            for by in mid..(mid + per).min(c.blocks_y) {
                for bx in 0..c.blocks_x / 2 {
                    let i = by * c.blocks_x + bx;
                    c.blocks[i] = [0; 64];
                    c.blocks[i][0] = f;
                    m[i] = 0;
                    k[i] = Made::Flat;
                }
                k[by * c.blocks_x + c.blocks_x / 2] = Made::Edge;
            }
            made.push(k);
            fill.push(f);
        }
        Ok(Some(Freedom { made, fill }))
    }

    /// `out` against `src` after [`fill_left_half`] on `rows`: the source's
    /// blocks outside the fill, flat blocks within 2 DC steps of it inside,
    /// the edge blocks as they were or filled whole.
    fn check_fill(plan: &Plan, src: &[u8], out: &[u8], rows: &std::ops::Range<usize>, what: &str) {
        let (a, b) = (picture(src), picture(out));
        let n_rows = rows.len();
        let mut flat = 0;
        for (fi, (pa, pb)) in a.iter().zip(&b).enumerate() {
            let (per, bw) = if plan.interleaved() {
                (
                    plan.frame[fi].2 as usize,
                    plan.mcus_x * plan.frame[fi].1 as usize,
                )
            } else {
                (1, plan.mcus_x)
            };
            let stride = plan
                .comps
                .iter()
                .find(|c| c.frame_index == fi)
                .map_or(1, |c| c.blocks_x);
            let mid = (rows.start + n_rows / 2) * per;
            let f = pa[mid * stride][0] as i32;
            for (i, (x, y)) in pa.iter().zip(pb).enumerate() {
                let (bx, by) = (i % stride, i / stride);
                let in_row = (mid..mid + per).contains(&by);
                let dc_only = y[1..].iter().all(|&v| v == 0);
                let is_flat = dc_only && (y[0] as i32 - f).abs() <= 2;
                // Further off only at the fill's ends (a category the
                // table lacks on the way in or out).
                let at_end = bx == 0 || bx + 1 >= bw / 2;
                if in_row && bx < bw / 2 {
                    assert!(
                        is_flat || dc_only && at_end,
                        "{what}: component {fi} block {bx},{by} not the fill"
                    );
                    flat += 1;
                } else if in_row && bx == bw / 2 {
                    assert!(x == y || dc_only, "{what}: edge {fi} {bx},{by}");
                } else {
                    assert_eq!(x, y, "{what}: component {fi} block {bx},{by} changed");
                }
            }
        }
        assert!(flat > 0, "{what}: nothing filled");
    }

    /// The bands as the region edit takes them (a row each side of the
    /// edit) and at the picture's edges.
    fn fill_bands(n: usize) -> Vec<std::ops::Range<usize>> {
        vec![0..3, n / 2 - 1..n / 2 + 2, n - 3..n, 0..n]
    }

    #[test]
    fn a_fill_splices_any_tables_and_keeps_every_other_block() {
        let mut v = inputs();
        for (s, name) in [
            (lt::Subsampling::S420, "420"),
            (lt::Subsampling::S444, "444"),
        ] {
            for restart in [false, true] {
                v.push((
                    format!("{name} optimised restart {restart}"),
                    photo(333, 250, s, restart, true),
                ));
            }
        }
        let (mut spliced, mut optimised) = (0, 0);
        for (name, bytes) in v {
            let j = jpeg::parse(&bytes, &Limits::default()).expect("parses");
            let plan = Plan::new(&j).expect("plans").expect("baseline");
            for rows in fill_bands(plan.mcus_y) {
                let what = format!("{name} rows {rows:?}");
                let out = match plan.splice_band(rows.clone(), &j, true, fill_left_half) {
                    Ok(Spliced::Done(out)) => {
                        spliced += 1;
                        optimised += !plan.tables_code_every_symbol() as usize;
                        out
                    }
                    Ok(Spliced::Edited(band, masks)) => {
                        // Only tables that lack a symbol the band needs.
                        assert!(!plan.tables_code_every_symbol(), "{what}: not spliced");
                        plan.transcode_band(rows.clone(), &j, move |b, m| {
                            *b = band;
                            *m = masks;
                            Ok(())
                        })
                        .expect("codes")
                    }
                    Err(e) => panic!("{what}: {e}"),
                };
                check_fill(&plan, &bytes, &out, &rows, &what);
                djpeg_clean(&out, &what);
            }
        }
        assert!(spliced >= 40, "{spliced} spliced");
        assert!(optimised >= 8, "{optimised} with optimised tables spliced");
    }

    /// Bytes after the last block are dropped whether the rest is copied as
    /// bytes (`copy_tail`, its length matched) or as shifted bits: a region
    /// edit, unlike the lossless strip, never passes them on.
    #[test]
    fn what_follows_the_last_block_is_dropped_either_way() {
        for optimise in [false, true] {
            let clean = photo(333, 250, lt::Subsampling::S420, false, optimise);
            // Three bytes between the last block and EOI.
            let end = clean.len() - 2;
            let bytes = [&clean[..end], &[0x12, 0x34, 0x56], &clean[end..]].concat();
            let j = jpeg::parse(&bytes, &Limits::default()).expect("parses");
            let plan = Plan::new(&j).expect("plans").expect("baseline");
            assert_eq!(plan.audit().expect("walks").tail, 3);
            let rows = 4..7;
            for copy_tail in [true, false] {
                let what = format!("optimised {optimise} copy_tail {copy_tail}");
                let Ok(Spliced::Done(out)) =
                    plan.splice_band(rows.clone(), &j, copy_tail, fill_left_half)
                else {
                    panic!("{what}: not spliced");
                };
                check_fill(&plan, &bytes, &out, &rows, &what);
                djpeg_clean(&out, &what);
                let oj = jpeg::parse(&out, &Limits::default()).expect("parses");
                let op = Plan::new(&oj).expect("plans").expect("baseline");
                assert_eq!(op.audit().expect("walks").tail, 0, "{what}");
                if copy_tail {
                    // The source's bytes after the band, as they were, up to
                    // its last block.
                    let n = clean.len() / 4;
                    let (ours, theirs) = (&out[out.len() - n..], &clean[clean.len() - n..]);
                    assert_eq!(ours[..n - 4], theirs[..n - 4], "{what}");
                }
            }
        }
    }

    /// The junction byte: our high bits over the source's low ones, 0xFF
    /// stuffed where it becomes one, unstuffed where it no longer is.
    #[test]
    fn the_junction_byte_is_stuffed_as_it_must_be() {
        let run = |bits: u32, n: u32, data: &[u8], taken: u32| -> Result<Vec<u8>> {
            let mut w = Writer::new(16);
            w.out.push(0x42);
            w.put(bits, n);
            copy_rest(&mut w, data, (0, taken), (data.len(), 0))?;
            Ok(w.finish())
        };
        let tail = [0x12, 0x34];
        let with = |head: &[u8]| [head, &tail].concat();
        // A source 0xFF (stuffed) under ones: still 0xFF, still stuffed.
        assert_eq!(
            run(0b111, 3, &with(&[0xFF, 0]), 3).unwrap(),
            [0x42, 0xFF, 0, 0x12, 0x34]
        );
        // Under other bits: no longer 0xFF, its 0x00 dropped.
        assert_eq!(
            run(0b101, 3, &with(&[0xFF, 0]), 3).unwrap(),
            [0x42, 0xBF, 0x12, 0x34]
        );
        // A byte that becomes 0xFF: stuffed.
        assert_eq!(
            run(0b111, 3, &with(&[0x1F]), 3).unwrap(),
            [0x42, 0xFF, 0, 0x12, 0x34]
        );
        assert_eq!(
            run(0b010, 3, &with(&[0x1F]), 3).unwrap(),
            [0x42, 0x5F, 0x12, 0x34]
        );
        // On a byte boundary: the source's bytes from there, as they are.
        assert_eq!(
            run(0, 0, &with(&[0xFF, 0]), 0).unwrap(),
            [0x42, 0xFF, 0, 0x12, 0x34]
        );
        // Not on the source's bit, or a marker at the junction: errors.
        assert!(run(0b11, 2, &with(&[0x1F]), 3).is_err());
        assert!(run(0b111, 3, &[0xFF, 0xD9], 3).is_err());
        assert!(run(0b111, 3, &[], 3).is_err());

        // Whole files: bands ending wherever the source has a 0xFF at the
        // junction byte.
        let mut found = 0;
        for (w, s) in [
            (48, lt::Subsampling::S420),
            (40, lt::Subsampling::S444),
            (56, lt::Subsampling::S420),
        ] {
            // Noise: coded bytes as good as random, some of them 0xFF.
            let mut x = 0x9E37_79B9u32;
            let rgb: Vec<u8> = (0..w * 4000 * 3)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 24) as u8
                })
                .collect();
            let bytes = lt::Encoder::new(&rgb, w, 4000, lt::PixelFormat::Rgb)
                .quality(90)
                .subsampling(s)
                .optimize_huffman(true)
                .encode()
                .expect("encodes");
            // Bytes after the last block: never in the output.
            let end = bytes.len() - 2;
            let bytes = [&bytes[..end], &[0x12, 0x34, 0x56], &bytes[end..]].concat();
            let j = jpeg::parse(&bytes, &Limits::default()).expect("parses");
            let plan = Plan::new(&j).expect("plans").expect("baseline");
            let mut r = Reader::new(plan.data);
            let mut pred = [0i32; 4];
            for row in 1..plan.mcus_y - 1 {
                let mcus = (row - 1) * plan.mcus_x..row * plan.mcus_x;
                plan.walk_range(&mut r, &mut pred, mcus, &mut Hidden::default(), &mut Skip)
                    .expect("walks");
                let (at, taken) = r.position().expect("in the data");
                if row < 3 || plan.data[at] != 0xFF || taken == 0 {
                    continue;
                }
                found += 1;
                let rows = row - 3..row;
                let what = format!("{w} wide, band {rows:?}");
                let Ok(Spliced::Done(out)) =
                    plan.splice_band(rows.clone(), &j, true, fill_left_half)
                else {
                    panic!("{what}: not spliced");
                };
                check_fill(&plan, &bytes, &out, &rows, &what);
                let oj = jpeg::parse(&out, &Limits::default()).expect("parses");
                let op = Plan::new(&oj).expect("plans").expect("baseline");
                assert_eq!(op.audit().expect("walks").tail, 0, "{what}: copied");
            }
        }
        assert!(found > 0, "no junction on a 0xFF byte");
    }

    #[test]
    fn a_symbol_the_source_tables_lack_is_an_error() {
        // Optimized tables of a flat picture code little beyond its DC.
        let rgb = vec![128u8; 64 * 64 * 3];
        let flat = lt::Encoder::new(&rgb, 64, 64, lt::PixelFormat::Rgb)
            .quality(90)
            .optimize_huffman(true)
            .encode()
            .expect("encodes");
        let j = jpeg::parse(&flat, &Limits::default()).expect("parses");
        let plan = Plan::new(&j).expect("plans").expect("baseline");
        let busy = |band: &mut lt::JpegCoefficients, masks: &mut Vec<Vec<u64>>| {
            band.components[0].blocks[0][9] = 5;
            masks[0][0] |= 1 << 9;
            Ok(())
        };
        let Ok(Spliced::Edited(done, done_masks)) = plan.splice_band(1..3, &j, false, plain(busy))
        else {
            panic!("spliced with a symbol its tables lack");
        };
        // The fallback as the region edit takes it: the band edited once.
        let coded = plan
            .transcode_band(1..3, &j, move |band, masks| {
                *band = done;
                *masks = done_masks;
                Ok(())
            })
            .expect("codes");
        let blocks = picture(&coded);
        let mcus_x = 64usize.div_ceil(16);
        assert_eq!(blocks[0][2 * mcus_x * 2][9], 5);
    }

    #[test]
    fn damaged_scans_are_errors_not_panics() {
        let bytes = photo(96, 80, lt::Subsampling::S420, false, false);
        let j = jpeg::parse(&bytes, &Limits::default()).expect("parses");
        let plan = Plan::new(&j).expect("plans").expect("baseline");
        let data = plan.data;
        for cut in [1, data.len() / 3, data.len() / 2, data.len() - 2] {
            let mut p = Plan::new(&j).expect("plans").expect("baseline");
            p.data = &data[..cut];
            let _ = p.splice_band(1..2, &j, false, plain(flatten));
        }
        let mut noisy = data.to_vec();
        for (i, b) in noisy.iter_mut().enumerate() {
            if i % 97 == 5 && *b != 0xFF {
                *b ^= 0x5A;
            }
        }
        let mut p = Plan::new(&j).expect("plans").expect("baseline");
        p.data = &noisy;
        let _ = p.splice_band(1..3, &j, false, plain(flatten));
        for copy_tail in [false, true] {
            let _ = p.splice_band(1..4, &j, copy_tail, fill_left_half);
        }

        // A fill whose band the data ends in: an error, with or without the
        // copy of the tail.
        let mut r = Reader::new(data);
        let mut pred = [0i32; 4];
        let band_end = 4 * plan.mcus_x;
        plan.walk_range(
            &mut r,
            &mut pred,
            0..band_end,
            &mut Hidden::default(),
            &mut Skip,
        )
        .expect("walks");
        let (end, _) = r.position().expect("in the data");
        for cut in [1, end / 2, end - 1] {
            let mut p = Plan::new(&j).expect("plans").expect("baseline");
            p.data = &data[..cut];
            for copy_tail in [false, true] {
                let got = p.splice_band(1..4, &j, copy_tail, fill_left_half);
                assert!(got.is_err(), "cut at {cut} of {end}: no error");
            }
        }
    }
}
