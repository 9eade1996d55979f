//! Hands a web address or a folder to the desktop: the default browser, the
//! file manager (`xdg-open`, `open`, `explorer`). The server runs on the
//! same computer as the person using the page, so this is their desktop.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// Opens `target` (a URL or a folder) with the desktop's default program.
/// Returns once the opener has started; it is reaped in the background.
pub fn open(target: &OsStr) -> std::io::Result<()> {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let mut child = Command::new(program)
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::spawn(move || child.wait());
    Ok(())
}
