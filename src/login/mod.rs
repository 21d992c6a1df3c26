//! Interactive login: the authorization-code flow with PKCE (RFC 7636, S256)
//! and a random `state`, through the browser and a loopback callback
//! (RFC 8252 §7.3).
//!
//! This module runs the flow and returns what the token endpoint answered;
//! the engine (`token`) stores it and then, through [`Finish`], tells the
//! browser how the login ended — so the page says "logged in" only once the
//! tokens are safe, and no page ever shows a token.

pub mod browser;
mod callback;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::Url;

use crate::client_check::{self, Verdict};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::oauth::{self, Failure, TokenResponse, Transport};
use crate::report;
use crate::secret::PkceVerifier;

pub use callback::Finish;
// For the fuzz targets and their regression tests: the callback parsing without a server.
#[doc(hidden)]
pub use callback::{Callback, parse_callback_query, pasted_query};
use callback::{Redirect, Wait};

/// How long a browser login may take unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
pub struct LoginOptions {
    /// Print the URL only, and also accept the redirected URL pasted on stdin.
    pub no_browser: bool,
    pub timeout: Duration,
    /// OpenID Connect `prompt` (`login`: sign in again even with a session).
    pub prompt: Option<&'static str>,
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions {
            no_browser: false,
            timeout: DEFAULT_TIMEOUT,
            prompt: None,
        }
    }
}

/// A login up to the code exchange: its outcome, the browser tab still
/// waiting to hear how it ended, and which client secret (from 0) the
/// server accepted.
pub struct Exchanged {
    pub response: Result<TokenResponse>,
    pub finish: Finish,
    pub secret: usize,
}

/// Run the login up to the code exchange.
pub fn run(settings: &Settings, transport: &dyn Transport, options: LoginOptions) -> Result<Exchanged> {
    let redirect = Redirect::parse(&settings.redirect_uri, options.no_browser)?;
    let pkce = Pkce::new()?;
    let state = random_urlsafe(32)?;
    let mut authorize_url = authorize_url(settings, &pkce, &state)?;
    if let Some(prompt) = options.prompt {
        authorize_url.query_pairs_mut().append_pair("prompt", prompt);
    }
    let secret = preflight(transport, &authorize_url, settings)?;
    let client = &settings.client.with_each_secret()[secret];

    let (events, inbox) = std::sync::mpsc::channel();
    let listeners = match redirect.listen(&events) {
        Ok(listeners) => listeners,
        // Pasting still works when the port is taken.
        Err(e) if options.no_browser => {
            report::warn(&e.to_string());
            callback::Listeners::none()
        }
        Err(e) => return Err(e),
    };

    report::prompt(&format!(
        "lightfi-token: log in to LightFi in your browser at this address:\n\n    {authorize_url}\n\n"
    ));
    if options.no_browser {
        report::prompt(&format!(
            "lightfi-token: after logging in, paste the address the browser ends up at (it starts with {}) and press Enter:\n",
            settings.redirect_uri
        ));
        callback::read_pasted_urls(events.clone());
    } else {
        browser::open(authorize_url.as_str());
        report::prompt(&format!(
            "lightfi-token: waiting for the browser login (up to {} s; Ctrl-C to cancel)…\n",
            options.timeout.as_secs()
        ));
    }
    drop(events);

    let wait = Wait {
        inbox,
        redirect: &redirect,
        state: &state,
        deadline: Instant::now() + options.timeout,
    };
    let (code, reply) = match wait.for_code(options.timeout) {
        Ok(found) => found,
        Err(e) => {
            listeners.stop();
            return Err(e);
        }
    };

    let post = oauth::code_request(client, &code, &pkce.verifier, &settings.redirect_uri);
    let exchanged = oauth::token(transport, &post).map_err(|failure| match failure {
        Failure::OAuth(e) if e.error == "invalid_grant" => Error::LoginFailed {
            msg: format!("the server rejected the authorization code: {e}"),
            hint: "codes are single-use and live 5 minutes: run `lightfi-token login` again".into(),
        },
        other => other.into_refresh_error(),
    });
    Ok(Exchanged {
        response: exchanged,
        finish: Finish::new(reply, listeners),
        secret,
    })
}

/// Ask for the authorize URL once, without following the redirect, before
/// sending anyone there: a wrong OAuth URL, client id or callback URL shows
/// up now, with its fix, instead of as an error page in the browser while
/// the command waits. A healthy server answers with its login page, or a
/// redirect to it. Then the token endpoint is asked whether it accepts the
/// client's secret, so a missing or wrong one is found before the browser
/// round trip rather than after it. Returns which secret (from 0) it accepted.
fn preflight(transport: &dyn Transport, url: &Url, settings: &Settings) -> Result<usize> {
    let probe = transport.probe(url.as_str()).map_err(|why| Error::ServerUnavailable {
        msg: format!("cannot start the login: {why}"),
    })?;
    judge_authorize(&probe, url, settings)?;
    check_secret(transport, settings)
}

/// The client check of [`client_check`], one request per configured secret
/// until one authenticates: `invalid_client` (or a bare 401) for all of
/// them is exit 4 naming the client and the fix.
fn check_secret(transport: &dyn Transport, settings: &Settings) -> Result<usize> {
    let client = &settings.client;
    let mut refused = None;
    for (index, candidate) in client.with_each_secret().iter().enumerate() {
        match client_check::check(transport, candidate, &settings.redirect_uri) {
            Ok(Verdict::Authenticated) => return Ok(index),
            Ok(Verdict::SecretRejected(e)) => refused = Some(e),
            Ok(Verdict::Refused(e)) => return Err(Error::ClientRejected(e)),
            Err(failure) => return Err(failure.into_refresh_error()),
        }
    }
    let error = refused.map_or_else(String::new, |e| e.error);
    let given = match (&client.secret, client.spare_secrets.len()) {
        (None, _) => "no client secret is set and the app client has one",
        (Some(_), 0) => "the client secret given is wrong",
        (Some(_), _) => "none of the client_secrets given is right",
    };
    Err(Error::config(
        format!(
            "{} refused client {} (`{error}`): {given}",
            client.endpoints.token(),
            client.id,
        ),
        format!(
            "give the app client's secret with `lightfi-token configure --profile {} --force` (or \
             LIGHTFI_CLIENT_SECRET with LIGHTFI_CLIENT_ID); the AWS console shows it under the user pool's \
             App integration → App clients",
            settings.profile
        ),
    ))
}

/// The authorize address as a login would ask for it (throwaway PKCE and
/// `state`), and how the server answered: for `doctor`. The probe is None
/// when the server could not be reached (the error says why).
pub fn check_authorize(settings: &Settings, transport: &dyn Transport) -> (Option<oauth::Probe>, Result<()>) {
    let url = match Pkce::new().and_then(|pkce| authorize_url(settings, &pkce, &random_urlsafe(32)?)) {
        Ok(url) => url,
        Err(e) => return (None, Err(e)),
    };
    match transport.probe(url.as_str()) {
        Ok(probe) => {
            let verdict = judge_authorize(&probe, &url, settings);
            (Some(probe), verdict)
        }
        Err(why) => (None, Err(Error::unavailable(why))),
    }
}

/// Whether the callback port can be bound now, as a login binds it (on
/// 127.0.0.1 and ::1); the error names the program holding it when the
/// system tells it. For `doctor`: the port is released at once.
pub fn check_callback_port(settings: &Settings) -> Result<()> {
    let redirect = Redirect::parse(&settings.redirect_uri, false)?;
    let (events, _inbox) = std::sync::mpsc::channel();
    redirect.listen(&events)?.stop();
    Ok(())
}

/// What the authorize address's answer says about the settings.
fn judge_authorize(probe: &oauth::Probe, url: &Url, settings: &Settings) -> Result<()> {
    let base = &settings.client.endpoints.base;
    let wrong_url = || {
        Error::config(
            format!(
                "{} answered HTTP {}: there is no login page there",
                settings.client.endpoints.authorize(),
                probe.status
            ),
            format!(
                "check the OAuth URL `{base}` (--oauth-url, LIGHTFI_OAUTH_URL or oauth_url): it is the hosted UI's base URL ending in /oauth2"
            ),
        )
    };
    match probe.status {
        300..=399 => {
            let error = probe
                .location
                .as_deref()
                .and_then(|location| url.join(location).ok())
                .and_then(|target| {
                    let pairs: Vec<(String, String)> = target.query_pairs().into_owned().collect();
                    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| report::sanitize(v));
                    Some((get("error")?, get("error_description")))
                });
            match error {
                None => Ok(()),
                Some((error, description)) => Err(refused_login(&error, description.as_deref(), settings)),
            }
        }
        200..=299 => Ok(()),
        404 | 405 | 410 => Err(wrong_url()),
        400..=499 => Err(Error::config(
            format!(
                "the authorization server refused to start a login (HTTP {}) for client id `{}` and callback URL {}",
                probe.status, settings.client.id, settings.redirect_uri
            ),
            "check the client id, and that this callback URL is among the app client's allowed callback URLs in Cognito \
             (exactly, port and trailing slash included; or pass --redirect-uri with one that is)",
        )),
        _ => Err(Error::unavailable(format!(
            "{} answered HTTP {}: the authorization server is failing",
            settings.client.endpoints.authorize(),
            probe.status
        ))),
    }
}

/// A login the server refused before showing its page, as an error with its fix.
fn refused_login(error: &str, description: Option<&str>, settings: &Settings) -> Error {
    let said = match description {
        Some(d) => format!("{error}: {d}"),
        None => error.to_string(),
    };
    let hint = match error {
        "redirect_mismatch" | "invalid_redirect_uri" => format!(
            "the callback URL {} is not registered on the app client: add it to its allowed callback URLs in Cognito, \
             or pass --redirect-uri with one that is",
            settings.redirect_uri
        ),
        "invalid_client" | "unauthorized_client" | "client_not_found" => format!(
            "the server does not accept client id `{}` for this login: check the client id, and that the app client \
             allows the authorization-code grant",
            settings.client.id
        ),
        "invalid_scope" => format!(
            "the app client does not allow the scopes `{}`: check --scope / LIGHTFI_SCOPE and the app client's allowed scopes",
            settings.scope
        ),
        _ => "check the client id, the callback URL and the scopes against the app client in Cognito".to_string(),
    };
    Error::config(
        format!("the authorization server refused to start a login: {said}"),
        hint,
    )
}

/// The hosted UI's sign-out address: `/logout` at the domain's root (not
/// below `/oauth2`), with the client id and where to send the browser after.
pub fn logout_url(settings: &Settings, logout_uri: &str) -> Result<Url> {
    let mut url = Url::parse(&settings.client.endpoints.base).map_err(|e| {
        Error::config(
            format!("invalid OAuth URL: {e}"),
            "check --oauth-url / LIGHTFI_OAUTH_URL",
        )
    })?;
    url.set_path("/logout");
    url.query_pairs_mut()
        .clear()
        .append_pair("client_id", &settings.client.id)
        .append_pair("logout_uri", logout_uri);
    Ok(url)
}

/// PKCE (RFC 7636 §4.1–4.2): 32 random bytes → a 43-character verifier;
/// challenge = BASE64URL(SHA256(verifier)), method S256.
struct Pkce {
    verifier: PkceVerifier,
    challenge: String,
}

impl Pkce {
    fn new() -> Result<Pkce> {
        let verifier = random_urlsafe(32)?;
        Ok(Pkce {
            challenge: challenge_for(&verifier),
            verifier: PkceVerifier::new(verifier),
        })
    }
}

fn challenge_for(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn random_urlsafe(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::unexpected(format!("no randomness from the system: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

fn authorize_url(settings: &Settings, pkce: &Pkce, state: &str) -> Result<Url> {
    let mut url = Url::parse(&settings.client.endpoints.authorize()).map_err(|e| {
        Error::config(
            format!("invalid OAuth URL: {e}"),
            "check --oauth-url / LIGHTFI_OAUTH_URL",
        )
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &settings.client.id)
        .append_pair("redirect_uri", &settings.redirect_uri)
        .append_pair("scope", &settings.scope)
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::new().unwrap();
        assert_eq!(pkce.verifier.expose().len(), 43);
        assert_eq!(pkce.challenge, challenge_for(pkce.verifier.expose()));
    }
}
