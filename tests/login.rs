//! Interactive login against the fake token endpoint: the authorize URL,
//! PKCE, state checks, the callback server, pasting, timeouts, and the
//! fallback from `get` — including five concurrent callers causing one login.

#![cfg(target_os = "linux")] // the pty helpers use Linux's ptsname_r

mod common;
#[path = "common/interactive.rs"]
mod interactive;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use interactive::*;
use sha2::{Digest, Sha256};

/// A test environment, a recording browser in it, and a free callback port.
fn setup() -> (TestEnv, RecordingBrowser, u16) {
    let t = TestEnv::new();
    let browser = RecordingBrowser::new(t.home());
    (t, browser, free_port())
}

/// `lightfi-token ARGS` with a recording browser and a callback on localhost:port.
fn login_cmd(t: &TestEnv, browser: &RecordingBrowser, port: u16, args: &[&str]) -> std::process::Command {
    let mut cmd = t.cmd(args);
    cmd.env("BROWSER", browser.command())
        .env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{port}"));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// `n` callers of `lightfi-token -r` whose stderr is the terminal `pty`, so
/// they may fall back to a browser login.
fn gets_at_a_terminal(t: &TestEnv, browser: &RecordingBrowser, port: u16, pty: &Pty, n: usize) -> Vec<Child> {
    (0..n)
        .map(|_| {
            let mut cmd = login_cmd(t, browser, port, &["-r"]);
            cmd.stderr(pty.slave());
            cmd.spawn().unwrap()
        })
        .collect()
}

/// The `state` of the login the browser was sent to.
fn login_state(browser: &RecordingBrowser) -> String {
    param(&browser.wait_for_url(Duration::from_secs(10)), "state").unwrap()
}

/// Wait until `n` callers have said on the terminal that they wait for the
/// lock (each says it once); give up after 60 s.
fn wait_until_waiting(pty: &Pty, n: usize) {
    let started = std::time::Instant::now();
    while pty.output().matches("waiting for another lightfi-token").count() < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{n} callers should wait for the lock: did not answer within 60 s: {}",
            pty.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finish(t: &TestEnv, child: Child) -> std::process::Output {
    let out = child.wait_with_output().unwrap();
    t.assert_no_leak(&out.stderr);
    out
}

#[test]
fn authorize_url_has_every_parameter_and_the_code_is_exchanged_with_the_verifier() {
    let (t, browser, port) = setup();
    t.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate: true,
    });
    let child = login_cmd(&t, &browser, port, &["login"]).spawn().unwrap();
    let url = browser.wait_for_url(Duration::from_secs(10));

    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/authorize", t.server.url)
    );
    assert_eq!(param(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param(&url, "redirect_uri"), Some(format!("http://localhost:{port}")));
    assert_eq!(param(&url, "scope").as_deref(), Some("aws.cognito.signin.user.admin"));
    assert_eq!(param(&url, "code_challenge_method").as_deref(), Some("S256"));
    let state = param(&url, "state").unwrap();
    let challenge = param(&url, "code_challenge").unwrap();
    assert!(state.len() >= 43, "state has 256 bits: {state}");

    let (status, page) = http_get(port, &format!("/?code=the-code&state={state}&iss=http%3A%2F%2Fidp"));
    assert_eq!(status, 200);
    assert!(page.contains("You are logged in to LightFi"), "{page}");
    let out = finish(&t, child);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "", "login prints nothing on stdout");
    t.assert_no_leak(page.as_bytes());

    let reqs = t.server.token_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.field("grant_type"), Some("authorization_code"));
    assert_eq!(r.field("code"), Some("the-code"));
    assert_eq!(
        r.field("redirect_uri"),
        Some(format!("http://localhost:{port}").as_str())
    );
    assert_eq!(r.field("client_id"), Some(CLIENT_ID));
    assert_eq!(
        r.header("Authorization"),
        Some(basic(CLIENT_ID, CLIENT_SECRET).as_str())
    );
    let verifier = r.field("code_verifier").unwrap();
    assert_eq!(verifier.len(), 43);
    assert_eq!(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())), challenge);

    assert_eq!(t.store()["refresh_token"], "rotated-refresh-1");
    assert_eq!(stdout(&t.run(&["-r"])), format!("{}\n", jwt_like(1)));
    assert_eq!(t.server.requests().len(), 1);
}

#[test]
fn wrong_state_and_wrong_path_are_refused_while_waiting_for_the_real_callback() {
    let (t, browser, port) = setup();
    let child = login_cmd(&t, &browser, port, &["login"]).spawn().unwrap();
    let state = login_state(&browser);

    let (status, page) = http_get(port, "/?code=forged&state=not-the-state");
    assert_eq!(status, 400);
    assert!(page.contains("not the login in progress"), "{page}");
    assert_eq!(http_get(port, "/?code=forged").0, 400, "missing state");
    assert_eq!(http_get(port, "/favicon.ico").0, 404);
    assert_eq!(http_get(port, &format!("/elsewhere?code=c&state={state}")).0, 404);
    assert_eq!(t.server.requests().len(), 0, "no forged code is ever exchanged");

    assert_eq!(http_get(port, &format!("/?code=real&state={state}")).0, 200);
    let out = finish(&t, child);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("does not belong to this login"),
        "{}",
        stderr(&out)
    );
    let reqs = t.server.token_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].field("code"), Some("real"));
}

#[test]
fn access_denied_ends_the_login_with_exit_3() {
    let (t, browser, port) = setup();
    let child = login_cmd(&t, &browser, port, &["login"]).spawn().unwrap();
    let state = login_state(&browser);
    let (status, page) = http_get(
        port,
        &format!("/?error=access_denied&error_description=User+said+%3Cno%3E&state={state}"),
    );
    assert_eq!(status, 400);
    assert!(page.contains("User said &lt;no&gt;"), "server text is escaped: {page}");
    let out = finish(&t, child);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("access_denied") && err.contains("User said <no>"), "{err}");
    assert!(err.contains("hint: run `lightfi-token login` again"), "{err}");
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn rejected_code_exits_3() {
    let (t, browser, port) = setup();
    t.server.fallback(Reply::oauth_error(400, "invalid_grant"));
    let child = login_cmd(&t, &browser, port, &["login"]).spawn().unwrap();
    let state = login_state(&browser);
    let (status, page) = http_get(port, &format!("/?code=used&state={state}"));
    assert_eq!(status, 500);
    assert!(page.contains("login failed"), "{page}");
    let out = finish(&t, child);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("rejected the authorization code"));
    assert!(!t.store_path().exists());
}

#[test]
fn busy_port_exits_4_naming_it() {
    let t = TestEnv::new();
    let browser = RecordingBrowser::new(t.home());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = t.run_cmd(login_cmd(&t, &browser, port, &["login"]));
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(err.contains(&format!("port {port} is in use")), "{err}");
    // This test process holds the port: the message names it.
    assert!(err.contains(&format!("process {}", std::process::id())), "{err}");
    assert!(err.contains("--redirect-uri"), "{err}");
    assert!(browser.urls().is_empty(), "no browser for a login that cannot finish");
}

#[cfg(target_os = "linux")]
#[test]
fn callback_server_listens_on_loopback_only() {
    let (t, browser, port) = setup();
    let mut child = login_cmd(&t, &browser, port, &["login", "--timeout", "20"])
        .spawn()
        .unwrap();
    browser.wait_for_url(Duration::from_secs(10));
    let hex_port = format!("{port:04X}");
    let mut listening = vec![];
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // st 0A = LISTEN
            if cols[1].ends_with(&format!(":{hex_port}")) && cols[3] == "0A" {
                listening.push(cols[1].split(':').next().unwrap().to_string());
            }
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!listening.is_empty(), "the callback server listens");
    for addr in &listening {
        // 127.0.0.1 and ::1 as the kernel prints them.
        assert!(
            addr == "0100007F" || addr == "00000000000000000000000001000000",
            "listening on a non-loopback address: {addr} (all: {listening:?})"
        );
    }
}

#[test]
fn login_times_out_with_exit_3() {
    let (t, browser, port) = setup();
    let out = t.run_cmd(login_cmd(&t, &browser, port, &["login", "--timeout", "1"]));
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("timed out after 1 s"), "{}", stderr(&out));
    assert_eq!(browser.urls().len(), 1);
}

#[test]
fn no_browser_prints_the_url_and_accepts_a_pasted_redirect() {
    let (t, browser, port) = setup();
    t.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate: true,
    });
    let mut cmd = login_cmd(&t, &browser, port, &["login", "--no-browser"]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = stderr_lines.next().expect("the URL is printed").unwrap();
        if let Some(at) = line.find(&t.server.url) {
            break url::Url::parse(&line[at..]).unwrap();
        }
    };
    let state = param(&url, "state").unwrap();
    writeln!(stdin, "nonsense").unwrap();
    writeln!(stdin, "http://localhost:{port}/?code=c&state=wrong").unwrap();
    writeln!(stdin, "http://localhost:{port}/?code=pasted-code&state={state}").unwrap();
    let rest: Vec<String> = stderr_lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    t.assert_no_leak(rest.join("\n").as_bytes());
    assert!(browser.urls().is_empty(), "--no-browser starts no browser");
    let reqs = t.server.token_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].field("code"), Some("pasted-code"));
    assert_eq!(t.store()["refresh_token"], "rotated-refresh-1");
    assert!(
        rest.iter().any(|l| l.contains("not the redirected address")),
        "{rest:?}"
    );
}

#[test]
fn non_interactive_get_with_empty_store_exits_3_without_a_browser() {
    let (t, browser, port) = setup();
    // No terminal at all (pipes): implied non-interactive.
    let out = t.run_cmd(login_cmd(&t, &browser, port, &[]));
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("hint: run `lightfi-token login`"));
    // A terminal, but CI is set / --non-interactive given.
    let pty = Pty::open();
    for (flag, ci) in [(None, true), (Some("--non-interactive"), false)] {
        let mut cmd = login_cmd(&t, &browser, port, flag.as_slice());
        cmd.stderr(pty.slave());
        if ci {
            cmd.env("CI", "true");
        }
        assert_eq!(cmd.status().unwrap().code(), Some(3));
    }
    assert!(
        browser.urls().is_empty(),
        "no browser was started: {:?}",
        browser.urls()
    );
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn ci_false_at_a_terminal_still_logs_in() {
    let (t, browser, port) = setup();
    let pty = Pty::open();
    let mut cmd = login_cmd(&t, &browser, port, &["-r"]);
    cmd.stderr(pty.slave()).env("CI", "false");
    let child = cmd.spawn().unwrap();
    let state = login_state(&browser);
    assert_eq!(http_get(port, &format!("/?code=c&state={state}")).0, 200);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", pty.output());
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
}

#[test]
fn five_concurrent_gets_with_an_empty_store_cause_one_login() {
    let (t, browser, port) = setup();
    let pty = Pty::open();
    let children = gets_at_a_terminal(&t, &browser, port, &pty, 5);
    let state = login_state(&browser);
    // The others pile up on the lock.
    wait_until_waiting(&pty, 4);
    assert_eq!(http_get(port, &format!("/?code=one-code&state={state}")).0, 200);
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", pty.output());
        assert_eq!(stdout(out), format!("{}\n", jwt_like(1)));
    }
    assert_eq!(browser.urls().len(), 1, "one authorize");
    assert_eq!(t.server.token_requests().len(), 1, "one code exchange");
    t.assert_no_leak(pty.output().as_bytes());
}

#[test]
fn rejected_refresh_token_falls_back_to_a_login_at_a_terminal() {
    let (t, browser, port) = setup();
    t.seed(Some("revoked-refresh"), Some(("expired-access", 4000, 3600)));
    t.server.script([Reply::oauth_error(400, "invalid_grant")]);
    let pty = Pty::open();
    let child = gets_at_a_terminal(&t, &browser, port, &pty, 1).remove(0);
    let state = login_state(&browser);
    assert_eq!(http_get(port, &format!("/?code=c&state={state}")).0, 200);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", pty.output());
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
    let grants: Vec<_> = t
        .server
        .token_requests()
        .iter()
        .map(|r| r.field("grant_type").unwrap().to_string())
        .collect();
    assert_eq!(grants, ["refresh_token", "authorization_code"]);
    assert!(pty.output().contains("logging in again"), "{}", pty.output());
    t.assert_no_leak(pty.output().as_bytes());
}

#[test]
fn a_cancelled_login_is_not_repeated_by_the_callers_that_waited_for_it() {
    let (t, browser, port) = setup();
    let pty = Pty::open();
    let children = gets_at_a_terminal(&t, &browser, port, &pty, 3);
    let state = login_state(&browser);
    wait_until_waiting(&pty, 2);
    assert_eq!(http_get(port, &format!("/?error=access_denied&state={state}")).0, 400);
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", pty.output());
        assert_eq!(stdout(&out), "");
    }
    assert_eq!(browser.urls().len(), 1, "one login, not one per waiting caller");
    let output = pty.output_with("left no login");
    assert!(output.contains("left no login"), "{output}");
}

#[test]
fn no_browser_with_nothing_to_listen_and_stdin_closed_fails_at_once() {
    let t = TestEnv::new();
    let mut cmd = t.cmd(&[
        "login",
        "--no-browser",
        "--redirect-uri",
        "https://app.example/callback",
    ]);
    cmd.stdin(Stdio::null());
    let out = t.run_cmd(cmd);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("stdin was closed"), "{}", stderr(&out));
}

#[test]
fn a_short_hold_of_the_lock_does_not_stop_a_terminal_caller_from_logging_in() {
    let (t, browser, port) = setup();
    let pty = Pty::open();
    // Another process (a `git credential erase`, a `serve` request) holds
    // the profile for a moment.
    let held = t.hold_lock();
    let children = gets_at_a_terminal(&t, &browser, port, &pty, 1);
    wait_until_waiting(&pty, 1);
    drop(held);
    let state = login_state(&browser);
    assert_eq!(http_get(port, &format!("/?code=c1&state={state}")).0, 200);
    for child in children {
        let out = finish(&t, child);
        assert_eq!(out.status.code(), Some(0), "{}", pty.output());
        assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
    }
}

#[test]
fn a_caller_right_after_a_cancelled_login_does_not_start_another() {
    let (t, browser, port) = setup();
    let pty = Pty::open();
    // Kept open so the terminal outlives the first caller: its output is
    // collected until the last writer closes it.
    let _terminal = pty.slave();
    let first = gets_at_a_terminal(&t, &browser, port, &pty, 1);
    let state = login_state(&browser);
    assert_eq!(http_get(port, &format!("/?error=access_denied&state={state}")).0, 400);
    for child in first {
        assert_eq!(child.wait_with_output().unwrap().status.code(), Some(3));
    }
    let next = gets_at_a_terminal(&t, &browser, port, &pty, 1);
    for child in next {
        assert_eq!(child.wait_with_output().unwrap().status.code(), Some(3));
    }
    assert_eq!(browser.urls().len(), 1, "no second login at once");
    let output = pty.output_with("left no login");
    assert!(output.contains("left no login"), "{output}");
}

#[test]
fn prompt_login_asks_for_a_fresh_sign_in() {
    let (t, browser, port) = setup();
    let child = login_cmd(&t, &browser, port, &["login", "--prompt", "login"])
        .spawn()
        .unwrap();
    let url = browser.wait_for_url(Duration::from_secs(10));
    assert_eq!(param(&url, "prompt").as_deref(), Some("login"));
    let state = param(&url, "state").unwrap();
    assert_eq!(http_get(port, &format!("/?code=c1&state={state}")).0, 200);
    assert_exit(&finish(&t, child), 0);
}

#[test]
fn logout_uri_other_than_a_web_address_is_refused_before_logging_out() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    for bad in ["javascript:alert(document.cookie)", "file:///etc/passwd"] {
        let out = t.run(&["logout", "--browser", "--logout-uri", bad]);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("http or https"), "{}", stderr(&out));
    }
    assert_eq!(t.server.requests().len(), 0, "nothing revoked");
    assert_eq!(t.store()["refresh_token"], "refresh-0", "nothing deleted");
}

#[test]
fn logout_browser_ends_the_hosted_ui_session_at_the_domain_root() {
    let (t, browser, port) = setup();
    t.seed(Some("refresh-0"), None);
    let out = t.run_cmd(login_cmd(&t, &browser, port, &["logout", "--browser"]));
    assert_exit(&out, 0);
    let url = browser.wait_for_url(Duration::from_secs(10));
    let base = url::Url::parse(&t.server.url).unwrap();
    assert_eq!(url.host(), base.host());
    assert_eq!(url.port(), base.port());
    assert_eq!(url.path(), "/logout", "at the domain's root, not below /oauth2");
    assert_eq!(param(&url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param(&url, "logout_uri"), Some(format!("http://localhost:{port}")));
    assert!(
        stderr(&out).contains("sign-out URL must be registered"),
        "{}",
        stderr(&out)
    );
    // Revoked and deleted first, as without --browser.
    assert_eq!(t.server.revoke_requests().len(), 1);
    assert!(!t.store_path().exists());
    // Another sign-out address.
    let second = t.home().join("second-browser");
    std::fs::create_dir(&second).unwrap();
    let browser2 = RecordingBrowser::new(&second);
    let mut cmd = login_cmd(
        &t,
        &browser2,
        port,
        &["logout", "--browser", "--logout-uri", "https://app.example/bye"],
    );
    cmd.env("BROWSER", browser2.command());
    assert_exit(&t.run_cmd(cmd), 0);
    let url = browser2.wait_for_url(Duration::from_secs(10));
    assert_eq!(param(&url, "logout_uri").as_deref(), Some("https://app.example/bye"));
}

#[test]
fn the_login_prompt_reaches_the_terminal_when_stderr_is_captured() {
    let (t, browser, port) = setup();
    let captured = t.home().join("captured-stderr");
    // `script` gives lightfi-token a terminal (its stdin and /dev/tty) while
    // a caller captures its stderr in a file, as `aws`-style wrappers do.
    let mut cmd = t.tool("script");
    cmd.args([
        "-q",
        "-e",
        "-c",
        &format!("{} -r 2>{}", bin().display(), captured.display()),
        "/dev/null",
    ])
    .env("BROWSER", browser.command())
    .env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{port}"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let state = login_state(&browser);
    assert_eq!(http_get(port, &format!("/?code=c1&state={state}")).0, 200);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(terminal.contains("log in to LightFi in your browser"), "{terminal}");
    assert!(terminal.contains(&state), "the address itself: {terminal}");
    t.assert_no_leak(terminal.replace(&jwt_like(1), "").as_bytes());
    // stderr still has it too.
    assert!(
        std::fs::read_to_string(&captured)
            .unwrap()
            .contains("log in to LightFi")
    );
}

/// Fake Windows openers first on PATH, each writing down the arguments it
/// was given (one per line) in `<name>.args`, as WSL would hand them over.
struct FakeOpeners {
    dir: std::path::PathBuf,
    path: std::ffi::OsString,
}

impl FakeOpeners {
    fn new(t: &TestEnv, names: &[&str]) -> FakeOpeners {
        let dir = t.home().join("wsl-bin");
        std::fs::create_dir_all(&dir).unwrap();
        for name in names {
            let script = dir.join(name);
            let log = dir.join(format!("{name}.args"));
            std::fs::write(
                &script,
                format!(
                    "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}.tmp'\nmv '{0}.tmp' '{0}'\n",
                    log.display()
                ),
            )
            .unwrap();
            make_executable(&script);
        }
        let path = std::env::join_paths(
            std::iter::once(dir.clone()).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )
        .unwrap();
        FakeOpeners { dir, path }
    }

    /// The arguments `name` was started with, once it was.
    fn wait_for(&self, name: &str) -> Vec<String> {
        let log = self.dir.join(format!("{name}.args"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !log.exists() {
            assert!(std::time::Instant::now() < deadline, "{name} was never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn started(&self, name: &str) -> bool {
        self.dir.join(format!("{name}.args")).exists()
    }
}

/// A login under WSL (`WSL_DISTRO_NAME` set, no `$BROWSER`) with `openers` on
/// PATH, opened by `opened_by`, whose arguments `url_of` reads as the URL
/// to sign in at; done once the login finished.
fn wsl_login(openers: &[&str], opened_by: &str, url_of: impl Fn(&[String]) -> String) -> (TestEnv, FakeOpeners) {
    let t = TestEnv::new();
    t.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate: false,
    });
    let fakes = FakeOpeners::new(&t, openers);
    let port = free_port();
    let mut cmd = t.cmd(&["login"]);
    cmd.env("PATH", &fakes.path)
        .env("WSL_DISTRO_NAME", "Ubuntu")
        .env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let url = url::Url::parse(&url_of(&fakes.wait_for(opened_by))).expect("the opener got the whole URL");
    assert_eq!(param(&url, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(param(&url, "redirect_uri"), Some(format!("http://localhost:{port}")));
    let state = param(&url, "state").unwrap();
    assert_eq!(http_get(port, &format!("/?code=c1&state={state}")).0, 200);
    assert_exit(&finish(&t, child), 0);
    assert_eq!(t.server.token_requests().len(), 1);
    (t, fakes)
}

#[test]
fn under_wsl_the_login_page_opens_with_wslview_first() {
    let (_t, fakes) = wsl_login(&["wslview", "cmd.exe", "xdg-open"], "wslview", |args| {
        assert_eq!(args.len(), 1, "{args:?}");
        args[0].clone()
    });
    assert!(!fakes.started("cmd.exe") && !fakes.started("xdg-open"));
}

#[test]
fn under_wsl_without_wslview_cmd_start_gets_the_url_with_its_ampersands_escaped() {
    let (_t, fakes) = wsl_login(&["cmd.exe", "xdg-open"], "cmd.exe", |args| {
        assert_eq!(args[..3], ["/c", "start", ""], "{args:?}");
        assert_eq!(args.len(), 4, "{args:?}");
        // What cmd makes of the word: `^&` is a plain `&`; a bare `&` would
        // have ended the command there.
        let word = &args[3];
        assert!(!word.contains(' '), "WSL would quote it, and cmd keep the ^: {word}");
        assert!(word.contains("^&") && !word.replace("^&", "").contains('&'), "{word}");
        word.replace("^&", "&")
    });
    assert!(!fakes.started("xdg-open"));
}

#[test]
fn under_wsl_browser_still_comes_first() {
    let (t, browser, port) = setup();
    let fakes = FakeOpeners::new(&t, &["wslview", "cmd.exe"]);
    t.seed(Some("refresh-0"), None);
    let mut cmd = login_cmd(&t, &browser, port, &["logout", "--browser"]);
    cmd.env("PATH", &fakes.path).env("WSL_DISTRO_NAME", "Ubuntu");
    assert_exit(&t.run_cmd(cmd), 0);
    let url = browser.wait_for_url(Duration::from_secs(10));
    assert_eq!(url.path(), "/logout");
    assert!(!fakes.started("wslview") && !fakes.started("cmd.exe"));
}
