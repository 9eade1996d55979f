//! Error types of the library. A failure on one file never aborts a batch:
//! the pipeline wraps an [`Error`] into a [`FileError`] that names the path.

use std::path::{Path, PathBuf};

/// What went wrong with one file, by kind, so callers can tell "bad file"
/// from "too big", "not supported" and "disk" without matching strings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing failed (disk full, permission denied, ...).
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("empty file (0 bytes)")]
    Empty,
    /// The bytes are not a format photodeid can clean.
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// The container structure is broken (a length runs past the end, a marker is missing, ...).
    #[error("malformed {format}: {reason}")]
    Malformed {
        format: &'static str,
        reason: String,
    },
    /// The image is larger than the configured limits (a decompression bomb, most likely).
    #[error("image too large: {0}")]
    TooLarge(String),
    /// Decoding the pixels failed.
    #[error("cannot decode pixels: {0}")]
    Decode(String),
    /// Encoding the pixels failed.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The output still carried identifying content after cleaning, so it was not published.
    #[error("self-audit failed, output not written: {0}")]
    AuditFailed(String),
    /// The output exists already and overwriting was not requested.
    #[error("output exists: {0} (use --overwrite to replace it)")]
    OutputExists(PathBuf),
    /// The request itself is not possible (a region outside the image, ...).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(context: &'static str, source: std::io::Error) -> Self {
        Error::Io { context, source }
    }

    pub(crate) fn malformed(format: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            format,
            reason: reason.into(),
        }
    }

    /// True when the error comes from the file's content rather than the environment.
    pub fn is_input_problem(&self) -> bool {
        !matches!(self, Error::Io { .. } | Error::OutputExists(_))
    }
}

impl From<image::ImageError> for Error {
    fn from(e: image::ImageError) -> Self {
        use image::ImageError as E;
        match e {
            E::Limits(l) => Error::TooLarge(l.to_string()),
            E::Unsupported(u) => Error::Unsupported(u.to_string()),
            E::IoError(io) => Error::io("read", io),
            E::Encoding(en) => Error::Encode(en.to_string()),
            other => Error::Decode(other.to_string()),
        }
    }
}

/// An [`Error`] tied to the file it happened on. Displays as `path: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub error: Error,
}

impl FileError {
    pub fn new(path: &Path, error: Error) -> Self {
        FileError {
            path: path.to_path_buf(),
            error,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
