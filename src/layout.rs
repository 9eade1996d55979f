//! Where outputs go, for every front end: the input's folder structure kept
//! under pseudonyms (`Doe_Jane/` becomes `case-7f08a1/`, never the name),
//! photos named so they sort in capture order without carrying a date
//! (`003-9c1e52d0.jpg`), a case's collage beside its photos.
//!
//! Names come from a [`Naming`]: keyed (the default key lives in the user's
//! data folder, see [`default_key_path`]) so that re-running, or exporting the
//! same photo again, finds the same name and says "up to date"; or random
//! for one-off names that link to nothing.

use crate::collage::{chronological_order, DateTime, SortKey};
use crate::error::{Error, Result};
use crate::pseudonym::{self, Naming};
use crate::scan::Job;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where one photo goes below the output folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// Pseudonymous sub-folders (empty: the top of the output).
    pub folder: PathBuf,
    /// 1-based position in its case's capture order (`None`: no prefix).
    pub rank: Option<usize>,
}

/// The default name key: `$XDG_DATA_HOME/photodeid/name.key`, else
/// `~/.local/share/photodeid/name.key` (`%APPDATA%` on Windows).
pub fn default_key_path() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = env("XDG_DATA_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".local/share")))
        .or_else(|| env("APPDATA"))?;
    Some(base.join("photodeid").join("name.key"))
}

/// Loads the key at `path`, creating it (owner-only, folder too) the first
/// time. Returns the key and whether it was created.
pub fn load_or_create_key(path: &Path) -> Result<([u8; 32], bool)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir)
                .map_err(|e| Error::io("cannot create the name key's folder", e))?;
        }
    }
    match pseudonym::load_or_create_key(path) {
        // Another process created it at the same moment: take that one.
        Err(_) if path.is_file() => pseudonym::load_or_create_key(path),
        r => r,
    }
}

/// Pseudonymous folder names for one run: the same input folder always gets
/// the same name within a run (also with random naming), and two folders
/// never share one.
pub struct Folders {
    naming: Naming,
    names: Mutex<HashMap<String, String>>,
}

impl Folders {
    pub fn new(naming: Naming) -> Folders {
        Folders {
            naming,
            names: Mutex::new(HashMap::new()),
        }
    }

    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// `a/b` (relative, `/`-separated) → `case-xxxxxx/case-yyyyyy`; `""` → `""`.
    pub fn folder(&self, rel_dir: &str) -> Result<PathBuf> {
        let mut out = PathBuf::new();
        let mut prefix = String::new();
        for part in rel_dir.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            out.push(self.one(&prefix)?);
        }
        Ok(out)
    }

    fn one(&self, path: &str) -> Result<String> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = names.get(path) {
            return Ok(n.clone());
        }
        let full = self.naming.pseudonym_for_label(path)?;
        // Six hex digits read well; longer only if two folders would meet.
        let mut len = 6;
        let name = loop {
            let n = format!("case-{}", &full[..len]);
            if !names.values().any(|v| *v == n) || len == full.len() {
                break n;
            }
            len = (len * 2).min(full.len());
        };
        names.insert(path.to_string(), name.clone());
        Ok(name)
    }
}

/// A photo's file name: `RRR-HHHHHHHH.ext` with its capture rank, or the
/// 32-digit pseudonym without one (`--flat`).
pub fn file_name(rank: Option<usize>, pseudonym: Option<String>, ext: &str) -> Result<String> {
    let hash = pseudonym.ok_or_else(|| Error::Invalid("names are kept; no layout".into()))?;
    Ok(match rank {
        Some(r) => format!("{r:03}-{}.{ext}", &hash[..8]),
        None => format!("{hash}.{ext}"),
    })
}

/// A collage's name: stable for the same picture, so a re-export is
/// "up to date" and a changed collage never replaces the earlier one.
pub fn collage_name(naming: &Naming, content: &[u8], ext: &str) -> Result<String> {
    let hash = naming.pseudonym(content)?.unwrap_or_default();
    Ok(format!("collage-{}.{ext}", &hash[..8.min(hash.len())]))
}

/// Each key's 1-based rank in capture order (capture time, file time, name).
pub fn ranks(keys: &[SortKey]) -> Vec<usize> {
    let mut out = vec![0; keys.len()];
    for (rank, i) in chronological_order(keys).into_iter().enumerate() {
        out[i] = rank + 1;
    }
    out
}

/// A job's folder relative to its input (`/`-separated, `""` at the top):
/// the case it belongs to.
pub fn case_of(job: &Job) -> String {
    job.relative
        .parent()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default()
}

/// Every job's place for a batch (`clean`): its folder kept under
/// pseudonyms, its rank in its folder's capture order. Only the EXIF block
/// is read for the order (a JPEG's first segments, not its picture), so the
/// look costs little beside the clean. Every file of the folder takes a
/// rank, a damaged one too: when it is copied again, the names of the
/// others stay as they were. The look runs on `threads` threads, as the
/// clean does: rayon's global pool would start one thread per core before
/// the first file, whatever `-j` says.
pub fn places(jobs: &[Job], folders: &Folders, threads: usize) -> Result<Vec<Place>> {
    let mut cases: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, job) in jobs.iter().enumerate() {
        cases.entry(case_of(job)).or_default().push(i);
    }
    // A photo alone in its case is first whatever its date: not looked at.
    let ranked: Vec<usize> = cases
        .values()
        .filter(|ids| ids.len() > 1)
        .flatten()
        .copied()
        .collect();
    let looked = sort_keys(&ranked, jobs, threads);
    let mut keys: Vec<Option<SortKey>> = vec![None; jobs.len()];
    for (i, key) in ranked.into_iter().zip(looked) {
        keys[i] = Some(key);
    }
    let mut out = vec![Place::default(); jobs.len()];
    for (case, ids) in cases {
        let folder = folders.folder(&case)?;
        let order = if ids.len() == 1 {
            vec![1]
        } else {
            let sort: Vec<SortKey> = ids.iter().filter_map(|&i| keys[i].clone()).collect();
            ranks(&sort)
        };
        for (&i, rank) in ids.iter().zip(order) {
            out[i] = Place {
                folder: folder.clone(),
                rank: Some(rank),
            };
        }
    }
    Ok(out)
}

/// The sort keys of `jobs[i]` for each `i` of `which`, on the calling
/// thread for one thread or one file, else on the batch's pool of `threads`
/// (see [`crate::batch::pool`]: the clean reuses its threads; on this
/// thread when it cannot be built: the batch reports that).
fn sort_keys(which: &[usize], jobs: &[Job], threads: usize) -> Vec<SortKey> {
    let key = |&i: &usize| sort_key(&jobs[i]);
    if threads == 1 || which.len() <= 1 {
        return which.iter().map(key).collect();
    }
    match crate::batch::pool(threads) {
        Ok(pool) => pool.install(|| which.par_iter().map(key).collect()),
        Err(_) => which.iter().map(key).collect(),
    }
}

/// What a photo sorts by: its EXIF capture time, its file time, its name.
fn sort_key(job: &Job) -> SortKey {
    SortKey {
        capture: exif_capture(&job.path),
        file_time: crate::collage::case::file_time(&job.path),
        name: job
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// DateTimeOriginal, else DateTimeDigitized, read from the file's EXIF
/// block alone (`None` when it has none or cannot be read: the file time
/// and the name then order it, and the clean itself reports the file).
fn exif_capture(path: &Path) -> Option<DateTime> {
    use exif::{In, Tag, Value};
    let file = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 4];
    crate::splice::read_exact_at(&file, &mut head, 0).ok()?;
    if matches!(&head, b"II*\0" | b"MM\0*" | b"II+\0" | b"MM\0+") {
        return tiff_capture(&file).and_then(|t| DateTime::parse_exif(t.trim()));
    }
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::BufReader::new(file))
        .ok()?;
    [Tag::DateTimeOriginal, Tag::DateTimeDigitized]
        .iter()
        .find_map(|&tag| match &exif.get_field(tag, In::PRIMARY)?.value {
            Value::Ascii(v) => {
                let text = String::from_utf8_lossy(v.first()?);
                DateTime::parse_exif(text.trim())
            }
            _ => None,
        })
}

/// A TIFF's capture time from its directories alone, read sparsely as the
/// clean reads them (a general EXIF reader would read the whole file: a
/// 72 MB scan for one date).
fn tiff_capture(file: &std::fs::File) -> Option<String> {
    use crate::container::{tiff, Limits};
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    let limits = Limits::default();
    // Zeroed lazily by the allocator: only the pages read are touched.
    let mut buf = vec![0u8; len];
    let head = len.min(64 << 10);
    crate::splice::read_exact_at(file, &mut buf[..head], 0).ok()?;
    let sparse = tiff::load_sparse(&mut buf, head, file, &limits).ok()??;
    let parsed = tiff::parse_sparse(&buf, &limits, &sparse).ok()?;
    parsed.exif_summary().capture_time
}

/// Where a case's collage goes: its case folder (the same pseudonym its
/// photos get), named after the picture's bytes.
pub fn collage_target(
    dir: &Path,
    folders: &Folders,
    case: &str,
    content: &[u8],
    ext: &str,
) -> Result<PathBuf> {
    Ok(dir
        .join(folders.folder(case)?)
        .join(collage_name(folders.naming(), content, ext)?))
}

/// One case folder's collage, placed in its case folder below `out_dir`
/// (beside the photos `clean` puts there): the case pipeline of
/// [`crate::collage::case::run_case`] with the layout's name.
pub fn run_case(
    case: &Path,
    out_dir: &Path,
    folders: &Folders,
    opts: &crate::collage::case::CaseOptions,
    write: crate::commit::WriteMode,
) -> Result<crate::collage::case::CaseDone> {
    use crate::collage::case;
    let label = case::case_label(case);
    if let Some(gate) = &opts.consent {
        gate.register.check(&label, &gate.purpose)?;
    }
    let (bytes, made) = case::make_case(case, opts)?;
    let dest = collage_target(out_dir, folders, &label, &bytes, opts.format.extension())?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create the case folder", e))?;
    }
    let up_to_date = crate::collage::publish(&dest, &bytes, opts.format, write, &opts.limits)?;
    Ok(case::CaseDone {
        dest,
        photos: made.order.len(),
        up_to_date,
        notes: made.notes,
    })
}

/// Where `place` puts a photo with this pseudonym (see [`Naming::pseudonym`])
/// below `dir`.
pub fn target(dir: &Path, place: &Place, pseudonym: Option<String>, ext: &str) -> Result<PathBuf> {
    Ok(dir
        .join(&place.folder)
        .join(file_name(place.rank, pseudonym, ext)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collage::DateTime;

    #[test]
    fn folders_are_pseudonymous_stable_and_nested() {
        let f = Folders::new(Naming::Keyed([7; 32]));
        let a = f.folder("Doe_Jane/visit 1").unwrap();
        let s = a.to_string_lossy();
        assert!(!s.contains("Doe") && !s.contains("visit"), "{s}");
        let parts: Vec<_> = a.components().collect();
        assert_eq!(parts.len(), 2);
        assert!(s.starts_with("case-") && s[5..11].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            Folders::new(Naming::Keyed([7; 32]))
                .folder("Doe_Jane/visit 1")
                .unwrap(),
            a
        );
        assert_ne!(
            Folders::new(Naming::Keyed([8; 32]))
                .folder("Doe_Jane")
                .unwrap(),
            f.folder("Doe_Jane").unwrap()
        );
        assert_eq!(f.folder("").unwrap(), PathBuf::new());
        // Random naming: consistent within the run.
        let r = Folders::new(Naming::Random);
        assert_eq!(r.folder("x").unwrap(), r.folder("x").unwrap());
        assert_ne!(r.folder("x").unwrap(), r.folder("y").unwrap());
    }

    #[test]
    fn names_sort_in_capture_order_without_the_date() {
        let t = |s: &str| DateTime::parse_exif(s);
        let key = |c: Option<DateTime>, name: &str| SortKey {
            capture: c,
            file_time: None,
            name: name.into(),
        };
        let keys = [
            key(t("2022:06:01 10:00:00"), "c_after.jpg"),
            key(t("2021:03:04 10:00:00"), "z_before.jpg"),
            key(None, "a_undated.jpg"),
        ];
        assert_eq!(ranks(&keys), [2, 1, 3]);
        let n = Naming::Keyed([1; 32]);
        let name = file_name(Some(2), n.pseudonym(b"photo").unwrap(), "jpg").unwrap();
        assert!(
            name.starts_with("002-") && name.ends_with(".jpg") && name.len() == 16,
            "{name}"
        );
        assert_eq!(
            name,
            file_name(Some(2), n.pseudonym(b"photo").unwrap(), "jpg").unwrap()
        );
        assert_eq!(
            file_name(None, n.pseudonym(b"photo").unwrap(), "jpg")
                .unwrap()
                .len(),
            36
        );
    }

    #[test]
    fn a_batch_is_placed_by_folder_and_capture_time() {
        let d = tempfile::tempdir().unwrap();
        let sample =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample/Doe_Jane_1961-04-02");
        let case = d.path().join("Doe_Jane");
        std::fs::create_dir(&case).unwrap();
        // Names sort against capture order; a damaged file has no date.
        for (from, to) in [
            ("IMG_2022-06-01_after.jpg", "a.jpg"),
            ("IMG_2021-03-04_before.jpg", "z.jpg"),
        ] {
            std::fs::copy(sample.join(from), case.join(to)).unwrap();
        }
        std::fs::write(case.join("b.jpg"), b"\xFF\xD8 damaged").unwrap();
        std::fs::copy(
            sample.join("IMG_2021-09-10_during.jpg"),
            d.path().join("top.jpg"),
        )
        .unwrap();
        let job = |rel: &str| Job {
            path: d.path().join(rel),
            relative: PathBuf::from(rel),
        };
        let jobs = [
            job("Doe_Jane/a.jpg"),
            job("Doe_Jane/b.jpg"),
            job("Doe_Jane/z.jpg"),
            job("top.jpg"),
        ];
        let folders = Folders::new(Naming::Keyed([3; 32]));
        let p = places(&jobs, &folders, 2).unwrap();
        let ranks: Vec<Option<usize>> = p.iter().map(|p| p.rank).collect();
        assert_eq!(ranks, [Some(2), Some(3), Some(1), Some(1)]);
        assert_eq!(p[0].folder, p[2].folder);
        assert_eq!(p[0].folder, folders.folder("Doe_Jane").unwrap());
        assert_eq!(p[3].folder, PathBuf::new(), "the input's top stays the top");
    }

    #[test]
    fn default_key_lives_in_the_data_folder() {
        let p = default_key_path();
        if let Some(p) = p {
            assert!(p.ends_with("photodeid/name.key"), "{}", p.display());
        }
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("deep/photodeid/name.key");
        let (k, created) = load_or_create_key(&path).unwrap();
        assert!(created);
        assert_eq!(load_or_create_key(&path).unwrap(), (k, false));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }
}
