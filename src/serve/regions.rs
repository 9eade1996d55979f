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
//! - The collage editor's framing is the same file's `framing` column (the
//!   one `collage --regions` reads): one cell per photo, on its first row, or
//!   a row of its own (`file,,,,,,,zoom 1.5 50% 40%`) when it has no region.
//!   Regions and framing are saved separately, each keeping the other.

use super::export::{region_cells, RegionJson, MAX_REGIONS};
use super::photos::Library;
use crate::collage::framing::{parse_framing, parse_manifest_framing, Framing};
use crate::commit::{self, WriteMode};
use crate::error::{Error, Result};
use crate::region::{self, Effect, Length, RegionSpec, Shape};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One region row: the region, and the cells of every other column
/// (`source`, `score` that face proposals write, or any a person added),
/// kept as they were so a save never drops them.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    spec: RegionSpec,
    extra: BTreeMap<String, String>,
}

/// The file's rows by their `file` column, in file order within a photo.
type Rows = BTreeMap<String, Vec<Row>>;

/// The columns the page writes itself; every other column is carried over.
const OWN_COLUMNS: [&str; 8] = ["file", "x", "y", "w", "h", "shape", "effect", "framing"];

/// The whole file: the region rows and the framing cells, both by `file`.
#[derive(Debug, Clone, Default, PartialEq)]
struct Manifest {
    rows: Rows,
    framing: BTreeMap<String, Framing>,
    /// The other columns of a framing-only row.
    framing_extra: BTreeMap<String, BTreeMap<String, String>>,
    /// The file's other columns, in its order.
    columns: Vec<String>,
}

impl Manifest {
    fn specs(&self, rel: &str) -> Vec<RegionSpec> {
        self.rows
            .get(rel)
            .map(|r| r.iter().map(|r| r.spec.clone()).collect())
            .unwrap_or_default()
    }
}

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
    fn load(&self) -> Result<Manifest> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(e) => return Err(Error::io("cannot read the regions file", e)),
        };
        let broken = |e: String| {
            Error::Invalid(format!(
                "the regions file {} cannot be read ({e}); nothing was saved, so it is not \
                 overwritten: correct it or move it away, then reload the page",
                self.path.display()
            ))
        };
        let rows = region::parse_manifest(&text).map_err(|e| broken(e.to_string()))?;
        let (columns, cells) = other_cells(&text).map_err(broken)?;
        let mut out = Manifest {
            columns,
            ..Manifest::default()
        };
        let mut used = vec![false; cells.len()];
        for r in rows {
            // `line` is the record's index + 2, as parse_manifest counts.
            let i = r.line.saturating_sub(2);
            let extra = cells.get(i).map(|c| c.1.clone()).unwrap_or_default();
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
            out.rows.entry(r.pattern).or_default().push(Row {
                spec: r.region,
                extra,
            });
        }
        // Records that are no region row are framing-only rows.
        for (i, (file, extra)) in cells.into_iter().enumerate() {
            if !used[i] && !extra.is_empty() {
                out.framing_extra.insert(file, extra);
            }
        }
        // The last cell of a file counts, as `collage` reads it.
        for f in parse_manifest_framing(&text).map_err(broken)? {
            out.framing.insert(f.pattern, f.framing);
        }
        Ok(out)
    }

    fn write(&self, m: &Manifest) -> Result<()> {
        if m.rows.is_empty() && m.framing.is_empty() && !self.path.exists() {
            return Ok(());
        }
        commit::write_atomic(
            &self.path,
            manifest_text(m)?.as_bytes(),
            WriteMode {
                overwrite: true,
                sync: true,
            },
        )
    }

    /// Every framing cell, by `file`.
    pub fn framing(&self) -> Result<BTreeMap<String, Framing>> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.load()?.framing)
    }

    /// Sets (`Some`) or clears (`None`) these photos' framing, keeping
    /// every region and every other photo's framing.
    pub fn set_framing(&self, changes: &[(String, Option<Framing>)]) -> Result<()> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut m = self.load()?;
        let before = m.clone();
        for (rel, f) in changes {
            match f {
                Some(f) => m.framing.insert(rel.clone(), *f),
                None => m.framing.remove(rel),
            };
        }
        if m != before {
            self.write(&m)?;
        }
        Ok(())
    }

    /// Moves the rows of the page's older framing file (`old`) into the
    /// manifest, once: a photo the manifest already frames keeps its cell;
    /// the old file is then renamed `*.migrated`, so it is not read again.
    /// Returns how many rows were moved.
    pub fn migrate_framing(&self, old: &Path) -> Result<usize> {
        let text = match std::fs::read_to_string(old) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io("cannot read the old framing file", e)),
        };
        let rows = parse_framing(&text)
            .map_err(|e| Error::Invalid(format!("the framing file {}: {e}", old.display())))?;
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut m = self.load()?;
        let mut moved = 0;
        for r in rows {
            if let std::collections::btree_map::Entry::Vacant(v) = m.framing.entry(r.pattern) {
                v.insert(r.framing);
                moved += 1;
            }
        }
        self.write(&m)?;
        let mut done = old.as_os_str().to_owned();
        done.push(".migrated");
        std::fs::rename(old, &done)
            .map_err(|e| Error::io("cannot rename the old framing file", e))?;
        Ok(moved)
    }

    /// One photo's saved rows (by its `file` column) and their revision.
    pub fn rows_of(&self, rel: &str) -> Result<(Vec<RegionSpec>, String)> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let specs = self.load()?.specs(rel);
        let rev = revision(&specs);
        Ok((specs, rev))
    }

    /// Every listed photo's saved regions.
    pub fn snapshot(&self, lib: &Library, root: &super::guard::Root) -> Result<SaveAnswer> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let m = self.load()?;
        Ok(self.answer(&m.rows, lib, root, Vec::new()))
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
        let mut m = self.load()?;
        let mut conflicts = Vec::new();
        let mut changed = false;
        for (id, rel, base, specs) in checked {
            let current = m.specs(&rel);
            if revision(&current) != base {
                conflicts.push(id);
                continue;
            }
            if current != specs {
                changed = true;
                set(&mut m.rows, rel, specs);
            }
        }
        if changed {
            self.write(&m)?;
        }
        Ok(self.answer(&m.rows, lib, root, conflicts))
    }

    /// Sets the rows of the photos an export names (what the page showed when
    /// it asked), keeping every other row.
    pub fn merge(&self, photos: &[(String, Vec<RegionSpec>)]) -> Result<()> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut m = self.load()?;
        let before = m.clone();
        for (rel, specs) in photos {
            set(&mut m.rows, rel.clone(), specs.clone());
        }
        if m != before {
            self.write(&m)?;
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
            let specs: Vec<RegionSpec> = rows
                .get(&p.rel)
                .map(|r| r.iter().map(|r| r.spec.clone()).collect())
                .unwrap_or_default();
            let specs = specs.as_slice();
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

/// Sets a photo's regions; a region that was already there keeps its
/// row's other cells (the same row, else the same place and shape: a
/// changed effect does not make a proposal someone else's).
fn set(rows: &mut Rows, rel: String, specs: Vec<RegionSpec>) {
    let mut old = rows.remove(&rel).unwrap_or_default();
    if specs.is_empty() {
        return;
    }
    let place = |r: &RegionSpec| (r.x, r.y, r.w, r.h, r.shape);
    let new = specs
        .into_iter()
        .map(|spec| {
            let i = old
                .iter()
                .position(|r| r.spec == spec)
                .or_else(|| old.iter().position(|r| place(&r.spec) == place(&spec)));
            let extra = match i {
                Some(i) => old.remove(i).extra,
                None => BTreeMap::new(),
            };
            Row { spec, extra }
        })
        .collect();
    rows.insert(rel, new);
}

/// The header's other columns (lowercase, in file order), and each
/// record's `file` with its non-empty cells in them.
#[allow(clippy::type_complexity)]
fn other_cells(
    text: &str,
) -> std::result::Result<(Vec<String>, Vec<(String, BTreeMap<String, String>)>), String> {
    let (mut rdr, headers) = crate::region::manifest_csv(text)?;
    let file = headers.iter().position(|h| h == "file");
    let mut columns = Vec::new();
    for h in &headers {
        if !h.is_empty() && !OWN_COLUMNS.contains(&h.as_str()) && !columns.contains(h) {
            columns.push(h.clone());
        }
    }
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("line {}: {e}", i + 2))?;
        let mut extra = BTreeMap::new();
        for (c, h) in headers.iter().enumerate() {
            let v = rec.get(c).unwrap_or("");
            if columns.contains(h) && !v.is_empty() {
                extra.entry(h.clone()).or_insert_with(|| v.to_string());
            }
        }
        let f = file.and_then(|c| rec.get(c)).unwrap_or("").to_string();
        out.push((f, extra));
    }
    Ok((columns, out))
}

/// The file's text: each `file`'s region rows, its framing in the first
/// one's `framing` cell (or a row of its own); the column only when some
/// photo is framed, so a file without framing reads as it always did.
fn manifest_text(m: &Manifest) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Invalid(format!("manifest: {e}"));
    let framed = !m.framing.is_empty();
    let mut header = vec!["file", "x", "y", "w", "h", "shape", "effect"];
    header.extend(m.columns.iter().map(String::as_str));
    if framed {
        header.push("framing");
    }
    w.write_record(&header).map_err(err)?;
    let others = |extra: Option<&BTreeMap<String, String>>| -> Vec<String> {
        m.columns
            .iter()
            .map(|c| extra.and_then(|e| e.get(c)).cloned().unwrap_or_default())
            .collect()
    };
    let files: std::collections::BTreeSet<&String> =
        m.rows.keys().chain(m.framing.keys()).collect();
    for file in files {
        let framing = m.framing.get(file).map(Framing::to_string);
        let rows = m.rows.get(file).map(Vec::as_slice).unwrap_or(&[]);
        if rows.is_empty() {
            let mut rec: Vec<String> = vec![file.clone()];
            rec.extend(std::iter::repeat_n(String::new(), 6));
            rec.extend(others(m.framing_extra.get(file)));
            rec.push(framing.unwrap_or_default());
            w.write_record(&rec).map_err(err)?;
            continue;
        }
        for (i, r) in rows.iter().enumerate() {
            let mut rec: Vec<String> = vec![file.clone()];
            rec.extend(region_cells(&r.spec, None));
            rec.extend(others(Some(&r.extra)));
            if framed {
                rec.push(if i == 0 {
                    framing.clone().unwrap_or_default()
                } else {
                    String::new()
                });
            }
            w.write_record(&rec).map_err(err)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Invalid(format!("manifest: {e}")))
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
        let m = store.load().unwrap();
        assert_eq!(m.rows.len(), 3);
        assert_eq!(m.specs("a.jpg"), vec![spec("1%,1%,5%,5%:fill")]);
        assert_eq!(m.specs("**/*.png"), vec![spec("0,0,10,10")]);
        assert_eq!(m.specs("b.jpg"), vec![spec("10%,10%,20%,20%:blur")]);
        // Emptying a photo removes its rows only.
        store.merge(&[("a.jpg".into(), Vec::new())]).unwrap();
        let rows = store.load().unwrap().rows;
        assert_eq!(rows.keys().collect::<Vec<_>>(), ["**/*.png", "b.jpg"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    /// Framing and regions share the file: saving one keeps the other, rows
    /// of photos not touched stay, and `collage` reads the framing back.
    #[test]
    fn framing_and_regions_are_merged_in_one_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(".photodeid-regions.csv");
        std::fs::write(
            &path,
            "file,x,y,w,h,shape,effect\nc.jpg,1%,1%,5%,5%,rect,fill\n",
        )
        .unwrap();
        let store = Store::new(path.clone());
        store
            .merge(&[("a.jpg".into(), vec![spec("10%,10%,20%,20%:blur")])])
            .unwrap();
        let zoom: Framing = "zoom 1.5 50% 40%".parse().unwrap();
        let crop: Framing = "crop 10% 5% 60% 80%".parse().unwrap();
        store
            .set_framing(&[("a.jpg".into(), Some(zoom)), ("b.jpg".into(), Some(crop))])
            .unwrap();
        // A regions save afterwards keeps the framing.
        store
            .merge(&[("a.jpg".into(), vec![spec("11%,10%,20%,20%:blur")])])
            .unwrap();
        let m = store.load().unwrap();
        assert_eq!(m.specs("a.jpg"), vec![spec("11%,10%,20%,20%:blur")]);
        assert_eq!(m.specs("c.jpg"), vec![spec("1%,1%,5%,5%:fill")]);
        assert!(
            !m.rows.contains_key("b.jpg"),
            "a framing-only row is no region"
        );
        assert_eq!(m.framing["a.jpg"], zoom);
        assert_eq!(m.framing["b.jpg"], crop);
        let rows = crate::collage::framing::manifest_framing(&path).unwrap();
        assert_eq!(crate::collage::framing::framing_for(&rows, "b.jpg"), crop);
        // The old framing file moves in once; the manifest's cells win.
        let old = d.path().join(".photodeid-framing.csv");
        std::fs::write(
            &old,
            "file,zoom,center_x,center_y,x,y,w,h\na.jpg,3,50%,50%,,,,\nc.jpg,2,50%,50%,,,,\n",
        )
        .unwrap();
        assert_eq!(store.migrate_framing(&old).unwrap(), 1);
        assert!(!old.exists());
        let m = store.load().unwrap();
        assert_eq!(m.framing["a.jpg"], zoom);
        assert_eq!(m.framing["c.jpg"], "zoom 2".parse().unwrap());
        assert_eq!(store.migrate_framing(&old).unwrap(), 0);
    }

    /// Face proposals write `source` and `score`; a person may add a column
    /// of their own. A save keeps every cell of each row it did not change,
    /// and of the photos it did not touch; `clean` still reads the file.
    #[test]
    fn other_columns_survive_every_save() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join(".photodeid-regions.csv");
        std::fs::write(
            &path,
            "file,x,y,w,h,shape,effect,source,score,note\n\
             a.jpg,10%,10%,20%,20%,ellipse,blur,detector:face,0.973,\n\
             a.jpg,50%,50%,5%,5%,rect,fill,detector:eyes,0.8,checked\n\
             b.jpg,1%,1%,5%,5%,rect,fill,JD,,by hand\n",
        )
        .unwrap();
        let store = Store::new(path.clone());
        // a.jpg: the first region kept, the second removed, one added.
        store
            .merge(&[(
                "a.jpg".into(),
                vec![
                    spec("ellipse:10%,10%,20%,20%:blur"),
                    spec("70%,70%,5%,5%:pixelate"),
                ],
            )])
            .unwrap();
        // Framing saved afterwards adds its column; nothing else moves.
        store
            .set_framing(&[("c.jpg".into(), Some("zoom 2".parse().unwrap()))])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let rows = region::parse_manifest(&text).unwrap();
        let find = |file: &str, x: &str| {
            rows.iter()
                .find(|r| r.pattern == file && r.region.x.to_string() == x)
                .unwrap_or_else(|| panic!("{file} {x}: {text}"))
        };
        let kept = find("a.jpg", "10%");
        assert_eq!(kept.source.as_deref(), Some("detector:face"), "{text}");
        assert_eq!(kept.score, Some(0.973), "{text}");
        let added = find("a.jpg", "70%");
        assert_eq!((added.source.as_deref(), added.score), (None, None));
        assert!(
            !text.contains("detector:eyes"),
            "removed with its region: {text}"
        );
        let other = find("b.jpg", "1%");
        assert_eq!(other.source.as_deref(), Some("JD"));
        assert!(text.contains("by hand"), "{text}");
        assert!(
            text.starts_with("file,x,y,w,h,shape,effect,source,score,note,framing\n"),
            "{text}"
        );
        // A framing-only row keeps its cells too, through a regions save.
        std::fs::write(&path, format!("{}d.jpg,,,,,,,own,,,zoom 3\n", text)).unwrap();
        store
            .merge(&[(
                "b.jpg".into(),
                vec![spec("1%,1%,5%,5%:fill"), spec("2%,2%,1%,1%")],
            )])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("b.jpg,2%,2%,1%,1%,rect,,,,,"), "{text}");
        assert!(text.contains("d.jpg,,,,,,,own,,,zoom 3"), "{text}");
        assert!(
            text.contains("b.jpg,1%,1%,5%,5%,rect,fill,JD,,by hand,"),
            "{text}"
        );
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
