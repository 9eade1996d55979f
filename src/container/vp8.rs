//! The VP8 (lossy WebP) bitstream walked to its end: the frame header, the
//! first partition (segment, filter and quantiser headers, token
//! probability updates, every macroblock's modes) and every DCT token
//! partition, all through the boolean decoder, without reconstructing a
//! pixel. What it learns is how many bytes of each partition the decoder
//! reads; the rest of a partition (and of the chunk) is slack where anything
//! can hide, so the writer cuts it and rebuilds the size fields.
//!
//! "Reads" is RFC 6386's decoder: a bit is decided on an 8-bit window of
//! the data, and a byte counts as read once the window reaches it. Bytes
//! past the last window never change a decision, so cutting them decodes to
//! the same pixels in every conforming decoder. No decoder needs more:
//! libwebp refuses a frame whose window runs past a partition, and decodes
//! every cut file the same (tried on 28 cwebp files; in 4, one byte fewer
//! was still enough for it, so a partition's last kept byte may be one that
//! libwebp ignores); image-webp tolerates a byte fewer.
//!
//! Ported from image-webp 0.2.4 `src/vp8.rs` (MIT OR Apache-2.0, by the
//! image-rs developers), itself after RFC 6386; the probability tables below
//! are RFC 6386's, copied from that file.

use crate::error::{Error, Result};

const FORMAT: &str = "WebP (VP8)";

/// The boolean decoder of RFC 6386 section 7, counting the bytes its
/// window has reached.
struct BoolDecoder<'a> {
    data: &'a [u8],
    /// Bytes loaded into `value`, the ones past `data` included (as zeros).
    pos: usize,
    value: u32,
    range: u32,
    /// Bits loaded beyond the 8-bit window.
    bits: i32,
}

impl<'a> BoolDecoder<'a> {
    fn new(data: &'a [u8]) -> Self {
        BoolDecoder {
            data,
            pos: 0,
            value: 0,
            range: 255,
            bits: -8,
        }
    }

    #[inline]
    fn bool(&mut self, prob: u8) -> bool {
        if self.bits < 0 {
            // One byte is enough: a decision shifts out at most 7 bits.
            let byte = self.data.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            self.value = (self.value << 8) | u32::from(byte);
            self.bits += 8;
        }
        let split = 1 + (((self.range - 1) * u32::from(prob)) >> 8);
        let big = split << self.bits;
        let bit = self.value >= big;
        if bit {
            self.range -= split;
            self.value -= big;
        } else {
            self.range = split;
        }
        let shift = self.range.leading_zeros() - 24;
        self.range <<= shift;
        self.bits -= shift as i32;
        bit
    }

    fn flag(&mut self) -> bool {
        self.bool(128)
    }

    fn literal(&mut self, n: u8) -> u8 {
        (0..n).fold(0, |v, _| (v << 1) | u8::from(self.flag()))
    }

    /// A flag, then (when set) an n-bit magnitude and its sign.
    fn skip_optional_signed(&mut self, n: u8) {
        if self.flag() {
            self.literal(n);
            self.flag();
        }
    }

    /// A tree of RFC 6386 section 8.1: indices into `tree`, leaves as
    /// negated values; `probs[i / 2]` is node i's probability.
    fn tree(&mut self, tree: &[i8], probs: &[u8], start: usize) -> u8 {
        let mut i = start;
        loop {
            let next = tree[i + usize::from(self.bool(probs[i / 2]))];
            if next <= 0 {
                return (-next) as u8;
            }
            i = next as usize;
        }
    }

    /// Bytes the window reached, counting those past the end of `data`.
    fn used(&self) -> usize {
        self.pos
    }

    /// True once the decoder has read more than one byte past its data:
    /// the stream is truncated for every decoder (image-webp allows one).
    fn overrun(&self) -> bool {
        self.pos > self.data.len() + 1
    }
}

/// One partition of the frame: where it starts in the chunk, its declared
/// length and the bytes its decoder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub start: usize,
    pub len: usize,
    pub used: usize,
}

impl Partition {
    /// The bytes kept: those read, never more than declared.
    fn kept(&self) -> usize {
        self.used.min(self.len)
    }
}

/// Where each partition's coded data ends in one VP8 chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// The first partition (headers and modes), then the token partitions.
    pub partitions: Vec<Partition>,
    /// The chunk's length.
    total: usize,
}

/// Bytes an encoder's flush may leave past a partition's last window.
const FLUSH: usize = 4;

/// The chunk's 10-byte key-frame header: frame tag, start code, size.
const HEADER: usize = 10;

/// Walks a VP8 chunk's payload (RFC 6386 key frame) to the end of each
/// partition's coded data.
pub fn walk(data: &[u8]) -> Result<Walk> {
    let h = data
        .get(..HEADER)
        .ok_or_else(|| Error::malformed(FORMAT, "frame header shorter than 10 bytes"))?;
    let tag = u32::from_le_bytes([h[0], h[1], h[2], 0]);
    if tag & 1 != 0 || h[3..6] != [0x9D, 0x01, 0x2A] {
        return Err(Error::malformed(FORMAT, "not a key frame"));
    }
    let width = usize::from(u16::from_le_bytes([h[6], h[7]]) & 0x3FFF);
    let height = usize::from(u16::from_le_bytes([h[8], h[9]]) & 0x3FFF);
    let first_len = (tag >> 5) as usize;
    let first = data
        .get(HEADER..HEADER + first_len)
        .ok_or_else(|| Error::malformed(FORMAT, "first partition runs past the chunk"))?;
    let mut br = BoolDecoder::new(first);
    let head = FrameHeader::read(&mut br);
    let sizes_at = HEADER + first_len;
    let table = 3 * (head.partitions - 1);
    let mut at = sizes_at + table;
    if at > data.len() {
        return Err(Error::malformed(
            FORMAT,
            "partition table runs past the chunk",
        ));
    }
    let mut parts = Vec::with_capacity(head.partitions);
    for p in 0..head.partitions {
        let len = if p + 1 == head.partitions {
            data.len() - at
        } else {
            let s = &data[sizes_at + 3 * p..];
            u32::from_le_bytes([s[0], s[1], s[2], 0]) as usize
        };
        if at + len > data.len() {
            return Err(Error::malformed(
                FORMAT,
                "token partition runs past the chunk",
            ));
        }
        parts.push((at, len));
        at += len;
    }
    let mut tokens: Vec<BoolDecoder> = parts
        .iter()
        .map(|&(s, l)| BoolDecoder::new(&data[s..s + l]))
        .collect();
    let (mbw, mbh) = (width.div_ceil(16), height.div_ceil(16));
    let mut top = vec![Context::default(); mbw];
    for mby in 0..mbh {
        let tb = &mut tokens[mby % head.partitions];
        let mut left = Context::default();
        for t in top.iter_mut() {
            let mb = head.macroblock(&mut br, t, &mut left);
            if mb.skip {
                t.clear(mb.b_pred);
                left.clear(mb.b_pred);
            } else {
                residuals(tb, &head.probs, mb.b_pred, t, &mut left);
            }
        }
        if br.overrun() || tb.overrun() {
            return Err(Error::malformed(
                FORMAT,
                format!("coded data ends before macroblock row {mby}"),
            ));
        }
    }
    let mut partitions = vec![Partition {
        start: HEADER,
        len: first_len,
        used: br.used(),
    }];
    partitions.extend(
        parts
            .iter()
            .zip(&tokens)
            .map(|(&(start, len), d)| Partition {
                start,
                len,
                used: d.used(),
            }),
    );
    // libwebp loads a byte when it opens a partition and refuses the frame
    // if there is none, in the last partition and in each that holds rows
    // (even when every macroblock is skipped and no bit is read).
    let last = head.partitions - 1;
    for (p, part) in partitions[1..].iter_mut().enumerate() {
        if p < mbh || p == last {
            part.used = part.used.max(1);
        }
    }
    Ok(Walk {
        partitions,
        total: data.len(),
    })
}

impl Walk {
    /// Bytes of the chunk that no decoder reads (after any partition's
    /// coded data).
    pub fn slack(&self) -> usize {
        self.total - self.rebuilt_len()
    }

    /// Slack the audit reports: an encoder's flush leaves a few bytes past
    /// the last window of each partition (libwebp two or three, RFC 6386's
    /// reference encoder four), too few to carry a name; a partition with
    /// more counts whole. The writer cuts all of it either way.
    pub fn reported_slack(&self) -> usize {
        self.partitions
            .iter()
            .map(|p| p.len - p.kept())
            .filter(|&s| s > FLUSH)
            .sum()
    }

    fn rebuilt_len(&self) -> usize {
        HEADER
            + 3 * (self.partitions.len() - 2)
            + self.partitions.iter().map(Partition::kept).sum::<usize>()
    }

    /// The chunk with every partition cut to its coded data and the size
    /// fields (frame tag, partition table) written for the cut lengths.
    pub fn rebuild(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rebuilt_len());
        let first = self.partitions[0];
        let tag =
            u32::from_le_bytes([data[0], data[1], data[2], 0]) & 0x1F | (first.kept() as u32) << 5;
        out.extend_from_slice(&tag.to_le_bytes()[..3]);
        out.extend_from_slice(&data[3..HEADER]);
        out.extend_from_slice(&data[first.start..first.start + first.kept()]);
        let tokens = &self.partitions[1..];
        for p in &tokens[..tokens.len() - 1] {
            out.extend_from_slice(&(p.kept() as u32).to_le_bytes()[..3]);
        }
        for p in tokens {
            out.extend_from_slice(&data[p.start..p.start + p.kept()]);
        }
        out
    }
}

/// What the first partition's header says that the walk needs.
struct FrameHeader {
    partitions: usize,
    segment_map: Option<[u8; 3]>,
    skip_prob: Option<u8>,
    probs: Box<Probs>,
}

impl FrameHeader {
    /// RFC 6386 section 9.2 to 9.11 (key frame), in bitstream order.
    fn read(br: &mut BoolDecoder) -> Self {
        br.literal(2); // colour space, clamping
        let mut segment_map = None;
        if br.flag() {
            let update_map = br.flag();
            if br.flag() {
                br.flag(); // absolute or delta values
                for _ in 0..4 {
                    br.skip_optional_signed(7); // quantiser
                }
                for _ in 0..4 {
                    br.skip_optional_signed(6); // loop filter level
                }
            }
            if update_map {
                let mut probs = [255u8; 3];
                for p in &mut probs {
                    if br.flag() {
                        *p = br.literal(8);
                    }
                }
                segment_map = Some(probs);
            }
        }
        br.flag(); // filter type
        br.literal(6); // level
        br.literal(3); // sharpness
        if br.flag() && br.flag() {
            for _ in 0..8 {
                br.skip_optional_signed(6); // reference and mode deltas
            }
        }
        let partitions = 1 << br.literal(2);
        br.literal(7); // base quantiser
        for _ in 0..5 {
            br.skip_optional_signed(4);
        }
        br.flag(); // refresh entropy probabilities
        let mut probs = Box::new(COEFF_PROBS);
        for (i, plane) in COEFF_UPDATE_PROBS.iter().enumerate() {
            for (j, band) in plane.iter().enumerate() {
                for (k, ctx) in band.iter().enumerate() {
                    for (t, &update) in ctx.iter().enumerate() {
                        if br.bool(update) {
                            probs[i][j][k][t] = br.literal(8);
                        }
                    }
                }
            }
        }
        let skip_prob = br.flag().then(|| br.literal(8));
        FrameHeader {
            partitions,
            segment_map,
            skip_prob,
            probs,
        }
    }

    /// One macroblock's header (section 19.3): segment, skip flag, modes.
    fn macroblock(&self, br: &mut BoolDecoder, top: &mut Context, left: &mut Context) -> Mb {
        if let Some(p) = &self.segment_map {
            br.tree(&SEGMENT_TREE, p, 0);
        }
        let skip = self.skip_prob.is_some_and(|p| br.bool(p));
        let y = br.tree(&YMODE_TREE, &YMODE_PROBS, 0);
        let b_pred = y == B_PRED;
        if b_pred {
            for row in 0..4 {
                for col in 0..4 {
                    let probs =
                        &BPRED_PROBS[usize::from(top.modes[col])][usize::from(left.modes[row])];
                    let m = br.tree(&BMODE_TREE, probs, 0);
                    top.modes[col] = m;
                    left.modes[row] = m;
                }
            }
        } else {
            // The sub-block mode a whole-block mode implies, as context.
            let m = [B_DC, B_VE, B_HE, B_TM][usize::from(y)];
            top.modes = [m; 4];
            left.modes = [m; 4];
        }
        br.tree(&UVMODE_TREE, &UVMODE_PROBS, 0);
        Mb { skip, b_pred }
    }
}

struct Mb {
    skip: bool,
    b_pred: bool,
}

/// Per edge of a macroblock: the sub-block modes along it, and whether each
/// block along it had coefficients (Y2, 4 Y, 2 U, 2 V).
#[derive(Debug, Clone, Copy, Default)]
struct Context {
    modes: [u8; 4],
    nz: [bool; 9],
}

impl Context {
    /// A skipped macroblock: no coefficients (Y2 kept when it has none).
    fn clear(&mut self, b_pred: bool) {
        let y2 = self.nz[0];
        self.nz = [false; 9];
        if b_pred {
            self.nz[0] = y2;
        }
    }
}

/// Plane types of the token probabilities (section 13.3).
const Y_AFTER_Y2: usize = 0;
const Y2: usize = 1;
const CHROMA: usize = 2;
const Y_WITH_DC: usize = 3;

/// One macroblock's residual tokens (section 13).
fn residuals(
    br: &mut BoolDecoder,
    probs: &Probs,
    b_pred: bool,
    top: &mut Context,
    left: &mut Context,
) {
    let y_plane = if b_pred {
        Y_WITH_DC
    } else {
        let nz = block(
            br,
            &probs[Y2],
            usize::from(top.nz[0]) + usize::from(left.nz[0]),
            0,
        );
        top.nz[0] = nz;
        left.nz[0] = nz;
        Y_AFTER_Y2
    };
    let first = usize::from(y_plane == Y_AFTER_Y2);
    for y in 0..4 {
        for x in 0..4 {
            let ctx = usize::from(top.nz[1 + x]) + usize::from(left.nz[1 + y]);
            let nz = block(br, &probs[y_plane], ctx, first);
            top.nz[1 + x] = nz;
            left.nz[1 + y] = nz;
        }
    }
    for plane in [5, 7] {
        for y in 0..2 {
            for x in 0..2 {
                let ctx = usize::from(top.nz[plane + x]) + usize::from(left.nz[plane + y]);
                let nz = block(br, &probs[CHROMA], ctx, 0);
                top.nz[plane + x] = nz;
                left.nz[plane + y] = nz;
            }
        }
    }
}

/// One 4x4 block's tokens from coefficient `first`; whether it had any
/// token other than end-of-block.
fn block(br: &mut BoolDecoder, probs: &[[[u8; 11]; 3]; 8], mut ctx: usize, first: usize) -> bool {
    let mut after_zero = false;
    for i in first..16 {
        let p = &probs[usize::from(BANDS[i])][ctx];
        let token = br.tree(&TOKEN_TREE, p, if after_zero { 2 } else { 0 });
        match token {
            DCT_EOB => return i > first,
            0 => {
                after_zero = true;
                ctx = 0;
                continue;
            }
            1..=4 => ctx = if token == 1 { 1 } else { 2 },
            _ => {
                for &p in CAT_PROBS[usize::from(token - 5)]
                    .iter()
                    .take_while(|&&p| p != 0)
                {
                    br.bool(p);
                }
                ctx = 2;
            }
        }
        after_zero = false;
        br.flag(); // sign
    }
    true
}

const DCT_EOB: u8 = 11;
const B_PRED: u8 = 4;
const B_DC: u8 = 0;
const B_TM: u8 = 1;
const B_VE: u8 = 2;
const B_HE: u8 = 3;

const SEGMENT_TREE: [i8; 6] = [2, 4, -0, -1, -2, -3];
/// DC, V, H, TM and B as 0 to 4.
const YMODE_TREE: [i8; 8] = [-4, 2, 4, 6, -0, -1, -2, -3];
const YMODE_PROBS: [u8; 4] = [145, 156, 163, 128];
const UVMODE_TREE: [i8; 6] = [-0, 2, -1, 4, -2, -3];
const UVMODE_PROBS: [u8; 3] = [142, 114, 183];
/// B_DC, B_TM, B_VE, B_HE, B_LD, B_RD, B_VR, B_VL, B_HD, B_HU as 0 to 9.
const BMODE_TREE: [i8; 18] = [
    -0, 2, -1, 4, -2, 6, 8, 12, -3, 10, -5, -6, -4, 14, -7, 16, -8, -9,
];
/// EOB is 11, DCT_0 to DCT_4 0 to 4, the six categories 5 to 10.
const TOKEN_TREE: [i8; 22] = [
    -11, 2, -0, 4, -1, 6, 8, 12, -2, 10, -3, -4, 14, 16, -5, -6, 18, 20, -7, -8, -9, -10,
];
const CAT_PROBS: [[u8; 12]; 6] = [
    [159, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [165, 145, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [173, 148, 140, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [176, 155, 140, 135, 0, 0, 0, 0, 0, 0, 0, 0],
    [180, 157, 141, 134, 130, 0, 0, 0, 0, 0, 0, 0],
    [254, 254, 243, 230, 196, 177, 153, 140, 133, 130, 129, 0],
];
const BANDS: [u8; 16] = [0, 1, 2, 3, 6, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7];

type Probs = [[[[u8; 11]; 3]; 8]; 4];

const BPRED_PROBS: [[[u8; 9]; 10]; 10] = [
    [
        [231, 120, 48, 89, 115, 113, 120, 152, 112],
        [152, 179, 64, 126, 170, 118, 46, 70, 95],
        [175, 69, 143, 80, 85, 82, 72, 155, 103],
        [56, 58, 10, 171, 218, 189, 17, 13, 152],
        [144, 71, 10, 38, 171, 213, 144, 34, 26],
        [114, 26, 17, 163, 44, 195, 21, 10, 173],
        [121, 24, 80, 195, 26, 62, 44, 64, 85],
        [170, 46, 55, 19, 136, 160, 33, 206, 71],
        [63, 20, 8, 114, 114, 208, 12, 9, 226],
        [81, 40, 11, 96, 182, 84, 29, 16, 36],
    ],
    [
        [134, 183, 89, 137, 98, 101, 106, 165, 148],
        [72, 187, 100, 130, 157, 111, 32, 75, 80],
        [66, 102, 167, 99, 74, 62, 40, 234, 128],
        [41, 53, 9, 178, 241, 141, 26, 8, 107],
        [104, 79, 12, 27, 217, 255, 87, 17, 7],
        [74, 43, 26, 146, 73, 166, 49, 23, 157],
        [65, 38, 105, 160, 51, 52, 31, 115, 128],
        [87, 68, 71, 44, 114, 51, 15, 186, 23],
        [47, 41, 14, 110, 182, 183, 21, 17, 194],
        [66, 45, 25, 102, 197, 189, 23, 18, 22],
    ],
    [
        [88, 88, 147, 150, 42, 46, 45, 196, 205],
        [43, 97, 183, 117, 85, 38, 35, 179, 61],
        [39, 53, 200, 87, 26, 21, 43, 232, 171],
        [56, 34, 51, 104, 114, 102, 29, 93, 77],
        [107, 54, 32, 26, 51, 1, 81, 43, 31],
        [39, 28, 85, 171, 58, 165, 90, 98, 64],
        [34, 22, 116, 206, 23, 34, 43, 166, 73],
        [68, 25, 106, 22, 64, 171, 36, 225, 114],
        [34, 19, 21, 102, 132, 188, 16, 76, 124],
        [62, 18, 78, 95, 85, 57, 50, 48, 51],
    ],
    [
        [193, 101, 35, 159, 215, 111, 89, 46, 111],
        [60, 148, 31, 172, 219, 228, 21, 18, 111],
        [112, 113, 77, 85, 179, 255, 38, 120, 114],
        [40, 42, 1, 196, 245, 209, 10, 25, 109],
        [100, 80, 8, 43, 154, 1, 51, 26, 71],
        [88, 43, 29, 140, 166, 213, 37, 43, 154],
        [61, 63, 30, 155, 67, 45, 68, 1, 209],
        [142, 78, 78, 16, 255, 128, 34, 197, 171],
        [41, 40, 5, 102, 211, 183, 4, 1, 221],
        [51, 50, 17, 168, 209, 192, 23, 25, 82],
    ],
    [
        [125, 98, 42, 88, 104, 85, 117, 175, 82],
        [95, 84, 53, 89, 128, 100, 113, 101, 45],
        [75, 79, 123, 47, 51, 128, 81, 171, 1],
        [57, 17, 5, 71, 102, 57, 53, 41, 49],
        [115, 21, 2, 10, 102, 255, 166, 23, 6],
        [38, 33, 13, 121, 57, 73, 26, 1, 85],
        [41, 10, 67, 138, 77, 110, 90, 47, 114],
        [101, 29, 16, 10, 85, 128, 101, 196, 26],
        [57, 18, 10, 102, 102, 213, 34, 20, 43],
        [117, 20, 15, 36, 163, 128, 68, 1, 26],
    ],
    [
        [138, 31, 36, 171, 27, 166, 38, 44, 229],
        [67, 87, 58, 169, 82, 115, 26, 59, 179],
        [63, 59, 90, 180, 59, 166, 93, 73, 154],
        [40, 40, 21, 116, 143, 209, 34, 39, 175],
        [57, 46, 22, 24, 128, 1, 54, 17, 37],
        [47, 15, 16, 183, 34, 223, 49, 45, 183],
        [46, 17, 33, 183, 6, 98, 15, 32, 183],
        [65, 32, 73, 115, 28, 128, 23, 128, 205],
        [40, 3, 9, 115, 51, 192, 18, 6, 223],
        [87, 37, 9, 115, 59, 77, 64, 21, 47],
    ],
    [
        [104, 55, 44, 218, 9, 54, 53, 130, 226],
        [64, 90, 70, 205, 40, 41, 23, 26, 57],
        [54, 57, 112, 184, 5, 41, 38, 166, 213],
        [30, 34, 26, 133, 152, 116, 10, 32, 134],
        [75, 32, 12, 51, 192, 255, 160, 43, 51],
        [39, 19, 53, 221, 26, 114, 32, 73, 255],
        [31, 9, 65, 234, 2, 15, 1, 118, 73],
        [88, 31, 35, 67, 102, 85, 55, 186, 85],
        [56, 21, 23, 111, 59, 205, 45, 37, 192],
        [55, 38, 70, 124, 73, 102, 1, 34, 98],
    ],
    [
        [102, 61, 71, 37, 34, 53, 31, 243, 192],
        [69, 60, 71, 38, 73, 119, 28, 222, 37],
        [68, 45, 128, 34, 1, 47, 11, 245, 171],
        [62, 17, 19, 70, 146, 85, 55, 62, 70],
        [75, 15, 9, 9, 64, 255, 184, 119, 16],
        [37, 43, 37, 154, 100, 163, 85, 160, 1],
        [63, 9, 92, 136, 28, 64, 32, 201, 85],
        [86, 6, 28, 5, 64, 255, 25, 248, 1],
        [56, 8, 17, 132, 137, 255, 55, 116, 128],
        [58, 15, 20, 82, 135, 57, 26, 121, 40],
    ],
    [
        [164, 50, 31, 137, 154, 133, 25, 35, 218],
        [51, 103, 44, 131, 131, 123, 31, 6, 158],
        [86, 40, 64, 135, 148, 224, 45, 183, 128],
        [22, 26, 17, 131, 240, 154, 14, 1, 209],
        [83, 12, 13, 54, 192, 255, 68, 47, 28],
        [45, 16, 21, 91, 64, 222, 7, 1, 197],
        [56, 21, 39, 155, 60, 138, 23, 102, 213],
        [85, 26, 85, 85, 128, 128, 32, 146, 171],
        [18, 11, 7, 63, 144, 171, 4, 4, 246],
        [35, 27, 10, 146, 174, 171, 12, 26, 128],
    ],
    [
        [190, 80, 35, 99, 180, 80, 126, 54, 45],
        [85, 126, 47, 87, 176, 51, 41, 20, 32],
        [101, 75, 128, 139, 118, 146, 116, 128, 85],
        [56, 41, 15, 176, 236, 85, 37, 9, 62],
        [146, 36, 19, 30, 171, 255, 97, 27, 20],
        [71, 30, 17, 119, 118, 255, 17, 18, 138],
        [101, 38, 60, 138, 55, 70, 43, 26, 142],
        [138, 45, 61, 62, 219, 1, 81, 188, 64],
        [32, 41, 20, 117, 151, 142, 20, 21, 163],
        [112, 19, 12, 61, 195, 128, 48, 4, 24],
    ],
];

// Probabilities that a token's probability will be updated
const COEFF_UPDATE_PROBS: Probs = [
    [
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [176, 246, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [223, 241, 252, 255, 255, 255, 255, 255, 255, 255, 255],
            [249, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 244, 252, 255, 255, 255, 255, 255, 255, 255, 255],
            [234, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 246, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [239, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [251, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [251, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 253, 255, 254, 255, 255, 255, 255, 255, 255],
            [250, 255, 254, 255, 254, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
    ],
    [
        [
            [217, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [225, 252, 241, 253, 255, 255, 254, 255, 255, 255, 255],
            [234, 250, 241, 250, 253, 255, 253, 254, 255, 255, 255],
        ],
        [
            [255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [223, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [238, 253, 254, 254, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 248, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [249, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 253, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [247, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [252, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [253, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
    ],
    [
        [
            [186, 251, 250, 255, 255, 255, 255, 255, 255, 255, 255],
            [234, 251, 244, 254, 255, 255, 255, 255, 255, 255, 255],
            [251, 251, 243, 253, 254, 255, 254, 255, 255, 255, 255],
        ],
        [
            [255, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [236, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [251, 253, 253, 254, 254, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 254, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
    ],
    [
        [
            [248, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [250, 254, 252, 254, 255, 255, 255, 255, 255, 255, 255],
            [248, 254, 249, 253, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [246, 253, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [252, 254, 251, 254, 254, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 254, 252, 255, 255, 255, 255, 255, 255, 255, 255],
            [248, 254, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [253, 255, 254, 254, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [245, 251, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [253, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 251, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [252, 253, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 254, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 252, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [249, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 254, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 253, 255, 255, 255, 255, 255, 255, 255, 255],
            [250, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
        [
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [254, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
            [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255],
        ],
    ],
];

// Section 13.5
// Default Probabilities for tokens
const COEFF_PROBS: Probs = [
    [
        [
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
        [
            [253, 136, 254, 255, 228, 219, 128, 128, 128, 128, 128],
            [189, 129, 242, 255, 227, 213, 255, 219, 128, 128, 128],
            [106, 126, 227, 252, 214, 209, 255, 255, 128, 128, 128],
        ],
        [
            [1, 98, 248, 255, 236, 226, 255, 255, 128, 128, 128],
            [181, 133, 238, 254, 221, 234, 255, 154, 128, 128, 128],
            [78, 134, 202, 247, 198, 180, 255, 219, 128, 128, 128],
        ],
        [
            [1, 185, 249, 255, 243, 255, 128, 128, 128, 128, 128],
            [184, 150, 247, 255, 236, 224, 128, 128, 128, 128, 128],
            [77, 110, 216, 255, 236, 230, 128, 128, 128, 128, 128],
        ],
        [
            [1, 101, 251, 255, 241, 255, 128, 128, 128, 128, 128],
            [170, 139, 241, 252, 236, 209, 255, 255, 128, 128, 128],
            [37, 116, 196, 243, 228, 255, 255, 255, 128, 128, 128],
        ],
        [
            [1, 204, 254, 255, 245, 255, 128, 128, 128, 128, 128],
            [207, 160, 250, 255, 238, 128, 128, 128, 128, 128, 128],
            [102, 103, 231, 255, 211, 171, 128, 128, 128, 128, 128],
        ],
        [
            [1, 152, 252, 255, 240, 255, 128, 128, 128, 128, 128],
            [177, 135, 243, 255, 234, 225, 128, 128, 128, 128, 128],
            [80, 129, 211, 255, 194, 224, 128, 128, 128, 128, 128],
        ],
        [
            [1, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [246, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [255, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
    ],
    [
        [
            [198, 35, 237, 223, 193, 187, 162, 160, 145, 155, 62],
            [131, 45, 198, 221, 172, 176, 220, 157, 252, 221, 1],
            [68, 47, 146, 208, 149, 167, 221, 162, 255, 223, 128],
        ],
        [
            [1, 149, 241, 255, 221, 224, 255, 255, 128, 128, 128],
            [184, 141, 234, 253, 222, 220, 255, 199, 128, 128, 128],
            [81, 99, 181, 242, 176, 190, 249, 202, 255, 255, 128],
        ],
        [
            [1, 129, 232, 253, 214, 197, 242, 196, 255, 255, 128],
            [99, 121, 210, 250, 201, 198, 255, 202, 128, 128, 128],
            [23, 91, 163, 242, 170, 187, 247, 210, 255, 255, 128],
        ],
        [
            [1, 200, 246, 255, 234, 255, 128, 128, 128, 128, 128],
            [109, 178, 241, 255, 231, 245, 255, 255, 128, 128, 128],
            [44, 130, 201, 253, 205, 192, 255, 255, 128, 128, 128],
        ],
        [
            [1, 132, 239, 251, 219, 209, 255, 165, 128, 128, 128],
            [94, 136, 225, 251, 218, 190, 255, 255, 128, 128, 128],
            [22, 100, 174, 245, 186, 161, 255, 199, 128, 128, 128],
        ],
        [
            [1, 182, 249, 255, 232, 235, 128, 128, 128, 128, 128],
            [124, 143, 241, 255, 227, 234, 128, 128, 128, 128, 128],
            [35, 77, 181, 251, 193, 211, 255, 205, 128, 128, 128],
        ],
        [
            [1, 157, 247, 255, 236, 231, 255, 255, 128, 128, 128],
            [121, 141, 235, 255, 225, 227, 255, 255, 128, 128, 128],
            [45, 99, 188, 251, 195, 217, 255, 224, 128, 128, 128],
        ],
        [
            [1, 1, 251, 255, 213, 255, 128, 128, 128, 128, 128],
            [203, 1, 248, 255, 255, 128, 128, 128, 128, 128, 128],
            [137, 1, 177, 255, 224, 255, 128, 128, 128, 128, 128],
        ],
    ],
    [
        [
            [253, 9, 248, 251, 207, 208, 255, 192, 128, 128, 128],
            [175, 13, 224, 243, 193, 185, 249, 198, 255, 255, 128],
            [73, 17, 171, 221, 161, 179, 236, 167, 255, 234, 128],
        ],
        [
            [1, 95, 247, 253, 212, 183, 255, 255, 128, 128, 128],
            [239, 90, 244, 250, 211, 209, 255, 255, 128, 128, 128],
            [155, 77, 195, 248, 188, 195, 255, 255, 128, 128, 128],
        ],
        [
            [1, 24, 239, 251, 218, 219, 255, 205, 128, 128, 128],
            [201, 51, 219, 255, 196, 186, 128, 128, 128, 128, 128],
            [69, 46, 190, 239, 201, 218, 255, 228, 128, 128, 128],
        ],
        [
            [1, 191, 251, 255, 255, 128, 128, 128, 128, 128, 128],
            [223, 165, 249, 255, 213, 255, 128, 128, 128, 128, 128],
            [141, 124, 248, 255, 255, 128, 128, 128, 128, 128, 128],
        ],
        [
            [1, 16, 248, 255, 255, 128, 128, 128, 128, 128, 128],
            [190, 36, 230, 255, 236, 255, 128, 128, 128, 128, 128],
            [149, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
        [
            [1, 226, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [247, 192, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [240, 128, 255, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
        [
            [1, 134, 252, 255, 255, 128, 128, 128, 128, 128, 128],
            [213, 62, 250, 255, 255, 128, 128, 128, 128, 128, 128],
            [55, 93, 255, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
        [
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
            [128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
    ],
    [
        [
            [202, 24, 213, 235, 186, 191, 220, 160, 240, 175, 255],
            [126, 38, 182, 232, 169, 184, 228, 174, 255, 187, 128],
            [61, 46, 138, 219, 151, 178, 240, 170, 255, 216, 128],
        ],
        [
            [1, 112, 230, 250, 199, 191, 247, 159, 255, 255, 128],
            [166, 109, 228, 252, 211, 215, 255, 174, 128, 128, 128],
            [39, 77, 162, 232, 172, 180, 245, 178, 255, 255, 128],
        ],
        [
            [1, 52, 220, 246, 198, 199, 249, 220, 255, 255, 128],
            [124, 74, 191, 243, 183, 193, 250, 221, 255, 255, 128],
            [24, 71, 130, 219, 154, 170, 243, 182, 255, 255, 128],
        ],
        [
            [1, 182, 225, 249, 219, 240, 255, 224, 128, 128, 128],
            [149, 150, 226, 252, 216, 205, 255, 171, 128, 128, 128],
            [28, 108, 170, 242, 183, 194, 254, 223, 255, 255, 128],
        ],
        [
            [1, 81, 230, 252, 204, 203, 255, 192, 128, 128, 128],
            [123, 102, 209, 247, 188, 196, 255, 233, 128, 128, 128],
            [20, 95, 153, 243, 164, 173, 255, 203, 128, 128, 128],
        ],
        [
            [1, 222, 248, 255, 216, 213, 128, 128, 128, 128, 128],
            [168, 175, 246, 252, 235, 205, 255, 255, 128, 128, 128],
            [47, 116, 215, 255, 211, 212, 255, 255, 128, 128, 128],
        ],
        [
            [1, 121, 236, 253, 212, 214, 255, 255, 128, 128, 128],
            [141, 84, 213, 252, 201, 202, 255, 219, 128, 128, 128],
            [42, 80, 160, 240, 162, 185, 255, 205, 128, 128, 128],
        ],
        [
            [1, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [244, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
            [238, 1, 255, 128, 128, 128, 128, 128, 128, 128, 128],
        ],
    ],
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The boolean encoder of RFC 6386 section 7.3.
    struct BoolEncoder {
        out: Vec<u8>,
        range: u32,
        bottom: u32,
        bit_count: i32,
    }

    impl BoolEncoder {
        fn new() -> Self {
            BoolEncoder {
                out: Vec::new(),
                range: 255,
                bottom: 0,
                bit_count: 24,
            }
        }

        fn put(&mut self, prob: u8, bit: bool) {
            let split = 1 + (((self.range - 1) * u32::from(prob)) >> 8);
            if bit {
                self.bottom = self.bottom.wrapping_add(split);
                self.range -= split;
            } else {
                self.range = split;
            }
            while self.range < 128 {
                self.range <<= 1;
                if self.bottom & (1 << 31) != 0 {
                    // Carry into what is written already.
                    let mut i = self.out.len();
                    while i > 0 && self.out[i - 1] == 255 {
                        self.out[i - 1] = 0;
                        i -= 1;
                    }
                    self.out[i - 1] += 1;
                }
                self.bottom <<= 1;
                self.bit_count -= 1;
                if self.bit_count == 0 {
                    self.out.push((self.bottom >> 24) as u8);
                    self.bottom &= (1 << 24) - 1;
                    self.bit_count = 8;
                }
            }
        }

        fn literal(&mut self, n: u8, v: u32) {
            for i in (0..n).rev() {
                self.put(128, v >> i & 1 == 1);
            }
        }

        /// Puts the path to leaf `v` of `tree`.
        fn tree(&mut self, tree: &[i8], probs: &[u8], v: u8) {
            fn path(tree: &[i8], i: usize, v: u8, out: &mut Vec<(usize, bool)>) -> bool {
                for b in [false, true] {
                    let next = tree[i + usize::from(b)];
                    out.push((i, b));
                    if (next <= 0 && (-next) as u8 == v)
                        || (next > 0 && path(tree, next as usize, v, out))
                    {
                        return true;
                    }
                    out.pop();
                }
                false
            }
            let mut steps = Vec::new();
            assert!(path(tree, 0, v, &mut steps));
            for (i, b) in steps {
                self.put(probs[i / 2], b);
            }
        }

        fn finish(mut self) -> Vec<u8> {
            for _ in 0..32 {
                self.put(128, false);
            }
            self.out
        }
    }

    /// A 32x32 key frame, every macroblock skipped (flat grey), with four
    /// token partitions holding `parts` (no decoder reads a bit of them).
    pub(crate) fn skipped_frame(parts: [&[u8]; 4]) -> Vec<u8> {
        let mut e = BoolEncoder::new();
        e.literal(2, 0); // colour space, clamping
        e.put(128, false); // no segmentation
        e.literal(10, 0); // filter type, level 0, sharpness
        e.put(128, false); // no filter deltas
        e.literal(2, 2); // four token partitions
        e.literal(7, 40);
        e.literal(5, 0); // no quantiser deltas
        e.put(128, false); // refresh entropy
        for p in COEFF_UPDATE_PROBS.iter().flatten().flatten().flatten() {
            e.put(*p, false);
        }
        e.put(128, true); // mb_no_skip_coeff
        e.literal(8, 200);
        for _ in 0..4 {
            e.put(200, true); // skipped
            e.tree(&YMODE_TREE, &YMODE_PROBS, 0);
            e.tree(&UVMODE_TREE, &UVMODE_PROBS, 0);
        }
        let first = e.finish();
        let tag = (first.len() as u32) << 5 | 1 << 4; // key frame, shown
        let mut out = tag.to_le_bytes()[..3].to_vec();
        out.extend_from_slice(&[0x9D, 0x01, 0x2A, 32, 0, 32, 0]);
        out.extend_from_slice(&first);
        for p in &parts[..3] {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes()[..3]);
        }
        for p in parts {
            out.extend_from_slice(p);
        }
        out
    }

    pub(crate) fn riff(vp8: &[u8]) -> Vec<u8> {
        let mut f = b"RIFF".to_vec();
        f.extend_from_slice(&((vp8.len() + (vp8.len() & 1) + 12) as u32).to_le_bytes());
        f.extend_from_slice(b"WEBPVP8 ");
        f.extend_from_slice(&(vp8.len() as u32).to_le_bytes());
        f.extend_from_slice(vp8);
        f.resize(f.len() + (vp8.len() & 1), 0);
        f
    }

    fn pixels(vp8: &[u8]) -> image::RgbImage {
        image::load_from_memory(&riff(vp8)).unwrap().to_rgb8()
    }

    #[test]
    fn vp8_partition_slack_is_cut_and_the_table_rebuilt() {
        let canary: &[u8] = b"Jane Q. Patientname";
        let dirty = skipped_frame([b"AAAA", canary, b"", b"\x55\x55tail"]);
        let w = walk(&dirty).unwrap();
        assert_eq!(w.partitions.len(), 5);
        // Rows 0 and 1 open partitions 0 and 1, the last is opened anyway:
        // a byte each (libwebp's rule); partition 2 is never opened.
        let kept: Vec<_> = w.partitions[1..].iter().map(|p| p.kept()).collect();
        assert_eq!(kept, [1, 1, 0, 1]);
        let clean = w.rebuild(&dirty);
        assert_eq!(w.slack(), dirty.len() - clean.len());
        assert!(!clean.windows(4).any(|x| x == b"Jane"));
        assert_eq!(pixels(&clean), pixels(&dirty));
        let again = walk(&clean).unwrap();
        assert_eq!(again.slack(), 0);
        assert_eq!(again.rebuild(&clean), clean, "idempotent");
    }

    /// `fixtures/regress/webp_vp8_partitions.webp` (read by the integration
    /// tests, which check it with libwebp) is this frame; rewrite it with
    /// `PHOTODEID_WRITE_FIXTURES=1`.
    #[test]
    fn vp8_partition_fixture_is_this_frame() {
        let want = riff(&skipped_frame([
            b"AAAA",
            b"Jane Q. Patientname",
            b"",
            b"\x55\x55tail",
        ]));
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/regress/webp_vp8_partitions.webp"
        );
        if std::env::var_os("PHOTODEID_WRITE_FIXTURES").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        assert_eq!(std::fs::read(path).unwrap(), want);
    }

    #[test]
    fn vp8_first_partition_slack_is_cut() {
        let frame = skipped_frame([b"A", b"B", b"", b"C"]);
        let first = (u32::from_le_bytes([frame[0], frame[1], frame[2], 0]) >> 5) as usize;
        // 16 bytes more in the first partition, declared in the frame tag.
        let mut dirty = frame[..HEADER + first].to_vec();
        dirty.extend_from_slice(b"Jane Q. Patient!");
        dirty.extend_from_slice(&frame[HEADER + first..]);
        let tag = (u32::from_le_bytes([frame[0], frame[1], frame[2], 0]) & 0x1F)
            | ((first + 16) as u32) << 5;
        dirty[..3].copy_from_slice(&tag.to_le_bytes()[..3]);
        let w = walk(&dirty).unwrap();
        assert!(w.partitions[0].kept() <= first);
        let clean = w.rebuild(&dirty);
        assert!(!clean.windows(4).any(|x| x == b"Jane"));
        assert_eq!(pixels(&clean), pixels(&dirty));
    }

    #[test]
    fn vp8_truncated_or_flipped_never_panics() {
        let frame = skipped_frame([b"A", b"B", b"", b"C"]);
        for n in 0..frame.len() {
            let _ = walk(&frame[..n]);
        }
        for i in 0..frame.len() * 8 {
            let mut f = frame.clone();
            f[i / 8] ^= 1 << (i % 8);
            if let Ok(w) = walk(&f) {
                assert!(w.rebuild(&f).len() <= f.len());
            }
        }
    }
}
