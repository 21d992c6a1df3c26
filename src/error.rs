//! One error type for the whole program: each variant is a state the caller
//! can act on, with one exit code from the README's table and one `hint:` line that
//! says what to do next. Messages never contain a token or secret: each
//! secret has its own type in `secret.rs`, which has no `Display` (it cannot
//! be formatted into a message) and whose `Debug` prints `<redacted>` for the value.

use std::fmt;
use std::path::PathBuf;

/// An RFC 6749 §5.2 error body (`error`, `error_description`) as the server sent it.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub error: String,
    pub description: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = &self.description {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum Error {
    /// Exit 2: the command line (or an equivalent setting) makes no sense.
    Usage { msg: String, hint: String },
    /// Exit 3: no refresh token, and we may not (or could not) log in.
    LoginRequired { msg: String },
    /// Exit 3: the server refused the refresh token (`invalid_grant`).
    RefreshRejected(OAuthError),
    /// Exit 3: an interactive login was cancelled, failed or timed out.
    LoginFailed { msg: String, hint: String },
    /// Exit 4: missing or malformed configuration.
    Config { msg: String, hint: String },
    /// Exit 4: the server refused our client (`invalid_client`, `unauthorized_client`, …).
    ClientRejected(OAuthError),
    /// Exit 5: the authorization server is unreachable, failing or answering nonsense.
    ServerUnavailable { msg: String },
    /// Exit 5: as `ServerUnavailable`, with a hint of its own: `configure`
    /// saved the profile, then could not check it; or a first login found
    /// no server and there is no stored login to keep.
    Unchecked { msg: String, hint: String },
    /// Exit 5: the OS keyring holding this login's refresh token did not
    /// answer (none running, locked, hung past its timeout); the login is kept.
    KeyringUnavailable { msg: String, hint: String },
    /// Exit 4: Vault/OpenBao refused the Vault token on the shared login's
    /// path (a missing policy capability, or an expired token).
    VaultDenied { msg: String, hint: String },
    /// Exit 5: Vault/OpenBao is unreachable, sealed or failing.
    VaultUnavailable { msg: String, hint: String },
    /// The token file cannot be served: unreadable, expired, or no expiry to tell.
    TokenFile { msg: String, hint: String },
    /// Exit 6: another process held the profile's lock for longer than `--lock-timeout`.
    LockTimeout { path: PathBuf, waited: std::time::Duration },
    /// Exit 1: a local failure we did not expect (I/O on the store, spawning a program…).
    Unexpected { msg: String },
    /// Exit 1: `doctor` found problems; each is on stdout with its fix.
    ChecksFailed { msg: String, hint: String },
    /// Exit 127 (not found) or 126 (found but not runnable), as shells and
    /// env(1) report it: `exec` could not start the command it was given.
    CannotRun { msg: String, hint: String, code: u8 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn config(msg: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Config {
            msg: msg.into(),
            hint: hint.into(),
        }
    }

    pub fn unavailable(msg: impl Into<String>) -> Self {
        Error::ServerUnavailable { msg: msg.into() }
    }

    pub fn unexpected(msg: impl Into<String>) -> Self {
        Error::Unexpected { msg: msg.into() }
    }

    /// An I/O failure on `path`, described as `what` ("cannot write", …).
    pub fn io(what: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        Error::Unexpected {
            msg: format!("{what} {}: {err}", path.display()),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Unexpected { .. } | Error::ChecksFailed { .. } => 1,
            Error::Usage { .. } => 2,
            Error::LoginRequired { .. } | Error::RefreshRejected(_) | Error::LoginFailed { .. } => 3,
            Error::Config { .. } | Error::ClientRejected(_) | Error::VaultDenied { .. } => 4,
            Error::ServerUnavailable { .. }
            | Error::KeyringUnavailable { .. }
            | Error::VaultUnavailable { .. }
            | Error::Unchecked { .. }
            | Error::TokenFile { .. } => 5,
            Error::LockTimeout { .. } => 6,
            Error::CannotRun { code, .. } => *code,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            Error::Usage { hint, .. }
            | Error::LoginFailed { hint, .. }
            | Error::Config { hint, .. }
            | Error::ChecksFailed { hint, .. }
            | Error::KeyringUnavailable { hint, .. }
            | Error::VaultDenied { hint, .. }
            | Error::VaultUnavailable { hint, .. }
            | Error::Unchecked { hint, .. }
            | Error::TokenFile { hint, .. }
            | Error::CannotRun { hint, .. } => hint.clone(),
            Error::LoginRequired { .. } | Error::RefreshRejected(_) => "run `lightfi-token login`".into(),
            Error::ClientRejected(_) => {
                "check the client id and secret (LIGHTFI_CLIENT_ID, LIGHTFI_CLIENT_SECRET or config.toml) \
                 and that the Cognito app client allows the authorization-code and refresh-token grants"
                    .into()
            }
            Error::ServerUnavailable { .. } => {
                "check your network and the OAuth URL (--oauth-url, LIGHTFI_OAUTH_URL), then try again; \
                 your stored login was kept"
                    .into()
            }
            Error::LockTimeout { .. } => "another lightfi-token process is still busy with this profile \
                 (probably waiting for a browser login): finish or stop it, or wait longer with --lock-timeout"
                .into(),
            Error::Unexpected { .. } => {
                "if this persists, run `lightfi-token status` and report the message above".into()
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { msg, .. }
            | Error::LoginRequired { msg }
            | Error::LoginFailed { msg, .. }
            | Error::Config { msg, .. }
            | Error::ServerUnavailable { msg }
            | Error::KeyringUnavailable { msg, .. }
            | Error::VaultDenied { msg, .. }
            | Error::VaultUnavailable { msg, .. }
            | Error::Unchecked { msg, .. }
            | Error::TokenFile { msg, .. }
            | Error::Unexpected { msg }
            | Error::ChecksFailed { msg, .. }
            | Error::CannotRun { msg, .. } => f.write_str(msg),
            Error::RefreshRejected(e) => write!(f, "the server rejected the stored refresh token: {e}"),
            Error::ClientRejected(e) => write!(f, "the server rejected the client: {e}"),
            Error::LockTimeout { path, waited } => {
                let secs = waited.as_secs_f64();
                write!(f, "gave up after {secs} s waiting for the lock {}", path.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract_table() {
        let oauth = || OAuthError {
            error: "x".into(),
            description: None,
        };
        assert_eq!(Error::unexpected("x").exit_code(), 1);
        assert_eq!(
            Error::Usage {
                msg: "x".into(),
                hint: "y".into()
            }
            .exit_code(),
            2
        );
        assert_eq!(Error::LoginRequired { msg: "x".into() }.exit_code(), 3);
        assert_eq!(Error::RefreshRejected(oauth()).exit_code(), 3);
        assert_eq!(Error::config("x", "y").exit_code(), 4);
        assert_eq!(Error::ClientRejected(oauth()).exit_code(), 4);
        assert_eq!(Error::unavailable("x").exit_code(), 5);
        assert_eq!(
            Error::KeyringUnavailable {
                msg: "x".into(),
                hint: "y".into()
            }
            .exit_code(),
            5
        );
        assert_eq!(
            Error::LockTimeout {
                path: "l".into(),
                waited: std::time::Duration::from_secs(1)
            }
            .exit_code(),
            6
        );
    }

    #[test]
    fn oauth_error_shows_code_and_description() {
        let e = OAuthError {
            error: "invalid_grant".into(),
            description: Some("Refresh Token has been revoked".into()),
        };
        assert_eq!(e.to_string(), "invalid_grant (Refresh Token has been revoked)");
    }
}
