//! Output names that carry nothing of the original: 128 random bits, or a
//! keyed hash of the photo's bytes when reruns must give the same names.

use crate::error::{Error, Result};
use std::path::Path;

/// How outputs are named.
#[derive(Debug, Clone)]
pub enum Naming {
    /// 128 random bits, hex (`--random-names`).
    Random,
    /// BLAKE3 keyed hash of the original bytes: same photo, same name (the
    /// CLI's default, with the key in the user's data folder).
    Keyed([u8; 32]),
    /// Keep the original relative path (opt-out; names often identify).
    Keep,
}

impl Naming {
    /// The pseudonym (without extension) for a photo with these bytes.
    /// `None` for [`Naming::Keep`].
    pub fn pseudonym(&self, content: &[u8]) -> Result<Option<String>> {
        let bytes: [u8; 16] = match self {
            Naming::Random => random_16()?,
            Naming::Keyed(key) => {
                let h = blake3::keyed_hash(key, content);
                h.as_bytes()[..16].try_into().expect("16 bytes")
            }
            Naming::Keep => return Ok(None),
        };
        Ok(Some(hex(&bytes)))
    }

    /// [`Naming::pseudonym`] of a file's `len` bytes, streamed through the
    /// hash a window at a time (a large TIFF read sparsely is never held
    /// whole): the same name as the bytes in memory would get. Each window
    /// is hashed in place ([`Mapped`](crate::mapped::Mapped), no copy),
    /// or read in pieces of [`HASH_READ`] where it cannot be mapped.
    pub fn pseudonym_of_file(&self, file: &std::fs::File, len: u64) -> Result<Option<String>> {
        let Naming::Keyed(key) = self else {
            return self.pseudonym(&[]);
        };
        let mut hasher = blake3::Hasher::new_keyed(key);
        let mut buf = Vec::new();
        let mut off = 0u64;
        while off < len {
            let n = HASH_WINDOW.min((len - off) as usize);
            if let Some(window) = crate::mapped::Mapped::new(file, off, n) {
                hasher.update(&window);
                if !window.intact() {
                    return Err(crate::mapped::pages_lost());
                }
            } else {
                buf.resize(HASH_READ.min(n), 0);
                let mut at = 0;
                while at < n {
                    let k = buf.len().min(n - at);
                    crate::splice::read_exact_at(file, &mut buf[..k], off + at as u64)
                        .map_err(|e| Error::io("cannot read", e))?;
                    hasher.update(&buf[..k]);
                    at += k;
                }
            }
            off += n as u64;
        }
        Ok(Some(hex(&hasher.finalize().as_bytes()[..16])))
    }

    /// A pseudonym for a label (a case folder name) rather than file content.
    pub fn pseudonym_for_label(&self, label: &str) -> Result<String> {
        match self {
            Naming::Keyed(key) => {
                let derived = blake3::derive_key("photodeid case name v1", key);
                let h = blake3::keyed_hash(&derived, label.as_bytes());
                Ok(hex(&h.as_bytes()[..16]))
            }
            _ => Ok(hex(&random_16()?)),
        }
    }
}

/// Reads this long stay in a core's cache between the read and the hash:
/// 128 KiB reads cost about 15% less CPU than 4 MiB ones (user + sys over
/// the 253 MB TIFF bench corpus, cached: 81 ms a pass against 95).
const HASH_READ: usize = 128 << 10;

/// A file hashed in place is mapped this much at a time: its memory stays
/// bounded whatever its size, for a map and an unmap per 16 MiB.
const HASH_WINDOW: usize = 16 << 20;

/// 128 unpredictable bits: a keyed hash of a counter under a key drawn from
/// the system once per process (one `getrandom`, not one per file). Without
/// the key, which never leaves memory, the names are random to anyone;
/// within a process they never repeat.
fn random_16() -> Result<[u8; 16]> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static KEY: OnceLock<std::result::Result<[u8; 32], String>> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = KEY
        .get_or_init(|| {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(|e| e.to_string())?;
            Ok(k)
        })
        .as_ref()
        .map_err(|e| Error::Invalid(format!("no system randomness: {e}")))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let h = blake3::keyed_hash(key, &n.to_le_bytes());
    Ok(h.as_bytes()[..16].try_into().expect("16 bytes"))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a name key (64 hex characters; any other content is hashed into a
/// key), or creates a new random one (mode 0600) when the file does not exist.
/// Returns the key and whether it was created.
pub fn load_or_create_key(path: &Path) -> Result<([u8; 32], bool)> {
    match load_key(path) {
        Ok(key) => Ok((key, false)),
        Err(KeyError::Missing) => create_key(path).map(|k| (k, true)),
        Err(KeyError::Other(e)) => Err(e),
    }
}

/// Why [`load_key`] gave no key.
#[derive(Debug)]
pub enum KeyError {
    /// The file does not exist (sharded runs refuse this; `keygen` makes one).
    Missing,
    Other(Error),
}

/// Reads an existing name key; never creates one.
pub fn load_key(path: &Path) -> std::result::Result<[u8; 32], KeyError> {
    let content = match std::fs::read(path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(KeyError::Missing),
        Err(e) => return Err(KeyError::Other(Error::io("read name key", e))),
    };
    let text = String::from_utf8_lossy(&content);
    let t = text.trim();
    if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        let mut key = [0u8; 32];
        for (i, k) in key.iter_mut().enumerate() {
            *k = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).expect("hex checked");
        }
        Ok(key)
    } else if content.is_empty() {
        Err(KeyError::Other(Error::Invalid(format!(
            "name key file {} is empty",
            path.display()
        ))))
    } else {
        Ok(blake3::derive_key("photodeid name key v1", &content))
    }
}

/// Creates a new random name key at `path` (0600, fsynced, never over an
/// existing file).
pub fn create_key(path: &Path) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| Error::Invalid(format!("no system randomness: {e}")))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".photodeid-key-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create name key", e))?;
    use std::io::Write;
    writeln!(tmp, "{}", hex(&key)).map_err(|e| Error::io("write name key", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("write name key", e))?;
    tmp.persist_noclobber(path)
        .map_err(|e| Error::io("create name key", e.error))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_names_are_stable_and_key_dependent() {
        let a = Naming::Keyed([1; 32]);
        let b = Naming::Keyed([2; 32]);
        let n1 = a.pseudonym(b"photo").unwrap().unwrap();
        assert_eq!(n1, a.pseudonym(b"photo").unwrap().unwrap());
        assert_ne!(n1, b.pseudonym(b"photo").unwrap().unwrap());
        assert_ne!(n1, a.pseudonym(b"other").unwrap().unwrap());
        assert_eq!(n1.len(), 32);
    }

    /// Names must not change across versions: a large input, in memory or
    /// streamed from a file (three map windows, the last one short), is
    /// named by BLAKE3's keyed hash.
    #[test]
    fn large_inputs_keep_the_plain_keyed_hash_in_memory_and_from_a_file() {
        let key = [7; 32];
        let bytes: Vec<u8> = (0..(2 * HASH_WINDOW as u32) + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let want = hex(&blake3::keyed_hash(&key, &bytes).as_bytes()[..16]);
        let naming = Naming::Keyed(key);
        assert_eq!(naming.pseudonym(&bytes).unwrap().unwrap(), want);
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &bytes).unwrap();
        let from_file = naming.pseudonym_of_file(&f, bytes.len() as u64).unwrap();
        assert_eq!(from_file.unwrap(), want);
    }

    #[test]
    fn random_names_differ() {
        let r = Naming::Random;
        assert_ne!(r.pseudonym(b"x").unwrap(), r.pseudonym(b"x").unwrap());
    }

    #[test]
    fn key_file_is_created_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        let (k1, created) = load_or_create_key(&p).unwrap();
        assert!(created);
        let (k2, created) = load_or_create_key(&p).unwrap();
        assert!(!created);
        assert_eq!(k1, k2);
    }
}
