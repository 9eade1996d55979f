//! Who may talk to the server, and which files it may touch.
//!
//! - [`Token`]: 128 random bits per run, compared in constant time.
//! - [`host_allowed`]: the `Host` header must name the loopback address and
//!   our port (a DNS-rebinding page sends its own host name).
//! - [`Root`]: a canonical folder; [`Root::contains`] accepts a path only
//!   when its canonical form (symlinks resolved, `..` gone) lies inside.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The per-run secret that every request must carry.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// 128 bits from the operating system's random source, as 32 hex digits.
    pub fn random() -> Result<Token> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)
            .map_err(|e| Error::Invalid(format!("no system randomness: {e}")))?;
        Ok(Token(crate::pseudonym::hex(&b)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison (the time taken does not depend on where
    /// the first wrong character is).
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// True when `host` (the `Host` header) is `127.0.0.1:port` or `localhost:port`.
pub fn host_allowed(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else { return false };
    let host = host.trim().to_ascii_lowercase();
    let port = port.to_string();
    ["127.0.0.1", "localhost"]
        .iter()
        .any(|name| host.strip_prefix(name).and_then(|r| r.strip_prefix(':')) == Some(&port))
}

/// A folder the server may read or write below; canonical.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    pub fn new(dir: &Path) -> Result<Root> {
        let c = dir
            .canonicalize()
            .map_err(|e| Error::io("cannot open folder", e))?;
        if !c.is_dir() {
            return Err(Error::Invalid(format!("{} is not a folder", dir.display())));
        }
        Ok(Root(c))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The canonical form of `path` if it exists and lies inside the root
    /// (a symlink that leads out, or `..`, is refused).
    pub fn contains(&self, path: &Path) -> Option<PathBuf> {
        let c = path.canonicalize().ok()?;
        c.starts_with(&self.0).then_some(c)
    }

    /// A path for a new file named `name` directly in the root. `name` must be
    /// one plain component (no separators, no `..`, not hidden unless `hidden`).
    pub fn child(&self, name: &str) -> Result<PathBuf> {
        let plain = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\', '\0'])
            && Path::new(name).components().count() == 1;
        if !plain {
            return Err(Error::Invalid(format!("bad file name {name:?}")));
        }
        let p = self.0.join(name);
        // An existing symlink at that name could lead out of the root.
        if let Ok(meta) = std::fs::symlink_metadata(&p) {
            if meta.file_type().is_symlink() {
                return Err(Error::Invalid(format!("{name} is a symbolic link")));
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_random_and_compared_exactly() {
        let t = Token::random().unwrap();
        assert_eq!(t.as_str().len(), 32);
        assert!(t.matches(t.as_str()));
        assert!(!t.matches(""));
        assert!(!t.matches(&t.as_str()[..31]));
        let mut wrong = t.as_str().to_string();
        wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
        assert!(!t.matches(&wrong));
        assert_ne!(t.as_str(), Token::random().unwrap().as_str());
    }

    #[test]
    fn hosts() {
        assert!(host_allowed(Some("127.0.0.1:8080"), 8080));
        assert!(host_allowed(Some("localhost:8080"), 8080));
        assert!(!host_allowed(Some("127.0.0.1:8081"), 8080));
        assert!(!host_allowed(Some("evil.example:8080"), 8080));
        assert!(!host_allowed(Some("127.0.0.1"), 8080));
        assert!(!host_allowed(Some("localhost.evil:8080"), 8080));
        assert!(!host_allowed(None, 8080));
    }

    #[test]
    fn root_refuses_escapes() {
        let d = tempfile::tempdir().unwrap();
        let inside = d.path().join("in");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(d.path().join("secret"), b"x").unwrap();
        std::fs::write(inside.join("a.jpg"), b"x").unwrap();
        let root = Root::new(&inside).unwrap();
        assert!(root.contains(&inside.join("a.jpg")).is_some());
        assert!(root.contains(&inside.join("../secret")).is_none());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(d.path().join("secret"), inside.join("link.jpg")).unwrap();
            assert!(root.contains(&inside.join("link.jpg")).is_none());
            assert!(root.child("link.jpg").is_err());
        }
        assert!(root.child("../x").is_err());
        assert!(root.child("a/b").is_err());
        assert!(root.child("..").is_err());
        assert!(root.child("ok.csv").is_ok());
    }
}
