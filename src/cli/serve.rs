//! `photodeid serve`: options → `serve::Config`, bind, print the address
//! (with its token), answer until Ctrl-C.

use super::args::ServeArgs;
use super::show;
use anyhow::Context;
use photodeid::layout;
use photodeid::pseudonym::Naming;
use photodeid::serve::{Config, Server};
use photodeid::Limits;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Largest input file read (bytes), as for `clean`.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// `FOLDER-clean` beside FOLDER (never inside it, so it is not listed).
fn default_output(folder: &Path) -> anyhow::Result<PathBuf> {
    let abs = folder
        .canonicalize()
        .with_context(|| format!("cannot open {}", folder.display()))?;
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photos".into());
    let parent = abs.parent().unwrap_or(Path::new("/"));
    Ok(parent.join(format!("{name}-clean")))
}

pub fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let output = match &a.output {
        Some(o) => o.clone(),
        None => default_output(&a.folder)?,
    };
    let config = Config {
        folder: a.folder.clone(),
        output,
        port: a.port,
        limits: Limits {
            max_pixels: a.max_megapixels.saturating_mul(1_000_000),
            ..Limits::default()
        },
        max_file_bytes: MAX_FILE_BYTES,
        connections: photodeid::serve::http::MAX_CONNECTIONS,
        thorough: a.thorough,
        naming: naming(&a)?,
        flat: a.flat,
        key_file: a.name_key.clone(),
        styles: a.style.clone(),
    };
    let server =
        Server::bind(&config).with_context(|| format!("cannot serve {}", a.folder.display()))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "photodeid: {} photos in {}; exports go to {}",
            server.photo_count(),
            show(server.folder()),
            show(server.output())
        )?;
        writeln!(
            out,
            "Open this address in your browser (only on this computer):"
        )?;
        writeln!(out, "  {}", server.url())?;
        writeln!(out, "Press Ctrl-C to stop.")?;
        out.flush()?;
    }
    if !a.no_open {
        if let Err(e) = photodeid::serve::desktop::open(server.url().as_ref()) {
            say!("photodeid: could not open the browser ({e}); open the address above");
        }
    }
    server.run();
    Ok(ExitCode::SUCCESS)
}

/// Stable names by default: the key given, else the one in the user's data
/// folder (created once, path printed); random with --random-names.
fn naming(a: &ServeArgs) -> anyhow::Result<Naming> {
    if a.random_names {
        return Ok(Naming::Random);
    }
    let path = match &a.name_key {
        Some(p) => p.clone(),
        None => layout::default_key_path().context(
            "no data folder for the name key (HOME is not set): give --name-key FILE or --random-names",
        )?,
    };
    let (key, created) =
        layout::load_or_create_key(&path).with_context(|| format!("name key {}", show(&path)))?;
    if created {
        say!(
            "photodeid: created a name key in {} (keep it private: the same photo gets the same name)",
            show(&path)
        );
    }
    Ok(Naming::Keyed(key))
}
