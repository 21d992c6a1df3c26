//! Getting a valid access token: the cached path, then one refresh under the
//! profile's lock, then (when allowed) an interactive login. Also importing a
//! refresh token and logging out, which change the same store the same way.

use std::io::IsTerminal;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::oauth::{Failure, OAuthClient, TokenResponse};
use crate::secret::Secret;
use crate::store::{AccessToken, Lock, Store, Tokens};

/// The `--min-valid` default, also used by `git-credential`, `exec` and `serve`.
pub const DEFAULT_MIN_VALID: u64 = 300;

/// What the caller of [`obtain`] wants.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// Refresh when fewer seconds than this are left (capped at half the lifetime).
    pub min_valid: u64,
    pub force_refresh: bool,
    /// Does the caller allow a browser login when there is no usable refresh
    /// token? Even then one starts only if [`interaction_allowed`]; that check
    /// runs only when a login is needed, never on the cached path.
    pub may_interact: bool,
}

/// Whether a browser login may start: not forbidden by the flag, not in CI,
/// and someone is at a terminal (stdin or stderr).
pub fn interaction_allowed(settings: &Settings) -> bool {
    !settings.non_interactive && !running_in_ci() && (std::io::stdin().is_terminal() || std::io::stderr().is_terminal())
}

/// `CI` set to anything but empty, `0` or `false` (some set `CI=false` to say "not CI").
fn running_in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| {
        !matches!(
            v.to_string_lossy().trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false"
        )
    })
}

/// A valid access token for the profile.
///
/// The cached path reads the store without the lock and builds nothing else.
/// Otherwise, with the lock held: re-read (another process may have just
/// refreshed), refresh, or log in, and write the result — so N concurrent
/// callers cause one token request or one browser login.
pub fn obtain(settings: &Settings, want: Want) -> Result<AccessToken> {
    let store = Store::new(settings);
    let env_digest = settings.env_refresh_token.as_ref().map(digest);
    let now = OffsetDateTime::now_utc();
    if !want.force_refresh
        && let Some(access) = cached(&store.load(settings), env_digest.as_deref(), now, want.min_valid)
    {
        return Ok(access);
    }

    let lock = store.lock(settings.lock_timeout)?;
    let mut tokens = store.load(settings);
    let now = OffsetDateTime::now_utc();
    if !want.force_refresh
        && let Some(access) = cached(&tokens, env_digest.as_deref(), now, want.min_valid)
    {
        return Ok(access);
    }
    // Waited for another process: if it was logging in and that login failed
    // (cancelled, timed out), do not start a second one — one login per wave.
    let may_log_in = want.may_interact && !lock.waited() && interaction_allowed(settings);

    let refresh_token = settings
        .env_refresh_token
        .as_ref()
        .or(tokens.refresh_token.as_ref())
        .cloned();
    let Some(refresh_token) = refresh_token else {
        if may_log_in {
            return crate::login::login(settings, &store, &lock);
        }
        let msg = if lock.waited() && want.may_interact {
            format!(
                "not logged in (profile `{}`): another lightfi-token process held the profile and left no login",
                settings.profile
            )
        } else {
            format!("not logged in (profile `{}`)", settings.profile)
        };
        return Err(Error::LoginRequired { msg });
    };

    match OAuthClient::new(settings)?.refresh(&refresh_token) {
        Ok(response) => keep(&store, &lock, &mut tokens, response, env_digest),
        Err(Failure::OAuth(e)) if e.error == "invalid_grant" => {
            if settings.env_refresh_token.is_some() {
                return Err(Error::LoginFailed {
                    msg: format!("the server rejected LIGHTFI_REFRESH_TOKEN: {e}"),
                    hint: "replace LIGHTFI_REFRESH_TOKEN with a current refresh token, or unset it and run `lightfi-token login`"
                        .into(),
                });
            }
            // The refresh token is dead (revoked, expired, or rotated away), and
            // with it the access tokens issued from it: forget both.
            tokens.refresh_token = None;
            tokens.access = None;
            store.save(&tokens, &lock)?;
            if may_log_in {
                crate::warn(&format!("the stored login was rejected ({e}); logging in again"));
                return crate::login::login(settings, &store, &lock);
            }
            Err(Error::RefreshRejected(e))
        }
        Err(failure) => {
            let err = failure.into_refresh_error();
            // Failing server, but the cached token has not expired yet: better
            // a token that works for a while than no token. The retries took
            // time: judge "not expired" by the clock now.
            let now = OffsetDateTime::now_utc();
            if let Some(access) = cached(&tokens, env_digest.as_deref(), now, 0)
                && matches!(err, Error::ServerUnavailable { .. })
            {
                crate::warn(&format!(
                    "{err}; using the cached access token, which expires in {} s",
                    access.seconds_left(now)
                ));
                return Ok(access);
            }
            Err(err)
        }
    }
}

/// The cached access token, if it is fresh enough and was obtained with the
/// refresh token now in use (store or `LIGHTFI_REFRESH_TOKEN`).
fn cached(tokens: &Tokens, env_digest: Option<&str>, now: OffsetDateTime, min_valid: u64) -> Option<AccessToken> {
    let access = tokens.access.as_ref()?;
    (access.env_refresh_digest.as_deref() == env_digest && access.is_fresh(now, min_valid)).then(|| access.clone())
}

/// Store what a token response gave us and return the new access token.
/// A response without `refresh_token` keeps the stored one; a response with
/// one (rotation, RFC 6749 §6) replaces it. `env_digest` is set when the
/// refresh used `LIGHTFI_REFRESH_TOKEN`, which is never stored.
pub fn keep(
    store: &Store,
    lock: &Lock,
    tokens: &mut Tokens,
    response: TokenResponse,
    env_digest: Option<String>,
) -> Result<AccessToken> {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let access = AccessToken {
        token: response.access_token,
        token_type: response.token_type,
        obtained_at: now,
        expires_at: now + time::Duration::seconds(response.expires_in.min(i32::MAX as u64) as i64),
        scope: response.scope,
        env_refresh_digest: env_digest.clone(),
    };
    match (response.refresh_token, env_digest) {
        (Some(_), Some(_)) => crate::warn(
            "the server rotated LIGHTFI_REFRESH_TOKEN, so it will not work again; \
             this client needs refresh-token rotation off to be used from CI",
        ),
        (Some(rotated), None) => tokens.refresh_token = Some(rotated),
        (None, _) => {}
    }
    tokens.access = Some(access.clone());
    store.save(tokens, lock)?;
    Ok(access)
}

/// Forget the cached access token but keep the refresh token, so the next
/// call refreshes: git's `erase` after a server rejected the token.
///
/// With `rejected`, only that token is forgotten: if another process has
/// stored a newer one meanwhile, it stays. Returns whether a token was dropped.
pub fn forget_access(settings: &Settings, rejected: Option<&Secret>) -> Result<bool> {
    let store = Store::new(settings);
    let matches = |tokens: &Tokens| {
        tokens
            .access
            .as_ref()
            .is_some_and(|a| rejected.is_none_or(|r| *r == a.token))
    };
    // Nothing cached, or not the rejected token: no lock, no write.
    if !matches(&store.load(settings)) {
        return Ok(false);
    }
    let lock = store.lock(settings.lock_timeout)?;
    let mut tokens = store.load(settings);
    if !matches(&tokens) {
        return Ok(false);
    }
    tokens.access = None;
    store.save(&tokens, &lock)?;
    Ok(true)
}

/// `login --refresh-token-stdin`: check the token with one refresh, then store it.
pub fn import(settings: &Settings, refresh_token: Secret) -> Result<AccessToken> {
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    let response = OAuthClient::new(settings)?
        .refresh(&refresh_token)
        .map_err(|f| match f.into_refresh_error() {
            Error::RefreshRejected(e) => Error::LoginFailed {
                msg: format!("the server rejected that refresh token ({e}); nothing was stored"),
                hint: "check that it was issued for this client id, or run `lightfi-token login`".into(),
            },
            other => other,
        })?;
    let mut tokens = Tokens::empty(settings);
    tokens.refresh_token = Some(refresh_token);
    keep(&store, &lock, &mut tokens, response, None)
}

/// `logout`: revoke the stored refresh token (RFC 7009), then delete the
/// profile's tokens — also when revocation fails, with a warning.
pub fn logout(settings: &Settings, revoke: bool) -> Result<()> {
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    let tokens = store.load(settings);
    let mut revoked = false;
    if let (true, Some(refresh_token)) = (revoke, &tokens.refresh_token) {
        match OAuthClient::new(settings)?.revoke(refresh_token) {
            Ok(()) => revoked = true,
            Err(Failure::OAuth(e)) => crate::warn(&format!(
                "the server refused to revoke the refresh token ({e}); deleting it here anyway"
            )),
            Err(Failure::Unavailable(why)) => crate::warn(&format!(
                "could not revoke the refresh token ({why}); deleting it here anyway"
            )),
        }
    }
    let deleted = store.delete(&lock)?;
    let profile = &settings.profile;
    match (deleted, revoked) {
        (_, true) => eprintln!("lightfi-token: logged out of profile `{profile}`: refresh token revoked and deleted"),
        (true, false) => eprintln!("lightfi-token: logged out of profile `{profile}`: stored tokens deleted"),
        (false, false) => eprintln!("lightfi-token: profile `{profile}` has no stored tokens; nothing to do"),
    }
    Ok(())
}

/// A short digest identifying `LIGHTFI_REFRESH_TOKEN` without storing it.
fn digest(secret: &Secret) -> String {
    let hash = Sha256::digest(secret.expose().as_bytes());
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}
