//! How a login comes, is kept and goes: the browser login and the import of
//! a refresh token, storing what a token response gave (the only place that
//! writes new tokens), forgetting a rejected access token, and logging out.
//! Where the refresh token is kept is [`placement`]'s.

pub(in crate::token) mod placement;

use time::OffsetDateTime;

use crate::client_check;
use crate::config::{Settings, Storage};
use crate::error::{Error, Result};
use crate::keyring;
use crate::login::{self, LoginOptions};
use crate::oauth::{self, Failure, TokenResponse, Transport};
use crate::report;
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::store::{Access, Lock, RefreshTokenIn, Store, Tokens};

/// The profile's store with its lock held, and the settings it was opened
/// with: where a result is written.
#[derive(Clone, Copy)]
pub(in crate::token) struct Held<'a> {
    pub settings: &'a Settings,
    pub store: &'a Store,
    pub lock: &'a Lock,
}

/// What brought a token response: a new login, or a refresh of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::token) enum Kind {
    Login,
    Refresh,
}

/// A token response and the refresh token it answered, which decide where
/// its refresh token goes (see [`keep`]).
pub(in crate::token) struct Outcome {
    pub response: TokenResponse,
    pub source: Source,
}

/// The refresh token a response answered.
pub(in crate::token) enum Source {
    /// A new login: by browser (`imported` is None) or by importing a refresh
    /// token, which is kept when the response brings no new one.
    Login { imported: Option<RefreshToken> },
    /// A refresh with the stored refresh token `in_use`.
    Refresh { in_use: RefreshToken },
    /// A refresh with `LIGHTFI_REFRESH_TOKEN`, which is never stored;
    /// `digest` binds the cached access token to it.
    EnvRefresh { digest: String },
    /// The client's own credentials: no refresh token is kept, whatever came.
    Machine,
}

impl Source {
    fn kind(&self) -> Kind {
        match self {
            Source::Login { .. } => Kind::Login,
            Source::Refresh { .. } | Source::EnvRefresh { .. } | Source::Machine => Kind::Refresh,
        }
    }
}

/// Store what a token response gave us and return the new access token.
/// A response without `refresh_token` keeps the stored one (moved to where
/// `storage` wants it if it is elsewhere); a response with one (rotation,
/// RFC 6749 §6) replaces it. A new login's refresh token is stored wherever
/// `storage` says; `LIGHTFI_REFRESH_TOKEN` never is.
pub(in crate::token) fn keep(at: Held, tokens: &mut Tokens, outcome: Outcome) -> Result<Access> {
    let Outcome { response, source } = outcome;
    let kind = source.kind();
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    if let Source::Login { imported } = &source {
        tokens.logged_in_at = Some(now);
        tokens.imported = imported.is_some();
    }
    let expires_at = now + time::Duration::seconds(response.expires_in.min(i32::MAX as u64) as i64);
    let env_digest = match &source {
        Source::EnvRefresh { digest } => Some(digest.clone()),
        _ => None,
    };
    let access = Access {
        token: response.access_token,
        token_type: response.token_type,
        obtained_at: now,
        expires_at,
        scope: response.scope,
        env_refresh_digest: env_digest,
        id_expires_at: response.id_token.as_ref().map(|id| {
            let exp = crate::jwt::claims(id.expose())
                .and_then(|c| c.get("exp")?.as_i64())
                .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok());
            let latest = now + time::Duration::seconds(crate::oauth::MAX_EXPIRES_IN as i64);
            exp.map_or(expires_at, |exp| exp.min(latest))
        }),
        id_token: response.id_token,
    };
    let to_place = match (response.refresh_token, source) {
        (_, Source::Machine) => None,
        (Some(_), Source::EnvRefresh { .. }) => {
            report::warn(
                "the server rotated LIGHTFI_REFRESH_TOKEN, so it will not work again; \
                 this client needs refresh-token rotation off to be used from CI",
            );
            None
        }
        (None, Source::EnvRefresh { .. }) => None,
        (Some(rotated), _) => Some(rotated),
        (None, Source::Login { imported }) => imported,
        (None, Source::Refresh { in_use }) => Some(in_use).filter(|_| placement::misplaced(at.settings, tokens)),
    };
    let leave_keyring = match to_place {
        Some(token) => placement::place(&at, tokens, token, kind)?,
        None => false,
    };
    tokens.access = Some(access.clone());
    tokens.last_failure = None;
    tokens.refresh_started = None;
    at.store.save(tokens, at.lock)?;
    // Only once the file no longer points at it.
    if leave_keyring {
        placement::delete_keyring_entry(at.store);
    }
    Ok(access)
}

/// `lightfi-token login`: log in now, whatever is stored, and store the result.
pub fn log_in(settings: &Settings, transport: &dyn Transport, options: LoginOptions) -> Result<Access> {
    if settings.storage == Storage::Vault {
        return super::shared::seed::log_in(settings, transport, options);
    }
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    log_in_locked(settings, transport, &store, &lock, options)
}

/// Run the browser login with the lock held, store what it gave, and only
/// then tell the browser how it ended.
pub(in crate::token) fn log_in_locked(
    settings: &Settings,
    transport: &dyn Transport,
    store: &Store,
    lock: &Lock,
    options: LoginOptions,
) -> Result<Access> {
    // Before any browser opens: a login that could not be stored is lost work.
    placement::check_keyring_for_login(settings, store)?;
    let login::Exchanged {
        response: exchanged,
        finish,
        secret,
    } = login::run(settings, transport, options).map_err(|e| unless_kept(e, store))?;
    if !settings.client.spare_secrets.is_empty() {
        store.note_working_secret(secret);
    }
    let result = exchanged.and_then(|response| {
        let mut tokens = store.load()?;
        tokens.access = None;
        if response.refresh_token.is_none() {
            report::warn(
                "the server issued no refresh token: you will have to log in again when this access token expires",
            );
        }
        let replaced = match response.refresh_token {
            Some(_) => placement::replaceable(store, &tokens),
            None => None,
        };
        let issued = response.refresh_token.clone();
        let held = Held { settings, store, lock };
        let outcome = Outcome {
            response,
            source: Source::Login { imported: None },
        };
        match keep(held, &mut tokens, outcome) {
            Ok(access) => Ok((access, replaced)),
            Err(e) => {
                // Stored nowhere: leave no live token that nobody holds.
                revoke_unkept(
                    settings,
                    transport,
                    issued,
                    "the refresh token this login could not store",
                );
                Err(e)
            }
        }
    });
    finish.tell_browser(result.as_ref().map(|_| ()).map_err(ToString::to_string));
    let (access, replaced) = result.map_err(|e| unless_kept(e, store))?;
    revoke_unkept(settings, transport, replaced, "the refresh token this login replaced");
    report::note(&format!(
        "logged in (profile `{}`); access token valid until {}",
        settings.profile,
        crate::timestamp::rfc3339(access.expires_at)
    ));
    Ok(access)
}

/// Remember which client secret worked, when there are several to choose from.
pub(in crate::token) fn note_secret<T, E>(settings: &Settings, store: &Store, secret: usize, answer: &Result<T, E>) {
    if answer.is_ok() && !settings.client.spare_secrets.is_empty() {
        store.note_working_secret(secret);
    }
}

/// During a rotation (`client_secrets`), which secret works, for `status`
/// and `doctor`: the one the server accepted last (from 0), and a line that
/// says so. None with one secret.
pub fn secret_in_use(settings: &Settings) -> Option<(Option<usize>, String)> {
    let count = settings.client.spare_secrets.len() + 1;
    if count == 1 {
        return None;
    }
    let working = Store::new(settings).working_secret().filter(|i| *i < count);
    let line = match working {
        Some(i) => format!(
            "{count} client_secrets; the server accepted client_secrets[{i}] last: once every machine has it, \
             keep only that one"
        ),
        None => format!("{count} client_secrets; none used yet (a login or refresh tries them in order)"),
    };
    Some((working, line))
}

/// Whether there is a login to refresh: `LIGHTFI_REFRESH_TOKEN`, or a
/// refresh token in the store's file or, as the file records, in the keyring.
pub fn logged_in(settings: &Settings) -> bool {
    settings.env_refresh_token.is_some() || Store::new(settings).load().is_ok_and(|t| holds_login(&t))
}

fn holds_login(tokens: &Tokens) -> bool {
    tokens.refresh_token.is_some() || tokens.refresh_token_in == RefreshTokenIn::Keyring
}

/// A login that could not reach the server: its usual hint says the stored
/// login was kept, which on a first login would promise something that is
/// not there.
fn unless_kept(e: Error, store: &Store) -> Error {
    let stored = store.load().is_ok_and(|t| holds_login(&t));
    match e {
        Error::ServerUnavailable { msg } if !stored => Error::Unchecked {
            msg,
            hint: "check your network and the OAuth URL (--oauth-url, LIGHTFI_OAUTH_URL), then try again".into(),
        },
        other => other,
    }
}

/// Forget the cached access token but keep the refresh token, so the next
/// call refreshes: git's `erase` after a server rejected the token.
///
/// With `rejected`, only that token is forgotten: if another process has
/// stored a newer one meanwhile, it stays. Returns whether a token was dropped.
pub fn forget_access(settings: &Settings, rejected: Option<&str>) -> Result<bool> {
    let store = Store::new(settings);
    let matches = |tokens: &Tokens| {
        tokens.access.as_ref().is_some_and(|a| {
            rejected.is_none_or(|r| {
                AccessToken::new(r) == a.token || a.id_token.as_ref().is_some_and(|id| IdToken::new(r) == *id)
            })
        })
    };
    // Nothing cached, or not the rejected token: no lock, no write.
    if !matches(&store.load()?) {
        return Ok(false);
    }
    let lock = store.lock(settings.lock_timeout)?;
    let mut tokens = store.load()?;
    if !matches(&tokens) {
        return Ok(false);
    }
    tokens.access = None;
    store.save(&tokens, &lock)?;
    Ok(true)
}

/// `login --refresh-token-stdin`: check the token with one refresh, then store it.
pub fn import(settings: &Settings, transport: &dyn Transport, refresh_token: RefreshToken) -> Result<Access> {
    if settings.storage == Storage::Vault {
        return super::shared::seed::import(settings, transport, refresh_token);
    }
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    placement::check_keyring_for_login(settings, &store)?;
    let (response, secret) = client_check::token_with_each_secret(transport, &settings.client, |client| {
        oauth::refresh_request(client, &refresh_token)
    });
    note_secret(settings, &store, secret, &response);
    let response = response.map_err(|f| match f.into_refresh_error() {
        Error::RefreshRejected(e) => Error::LoginFailed {
            msg: format!("the server rejected that refresh token ({e}); nothing was stored"),
            hint: "check that it was issued for this client id, or run `lightfi-token login`".into(),
        },
        other => other,
    })?;
    let mut tokens = store.load()?;
    let replaced = placement::replaceable(&store, &tokens);
    tokens.access = None;
    // Nothing to revoke when it fails: whoever imports the token holds it.
    let held = Held {
        settings,
        store: &store,
        lock: &lock,
    };
    let outcome = Outcome {
        response,
        source: Source::Login {
            imported: Some(refresh_token.clone()),
        },
    };
    let access = keep(held, &mut tokens, outcome)?;
    revoke_unkept(
        settings,
        transport,
        replaced.filter(|old| *old != refresh_token),
        "the refresh token this login replaced",
    );
    Ok(access)
}

/// Revoke a refresh token that nobody will hold (best effort): one a new
/// login replaced, or one it could not store; so no live token that
/// nobody holds is left at the server.
fn revoke_unkept(settings: &Settings, transport: &dyn Transport, token: Option<RefreshToken>, which: &str) {
    let Some(token) = token else { return };
    if let Err(failure) = oauth::revoke(transport, &oauth::revoke_request(&settings.client, &token)) {
        let why = failure.describe();
        report::warn(&format!(
            "could not revoke {which} ({why}); it stays valid at the server until it expires"
        ));
    }
}

/// What [`log_out`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum LoggedOut {
    /// The refresh token was revoked at the server and the tokens deleted.
    Revoked,
    /// The stored tokens were deleted (not revoked: asked not to, or it failed).
    Deleted,
    /// Nothing was stored for this identity; `others` logins of other
    /// identities are stored for the profile (and were left alone).
    NothingStored { others: usize },
}

/// `logout`: revoke the stored refresh token (RFC 7009), then delete the
/// profile's tokens — also when revocation fails, with a warning.
pub fn log_out(settings: &Settings, transport: &dyn Transport, revoke: bool) -> Result<LoggedOut> {
    if settings.storage == Storage::Vault {
        return Ok(match super::shared::seed::log_out(settings, transport, revoke)? {
            Some(true) => LoggedOut::Revoked,
            Some(false) => LoggedOut::Deleted,
            None => LoggedOut::NothingStored { others: 0 },
        });
    }
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    let tokens = store.load()?;
    // From wherever it is; a keyring that does not answer stops the logout
    // before anything is revoked or deleted, so it can be run again.
    let refresh_token = placement::stored_refresh_token(&store, &tokens, "nothing was revoked or deleted")?;
    let mut revoked = false;
    if let (true, Some(refresh_token)) = (revoke, &refresh_token) {
        match oauth::revoke(transport, &oauth::revoke_request(&settings.client, refresh_token)) {
            Ok(()) => revoked = true,
            Err(Failure::OAuth(e)) => report::warn(&format!(
                "the server refused to revoke the refresh token ({e}); deleting it here anyway"
            )),
            Err(other) => report::warn(&format!(
                "could not revoke the refresh token ({}); deleting it here anyway",
                other.describe()
            )),
        }
    }
    // The keyring's entry first: a file left pointing at a deleted entry
    // reads as "not logged in", an entry left without its file is forgotten.
    let in_keyring = tokens.refresh_token_in == RefreshTokenIn::Keyring;
    let mut deleted = false;
    if in_keyring || settings.storage != Storage::File {
        match keyring::delete(&store.keyring_account()) {
            Ok(existed) => deleted = existed,
            // Where the file points at the keyring, it answered a moment ago.
            Err(failure) if in_keyring => report::warn(&format!(
                "could not delete the refresh token from the keyring ({}); {}",
                failure.describe(),
                placement::removal_hint(&store)
            )),
            // Only a possible leftover copy: a keyring that is not there has none.
            Err(failure) => report::debug(|| format!("no leftover keyring entry deleted: {}", failure.describe())),
        }
    }
    deleted |= store.delete(&lock)?;
    Ok(match (deleted, revoked) {
        (_, true) => LoggedOut::Revoked,
        (true, false) => LoggedOut::Deleted,
        (false, false) => LoggedOut::NothingStored {
            others: store.others().len(),
        },
    })
}
