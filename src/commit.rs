//! Publishing an output: verify the exact bytes to be written, write them to
//! a temporary file in the destination folder, flush, optional fsync, then an
//! atomic rename. A reader never sees a partial file, and a failed
//! verification or write leaves nothing behind.

use crate::error::{Error, Result};
use crate::splice::{Source, Spliced};
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// How to publish.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteMode {
    /// Replace an existing file at the destination.
    pub overwrite: bool,
    /// fsync the file and its folder before returning (watch mode needs it
    /// before it moves an original away).
    pub sync: bool,
}

/// Writes `bytes` to `dest` atomically. `verify` receives the very buffer
/// that is written (the audit parses what lands on disk, byte for byte,
/// without paying for a second read); an error from it aborts the publish.
/// A missing destination folder is created (once: the common case, a folder
/// that exists, costs no system call).
pub fn write_verified(
    dest: &Path,
    bytes: &[u8],
    mode: WriteMode,
    verify: impl FnOnce(&[u8]) -> Result<()>,
) -> Result<()> {
    verify(bytes)?;
    publish(dest, mode, Access::Shared, true, |file| {
        file.write_all(bytes)
            .and_then(|_| file.flush())
            .map_err(|e| Error::io("write output", e))
    })
}

/// Writes a [`Spliced`] output atomically: the made bytes, and the payloads
/// copied from the input in the kernel (see [`Spliced::write_to`]).
/// `verify` receives the audit's view of it before anything is written;
/// `unchanged` runs after the copy and must fail if the input changed since
/// it was parsed (the payloads come from the file, not from memory).
pub fn write_spliced(
    dest: &Path,
    out: &Spliced,
    src: &Source,
    mode: WriteMode,
    verify: impl FnOnce(&[u8]) -> Result<()>,
    unchanged: impl FnOnce() -> Result<()>,
) -> Result<()> {
    verify(&out.audit_view())?;
    publish(dest, mode, Access::Shared, true, |file| {
        let (written, _) = out
            .write_to(file, src)
            .map_err(|e| Error::io("write output", e))?;
        if written != out.len() as u64 {
            return Err(Error::AuditFailed(format!(
                "{written} bytes written instead of {}",
                out.len()
            )));
        }
        unchanged()
    })
}

/// Who may read a file written here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Outputs made to be shared: 0644.
    Shared,
    /// Maps, manifests, error notes: they name originals, so owner only (0600).
    Private,
}

/// Temporary file in `dest`'s folder, `fill`, optional fsync, rename.
/// Without `overwrite` an existing destination is never replaced (the
/// rename refuses it: no separate look first).
fn publish(
    dest: &Path,
    mode: WriteMode,
    access: Access,
    create_dir: bool,
    fill: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = || {
        tempfile::Builder::new()
            .prefix(".photodeid-")
            .suffix(".tmp")
            .tempfile_in(dir)
    };
    let mut tmp = match temp() {
        Err(e) if create_dir && e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create output folder", e))?;
            temp()
        }
        r => r,
    }
    .map_err(|e| Error::io("create temporary output", e))?;
    let file = tmp.as_file_mut();
    fill(file)?;
    if mode.sync {
        file.sync_all().map_err(|e| Error::io("sync output", e))?;
    }
    if access == Access::Shared {
        set_readable(file);
    }
    if mode.overwrite {
        tmp.persist(dest)
            .map_err(|e| Error::io("publish output", e.error))?;
    } else {
        tmp.persist_noclobber(dest).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                Error::OutputExists(dest.to_path_buf())
            } else {
                Error::io("publish output", e.error)
            }
        })?;
    }
    if mode.sync {
        sync_dir(dir);
    }
    Ok(())
}

/// Temporary files are created 0600; outputs get the usual 0644.
fn set_readable(file: &File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Files that name originals (journals, appended maps) are created owner-only.
pub trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for std::fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600);
        self
    }
}

/// Makes a rename durable (best effort: not every platform can open a folder).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes a small private file (a map, a manifest) atomically, without
/// verification, readable by its owner only: it links pseudonyms to originals.
pub fn write_atomic(dest: &Path, bytes: &[u8], mode: WriteMode) -> Result<()> {
    publish(dest, mode, Access::Private, false, |file| {
        file.write_all(bytes)
            .and_then(|_| file.flush())
            .map_err(|e| Error::io("write output", e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_verification_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.jpg");
        let r = write_verified(&dest, b"abc", WriteMode::default(), |_| {
            Err(Error::AuditFailed("test".into()))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn never_clobbers_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.jpg");
        std::fs::write(&dest, b"old").unwrap();
        let r = write_atomic(&dest, b"new", WriteMode::default());
        assert!(matches!(r, Err(Error::OutputExists(_))));
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        write_atomic(
            &dest,
            b"new",
            WriteMode {
                overwrite: true,
                sync: true,
            },
        )
        .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dest), 0o600, "maps and manifests are private");
            let shared = dir.path().join("photo.jpg");
            write_verified(&shared, b"x", WriteMode::default(), |_| Ok(())).unwrap();
            assert_eq!(mode(&shared), 0o644, "outputs are made to be shared");
        }
    }
}
