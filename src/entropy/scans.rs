//! Every scan of a Huffman JPEG, progressive or sequential, decoded into
//! one buffer of coefficients: what `check --thorough` needs to find the
//! bytes after the last block of each scan, before each restart marker and
//! padding bits that are not ones in files [`super::Plan`] does not walk
//! (progressive, several sequential scans), and what `clean --thorough`
//! re-codes from.
//!
//! ```text
//! for each SOS, in order (DHT and DRI in force at that point):
//!   DC first  (Ss=0, Ah=0): DC difference << Al
//!   DC refine (Ss=0, Ah>0): one bit per block
//!   AC first  (Ss>0, Ah=0): runs and EOB runs, values << Al
//!   AC refine (Ss>0, Ah>0): correction bits for the nonzero history,
//!                           new +-1 << Al values, EOB runs
//!   sequential (Ss=0, Se=63, Ah=Al=0): the baseline block decode
//! ```
//!
//! A refinement scan reads bits according to which coefficients are
//! already nonzero, so, unlike the baseline walk, this keeps every block.

use super::{corrupt, decode_block, DecodeTable, Hidden, Reader};
use crate::container::jpeg::Jpeg;
use crate::error::{Error, Result};
use libjpeg_turbo_rs as lt;

/// One frame component and its blocks (the MCU-padded grid).
struct Comp {
    id: u8,
    h: usize,
    v: usize,
    tq: u8,
    /// Its quantization table, as in force at its first scan (libjpeg
    /// latches it there; a DQT after that does not apply to it).
    quant: Option<[u16; 64]>,
    /// Blocks that hold picture (a non-interleaved scan walks these).
    bx: usize,
    by: usize,
    /// The padded grid the interleaved scans fill.
    stride: usize,
    rows: usize,
    coefs: Vec<[i16; 64]>,
}

/// The frame and its coefficients once every scan is decoded.
pub struct Decoded {
    width: u16,
    height: u16,
    precision: u8,
    comps: Vec<Comp>,
    restart: u16,
    /// What the scans carry beyond the picture.
    pub hidden: Hidden,
}

/// The parameters of one scan.
struct Scan {
    /// (frame component index, DC table, AC table).
    comps: Vec<(usize, usize, usize)>,
    ss: usize,
    se: usize,
    ah: u8,
    al: u8,
}

/// Decodes every scan of `jpeg`; `None` when it is not a Huffman-coded
/// sequential or progressive frame (arithmetic, lossless, hierarchical) or
/// has no scan. `max_alloc` bounds the coefficient buffer.
pub fn decode(jpeg: &Jpeg, max_alloc: u64) -> Result<Option<Decoded>> {
    let mut dht: Dht = [[None; 4]; 2];
    let mut d: Option<Decoded> = None;
    let mut progressive = false;
    let mut restart = 0u16;
    let mut quant: [Option<[u16; 64]>; 4] = [None; 4];
    let mut scans = 0usize;
    let mut duplicates = 0usize;
    for seg in &jpeg.segments {
        let p = seg.payload;
        match seg.marker {
            0xC4 => {
                let tables = super::huffman_tables(p)
                    .ok_or_else(|| corrupt("a Huffman table that does not fit its segment"))?;
                for (tc, th, counts, symbols) in tables {
                    dht[tc][th] = Some((counts, symbols));
                    duplicates += DecodeTable::new(counts, symbols)?.duplicate as usize;
                }
            }
            0xDD if p.len() == 2 => restart = u16::from_be_bytes([p[0], p[1]]),
            0xDB => super::read_dqt(p, &mut quant)?,
            0xC0..=0xC2 if d.is_none() => {
                progressive = seg.marker == 0xC2;
                let Some(frame) = frame(p, max_alloc)? else {
                    return Ok(None);
                };
                d = Some(frame);
            }
            m if (0xC3..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC) => return Ok(None),
            0xDA => {
                let Some(f) = d.as_mut() else {
                    return Err(corrupt("a scan before the frame header"));
                };
                let scan = scan_header(p, f, progressive, &dht)?;
                for &(fi, _, _) in &scan.0.comps {
                    let c = &mut f.comps[fi];
                    c.quant = c.quant.or(quant[c.tq as usize & 3]);
                }
                let tables = scan.1;
                walk(f, &scan.0, &tables, restart, seg.data)?;
                scans += 1;
            }
            _ => {}
        }
    }
    let Some(mut d) = d.filter(|_| scans > 0) else {
        return Ok(None);
    };
    d.restart = restart;
    d.hidden.duplicate_codes = duplicates;
    Ok(Some(d))
}

fn frame(p: &[u8], max_alloc: u64) -> Result<Option<Decoded>> {
    if p.len() < 6 || !matches!(p[0], 8 | 12) {
        return Ok(None);
    }
    let height = u16::from_be_bytes([p[1], p[2]]);
    let width = u16::from_be_bytes([p[3], p[4]]);
    let n = p[5] as usize;
    if height == 0 || width == 0 || n == 0 || n > 4 || p.len() != 6 + 3 * n {
        return Ok(None);
    }
    let raw: Vec<(u8, usize, usize, u8)> = p[6..]
        .chunks_exact(3)
        .map(|c| (c[0], (c[1] >> 4) as usize, (c[1] & 15) as usize, c[2]))
        .collect();
    if raw
        .iter()
        .any(|c| !(1..=4).contains(&c.1) || !(1..=4).contains(&c.2))
    {
        return Err(corrupt("a component sampling factor outside 1..4"));
    }
    let hmax = raw.iter().map(|c| c.1).max().unwrap_or(1);
    let vmax = raw.iter().map(|c| c.2).max().unwrap_or(1);
    let (mx, my) = (
        (width as usize).div_ceil(8 * hmax),
        (height as usize).div_ceil(8 * vmax),
    );
    let blocks: u64 = raw.iter().map(|c| (mx * c.1 * my * c.2) as u64).sum();
    if blocks.saturating_mul(128) > max_alloc {
        return Err(Error::TooLarge(format!(
            "{width}x{height} JPEG needs more memory than the limit to decode its scans"
        )));
    }
    let comps = raw
        .iter()
        .map(|&(id, h, v, tq)| Comp {
            id,
            h,
            v,
            tq,
            quant: None,
            bx: (width as usize * h).div_ceil(hmax * 8),
            by: (height as usize * v).div_ceil(vmax * 8),
            stride: mx * h,
            rows: my * v,
            coefs: vec![[0; 64]; mx * h * my * v],
        })
        .collect();
    Ok(Some(Decoded {
        width,
        height,
        precision: p[0],
        comps,
        restart: 0,
        hidden: Hidden::default(),
    }))
}

type Dht<'s> = [[Option<(&'s [u8], &'s [u8])>; 4]; 2];

/// The scan's components and spectral band, and the tables it uses.
fn scan_header(
    p: &[u8],
    f: &Decoded,
    progressive: bool,
    dht: &Dht,
) -> Result<(Scan, Vec<DecodeTable>)> {
    let n = p.first().copied().unwrap_or(0) as usize;
    if n == 0 || n > 4 || p.len() != 4 + 2 * n {
        return Err(corrupt("a scan header of the wrong length"));
    }
    let (ss, se) = (p[1 + 2 * n] as usize, p[2 + 2 * n] as usize);
    let (ah, al) = (p[3 + 2 * n] >> 4, p[3 + 2 * n] & 15);
    let valid = if progressive {
        let dc = ss == 0 && se == 0;
        let ac = (1..=se).contains(&ss) && se <= 63 && n == 1;
        (dc || ac) && al <= 13 && (ah == 0 || ah == al + 1)
    } else {
        (ss, se, ah, al) == (0, 63, 0, 0)
    };
    if !valid {
        return Err(corrupt(format!(
            "scan parameters Ss={ss} Se={se} Ah={ah} Al={al} are not valid here"
        )));
    }
    let mut tables = Vec::new();
    let mut comps = Vec::new();
    let mut table = |class: usize, slot: u8| -> Result<usize> {
        let (counts, symbols) = dht[class][slot as usize & 3]
            .ok_or_else(|| corrupt(format!("Huffman table {slot} is not defined")))?;
        tables.push(DecodeTable::new(counts, symbols)?);
        Ok(tables.len() - 1)
    };
    for c in p[1..1 + 2 * n].chunks_exact(2) {
        let fi =
            f.comps.iter().position(|x| x.id == c[0]).ok_or_else(|| {
                corrupt(format!("the scan names component {} the frame lacks", c[0]))
            })?;
        if comps.iter().any(|x: &(usize, usize, usize)| x.0 == fi) {
            return Err(corrupt("a component twice in one scan"));
        }
        // Only the tables the scan's kind reads need to exist.
        let dc = if ss == 0 && ah == 0 {
            table(0, c[1] >> 4)?
        } else {
            usize::MAX
        };
        let ac = if se > 0 && !(ss == 0 && progressive) {
            table(1, c[1] & 15)?
        } else {
            usize::MAX
        };
        comps.push((fi, dc, ac));
    }
    Ok((
        Scan {
            comps,
            ss,
            se,
            ah,
            al,
        },
        tables,
    ))
}

/// Decodes one scan's data into `f`'s blocks.
fn walk(f: &mut Decoded, s: &Scan, t: &[DecodeTable], restart: u16, data: &[u8]) -> Result<()> {
    let mut st = State {
        r: Reader::new(data),
        pred: [0; 4],
        eobrun: 0,
        index: 0,
        unit: 0,
        restart: restart as usize,
    };
    if s.comps.len() > 1 {
        let c0 = &f.comps[0];
        let (mx, my) = (c0.stride / c0.h, c0.rows / c0.v);
        for y in 0..my {
            for x in 0..mx {
                st.next_unit(&mut f.hidden)?;
                for (k, &(fi, _, _)) in s.comps.iter().enumerate() {
                    let (h, v, stride) = (f.comps[fi].h, f.comps[fi].v, f.comps[fi].stride);
                    for dy in 0..v {
                        for dx in 0..h {
                            let b = (y * v + dy) * stride + x * h + dx;
                            block(f, &mut st, s, t, k, b)?;
                        }
                    }
                }
            }
        }
    } else {
        let fi = s.comps[0].0;
        let (bx, by, stride) = (f.comps[fi].bx, f.comps[fi].by, f.comps[fi].stride);
        for y in 0..by {
            for x in 0..bx {
                st.next_unit(&mut f.hidden)?;
                block(f, &mut st, s, t, 0, y * stride + x)?;
            }
        }
    }
    if st.eobrun > 0 {
        // An EOB run longer than the blocks left: room for hidden bits.
        f.hidden.noncanonical += 1;
    }
    st.r.end_interval(None, &mut f.hidden)
}

/// A scan's decoding state across its blocks.
struct State<'a> {
    r: Reader<'a>,
    pred: [i32; 4],
    eobrun: u32,
    /// The next restart marker (0..7) and the MCU count.
    index: u8,
    unit: usize,
    restart: usize,
}

impl State<'_> {
    /// Before each MCU: a restart marker when the interval says so.
    fn next_unit(&mut self, hidden: &mut Hidden) -> Result<()> {
        if self.restart > 0 && self.unit > 0 && self.unit.is_multiple_of(self.restart) {
            hidden.noncanonical += (self.eobrun > 0) as usize;
            self.r.end_interval(Some(0xD0 + self.index), hidden)?;
            self.index = (self.index + 1) & 7;
            self.pred = [0; 4];
            self.eobrun = 0;
        }
        self.unit += 1;
        Ok(())
    }
}

/// Block `b` of scan component `k`.
#[inline(always)]
fn block(
    f: &mut Decoded,
    st: &mut State,
    s: &Scan,
    t: &[DecodeTable],
    k: usize,
    b: usize,
) -> Result<()> {
    let (fi, dc, ac) = s.comps[k];
    let blk = &mut f.comps[fi].coefs[b];
    let r = &mut st.r;
    r.need();
    match (s.ss, s.ah) {
        (0, _) if s.se == 63 => {
            let mut fresh = [0i16; 64];
            let (_, canonical) = decode_block(r, &t[dc], &t[ac], &mut st.pred[k], &mut fresh)?;
            f.hidden.noncanonical += !canonical as usize;
            *blk = fresh;
        }
        (0, 0) => {
            let size = r.symbol(&t[dc])? as u32;
            if size > 15 {
                return Err(corrupt("a DC difference of more than 15 bits"));
            }
            r.need();
            st.pred[k] += r.value(size);
            blk[0] = (st.pred[k] << s.al) as i16;
        }
        (0, _) => blk[0] |= (r.bits(1) << s.al) as i16,
        (_, 0) => ac_first(r, &t[ac], blk, s, &mut st.eobrun, &mut f.hidden)?,
        _ => ac_refine(r, &t[ac], blk, s, &mut st.eobrun)?,
    }
    Ok(())
}

/// The extra bits of an EOB run of class `run` (none for class 0).
fn extra(r: &mut Reader, run: u32) -> u32 {
    if run == 0 {
        0
    } else {
        r.bits(run)
    }
}

/// An AC first scan's block: runs of zeros and values, or an EOB run.
fn ac_first(
    r: &mut Reader,
    ac: &DecodeTable,
    blk: &mut [i16; 64],
    s: &Scan,
    eobrun: &mut u32,
    hidden: &mut Hidden,
) -> Result<()> {
    if *eobrun > 0 {
        *eobrun -= 1;
        return Ok(());
    }
    let mut k = s.ss;
    let mut zrl = false;
    while k <= s.se {
        r.need();
        let rs = r.symbol(ac)? as u32;
        let (run, size) = (rs >> 4, rs & 15);
        if size != 0 {
            k += run as usize;
            if k > s.se {
                return Err(corrupt("a run of zeros past the end of a band"));
            }
            r.need();
            blk[k] = (r.value(size) << s.al) as i16;
            zrl = false;
        } else if run == 15 {
            k += 15;
            zrl = true;
        } else {
            r.need();
            *eobrun = (1 << run) + extra(r, run) - 1;
            // A run of zeros coded just before the end of the band.
            hidden.noncanonical += zrl as usize;
            return Ok(());
        }
        k += 1;
    }
    hidden.noncanonical += zrl as usize;
    Ok(())
}

/// An AC refinement scan's block (ITU T.81 G.1.2.3, as libjpeg reads it):
/// a correction bit for each coefficient already nonzero, new coefficients
/// of +-1 << Al placed after `run` zero ones.
fn ac_refine(
    r: &mut Reader,
    ac: &DecodeTable,
    blk: &mut [i16; 64],
    s: &Scan,
    eobrun: &mut u32,
) -> Result<()> {
    let (p1, m1) = (1i16 << s.al, -1i16 << s.al);
    let correct = |r: &mut Reader, c: &mut i16| {
        r.need();
        if r.bits(1) == 1 && *c & p1 == 0 {
            *c += if *c >= 0 { p1 } else { m1 };
        }
    };
    let mut k = s.ss;
    if *eobrun == 0 {
        while k <= s.se {
            r.need();
            let rs = r.symbol(ac)? as u32;
            let (mut run, size) = ((rs >> 4) as i32, rs & 15);
            let mut value = 0i16;
            if size != 0 {
                if size != 1 {
                    return Err(corrupt("a refinement coefficient larger than one bit"));
                }
                r.need();
                value = if r.bits(1) == 1 { p1 } else { m1 };
            } else if run != 15 {
                r.need();
                *eobrun = (1 << run) + extra(r, run as u32);
                break;
            }
            while k <= s.se {
                if blk[k] != 0 {
                    correct(r, &mut blk[k]);
                } else {
                    if run == 0 {
                        break;
                    }
                    run -= 1;
                }
                k += 1;
            }
            if value != 0 {
                if k > s.se {
                    return Err(corrupt("a new coefficient past the end of a band"));
                }
                blk[k] = value;
            }
            k += 1;
        }
    }
    if *eobrun > 0 {
        while k <= s.se {
            if blk[k] != 0 {
                correct(r, &mut blk[k]);
            }
            k += 1;
        }
        *eobrun -= 1;
    }
    Ok(())
}

impl Decoded {
    /// The coefficients in libjpeg-turbo-rs' layout, for the writer.
    pub fn coefficients(self) -> Result<lt::JpegCoefficients> {
        // Distinct latched tables, in the order the components use them.
        let mut quant_tables: Vec<[u16; 64]> = Vec::new();
        let mut components = Vec::new();
        for c in self.comps {
            let q = c
                .quant
                .ok_or_else(|| corrupt(format!("quantization table {} is not defined", c.tq)))?;
            let index = match quant_tables.iter().position(|t| *t == q) {
                Some(i) => i,
                None => {
                    quant_tables.push(q);
                    quant_tables.len() - 1
                }
            };
            components.push(lt::ComponentCoefficients {
                blocks: c.coefs,
                blocks_x: c.stride,
                blocks_y: c.rows,
                h_sampling: c.h as u8,
                v_sampling: c.v as u8,
                quant_table_index: index as u8,
                component_id: c.id,
            });
        }
        Ok(super::coefficient_set(
            (self.width, self.height, self.precision),
            components,
            quant_tables,
            self.restart,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{jpeg, Limits};
    use crate::test_util::fixture;

    const MAX: u64 = 1 << 30;

    fn encode(w: usize, h: usize, gray: bool, restart: bool) -> Vec<u8> {
        let n = if gray { 1 } else { 3 };
        let px: Vec<u8> = (0..w * h * n)
            .map(|i| ((i * 7 + (i / (n * w)) * 13) % 251) as u8 ^ (i % n * 40) as u8)
            .collect();
        let format = if gray {
            lt::PixelFormat::Grayscale
        } else {
            lt::PixelFormat::Rgb
        };
        let mut e = lt::Encoder::new(&px, w, h, format)
            .quality(90)
            .progressive(true)
            .subsampling(lt::Subsampling::S420);
        if restart {
            e = e.restart_rows(1);
        }
        e.encode().unwrap()
    }

    fn inputs() -> Vec<(String, Vec<u8>)> {
        vec![
            ("fixture".into(), fixture("dirty/jpeg_progressive.jpg")),
            ("420 333x250".into(), encode(333, 250, false, false)),
            ("420 333x250 restarts".into(), encode(333, 250, false, true)),
            ("gray 97x61 restarts".into(), encode(97, 61, true, true)),
        ]
    }

    /// The blocks that hold picture, per component.
    fn picture(c: &lt::JpegCoefficients) -> Vec<Vec<[i16; 64]>> {
        let hmax = c.components.iter().map(|c| c.h_sampling).max().unwrap() as usize;
        let vmax = c.components.iter().map(|c| c.v_sampling).max().unwrap() as usize;
        c.components
            .iter()
            .map(|comp| {
                let bx = (c.width as usize * comp.h_sampling as usize).div_ceil(hmax * 8);
                let by = (c.height as usize * comp.v_sampling as usize).div_ceil(vmax * 8);
                (0..by * bx)
                    .map(|i| comp.blocks[(i / bx) * comp.blocks_x + i % bx])
                    .collect()
            })
            .collect()
    }

    fn decoded(bytes: &[u8]) -> Decoded {
        let j = jpeg::parse(bytes, &Limits::default()).unwrap();
        decode(&j, MAX).unwrap().expect("a Huffman frame")
    }

    #[test]
    fn progressive_scans_decode_to_libjpeg_turbo_rs_coefficients_and_hide_nothing() {
        for (name, bytes) in inputs() {
            let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
            assert!(super::super::Plan::new(&j).unwrap().is_none(), "{name}");
            let d = decoded(&bytes);
            assert_eq!(d.hidden, Hidden::default(), "{name}");
            let ours = d.coefficients().unwrap();
            let theirs = lt::read_coefficients(&bytes).unwrap();
            assert_eq!(picture(&ours), picture(&theirs), "{name}");
            assert_eq!(ours.quant_tables, theirs.quant_tables, "{name}");
        }
    }

    fn sos_positions(b: &[u8]) -> Vec<usize> {
        (0..b.len() - 1)
            .filter(|&i| b[i] == 0xFF && b[i + 1] == 0xDA)
            .collect()
    }

    #[test]
    fn bytes_after_each_scan_and_before_restarts_are_found() {
        let canary = b"PROG-CANARY-Jane";
        let mut bytes = encode(333, 250, false, true);
        let scans = sos_positions(&bytes);
        assert!(scans.len() > 3);
        // After the data of the second scan (before the marker that ends
        // it), and before the first restart marker of the last scan.
        let second =
            scans[1] + 2 + u16::from_be_bytes([bytes[scans[1] + 2], bytes[scans[1] + 3]]) as usize;
        let end = second
            + (second..bytes.len() - 1)
                .position(|i| bytes[i] == 0xFF && !matches!(bytes[i + 1], 0 | 0xD0..=0xD7))
                .unwrap();
        bytes.splice(end..end, canary.iter().copied());
        let last = sos_positions(&bytes)[scans.len() - 1];
        let rst = last
            + bytes[last..]
                .windows(2)
                .position(|w| w == [0xFF, 0xD0])
                .unwrap();
        bytes.splice(rst..rst, canary[..5].iter().copied());
        let h = decoded(&bytes).hidden;
        assert_eq!(h.tail, canary.len(), "{h:?}");
        assert_eq!(h.before_restarts, 5, "{h:?}");
        let words: Vec<String> = h.findings().into_iter().map(|f| f.detail).collect();
        assert!(
            words.iter().any(|w| w.contains("after its last block")),
            "{words:?}"
        );
    }

    #[test]
    fn padding_bits_that_are_not_ones_are_found() {
        let bytes = encode(333, 250, false, true);
        let mut dirty = bytes.clone();
        let first = sos_positions(&dirty)[0];
        let mut changed = 0;
        for i in first + 2..dirty.len() - 1 {
            let rst = dirty[i] == 0xFF && (0xD0..=0xD7).contains(&dirty[i + 1]);
            if rst && dirty[i - 1] & 1 == 1 && dirty[i - 1] != 0xFF {
                dirty[i - 1] &= 0xFE;
                changed += 1;
            }
        }
        assert!(changed > 3);
        assert!(decoded(&dirty).hidden.padding > 0);
    }

    #[test]
    fn truncated_or_bad_scans_are_errors_not_panics() {
        let bytes = encode(120, 80, false, false);
        let j = jpeg::parse(&bytes, &Limits::default()).unwrap();
        let end = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]).unwrap();
        let mut cut = bytes[..end - 300].to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        let c = jpeg::parse(&cut, &Limits::default()).unwrap();
        let e = decode(&c, MAX).err().expect("truncated").to_string();
        assert!(e.contains("compressed data"), "{e}");
        // Every byte of the scan data flipped in turn: an error or a decode.
        let first = sos_positions(&bytes)[1];
        for i in (first + 4..end).step_by(7) {
            let mut b = bytes.clone();
            b[i] ^= 0x5A;
            if let Ok(j) = jpeg::parse(&b, &Limits::default()) {
                let _ = decode(&j, MAX);
            }
        }
        assert!(decode(&j, 1000).is_err(), "the memory limit holds");
        // Baseline and arithmetic frames.
        let base = fixture("dirty/jpeg_icc.jpg");
        let j = jpeg::parse(&base, &Limits::default()).unwrap();
        assert!(decode(&j, MAX).unwrap().is_some(), "sequential decodes too");
    }
}
