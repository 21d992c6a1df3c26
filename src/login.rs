//! Interactive login: authorization code + PKCE (RFC 7636) through the
//! browser and a loopback callback server (RFC 8252).

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::store::{AccessToken, Lock, Store, Tokens};

/// Log in with the lock held, store the tokens and return the access token.
pub fn login(settings: &Settings, _store: &Store, _lock: &Lock, _tokens: Tokens) -> Result<AccessToken> {
    Err(Error::LoginRequired {
        msg: format!("not logged in (profile `{}`)", settings.profile),
    })
}
