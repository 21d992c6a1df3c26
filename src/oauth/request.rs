//! The forms sent to the token and revocation endpoints, built without any I/O.

use super::FormPost;
use crate::config::Client;
use crate::secret::{AuthorizationCode, PkceVerifier, RefreshToken};

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
