//! Practice profiles on the page: the same TOML `collage --style` reads
//! ([`crate::collage::style`]), so staff pick the practice's look once and
//! the page's collages match the ones a script makes.
//!
//! Where the page finds them:
//! - `serve --style FILE` (repeatable): what the IT person sets up once in
//!   the launcher or the service, the very file the scheduled `collage`
//!   run uses. Its logo is wherever that file names it (as for `collage`):
//!   the person who started the server named it.
//! - `FOLDER/.photodeid-style.toml`: a profile that travels with the photo
//!   folder (a practice's shared folder). Anyone who can write into the
//!   folder can write it, so its logo must lie inside the folder (canonical
//!   path, symbolic links out refused), never elsewhere on the machine.
//!
//! The first profile is the default for a case with no saved choice. The
//! page addresses a profile by its id only, never by a path, and the logo
//! file itself is never served: it only reaches the page drawn into the
//! preview, as pixels (no chunk of the PNG survives).

use super::guard::Root;
use crate::collage::style::Style;
use crate::collage::Logo;
use crate::error::{Error, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The profile a photo folder may carry.
pub const FOLDER_STYLE: &str = ".photodeid-style.toml";

/// Logo size and opacity when the profile gives none (as `collage`).
pub const LOGO_SIZE: f32 = 0.18;
pub const LOGO_OPACITY: f32 = 1.0;

/// One practice profile, read and checked when the server starts.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Unique, from the file name (`practice` for `practice.toml`).
    pub id: String,
    /// The TOML file (absolute), for the recommended command.
    pub path: PathBuf,
    /// `--style` or `folder`.
    pub origin: &'static str,
    pub style: Style,
    /// The logo, decoded (its corner, size and opacity from the profile).
    pub logo: Option<Logo>,
}

/// Every profile the page offers.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    pub list: Vec<Profile>,
    /// Profiles not offered, and why (shown on the page, printed at start).
    pub problems: Vec<String>,
}

fn read_profile(path: &Path, origin: &'static str, inside: Option<&Root>) -> Result<Profile> {
    let style = Style::read(path)?;
    let logo = match &style.logo {
        None => None,
        Some(l) => {
            if let Some(root) = inside {
                if root.contains(&l.file).is_none() {
                    return Err(Error::Invalid(format!(
                        "style file {}: the logo {} is not inside the photo folder {} \
                         (a profile in the folder may only use a logo in it)",
                        path.display(),
                        l.file.display(),
                        root.path().display()
                    )));
                }
            }
            Some(Logo::read(
                &l.file,
                l.corner.unwrap_or_default(),
                l.size.unwrap_or(LOGO_SIZE),
                l.opacity.unwrap_or(LOGO_OPACITY),
            )?)
        }
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().trim_start_matches('.').to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "style".into());
    Ok(Profile {
        id: stem,
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        origin,
        style,
        logo,
    })
}

impl Profiles {
    /// The `--style` files (an unreadable one is an error: the server does
    /// not start), then the folder's own profile (an unusable one is left
    /// out, with the reason in `problems`).
    pub fn load(named: &[PathBuf], folder: &Root) -> Result<Profiles> {
        let mut out = Profiles::default();
        for path in named {
            let p = read_profile(path, "--style", None)?;
            out.push(p);
        }
        let own = folder.path().join(FOLDER_STYLE);
        if std::fs::symlink_metadata(&own).is_ok() {
            let checked = folder.child(FOLDER_STYLE).and_then(|own| {
                folder
                    .contains(&own)
                    .ok_or_else(|| Error::Invalid(format!("{} cannot be read", own.display())))
            });
            match checked.and_then(|own| read_profile(&own, "folder", Some(folder))) {
                Ok(p) => out.push(p),
                Err(e) => {
                    out.problems
                        .push(format!("{}: {}", own.display(), crate::plain::explain(&e)))
                }
            }
        }
        Ok(out)
    }

    fn push(&mut self, mut p: Profile) {
        // Two `practice.toml` in different folders: `practice-2`.
        let base = p.id.clone();
        let mut n = 1;
        while self.list.iter().any(|q| q.id == p.id) {
            n += 1;
            p.id = format!("{base}-{n}");
        }
        self.list.push(p);
    }

    /// The profile a case's settings choose: `None` the default (the
    /// first), `""` none.
    pub fn chosen(&self, id: Option<&str>) -> Result<Option<&Profile>> {
        match id {
            None => Ok(self.list.first()),
            Some("") => Ok(None),
            Some(id) => self
                .list
                .iter()
                .find(|p| p.id == id)
                .map(Some)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "no practice style {id:?} (the page was started without it)"
                    ))
                }),
        }
    }

    /// `GET /api/collage/styles`: what each profile sets, for the form.
    pub fn json(&self) -> serde_json::Value {
        let hex = |c: Option<[u8; 3]>| c.map(|c| crate::pseudonym::hex(&c));
        let corner = super::collage::corner_name;
        let styles: Vec<_> = self
            .list
            .iter()
            .map(|p| {
                let s = &p.style;
                json!({
                    "id": p.id,
                    "file": p.path.display().to_string(),
                    "origin": p.origin,
                    "size": s.size.map(|(w, h)| format!("{w}x{h}")),
                    "layout": s.layout.map(|l| l.name()),
                    "background": hex(s.background),
                    "label_color": hex(s.label_color),
                    "footer": s.footer,
                    "title": s.title,
                    "logo": p.logo.as_ref().map(|l| json!({
                        "corner": corner(l.corner),
                        "size": l.size,
                        "opacity": l.opacity,
                        "width": l.dimensions().0,
                        "height": l.dimensions().1,
                    })),
                })
            })
            .collect();
        json!({
            "styles": styles,
            "default": self.list.first().map(|p| p.id.clone()),
            "problems": self.problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logo(path: &Path) {
        image::RgbaImage::from_pixel(4, 2, image::Rgba([255, 0, 0, 255]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn named_and_folder_profiles_and_the_folder_logo_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, photos) = (d.path().join("a"), d.path().join("b"), d.path().join("p"));
        for dir in [&a, &b, &photos] {
            std::fs::create_dir(dir).unwrap();
        }
        logo(&d.path().join("outside.png"));
        std::fs::write(a.join("practice.toml"), "footer = \"A\"\n").unwrap();
        std::fs::write(b.join("practice.toml"), "footer = \"B\"\n").unwrap();
        let root = Root::new(&photos).unwrap();
        // A symbolic link inside the folder that leads out is refused too.
        std::os::unix::fs::symlink(d.path().join("outside.png"), photos.join(".logo.png")).unwrap();
        std::fs::write(photos.join(FOLDER_STYLE), "[logo]\nfile = \".logo.png\"\n").unwrap();
        let named = [a.join("practice.toml"), b.join("practice.toml")];
        let p = Profiles::load(&named, &root).unwrap();
        let ids: Vec<&str> = p.list.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["practice", "practice-2"]);
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert!(p.problems[0].contains("not inside"), "{:?}", p.problems);
        assert_eq!(p.chosen(None).unwrap().unwrap().id, "practice");
        assert!(p.chosen(Some("")).unwrap().is_none());
        assert_eq!(
            p.chosen(Some("practice-2"))
                .unwrap()
                .unwrap()
                .style
                .footer
                .as_deref(),
            Some("B")
        );
        assert!(p.chosen(Some("../a/practice")).is_err());
        // A logo really inside the folder is fine.
        std::fs::remove_file(photos.join(".logo.png")).unwrap();
        logo(&photos.join(".logo.png"));
        let p = Profiles::load(&[], &root).unwrap();
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.list[0].origin, "folder");
        assert!(p.list[0].logo.is_some());
        // A named profile that cannot be read stops the server, naming it.
        let e = Profiles::load(&[d.path().join("missing.toml")], &root).unwrap_err();
        assert!(e.to_string().contains("missing.toml"), "{e}");
    }
}
