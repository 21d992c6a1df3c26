//! JWT claims, decoded but never verified: for display (`status`) and for
//! an expiry when a token response lacks `expires_in`. Nothing here is a
//! security decision; the API verifies its tokens itself.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The payload of a JWT (`header.payload.signature`), if `token` is one.
pub fn claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_cognito_access_token_claims() {
        let payload =
            URL_SAFE_NO_PAD.encode(br#"{"sub":"1","username":"alice","scope":"aws.cognito.signin.user.admin"}"#);
        let decoded = claims(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(decoded["username"], "alice");
        assert!(claims("opaque-token").is_none());
        assert!(claims("a.!!!.c").is_none());
    }
}
