//! The regions manifest as the page's save file: `FOLDER/.photodeid-regions.csv`,
//! the very CSV `clean --regions` reads, loaded when the page opens and
//! written on every change.
//!
//! - Merged, never replaced: a save names the photos it changes; every other
//!   row of the file (other photos, glob rows written by hand) is kept as is.
//! - Re-read before each write, so edits made meanwhile (another server, a
//!   text editor) are merged too.
//! - Stale writes refused per photo: each photo's rows have a revision (a
//!   hash of its rows); a change sent with an older revision than the file
//!   holds is refused, and the answer carries the current rows, so the tab
//!   shows what the other tab saved instead of overwriting it.
//! - Written atomically (temp file, rename), owner-only.

use super::export::{manifest_csv, RegionJson, MAX_REGIONS};
use super::photos::Library;
use crate::commit::{self, WriteMode};
use crate::error::{Error, Result};
use crate::region::{self, Effect, Length, RegionSpec, Shape};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file's rows by their `file` column, in file order within a photo.
type Rows = BTreeMap<String, Vec<RegionSpec>>;

pub struct Store {
    path: PathBuf,
    /// Serialises read-merge-write within this server.
    lock: Mutex<()>,
}

/// One photo's regions as the page sees them: percent of the displayed photo.
#[derive(Debug, Clone, Serialize)]
pub struct Saved {
    pub rev: String,
    pub regions: Vec<PageRegion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PageRegion {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub shape: &'static str,
    pub effect: &'static str,
}

/// `POST /api/regions`: the photos a tab changed, each with the revision it
/// started from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveRequest {
    pub photos: Vec<Change>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub id: usize,
    /// The revision the tab last loaded or saved for this photo.
    pub base: String,
    pub regions: Vec<RegionJson>,
}

/// What a save did: every photo's saved regions, and the photos refused as stale.
#[derive(Debug, Serialize)]
pub struct SaveAnswer {
    pub photos: BTreeMap<usize, Saved>,
    pub conflicts: Vec<usize>,
    pub file: String,
}

impl Store {
    pub fn new(path: PathBuf) -> Store {
        Store {
            path,
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rows on disk (none when there is no file yet).
    fn load(&self) -> Result<Rows> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Rows::new()),
            Err(e) => return Err(Error::io("cannot read the regions file", e)),
        };
        let rows = region::parse_manifest(&text).map_err(|e| {
            Error::Invalid(format!(
                "the regions file {} cannot be read ({e}); nothing was saved, so it is not \
                 overwritten: correct it or move it away, then reload the page",
                self.path.display()
            ))
        })?;
        let mut out = Rows::new();
        for r in rows {
            out.entry(r.pattern).or_default().push(r.region);
        }
        Ok(out)
    }

    fn write(&self, rows: &Rows) -> Result<()> {
        if rows.is_empty() && !self.path.exists() {
            return Ok(());
        }
        let flat: Vec<(&str, &RegionSpec)> = rows
            .iter()
            .flat_map(|(f, rs)| rs.iter().map(move |r| (f.as_str(), r)))
            .collect();
        let text = manifest_csv(&flat, None)?;
        commit::write_atomic(
            &self.path,
            text.as_bytes(),
            WriteMode {
                overwrite: true,
                sync: true,
            },
        )
    }

    /// One photo's saved rows (by its `file` column) and their revision.
    pub fn rows_of(&self, rel: &str) -> Result<(Vec<RegionSpec>, String)> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let specs = self.load()?.remove(rel).unwrap_or_default();
        let rev = revision(&specs);
        Ok((specs, rev))
    }

    /// Every listed photo's saved regions.
    pub fn snapshot(&self, lib: &Library, root: &super::guard::Root) -> Result<SaveAnswer> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let rows = self.load()?;
        Ok(self.answer(&rows, lib, root, Vec::new()))
    }

    /// Applies `changes` whose base revision is current; refuses the others.
    pub fn save(
        &self,
        lib: &Library,
        root: &super::guard::Root,
        changes: &[Change],
    ) -> Result<SaveAnswer> {
        let mut checked = Vec::new();
        for c in changes {
            let photo = lib
                .get(c.id)
                .ok_or_else(|| Error::Invalid(format!("no photo with id {}", c.id)))?;
            if c.regions.len() > MAX_REGIONS {
                return Err(Error::Invalid(format!(
                    "too many regions ({}, limit {MAX_REGIONS})",
                    c.regions.len()
                )));
            }
            let specs = c
                .regions
                .iter()
                .map(RegionJson::spec)
                .collect::<Result<Vec<_>>>()?;
            checked.push((c.id, photo.rel.clone(), c.base.as_str(), specs));
        }
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows = self.load()?;
        let mut conflicts = Vec::new();
        let mut changed = false;
        for (id, rel, base, specs) in checked {
            let current = rows.get(&rel).map(Vec::as_slice).unwrap_or(&[]);
            if revision(current) != base {
                conflicts.push(id);
                continue;
            }
            if current != specs.as_slice() {
                changed = true;
                set(&mut rows, rel, specs);
            }
        }
        if changed {
            self.write(&rows)?;
        }
        Ok(self.answer(&rows, lib, root, conflicts))
    }

    /// Sets the rows of the photos an export names (what the page showed when
    /// it asked), keeping every other row.
    pub fn merge(&self, photos: &[(String, Vec<RegionSpec>)]) -> Result<()> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows = self.load()?;
        let before = rows.clone();
        for (rel, specs) in photos {
            set(&mut rows, rel.clone(), specs.clone());
        }
        if rows != before {
            self.write(&rows)?;
        }
        Ok(())
    }

    fn answer(
        &self,
        rows: &Rows,
        lib: &Library,
        root: &super::guard::Root,
        conflicts: Vec<usize>,
    ) -> SaveAnswer {
        let mut photos = BTreeMap::new();
        for p in lib.photos() {
            let specs = rows.get(&p.rel).map(Vec::as_slice).unwrap_or(&[]);
            // Only photos with rows need their size (rows in pixels become
            // percentages): the page's first screen never waits for the
            // whole folder's details.
            let (w, h) = match specs {
                [] => (0, 0),
                _ => lib
                    .info_of(p.id, root)
                    .map_or((0, 0), |i| (i.width, i.height)),
            };
            let regions = specs.iter().filter_map(|r| for_page(r, w, h)).collect();
            photos.insert(
                p.id,
                Saved {
                    rev: revision(specs),
                    regions,
                },
            );
        }
        SaveAnswer {
            photos,
            conflicts,
            file: self.path.display().to_string(),
        }
    }
}

fn set(rows: &mut Rows, rel: String, specs: Vec<RegionSpec>) {
    if specs.is_empty() {
        rows.remove(&rel);
    } else {
        rows.insert(rel, specs);
    }
}

/// A photo's revision: a hash of its rows as the manifest writes them.
pub fn revision(specs: &[RegionSpec]) -> String {
    let mut h = blake3::Hasher::new();
    for r in specs {
        h.update(format!("{r}:{}\n", effect_name(r.effect)).as_bytes());
    }
    h.finalize().to_hex()[..16].to_string()
}

fn effect_name(e: Option<Effect>) -> &'static str {
    match e {
        None => "",
        Some(Effect::Fill) => "fill",
        Some(Effect::Pixelate) => "pixelate",
        Some(Effect::Blur) => "blur",
    }
}

/// A row in percent of the displayed photo; pixel rows need its size
/// (`None` when it is unknown: such rows stay in the file, untouched).
fn for_page(r: &RegionSpec, w: u32, h: u32) -> Option<PageRegion> {
    let pct = |l: Length, full: u32| match l {
        Length::Percent(p) => Some(p),
        Length::Px(_) if full == 0 => None,
        Length::Px(p) => Some((p as f64 / full as f64 * 100.0).min(100.0)),
    };
    Some(PageRegion {
        x: pct(r.x, w)?,
        y: pct(r.y, h)?,
        w: pct(r.w, w)?,
        h: pct(r.h, h)?,
        shape: match r.shape {
            Shape::Rect => "rect",
            Shape::Ellipse => "ellipse",
        },
        effect: match effect_name(r.effect) {
            "" => "fill",
            e => e,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> RegionSpec {
        s.parse().unwrap()
    }

    #[test]
    fn merge_keeps_other_rows_and_hand_written_globs() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(".photodeid-regions.csv");
        std::fs::write(
            &path,
            "file,x,y,w,h,shape,effect\na.jpg,1%,1%,5%,5%,rect,fill\n**/*.png,0,0,10,10,,\n",
        )
        .unwrap();
        let store = Store::new(path.clone());
        store
            .merge(&[("b.jpg".into(), vec![spec("10%,10%,20%,20%:blur")])])
            .unwrap();
        let rows = store.load().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows["a.jpg"], vec![spec("1%,1%,5%,5%:fill")]);
        assert_eq!(rows["**/*.png"], vec![spec("0,0,10,10")]);
        assert_eq!(rows["b.jpg"], vec![spec("10%,10%,20%,20%:blur")]);
        // Emptying a photo removes its rows only.
        store.merge(&[("a.jpg".into(), Vec::new())]).unwrap();
        let rows = store.load().unwrap();
        assert_eq!(rows.keys().collect::<Vec<_>>(), ["**/*.png", "b.jpg"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_broken_file_is_never_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(".photodeid-regions.csv");
        std::fs::write(&path, "file,x,y,w,h\na.jpg,1%,oops,5%,5%\n").unwrap();
        let store = Store::new(path.clone());
        let e = store.merge(&[("b.jpg".into(), vec![spec("1,1,2,2")])]);
        assert!(e.unwrap_err().to_string().contains("not overwritten"));
        assert!(std::fs::read_to_string(&path).unwrap().contains("oops"));
    }

    #[test]
    fn revisions_follow_the_rows() {
        let a = [spec("1%,1%,5%,5%:fill")];
        assert_eq!(revision(&a), revision(&a.clone()));
        assert_ne!(revision(&a), revision(&[]));
        assert_ne!(revision(&a), revision(&[spec("1%,1%,5%,5%:blur")]));
    }

    #[test]
    fn pixel_rows_are_shown_in_percent() {
        let r = for_page(&spec("ellipse:100,50,200,100:pixelate"), 1000, 500).unwrap();
        assert_eq!((r.x, r.y, r.w, r.h), (10.0, 10.0, 20.0, 20.0));
        assert_eq!((r.shape, r.effect), ("ellipse", "pixelate"));
        assert!(for_page(&spec("1,1,2,2"), 0, 0).is_none());
    }
}
