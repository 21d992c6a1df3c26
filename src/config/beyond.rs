//! Settings for use beyond one person's machine: the client-credentials
//! grant and the token file another program keeps fresh.

use std::path::PathBuf;

use super::Layers;

/// How the profile gets its tokens.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// A person's browser login, then refreshes (RFC 6749 §4.1, §6).
    #[default]
    #[value(name = "authorization_code")]
    AuthorizationCode,
    /// The app client's own id and secret, for machines (RFC 6749 §4.4):
    /// no browser, no refresh token.
    #[value(name = "client_credentials")]
    ClientCredentials,
}

impl Grant {
    pub fn name(self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "authorization_code",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

/// `--token-file`, `LIGHTFI_TOKEN_FILE`, else the table's `token_file`.
pub(super) fn token_file(layers: &Layers) -> Option<PathBuf> {
    layers
        .args
        .token_file
        .clone()
        .or_else(|| (layers.env)("LIGHTFI_TOKEN_FILE").map(PathBuf::from))
        .or_else(|| layers.file.token_file.clone())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{DEFAULT_SCOPE, Source};
    use super::*;

    #[test]
    fn machine_credentials_send_no_default_scope_and_ignore_a_refresh_token() {
        let home = home_with("[default]\nclient_id = \"m\"\ngrant = \"client_credentials\"\n");
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_REFRESH_TOKEN", "rt")];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!((s.grant, s.sources.grant), (Grant::ClientCredentials, Source::File));
        assert_eq!(s.scope, "");
        assert!(s.env_refresh_token.is_none());
        let s = resolved(&args(&["--grant", "authorization_code"]), env_of(&env)).unwrap();
        assert_eq!((s.grant, s.scope.as_str()), (Grant::AuthorizationCode, DEFAULT_SCOPE));
    }

    #[test]
    fn a_token_file_needs_no_client() {
        let home = home_with("");
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_TOKEN_FILE", "/run/token")];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(s.token_file.as_deref(), Some(std::path::Path::new("/run/token")));
        let s = resolved(&args(&["--token-file", "/other"]), env_of(&env)).unwrap();
        assert_eq!(s.token_file.as_deref(), Some(std::path::Path::new("/other")));
    }
}
