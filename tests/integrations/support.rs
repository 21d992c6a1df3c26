//! What the integration tests share: where the snippets and the test tools
//! live, a scrubbed environment for third-party programs, a counting
//! `lightfi-token` shim, and local API stubs (plain HTTP and HTTPS) that
//! record the `Authorization` header of every request.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::{TestEnv, TestTools, assert_exit, stderr, stdout};

/// The binary under test (`LIGHTFI_TEST_BIN` picks another build of it).
pub static BIN: std::sync::LazyLock<PathBuf> = std::sync::LazyLock::new(crate::common::test_bin);

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `integrations/`, read as the test's source of truth.
pub fn snippet(rel: &str) -> String {
    let path = repo().join("integrations").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read snippet {}: {e}", path.display()))
}

/// The path of a file under `integrations/`, for tools that read it themselves.
pub fn snippet_path(rel: &str) -> PathBuf {
    repo().join("integrations").join(rel)
}

/// The folder holding the test build of `lightfi-token`, put first on PATH so
/// snippets can call it by name, as users do.
pub fn bin_dir() -> PathBuf {
    BIN.parent().unwrap().to_path_buf()
}

/// A program of the Python venv under `tests/tools` (requests, httpx, httpie,
/// xh), installed on first use.
pub fn venv_bin(name: &str) -> PathBuf {
    TestTools::Python.ensure();
    let path = repo().join("tests/tools/.venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing after installing the Python test tools",
        path.display()
    );
    path
}

/// A program from `tests/tools/node_modules/.bin` (newman), installed on first use.
pub fn node_tool(name: &str) -> PathBuf {
    TestTools::Node.ensure();
    let path = repo().join("tests/tools/node_modules/.bin").join(name);
    assert!(
        path.exists(),
        "{} is missing after `npm ci` in tests/tools",
        path.display()
    );
    path
}

/// A program that comes with the machine (curl, kubectl, node, bash, dash).
/// Fails, never skips, when it is not on PATH.
pub fn system_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH: these tests drive the real tool; install it with the system's package manager"
            )
        })
}

/// PATH for a tool run: `first` folders, then the test binary's folder, then
/// the machine's PATH.
pub fn path_with(first: &[&Path]) -> OsString {
    let mut dirs: Vec<PathBuf> = first.iter().map(|p| p.to_path_buf()).collect();
    dirs.push(bin_dir());
    dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(dirs).unwrap()
}

/// `program` with the environment `TestEnv::tool` gives it (temp home, fake
/// token endpoint, test client, nothing else), plus a PATH that finds the
/// test build of lightfi-token by name and a HOME of its own for the tool's
/// caches.
pub fn tool(t: &TestEnv, program: impl AsRef<OsStr>, first_on_path: &[&Path]) -> Command {
    let mut cmd = t.tool(program);
    let home = t.home().join("tool-home");
    std::fs::create_dir_all(&home).unwrap();
    cmd.env("HOME", &home).env("PATH", path_with(first_on_path));
    cmd
}

/// Run a tool to completion, check nothing secret reached its stderr, and
/// show both streams when it failed.
#[track_caller]
pub fn run_ok(t: &TestEnv, mut cmd: Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    t.assert_no_leak(&out.stderr);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    out
}

pub fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A `lightfi-token` on PATH that counts its runs, then execs the test build.
pub struct CountingShim {
    pub dir: PathBuf,
    log: PathBuf,
}

impl CountingShim {
    pub fn new(t: &TestEnv) -> CountingShim {
        let dir = t.home().join("shim");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("runs.log");
        let script = dir.join("lightfi-token");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                BIN.display()
            ),
        )
        .unwrap();
        make_executable(&script);
        CountingShim { dir, log }
    }

    pub fn runs(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

/// The lines of the ```sh blocks of a README.
pub fn sh_lines(readme: &str) -> Vec<String> {
    let mut lines = vec![];
    let mut inside = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside && line.trim() == "```sh";
            continue;
        }
        if inside && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            lines.push(line.trim().to_string());
        }
    }
    lines
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One request as an API stub saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The `Host` header: `127.0.0.1:PORT`, or `localhost:PORT` after a redirect.
    pub host: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// What a stub answers: 200 for `Authorization: Bearer <accepted token>`,
/// 401 otherwise. `/v1/files/…` answers (before any check) a 302 to the same
/// server under the host name `localhost`, another host for an HTTP client,
/// like an API that redirects downloads to a storage host; there
/// `/after-redirect` answers 200 without a token (a presigned URL). Under
/// `/v1/protected-files/…` the redirect goes to `/after-redirect-protected`,
/// which wants a token like any other path.
#[derive(Clone, Default)]
struct StubState {
    seen: Arc<Mutex<Vec<Seen>>>,
    accepted: Arc<Mutex<Vec<String>>>,
}

impl StubState {
    fn answer(&self, seen: Seen, port: u16) -> (u16, Vec<(String, String)>, String) {
        let (path, authorization) = (seen.path.clone(), seen.authorization.clone());
        self.seen.lock().unwrap().push(seen);
        let path = path.as_str();
        for (prefix, target) in [
            ("/v1/files/", "/after-redirect"),
            ("/v1/protected-files/", "/after-redirect-protected"),
        ] {
            if path.starts_with(prefix) {
                let location = format!("http://localhost:{port}{target}");
                return (302, vec![("Location".into(), location)], String::new());
            }
        }
        let ok = path == "/after-redirect"
            || authorization.is_some_and(|a| self.accepted.lock().unwrap().iter().any(|t| a == format!("Bearer {t}")));
        let json = ("Content-Type".to_string(), "application/json".to_string());
        if !ok {
            let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
            return (
                401,
                vec![json, ("WWW-Authenticate".into(), "Bearer".into())],
                body.into(),
            );
        }
        if path == "/version" {
            // What a Kubernetes API server answers, for kubectl.
            let body = r#"{"major":"1","minor":"32","gitVersion":"v1.32.0","platform":"linux/amd64"}"#;
            return (200, vec![json], body.into());
        }
        (200, vec![json], format!(r#"{{"ok":true,"path":"{path}"}}"#))
    }
}

/// The LightFi API, played by tiny_http on 127.0.0.1:0.
pub struct ApiStub {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub port: u16,
    state: StubState,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl ApiStub {
    pub fn start(accepted: &[&str]) -> ApiStub {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the API stub"));
        let port = server.server_addr().to_ip().unwrap().port();
        let state = StubState::default();
        state.accept(accepted);
        let (srv, st) = (server.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            for mut request in srv.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let authorization = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string());
                let host = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Host"))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                let seen = Seen {
                    host,
                    method: request.method().to_string(),
                    path: request.url().to_string(),
                    authorization,
                    body,
                };
                let (status, headers, body) = st.answer(seen, port);
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                for (k, v) in headers {
                    response.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
                }
                let _ = request.respond(response);
            }
        });
        ApiStub {
            url: format!("http://127.0.0.1:{port}"),
            port,
            state,
            server,
            thread: Some(thread),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The `Authorization` header of every request, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.seen().into_iter().map(|s| s.authorization).collect()
    }
}

impl StubState {
    fn accept(&self, tokens: &[&str]) {
        self.accepted
            .lock()
            .unwrap()
            .extend(tokens.iter().map(|t| t.to_string()));
    }
}

impl Drop for ApiStub {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The same API over HTTPS with a certificate for 127.0.0.1 signed by a CA
/// made for this test (rcgen), for clients that insist on TLS (client-go runs
/// exec plugins only for TLS servers). HTTP/1.1, one request per connection.
pub struct TlsApiStub {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    state: StubState,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl TlsApiStub {
    pub fn start(accepted: &[&str]) -> TlsApiStub {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "lightfi-token test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone(), ca.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the HTTPS API stub");
        let port = listener.local_addr().unwrap().port();
        let state = StubState::default();
        state.accept(accepted);
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, config) = (st.clone(), config.clone());
                std::thread::spawn(move || {
                    let _ = serve_tls(conn, config, &st, port);
                });
            }
        });
        TlsApiStub {
            url: format!("https://127.0.0.1:{port}"),
            ca_pem: ca.pem(),
            state,
            stop,
            port,
            thread: Some(thread),
        }
    }

    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.authorization.clone())
            .collect()
    }
}

impl Drop for TlsApiStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_tls(tcp: TcpStream, config: Arc<rustls::ServerConfig>, state: &StubState, port: u16) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let (method, path, headers) = {
        let mut reader = BufReader::new(&mut tls);
        read_head(&mut reader)?
    };
    let authorization = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone());
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let seen = Seen {
        host,
        method,
        path,
        authorization,
        body: String::new(),
    };
    let (status, headers, body) = state.answer(seen, port);
    let mut response = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        response.push_str(&format!("{k}: {v}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&body);
    tls.write_all(response.as_bytes())?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    Ok(())
}

/// Method, target and headers of a request.
type Head = (String, String, Vec<(String, String)>);

/// Read an HTTP/1.1 request line and headers (bodies are not used here).
pub fn read_head(reader: &mut impl BufRead) -> std::io::Result<Head> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = vec![];
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok((method, path, headers))
}

/// A minimal HTTP/1.1 client for plain-HTTP loopback servers: one request,
/// `Connection: close`, returns status and body.
pub fn http_request(method: &str, url: &str, headers: &[(String, String)]) -> (u16, String) {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url:?}: {e}"));
    assert_eq!(parsed.scheme(), "http", "{url}");
    let host = parsed.host_str().unwrap();
    assert!(
        ["127.0.0.1", "localhost", "[::1]"].contains(&host),
        "tests only talk to loopback, not {host}"
    );
    let port = parsed.port_or_known_default().unwrap();
    let mut target = parsed.path().to_string();
    if let Some(q) = parsed.query() {
        target = format!("{target}?{q}");
    }
    let mut stream = TcpStream::connect((host.trim_matches(['[', ']']), port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `lightfi-token serve --port 0` running in the test's environment, with
/// its key and its stderr log. Stopped on drop.
pub struct Serve {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub key: String,
    log: Arc<Mutex<String>>,
}

impl Serve {
    pub fn start(t: &TestEnv) -> Serve {
        Serve::spawn(t, t.cmd(&["serve", "--port", "0"]))
    }

    /// `command`, which runs `lightfi-token serve --port 0` in the test's
    /// environment some other way (a service file's command line).
    pub fn spawn(t: &TestEnv, mut command: Command) -> Serve {
        let shown = t.run(&["serve", "--show-key"]);
        assert_exit(&shown, 0);
        let key = stdout(&shown).trim().to_string();
        assert!(key.len() >= 32, "serve --show-key printed a key");
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lightfi-token serve");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port);
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not announce its port:\n{}", log.lock().unwrap()));
        Serve {
            child,
            url: format!("http://127.0.0.1:{port}"),
            key,
            log,
        }
    }

    /// What serve wrote on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log once it contains `text`, or as it is after 10 s: the thread
    /// collecting serve's stderr may not have read the last line yet.
    pub fn log_with(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(text) || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP statuses a driver script printed, one a line.
pub fn statuses(out: &Output) -> Vec<u16> {
    stdout(out)
        .lines()
        .map(|l| l.parse().expect("a status per line"))
        .collect()
}

/// The `Authorization` value a stub should have seen for `token`.
pub fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}
