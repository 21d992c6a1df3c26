//! A missing or wrong client secret is found before the browser opens: the
//! login asks the token endpoint about the client first (exit 4, no
//! browser), against the test IdP's confidential and public clients.

#![cfg(target_os = "linux")] // shares the Linux helpers with tests/e2e_idp.rs

mod common;
#[path = "common/idp.rs"]
mod idp;
#[path = "common/interactive.rs"]
mod interactive;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use idp::{Idp, idp_dir};
use interactive::free_port;

/// A `$BROWSER` that leaves a file saying it was started, then logs in
/// through the IdP's form as the scripted browser does.
fn recording_browser(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let started = dir.join("browser-started");
    let script = dir.join("browser");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch '{}'\nexec '{}' \"$@\"\n",
            started.display(),
            idp_dir().join("browser.sh").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, started)
}

/// `lightfi-token login` for `client_id` with `secret` against `idp`;
/// the output and whether a browser was started.
fn login(idp: &Idp, port: u16, client_id: &str, secret: Option<&str>) -> (Output, bool) {
    let t = TestEnv::public();
    t.set_oauth_url(&idp.oauth_url);
    let browser_dir = tempfile::tempdir().unwrap();
    let (browser, started) = recording_browser(browser_dir.path());
    let mut cmd = t.cmd(&["login", "--timeout", "120"]);
    cmd.env("LIGHTFI_CLIENT_ID", client_id)
        .env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{port}"))
        .env("BROWSER", &browser);
    if let Some(secret) = secret {
        t.forbid(secret);
        cmd.env("LIGHTFI_CLIENT_SECRET", secret);
    }
    let out = t.run_cmd(cmd);
    (out, started.exists())
}

#[test]
fn a_missing_or_wrong_secret_is_exit_4_before_any_browser() {
    let port = free_port();
    let idp = Idp::start(port, false, 60);

    let (out, browsed) = login(&idp, port, CLIENT_ID, None);
    assert_exit(&out, 4);
    assert!(!browsed, "no browser for a client the server refuses");
    let err = stderr(&out);
    assert!(err.contains(&format!("refused client {CLIENT_ID}")), "{err}");
    assert!(err.contains("no client secret is set"), "{err}");
    assert!(err.contains("lightfi-token configure"), "{err}");

    let (out, browsed) = login(&idp, port, CLIENT_ID, Some("not-the-secret"));
    assert_exit(&out, 4);
    assert!(!browsed, "no browser for a wrong secret");
    assert!(
        stderr(&out).contains("the client secret given is wrong"),
        "{}",
        stderr(&out)
    );

    let (out, browsed) = login(&idp, port, CLIENT_ID, Some(CLIENT_SECRET));
    assert_exit(&out, 0);
    assert!(browsed);

    let (out, browsed) = login(&idp, port, &format!("{CLIENT_ID}-public"), None);
    assert_exit(&out, 0);
    assert!(browsed, "a public client needs no secret");
}
