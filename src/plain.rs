//! Errors in the words of the person holding the file: what is wrong and
//! what to do, for every front end (CLI lines, the page's greyed files).
//! The reason comes from the library's own error (its kind, its detail), so
//! a format the library learns to read stops being reported here by itself.

use crate::error::Error;
use std::io::ErrorKind;

/// What went wrong and what to do, in plain words. The technical reason of
/// a damaged file follows in brackets, for whoever looks further.
pub fn explain(e: &Error) -> String {
    match e {
        Error::Empty => "this file is empty (0 bytes): copy it again from the camera or phone".into(),
        Error::Malformed { format, reason } if reason.contains("truncated") || reason.contains("end of") => {
            format!("this file is damaged: it ends early; copy it again from the camera or phone ({format}: {reason})")
        }
        Error::Malformed { format, reason } => format!(
            "this file is damaged: its {format} structure is broken; copy it again from the camera or phone ({reason})"
        ),
        Error::Decode(reason) => format!(
            "the picture in this file is damaged and cannot be read; copy it again from the camera or phone ({reason})"
        ),
        Error::Unsupported(what) => format!("this kind of file cannot be used: {what}"),
        Error::TooLarge(what) => format!(
            "this picture is too large to open safely ({what}); if it is a real photo, raise --max-megapixels"
        ),
        Error::Io { context, source } => format!("{context}: {}", io_words(source)),
        other => other.to_string(),
    }
}

/// An operating-system error without its number: "file not found", not
/// "No such file or directory (os error 2)".
pub fn io_words(e: &std::io::Error) -> String {
    let words = match e.kind() {
        ErrorKind::NotFound => "file not found (was it moved or deleted?)",
        ErrorKind::PermissionDenied => "permission denied (this user may not open it)",
        ErrorKind::AlreadyExists => "a file of that name exists already",
        ErrorKind::StorageFull => "the disk is full",
        ErrorKind::ReadOnlyFilesystem => "the disk is read-only",
        ErrorKind::IsADirectory => "this is a folder, not a file",
        ErrorKind::NotADirectory => "a part of the path is a file, not a folder",
        ErrorKind::UnexpectedEof => "the file ends early (damaged or still being copied)",
        ErrorKind::TimedOut => "the disk or network did not answer in time",
        ErrorKind::Interrupted => "interrupted",
        ErrorKind::InvalidFilename => "the name is not valid here",
        ErrorKind::FileTooLarge => "the file is too large",
        ErrorKind::CrossesDevices => "it cannot be moved to another disk this way",
        _ => return strip_os_number(&e.to_string()),
    };
    words.to_string()
}

/// "Text (os error 5)" → "Text".
fn strip_os_number(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_say_what_to_do() {
        let e = Error::malformed("JPEG", "truncated: scan data runs to the end of the file");
        let s = explain(&e);
        assert!(
            s.starts_with("this file is damaged: it ends early; copy it again"),
            "{s}"
        );
        assert!(s.contains("JPEG"), "{s}");
        let s = explain(&Error::malformed(
            "JPEG",
            "expected a marker at byte 5, found 0x2D",
        ));
        assert!(s.contains("structure is broken"), "{s}");
        assert!(explain(&Error::Empty).contains("empty"));
        let s = explain(&Error::Unsupported(
            "HEIC/HEIF image; export it to JPEG first".into(),
        ));
        assert!(s.contains("cannot be used: HEIC"), "{s}");
    }

    #[test]
    fn os_errors_lose_their_numbers() {
        let e = Error::io(
            "cannot read",
            std::io::Error::from_raw_os_error(2), // ENOENT
        );
        let s = explain(&e);
        assert_eq!(s, "cannot read: file not found (was it moved or deleted?)");
        let odd = std::io::Error::from_raw_os_error(5); // EIO
        assert!(!io_words(&odd).contains("os error"), "{}", io_words(&odd));
    }
}
