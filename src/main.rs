//! The `photodeid` binary: a thin clap layer over the library.
//! Exit codes: 0 success; 1 a file failed (`check`: identifying content
//! found); 2 usage or fatal error (`check`: a file could not be read).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
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

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
