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
