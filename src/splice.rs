//! An output assembled from bytes the writer makes (headers, tables, IFDs,
//! rebuilt from parsed values) and verbatim ranges of the input (JPEG scans,
//! PNG IDAT, WebP bitstreams, TIFF strips), kept by reference.
//!
//! One writer, two ways to publish what it describes: [`Spliced::to_vec`]
//! concatenates it in memory (the buffered writer), [`Spliced::write_to`]
//! writes the made bytes and the referenced ranges: from memory when the
//! whole input was read to be parsed, else from the input's file descriptor
//! in the kernel (`copy_file_range`), falling back to a buffered copy where
//! the file system refuses. Both give the same bytes by
//! construction, and a test checks it on every fixture.
//!
//! The audit sees [`Spliced::audit_view`]: the made bytes plus each payload
//! as its writer declared it ([`AuditAs`]). A payload's content was checked
//! when the input was parsed (by the same parser); the audit checks the
//! structure around it and, for TIFF, the payloads' extents.

use std::fs::File;
use std::io::{self, Write};

/// Payloads shorter than this are copied into the made bytes: a kernel copy
/// is a system call, and a few KiB are cheaper to copy in memory.
pub const MIN_REF: usize = 16 << 10;

/// How the audit sees a payload copied by reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAs {
    /// The real bytes (the parser reads them: PNG inflates IDAT, WebP
    /// reads its bitstream headers, JPEG-in-TIFF strip headers).
    Bytes,
    /// Zeros of the same length: the parser checks only where it lies
    /// (TIFF strips and tiles; their digest is replaced by their extents).
    Zeros,
    /// Left out: the parser only needs it to hold no marker (JPEG
    /// entropy-coded data, checked so when the input was parsed).
    Elided,
}

#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    /// `own[start..end]`.
    Own { start: usize, end: usize },
    /// Verbatim input bytes.
    Ref { bytes: &'a [u8], audit: AuditAs },
}

/// Where a writer's made bytes go: an output, or a plain buffer (a table).
pub trait Sink {
    fn put_slice(&mut self, b: &[u8]);
}

impl Sink for Vec<u8> {
    fn put_slice(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

impl Sink for Spliced<'_> {
    fn put_slice(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// A position in the made bytes, to patch a value written before it was known.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize);

/// Where the referenced ranges come from when the output is written.
pub struct Source<'f, 'a> {
    /// The input's bytes as parsed: every payload is a sub-slice of it.
    pub base: &'a [u8],
    /// The open input (the kernel copies from it).
    pub file: &'f File,
    /// `base` holds the file's bytes everywhere (false for a TIFF read
    /// sparsely: only its directories were read, the strips are holes).
    pub complete: bool,
}

/// The output: made bytes and input ranges, in order.
#[derive(Debug, Default)]
pub struct Spliced<'a> {
    own: Vec<u8>,
    parts: Vec<Part<'a>>,
    len: usize,
}

impl<'a> Spliced<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes made by the writer.
    pub fn extend_from_slice(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        let start = self.own.len();
        self.own.extend_from_slice(b);
        self.grow_own(start);
    }

    pub fn push(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }

    pub fn extend(&mut self, bytes: impl IntoIterator<Item = u8>) {
        let start = self.own.len();
        self.own.extend(bytes);
        if self.own.len() > start {
            self.grow_own(start);
        }
    }

    /// An output made entirely in memory (a writer without references).
    pub fn from_vec(own: Vec<u8>) -> Self {
        let len = own.len();
        Spliced {
            parts: if len > 0 {
                vec![Part::Own { start: 0, end: len }]
            } else {
                Vec::new()
            },
            own,
            len,
        }
    }

    fn grow_own(&mut self, start: usize) {
        let end = self.own.len();
        self.len += end - start;
        match self.parts.last_mut() {
            Some(Part::Own { end: e, .. }) if *e == start => *e = end,
            _ => self.parts.push(Part::Own { start, end }),
        }
    }

    /// A verbatim range of the input. Short ones are copied at once.
    pub fn payload(&mut self, bytes: &'a [u8], audit: AuditAs) {
        if bytes.len() < MIN_REF && audit != AuditAs::Zeros {
            return self.extend_from_slice(bytes);
        }
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.parts.push(Part::Ref { bytes, audit });
    }

    /// Appends another output (its references stay references).
    pub fn append(&mut self, other: Spliced<'a>) {
        for part in other.parts {
            match part {
                Part::Own { start, end } => self.extend_from_slice(&other.own[start..end]),
                Part::Ref { bytes, audit } => {
                    self.len += bytes.len();
                    self.parts.push(Part::Ref { bytes, audit });
                }
            }
        }
    }

    /// The output's length so far: the position of the next byte.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Marks the next made byte (call it just before writing what is patched later).
    pub fn mark(&self) -> Mark {
        Mark(self.own.len())
    }

    /// Overwrites made bytes written at `at`.
    pub fn patch(&mut self, at: Mark, bytes: &[u8]) {
        self.own[at.0..at.0 + bytes.len()].copy_from_slice(bytes);
    }

    /// The output in memory (the buffered writer).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len);
        for part in &self.parts {
            match *part {
                Part::Own { start, end } => v.extend_from_slice(&self.own[start..end]),
                Part::Ref { bytes, .. } => v.extend_from_slice(bytes),
            }
        }
        v
    }

    /// Bytes copied by reference.
    pub fn referenced(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Ref { bytes, .. } => bytes.len(),
                Part::Own { .. } => 0,
            })
            .sum()
    }

    /// What the audit parses: the made bytes, and each payload as declared.
    /// Zeroed payloads cost no memory until touched (calloc'd pages).
    pub fn audit_view(&self) -> Vec<u8> {
        let len: usize = self
            .parts
            .iter()
            .map(|p| match *p {
                Part::Own { start, end } => end - start,
                Part::Ref {
                    audit: AuditAs::Elided,
                    ..
                } => 0,
                Part::Ref { bytes, .. } => bytes.len(),
            })
            .sum();
        let mut v = vec![0u8; len];
        let mut at = 0;
        for part in &self.parts {
            let (src, n): (Option<&[u8]>, usize) = match *part {
                Part::Own { start, end } => (Some(&self.own[start..end]), end - start),
                Part::Ref {
                    audit: AuditAs::Elided,
                    ..
                } => (None, 0),
                Part::Ref {
                    bytes,
                    audit: AuditAs::Bytes,
                } => (Some(bytes), bytes.len()),
                Part::Ref {
                    bytes,
                    audit: AuditAs::Zeros,
                } => (None, bytes.len()),
            };
            if let Some(src) = src {
                v[at..at + n].copy_from_slice(src);
            }
            at += n;
        }
        v
    }

    /// The output positions and lengths of the payloads, in order (what
    /// the TIFF audit compares with the strip tables it reads back).
    pub fn payload_extents(&self) -> Vec<(u64, u64)> {
        let mut at = 0u64;
        let mut v = Vec::new();
        for part in &self.parts {
            match *part {
                Part::Own { start, end } => at += (end - start) as u64,
                Part::Ref { bytes, .. } => {
                    v.push((at, bytes.len() as u64));
                    at += bytes.len() as u64;
                }
            }
        }
        v
    }

    /// Each payload's output position, its offset in `base` (`None` when it
    /// is not borrowed from it) and its length, in order: what the HEIF
    /// audit compares with the item locations it reads back.
    pub fn payload_sources(&self, base: &[u8]) -> Vec<(u64, Option<u64>, u64)> {
        let mut at = 0u64;
        let mut v = Vec::new();
        for part in &self.parts {
            match *part {
                Part::Own { start, end } => at += (end - start) as u64,
                Part::Ref { bytes, .. } => {
                    v.push((at, offset_in(base, bytes), bytes.len() as u64));
                    at += bytes.len() as u64;
                }
            }
        }
        v
    }

    /// Whether `existing` (a file found at the destination) holds exactly this output.
    pub fn same_as(&self, existing: &[u8], src: &Source) -> io::Result<bool> {
        if existing.len() != self.len {
            return Ok(false);
        }
        let mut at = 0;
        let mut buf = Vec::new();
        for part in &self.parts {
            let theirs = |n: usize| &existing[at..at + n];
            let same = match *part {
                Part::Own { start, end } => theirs(end - start) == &self.own[start..end],
                Part::Ref { bytes, .. } if src.complete => theirs(bytes.len()) == bytes,
                Part::Ref { bytes, .. } => {
                    let base = src.base.as_ptr() as usize;
                    let off = (bytes.as_ptr() as usize).wrapping_sub(base) as u64;
                    buf.resize(bytes.len(), 0);
                    read_exact_at(src.file, &mut buf, off)?;
                    theirs(bytes.len()) == buf.as_slice()
                }
            };
            if !same {
                return Ok(false);
            }
            at += match *part {
                Part::Own { start, end } => end - start,
                Part::Ref { bytes, .. } => bytes.len(),
            };
        }
        Ok(true)
    }

    /// Writes the output to `out` at its current position: made bytes with
    /// `write`, payloads copied from `src.file` in the kernel, adjacent input
    /// ranges in one call. Returns the bytes written and whether every
    /// payload went by a kernel copy (false when written from memory or
    /// after a fallback).
    pub fn write_to(&self, out: &mut File, src: &Source) -> io::Result<(u64, bool)> {
        let offset_of = |b: &[u8]| offset_in(src.base, b);
        let mut written = 0u64;
        let mut kernel = true;
        let mut i = 0;
        while i < self.parts.len() {
            match self.parts[i] {
                Part::Own { start, end } => {
                    out.write_all(&self.own[start..end])?;
                    written += (end - start) as u64;
                    i += 1;
                }
                Part::Ref { bytes, .. } => {
                    let Some(off) = offset_of(bytes) else {
                        // Not the input's bytes (a re-encoded stream): written as made.
                        out.write_all(bytes)?;
                        written += bytes.len() as u64;
                        i += 1;
                        continue;
                    };
                    // Coalesce the following ranges that continue this one in the input.
                    let mut len = bytes.len() as u64;
                    let mut j = i + 1;
                    while let Some(Part::Ref { bytes: next, .. }) = self.parts.get(j) {
                        if offset_of(next) != Some(off + len) {
                            break;
                        }
                        len += next.len() as u64;
                        j += 1;
                    }
                    // Bytes already in memory (the whole input was read to
                    // be parsed) are written from there: one copy into the
                    // page cache is cheaper than the kernel's file-to-file
                    // copy, which goes slower still when the payload's
                    // offset within a page differs between input and output
                    // (a 72 MB payload: write 20 ms, copy_file_range 25 ms
                    // aligned, 36 ms not). The kernel copy is for payloads
                    // never read (a large TIFF's strips).
                    if src.complete {
                        let (a, b) = (off as usize, (off + len) as usize);
                        out.write_all(&src.base[a..b])?;
                        kernel = false;
                        written += len;
                        i = j;
                        continue;
                    }
                    let copied = if kernel {
                        copy_range(src.file, off, out, len)?
                    } else {
                        0
                    };
                    if copied < len {
                        kernel = false;
                        buffered_copy(src, off + copied, out, len - copied)?;
                    }
                    written += len;
                    i = j;
                }
            }
        }
        Ok((written, kernel))
    }
}

/// Where `b` lies in `base`, when it is a sub-slice of it.
fn offset_in(base: &[u8], b: &[u8]) -> Option<u64> {
    let (start, p) = (base.as_ptr() as usize, b.as_ptr() as usize);
    (p >= start && p + b.len() <= start + base.len()).then(|| (p - start) as u64)
}

/// `copy_file_range` from `input` at `off` to `out`'s position. Returns how
/// much it copied before the file system refused (0 when it refuses at once:
/// other file systems, old kernels, special files); the caller copies the rest.
#[cfg(target_os = "linux")]
fn copy_range(input: &File, mut off: u64, out: &mut File, len: u64) -> io::Result<u64> {
    use rustix::io::Errno;
    let mut done = 0;
    while done < len {
        let want = (len - done).min(1 << 30) as usize;
        match rustix::fs::copy_file_range(input, Some(&mut off), &*out, None, want) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the input became shorter while it was being cleaned",
                ))
            }
            Ok(n) => done += n as u64,
            Err(Errno::INTR) => {}
            Err(
                Errno::XDEV
                | Errno::INVAL
                | Errno::NOSYS
                | Errno::OPNOTSUPP
                | Errno::PERM
                | Errno::BADF
                | Errno::TXTBSY
                | Errno::IO,
            ) if done == 0 => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

#[cfg(not(target_os = "linux"))]
fn copy_range(_: &File, _: u64, _: &mut File, _: u64) -> io::Result<u64> {
    Ok(0)
}

/// The fallback: from the parsed bytes when they are all there (the very
/// bytes the parser checked), else read from the input at the offset.
fn buffered_copy(src: &Source, off: u64, out: &mut File, len: u64) -> io::Result<()> {
    if src.complete {
        let (a, b) = (off as usize, (off + len) as usize);
        return out.write_all(&src.base[a..b]);
    }
    let mut buf = vec![0u8; (len as usize).min(1 << 20)];
    let mut done = 0u64;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        read_exact_at(src.file, &mut buf[..n], off + done)?;
        out.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// A positioned read of exactly `buf.len()` bytes.
pub fn read_exact_at(file: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, off)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_and_kernel_writes_agree_and_adjacent_ranges_coalesce() {
        let dir = tempfile::tempdir().unwrap();
        let input: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let path = dir.path().join("in");
        std::fs::write(&path, &input).unwrap();
        let mut s = Spliced::new();
        s.extend_from_slice(b"HEAD");
        s.payload(&input[100..40_000], AuditAs::Elided);
        s.payload(&input[40_000..90_000], AuditAs::Elided);
        let m = s.mark();
        s.extend_from_slice(&[0; 4]);
        s.payload(&input[10..20], AuditAs::Bytes); // short: copied
        s.payload(&input[150_000..199_999], AuditAs::Zeros);
        s.patch(m, b"LINK");
        s.push(b'!');
        let want = s.to_vec();
        assert_eq!(want.len(), s.len());
        assert_eq!(&want[..4], b"HEAD");
        let file = File::open(&path).unwrap();
        for complete in [true, false] {
            let out_path = dir.path().join(format!("out{complete}"));
            let mut out = File::create(&out_path).unwrap();
            let src = Source {
                base: &input,
                file: &file,
                complete,
            };
            let (n, _) = s.write_to(&mut out, &src).unwrap();
            assert_eq!(n as usize, want.len());
            assert_eq!(std::fs::read(&out_path).unwrap(), want);
        }
        let view = s.audit_view();
        assert_eq!(view.len(), 4 + 4 + 10 + 49_999 + 1);
        assert!(view[18..18 + 49_999].iter().all(|&b| b == 0));
        assert_eq!(
            s.payload_extents(),
            vec![(4, 39_900), (39_904, 50_000), (89_918, 49_999)]
        );
        assert_eq!(
            s.payload_sources(&input),
            vec![
                (4, Some(100), 39_900),
                (39_904, Some(40_000), 50_000),
                (89_918, Some(150_000), 49_999)
            ]
        );
        assert_eq!(s.payload_sources(&input[1..])[0].1, Some(99));
        assert_eq!(s.payload_sources(&[0u8; 4])[0].1, None);
    }

    #[test]
    fn a_shrunken_input_fails_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let input = vec![1u8; 100_000];
        let path = dir.path().join("in");
        std::fs::write(&path, &input[..50_000]).unwrap();
        let mut s = Spliced::new();
        s.payload(&input[..], AuditAs::Elided);
        let file = File::open(&path).unwrap();
        let mut out = File::create(dir.path().join("out")).unwrap();
        let src = Source {
            base: &input,
            file: &file,
            complete: false,
        };
        assert!(s.write_to(&mut out, &src).is_err());
    }
}
