//! Checks that ask the authorization server: its authorize and token
//! endpoints, its clock, and (with `--refresh`) one real refresh. Each
//! request is made once, without the retries of a real token request, and
//! none carries a secret but the `--refresh` one.

use std::time::Duration;

use time::OffsetDateTime;

use crate::config::Settings;
use crate::error::Error;
use crate::login;
use crate::oauth::{self, FormPost, Http, Probe, Transport};
use crate::output::rfc3339;
use crate::store::Store;
use crate::token::{self, Want};

use super::Findings;

/// No check waits longer for an answer than this.
const PATIENCE: Duration = Duration::from_secs(10);
/// More clock difference than this is worth a warning.
const MAX_SKEW: i64 = 60;

pub fn check(findings: &mut Findings, s: &Settings, refresh: bool) {
    let http = Http::new(s.http_timeout.min(PATIENCE));
    let probe = authorize(findings, s, &http);
    token_endpoint(findings, s, &http);
    clock(findings, probe.as_ref());
    if refresh {
        try_refresh(findings, s, &http);
    }
}

/// The authorize address a login would open, asked once (redirect not
/// followed) and judged as `login` judges it. Returns its answer, if the
/// server could be reached.
fn authorize(findings: &mut Findings, s: &Settings, http: &dyn Transport) -> Option<Probe> {
    let (probe, verdict) = login::check_authorize(s, http);
    let url = s.client.endpoints.authorize();
    match verdict {
        Ok(()) => {
            let status = probe.as_ref().map(|p| p.status).unwrap_or_default();
            findings.ok(
                "authorize",
                format!(
                    "{url} answers (HTTP {status}: the login page, or a redirect to it){}",
                    via_proxy()
                ),
            );
        }
        Err(e @ Error::ServerUnavailable { .. }) => findings.fail(
            "authorize",
            format!("{e}{}", via_proxy()),
            "check the network and the OAuth URL (--oauth-url, LIGHTFI_OAUTH_URL or oauth_url in config.toml); \
             behind a proxy, set HTTPS_PROXY (and NO_PROXY), and SSL_CERT_FILE if it re-signs TLS",
        ),
        Err(e) => findings.fail("authorize", e.to_string(), e.hint()),
    }
    probe
}

/// The token endpoint, sent a request without credentials: a token
/// endpoint answers it with an OAuth error (400 or 401), not 404 or 5xx.
fn token_endpoint(findings: &mut Findings, s: &Settings, http: &dyn Transport) {
    let url = s.client.endpoints.token();
    let post = FormPost {
        url: url.clone(),
        form: vec![
            ("grant_type", "refresh_token".into()),
            ("client_id", s.client.id.clone()),
        ],
        basic: None,
    };
    let answer = match http.send(&post) {
        Ok(answer) => answer,
        Err(why) => {
            return findings.fail(
                "token_endpoint",
                format!("{why}{}", via_proxy()),
                "check the network and the OAuth URL (--oauth-url, LIGHTFI_OAUTH_URL or oauth_url in config.toml)",
            );
        }
    };
    let status = answer.status;
    let check_url = "check the OAuth URL (--oauth-url, LIGHTFI_OAUTH_URL or oauth_url in config.toml): \
                     it is the hosted UI's base URL ending in /oauth2";
    match (status, oauth::oauth_error(&answer.body, &post)) {
        (400 | 401, Some(e)) => findings.ok(
            "token_endpoint",
            format!(
                "{url} answers a request without credentials with HTTP {status} `{}`, as a token endpoint does",
                e.error
            ),
        ),
        (404 | 405 | 410, _) => findings.fail(
            "token_endpoint",
            format!("{url} answered HTTP {status}: there is no token endpoint there"),
            check_url,
        ),
        (s, _) if s >= 500 || s == 429 => findings.fail(
            "token_endpoint",
            format!("{url} answered HTTP {s}: the authorization server is failing"),
            "try again later; if it persists, the server's operators need to know",
        ),
        (s, _) => findings.warn(
            "token_endpoint",
            format!("{url} answered HTTP {s} without an OAuth error to a request without credentials"),
            check_url,
        ),
    }
}

/// This machine's clock against the server's `Date`: expiry times are
/// judged by this clock, and a far-off one makes tokens look expired or
/// valid when they are not.
fn clock(findings: &mut Findings, answer: Option<&Probe>) {
    let Some(answer) = answer else {
        return findings.ok("clock", "not compared: the authorization server could not be reached");
    };
    let Some(server) = answer.date else {
        return findings.ok("clock", "not compared: the authorization server sent no Date header");
    };
    let skew = (OffsetDateTime::now_utc() - server).whole_seconds();
    let said = match skew {
        0 => "the same as the server's".to_string(),
        s if s > 0 => format!("{s} s ahead of the server's"),
        s => format!("{} s behind the server's", -s),
    };
    if skew.abs() <= MAX_SKEW {
        findings.ok("clock", format!("this machine's clock is {said} (±1 s)"));
    } else {
        findings.warn(
            "clock",
            format!("this machine's clock is {said}: token expiry times will be judged wrongly"),
            "turn on network time (e.g. `timedatectl set-ntp true`, or the system's date and time settings)",
        );
    }
}

/// One real refresh through the engine, as `lightfi-token --force-refresh` does it.
fn try_refresh(findings: &mut Findings, s: &Settings, http: &dyn Transport) {
    let want = Want {
        min_valid: 0,
        force_refresh: true,
        may_interact: false,
        kind: crate::config::TokenKind::Access,
    };
    match token::obtain(s, http, want) {
        Ok(access) => {
            // When the server fails while the cached token is still valid,
            // that token is handed out, and the failure is recorded.
            match Store::new(s).load().ok().and_then(|t| t.last_failure) {
                None => findings.ok(
                    "refresh",
                    format!(
                        "the server accepted the refresh token; the new access token is valid until {}",
                        rfc3339(access.expires_at)
                    ),
                ),
                Some(failure) => findings.fail(
                    "refresh",
                    format!(
                        "{} (the cached access token still works until {})",
                        failure.message,
                        rfc3339(access.expires_at)
                    ),
                    if failure.hint.is_empty() {
                        "try again later".into()
                    } else {
                        failure.hint
                    },
                ),
            }
        }
        Err(e) => findings.fail("refresh", e.to_string(), e.hint()),
    }
}

/// ` (through HTTPS_PROXY=http://proxy:3128, NO_PROXY=…)`: the variables
/// that decide the route and the trusted certificates, when set. A proxy's
/// user name and password are never shown.
fn via_proxy() -> String {
    const NAMES: [&str; 10] = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ];
    let set: Vec<String> = NAMES
        .iter()
        .filter_map(|name| {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
            let shown = if name.ends_with("_PROXY") || name.ends_with("_proxy") {
                if name.starts_with("NO") || name.starts_with("no") {
                    crate::report::sanitize(&value)
                } else {
                    proxy_without_credentials(&value)
                }
            } else {
                crate::report::sanitize(&value)
            };
            Some(format!("{name}={shown}"))
        })
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("\nthe environment sets {}", set.join(", "))
    }
}

/// A proxy URL as `scheme://host:port`, without user name, password or path.
fn proxy_without_credentials(value: &str) -> String {
    let parsed = if value.contains("://") {
        url::Url::parse(value)
    } else {
        url::Url::parse(&format!("http://{value}"))
    };
    match parsed {
        Ok(url) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            let credentials = if url.username().is_empty() && url.password().is_none() {
                ""
            } else {
                " (with credentials, not shown)"
            };
            format!(
                "{}://{}{port}{credentials}",
                url.scheme(),
                url.host_str().unwrap_or("?")
            )
        }
        Err(_) => "(set, not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_are_never_shown() {
        assert_eq!(
            proxy_without_credentials("http://me:hunter2@proxy.example:3128/x"),
            "http://proxy.example:3128 (with credentials, not shown)"
        );
        assert_eq!(
            proxy_without_credentials("proxy.example:8080"),
            "http://proxy.example:8080"
        );
        assert!(!proxy_without_credentials("me:hunter2@proxy").contains("hunter2"));
    }
}
