//! One type per kind of secret, so a value cannot be printed, logged or
//! passed where another kind belongs by accident.
//!
//! Each type wraps the value at the edge where it enters the program. `Debug`
//! prints only the type's name; there is no `Display`; the few places that
//! must send, store or print a value call `expose()`, which marks where it
//! leaves the wrapper. Values that are compared (a returned access token, the
//! serve key) compare in constant time.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Declares a secret newtype over `String`: redacting `Debug`, `expose()`,
/// constant-time equality.
macro_rules! secret {
    ($(#[$meta:meta])* $name:ident $(, $derive:ident)*) => {
        #[derive($($derive),*)]
        $(#[$meta])*
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }

            /// The value itself: call only where it is sent, stored or printed on purpose.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
            }
        }

        impl Eq for $name {}
    };
}

secret!(
    /// An OAuth refresh token: mints access tokens for as long as ten years.
    #[serde(transparent)]
    RefreshToken, Clone, Serialize, Deserialize
);
secret!(
    /// An OAuth access token, as handed to the API.
    #[serde(transparent)]
    AccessToken, Clone, Serialize, Deserialize
);
secret!(
    /// An OpenID Connect ID token (Cognito issues one for the `openid` scope).
    #[serde(transparent)]
    IdToken, Clone, Serialize, Deserialize
);
secret!(
    /// The Cognito app client's secret.
    #[serde(transparent)]
    ClientSecret, Clone, Deserialize
);
secret!(
    /// A single-use authorization code from the login callback.
    AuthorizationCode
);
secret!(
    /// The PKCE code verifier (RFC 7636 §4.1): lives for one login, never copied.
    PkceVerifier
);
secret!(
    /// The key `serve` requires in `X-Lightfi-Key`.
    ServeKey
);
secret!(
    /// A Vault/OpenBao token, sent in `X-Vault-Token`: reads and writes the
    /// shared login.
    VaultToken, Clone
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = RefreshToken::new("eyJ-very-secret");
        assert_eq!(format!("{s:?}"), "RefreshToken(<redacted>)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(RefreshToken(<redacted>))");
        assert_eq!(
            format!("{:?}", ClientSecret::new("hunter2")),
            "ClientSecret(<redacted>)"
        );
        assert_eq!(format!("{:?}", PkceVerifier::new("v")), "PkceVerifier(<redacted>)");
        assert_eq!(format!("{:?}", VaultToken::new("hvs.x")), "VaultToken(<redacted>)");
        assert_eq!(s.expose(), "eyJ-very-secret");
    }

    #[test]
    fn tokens_serialize_as_the_bare_string_for_the_store() {
        let s = RefreshToken::new("rt");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"rt\"");
        let back: RefreshToken = serde_json::from_str("\"rt\"").unwrap();
        assert_eq!(back, s);
        assert_ne!(back, RefreshToken::new("rt2"));
    }
}
