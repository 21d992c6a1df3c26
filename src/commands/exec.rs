//! `lightfi-token exec -- CMD [ARGS…]`: run CMD with the token in its
//! environment (`LIGHTFI_ACCESS_TOKEN`, or `LIGHTFI_ID_TOKEN` with `--token
//! id`, and `LIGHTFI_TOKEN_EXPIRES_AT` in RFC 3339), never in anyone's argv.
//!
//! On Unix, once the token is in hand, lightfi-token replaces itself with CMD
//! (execvp, as env(1) and `cargo run` do). So CMD's exit status, and its death
//! by a signal, reach the caller unchanged; Ctrl-C goes to CMD alone, with no
//! parent left to die first; and no lightfi-token process lingers. Elsewhere
//! CMD runs as a child: lightfi-token ignores Ctrl-C while it waits (the
//! console delivers it to both), then exits with CMD's code.
//!
//! A CMD that cannot be started exits 127 (not found) or 126 (not runnable),
//! like shells and env(1), so scripts can tell it from CMD's own failures.

use std::ffi::{OsStr, OsString};
use std::io;

use crate::config::{Settings, TokenKind};
use crate::error::{Error, Result};
use crate::oauth::Http;
use crate::output;
use crate::process;
use crate::token::{self, Want};

/// Run `command` (program and arguments) with the token; returns only on failure.
pub fn run(settings: &Settings, command: &[OsString], min_valid: u64) -> Result<()> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::Usage {
            msg: "no command to run".into(),
            hint: "put it after `--`: `lightfi-token exec -- CMD [ARGS…]`".into(),
        });
    };
    let want = Want {
        min_valid,
        force_refresh: false,
        may_interact: true,
        kind: settings.token_kind,
    };
    let access = token::obtain(settings, &Http::new(settings.http_timeout), want)?;
    token::session::warn_if_ending(settings);
    let handed = token::hand(&access, settings.token_kind)?;
    let variable = match handed.kind() {
        TokenKind::Access => "LIGHTFI_ACCESS_TOKEN",
        TokenKind::Id => "LIGHTFI_ID_TOKEN",
    };
    // The command needs the token, not what can mint new ones.
    let mut cmd = process::command_for(program, settings);
    cmd.args(args)
        .env(variable, handed.token.expose())
        .env("LIGHTFI_TOKEN_EXPIRES_AT", output::rfc3339(handed.expires_at));

    #[cfg(unix)]
    {
        let err = std::os::unix::process::CommandExt::exec(&mut cmd);
        Err(cannot_run(program, &err))
    }
    #[cfg(not(unix))]
    {
        crate::platform::ignore_interrupts();
        let status = cmd.status().map_err(|e| cannot_run(program, &e))?;
        std::process::exit(status.code().unwrap_or(1))
    }
}

fn cannot_run(program: &OsStr, err: &io::Error) -> Error {
    let name = program.to_string_lossy();
    if err.kind() == io::ErrorKind::NotFound {
        Error::CannotRun {
            msg: format!("cannot run `{name}`: command not found"),
            hint: "check its name and PATH; lightfi-token's own options go before `exec`, the command after `--`"
                .into(),
            code: 127,
        }
    } else {
        Error::CannotRun {
            msg: format!("cannot run `{name}`: {err}"),
            hint: format!("check that `{name}` is an executable program for this machine (e.g. chmod +x)"),
            code: 126,
        }
    }
}
