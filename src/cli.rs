//! The command line: clap derive types. Doc comments here are the `--help` text.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{Flags, parse_secs};
use crate::output::Format;
use crate::token::DEFAULT_MIN_VALID;

/// What `--version` says: the version, the target triple and the build
/// profile, e.g. `0.1.0 (x86_64-unknown-linux-gnu, release)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("LIGHTFI_TOKEN_TARGET"),
    ", ",
    env!("LIGHTFI_TOKEN_PROFILE"),
    ")"
);

/// Print a valid LightFi API access token: from the cache, refreshed, or after
/// a browser login.
///
/// Without a command, does `get`. Settings come from flags, then LIGHTFI_*
/// environment variables, then the profile's table in config.toml, then the
/// LightFi defaults. The client secret is read only from LIGHTFI_CLIENT_SECRET
/// (or CLIENT_SECRET) and config.toml, never from the command line.
#[derive(Debug, Parser)]
#[command(name = "lightfi-token", version = VERSION)]
pub struct Cli {
    #[command(flatten)]
    global: Flags,

    #[command(flatten)]
    get: GetArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

impl Cli {
    /// The command line `lightfi-token` (`raw`: `lightfi-token -r`) as clap
    /// would parse it. These two, the ones scripts run on every call, carry
    /// no option to read, so the cached path can skip building and running
    /// the parser, which costs more than the rest of that path.
    pub fn plain_get(raw: bool) -> Cli {
        Cli {
            global: Flags::default(),
            get: GetArgs {
                raw,
                ..GetArgs::default()
            },
            command: None,
        }
    }

    /// [`Cli::plain_get`] for the arguments after the program's name, when
    /// they are one of those two command lines.
    pub fn plain(args: &[OsString]) -> Option<Cli> {
        match args {
            [] => Some(Cli::plain_get(false)),
            [one] if one == "-r" => Some(Cli::plain_get(true)),
            _ => None,
        }
    }
    /// The command to run (`get` when none was named) and the global options,
    /// whether given before or after the command's name (after wins). `get`'s
    /// options before another command's name are a usage error.
    pub fn into_command(self) -> Result<(Command, Flags), clap::Error> {
        let mut command = match self.command {
            None => Command::Get {
                args: self.get,
                global: Flags::default(),
            },
            Some(_) if self.get != GetArgs::default() => {
                use clap::CommandFactory;
                return Err(Cli::command().error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "options of `get` (-r, --format, --min-valid, --force-refresh) go without a command, or after `get`",
                ));
            }
            Some(command) => command,
        };
        let given_after = command.global_mut().map(std::mem::take).unwrap_or_default();
        Ok((command, given_after.or(self.global)))
    }
}

#[derive(Debug, Args, Clone, PartialEq, Eq)]
pub struct GetArgs {
    /// Output format
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Json)]
    pub format: Format,

    /// Print the bare token (same as --format raw)
    #[arg(short = 'r', long = "raw", conflicts_with = "format")]
    pub raw: bool,

    /// Refresh when fewer than this many seconds of validity are left
    /// (capped at half the token's lifetime)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MIN_VALID)]
    pub min_valid: u64,

    /// Refresh now, even when the cached token is still valid
    #[arg(long)]
    pub force_refresh: bool,
}

impl Default for GetArgs {
    /// As parsed from no options at all.
    fn default() -> Self {
        GetArgs {
            format: Format::Json,
            raw: false,
            min_valid: DEFAULT_MIN_VALID,
            force_refresh: false,
        }
    }
}

impl GetArgs {
    pub fn format(&self) -> Format {
        if self.raw { Format::Raw } else { self.format }
    }
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Save a profile's client settings in config.toml, asking for what no flag gave
    ///
    /// At a terminal it asks for the client id, the client secret (hidden;
    /// empty for a public client), the OAuth URL, the redirect URI and the
    /// scope, skipping what --client-id, --oauth-url, --redirect-uri or
    /// --scope gave; Enter keeps the value shown. With stdin not a terminal
    /// it reads the same answers from stdin, one line each in that order and
    /// without the ones flags gave, e.g.
    /// `printf 'CLIENT_ID\nSECRET\n' | lightfi-token configure`. An empty or
    /// missing line keeps the value shown: the profile's saved value, else the
    /// default (for the secret: the saved one, else none).
    /// With --client-secret-stdin, stdin is the secret (empty: none) and
    /// nothing is asked.
    /// Only values that differ from the defaults are written. Then it asks the
    /// token endpoint whether the client authenticates.
    Configure {
        #[command(flatten)]
        args: ConfigureArgs,
        #[command(flatten)]
        global: Flags,
    },

    /// Print a valid access token (the default command)
    Get {
        #[command(flatten)]
        args: GetArgs,
        #[command(flatten)]
        global: Flags,
    },

    /// Log in now in the browser, or import a refresh token
    Login {
        #[command(flatten)]
        args: LoginArgs,
        #[command(flatten)]
        global: Flags,
    },

    /// Revoke the refresh token at the server and delete the stored tokens
    Logout {
        /// Delete the stored tokens without asking the server to revoke them
        #[arg(long)]
        no_revoke: bool,

        /// Also end the hosted UI's browser session (it keeps you signed in
        /// for about an hour), so the next login asks who you are
        #[arg(long)]
        browser: bool,

        /// Where the hosted UI sends the browser after signing out; must be
        /// one of the app client's sign-out URLs [default: the redirect URI]
        #[arg(long, value_name = "URI", requires = "browser")]
        logout_uri: Option<String>,
        #[command(flatten)]
        global: Flags,
    },

    /// Show the profile, where its tokens are stored and when they expire (never a token)
    Status {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,

        /// Every profile in config.toml and its login state (no secrets)
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        global: Flags,
    },

    /// git credential helper: `git config credential.https://HOST.helper '!lightfi-token git-credential'`
    GitCredential {
        /// get, store, erase or capability (sent by git); others are ignored
        action: String,
        /// Refresh when fewer than this many seconds of validity are left
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MIN_VALID)]
        min_valid: u64,
        #[command(flatten)]
        global: Flags,
    },

    /// Run a command with LIGHTFI_ACCESS_TOKEN (or LIGHTFI_ID_TOKEN) and LIGHTFI_TOKEN_EXPIRES_AT set
    Exec {
        /// Refresh first when fewer than this many seconds are left (a long
        /// command may want the token to last: e.g. 1800)
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MIN_VALID)]
        min_valid: u64,
        /// The command and its arguments, after `--`
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<OsString>,
        #[command(flatten)]
        global: Flags,
    },

    /// Serve GET /token on loopback for Postman, Insomnia and REST clients
    Serve {
        /// Port on 127.0.0.1 and ::1
        #[arg(long, default_value_t = 8787)]
        port: u16,

        /// Print the X-Lightfi-Key value and exit
        #[arg(long)]
        show_key: bool,

        /// Refresh when fewer than this many seconds of validity are left
        #[arg(long, value_name = "SECS", default_value_t = DEFAULT_MIN_VALID)]
        min_valid: u64,

        /// Replace the key with a new random one and exit; a running serve
        /// refuses the old key from its next request on
        #[arg(long, conflicts_with = "show_key")]
        rotate_key: bool,
        #[command(flatten)]
        global: Flags,
    },

    /// Configure git, kubectl or Postman to get their tokens from lightfi-token
    Setup {
        #[command(subcommand)]
        tool: SetupTool,
    },

    /// Check the configuration, the token store, the network and the integrations
    ///
    /// Exits 1 when a check fails (0 when everything is ok or only warns).
    /// Never prints a token or secret.
    Doctor {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,

        /// Also try one real refresh with the stored refresh token
        #[arg(long)]
        refresh: bool,
        #[command(flatten)]
        global: Flags,
    },

    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    // One-line help: what a command's `about` says is built on every run;
    // the install hints are in the argument's help, built only for this command.
    Completions {
        /// The shell to complete for
        ///
        /// bash: lightfi-token completions bash > ~/.local/share/bash-completion/completions/lightfi-token
        ///
        /// zsh: lightfi-token completions zsh > ~/.zfunc/_lightfi-token, with fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc
        ///
        /// fish: lightfi-token completions fish > ~/.config/fish/completions/lightfi-token.fish
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the manual page (roff): `lightfi-token man | man -l -` shows it
    Man {
        /// Write the page where `man lightfi-token` finds it (beside the
        /// program: ../share/man/man1) instead, and say where
        #[arg(long)]
        install: bool,
    },
}

impl Command {
    /// The global options given after the command's name; None for the
    /// commands that use no settings (`completions`, `man`).
    fn global_mut(&mut self) -> Option<&mut Flags> {
        match self {
            Command::Get { global, .. }
            | Command::Configure { global, .. }
            | Command::Login { global, .. }
            | Command::Logout { global, .. }
            | Command::Status { global, .. }
            | Command::GitCredential { global, .. }
            | Command::Exec { global, .. }
            | Command::Serve { global, .. }
            | Command::Doctor { global, .. } => Some(global),
            Command::Setup { tool } => Some(tool.global_mut()),
            Command::Completions { .. } | Command::Man { .. } => None,
        }
    }
}

// What `setup` configures: through the tool itself (`git config`, `kubectl
// config`), or files in a folder given. (A plain comment: clap would show a
// doc comment instead of `setup`'s own help.)
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SetupTool {
    /// Make lightfi-token git's credential helper for one URL (global git config)
    Git {
        #[command(flatten)]
        args: SetupGitArgs,
        #[command(flatten)]
        global: Flags,
    },

    /// Add a kubeconfig user (exec plugin) and context that use lightfi-token
    Kubectl {
        #[command(flatten)]
        args: SetupKubectlArgs,
        #[command(flatten)]
        global: Flags,
    },

    /// Write a Postman environment (serve's URL and key) and the pre-request script
    Postman {
        #[command(flatten)]
        args: SetupPostmanArgs,
        #[command(flatten)]
        global: Flags,
    },
}

impl SetupTool {
    fn global_mut(&mut self) -> &mut Flags {
        match self {
            SetupTool::Git { global, .. } | SetupTool::Kubectl { global, .. } | SetupTool::Postman { global, .. } => {
                global
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct SetupGitArgs {
    /// The git server's URL: git gives the helper's token to this scheme, host and port only
    #[arg(long, value_name = "URL", default_value = crate::config::DEFAULT_GIT_HOST)]
    pub host: String,

    /// Print the git commands instead of running them
    #[arg(long)]
    pub dry_run: bool,

    /// Remove lightfi-token's entries for this URL instead
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Args)]
pub struct SetupKubectlArgs {
    /// The API server's https URL (needed when the cluster is not in the kubeconfig yet)
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// The kubeconfig cluster entry to use (created when missing; an existing one is left as it is)
    #[arg(long, value_name = "NAME")]
    pub cluster: String,

    /// The API server's CA certificate (PEM), for a cluster setup adds; embedded in the kubeconfig
    #[arg(long, value_name = "FILE", conflicts_with = "certificate_authority_data")]
    pub certificate_authority: Option<PathBuf>,

    /// The API server's CA certificate as base64 of its PEM, for a cluster setup adds
    #[arg(long, value_name = "B64")]
    pub certificate_authority_data: Option<String>,

    /// The context to add [default: USER@CLUSTER]
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The kubeconfig user to add [default: lightfi, or lightfi-PROFILE]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Print the kubectl commands instead of running them
    #[arg(long)]
    pub dry_run: bool,

    /// Remove lightfi-token's user and context instead (never the cluster)
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Args)]
pub struct SetupPostmanArgs {
    /// Folder to write the files to import into Postman (created when missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The port `lightfi-token serve` listens on
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// Read the client secret from stdin (all of it, one trailing newline
    /// dropped; empty for a public client) and ask nothing
    #[arg(long)]
    pub client_secret_stdin: bool,

    /// Replace the settings of a profile that already has other values
    #[arg(long, conflicts_with = "show")]
    pub force: bool,

    /// Print the profile's settings and where each comes from (the secret as set or not set)
    #[arg(long, conflicts_with = "client_secret_stdin")]
    pub show: bool,
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

    /// Ask the hosted UI to prompt: `login` signs in again even with a
    /// session (to switch user); passed on as OpenID Connect's `prompt`
    #[arg(long, value_name = "PROMPT", conflicts_with = "refresh_token_stdin")]
    pub prompt: Option<Prompt>,
}

/// OpenID Connect's `prompt` values that make sense here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Prompt {
    /// Sign in again, even with a hosted-UI session
    Login,
    /// Ask for consent again
    Consent,
}

/// Every subcommand's name, for the tests of what is generated from them.
#[cfg(test)]
pub fn subcommand_names() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
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
        let (command, global) = Cli::try_parse_from(["lightfi-token"]).unwrap().into_command().unwrap();
        let Command::Get { args, .. } = command else {
            panic!("not get: {command:?}")
        };
        assert_eq!(args.format(), Format::Json);
        assert_eq!(args.min_valid, 300);
        assert_eq!(global.http_timeout, None);
    }

    #[test]
    fn dash_r_means_raw() {
        let (command, _) = Cli::try_parse_from(["lightfi-token", "-r"])
            .unwrap()
            .into_command()
            .unwrap();
        assert!(matches!(command, Command::Get { args, .. } if args.format() == Format::Raw));
    }

    #[test]
    fn global_options_go_before_or_after_the_command_and_after_wins() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).unwrap().into_command().unwrap().1;
        let g = parse(&["lightfi-token", "status", "--profile", "x", "--lock-timeout", "0.5"]);
        assert_eq!(g.profile.as_deref(), Some("x"));
        assert_eq!(g.lock_timeout, Some(Duration::from_millis(500)));
        let g = parse(&[
            "lightfi-token",
            "--profile",
            "a",
            "--scope",
            "s",
            "logout",
            "--profile",
            "b",
        ]);
        assert_eq!((g.profile.as_deref(), g.scope.as_deref()), (Some("b"), Some("s")));
        let g = parse(&["lightfi-token", "--non-interactive", "get", "-r"]);
        assert!(g.non_interactive);
        let g = parse(&["lightfi-token", "exec", "--profile", "p", "--", "env", "--profile", "q"]);
        assert_eq!(g.profile.as_deref(), Some("p"));
        let misplaced = Cli::try_parse_from(["lightfi-token", "-r", "status"])
            .unwrap()
            .into_command();
        assert_eq!(misplaced.unwrap_err().kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn setup_doctor_and_rotate_key_parse_with_global_options() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).unwrap().into_command().unwrap();
        let (command, g) = parse(&["lightfi-token", "setup", "git", "--profile", "x", "--dry-run"]);
        let Command::Setup {
            tool: SetupTool::Git { args, .. },
        } = command
        else {
            panic!("not setup git: {command:?}")
        };
        assert!(args.dry_run && !args.remove);
        assert_eq!(args.host, crate::config::DEFAULT_GIT_HOST);
        assert_eq!(g.profile.as_deref(), Some("x"));
        let (command, _) = parse(&["lightfi-token", "setup", "kubectl", "--cluster", "c", "--remove"]);
        assert!(
            matches!(command, Command::Setup { tool: SetupTool::Kubectl { args, .. } } if args.remove && args.server.is_none())
        );
        assert!(
            Cli::try_parse_from(["lightfi-token", "setup", "postman"]).is_err(),
            "--out is required"
        );
        let (command, _) = parse(&["lightfi-token", "doctor", "--json", "--refresh"]);
        assert!(matches!(
            command,
            Command::Doctor {
                json: true,
                refresh: true,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["lightfi-token", "serve", "--rotate-key", "--show-key"]).is_err());
    }

    #[test]
    fn the_plain_command_lines_are_what_clap_parses() {
        for (argv, raw) in [(&["lightfi-token"][..], false), (&["lightfi-token", "-r"][..], true)] {
            let parsed = Cli::try_parse_from(argv).unwrap();
            let args: Vec<OsString> = argv[1..].iter().map(OsString::from).collect();
            let plain = Cli::plain(&args).unwrap();
            assert_eq!(format!("{parsed:?}"), format!("{plain:?}"), "{argv:?}");
            assert_eq!(format!("{plain:?}"), format!("{:?}", Cli::plain_get(raw)));
        }
        for other in [&["-rv"][..], &["--raw"], &["-r", "-r"], &["get"], &["-q"]] {
            let args: Vec<OsString> = other.iter().map(OsString::from).collect();
            assert!(Cli::plain(&args).is_none(), "{other:?}");
        }
    }

    #[test]
    fn get_defaults_match_what_clap_parses() {
        assert_eq!(Cli::try_parse_from(["lightfi-token"]).unwrap().get, GetArgs::default());
    }

    #[test]
    fn bad_numbers_are_usage_errors() {
        assert!(Cli::try_parse_from(["lightfi-token", "--http-timeout", "-1"]).is_err());
        assert!(Cli::try_parse_from(["lightfi-token", "login", "--timeout", "1e19"]).is_err());
        assert!(Cli::try_parse_from(["lightfi-token", "--lock-timeout", "NaN"]).is_err());
        assert!(Cli::try_parse_from(["lightfi-token", "--min-valid", "soon"]).is_err());
    }
}
