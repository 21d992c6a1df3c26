//! `lightfi-token login`: a browser login now, or `--refresh-token-stdin`
//! to import a refresh token obtained elsewhere.

use std::io::Read;

use crate::cli::{LoginArgs, Prompt};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::login::LoginOptions;
use crate::oauth::Http;
use crate::output::rfc3339;
use crate::report;
use crate::secret::RefreshToken;
use crate::token;

pub fn run(settings: &Settings, args: &LoginArgs) -> Result<()> {
    token::login_applies(settings, "`login`")?;
    let http = Http::new(settings.http_timeout);
    if args.refresh_token_stdin {
        return import(settings, &http);
    }
    let options = LoginOptions {
        no_browser: args.no_browser,
        timeout: args.timeout,
        prompt: args.prompt.map(|p| match p {
            Prompt::Login => "login",
            Prompt::Consent => "consent",
        }),
    };
    token::log_in(settings, &http, options).map(|_| ())
}

fn import(settings: &Settings, http: &Http) -> Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Error::unexpected(format!("cannot read the refresh token from stdin: {e}")))?;
    let refresh_token = input.trim();
    if refresh_token.is_empty() || refresh_token.contains(char::is_whitespace) {
        return Err(Error::Usage {
            msg: "expected one refresh token on stdin".into(),
            hint: "pipe it in, e.g. `lightfi-token login --refresh-token-stdin < refresh-token.txt`".into(),
        });
    }
    let access = token::import(settings, http, RefreshToken::new(refresh_token))?;
    report::note(&format!(
        "refresh token stored for profile `{}`; access token valid until {}",
        settings.profile,
        rfc3339(access.expires_at)
    ));
    Ok(())
}
