//! Every program lightfi-token starts (`exec`'s command, the browser, and
//! any tool it runs) is built here, so none inherits a secret the tool read
//! from its own environment.

use std::ffi::OsStr;
use std::process::Command;

/// Variables holding what can mint tokens: a child needs none of them.
pub const SECRET_VARS: [&str; 3] = ["LIGHTFI_CLIENT_SECRET", "CLIENT_SECRET", "LIGHTFI_REFRESH_TOKEN"];

/// `Command::new(program)` with the secret-bearing variables removed.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for name in SECRET_VARS {
        command.env_remove(name);
    }
    command
}
