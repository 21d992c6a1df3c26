//! One file per command: each a short script over the engine (`token`) and
//! the edges it needs. `main` parses the command line and calls [`run`].

mod completions;
mod configure;
mod doctor;
mod exec;
mod get;
mod git_credential;
mod login;
mod logout;
mod man;
mod serve;
pub mod setup;
mod status;

use crate::cli::{Command, SetupTool};
use crate::config::{self, Flags};
use crate::error::Result;

/// Run `command` with the settings `flags` resolve to. Settings are resolved
/// by each command, so git's `capability` and `store` answer even before a
/// client id is configured, and `completions` and `man` never read them.
pub fn run(command: Command, flags: Flags) -> Result<()> {
    crate::report::set_level(config::level(&flags));
    let settings = || config::resolve(&flags);
    match command {
        Command::GitCredential { action, min_valid, .. } => git_credential::run(
            &action,
            min_valid,
            std::io::stdin().lock(),
            &mut std::io::stdout().lock(),
            settings,
        ),
        Command::Configure { args, .. } => configure::run(&flags, &args),
        Command::Get { args, .. } => get::run(&settings()?, &args),
        Command::Login { args, .. } => login::run(&settings()?, &args),
        Command::Logout {
            no_revoke,
            browser,
            logout_uri,
            ..
        } => logout::run(&settings()?, !no_revoke, browser, logout_uri.as_deref()),
        Command::Status { json, all: true, .. } => status::run_all(&flags, json),
        Command::Status { json, .. } => status::run(settings(), json),
        Command::Exec { command, min_valid, .. } => exec::run(&settings()?, &command, min_valid),
        Command::Serve {
            port,
            show_key,
            rotate_key,
            min_valid,
            ..
        } => serve::run(&settings()?, port, show_key, rotate_key, min_valid),
        Command::Completions { shell } => completions::run(shell),
        Command::Man { install } => man::run(install),
        Command::Setup { tool } => match tool {
            // git and kubectl are given the profile only: they run
            // lightfi-token later, which resolves the rest itself.
            SetupTool::Git { args, .. } => setup::git::run(&args, &config::profile(&flags)?),
            SetupTool::Kubectl { args, .. } => setup::kubectl::run(&args, &config::profile(&flags)?),
            SetupTool::Postman { args, .. } => setup::postman::run(&settings()?, &args),
        },
        Command::Doctor { json, refresh, .. } => doctor::run(&flags, json, refresh),
    }
}
