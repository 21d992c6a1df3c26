//! The store file's format: its version, what it holds, and reading it —
//! including files of earlier versions, which are read as this one.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Identity;
use crate::config::TokenKind;
use crate::error::{Error, Result};
use crate::report;
use crate::secret::{AccessToken, IdToken, RefreshToken};

/// The store file format this binary writes. Files without a version were
/// written before versions existed and read as this one; a file with a newer
/// version is refused and never overwritten. Version 2 added
/// `refresh_token_in`: a version 1 reader would take a file whose refresh
/// token is in the keyring for "not logged in", so it must refuse the file.
pub const FORMAT_VERSION: u32 = 2;

/// Where a login's refresh token is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshTokenIn {
    /// In this file's `refresh_token` (also: files of version 1, which lack the field).
    #[default]
    File,
    /// In the OS keyring, under the store's [`Store::keyring_account`]; the
    /// file has no `refresh_token` then.
    Keyring,
}

impl RefreshTokenIn {
    fn is_file(&self) -> bool {
        *self == RefreshTokenIn::File
    }
}

/// What one profile's file holds. Tokens are bound to the client id and OAuth
/// URL they were issued for; a file for another client or URL reads as empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    #[serde(default)]
    pub version: u32,
    pub client_id: String,
    pub oauth_url: String,
    /// The scopes the login asked for (absent in files of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// Where the refresh token is: absent means this file.
    #[serde(default, skip_serializing_if = "RefreshTokenIn::is_file")]
    pub refresh_token_in: RefreshTokenIn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// How the last refresh or login that failed ended: callers that waited
    /// for it, and callers soon after it, answer the same instead of asking
    /// the server again (one request per wave, also when it fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Attempt>,
    /// The server has rotated this login's refresh token before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotates: bool,
    /// Set while a refresh of a rotating login is under way: if it is still
    /// set when the next process reads the store, the process that sent it
    /// died before storing the answer, and the refresh token it had may be gone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub refresh_started: Option<OffsetDateTime>,
    /// When this login happened (a browser login, or an import): a Cognito
    /// refresh token ends a fixed time after it, whatever refreshes follow.
    /// Absent in files written before it was recorded: the end is unknown.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub logged_in_at: Option<OffsetDateTime>,
    /// The login was an imported refresh token, which may be older than
    /// `logged_in_at`: its end is at the latest the one counted from there.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
    /// Tokens obtained with the client's own credentials, which are billed per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Requests>,
}

/// Token requests counted per UTC day and month (`2026-12-04`, `2026-12`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Requests {
    pub day: String,
    pub today: u64,
    pub month: String,
    pub this_month: u64,
}

impl Requests {
    /// One more request at `now`; a new day or month starts from zero.
    pub fn count(&mut self, now: OffsetDateTime) {
        let (day, month) = day_and_month(now);
        if self.month != month {
            (self.month, self.this_month) = (month, 0);
        }
        if self.day != day {
            (self.day, self.today) = (day, 0);
        }
        self.today += 1;
        self.this_month += 1;
    }

    /// The requests of `now`'s day and month.
    pub fn at(&self, now: OffsetDateTime) -> (u64, u64) {
        let (day, month) = day_and_month(now);
        (
            if self.day == day { self.today } else { 0 },
            if self.month == month { self.this_month } else { 0 },
        )
    }
}

fn day_and_month(now: OffsetDateTime) -> (String, String) {
    let now = now.to_offset(time::UtcOffset::UTC);
    let month = format!("{:04}-{:02}", now.year(), u8::from(now.month()));
    (format!("{month}-{:02}", now.day()), month)
}

/// A failed attempt to get tokens, as recorded in the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    pub kind: AttemptKind,
    /// The error's message and hint, as the caller that made the attempt reported them.
    pub message: String,
    #[serde(default)]
    pub hint: String,
    /// The server's `Retry-After`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// The server was unreachable or failing (exit 5).
    Unavailable,
    /// The server refused our client, or the URL is wrong (exit 4).
    Configuration,
    /// A browser login was cancelled, refused or timed out (exit 3).
    Login,
    /// The keyring holding the refresh token did not answer (exit 5).
    Keyring,
}

/// An access token and what we know about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Access {
    pub token: AccessToken,
    pub token_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub obtained_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Set when the token was refreshed with `LIGHTFI_REFRESH_TOKEN`: a digest
    /// of that token, so the cached access token is reused only with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_refresh_digest: Option<String>,
    /// The ID token that came with the access token (for the `openid` scope),
    /// and its own expiry (its `exp` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub id_expires_at: Option<OffsetDateTime>,
}

/// The token a command hands out, of the kind it was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Handed<'a> {
    /// The value itself, in its secret type up to the place that prints or sends it.
    pub token: Bearer<'a>,
    pub obtained_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The token handed out: an access token or an ID token. `Debug` names the
/// kind only.
#[derive(Debug, Clone, Copy)]
pub enum Bearer<'a> {
    Access(&'a AccessToken),
    Id(&'a IdToken),
}

impl<'a> Bearer<'a> {
    /// The value itself: call only where it is printed or sent.
    pub fn expose(&self) -> &'a str {
        match self {
            Bearer::Access(token) => token.expose(),
            Bearer::Id(token) => token.expose(),
        }
    }
}

impl Handed<'_> {
    pub fn kind(&self) -> TokenKind {
        match self.token {
            Bearer::Access(_) => TokenKind::Access,
            Bearer::Id(_) => TokenKind::Id,
        }
    }

    /// Seconds of validity left at `now` (negative once expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> i64 {
        (self.expires_at - now).whole_seconds()
    }

    /// Usable without a refresh: more than `min_valid` seconds left, where the
    /// margin is capped at half the token's lifetime — otherwise a token that
    /// lives 5 minutes would be refreshed on every call with the 300 s default.
    pub fn is_fresh(&self, now: OffsetDateTime, min_valid: u64) -> bool {
        let lifetime = (self.expires_at - self.obtained_at).whole_seconds().max(0);
        let margin = (min_valid.min(i64::MAX as u64) as i64).min(lifetime / 2);
        self.seconds_left(now) > margin
    }
}

impl Access {
    /// Seconds of validity left at `now` (negative once expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> i64 {
        (self.expires_at - now).whole_seconds()
    }

    /// The token of `kind`, if one was issued.
    pub fn handed(&self, kind: TokenKind) -> Option<Handed<'_>> {
        let (token, expires_at) = match kind {
            TokenKind::Access => (Bearer::Access(&self.token), self.expires_at),
            TokenKind::Id => (
                Bearer::Id(self.id_token.as_ref()?),
                self.id_expires_at.unwrap_or(self.expires_at),
            ),
        };
        Some(Handed {
            token,
            obtained_at: self.obtained_at,
            expires_at,
        })
    }

    /// Whether the token of `kind` is there and fresh enough (see [`Handed::is_fresh`]).
    pub fn is_fresh(&self, kind: TokenKind, now: OffsetDateTime, min_valid: u64) -> bool {
        self.handed(kind).is_some_and(|h| h.is_fresh(now, min_valid))
    }
}

impl Tokens {
    /// Whether these tokens are `identity`'s. A file of an earlier version
    /// names no scopes: it is taken for the scopes asked now.
    pub(super) fn belongs_to(&self, identity: &Identity) -> bool {
        self.client_id == identity.client_id
            && self.oauth_url == identity.oauth_url
            && self.scope.as_ref().is_none_or(|s| *s == identity.scope)
    }
}

/// The tokens in `path`: None when it is missing or unreadable.
pub(super) fn read(path: &Path) -> Result<Option<Tokens>> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let bytes = match crate::platform::read_regular(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) => {
            report::warn_once(
                &WARNED,
                &format!("cannot read {}: {e}; treating it as empty", path.display()),
            );
            return Ok(None);
        }
    };
    match serde_json::from_slice::<Tokens>(&bytes) {
        Ok(tokens) if tokens.version > FORMAT_VERSION => Err(Error::config(
            format!(
                "the token store {} has format version {}, newer than this lightfi-token knows ({FORMAT_VERSION})",
                path.display(),
                tokens.version
            ),
            "upgrade lightfi-token (a newer version wrote this file), or use another --home",
        )),
        Ok(tokens) => Ok(Some(tokens)),
        Err(e) => {
            // serde_json's message names a line and column and the expected
            // type, never the file's content.
            let what = if e.is_data() {
                "unexpected content"
            } else {
                "not valid JSON"
            };
            report::warn_once(
                &WARNED,
                &format!(
                    "the token store {} is corrupt ({what} at line {}, column {}); treating it as empty",
                    path.display(),
                    e.line(),
                    e.column()
                ),
            );
            Ok(None)
        }
    }
}

/// The bytes to write for `tokens`, stamped with this binary's version. A
/// refresh token in the keyring has no copy in the file.
pub(super) fn encode(tokens: &Tokens) -> Result<Vec<u8>> {
    let mut tokens = tokens.clone();
    tokens.version = FORMAT_VERSION;
    if tokens.refresh_token_in == RefreshTokenIn::Keyring {
        tokens.refresh_token = None;
    }
    serde_json::to_vec_pretty(&tokens).map_err(|e| Error::unexpected(format!("cannot encode tokens: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use time::macros::datetime;

    fn token(obtained: OffsetDateTime, expires: OffsetDateTime) -> Access {
        Access {
            token: AccessToken::new("t"),
            token_type: "Bearer".into(),
            obtained_at: obtained,
            expires_at: expires,
            scope: None,
            env_refresh_digest: None,
            id_token: None,
            id_expires_at: None,
        }
    }

    #[test]
    fn min_valid_is_capped_at_half_the_lifetime() {
        let t0 = datetime!(2026-11-26 10:00 UTC);
        // A 5-minute token with the 300 s default: fresh for its first half.
        let a = TokenKind::Access;
        let short = token(t0, t0 + Duration::from_secs(300));
        assert!(short.is_fresh(a, t0 + Duration::from_secs(100), 300));
        assert!(!short.is_fresh(a, t0 + Duration::from_secs(160), 300));
        // A 1-hour token: refreshed when less than 300 s are left.
        let long = token(t0, t0 + Duration::from_secs(3600));
        assert!(long.is_fresh(a, t0 + Duration::from_secs(3200), 300));
        assert!(!long.is_fresh(a, t0 + Duration::from_secs(3400), 300));
        assert!(!long.is_fresh(a, t0 + Duration::from_secs(4000), 0));
        // No ID token: never fresh as one. One with its own, shorter life.
        assert!(!long.is_fresh(TokenKind::Id, t0, 0));
        let mut with_id = long.clone();
        with_id.id_token = Some(IdToken::new("i"));
        with_id.id_expires_at = Some(t0 + Duration::from_secs(600));
        assert!(with_id.is_fresh(TokenKind::Id, t0 + Duration::from_secs(200), 300));
        assert!(!with_id.is_fresh(TokenKind::Id, t0 + Duration::from_secs(400), 300));
    }

    #[test]
    fn requests_are_counted_per_utc_day_and_month() {
        let mut counted = Requests::default();
        let late = datetime!(2026-11-30 23:59 -01:00);
        counted.count(late);
        assert_eq!(
            (counted.day.as_str(), counted.month.as_str()),
            ("2026-12-01", "2026-12")
        );
        counted.count(datetime!(2026-12-01 10:00 UTC));
        assert_eq!(counted.at(datetime!(2026-12-01 12:00 UTC)), (2, 2));
        counted.count(datetime!(2026-12-02 10:00 UTC));
        assert_eq!(counted.at(datetime!(2026-12-02 12:00 UTC)), (1, 3));
        assert_eq!(counted.at(datetime!(2027-01-02 12:00 UTC)), (0, 0));
        counted.count(datetime!(2027-01-02 10:00 UTC));
        assert_eq!((counted.today, counted.this_month), (1, 1));
    }
}
