//! Sequential Huffman JPEG scans, block by block: one decoder and one
//! encoder shared by `--thorough`, `check --thorough` and the DCT-domain
//! region edit.
//!
//! ```text
//! entropy-coded data ──► Huffman decode (the source's tables) ──► block
//!   (quantized coefficients, zigzag, + mask of nonzero AC) ──► Huffman
//!   encode (the standard Annex K tables) ──► entropy-coded data
//! ```
//!
//! Why our own code and not libjpeg-turbo-rs' `read_coefficients` /
//! `write_coefficients`: the decoder here knows where the picture ends, so
//! it can say what a scan carries beyond it (bytes after the last block or
//! before a restart marker, padding bits that are not ones, blocks coded
//! with redundant symbols), which `check --thorough` reports; and the
//! transcode streams one block at a time from decoder to encoder, without
//! the whole-image coefficient buffer, in one pass. The output is
//! canonical by construction: the encoder only sees the coefficients, so
//! nothing of how the source coded them can come through.
//!
//! Scope: 8-bit sequential Huffman (SOF0, SOF1) files with one scan holding
//! every component, the form cameras, phones and editors write. Anything
//! else is `Ok(None)`: progressive and multi-scan files go to [`scans`]
//! (every scan into a coefficient buffer), the rest (arithmetic coding) to
//! libjpeg-turbo-rs.

use crate::container::jpeg::Jpeg;
use crate::error::{Error, Result};
use crate::metadata::{human_bytes, Category, Finding};
use libjpeg_turbo_rs as lt;

mod band;
pub mod rows;
pub use band::{Freedom, Made, Spliced};
pub mod scans;

const LOOK: u32 = 9;
/// Bits of the AC step-over table: a code and its value bits together.
const SKIP: u32 = 11;
/// [`DecodeTable::skip`] flags: the symbol ends the block, or is ZRL.
const SKIP_EOB: u16 = 0x40;
const SKIP_ZRL: u16 = 0x20;

/// `ZIGZAG[k]`: the row-major position of the k-th coefficient in zigzag order.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

fn corrupt(why: impl Into<String>) -> Error {
    Error::malformed("JPEG", format!("compressed data: {}", why.into()))
}

/// A Huffman table for decoding: a 9-bit lookahead, then canonical ranges.
struct DecodeTable {
    /// (length << 8) | symbol, or 0 when the code is longer than `LOOK`.
    look: Box<[u16; 1 << LOOK]>,
    /// For stepping over AC coefficients: (bits of the code and its value
    /// << 8) | a flag or the zigzag positions it advances, or 0 when they
    /// are more than `SKIP` bits.
    skip: Box<[u16; 1 << SKIP]>,
    /// Largest code of each length (-1: none).
    maxcode: [i32; 17],
    /// `values` index of a code of each length, minus the code.
    valptr: [i32; 17],
    values: [u8; 256],
    /// A symbol appears twice (two codes for one value: a hiding place).
    duplicate: bool,
}

impl DecodeTable {
    fn new(counts: &[u8], symbols: &[u8]) -> Result<Self> {
        let mut t = DecodeTable {
            look: Box::new([0; 1 << LOOK]),
            skip: Box::new([0; 1 << SKIP]),
            maxcode: [-1; 17],
            valptr: [0; 17],
            values: [0; 256],
            duplicate: false,
        };
        let mut seen = [false; 256];
        for (i, &s) in symbols.iter().enumerate().take(256) {
            t.values[i] = s;
            t.duplicate |= std::mem::replace(&mut seen[s as usize], true);
        }
        let (mut code, mut k) = (0u32, 0usize);
        for l in 1..=16u32 {
            let n = counts.get(l as usize - 1).copied().unwrap_or(0) as usize;
            if n > 0 {
                t.valptr[l as usize] = k as i32 - code as i32;
                for _ in 0..n {
                    if code >= 1 << l || k >= symbols.len() {
                        return Err(corrupt("a Huffman table with too many codes"));
                    }
                    if l <= LOOK {
                        let shift = LOOK - l;
                        let entry = (l as u16) << 8 | symbols[k] as u16;
                        let first = (code << shift) as usize;
                        t.look[first..first + (1 << shift)].fill(entry);
                    }
                    t.set_skip(code, l, symbols[k]);
                    code += 1;
                    k += 1;
                }
                t.maxcode[l as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Ok(t)
    }

    /// The [`DecodeTable::skip`] entries of AC symbol `rs` coded as `code`
    /// of `l` bits, if it and its value bits fit in `SKIP`.
    fn set_skip(&mut self, code: u32, l: u32, rs: u8) {
        let (run, size) = ((rs >> 4) as u16, (rs & 15) as u32);
        let total = l + size;
        if total > SKIP {
            return;
        }
        // As `skip_block` reads them: a zero size ends the block unless
        // the run is 15 (ZRL).
        let what = match (size, run) {
            (0, 15) => SKIP_ZRL | 16,
            (0, _) => SKIP_EOB,
            _ => run + 1,
        };
        let shift = SKIP - l;
        let first = (code << shift) as usize;
        self.skip[first..first + (1 << shift)].fill((total as u16) << 8 | what);
    }
}

/// Entropy-coded data as bits: stuffed 0xFF00 read as 0xFF; at a marker or
/// the end, zeros, which must never be consumed.
struct Reader<'a> {
    d: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    /// Zero bits past a marker or the end, at the bottom of `acc`.
    fake: u32,
    at_marker: bool,
    overrun: bool,
}

impl<'a> Reader<'a> {
    fn new(d: &'a [u8]) -> Self {
        Reader {
            d,
            pos: 0,
            acc: 0,
            n: 0,
            fake: 0,
            at_marker: false,
            overrun: false,
        }
    }

    #[inline(always)]
    fn need(&mut self) {
        if self.n < 27 {
            self.fill();
        }
    }

    #[inline(never)]
    fn fill(&mut self) {
        self.overrun |= self.n < self.fake;
        if self.n > 56 {
            return;
        }
        if !self.at_marker {
            if let Some(w) = self.d.get(self.pos..self.pos + 8) {
                let w = u64::from_be_bytes(w.try_into().unwrap_or([0; 8]));
                // No 0xFF byte in the next eight: take what fits at once.
                let x = !w;
                if (x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080) == 0 {
                    let k = (63 - self.n) / 8;
                    self.acc = (self.acc << (8 * k)) | (w >> (64 - 8 * k));
                    self.n += 8 * k;
                    self.pos += k as usize;
                    return;
                }
            }
        }
        while self.n <= 56 {
            let mut b = 0;
            if !self.at_marker {
                match self.d.get(self.pos) {
                    None => self.at_marker = true,
                    Some(&0xFF) if self.d.get(self.pos + 1) == Some(&0) => {
                        b = 0xFF;
                        self.pos += 2;
                    }
                    Some(&0xFF) => self.at_marker = true,
                    Some(&x) => {
                        b = x;
                        self.pos += 1;
                    }
                }
            }
            if self.at_marker {
                self.fake += 8;
            }
            self.acc = (self.acc << 8) | b as u64;
            self.n += 8;
        }
    }

    #[inline(always)]
    fn bits(&mut self, k: u32) -> u32 {
        self.n -= k;
        ((self.acc >> self.n) & ((1u64 << k) - 1)) as u32
    }

    #[inline(always)]
    fn symbol(&mut self, t: &DecodeTable) -> Result<u8> {
        let look = ((self.acc >> (self.n - LOOK)) & ((1 << LOOK) - 1)) as usize;
        let e = t.look[look];
        if e != 0 {
            self.n -= (e >> 8) as u32;
            return Ok(e as u8);
        }
        self.long_symbol(t)
    }

    #[cold]
    fn long_symbol(&mut self, t: &DecodeTable) -> Result<u8> {
        for l in LOOK + 1..=16 {
            let code = ((self.acc >> (self.n - l)) & ((1 << l) - 1)) as i32;
            if code <= t.maxcode[l as usize] {
                self.n -= l;
                let i = (t.valptr[l as usize] + code) as usize;
                return Ok(t.values[i.min(255)]);
            }
        }
        Err(corrupt("a Huffman code no table defines"))
    }

    /// The value of an `s`-bit magnitude category (JPEG's EXTEND), without
    /// a branch on the sign (it is a coin toss for the predictor).
    #[inline(always)]
    fn value(&mut self, s: u32) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = self.bits(s) as i32;
        v + (((v - (1 << (s - 1))) >> 31) & ((-1i32 << s) + 1))
    }

    /// Where the next unread bit lies in `d`: the offset of its byte (a
    /// stuffed 0xFF at the 0xFF) and how many bits of that byte are read.
    fn position(&self) -> Result<(usize, u32)> {
        if self.overrun || self.n < self.fake {
            return Err(corrupt(
                "it ends before its last block (truncated or damaged file)",
            ));
        }
        let real = self.n - self.fake;
        let mut p = self.pos;
        // Loaded bytes not wholly read, walked back (0x00 after 0xFF is stuffing).
        for _ in 0..real.div_ceil(8) {
            p = match p.checked_sub(1) {
                Some(q) if q >= 1 && self.d[q] == 0 && self.d[q - 1] == 0xFF => q - 1,
                Some(q) => q,
                None => return Err(corrupt("a bit position before its data")),
            };
        }
        Ok((p, (8 - real % 8) % 8))
    }

    /// Ends an interval (at a restart marker when `marker` is given, else
    /// the scan): the padding bits, the bytes left before the marker.
    fn end_interval(&mut self, marker: Option<u8>, hidden: &mut Hidden) -> Result<()> {
        self.overrun |= self.n < self.fake;
        if self.overrun {
            return Err(corrupt(
                "it ends before its last block (truncated or damaged file)",
            ));
        }
        let real = self.n - self.fake;
        let pad = real % 8;
        if pad > 0 && (self.acc >> (self.n - pad)) & ((1 << pad) - 1) != (1 << pad) - 1 {
            hidden.padding += 1;
        }
        let mut junk = (real / 8) as usize;
        // Bytes not loaded yet, up to the marker (or the end).
        while self.pos < self.d.len() {
            if self.d[self.pos] == 0xFF {
                match self.d.get(self.pos + 1) {
                    Some(0) => {
                        self.pos += 2;
                        junk += 1;
                        continue;
                    }
                    Some(0xFF) => {
                        // Fill bytes: not data, but no encoder writes them here.
                        self.pos += 1;
                        junk += 1;
                        continue;
                    }
                    _ => break,
                }
            }
            self.pos += 1;
            junk += 1;
        }
        match marker {
            Some(m) => {
                hidden.before_restarts += junk;
                if self.d.get(self.pos..self.pos + 2) != Some(&[0xFF, m]) {
                    return Err(corrupt(format!(
                        "restart marker {} missing where the restart interval puts it",
                        m - 0xD0
                    )));
                }
                self.pos += 2;
            }
            None => {
                hidden.tail += junk;
                // Anything after a marker inside the data (a stray RSTn).
                hidden.tail += self.d.len() - self.pos;
                self.pos = self.d.len();
            }
        }
        self.acc = 0;
        self.n = 0;
        self.fake = 0;
        self.at_marker = false;
        Ok(())
    }
}

/// (class, slot, the 16 code-length counts, the symbols) of one DHT table.
pub(crate) type HuffmanTable<'a> = (usize, usize, &'a [u8], &'a [u8]);

/// The tables of a DHT segment: (class, slot, the 16 code-length counts,
/// the symbols). `None` when one does not fit the segment or names a class
/// or slot that does not exist.
pub(crate) fn huffman_tables(mut p: &[u8]) -> Option<Vec<HuffmanTable<'_>>> {
    let mut out = Vec::new();
    while p.len() >= 17 {
        let (tc, th) = ((p[0] >> 4) as usize, (p[0] & 15) as usize);
        let n: usize = p[1..17].iter().map(|&c| c as usize).sum();
        if tc > 1 || th > 3 || p.len() < 17 + n {
            return None;
        }
        out.push((tc, th, &p[1..17], &p[17..17 + n]));
        p = &p[17 + n..];
    }
    Some(out)
}

/// The tables of one DQT segment into `quant` (natural order, per slot).
fn read_dqt(mut p: &[u8], quant: &mut [Option<[u16; 64]>; 4]) -> Result<()> {
    while let Some((&pq_tq, rest)) = p.split_first() {
        let size = if pq_tq >> 4 == 0 { 64 } else { 128 };
        if rest.len() < size || pq_tq & 15 > 3 {
            return Err(corrupt(
                "a quantization table that does not fit its segment",
            ));
        }
        let mut q = [0u16; 64];
        for (k, &n) in ZIGZAG.iter().enumerate() {
            q[n] = if size == 64 {
                rest[k] as u16
            } else {
                u16::from_be_bytes([rest[2 * k], rest[2 * k + 1]])
            };
        }
        quant[(pq_tq & 15) as usize] = Some(q);
        p = &rest[size..];
    }
    Ok(())
}

/// What a decode of a scan found beyond its picture.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hidden {
    /// Bytes after the last block, before the end of the scan.
    pub tail: usize,
    /// Bytes between the end of an interval and its restart marker.
    pub before_restarts: usize,
    /// Intervals whose padding bits are not all ones.
    pub padding: usize,
    /// Blocks coded with redundant symbols (a run of zeros before the end
    /// of the block, an end-of-block with a run count).
    pub noncanonical: usize,
    /// Huffman tables that list a symbol twice.
    pub duplicate_codes: usize,
}

impl Hidden {
    /// The findings `check --thorough` reports (empty: nothing hidden).
    pub fn findings(&self) -> Vec<Finding> {
        let mut f = Vec::new();
        if self.tail > 0 {
            f.push(Finding::new(
                Category::TrailingData,
                format!(
                    "{} inside the compressed data after its last block",
                    human_bytes(self.tail as u64)
                ),
            ));
        }
        if self.before_restarts > 0 {
            f.push(Finding::new(
                Category::Other,
                format!(
                    "{} inside the compressed data before restart markers",
                    human_bytes(self.before_restarts as u64)
                ),
            ));
        }
        if self.padding > 0 {
            f.push(Finding::new(
                Category::Other,
                format!(
                    "padding bits that are not ones in {} place(s) of the compressed data",
                    self.padding
                ),
            ));
        }
        if self.noncanonical > 0 {
            f.push(Finding::new(
                Category::Other,
                format!(
                    "{} block(s) coded with redundant symbols (room for hidden bits)",
                    self.noncanonical
                ),
            ));
        }
        if self.duplicate_codes > 0 {
            f.push(Finding::new(
                Category::Other,
                format!(
                    "{} Huffman table(s) with two codes for one symbol",
                    self.duplicate_codes
                ),
            ));
        }
        f
    }
}

/// One scan component: its tables, sampling and block grid.
struct Comp {
    /// Index in the frame.
    frame_index: usize,
    h: usize,
    v: usize,
    dc: usize,
    ac: usize,
    /// The DHT slots the scan header names (the region splice keeps them).
    dc_slot: u8,
    ac_slot: u8,
    /// Blocks of the component (non-interleaved scans walk these).
    blocks_x: usize,
    blocks_y: usize,
}

/// A scan this module can walk: the one sequential scan of the file.
pub struct Plan<'a> {
    tables: Vec<DecodeTable>,
    /// Each table as its DHT states it: the 16 code-length counts, the symbols.
    specs: Vec<(&'a [u8], &'a [u8])>,
    comps: Vec<Comp>,
    mcus_x: usize,
    mcus_y: usize,
    restart: u16,
    data: &'a [u8],
    /// The frame: (id, h, v, quantization slot) of each component.
    frame: Vec<(u8, u8, u8, u8)>,
    width: u16,
    height: u16,
    duplicate_codes: usize,
    /// Quantization tables in force at the scan, natural order, per slot.
    quant: [Option<[u16; 64]>; 4],
}

impl<'a> Plan<'a> {
    /// The plan of `jpeg`'s scan; `None` when it is not a single
    /// sequential 8-bit Huffman scan of every component.
    pub fn new(jpeg: &Jpeg<'a>) -> Result<Option<Plan<'a>>> {
        // (counts, symbols) per class and slot.
        type Slot<'s> = Option<(&'s [u8], &'s [u8])>;
        let mut dht: [[Slot; 4]; 2] = [[None; 4]; 2];
        let (mut sof, mut sos, mut dri) = (None, None, 0u16);
        let mut quant: [Option<[u16; 64]>; 4] = [None; 4];
        for seg in &jpeg.segments {
            let p = seg.payload;
            match seg.marker {
                0xC4 => {
                    let Some(tables) = huffman_tables(p) else {
                        return Ok(None);
                    };
                    for (tc, th, counts, symbols) in tables {
                        dht[tc][th] = Some((counts, symbols));
                    }
                }
                0xDD if p.len() == 2 && sos.is_none() => dri = u16::from_be_bytes([p[0], p[1]]),
                0xDB if sos.is_none() => {
                    let Ok(()) = read_dqt(p, &mut quant) else {
                        return Ok(None);
                    };
                }
                0xC0 | 0xC1 => sof = Some(p),
                m if (0xC2..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC) => {
                    return Ok(None)
                }
                0xDA if sos.is_some() => return Ok(None), // more than one scan
                0xDA => sos = Some((p, seg.data)),
                _ => {}
            }
        }
        let (Some(sof), Some((sos, data))) = (sof, sos) else {
            return Ok(None);
        };
        if sof.len() < 6 || sof[0] != 8 {
            return Ok(None);
        }
        let height = u16::from_be_bytes([sof[1], sof[2]]);
        let width = u16::from_be_bytes([sof[3], sof[4]]);
        let frame: Vec<(u8, u8, u8, u8)> = sof[6..]
            .chunks_exact(3)
            .map(|c| (c[0], c[1] >> 4, c[1] & 15, c[2]))
            .collect();
        if height == 0 || width == 0 || frame.is_empty() {
            return Ok(None);
        }
        let n = sos.first().copied().unwrap_or(0) as usize;
        if sos.len() != 4 + 2 * n || sos[1 + 2 * n..] != [0, 63, 0] {
            return Ok(None);
        }
        if n != frame.len() && n != 1 || (n == 1 && frame.len() != 1) {
            return Ok(None);
        }
        let hmax = frame.iter().map(|c| c.1 as usize).max().unwrap_or(1);
        let vmax = frame.iter().map(|c| c.2 as usize).max().unwrap_or(1);
        let mut tables = Vec::new();
        let mut specs = Vec::new();
        let mut duplicate_codes = 0;
        let mut comps = Vec::new();
        for c in sos[1..1 + 2 * n].chunks_exact(2) {
            let Some(fi) = frame.iter().position(|f| f.0 == c[0]) else {
                return Ok(None);
            };
            if comps.iter().any(|x: &Comp| x.frame_index == fi) {
                return Ok(None);
            }
            let mut table = |class: usize, slot: usize| -> Result<Option<usize>> {
                let Some((counts, symbols)) = dht[class][slot & 3] else {
                    return Ok(None);
                };
                let t = DecodeTable::new(counts, symbols)?;
                duplicate_codes += t.duplicate as usize;
                tables.push(t);
                specs.push((counts, symbols));
                Ok(Some(tables.len() - 1))
            };
            let (Some(dc), Some(ac)) = (
                table(0, (c[1] >> 4) as usize)?,
                table(1, (c[1] & 15) as usize)?,
            ) else {
                // A missing table (Motion-JPEG's implied standard ones).
                return Ok(None);
            };
            let (h, v) = (frame[fi].1 as usize, frame[fi].2 as usize);
            comps.push(Comp {
                frame_index: fi,
                h,
                v,
                dc,
                ac,
                dc_slot: c[1] >> 4,
                ac_slot: c[1] & 15,
                blocks_x: (width as usize * h).div_ceil(hmax).div_ceil(8),
                blocks_y: (height as usize * v).div_ceil(vmax).div_ceil(8),
            });
        }
        let (mcus_x, mcus_y) = if n == 1 {
            (comps[0].blocks_x, comps[0].blocks_y)
        } else {
            (
                (width as usize).div_ceil(8 * hmax),
                (height as usize).div_ceil(8 * vmax),
            )
        };
        Ok(Some(Plan {
            tables,
            specs,
            comps,
            mcus_x,
            mcus_y,
            restart: dri,
            data,
            frame,
            width,
            height,
            duplicate_codes,
            quant,
        }))
    }

    fn interleaved(&self) -> bool {
        self.comps.len() > 1
    }

    /// Decodes the scan, handing each block (frame component, block x, y,
    /// zigzag coefficients, mask of nonzero AC positions) to `sink`, and
    /// calling `restart` at each restart marker.
    fn walk(&self, hidden: &mut Hidden, sink: &mut impl Sink) -> Result<()> {
        let mut r = Reader::new(self.data);
        let mut pred = [0i32; 4];
        self.walk_range(
            &mut r,
            &mut pred,
            0..self.mcus_x * self.mcus_y,
            hidden,
            sink,
        )?;
        r.end_interval(None, hidden)
    }

    /// [`Plan::walk`] over MCUs `mcus` from `r` as it stands, with the DC
    /// predictors `pred` (per scan component): a restart marker is read
    /// before each MCU that starts an interval, except the first of the
    /// range (the caller put `r` there).
    fn walk_range<S: Sink>(
        &self,
        r: &mut Reader,
        pred: &mut [i32; 4],
        mcus: std::ops::Range<usize>,
        hidden: &mut Hidden,
        sink: &mut S,
    ) -> Result<()> {
        let mut blk = [0i16; 64];
        let ri = self.restart as usize;
        let (bh_of, bv_of): (Vec<usize>, Vec<usize>) = self
            .comps
            .iter()
            .map(|c| {
                if self.interleaved() {
                    (c.h, c.v)
                } else {
                    (1, 1)
                }
            })
            .unzip();
        for mcu in mcus.clone() {
            if ri > 0 && mcu > mcus.start && mcu.is_multiple_of(ri) {
                let index = ((mcu / ri - 1) & 7) as u8;
                r.end_interval(Some(0xD0 + index), hidden)?;
                sink.restart(index);
                *pred = [0; 4];
            }
            if S::STARTS {
                sink.mcu_start(r.position()?);
            }
            let (mx, my) = (mcu % self.mcus_x, mcu / self.mcus_x);
            for (ci, c) in self.comps.iter().enumerate() {
                let (dc, ac) = (&self.tables[c.dc], &self.tables[c.ac]);
                let (bh, bv) = (bh_of[ci], bv_of[ci]);
                for v in 0..bv {
                    for h in 0..bh {
                        if !S::KEEP {
                            skip_block(r, dc, ac, &mut pred[ci])?;
                            continue;
                        }
                        let (mask, canonical) = decode_block(r, dc, ac, &mut pred[ci], &mut blk)?;
                        hidden.noncanonical += !canonical as usize;
                        sink.block(c.frame_index, mx * bh + h, my * bv + v, &blk, mask)?;
                        blk = [0; 64];
                    }
                }
            }
        }
        Ok(())
    }

    /// What the scan carries beyond its picture (`check --thorough`).
    pub fn audit(&self) -> Result<Hidden> {
        let mut hidden = Hidden {
            duplicate_codes: self.duplicate_codes,
            ..Hidden::default()
        };
        self.walk(&mut hidden, &mut NoSink)?;
        Ok(hidden)
    }

    /// The scan coded again with the standard tables, in one pass: the
    /// file's header segments (JFIF, Adobe, the quantization tables, the
    /// frame, the restart interval) then standard DHTs, the scan, EOI. The
    /// caller rebuilds the header with the container writer.
    pub fn transcode(&self, jpeg: &Jpeg) -> Result<Vec<u8>> {
        let slots: Vec<usize> = (0..self.frame.len()).map(|i| (i > 0) as usize).collect();
        let hmax = self.frame.iter().map(|c| c.1 as usize).max().unwrap_or(1);
        let vmax = self.frame.iter().map(|c| c.2 as usize).max().unwrap_or(1);
        let mut sink = Encode {
            w: Writer::new(self.data.len() + self.data.len() / 8 + 1024),
            prev: [0; 4],
            tables: StandardTables::per_component(&slots),
            data_blocks: data_blocks(&self.frame, (self.width, self.height), (hmax, vmax)),
            dummy: [0; 64],
        };
        self.walk(&mut Hidden::default(), &mut sink)?;
        let w = sink.w;
        let data = w.finish();
        let mut out = Vec::with_capacity(data.len() + 2048);
        out.extend_from_slice(&[0xFF, 0xD8]);
        for seg in &jpeg.segments {
            match seg.marker {
                0xE0 | 0xEE | 0xDB | 0xC0 | 0xC1 | 0xDD => {
                    out.extend_from_slice(&seg.raw[seg.raw.len() - seg.payload.len() - 4..])
                }
                0xDA => break,
                _ => {}
            }
        }
        write_standard_dht(&mut out, slots.contains(&1));
        write_sos(
            &mut out,
            self.comps
                .iter()
                .map(|c| (self.frame[c.frame_index].0, slots[c.frame_index] as u8)),
        );
        out.extend_from_slice(&data);
        out.extend_from_slice(&[0xFF, 0xD9]);
        Ok(out)
    }

    /// The quantized coefficients, in libjpeg-turbo-rs' layout (zigzag
    /// blocks, every block of the MCUs), for the region edit.
    pub fn coefficients(&self) -> Result<(lt::JpegCoefficients, Vec<Vec<u64>>)> {
        let (mut coeffs, mut masks) = self.empty_coefficients(0..self.mcus_y)?;
        let grid: Vec<(usize, usize)> = coeffs
            .components
            .iter()
            .map(|c| (c.blocks_x, c.blocks_y))
            .collect();
        let mut planes: Vec<Vec<[i16; 64]>> = coeffs
            .components
            .iter_mut()
            .map(|c| std::mem::take(&mut c.blocks))
            .collect();
        self.walk(
            &mut Hidden::default(),
            &mut Store {
                planes: &mut planes,
                masks: &mut masks,
                grid: &grid,
            },
        )?;
        for (c, blocks) in coeffs.components.iter_mut().zip(planes) {
            c.blocks = blocks;
        }
        Ok((coeffs, masks))
    }
}

impl Plan<'_> {
    /// The scan coded again with the standard tables in one pass, as
    /// [`write_coefficients_masked`] codes a whole coefficient buffer, but
    /// holding back only the MCU rows `rows`: their blocks go into a buffer
    /// of those rows (libjpeg-turbo-rs' layout, the band's first row at
    /// block row 0, `height` the band's pixel rows), which `edit` changes
    /// before they are coded in order. Every other block is coded as it is
    /// decoded, so the cost is one entropy decode and encode plus the band.
    pub fn transcode_band(
        &self,
        rows: std::ops::Range<usize>,
        source: &Jpeg,
        edit: impl FnOnce(&mut lt::JpegCoefficients, &mut Vec<Vec<u64>>) -> Result<()>,
    ) -> Result<Vec<u8>> {
        let rows = rows.start.min(self.mcus_y)..rows.end.min(self.mcus_y);
        let (mut band, masks) = self.empty_coefficients(rows.clone())?;
        let hmax = self.frame.iter().map(|c| c.1 as usize).max().unwrap_or(1);
        let vmax = self.frame.iter().map(|c| c.2 as usize).max().unwrap_or(1);
        let slots: Vec<usize> = (0..self.frame.len()).map(|i| (i > 0) as usize).collect();
        let per_row: Vec<usize> = self
            .frame
            .iter()
            .map(|f| if self.interleaved() { f.2 as usize } else { 1 })
            .collect();
        // The frame as the header states it: every row, no blocks.
        let mut header = coefficient_set(
            (self.width, self.height, 8),
            band.components
                .iter()
                .map(|c| lt::ComponentCoefficients {
                    blocks: Vec::new(),
                    blocks_x: c.blocks_x,
                    blocks_y: c.blocks_y,
                    h_sampling: c.h_sampling,
                    v_sampling: c.v_sampling,
                    quant_table_index: c.quant_table_index,
                    component_id: c.component_id,
                })
                .collect(),
            band.quant_tables.clone(),
            self.restart,
        );
        crate::blocks::keep_used_tables(&mut header);
        let mut sink = Splice {
            enc: Encode {
                w: Writer::new(self.data.len() + self.data.len() / 8 + 1024),
                prev: [0; 4],
                tables: StandardTables::per_component(&slots),
                data_blocks: data_blocks(&self.frame, (self.width, self.height), (hmax, vmax)),
                dummy: [0; 64],
            },
            rows,
            per_row,
            band: &mut band,
            masks,
            held: Vec::new(),
            state: Held::Before,
            edit: Some(edit),
        };
        self.walk(&mut Hidden::default(), &mut sink)?;
        if sink.state == Held::Holding {
            sink.release()?;
        }
        let data = sink.enc.w.finish();
        let mut out = Vec::with_capacity(data.len() + 2048);
        write_frame(&mut out, &header, source);
        out.extend_from_slice(&data);
        out.extend_from_slice(&[0xFF, 0xD9]);
        Ok(out)
    }

    /// A zeroed coefficient buffer of MCU rows `rows` (all of them for the
    /// whole picture), and its masks.
    fn empty_coefficients(
        &self,
        rows: std::ops::Range<usize>,
    ) -> Result<(lt::JpegCoefficients, Vec<Vec<u64>>)> {
        // Dense tables, as libjpeg-turbo-rs numbers them.
        let mut dense = [0u8; 4];
        let mut quant_tables = Vec::new();
        for (slot, q) in self.quant.iter().enumerate() {
            if let Some(q) = q {
                dense[slot] = quant_tables.len() as u8;
                quant_tables.push(*q);
            }
        }
        for &(_, _, _, tq) in &self.frame {
            if self.quant.get(tq as usize).is_none_or(|q| q.is_none()) {
                return Err(corrupt(format!("quantization table {tq} is not defined")));
            }
        }
        let n_rows = rows.end.saturating_sub(rows.start);
        let vmax = self.frame.iter().map(|c| c.2 as usize).max().unwrap_or(1);
        let grid: Vec<(usize, usize)> = self
            .frame
            .iter()
            .map(|&(_, h, v, _)| {
                if self.interleaved() {
                    (self.mcus_x * h as usize, n_rows * v as usize)
                } else {
                    (self.mcus_x, n_rows)
                }
            })
            .collect();
        let masks: Vec<Vec<u64>> = grid.iter().map(|&(x, y)| vec![0; x * y]).collect();
        let components = grid
            .iter()
            .zip(&self.frame)
            .map(|(&(bx, by), &(id, h, v, tq))| lt::ComponentCoefficients {
                blocks: vec![[0i16; 64]; bx * by],
                blocks_x: bx,
                blocks_y: by,
                h_sampling: h,
                v_sampling: v,
                quant_table_index: dense[tq as usize & 3],
                component_id: id,
            })
            .collect();
        let mh = 8 * if self.interleaved() { vmax } else { 1 };
        let top = rows.start * mh;
        let bottom = (rows.end * mh).min(self.height as usize);
        let height = bottom.saturating_sub(top) as u16;
        let coeffs = coefficient_set(
            (self.width, height, 8),
            components,
            quant_tables,
            self.restart,
        );
        Ok((coeffs, masks))
    }
}

/// Where [`Plan::walk`] hands the blocks.
trait Sink {
    /// Whether it looks at the blocks (else they are only stepped over).
    const KEEP: bool = true;
    /// Block (`bx`, `by`) of frame component `fi`: zigzag coefficients and
    /// the mask of the nonzero AC positions.
    fn block(&mut self, fi: usize, bx: usize, by: usize, blk: &[i16; 64], mask: u64) -> Result<()>;
    /// A restart marker (`index` 0..7) between two intervals.
    fn restart(&mut self, _index: u8) {}
    /// Whether it wants each MCU's first bit ([`Sink::mcu_start`]).
    const STARTS: bool = false;
    /// Where the next MCU starts in the data (byte, bits of it read).
    fn mcu_start(&mut self, _at: (usize, u32)) {}
}

/// Steps over blocks: bits and DC predictors only (no coefficients).
struct Skip;

impl Sink for Skip {
    const KEEP: bool = false;
    fn block(&mut self, _: usize, _: usize, _: usize, _: &[i16; 64], _: u64) -> Result<()> {
        Ok(())
    }
}

struct NoSink;

impl Sink for NoSink {
    #[inline(always)]
    fn block(&mut self, _: usize, _: usize, _: usize, _: &[i16; 64], _: u64) -> Result<()> {
        Ok(())
    }
}

struct Store<'p> {
    planes: &'p mut [Vec<[i16; 64]>],
    masks: &'p mut [Vec<u64>],
    grid: &'p [(usize, usize)],
}

impl Sink for Store<'_> {
    #[inline(always)]
    fn block(&mut self, fi: usize, bx: usize, by: usize, blk: &[i16; 64], mask: u64) -> Result<()> {
        let i = by * self.grid[fi].0 + bx;
        if let (Some(b), Some(m)) = (self.planes[fi].get_mut(i), self.masks[fi].get_mut(i)) {
            *b = *blk;
            *m = mask;
        }
        Ok(())
    }
}

/// The transcode: each block coded again at once with the standard tables;
/// blocks past the picture (MCU padding) as libjpeg pads them.
struct Encode<'t> {
    w: Writer,
    /// The last DC of each frame component.
    prev: [i16; 4],
    /// (DC, AC) table of each frame component.
    tables: Vec<(&'t EncodeTable, &'t EncodeTable)>,
    data_blocks: Vec<(usize, usize)>,
    dummy: [i16; 64],
}

impl Sink for Encode<'_> {
    #[inline(always)]
    fn block(&mut self, fi: usize, bx: usize, by: usize, blk: &[i16; 64], mask: u64) -> Result<()> {
        let (dc, ac) = self.tables[fi];
        let (blk, mask) = if bx >= self.data_blocks[fi].0 || by >= self.data_blocks[fi].1 {
            self.dummy[0] = self.prev[fi];
            (&self.dummy, 0)
        } else {
            (blk, mask)
        };
        encode_block(&mut self.w, blk, mask, &mut self.prev[fi], dc, ac)
    }

    fn restart(&mut self, index: u8) {
        self.w.restart(index);
        self.prev = [0; 4];
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Before,
    Holding,
    After,
}

/// What [`Splice`] held back, in scan order.
enum Event {
    /// Frame component, block x, block row within the band.
    Block(usize, usize, usize),
    Restart(u8),
}

/// [`Plan::transcode_band`]'s sink: codes blocks as they come, except those
/// of the held rows, which it keeps until the last of them, then edits and
/// codes them.
struct Splice<'b, F> {
    enc: Encode<'b>,
    /// MCU rows held back.
    rows: std::ops::Range<usize>,
    /// Block rows of each frame component in one MCU row.
    per_row: Vec<usize>,
    band: &'b mut lt::JpegCoefficients,
    masks: Vec<Vec<u64>>,
    held: Vec<Event>,
    state: Held,
    edit: Option<F>,
}

impl<F> Splice<'_, F>
where
    F: FnOnce(&mut lt::JpegCoefficients, &mut Vec<Vec<u64>>) -> Result<()>,
{
    /// Edits the held rows and codes them, in the order they came.
    fn release(&mut self) -> Result<()> {
        if let Some(edit) = self.edit.take() {
            edit(self.band, &mut self.masks)?;
        }
        for e in std::mem::take(&mut self.held) {
            match e {
                Event::Block(fi, bx, row) => {
                    let c = &self.band.components[fi];
                    let i = row * c.blocks_x + bx;
                    let by = self.rows.start * self.per_row[fi] + row;
                    let (Some(blk), Some(&mask)) = (c.blocks.get(i), self.masks[fi].get(i)) else {
                        return Err(corrupt("a block outside the held rows"));
                    };
                    self.enc.block(fi, bx, by, blk, mask)?;
                }
                Event::Restart(index) => self.enc.restart(index),
            }
        }
        self.state = Held::After;
        Ok(())
    }
}

impl<F> Sink for Splice<'_, F>
where
    F: FnOnce(&mut lt::JpegCoefficients, &mut Vec<Vec<u64>>) -> Result<()>,
{
    #[inline(always)]
    fn block(&mut self, fi: usize, bx: usize, by: usize, blk: &[i16; 64], mask: u64) -> Result<()> {
        if self.state != Held::After {
            let row = by / self.per_row[fi];
            if self.state == Held::Holding && row >= self.rows.end {
                self.release()?;
            } else if self.state == Held::Before && self.rows.contains(&row) {
                self.state = Held::Holding;
            }
            if self.state == Held::Holding {
                let row = by - self.rows.start * self.per_row[fi];
                let c = &mut self.band.components[fi];
                let i = row * c.blocks_x + bx;
                if let (Some(b), Some(m)) = (c.blocks.get_mut(i), self.masks[fi].get_mut(i)) {
                    *b = *blk;
                    *m = mask;
                }
                self.held.push(Event::Block(fi, bx, row));
                return Ok(());
            }
        }
        self.enc.block(fi, bx, by, blk, mask)
    }

    fn restart(&mut self, index: u8) {
        if self.state == Held::Holding {
            self.held.push(Event::Restart(index));
        } else {
            self.enc.restart(index);
        }
    }
}

/// Blocks holding picture, per component; those past them in an MCU are padding.
fn data_blocks(
    frame: &[(u8, u8, u8, u8)],
    (w, h): (u16, u16),
    (hmax, vmax): (usize, usize),
) -> Vec<(usize, usize)> {
    frame
        .iter()
        .map(|&(_, ch, cv, _)| {
            (
                (w as usize * ch as usize).div_ceil(hmax * 8),
                (h as usize * cv as usize).div_ceil(vmax * 8),
            )
        })
        .collect()
}

/// One block: DC difference, then AC runs up to the end of block.
/// Returns the mask of nonzero AC positions and whether the coding was
/// the one an encoder writes for these coefficients.
#[inline(always)]
fn decode_block(
    r: &mut Reader,
    dc: &DecodeTable,
    ac: &DecodeTable,
    pred: &mut i32,
    blk: &mut [i16; 64],
) -> Result<(u64, bool)> {
    r.need();
    let s = r.symbol(dc)? as u32;
    if s > 15 {
        return Err(corrupt("a DC difference of more than 15 bits"));
    }
    if s > 11 {
        r.need();
    }
    *pred += r.value(s);
    blk[0] = *pred as i16;
    let mut mask = 0u64;
    let mut k = 1usize;
    let mut canonical = true;
    let mut zrl = false;
    while k < 64 {
        r.need();
        let rs = r.symbol(ac)? as u32;
        let (run, s) = ((rs >> 4) as usize, rs & 15);
        if s != 0 {
            k += run;
            if k > 63 {
                return Err(corrupt("a run of zeros past the end of a block"));
            }
            if s > 10 {
                r.need();
            }
            blk[k] = r.value(s) as i16;
            mask |= 1 << k;
            k += 1;
            zrl = false;
        } else if run == 15 {
            k += 16;
            zrl = true;
        } else {
            canonical &= run == 0;
            break;
        }
    }
    Ok((mask, canonical && !zrl))
}

/// [`decode_block`] for a block that is only stepped over: the bits it
/// takes and the DC predictor, nothing stored.
#[inline(always)]
fn skip_block(r: &mut Reader, dc: &DecodeTable, ac: &DecodeTable, pred: &mut i32) -> Result<()> {
    r.need();
    let s = r.symbol(dc)? as u32;
    if s > 15 {
        return Err(corrupt("a DC difference of more than 15 bits"));
    }
    if s > 11 {
        r.need();
    }
    *pred += r.value(s);
    let mut k = 1usize;
    while k < 64 {
        // Most codes and their value bits at once, the bits held in
        // registers (the reader's fields would go through memory).
        let (mut acc, mut n) = (r.acc, r.n);
        loop {
            if n < 27 {
                r.n = n;
                r.fill();
                (acc, n) = (r.acc, r.n);
            }
            let e = ac.skip[((acc >> (n - SKIP)) & ((1 << SKIP) - 1)) as usize];
            if e == 0 {
                break;
            }
            n -= (e >> 8) as u32;
            if e & SKIP_EOB != 0 {
                r.n = n;
                return Ok(());
            }
            k += (e & 0x1F) as usize;
            if k >= 64 {
                r.n = n;
                if k > 64 && e & SKIP_ZRL == 0 {
                    return Err(corrupt("a run of zeros past the end of a block"));
                }
                return Ok(());
            }
        }
        r.n = n;
        let rs = r.symbol(ac)? as u32;
        let (run, s) = ((rs >> 4) as usize, rs & 15);
        if s != 0 {
            k += run + 1;
            if k > 64 {
                return Err(corrupt("a run of zeros past the end of a block"));
            }
            if s > 10 {
                // Not 8-bit data: more bits than `need` keeps.
                r.need();
            }
            r.n -= s;
        } else if run == 15 {
            k += 16;
        } else {
            break;
        }
    }
    Ok(())
}

/// A Huffman table for encoding: code and length of each symbol.
struct EncodeTable {
    code: [u32; 256],
    size: [u8; 256],
}

impl EncodeTable {
    /// A DHT table: its 16 code-length counts and its symbols (validated
    /// by [`DecodeTable::new`]). A symbol it lacks has size 0.
    fn from_counts(counts: &[u8], values: &[u8]) -> Self {
        let mut bits = [0u8; 17];
        for (b, &c) in bits[1..].iter_mut().zip(counts) {
            *b = c;
        }
        let n: usize = bits.iter().map(|&c| c as usize).sum();
        Self::new(&bits, &values[..n.min(values.len())])
    }

    fn new(bits: &[u8; 17], values: &[u8]) -> Self {
        let mut t = EncodeTable {
            code: [0; 256],
            size: [0; 256],
        };
        let (mut code, mut k) = (0u32, 0usize);
        for (l, &count) in bits.iter().enumerate().skip(1) {
            for _ in 0..count {
                let Some(&v) = values.get(k) else {
                    return t;
                };
                t.code[v as usize] = code;
                t.size[v as usize] = l as u8;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        t
    }
}

struct StandardTables {
    dc: [EncodeTable; 2],
    ac: [EncodeTable; 2],
}

impl StandardTables {
    /// (DC, AC) of each frame component: luma's for the first, chroma's
    /// for the others (`slots`: 0 or 1 each).
    fn per_component(slots: &[usize]) -> Vec<(&'static EncodeTable, &'static EncodeTable)> {
        let t = Self::get();
        slots
            .iter()
            .map(|&s| (&t.dc[s & 1], &t.ac[s & 1]))
            .collect()
    }

    fn get() -> &'static StandardTables {
        use lt::encode::tables::*;
        static T: std::sync::OnceLock<StandardTables> = std::sync::OnceLock::new();
        T.get_or_init(|| StandardTables {
            dc: [
                EncodeTable::new(&DC_LUMINANCE_BITS, &DC_LUMINANCE_VALUES),
                EncodeTable::new(&DC_CHROMINANCE_BITS, &DC_CHROMINANCE_VALUES),
            ],
            ac: [
                EncodeTable::new(&AC_LUMINANCE_BITS, &AC_LUMINANCE_VALUES),
                EncodeTable::new(&AC_CHROMINANCE_BITS, &AC_CHROMINANCE_VALUES),
            ],
        })
    }
}

fn write_standard_dht(out: &mut Vec<u8>, chroma: bool) {
    use lt::encode::tables::*;
    let mut one = |class: u8, slot: u8, bits: &[u8; 17], values: &[u8]| {
        let len = 2 + 1 + 16 + values.len();
        out.extend_from_slice(&[0xFF, 0xC4]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(class << 4 | slot);
        out.extend_from_slice(&bits[1..17]);
        out.extend_from_slice(values);
    };
    one(0, 0, &DC_LUMINANCE_BITS, &DC_LUMINANCE_VALUES);
    one(1, 0, &AC_LUMINANCE_BITS, &AC_LUMINANCE_VALUES);
    if chroma {
        one(0, 1, &DC_CHROMINANCE_BITS, &DC_CHROMINANCE_VALUES);
        one(1, 1, &AC_CHROMINANCE_BITS, &AC_CHROMINANCE_VALUES);
    }
}

fn write_sos(out: &mut Vec<u8>, comps: impl Iterator<Item = (u8, u8)>) {
    let comps: Vec<(u8, u8)> = comps.collect();
    let len = 2 + 1 + 2 * comps.len() + 3;
    out.extend_from_slice(&[0xFF, 0xDA]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(comps.len() as u8);
    for (id, slot) in comps {
        out.extend_from_slice(&[id, slot << 4 | slot]);
    }
    out.extend_from_slice(&[0, 63, 0]);
}

/// Bits to bytes, 0xFF stuffed, padding with ones. A block is coded into
/// `buf` with the bit buffer in locals (see [`encode_block`]), then
/// appended to `out` at once.
struct Writer {
    out: Vec<u8>,
    acc: u64,
    n: u32,
    /// One block's bytes: at most 64 codes of 27 bits, each byte stuffed.
    buf: [u8; 512],
}

impl Writer {
    fn new(capacity: usize) -> Self {
        Writer::after(Vec::with_capacity(capacity))
    }

    /// A writer that goes on after `out`'s bytes (a header), on a byte
    /// boundary.
    fn after(out: Vec<u8>) -> Self {
        Writer {
            out,
            acc: 0,
            n: 0,
            buf: [0; 512],
        }
    }

    /// Pads the last byte with ones and writes out what is left.
    fn flush(&mut self) {
        let pad = (8 - self.n % 8) % 8;
        if pad > 0 {
            self.acc = (self.acc << pad) | ((1 << pad) - 1);
            self.n += pad;
        }
        while self.n >= 8 {
            self.n -= 8;
            let b = (self.acc >> self.n) as u8;
            self.out.push(b);
            if b == 0xFF {
                self.out.push(0);
            }
        }
    }

    /// `size` (at most 32) bits, the top ones of `bits` zero.
    #[inline(always)]
    fn put(&mut self, bits: u32, size: u32) {
        self.acc = (self.acc << size) | bits as u64;
        self.n += size;
        if self.n >= 32 {
            self.n -= 32;
            let w = (self.acc >> self.n) as u32;
            let x = !w;
            if (x.wrapping_sub(0x0101_0101) & !x & 0x8080_8080) == 0 {
                self.out.extend_from_slice(&w.to_be_bytes());
            } else {
                for b in w.to_be_bytes() {
                    self.out.push(b);
                    if b == 0xFF {
                        self.out.push(0);
                    }
                }
            }
        }
    }

    fn restart(&mut self, index: u8) {
        self.flush();
        self.out.extend_from_slice(&[0xFF, 0xD0 + index]);
    }

    /// Writes out the whole bytes it holds, no padding: the bits left
    /// (fewer than 8) and their count.
    fn whole_bytes(&mut self) -> (u32, u32) {
        while self.n >= 8 {
            self.n -= 8;
            let b = (self.acc >> self.n) as u8;
            self.out.push(b);
            if b == 0xFF {
                self.out.push(0);
            }
        }
        let n = self.n;
        let bits = (self.acc & ((1u64 << n) - 1)) as u32;
        self.acc = 0;
        self.n = 0;
        (bits, n)
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

/// The bit buffer of one block, in registers.
struct Bits<'b> {
    acc: u64,
    n: u32,
    buf: &'b mut [u8; 512],
    len: usize,
}

impl Bits<'_> {
    /// `len` (at most 32) bits of `bits`.
    #[inline(always)]
    fn put(&mut self, bits: u32, size: u32) {
        self.acc = (self.acc << size) | bits as u64;
        self.n += size;
        if self.n >= 32 {
            self.n -= 32;
            let w = (self.acc >> self.n) as u32;
            let x = !w;
            if (x.wrapping_sub(0x0101_0101) & !x & 0x8080_8080) == 0 {
                if let Some(d) = self.buf.get_mut(self.len..self.len + 4) {
                    d.copy_from_slice(&w.to_be_bytes());
                }
                self.len += 4;
            } else {
                for b in w.to_be_bytes() {
                    self.byte(b);
                    if b == 0xFF {
                        self.byte(0);
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        if let Some(d) = self.buf.get_mut(self.len) {
            *d = b;
        }
        self.len += 1;
    }
}

/// Magnitude category and its bits (JPEG's SSSS and the value's low bits).
#[inline(always)]
fn category(v: i32) -> (u32, u32) {
    let s = 32 - v.unsigned_abs().leading_zeros();
    let bits = if v < 0 { v - 1 } else { v } as u32 & ((1u32 << s) - 1);
    (s, bits)
}

/// One block with the given tables, as libjpeg codes it.
#[inline(always)]
fn encode_block(
    w: &mut Writer,
    blk: &[i16; 64],
    mask: u64,
    prev: &mut i16,
    dc: &EncodeTable,
    ac: &EncodeTable,
) -> Result<()> {
    let mut b = Bits {
        acc: w.acc,
        n: w.n,
        buf: &mut w.buf,
        len: 0,
    };
    let diff = blk[0] as i32 - *prev as i32;
    *prev = blk[0];
    let (s, bits) = category(diff);
    if s > 11 {
        return Err(corrupt("a DC difference too large for an 8-bit JPEG"));
    }
    // A symbol the table lacks (the source's own tables, in the region splice).
    let mut missing = dc.size[s as usize] == 0;
    b.put(
        dc.code[s as usize] << s | bits,
        dc.size[s as usize] as u32 + s,
    );
    let mut m = mask & !1;
    let mut last = 0u32;
    while m != 0 {
        let k = m.trailing_zeros();
        let mut run = k - last - 1;
        while run > 15 {
            missing |= ac.size[0xF0] == 0;
            b.put(ac.code[0xF0], ac.size[0xF0] as u32);
            run -= 16;
        }
        let (s, bits) = category(blk[k as usize & 63] as i32);
        if s > 10 {
            return Err(corrupt("a coefficient too large for an 8-bit JPEG"));
        }
        let sym = ((run << 4 | s) & 0xFF) as usize;
        missing |= ac.size[sym] == 0;
        b.put(ac.code[sym] << s | bits, ac.size[sym] as u32 + s);
        last = k;
        m &= m - 1;
    }
    if last != 63 {
        missing |= ac.size[0] == 0;
        b.put(ac.code[0], ac.size[0] as u32);
    }
    if missing {
        return Err(Error::Unsupported(
            "a symbol the Huffman tables do not code".into(),
        ));
    }
    let (acc, n, len) = (b.acc, b.n, b.len.min(512));
    w.acc = acc;
    w.n = n;
    w.out.extend_from_slice(&w.buf[..len]);
    Ok(())
}

/// Mask of the nonzero coefficients of a zigzag block (bit k: coefficient
/// k), eight at a time: each 16-bit lane's "nonzero" bit is gathered by a
/// multiply.
pub(crate) fn nonzero_mask(blk: &[i16; 64]) -> u64 {
    let mut mask = 0u64;
    for (i, c) in blk.chunks_exact(4).enumerate() {
        let lanes = c.iter().fold(0u64, |acc, &v| (acc << 16) | v as u16 as u64);
        // High bit of each lane set when the lane is nonzero.
        let low = lanes & 0x7FFF_7FFF_7FFF_7FFF;
        let nz = ((low + 0x7FFF_7FFF_7FFF_7FFF) | lanes) & 0x8000_8000_8000_8000;
        // Lanes 0..3 are big-end first: lane j's bit at 16 * (3 - j) + 15.
        let bits = ((nz >> 63) & 1) | ((nz >> 46) & 2) | ((nz >> 29) & 4) | ((nz >> 12) & 8);
        mask |= bits << (4 * i);
    }
    mask
}

/// Writes `coeffs` as a baseline JPEG with the standard tables: the
/// source's JFIF and Adobe segments (how its colour is read), the
/// quantization tables, frame, restart interval, scan. The caller rebuilds
/// the header with the container writer.
pub fn write_coefficients(coeffs: &lt::JpegCoefficients, source: &Jpeg) -> Result<Vec<u8>> {
    write_coefficients_masked(coeffs, None, source)
}

/// [`write_coefficients`] with each block's nonzero mask known (from
/// [`Plan::coefficients`], redone by the caller for the blocks it changed).
pub fn write_coefficients_masked(
    coeffs: &lt::JpegCoefficients,
    masks: Option<&[Vec<u64>]>,
    source: &Jpeg,
) -> Result<Vec<u8>> {
    let n = coeffs.components.len();
    if coeffs.effective_precision() != 8 || n == 0 || n > 4 {
        return Err(Error::Unsupported(
            "only 8-bit JPEGs of 1 to 4 components can be coded again".into(),
        ));
    }
    let t = StandardTables::get();
    let hmax = coeffs
        .components
        .iter()
        .map(|c| c.h_sampling as usize)
        .max()
        .unwrap_or(1);
    let vmax = coeffs
        .components
        .iter()
        .map(|c| c.v_sampling as usize)
        .max()
        .unwrap_or(1);
    let (w_px, h_px) = (coeffs.width as usize, coeffs.height as usize);
    // Blocks holding picture; those past them in an MCU are coded as
    // libjpeg pads them: the last DC, no AC.
    let data_blocks: Vec<(usize, usize)> = coeffs
        .components
        .iter()
        .map(|c| {
            (
                (w_px * c.h_sampling as usize).div_ceil(hmax * 8),
                (h_px * c.v_sampling as usize).div_ceil(vmax * 8),
            )
        })
        .collect();
    let (mcus_x, mcus_y) = if n == 1 {
        data_blocks[0]
    } else {
        (w_px.div_ceil(8 * hmax), h_px.div_ceil(8 * vmax))
    };
    for (c, &(bx, by)) in coeffs.components.iter().zip(&data_blocks) {
        if c.blocks_x < bx || c.blocks_y < by || c.blocks.len() < c.blocks_x * c.blocks_y {
            return Err(Error::Decode(
                "coefficient planes smaller than the frame".into(),
            ));
        }
    }
    let mut w = Writer::new(w_px * h_px / 2 + 1024);
    let mut prev = [0i16; 4];
    let ri = coeffs.restart_interval as usize;
    let (mut mcu, mut index) = (0usize, 0u8);
    let mut dummy = [0i16; 64];
    for my in 0..mcus_y {
        for mx in 0..mcus_x {
            if ri > 0 && mcu > 0 && mcu.is_multiple_of(ri) {
                w.restart(index);
                index = (index + 1) & 7;
                prev = [0; 4];
            }
            for (ci, c) in coeffs.components.iter().enumerate() {
                let s = (ci > 0) as usize;
                let (bh, bv) = if n == 1 {
                    (1, 1)
                } else {
                    (c.h_sampling as usize, c.v_sampling as usize)
                };
                for v in 0..bv {
                    for h in 0..bh {
                        let (bx, by) = (mx * bh + h, my * bv + v);
                        let i = by * c.blocks_x + bx;
                        let (blk, mask) = if bx >= data_blocks[ci].0 || by >= data_blocks[ci].1 {
                            dummy[0] = prev[ci];
                            (&dummy, 0)
                        } else {
                            let blk = &c.blocks[i];
                            let known = masks.and_then(|m| m.get(ci)?.get(i).copied());
                            (blk, known.unwrap_or_else(|| nonzero_mask(blk)))
                        };
                        encode_block(&mut w, blk, mask, &mut prev[ci], &t.dc[s], &t.ac[s])?;
                    }
                }
            }
            mcu += 1;
        }
    }
    let data = w.finish();
    let mut out = Vec::with_capacity(data.len() + 2048);
    write_frame(&mut out, coeffs, source);
    out.extend_from_slice(&data);
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

/// SOI and the header of a baseline JPEG with the standard tables for
/// `coeffs` (its blocks unused): the source's JFIF and Adobe segments (how
/// its colour is read), the quantization tables, frame, Huffman tables,
/// restart interval, scan header.
fn write_frame(out: &mut Vec<u8>, coeffs: &lt::JpegCoefficients, source: &Jpeg) {
    let n = coeffs.components.len();
    let ri = coeffs.restart_interval as usize;
    out.extend_from_slice(&[0xFF, 0xD8]);
    for seg in &source.segments {
        if matches!(seg.marker, 0xE0 | 0xEE) {
            out.extend_from_slice(&seg.raw[seg.raw.len() - seg.payload.len() - 4..]);
        }
    }
    for (i, q) in coeffs.quant_tables.iter().enumerate() {
        lt::encode::marker_writer::write_dqt(out, i as u8, q);
    }
    let extended = coeffs
        .quant_tables
        .iter()
        .any(|q| q.iter().any(|&v| v > 255));
    out.extend_from_slice(&[0xFF, if extended { 0xC1 } else { 0xC0 }]);
    out.extend_from_slice(&((8 + 3 * n) as u16).to_be_bytes());
    out.push(8);
    out.extend_from_slice(&coeffs.height.to_be_bytes());
    out.extend_from_slice(&coeffs.width.to_be_bytes());
    out.push(n as u8);
    for c in &coeffs.components {
        out.extend_from_slice(&[
            c.component_id,
            c.h_sampling << 4 | c.v_sampling,
            c.quant_table_index,
        ]);
    }
    write_standard_dht(out, n > 1);
    if ri > 0 {
        out.extend_from_slice(&[0xFF, 0xDD, 0, 4]);
        out.extend_from_slice(&coeffs.restart_interval.to_be_bytes());
    }
    write_sos(
        out,
        coeffs
            .components
            .iter()
            .enumerate()
            .map(|(i, c)| (c.component_id, (i > 0) as u8)),
    );
}

/// A coefficient set for our scan writers: the frame's size and precision,
/// its components, tables and restart interval. The JFIF/Adobe fields stay
/// empty: the writers never emit APPn segments (the header is our own).
pub(crate) fn coefficient_set(
    (width, height, data_precision): (u16, u16, u8),
    components: Vec<lt::ComponentCoefficients>,
    quant_tables: Vec<[u16; 64]>,
    restart_interval: u16,
) -> lt::JpegCoefficients {
    lt::JpegCoefficients {
        width,
        height,
        data_precision,
        components,
        quant_tables,
        restart_interval,
        density_unit: 0,
        x_density: 1,
        y_density: 1,
        saw_jfif_marker: false,
        adobe_transform: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{jpeg, Limits};
    use crate::test_util::fixture;

    const BASELINE: [&str; 5] = [
        "jpeg_icc.jpg",
        "jpeg_restart.jpg",
        "jpeg_gray.jpg",
        "jpeg_full.jpg",
        "jpeg_cmyk.jpg",
    ];

    fn photo_420(w: usize, h: usize, restart: bool) -> Vec<u8> {
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i * 7 + (i / (3 * w)) * 13) % 251) as u8 ^ (i % 3 * 40) as u8)
            .collect();
        let mut e = lt::Encoder::new(&rgb, w, h, lt::PixelFormat::Rgb)
            .quality(90)
            .subsampling(lt::Subsampling::S420);
        if restart {
            e = e.restart_rows(1);
        }
        e.encode().unwrap()
    }

    fn plan<'a>(j: &'a jpeg::Jpeg<'a>) -> Plan<'a> {
        Plan::new(j).unwrap().expect("a baseline scan")
    }

    /// Stepping over a block with the combined code-and-value table takes
    /// exactly the bits (and DC predictors) decoding it takes, MCU by MCU,
    /// on standard and optimised tables, busy and flat pictures.
    #[test]
    fn skipping_a_block_takes_the_bits_decoding_it_takes() {
        let mut files: Vec<Vec<u8>> = BASELINE
            .iter()
            .map(|n| fixture(&format!("dirty/{n}")))
            .collect();
        for (optimise, sub) in [
            (false, lt::Subsampling::S444),
            (true, lt::Subsampling::S444),
            (true, lt::Subsampling::S420),
        ] {
            for busy in [false, true] {
                let (w, h) = (97, 61);
                let rgb: Vec<u8> = (0..w * h * 3)
                    .map(|i| {
                        if busy {
                            ((i * 2654435761usize) >> 13) as u8
                        } else {
                            (i / 40) as u8
                        }
                    })
                    .collect();
                let e = lt::Encoder::new(&rgb, w, h, lt::PixelFormat::Rgb)
                    .quality(if busy { 98 } else { 60 })
                    .subsampling(sub)
                    .optimize_huffman(optimise);
                files.push(e.encode().unwrap());
            }
        }
        for (i, bytes) in files.iter().enumerate() {
            let j = jpeg::parse(bytes, &Limits::default()).unwrap();
            let p = plan(&j);
            let (mut a, mut b) = (Reader::new(p.data), Reader::new(p.data));
            let (mut pa, mut pb) = ([0i32; 4], [0i32; 4]);
            for mcu in 0..p.mcus_x * p.mcus_y {
                let mut h = Hidden::default();
                // A lone MCU: its restart marker read as `walk_range` would.
                if p.restart > 0 && mcu > 0 && mcu % p.restart as usize == 0 {
                    let index = 0xD0 + ((mcu / p.restart as usize - 1) & 7) as u8;
                    a.end_interval(Some(index), &mut h).unwrap();
                    b.end_interval(Some(index), &mut h).unwrap();
                    (pa, pb) = ([0; 4], [0; 4]);
                }
                p.walk_range(&mut a, &mut pa, mcu..mcu + 1, &mut h, &mut NoSink)
                    .unwrap();
                p.walk_range(&mut b, &mut pb, mcu..mcu + 1, &mut h, &mut Skip)
                    .unwrap();
                assert_eq!(
                    a.position().unwrap(),
                    b.position().unwrap(),
                    "file {i} mcu {mcu}"
                );
                assert_eq!(pa, pb, "file {i} mcu {mcu}");
            }
        }
    }

    /// The blocks that hold picture (not MCU padding) of each component.
    fn picture_blocks(c: &lt::JpegCoefficients) -> Vec<Vec<[i16; 64]>> {
        let hmax = c
            .components
            .iter()
            .map(|c| c.h_sampling as usize)
            .max()
            .unwrap();
        let vmax = c
            .components
            .iter()
            .map(|c| c.v_sampling as usize)
            .max()
            .unwrap();
        c.components
            .iter()
            .map(|comp| {
                let bx = (c.width as usize * comp.h_sampling as usize).div_ceil(hmax * 8);
                let by = (c.height as usize * comp.v_sampling as usize).div_ceil(vmax * 8);
                (0..by)
                    .flat_map(|y| (0..bx).map(move |x| (x, y)))
                    .map(|(x, y)| comp.blocks[y * comp.blocks_x + x])
                    .collect()
            })
            .collect()
    }

    fn inputs() -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = BASELINE
            .iter()
            .map(|n| (n.to_string(), fixture(&format!("dirty/{n}"))))
            .collect();
        v.push(("420 333x250".into(), photo_420(333, 250, false)));
        v.push(("420 333x250 restarts".into(), photo_420(333, 250, true)));
        v
    }

    #[test]
    fn transcode_keeps_every_coefficient_and_table() {
        for (name, bytes) in inputs() {
            let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
            let out = plan(&j).transcode(&j).unwrap();
            let (a, b) = (
                lt::read_coefficients(&bytes).unwrap(),
                lt::read_coefficients(&out).unwrap(),
            );
            assert_eq!(picture_blocks(&a), picture_blocks(&b), "{name}");
            assert_eq!(a.quant_tables, b.quant_tables, "{name}");
            assert_eq!(a.restart_interval, b.restart_interval, "{name}");
            // Our own reading agrees with libjpeg-turbo-rs'.
            let (c, masks) = plan(&j).coefficients().unwrap();
            assert_eq!(picture_blocks(&a), picture_blocks(&c), "{name}");
            for (comp, m) in c.components.iter().zip(&masks) {
                for (blk, &m) in comp.blocks.iter().zip(m) {
                    assert_eq!(nonzero_mask(blk) & !1, m & !1, "{name}");
                }
            }
            // The writer from coefficients gives the same stream, once the
            // container writer has rebuilt the header.
            let canon = |b: &[u8]| {
                let policy = crate::container::RewritePolicy {
                    keep_icc: false,
                    orientation: None,
                };
                jpeg::parse(b, &Limits::default()).unwrap().rewrite(&policy)
            };
            assert_eq!(
                canon(&write_coefficients(&c, &j).unwrap()),
                canon(&out),
                "{name}"
            );
        }
    }

    #[test]
    fn clean_scans_hide_nothing_and_transcodes_are_canonical() {
        for (name, bytes) in inputs() {
            let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
            assert_eq!(plan(&j).audit().unwrap(), Hidden::default(), "{name}");
            let out = plan(&j).transcode(&j).unwrap();
            let o = jpeg::parse(&out, &Limits::default()).unwrap();
            assert_eq!(plan(&o).audit().unwrap(), Hidden::default(), "{name}");
            // Transcoding again changes nothing.
            assert_eq!(plan(&o).transcode(&o).unwrap(), out, "{name}");
        }
    }

    fn scan_end(b: &[u8]) -> usize {
        b.windows(2).rposition(|w| w == [0xFF, 0xD9]).unwrap()
    }

    #[test]
    fn bytes_after_the_last_block_and_before_restarts_are_found() {
        let canary = b"SCAN-CANARY-Jane-Q-Patientname";
        let mut bytes = photo_420(333, 250, true);
        let at = scan_end(&bytes);
        bytes.splice(at..at, canary.iter().copied());
        // And before the first restart marker.
        let sos = bytes.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let rst = sos
            + bytes[sos..]
                .windows(2)
                .position(|w| w == [0xFF, 0xD0])
                .unwrap();
        bytes.splice(rst..rst, canary[..7].iter().copied());
        let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
        let hidden = plan(&j).audit().unwrap();
        assert_eq!(hidden.tail, canary.len());
        assert_eq!(hidden.before_restarts, 7);
        let words: Vec<String> = hidden.findings().into_iter().map(|f| f.detail).collect();
        assert!(
            words.iter().any(|w| w.contains("after its last block")),
            "{words:?}"
        );
        assert!(
            words.iter().any(|w| w.contains("before restart markers")),
            "{words:?}"
        );
        let out = plan(&j).transcode(&j).unwrap();
        assert!(!out.windows(7).any(|w| w == &canary[..7]));
    }

    #[test]
    fn padding_bits_that_are_not_ones_are_found() {
        let bytes = photo_420(333, 250, true);
        // The byte before each restart marker ends in padding (ones) unless
        // its interval ended on a byte boundary: clear its low bit.
        let mut dirty = bytes.clone();
        let sos = dirty.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        let mut changed = 0;
        for i in sos + 2..dirty.len() - 1 {
            if dirty[i] == 0xFF && (0xD0..=0xD7).contains(&dirty[i + 1]) && dirty[i - 1] & 1 == 1 {
                // Not the stuffed zero of an 0xFF00.
                if dirty[i - 1] != 0xFF {
                    dirty[i - 1] &= 0xFE;
                    changed += 1;
                }
            }
        }
        assert!(changed > 3);
        let j = jpeg::parse(&dirty, &Limits::default()).unwrap();
        let hidden = plan(&j).audit().unwrap();
        assert!(hidden.padding > 0, "{hidden:?}");
        // A cleared bit of picture data (an interval ending on a byte
        // boundary) changes a coefficient but hides nothing we can see.
        assert_eq!(hidden.tail, 0);
    }

    #[test]
    fn truncated_data_is_an_error_not_zeros() {
        let bytes = photo_420(333, 250, false);
        let end = scan_end(&bytes);
        let mut cut = bytes[..end - 400].to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        let j = jpeg::parse(&cut, &Limits::default()).unwrap();
        let e = plan(&j).audit().unwrap_err().to_string();
        assert!(e.contains("ends before its last block"), "{e}");
        assert!(plan(&j).transcode(&j).is_err());
    }

    #[test]
    fn progressive_and_multi_scan_files_are_not_planned() {
        let bytes = fixture("dirty/jpeg_progressive.jpg");
        let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
        assert!(Plan::new(&j).unwrap().is_none());
    }

    #[test]
    fn nonzero_mask_matches_a_plain_scan() {
        let mut b = [0i16; 64];
        for (i, v) in [(0, 5), (1, -1), (7, 300), (8, 1), (31, -32768), (63, 2)] {
            b[i] = v;
        }
        let want = b
            .iter()
            .enumerate()
            .fold(0u64, |m, (k, &v)| m | ((v != 0) as u64) << k);
        assert_eq!(nonzero_mask(&b), want);
    }
}
