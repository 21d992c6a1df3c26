//! `lightfi-token logout`: revoke the refresh token, delete the stored tokens.

use crate::config::Settings;
use crate::error::Result;
use crate::oauth::Http;
use crate::report;
use crate::token::{self, LoggedOut};

pub fn run(settings: &Settings, revoke: bool) -> Result<()> {
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
    Ok(())
}
