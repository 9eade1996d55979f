//! What a file carries besides its pixels, as found by the container parsers.
//! The same inventory drives `check` (report it), `clean --dry-run` (say what
//! would go) and the self-audit of every output (refuse anything identifying).

use serde::Serialize;
use std::fmt;

/// The categories the audit reports, in the order they are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Exif,
    Gps,
    MakerNotes,
    Thumbnail,
    Xmp,
    IptcPhotoshop,
    Comment,
    TextChunk,
    TrailingData,
    /// C2PA / JUMBF manifests (they can embed ingredient thumbnails).
    Provenance,
    /// An ICC profile's date, free text, device fields, non-colour tags or
    /// unaccounted bytes (the colour itself is kept).
    ColourProfileText,
    /// Anything else that is not needed to display the picture.
    Other,
    /// ICC colour profile: kept by default, reported for information.
    ColourProfile,
    /// The orientation tag: kept on purpose so the photo displays upright.
    Orientation,
    /// Allow-listed technical EXIF tags (exposure, lens...; `--keep`): identify nobody.
    Technical,
    /// Capture dates moved by a keyed per-case offset (`--shift-dates`, marked as such).
    ShiftedDate,
}

impl Category {
    pub fn label(self) -> &'static str {
        match self {
            Category::Exif => "EXIF",
            Category::Gps => "GPS",
            Category::MakerNotes => "maker notes",
            Category::Thumbnail => "thumbnails/previews",
            Category::Xmp => "XMP",
            Category::IptcPhotoshop => "IPTC/Photoshop",
            Category::Comment => "comments",
            Category::TextChunk => "text chunks",
            Category::TrailingData => "trailing data",
            Category::Provenance => "C2PA/JUMBF",
            Category::ColourProfileText => "colour profile text/date",
            Category::Other => "other metadata",
            Category::ColourProfile => "colour profile",
            Category::Orientation => "orientation",
            Category::Technical => "technical EXIF",
            Category::ShiftedDate => "shifted dates",
        }
    }

    /// Whether content of this category can identify a patient. The colour
    /// profile and a lone orientation tag describe how to display the pixels.
    pub fn is_identifying(self) -> bool {
        !matches!(
            self,
            Category::ColourProfile
                | Category::Orientation
                | Category::Technical
                | Category::ShiftedDate
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One thing found in a file, with a short human value (`Artist "..."`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub category: Category,
    pub detail: String,
}

impl Finding {
    pub fn new(category: Category, detail: impl Into<String>) -> Self {
        Finding {
            category,
            detail: detail.into(),
        }
    }
}

/// All findings of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Inventory(pub Vec<Finding>);

impl Inventory {
    pub fn push(&mut self, category: Category, detail: impl Into<String>) {
        self.0.push(Finding::new(category, detail));
    }

    pub fn extend(&mut self, other: Inventory) {
        self.0.extend(other.0);
    }

    pub fn identifying(&self) -> impl Iterator<Item = &Finding> {
        self.0.iter().filter(|f| f.category.is_identifying())
    }

    pub fn is_clean(&self) -> bool {
        self.identifying().next().is_none()
    }

    /// The identifying categories present, sorted and deduplicated.
    pub fn categories(&self) -> Vec<Category> {
        let mut cats: Vec<Category> = self.identifying().map(|f| f.category).collect();
        cats.sort();
        cats.dedup();
        cats
    }

    /// A one-line list of identifying categories, e.g. `EXIF, GPS, XMP`.
    pub fn summary(&self) -> String {
        let cats = self.categories();
        if cats.is_empty() {
            return "nothing identifying".to_string();
        }
        cats.iter()
            .map(|c| c.label())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Shortens a value for display: control characters escaped, at most `max` chars.
pub fn short_value(raw: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, ch) in raw.trim_matches(char::from(0)).trim().chars().enumerate() {
        if i >= max {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// A byte count for humans: `812 B`, `12.3 KB`, `4.1 MB`.
pub fn human_bytes(n: u64) -> String {
    match n {
        0..=999 => format!("{n} B"),
        1_000..=999_999 => format!("{:.1} KB", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}
