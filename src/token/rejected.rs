//! A refresh token the server rejected (`invalid_grant`): keep a newer one
//! another process stored meanwhile, else forget the login (and log in
//! again when someone is at the terminal).

use time::OffsetDateTime;

use super::lifecycle::placement;
use super::{Engine, cached};
use crate::error::{Error, OAuthError, Result};
use crate::report;
use crate::secret::RefreshToken;
use crate::store::{Access, RefreshTokenIn, Tokens};

impl Engine<'_> {
    /// After `sent` was rejected: when the store now holds another refresh
    /// token (someone deleted our lock file and another process refreshed
    /// with rotation meanwhile), its access token if fresh, else one refresh
    /// with it — never wipe a login that is not the rejected one.
    pub(super) fn newer_login(&self, sent: &RefreshToken) -> Option<Result<Access>> {
        if self.env_digest.is_some() || self.retried.replace(true) {
            return None;
        }
        let (tokens, newer) = placement::newer_than(self.store, sent)?;
        report::debug(|| "the store holds a newer refresh token than the rejected one; using it".into());
        let now = OffsetDateTime::now_utc();
        if let Some(access) = cached(&tokens, None, self.want.kind, now, self.want.min_valid) {
            return Some(Ok(access));
        }
        Some(self.refresh(tokens, newer))
    }

    /// The server rejected the refresh token (`invalid_grant`).
    pub(super) fn rejected(&self, mut tokens: Tokens, e: OAuthError, died_mid_refresh: bool) -> Result<Access> {
        let ended = super::session::ended(self.settings, &tokens, OffsetDateTime::now_utc());
        if self.env_digest.is_some() {
            return Err(Error::LoginFailed {
                msg: format!("the server rejected LIGHTFI_REFRESH_TOKEN: {e}"),
                hint: "replace LIGHTFI_REFRESH_TOKEN with a current refresh token, or unset it and run `lightfi-token login`"
                    .into(),
            });
        }
        // The refresh token is dead (revoked, expired, or rotated away), and
        // with it the access tokens issued from it: forget both.
        let was_in_keyring = tokens.refresh_token_in == RefreshTokenIn::Keyring;
        tokens.refresh_token = None;
        tokens.refresh_token_in = RefreshTokenIn::File;
        tokens.access = None;
        tokens.refresh_started = None;
        tokens.last_failure = None;
        self.store.save(&tokens, self.lock)?;
        if was_in_keyring {
            placement::delete_keyring_entry(self.store);
        }
        if died_mid_refresh {
            report::warn(
                "a lightfi-token process was stopped between the server's answer to a refresh and storing it; \
                 the server rotates this login's refresh tokens, so the one it answered with was lost and \
                 the stored one was no longer valid (the app client's rotation grace period had passed)",
            );
        }
        let said = ended
            .clone()
            .unwrap_or_else(|| format!("the stored login was rejected ({e})"));
        if self.may_log_in() {
            report::warn(&format!("{said}; logging in again"));
            return self.log_in(&mut tokens);
        }
        Err(ended.map_or(Error::RefreshRejected(e), |msg| Error::LoginRequired { msg }))
    }
}
