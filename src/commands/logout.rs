//! `lightfi-token logout`: revoke the refresh token, delete the stored tokens.

use crate::config::{Grant, Settings};
use crate::error::{Error, Result};
use crate::login;
use crate::oauth::Http;
use crate::report;
use crate::token::{self, LoggedOut};

pub fn run(settings: &Settings, revoke: bool, browser: bool, logout_uri: Option<&str>) -> Result<()> {
    // Checked before anything is revoked or deleted: a bad flag changes nothing.
    if let Some(uri) = logout_uri {
        check_logout_uri(uri)?;
    }
    if browser {
        token::login_applies(settings, "`logout --browser`")?;
    }
    let profile = &settings.profile;
    if let Some(path) = &settings.token_file {
        report::note(&format!(
            "profile `{profile}` serves the token file {}; nothing is stored to log out of",
            path.display()
        ));
        return Ok(());
    }
    if settings.grant == Grant::ClientCredentials {
        let had = token::forget_machine_token(settings)?;
        report::note(&if had {
            format!("profile `{profile}`: cached token forgotten; the next call requests a new one")
        } else {
            format!("profile `{profile}` has no cached token; nothing to do")
        });
        return Ok(());
    }
    let outcome = token::log_out(settings, &Http::new(settings.http_timeout), revoke)?;
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

/// The hosted UI sends the browser to `uri` after signing out: a web page's
/// address (http or https), never `javascript:`, `file:` or `data:`, and
/// without control characters (the URL parser would drop a tab or newline
/// and name another host).
fn check_logout_uri(uri: &str) -> Result<()> {
    let ok = !uri.chars().any(char::is_control)
        && url::Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if ok {
        return Ok(());
    }
    Err(Error::Usage {
        msg: format!(
            "invalid --logout-uri `{}`: it must be an http or https URL",
            crate::report::sanitize(uri)
        ),
        hint: "give one of the app client's sign-out URLs, e.g. --logout-uri https://app.example/signed-out".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_addresses_are_taken_as_the_logout_uri() {
        assert!(check_logout_uri("https://app.example/bye").is_ok());
        assert!(check_logout_uri("http://localhost:3000").is_ok());
        for bad in [
            "javascript:alert(document.cookie)",
            "file:///etc/passwd",
            "data:text/html,hi",
            "https://app.example\n.evil.example/",
            "app.example/bye",
        ] {
            assert!(check_logout_uri(bad).is_err(), "{bad}");
        }
    }
}
