//! `lightfi-token git-credential <action>`: answer git (gitcredentials(7)).
//!
//! - `get`: the token, in the form git asked for (`git` module).
//! - `erase`: git's server rejected the token; forget the cached access token
//!   (not the refresh token), so the next `get` refreshes.
//! - `capability`: `version 0` and the capabilities, one a line.
//! - `store` and anything else: nothing to do; git ignores the answer.

use std::io::{self, Read, Write};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::git;
use crate::oauth::Http;
use crate::token::{self, Want};

/// What is read and dropped of an action we ignore.
const MAX_DISCARD: u64 = 1 << 20;

/// Run `action`. `settings` is resolved only by the actions that need it, so
/// `capability` and `store` answer even before lightfi-token is configured.
pub fn run(
    action: &str,
    min_valid: u64,
    input: impl Read,
    output: &mut impl Write,
    settings: impl FnOnce() -> Result<Settings>,
) -> Result<()> {
    match action {
        "capability" => print(output, &git::capabilities()),
        "get" => {
            let request = read_request(input)?;
            let settings = settings()?;
            git::check_destination(&request)?;
            let want = Want {
                min_valid,
                force_refresh: false,
                may_interact: !prompts_disabled(),
                kind: settings.token_kind,
            };
            let access = token::obtain(&settings, &Http::new(settings.http_timeout), want)?;
            let handed = token::hand(&access, settings.token_kind)?;
            let mut out = Vec::new();
            git::answer(handed, request.has_capability("authtype"))
                .write(&mut out)
                .map_err(|e| Error::unavailable(format!("cannot give the access token to git: {e}")))?;
            print(output, &out)
        }
        "erase" => {
            let request = read_request(input)?;
            // The token git used: `credential` with authtype, else `password`.
            let rejected = request.get("credential").or_else(|| request.get("password"));
            token::forget_access(&settings()?, rejected).map(|_| ())
        }
        // `store`: the token is already stored, with its refresh token.
        // Unknown actions: gitcredentials(7) asks helpers to ignore them.
        _ => {
            let _ = io::copy(&mut input.take(MAX_DISCARD), &mut io::sink());
            Ok(())
        }
    }
}

/// `GIT_TERMINAL_PROMPT=0` (or false/no/off): the user told git not to ask
/// anything, so a browser login must not start either.
fn prompts_disabled() -> bool {
    std::env::var("GIT_TERMINAL_PROMPT")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off"))
}

fn read_request(input: impl Read) -> Result<git::Attributes> {
    git::read_attributes(input).map_err(|e| Error::Usage {
        msg: format!("cannot read git's credential request: {e}"),
        hint: "git runs `lightfi-token git-credential` itself: configure it as shown in integrations/git/README.md"
            .into(),
    })
}

fn print(output: &mut impl Write, bytes: &[u8]) -> Result<()> {
    output
        .write_all(bytes)
        .and_then(|()| output.flush())
        .map_err(|e| Error::unexpected(format!("cannot write to git: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unconfigured() -> Result<Settings> {
        Err(Error::config("no settings in this test", "none"))
    }

    #[test]
    fn capability_and_store_answer_without_settings() {
        let mut out = Vec::new();
        run("capability", 300, &b""[..], &mut out, unconfigured).unwrap();
        assert_eq!(out, b"version 0\ncapability authtype\n");
        let mut out = Vec::new();
        run(
            "store",
            300,
            &b"protocol=https\nhost=x\npassword=p\n"[..],
            &mut out,
            unconfigured,
        )
        .unwrap();
        run("frobnicate", 300, &b""[..], &mut out, unconfigured).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn get_with_malformed_input_is_a_usage_error() {
        let mut out = Vec::new();
        let err = run("get", 300, &b"nonsense\n"[..], &mut out, unconfigured).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(out.is_empty());
    }
}
