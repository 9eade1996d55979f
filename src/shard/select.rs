//! Which chunks a process does.
//!
//! - `K/N`: chunk `c` belongs to shard `c mod N == K` (round robin: balanced,
//!   disjoint and covering for every N).
//! - a list `3,17,40-42`: exactly those chunk ids (Slurm array syntax, so an
//!   array index can be the chunk id and `merge`'s list can be resubmitted).
//! - `auto`: K and N from the scheduler's environment (see [`from_env`]).

use super::{Result, ShardError};

/// A parsed `--shard` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed { k: u64, n: u64 },
    Auto,
}

impl std::str::FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "auto" {
            return Ok(ShardArg::Auto);
        }
        let bad = || format!("bad shard {s:?}: K/N with 0 <= K < N (e.g. 3/16), or auto");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n) = (
            k.trim().parse::<u64>().map_err(|_| bad())?,
            n.trim().parse::<u64>().map_err(|_| bad())?,
        );
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(ShardArg::Fixed { k, n })
    }
}

/// The chunks one process does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    Shard {
        k: u64,
        n: u64,
    },
    /// Sorted, merged, inclusive ranges.
    Chunks(Vec<(u64, u64)>),
}

impl Selection {
    pub fn contains(&self, c: u64) -> bool {
        match self {
            Selection::All => true,
            Selection::Shard { k, n } => c % n == *k,
            Selection::Chunks(r) => r.iter().any(|&(a, b)| (a..=b).contains(&c)),
        }
    }

    /// The selected chunk ids among `0..total`, ascending. Listed ids past
    /// the end are an error (a typo must not silently do nothing).
    pub fn chunks(&self, total: u64) -> Result<Vec<u64>> {
        match self {
            Selection::All => Ok((0..total).collect()),
            Selection::Shard { k, n } => Ok((*k..total).step_by(*n as usize).collect()),
            Selection::Chunks(r) => {
                if let Some(&(_, b)) = r.last() {
                    if b >= total {
                        return Err(ShardError::Selection(format!(
                            "chunk {b} does not exist: the manifest has {total} chunk(s), 0-{}",
                            total.saturating_sub(1)
                        )));
                    }
                }
                Ok(r.iter().flat_map(|&(a, b)| a..=b).collect())
            }
        }
    }
}

/// The shard (of `n`) that owns a named unit such as a case folder: a hash
/// of the name, so a case keeps its shard whatever other cases come and go
/// (a collage needs all of its case's photos, so cases are never split).
pub fn owner_of(name: &[u8], n: u64) -> u64 {
    let h = blake3::hash(name);
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) % n.max(1)
}

/// Parses `3,17,40-42` into sorted, merged ranges.
pub fn parse_chunk_list(s: &str) -> std::result::Result<Vec<(u64, u64)>, String> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad chunk list item {part:?}: use ids and ranges, e.g. 3,17,40-42");
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (
                a.parse::<u64>().map_err(|_| bad())?,
                b.parse::<u64>().map_err(|_| bad())?,
            ),
            None => {
                let a = part.parse::<u64>().map_err(|_| bad())?;
                (a, a)
            }
        };
        if a > b {
            return Err(bad());
        }
        v.push((a, b));
    }
    if v.is_empty() {
        return Err("empty chunk list".into());
    }
    v.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in v {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    Ok(merged)
}

/// Writes ascending ids in Slurm array syntax: `3,17,40-42`.
pub fn format_ranges(ids: impl IntoIterator<Item = u64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    let push = |out: &mut Vec<String>, (a, b): (u64, u64)| {
        out.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        })
    };
    for id in ids {
        run = match run {
            Some((a, b)) if id == b + 1 => Some((a, id)),
            Some(r) => {
                push(&mut out, r);
                Some((id, id))
            }
            None => Some((id, id)),
        };
    }
    if let Some(r) = run {
        push(&mut out, r);
    }
    out.join(",")
}

/// A shard read from the environment, and where it came from (logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvShard {
    pub k: u64,
    pub n: u64,
    pub source: &'static str,
}

fn num(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<u64>> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ShardError::Environment(format!("{name}={v:?} is not a whole number"))),
    }
}

/// `--shard auto`: the first scheduler whose variables are set, in this order:
///
/// | scheduler | index | count |
/// |---|---|---|
/// | Slurm array | `SLURM_ARRAY_TASK_ID` | `SLURM_ARRAY_TASK_COUNT` (with `_MIN` = 0, `_MAX` = COUNT-1, `_STEP` = 1) |
/// | Kubernetes Indexed Job | `JOB_COMPLETION_INDEX` | `--shard-count` |
/// | AWS Batch array | `AWS_BATCH_JOB_ARRAY_INDEX` | `AWS_BATCH_JOB_ARRAY_SIZE` or `--shard-count` |
/// | Google Batch | `BATCH_TASK_INDEX` | `BATCH_TASK_COUNT` |
///
/// A Slurm array that is stepped or partial (`--array=3,17` has COUNT 2 but
/// ids 3 and 17) is refused: its ids are not `0..COUNT-1`, so K/N would
/// skip or repeat work. Such arrays pass the chunk id directly:
/// `--chunks $SLURM_ARRAY_TASK_ID`.
pub fn from_env(
    env: &dyn Fn(&str) -> Option<String>,
    shard_count: Option<u64>,
) -> Result<EnvShard> {
    let check = |k: u64, n: u64, source: &'static str| -> Result<EnvShard> {
        if n == 0 || k >= n {
            return Err(ShardError::Environment(format!(
                "{source}: index {k} is not below the count {n}"
            )));
        }
        if let Some(c) = shard_count {
            if c != n {
                return Err(ShardError::Environment(format!(
                    "{source} says {n} shards but --shard-count says {c}"
                )));
            }
        }
        Ok(EnvShard { k, n, source })
    };
    if let Some(k) = num(env, "SLURM_ARRAY_TASK_ID")? {
        let source = "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT";
        let n = num(env, "SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
            ShardError::Environment(
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".into(),
            )
        })?;
        let min = num(env, "SLURM_ARRAY_TASK_MIN")?;
        let max = num(env, "SLURM_ARRAY_TASK_MAX")?;
        let step = num(env, "SLURM_ARRAY_TASK_STEP")?;
        if min.unwrap_or(0) != 0 || max.is_some_and(|m| m + 1 != n) || step.unwrap_or(1) != 1 {
            return Err(ShardError::Environment(format!(
                "the Slurm array is stepped or partial (ids {}-{}, step {}, {n} tasks): --shard auto \
                 needs --array=0-{}; to run chosen chunks, submit --array=<ids> with \
                 --chunks $SLURM_ARRAY_TASK_ID",
                min.map_or("?".into(), |v| v.to_string()),
                max.map_or("?".into(), |v| v.to_string()),
                step.unwrap_or(1),
                n.saturating_sub(1)
            )));
        }
        return check(k, n, source);
    }
    if let Some(k) = num(env, "JOB_COMPLETION_INDEX")? {
        let n = shard_count.ok_or_else(|| {
            ShardError::Environment(
                "JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set but Kubernetes does not say how \
                 many: pass --shard-count with the Job's completions"
                    .into(),
            )
        })?;
        return check(k, n, "JOB_COMPLETION_INDEX/--shard-count");
    }
    if let Some(k) = num(env, "AWS_BATCH_JOB_ARRAY_INDEX")? {
        let n = match num(env, "AWS_BATCH_JOB_ARRAY_SIZE")? {
            Some(n) => n,
            None => shard_count.ok_or_else(|| {
                ShardError::Environment(
                    "AWS_BATCH_JOB_ARRAY_INDEX is set but not AWS_BATCH_JOB_ARRAY_SIZE: pass \
                     --shard-count with the array size"
                        .into(),
                )
            })?,
        };
        return check(k, n, "AWS_BATCH_JOB_ARRAY_INDEX/AWS_BATCH_JOB_ARRAY_SIZE");
    }
    if let Some(k) = num(env, "BATCH_TASK_INDEX")? {
        let n = num(env, "BATCH_TASK_COUNT")?.ok_or_else(|| {
            ShardError::Environment("BATCH_TASK_INDEX is set but BATCH_TASK_COUNT is not".into())
        })?;
        return check(k, n, "BATCH_TASK_INDEX/BATCH_TASK_COUNT");
    }
    Err(ShardError::Environment(
        "--shard auto found no scheduler index (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, \
         AWS_BATCH_JOB_ARRAY_INDEX, BATCH_TASK_INDEX); pass --shard K/N"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn ranges_round_trip() {
        assert_eq!(format_ranges([3, 17, 40, 41, 42]), "3,17,40-42");
        assert_eq!(
            parse_chunk_list("40-42,3,17,41").unwrap(),
            vec![(3, 3), (17, 17), (40, 42)]
        );
        assert!(parse_chunk_list("5-2").is_err());
        assert_eq!(
            "2/4".parse::<ShardArg>(),
            Ok(ShardArg::Fixed { k: 2, n: 4 })
        );
        assert!("4/4".parse::<ShardArg>().is_err());
    }

    #[test]
    fn slurm_full_array_is_taken_partial_refused() {
        let full = [
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
        ];
        let s = from_env(&env_of(&full), None).unwrap();
        assert_eq!((s.k, s.n), (2, 4));
        let partial = [
            ("SLURM_ARRAY_TASK_ID", "17"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_MIN", "3"),
            ("SLURM_ARRAY_TASK_MAX", "17"),
        ];
        let e = from_env(&env_of(&partial), None).unwrap_err().to_string();
        assert!(e.contains("stepped or partial"), "{e}");
    }
}
