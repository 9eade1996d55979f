//! Sharded runs over one frozen listing, for clusters (Slurm arrays,
//! Kubernetes Indexed Jobs, AWS/Google Batch arrays, GNU parallel, Spark).
//!
//! ```text
//! plan ──► manifest.tsv ──► clean --shard K/N (× N, anywhere) ──► chunks/C.{map.csv,failed.tsv,done.json}
//!  (walk once, sorted,        (chunk C = entries C·S .. C·S+S-1;       (temp + fsync + rename,
//!   digest in the header)      a done chunk is skipped)                 done marker last)
//!                                                         merge ──► one map, completeness proven
//! ```
//!
//! - [`manifest`]: the frozen listing (bytewise sorted, size and mtime, a
//!   digest in its header), written and read as a stream.
//! - [`select`]: which chunks a process does: `K/N`, an explicit list, or the
//!   scheduler's environment (`--shard auto`); the Slurm range syntax.
//! - [`chunk`]: the run folder, per-chunk side files and done markers, and
//!   the chunk runner on top of [`crate::pipeline`].
//! - [`merge`]: checks every manifest line is accounted for once and streams
//!   the single-machine map out of the chunks.
//! - [`cases`]: the same for `collage --cases`: a frozen case list, one
//!   chunk per case folder, done markers, and its merge.
//!
//! Chunk ids depend only on the manifest and its chunk size, never on the
//! number of processes: a resume with another N still skips what is done.
//! Outputs are a pure function of input bytes, key, options and version,
//! and are published create-if-absent, so two attempts of one chunk at once
//! (schedulers retry and duplicate tasks) agree and neither fails.

pub mod cases;
pub mod chunk;
pub mod manifest;
pub mod merge;
pub mod select;

use std::path::PathBuf;

/// What can stop a sharded run as a whole (per-file failures are not these:
/// they go to the chunk's private failed file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// Reading or writing a run file failed.
    #[error("{context} {path}: {source}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A manifest (or a side file) that does not read as one of ours.
    #[error("{path}: line {line}: {reason}")]
    Format {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// The scheduler's environment does not describe a usable shard.
    #[error("{0}")]
    Environment(String),
    /// A `--shard` / `--chunks` value that cannot be used.
    #[error("{0}")]
    Selection(String),
    /// Chunks made with another manifest, other options or another key.
    #[error("{0}")]
    Mixed(String),
    /// A run file in a place it must not be, or a request that cannot work.
    #[error("{0}")]
    Invalid(String),
}

impl ShardError {
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ShardError::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// True for the refusals that mean "this run mixes things" (exit 2).
    pub fn is_refusal(&self) -> bool {
        matches!(self, ShardError::Mixed(_))
    }
}

pub type Result<T, E = ShardError> = std::result::Result<T, E>;

/// The fingerprint of a name key written into done markers: a keyed hash of
/// a fixed string, so markers can be compared without ever holding the key.
pub fn key_fingerprint(key: &[u8; 32]) -> String {
    let h = blake3::keyed_hash(key, b"photodeid key fingerprint v1");
    crate::pseudonym::hex(&h.as_bytes()[..16])
}

/// The CPUs this process may use: the affinity mask and cgroup quota (as
/// the standard library reads them), lowered to `SLURM_CPUS_PER_TASK` where
/// Slurm grants fewer than the node has without confining the task.
pub fn granted_cpus(env: &dyn Fn(&str) -> Option<String>) -> usize {
    let os = std::thread::available_parallelism().map_or(1, |n| n.get());
    let slurm = env("SLURM_CPUS_PER_TASK")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    match slurm {
        Some(n) => n.min(os),
        None => os,
    }
}

/// Reads the process environment (the default for [`select`] and [`granted_cpus`]).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
