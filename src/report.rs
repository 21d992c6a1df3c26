//! What the program says: warnings on stderr and the requested output on
//! stdout. Every module reports through here, so no module below the
//! commands reaches up into `main`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::error::{Error, Result};

/// How much the program says on stderr besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `-q`: errors only.
    Quiet = 0,
    Normal = 1,
    /// `-v` or `LIGHTFI_LOG=debug`: also each HTTP exchange and lock step.
    Verbose = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Normal as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// A warning on stderr (not with `-q`). Callers pass text without secrets:
/// secret types have no `Display`, so one cannot be formatted into `msg` by
/// accident.
pub fn warn(msg: &str) {
    if level() >= Level::Normal as u8 {
        // A closed or broken stderr must not stop the program.
        let _ = writeln!(std::io::stderr(), "lightfi-token: warning: {msg}");
    }
}

/// A step worth seeing when something goes wrong (`-v`): what was sent
/// where and what came back, with every secret left out by the caller —
/// safe to paste into a bug report.
pub fn debug(msg: impl FnOnce() -> String) {
    if level() >= Level::Verbose as u8 {
        let _ = writeln!(std::io::stderr(), "lightfi-token: debug: {}", msg());
    }
}

/// Whether [`warn`] shows anything (not with `-q`): a warning recorded as
/// said must have been said.
pub fn warnings_shown() -> bool {
    level() >= Level::Normal as u8
}

/// A warning that `flag` lets through once per process (a process may read
/// the same broken file twice: before and under the lock).
pub fn warn_once(flag: &AtomicBool, msg: &str) {
    if !flag.swap(true, Ordering::Relaxed) {
        warn(msg);
    }
}

/// A line of progress on stderr (`lightfi-token: …`), not with `-q`.
pub fn note(msg: &str) {
    if level() >= Level::Normal as u8 {
        let _ = writeln!(std::io::stderr(), "lightfi-token: {msg}");
    }
}

/// What a person must act on (the login address): on stderr, whatever the
/// level, and also on the terminal (`/dev/tty`) when stderr is not one — a
/// program that captures our stderr would otherwise hide the prompt.
pub fn prompt(text: &str) {
    use std::io::IsTerminal;
    let _ = std::io::stderr().write_all(text.as_bytes());
    if !std::io::stderr().is_terminal()
        && let Some(mut tty) = terminal()
    {
        let _ = tty.write_all(text.as_bytes());
    }
}

/// The controlling terminal, for writing, if there is one.
fn terminal() -> Option<std::fs::File> {
    #[cfg(unix)]
    {
        std::fs::OpenOptions::new().write(true).open("/dev/tty").ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Write to stdout in one piece.
pub fn print(text: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::unexpected(format!("cannot write to stdout: {e}")))
}

/// Text from a server or a token (an `error_description`, a JWT claim) with
/// control characters removed, so it cannot drive the terminal.
pub fn sanitize(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_drops_escape_sequences() {
        assert_eq!(
            sanitize("bad\u{1b}]0;owned\u{7}\u{1b}[2J grant\r\n"),
            "bad]0;owned[2J grant"
        );
    }
}
