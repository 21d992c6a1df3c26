//! The flag layer: the options every command takes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Grant, Storage, TokenKind};

// Options every command takes, before or after its name: the flag layer of
// the settings. Each subcommand flattens its own copy instead of using
// clap's `global = true`, which clones every such option into every
// subcommand on each run; with `defer`, only the subcommand actually named
// is built at all. (A plain comment: clap would show a doc comment as the
// help text of every subcommand.)
#[derive(Debug, Default, Clone, Args)]
pub struct Flags {
    /// Profile: a table in config.toml and its own token store [env: LIGHTFI_PROFILE] [default: default]
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,

    /// Folder holding config.toml and the token store [env: LIGHTFI_TOKEN_HOME]
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// OAuth base URL; /authorize, /token and /revoke are below it [env: LIGHTFI_OAUTH_URL]
    #[arg(long, value_name = "URL")]
    pub oauth_url: Option<String>,

    /// OAuth client id of the Cognito app client [env: LIGHTFI_CLIENT_ID or CLIENT_ID]
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// Redirect URI registered for the app client, e.g. http://localhost:3000 [env: LIGHTFI_REDIRECT_URI]
    #[arg(long, value_name = "URI")]
    pub redirect_uri: Option<String>,

    /// Scopes to request, space-separated [env: LIGHTFI_SCOPE]
    #[arg(long, value_name = "SCOPES")]
    pub scope: Option<String>,

    /// Never start a browser login; exit 3 when one would be needed.
    /// Implied when neither stdin nor stderr is a terminal, or CI is set.
    #[arg(long)]
    pub non_interactive: bool,

    /// Show each HTTP exchange and lock step on stderr, secrets left out [env: LIGHTFI_LOG=debug]
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,

    /// No warnings or progress on stderr; errors only
    #[arg(short, long)]
    pub quiet: bool,

    /// Which token to hand out: access, or id (the OpenID Connect ID token;
    /// needs the openid scope) [env: LIGHTFI_TOKEN_KIND] [default: access]
    #[arg(long = "token", value_enum, value_name = "KIND")]
    pub token_kind: Option<TokenKind>,

    /// Where to keep the refresh token: auto (the OS keyring when one answers,
    /// else the token file), keyring, file, or vault (a Vault/OpenBao secret
    /// shared by a fleet, at vault_path) [env: LIGHTFI_STORAGE] [default: auto]
    #[arg(long, value_enum, value_name = "WHERE")]
    pub storage: Option<Storage>,

    /// How to get tokens: authorization_code (a person's login) or
    /// client_credentials (the app client's own) [env: LIGHTFI_GRANT] [default: authorization_code]
    #[arg(long, value_enum, value_name = "GRANT")]
    pub grant: Option<Grant>,

    /// Serve the access token another program keeps fresh in this file
    /// (raw, or JSON with access_token and expires_at or expires_in) [env: LIGHTFI_TOKEN_FILE]
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Seconds to wait for the token endpoint per request (connecting: at most 10) [default: 30]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub http_timeout: Option<Duration>,

    /// Seconds to wait for another lightfi-token process using the same profile
    /// (the default outlasts a browser login started by that process) [default: 330]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub lock_timeout: Option<Duration>,
}

impl Flags {
    /// These options, completed by `earlier` where not given.
    pub fn or(self, earlier: Flags) -> Flags {
        Flags {
            profile: self.profile.or(earlier.profile),
            home: self.home.or(earlier.home),
            oauth_url: self.oauth_url.or(earlier.oauth_url),
            client_id: self.client_id.or(earlier.client_id),
            redirect_uri: self.redirect_uri.or(earlier.redirect_uri),
            scope: self.scope.or(earlier.scope),
            token_kind: self.token_kind.or(earlier.token_kind),
            storage: self.storage.or(earlier.storage),
            grant: self.grant.or(earlier.grant),
            token_file: self.token_file.or(earlier.token_file),
            non_interactive: self.non_interactive || earlier.non_interactive,
            verbose: self.verbose || earlier.verbose,
            quiet: self.quiet || earlier.quiet,
            http_timeout: self.http_timeout.or(earlier.http_timeout),
            lock_timeout: self.lock_timeout.or(earlier.lock_timeout),
        }
    }
}

/// Seconds, fractions allowed, from 0 to a day (larger values would
/// overflow deadlines and are never meant).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    const MAX: f64 = 86_400.0;
    let secs: f64 = s.parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.0..=MAX).contains(&secs) {
        return Err(format!("`{s}` is not a number of seconds from 0 to {MAX}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a number of seconds"))
}
