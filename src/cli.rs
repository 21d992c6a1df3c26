//! The command line: clap derive types. Doc comments here are the `--help` text.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Print a valid LightFi API access token: from the cache, refreshed, or after
/// a browser login.
///
/// Without a command, does `get`. Settings come from flags, then LIGHTFI_*
/// environment variables, then the profile's table in config.toml, then the
/// LightFi defaults. The client secret is read only from LIGHTFI_CLIENT_SECRET
/// (or CLIENT_SECRET) and config.toml, never from the command line.
#[derive(Debug, Parser)]
#[command(name = "lightfi-token", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub get: GetArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Profile: a table in config.toml and its own token store [env: LIGHTFI_PROFILE] [default: default]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Folder holding config.toml and the token store [env: LIGHTFI_TOKEN_HOME]
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// OAuth base URL; /authorize, /token and /revoke are below it [env: LIGHTFI_OAUTH_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub oauth_url: Option<String>,

    /// OAuth client id of the Cognito app client [env: LIGHTFI_CLIENT_ID or CLIENT_ID]
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,

    /// Redirect URI registered for the app client, e.g. http://localhost:3000 [env: LIGHTFI_REDIRECT_URI]
    #[arg(long, global = true, value_name = "URI")]
    pub redirect_uri: Option<String>,

    /// Scopes to request, space-separated [env: LIGHTFI_SCOPE]
    #[arg(long, global = true, value_name = "SCOPES")]
    pub scope: Option<String>,

    /// Never start a browser login; exit 3 when one would be needed.
    /// Implied when neither stdin nor stderr is a terminal, or CI is set.
    #[arg(long, global = true)]
    pub non_interactive: bool,

    /// Seconds to wait for the token endpoint per request (connecting: at most 10)
    #[arg(long, global = true, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    pub http_timeout: Duration,

    /// Seconds to wait for another lightfi-token process using the same profile
    /// (the default outlasts a browser login started by that process)
    #[arg(long, global = true, value_name = "SECS", default_value = "330", value_parser = parse_secs)]
    pub lock_timeout: Duration,
}

#[derive(Debug, Args, Clone)]
pub struct GetArgs {
    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Json)]
    pub format: Format,

    /// Print the bare token (same as --format raw)
    #[arg(short = 'r', long = "raw", conflicts_with = "format")]
    pub raw: bool,

    /// Refresh when fewer than this many seconds of validity are left
    /// (capped at half the token's lifetime)
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub min_valid: u64,

    /// Refresh now, even when the cached token is still valid
    #[arg(long)]
    pub force_refresh: bool,
}

impl GetArgs {
    pub fn format(&self) -> Format {
        if self.raw { Format::Raw } else { self.format }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// {"access_token":…,"token_type":"Bearer","expires_at":…,"expires_in":…}
    Json,
    /// The bare token and a newline
    Raw,
    /// `Authorization: Bearer <token>`, for `curl -H @-`
    Header,
    /// A Kubernetes ExecCredential (client.authentication.k8s.io/v1 or v1beta1)
    ExecCredential,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a valid access token (the default command)
    Get(GetArgs),

    /// Log in now in the browser, or import a refresh token
    Login(LoginArgs),

    /// Revoke the refresh token at the server and delete the stored tokens
    Logout {
        /// Delete the stored tokens without asking the server to revoke them
        #[arg(long)]
        no_revoke: bool,
    },

    /// Show the profile, where its tokens are stored and when they expire (never a token)
    Status {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },

    /// git credential helper: `git config credential.https://HOST.helper '!lightfi-token git-credential'`
    GitCredential {
        /// get, store, erase or capability (sent by git); others are ignored
        action: String,
    },

    /// Run a command with LIGHTFI_ACCESS_TOKEN and LIGHTFI_TOKEN_EXPIRES_AT set
    Exec {
        /// The command and its arguments, after `--`
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<OsString>,
    },

    /// Serve GET /token on loopback for Postman, Insomnia and REST clients
    Serve {
        /// Port on 127.0.0.1 and ::1
        #[arg(long, default_value_t = 8787)]
        port: u16,

        /// Print the X-Lightfi-Key value and exit
        #[arg(long)]
        show_key: bool,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Do not open a browser: print the URL, and accept the redirected URL pasted on stdin
    #[arg(long)]
    pub no_browser: bool,

    /// Import a refresh token read from stdin instead of logging in
    #[arg(long, conflicts_with = "no_browser")]
    pub refresh_token_stdin: bool,

    /// Seconds to wait for the browser login to finish
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = parse_secs)]
    pub timeout: Duration,
}

/// Seconds, fractions allowed, from 0 to a day (larger values would
/// overflow deadlines and are never meant).
fn parse_secs(s: &str) -> Result<Duration, String> {
    const MAX: f64 = 86_400.0;
    let secs: f64 = s.parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.0..=MAX).contains(&secs) {
        return Err(format!("`{s}` is not a number of seconds from 0 to {MAX}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bare_invocation_is_get_with_json() {
        let cli = Cli::try_parse_from(["lightfi-token"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.get.format(), Format::Json);
        assert_eq!(cli.get.min_valid, 300);
    }

    #[test]
    fn dash_r_means_raw_and_globals_follow_subcommands() {
        let cli = Cli::try_parse_from(["lightfi-token", "-r"]).unwrap();
        assert_eq!(cli.get.format(), Format::Raw);
        let cli = Cli::try_parse_from(["lightfi-token", "status", "--profile", "x", "--lock-timeout", "0.5"]).unwrap();
        assert_eq!(cli.global.profile.as_deref(), Some("x"));
        assert_eq!(cli.global.lock_timeout, Duration::from_millis(500));
    }

    #[test]
    fn bad_numbers_are_usage_errors() {
        assert!(Cli::try_parse_from(["lightfi-token", "--http-timeout", "-1"]).is_err());
        assert!(Cli::try_parse_from(["lightfi-token", "login", "--timeout", "1e19"]).is_err());
        assert!(Cli::try_parse_from(["lightfi-token", "--lock-timeout", "NaN"]).is_err());
        assert!(Cli::try_parse_from(["lightfi-token", "--min-valid", "soon"]).is_err());
    }
}
