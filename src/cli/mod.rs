//! Command dispatch and shared terminal helpers.

/// `eprintln!` that cannot panic. `eprintln!` panics when stderr is a closed
/// pipe (`photodeid clean … 2>&1 | grep -q done` exits 101 after the work is
/// done); a message nobody can read any more is dropped instead.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `println!` that cannot panic, for the same reason (`clean --json | head -1`):
/// the batch goes on and its exit code still says how it went.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod args;
mod check;
mod clean;
mod collage;
mod common;
mod detect;
mod docs;
mod hook;
mod progress;
mod serve;
mod shard;
mod watch;

use std::io::Write;
use std::process::ExitCode;

pub fn run(cli: args::Cli) -> anyhow::Result<ExitCode> {
    let command = match cli.command {
        Some(c) => c,
        None => {
            use clap::Parser;
            args::Cli::parse_from(["photodeid", "serve"])
                .command
                .expect("serve given")
        }
    };
    match command {
        args::Command::Clean(a) => clean::run(a),
        args::Command::Check(a) => check::run(a),
        args::Command::Collage(a) => collage::run(*a),
        args::Command::Serve(a) => serve::run(a),
        args::Command::Watch(a) => watch::run(a),
        args::Command::Completions(a) => docs::completions(a),
        args::Command::Man(a) => docs::man(a),
        args::Command::Detect(a) => detect::run(a),
        args::Command::Plan(a) => shard::plan(a),
        args::Command::Keygen(a) => shard::keygen(a),
        args::Command::Merge(a) => shard::merge(a),
    }
}

/// Escapes control characters so a hostile file name cannot drive the terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}') {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

pub fn show(path: &std::path::Path) -> String {
    sanitize(&path.display().to_string())
}

/// An error and its causes as one line, `what: why: deeper why`, each cause
/// once: library errors (and io::Error wrappers) often print their source in
/// their own message too, which `{:#}` would then repeat.
pub fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.ends_with(&part) || text.contains(&format!("{part}: ")) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    // An OS error in words a person reads ("file not found"), not its number.
    for cause in err.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            text = text.replace(&io.to_string(), &photodeid::plain::io_words(io));
        }
    }
    sanitize(&photodeid::plain::without_os_numbers(&text))
}

/// `--verbose`: technical reasons (offsets, markers) after the plain words.
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once by a command that has `--verbose`, before anything is printed.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The reason for a file's failure as a person reads it (`photodeid::plain`),
/// with the technical detail under `--verbose`.
pub fn reason(e: &photodeid::Error) -> String {
    if VERBOSE.load(std::sync::atomic::Ordering::Relaxed) {
        photodeid::plain::explain(e)
    } else {
        photodeid::plain::brief(e)
    }
}

/// Prints `photodeid: <path>: <reason>` on stderr, in one write.
pub fn print_error(err: &photodeid::FileError) {
    print_failure(&err.path, &err.error);
}

/// [`print_error`] for an error held by reference.
pub fn print_failure(path: &std::path::Path, e: &photodeid::Error) {
    let line = format!("photodeid: {}: {}\n", show(path), sanitize(&reason(e)));
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_causes_are_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let start = photodeid::watch::StartError::Io {
            context: "cannot create folder",
            path: "/srv/photos/failed".into(),
            source: io,
        };
        let text = error_text(&anyhow::Error::new(start));
        assert_eq!(text.matches("permission denied").count(), 1, "{text}");
        assert!(!text.contains("os error"), "{text}");
        let nested = anyhow::anyhow!("disk full").context("cannot write map m.csv");
        assert_eq!(error_text(&nested), "cannot write map m.csv: disk full");
    }
}
