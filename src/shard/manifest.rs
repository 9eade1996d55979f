//! The frozen listing a sharded run works from.
//!
//! ```text
//! # photodeid manifest 1
//! # chunk-size<TAB>1000
//! # entries<TAB>1234
//! # root<TAB>0<TAB>dir<TAB>/archive/photos
//! # digest<TAB>3f1c…(64 hex)
//! 0<TAB>2483112<TAB>1700000000123456789<TAB>case-17/IMG_0001.JPG
//! ```
//!
//! Body lines are `root index, size, mtime (ns since 1970), path relative to
//! the root`, sorted bytewise by the full path (roots merged). Paths are
//! escaped (`\\`, `\t`, `\n`, `\r`, `\xNN` for control and non-UTF-8 bytes),
//! so a line is always one path. The digest is BLAKE3 over the header lines
//! above it and the BLAKE3 of the body, so a reader checks the whole file in
//! one streamed pass. It names originals: private (0600), never in an output.

use super::{Result, ShardError};
use crate::error::FileError;
use crate::scan::{self, Job};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
const MAGIC: &str = "# photodeid manifest ";

/// What an input of the plan was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    /// A folder: entries are below it.
    Dir,
    /// A single file: its one entry is the file itself.
    File,
}

/// An input of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub kind: RootKind,
    pub path: PathBuf,
}

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 0-based position in the manifest (chunk = index / chunk size).
    pub index: u64,
    pub root: usize,
    pub size: u64,
    pub mtime_ns: i64,
    pub relative: PathBuf,
}

impl Entry {
    /// The job the pipeline gets: the same path and relative name a
    /// single-machine walk of the same inputs gives.
    pub fn job(&self, roots: &[Root]) -> Job {
        let root = &roots[self.root];
        let path = match root.kind {
            RootKind::Dir => root.path.join(&self.relative),
            RootKind::File => root.path.clone(),
        };
        Job {
            path,
            relative: self.relative.clone(),
        }
    }
}

/// Size and modification time as the manifest records them.
pub fn stamp(meta: &std::fs::Metadata) -> (u64, i64) {
    let mtime = meta
        .modified()
        .ok()
        .map_or(0, |t| match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
        });
    (meta.len(), mtime)
}

/// Escapes path bytes into one tab- and newline-free UTF-8 field.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, &[][..]),
            Err(e) => {
                let (v, b) = rest.split_at(e.valid_up_to());
                (std::str::from_utf8(v).expect("valid prefix"), b)
            }
        };
        for c in valid.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c => out.push(c),
            }
        }
        if let Some((&b, tail)) = bad.split_first() {
            out.push_str(&format!("\\x{b:02x}"));
            rest = tail;
        } else {
            rest = &[];
        }
    }
    out
}

/// The inverse of [`escape`]; `None` for a malformed escape.
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1)? {
            b'\\' => out.push(b'\\'),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'x' => {
                let hex = s.get(i + 2..i + 4)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}

/// A path from its bytes (Unix: exact; elsewhere: lossy).
pub fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn path_bytes(p: &Path) -> Vec<u8> {
    scan::os_bytes(p.as_os_str()).into_owned()
}

/// What `plan` wrote.
#[derive(Debug, Clone)]
pub struct Planned {
    pub entries: u64,
    pub chunks: u64,
    pub digest: String,
}

fn header_prefix(chunk_size: u64, entries: u64, roots: &[Root]) -> String {
    let mut h = format!("{MAGIC}{VERSION}\n# chunk-size\t{chunk_size}\n# entries\t{entries}\n");
    for (i, r) in roots.iter().enumerate() {
        let kind = match r.kind {
            RootKind::Dir => "dir",
            RootKind::File => "file",
        };
        h.push_str(&format!(
            "# root\t{i}\t{kind}\t{}\n",
            escape(&path_bytes(&r.path))
        ));
    }
    h
}

fn digest_of(prefix: &str, body: &blake3::Hash) -> String {
    let mut h = blake3::Hasher::new();
    h.update(prefix.as_bytes());
    h.update(body.to_hex().as_bytes());
    h.finalize().to_hex().to_string()
}

/// Walks `inputs` once and freezes the listing into `dest` (created
/// owner-only, never over an existing file). Entries that cannot be listed go
/// to `on_error` (the plan still lists the others). Memory stays bounded by
/// the widest folder: the walk streams, the body goes to a temporary file.
pub fn plan(
    inputs: &[PathBuf],
    dest: &Path,
    chunk_size: u64,
    on_error: &mut dyn FnMut(FileError),
) -> Result<Planned> {
    if chunk_size == 0 {
        return Err(ShardError::Invalid(
            "--chunk-size must be at least 1".into(),
        ));
    }
    if dest.exists() {
        return Err(ShardError::Invalid(format!(
            "manifest {} exists already: a plan is frozen once; plan into a new run folder \
             (or delete it when no shard is using it)",
            dest.display()
        )));
    }
    let dir = parent_dir(dest);
    super::chunk::create_private_dir(dir)?;
    let mut roots = Vec::new();
    for input in inputs {
        let kind = match std::fs::metadata(input) {
            Ok(m) if m.is_dir() => RootKind::Dir,
            Ok(_) => RootKind::File,
            Err(e) => {
                on_error(FileError::new(
                    input,
                    crate::Error::Invalid(format!("cannot read: {e}")),
                ));
                continue;
            }
        };
        roots.push(Root {
            kind,
            path: input.clone(),
        });
    }
    let mut body = tempfile::Builder::new()
        .prefix(".photodeid-plan-")
        .tempfile_in(dir)
        .map_err(|e| ShardError::io("cannot create a temporary file in", dir, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut entries = 0u64;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, body.as_file_mut());
        // Each root's walk is sorted; merging the heads keeps the whole
        // listing sorted by full path bytes.
        let mut walks: Vec<_> = roots
            .iter()
            .map(|r| scan::walk(&r.path, None).peekable())
            .collect();
        let mut last: Option<Vec<u8>> = None;
        loop {
            let mut best: Option<(usize, Vec<u8>)> = None;
            for (i, w) in walks.iter_mut().enumerate() {
                while let Some(Err(_)) = w.peek() {
                    if let Some(Err(e)) = w.next() {
                        on_error(e);
                    }
                }
                if let Some(Ok(job)) = w.peek() {
                    let key = path_bytes(&job.path);
                    if best.as_ref().is_none_or(|(_, b)| key < *b) {
                        best = Some((i, key));
                    }
                }
            }
            let Some((i, key)) = best else { break };
            let Some(Ok(job)) = walks[i].next() else {
                unreachable!("peeked")
            };
            if last.as_ref() == Some(&key) {
                continue; // the same file through two inputs: listed once
            }
            let meta = match std::fs::metadata(&job.path) {
                Ok(m) => m,
                Err(e) => {
                    on_error(FileError::new(
                        &job.path,
                        crate::Error::Invalid(format!("cannot read: {e}")),
                    ));
                    continue;
                }
            };
            let (size, mtime) = stamp(&meta);
            let line = format!(
                "{i}\t{size}\t{mtime}\t{}\n",
                escape(&path_bytes(&job.relative))
            );
            hasher.update(line.as_bytes());
            w.write_all(line.as_bytes())
                .map_err(|e| ShardError::io("cannot write", body_path(dir), e))?;
            entries += 1;
            last = Some(key);
        }
        w.flush()
            .map_err(|e| ShardError::io("cannot write", body_path(dir), e))?;
    }
    let prefix = header_prefix(chunk_size, entries, &roots);
    let digest = digest_of(&prefix, &hasher.finalize());
    let mut out = tempfile::Builder::new()
        .prefix(".photodeid-plan-")
        .tempfile_in(dir)
        .map_err(|e| ShardError::io("cannot create a temporary file in", dir, e))?;
    {
        let f = body.as_file_mut();
        f.seek(SeekFrom::Start(0))
            .map_err(|e| ShardError::io("cannot read", body_path(dir), e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, out.as_file_mut());
        w.write_all(prefix.as_bytes())
            .and_then(|_| writeln!(w, "# digest\t{digest}"))
            .and_then(|_| std::io::copy(f, &mut w).map(|_| ()))
            .and_then(|_| w.flush())
            .map_err(|e| ShardError::io("cannot write", dest, e))?;
    }
    out.as_file()
        .sync_all()
        .map_err(|e| ShardError::io("cannot write", dest, e))?;
    out.persist_noclobber(dest)
        .map_err(|e| ShardError::io("cannot publish", dest, e.error))?;
    crate::commit::sync_dir(dir);
    Ok(Planned {
        entries,
        chunks: entries.div_ceil(chunk_size),
        digest,
    })
}

fn body_path(dir: &Path) -> PathBuf {
    dir.join(".photodeid-plan-*")
}

pub fn parent_dir(p: &Path) -> &Path {
    p.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A manifest read and checked: its header, and where each chunk starts.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub chunk_size: u64,
    pub entries: u64,
    pub roots: Vec<Root>,
    pub digest: String,
    /// Lines before the first entry (file line of entry i is `header_lines + i + 1`).
    pub header_lines: u64,
    offsets: Vec<u64>,
}

impl Manifest {
    /// Reads the header, then streams the body once: its syntax, its entry
    /// count and its digest are checked, and the byte offset of every chunk
    /// is kept (one number per chunk), so chunks are read by seeking.
    pub fn open(path: &Path) -> Result<Manifest> {
        let file = std::fs::File::open(path)
            .map_err(|e| ShardError::io("cannot read manifest", path, e))?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let bad = |line: u64, reason: String| ShardError::Format {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut line = String::new();
        let mut n = 0u64;
        let mut pos = 0u64;
        let read_line = |r: &mut BufReader<std::fs::File>,
                         line: &mut String,
                         n: &mut u64,
                         pos: &mut u64|
         -> Result<bool> {
            line.clear();
            let got = r
                .read_line(line)
                .map_err(|e| ShardError::io("cannot read manifest", path, e))?;
            *n += 1;
            *pos += got as u64;
            Ok(got > 0)
        };
        read_line(&mut r, &mut line, &mut n, &mut pos)?;
        let version = line
            .strip_prefix(MAGIC)
            .and_then(|v| v.trim_end().parse::<u32>().ok())
            .ok_or_else(|| {
                bad(
                    1,
                    "not a photodeid manifest (make one with `photodeid plan`)".into(),
                )
            })?;
        if version != VERSION {
            return Err(bad(
                1,
                format!("manifest format {version}; this photodeid reads format {VERSION}"),
            ));
        }
        let mut chunk_size = None;
        let mut entries = None;
        let mut roots = Vec::new();
        let digest;
        loop {
            if !read_line(&mut r, &mut line, &mut n, &mut pos)? {
                return Err(bad(n, "the header ends without a digest line".into()));
            }
            let l = line.trim_end_matches('\n');
            let fields: Vec<&str> = l.split('\t').collect();
            match fields.as_slice() {
                ["# chunk-size", v] => chunk_size = v.parse::<u64>().ok().filter(|&c| c > 0),
                ["# entries", v] => entries = v.parse::<u64>().ok(),
                ["# root", i, kind, p] => {
                    if i.parse::<usize>().ok() != Some(roots.len()) {
                        return Err(bad(n, "roots out of order".into()));
                    }
                    let kind = match *kind {
                        "dir" => RootKind::Dir,
                        "file" => RootKind::File,
                        _ => return Err(bad(n, format!("unknown root kind {kind:?}"))),
                    };
                    let p = unescape(p).ok_or_else(|| bad(n, "malformed path escape".into()))?;
                    roots.push(Root {
                        kind,
                        path: path_from_bytes(p),
                    });
                }
                ["# digest", d] if d.len() == 64 => {
                    digest = d.to_string();
                    break;
                }
                _ => return Err(bad(n, "unexpected header line".into())),
            }
        }
        let (Some(chunk_size), Some(entries)) = (chunk_size, entries) else {
            return Err(bad(n, "the header lacks chunk-size or entries".into()));
        };
        let header_lines = n;
        let prefix = header_prefix(chunk_size, entries, &roots);
        let mut hasher = blake3::Hasher::new();
        let mut offsets = Vec::with_capacity(entries.div_ceil(chunk_size) as usize);
        let mut count = 0u64;
        loop {
            let start = pos;
            if !read_line(&mut r, &mut line, &mut n, &mut pos)? {
                break;
            }
            if !line.ends_with('\n') {
                return Err(bad(
                    n,
                    "the last line is cut short (an unfinished copy?)".into(),
                ));
            }
            parse_entry(&line, count, roots.len()).map_err(|why| bad(n, why))?;
            if count.is_multiple_of(chunk_size) {
                offsets.push(start);
            }
            hasher.update(line.as_bytes());
            count += 1;
        }
        if count != entries {
            return Err(bad(
                n,
                format!("the header says {entries} entries, the file has {count}"),
            ));
        }
        if digest_of(&prefix, &hasher.finalize()) != digest {
            return Err(bad(
                header_lines,
                "digest mismatch: the manifest was changed after `plan` wrote it".into(),
            ));
        }
        Ok(Manifest {
            path: path.to_path_buf(),
            chunk_size,
            entries,
            roots,
            digest,
            header_lines,
            offsets,
        })
    }

    /// Number of chunks (the last one may be short).
    pub fn chunks(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// The file line number of entry `index` (1-based, as `sed -n Np` counts).
    pub fn line_of(&self, index: u64) -> u64 {
        self.header_lines + index + 1
    }

    /// First entry index and number of entries of chunk `c`.
    pub fn chunk_range(&self, c: u64) -> (u64, u64) {
        let first = c * self.chunk_size;
        (
            first,
            self.chunk_size.min(self.entries.saturating_sub(first)),
        )
    }

    /// The entries of chunk `c` (at most chunk-size of them in memory).
    pub fn chunk_entries(&self, c: u64) -> Result<Vec<Entry>> {
        let Some(&offset) = self.offsets.get(c as usize) else {
            return Err(ShardError::Selection(format!(
                "chunk {c} does not exist: the manifest has chunks 0-{}",
                self.chunks().saturating_sub(1)
            )));
        };
        let (first, len) = self.chunk_range(c);
        let mut f = std::fs::File::open(&self.path)
            .map_err(|e| ShardError::io("cannot read manifest", &self.path, e))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| ShardError::io("cannot read manifest", &self.path, e))?;
        let r = BufReader::new(f.take(u64::MAX));
        let mut out = Vec::with_capacity(len as usize);
        for (i, l) in r.lines().take(len as usize).enumerate() {
            let index = first + i as u64;
            let l = l.map_err(|e| ShardError::io("cannot read manifest", &self.path, e))?;
            let e =
                parse_entry(&l, index, self.roots.len()).map_err(|reason| ShardError::Format {
                    path: self.path.clone(),
                    line: self.line_of(index),
                    reason,
                })?;
            out.push(e);
        }
        if out.len() as u64 != len {
            return Err(ShardError::Format {
                path: self.path.clone(),
                line: self.line_of(first + out.len() as u64),
                reason: "the manifest changed since it was checked".into(),
            });
        }
        Ok(out)
    }
}

fn parse_entry(line: &str, index: u64, roots: usize) -> std::result::Result<Entry, String> {
    let l = line.trim_end_matches('\n');
    let mut f = l.splitn(4, '\t');
    let (Some(root), Some(size), Some(mtime), Some(rel)) = (f.next(), f.next(), f.next(), f.next())
    else {
        return Err("expected 4 tab-separated fields".into());
    };
    let root = root
        .parse::<usize>()
        .ok()
        .filter(|&r| r < roots)
        .ok_or("root index out of range")?;
    let size = size.parse::<u64>().map_err(|_| "bad size")?;
    let mtime_ns = mtime.parse::<i64>().map_err(|_| "bad mtime")?;
    let rel = unescape(rel).ok_or("malformed path escape")?;
    Ok(Entry {
        index,
        root,
        size,
        mtime_ns,
        relative: path_from_bytes(rel),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_round_trips_any_bytes() {
        for bytes in [
            b"plain/name.jpg".to_vec(),
            b"tab\there\nnew\\line\r".to_vec(),
            vec![0xff, b'a', 0xc3, 0x28, 0x01, 0x7f],
            "caf\u{e9}/\u{1f600}.jpg".as_bytes().to_vec(),
        ] {
            let e = escape(&bytes);
            assert!(!e.contains('\t') && !e.contains('\n'), "{e}");
            assert_eq!(unescape(&e).unwrap(), bytes, "{e}");
        }
        assert!(unescape("bad\\q").is_none());
    }

    #[test]
    fn plan_then_open_checks_the_digest() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("in");
        std::fs::create_dir_all(src.join("a")).unwrap();
        for f in ["a/x.jpg", "a-b.jpg", "z.jpg", "a/y\tz.jpg"] {
            std::fs::write(src.join(f), f).unwrap();
        }
        let m = d.path().join("run/manifest.tsv");
        let mut errs = Vec::new();
        let p = plan(std::slice::from_ref(&src), &m, 2, &mut |e| errs.push(e)).unwrap();
        assert!(errs.is_empty());
        assert_eq!((p.entries, p.chunks), (4, 2));
        let man = Manifest::open(&m).unwrap();
        assert_eq!(man.digest, p.digest);
        let rels: Vec<_> = (0..2)
            .flat_map(|c| man.chunk_entries(c).unwrap())
            .map(|e| e.job(&man.roots).path)
            .collect();
        let mut sorted = rels.clone();
        sorted.sort_by_key(|p| path_bytes(p));
        assert_eq!(rels, sorted);
        assert_eq!(rels[0], src.join("a-b.jpg"));
        assert!(
            plan(&[src], &m, 2, &mut |_| {}).is_err(),
            "never over a plan"
        );
        // One changed byte in the body is caught.
        let text = std::fs::read_to_string(&m)
            .unwrap()
            .replace("z.jpg", "q.jpg");
        std::fs::write(&m, text).unwrap();
        let err = Manifest::open(&m).unwrap_err().to_string();
        assert!(err.contains("digest mismatch"), "{err}");
    }
}
