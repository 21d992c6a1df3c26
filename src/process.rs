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
