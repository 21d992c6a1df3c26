//! `lightfi-token git-credential` driven by real git: exact protocol output
//! through the binary, `git credential fill` with the snippet from
//! `integrations/git/gitconfig`, and `ls-remote`, `clone` and `push` against a
//! local smart-HTTP server (`git http-backend` as CGI) that accepts only the
//! token the fake endpoint issued.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;

const SNIPPET: &str = include_str!("../integrations/git/gitconfig");
const SNIPPET_URL: &str = "https://api.lightfi.example";

/// `lightfi-token git-credential ACTION` with `input` on stdin.
fn helper(t: &TestEnv, cmd: Command, input: &str) -> Output {
    let mut cmd = cmd;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run lightfi-token");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    t.assert_no_leak(&out.stderr);
    out
}

fn expires_unix(t: &TestEnv) -> i64 {
    let at = t.store()["access"]["expires_at"].as_str().unwrap().to_string();
    time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

const HTTPS: &str = "protocol=https\nhost=api.lightfi.example\n";

#[test]
fn get_with_authtype_answers_bearer_exactly() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let input = format!("capability[]=authtype\ncapability[]=state\n{HTTPS}wwwauth[]=Bearer realm=\"x\"\n\n");
    let out = helper(&t, t.cmd(&["git-credential", "get"]), &input);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        "capability[]=authtype\nauthtype=Bearer\ncredential=seeded-tok\nephemeral=true\n"
    );
    assert_eq!(stderr(&out), "");
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn get_without_authtype_answers_a_password_with_its_expiry() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let out = helper(&t, t.cmd(&["git-credential", "get"]), HTTPS);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        format!(
            "username=oauth2\npassword=seeded-tok\npassword_expiry_utc={}\n",
            expires_unix(&t)
        )
    );
}

#[test]
fn get_refreshes_an_expired_token() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("old-tok", 4000, 3600)));
    let out = helper(&t, t.cmd(&["git-credential", "get"]), HTTPS);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(&format!("password={}\n", jwt_like(1))));
    assert_eq!(t.server.token_requests().len(), 1);
}

#[test]
fn capability_store_and_unknown_actions_need_no_configuration() {
    let t = TestEnv::new();
    let unconfigured = |args: &[&str]| {
        let mut cmd = t.cmd(args);
        cmd.env_remove("LIGHTFI_CLIENT_ID");
        cmd
    };
    let out = helper(&t, unconfigured(&["git-credential", "capability"]), "");
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "version 0\ncapability authtype\n");
    for action in ["store", "frobnicate"] {
        let input = format!("{HTTPS}username=oauth2\npassword=whatever\n\n");
        let out = helper(&t, unconfigured(&["git-credential", action]), &input);
        assert_exit(&out, 0);
        assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("", ""), "{action}");
    }
    assert!(!t.store_path().exists());
}

#[test]
fn failure_prints_nothing_on_stdout_and_the_reason_on_stderr() {
    let t = TestEnv::new();
    let out = helper(&t, t.cmd(&["git-credential", "get"]), HTTPS);
    assert_exit(&out, 3);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("lightfi-token login"), "{}", stderr(&out));

    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    for input in [
        "protocol=http\nhost=api.lightfi.example\n",
        "protocol=smtp\nhost=mail.example\n",
    ] {
        let out = helper(&t, t.cmd(&["git-credential", "get"]), input);
        assert_exit(&out, 4);
        assert_eq!(stdout(&out), "");
        assert!(stderr(&out).contains("refusing"), "{}", stderr(&out));
    }
    let out = helper(&t, t.cmd(&["git-credential", "get"]), "this is not git\n");
    assert_exit(&out, 2);
    assert_eq!(stdout(&out), "");
}

#[test]
fn erase_forgets_only_the_rejected_access_token() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    // Another, older token rejected: the cached one stays.
    let input = format!("{HTTPS}username=oauth2\npassword=older-tok\n\n");
    assert_exit(&helper(&t, t.cmd(&["git-credential", "erase"]), &input), 0);
    assert_eq!(t.store()["access"]["token"], "seeded-tok");
    // The cached one rejected (authtype form): dropped, the refresh token kept.
    let input = format!("capability[]=authtype\n{HTTPS}authtype=Bearer\ncredential=seeded-tok\n\n");
    let out = helper(&t, t.cmd(&["git-credential", "erase"]), &input);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
    assert!(t.store().get("access").is_none());
    assert_eq!(t.store()["refresh_token"], "refresh-0");
    // So the next get refreshes.
    let out = helper(&t, t.cmd(&["git-credential", "get"]), HTTPS);
    assert!(stdout(&out).contains(&jwt_like(1)));
    assert_eq!(t.server.token_requests().len(), 1);
}

// ---------------------------------------------------------------------------
// Real git.

/// The temporary home with lightfi-token on PATH, a `.gitconfig` made of
/// `gitconfig`, and git's environment made hermetic.
struct Git<'a> {
    t: &'a TestEnv,
    bin: PathBuf,
}

impl<'a> Git<'a> {
    fn new(t: &'a TestEnv, gitconfig: &str) -> Git<'a> {
        let bin = t.home().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(test_bin(), bin.join("lightfi-token")).unwrap();
        // For the password form: a helper that hides git's authtype capability.
        let wrapper = bin.join("lightfi-token-no-authtype");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\nsed '/^capability\\[\\]=authtype$/d' | exec lightfi-token \"$@\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(t.home().join(".gitconfig"), gitconfig).unwrap();
        Git { t, bin }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.t.tool("git");
        cmd.args(args)
            .env("PATH", self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .current_dir(self.t.home());
        cmd
    }

    /// PATH with the folder holding `lightfi-token` first.
    fn path(&self) -> std::ffi::OsString {
        std::env::join_paths(
            std::iter::once(self.bin.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap()
    }

    /// `lightfi-token ARGS` as git would find it, with git's environment.
    fn lightfi(&self, args: &[&str]) -> Output {
        let mut cmd = self.t.cmd(args);
        cmd.env("PATH", self.path()).env("GIT_CONFIG_NOSYSTEM", "1");
        let out = cmd.output().expect("run lightfi-token");
        self.t.assert_no_leak(&out.stdout);
        self.t.assert_no_leak(&out.stderr);
        out
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self
            .cmd(args)
            .output()
            .expect("git is required for these tests: install git (2.46+ for the authtype tests)");
        self.t.assert_no_leak(&out.stderr);
        out
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(out.status.success(), "git {args:?} failed:\n{}", stderr(&out));
        out
    }

    fn fill(&self, input: &str) -> Output {
        let mut cmd = self.cmd(&["credential", "fill"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("git is required for these tests");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        self.t.assert_no_leak(&out.stderr);
        out
    }
}

/// The snippet, for `url` instead of the example host, with `helper` instead of `lightfi-token`.
fn snippet_for(url: &str, helper: &str) -> String {
    assert!(SNIPPET.contains(&format!("[credential \"{SNIPPET_URL}\"]")));
    assert!(SNIPPET.contains("\thelper =\n\thelper = \"!lightfi-token git-credential\"\n"));
    SNIPPET
        .replace(SNIPPET_URL, url)
        .replace("!lightfi-token git-credential", &format!("!{helper} git-credential"))
}

#[test]
fn snippet_gives_the_token_to_its_host_only() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let git = Git::new(&t, SNIPPET);

    let out = git.fill("url=https://api.lightfi.example/org/repo.git\n\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("username=oauth2\npassword=seeded-tok\n"), "{text}");
    assert!(
        text.contains(&format!("password_expiry_utc={}\n", expires_unix(&t))),
        "{text}"
    );

    // After `url=`, which resets what came before it.
    let out = git.fill("url=https://api.lightfi.example/org/repo.git\ncapability[]=authtype\n\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("authtype=Bearer\ncredential=seeded-tok\n"), "{text}");

    for other in [
        "https://github.com/org/repo.git",
        "http://api.lightfi.example/org/repo.git",
    ] {
        let out = git.fill(&format!("url={other}\n\n"));
        assert!(!out.status.success(), "{other}: {}", stdout(&out));
        assert!(!stdout(&out).contains("seeded-tok"), "{other}");
    }
}

/// A smart-HTTP git server: `git http-backend` as CGI behind tiny_http,
/// answering 401 unless the request carries an accepted token as
/// `Authorization: Bearer` or as the password of `Authorization: Basic`.
struct GitServer {
    url: String,
    root: tempfile::TempDir,
    server: Arc<tiny_http::Server>,
    state: Arc<ServerState>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct ServerState {
    accepted: Mutex<Vec<String>>,
    seen: Mutex<Vec<Auth>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Auth {
    Missing,
    Bearer(String),
    Basic { user: String, password: String },
    Other(String),
}

impl Auth {
    fn token(&self) -> Option<&str> {
        match self {
            Auth::Bearer(token) => Some(token),
            Auth::Basic { password, .. } => Some(password),
            _ => None,
        }
    }
}

impl GitServer {
    /// Serve a bare repository `lightfi.git` holding one commit on `main`.
    fn start(git: &Git) -> GitServer {
        let root = tempfile::tempdir().unwrap();
        let bare = root.path().join("lightfi.git");
        let seed = root.path().join("seed");
        let bare_s = bare.to_str().unwrap();
        let seed_s = seed.to_str().unwrap();
        git.ok(&["init", "-q", "--bare", "-b", "main", bare_s]);
        git.ok(&["init", "-q", "-b", "main", seed_s]);
        std::fs::write(seed.join("README"), "hello\n").unwrap();
        git.ok(&["-C", seed_s, "add", "README"]);
        git.ok(&["-C", seed_s, "commit", "-q", "-m", "first"]);
        git.ok(&["-C", seed_s, "push", "-q", bare_s, "main"]);

        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(ServerState::default());
        let (srv, st, project_root) = (server.clone(), state.clone(), root.path().to_path_buf());
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let (st, project_root) = (st.clone(), project_root.clone());
                std::thread::spawn(move || serve_git(request, &st, &project_root));
            }
        });
        GitServer {
            url: format!("http://127.0.0.1:{port}"),
            root,
            server,
            state,
            thread: Some(thread),
        }
    }

    fn repo_url(&self) -> String {
        format!("{}/lightfi.git", self.url)
    }

    fn accept(&self, token: &str) {
        self.state.accepted.lock().unwrap().push(token.to_string());
    }

    /// The credentials git sent, skipping the anonymous first tries.
    fn seen(&self) -> Vec<Auth> {
        let seen = self.state.seen.lock().unwrap().clone();
        seen.into_iter().filter(|a| *a != Auth::Missing).collect()
    }

    fn bare(&self) -> PathBuf {
        self.root.path().join("lightfi.git")
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn parse_auth(value: Option<&str>) -> Auth {
    let Some(value) = value else { return Auth::Missing };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Auth::Bearer(token.to_string());
    }
    if let Some(encoded) = value.strip_prefix("Basic ")
        && let Ok(decoded) = STANDARD.decode(encoded)
        && let Some((user, password)) = String::from_utf8_lossy(&decoded).split_once(':')
    {
        return Auth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        };
    }
    Auth::Other(value.to_string())
}

fn serve_git(mut request: tiny_http::Request, state: &ServerState, project_root: &Path) {
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_string())
    };
    let auth = parse_auth(header("Authorization").as_deref());
    state.seen.lock().unwrap().push(auth.clone());
    let accepted = auth
        .token()
        .is_some_and(|t| state.accepted.lock().unwrap().iter().any(|a| a == t));
    if !accepted {
        let mut response = tiny_http::Response::from_string("authentication required\n").with_status_code(401);
        for challenge in ["Basic realm=\"lightfi\"", "Bearer realm=\"lightfi\""] {
            response.add_header(tiny_http::Header::from_bytes("WWW-Authenticate", challenge).unwrap());
        }
        let _ = request.respond(response);
        return;
    }

    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", project_root)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_PROJECT_ROOT", project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", request.method().as_str())
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        // http-backend allows push (receive-pack) only to an authenticated user.
        .env("REMOTE_USER", "oauth2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, var) in [
        ("Content-Type", "CONTENT_TYPE"),
        ("Content-Length", "CONTENT_LENGTH"),
        ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ("Git-Protocol", "HTTP_GIT_PROTOCOL"),
    ] {
        if let Some(value) = header(name) {
            cgi.env(var, value);
        }
    }
    let mut body = Vec::new();
    request.as_reader().read_to_end(&mut body).unwrap();
    let mut child = cgi.spawn().expect("git http-backend is required for these tests");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });

    // CGI response: header lines (with `Status:`), a blank line, the body.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut status = 200;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a CGI header");
        if name.eq_ignore_ascii_case("Status") {
            status = value.trim()[..3].parse().unwrap();
        } else {
            headers.push(tiny_http::Header::from_bytes(name.trim(), value.trim()).unwrap());
        }
    }
    let response = tiny_http::Response::new(status.into(), headers, stdout, None, None);
    let _ = request.respond(response);
    let _ = writer.join();
    let _ = child.wait();
}

/// ls-remote, clone, commit and push through the helper; returns the clone's path.
fn round_trip(git: &Git, server: &GitServer, name: &str) -> PathBuf {
    let out = git.ok(&["ls-remote", &server.repo_url()]);
    assert!(stdout(&out).contains("refs/heads/main"), "{}", stdout(&out));
    let clone = git.t.home().join(name);
    let clone_s = clone.to_str().unwrap();
    git.ok(&["clone", "-q", &server.repo_url(), clone_s]);
    std::fs::write(clone.join("change"), name).unwrap();
    git.ok(&["-C", clone_s, "add", "change"]);
    git.ok(&["-C", clone_s, "commit", "-q", "-m", name]);
    git.ok(&["-C", clone_s, "push", "-q", "origin", "HEAD:main"]);
    let bare = server.bare();
    let out = git.ok(&["--git-dir", bare.to_str().unwrap(), "log", "-1", "--format=%s", "main"]);
    assert_eq!(stdout(&out), format!("{name}\n"), "the push arrived");
    clone
}

/// A `[credential] helper = store` before the snippet: its reset line must
/// keep the token out of ~/.git-credentials.
fn with_store_helper_first(snippet: &str) -> String {
    format!("[credential]\n\thelper = store\n{snippet}")
}

/// ls-remote, clone and push through the snippet (with `helper` as the
/// program), after a `store` helper; returns what the server was sent.
fn round_trip_through_snippet(helper: &str, name: &str) -> Vec<Auth> {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let git = Git::new(&t, "");
    let server = GitServer::start(&git);
    std::fs::write(
        t.home().join(".gitconfig"),
        with_store_helper_first(&snippet_for(&server.url, helper)),
    )
    .unwrap();
    server.accept(&jwt_like(1));

    round_trip(&git, &server, name);

    assert_eq!(t.server.token_requests().len(), 1, "one refresh, then the cache");
    assert!(!t.home().join(".git-credentials").exists());
    let seen = server.seen();
    assert!(!seen.is_empty());
    seen
}

#[test]
fn git_uses_bearer_through_authtype() {
    let seen = round_trip_through_snippet("lightfi-token", "bearer");
    assert!(
        seen.iter().all(|a| *a == Auth::Bearer(jwt_like(1))),
        "git sent the token as a Bearer credential only: {seen:?}"
    );
}

#[test]
fn git_uses_basic_when_authtype_is_not_offered() {
    let seen = round_trip_through_snippet("lightfi-token-no-authtype", "basic");
    let expected = Auth::Basic {
        user: "oauth2".into(),
        password: jwt_like(1),
    };
    assert!(seen.iter().all(|a| *a == expected), "git sent Basic only: {seen:?}");
}

#[test]
fn rejected_token_is_erased_and_the_next_git_call_refreshes() {
    for helper in ["lightfi-token", "lightfi-token-no-authtype"] {
        let t = TestEnv::new();
        // A cached token the server no longer accepts (revoked, say).
        t.seed(Some("refresh-0"), Some(("revoked-tok", 60, 3600)));
        let git = Git::new(&t, "");
        let server = GitServer::start(&git);
        std::fs::write(t.home().join(".gitconfig"), snippet_for(&server.url, helper)).unwrap();
        server.accept(&jwt_like(1));

        let out = git.run(&["ls-remote", &server.repo_url()]);
        assert!(!out.status.success(), "{helper}: the revoked token is refused");
        assert_eq!(server.seen().len(), 1, "{helper}: {:?}", server.seen());
        assert_eq!(server.seen()[0].token(), Some("revoked-tok"));
        assert_eq!(t.server.token_requests().len(), 0);
        let store = t.store();
        assert!(store.get("access").is_none(), "{helper}: git's erase dropped it");
        assert_eq!(store["refresh_token"], "refresh-0");

        let out = git.ok(&["ls-remote", &server.repo_url()]);
        assert!(stdout(&out).contains("refs/heads/main"));
        assert_eq!(t.server.token_requests().len(), 1, "{helper}: the next call refreshed");
        assert_eq!(server.seen().last().unwrap().token(), Some(jwt_like(1).as_str()));
    }
}

#[test]
fn git_fails_cleanly_when_not_logged_in() {
    let t = TestEnv::new();
    let git = Git::new(&t, "");
    let server = GitServer::start(&git);
    std::fs::write(t.home().join(".gitconfig"), snippet_for(&server.url, "lightfi-token")).unwrap();
    let out = git.run(&["ls-remote", &server.repo_url()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("lightfi-token: error: not logged in"), "{err}");
    assert!(err.contains("hint: run `lightfi-token login`"), "{err}");
    assert!(server.seen().is_empty(), "no credential was sent");
}

// ---------------------------------------------------------------------------
// `lightfi-token setup git`, with the real git.

/// The global config as git lists it: every `name=value`, in order.
fn global_config(git: &Git) -> String {
    stdout(&git.ok(&["config", "--global", "--list"]))
}

/// The helper values of `url`'s section, in order.
fn helpers_of(git: &Git, url: &str) -> Vec<String> {
    let out = git.run(&["config", "--global", "--get-all", &format!("credential.{url}.helper")]);
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn setup_git_writes_the_snippet_that_git_then_uses_and_remove_restores_the_config() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    // What was there before: a `store` helper for every host, and a user.
    let git = Git::new(&t, "[credential]\n\thelper = store\n[user]\n\tname = Someone\n");
    let server = GitServer::start(&git);
    server.accept(&jwt_like(1));
    let before = global_config(&git);

    // --dry-run prints the exact commands and changes nothing.
    let key = format!("credential.{}.helper", server.url);
    let out = git.lightfi(&["setup", "git", "--host", &server.url, "--dry-run"]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        format!(
            "git config --global --add {key} ''\ngit config --global --add {key} '!lightfi-token git-credential'\n"
        )
    );
    assert_eq!(global_config(&git), before);

    // Twice: one reset and one helper, after the `store` line.
    for run in 0..2 {
        let out = git.lightfi(&["setup", "git", "--host", &format!("{}/", server.url)]);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), "", "messages go to stderr");
        let said = if run == 0 {
            "git now gets the credentials"
        } else {
            "nothing to change"
        };
        assert!(stderr(&out).contains(said), "run {run}: {}", stderr(&out));
        assert!(!stderr(&out).contains("not on PATH"), "{}", stderr(&out));
    }
    assert_eq!(helpers_of(&git, &server.url), ["", "!lightfi-token git-credential"]);
    let out = git.lightfi(&["setup", "git", "--host", &server.url, "--dry-run"]);
    assert_eq!(stdout(&out), "", "nothing left to do");

    // git now sends the token, as a Bearer credential, and `store` never sees it.
    round_trip(&git, &server, "after-setup");
    assert!(!t.home().join(".git-credentials").exists());
    assert!(
        server.seen().iter().all(|a| *a == Auth::Bearer(jwt_like(1))),
        "{:?}",
        server.seen()
    );

    // --remove: the config is as it was; a second --remove finds nothing.
    let out = git.lightfi(&["setup", "git", "--host", &server.url, "--remove"]);
    assert_exit(&out, 0);
    assert_eq!(global_config(&git), before);
    let out = git.lightfi(&["setup", "git", "--host", &server.url, "--remove"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("nothing to remove"), "{}", stderr(&out));
    assert_eq!(global_config(&git), before);
}

#[test]
fn setup_git_keeps_other_helpers_of_the_section_and_follows_the_profile() {
    let t = TestEnv::new();
    let url = "https://git.lightfi.example";
    let git = Git::new(
        &t,
        &format!("[credential \"{url}\"]\n\thelper =\n\thelper = cache\n\tuseHttpPath = true\n"),
    );
    let before = global_config(&git);
    assert_exit(&git.lightfi(&["setup", "git", "--host", url]), 0);
    assert_eq!(
        helpers_of(&git, url),
        ["", "cache", "", "!lightfi-token git-credential"]
    );
    // Another profile replaces ours, and says so in the helper.
    assert_exit(
        &git.lightfi(&["--profile", "staging", "setup", "git", "--host", url]),
        0,
    );
    assert_eq!(
        helpers_of(&git, url),
        ["", "cache", "", "!lightfi-token --profile staging git-credential"]
    );
    // The reset that was there before stays, and so does `cache`.
    assert_exit(&git.lightfi(&["setup", "git", "--host", url, "--remove"]), 0);
    assert_eq!(helpers_of(&git, url), ["", "cache"]);
    assert_eq!(
        global_config(&git)
            .lines()
            .filter(|l| !l.contains(".helper="))
            .collect::<Vec<_>>(),
        before.lines().filter(|l| !l.contains(".helper=")).collect::<Vec<_>>()
    );
    // The default host, and a URL the helper would refuse.
    assert_exit(&git.lightfi(&["setup", "git"]), 0);
    assert_eq!(
        helpers_of(&git, "https://api.lightfi.example"),
        ["", "!lightfi-token git-credential"]
    );
    let out = git.lightfi(&["setup", "git", "--host", "http://git.lightfi.example"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("https"), "{}", stderr(&out));
}

#[test]
fn setup_git_starts_git_without_the_secrets_in_its_environment() {
    let t = TestEnv::new();
    // A `git` first on PATH that writes down the environment it was given.
    let tools = EnvRecordingTools::new(&t, &[("git", "case \"$*\" in *--get-all*) exit 1;; esac\nexit 0")]);
    t.forbid("legacy-secret-value");
    t.forbid("ci-refresh-token-value");
    let mut cmd = t.cmd(&["setup", "git"]);
    cmd.env("PATH", &tools.path)
        .env("CLIENT_SECRET", "legacy-secret-value")
        .env("LIGHTFI_REFRESH_TOKEN", "ci-refresh-token-value");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    let envs: Vec<String> = tools.runs().into_iter().map(|(_, env)| env).collect();
    assert!(
        envs.len() >= 3,
        "git was run for the reads and the changes: {}",
        envs.len()
    );
    for env in &envs {
        assert!(
            env.contains("LIGHTFI_CLIENT_ID="),
            "the environment was passed on:\n{env}"
        );
        for name in ["CLIENT_SECRET=", "LIGHTFI_CLIENT_SECRET=", "LIGHTFI_REFRESH_TOKEN="] {
            assert!(!env.lines().any(|l| l.starts_with(name)), "{name} reached git:\n{env}");
        }
        t.assert_no_leak(env.as_bytes());
    }
}
