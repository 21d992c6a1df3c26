//! Machine credentials (RFC 6749 §4.4): the client's own id and secret get
//! the token, with the refresh path's lock, single flight and failure
//! memory around it. There is no refresh token and never a login. Each
//! token obtained is counted: Cognito bills them per request.

use time::OffsetDateTime;

use super::Engine;
use super::lifecycle::{self, Outcome, Source};
use crate::config::{Grant, Settings};
use crate::error::{Error, Result};
use crate::oauth::{self, Failure};
use crate::store::{Access, AttemptKind, Store, Tokens};

impl Engine<'_> {
    /// One token request with the client's credentials, stored and counted;
    /// a failure is recorded like a failed refresh.
    pub(super) fn client_credentials(&self, mut tokens: Tokens) -> Result<Access> {
        let request = oauth::client_credentials_request(&self.settings.client, &self.settings.scope);
        match oauth::token(self.transport, &request) {
            Ok(response) => {
                tokens.requests.get_or_insert_default().count(OffsetDateTime::now_utc());
                let outcome = Outcome {
                    response,
                    source: Source::Machine,
                };
                lifecycle::keep(self.held(), &mut tokens, outcome)
            }
            Err(failure) => {
                let (err, kind, retry_after) = match failure {
                    Failure::Unavailable { why, retry_after } => {
                        (Error::unavailable(why), AttemptKind::Unavailable, retry_after)
                    }
                    // No refresh token to have been rejected: any refusal is the client's.
                    Failure::OAuth(e) => (Error::ClientRejected(e), AttemptKind::Configuration, None),
                    other => (other.into_refresh_error(), AttemptKind::Configuration, None),
                };
                self.fail(&mut tokens, kind, err, retry_after)
            }
        }
    }
}

/// `login` (`what`) applies to a person's login only: an error for a
/// client-credentials or token-file profile.
pub fn login_applies(settings: &Settings, what: &str) -> Result<()> {
    let profile = &settings.profile;
    if let Some(path) = &settings.token_file {
        return Err(Error::config(
            format!(
                "{what} does not apply to profile `{profile}`: it serves the token file {}",
                path.display()
            ),
            "the program that writes that file logs in; or use a profile without token_file",
        ));
    }
    if settings.grant == Grant::ClientCredentials {
        return Err(Error::config(
            format!("{what} does not apply to a client-credentials profile (`{profile}`)"),
            "its tokens come from the client id and secret; `lightfi-token logout` forgets the cached token",
        ));
    }
    Ok(())
}

/// `logout` of a client-credentials profile: forget the cached token, keep
/// the request counts. Returns whether there was a token.
pub fn forget_machine_token(settings: &Settings) -> Result<bool> {
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    let mut tokens = store.load()?;
    let had = tokens.access.take().is_some();
    tokens.last_failure = None;
    store.save(&tokens, &lock)?;
    Ok(had)
}
