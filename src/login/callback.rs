//! The loopback receiver of the login callback.
//!
//! It binds the redirect URI's port on loopback only — 127.0.0.1 and ::1,
//! since browsers resolve `localhost` to either — for the duration of the
//! login. It accepts only the redirect URI's path, ignores unknown query
//! parameters (RFC 9207 adds `iss`), and answers a callback with a wrong or
//! missing `state` with an error page while it keeps waiting for the real
//! one. With `--no-browser` the redirected URL can also be pasted on stdin,
//! for hosts where the browser runs elsewhere.

use std::io::BufRead;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use url::Url;

use crate::config::is_loopback;
use crate::error::{Error, Result};
use crate::http::{self, BindError};
use crate::report;
use crate::secret::AuthorizationCode;

/// The redirect URI, and where to listen for it.
pub struct Redirect {
    uri: Url,
    /// Loopback addresses to bind; empty when the URI is not a loopback one
    /// (allowed only with `--no-browser`, where the URL is pasted).
    addrs: Vec<SocketAddr>,
}

impl Redirect {
    pub fn parse(raw: &str, no_browser: bool) -> Result<Redirect> {
        let bad = |why: &str| {
            Error::config(
                format!("invalid redirect URI `{raw}`: {why}"),
                "use the callback URL registered on the Cognito app client, e.g. http://localhost:3000 \
                 (--redirect-uri, LIGHTFI_REDIRECT_URI or redirect_uri in config.toml)",
            )
        };
        let uri = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
        if uri.scheme() == "http" && is_loopback(&uri) {
            let port = uri.port_or_known_default().unwrap_or(80);
            let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            let addrs = match uri.host() {
                Some(url::Host::Ipv4(_)) => vec![v4],
                Some(url::Host::Ipv6(_)) => vec![v6],
                _ => vec![v4, v6],
            };
            return Ok(Redirect { uri, addrs });
        }
        if no_browser && matches!(uri.scheme(), "http" | "https") {
            return Ok(Redirect { uri, addrs: vec![] });
        }
        Err(bad(
            "lightfi-token can only receive the callback on http://localhost:PORT (or paste it with --no-browser)",
        ))
    }

    /// Bind the callback port on loopback (::1 is optional where the host
    /// has no IPv6) and forward its requests to `events`.
    pub fn listen(&self, events: &Sender<Event>) -> Result<Listeners> {
        if self.addrs.is_empty() {
            return Ok(Listeners::none());
        }
        let port = self.addrs[0].port();
        let v4 = self.addrs.iter().any(SocketAddr::is_ipv4);
        let v6 = self.addrs.iter().any(SocketAddr::is_ipv6);
        let listeners = http::listen_loopback(port, v4, v6).map_err(|e: BindError| {
            let hint = if e.in_use() {
                format!(
                    "port {port} is in use (the old Flask script?): stop that program, or pass \
                     --redirect-uri with another callback URL registered on the app client"
                )
            } else {
                "pass --redirect-uri with another callback URL registered on the app client".into()
            };
            Error::config(format!("login callback: {}", e.describe()), hint)
        })?;
        let servers: Vec<Arc<tiny_http::Server>> = listeners.into_iter().map(|l| Arc::new(l.server)).collect();
        for server in &servers {
            let (server, events) = (server.clone(), events.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    if events.send(Event::Request(request)).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Listeners(servers))
    }
}

/// The running callback servers.
pub struct Listeners(Vec<Arc<tiny_http::Server>>);

impl Listeners {
    pub fn none() -> Self {
        Listeners(vec![])
    }

    pub fn stop(&self) {
        for server in &self.0 {
            server.unblock();
        }
    }
}

/// The end of a login: tells the waiting browser tab how it ended, then
/// stops the callback servers.
pub struct Finish {
    reply: Option<Reply>,
    listeners: Listeners,
}

impl Finish {
    pub fn new(reply: Option<Reply>, listeners: Listeners) -> Self {
        Finish { reply, listeners }
    }

    /// `Err` carries the message to show (never a token).
    pub fn tell_browser(self, outcome: std::result::Result<(), String>) {
        if let Some(reply) = self.reply {
            match outcome {
                Ok(()) => reply.respond(200, PAGE_LOGGED_IN),
                Err(why) => reply.respond(500, &page_failed(&why)),
            }
        }
        self.listeners.stop();
    }
}

pub enum Event {
    /// A request to the callback server.
    Request(tiny_http::Request),
    /// A line pasted on stdin (`--no-browser`).
    Pasted(String),
}

/// Where to tell the browser how the login ended.
pub struct Reply(tiny_http::Request);

impl Reply {
    fn respond(self, status: u16, html: &str) {
        let _ = self.0.respond(page(status, html));
    }
}

pub fn read_pasted_urls(events: Sender<Event>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !line.trim().is_empty() && events.send(Event::Pasted(line)).is_err() {
                break;
            }
        }
    });
}

pub struct Wait<'a> {
    pub inbox: Receiver<Event>,
    pub redirect: &'a Redirect,
    pub state: &'a str,
    pub deadline: Instant,
}

/// What a callback (or a pasted URL) says.
pub enum Callback {
    Code(AuthorizationCode),
    Error {
        error: String,
        description: Option<String>,
    },
    /// Missing or wrong `state`: not the answer to this login.
    Foreign,
}

impl Wait<'_> {
    /// Wait for the callback with a code; answer everything else on the way.
    pub fn for_code(&self, timeout: Duration) -> Result<(AuthorizationCode, Option<Reply>)> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            let event = match self.inbox.recv_timeout(left) {
                Ok(event) => event,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::LoginFailed {
                        msg: "stdin was closed and no callback server is listening: the login cannot finish".into(),
                        hint: "run `lightfi-token login --no-browser` at a terminal and paste the redirected address, \
                               or free the callback port"
                            .into(),
                    });
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::LoginFailed {
                        msg: format!(
                            "timed out after {} s waiting for the browser login to come back to {}",
                            timeout.as_secs(),
                            self.redirect.uri
                        ),
                        hint: "likely causes: the browser showed an error page (the client id, or the callback URL \
                               not registered on the app client), the login tab was closed, or the browser runs on \
                               another machine and cannot reach this one's localhost (use `lightfi-token login \
                               --no-browser` and paste the address it ends up at); then run `lightfi-token login` again"
                            .into(),
                    });
                }
            };
            let (query, reply) = match event {
                Event::Request(request) => {
                    let Some(query) = self.callback_query(&request) else {
                        let _ = request.respond(page(404, PAGE_NOT_FOUND));
                        continue;
                    };
                    (query, Some(Reply(request)))
                }
                Event::Pasted(line) => match pasted_query(&line) {
                    Some(query) => (query, None),
                    None => {
                        report::warn("that is not the redirected address; paste the whole URL from the address bar");
                        continue;
                    }
                },
            };
            match parse_callback_query(&query, self.state) {
                Callback::Code(code) => return Ok((code, reply)),
                Callback::Error { error, description } => {
                    let (error, description) = (report::sanitize(&error), description.map(|d| report::sanitize(&d)));
                    let text = match &description {
                        Some(d) => format!("{error}: {d}"),
                        None => error.clone(),
                    };
                    if let Some(reply) = reply {
                        reply.respond(400, &page_failed(&text));
                    }
                    return Err(Error::LoginFailed {
                        msg: format!("the login was not completed: {text}"),
                        hint: if error == "access_denied" {
                            "run `lightfi-token login` again and allow access".into()
                        } else {
                            "run `lightfi-token login` again; if it keeps failing, check the app client's \
                             callback URL, allowed OAuth flows and scopes in Cognito"
                                .into()
                        },
                    });
                }
                Callback::Foreign => {
                    report::warn(
                        "ignored a login callback that does not belong to this login (wrong or missing state)",
                    );
                    if let Some(reply) = reply {
                        reply.respond(400, PAGE_FOREIGN);
                    }
                }
            }
        }
    }

    /// The query of a request to the redirect URI's path, or None for any other request.
    fn callback_query(&self, request: &tiny_http::Request) -> Option<String> {
        if *request.method() != tiny_http::Method::Get {
            return None;
        }
        let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
        (path == self.redirect.uri.path()).then(|| query.to_string())
    }
}

/// What the callback query `query` says to the login whose `state` is `expected_state`.
pub fn parse_callback_query(query: &str, expected_state: &str) -> Callback {
    let (mut code, mut state, mut error, mut description) = (None, None, None, None);
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {} // e.g. `iss` (RFC 9207)
        }
    }
    // Compare in constant time: the state is the login's CSRF secret.
    let state_ok = state.is_some_and(|s| bool::from(s.as_bytes().ct_eq(expected_state.as_bytes())));
    match (state_ok, code, error) {
        (false, _, _) => Callback::Foreign,
        (true, _, Some(error)) => Callback::Error { error, description },
        (true, Some(code), None) if !code.is_empty() => Callback::Code(AuthorizationCode::new(code)),
        (true, _, None) => Callback::Error {
            error: "invalid_request".into(),
            description: Some("no code in the callback".into()),
        },
    }
}

/// The query part of a pasted redirect: a whole URL, or just `code=…&state=…`.
pub fn pasted_query(line: &str) -> Option<String> {
    let line = line.trim();
    let query = match Url::parse(line) {
        Ok(url) => url.query()?.to_string(),
        Err(_) => line.split_once('?').map_or(line, |(_, q)| q).to_string(),
    };
    (query.contains("code=") || query.contains("error=")).then_some(query)
}

const PAGE_LOGGED_IN: &str =
    "<h1>You are logged in to LightFi</h1><p>You can close this tab and return to the terminal.</p>";
const PAGE_FOREIGN: &str = "<h1>This is not the login in progress</h1><p>This answer does not match the login \
    lightfi-token started (its <code>state</code> is wrong or missing), so it was ignored. Finish the login in the \
    tab lightfi-token opened, or run <code>lightfi-token login</code> again.</p>";
const PAGE_NOT_FOUND: &str = "<h1>Not found</h1><p>lightfi-token is waiting for a login callback here.</p>";

fn page_failed(reason: &str) -> String {
    format!(
        "<h1>LightFi login failed</h1><p>{}</p><p>Return to the terminal for what to do next.</p>",
        html_escape(reason)
    )
}

fn page(status: u16, body: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>lightfi-token</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\">{body}</body></html>"
    );
    let mut response = http::response(status, "text/html; charset=utf-8", html.into_bytes());
    http::add_header(&mut response, "Referrer-Policy", "no-referrer");
    response
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_decides_where_to_listen() {
        let r = Redirect::parse("http://localhost:3000", false).unwrap();
        assert_eq!(r.addrs.len(), 2);
        assert_eq!(r.uri.path(), "/");
        let r = Redirect::parse("http://127.0.0.1:8400/callback", false).unwrap();
        assert_eq!(r.addrs, vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 8400))]);
        assert!(Redirect::parse("https://app.example/cb", false).is_err());
        assert!(
            Redirect::parse("https://app.example/cb", true)
                .unwrap()
                .addrs
                .is_empty()
        );
    }

    #[test]
    fn pasted_redirects_are_understood() {
        assert_eq!(
            pasted_query("  http://localhost:3000/?code=abc&state=xyz \n").unwrap(),
            "code=abc&state=xyz"
        );
        assert_eq!(pasted_query("code=abc&state=xyz").unwrap(), "code=abc&state=xyz");
        assert!(pasted_query("hello").is_none());
    }

    #[test]
    fn callbacks_need_the_exact_state() {
        let classify = |query| parse_callback_query(query, "s1");
        assert!(matches!(classify("code=c&state=s1&iss=x"), Callback::Code(_)));
        assert!(matches!(classify("code=c&state=s2"), Callback::Foreign));
        assert!(matches!(classify("code=c"), Callback::Foreign));
        assert!(matches!(
            classify("error=access_denied&state=s1"),
            Callback::Error { .. }
        ));
        assert!(matches!(classify("error=access_denied&state=nope"), Callback::Foreign));
    }

    #[test]
    fn failure_pages_escape_server_text() {
        assert!(!page_failed("<script>x</script>").contains("<script>"));
    }
}
