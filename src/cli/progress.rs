//! Progress of long runs on stderr: an indicatif bar (count, rate, time left)
//! for people at a terminal, periodic JSON objects for machines (`--json`),
//! nothing otherwise (a pipe, a log file, `-q`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a JSON progress object is written at most.
const JSON_EVERY: Duration = Duration::from_secs(1);

/// Who the progress is for, chosen once from the flags and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Terminal,
    Machine,
    Nobody,
}

impl Audience {
    pub fn pick(quiet: bool, json: bool) -> Audience {
        if json {
            Audience::Machine
        } else if quiet || !std::io::stderr().is_terminal() {
            Audience::Nobody
        } else {
            Audience::Terminal
        }
    }
}

/// Counts finished items of a known total. Safe to share between threads.
pub struct Progress {
    bar: Option<ProgressBar>,
    machine: Option<Mutex<Ticker>>,
    what: &'static str,
}

struct Ticker {
    start: Instant,
    last: Option<Instant>,
    done: u64,
    total: u64,
}

impl Progress {
    /// `what` names the items ("files", "cases"). Below two items nothing is shown.
    pub fn new(total: u64, what: &'static str, audience: Audience) -> Progress {
        let audience = if total < 2 {
            Audience::Nobody
        } else {
            audience
        };
        let bar = (audience == Audience::Terminal).then(|| {
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} {msg} · {per_sec} · {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(style)
                .with_message(what);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let machine = (audience == Audience::Machine).then(|| {
            Mutex::new(Ticker {
                start: Instant::now(),
                last: None,
                done: 0,
                total,
            })
        });
        Progress { bar, machine, what }
    }

    /// One more item finished.
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if let Some(m) = &self.machine {
            let mut t = m.lock().unwrap_or_else(|p| p.into_inner());
            t.done += 1;
            let now = Instant::now();
            let due = t.last.is_none_or(|l| now.duration_since(l) >= JSON_EVERY);
            if due || t.done >= t.total {
                t.last = Some(now);
                emit(&t, self.what, now);
            }
        }
    }

    /// Runs `f` (which prints) with the bar out of the way, so lines never tear.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar; the summary line follows on a clean terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `{"progress":{"what":"files","done":40,"total":113,"per_sec":12.5,"eta_s":5.8}}`
fn emit(t: &Ticker, what: &str, now: Instant) {
    let elapsed = now.duration_since(t.start).as_secs_f64();
    let rate = if elapsed > 0.0 {
        t.done as f64 / elapsed
    } else {
        0.0
    };
    let left = t.total.saturating_sub(t.done) as f64;
    let eta = if rate > 0.0 { left / rate } else { 0.0 };
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let line = json!({"progress": {
        "what": what,
        "done": t.done,
        "total": t.total,
        "elapsed_s": round(elapsed),
        "per_sec": round(rate),
        "eta_s": round(eta),
    }});
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_drawn_for_nobody_or_a_single_item() {
        let p = Progress::new(10, "files", Audience::Nobody);
        assert!(p.bar.is_none() && p.machine.is_none());
        let p = Progress::new(1, "files", Audience::Terminal);
        assert!(p.bar.is_none());
        let p = Progress::new(3, "files", Audience::Machine);
        p.inc();
        let t = p.machine.as_ref().unwrap().lock().unwrap();
        assert_eq!((t.done, t.total), (1, 3));
    }
}
