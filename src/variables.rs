//! The environment variables the settings are read from, each listed once
//! with whether it holds a secret: the settings check every one of them, and
//! no child process inherits a secret one.

/// One variable the settings read.
pub struct Variable {
    pub name: &'static str,
    /// It can mint tokens (a client secret, a refresh token).
    pub secret: bool,
}

const fn var(name: &'static str, secret: bool) -> Variable {
    Variable { name, secret }
}

/// Every variable `config::resolve` reads.
pub const VARIABLES: [Variable; 14] = [
    var("LIGHTFI_PROFILE", false),
    var("LIGHTFI_TOKEN_HOME", false),
    var("LIGHTFI_OAUTH_URL", false),
    var("LIGHTFI_CLIENT_ID", false),
    var("CLIENT_ID", false),
    var("LIGHTFI_CLIENT_SECRET", true),
    var("CLIENT_SECRET", true),
    var("LIGHTFI_REDIRECT_URI", false),
    var("LIGHTFI_SCOPE", false),
    var("LIGHTFI_REFRESH_TOKEN", true),
    var("LIGHTFI_TOKEN_KIND", false),
    var("LIGHTFI_STORAGE", false),
    var("LIGHTFI_GRANT", false),
    var("LIGHTFI_TOKEN_FILE", false),
];

/// The names of all of them.
pub fn all() -> impl Iterator<Item = &'static str> {
    VARIABLES.iter().map(|v| v.name)
}

/// The names of those holding a secret.
pub fn secrets() -> impl Iterator<Item = &'static str> {
    VARIABLES.iter().filter(|v| v.secret).map(|v| v.name)
}
