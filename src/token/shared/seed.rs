//! Putting a login into the shared record and taking it out: `login
//! --storage vault` writes the record (the refresh token goes to Vault and
//! never onto this machine's disk), `logout` revokes it and deletes the
//! secret with every version.

use time::OffsetDateTime;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::login::{self, LoginOptions};
use crate::oauth::{self, TokenResponse, Transport};
use crate::report;
use crate::secret::RefreshToken;
use crate::store::{Access, Store};
use crate::vault::{CasOutcome, Record, Vault};

use super::{access_of, connect, record_of};

/// A browser login, written to the shared record.
pub(in crate::token) fn log_in(
    settings: &Settings,
    transport: &dyn Transport,
    options: LoginOptions,
) -> Result<Access> {
    let vault = connect(settings)?;
    // Before any browser opens: a login that cannot be written is lost work.
    vault.read()?;
    let login::Exchanged {
        response: exchanged,
        finish,
        ..
    } = login::run(settings, transport, options)?;
    let result = exchanged.and_then(|response| put(settings, transport, &vault, response, None));
    finish.tell_browser(result.as_ref().map(|_| ()).map_err(ToString::to_string));
    result
}

/// `login --refresh-token-stdin --storage vault`: check the token with one
/// refresh, then write the record.
pub(in crate::token) fn import(
    settings: &Settings,
    transport: &dyn Transport,
    refresh_token: RefreshToken,
) -> Result<Access> {
    let vault = connect(settings)?;
    vault.read()?;
    let response = oauth::token(transport, &oauth::refresh_request(&settings.client, &refresh_token)).map_err(|f| {
        match f.into_refresh_error() {
            Error::RefreshRejected(e) => Error::LoginFailed {
                msg: format!("the server rejected that refresh token ({e}); nothing was stored"),
                hint: "check that it was issued for this client id, or run `lightfi-token login`".into(),
            },
            other => other,
        }
    })?;
    put(settings, transport, &vault, response, Some(refresh_token))
}

/// Write the login as the record's next version (or its first), revoke the
/// refresh token it replaced, and cache the access token here.
fn put(
    settings: &Settings,
    transport: &dyn Transport,
    vault: &Vault,
    response: TokenResponse,
    imported: Option<RefreshToken>,
) -> Result<Access> {
    let record = Record {
        logged_in_at: Some(
            OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::now_utc()),
        ),
        ..record_of(response, imported)
    };
    let replaced = loop {
        let current = vault.read()?;
        let cas = current.as_ref().map_or(0, |c| c.version);
        if let CasOutcome::Written { .. } = vault.write_cas(&record, cas)? {
            break current.and_then(|c| c.value.refresh_token);
        }
    };
    if let Some(old) = replaced.filter(|old| Some(old) != record.refresh_token.as_ref()) {
        revoke(settings, transport, &old, "the refresh token this login replaced");
    }
    let access = access_of(&record);
    cache(settings, Some(access.clone()))?;
    report::note(&format!(
        "logged in (profile `{}`); the login is in Vault at {}; access token valid until {}",
        settings.profile,
        vault.data_path(),
        crate::timestamp::rfc3339(access.expires_at)
    ));
    Ok(access)
}

/// `logout` of a vault-stored profile: revoke the record's refresh token
/// (when asked), delete the secret with every version, and forget the
/// cached token here. Returns whether the refresh token was revoked, or
/// None when there was no record.
pub(in crate::token) fn log_out(
    settings: &Settings,
    transport: &dyn Transport,
    revoke_it: bool,
) -> Result<Option<bool>> {
    let vault = connect(settings)?;
    let current = vault.read()?;
    let mut revoked = false;
    if let (true, Some(token)) = (revoke_it, current.as_ref().and_then(|c| c.value.refresh_token.as_ref())) {
        revoked = revoke(settings, transport, token, "the shared refresh token");
    }
    if current.is_some() {
        vault.delete_all()?;
    }
    cache(settings, None)?;
    Ok(current.map(|_| revoked))
}

/// Replace this machine's cached access token.
fn cache(settings: &Settings, access: Option<Access>) -> Result<()> {
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    let mut tokens = store.load()?;
    tokens.access = access;
    tokens.refresh_token = None;
    tokens.last_failure = None;
    store.save(&tokens, &lock)
}

/// Revoke `token` (best effort, RFC 7009); whether it worked.
fn revoke(settings: &Settings, transport: &dyn Transport, token: &RefreshToken, which: &str) -> bool {
    match oauth::revoke(transport, &oauth::revoke_request(&settings.client, token)) {
        Ok(()) => true,
        Err(failure) => {
            report::warn(&format!(
                "could not revoke {which} ({}); it stays valid at the server until it expires",
                failure.describe()
            ));
            false
        }
    }
}
