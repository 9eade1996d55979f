//! The region edit at less than a transcode's cost: the scan keeps the
//! source's Huffman tables, so every block outside the edited MCU rows
//! keeps its bits.
//!
//! ```text
//! prefix (rows before the band): decoded only to find where the band
//!   starts (bit position, DC predictors), its bytes copied as they are
//! band: decoded, edited, coded with the source's tables
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

use super::*;

/// Stores the band's blocks (the band's first MCU row at block row 0).
struct BandStore<'p> {
    band: &'p mut lt::JpegCoefficients,
    masks: &'p mut [Vec<u64>],
    /// First block row of the band, per frame component.
    row0: Vec<usize>,
}

impl Sink for BandStore<'_> {
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

/// Steps over blocks: bits and DC predictors only.
struct Skip;

impl Sink for Skip {
    const KEEP: bool = false;
    fn block(&mut self, _: usize, _: usize, _: usize, _: &[i16; 64], _: u64) -> Result<()> {
        Ok(())
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

/// Source bits from `from` to `to` (byte offset in the stuffed data, bits
/// of that byte already taken) onto `w`, unstuffed then stuffed again.
fn copy_bits(w: &mut Writer, data: &[u8], from: (usize, u32), to: (usize, u32)) -> Result<()> {
    let byte = |p: usize| -> Result<(u8, usize)> {
        match data.get(p..p + 2) {
            Some([0xFF, 0]) => Ok((0xFF, 2)),
            Some([0xFF, _]) => Err(corrupt("a marker inside the data")),
            _ => match data.get(p) {
                Some(&b) => Ok((b, 1)),
                None => Err(corrupt("the data ends early")),
            },
        }
    };
    let (mut p, taken) = from;
    if (p, taken) >= to {
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
    pub fn splice_band(
        &self,
        rows: std::ops::Range<usize>,
        source: &Jpeg,
        edit: impl FnOnce(&mut lt::JpegCoefficients, &mut Vec<Vec<u64>>) -> Result<()>,
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
        let enc_tables: Vec<(EncodeTable, EncodeTable)> = self
            .comps
            .iter()
            .map(|c| {
                let (dc, ac) = (self.specs[c.dc], self.specs[c.ac]);
                (
                    EncodeTable::from_counts(dc.0, dc.1),
                    EncodeTable::from_counts(ac.0, ac.1),
                )
            })
            .collect();
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
            w: Writer::new(self.data.len() + self.data.len() / 8 + 1024),
            prev: [0; 4],
            tables,
            data_blocks: data_blocks(&self.frame, (self.width, self.height), (hmax, vmax)),
            dummy: [0; 64],
        };
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
        self.walk_range(
            &mut r,
            &mut pred,
            first..last,
            &mut hidden,
            &mut BandStore {
                band: &mut band,
                masks: &mut masks,
                row0,
            },
        )?;
        edit(&mut band, &mut masks)?;
        match self.code_band_and_rest(enc, (&band, &masks), r, pred, base, rows) {
            Ok(scan) => {
                let mut out = Vec::with_capacity(scan.len() + 2048);
                self.write_header(&mut out, source)?;
                out.extend_from_slice(&scan);
                out.extend_from_slice(&[0xFF, 0xD9]);
                Ok(Spliced::Done(out))
            }
            Err(_) => Ok(Spliced::Edited(band, masks)),
        }
    }

    /// The edited band coded after the prefix in `enc`, then the rest of
    /// the scan from `r` (which stands after the band, `pred` its DC
    /// predictors; `base`: where `r`'s data starts in the scan).
    fn code_band_and_rest(
        &self,
        mut enc: Encode,
        (band, masks): (&lt::JpegCoefficients, &[Vec<u64>]),
        mut r: Reader,
        mut pred: [i32; 4],
        base: usize,
        rows: std::ops::Range<usize>,
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
        for mcu in first..last {
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
                let from = r.position()?;
                self.walk_range(&mut r, &mut pred, mcu..total, &mut hidden, &mut Skip)?;
                let to = r.position()?;
                r.end_interval(None, &mut hidden)?;
                copy_bits(&mut enc.w, data, from, to)?;
                break;
            }
            self.walk_range(&mut r, &mut pred, mcu..mcu + 1, &mut hidden, &mut enc)?;
            mcu += 1;
        }
        Ok(enc.w.finish())
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
        let dir = std::env::temp_dir().join(format!("photodeid-band-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let f = dir.join("t.jpg");
        std::fs::write(&f, bytes).expect("writes");
        let Ok(o) = std::process::Command::new("djpeg")
            .arg("-outfile")
            .arg(dir.join("t.ppm"))
            .arg(&f)
            .output()
        else {
            return;
        };
        assert!(o.status.success(), "{what}: djpeg failed");
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
                let spliced = match plan.splice_band(rows.clone(), &j, flatten) {
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
        let Ok(Spliced::Edited(done, done_masks)) = plan.splice_band(1..3, &j, busy) else {
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
            let _ = p.splice_band(1..2, &j, flatten);
        }
        let mut noisy = data.to_vec();
        for (i, b) in noisy.iter_mut().enumerate() {
            if i % 97 == 5 && *b != 0xFF {
                *b ^= 0x5A;
            }
        }
        let mut p = Plan::new(&j).expect("plans").expect("baseline");
        p.data = &noisy;
        let _ = p.splice_band(1..3, &j, flatten);
    }
}
