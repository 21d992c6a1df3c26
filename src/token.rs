//! The engine: a valid access token for the profile — from the cache, else
//! under the profile's lock: re-read, refresh, or log in — and the only
//! module that writes the token store. Commands call it; the login flow and
//! the OAuth requests return what the server answered and never store.

use std::io::IsTerminal;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::{Settings, Storage, TokenKind};
use crate::error::{Error, Result};
use crate::keyring;
use crate::login::{self, LoginOptions};
use crate::oauth::{self, Failure, TokenResponse, Transport};
use crate::report;
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::store::{Access, Attempt, AttemptKind, Handed, Lock, RefreshTokenIn, Store, Tokens};

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
    /// Which token must be fresh: the access token, or the ID token.
    pub kind: TokenKind,
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

/// How long callers that come after a failed attempt answer with its
/// outcome instead of asking the server again, unless it sent a longer
/// `Retry-After` (honoured up to [`MAX_BACKOFF`]).
pub const BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A valid access token for the profile.
///
/// The cached path reads the store without the lock and builds nothing else.
/// Otherwise, with the lock held: re-read (another process may have just
/// refreshed), refresh, or log in, and write the result — so N concurrent
/// callers cause one token request or one browser login. A failed attempt
/// is recorded too: callers that waited for it, or come within the back-off
/// after it, return its outcome without asking the server again.
pub fn obtain(settings: &Settings, transport: &dyn Transport, want: Want) -> Result<Access> {
    let access = obtain_any(settings, transport, want)?;
    hand(&access, want.kind)?;
    Ok(access)
}

/// The token of `kind` from `access`; for an ID token, an error that says
/// how to get one when the login brought none.
pub fn hand(access: &Access, kind: TokenKind) -> Result<Handed<'_>> {
    access.handed(kind).ok_or_else(|| {
        Error::config(
            "the server issued no ID token with this login",
            "Cognito issues ID tokens only for the `openid` scope: add it (e.g. --scope \"openid aws.cognito.signin.user.admin\", \
             LIGHTFI_SCOPE or scope in config.toml) and run `lightfi-token login` again",
        )
    })
}

fn obtain_any(settings: &Settings, transport: &dyn Transport, want: Want) -> Result<Access> {
    let store = Store::new(settings);
    let env_digest = settings.env_refresh_token.as_ref().map(digest);
    let now = OffsetDateTime::now_utc();
    if !want.force_refresh
        && let Some(access) = cached(&store.load()?, env_digest.as_deref(), want.kind, now, want.min_valid)
    {
        return Ok(access);
    }

    let wait_started = OffsetDateTime::now_utc();
    let lock = store.lock(settings.lock_timeout)?;
    let mut tokens = store.load()?;
    let now = OffsetDateTime::now_utc();
    if !want.force_refresh
        && let Some(access) = cached(&tokens, env_digest.as_deref(), want.kind, now, want.min_valid)
    {
        return Ok(access);
    }
    // `--force-refresh` asks now, whatever was recorded (a person fixed something).
    if let Some(attempt) = tokens
        .last_failure
        .as_ref()
        .filter(|_| !want.force_refresh)
        .filter(|a| still_applies(a, wait_started, now))
    {
        return repeat(attempt, &tokens, env_digest.as_deref(), want.kind, now, false);
    }
    let may_log_in = want.may_interact && interaction_allowed(settings);
    let log_in = |tokens: &mut Tokens| {
        let result = log_in_locked(settings, transport, &store, &lock, LoginOptions::default());
        if let Err(e @ Error::LoginFailed { .. }) = &result {
            record(&store, &lock, tokens, AttemptKind::Login, e, None);
        }
        result
    };

    // LIGHTFI_REFRESH_TOKEN never touches any storage. A keyring that does
    // not answer is not "no refresh token": a login would replace a working one.
    let refresh_token = match &settings.env_refresh_token {
        Some(token) => Some(token.clone()),
        None => match stored_refresh_token(&store, &tokens, "the stored login was kept") {
            Ok(token) => token,
            Err(err) => {
                record(&store, &lock, &mut tokens, AttemptKind::Keyring, &err, None);
                let now = OffsetDateTime::now_utc();
                return match tokens.last_failure.as_ref() {
                    Some(attempt) => repeat(attempt, &tokens, env_digest.as_deref(), want.kind, now, true),
                    None => Err(err),
                };
            }
        },
    };
    let Some(refresh_token) = refresh_token else {
        if may_log_in {
            return log_in(&mut tokens);
        }
        let msg = if store.others().is_empty() {
            format!("not logged in (profile `{}`)", settings.profile)
        } else {
            // Logged in, but with another client id, OAuth URL or scope set:
            // never hand out a token made for other settings.
            format!(
                "not logged in with these settings (profile `{}` has a login for another client id, OAuth URL \
                 or scopes; `lightfi-token status` lists them)",
                settings.profile
            )
        };
        return Err(Error::LoginRequired { msg });
    };

    report::debug(|| {
        let from = if settings.env_refresh_token.is_some() {
            "LIGHTFI_REFRESH_TOKEN"
        } else {
            "the store"
        };
        let from = match (from, tokens.refresh_token_in) {
            ("the store", RefreshTokenIn::Keyring) => "the keyring",
            (from, _) => from,
        };
        format!("refreshing with the refresh token from {from}")
    });
    // A rotating login: mark the refresh as under way, so that if this
    // process dies before storing the answer, the next one knows why the
    // stored refresh token may have stopped working.
    let died_mid_refresh = tokens.refresh_started.is_some();
    if tokens.rotates && settings.env_refresh_token.is_none() {
        tokens.refresh_started = Some(now);
        store.save(&tokens, &lock)?;
    }
    match oauth::token(transport, &oauth::refresh_request(&settings.client, &refresh_token)) {
        Ok(response) => {
            // A refresh that answers with a new refresh token: rotation.
            tokens.rotates |= response.refresh_token.is_some() && env_digest.is_none();
            let in_use = Some(refresh_token).filter(|_| env_digest.is_none());
            keep(
                settings,
                &store,
                &lock,
                &mut tokens,
                response,
                env_digest,
                in_use,
                false,
            )
        }
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
            let was_in_keyring = tokens.refresh_token_in == RefreshTokenIn::Keyring;
            tokens.refresh_token = None;
            tokens.refresh_token_in = RefreshTokenIn::File;
            tokens.access = None;
            tokens.refresh_started = None;
            tokens.last_failure = None;
            store.save(&tokens, &lock)?;
            if was_in_keyring {
                delete_keyring_entry(&store);
            }
            if died_mid_refresh {
                report::warn(
                    "a lightfi-token process was stopped between the server's answer to a refresh and storing it; \
                     the server rotates this login's refresh tokens, so the one it answered with was lost and \
                     the stored one was no longer valid (the app client's rotation grace period had passed)",
                );
            }
            if may_log_in {
                report::warn(&format!("the stored login was rejected ({e}); logging in again"));
                return log_in(&mut tokens);
            }
            Err(Error::RefreshRejected(e))
        }
        Err(failure) => {
            let retry_after = match &failure {
                Failure::Unavailable { retry_after, .. } => *retry_after,
                _ => None,
            };
            let err = failure.into_refresh_error();
            let kind = match err.exit_code() {
                5 => AttemptKind::Unavailable,
                _ => AttemptKind::Configuration,
            };
            tokens.refresh_started = None;
            record(&store, &lock, &mut tokens, kind, &err, retry_after);
            // Failing server, but the cached token has not expired yet: better
            // a token that works for a while than no token. The retries took
            // time: judge "not expired" by the clock now.
            let now = OffsetDateTime::now_utc();
            match tokens.last_failure.as_ref() {
                Some(attempt) => repeat(attempt, &tokens, env_digest.as_deref(), want.kind, now, true),
                None => Err(err),
            }
        }
    }
}

/// Whether a recorded failure answers a caller that started waiting for the
/// lock at `wait_started`: it ended after that (the caller waited for it), or
/// it is recent enough that asking the server again would only add load.
fn still_applies(attempt: &Attempt, wait_started: OffsetDateTime, now: OffsetDateTime) -> bool {
    let backoff = attempt
        .retry_after
        .map_or(BACKOFF, |secs| Duration::from_secs(secs).clamp(BACKOFF, MAX_BACKOFF));
    attempt.ended_at >= wait_started || now < attempt.ended_at + backoff
}

/// The outcome of a recorded failure, for this caller (`own`: the caller
/// that made the attempt): the still-valid cached token with a warning when
/// the server was failing, else the same error.
fn repeat(
    attempt: &Attempt,
    tokens: &Tokens,
    env_digest: Option<&str>,
    kind: TokenKind,
    now: OffsetDateTime,
    own: bool,
) -> Result<Access> {
    let ago = (now - attempt.ended_at).whole_seconds().max(0);
    let when = if own {
        String::new()
    } else {
        format!(" (found by another lightfi-token {ago} s ago; not asking again yet: --force-refresh asks now)")
    };
    if matches!(attempt.kind, AttemptKind::Unavailable | AttemptKind::Keyring)
        && let Some(access) = cached(tokens, env_digest, kind, now, 0)
    {
        report::warn(&format!(
            "{}{when}; using the cached access token, which expires in {} s",
            attempt.message,
            access.seconds_left(now)
        ));
        return Ok(access);
    }
    let msg = format!("{}{when}", attempt.message);
    let hint = attempt.hint.clone();
    Err(match attempt.kind {
        AttemptKind::Unavailable => Error::ServerUnavailable { msg },
        AttemptKind::Keyring => Error::KeyringUnavailable { msg, hint },
        AttemptKind::Configuration => Error::Config { msg, hint },
        AttemptKind::Login => Error::LoginFailed {
            msg: format!(
                "another lightfi-token process's login {ago} s ago left no login: {}",
                attempt.message
            ),
            hint,
        },
    })
}

/// Record a failed attempt in the store (best effort: the caller reports
/// the failure itself either way).
fn record(
    store: &Store,
    lock: &Lock,
    tokens: &mut Tokens,
    kind: AttemptKind,
    err: &Error,
    retry_after: Option<Duration>,
) {
    tokens.last_failure = Some(Attempt {
        ended_at: OffsetDateTime::now_utc(),
        kind,
        message: err.to_string(),
        hint: err.hint(),
        retry_after: retry_after.map(|d| d.as_secs()),
    });
    if let Err(e) = store.save(tokens, lock) {
        report::warn(&format!("cannot record the failed attempt: {e}"));
    }
}

/// `lightfi-token login`: log in now, whatever is stored, and store the result.
pub fn log_in(settings: &Settings, transport: &dyn Transport, options: LoginOptions) -> Result<Access> {
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    log_in_locked(settings, transport, &store, &lock, options)
}

/// Run the browser login with the lock held, store what it gave, and only
/// then tell the browser how it ended.
fn log_in_locked(
    settings: &Settings,
    transport: &dyn Transport,
    store: &Store,
    lock: &Lock,
    options: LoginOptions,
) -> Result<Access> {
    // Before any browser opens: a login that could not be stored is lost work.
    check_keyring_for_login(settings, store)?;
    let (exchanged, finish) = login::run(settings, transport, options)?;
    let result = exchanged.and_then(|response| {
        let mut tokens = store.load()?;
        tokens.access = None;
        if response.refresh_token.is_none() {
            report::warn(
                "the server issued no refresh token: you will have to log in again when this access token expires",
            );
        }
        let replaced = match response.refresh_token {
            Some(_) => replaceable(store, &tokens),
            None => None,
        };
        let issued = response.refresh_token.clone();
        match keep(settings, store, lock, &mut tokens, response, None, None, true) {
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
    let (access, replaced) = result?;
    revoke_unkept(settings, transport, replaced, "the refresh token this login replaced");
    report::note(&format!(
        "logged in (profile `{}`); access token valid until {}",
        settings.profile,
        crate::timestamp::rfc3339(access.expires_at)
    ));
    Ok(access)
}

/// The cached access token, if it is fresh enough and was obtained with the
/// refresh token now in use (store or `LIGHTFI_REFRESH_TOKEN`).
fn cached(
    tokens: &Tokens,
    env_digest: Option<&str>,
    kind: TokenKind,
    now: OffsetDateTime,
    min_valid: u64,
) -> Option<Access> {
    let access = tokens.access.as_ref()?;
    (access.env_refresh_digest.as_deref() == env_digest && access.is_fresh(kind, now, min_valid))
        .then(|| access.clone())
}

/// Store what a token response gave us and return the new access token.
/// A response without `refresh_token` keeps the stored one (`in_use`, moved
/// to where `storage` wants it if it is elsewhere); a response with one
/// (rotation, RFC 6749 §6) replaces it. `new_login`: `in_use` or the
/// response's refresh token is a new login's, stored wherever it was before.
/// `env_digest` is set when the refresh used `LIGHTFI_REFRESH_TOKEN`, which
/// is never stored.
#[allow(clippy::too_many_arguments)]
fn keep(
    settings: &Settings,
    store: &Store,
    lock: &Lock,
    tokens: &mut Tokens,
    response: TokenResponse,
    env_digest: Option<String>,
    in_use: Option<RefreshToken>,
    new_login: bool,
) -> Result<Access> {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let expires_at = now + time::Duration::seconds(response.expires_in.min(i32::MAX as u64) as i64);
    let access = Access {
        token: response.access_token,
        token_type: response.token_type,
        obtained_at: now,
        expires_at,
        scope: response.scope,
        env_refresh_digest: env_digest.clone(),
        id_expires_at: response.id_token.as_ref().map(|id| {
            let exp = crate::jwt::claims(id.expose())
                .and_then(|c| c.get("exp")?.as_i64())
                .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok());
            let latest = now + time::Duration::seconds(crate::oauth::MAX_EXPIRES_IN as i64);
            exp.map_or(expires_at, |exp| exp.min(latest))
        }),
        id_token: response.id_token,
    };
    let mut leave_keyring = false;
    match (response.refresh_token, env_digest) {
        (Some(_), Some(_)) => report::warn(
            "the server rotated LIGHTFI_REFRESH_TOKEN, so it will not work again; \
             this client needs refresh-token rotation off to be used from CI",
        ),
        (Some(rotated), None) => leave_keyring = place(settings, store, lock, tokens, rotated, new_login)?,
        (None, None) => {
            if let Some(token) = in_use.filter(|_| new_login || misplaced(settings, tokens)) {
                leave_keyring = place(settings, store, lock, tokens, token, new_login)?;
            }
        }
        (None, Some(_)) => {}
    }
    tokens.access = Some(access.clone());
    tokens.last_failure = None;
    tokens.refresh_started = None;
    store.save(tokens, lock)?;
    // Only once the file no longer points at it.
    if leave_keyring {
        delete_keyring_entry(store);
    }
    Ok(access)
}

/// The refresh token `tokens` point at: in the file, or read from the
/// keyring. None when there is none — also when the keyring answered that it
/// has no entry; an error when the keyring did not answer, which ends with
/// `outcome` (what became of the login).
fn stored_refresh_token(store: &Store, tokens: &Tokens, outcome: &str) -> Result<Option<RefreshToken>> {
    if tokens.refresh_token_in == RefreshTokenIn::File {
        return Ok(tokens.refresh_token.clone());
    }
    match keyring::read(&store.keyring_account()) {
        Ok(Some(token)) => Ok(Some(token)),
        Ok(None) => {
            report::warn(&format!(
                "the token store says this login's refresh token is in the keyring ({}), but the keyring has no entry \
                 for service `{}` account `{}` (removed outside lightfi-token?)",
                keyring::backend(),
                keyring::SERVICE,
                store.keyring_account()
            ));
            Ok(None)
        }
        Err(failure) => Err(keyring_error(store, "read the refresh token from", &failure, outcome)),
    }
}

/// The keyring error that names the entry and the fix.
fn keyring_error(store: &Store, what: &str, failure: &keyring::Failure, outcome: &str) -> Error {
    Error::KeyringUnavailable {
        msg: format!(
            "cannot {what} the keyring ({}, service `{}`, account `{}`): {}; {outcome}",
            keyring::backend(),
            keyring::SERVICE,
            store.keyring_account(),
            failure.describe()
        ),
        hint: format!(
            "make sure the {} is running and unlocked (on Linux: a Secret Service such as gnome-keyring or KeePassXC \
             on the D-Bus session bus, DBUS_SESSION_BUS_ADDRESS), then try again; `lightfi-token status` shows where \
             the login is kept",
            keyring::backend()
        ),
    }
}

/// Whether the stored refresh token is somewhere else than `storage` wants
/// it: in the file with `auto` or `keyring` (so a refresh moves it into the
/// keyring), or in the keyring with `file`.
fn misplaced(settings: &Settings, tokens: &Tokens) -> bool {
    match (settings.storage, tokens.refresh_token_in) {
        (Storage::File, RefreshTokenIn::Keyring) => true,
        (Storage::Auto | Storage::Keyring, RefreshTokenIn::File) => tokens.refresh_token.is_some(),
        _ => false,
    }
}

/// Put `token` where `storage` says, ready for the caller to save `tokens`.
/// Into the keyring first, read back, and only then does the file (once
/// saved) point at it and hold no copy. When the keyring cannot take it, the
/// token goes to the file (a refresh's token must never be lost; `auto` says
/// so once per profile, `keyring` every time) — except a new login with
/// `storage = "keyring"`, which fails and stores nothing. Returns whether
/// the keyring's entry is to be deleted once the file is saved (moved to the file).
fn place(
    settings: &Settings,
    store: &Store,
    lock: &Lock,
    tokens: &mut Tokens,
    token: RefreshToken,
    new_login: bool,
) -> Result<bool> {
    let was_in_keyring = tokens.refresh_token_in == RefreshTokenIn::Keyring;
    if settings.storage == Storage::File {
        tokens.refresh_token = Some(token);
        tokens.refresh_token_in = RefreshTokenIn::File;
        return Ok(was_in_keyring);
    }
    match keyring::write(&store.keyring_account(), &token) {
        Ok(()) => {
            report::debug(|| format!("the refresh token is in the keyring ({})", keyring::backend()));
            tokens.refresh_token = None;
            tokens.refresh_token_in = RefreshTokenIn::Keyring;
            store.forget_warning(lock);
            Ok(false)
        }
        Err(failure) if settings.storage == Storage::Keyring && new_login => Err(keyring_error(
            store,
            "store the refresh token in",
            &failure,
            "storage is `keyring`, so this login was not stored",
        )),
        Err(failure) => {
            tokens.refresh_token = Some(token);
            tokens.refresh_token_in = RefreshTokenIn::File;
            let path = store.path().display();
            let why = failure.describe();
            let backend = keyring::backend();
            if settings.storage == Storage::Keyring {
                report::warn(&format!(
                    "storage is `keyring`, but the {backend} cannot take the refresh token ({why}); it is kept in the \
                     plaintext file {path} (0600) until the keyring answers at a later refresh"
                ));
            } else {
                store.warn_once_per_profile(
                    &format!(
                        "no OS keyring answered ({backend}: {why}), so the refresh token is kept in the plaintext file \
                         {path} (0600); it moves into the keyring at a later refresh when one answers. To keep it in the \
                         file and silence this, set storage = \"file\" in the profile's table of config.toml (or \
                         LIGHTFI_STORAGE=file). This is said once per profile."
                    ),
                    lock,
                );
            }
            Ok(false)
        }
    }
}

/// Delete the keyring entry of a login whose file no longer points at it
/// (best effort: a leftover is said, with how to remove it).
fn delete_keyring_entry(store: &Store) {
    if let Err(failure) = keyring::delete(&store.keyring_account()) {
        report::warn(&format!(
            "could not delete the old refresh token from the keyring ({}); {}",
            failure.describe(),
            removal_hint(store)
        ));
    }
}

/// How to remove this login's keyring entry by hand.
fn removal_hint(store: &Store) -> String {
    let account = store.keyring_account();
    let service = keyring::SERVICE;
    if cfg!(target_os = "macos") {
        format!("remove it with `security delete-generic-password -s {service} -a {account}`")
    } else if cfg!(windows) {
        format!("remove it with `cmdkey /delete:{account}.{service}`")
    } else {
        format!("remove it with `secret-tool clear service {service} username {account}`")
    }
}

/// With `storage = "keyring"`, fail before a login when the keyring does not
/// answer: the login could not be stored.
fn check_keyring_for_login(settings: &Settings, store: &Store) -> Result<()> {
    if settings.storage != Storage::Keyring {
        return Ok(());
    }
    keyring::read(&store.keyring_account()).map(|_| ()).map_err(|failure| {
        keyring_error(
            store,
            "reach",
            &failure,
            "storage is `keyring`, so no login was started",
        )
    })
}

/// The stored refresh token a new login replaces, to revoke it: None when
/// there is none, or it is in a keyring that does not answer (said).
fn replaceable(store: &Store, tokens: &Tokens) -> Option<RefreshToken> {
    stored_refresh_token(store, tokens, "it stays in the keyring").unwrap_or_else(|e| {
        report::warn(&format!("cannot revoke the refresh token this login replaces: {e}"));
        None
    })
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
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    check_keyring_for_login(settings, &store)?;
    let response = oauth::token(transport, &oauth::refresh_request(&settings.client, &refresh_token)).map_err(|f| {
        match f.into_refresh_error() {
            Error::RefreshRejected(e) => Error::LoginFailed {
                msg: format!("the server rejected that refresh token ({e}); nothing was stored"),
                hint: "check that it was issued for this client id, or run `lightfi-token login`".into(),
            },
            other => other,
        }
    })?;
    let mut tokens = store.load()?;
    let replaced = replaceable(&store, &tokens);
    tokens.access = None;
    // Nothing to revoke when it fails: whoever imports the token holds it.
    let access = keep(
        settings,
        &store,
        &lock,
        &mut tokens,
        response,
        None,
        Some(refresh_token.clone()),
        true,
    )?;
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
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    let tokens = store.load()?;
    // From wherever it is; a keyring that does not answer stops the logout
    // before anything is revoked or deleted, so it can be run again.
    let refresh_token = stored_refresh_token(&store, &tokens, "nothing was revoked or deleted")?;
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
                removal_hint(&store)
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

/// A short digest identifying `LIGHTFI_REFRESH_TOKEN` without storing it.
fn digest(secret: &RefreshToken) -> String {
    let hash = Sha256::digest(secret.expose().as_bytes());
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;
    use crate::oauth::{Answer, FormPost};

    /// A token endpoint in process: answers from a script and records what it was sent.
    struct Scripted {
        answers: RefCell<VecDeque<Result<Answer, String>>>,
        sent: RefCell<Vec<Vec<(&'static str, String)>>>,
        pauses: RefCell<Vec<Duration>>,
    }

    impl Scripted {
        fn new(answers: impl IntoIterator<Item = Result<Answer, String>>) -> Self {
            Scripted {
                answers: RefCell::new(answers.into_iter().collect()),
                sent: RefCell::default(),
                pauses: RefCell::default(),
            }
        }
        fn field(&self, request: usize, name: &str) -> Option<String> {
            let sent = self.sent.borrow();
            sent[request].iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        }
    }

    impl Transport for Scripted {
        fn send(&self, post: &FormPost) -> Result<Answer, String> {
            self.sent.borrow_mut().push(post.form.clone());
            self.answers.borrow_mut().pop_front().expect("an answer was scripted")
        }
        fn pause(&self, duration: Duration) {
            self.pauses.borrow_mut().push(duration);
        }
        fn probe(&self, _url: &str) -> Result<crate::oauth::Probe, String> {
            Err("no browser logins in these tests".into())
        }
    }

    fn answer(status: u16, body: &str) -> Result<Answer, String> {
        Ok(Answer {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        })
    }

    fn fresh(access: &str, refresh: Option<&str>) -> Result<Answer, String> {
        let refresh = refresh
            .map(|r| format!(r#","refresh_token":"{r}""#))
            .unwrap_or_default();
        answer(
            200,
            &format!(r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3600{refresh}}}"#),
        )
    }

    fn settings(home: &std::path::Path) -> Settings {
        Settings::for_tests(home, "http://127.0.0.1:9/oauth2")
    }

    /// Store a refresh token and an access token that expires in `expires_in` seconds.
    fn seed(settings: &Settings, refresh: &str, access_expires_in: Option<i64>) {
        let store = Store::new(settings);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let mut tokens = store.empty();
        tokens.refresh_token = Some(RefreshToken::new(refresh));
        let now = OffsetDateTime::now_utc();
        tokens.access = access_expires_in.map(|secs| Access {
            token: AccessToken::new("cached"),
            token_type: "Bearer".into(),
            obtained_at: now - time::Duration::seconds(3600 - secs),
            expires_at: now + time::Duration::seconds(secs),
            scope: None,
            env_refresh_digest: None,
            id_token: None,
            id_expires_at: None,
        });
        store.save(&tokens, &lock).unwrap();
    }

    fn stored(settings: &Settings) -> Tokens {
        Store::new(settings).load().unwrap()
    }

    const WANT: Want = Want {
        min_valid: DEFAULT_MIN_VALID,
        force_refresh: false,
        may_interact: false,
        kind: TokenKind::Access,
    };

    #[test]
    fn a_fresh_cached_token_is_returned_without_a_request() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(3000));
        let server = Scripted::new([]);
        assert_eq!(obtain(&s, &server, WANT).unwrap().token.expose(), "cached");
        assert!(server.sent.borrow().is_empty());
    }

    #[test]
    fn a_stale_token_is_refreshed_once_and_the_refresh_token_kept() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(100));
        let server = Scripted::new([fresh("new", None)]);
        assert_eq!(obtain(&s, &server, WANT).unwrap().token.expose(), "new");
        assert_eq!(server.field(0, "grant_type").as_deref(), Some("refresh_token"));
        assert_eq!(server.field(0, "refresh_token").as_deref(), Some("r0"));
        let tokens = stored(&s);
        assert_eq!(tokens.refresh_token, Some(RefreshToken::new("r0")));
        assert_eq!(tokens.access.unwrap().token.expose(), "new");
        // And now it is cached.
        assert_eq!(obtain(&s, &server, WANT).unwrap().token.expose(), "new");
        assert_eq!(server.sent.borrow().len(), 1);
    }

    #[test]
    fn a_rotated_refresh_token_replaces_the_stored_one() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", None);
        let server = Scripted::new([fresh("a1", Some("r1")), fresh("a2", Some("r2"))]);
        obtain(&s, &server, WANT).unwrap();
        let force = Want {
            force_refresh: true,
            ..WANT
        };
        obtain(&s, &server, force).unwrap();
        assert_eq!(server.field(1, "refresh_token").as_deref(), Some("r1"));
        assert_eq!(stored(&s).refresh_token, Some(RefreshToken::new("r2")));
    }

    #[test]
    fn invalid_grant_forgets_the_login_and_asks_for_one() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(100));
        let server = Scripted::new([answer(400, r#"{"error":"invalid_grant"}"#)]);
        let err = obtain(&s, &server, WANT).unwrap_err();
        assert!(matches!(err, Error::RefreshRejected(_)), "{err:?}");
        assert_eq!(err.exit_code(), 3);
        let tokens = stored(&s);
        assert!(tokens.refresh_token.is_none() && tokens.access.is_none());
    }

    #[test]
    fn invalid_client_is_a_configuration_error_that_keeps_the_login() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", None);
        let server = Scripted::new([answer(400, r#"{"error":"invalid_client"}"#)]);
        assert_eq!(obtain(&s, &server, WANT).unwrap_err().exit_code(), 4);
        assert_eq!(stored(&s).refresh_token, Some(RefreshToken::new("r0")));
    }

    #[test]
    fn a_failing_server_retries_then_falls_back_to_the_valid_cached_token() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(100));
        let server = Scripted::new([answer(503, ""), Err("connection reset".into()), answer(502, "")]);
        let access = obtain(&s, &server, WANT).unwrap();
        assert_eq!(access.token.expose(), "cached");
        assert_eq!(server.sent.borrow().len(), 3, "one try and two retries");
        let pauses = server.pauses.borrow();
        assert_eq!(pauses.len(), 2);
        // 0.5 s then 1 s, each with ±50 % jitter.
        assert!((250..=750).contains(&pauses[0].as_millis()), "{pauses:?}");
        assert!((500..=1500).contains(&pauses[1].as_millis()), "{pauses:?}");
        assert_eq!(stored(&s).refresh_token, Some(RefreshToken::new("r0")));
    }

    #[test]
    fn a_failing_server_without_a_valid_token_is_exit_5_and_keeps_the_login() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(-10));
        let server = Scripted::new([answer(500, ""), answer(500, ""), answer(200, "<html>")]);
        let err = obtain(&s, &server, WANT).unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
        assert_eq!(stored(&s).refresh_token, Some(RefreshToken::new("r0")));
    }

    #[test]
    fn retry_after_is_honoured() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", None);
        let busy = Ok(Answer {
            status: 429,
            retry_after: Some(Duration::from_secs(2)),
            body: vec![],
        });
        let server = Scripted::new([busy, fresh("a", None)]);
        obtain(&s, &server, WANT).unwrap();
        assert_eq!(*server.pauses.borrow(), [Duration::from_secs(2)]);
    }

    #[test]
    fn without_a_refresh_token_and_no_terminal_a_login_is_required() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let err = obtain(&s, &Scripted::new([]), WANT).unwrap_err();
        assert!(matches!(err, Error::LoginRequired { .. }), "{err:?}");
    }

    #[test]
    fn an_import_revokes_the_refresh_token_it_replaces() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(100));
        let server = Scripted::new([fresh("a1", None), answer(200, "")]);
        import(&s, &server, RefreshToken::new("r1")).unwrap();
        assert_eq!(server.field(0, "refresh_token").as_deref(), Some("r1"));
        assert_eq!(
            server.field(1, "token").as_deref(),
            Some("r0"),
            "the old one is revoked"
        );
        assert_eq!(stored(&s).refresh_token, Some(RefreshToken::new("r1")));
        // Importing the same token again revokes nothing.
        let server = Scripted::new([fresh("a2", None)]);
        import(&s, &server, RefreshToken::new("r1")).unwrap();
        assert_eq!(server.sent.borrow().len(), 1);
    }

    #[test]
    fn a_login_for_other_scopes_is_not_used_and_the_error_says_so() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(3000));
        let mut other = settings(home.path());
        other.scope = "openid".into();
        let err = obtain(&other, &Scripted::new([]), WANT).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.to_string().contains("another client id, OAuth URL or scopes"),
            "{err}"
        );
    }

    #[test]
    fn a_failure_is_answered_again_without_a_request_during_the_back_off() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(-10));
        let failing = || Scripted::new([answer(503, ""), answer(503, ""), answer(503, "")]);
        let server = failing();
        assert_eq!(obtain(&s, &server, WANT).unwrap_err().exit_code(), 5);
        assert_eq!(server.sent.borrow().len(), 3);
        let attempt = stored(&s).last_failure.unwrap();
        assert_eq!(attempt.kind, AttemptKind::Unavailable);

        let quiet = Scripted::new([]);
        let err = obtain(&s, &quiet, WANT).unwrap_err();
        assert_eq!(err.exit_code(), 5);
        assert!(err.to_string().contains("503"), "{err}");
        assert!(quiet.sent.borrow().is_empty(), "no request during the back-off");

        // Once the back-off has passed, one caller asks again.
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let mut tokens = store.load().unwrap();
        tokens.last_failure.as_mut().unwrap().ended_at -= BACKOFF + Duration::from_secs(1);
        store.save(&tokens, &lock).unwrap();
        drop(lock);
        let healthy = Scripted::new([fresh("a1", None)]);
        assert_eq!(obtain(&s, &healthy, WANT).unwrap().token.expose(), "a1");
        assert!(stored(&s).last_failure.is_none(), "success clears the record");
    }

    #[test]
    fn a_longer_retry_after_stretches_the_back_off_up_to_a_minute() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(100));
        let busy = |secs| {
            Ok(Answer {
                status: 429,
                retry_after: Some(Duration::from_secs(secs)),
                body: vec![],
            })
        };
        let server = Scripted::new([busy(1), busy(1), busy(30)]);
        // The cached token is still valid: it is used, with a warning.
        assert_eq!(obtain(&s, &server, WANT).unwrap().token.expose(), "cached");
        let attempt = stored(&s).last_failure.unwrap();
        assert_eq!(attempt.retry_after, Some(30));
        let now = OffsetDateTime::now_utc();
        assert!(still_applies(&attempt, now, now + Duration::from_secs(20)));
        assert!(!still_applies(&attempt, now, now + Duration::from_secs(31)));
    }

    #[test]
    fn a_refresh_token_moves_only_when_storage_wants_it_elsewhere() {
        let home = tempfile::tempdir().unwrap();
        let mut s = settings(home.path());
        let store = Store::new(&s);
        let mut in_file = store.empty();
        in_file.refresh_token = Some(RefreshToken::new("r"));
        let mut in_keyring = store.empty();
        in_keyring.refresh_token_in = RefreshTokenIn::Keyring;
        for (storage, tokens, moves) in [
            (Storage::Auto, &in_file, true),
            (Storage::Keyring, &in_file, true),
            (Storage::File, &in_file, false),
            (Storage::Auto, &in_keyring, false),
            (Storage::Keyring, &in_keyring, false),
            (Storage::File, &in_keyring, true),
            (Storage::Auto, &store.empty(), false),
        ] {
            s.storage = storage;
            assert_eq!(
                misplaced(&s, tokens),
                moves,
                "{storage:?} {:?}",
                tokens.refresh_token_in
            );
        }
    }

    #[test]
    fn a_recorded_keyring_failure_is_answered_with_its_own_hint() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let now = OffsetDateTime::now_utc();
        let attempt = Attempt {
            ended_at: now,
            kind: AttemptKind::Keyring,
            message: "cannot read the refresh token from the keyring".into(),
            hint: "unlock it".into(),
            retry_after: None,
        };
        let tokens = Store::new(&s).empty();
        let err = repeat(&attempt, &tokens, None, TokenKind::Access, now, false).unwrap_err();
        assert!(matches!(err, Error::KeyringUnavailable { .. }), "{err:?}");
        assert_eq!((err.exit_code(), err.hint().as_str()), (5, "unlock it"));
    }

    #[test]
    fn a_lost_rotation_is_explained() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", None);
        // Rotation seen once…
        let server = Scripted::new([fresh("a1", Some("r1"))]);
        obtain(&s, &server, WANT).unwrap();
        assert!(stored(&s).rotates);
        // …then a process dies after sending a refresh, before storing its answer.
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let mut tokens = store.load().unwrap();
        tokens.refresh_started = Some(OffsetDateTime::now_utc());
        tokens.access = None;
        store.save(&tokens, &lock).unwrap();
        drop(lock);
        let server = Scripted::new([answer(400, r#"{"error":"invalid_grant"}"#)]);
        assert_eq!(obtain(&s, &server, WANT).unwrap_err().exit_code(), 3);
        assert!(stored(&s).refresh_started.is_none());
    }
}
