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
#[derive(Debug, Default, Args)]
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
            non_interactive: self.non_interactive || earlier.non_interactive,
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

/// Everything a command needs to know, resolved once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub profile: String,
    pub home: PathBuf,
    /// Who we are to the authorization server, and where it is.
    pub client: Client,
    pub redirect_uri: String,
    pub scope: String,
    /// `LIGHTFI_REFRESH_TOKEN`: used instead of the stored refresh token (CI).
    pub env_refresh_token: Option<RefreshToken>,
    pub http_timeout: Duration,
    pub lock_timeout: Duration,
    /// `--non-interactive` was given (terminal and `CI` checks come on top).
    pub non_interactive: bool,
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
    /// Settings for in-process tests: profile `default` in `home`, client
    /// `client` without a secret at `oauth_url`, no terminal.
    #[cfg(test)]
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
            env_refresh_token: None,
            http_timeout: Duration::from_secs(1),
            lock_timeout: Duration::from_secs(1),
            non_interactive: true,
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
}

/// Resolve settings from the command line, the process environment and the config file.
pub fn resolve(args: &Flags) -> Result<Settings> {
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

/// Every variable [`resolve`] reads.
const ENV_VARS: [&str; 10] = [
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
];

/// As [`resolve`], with the environment given as a lookup (so precedence is unit-testable).
/// An empty variable counts as unset.
pub fn resolve_with(args: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());

    let profile = args
        .profile
        .clone()
        .or_else(|| env("LIGHTFI_PROFILE"))
        .unwrap_or_else(|| DEFAULT_PROFILE.into());
    check_profile_name(&profile)?;

    let home = match args
        .home
        .clone()
        .or_else(|| env("LIGHTFI_TOKEN_HOME").map(PathBuf::from))
    {
        Some(home) => home,
        None => dirs::config_dir().map(|d| d.join("lightfi-token")).ok_or_else(|| {
            Error::config(
                "cannot find a configuration folder for this user",
                "set LIGHTFI_TOKEN_HOME (or --home) to a folder for lightfi-token's settings and tokens",
            )
        })?,
    };

    let file = read_profile_table(&home.join("config.toml"), &profile)?;

    let oauth_url = args
        .oauth_url
        .clone()
        .or_else(|| env("LIGHTFI_OAUTH_URL"))
        .or(file.oauth_url)
        .unwrap_or_else(|| DEFAULT_OAUTH_URL.into());
    let oauth_url = check_oauth_url(&oauth_url)?;

    let client_id = args
        .client_id
        .clone()
        .or_else(|| env("LIGHTFI_CLIENT_ID"))
        .or_else(|| env("CLIENT_ID"))
        .or(file.client_id)
        .ok_or_else(|| {
            Error::config(
                format!("no client id for profile `{profile}`"),
                format!(
                    "export LIGHTFI_CLIENT_ID=<id>, pass --client-id <id>, or add client_id = \"<id>\" under [{profile}] in {}",
                    home.join("config.toml").display()
                ),
            )
        })?;

    let client_secret = env("LIGHTFI_CLIENT_SECRET")
        .or_else(|| env("CLIENT_SECRET"))
        .map(ClientSecret::new)
        .or(file.client_secret);

    let redirect_uri = args
        .redirect_uri
        .clone()
        .or_else(|| env("LIGHTFI_REDIRECT_URI"))
        .or(file.redirect_uri)
        .unwrap_or_else(|| DEFAULT_REDIRECT_URI.into());

    let scope = args
        .scope
        .clone()
        .or_else(|| env("LIGHTFI_SCOPE"))
        .or(file.scope)
        .unwrap_or_else(|| DEFAULT_SCOPE.into());

    Ok(Settings {
        profile,
        home,
        client: Client {
            id: client_id,
            secret: client_secret,
            endpoints: Endpoints { base: oauth_url },
        },
        redirect_uri,
        scope,
        env_refresh_token: env("LIGHTFI_REFRESH_TOKEN").map(RefreshToken::new),
        http_timeout: args.http_timeout.unwrap_or(DEFAULT_HTTP_TIMEOUT),
        lock_timeout: args.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
        non_interactive: args.non_interactive,
    })
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
    let trimmed = raw.trim_end_matches('/');
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

/// Read the profile's table from `config.toml`; a missing file or table is empty.
fn read_profile_table(path: &Path, profile: &str) -> Result<ProfileTable> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProfileTable::default()),
        Err(e) => {
            return Err(Error::config(
                format!("cannot read {}: {e}", path.display()),
                "fix the file's permissions, or point LIGHTFI_TOKEN_HOME (--home) elsewhere",
            ));
        }
    };
    let mut tables: BTreeMap<String, ProfileTable> = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(", line {l}")).unwrap_or_default();
        Error::config(
            format!("malformed config file {}{at}: {}", path.display(), without_values(e.message())),
            "each profile is a table such as [default] with keys oauth_url, client_id, client_secret, redirect_uri, scope",
        )
    })?;
    Ok(tables.remove(profile).unwrap_or_default())
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
        let s = resolve_with(&args(&["--client-id", "flag"]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "flag");
        assert_eq!(s.scope, "env-scope");
        assert_eq!(s.redirect_uri, "http://localhost:4000");
        assert_eq!(s.client.endpoints.base, DEFAULT_OAUTH_URL);
        let s = resolve_with(&args(&[]), env_of(&env)).unwrap();
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
        let s = resolve_with(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "seed");
        assert_eq!(s.client.secret.unwrap().expose(), "shh");
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("CLIENT_ID", "seed"),
            ("LIGHTFI_CLIENT_ID", "new"),
        ];
        assert_eq!(resolve_with(&args(&[]), env_of(&env)).unwrap().client.id, "new");
    }

    #[test]
    fn profile_selects_its_table() {
        let home = home_with(
            "[default]\nclient_id = \"a\"\n[staging]\nclient_id = \"b\"\noauth_url = \"https://x.example/oauth2/\"\n",
        );
        let h = home.path().to_str().unwrap();
        let s = resolve_with(&args(&["--profile", "staging"]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert_eq!(s.client.id, "b");
        assert_eq!(s.client.endpoints.base, "https://x.example/oauth2");
        assert_eq!(s.client.endpoints.token(), "https://x.example/oauth2/token");
    }

    #[test]
    fn missing_client_id_is_a_config_error_that_says_how() {
        let home = home_with("");
        let h = home.path().to_str().unwrap();
        let err = resolve_with(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.hint().contains("LIGHTFI_CLIENT_ID"));
    }

    #[test]
    fn malformed_config_names_file_and_line() {
        let home = home_with("[default]\nclient_id = \"a\"\nclient_secrt = \"typo\"\n");
        let h = home.path().to_str().unwrap();
        let err = resolve_with(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let msg = err.to_string();
        assert!(msg.contains("config.toml") && msg.contains("line 3"), "{msg}");
        let home = home_with("[default\n");
        let h = home.path().to_str().unwrap();
        let err = resolve_with(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn secret_from_config_file_is_redacted_in_debug() {
        let home = home_with("[default]\nclient_id = \"a\"\nclient_secret = \"hunter2\"\n");
        let h = home.path().to_str().unwrap();
        let s = resolve_with(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
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
            let err = resolve_with(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.exit_code(), 4, "{config}: {msg}");
            assert!(msg.contains("line "), "{config}: {msg}");
            assert!(
                !msg.contains("topsecret") && !msg.contains("1234567"),
                "{config}: {msg}"
            );
        }
    }
}
