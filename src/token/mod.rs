//! The engine: a valid access token for the profile — from the cache, else
//! under the profile's lock: re-read, refresh, or log in — and the only
//! module that writes the token store. Commands call it; the login flow and
//! the OAuth requests return what the server answered and never store.

mod attempts;
mod lifecycle;
mod machine;
mod rejected;
mod rendered;
pub mod session;
mod shared;

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::config::{Grant, Settings, TokenKind};
use crate::error::{Error, Result};
use crate::login::LoginOptions;
use crate::oauth::{self, Failure, Transport};
use crate::report;
use crate::secret::RefreshToken;
use crate::store::{Access, AttemptKind, Handed, Lock, RefreshTokenIn, Store, Tokens};

use lifecycle::placement;
use lifecycle::{Held, Outcome, Source};

pub use lifecycle::{LoggedOut, forget_access, import, log_in, log_out, logged_in, secret_in_use};
pub use machine::{forget_machine_token, login_applies};
pub use rendered::peek as peek_token_file;
pub use shared::view as shared_view;

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
    if let Some(path) = &settings.token_file {
        return rendered::read(path, want.min_valid);
    }
    let store = Store::new(settings);
    let env_digest = settings.env_refresh_token.as_ref().map(digest);
    let fresh = |tokens: &Tokens| {
        let now = OffsetDateTime::now_utc();
        cached(tokens, env_digest.as_deref(), want.kind, now, want.min_valid)
    };
    if !want.force_refresh
        && let Some(access) = fresh(&store.load()?)
    {
        return Ok(access);
    }
    let wait_started = OffsetDateTime::now_utc();
    let lock = store.lock(settings.lock_timeout)?;
    let tokens = store.load()?;
    if !want.force_refresh
        && let Some(access) = fresh(&tokens)
    {
        return Ok(access);
    }
    if settings.storage == crate::config::Storage::Vault {
        let mut tokens = tokens;
        let shared = shared::Shared {
            settings,
            transport,
            store: &store,
            lock: &lock,
            want,
        };
        return shared.obtain(&mut tokens);
    }
    let engine = Engine {
        settings,
        transport,
        store: &store,
        lock: &lock,
        want,
        env_digest,
        retried: Cell::new(false),
    };
    // `--force-refresh` asks now, whatever was recorded (a person fixed something).
    let now = OffsetDateTime::now_utc();
    if let Some(attempt) = tokens
        .last_failure
        .as_ref()
        .filter(|_| !want.force_refresh)
        .filter(|a| attempts::still_applies(a, wait_started, now))
    {
        return attempts::repeat(attempt, engine.cached(&tokens, now), now, false);
    }
    engine.refresh_or_log_in(tokens)
}

/// One caller's work with the profile's lock held: refresh, or log in.
struct Engine<'a> {
    settings: &'a Settings,
    transport: &'a dyn Transport,
    store: &'a Store,
    lock: &'a Lock,
    want: Want,
    /// Set when the refresh token is `LIGHTFI_REFRESH_TOKEN`.
    env_digest: Option<String>,
    /// A rejected refresh was retried with the newer token another process stored.
    retried: Cell<bool>,
}

impl Engine<'_> {
    fn held(&self) -> Held<'_> {
        Held {
            settings: self.settings,
            store: self.store,
            lock: self.lock,
        }
    }

    /// The cached access token while it has not expired, to fall back on.
    fn cached(&self, tokens: &Tokens, now: OffsetDateTime) -> Option<Access> {
        cached(tokens, self.env_digest.as_deref(), self.want.kind, now, 0)
    }

    /// Record the failed attempt and answer with its outcome. The attempt
    /// took time: judge "not expired" by the clock now.
    fn fail(
        &self,
        tokens: &mut Tokens,
        kind: AttemptKind,
        err: Error,
        retry_after: Option<Duration>,
    ) -> Result<Access> {
        attempts::record(self.store, self.lock, tokens, attempts::failed(kind, &err, retry_after));
        let now = OffsetDateTime::now_utc();
        match tokens.last_failure.as_ref() {
            Some(attempt) => attempts::repeat(attempt, self.cached(tokens, now), now, true),
            None => Err(err),
        }
    }

    fn may_log_in(&self) -> bool {
        self.want.may_interact && interaction_allowed(self.settings)
    }

    /// A browser login, recorded when it fails.
    fn log_in(&self, tokens: &mut Tokens) -> Result<Access> {
        let result = lifecycle::log_in_locked(
            self.settings,
            self.transport,
            self.store,
            self.lock,
            LoginOptions::default(),
        );
        if let Err(e @ Error::LoginFailed { .. }) = &result {
            attempts::record(
                self.store,
                self.lock,
                tokens,
                attempts::failed(AttemptKind::Login, e, None),
            );
        }
        result
    }

    fn refresh_or_log_in(&self, mut tokens: Tokens) -> Result<Access> {
        if self.settings.grant == Grant::ClientCredentials {
            return self.client_credentials(tokens);
        }
        // LIGHTFI_REFRESH_TOKEN never touches any storage. A keyring that does
        // not answer is not "no refresh token": a login would replace a working one.
        let refresh_token = match &self.settings.env_refresh_token {
            Some(token) => Some(token.clone()),
            None => match placement::refresh_token_to_use(self.store, &tokens) {
                Ok(token) => token,
                Err(err) => return self.fail(&mut tokens, AttemptKind::Keyring, err, None),
            },
        };
        match refresh_token {
            Some(refresh_token) => self.refresh(tokens, refresh_token),
            None if self.may_log_in() => self.log_in(&mut tokens),
            None => Err(self.not_logged_in()),
        }
    }

    fn not_logged_in(&self) -> Error {
        let profile = &self.settings.profile;
        let msg = if self.store.others().is_empty() {
            format!("not logged in (profile `{profile}`)")
        } else {
            // Logged in, but with another client id, OAuth URL or scope set:
            // never hand out a token made for other settings.
            format!(
                "not logged in with these settings (profile `{profile}` has a login for another client id, OAuth URL \
                 or scopes; `lightfi-token status` lists them)"
            )
        };
        Error::LoginRequired { msg }
    }

    fn refresh(&self, mut tokens: Tokens, refresh_token: RefreshToken) -> Result<Access> {
        report::debug(|| {
            let from = match (&self.env_digest, tokens.refresh_token_in) {
                (Some(_), _) => "LIGHTFI_REFRESH_TOKEN",
                (None, RefreshTokenIn::Keyring) => "the keyring",
                (None, RefreshTokenIn::File) => "the store",
            };
            format!("refreshing with the refresh token from {from}")
        });
        // A rotating login: mark the refresh as under way, so that if this
        // process dies before storing the answer, the next one knows why the
        // stored refresh token may have stopped working.
        let died_mid_refresh = tokens.refresh_started.is_some();
        if tokens.rotates && self.env_digest.is_none() {
            tokens.refresh_started = Some(OffsetDateTime::now_utc());
            self.store.save(&tokens, self.lock)?;
        }
        let (answer, secret) =
            crate::client_check::token_with_each_secret(self.transport, &self.settings.client, |c| {
                oauth::refresh_request(c, &refresh_token)
            });
        lifecycle::note_secret(self.settings, self.store, secret, &answer);
        match answer {
            Ok(response) => {
                // A refresh that answers with a new refresh token: rotation.
                tokens.rotates |= response.refresh_token.is_some() && self.env_digest.is_none();
                let source = match &self.env_digest {
                    Some(digest) => Source::EnvRefresh { digest: digest.clone() },
                    None => Source::Refresh { in_use: refresh_token },
                };
                lifecycle::keep(self.held(), &mut tokens, Outcome { response, source })
            }
            Err(Failure::OAuth(e)) if e.error == "invalid_grant" => {
                if let Some(newer) = self.newer_login(&refresh_token) {
                    return newer;
                }
                self.rejected(tokens, e, died_mid_refresh)
            }
            Err(failure) => {
                let (kind, err, retry_after) = attempts::classify(failure);
                tokens.refresh_started = None;
                // Failing server, but the cached token has not expired yet:
                // better a token that works for a while than no token.
                self.fail(&mut tokens, kind, err, retry_after)
            }
        }
    }
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

/// A short digest identifying `LIGHTFI_REFRESH_TOKEN` without storing it.
fn digest(secret: &RefreshToken) -> String {
    format!("{:.32x}", Sha256::digest(secret.expose().as_bytes()))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;
    use crate::oauth::{Answer, FormPost};
    use crate::secret::AccessToken;

    /// A token endpoint in process: answers from a script and records what it was sent.
    pub(super) struct Scripted {
        answers: RefCell<VecDeque<Result<Answer, String>>>,
        pub(super) sent: RefCell<Vec<Vec<(&'static str, String)>>>,
        pub(super) pauses: RefCell<Vec<Duration>>,
    }

    impl Scripted {
        pub(super) fn new(answers: impl IntoIterator<Item = Result<Answer, String>>) -> Self {
            Scripted {
                answers: RefCell::new(answers.into_iter().collect()),
                sent: RefCell::default(),
                pauses: RefCell::default(),
            }
        }
        pub(super) fn field(&self, request: usize, name: &str) -> Option<String> {
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

    pub(super) fn answer(status: u16, body: &str) -> Result<Answer, String> {
        Ok(Answer {
            status,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        })
    }

    pub(super) fn fresh(access: &str, refresh: Option<&str>) -> Result<Answer, String> {
        let refresh = refresh
            .map(|r| format!(r#","refresh_token":"{r}""#))
            .unwrap_or_default();
        answer(
            200,
            &format!(r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3600{refresh}}}"#),
        )
    }

    pub(super) fn settings(home: &std::path::Path) -> Settings {
        Settings::for_tests(home, "http://127.0.0.1:9/oauth2")
    }

    /// Store a refresh token and an access token that expires in `expires_in` seconds.
    pub(super) fn seed(settings: &Settings, refresh: &str, access_expires_in: Option<i64>) {
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

    pub(super) fn stored(settings: &Settings) -> Tokens {
        Store::new(settings).load().unwrap()
    }

    pub(super) const WANT: Want = Want {
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
}
