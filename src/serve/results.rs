//! The page's private results file: `FOLDER/.photodeid-results.json`, beside
//! the regions manifest in the photo folder's private state (hidden, so
//! `clean FOLDER` skips it; owner-only 0600; never in the output, which is
//! what gets shared). It links each input to its output both ways, with the
//! hashes of both and what the output was made with, and is read again at
//! start, so exporting the same photo with the same regions again finds its
//! output there ("up to date") instead of writing a copy, whatever the
//! naming (`--random-names` included).

use super::guard::Root;
use crate::commit::{self, WriteMode};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const RESULTS_NAME: &str = ".photodeid-results.json";

/// One exported photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The input, relative to the photo folder.
    pub input: String,
    /// blake3 of the input's bytes.
    pub input_hash: String,
    /// What the output was made with (regions, effect, fill, mode).
    pub settings: String,
    /// The output folder, absolute.
    pub output_dir: String,
    /// The output, relative to `output_dir`.
    pub output: String,
    pub output_hash: String,
    /// What was removed, in plain words (said again on an "up to date").
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    exports: Vec<Entry>,
}

pub struct Results {
    path: PathBuf,
    entries: Mutex<Vec<Entry>>,
    /// Why the file could not be read: it is then never overwritten.
    broken: Option<String>,
}

impl Results {
    /// Reads the file (none yet: no entries).
    pub fn open(path: PathBuf) -> Results {
        let (entries, broken) = match std::fs::read(&path) {
            Ok(b) => match serde_json::from_slice::<File>(&b) {
                Ok(f) => (f.exports, None),
                Err(e) => (Vec::new(), Some(format!("it cannot be read ({e})"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
            Err(e) => (Vec::new(), Some(crate::plain::io_words(&e))),
        };
        Results {
            path,
            entries: Mutex::new(entries),
            broken,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The earlier output of the same input made the same way into `out`,
    /// if it is still there unchanged.
    pub fn up_to_date(
        &self,
        input: &str,
        input_hash: &str,
        settings: &str,
        out: &Root,
    ) -> Option<Entry> {
        let dir = out.path().display().to_string();
        let e = self
            .lock()
            .iter()
            .find(|e| e.input == input && e.output_dir == dir)?
            .clone();
        if e.input_hash != input_hash || e.settings != settings {
            return None;
        }
        let path = out.contains(&out.path().join(&e.output))?;
        let bytes = std::fs::read(path).ok()?;
        (blake3::hash(&bytes).to_hex().as_str() == e.output_hash).then_some(e)
    }

    /// Records `entry` (replacing the input's earlier one for the same output
    /// folder) and writes the file atomically.
    pub fn record(&self, entry: Entry) -> Result<()> {
        if let Some(why) = &self.broken {
            return Err(Error::Invalid(format!(
                "the results file {} is not updated: {why}; move it away to start a new one",
                self.path.display()
            )));
        }
        let mut entries = self.lock();
        entries.retain(|e| !(e.input == entry.input && e.output_dir == entry.output_dir));
        entries.push(entry);
        entries.sort_by(|a, b| (&a.output_dir, &a.input).cmp(&(&b.output_dir, &b.input)));
        let file = File {
            version: 1,
            exports: entries.clone(),
        };
        let text = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::Invalid(format!("results file: {e}")))?;
        commit::write_atomic(
            &self.path,
            &text,
            WriteMode {
                overwrite: true,
                sync: true,
            },
        )
    }

    /// The entries for the output folder `out`.
    pub fn for_output(&self, out: &Root) -> Vec<Entry> {
        let dir = out.path().display().to_string();
        self.lock()
            .iter()
            .filter(|e| e.output_dir == dir)
            .cloned()
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_outputs_are_found_again_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let out_dir = d.path().join("out");
        std::fs::create_dir_all(out_dir.join("case-1")).unwrap();
        std::fs::write(out_dir.join("case-1/01.jpg"), b"clean").unwrap();
        let out = Root::new(&out_dir).unwrap();
        let path = d.path().join(RESULTS_NAME);
        let r = Results::open(path.clone());
        let entry = Entry {
            input: "Doe/a.jpg".into(),
            input_hash: "in".into(),
            settings: "s".into(),
            output_dir: out.path().display().to_string(),
            output: "case-1/01.jpg".into(),
            output_hash: blake3::hash(b"clean").to_hex().to_string(),
            removed: vec!["GPS location".into()],
            method: None,
        };
        r.record(entry.clone()).unwrap();
        // Read again, as at the next start.
        let r = Results::open(path.clone());
        assert_eq!(r.for_output(&out), vec![entry.clone()]);
        assert!(r.up_to_date("Doe/a.jpg", "in", "s", &out).is_some());
        assert!(r
            .up_to_date("Doe/a.jpg", "in", "other regions", &out)
            .is_none());
        assert!(r.up_to_date("Doe/a.jpg", "changed", "s", &out).is_none());
        std::fs::write(out_dir.join("case-1/01.jpg"), b"edited").unwrap();
        assert!(r.up_to_date("Doe/a.jpg", "in", "s", &out).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // A broken file is never overwritten.
        std::fs::write(&path, b"{oops").unwrap();
        let r = Results::open(path.clone());
        assert!(r.record(entry).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"{oops");
    }
}
