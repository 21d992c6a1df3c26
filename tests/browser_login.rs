//! A login in a real browser: headless Chromium (Debian's package, driven by
//! playwright-core) is `$BROWSER` for `lightfi-token login` and signs in
//! through the pages of the test IdP (`tests/idp`), as a person would. Proves
//! what the scripted browser of tests/e2e_idp.rs cannot: that a real browser
//! follows the IdP's redirects to the loopback callback, on `localhost`
//! (127.0.0.1 or ::1), and that the page it ends on says the login worked
//! and shows no token.

#![cfg(target_os = "linux")] // Debian's chromium; the Linux helpers of tests/common/interactive.rs

mod common;
#[path = "common/idp.rs"]
mod idp;
#[path = "common/interactive.rs"]
mod interactive;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use idp::Idp;
use interactive::{free_port, make_executable};

/// The driver's report (tests/tools/chromium-login.mjs).
fn wait_for_report(dir: &Path, child: &mut std::process::Child, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(error) = std::fs::read_to_string(dir.join("error.txt")) {
            let _ = child.kill();
            panic!("the Chromium driver failed:\n{error}");
        }
        if let Ok(report) = std::fs::read(dir.join("result.json")) {
            return serde_json::from_slice(&report).expect("result.json is JSON");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no report from the Chromium driver within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn login_in_headless_chromium_ends_on_a_page_without_tokens() {
    TestTools::Apt(&["chromium"]).ensure();
    TestTools::Node.ensure();
    let t = TestEnv::new();
    let port = free_port();
    let idp = Idp::start(port, false, 3600);
    let out = tempfile::tempdir().unwrap();

    // $BROWSER is split at spaces: a script of one word runs the driver.
    let browser = out.path().join("browser");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nexec node '{}' '{}' \"$@\"\n",
            repo_root().join("tests/tools/chromium-login.mjs").display(),
            out.path().display()
        ),
    )
    .unwrap();
    make_executable(&browser);

    t.set_oauth_url(&idp.oauth_url);
    let mut cmd = t.cmd(&["login", "--timeout", "120"]);
    cmd.env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{port}"))
        .env("BROWSER", &browser)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run lightfi-token login");
    let report = wait_for_report(out.path(), &mut child, Duration::from_secs(150));
    let login = child.wait_with_output().unwrap();
    t.assert_no_leak(&login.stderr);
    assert_exit(&login, 0);
    assert!(stderr(&login).contains("logged in"), "{}", stderr(&login));

    // The page Chromium ended on: lightfi-token's callback, saying so.
    let url = report["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://localhost:{port}/?")), "{url}");
    assert!(url.contains("code=<redacted>"), "{url}");
    assert_eq!(report["status"], 200, "{report}");
    let text = report["text"].as_str().unwrap();
    assert!(text.contains("You are logged in to LightFi"), "the page says: {text}");

    // … and shows no token: neither what the store now holds nor the code.
    let store = t.store();
    let refresh = store["refresh_token"].as_str().expect("a stored refresh token");
    let access = store["access"]["token"].as_str().expect("a stored access token");
    assert!(access.starts_with("eyJ"), "the IdP's JWT access token");
    let html = std::fs::read_to_string(out.path().join("page.html")).unwrap();
    for (what, token) in [("refresh token", refresh), ("access token", access)] {
        assert!(!html.contains(token), "the page shows the {what}:\n{html}");
    }
    assert_eq!(
        report["html_contains"],
        serde_json::json!([]),
        "the page repeats the callback's code or state"
    );
    t.forbid(refresh);
    t.forbid(access);
    t.assert_no_leak(html.as_bytes());

    // The login is usable: the cached token, without asking the IdP.
    drop(idp);
    let get = t.run(&["-r"]);
    assert_exit(&get, 0);
    assert_eq!(stdout(&get).trim_end(), access);
}
