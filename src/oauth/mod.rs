//! Requests to the token and revocation endpoints (RFC 6749 §4.1.3, §6; RFC
//! 7009), with Cognito's client authentication: `client_id` always in the
//! form body, plus HTTP Basic when a secret is set.
//!
//! The server's OAuth error (§5.2 `error` / `error_description`) is kept
//! apart from transport and parse failures: the first decides between "log in
//! again" (exit 3) and "fix the configuration" (exit 4); the others mean the
//! server is unavailable (exit 5) and nothing stored is touched.
//! Requests are built and answers read by pure functions; the one step that
//! goes on the wire is a [`Transport`], so retries and error mapping are
//! tested in process. Nothing here is built on the cached path: no client,
//! no TLS, no threads.
//!
//! `request.rs` builds the forms, `answer.rs` reads what came back (and
//! redacts the server's words), `http.rs` is the real transport.

mod answer;
mod http;
mod request;

use std::time::Duration;

use crate::error::{Error, OAuthError};
use crate::secret::{AccessToken, IdToken, RefreshToken};

pub use answer::{MAX_EXPIRES_IN, http_date, oauth_error, parse_token_response, token_answer};
pub use http::Http;
pub use request::{client_credentials_request, code_request, refresh_request, revoke_request};

/// Retries after the first attempt, for network errors, timeouts, 5xx and 429.
const RETRIES: u32 = 2;
/// The longest `Retry-After` we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The most of a response body we take: token answers are a few KiB, and a
/// server that never stops sending must not fill our memory. One byte more
/// is read, so an answer past the limit is told from one at it.
pub const MAX_BODY: u64 = 1 << 20;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub token_type: String,
    pub expires_in: u64,
    /// Present on a code exchange, and on a refresh with rotation.
    pub refresh_token: Option<RefreshToken>,
    pub scope: Option<String>,
    /// Present when the `openid` scope was granted.
    pub id_token: Option<IdToken>,
}

/// Why a token request failed.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with an RFC 6749 §5.2 error.
    OAuth(OAuthError),
    /// No usable answer: network, timeout, 5xx, 429, or a malformed body;
    /// with the server's last `Retry-After`, if it sent one.
    Unavailable { why: String, retry_after: Option<Duration> },
    /// The endpoint is not there (404, 405): the OAuth URL is wrong.
    WrongUrl(String),
}

impl Failure {
    /// The error to report for a refresh: `invalid_grant` means the refresh
    /// token is dead (log in again); any other OAuth error is about our client.
    pub fn into_refresh_error(self) -> Error {
        match self {
            Failure::OAuth(e) if e.error == "invalid_grant" => Error::RefreshRejected(e),
            Failure::OAuth(e) => Error::ClientRejected(e),
            Failure::Unavailable { why, .. } => Error::unavailable(why),
            Failure::WrongUrl(why) => Error::config(
                why,
                "check the OAuth URL (--oauth-url, LIGHTFI_OAUTH_URL or oauth_url in config.toml): \
                 it is the hosted UI's base URL ending in /oauth2",
            ),
        }
    }

    /// What the server said, in words.
    pub fn describe(&self) -> String {
        match self {
            Failure::OAuth(e) => e.to_string(),
            Failure::Unavailable { why, .. } | Failure::WrongUrl(why) => why.clone(),
        }
    }

    fn unavailable(why: String) -> Failure {
        Failure::Unavailable { why, retry_after: None }
    }
}

/// A form POST to one of the server's endpoints, built without any I/O.
/// `Debug` shows the URL and the form's keys, never a value.
pub struct FormPost {
    pub url: String,
    pub form: Vec<(&'static str, String)>,
    /// HTTP Basic credentials (RFC 6749 §2.3.1), already form-urlencoded.
    pub basic: Option<(String, String)>,
}

impl std::fmt::Debug for FormPost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormPost")
            .field("url", &self.url)
            .field("form", &self.form.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("basic", &self.basic.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The form fields whose values are secrets.
const SECRET_FIELDS: [&str; 4] = ["refresh_token", "code", "code_verifier", "token"];

impl FormPost {
    /// The form's field names and how the client authenticates, never a
    /// value: `grant_type client_id refresh_token, Basic auth`.
    pub fn fields(&self) -> String {
        let names: Vec<&str> = self.form.iter().map(|(k, _)| *k).collect();
        let auth = if self.basic.is_some() { ", Basic auth" } else { "" };
        format!("{}{auth}", names.join(" "))
    }

    /// Every secret this request carries (a refresh token, a code, a
    /// verifier, the client secret), as given and as form-encoded on the
    /// wire, longest first: a server may echo any of them in its answer.
    fn secrets(&self) -> Vec<String> {
        let mut given: Vec<String> = self
            .form
            .iter()
            .filter(|(key, _)| SECRET_FIELDS.contains(key))
            .map(|(_, value)| value.clone())
            .collect();
        if let Some((_, password)) = &self.basic {
            given.extend(url::form_urlencoded::parse(format!("s={password}").as_bytes()).map(|(_, v)| v.into_owned()));
            given.push(password.clone());
        }
        let encoded: Vec<String> = given
            .iter()
            .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect())
            .collect();
        let mut all: Vec<String> = given.into_iter().chain(encoded).filter(|s| !s.is_empty()).collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        all
    }
}

/// What came back, as far as we look at it. `Debug` shows the body's
/// length only: a token answer's body holds the tokens.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    /// `Retry-After` in seconds (RFC 9110 §10.2.3), capped; the date form is ignored.
    pub retry_after: Option<Duration>,
    /// At most [`MAX_BODY`] + 1 bytes: longer means the server sent more than we take.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("retry_after", &self.retry_after)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// How a page answered a plain GET (redirects not followed).
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: u16,
    pub location: Option<String>,
    /// The server's clock, from its `Date` header (`doctor` compares it with ours).
    pub date: Option<time::OffsetDateTime>,
}

/// The step that puts a request on the wire. The program uses [`Http`];
/// tests replace it to drive retries and error mapping in process.
pub trait Transport {
    /// Send `post` once. `Err` describes a transport failure (no answer).
    fn send(&self, post: &FormPost) -> Result<Answer, String>;

    /// GET `url` once, without following a redirect, reading no body.
    fn probe(&self, url: &str) -> Result<Probe, String>;

    /// Wait before a retry.
    fn pause(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Send `post`, retrying network errors, timeouts, 5xx and 429 with
/// jittered backoff (or the server's `Retry-After`, capped), so callers on
/// many machines do not retry in step.
pub fn send(transport: &dyn Transport, post: &FormPost) -> Result<Answer, Failure> {
    let mut attempt = 0;
    loop {
        let (why, retry_after) = match transport.send(post) {
            Ok(answer) if !(answer.status >= 500 || answer.status == 429) => return Ok(answer),
            Ok(answer) => (
                format!("{} answered HTTP {}", post.url, answer.status),
                answer.retry_after,
            ),
            Err(why) => (why, None),
        };
        if attempt == RETRIES {
            let tries = RETRIES + 1;
            return Err(Failure::Unavailable {
                why: format!("{why} (tried {tries} times)"),
                retry_after,
            });
        }
        attempt += 1;
        let backoff = jitter(Duration::from_millis(500) * 2u32.pow(attempt - 1));
        transport.pause(retry_after.unwrap_or(backoff));
    }
}

/// `base` scaled by a random factor from 0.5 to 1.5.
pub fn jitter(base: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let factor = match getrandom::fill(&mut byte) {
        Ok(()) => 0.5 + f64::from(byte[0]) / 255.0,
        Err(_) => 1.0,
    };
    base.mul_f64(factor)
}

/// A token request: send it and read the answer.
pub fn token(transport: &dyn Transport, post: &FormPost) -> Result<TokenResponse, Failure> {
    let answer = send(transport, post)?;
    token_answer(post, &answer)
}

/// A revocation: any 2xx is success.
pub fn revoke(transport: &dyn Transport, post: &FormPost) -> Result<(), Failure> {
    let answer = send(transport, post)?;
    if (200..300).contains(&answer.status) {
        return Ok(());
    }
    match oauth_error(&answer.body, post) {
        Some(e) => Err(Failure::OAuth(e)),
        None if answer.status == 404 || answer.status == 405 => Err(Failure::WrongUrl(format!(
            "{} answered HTTP {}: is the OAuth URL right?",
            post.url, answer.status
        ))),
        None => Err(Failure::unavailable(format!(
            "{} answered HTTP {}",
            post.url, answer.status
        ))),
    }
}
