//! Shell completions and man pages, generated from the clap definitions so
//! they can never disagree with `--help`.

use super::args::{command, CompletionsArgs, ManArgs};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn completions(a: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(a.shell, &mut cmd, "photodeid", &mut out);
    Ok(ExitCode::SUCCESS)
}

pub fn man(a: ManArgs) -> anyhow::Result<ExitCode> {
    for page in write_man_pages(&a.dir)? {
        out!("{}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `photodeid.1` and `photodeid-<sub>.1` for every visible subcommand.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let root = command();
    let mut written = Vec::new();
    let mut pages = vec![("photodeid".to_string(), root.clone())];
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("photodeid-{}", sub.get_name());
        // The page's own name, so its NAME and SYNOPSIS read "photodeid-clean".
        pages.push((
            name.clone(),
            sub.clone().name(name).version(env!("CARGO_PKG_VERSION")),
        ));
    }
    for (name, cmd) in pages {
        let mut bytes = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut bytes)
            .context("cannot render man page")?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every visible long option of `cmd`, as `--name`.
    fn long_flags(cmd: &clap::Command) -> Vec<String> {
        cmd.get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect()
    }

    #[test]
    fn a_man_page_per_subcommand_names_every_option() {
        let d = tempfile::tempdir().unwrap();
        let pages = write_man_pages(d.path()).unwrap();
        let root = command();
        let subs: Vec<_> = root
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .collect();
        assert_eq!(pages.len(), subs.len() + 1);
        for sub in subs {
            let page = d.path().join(format!("photodeid-{}.1", sub.get_name()));
            let text = std::fs::read_to_string(&page).unwrap();
            assert!(
                text.starts_with(".ie") || text.contains(".TH"),
                "{}",
                page.display()
            );
            // roff escapes '-' as '\-'.
            let plain = text.replace("\\-", "-");
            for flag in long_flags(sub) {
                assert!(plain.contains(&flag), "{} lacks {flag}", page.display());
            }
        }
        let main = std::fs::read_to_string(d.path().join("photodeid.1")).unwrap();
        assert!(main.contains("photodeid\\-clean") || main.contains("clean"));
    }

    #[test]
    fn completions_cover_every_subcommand_and_option() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut cmd = command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "photodeid", &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in command().get_subcommands().filter(|s| !s.is_hide_set()) {
                assert!(text.contains(sub.get_name()), "{shell}: {}", sub.get_name());
                for flag in long_flags(sub) {
                    let bare = flag.trim_start_matches('-');
                    assert!(text.contains(bare), "{shell} {}: {flag}", sub.get_name());
                }
            }
        }
    }
}
