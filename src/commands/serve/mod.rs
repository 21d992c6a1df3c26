//! `lightfi-token serve`: a long-running command, `GET /token` on loopback for tools that cannot run
//! a program (Postman, Insomnia, VS Code REST Client), answering the `json`
//! format through the same locked path as `get`, never with a browser login.
//!
//! Who may ask is decided by [`policy`]; the key lives in [`key`]. No CORS
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
//! The key file is looked at (one `stat`) on every request: after
//! `serve --rotate-key` replaces it, the next request already needs the new
//! key, without a restart.
//!
//! The request log on stderr names method, path and status only: never a
//! header, a query string, the key or a token.

pub mod key;
pub mod policy;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tiny_http::{Request, Response};

use crate::config::{Settings, TokenKind};
use crate::error::{Error, Result};
use crate::http::{self, BindError, Listener};
use crate::oauth::Http;
use crate::output::Format;
use crate::report;
use crate::token::{self, Want};
use policy::{KEY_HEADER, Refusal, check, path_of};

/// Threads answering requests; more requests wait in line.
const WORKERS: usize = 8;
/// How long a request waits for another process holding the profile's lock.
const BUSY_AFTER: Duration = Duration::from_secs(3);
/// How often idle threads look whether a stop was asked for.
const POLL: Duration = Duration::from_millis(200);

/// `--show-key` prints the key, `--rotate-key` replaces it; else serve.
pub fn run(settings: &Settings, port: u16, show_key: bool, rotate_key: bool, min_valid: u64) -> Result<()> {
    if show_key {
        let (key, _) = key::load_or_create(settings)?;
        return report::print(format!("{}\n", key.expose()).as_bytes());
    }
    if rotate_key {
        let path = key::rotate(settings)?;
        report::note(&format!(
            "new serve key written to {}: the old one is refused from now on, also by a `lightfi-token serve` \
             already running; `lightfi-token serve --show-key` prints the new one (put it in Postman's \
             lightfi_key, or run `lightfi-token setup postman` again)",
            path.display()
        ));
        return Ok(());
    }
    serve(settings, port, min_valid)
}

/// Serve until stopped by a signal.
fn serve(settings: &Settings, port: u16, min_valid: u64) -> Result<()> {
    let (key, key_path) = key::load_or_create(settings)?;
    let listeners = http::listen_loopback(port, true, true).map_err(|e| cannot_listen(&e))?;
    let port = listeners[0].addr.port();
    if listeners.len() == 1 {
        report::warn(&format!("cannot listen on [::1]:{port}; serving on 127.0.0.1 only"));
    }

    let stop = stop_on_signals()?;
    announce(settings, port, listeners.len() > 1, &key_path);

    // A request never waits long behind another process holding the
    // profile (a browser login can take minutes): it answers 503 busy.
    let settings = &Settings {
        lock_timeout: settings.lock_timeout.min(BUSY_AFTER),
        ..settings.clone()
    };
    let ctx = Context {
        settings,
        key: Mutex::new(key::Watched::new(key_path, key)),
        port,
        min_valid,
    };
    let (sender, receiver) = mpsc::channel();
    let receiver = Mutex::new(receiver);
    std::thread::scope(|scope| {
        for listener in listeners {
            let (sender, stop) = (sender.clone(), &stop);
            scope.spawn(move || dispatch(listener, sender, stop));
        }
        drop(sender);
        for _ in 0..WORKERS {
            scope.spawn(|| work(&receiver, &ctx));
        }
    });
    log("stopped");
    Ok(())
}

fn cannot_listen(e: &BindError) -> Error {
    Error::config(
        e.describe(),
        "pick another port with --port, or stop the program using this one",
    )
}

fn announce(settings: &Settings, port: u16, v6: bool, key_path: &std::path::Path) {
    let urls = if v6 {
        format!("http://127.0.0.1:{port}/token and http://[::1]:{port}/token")
    } else {
        format!("http://127.0.0.1:{port}/token")
    };
    log(&format!(
        "serving access tokens for profile `{}` at {urls}\n\
         lightfi-token: send the header {KEY_HEADER} with the key in {} (`lightfi-token serve --show-key` prints it)\n\
         lightfi-token: Postman/Insomnia: keep the key in an environment variable; `lightfi-token setup \
         postman --out DIR` writes a Postman environment and a pre-request script that fetch the token from here\n\
         lightfi-token: Ctrl-C stops the server",
        settings.profile,
        key_path.display(),
    ));
    if !token::logged_in(settings) {
        report::warn("not logged in yet: GET /token answers 503 until you run `lightfi-token login`");
    }
}

/// Hand the listener's requests to the workers until a stop is asked for.
fn dispatch(listener: Listener, sender: Sender<Request>, stop: &AtomicBool) {
    let Listener { mut server, addr } = listener;
    while !stop.load(Ordering::SeqCst) {
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
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                    if let Ok(listener) = http::listen(addr) {
                        break listener.server;
                    }
                };
            }
        }
    }
}

struct Context<'a> {
    settings: &'a Settings,
    /// Re-read when `serve --rotate-key` replaces the file.
    key: Mutex<key::Watched>,
    port: u16,
    min_valid: u64,
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
    let checked = {
        let mut watched = ctx.key.lock().unwrap_or_else(|e| e.into_inner());
        let (key, note) = watched.current();
        if let Some(note) = note {
            log(&note);
        }
        check(&method, request.url(), &headers, key, ctx.port)
    };
    let reply = match checked.and_then(|()| policy::requested_kind(request.url(), ctx.settings.token_kind)) {
        Ok(kind) => token_reply(ctx.settings, kind, ctx.min_valid),
        Err(refusal) => refused(refusal),
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
        let mut response = http::response(self.status, "application/json", self.body.into_bytes());
        if self.allow_get {
            http::add_header(&mut response, "Allow", "GET");
        }
        if self.challenge {
            http::add_header(
                &mut response,
                "WWW-Authenticate",
                "X-Lightfi-Key realm=\"lightfi-token serve\"",
            );
        }
        response
    }
}

/// A refusal as an answer.
fn refused(refusal: Refusal) -> Reply {
    Reply {
        status: refusal.status,
        body: json_error(refusal.error, refusal.message, None),
        allow_get: refusal.status == 405,
        challenge: refusal.status == 401,
        problem: Some(refusal.error.to_string()),
    }
}

fn token_reply(settings: &Settings, kind: TokenKind, min_valid: u64) -> Reply {
    let want = Want {
        min_valid,
        force_refresh: false,
        may_interact: false,
        kind,
    };
    let rendered = token::obtain(settings, &Http::new(settings.http_timeout), want).and_then(|access| {
        let handed = token::hand(&access, kind)?;
        crate::output::render(Format::Json, handed, OffsetDateTime::now_utc(), None)
    });
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
    report::note(line);
}

/// Ctrl-C, SIGTERM (and SIGHUP on Unix) set the returned flag: a clean
/// stop. A second one exits at once (130), even with a request in flight.
fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    let signals = [SIGINT, SIGTERM, signal_hook::consts::SIGHUP];
    #[cfg(not(unix))]
    let signals = [SIGINT, SIGTERM];
    for signal in signals {
        // The shutdown check goes first: it sees the flag set by the previous signal.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)))
            .map_err(|e| Error::unexpected(format!("cannot handle signals: {e}")))?;
    }
    Ok(stop)
}

#[cfg(test)]
mod tests {
    use super::*;

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
