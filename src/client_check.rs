//! Does the token endpoint accept the client's authentication? Asked before
//! anything waits on a person (a browser login, the end of `configure`):
//! a token request that exchanges an authorization code nobody issued,
//! sent with the client authentication a real exchange would carry (RFC 6749
//! §4.1.3, Cognito's `client_id` in the body plus HTTP Basic with a secret).
//!
//! A server authenticates the client before it looks at the code (§5.2), so
//! `invalid_client` (or a bare 401) says the secret is missing or wrong, and
//! `invalid_grant` says the client got past authentication and only the
//! code was refused. No code is consumed and nothing is stored.

use crate::config::Client;
use crate::error::OAuthError;
use crate::oauth::{self, Failure, Transport};
use crate::secret::{AuthorizationCode, PkceVerifier};

/// What the token endpoint made of the client.
#[derive(Debug)]
pub enum Verdict {
    /// The client authenticated (the made-up code was refused).
    Authenticated,
    /// `invalid_client`: the secret is missing, wrong, or not wanted.
    SecretRejected(OAuthError),
    /// Another OAuth error about the client or the request
    /// (`unauthorized_client`, `invalid_request`, …).
    Refused(OAuthError),
}

/// Ask `client`'s token endpoint to exchange a random code for
/// `redirect_uri`. `Err` is a server that could not be asked (unreachable,
/// failing, or no token endpoint at that URL).
pub fn check(transport: &dyn Transport, client: &Client, redirect_uri: &str) -> Result<Verdict, Failure> {
    let code = AuthorizationCode::new(format!("lightfi-token-check-{}", random_hex()));
    let verifier = PkceVerifier::new(format!("{}{}", random_hex(), random_hex()));
    let post = oauth::code_request(client, &code, &verifier, redirect_uri);
    let answer = oauth::send(transport, &post)?;
    match oauth::token_answer(&post, &answer) {
        // A server that hands out a token for a code it never issued has
        // still authenticated the client.
        Ok(_) => Ok(Verdict::Authenticated),
        Err(Failure::OAuth(e)) => Ok(verdict(e)),
        Err(failure) => Err(failure),
    }
}

fn verdict(e: OAuthError) -> Verdict {
    match e.error.as_str() {
        "invalid_grant" => Verdict::Authenticated,
        "invalid_client" => Verdict::SecretRejected(e),
        _ => Verdict::Refused(e),
    }
}

/// 16 random bytes in hex; all zeros when the system has no randomness,
/// which only makes the made-up code guessable, never valid.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
