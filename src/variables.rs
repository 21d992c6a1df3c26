//! The environment variables the settings are read from, each listed once
//! with whether it holds a secret: the settings check every one of them, and
//! no child process inherits a secret one.

/// One variable the settings read.
pub struct Variable {
    pub name: &'static str,
    /// It can mint tokens (a client secret, a refresh token).
    pub secret: bool,
    /// It is a secret only to a profile with `storage = "vault"` (the Vault
    /// token): other profiles leave it to the programs they start.
    pub vault_secret: bool,
}

const fn var(name: &'static str, secret: bool) -> Variable {
    Variable {
        name,
        secret,
        vault_secret: false,
    }
}

/// Every variable `config::resolve` reads.
pub const VARIABLES: [Variable; 19] = [
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
    var("LIGHTFI_VAULT_PATH", false),
    var("VAULT_ADDR", false),
    var("VAULT_NAMESPACE", false),
    var("VAULT_CACERT", false),
    Variable {
        name: "VAULT_TOKEN",
        secret: false,
        vault_secret: true,
    },
];

/// The names of all of them.
pub fn all() -> impl Iterator<Item = &'static str> {
    VARIABLES.iter().map(|v| v.name)
}

/// The names of those holding a secret for a vault-stored profile only.
pub fn vault_secrets() -> impl Iterator<Item = &'static str> {
    VARIABLES.iter().filter(|v| v.vault_secret).map(|v| v.name)
}

/// The names of those holding a secret.
pub fn secrets() -> impl Iterator<Item = &'static str> {
    VARIABLES.iter().filter(|v| v.secret).map(|v| v.name)
}
