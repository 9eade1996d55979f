//! The consent register: which case (patient) signed a written permission
//! for which purposes, and when. A CSV kept private like the map (it names
//! patients), never written into any output:
//!
//! ```text
//! case,purposes,signed
//! Doe_Jane_1961-04-02,social-media;colleague,2024-03-01
//! ```
//!
//! With a purpose asked for (`--purpose social-media`), a case without a
//! row giving that purpose is refused, by name, and nothing is written for it.

use super::order::DateTime;
use crate::commit::{self, WriteMode};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Name of the register the page keeps beside its regions manifest.
pub const CONSENT_NAME: &str = ".photodeid-consent.csv";

/// Purposes the page offers (any lower-case word with dashes is accepted).
pub const PURPOSES: &[&str] = &["social-media", "website", "colleague", "research", "print"];

const HEADER: [&str; 3] = ["case", "purposes", "signed"];

/// One signed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub case: String,
    pub purposes: Vec<String>,
    /// The date on the signed form, `YYYY-MM-DD`.
    pub signed: String,
}

/// The register, as read.
#[derive(Debug, Clone, Default)]
pub struct Register {
    path: PathBuf,
    rows: Vec<Consent>,
}

/// Checks a purpose word: lower-case letters, digits and dashes.
pub fn check_purpose(p: &str) -> std::result::Result<String, String> {
    let p = p.trim().to_ascii_lowercase();
    if p.is_empty()
        || p.len() > 40
        || !p
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "bad purpose {p:?}: a word such as {}",
            PURPOSES.join(", ")
        ));
    }
    Ok(p)
}

/// Checks a date as written on a form: `YYYY-MM-DD`, a real day.
pub fn check_date(d: &str) -> std::result::Result<String, String> {
    let d = d.trim();
    let ok = d.len() == 10
        && d.as_bytes()[4] == b'-'
        && d.as_bytes()[7] == b'-'
        && DateTime::parse_exif(d).is_some();
    if ok {
        Ok(d.to_string())
    } else {
        Err(format!(
            "bad date {d:?}: the date of the signed form, as 2024-03-01"
        ))
    }
}

/// Refuses a register that others can read (it names patients).
pub fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(Error::Invalid(format!(
                    "consent register {} can be read by others (mode {mode:o}); it names patients: \
                     chmod 600 it",
                    path.display()
                )));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Register {
    /// Reads the register; it must exist and be private.
    pub fn read(path: &Path) -> Result<Register> {
        let bad =
            |why: String| Error::Invalid(format!("consent register {}: {why}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        check_private(path)?;
        let rows = parse(&text).map_err(bad)?;
        Ok(Register {
            path: path.to_path_buf(),
            rows,
        })
    }

    /// Reads the register, or an empty one when there is no file yet.
    pub fn read_or_empty(path: &Path) -> Result<Register> {
        if !path.exists() {
            return Ok(Register {
                path: path.to_path_buf(),
                rows: Vec::new(),
            });
        }
        Register::read(path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rows(&self) -> &[Consent] {
        &self.rows
    }

    /// The most recent form of `case` that gives `purpose`.
    pub fn find(&self, case: &str, purpose: &str) -> Option<&Consent> {
        self.rows
            .iter()
            .filter(|c| c.case == case.trim() && c.purposes.iter().any(|p| p == purpose))
            .max_by(|a, b| a.signed.cmp(&b.signed))
    }

    /// The gate: `Ok` with the form, or an error that names the case.
    pub fn check(&self, case: &str, purpose: &str) -> Result<&Consent> {
        self.find(case, purpose).ok_or_else(|| {
            Error::Invalid(format!(
                "case {case:?} has no written consent for {purpose} in the consent register {}; \
                 nothing written for it",
                self.path.display()
            ))
        })
    }

    /// Records a signed form (added to the case's row for that date) and
    /// writes the register atomically, owner-only.
    pub fn record(&mut self, case: &str, purpose: &str, signed: &str) -> Result<()> {
        let purpose = check_purpose(purpose).map_err(Error::Invalid)?;
        let signed = check_date(signed).map_err(Error::Invalid)?;
        let case = case.trim();
        if case.is_empty() || case.contains(['\n', '\r']) {
            return Err(Error::Invalid(format!("bad case name {case:?}")));
        }
        match self
            .rows
            .iter_mut()
            .find(|c| c.case == case && c.signed == signed)
        {
            Some(row) if row.purposes.contains(&purpose) => {}
            Some(row) => row.purposes.push(purpose),
            None => self.rows.push(Consent {
                case: case.to_string(),
                purposes: vec![purpose],
                signed,
            }),
        }
        let bytes = to_csv(&self.rows)?;
        commit::write_atomic(
            &self.path,
            &bytes,
            WriteMode {
                overwrite: true,
                sync: true,
            },
        )
    }
}

fn parse(text: &str) -> std::result::Result<Vec<Consent>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 1;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if line == 1 && rec.get(0).is_some_and(|c| c.eq_ignore_ascii_case("case")) {
            continue;
        }
        if rec.len() != 3 {
            return Err(format!(
                "line {line}: expected 3 columns (case,purposes,signed), found {}",
                rec.len()
            ));
        }
        let at = |e: String| format!("line {line}: {e}");
        let purposes = rec[1]
            .split([';', '|', ' '])
            .filter(|p| !p.is_empty())
            .map(check_purpose)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(at)?;
        if purposes.is_empty() {
            return Err(at("no purpose".into()));
        }
        rows.push(Consent {
            case: rec[0].to_string(),
            purposes,
            signed: check_date(&rec[2]).map_err(at)?,
        });
    }
    Ok(rows)
}

fn to_csv(rows: &[Consent]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| Error::Invalid(format!("consent register: {e}"));
    w.write_record(HEADER).map_err(err)?;
    for c in rows {
        w.write_record([c.case.as_str(), &c.purposes.join(";"), &c.signed])
            .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Invalid(format!("consent register: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_register_gates_by_case_and_purpose() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("consent.csv");
        let mut r = Register::read_or_empty(&path).unwrap();
        assert!(r.check("Doe_Jane", "social-media").is_err());
        r.record("Doe_Jane", "social-media", "2024-03-01").unwrap();
        r.record("Doe_Jane", "research", "2024-03-01").unwrap();
        r.record("Smith_John", "colleague", "2023-12-31").unwrap();
        let again = Register::read(&path).unwrap();
        assert_eq!(again.rows().len(), 2);
        assert_eq!(
            again.check("Doe_Jane", "social-media").unwrap().signed,
            "2024-03-01"
        );
        let e = again
            .check("Smith_John", "social-media")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Smith_John") && e.contains("social-media"),
            "{e}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Register::read(&path).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn bad_rows_are_named() {
        for (text, word) in [
            (
                "case,purposes,signed\nA,social media!,2024-01-01\n",
                "line 2",
            ),
            ("A,social-media,2024-02-30\n", "bad date"),
            ("A,social-media\n", "3 columns"),
            ("A,,2024-01-01\n", "no purpose"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(word), "{text}: {e}");
        }
        let rows = parse("A,social-media;research,2024-01-01\n").unwrap();
        assert_eq!(rows[0].purposes, ["social-media", "research"]);
        assert!(check_date("2024-1-1").is_err());
        assert!(check_purpose("Social-Media").is_ok());
    }
}
