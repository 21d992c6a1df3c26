//! The token file: an access token that another program (a Vault or
//! OpenBao Agent template, a mounted Kubernetes Secret) keeps fresh. It is
//! served as it is — never refreshed, never replaced by a login — and
//! nothing is written to the store.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::report;
use crate::secret::AccessToken;
use crate::store::Access;

/// A token is a few KiB: anything larger is not one.
const MAX_FILE: u64 = 64 * 1024;

/// The JSON form of the file.
#[derive(Deserialize)]
struct Rendered {
    access_token: AccessToken,
    #[serde(default, with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    expires_in: Option<u64>,
    token_type: Option<String>,
}

/// The token in `path`, with a warning when fewer than `min_valid` seconds
/// are left; exit 5 when it has expired or its expiry cannot be told.
pub(super) fn read(path: &Path, min_valid: u64) -> Result<Access> {
    let access = peek(path)?;
    let now = OffsetDateTime::now_utc();
    let left = access.seconds_left(now);
    let at = crate::timestamp::rfc3339(access.expires_at);
    if left <= 0 {
        return Err(Error::TokenFile {
            msg: format!(
                "the token file {} expired at {at}; is the agent that renders it running?",
                path.display()
            ),
            hint: "check the program that keeps the file fresh (its logs, its schedule)".into(),
        });
    }
    if left <= i64::try_from(min_valid).unwrap_or(i64::MAX) {
        report::warn(&format!(
            "the token in {} expires in {left} s (at {at}); the agent that renders it should have renewed it by now",
            path.display()
        ));
    }
    Ok(access)
}

/// The token in `path` and its expiry, whether or not it has expired (`status`).
pub fn peek(path: &Path) -> Result<Access> {
    let (text, modified) = read_bounded(path)?;
    parse(&text, modified).ok_or_else(|| no_expiry(path))
}

fn no_expiry(path: &Path) -> Error {
    Error::TokenFile {
        msg: format!("cannot tell when the token in {} expires", path.display()),
        hint: "write it as JSON with access_token and expires_at (RFC 3339) or expires_in, \
               or as a JWT with an exp claim"
            .into(),
    }
}

/// The file's text, trimmed, and when it was last written: a regular file
/// of at most [`MAX_FILE`] bytes, read like the store.
fn read_bounded(path: &Path) -> Result<(String, OffsetDateTime)> {
    let unreadable = |why: String| Error::TokenFile {
        msg: format!("cannot read the token file {}: {why}", path.display()),
        hint: "check the token_file setting (--token-file, LIGHTFI_TOKEN_FILE) and that the agent has written it"
            .into(),
    };
    let (file, meta) = crate::platform::open_regular(path).map_err(|e| unreadable(e.to_string()))?;
    if meta.len() > MAX_FILE {
        return Err(unreadable(format!("larger than {MAX_FILE} bytes")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(unreadable(format!("larger than {MAX_FILE} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text".into()))?;
    let modified = meta
        .modified()
        .map(OffsetDateTime::from)
        .map_err(|e| unreadable(e.to_string()))?;
    Ok((text.trim().to_string(), modified))
}

/// The token and its expiry: from the JSON's `expires_at`, its `expires_in`
/// counted from `modified`, or the JWT's `exp`. None when none of them says.
fn parse(text: &str, modified: OffsetDateTime) -> Option<Access> {
    let (token, token_type, given) = if text.starts_with('{') {
        let rendered: Rendered = serde_json::from_str(text).ok()?;
        let given = rendered.expires_at.or_else(|| {
            let secs = i64::try_from(rendered.expires_in?).ok()?;
            modified.checked_add(time::Duration::seconds(secs))
        });
        (rendered.access_token, rendered.token_type, given)
    } else {
        (AccessToken::new(text), None, None)
    };
    if token.expose().is_empty() || token.expose().contains(char::is_whitespace) {
        return None;
    }
    let claims = crate::jwt::claims(token.expose());
    let claim = |name: &str| {
        let secs = claims.as_ref()?.get(name)?.as_i64()?;
        OffsetDateTime::from_unix_timestamp(secs).ok()
    };
    let expires_at = given.or_else(|| claim("exp"))?;
    Some(Access {
        token,
        token_type: token_type.unwrap_or_else(|| "Bearer".into()),
        obtained_at: claim("iat").unwrap_or(modified).min(expires_at),
        expires_at,
        scope: None,
        env_refresh_digest: None,
        id_token: None,
        id_expires_at: None,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use time::macros::datetime;

    use super::*;

    fn jwt(claims: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn each_form_gives_its_expiry() {
        let t0 = datetime!(2026-12-04 10:00 UTC);
        let json = parse(r#"{"access_token":"a","expires_at":"2026-12-04T11:00:00Z"}"#, t0).unwrap();
        assert_eq!((json.token.expose(), json.expires_at), ("a", t0 + time::Duration::HOUR));
        let counted = parse(r#"{"access_token":"a","expires_in":600}"#, t0).unwrap();
        assert_eq!(counted.expires_at, t0 + time::Duration::minutes(10));
        let raw = jwt(&format!(r#"{{"exp":{}}}"#, t0.unix_timestamp() + 60));
        assert_eq!(parse(&raw, t0).unwrap().expires_at, t0 + time::Duration::MINUTE);
        let in_json = format!(r#"{{"access_token":"{raw}"}}"#);
        assert_eq!(parse(&in_json, t0).unwrap().expires_at, t0 + time::Duration::MINUTE);
    }

    #[test]
    fn without_an_expiry_or_a_token_there_is_nothing_to_serve() {
        let t0 = datetime!(2026-12-04 10:00 UTC);
        for text in [
            "opaque-token",
            r#"{"access_token":"opaque"}"#,
            r#"{"expires_in":60}"#,
            "two words",
            "",
            &jwt(r#"{"exp":"soon"}"#),
        ] {
            assert!(parse(text, t0).is_none(), "{text}");
        }
    }
}
