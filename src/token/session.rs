//! When a login ends. A Cognito refresh token works for the app client's
//! refresh-token validity counted from the login, and refreshing (rotation
//! included) does not extend it: the end is the login's time plus the
//! profile's `refresh_token_validity`.

use time::OffsetDateTime;

use crate::config::Settings;
use crate::store::{RefreshTokenIn, Store, Tokens};
use crate::timestamp::rfc3339;

/// The end of the stored login, as far as it is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `at_the_latest`: an imported refresh token, which may be older than its import.
    Known { at: OffsetDateTime, at_the_latest: bool },
    /// `LIGHTFI_REFRESH_TOKEN`, or a login stored before its time was recorded.
    Unknown(&'static str),
}

/// The end of the login `tokens` hold, with `settings`' validity.
pub fn end(settings: &Settings, tokens: &Tokens) -> End {
    if settings.env_refresh_token.is_some() {
        return End::Unknown("LIGHTFI_REFRESH_TOKEN says nothing of when it was issued");
    }
    match tokens.logged_in_at {
        Some(at) => End::Known {
            at: at + settings.refresh_token_validity,
            at_the_latest: tokens.imported,
        },
        None => End::Unknown("this login was stored before lightfi-token recorded when a login happened"),
    }
}

/// "ends in 6 d 3 h (2026-…)", "ended at …", or why it is unknown.
pub fn describe(end: End, now: OffsetDateTime) -> String {
    match end {
        End::Known { at, at_the_latest } => {
            let latest = if at_the_latest { " at the latest" } else { "" };
            let left = at - now;
            if left.is_negative() {
                format!("ended{latest} at {}", rfc3339(at))
            } else {
                let hours = left.whole_hours();
                format!("ends{latest} in {} d {} h ({})", hours / 24, hours % 24, rfc3339(at))
            }
        }
        End::Unknown(why) => format!("end unknown ({why})"),
    }
}

/// When the refresh token was refused after the login's known end: the
/// session ended as planned, which is not a failure to report as one.
pub fn ended(settings: &Settings, tokens: &Tokens, now: OffsetDateTime) -> Option<String> {
    match end(settings, tokens) {
        End::Known { at, .. } if at <= now => Some(format!(
            "the session of profile `{}` ended at {} (refresh_token_validity after the login)",
            settings.profile,
            rfc3339(at)
        )),
        _ => None,
    }
}

/// During the login's last day, say when it ends, on stderr and at most
/// once a day: for interactive calls (`get`, `exec`), never for the
/// protocol helpers (git-credential, exec-credential).
pub fn warn_if_ending(settings: &Settings) {
    let store = Store::new(settings);
    let Ok(tokens) = store.load() else { return };
    let now = OffsetDateTime::now_utc();
    let logged_in = tokens.refresh_token.is_some() || tokens.refresh_token_in == RefreshTokenIn::Keyring;
    if let End::Known { at, .. } = end(settings, &tokens)
        && logged_in
        && at > now
        && at - now <= time::Duration::days(1)
    {
        store.warn_at_most_daily(
            "session-end",
            &format!(
                "the session of profile `{}` {}: run `lightfi-token login` before then",
                settings.profile,
                describe(end(settings, &tokens), now)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_reads_in_days_and_hours() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let end = End::Known {
            at: now + time::Duration::hours(6 * 24 + 3) + time::Duration::minutes(5),
            at_the_latest: false,
        };
        assert!(
            describe(end, now).starts_with("ends in 6 d 3 h (20"),
            "{}",
            describe(end, now)
        );
        let imported = End::Known {
            at: now - time::Duration::hours(1),
            at_the_latest: true,
        };
        assert!(describe(imported, now).starts_with("ended at the latest at"));
    }
}
