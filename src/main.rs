//! The `photodeid` binary: a thin clap layer over the library.
//! Exit codes: 0 success; 1 a file failed (`check`: identifying content
//! found); 2 usage or fatal error (`check`: a file could not be read).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    keep_freed_memory();
    let args = cli::args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            // Not `eprintln!`, which panics on a closed stderr.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "photodeid: {}", cli::error_text(&err));
            ExitCode::from(2)
        }
    }
}

/// Memory a file freed stays with the process for the next file. By
/// default glibc hands a large block (a region edit's band of
/// coefficients, a decoded photo, an output buffer) back to the system when
/// it is freed, and the next file faults every page of it in again: about
/// 7,800 page faults a 12 MP region edit, a third of its time in a batch on
/// a VM (`BENCH_ONLY=dctedit`). Blocks up to 32 MiB (glibc's ceiling) now
/// come from the heap, which is trimmed only past 256 MiB free: a worker
/// keeps at most its largest file's working set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: `mallopt` only sets two allocator parameters, before any
    // thread exists; a value it refuses leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
