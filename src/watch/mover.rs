//! Moving originals out of the inbox once they are dealt with: never
//! overwriting (a taken name gets `-1`, `-2`... before its extension), safe
//! (a move undone by a power cut is harmless, see [`move_exact`]), and
//! working across file systems.

use crate::commit;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The first of `dest`, `stem-1.ext`, `stem-2.ext`... that does not exist.
pub fn unique_path(dest: &Path) -> PathBuf {
    if std::fs::symlink_metadata(dest).is_err() {
        return dest.to_path_buf();
    }
    let stem = dest.file_stem().map(OsString::from).unwrap_or_default();
    let ext = dest.extension().map(OsString::from);
    (1u64..)
        .map(|n| {
            let mut name = stem.clone();
            name.push(format!("-{n}"));
            if let Some(ext) = &ext {
                name.push(".");
                name.push(ext);
            }
            dest.with_file_name(name)
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("some suffix is free")
}

fn parent_of(p: &Path) -> &Path {
    p.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Moves `src` to `dest` (or a free variant of it) and returns where it went.
pub fn move_unique(src: &Path, dest: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(parent_of(dest)).map_err(|e| Error::io("create folder", e))?;
    let target = unique_path(dest);
    move_exact(src, &target)?;
    Ok(target)
}

/// Moves `src` to exactly `target` (chosen free by the caller).
///
/// A same-disk rename is not followed by an fsync: if a power cut undoes it,
/// the original is simply back in the inbox, is cleaned again to the same
/// pseudonym and found up to date, so nothing is lost or published twice.
/// Across disks the copy is synced before the source is removed.
pub fn move_exact(src: &Path, target: &Path) -> Result<()> {
    std::fs::create_dir_all(parent_of(target)).map_err(|e| Error::io("create folder", e))?;
    match std::fs::rename(src, target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            copy_durable(src, target)?;
            std::fs::remove_file(src).map_err(|e| Error::io("remove original", e))?;
        }
        Err(e) => return Err(Error::io("move original", e)),
    }
    Ok(())
}

/// Copies `src` to `dest` (or a free variant of it), synced, and returns where it went.
pub fn copy_unique(src: &Path, dest: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(parent_of(dest)).map_err(|e| Error::io("create folder", e))?;
    let target = unique_path(dest);
    copy_durable(src, &target)?;
    Ok(target)
}

/// Copy through a synced temporary file in `dest`'s folder, then a
/// no-clobber rename. Streamed, so an original of any size (a 20 GB video
/// dropped into the inbox by mistake) never has to fit in memory. The
/// temporary file is removed on any error; the source is never touched.
fn copy_durable(src: &Path, dest: &Path) -> Result<()> {
    let dir = parent_of(dest);
    let mut input = File::open(src).map_err(|e| Error::io("read original", e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".photodeid-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io("create temporary copy", e))?;
    std::io::copy(&mut input, tmp.as_file_mut())
        .and_then(|_| tmp.as_file_mut().flush())
        .map_err(|e| Error::io("copy original", e))?;
    // A move keeps the file's permissions (a private original stays private).
    if let Ok(meta) = input.metadata() {
        let _ = tmp.as_file().set_permissions(meta.permissions());
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("sync copy", e))?;
    // An error, not `OutputExists`: its message would name the original.
    tmp.persist_noclobber(dest)
        .map_err(|e| Error::io("place original", e.error))?;
    commit::sync_dir(dir);
    Ok(())
}

/// Deletes an original for good (`--delete-originals`; a deletion undone
/// by a power cut only means the photo is found up to date next time).
pub fn delete(src: &Path) -> Result<()> {
    std::fs::remove_file(src).map_err(|e| Error::io("delete original", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_overwrites_and_keeps_the_extension() {
        let d = tempfile::tempdir().unwrap();
        let done = d.path().join("done/sub/a.jpg");
        for content in [&b"one"[..], b"two", b"three"] {
            let src = d.path().join("a.jpg");
            std::fs::write(&src, content).unwrap();
            move_unique(&src, &done).unwrap();
            assert!(!src.exists());
        }
        let sub = d.path().join("done/sub");
        assert_eq!(std::fs::read(sub.join("a.jpg")).unwrap(), b"one");
        assert_eq!(std::fs::read(sub.join("a-1.jpg")).unwrap(), b"two");
        assert_eq!(std::fs::read(sub.join("a-2.jpg")).unwrap(), b"three");
        let src = d.path().join("noext");
        std::fs::write(&src, b"x").unwrap();
        let c = copy_unique(&src, &sub.join("a.jpg")).unwrap();
        assert_eq!(c, sub.join("a-3.jpg"));
        assert!(src.exists());
    }

    #[test]
    fn a_copy_is_streamed_exact_and_never_clobbers() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("big.bin");
        let bytes: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &bytes).unwrap();
        let dest = d.path().join("failed/big.bin");
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        copy_durable(&src, &dest).unwrap();
        assert!(std::fs::read(&dest).unwrap() == bytes);
        assert!(src.exists());
        // Taken in the meantime: an error, the other file untouched, no temporary left.
        std::fs::write(&dest, b"other").unwrap();
        let e = copy_durable(&src, &dest).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(!e.to_string().contains("big.bin"), "{e}");
        assert_eq!(std::fs::read(&dest).unwrap(), b"other");
        assert_eq!(
            std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
            1
        );
        assert!(src.exists());
    }

    /// The EXDEV path for real where /dev/shm is another file system.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_move_across_file_systems_copies_then_removes() {
        use std::os::unix::fs::MetadataExt;
        let here = tempfile::tempdir().unwrap();
        let Ok(there) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
        if dev(here.path()) == dev(there.path()) {
            return;
        }
        let src = here.path().join("a.jpg");
        std::fs::write(&src, b"photo").unwrap();
        let moved = move_unique(&src, &there.path().join("done/a.jpg")).unwrap();
        assert_eq!(moved, there.path().join("done/a.jpg"));
        assert_eq!(std::fs::read(&moved).unwrap(), b"photo");
        assert!(!src.exists());
        assert_eq!(
            std::fs::read_dir(there.path().join("done"))
                .unwrap()
                .count(),
            1
        );
    }
}
