//! Settings and their precedence: flag > environment > `config.toml` profile
//! table > LightFi's production defaults.
//!
//! The client secret has no flag on purpose: argv is visible to every user
//! of the machine through `ps`.
//!
//! [`flags`] is the flag layer, [`file`] the trusted reading of `config.toml`,
//! [`client`] the client id, secret and URL resolved as one unit, [`layers`]
//! puts them together; [`checks`] holds the checks of URLs and profile names.

mod beyond;
mod checks;
mod client;
mod file;
mod flags;
mod layers;
mod vault;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::{ClientSecret, RefreshToken};

pub use beyond::Grant;
pub use checks::is_loopback;
pub use flags::{Flags, parse_secs};
pub use layers::resolve_with;
pub use vault::{VaultAt, VaultTokenFrom};

pub const DEFAULT_OAUTH_URL: &str = "https://lightfiv2.auth.eu-west-2.amazoncognito.com/oauth2";
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:3000";
pub const DEFAULT_SCOPE: &str = "aws.cognito.signin.user.admin";
pub const DEFAULT_PROFILE: &str = "default";
/// Cognito's default refresh-token expiration for an app client.
pub const DEFAULT_REFRESH_TOKEN_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// Per token request; connecting is capped at 10 s on top (oauth/http.rs).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longer than a browser login's 300 s, so a caller waits out another
/// process's login instead of failing or starting a second one.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(330);
/// The LightFi API's URL: the git server `setup git` sets the helper up for
/// unless `--host` names another.
pub const DEFAULT_GIT_HOST: &str = "https://api.lightfi.example";

/// Which token a command hands out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// The OAuth access token (what most APIs take).
    #[default]
    Access,
    /// The OpenID Connect ID token (what Cognito API Gateway authorizers take
    /// unless the method lists OAuth scopes).
    Id,
}

impl TokenKind {
    pub fn name(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Id => "id",
        }
    }
}

/// Where the refresh token is kept (the access token is always in the token file).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// The OS keyring when one answers, else the token file (said once).
    #[default]
    Auto,
    /// The OS keyring only: a new login that cannot be stored there fails.
    Keyring,
    /// The token file (0600, plaintext).
    File,
    /// A KV version 2 secret on HashiCorp Vault or OpenBao (`vault_path`),
    /// shared by a fleet; each machine caches only the access token.
    Vault,
}

impl Storage {
    pub fn name(self) -> &'static str {
        match self {
            Storage::Auto => "auto",
            Storage::Keyring => "keyring",
            Storage::File => "file",
            Storage::Vault => "vault",
        }
    }
}

/// Everything a command needs to know, resolved once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: String,
    pub home: PathBuf,
    /// Who we are to the authorization server, and where it is.
    pub client: Client,
    pub redirect_uri: String,
    pub scope: String,
    /// Which token `get`, `exec`, `git-credential` and `serve` hand out.
    pub token_kind: TokenKind,
    /// Where the refresh token is kept.
    pub storage: Storage,
    /// Where the shared login is, when `storage` is `vault`.
    pub vault: Option<VaultAt>,
    /// `LIGHTFI_REFRESH_TOKEN`: used instead of the stored refresh token (CI).
    pub env_refresh_token: Option<RefreshToken>,
    pub http_timeout: Duration,
    pub lock_timeout: Duration,
    /// The app client's refresh-token validity: a login ends this long after it.
    pub refresh_token_validity: Duration,
    /// `--non-interactive` was given (terminal and `CI` checks come on top).
    pub non_interactive: bool,
    /// How tokens are obtained: a person's login, or the client's own credentials.
    pub grant: Grant,
    /// `token_file`: serve the token another program keeps fresh there;
    /// no client, server or store is used then.
    pub token_file: Option<PathBuf>,
    pub sources: Sources,
}

/// The OAuth client: id, secret and the server they belong to, resolved as
/// one unit so a secret is only ever sent with its own id to its own server.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: Option<ClientSecret>,
    /// The secrets after the first of `client_secrets` (a rotation under
    /// way), tried in turn when the server refuses the one before.
    pub spare_secrets: Vec<ClientSecret>,
    pub endpoints: Endpoints,
}

impl Client {
    /// This client with each of its secrets in turn: itself first, then one
    /// per spare secret. One client when there is no rotation.
    pub fn with_each_secret(&self) -> Vec<Client> {
        let each = std::iter::once(self.secret.clone()).chain(self.spare_secrets.iter().cloned().map(Some));
        each.map(|secret| Client {
            secret,
            spare_secrets: vec![],
            ..self.clone()
        })
        .collect()
    }
}

/// The authorization server's endpoints, below one base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Without a trailing slash.
    pub base: String,
}

impl Settings {
    /// Settings for in-process tests and the fuzz checks: profile `default`
    /// in `home`, client `client` without a secret at `oauth_url`, no terminal.
    #[doc(hidden)]
    pub fn for_tests(home: &Path, oauth_url: &str) -> Settings {
        Settings {
            profile: DEFAULT_PROFILE.into(),
            home: home.to_path_buf(),
            client: Client {
                id: "client".into(),
                secret: None,
                spare_secrets: vec![],
                endpoints: Endpoints { base: oauth_url.into() },
            },
            redirect_uri: DEFAULT_REDIRECT_URI.into(),
            scope: DEFAULT_SCOPE.into(),
            token_kind: TokenKind::Access,
            // In-process tests never touch the developer's keyring.
            storage: Storage::File,
            vault: None,
            env_refresh_token: None,
            http_timeout: Duration::from_secs(1),
            lock_timeout: Duration::from_secs(1),
            refresh_token_validity: DEFAULT_REFRESH_TOKEN_VALIDITY,
            non_interactive: true,
            grant: Grant::AuthorizationCode,
            token_file: None,
            sources: Sources {
                profile: Source::Default,
                home: Source::Flag("--home"),
                oauth_url: Source::Flag("--oauth-url"),
                client_id: Source::Flag("--client-id"),
                client_secret: None,
                redirect_uri: Source::Default,
                scope: Source::Default,
                token_kind: Source::Default,
                storage: Source::Default,
                grant: Source::Default,
            },
        }
    }
}

impl Endpoints {
    pub fn authorize(&self) -> String {
        format!("{}/authorize", self.base)
    }
    pub fn token(&self) -> String {
        format!("{}/token", self.base)
    }
    pub fn revoke(&self) -> String {
        format!("{}/revoke", self.base)
    }
}

/// How much to say on stderr: `-q`, `-v`, else `LIGHTFI_LOG=debug`.
pub fn level(args: &Flags) -> crate::report::Level {
    use crate::report::Level;
    if args.quiet {
        Level::Quiet
    } else if args.verbose || std::env::var("LIGHTFI_LOG").is_ok_and(|v| v.eq_ignore_ascii_case("debug")) {
        Level::Verbose
    } else {
        Level::Normal
    }
}

/// Resolve settings from the command line, the process environment and the config file.
pub fn resolve(args: &Flags) -> Result<Settings> {
    let (settings, warnings) = resolve_quietly(args)?;
    for warning in &warnings {
        crate::report::warn(warning);
    }
    Ok(settings)
}

/// As [`resolve`], returning the warnings instead of printing them (`doctor`
/// reports them as its own findings).
pub fn resolve_quietly(args: &Flags) -> Result<(Settings, Vec<String>)> {
    // A variable that is set but not UTF-8 must not silently fall back to the
    // default: an unreadable LIGHTFI_TOKEN_HOME would mean the real store.
    for name in crate::variables::all() {
        if std::env::var_os(name).is_some_and(|v| v.to_str().is_none()) {
            return Err(Error::config(
                format!("the environment variable {name} is not valid UTF-8"),
                format!("set {name} to a UTF-8 value, or unset it"),
            ));
        }
    }
    layers::resolve_with(args, |name| std::env::var(name).ok())
}

/// The profile named by `--profile` or `LIGHTFI_PROFILE`, else `default`,
/// checked like [`resolve`] checks it, without reading anything else: for
/// commands that only pass the profile on (`setup`).
pub fn profile(args: &Flags) -> Result<String> {
    let env = std::env::var("LIGHTFI_PROFILE").ok().filter(|v| !v.is_empty());
    let profile = args
        .profile
        .clone()
        .or(env)
        .unwrap_or_else(|| DEFAULT_PROFILE.to_string());
    checks::check_profile_name(&profile)?;
    Ok(profile)
}

/// The folder holding `config.toml` and the store: `--home`, else
/// `LIGHTFI_TOKEN_HOME`, else the platform's configuration folder.
pub fn home(args: &Flags) -> Result<PathBuf> {
    let env_home = std::env::var("LIGHTFI_TOKEN_HOME").ok().filter(|v| !v.is_empty());
    Ok(layers::home(args, env_home)?.0)
}

/// The profiles `config.toml` names (its tables), in order.
pub fn profile_names(args: &Flags) -> Result<Vec<String>> {
    let home = home(args)?;
    let mut warnings = Vec::new();
    Ok(file::read_config(&home.join("config.toml"), &mut warnings)?
        .into_keys()
        .collect())
}

/// Where a setting's value came from, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    /// The selected profile's table in `config.toml`.
    File,
    Default,
}

impl Source {
    /// `--client-id`, `LIGHTFI_CLIENT_ID`, `config.toml [staging]`, `default`.
    pub fn describe(self, profile: &str) -> String {
        match self {
            Source::Flag(flag) => flag.to_string(),
            Source::Env(name) => name.to_string(),
            Source::File => format!("config.toml [{profile}]"),
            Source::Default => "default".to_string(),
        }
    }
}

/// Where each setting of [`Settings`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sources {
    pub profile: Source,
    pub home: Source,
    pub oauth_url: Source,
    pub client_id: Source,
    /// None when there is no client secret.
    pub client_secret: Option<Source>,
    pub redirect_uri: Source,
    pub scope: Source,
    pub token_kind: Source,
    pub storage: Source,
    pub grant: Source,
}

/// A value and where it came from: the first of flag, environment, file
/// that has one, else the default.
fn layered(
    flag: (&'static str, Option<String>),
    env: (&'static str, Option<String>),
    file: Option<String>,
    default: &str,
) -> (String, Source) {
    match (flag.1, env.1, file) {
        (Some(v), _, _) => (v, Source::Flag(flag.0)),
        (None, Some(v), _) => (v, Source::Env(env.0)),
        (None, None, Some(v)) => (v, Source::File),
        (None, None, None) => (default.to_string(), Source::Default),
    }
}

/// What a setting is read from before its default: the flags, the
/// environment (an empty variable counts as unset) and the profile's table.
struct Layers<'a> {
    args: &'a Flags,
    env: &'a dyn Fn(&str) -> Option<String>,
    profile: &'a str,
    file: &'a file::ProfileTable,
}

/// Helpers for the unit tests of this folder: flags as parsed from argv, a
/// home with a given `config.toml`, an environment given as pairs.
#[cfg(test)]
mod test_support {
    use clap::Parser;

    use super::{Flags, Settings, layers::resolve_with};
    use crate::error::Result;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        flags: Flags,
    }

    pub fn args(extra: &[&str]) -> Flags {
        let mut argv = vec!["lightfi-token"];
        argv.extend_from_slice(extra);
        TestCli::try_parse_from(argv).unwrap().flags
    }

    pub fn resolved(args: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        resolve_with(args, env).map(|(settings, _)| settings)
    }

    pub fn warnings(args: &Flags, env: &[(&str, &str)]) -> Vec<String> {
        resolve_with(args, env_of(env)).unwrap().1
    }

    pub fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    pub fn home_with(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        dir
    }

    pub const STAGING: &str = "[staging]\nclient_id = \"staging-id\"\noauth_url = \"https://staging.example/oauth2\"\n";
}
