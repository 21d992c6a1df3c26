//! End to end against a real OAuth server: panva's oidc-provider configured
//! like the Cognito hosted UI (`tests/idp`), with a scripted browser that
//! logs in through its form. Covers login → cached get → refresh after expiry
//! → rotation → logout (the refresh token is then refused) → exit 3.

#![cfg(target_os = "linux")] // shares the Linux pty helpers with tests/login.rs

mod common;
#[path = "common/idp.rs"]
mod idp;
#[path = "common/interactive.rs"]
mod interactive;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use idp::{Idp, idp_dir};
use interactive::free_port;

/// A test environment pointed at the IdP, with the scripted browser.
struct E2e {
    t: TestEnv,
    idp: Idp,
    port: u16,
}

impl E2e {
    fn new(rotate: bool, access_ttl: u64) -> E2e {
        let port = free_port();
        let e = E2e {
            t: TestEnv::new(),
            idp: Idp::start(port, rotate, access_ttl),
            port,
        };
        e.t.set_oauth_url(&e.idp.oauth_url);
        e
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.t.cmd(args);
        cmd.env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{}", self.port))
            .env("BROWSER", idp_dir().join("browser.sh"));
        cmd
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let out = self.t.run_cmd(self.cmd(args));
        self.forbid_stored();
        out
    }

    /// Whatever the store holds now must never show up in output later.
    fn forbid_stored(&self) {
        if let Ok(bytes) = std::fs::read(self.t.store_path()) {
            let store: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for token in [&store["refresh_token"], &store["access"]["token"]] {
                if let Some(s) = token.as_str() {
                    self.t.forbid(s);
                }
            }
        }
    }

    fn refresh_token(&self) -> String {
        self.t.store()["refresh_token"]
            .as_str()
            .expect("a stored refresh token")
            .to_string()
    }

    fn import(&self, refresh_token: &str) -> std::process::Output {
        let mut cmd = self.cmd(&["login", "--refresh-token-stdin"]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), refresh_token.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        self.t.assert_no_leak(&out.stderr);
        out
    }
}

#[test]
fn login_get_refresh_logout_against_a_real_oauth_server() {
    let e = E2e::new(false, 8);
    let out = e.run(&["login"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("logged in"), "{}", stderr(&out));
    let first_refresh = e.refresh_token();
    e.t.forbid(&first_refresh);

    // Cached: the same token again, without asking the server.
    let a1 = stdout(&e.run(&["-r"]));
    assert!(a1.starts_with("eyJ"), "a JWT access token");
    assert_eq!(stdout(&e.run(&["-r"])), a1);

    let status = e.run(&["status", "--json"]);
    assert_exit(&status, 0);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["user"], "alice");
    assert_eq!(status["scopes"][0], "aws.cognito.signin.user.admin");

    // The 8 s token is refreshed once half its life is gone (capped --min-valid).
    std::thread::sleep(Duration::from_millis(4500));
    let a2 = stdout(&e.run(&["-r"]));
    assert_exit(&e.run(&["-r"]), 0);
    assert_ne!(a2, a1, "refreshed");
    assert_eq!(
        e.refresh_token(),
        first_refresh,
        "no rotation: the refresh token is kept"
    );

    // Logout revokes: the server then refuses the old refresh token.
    let out = e.run(&["logout"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    assert!(!e.t.store_path().exists());
    let out = e.import(&first_refresh);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("invalid_grant"), "{}", stderr(&out));
    let out = e.run(&["--non-interactive"]);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("hint: run `lightfi-token login`"));
}

#[test]
fn rotating_refresh_tokens_keep_working_across_refreshes() {
    let e = E2e::new(true, 60);
    assert_exit(&e.run(&["login"]), 0);
    let mut seen = vec![e.refresh_token()];
    let mut tokens = vec![];
    for _ in 0..3 {
        let out = e.run(&["-r", "--force-refresh"]);
        assert_exit(&out, 0);
        tokens.push(stdout(&out));
        let current = e.refresh_token();
        assert!(
            !seen.contains(&current),
            "each refresh stores the rotated refresh token"
        );
        seen.push(current);
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 3);
    // The first refresh token died when it was rotated away; the current one lives on.
    let out = e.import(&seen[0]);
    assert_exit(&out, 3);
    assert_eq!(e.refresh_token(), seen[3], "a failed import keeps the stored login");
    assert_exit(&e.run(&["-r", "--force-refresh"]), 0);
}

#[test]
fn denied_consent_at_the_server_exits_3() {
    let e = E2e::new(false, 60);
    let mut cmd = e.cmd(&["login"]);
    cmd.env("IDP_DENY", "1");
    let out = e.t.run_cmd(cmd);
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("access_denied"), "{}", stderr(&out));
    assert!(!e.t.store_path().exists());
}

/// `login` with one setting wrong: it must stop at once with the cause, and
/// never send the user to a browser error page.
fn misconfigured_login(e: &E2e, setting: (&str, &str)) -> std::process::Output {
    let marker = e.t.home().join("browser-opened");
    // A login waiting for its callback would wait 600 s: "at once" is
    // anything the test does not give up on.
    let mut cmd = e.cmd(&["login", "--timeout", "600"]);
    cmd.env(setting.0, setting.1)
        .env("BROWSER", format!("touch {}", marker.display()));
    let out = output_within(cmd, Duration::from_secs(60));
    e.t.assert_no_leak(&out.stderr);
    assert!(!marker.exists(), "no browser for a login that cannot work");
    out
}

#[test]
fn a_login_that_cannot_work_says_why_before_any_browser_opens() {
    let e = E2e::new(false, 60);
    // A client id the server does not know.
    let out = misconfigured_login(&e, ("LIGHTFI_CLIENT_ID", "no-such-client"));
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("no-such-client"), "{}", stderr(&out));
    // A callback URL not registered on the client.
    let unregistered = format!("http://localhost:{}", free_port());
    let out = misconfigured_login(&e, ("LIGHTFI_REDIRECT_URI", &unregistered));
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("callback URL"), "{}", stderr(&out));
    // A typo in the OAuth URL's path.
    let typo = e.idp.oauth_url.replace("/oauth2", "/oauth");
    e.t.set_oauth_url(&typo);
    let out = misconfigured_login(&e, ("LIGHTFI_OAUTH_URL", &typo));
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("--oauth-url"), "{}", stderr(&out));
    // Nothing listening there.
    let closed = format!("http://127.0.0.1:{}/oauth2", free_port());
    let out = misconfigured_login(&e, ("LIGHTFI_OAUTH_URL", &closed));
    assert_exit(&out, 5);
    assert!(stderr(&out).contains("cannot start the login"), "{}", stderr(&out));
}
