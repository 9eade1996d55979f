//! Errors in the words of the person holding the file: what is wrong and
//! what to do, for every front end (CLI lines, the page's greyed files).
//! The reason comes from the library's own error (its kind, its detail), so
//! a format the library learns to read stops being reported here by itself.

use crate::error::Error;
use std::io::ErrorKind;

/// What went wrong and what to do, in plain words. The technical reason of
/// a damaged file follows in brackets, for whoever looks further.
pub fn explain(e: &Error) -> String {
    explain_with(e, true)
}

/// [`explain`] without the technical reason (byte offsets, marker codes):
/// what a person at the command line sees unless they ask for `--verbose`.
pub fn brief(e: &Error) -> String {
    explain_with(e, false)
}

fn explain_with(e: &Error, detail: bool) -> String {
    let with = |plain: &str, technical: String| {
        if detail {
            format!("{plain} ({technical})")
        } else {
            plain.to_string()
        }
    };
    match e {
        Error::Empty => "this file is empty (0 bytes): copy it again from the camera or phone".into(),
        Error::Malformed { format, reason } if reason.contains("truncated") || reason.contains("end of") => with(
            "this file is damaged: it ends early; copy it again from the camera or phone",
            format!("{format}: {reason}"),
        ),
        Error::Malformed { format, reason } => with(
            &format!("this file is damaged: its {format} structure is broken; copy it again from the camera or phone"),
            reason.clone(),
        ),
        // The decoder lacks the feature: the file is fine, the edit is not possible.
        Error::Decode(reason) if reason.contains("not support") || reason.contains("unsupported") || reason.contains("cannot be decoded") => with(
            "photodeid cannot decode this kind of picture (the file is not damaged): \
             it can be cleaned, but without regions, faces or --thorough",
            reason.clone(),
        ),
        Error::Decode(reason) => with(
            "the picture in this file is damaged and cannot be read; copy it again from the camera or phone",
            reason.clone(),
        ),
        Error::AuditFailed(reason) => with(
            "the cleaned copy failed photodeid's own final check, so nothing was written \
             (please report this file's case to the photodeid developers)",
            reason.clone(),
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

/// Every " (os error N)" out of a longer message (one built from a chain
/// of causes): the number helps nobody at the desk.
pub fn without_os_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(" (os error ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " (os error ".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(')') {
            rest = &tail[digits + 1..];
        } else {
            out.push_str(" (os error ");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// What was done to a photo, in a person's terms: "1 area covered; hidden
/// data removed (EXIF, GPS)", or that nothing hidden was found (the CLI's
/// and watch's line).
pub fn done(covered: usize, removed: &crate::metadata::Inventory) -> String {
    let labels: Vec<&str> = removed.categories().iter().map(|c| c.label()).collect();
    done_words(covered, &labels)
}

/// [`done`] from the words for what was removed ("GPS location", ...; the
/// page's list, also kept for photos exported before), one sentence for
/// every front end. "nothing identifying" counts as nothing removed.
pub fn done_words<S: AsRef<str>>(covered: usize, removed: &[S]) -> String {
    let mut parts = Vec::new();
    match covered {
        0 => {}
        1 => parts.push("1 area covered".to_string()),
        n => parts.push(format!("{n} areas covered")),
    }
    let removed: Vec<&str> = removed
        .iter()
        .map(AsRef::as_ref)
        .filter(|w| *w != NOTHING_IDENTIFYING)
        .collect();
    if removed.is_empty() {
        parts.push("no hidden data found".to_string());
    } else {
        parts.push(format!("hidden data removed ({})", removed.join(", ")));
    }
    parts.join("; ")
}

/// What an export that found nothing identifying lists as removed.
pub const NOTHING_IDENTIFYING: &str = "nothing identifying";

/// The page's sentence for one exported photo: [`done_words`], then "up to
/// date" when nothing was written again, then any warnings.
pub fn exported(
    covered: usize,
    removed: &[String],
    up_to_date: bool,
    warnings: &[String],
) -> String {
    let mut parts = vec![done_words(covered, removed)];
    if up_to_date {
        parts.push("up to date: exported before in the same way, so no copy was written".into());
    }
    parts.extend(warnings.iter().cloned());
    parts.join("; ") + "."
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
        let s = brief(&Error::Decode(
            "this TIFF's pixel layout cannot be decoded for regions or collages (CIELab)".into(),
        ));
        assert!(
            s.contains("not damaged") && s.contains("cannot decode"),
            "{s}"
        );
        let s = explain(&Error::Unsupported(
            "HEIC/HEIF image; export it to JPEG first".into(),
        ));
        assert!(s.contains("cannot be used: HEIC"), "{s}");
    }

    #[test]
    fn the_brief_words_leave_out_offsets() {
        let e = Error::malformed("JPEG", "expected a marker at byte 294865, found 0x2D");
        let b = brief(&e);
        assert!(
            b.contains("structure is broken") && !b.contains("294865"),
            "{b}"
        );
        assert!(explain(&e).contains("294865"));
        let t = brief(&Error::malformed("JPEG", "truncated: scan data"));
        assert_eq!(
            t,
            "this file is damaged: it ends early; copy it again from the camera or phone"
        );
        assert_eq!(
            without_os_numbers(
                "cannot create folder /x: Not a directory (os error 20); (os error x"
            ),
            "cannot create folder /x: Not a directory; (os error x"
        );
    }

    #[test]
    fn what_was_done_in_a_persons_terms() {
        use crate::metadata::Inventory;
        assert_eq!(done(0, &Inventory::default()), "no hidden data found");
        assert!(done(1, &Inventory::default()).starts_with("1 area covered; "));
        assert!(done(2, &Inventory::default()).starts_with("2 areas covered; "));
        assert_eq!(
            done_words(1, &["GPS location", "a comment"]),
            "1 area covered; hidden data removed (GPS location, a comment)"
        );
        assert_eq!(
            done_words(0, &[NOTHING_IDENTIFYING]),
            "no hidden data found"
        );
        assert_eq!(
            exported(0, &["GPS location".into()], true, &["a warning".into()]),
            "hidden data removed (GPS location); up to date: exported before in the same way, \
             so no copy was written; a warning."
        );
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
