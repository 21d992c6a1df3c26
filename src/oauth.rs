//! Requests to the token and revocation endpoints (RFC 6749 §4.1.3, §6; RFC
//! 7009), with Cognito's client authentication: `client_id` always in the
//! form body, plus HTTP Basic when a secret is set.
//!
//! The server's OAuth error (§5.2 `error` / `error_description`) is kept
//! apart from transport and parse failures: the first decides between "log in
//! again" (exit 3) and "fix the configuration" (exit 4); the others mean the
//! server is unavailable (exit 5) and nothing stored is touched.
//! Nothing here is built on the cached path: no client, no TLS, no threads.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Map, Value};

use crate::config::Settings;
use crate::error::{Error, OAuthError, Result};
use crate::secret::Secret;

/// Retries after the first attempt, for network errors, timeouts, 5xx and 429.
const RETRIES: u32 = 2;
/// The longest `Retry-After` we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: u64,
    /// Present on a code exchange, and on a refresh with rotation.
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
}

/// Why a token request failed.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with an RFC 6749 §5.2 error.
    OAuth(OAuthError),
    /// No usable answer: network, timeout, 5xx, or a malformed body.
    Unavailable(String),
}

impl Failure {
    /// The error to report for a refresh: `invalid_grant` means the refresh
    /// token is dead (log in again); any other OAuth error is about our client.
    pub fn into_refresh_error(self) -> Error {
        match self {
            Failure::OAuth(e) if e.error == "invalid_grant" => Error::RefreshRejected(e),
            Failure::OAuth(e) => Error::ClientRejected(e),
            Failure::Unavailable(msg) => Error::unavailable(msg),
        }
    }
}

pub struct OAuthClient<'a> {
    http: Client,
    settings: &'a Settings,
}

impl<'a> OAuthClient<'a> {
    pub fn new(settings: &'a Settings) -> Result<Self> {
        // rustls with ring: smaller and quicker to build than aws-lc. Another
        // thread may have installed it first; either way one is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            .user_agent(concat!("lightfi-token/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT.min(settings.http_timeout))
            .timeout(settings.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::unexpected(format!("cannot set up HTTPS: {e}")))?;
        Ok(OAuthClient { http, settings })
    }

    /// `grant_type=refresh_token` (RFC 6749 §6).
    pub fn refresh(&self, refresh_token: &Secret) -> Result<TokenResponse, Failure> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        self.token_request(&form)
    }

    /// `grant_type=authorization_code` with the PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5).
    pub fn exchange_code(&self, code: &Secret, verifier: &Secret) -> Result<TokenResponse, Failure> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
            ("redirect_uri", self.settings.redirect_uri.as_str()),
            ("code_verifier", verifier.expose()),
        ];
        self.token_request(&form)
    }

    /// Revoke a refresh token (RFC 7009). Success is any 2xx.
    pub fn revoke(&self, refresh_token: &Secret) -> Result<(), Failure> {
        let form = [("token", refresh_token.expose()), ("token_type_hint", "refresh_token")];
        let response = self.post("revoke", &form)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.bytes().unwrap_or_default();
        match oauth_error(&body) {
            Some(e) => Err(Failure::OAuth(e)),
            None => Err(Failure::Unavailable(format!(
                "{} answered HTTP {status}",
                self.settings.endpoint("revoke")
            ))),
        }
    }

    fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, Failure> {
        let url = self.settings.endpoint("token");
        let response = self.post("token", form)?;
        let status = response.status();
        let body = response
            .bytes()
            .map_err(|e| Failure::Unavailable(format!("reading the answer of {url} failed: {}", describe(&e))))?;
        if status.is_success() {
            return parse_token_response(&body).map_err(|what| Failure::Unavailable(format!("{url} answered {what}")));
        }
        match oauth_error(&body) {
            Some(e) => Err(Failure::OAuth(e)),
            // RFC 6749 §5.2 lets a server answer a failed client authentication
            // with a bare 401.
            None if status == StatusCode::UNAUTHORIZED => Err(Failure::OAuth(OAuthError {
                error: "invalid_client".into(),
                description: Some(format!("{url} answered HTTP 401 without an OAuth error body")),
            })),
            None if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED => Err(
                Failure::Unavailable(format!("{url} answered HTTP {status}: is the OAuth URL right?")),
            ),
            None => Err(Failure::Unavailable(format!(
                "{url} answered HTTP {status} without an OAuth error"
            ))),
        }
    }

    /// POST a form to `{oauth_url}/{endpoint}` with client authentication,
    /// retrying network errors, timeouts, 5xx and 429 with backoff.
    fn post(&self, endpoint: &str, form: &[(&str, &str)]) -> Result<Response, Failure> {
        let url = self.settings.endpoint(endpoint);
        let mut body: Vec<(&str, &str)> = vec![("client_id", self.settings.client_id.as_str())];
        body.extend_from_slice(form);
        let mut attempt = 0;
        loop {
            let mut request = self.http.post(&url).form(&body);
            if let Some(secret) = &self.settings.client_secret {
                // RFC 6749 §2.3.1: form-urlencode both before Base64. Cognito's
                // ids and secrets are alphanumeric, so this changes nothing
                // there, but other servers decode `+` and `%`.
                let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                request = request.basic_auth(encode(&self.settings.client_id), Some(encode(secret.expose())));
            }
            let (problem, retry_after) = match request.send() {
                Ok(r) if !(r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS) => {
                    return Ok(r);
                }
                Ok(r) => (format!("{url} answered HTTP {}", r.status()), retry_after(&r)),
                Err(e) => (format!("cannot reach {url}: {}", describe(&e)), None),
            };
            if attempt == RETRIES {
                let tries = RETRIES + 1;
                return Err(Failure::Unavailable(format!("{problem} (tried {tries} times)")));
            }
            attempt += 1;
            let backoff = Duration::from_millis(500) * 2u32.pow(attempt - 1);
            std::thread::sleep(retry_after.unwrap_or(backoff));
        }
    }
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3), at most [`MAX_RETRY_AFTER`].
/// The HTTP-date form is treated as absent: the default backoff applies.
fn retry_after(response: &Response) -> Option<Duration> {
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

/// A transport error in words, with its causes (never a body: there is none).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// An RFC 6749 §5.2 error body, if that is what `body` is.
fn oauth_error(body: &[u8]) -> Option<OAuthError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?.as_str()?.to_string();
    let description = value
        .get("error_description")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(OAuthError { error, description })
}

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
    // Some servers send `"3600"`: accept a numeric string too.
    let expires_in = match map.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|&secs| secs > 0)
    // RFC 6749 only recommends `expires_in`: without it, a JWT's `exp` will do.
    .or_else(|| expires_in_from_jwt(&access_token))
    .ok_or_else(|| "a token response without a positive `expires_in`".to_string())?;
    Ok(TokenResponse {
        access_token: Secret::new(access_token),
        token_type: "Bearer".into(),
        expires_in,
        refresh_token: string(&map, "refresh_token")?.map(Secret::new),
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

    #[test]
    fn error_bodies_are_recognised() {
        let e = oauth_error(br#"{"error":"invalid_grant","error_description":"gone"}"#).unwrap();
        assert_eq!(e.error, "invalid_grant");
        assert_eq!(e.description.as_deref(), Some("gone"));
        assert!(oauth_error(b"Service Unavailable").is_none());
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
}
