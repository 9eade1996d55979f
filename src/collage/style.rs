//! A practice profile (`--style FILE`, TOML): the size, layout, colours,
//! footer and logo a practice uses on every collage, chosen once. Flags
//! given on the command line win over the file.
//!
//! ```toml
//! size = "portrait"          # square | portrait | story | landscape | WxH
//! layout = "auto"            # auto | row | column | grid | feature
//! background = "#ffffff"
//! label_color = "#141414"
//! footer = "Individual results vary"
//!
//! [logo]
//! file = "logo.png"          # relative to this file
//! corner = "bottom-right"    # top-left | top-right | bottom-left | bottom-right
//! size = 0.18                # fraction of the collage width
//! opacity = 0.9
//! ```

use super::draw::{parse_color, Corner};
use super::layout::{parse_size, Layout};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleFile {
    size: Option<String>,
    layout: Option<String>,
    background: Option<String>,
    label_color: Option<String>,
    footer: Option<String>,
    title: Option<String>,
    logo: Option<LogoFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoFile {
    file: PathBuf,
    corner: Option<String>,
    size: Option<f32>,
    opacity: Option<f32>,
}

/// A checked practice profile; every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Style {
    pub size: Option<(u32, u32)>,
    pub layout: Option<Layout>,
    pub background: Option<[u8; 3]>,
    pub label_color: Option<[u8; 3]>,
    pub footer: Option<String>,
    pub title: Option<String>,
    pub logo: Option<LogoStyle>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogoStyle {
    /// Resolved against the style file's folder.
    pub file: PathBuf,
    pub corner: Option<Corner>,
    pub size: Option<f32>,
    pub opacity: Option<f32>,
}

impl Style {
    /// Reads and checks a style file; its path is in any error.
    pub fn read(path: &Path) -> Result<Style> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("style file {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Style::parse(&text, base)
            .map_err(|e| Error::Invalid(format!("style file {}: {e}", path.display())))
    }

    pub fn parse(text: &str, base: &Path) -> std::result::Result<Style, String> {
        let f: StyleFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let color = |v: &Option<String>, what: &str| {
            v.as_deref()
                .map(|s| parse_color(s).map_err(|e| format!("{what}: {e}")))
                .transpose()
        };
        let logo = match f.logo {
            None => None,
            Some(l) => Some(LogoStyle {
                file: base.join(&l.file),
                corner: l.corner.as_deref().map(str::parse).transpose()?,
                size: l.size,
                opacity: l.opacity,
            }),
        };
        Ok(Style {
            size: f.size.as_deref().map(parse_size).transpose()?,
            layout: f.layout.as_deref().map(str::parse).transpose()?,
            background: color(&f.background, "background")?,
            label_color: color(&f.label_color, "label_color")?,
            footer: f.footer.filter(|s| !s.trim().is_empty()),
            title: f.title.filter(|s| !s.trim().is_empty()),
            logo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_parses() {
        let s = Style::parse(
            "size = \"story\"\nlayout = \"grid\"\nbackground = \"#000000\"\n\
             label_color = \"ffffff\"\nfooter = \"Individual results vary\"\n\
             [logo]\nfile = \"logo.png\"\ncorner = \"top-left\"\nsize = 0.2\nopacity = 0.5\n",
            Path::new("/practice"),
        )
        .unwrap();
        assert_eq!(s.size, Some((1080, 1920)));
        assert_eq!(s.layout, Some(Layout::Grid));
        assert_eq!(s.background, Some([0, 0, 0]));
        assert_eq!(s.label_color, Some([255, 255, 255]));
        assert_eq!(s.footer.as_deref(), Some("Individual results vary"));
        let logo = s.logo.unwrap();
        assert_eq!(logo.file, Path::new("/practice/logo.png"));
        assert_eq!(logo.corner, Some(Corner::TopLeft));
        assert_eq!(Style::parse("", Path::new(".")).unwrap(), Style::default());
    }

    #[test]
    fn mistakes_are_named() {
        for (text, word) in [
            ("size = \"huge\"", "huge"),
            ("colour = \"red\"", "colour"),
            ("background = \"red\"", "background"),
            ("[logo]\ncorner = \"top-left\"", "file"),
            ("layout = \"spiral\"", "spiral"),
        ] {
            let e = Style::parse(text, Path::new(".")).unwrap_err();
            assert!(e.contains(word), "{text}: {e}");
        }
    }
}
