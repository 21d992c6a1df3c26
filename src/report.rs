//! What the program says: warnings on stderr and the requested output on
//! stdout. Every module reports through here, so no module below the
//! commands reaches up into `main`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// A warning on stderr. Callers pass text without secrets: secret types
/// have no `Display`, so one cannot be formatted into `msg` by accident.
pub fn warn(msg: &str) {
    // A closed or broken stderr must not stop the program.
    let _ = writeln!(std::io::stderr(), "lightfi-token: warning: {msg}");
}

/// A warning that `flag` lets through once per process (a process may read
/// the same broken file twice: before and under the lock).
pub fn warn_once(flag: &AtomicBool, msg: &str) {
    if !flag.swap(true, Ordering::Relaxed) {
        warn(msg);
    }
}

/// A line of progress on stderr (`lightfi-token: …`).
pub fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "lightfi-token: {msg}");
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
