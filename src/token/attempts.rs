//! The failure memory: a failed refresh or login is recorded in the store,
//! so callers that waited for it, or come within the back-off after it,
//! answer with its outcome instead of asking the server again.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::oauth::Failure;
use crate::report;
use crate::store::{Access, Attempt, AttemptKind, Lock, Store, Tokens};

use super::{BACKOFF, MAX_BACKOFF};

/// Whether a recorded failure answers a caller that started waiting for the
/// lock at `wait_started`: it ended after that (the caller waited for it), or
/// it is recent enough that asking the server again would only add load.
/// A record that ends after `now` was written before the clock stepped back
/// (NTP, an RTC in local time, a resumed VM): its age is unknown, so it is
/// expired rather than replayed until the clock catches up.
pub(super) fn still_applies(attempt: &Attempt, wait_started: OffsetDateTime, now: OffsetDateTime) -> bool {
    if attempt.ended_at > now {
        return false;
    }
    let backoff = attempt
        .retry_after
        .map_or(BACKOFF, |secs| Duration::from_secs(secs).clamp(BACKOFF, MAX_BACKOFF));
    attempt.ended_at >= wait_started || now < attempt.ended_at + backoff
}

/// The outcome of a recorded failure, for this caller (`own`: the caller
/// that made the attempt): the still-valid cached token (`cached`, not yet
/// expired) with a warning when the server or keyring was failing, else the
/// same error.
pub(super) fn repeat(attempt: &Attempt, cached: Option<Access>, now: OffsetDateTime, own: bool) -> Result<Access> {
    let ago = (now - attempt.ended_at).whole_seconds().max(0);
    let when = if own {
        String::new()
    } else {
        format!(" (found by another lightfi-token {ago} s ago; not asking again yet: --force-refresh asks now)")
    };
    if matches!(attempt.kind, AttemptKind::Unavailable | AttemptKind::Keyring)
        && let Some(access) = cached
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

/// How an attempt that failed with `err` ended, to record; `retry_after`:
/// the server's `Retry-After`.
/// A failed token request as the failure memory keeps it: what kind of
/// failure, the error to report, and the server's `Retry-After`.
pub(super) fn classify(failure: Failure) -> (AttemptKind, Error, Option<Duration>) {
    let retry_after = match &failure {
        Failure::Unavailable { retry_after, .. } => *retry_after,
        _ => None,
    };
    let err = failure.into_refresh_error();
    let kind = match err {
        Error::ServerUnavailable { .. } => AttemptKind::Unavailable,
        _ => AttemptKind::Configuration,
    };
    (kind, err, retry_after)
}

pub(super) fn failed(kind: AttemptKind, err: &Error, retry_after: Option<Duration>) -> Attempt {
    Attempt {
        ended_at: OffsetDateTime::now_utc(),
        kind,
        message: err.to_string(),
        hint: err.hint(),
        retry_after: retry_after.map(|d| d.as_secs()),
    }
}

/// Record a failed attempt in the store (best effort: the caller reports
/// the failure itself either way).
pub(super) fn record(store: &Store, lock: &Lock, tokens: &mut Tokens, attempt: Attempt) {
    tokens.last_failure = Some(attempt);
    if let Err(e) = store.save(tokens, lock) {
        report::warn(&format!("cannot record the failed attempt: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::Answer;
    use crate::store::Store;
    use crate::token::tests::{Scripted, WANT, answer, fresh, seed, settings, stored};

    #[test]
    fn a_recorded_keyring_failure_is_answered_with_its_own_hint() {
        let now = OffsetDateTime::now_utc();
        let attempt = Attempt {
            ended_at: now,
            kind: AttemptKind::Keyring,
            message: "cannot read the refresh token from the keyring".into(),
            hint: "unlock it".into(),
            retry_after: None,
        };
        let err = repeat(&attempt, None, now, false).unwrap_err();
        assert!(matches!(err, Error::KeyringUnavailable { .. }), "{err:?}");
        assert_eq!((err.exit_code(), err.hint().as_str()), (5, "unlock it"));
    }

    #[test]
    fn a_failure_is_answered_again_without_a_request_during_the_back_off() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", Some(-10));
        let failing = || Scripted::new([answer(503, ""), answer(503, ""), answer(503, "")]);
        let server = failing();
        assert_eq!(crate::token::obtain(&s, &server, WANT).unwrap_err().exit_code(), 5);
        assert_eq!(server.sent.borrow().len(), 3);
        let attempt = stored(&s).last_failure.unwrap();
        assert_eq!(attempt.kind, AttemptKind::Unavailable);

        let quiet = Scripted::new([]);
        let err = crate::token::obtain(&s, &quiet, WANT).unwrap_err();
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
        assert_eq!(crate::token::obtain(&s, &healthy, WANT).unwrap().token.expose(), "a1");
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
        assert_eq!(
            crate::token::obtain(&s, &server, WANT).unwrap().token.expose(),
            "cached"
        );
        let attempt = stored(&s).last_failure.unwrap();
        assert_eq!(attempt.retry_after, Some(30));
        let now = OffsetDateTime::now_utc();
        assert!(still_applies(&attempt, now, now + Duration::from_secs(20)));
        assert!(!still_applies(&attempt, now, now + Duration::from_secs(31)));
    }

    #[test]
    fn a_failure_recorded_in_the_future_is_expired() {
        let now = OffsetDateTime::now_utc();
        let day = Duration::from_secs(24 * 3600);
        let at = |ended_at| Attempt {
            ended_at,
            kind: AttemptKind::Unavailable,
            message: "server error 503".into(),
            hint: String::new(),
            retry_after: None,
        };
        // Written a day ahead, before the clock stepped back: expired, both
        // for a caller that has just arrived and one that waited a while.
        assert!(!still_applies(&at(now + day), now, now));
        assert!(!still_applies(&at(now + day), now - day, now));
        // Older than its back-off: expired; within it: answered.
        assert!(!still_applies(&at(now - BACKOFF - Duration::from_secs(1)), now, now));
        assert!(still_applies(&at(now - Duration::from_secs(1)), now, now));
    }

    #[test]
    fn a_lost_rotation_is_explained() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        seed(&s, "r0", None);
        // Rotation seen once…
        let server = Scripted::new([fresh("a1", Some("r1"))]);
        crate::token::obtain(&s, &server, WANT).unwrap();
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
        assert_eq!(crate::token::obtain(&s, &server, WANT).unwrap_err().exit_code(), 3);
        assert!(stored(&s).refresh_started.is_none());
    }
}
