//! Command dispatch and shared terminal helpers.

pub mod args;
mod check;
mod clean;
mod collage;
mod common;
mod serve;
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
        args::Command::Collage(a) => collage::run(a),
        args::Command::Serve(a) => serve::run(a),
        args::Command::Watch(a) => watch::run(a),
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

/// Prints `photodeid: <path>: <reason>` on stderr, in one write.
pub fn print_error(err: &photodeid::FileError) {
    let line = format!(
        "photodeid: {}: {}\n",
        show(&err.path),
        sanitize(&err.error.to_string())
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
