//! Inputs read in place: a read-only map of the file rather than a copy of
//! it in memory. A lossless clean reads each byte once (the scan for
//! markers, the keyed name) and writes it once, as `cp` does; a read into
//! a buffer first costs a second copy, which on a machine with slow memory
//! copies is most of the system time of a batch. A collage's photos are
//! mapped too ([`crate::pipeline::Photo`]): three 12 MP photos read into
//! memory cost a few milliseconds before any decode can start.
//!
//! A map has one hazard a read has not: a page the file no longer has (it
//! was truncated meanwhile, or the disk failed to read it) raises `SIGBUS`,
//! which would end the whole batch. So every map is watched: a `SIGBUS`
//! inside one maps zeros over the lost pages, marks the map, and the
//! faulting read goes on. Its caller asks [`Mapped::intact`] before it
//! publishes anything made from the bytes, and fails that one file with a
//! reason. A `SIGBUS` anywhere else goes to the handler that was there
//! before (Rust's stack-overflow guard), so the process ends as it would
//! have.
//!
//! The only `unsafe` code of the crate is here: the map itself, the signal
//! handler and the mapping of zeros inside it (`mmap` is a plain system
//! call, safe in a signal handler on Linux).
#![allow(unsafe_code)]

use std::fs::File;
use std::ops::Deref;

/// Files shorter than this are read instead: a map's set-up and tear-down
/// (two system calls, a page table, a TLB flush) cost more than copying
/// a few pages.
pub const MIN_LEN: usize = 256 << 10;

/// Why a file whose map lost a page fails.
pub fn pages_lost() -> crate::error::Error {
    crate::error::Error::Invalid(
        "part of the file could not be read (it became shorter while it was being read, \
         or the disk could not read it); nothing was written"
            .into(),
    )
}

/// Whether a system call failed on a page the map lost: the kernel reading
/// a map for `write` gets no `SIGBUS`, the call fails with `EFAULT`.
pub fn bad_address(e: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    return e.raw_os_error() == Some(libc::EFAULT);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}

/// A watched read-only map of part of a file.
pub struct Mapped {
    map: memmap2::Mmap,
    slot: usize,
}

impl Mapped {
    /// `len` bytes of `file` from `offset`, or `None` where the file cannot
    /// be mapped and watched (another platform, a file system without
    /// maps, more maps open at once than there are watch slots): the caller
    /// reads it instead. The pages are filled in the same call.
    pub fn new(file: &File, offset: u64, len: usize) -> Option<Mapped> {
        if len == 0 || !guard::install() {
            return None;
        }
        let slot = guard::claim()?;
        // SAFETY: the bytes may change under the map (another process
        // writes the file), which no Rust reference may see. Lossless
        // cleans and collages use maps, and they publish nothing unless
        // the file is unchanged after its bytes were last read
        // (`Opened::unchanged`: its size, times and inode), nor when a page
        // was lost (`intact`): whatever a decode made of changed bytes is
        // thrown away.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len)
                .populate()
                .map(file)
        };
        match map {
            Ok(map) => {
                guard::watch(slot, map.as_ptr() as usize, map.len());
                Some(Mapped { map, slot })
            }
            Err(_) => {
                guard::release(slot);
                None
            }
        }
    }

    /// False when a page of the map was lost (replaced by zeros): the file
    /// became shorter, or the disk could not read it.
    pub fn intact(&self) -> bool {
        !guard::lost(self.slot)
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Nothing reads the map any more; it is unmapped right after.
        guard::release(self.slot);
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped")
            .field("len", &self.map.len())
            .field("intact", &self.intact())
            .finish()
    }
}

/// The watch over the maps: a fixed table the signal handler reads without
/// locks (it may not allocate or wait), and the handler.
#[cfg(target_os = "linux")]
mod guard {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// At most this many maps are open at once (one or two per worker).
    const SLOTS: usize = 256;

    struct Slot {
        busy: AtomicBool,
        start: AtomicUsize,
        end: AtomicUsize,
        lost: AtomicBool,
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: Slot = Slot {
        busy: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        lost: AtomicBool::new(false),
    };
    static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
    static PAGE: AtomicUsize = AtomicUsize::new(4096);
    /// The `SIGBUS` action before ours, given back any fault not ours.
    static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

    /// Installs the handler once; false when it could not be.
    pub fn install() -> bool {
        static INSTALLED: OnceLock<bool> = OnceLock::new();
        *INSTALLED.get_or_init(|| {
            // SAFETY: plain system calls on zero-initialised C structs.
            unsafe {
                let page = libc::sysconf(libc::_SC_PAGESIZE);
                if page <= 0 {
                    return false;
                }
                PAGE.store(page as usize, Ordering::Relaxed);
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_sigbus as *const () as usize;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut act.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(libc::SIGBUS, &act, &mut old) != 0 {
                    return false;
                }
                let _ = PREVIOUS.set(old);
                true
            }
        })
    }

    pub fn claim() -> Option<usize> {
        TABLE.iter().position(|s| {
            s.busy
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
    }

    pub fn watch(slot: usize, start: usize, len: usize) {
        let s = &TABLE[slot];
        s.lost.store(false, Ordering::Relaxed);
        s.end.store(start + len, Ordering::Release);
        s.start.store(start, Ordering::Release);
    }

    pub fn lost(slot: usize) -> bool {
        TABLE[slot].lost.load(Ordering::Acquire)
    }

    pub fn release(slot: usize) {
        let s = &TABLE[slot];
        s.start.store(0, Ordering::Release);
        s.end.store(0, Ordering::Release);
        s.busy.store(false, Ordering::Release);
    }

    extern "C" fn on_sigbus(
        _sig: libc::c_int,
        info: *mut libc::siginfo_t,
        _ctx: *mut libc::c_void,
    ) {
        // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO.
        let addr = unsafe { (*info).si_addr() } as usize;
        let page = PAGE.load(Ordering::Relaxed);
        for s in &TABLE {
            let (start, end) = (
                s.start.load(Ordering::Acquire),
                s.end.load(Ordering::Acquire),
            );
            if start == 0 || addr < start || addr >= end {
                continue;
            }
            // A file loses its tail: every page from here to the map's end.
            let from = addr & !(page - 1);
            let to = (end + page - 1) & !(page - 1);
            // SAFETY: [from, to) lies within this watched map, which its
            // owner unmaps whole; zeros replace pages that cannot be read.
            let zeros = unsafe {
                libc::mmap(
                    from as *mut libc::c_void,
                    to - from,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if zeros != libc::MAP_FAILED {
                s.lost.store(true, Ordering::Release);
                return;
            }
            break;
        }
        // Not a watched map: the previous action takes the fault, which
        // repeats when this handler returns.
        // SAFETY: sigaction and signal are async-signal-safe.
        unsafe {
            match PREVIOUS.get() {
                Some(previous) => {
                    libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut());
                }
                None => {
                    libc::signal(libc::SIGBUS, libc::SIG_DFL);
                }
            }
        }
    }
}

/// Without the watch, nothing is mapped: every input is read.
#[cfg(not(target_os = "linux"))]
mod guard {
    pub fn install() -> bool {
        false
    }
    pub fn claim() -> Option<usize> {
        None
    }
    pub fn watch(_: usize, _: usize, _: usize) {}
    pub fn lost(_: usize) -> bool {
        true
    }
    pub fn release(_: usize) {}
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(len: usize, byte: u8) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("photo.jpg");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&vec![byte; len])
            .unwrap();
        (dir, path)
    }

    #[test]
    fn a_map_holds_the_file_bytes() {
        let (_dir, path) = file_of(1 << 20, 0xAB);
        let file = File::open(&path).unwrap();
        let map = Mapped::new(&file, 4096 + 7, 1000).unwrap();
        assert_eq!(map.len(), 1000);
        assert!(map.iter().all(|&b| b == 0xAB));
        assert!(map.intact());
    }

    #[test]
    fn a_file_truncated_under_its_map_reads_zeros_and_says_so() {
        let len = 1 << 20;
        let (_dir, path) = file_of(len, 0xAB);
        let file = File::open(&path).unwrap();
        let map = Mapped::new(&file, 0, len).unwrap();
        assert!(map.intact());
        // Another process cuts the file short while it is being read.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(8192)
            .unwrap();
        // Without the watch, this read would end the test process (SIGBUS).
        let kept = map.iter().filter(|&&b| b == 0xAB).count();
        assert_eq!(kept, 8192);
        assert!(map[8192..].iter().all(|&b| b == 0));
        assert!(!map.intact());
        drop(map);
        // The slot is free again, and a new map of the short file is intact.
        let again = Mapped::new(&file, 0, 8192).unwrap();
        assert!(again.intact());
        assert_eq!(again.iter().filter(|&&b| b == 0xAB).count(), 8192);
    }

    #[test]
    fn maps_on_many_threads_are_watched_apart() {
        let (_dir, path) = file_of(1 << 20, 0x5A);
        let file = File::open(&path).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let m = Mapped::new(&file, 0, 1 << 20).unwrap();
                        assert!(m.intact());
                        assert_eq!(m[12345], 0x5A);
                    }
                });
            }
        });
    }
}
