//! `--on-failure CMD` (clean and watch): a command run once per file that
//! fails, e.g. to send a mail. It gets the file's pseudonym and the reason,
//! never the original path: as `$1` and `$2` of `sh -c CMD` and as the
//! environment variables `PHOTODEID_PSEUDONYM`, `PHOTODEID_REASON` and
//! `PHOTODEID_COMMAND` (`clean` or `watch`). Windows: `cmd /C CMD`, with the
//! environment variables only.

use std::process::{Child, Command, Stdio};

/// Runs the command for each failure without holding up the run; the
/// children are waited for when the hook is dropped (end of the run).
pub struct FailureHook {
    cmd: String,
    /// `clean` or `watch`.
    source: &'static str,
    children: Vec<Child>,
}

impl FailureHook {
    pub fn new(cmd: Option<&str>, source: &'static str) -> Option<FailureHook> {
        cmd.filter(|c| !c.trim().is_empty()).map(|c| FailureHook {
            cmd: c.to_string(),
            source,
            children: Vec::new(),
        })
    }

    /// Starts the command for one failed file. A command that cannot be
    /// started or exits non-zero gets a warning; the run goes on.
    pub fn fire(&mut self, pseudonym: &str, reason: &str) {
        self.reap();
        let mut command = shell(&self.cmd, pseudonym, reason);
        command
            .env("PHOTODEID_PSEUDONYM", pseudonym)
            .env("PHOTODEID_REASON", reason)
            .env("PHOTODEID_COMMAND", self.source)
            .stdin(Stdio::null());
        match command.spawn() {
            Ok(child) => self.children.push(child),
            Err(e) => {
                say!("photodeid: warning: --on-failure command could not be started: {e}")
            }
        }
    }

    /// Collects the children that have ended, warning about failed ones.
    fn reap(&mut self) {
        self.children.retain_mut(|c| match c.try_wait() {
            Ok(Some(status)) => {
                warn_status(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }
}

impl Drop for FailureHook {
    fn drop(&mut self) {
        for mut c in self.children.drain(..) {
            if let Ok(status) = c.wait() {
                warn_status(status);
            }
        }
    }
}

fn warn_status(status: std::process::ExitStatus) {
    if !status.success() {
        say!("photodeid: warning: --on-failure command ended with {status}");
    }
}

#[cfg(unix)]
fn shell(cmd: &str, pseudonym: &str, reason: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.args(["-c", cmd, "photodeid-on-failure", pseudonym, reason]);
    c
}

#[cfg(not(unix))]
fn shell(cmd: &str, _pseudonym: &str, _reason: &str) -> Command {
    let mut c = Command::new("cmd");
    c.args(["/C", cmd]);
    c
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_command_gets_pseudonym_and_reason_as_args_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let cmd = format!(
            "printf '%s|%s|%s|%s|%s\\n' \"$1\" \"$2\" \"$PHOTODEID_PSEUDONYM\" \
             \"$PHOTODEID_REASON\" \"$PHOTODEID_COMMAND\" >> '{}'",
            out.display()
        );
        {
            let mut hook = FailureHook::new(Some(&cmd), "clean").unwrap();
            hook.fire("abc123", "malformed JPEG: truncated");
            hook.fire("def456", "it's \"quoted\"; $(not run)");
        }
        let got = std::fs::read_to_string(&out).unwrap();
        let mut lines: Vec<&str> = got.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "abc123|malformed JPEG: truncated|abc123|malformed JPEG: truncated|clean",
                "def456|it's \"quoted\"; $(not run)|def456|it's \"quoted\"; $(not run)|clean",
            ]
        );
    }

    #[test]
    fn no_command_no_hook() {
        assert!(FailureHook::new(None, "watch").is_none());
        assert!(FailureHook::new(Some("  "), "watch").is_none());
    }
}
