//! Every program lightfi-token starts (`exec`'s command, the browser, and
//! any tool it runs) is built here, so none inherits a secret the tool read
//! from its own environment.

use std::ffi::OsStr;
use std::process::Command;

use crate::variables;

/// `Command::new(program)` with the secret-bearing variables removed: they
/// hold what can mint tokens, and a child needs none of them.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for name in variables::secrets() {
        command.env_remove(name);
    }
    command
}

/// [`command`] for a profile: one with `storage = "vault"` also keeps its
/// Vault token from the child.
pub fn command_for(program: impl AsRef<OsStr>, settings: &crate::config::Settings) -> Command {
    let mut command = command(program);
    if settings.storage == crate::config::Storage::Vault {
        for name in variables::vault_secrets() {
            command.env_remove(name);
        }
    }
    command
}
