//! The one HTTPS client setup shared by every request this program sends
//! (the token endpoint, Vault/OpenBao): rustls with ring, the HTTP timeout,
//! no redirects followed. Built only when a request will be sent, never on
//! the cached path.

use std::time::Duration;

use reqwest::blocking::Client;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that gives up after `timeout` and trusts the system's roots plus
/// `extra_roots` (a private CA, such as `VAULT_CACERT`).
pub fn client(timeout: Duration, extra_roots: Vec<reqwest::Certificate>) -> Result<Client, String> {
    // rustls with ring: smaller and quicker to build than aws-lc.
    // Another thread may have installed it first; either way one is.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .user_agent(concat!("lightfi-token/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(extra_roots)
        .build()
        .map_err(|e| format!("cannot set up HTTPS: {e}"))
}

/// A transport error in words, with its causes (never a body: there is none).
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}
