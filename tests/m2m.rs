//! Machine credentials (`grant = "client_credentials"`): tokens from the
//! client's own id and secret, against the test IdP's machine client and
//! against the fake endpoint where a request must be inspected or a failure
//! injected. No browser, no refresh token, one request per wave, counted.

#![cfg(unix)]

mod common;
#[path = "common/idp.rs"]
mod idp;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;
use idp::Idp;

/// The test IdP's machine client (tests/idp/server.js) and its own scope.
const MACHINE_ID: &str = "lightfi-test-machine";
const MACHINE_SECRET: &str = "lightfi-test-machine-secret";
const MACHINE_SCOPE: &str = "lightfi-api/read";

/// `lightfi-token ARGS` as a client-credentials profile of the fake endpoint's client.
fn machine(t: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = t.cmd(args);
    cmd.env("LIGHTFI_GRANT", "client_credentials");
    cmd
}

/// The test IdP with tokens living an hour, and a profile of its machine client.
fn with_idp() -> (Idp, TestEnv) {
    let idp = Idp::start(9, false, 3600);
    let t = TestEnv::new();
    t.set_oauth_url(&idp.oauth_url);
    t.forbid(MACHINE_SECRET);
    std::fs::write(
        t.home().join("config.toml"),
        format!(
            "[default]\nclient_id = \"{MACHINE_ID}\"\nclient_secret = \"{MACHINE_SECRET}\"\noauth_url = \"{}\"\n\
             grant = \"client_credentials\"\nscope = \"{MACHINE_SCOPE}\"\n",
            idp.oauth_url
        ),
    )
    .unwrap();
    (idp, t)
}

/// As the profile in config.toml says: no client or server from the environment.
fn from_config(t: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = t.cmd(args);
    cmd.env_remove("LIGHTFI_CLIENT_ID")
        .env_remove("LIGHTFI_CLIENT_SECRET")
        .env_remove("LIGHTFI_OAUTH_URL");
    cmd
}

/// Tokens the IdP issued by client credentials.
fn issued_by(idp: &Idp) -> u64 {
    let base = idp.oauth_url.trim_end_matches("/oauth2");
    let out = Command::new("curl")
        .args(["-sf", &format!("{base}/test/counts")])
        .output()
        .expect("run curl");
    let counts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the IdP's counts");
    counts["client_credentials"].as_u64().unwrap()
}

fn status_json(t: &TestEnv) -> serde_json::Value {
    let out = t.run_cmd(from_config(t, &["status", "--json"]));
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_token_by_client_credentials_from_the_real_idp_in_every_format() {
    let (idp, t) = with_idp();
    let out = t.run_cmd(from_config(&t, &["-r"]));
    assert_exit(&out, 0);
    let token = stdout(&out).trim_end().to_string();
    t.forbid(&token);
    let claims = token.split('.').nth(1).expect("a JWT");
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(
        (claims["client_id"].as_str(), claims["scope"].as_str()),
        (Some(MACHINE_ID), Some(MACHINE_SCOPE))
    );

    // Every format hands out the cached token.
    let header = t.run_cmd(from_config(&t, &["--format", "header"]));
    assert_eq!(stdout(&header), format!("Authorization: Bearer {token}\n"));
    let json: serde_json::Value = serde_json::from_slice(&t.run_cmd(from_config(&t, &[])).stdout).unwrap();
    assert_eq!(json["access_token"], token.as_str());
    let exec_credential: serde_json::Value =
        serde_json::from_slice(&t.run_cmd(from_config(&t, &["--format", "exec-credential"])).stdout).unwrap();
    assert_eq!(exec_credential["status"]["token"], token.as_str());
    let git = with_stdin(
        from_config(&t, &["git-credential", "get"]),
        "protocol=https\nhost=api.lightfi.example\n\n",
    );
    assert_exit(&git, 0);
    assert!(
        stdout(&git).contains(&format!("password={token}\n")),
        "{}",
        stderr(&git)
    );
    let exec = t.run_cmd(from_config(
        &t,
        &[
            "exec",
            "--",
            "sh",
            "-c",
            "test \"$LIGHTFI_ACCESS_TOKEN\" = \"$1\" && echo same",
            "sh",
            &token,
        ],
    ));
    assert_eq!(stdout(&exec), "same\n", "{}", stderr(&exec));

    assert_eq!(issued_by(&idp), 1, "one token request, then the cache");
    let status = status_json(&t);
    assert_eq!(status["grant"], "client_credentials");
    assert_eq!(
        status["token_requests"],
        serde_json::json!({"today": 1, "this_month": 1})
    );
    let text = stdout(&t.run_cmd(from_config(&t, &["status"])));
    assert!(text.contains("token requests: 1 today, 1 this month"), "{text}");
    assert!(!store_has_refresh_token(&t));
}

/// Whether any store file of the home holds a refresh token.
fn store_has_refresh_token(t: &TestEnv) -> bool {
    std::fs::read_dir(t.home().join("tokens"))
        .unwrap()
        .flatten()
        .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|s| s.contains("refresh_token")))
}

#[test]
fn sixty_four_callers_on_an_empty_cache_make_one_token_request_and_status_counts_it() {
    let (idp, t) = with_idp();
    let children: Vec<_> = (0..64)
        .map(|_| {
            from_config(&t, &["-r"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let first = stdout(&outs[0]);
    t.forbid(first.trim_end());
    for out in &outs {
        assert_exit(out, 0);
        assert_eq!(stdout(out), first, "every caller gets the one token");
        t.assert_no_leak(&out.stderr);
    }
    assert_eq!(issued_by(&idp), 1);
    let status = status_json(&t);
    assert_eq!(status["token_requests"]["today"], issued_by(&idp));
    assert!(!store_has_refresh_token(&t));
}

#[test]
fn without_a_scope_none_is_sent_and_the_client_authenticates() {
    let t = TestEnv::new();
    assert_exit(&t.run_cmd(machine(&t, &["-r"])), 0);
    let sent = &t.server.token_requests()[0];
    assert_eq!(sent.field("grant_type"), Some("client_credentials"));
    assert_eq!(sent.field("client_id"), Some(CLIENT_ID));
    assert_eq!(sent.field("scope"), None, "not the user-login default: {:?}", sent.form);
    assert_eq!(
        sent.header("Authorization"),
        Some(basic(CLIENT_ID, CLIENT_SECRET).as_str())
    );
    assert_eq!(sent.form.len(), 2, "{:?}", sent.form);

    // A scope the profile sets is sent as it is.
    let t = TestEnv::new();
    assert_exit(
        &t.run_cmd(machine(&t, &["-r", "--scope", "lightfi-api/read lightfi-api/write"])),
        0,
    );
    let sent = &t.server.token_requests()[0];
    assert_eq!(sent.field("scope"), Some("lightfi-api/read lightfi-api/write"));
}

#[test]
fn the_grant_can_be_given_as_a_flag_and_a_wrong_one_is_refused() {
    let t = TestEnv::new();
    let mut cmd = t.cmd(&["-r", "--grant", "client_credentials"]);
    cmd.env("LIGHTFI_GRANT", "authorization_code");
    assert_exit(&t.run_cmd(cmd), 0);
    assert_eq!(
        t.server.token_requests()[0].field("grant_type"),
        Some("client_credentials")
    );
    let mut cmd = t.cmd(&["-r"]);
    cmd.env("LIGHTFI_GRANT", "password");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("LIGHTFI_GRANT"), "{}", stderr(&out));
}

#[test]
fn login_and_logout_browser_do_not_apply_and_logout_forgets_the_token() {
    let t = TestEnv::new();
    for args in [
        &["login"][..],
        &["login", "--refresh-token-stdin"],
        &["logout", "--browser"],
    ] {
        let out = t.run_cmd(machine(&t, args));
        assert_exit(&out, 4);
        assert!(
            stderr(&out).contains("does not apply to a client-credentials profile"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(t.server.requests().is_empty());

    assert_exit(&t.run_cmd(machine(&t, &["-r"])), 0);
    let out = t.run_cmd(machine(&t, &["logout"]));
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("cached token forgotten"), "{}", stderr(&out));
    assert!(t.server.revoke_requests().is_empty(), "nothing to revoke");
    assert_exit(&t.run_cmd(machine(&t, &["-r"])), 0);
    assert_eq!(t.server.token_requests().len(), 2, "the next call asks again");
    let out = t.run_cmd(machine(&t, &["status", "--json"]));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["token_requests"]["this_month"], 2, "logout keeps the counts");
}

#[test]
fn force_refresh_says_it_costs_a_request() {
    let t = TestEnv::new();
    assert_exit(&t.run_cmd(machine(&t, &["-r"])), 0);
    let out = t.run_cmd(machine(&t, &["-r", "--force-refresh"]));
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("billed"), "{}", stderr(&out));
    assert_eq!(t.server.token_requests().len(), 2);
    let quiet = t.run_cmd(machine(&t, &["-r"]));
    assert_eq!(stderr(&quiet), "", "no warning without --force-refresh");
}

#[test]
fn a_failing_server_gets_one_callers_tries_per_wave() {
    let t = TestEnv::new();
    t.server.fallback(Reply::status(503));
    let children: Vec<_> = (0..64)
        .map(|_| {
            machine(&t, &["-r"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_exit(&out, 5);
    }
    let made = t.server.token_requests().len();
    assert!(made <= 3, "{made} token requests: one caller's tries at most");
    // A caller soon after does not ask again.
    assert_exit(&t.run_cmd(machine(&t, &["-r"])), 5);
    assert_eq!(t.server.token_requests().len(), made);
}

#[test]
fn a_refused_client_is_exit_4() {
    let t = TestEnv::new();
    t.server.fallback(Reply::oauth_error(400, "invalid_client"));
    let out = t.run_cmd(machine(&t, &["-r"]));
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("invalid_client"), "{}", stderr(&out));
}
