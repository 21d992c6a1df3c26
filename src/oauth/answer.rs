//! What the token and revocation endpoints' answers mean: a token response
//! read field by field, or an RFC 6749 §5.2 error with the server's words
//! cleaned (secrets the request carried redacted, control characters gone).

use serde_json::{Map, Value};

use super::{Answer, Failure, FormPost, MAX_BODY, TokenResponse};
use crate::error::OAuthError;
use crate::secret::{AccessToken, IdToken, RefreshToken};

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
