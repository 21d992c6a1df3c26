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

use std::cell::OnceCell;
use std::io::Read;
use std::time::Duration;

use reqwest::blocking::Client as HttpClient;
use serde_json::{Map, Value};

use crate::config::Client;
use crate::error::{Error, OAuthError};
use crate::net::describe;
use crate::secret::{AccessToken, AuthorizationCode, IdToken, PkceVerifier, RefreshToken};

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

/// The real transport: reqwest with rustls, no redirects followed. The
/// client is built on the first request, so creating an `Http` costs nothing
/// on the cached path.
pub struct Http {
    timeout: Duration,
    client: OnceCell<Result<HttpClient, String>>,
}

impl Http {
    pub fn new(timeout: Duration) -> Self {
        Http {
            timeout,
            client: OnceCell::new(),
        }
    }

    fn client(&self) -> Result<&HttpClient, String> {
        self.client
            .get_or_init(|| crate::net::client(self.timeout, Vec::new()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Transport for Http {
    fn send(&self, post: &FormPost) -> Result<Answer, String> {
        let started = std::time::Instant::now();
        let answer = self.send_once(post);
        crate::report::debug(|| match &answer {
            Ok(a) => format!(
                "POST {} {:?} → HTTP {} ({} bytes, {} ms)",
                post.url,
                post,
                a.status,
                a.body.len(),
                started.elapsed().as_millis()
            ),
            Err(why) => format!("POST {} {post:?} → {why}", post.url),
        });
        answer
    }

    fn probe(&self, url: &str) -> Result<Probe, String> {
        let shown = url.split('?').next().unwrap_or(url);
        let probe = self.probe_once(url);
        crate::report::debug(|| match &probe {
            Ok(p) => format!(
                "GET {shown}?… → HTTP {}{}",
                p.status,
                if p.location.is_some() { " (a redirect)" } else { "" }
            ),
            Err(why) => format!("GET {shown}?… → {why}"),
        });
        probe
    }
}

impl Http {
    fn send_once(&self, post: &FormPost) -> Result<Answer, String> {
        let mut request = self.client()?.post(&post.url).form(&post.form);
        if let Some((user, password)) = &post.basic {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .map_err(|e| format!("cannot reach {}: {}", post.url, describe(&e)))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let mut body = Vec::new();
        response
            .take(MAX_BODY + 1)
            .read_to_end(&mut body)
            .map_err(|e| format!("reading the answer of {} failed: {e}", post.url))?;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    fn probe_once(&self, url: &str) -> Result<Probe, String> {
        // The error's own text would repeat the URL with its query (state,
        // PKCE challenge): named once here, without it.
        let response = self.client()?.get(url).send().map_err(|e| {
            format!(
                "cannot reach {}: {}",
                url.split('?').next().unwrap_or(url),
                describe(&e.without_url())
            )
        })?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(http_date);
        Ok(Probe {
            status: response.status().as_u16(),
            location,
            date,
        })
    }
}

/// `grant_type=refresh_token` (RFC 6749 §6).
pub fn refresh_request(client: &Client, refresh_token: &RefreshToken) -> FormPost {
    form_post(
        client,
        client.endpoints.token(),
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh_token.expose().into()),
        ],
    )
}

/// `grant_type=client_credentials` (RFC 6749 §4.4.2): the scope parameter
/// only when `scope` names some, so the server grants the client's own.
pub fn client_credentials_request(client: &Client, scope: &str) -> FormPost {
    let mut fields = vec![("grant_type", "client_credentials".into())];
    if !scope.trim().is_empty() {
        fields.push(("scope", scope.into()));
    }
    form_post(client, client.endpoints.token(), fields)
}

/// `grant_type=authorization_code` with the PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5).
pub fn code_request(
    client: &Client,
    code: &AuthorizationCode,
    verifier: &PkceVerifier,
    redirect_uri: &str,
) -> FormPost {
    form_post(
        client,
        client.endpoints.token(),
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.expose().into()),
            ("redirect_uri", redirect_uri.into()),
            ("code_verifier", verifier.expose().into()),
        ],
    )
}

/// Revoke a refresh token (RFC 7009 §2.1).
pub fn revoke_request(client: &Client, refresh_token: &RefreshToken) -> FormPost {
    form_post(
        client,
        client.endpoints.revoke(),
        vec![
            ("token", refresh_token.expose().into()),
            ("token_type_hint", "refresh_token".into()),
        ],
    )
}

/// Cognito's client authentication: `client_id` always in the body, plus
/// HTTP Basic when there is a secret. RFC 6749 §2.3.1: both form-urlencoded
/// before Base64 (Cognito's ids and secrets are alphanumeric, so this
/// changes nothing there, but other servers decode `+` and `%`).
fn form_post(client: &Client, url: String, fields: Vec<(&'static str, String)>) -> FormPost {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let mut form = vec![("client_id", client.id.clone())];
    form.extend(fields);
    FormPost {
        url,
        form,
        basic: client
            .secret
            .as_ref()
            .map(|secret| (encode(&client.id), encode(secret.expose()))),
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

/// What a token endpoint's answer to `post` means.
pub fn token_answer(post: &FormPost, answer: &Answer) -> Result<TokenResponse, Failure> {
    let (url, status) = (&post.url, answer.status);
    if (200..300).contains(&status) {
        if answer.body.len() as u64 > MAX_BODY {
            return Err(Failure::unavailable(format!(
                "{url} answered with a body larger than the limit of {} MiB ({MAX_BODY} bytes)",
                MAX_BODY >> 20
            )));
        }
        return parse_token_response(&answer.body)
            .map_err(|what| Failure::unavailable(format!("{url} answered {what}")));
    }
    match oauth_error(&answer.body, post) {
        Some(e) => Err(Failure::OAuth(e)),
        // RFC 6749 §5.2 lets a server answer a failed client authentication
        // with a bare 401.
        None if status == 401 => Err(Failure::OAuth(OAuthError {
            error: "invalid_client".into(),
            description: Some(format!("{url} answered HTTP 401 without an OAuth error body")),
        })),
        None if status == 404 || status == 405 => Err(Failure::WrongUrl(format!(
            "{url} answered HTTP {status}: is the OAuth URL right?"
        ))),
        None => Err(Failure::unavailable(format!(
            "{url} answered HTTP {status} without an OAuth error"
        ))),
    }
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3), at most [`MAX_RETRY_AFTER`].
/// The HTTP-date form is treated as absent: the default backoff applies.
fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// An HTTP date in the one form servers must send (RFC 9110 §5.6.7,
/// IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`); None for anything else.
pub fn http_date(value: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value.trim(), format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// An RFC 6749 §5.2 error body, if that is what the answer to `sent` is.
/// The server's words are data: a secret the request carried is shown as
/// `<redacted>` (a server may echo "bad refresh_token …"), control
/// characters go (they could drive the terminal) and so does what is past a
/// sensible length. Secrets go before and after the control characters, so
/// one split by them is caught too, and before the cut, so none is cut in half.
pub fn oauth_error(body: &[u8], sent: &FormPost) -> Option<OAuthError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let secrets = sent.secrets();
    let redact = |text: String| {
        secrets
            .iter()
            .fold(text, |text, secret| text.replace(secret.as_str(), "<redacted>"))
    };
    let text = |s: &str| {
        redact(crate::report::sanitize(&redact(s.to_string())))
            .chars()
            .take(MAX_ERROR_TEXT)
            .collect::<String>()
    };
    let error = text(value.get("error")?.as_str()?);
    let description = value.get("error_description").and_then(Value::as_str).map(text);
    Some(OAuthError { error, description })
}

/// The most characters of a server's `error` or `error_description` shown.
const MAX_ERROR_TEXT: usize = 500;

/// The longest `expires_in` taken: Cognito's tokens live at most a day, and
/// a larger value would keep a token cached long after it stopped working.
pub const MAX_EXPIRES_IN: u64 = 86_400;

/// Parse a success body field by field, so a message can name what is wrong
/// without quoting any value (a value may be a token).
pub fn parse_token_response(body: &[u8]) -> Result<TokenResponse, String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| "a body that is not JSON".to_string())?;
    let Value::Object(map) = value else {
        return Err("JSON that is not an object".into());
    };
    let string = |map: &Map<String, Value>, key: &str| -> Result<Option<String>, String> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("a token response whose `{key}` is not a non-empty string")),
        }
    };
    let access_token =
        string(&map, "access_token")?.ok_or_else(|| "a token response without `access_token`".to_string())?;
    if !is_b64token(&access_token) {
        // It goes into `Authorization:` headers: a CR or LF would inject headers.
        return Err("an `access_token` with characters a bearer token cannot have (RFC 6750 §2.1)".into());
    }
    let token_type = string(&map, "token_type")?.ok_or_else(|| "a token response without `token_type`".to_string())?;
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(format!("token_type `{token_type}`, not Bearer"));
    }
    // Some servers send `"3600"` or `3599.5`: whole seconds, rounded down.
    let expires_in = match map.get("expires_in") {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|secs| secs.is_finite() && *secs >= 1.0)
    .map(|secs| (secs as u64).min(MAX_EXPIRES_IN))
    // RFC 6749 only recommends `expires_in`: without it, a JWT's `exp` will do.
    .or_else(|| expires_in_from_jwt(&access_token))
    .ok_or_else(|| "a token response without a positive `expires_in`".to_string())?;
    Ok(TokenResponse {
        access_token: AccessToken::new(access_token),
        token_type: "Bearer".into(),
        expires_in,
        refresh_token: string(&map, "refresh_token")?.map(RefreshToken::new),
        id_token: match string(&map, "id_token")? {
            Some(id) if !is_b64token(&id.replace('.', "")) => {
                return Err("an `id_token` with characters a JWT cannot have".into());
            }
            id => id.map(IdToken::new),
        },
        scope: string(&map, "scope")?,
    })
}

/// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Seconds until the `exp` claim of a JWT access token, if it has one in the future.
fn expires_in_from_jwt(token: &str) -> Option<u64> {
    let exp = crate::jwt::claims(token)?.get("exp")?.as_i64()?;
    u64::try_from(exp - time::OffsetDateTime::now_utc().unix_timestamp())
        .ok()
        .filter(|&s| s > 0)
        .map(|s| s.min(MAX_EXPIRES_IN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_cognito_refresh_response() {
        let body = br#"{"id_token":"i","access_token":"a","expires_in":3600,"token_type":"Bearer"}"#;
        let r = parse_token_response(body).unwrap();
        assert_eq!(r.access_token.expose(), "a");
        assert_eq!(r.expires_in, 3600);
        assert!(r.refresh_token.is_none());
    }

    #[test]
    fn malformed_responses_name_the_problem_not_the_values() {
        let cases: [&[u8]; 6] = [
            b"<html>",
            b"[]",
            br#"{"token_type":"Bearer","expires_in":1}"#,
            br#"{"access_token":"SECRET","token_type":"mac","expires_in":1}"#,
            br#"{"access_token":"SECRET","token_type":"Bearer"}"#,
            br#"{"access_token":"SECRET","token_type":"Bearer","expires_in":60,"refresh_token":7}"#,
        ];
        for body in cases {
            let msg = parse_token_response(body).unwrap_err();
            assert!(!msg.contains("SECRET"), "{msg}");
        }
        let injected = br#"{"access_token":"SECRET\r\nX-Evil: 1","token_type":"Bearer","expires_in":60}"#;
        assert!(parse_token_response(injected).unwrap_err().contains("RFC 6750"));
        let ok = parse_token_response(br#"{"access_token":"a","token_type":"bearer","expires_in":"60"}"#).unwrap();
        assert_eq!(ok.expires_in, 60);
    }

    /// A request that carries no secret.
    fn plain() -> FormPost {
        FormPost {
            url: "https://idp.example/oauth2/token".into(),
            form: vec![("client_id", "id".into())],
            basic: None,
        }
    }

    #[test]
    fn error_bodies_are_recognised() {
        let e = oauth_error(br#"{"error":"invalid_grant","error_description":"gone"}"#, &plain()).unwrap();
        assert_eq!(e.error, "invalid_grant");
        assert_eq!(e.description.as_deref(), Some("gone"));
        assert!(oauth_error(b"Service Unavailable", &plain()).is_none());
    }

    #[test]
    fn secrets_the_request_carried_are_redacted_from_the_servers_words() {
        let post = FormPost {
            url: "https://idp.example/oauth2/token".into(),
            form: vec![
                ("client_id", "id".into()),
                ("grant_type", "authorization_code".into()),
                ("code", "CODE-1234".into()),
                ("code_verifier", "VERIFIER-5678".into()),
                ("refresh_token", "RT+/=9".into()),
            ],
            basic: Some(("id".into(), "s%2Bcret".into())),
        };
        let body = serde_json::json!({
            "error": "invalid_grant CODE-1234",
            "error_description": "bad refresh_token RT+/=9 (RT%2B%2F%3D9) for VERIFIER-5678, \
                                  secret s+cret / s%2Bcret, split RT+/\u{1b}=9, grant_type authorization_code",
        });
        let e = oauth_error(body.to_string().as_bytes(), &post).unwrap();
        assert_eq!(e.error, "invalid_grant <redacted>");
        let said = e.description.unwrap();
        for secret in ["CODE-1234", "VERIFIER-5678", "RT+/=9", "RT%2B", "s+cret", "s%2Bcret"] {
            assert!(!said.contains(secret), "{secret} in {said}");
        }
        assert!(said.contains("grant_type authorization_code"), "{said}");
        assert_eq!(said.matches("<redacted>").count(), 6, "{said}");
    }

    #[test]
    fn an_answer_past_the_size_limit_says_so() {
        let answer = Answer {
            status: 200,
            retry_after: None,
            body: vec![b' '; MAX_BODY as usize + 1],
        };
        let Err(Failure::Unavailable { why, .. }) = token_answer(&plain(), &answer) else {
            panic!("an oversized answer was taken");
        };
        assert!(why.contains("larger than the limit of 1 MiB"), "{why}");
    }

    #[test]
    fn missing_expires_in_falls_back_to_the_jwt_exp() {
        use base64::Engine;
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
        let body = format!(r#"{{"access_token":"e30.{payload}.sig","token_type":"Bearer"}}"#);
        let r = parse_token_response(body.as_bytes()).unwrap();
        assert!((598..=600).contains(&r.expires_in), "{}", r.expires_in);
    }

    #[test]
    fn expires_in_is_capped_at_a_day_and_may_be_fractional() {
        let parse = |v: &str| {
            let body = format!(r#"{{"access_token":"a","token_type":"Bearer","expires_in":{v}}}"#);
            parse_token_response(body.as_bytes()).map(|r| r.expires_in)
        };
        assert_eq!(parse("3599.5"), Ok(3599));
        assert_eq!(parse("\"60.9\""), Ok(60));
        assert_eq!(parse("2147483647000"), Ok(MAX_EXPIRES_IN));
        assert_eq!(parse("1e300"), Ok(MAX_EXPIRES_IN));
        assert!(parse("0.5").is_err());
        assert!(parse("-5").is_err());
    }

    #[test]
    fn http_dates_are_read_in_imf_fixdate_only() {
        let t = http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.unix_timestamp(), 784_111_777);
        assert!(http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
        assert!(http_date("yesterday").is_none());
    }

    #[test]
    fn server_error_text_loses_control_characters() {
        let body = "{\"error\":\"invalid_grant\\u001b[2J\",\"error_description\":\"\\u001b]0;owned\\u0007gone\"}";
        let e = oauth_error(body.as_bytes(), &plain()).unwrap();
        assert_eq!(e.error, "invalid_grant[2J");
        assert_eq!(e.description.as_deref(), Some("]0;ownedgone"));
        let long = format!(r#"{{"error":"x","error_description":"{}"}}"#, "d".repeat(10_000));
        assert_eq!(
            oauth_error(long.as_bytes(), &plain())
                .unwrap()
                .description
                .unwrap()
                .len(),
            MAX_ERROR_TEXT
        );
    }
}
