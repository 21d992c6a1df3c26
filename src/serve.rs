//! `lightfi-token serve`: `GET /token` on loopback for tools that cannot run
//! a program (Postman, Insomnia, VS Code REST Client), answering the `json`
//! format through the same locked path as `get`, never with a browser login.
//!
//! Who may ask: any local process can connect to loopback, and a web page in
//! the browser can make it send requests, so each request must carry
//! `X-Lightfi-Key` (a random key kept next to the tokens, 0600; compared in
//! constant time) and is refused when its `Host` is not this server's
//! loopback address (DNS rebinding: an attacker's name resolving to
//! 127.0.0.1) or when it has an `Origin` (it comes from a web page). No CORS
//! header is ever sent, so a page cannot read an answer either; every answer
//! is `Cache-Control: no-store`.
//!
//! Requests are served by a fixed pool of threads; concurrent requests that
//! find the token expired cause one refresh, because `token::obtain` holds the
//! profile's file lock across re-read → refresh → write (each thread opens the
//! lock file itself, and flock locks conflict between open files even within
//! one process). Ctrl-C or SIGTERM stops accepting, lets requests in flight
//! finish (a refresh being stored is never cut short) and exits 0; a second
//! Ctrl-C exits at once.
//!
//! The request log on stderr names method, path and status only: never a
//! header, a query string, the key or a token.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tiny_http::{Header, Request, Response, Server};

use crate::cli::Format;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::store::Store;
use crate::token::{self, Want};

/// The request header that must carry the key.
pub const KEY_HEADER: &str = "X-Lightfi-Key";
/// The key's file, in the store folder next to the profiles' tokens.
const KEY_FILE: &str = "serve.key";
/// Threads answering requests; more requests wait in line.
const WORKERS: usize = 8;
/// How often idle threads look whether a stop was asked for.
const POLL: Duration = Duration::from_millis(200);

static STOP: AtomicBool = AtomicBool::new(false);

/// `serve`: print the key with `show_key`, else serve until stopped.
pub fn run(settings: &Settings, port: u16, show_key: bool) -> Result<()> {
    let key = key(settings)?;
    if show_key {
        let mut stdout = std::io::stdout().lock();
        return writeln!(stdout, "{}", key.expose())
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::unexpected(format!("cannot write to stdout: {e}")));
    }

    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v4_server = listen(v4).map_err(|e| cannot_listen(v4, &e))?;
    // With --port 0 the system picked one: use the same on ::1.
    let port = v4_server.server_addr().to_ip().map_or(port, |a| a.port());
    let mut listeners = vec![(v4_server, SocketAddr::from((Ipv4Addr::LOCALHOST, port)))];
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    match listen(v6) {
        Ok(server) => listeners.push((server, v6)),
        // Another program on [::1]:PORT would get the key of clients that
        // resolve `localhost` to ::1: refuse to start rather than share the port.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(cannot_listen(v6, &e)),
        Err(e) => crate::warn(&format!("cannot listen on {v6} ({e}); serving on 127.0.0.1 only")),
    }

    stop_on_signals();
    announce(settings, port, listeners.len() > 1, &key);

    let ctx = Context { settings, key, port };
    let (sender, receiver) = mpsc::channel();
    let receiver = Mutex::new(receiver);
    std::thread::scope(|scope| {
        for (server, addr) in listeners {
            let sender = sender.clone();
            scope.spawn(move || dispatch(server, addr, sender));
        }
        drop(sender);
        for _ in 0..WORKERS {
            scope.spawn(|| work(&receiver, &ctx));
        }
    });
    log("stopped");
    Ok(())
}

/// The key, created on first use: 32 random bytes, base64url.
fn key(settings: &Settings) -> Result<Secret> {
    let store = Store::new(settings);
    let (path, bytes) = store.read_or_create(KEY_FILE, || {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| Error::unexpected(format!("cannot get random bytes for the serve key: {e}")))?;
        Ok(format!("{}\n", URL_SAFE_NO_PAD.encode(random)).into_bytes())
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let key = text.trim();
    if key.len() < 32 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::config(
            format!("the serve key file {} is malformed", path.display()),
            "delete it: `lightfi-token serve` creates a new key on its next start",
        ));
    }
    Ok(Secret::new(key))
}

fn listen(addr: SocketAddr) -> std::io::Result<Server> {
    let listener = std::net::TcpListener::bind(addr)?;
    Server::from_listener(listener, None).map_err(std::io::Error::other)
}

fn cannot_listen(addr: SocketAddr, e: &std::io::Error) -> Error {
    Error::config(
        format!("cannot listen on {addr}: {e}"),
        "pick another port with --port, or stop the program using this one",
    )
}

fn announce(settings: &Settings, port: u16, v6: bool, key: &Secret) {
    let urls = if v6 {
        format!("http://127.0.0.1:{port}/token and http://[::1]:{port}/token")
    } else {
        format!("http://127.0.0.1:{port}/token")
    };
    log(&format!(
        "serving access tokens for profile `{}` at {urls}\n\
         lightfi-token: send the header  {KEY_HEADER}: {}\n\
         lightfi-token: Postman/Insomnia: keep the key in an environment variable; integrations/postman/ \
         has a pre-request script that fetches the token from here (`serve --show-key` prints the key again)\n\
         lightfi-token: Ctrl-C stops the server",
        settings.profile,
        key.expose(),
    ));
    let logged_in = settings.env_refresh_token.is_some() || Store::new(settings).load(settings).refresh_token.is_some();
    if !logged_in {
        crate::warn("not logged in yet: GET /token answers 503 until you run `lightfi-token login`");
    }
}

/// Hand `server`'s requests to the workers until a stop is asked for.
fn dispatch(mut server: Server, addr: SocketAddr, sender: Sender<Request>) {
    while !STOP.load(Ordering::SeqCst) {
        match server.recv_timeout(POLL) {
            Ok(Some(request)) => {
                if sender.send(request).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            // tiny_http's accept loop ended (e.g. out of file descriptors):
            // listen anew rather than stop serving.
            Err(e) => {
                log(&format!("stopped accepting on {addr} ({e}); listening again"));
                drop(server);
                server = loop {
                    if STOP.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    if let Ok(server) = listen(addr) {
                        break server;
                    }
                };
            }
        }
    }
}

struct Context<'a> {
    settings: &'a Settings,
    key: Secret,
    port: u16,
}

fn work(receiver: &Mutex<Receiver<Request>>, ctx: &Context) {
    loop {
        let next = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        match next {
            Ok(request) => handle(request, ctx),
            Err(_) => return,
        }
    }
}

fn handle(request: Request, ctx: &Context) {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| (h.field.as_str().to_string(), h.value.as_str().trim().to_string()))
        .collect();
    let method = request.method().as_str().to_string();
    let reply = match check(&method, request.url(), &headers, &ctx.key, ctx.port) {
        Ok(()) => token_reply(ctx.settings),
        Err(refusal) => refusal.reply(),
    };
    let path = if path_of(request.url()) == "/token" {
        "/token"
    } else {
        "(another path)"
    };
    let method: String = method.chars().take(16).filter(char::is_ascii_graphic).collect();
    match &reply.problem {
        Some(problem) => log(&format!("{method} {path} → {} {problem}", reply.status)),
        None => log(&format!("{method} {path} → {}", reply.status)),
    }
    let _ = request.respond(reply.response());
}

/// An answer: status, JSON body, and what to log about it.
struct Reply {
    status: u16,
    body: String,
    allow_get: bool,
    challenge: bool,
    problem: Option<String>,
}

impl Reply {
    fn response(self) -> Response<std::io::Cursor<Vec<u8>>> {
        let mut response = Response::from_data(self.body.into_bytes()).with_status_code(self.status);
        let mut add = |name: &str, value: &str| {
            if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(header);
            }
        };
        add("Content-Type", "application/json");
        add("Cache-Control", "no-store");
        add("X-Content-Type-Options", "nosniff");
        if self.allow_get {
            add("Allow", "GET");
        }
        if self.challenge {
            add("WWW-Authenticate", "X-Lightfi-Key realm=\"lightfi-token serve\"");
        }
        response
    }
}

/// A request refused before any token work.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: &'static str,
    pub message: &'static str,
}

impl Refusal {
    fn reply(self) -> Reply {
        Reply {
            status: self.status,
            body: json_error(self.error, self.message, None),
            allow_get: self.status == 405,
            challenge: self.status == 401,
            problem: Some(self.error.to_string()),
        }
    }
}

/// Decide whether to answer, in this order: wrong `Host` or an `Origin`
/// (403), another path (404), another method (405), missing or wrong key (401).
pub fn check(method: &str, url: &str, headers: &[(String, String)], key: &Secret, port: u16) -> Result<(), Refusal> {
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let hosts: Vec<&str> = values("Host").collect();
    if !matches!(hosts[..], [host] if host_allowed(host, port)) {
        return Err(Refusal {
            status: 403,
            error: "forbidden_host",
            message: "the Host header must be 127.0.0.1:PORT, localhost:PORT or [::1]:PORT",
        });
    }
    if values("Origin").next().is_some() {
        return Err(Refusal {
            status: 403,
            error: "forbidden_origin",
            message: "requests from web pages (with an Origin header) are refused",
        });
    }
    if path_of(url) != "/token" {
        return Err(Refusal {
            status: 404,
            error: "not_found",
            message: "the only path is /token",
        });
    }
    if method != "GET" {
        return Err(Refusal {
            status: 405,
            error: "method_not_allowed",
            message: "use GET /token",
        });
    }
    let keys: Vec<&str> = values(KEY_HEADER).collect();
    let key_ok = matches!(keys[..], [given] if bool::from(given.as_bytes().ct_eq(key.expose().as_bytes())));
    if !key_ok {
        return Err(Refusal {
            status: 401,
            error: "invalid_key",
            message: "send the header X-Lightfi-Key with the key that `lightfi-token serve --show-key` prints",
        });
    }
    Ok(())
}

/// The path of a request target, without query or fragment.
fn path_of(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or_default()
}

/// Only this server's own loopback names: anything else is another site's
/// name that resolves here (DNS rebinding).
fn host_allowed(host: &str, port: u16) -> bool {
    let (name, given_port) = match host.rsplit_once(':') {
        Some((name, p)) if !name.is_empty() && !p.contains(']') => (name, p.parse::<u16>().ok()),
        _ => (host, (port == 80).then_some(80)),
    };
    given_port == Some(port) && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost") || name == "[::1]")
}

fn token_reply(settings: &Settings) -> Reply {
    let want = Want {
        min_valid: token::DEFAULT_MIN_VALID,
        force_refresh: false,
        may_interact: false,
    };
    let rendered = token::obtain(settings, want)
        .and_then(|access| crate::output::render(Format::Json, &access, OffsetDateTime::now_utc(), None));
    match rendered {
        Ok(body) => Reply {
            status: 200,
            body,
            allow_get: false,
            challenge: false,
            problem: None,
        },
        Err(e) => {
            let (status, error) = error_status(&e);
            Reply {
                status,
                body: json_error(error, &e.to_string(), Some(&e.hint())),
                allow_get: false,
                challenge: false,
                problem: Some(format!("{error}: {e}")),
            }
        }
    }
}

/// The HTTP status and `error` code for a failure to obtain a token.
/// 503 for "log in first": the service is there but cannot answer until a
/// person acts; 502 when the authorization server failed us.
fn error_status(e: &Error) -> (u16, &'static str) {
    match e.exit_code() {
        3 => (503, "login_required"),
        4 => (500, "configuration_error"),
        5 => (502, "authorization_server_unavailable"),
        6 => (503, "busy"),
        _ => (500, "internal_error"),
    }
}

fn json_error(error: &str, message: &str, hint: Option<&str>) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        error: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<&'a str>,
    }
    serde_json::to_string(&Body { error, message, hint }).unwrap_or_default() + "\n"
}

fn log(line: &str) {
    // A closed or broken stderr must not stop the server.
    let _ = writeln!(std::io::stderr(), "lightfi-token: {line}");
}

extern "C" fn on_signal(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // The second Ctrl-C: stop now, even with a request in flight.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) }
    }
}

/// Ctrl-C, SIGTERM (and SIGHUP on Unix) ask for a clean stop.
fn stop_on_signals() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    #[cfg(unix)]
    let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
    #[cfg(not(unix))]
    let signals = [libc::SIGINT, libc::SIGTERM];
    for signal in signals {
        // SAFETY: the handler only touches an atomic and calls _exit.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 8787;

    fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Result<(), Refusal> {
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        check(method, url, &headers, &Secret::new("k".repeat(43)), PORT)
    }

    fn status(result: Result<(), Refusal>) -> u16 {
        result.map_or_else(|r| r.status, |()| 200)
    }

    #[test]
    fn good_request_passes_with_every_loopback_host() {
        let key = "k".repeat(43);
        for host in ["127.0.0.1:8787", "localhost:8787", "LocalHost:8787", "[::1]:8787"] {
            let r = request("GET", "/token?x=1", &[("Host", host), ("x-lightfi-key", &key)]);
            assert_eq!(status(r), 200, "{host}");
        }
    }

    #[test]
    fn foreign_or_missing_host_is_403() {
        let key = "k".repeat(43);
        for host in [
            "evil.example:8787",
            "127.0.0.1:8788",
            "127.0.0.1",
            "localhost.evil.example:8787",
            "[::1]",
            "0.0.0.0:8787",
            "",
        ] {
            let r = request("GET", "/token", &[("Host", host), (KEY_HEADER, &key)]);
            assert_eq!(status(r), 403, "{host:?}");
        }
        assert_eq!(status(request("GET", "/token", &[(KEY_HEADER, &key)])), 403);
        let two = [("Host", "127.0.0.1:8787"), ("Host", "evil.example"), (KEY_HEADER, &key)];
        assert_eq!(status(request("GET", "/token", &two)), 403);
    }

    #[test]
    fn origin_is_403_even_with_the_key() {
        let key = "k".repeat(43);
        let r = request(
            "GET",
            "/token",
            &[("Host", "127.0.0.1:8787"), ("Origin", "null"), (KEY_HEADER, &key)],
        );
        assert_eq!(r.unwrap_err().error, "forbidden_origin");
    }

    #[test]
    fn paths_methods_and_keys() {
        let host = ("Host", "127.0.0.1:8787");
        assert_eq!(status(request("GET", "/", &[host])), 404);
        assert_eq!(status(request("GET", "/token/x", &[host])), 404);
        assert_eq!(status(request("POST", "/token", &[host])), 405);
        assert_eq!(status(request("OPTIONS", "/token", &[host])), 405);
        assert_eq!(status(request("GET", "/token", &[host])), 401);
        assert_eq!(status(request("GET", "/token", &[host, (KEY_HEADER, "wrong")])), 401);
        let almost = "k".repeat(42) + "K";
        assert_eq!(status(request("GET", "/token", &[host, (KEY_HEADER, &almost)])), 401);
        let key = "k".repeat(43);
        let twice = [host, (KEY_HEADER, key.as_str()), (KEY_HEADER, key.as_str())];
        assert_eq!(status(request("GET", "/token", &twice)), 401);
    }

    #[test]
    fn port_80_may_be_implied() {
        assert!(host_allowed("localhost", 80));
        assert!(!host_allowed("localhost", 8080));
    }

    #[test]
    fn token_failures_map_to_statuses() {
        let login = Error::LoginRequired { msg: "x".into() };
        assert_eq!(error_status(&login), (503, "login_required"));
        assert_eq!(error_status(&Error::unavailable("x")).0, 502);
        assert_eq!(
            json_error("login_required", "not logged in", Some("run `lightfi-token login`")),
            "{\"error\":\"login_required\",\"message\":\"not logged in\",\"hint\":\"run `lightfi-token login`\"}\n"
        );
    }
}
