//! `lightfi-token logout`: revoke the refresh token, delete the stored tokens.

use crate::config::Settings;
use crate::error::Result;
use crate::login;
use crate::oauth::Http;
use crate::report;
use crate::token::{self, LoggedOut};

pub fn run(settings: &Settings, revoke: bool, browser: bool, logout_uri: Option<&str>) -> Result<()> {
    let outcome = token::log_out(settings, &Http::new(settings.http_timeout), revoke)?;
    let profile = &settings.profile;
    report::note(&match outcome {
        LoggedOut::Revoked => format!("logged out of profile `{profile}`: refresh token revoked and deleted"),
        LoggedOut::Deleted => format!("logged out of profile `{profile}`: stored tokens deleted"),
        LoggedOut::NothingStored { others: 0 } => format!("profile `{profile}` has no stored tokens; nothing to do"),
        LoggedOut::NothingStored { others } => format!(
            "nothing is stored for this client id, OAuth URL and scopes on profile `{profile}`; nothing to do \
             ({others} login(s) with other settings left alone: `lightfi-token status` lists them)"
        ),
    });
    if browser {
        // Revoking does not end the hosted UI's session cookie: without
        // this, the next login signs the same user straight back in.
        let url = login::logout_url(settings, logout_uri.unwrap_or(&settings.redirect_uri))?;
        report::prompt(&format!(
            "lightfi-token: ending the browser session at:\n\n    {url}\n\n\
             lightfi-token: (the sign-out URL must be registered on the app client; else the page shows an error)\n"
        ));
        login::browser::open(url.as_str());
    }
    Ok(())
}
