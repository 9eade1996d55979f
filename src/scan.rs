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
        let meta = match std::fs::metadata(input) {
            Ok(m) => m,
            Err(e) => {
                out.errors
                    .push(FileError::new(input, Error::io("cannot read", e)));
                continue;
            }
        };
        if !meta.is_dir() {
            let name = input
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| input.clone());
            out.jobs.push(Job {
                path: input.clone(),
                relative: name,
            });
            continue;
        }
        let walker = WalkDir::new(input)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                (e.depth() == 0 || !is_hidden(e.file_name()))
                    && !(e.file_type().is_dir()
                        && exclude.is_some()
                        && e.path().canonicalize().ok() == exclude)
            });
        for entry in walker {
            match entry {
                Ok(e) => {
                    let is_file =
                        e.file_type().is_file() || (e.path_is_symlink() && e.path().is_file());
                    if e.path_is_symlink() && std::fs::metadata(e.path()).is_err() {
                        // Said, not skipped: the user meant a photo to be there.
                        out.errors.push(FileError::new(
                            e.path(),
                            Error::Invalid(
                                "a broken symbolic link: what it points to does not exist".into(),
                            ),
                        ));
                        continue;
                    }
                    if is_file {
                        let relative = e
                            .path()
                            .strip_prefix(input)
                            .map(Path::to_path_buf)
                            .unwrap_or_else(|_| e.file_name().into());
                        out.jobs.push(Job {
                            path: e.into_path(),
                            relative,
                        });
                    }
                }
                Err(e) => {
                    let path = e
                        .path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| input.clone());
                    let io = e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("filesystem loop"));
                    out.errors
                        .push(FileError::new(&path, Error::io("cannot read", io)));
                }
            }
        }
    }
    out
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
        let missing = scan(&[root.join("nope")], None);
        assert_eq!(missing.errors.len(), 1);
    }
}
