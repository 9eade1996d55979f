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
/// A missing destination folder is created (see [`temp_in`]).
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

/// [`write_spliced`] to a name that is not known yet: `name` (a keyed hash
/// of every input byte) runs beside the audit and the copy, so the file
/// takes about the longer of the two rather than their sum; the name is
/// needed only by the rename. Both run on this thread, one after the other,
/// outside a worker pool (`-j 1`), and inside one when no worker is idle to
/// take the name. A failed `name` leaves nothing behind, like a failed copy.
pub fn write_spliced_named(
    dir: &Path,
    name: impl FnOnce() -> Result<std::path::PathBuf> + Send,
    out: &Spliced,
    src: &Source,
    mode: WriteMode,
    verify: impl FnOnce(&[u8]) -> Result<()> + Send,
    unchanged: impl FnOnce() -> Result<()> + Send,
) -> Result<()> {
    let fill = |file: &mut File| {
        verify(&out.audit_view())?;
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
    };
    let mut tmp = temp_in(dir, true)?;
    let file = tmp.as_file_mut();
    let (filled, dest) = join(|| fill(file), name);
    filled?;
    finish(tmp, &dest?, dir, mode, Access::Shared)
}

/// `a` and `b` at once when this thread is a pool's worker (another worker
/// may take `b`; if none does, this one runs it after `a`), else in turn.
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if rayon::current_thread_index().is_some() {
        rayon::join(a, b)
    } else {
        let a = a();
        (a, b())
    }
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
    let dir = folder_of(dest);
    let mut tmp = temp_in(dir, create_dir)?;
    fill(tmp.as_file_mut())?;
    finish(tmp, dest, dir, mode, access)
}

fn folder_of(dest: &Path) -> &Path {
    dest.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A temporary file in `dir` (created first when missing and `create_dir`:
/// once, the common case, a folder that exists, costs no system call).
fn temp_in(dir: &Path, create_dir: bool) -> Result<tempfile::NamedTempFile> {
    let temp = || {
        tempfile::Builder::new()
            .prefix(".photodeid-")
            .suffix(".tmp")
            .tempfile_in(dir)
    };
    match temp() {
        Err(e) if create_dir && e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create output folder", e))?;
            temp()
        }
        r => r,
    }
    .map_err(|e| Error::io("create temporary output", e))
}

/// The filled temporary file: optional fsync, its mode, the rename to `dest`.
fn finish(
    mut tmp: tempfile::NamedTempFile,
    dest: &Path,
    dir: &Path,
    mode: WriteMode,
    access: Access,
) -> Result<()> {
    let file = tmp.as_file_mut();
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

    /// A name that fails (a read error while hashing the input) or a copy
    /// that fails while the name is computed: an error, nothing left; inside
    /// a pool (the two at once) and outside (in turn).
    #[test]
    fn a_failed_name_or_copy_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let input = tempfile::tempfile().unwrap();
        let out = Spliced::from_vec(b"made".to_vec());
        let src = Source {
            base: b"",
            file: &input,
            complete: true,
        };
        let dest = dir.path().join("name.tif");
        let write = |name_ok: bool, copy_ok: bool| {
            write_spliced_named(
                dir.path(),
                || match name_ok {
                    true => Ok(dest.clone()),
                    false => Err(Error::io("cannot read", std::io::ErrorKind::Other.into())),
                },
                &out,
                &src,
                WriteMode::default(),
                |_| Ok(()),
                || match copy_ok {
                    true => Ok(()),
                    false => Err(Error::Invalid("changed".into())),
                },
            )
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for in_pool in [false, true] {
            for (name_ok, copy_ok) in [(false, true), (true, false), (false, false)] {
                let r = match in_pool {
                    true => pool.install(|| write(name_ok, copy_ok)),
                    false => write(name_ok, copy_ok),
                };
                let err = r.expect_err("fails").to_string();
                let want = if copy_ok { "cannot read" } else { "changed" };
                assert!(err.contains(want), "{err}");
                assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
            }
        }
        pool.install(|| write(true, true)).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"made");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
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
