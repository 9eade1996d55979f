//! Turning the command line's inputs into a sorted list of files to process.
//! Folders are walked recursively; hidden entries and our own output folder
//! are skipped; symlinked files are followed, symlinked folders are not.

use crate::error::{Error, FileError};
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// One file to process.
#[derive(Debug, Clone)]
pub struct Job {
    pub path: PathBuf,
    /// Path relative to the input it was found under (for `--keep-names`).
    pub relative: PathBuf,
}

/// What the scan found: jobs in a stable order, and the entries it could not read.
#[derive(Debug, Default)]
pub struct Scan {
    pub jobs: Vec<Job>,
    pub errors: Vec<FileError>,
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Walks `inputs`. `exclude` (the output folder) is never entered.
pub fn scan(inputs: &[PathBuf], exclude: Option<&Path>) -> Scan {
    let exclude = exclude.and_then(|p| p.canonicalize().ok());
    let mut out = Scan::default();
    for input in inputs {
        for item in walk(input, exclude.as_deref()) {
            match item {
                Ok(job) => out.jobs.push(job),
                Err(e) => out.errors.push(e),
            }
        }
    }
    out
}

/// The sort key that makes a depth-first walk yield full paths in bytewise
/// order: a folder sorts as `name/`, so `a/x` comes after `a-b` (`/` is 0x2f,
/// `-` is 0x2d), exactly where a byte comparison of the whole paths puts it.
fn walk_key(e: &walkdir::DirEntry) -> Vec<u8> {
    let mut k = os_bytes(e.file_name()).into_owned();
    if e.file_type().is_dir() {
        k.push(b'/');
    }
    k
}

/// The bytes of an OS string (lossy outside Unix).
pub fn os_bytes(s: &std::ffi::OsStr) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(s.as_bytes())
    }
    #[cfg(not(unix))]
    {
        match s.to_string_lossy() {
            std::borrow::Cow::Borrowed(b) => std::borrow::Cow::Borrowed(b.as_bytes()),
            std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(o.into_bytes()),
        }
    }
}

/// One input as a stream, in bytewise order of the full paths: a file is
/// itself; a folder is walked (hidden entries and `exclude`, canonical, are
/// skipped; symlinked files followed, symlinked folders not). Memory stays
/// bounded by the widest folder, whatever the tree's size.
pub fn walk<'a>(
    input: &'a Path,
    exclude: Option<&'a Path>,
) -> Box<dyn Iterator<Item = Result<Job, FileError>> + 'a> {
    let meta = match std::fs::metadata(input) {
        Ok(m) => m,
        Err(e) => {
            return Box::new(std::iter::once(Err(FileError::new(
                input,
                Error::io("cannot read", e),
            ))))
        }
    };
    if !meta.is_dir() {
        let name = input
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| input.to_path_buf());
        return Box::new(std::iter::once(Ok(Job {
            path: input.to_path_buf(),
            relative: name,
        })));
    }
    let walker = WalkDir::new(input)
        .follow_links(false)
        .sort_by(|a, b| walk_key(a).cmp(&walk_key(b)))
        .into_iter()
        .filter_entry(move |e| {
            (e.depth() == 0 || !is_hidden(e.file_name()))
                && !(e.file_type().is_dir()
                    && exclude.is_some()
                    && e.path().canonicalize().ok().as_deref() == exclude)
        });
    Box::new(walker.filter_map(move |entry| match entry {
        Ok(e) => {
            let is_file = e.file_type().is_file() || (e.path_is_symlink() && e.path().is_file());
            if e.path_is_symlink() && std::fs::metadata(e.path()).is_err() {
                // Said, not skipped: the user meant a photo to be there.
                return Some(Err(FileError::new(
                    e.path(),
                    Error::Invalid(
                        "a broken symbolic link: what it points to does not exist".into(),
                    ),
                )));
            }
            if !is_file {
                return None;
            }
            let relative = e
                .path()
                .strip_prefix(input)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| e.file_name().into());
            Some(Ok(Job {
                path: e.into_path(),
                relative,
            }))
        }
        Err(e) => {
            let path = e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| input.to_path_buf());
            let io = e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("filesystem loop"));
            Some(Err(FileError::new(&path, Error::io("cannot read", io))))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_skips_hidden_and_output() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("b/out")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for f in [
            "b/2.jpg",
            "b/1.jpg",
            "a.jpg",
            ".hidden.jpg",
            ".git/x",
            "b/out/done.jpg",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let s = scan(&[root.to_path_buf()], Some(&root.join("b/out")));
        let rel: Vec<_> = s
            .jobs
            .iter()
            .map(|j| j.relative.to_string_lossy().to_string())
            .collect();
        assert_eq!(rel, ["a.jpg", "b/1.jpg", "b/2.jpg"]);
        std::fs::create_dir_all(root.join("c")).unwrap();
        std::fs::write(root.join("c/x.jpg"), b"x").unwrap();
        std::fs::write(root.join("c-d.jpg"), b"x").unwrap();
        let s = scan(&[root.to_path_buf()], Some(&root.join("b/out")));
        let paths: Vec<Vec<u8>> = s
            .jobs
            .iter()
            .map(|j| os_bytes(j.path.as_os_str()).into_owned())
            .collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "full paths come out in bytewise order");
        let missing = scan(&[root.join("nope")], None);
        assert_eq!(missing.errors.len(), 1);
    }
}
