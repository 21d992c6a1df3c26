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
use crate::oauth::{self, Failure, FormPost, TokenResponse, Transport};
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

/// A token request sent with each of `client`'s secrets in turn (a
/// rotation under way): the next is tried, once, only when the server
/// answers `invalid_client` (or a bare 401) to the one before. Returns the
/// last answer and which secret (from 0) it came with.
pub fn token_with_each_secret(
    transport: &dyn Transport,
    client: &Client,
    request: impl Fn(&Client) -> FormPost,
) -> (Result<TokenResponse, Failure>, usize) {
    let candidates = client.with_each_secret();
    let mut answer = (Err(Failure::WrongUrl(String::new())), 0);
    for (index, candidate) in candidates.iter().enumerate() {
        answer = (oauth::token(transport, &request(candidate)), index);
        let refused = matches!(&answer.0, Err(Failure::OAuth(e)) if e.error == "invalid_client");
        if !refused {
            break;
        }
    }
    answer
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Client, Endpoints};
    use crate::oauth::{Answer, FormPost, Probe};
    use crate::secret::ClientSecret;
    use std::cell::RefCell;

    /// A request as sent: its form, and whether it carried HTTP Basic.
    type Sent = (Vec<(&'static str, String)>, bool);

    /// Answers every request with `status` and `body`, keeping what was sent.
    struct Canned {
        status: u16,
        body: &'static str,
        sent: RefCell<Vec<Sent>>,
    }

    impl Transport for Canned {
        fn send(&self, post: &FormPost) -> Result<Answer, String> {
            self.sent.borrow_mut().push((post.form.clone(), post.basic.is_some()));
            Ok(Answer {
                status: self.status,
                retry_after: None,
                body: self.body.as_bytes().to_vec(),
            })
        }
        fn probe(&self, _: &str) -> Result<Probe, String> {
            unreachable!("no GET")
        }
    }

    fn ask(status: u16, body: &'static str, secret: Option<&str>) -> (Result<Verdict, Failure>, Canned) {
        let canned = Canned {
            status,
            body,
            sent: RefCell::new(vec![]),
        };
        let client = Client {
            id: "id".into(),
            secret: secret.map(ClientSecret::new),
            spare_secrets: vec![],
            endpoints: Endpoints {
                base: "https://idp.example/oauth2".into(),
            },
        };
        (check(&canned, &client, "http://localhost:3000"), canned)
    }

    #[test]
    fn the_answer_says_whether_the_client_authenticated() {
        let (v, canned) = ask(400, r#"{"error":"invalid_grant"}"#, Some("s"));
        assert!(matches!(v, Ok(Verdict::Authenticated)));
        let (form, basic) = &canned.sent.borrow()[0];
        let field = |k: &str| form.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
        assert_eq!(field("grant_type"), Some("authorization_code"));
        assert_eq!(field("redirect_uri"), Some("http://localhost:3000"));
        assert!(field("code").is_some_and(|c| c.len() > 20), "a made-up code");
        assert!(basic, "the secret goes as HTTP Basic");
        let (_, canned) = ask(400, r#"{"error":"invalid_grant"}"#, None);
        assert!(!canned.sent.borrow()[0].1, "no Basic without a secret");

        assert!(matches!(
            ask(400, r#"{"error":"invalid_client"}"#, None).0,
            Ok(Verdict::SecretRejected(_))
        ));
        assert!(matches!(ask(401, "", Some("s")).0, Ok(Verdict::SecretRejected(_))));
        assert!(matches!(
            ask(400, r#"{"error":"unauthorized_client"}"#, None).0,
            Ok(Verdict::Refused(e)) if e.error == "unauthorized_client"
        ));
        assert!(matches!(ask(404, "", None).0, Err(Failure::WrongUrl(_))));
    }
}
