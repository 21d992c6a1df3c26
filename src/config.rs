//! Settings and their precedence: flag > environment > `config.toml` profile
//! table > LightFi's production defaults.
//!
//! The client secret has no flag on purpose: argv is visible to every user
//! of the machine through `ps`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use clap::Args;

use crate::error::{Error, Result};
use crate::secret::{ClientSecret, RefreshToken};

pub const DEFAULT_OAUTH_URL: &str = "https://lightfiv2.auth.eu-west-2.amazoncognito.com/oauth2";
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:3000";
pub const DEFAULT_SCOPE: &str = "aws.cognito.signin.user.admin";
pub const DEFAULT_PROFILE: &str = "default";
/// Per token request; connecting is capped at 10 s on top (oauth.rs).
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longer than a browser login's 300 s, so a caller waits out another
/// process's login instead of failing or starting a second one.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(330);

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
    /// else the token file), keyring, or file [env: LIGHTFI_STORAGE] [default: auto]
    #[arg(long, value_enum, value_name = "WHERE")]
    pub storage: Option<Storage>,

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
            non_interactive: self.non_interactive || earlier.non_interactive,
            verbose: self.verbose || earlier.verbose,
            quiet: self.quiet || earlier.quiet,
            http_timeout: self.http_timeout.or(earlier.http_timeout),
            lock_timeout: self.lock_timeout.or(earlier.lock_timeout),
        }
    }
}

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
}

impl Storage {
    pub fn name(self) -> &'static str {
        match self {
            Storage::Auto => "auto",
            Storage::Keyring => "keyring",
            Storage::File => "file",
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
    /// `LIGHTFI_REFRESH_TOKEN`: used instead of the stored refresh token (CI).
    pub env_refresh_token: Option<RefreshToken>,
    pub http_timeout: Duration,
    pub lock_timeout: Duration,
    /// `--non-interactive` was given (terminal and `CI` checks come on top).
    pub non_interactive: bool,
    pub sources: Sources,
}

/// The OAuth client: id, secret and the server they belong to, resolved as
/// one unit so a secret is only ever sent with its own id to its own server.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: Option<ClientSecret>,
    pub endpoints: Endpoints,
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
                endpoints: Endpoints { base: oauth_url.into() },
            },
            redirect_uri: DEFAULT_REDIRECT_URI.into(),
            scope: DEFAULT_SCOPE.into(),
            token_kind: TokenKind::Access,
            // In-process tests never touch the developer's keyring.
            storage: Storage::File,
            env_refresh_token: None,
            http_timeout: Duration::from_secs(1),
            lock_timeout: Duration::from_secs(1),
            non_interactive: true,
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

/// One `[profile]` table of `config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileTable {
    oauth_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    token: Option<TokenKind>,
    storage: Option<Storage>,
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
    for name in ENV_VARS {
        if std::env::var_os(name).is_some_and(|v| v.to_str().is_none()) {
            return Err(Error::config(
                format!("the environment variable {name} is not valid UTF-8"),
                format!("set {name} to a UTF-8 value, or unset it"),
            ));
        }
    }
    resolve_with(args, |name| std::env::var(name).ok())
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
    check_profile_name(&profile)?;
    Ok(profile)
}

/// Every variable [`resolve`] reads.
const ENV_VARS: [&str; 12] = [
    "LIGHTFI_PROFILE",
    "LIGHTFI_TOKEN_HOME",
    "LIGHTFI_OAUTH_URL",
    "LIGHTFI_CLIENT_ID",
    "CLIENT_ID",
    "LIGHTFI_CLIENT_SECRET",
    "CLIENT_SECRET",
    "LIGHTFI_REDIRECT_URI",
    "LIGHTFI_SCOPE",
    "LIGHTFI_REFRESH_TOKEN",
    "LIGHTFI_TOKEN_KIND",
    "LIGHTFI_STORAGE",
];

/// The folder holding `config.toml` and the store, and where that came from.
fn home(args: &Flags, env_home: Option<String>) -> Result<(PathBuf, Source)> {
    match (args.home.clone(), env_home) {
        (Some(home), _) => Ok((home, Source::Flag("--home"))),
        (None, Some(home)) => Ok((PathBuf::from(home), Source::Env("LIGHTFI_TOKEN_HOME"))),
        (None, None) => {
            let home = dirs::config_dir().map(|d| d.join("lightfi-token")).ok_or_else(|| {
                Error::config(
                    "cannot find a configuration folder for this user",
                    "set LIGHTFI_TOKEN_HOME (or --home) to a folder for lightfi-token's settings and tokens",
                )
            })?;
            Ok((home, Source::Default))
        }
    }
}

/// The profiles `config.toml` names (its tables), in order.
pub fn profile_names(args: &Flags) -> Result<Vec<String>> {
    let env_home = std::env::var("LIGHTFI_TOKEN_HOME").ok().filter(|v| !v.is_empty());
    let (home, _) = home(args, env_home)?;
    let mut warnings = Vec::new();
    Ok(read_config(&home.join("config.toml"), &mut warnings)?
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

/// As [`resolve`], with the environment given as a lookup (so precedence is
/// unit-testable). An empty variable counts as unset. Returns the settings
/// and the warnings to print about how they were resolved.
pub fn resolve_with(args: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<(Settings, Vec<String>)> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let mut warnings = Vec::new();

    let (profile, profile_source) = layered(
        ("--profile", args.profile.clone()),
        ("LIGHTFI_PROFILE", env("LIGHTFI_PROFILE")),
        None,
        DEFAULT_PROFILE,
    );
    check_profile_name(&profile)?;

    let (home, home_source) = home(args, env("LIGHTFI_TOKEN_HOME"))?;

    let config_path = home.join("config.toml");
    let mut config = read_config(&config_path, &mut warnings)?;
    let table = config.remove(&profile);
    let table_given = table.is_some();
    let file = table.unwrap_or_default();

    // The client: id and secret from one layer (see the README's
    // "Which settings belong together").
    let env_secret = env("LIGHTFI_CLIENT_SECRET").map(ClientSecret::new);
    let legacy = (env("CLIENT_ID"), env("CLIENT_SECRET").map(ClientSecret::new));
    let (client_id, client_id_source, client_secret, secret_source) = match (
        args.client_id.clone(),
        env("LIGHTFI_CLIENT_ID"),
        file.client_id.clone(),
        legacy.0,
    ) {
        (Some(id), ..) => (
            id,
            Source::Flag("--client-id"),
            env_secret.clone(),
            Source::Env("LIGHTFI_CLIENT_SECRET"),
        ),
        (None, Some(id), ..) => (
            id,
            Source::Env("LIGHTFI_CLIENT_ID"),
            env_secret.clone(),
            Source::Env("LIGHTFI_CLIENT_SECRET"),
        ),
        (None, None, Some(id), _) => (id, Source::File, file.client_secret.clone(), Source::File),
        (None, None, None, Some(id)) => (
            id,
            Source::Env("CLIENT_ID"),
            legacy.1.clone(),
            Source::Env("CLIENT_SECRET"),
        ),
        (None, None, None, None) => {
            if profile_source != Source::Default && !table_given {
                let known: Vec<String> = config.keys().map(|k| format!("`{k}`")).collect();
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                return Err(Error::config(
                    format!(
                        "profile `{profile}` has no table in {} (profiles there: {known})",
                        config_path.display()
                    ),
                    format!(
                        "check the profile's name, or add a [{profile}] table with its client_id (or pass --client-id / LIGHTFI_CLIENT_ID)"
                    ),
                ));
            }
            return Err(Error::config(
                format!("no client id for profile `{profile}`"),
                format!(
                    "export LIGHTFI_CLIENT_ID=<id>, pass --client-id <id>, or add client_id = \"<id>\" under [{profile}] in {}",
                    config_path.display()
                ),
            ));
        }
    };
    // A secret given for another layer's client id is not used: say so.
    let unused_secret = match client_id_source {
        Source::File => env_secret.as_ref().map(|_| "LIGHTFI_CLIENT_SECRET"),
        _ => file.client_secret.as_ref().map(|_| "client_secret in config.toml"),
    };
    if let Some(unused) = unused_secret {
        warnings.push(format!(
            "{unused} is not used: the client id comes from {}, and a secret is only sent with the client id given the same way",
            client_id_source.describe(&profile)
        ));
    }

    let (oauth_url, oauth_url_source) = layered(
        ("--oauth-url", args.oauth_url.clone()),
        ("LIGHTFI_OAUTH_URL", env("LIGHTFI_OAUTH_URL")),
        file.oauth_url.clone(),
        DEFAULT_OAUTH_URL,
    );
    let oauth_url = check_oauth_url(&oauth_url)?;
    let secret_source = client_secret.as_ref().map(|_| secret_source);
    if secret_source == Some(Source::File) && matches!(oauth_url_source, Source::Flag(_) | Source::Env(_)) {
        let own = check_oauth_url(file.oauth_url.as_deref().unwrap_or(DEFAULT_OAUTH_URL))?;
        if own != oauth_url {
            let by = oauth_url_source.describe(&profile);
            return Err(Error::config(
                format!(
                    "{by} would send the client secret of config.toml [{profile}] to another OAuth server than its own"
                ),
                format!(
                    "give the client id and secret the same way as the OAuth URL (LIGHTFI_CLIENT_ID and LIGHTFI_CLIENT_SECRET), or drop {by}"
                ),
            ));
        }
    }
    let env_refresh_token = env("LIGHTFI_REFRESH_TOKEN").map(RefreshToken::new);
    if env_refresh_token.is_some() && oauth_url_source == Source::File {
        return Err(Error::config(
            format!("LIGHTFI_REFRESH_TOKEN is not sent to the oauth_url of config.toml [{profile}]"),
            "pass the OAuth URL with --oauth-url or LIGHTFI_OAUTH_URL (or use the default one) when using LIGHTFI_REFRESH_TOKEN",
        ));
    }

    let (redirect_uri, redirect_uri_source) = layered(
        ("--redirect-uri", args.redirect_uri.clone()),
        ("LIGHTFI_REDIRECT_URI", env("LIGHTFI_REDIRECT_URI")),
        file.redirect_uri.clone(),
        DEFAULT_REDIRECT_URI,
    );
    let (scope, scope_source) = layered(
        ("--scope", args.scope.clone()),
        ("LIGHTFI_SCOPE", env("LIGHTFI_SCOPE")),
        file.scope.clone(),
        DEFAULT_SCOPE,
    );

    let (token_kind, token_kind_source) = match (args.token_kind, env("LIGHTFI_TOKEN_KIND"), file.token) {
        (Some(kind), _, _) => (kind, Source::Flag("--token")),
        (None, Some(value), _) => {
            let kind = match value.to_ascii_lowercase().as_str() {
                "access" => TokenKind::Access,
                "id" => TokenKind::Id,
                _ => {
                    return Err(Error::config(
                        format!("LIGHTFI_TOKEN_KIND is `{value}`, which is not a kind of token"),
                        "set LIGHTFI_TOKEN_KIND to `access` or `id`, or unset it",
                    ));
                }
            };
            (kind, Source::Env("LIGHTFI_TOKEN_KIND"))
        }
        (None, None, Some(kind)) => (kind, Source::File),
        (None, None, None) => (TokenKind::Access, Source::Default),
    };

    let (storage, storage_source) = match (args.storage, env("LIGHTFI_STORAGE"), file.storage) {
        (Some(storage), _, _) => (storage, Source::Flag("--storage")),
        (None, Some(value), _) => {
            let storage = match value.to_ascii_lowercase().as_str() {
                "auto" => Storage::Auto,
                "keyring" => Storage::Keyring,
                "file" => Storage::File,
                _ => {
                    return Err(Error::config(
                        format!("LIGHTFI_STORAGE is `{value}`, which is not a storage"),
                        "set LIGHTFI_STORAGE to `auto`, `keyring` or `file`, or unset it",
                    ));
                }
            };
            (storage, Source::Env("LIGHTFI_STORAGE"))
        }
        (None, None, Some(storage)) => (storage, Source::File),
        (None, None, None) => (Storage::Auto, Source::Default),
    };

    // The environment overriding the profile's own table with another value.
    let overridden = [
        (
            "oauth_url",
            oauth_url_source,
            file.oauth_url.as_deref(),
            oauth_url.as_str(),
        ),
        (
            "client_id",
            client_id_source,
            file.client_id.as_deref(),
            client_id.as_str(),
        ),
        (
            "redirect_uri",
            redirect_uri_source,
            file.redirect_uri.as_deref(),
            redirect_uri.as_str(),
        ),
        ("scope", scope_source, file.scope.as_deref(), scope.as_str()),
    ];
    for (key, source, in_file, value) in overridden {
        if let (Source::Env(name), Some(in_file)) = (source, in_file)
            && in_file.trim_end_matches('/') != value
        {
            warnings.push(format!(
                "{name} overrides {key} of config.toml [{profile}], which is set to another value"
            ));
        }
    }

    let settings = Settings {
        profile,
        home,
        client: Client {
            id: client_id,
            secret: client_secret,
            endpoints: Endpoints { base: oauth_url },
        },
        redirect_uri,
        scope,
        token_kind,
        storage,
        env_refresh_token,
        http_timeout: args.http_timeout.unwrap_or(DEFAULT_HTTP_TIMEOUT),
        lock_timeout: args.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
        non_interactive: args.non_interactive,
        sources: Sources {
            profile: profile_source,
            home: home_source,
            oauth_url: oauth_url_source,
            client_id: client_id_source,
            client_secret: secret_source,
            redirect_uri: redirect_uri_source,
            scope: scope_source,
            token_kind: token_kind_source,
            storage: storage_source,
        },
    };
    Ok((settings, warnings))
}

/// Profile names become file names: keep them to a safe alphabet.
fn check_profile_name(profile: &str) -> Result<()> {
    let ok = !profile.is_empty()
        && profile.len() <= 64
        && !profile.starts_with('.')
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(
            format!("invalid profile name `{profile}`"),
            "use letters, digits, `-`, `_` and `.` (not first), at most 64 characters",
        ))
    }
}

/// The OAuth base URL must be https, except on loopback (tests, local servers):
/// the client secret and refresh token travel in its requests.
fn check_oauth_url(raw: &str) -> Result<String> {
    // The URL parser ignores trailing spaces and control characters, but not
    // once `/token` follows them (`https://idp.example /token` has no valid
    // host): drop them with the trailing slashes.
    let trimmed = raw.trim_end_matches(|c: char| c == '/' || c <= ' ');
    // A URL with `user:password@` is not echoed: the password would be printed.
    let shown = if raw.contains('@') {
        "(not shown: it has an @)"
    } else {
        raw
    };
    let bad = |why: &str| {
        Error::config(
            format!("invalid OAuth URL `{shown}`: {why}"),
            format!(
                "use the hosted UI's base URL, e.g. {DEFAULT_OAUTH_URL} (--oauth-url, LIGHTFI_OAUTH_URL or oauth_url in config.toml)"
            ),
        )
    };
    let url = url::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(trimmed.to_string()),
        "http" if is_loopback(&url) => Ok(trimmed.to_string()),
        "http" => Err(bad("plain http is allowed only for localhost")),
        _ => Err(bad("it must be an https URL")),
    }
}

pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Every table of `config.toml`; a missing file has none. A file that
/// another user could have written is refused, as ssh refuses such keys: its
/// `oauth_url` would receive the client secret and refresh token.
fn read_config(path: &Path, warnings: &mut Vec<String>) -> Result<BTreeMap<String, ProfileTable>> {
    let (text, mode) = match crate::platform::read_trusted(path) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(BTreeMap::new()),
        Err(crate::platform::Untrusted::Io(e)) => {
            return Err(Error::config(
                format!("cannot read {}: {e}", path.display()),
                "fix the file's permissions, or point LIGHTFI_TOKEN_HOME (--home) elsewhere",
            ));
        }
        Err(crate::platform::Untrusted::Because(why)) => {
            return Err(Error::config(
                format!("refusing to use {}: {why}", path.display()),
                "make the file and its folder yours and writable only by you (chmod 600 config.toml; chmod 700 its folder)",
            ));
        }
    };
    let tables: BTreeMap<String, ProfileTable> = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(", line {l}")).unwrap_or_default();
        Error::config(
            format!("malformed config file {}{at}: {}", path.display(), without_values(e.message())),
            "each profile is a table such as [default] with keys oauth_url, client_id, client_secret, redirect_uri, scope, token, storage",
        )
    })?;
    if mode & 0o044 != 0 && tables.values().any(|t| t.client_secret.is_some()) {
        warnings.push(format!(
            "{} holds a client secret and is readable by other users: run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(tables)
}

/// A TOML or serde message without the offending value: "invalid type:
/// string \"hunter2\", expected …" would print a client secret.
fn without_values(message: &str) -> String {
    let message = message.trim_end().replace("struct ProfileTable", "a [profile] table");
    for kind in ["invalid type", "invalid value", "invalid length"] {
        if message.starts_with(kind) {
            return match message.rsplit_once(", expected ") {
                Some((_, expected)) => format!("{kind}, expected {expected}"),
                None => kind.to_string(),
            };
        }
    }
    // Parse errors name what was expected and, at most, one offending character.
    message.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        flags: Flags,
    }

    fn args(extra: &[&str]) -> Flags {
        let mut argv = vec!["lightfi-token"];
        argv.extend_from_slice(extra);
        TestCli::try_parse_from(argv).unwrap().flags
    }

    fn resolved(args: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        resolve_with(args, env).map(|(settings, _)| settings)
    }

    fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    fn home_with(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        dir
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let home = home_with(
            "[default]\nclient_id = \"file\"\nscope = \"file-scope\"\nredirect_uri = \"http://localhost:4000\"\n",
        );
        let h = home.path().to_str().unwrap();
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("LIGHTFI_CLIENT_ID", "env"),
            ("LIGHTFI_SCOPE", "env-scope"),
        ];
        let s = resolved(&args(&["--client-id", "flag"]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "flag");
        assert_eq!(s.scope, "env-scope");
        assert_eq!(s.redirect_uri, "http://localhost:4000");
        assert_eq!(s.client.endpoints.base, DEFAULT_OAUTH_URL);
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "env");
    }

    #[test]
    fn seed_script_variables_are_accepted_after_lightfi_ones() {
        let home = home_with("");
        let h = home.path().to_str().unwrap();
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("CLIENT_ID", "seed"),
            ("CLIENT_SECRET", "shh"),
        ];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "seed");
        assert_eq!(s.client.secret.unwrap().expose(), "shh");
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("CLIENT_ID", "seed"),
            ("LIGHTFI_CLIENT_ID", "new"),
        ];
        assert_eq!(resolved(&args(&[]), env_of(&env)).unwrap().client.id, "new");
    }

    #[test]
    fn profile_selects_its_table() {
        let home = home_with(
            "[default]\nclient_id = \"a\"\n[staging]\nclient_id = \"b\"\noauth_url = \"https://x.example/oauth2/\"\n",
        );
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&["--profile", "staging"]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert_eq!(s.client.id, "b");
        assert_eq!(s.client.endpoints.base, "https://x.example/oauth2");
        assert_eq!(s.client.endpoints.token(), "https://x.example/oauth2/token");
    }

    #[test]
    fn missing_client_id_is_a_config_error_that_says_how() {
        let home = home_with("");
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.hint().contains("LIGHTFI_CLIENT_ID"));
    }

    #[test]
    fn malformed_config_names_file_and_line() {
        let home = home_with("[default]\nclient_id = \"a\"\nclient_secrt = \"typo\"\n");
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let msg = err.to_string();
        assert!(msg.contains("config.toml") && msg.contains("line 3"), "{msg}");
        let home = home_with("[default\n");
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn secret_from_config_file_is_redacted_in_debug() {
        let home = home_with("[default]\nclient_id = \"a\"\nclient_secret = \"hunter2\"\n");
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn trailing_spaces_go_with_the_trailing_slashes() {
        for raw in [
            "https://idp.example ",
            "https://idp.example/\n",
            "https://idp.example \t/ ",
        ] {
            assert_eq!(check_oauth_url(raw).unwrap(), "https://idp.example", "{raw:?}");
        }
        assert_eq!(
            check_oauth_url("https://idp.example/oauth2 ").unwrap(),
            "https://idp.example/oauth2"
        );
    }

    #[test]
    fn plain_http_only_for_loopback_and_bad_profiles_refused() {
        assert!(check_oauth_url("http://127.0.0.1:9/oauth2").is_ok());
        assert!(check_oauth_url("http://[::1]:9/oauth2").is_ok());
        assert!(check_oauth_url("http://evil.example/oauth2").is_err());
        assert!(check_oauth_url("not a url").is_err());
        let err = check_oauth_url("https://user:hunter2@idp.example/oauth2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(check_profile_name("../etc").is_err());
        assert!(check_profile_name("staging-2").is_ok());
    }

    #[test]
    fn config_errors_never_quote_a_value() {
        for config in [
            "client_secret = \"topsecret\"\n",
            "[default]\nclient_secret = 123456789012\n",
            "[default]\nclient_secret = topsecret\n",
            "[default]\nclient_secret = \"top\\qsecret\"\n",
            "[default]\nclient_secret = 'topsecret\n",
            "[default]\nclient_secret = \"topsecret\" trailing\n",
            "[default]\nclient_secret = [\"topsecret\"]\n",
            "default = \"topsecret\"\n",
        ] {
            let home = home_with(config);
            let h = home.path().to_str().unwrap();
            let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.exit_code(), 4, "{config}: {msg}");
            assert!(msg.contains("line "), "{config}: {msg}");
            assert!(
                !msg.contains("topsecret") && !msg.contains("1234567"),
                "{config}: {msg}"
            );
        }
    }

    fn warnings(args: &Flags, env: &[(&str, &str)]) -> Vec<String> {
        resolve_with(args, env_of(env)).unwrap().1
    }

    const STAGING: &str = "[staging]\nclient_id = \"staging-id\"\noauth_url = \"https://staging.example/oauth2\"\n";

    #[test]
    fn a_legacy_secret_never_joins_a_profile_tables_client() {
        let home = home_with(STAGING);
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("CLIENT_SECRET", "prod-secret")];
        let s = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "staging-id");
        assert!(s.client.secret.is_none());
        // Nor does CLIENT_ID replace the table's own client.
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("CLIENT_ID", "other"),
            ("CLIENT_SECRET", "x"),
        ];
        let s = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap();
        assert_eq!(
            (s.client.id.as_str(), s.sources.client_id),
            ("staging-id", Source::File)
        );
        assert!(s.client.secret.is_none());
    }

    #[test]
    fn the_secret_comes_from_the_layer_of_the_client_id() {
        let home = home_with("[default]\nclient_id = \"file-id\"\nclient_secret = \"file-secret\"\n");
        let h = home.path().to_str().unwrap();
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("LIGHTFI_CLIENT_ID", "env-id"),
            ("LIGHTFI_CLIENT_SECRET", "env-secret"),
        ];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(s.client.secret.unwrap().expose(), "env-secret");
        let s = resolved(&args(&["--client-id", "flag-id"]), env_of(&env[..2])).unwrap();
        assert!(
            s.client.secret.is_none(),
            "the table's secret is not the flag's client's"
        );
        let s = resolved(&args(&[]), env_of(&[env[0], env[2]])).unwrap();
        assert_eq!(s.client.secret.unwrap().expose(), "file-secret");
        let said = warnings(&args(&[]), &[env[0], env[2]]);
        assert!(
            said.iter().any(|w| w.contains("LIGHTFI_CLIENT_SECRET is not used")),
            "{said:?}"
        );
    }

    #[test]
    fn a_tables_secret_never_goes_to_another_server() {
        let home = home_with("[default]\nclient_id = \"id\"\nclient_secret = \"s\"\n");
        let h = home.path().to_str().unwrap();
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("LIGHTFI_OAUTH_URL", "https://evil.example/oauth2"),
        ];
        let err = resolved(&args(&[]), env_of(&env)).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(
            err.to_string().contains("LIGHTFI_OAUTH_URL") && err.to_string().contains("[default]"),
            "{err}"
        );
        let err = resolved(
            &args(&["--oauth-url", "https://evil.example/oauth2"]),
            env_of(&env[..1]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--oauth-url"), "{err}");
        // The same URL as the table's (here the default) is fine.
        let same = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_OAUTH_URL", DEFAULT_OAUTH_URL)];
        assert!(resolved(&args(&[]), env_of(&same)).is_ok());
    }

    #[test]
    fn the_ci_refresh_token_never_goes_to_a_tables_server() {
        let home = home_with(STAGING);
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_REFRESH_TOKEN", "rt")];
        let err = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(
            err.to_string().contains("LIGHTFI_REFRESH_TOKEN") && err.to_string().contains("[staging]"),
            "{err}"
        );
        // A table with only a client id and the default URL, as the README's CI example.
        let home = home_with("[default]\nclient_id = \"id\"\n");
        let env = [
            ("LIGHTFI_TOKEN_HOME", home.path().to_str().unwrap()),
            ("LIGHTFI_REFRESH_TOKEN", "rt"),
        ];
        assert!(resolved(&args(&[]), env_of(&env)).is_ok());
    }

    #[test]
    fn a_named_profile_without_a_table_lists_the_profiles() {
        let home = home_with(&format!("[default]\nclient_id = \"a\"\n{STAGING}"));
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&["--profile", "stagng"]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let msg = err.to_string();
        assert!(
            msg.contains("`stagng`") && msg.contains("`default`, `staging`"),
            "{msg}"
        );
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_PROFILE", "stagng")];
        assert_eq!(resolved(&args(&[]), env_of(&env)).unwrap_err().exit_code(), 4);
        // With a client id from the environment, any profile name works.
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_CLIENT_ID", "x")];
        assert!(resolved(&args(&["--profile", "stagng"]), env_of(&env)).is_ok());
    }

    #[test]
    fn the_environment_overriding_a_table_is_said() {
        let home = home_with(STAGING);
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_CLIENT_ID", "other")];
        let said = warnings(&args(&["--profile", "staging"]), &env);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("LIGHTFI_CLIENT_ID") && said[0].contains("client_id of config.toml [staging]"));
        // The same value, or a flag: nothing to say.
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_CLIENT_ID", "staging-id")];
        assert!(warnings(&args(&["--profile", "staging"]), &env).is_empty());
        let flags = args(&["--profile", "staging", "--client-id", "other"]);
        assert!(warnings(&flags, &env[..1]).is_empty());
    }

    #[test]
    fn sources_are_recorded() {
        let home = home_with(STAGING);
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_SCOPE", "openid")];
        let s = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap();
        assert_eq!(s.sources.profile.describe("staging"), "--profile");
        assert_eq!(s.sources.home.describe("staging"), "LIGHTFI_TOKEN_HOME");
        assert_eq!(s.sources.oauth_url.describe("staging"), "config.toml [staging]");
        assert_eq!(s.sources.scope.describe("staging"), "LIGHTFI_SCOPE");
        assert_eq!(s.sources.redirect_uri.describe("staging"), "default");
        assert_eq!(s.sources.client_secret, None);
    }

    #[test]
    fn storage_is_layered_and_checked() {
        let home = home_with("[default]\nclient_id = \"a\"\nstorage = \"file\"\n");
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert_eq!((s.storage, s.sources.storage), (Storage::File, Source::File));
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_STORAGE", "Keyring")];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(
            (s.storage, s.sources.storage),
            (Storage::Keyring, Source::Env("LIGHTFI_STORAGE"))
        );
        let s = resolved(&args(&["--storage", "auto"]), env_of(&env)).unwrap();
        assert_eq!(
            (s.storage, s.sources.storage),
            (Storage::Auto, Source::Flag("--storage"))
        );
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_STORAGE", "vault")];
        assert_eq!(resolved(&args(&[]), env_of(&env)).unwrap_err().exit_code(), 4);
        let home = home_with("[default]\nclient_id = \"a\"\nstorage = \"vault\"\n");
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let home = home_with("[default]\nclient_id = \"a\"\n");
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert_eq!((s.storage, s.sources.storage), (Storage::Auto, Source::Default));
    }

    #[cfg(unix)]
    #[test]
    fn a_config_file_others_could_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let home = home_with("[default]\nclient_id = \"a\"\n");
        let h = home.path().to_str().unwrap();
        let config = home.path().join("config.toml");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("writable by every user"), "{err}");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert!(
            err.to_string().contains("its folder is writable by every user"),
            "{err}"
        );
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_config_with_a_secret_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let home = home_with("[default]\nclient_id = \"a\"\nclient_secret = \"s\"\n");
        let h = home.path().to_str().unwrap();
        let config = home.path().join("config.toml");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let said = warnings(&args(&[]), &[("LIGHTFI_TOKEN_HOME", h)]);
        assert!(said.iter().any(|w| w.contains("chmod 600")), "{said:?}");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(warnings(&args(&[]), &[("LIGHTFI_TOKEN_HOME", h)]).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_the_config_does_not_block() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("config.toml");
        let status = std::process::Command::new("mkfifo").arg(&config).status().unwrap();
        assert!(status.success());
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
