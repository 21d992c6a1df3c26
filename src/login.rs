//! Interactive login: the authorization-code flow with PKCE (RFC 7636, S256)
//! and a random `state`, through the browser and a loopback callback server
//! (RFC 8252 §7.3).
//!
//! The callback server binds the redirect URI's port on loopback only —
//! 127.0.0.1 and ::1, since browsers resolve `localhost` to either — for the
//! duration of the login. It accepts only the redirect URI's path, ignores
//! unknown query parameters (RFC 9207 adds `iss`), and answers a callback
//! with a wrong or missing `state` with an error page while it keeps waiting
//! for the real one. With `--no-browser` the redirected URL can also be
//! pasted on stdin, for hosts where the browser runs elsewhere.
//!
//! The code is exchanged before the browser is told it worked, and no page
//! ever shows a token.

use std::io::BufRead;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use crate::config::{Settings, is_loopback};
use crate::error::{Error, Result};
use crate::oauth::{Failure, OAuthClient};
use crate::output::rfc3339;
use crate::secret::Secret;
use crate::store::{AccessToken, Lock, Store, Tokens};

/// How long a browser login may take unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
pub struct LoginOptions {
    /// Print the URL only, and also accept the redirected URL pasted on stdin.
    pub no_browser: bool,
    pub timeout: Duration,
}

/// `lightfi-token login`: log in now, whatever is stored.
pub fn login_command(settings: &Settings, options: LoginOptions) -> Result<AccessToken> {
    let store = Store::new(settings);
    let lock = store.lock(settings.lock_timeout)?;
    login_locked(settings, &store, &lock, options)
}

/// The fallback of `get` when there is no usable refresh token: called with
/// the profile's lock held, so concurrent callers wait for this one login.
pub fn login(settings: &Settings, store: &Store, lock: &Lock) -> Result<AccessToken> {
    login_locked(
        settings,
        store,
        lock,
        LoginOptions {
            no_browser: false,
            timeout: DEFAULT_TIMEOUT,
        },
    )
}

fn login_locked(settings: &Settings, store: &Store, lock: &Lock, options: LoginOptions) -> Result<AccessToken> {
    let redirect = Redirect::parse(&settings.redirect_uri, options.no_browser)?;
    let pkce = Pkce::new()?;
    let state = random_urlsafe(32)?;
    let authorize_url = authorize_url(settings, &pkce, &state)?;

    let (events, inbox) = mpsc::channel();
    let listeners = match redirect.listen(&events) {
        Ok(listeners) => listeners,
        // Pasting still works when the port is taken.
        Err(e) if options.no_browser => {
            crate::warn(&e.to_string());
            Listeners(vec![])
        }
        Err(e) => return Err(e),
    };

    eprintln!("lightfi-token: log in to LightFi in your browser at this address:\n\n    {authorize_url}\n");
    if options.no_browser {
        eprintln!(
            "lightfi-token: after logging in, paste the address the browser ends up at (it starts with {}) and press Enter:",
            settings.redirect_uri
        );
        read_pasted_urls(events.clone());
    } else {
        open_browser(authorize_url.as_str());
    }
    drop(events);

    let wait = Wait {
        inbox,
        redirect: &redirect,
        state: &state,
        deadline: Instant::now() + options.timeout,
    };
    let outcome = wait.for_code(options);
    let (code, reply) = match outcome {
        Ok(found) => found,
        Err(e) => {
            listeners.stop();
            return Err(e);
        }
    };

    let client = OAuthClient::new(settings)?;
    let exchanged = client
        .exchange_code(&code, &pkce.verifier)
        .map_err(|failure| match failure {
            Failure::OAuth(e) if e.error == "invalid_grant" => Error::LoginFailed {
                msg: format!("the server rejected the authorization code: {e}"),
                hint: "codes are single-use and live 5 minutes: run `lightfi-token login` again".into(),
            },
            other => other.into_refresh_error(),
        });
    let result = exchanged.and_then(|response| {
        if response.refresh_token.is_none() {
            crate::warn(
                "the server issued no refresh token: you will have to log in again when this access token expires",
            );
        }
        // A login replaces whatever was stored for the profile.
        let mut tokens = Tokens::empty(settings);
        crate::token::keep(store, lock, &mut tokens, response, None)
    });
    if let Some(reply) = reply {
        match &result {
            Ok(_) => reply.respond(200, PAGE_LOGGED_IN),
            Err(e) => reply.respond(500, &page_failed(&e.to_string())),
        }
    }
    listeners.stop();
    let access = result?;
    eprintln!(
        "lightfi-token: logged in (profile `{}`); access token valid until {}",
        settings.profile,
        rfc3339(access.expires_at)
    );
    Ok(access)
}

/// PKCE (RFC 7636 §4.1–4.2): 32 random bytes → a 43-character verifier;
/// challenge = BASE64URL(SHA256(verifier)), method S256.
struct Pkce {
    verifier: Secret,
    challenge: String,
}

impl Pkce {
    fn new() -> Result<Pkce> {
        let verifier = random_urlsafe(32)?;
        Ok(Pkce {
            challenge: challenge_for(&verifier),
            verifier: Secret::new(verifier),
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
    let mut url = Url::parse(&settings.endpoint("authorize")).map_err(|e| {
        Error::config(
            format!("invalid OAuth URL: {e}"),
            "check --oauth-url / LIGHTFI_OAUTH_URL",
        )
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &settings.client_id)
        .append_pair("redirect_uri", &settings.redirect_uri)
        .append_pair("scope", &settings.scope)
        .append_pair("state", state)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url)
}

/// The redirect URI, and where to listen for it.
struct Redirect {
    uri: Url,
    /// Loopback addresses to bind; empty when the URI is not a loopback one
    /// (allowed only with `--no-browser`, where the URL is pasted).
    addrs: Vec<SocketAddr>,
}

impl Redirect {
    fn parse(raw: &str, no_browser: bool) -> Result<Redirect> {
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

    /// Bind the callback port on every loopback address; ::1 is optional
    /// where the host has no IPv6.
    fn listen(&self, events: &Sender<Event>) -> Result<Listeners> {
        let mut servers = vec![];
        for addr in &self.addrs {
            let listener = match TcpListener::bind(addr) {
                Ok(l) => l,
                Err(e) if addr.is_ipv6() && self.addrs.len() > 1 && e.kind() != std::io::ErrorKind::AddrInUse => {
                    continue;
                }
                Err(e) => {
                    let port = addr.port();
                    return Err(Error::LoginFailed {
                        msg: format!("cannot listen for the login callback on {addr}: {e}"),
                        hint: if e.kind() == std::io::ErrorKind::AddrInUse {
                            format!(
                                "port {port} is in use (the old Flask script?): stop that program, or pass \
                                 --redirect-uri with another callback URL registered on the app client"
                            )
                        } else {
                            "pass --redirect-uri with another callback URL registered on the app client".into()
                        },
                    });
                }
            };
            let server = tiny_http::Server::from_listener(listener, None)
                .map_err(|e| Error::unexpected(format!("cannot serve the login callback on {addr}: {e}")))?;
            servers.push(Arc::new(server));
        }
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

struct Listeners(Vec<Arc<tiny_http::Server>>);

impl Listeners {
    fn stop(&self) {
        for server in &self.0 {
            server.unblock();
        }
    }
}

enum Event {
    /// A request to the callback server.
    Request(tiny_http::Request),
    /// A line pasted on stdin (`--no-browser`).
    Pasted(String),
}

/// Where to tell the browser how the login ended.
struct Reply(tiny_http::Request);

impl Reply {
    fn respond(self, status: u16, html: &str) {
        let _ = self.0.respond(page(status, html));
    }
}

fn read_pasted_urls(events: Sender<Event>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !line.trim().is_empty() && events.send(Event::Pasted(line)).is_err() {
                break;
            }
        }
    });
}

struct Wait<'a> {
    inbox: Receiver<Event>,
    redirect: &'a Redirect,
    state: &'a str,
    deadline: Instant,
}

/// What a callback (or a pasted URL) says.
enum Callback {
    Code(Secret),
    Error {
        error: String,
        description: Option<String>,
    },
    /// Missing or wrong `state`: not the answer to this login.
    Foreign,
}

impl Wait<'_> {
    /// Wait for the callback with a code; answer everything else on the way.
    fn for_code(&self, options: LoginOptions) -> Result<(Secret, Option<Reply>)> {
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
                        msg: format!("timed out after {} s waiting for the browser login", options.timeout.as_secs()),
                        hint: "run `lightfi-token login` again (on a host without a browser: `lightfi-token login --no-browser`)"
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
                        crate::warn("that is not the redirected address; paste the whole URL from the address bar");
                        continue;
                    }
                },
            };
            match self.classify(&query) {
                Callback::Code(code) => return Ok((code, reply)),
                Callback::Error { error, description } => {
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
                    crate::warn("ignored a login callback that does not belong to this login (wrong or missing state)");
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

    fn classify(&self, query: &str) -> Callback {
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
        let state_ok = state.is_some_and(|s| bool::from(s.as_bytes().ct_eq(self.state.as_bytes())));
        match (state_ok, code, error) {
            (false, _, _) => Callback::Foreign,
            (true, _, Some(error)) => Callback::Error { error, description },
            (true, Some(code), None) if !code.is_empty() => Callback::Code(Secret::new(code)),
            (true, _, None) => Callback::Error {
                error: "invalid_request".into(),
                description: Some("no code in the callback".into()),
            },
        }
    }
}

/// The query part of a pasted redirect: a whole URL, or just `code=…&state=…`.
fn pasted_query(line: &str) -> Option<String> {
    let line = line.trim();
    let query = match Url::parse(line) {
        Ok(url) => url.query()?.to_string(),
        Err(_) => line.split_once('?').map_or(line, |(_, q)| q).to_string(),
    };
    (query.contains("code=") || query.contains("error=")).then_some(query)
}

/// Open `url` in the user's browser: `$BROWSER` if set (a command; `%s` is
/// replaced by the URL, else the URL is appended), else the platform's opener.
/// Failure is only a warning: the URL is already on stderr.
fn open_browser(url: &str) {
    let mut command = match std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        Some(browser) => {
            let mut words: Vec<String> = browser.split_whitespace().map(str::to_string).collect();
            if words.iter().any(|w| w.contains("%s")) {
                words.iter_mut().for_each(|w| *w = w.replace("%s", url));
            } else {
                words.push(url.to_string());
            }
            let mut command = std::process::Command::new(&words[0]);
            command.args(&words[1..]);
            command
        }
        None => platform_opener(url),
    };
    // The browser must not write to our stdout: it carries only the token.
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        // Nor hold our stderr open: a caller reading it to the end would wait
        // until the browser quits.
        .stderr(std::process::Stdio::null());
    match command.spawn() {
        Ok(mut child) => {
            // Reap it whenever it ends, without waiting for it.
            std::thread::spawn(move || child.wait());
        }
        Err(e) => crate::warn(&format!(
            "could not open a browser ({e}); open the address above yourself"
        )),
    }
}

fn platform_opener(url: &str) -> std::process::Command {
    let (program, args): (&str, &[&str]) = if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        // Not `cmd /c start`: cmd would split the URL at `&`.
        ("rundll32", &["url.dll,FileProtocolHandler"])
    } else {
        ("xdg-open", &[])
    };
    let mut command = std::process::Command::new(program);
    command.args(args).arg(url);
    command
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
    let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("static header");
    tiny_http::Response::from_string(html)
        .with_status_code(status)
        .with_header(header("Content-Type", "text/html; charset=utf-8"))
        .with_header(header("Cache-Control", "no-store"))
        .with_header(header("Referrer-Policy", "no-referrer"))
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
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            challenge_for("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let pkce = Pkce::new().unwrap();
        assert_eq!(pkce.verifier.expose().len(), 43);
        assert_eq!(pkce.challenge, challenge_for(pkce.verifier.expose()));
    }

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
        let redirect = Redirect::parse("http://localhost:3000", false).unwrap();
        let (_tx, inbox) = mpsc::channel();
        let wait = Wait {
            inbox,
            redirect: &redirect,
            state: "s1",
            deadline: Instant::now(),
        };
        assert!(matches!(wait.classify("code=c&state=s1&iss=x"), Callback::Code(_)));
        assert!(matches!(wait.classify("code=c&state=s2"), Callback::Foreign));
        assert!(matches!(wait.classify("code=c"), Callback::Foreign));
        assert!(matches!(
            wait.classify("error=access_denied&state=s1"),
            Callback::Error { .. }
        ));
        assert!(matches!(
            wait.classify("error=access_denied&state=nope"),
            Callback::Foreign
        ));
    }

    #[test]
    fn failure_pages_escape_server_text() {
        assert!(!page_failed("<script>x</script>").contains("<script>"));
    }
}
