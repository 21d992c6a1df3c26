//! `Secret`: a token or client secret that cannot be printed by accident.
//!
//! Every access token, refresh token, authorization code, PKCE verifier and
//! client secret is wrapped at the edge where it enters the program. `Debug`
//! and `Display` print `<redacted>`; only the few functions that must send,
//! store or print the value call [`Secret::expose`].

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself: call only where it is sent, stored or printed on purpose.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("eyJ-very-secret");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted>)");
        assert_eq!(s.expose(), "eyJ-very-secret");
    }

    #[test]
    fn serializes_as_the_bare_string_for_the_store() {
        let s = Secret::new("rt");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"rt\"");
        let back: Secret = serde_json::from_str("\"rt\"").unwrap();
        assert_eq!(back, s);
    }
}
