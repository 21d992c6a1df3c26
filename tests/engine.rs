//! The token engine, driven through the real binary against the fake endpoint:
//! cache, refresh, rotation, errors and retries, formats, locking, status,
//! logout and import.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn cached_token_makes_no_request() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("cached-access", 60, 3600)));
    let out = t.run(&["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "cached-access\n");
    assert_eq!(t.server.requests().len(), 0);
    assert_eq!(stderr(&out), "");
}

#[test]
fn expired_token_is_refreshed_once_with_basic_auth() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("old-access", 4000, 3600)));
    let out = t.run(&["-r"]);
    assert_exit(&out, 0);
    let reqs = t.server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/oauth2/token"));
    assert_eq!(
        r.header("Authorization"),
        Some(basic(CLIENT_ID, CLIENT_SECRET).as_str())
    );
    assert!(
        r.header("Content-Type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert_eq!(r.field("grant_type"), Some("refresh_token"));
    assert_eq!(r.field("refresh_token"), Some("refresh-0"));
    assert_eq!(r.field("client_id"), Some(CLIENT_ID));
    assert_eq!(
        r.field("client_secret"),
        None,
        "the secret goes in the Basic header only"
    );
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
    // Stored for the next call, which is then served from the cache.
    assert_eq!(t.store()["access"]["token"], jwt_like(1));
    assert_eq!(stdout(&t.run(&["-r"])), format!("{}\n", jwt_like(1)));
    assert_eq!(t.server.requests().len(), 1);
}

#[test]
fn public_client_sends_client_id_in_body_without_basic() {
    let t = TestEnv::public();
    t.seed(Some("refresh-0"), None);
    let out = t.run(&[]);
    assert_exit(&out, 0);
    let r = &t.server.requests()[0];
    assert_eq!(r.header("Authorization"), None);
    assert_eq!(r.field("client_id"), Some(CLIENT_ID));
    assert_eq!(r.field("refresh_token"), Some("refresh-0"));
}

#[test]
fn rotated_refresh_token_replaces_the_stored_one() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate: true,
    });
    assert_exit(&t.run(&["--force-refresh"]), 0);
    assert_eq!(t.store()["refresh_token"], "rotated-refresh-1");
    assert_exit(&t.run(&["--force-refresh"]), 0);
    let reqs = t.server.requests();
    assert_eq!(reqs[1].field("refresh_token"), Some("rotated-refresh-1"));
    assert_eq!(t.store()["refresh_token"], "rotated-refresh-2");
}

#[test]
fn response_without_refresh_token_keeps_the_stored_one() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("old-access", 4000, 3600)));
    assert_exit(&t.run(&[]), 0);
    let store = t.store();
    assert_eq!(store["refresh_token"], "refresh-0");
    assert_eq!(store["access"]["token"], jwt_like(1));
}

#[test]
fn invalid_grant_exits_3_and_drops_the_refresh_token() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("old-access", 4000, 3600)));
    t.server.fallback(Reply::oauth_error(400, "invalid_grant"));
    let out = t.run(&[]);
    assert_exit(&out, 3);
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(err.contains("hint: run `lightfi-token login`"), "{err}");
    assert_eq!(t.server.requests().len(), 1, "a rejected refresh token is not retried");
    assert!(t.store().get("refresh_token").is_none());
    // The next call knows it is logged out without asking the server again.
    assert_exit(&t.run(&[]), 3);
    assert_eq!(t.server.requests().len(), 1);
}

#[test]
fn invalid_client_exits_4_and_keeps_the_store() {
    for (status, error) in [
        (400, "invalid_client"),
        (401, "invalid_client"),
        (400, "unauthorized_client"),
    ] {
        let t = TestEnv::new();
        t.seed(Some("refresh-0"), None);
        t.server.fallback(Reply::oauth_error(status, error));
        let out = t.run(&[]);
        assert_exit(&out, 4);
        assert!(stderr(&out).contains(error));
        assert!(stderr(&out).contains("hint: check the client id and secret"));
        assert_eq!(t.store()["refresh_token"], "refresh-0");
    }
}

#[test]
fn server_text_echoing_the_refresh_token_or_secret_is_redacted() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0-echoed"), None);
    let body = serde_json::json!({
        "error": "invalid_grant",
        "error_description": format!("bad refresh_token refresh-0-echoed for client secret {CLIENT_SECRET}"),
    });
    t.server.fallback(Reply::json(400, &body.to_string()));
    // `run` fails the test if either reaches stderr.
    let out = t.run(&[]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("bad refresh_token <redacted> for client secret <redacted>"),
        "{err}"
    );
}

#[test]
fn an_oversized_token_answer_names_the_limit() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let huge = format!(
        r#"{{"access_token":"{}","token_type":"Bearer","expires_in":60}}"#,
        "a".repeat(1 << 20)
    );
    t.server.fallback(Reply::json(200, &huge));
    let out = t.run(&[]);
    assert_exit(&out, 5);
    let err = stderr(&out);
    assert!(err.contains("larger than the limit of 1 MiB"), "{err}");
    assert!(!err.contains("not JSON"), "{err}");
    assert_eq!(t.store()["refresh_token"], "refresh-0");
}

#[test]
fn two_503s_then_success_after_retries() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.server.script([Reply::status(503), Reply::status(503)]);
    let out = t.run(&["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
    assert_eq!(t.server.requests().len(), 3);
}

#[test]
fn retry_after_is_honoured() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let slow_down = Reply::Raw {
        status: 429,
        headers: vec![("Retry-After".into(), "2".into())],
        body: String::new(),
    };
    t.server.script([slow_down]);
    assert_exit(&t.run(&[]), 0);
    let requests = t.server.token_requests();
    assert_eq!(requests.len(), 2);
    // A lower bound the program itself must keep, measured at the server
    // (its own back-off would ask again after 0.5 s).
    let gap = requests[1].at - requests[0].at;
    assert!(gap >= Duration::from_secs(2), "asked again after {gap:?}");
}

#[test]
fn always_503_exits_5_keeping_the_store() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("expired-access", 4000, 3600)));
    t.server.fallback(Reply::status(503));
    let out = t.run(&[]);
    assert_exit(&out, 5);
    assert!(stderr(&out).contains("503"), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"));
    assert_eq!(t.server.requests().len(), 3, "one try and two retries");
    assert_eq!(t.store()["refresh_token"], "refresh-0");
}

#[test]
fn a_failure_recorded_in_the_future_after_the_clock_stepped_back_is_expired() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("expired-access", 4000, 3600)));
    t.server
        .script([Reply::status(503), Reply::status(503), Reply::status(503)]);
    assert_exit(&t.run(&[]), 5);
    assert_eq!(t.server.requests().len(), 3);
    // The failure was recorded before the clock stepped back a day.
    let mut store = t.store();
    let ahead = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    store["last_failure"]["ended_at"] = ahead
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .into();
    std::fs::write(t.store_path(), serde_json::to_vec_pretty(&store).unwrap()).unwrap();
    t.server.script([Reply::fresh()]);
    let out = t.run(&[]);
    assert_exit(&out, 0);
    assert_eq!(t.server.requests().len(), 4, "one request, not the replayed failure");
    assert!(!stderr(&out).contains("s ago"), "{}", stderr(&out));
}

#[test]
fn failing_server_with_still_valid_token_prints_it_with_a_warning() {
    let t = TestEnv::new();
    // 200 s left of 3600: inside the 300 s margin, so a refresh is attempted.
    t.seed(Some("refresh-0"), Some(("still-valid", 3400, 3600)));
    t.server.fallback(Reply::status(503));
    let out = t.run(&["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "still-valid\n");
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
    assert_eq!(t.server.requests().len(), 3);
}

#[test]
fn timeout_exits_5_after_three_tries() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.server
        .fallback(Reply::Delay(Duration::from_secs(20), Box::new(Reply::fresh())));
    let out = t.run(&["--http-timeout", "0.5"]);
    // Each answer would come after 20 s: exiting 5 on "timed out" after
    // three requests is the bound kept (how long that takes is a benchmark's).
    assert_exit(&out, 5);
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert_eq!(t.server.token_requests().len(), 3);
    assert_eq!(t.store()["refresh_token"], "refresh-0");
}

#[test]
fn malformed_or_incomplete_answers_exit_5_naming_the_problem() {
    let cases = [
        ("<html>oops</html>", "not JSON"),
        (r#"{"token_type":"Bearer","expires_in":3600}"#, "access_token"),
        (r#"{"access_token":"leaky-value","token_type":"Bearer"}"#, "expires_in"),
        (
            r#"{"access_token":"leaky-value","expires_in":3600,"token_type":"Bearer""#,
            "not JSON",
        ),
    ];
    for (body, named) in cases {
        let t = TestEnv::new();
        t.forbid("leaky-value");
        t.seed(Some("refresh-0"), None);
        t.server.fallback(Reply::json(200, body));
        let out = t.run(&[]);
        assert_exit(&out, 5);
        assert!(stderr(&out).contains(named), "{body}: {}", stderr(&out));
        assert_eq!(t.store()["refresh_token"], "refresh-0");
    }
}

#[test]
fn corrupt_store_warns_and_is_treated_as_empty() {
    let t = TestEnv::new();
    std::fs::create_dir_all(t.home().join("tokens")).unwrap();
    std::fs::write(t.store_path(), "{\"client_id\": garbage").unwrap();
    let out = t.run(&[]);
    assert_exit(&out, 3);
    assert_eq!(
        stderr(&out).matches("corrupt").count(),
        1,
        "one warning: {}",
        stderr(&out)
    );
    // With a refresh token from the environment, a normal refresh rewrites it.
    let mut cmd = t.cmd(&["-r"]);
    cmd.env("LIGHTFI_REFRESH_TOKEN", "env-refresh");
    t.forbid("env-refresh");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("corrupt"));
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
    assert_eq!(t.store()["access"]["token"], jwt_like(1));
}

#[test]
fn store_for_another_client_is_ignored() {
    let t = TestEnv::new();
    t.seed_for("another-client", Some("their-refresh"), Some(("their-access", 0, 3600)));
    let out = t.run(&[]);
    assert_exit(&out, 3);
    assert_eq!(t.server.requests().len(), 0, "their refresh token is never sent");
}

#[test]
fn env_refresh_token_works_without_a_stored_login_and_is_cached() {
    let t = TestEnv::new();
    t.forbid("ci-refresh");
    let with_env = |args: &[&str]| {
        let mut cmd = t.cmd(args);
        cmd.env("LIGHTFI_REFRESH_TOKEN", "ci-refresh");
        t.run_cmd(cmd)
    };
    let out = with_env(&["-r"]);
    assert_exit(&out, 0);
    assert_eq!(t.server.requests()[0].field("refresh_token"), Some("ci-refresh"));
    assert!(
        t.store().get("refresh_token").is_none(),
        "the CI token is not persisted"
    );
    assert_exit(&with_env(&["-r"]), 0);
    assert_eq!(t.server.requests().len(), 1, "second call is served from the cache");
    // A different refresh token does not reuse the first one's access token.
    let mut cmd = t.cmd(&["-r"]);
    cmd.env("LIGHTFI_REFRESH_TOKEN", "other-ci-refresh");
    t.forbid("other-ci-refresh");
    assert_exit(&t.run_cmd(cmd), 0);
    assert_eq!(t.server.requests().len(), 2);
}

#[cfg(unix)]
#[test]
fn store_files_are_0600_in_a_0700_folder() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestEnv::new();
    let mut cmd = t.cmd(&[]);
    cmd.env("LIGHTFI_REFRESH_TOKEN", "ci-refresh");
    t.forbid("ci-refresh");
    assert_exit(&t.run_cmd(cmd), 0);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&t.home().join("tokens")), 0o700);
    assert_eq!(mode(&t.store_path()), 0o600);
    assert_eq!(mode(&t.lock_path()), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(t.home().join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temp files left behind: {leftovers:?}");
}

#[test]
fn every_format_prints_exactly_the_contract() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 600, 3600)));
    let expires_at = t.store()["access"]["expires_at"].as_str().unwrap().to_string();
    assert_eq!(stdout(&t.run(&["-r"])), "seeded-tok\n");
    assert_eq!(stdout(&t.run(&["--format", "raw"])), "seeded-tok\n");
    assert_eq!(
        stdout(&t.run(&["get", "--format", "header"])),
        "Authorization: Bearer seeded-tok\n"
    );

    let json = stdout(&t.run(&[]));
    assert!(json.ends_with("}\n") && json.lines().count() == 1, "{json}");
    let prefix =
        format!(r#"{{"access_token":"seeded-tok","token_type":"Bearer","expires_at":"{expires_at}","expires_in":"#);
    assert!(json.starts_with(&prefix), "{json}");
    let expires_in: i64 = json[prefix.len()..json.len() - 2].parse().unwrap();
    assert!((2995..=3000).contains(&expires_in), "{expires_in}");

    let v1 = format!(
        "{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"seeded-tok\",\"expirationTimestamp\":\"{expires_at}\"}}}}\n"
    );
    assert_eq!(stdout(&t.run(&["--format", "exec-credential"])), v1);
    let mut cmd = t.cmd(&["--format", "exec-credential"]);
    cmd.env(
        "KUBERNETES_EXEC_INFO",
        r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}"#,
    );
    assert_eq!(stdout(&t.run_cmd(cmd)), v1.replace("/v1\"", "/v1beta1\""));
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn min_valid_is_capped_at_half_the_lifetime() {
    // A 300 s token with 200 s left: the 300 s default would refresh on every
    // call; capped at 150 s, the cached token is used.
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("short-lived-token", 100, 300)));
    assert_eq!(stdout(&t.run(&["-r"])), "short-lived-token\n");
    assert_eq!(t.server.requests().len(), 0);
    // With 100 s left (under half), it is refreshed.
    t.seed(Some("refresh-0"), Some(("short-lived-token", 200, 300)));
    assert_eq!(stdout(&t.run(&["-r"])), format!("{}\n", jwt_like(1)));
    assert_eq!(t.server.requests().len(), 1);
    // An explicit --min-valid below the cap is honoured on a long token.
    t.seed(Some("refresh-0"), Some(("long-lived-token", 3400, 3600)));
    assert_eq!(stdout(&t.run(&["-r", "--min-valid", "100"])), "long-lived-token\n");
    assert_eq!(
        stdout(&t.run(&["-r", "--min-valid", "250"])),
        format!("{}\n", jwt_like(2))
    );
}

#[test]
fn sixteen_concurrent_callers_cause_one_refresh() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("expired-access", 4000, 3600)));
    // A slow answer, so every process finds the token expired meanwhile.
    t.server
        .fallback(Reply::Delay(Duration::from_millis(500), Box::new(Reply::fresh())));
    let children: Vec<_> = (0..16)
        .map(|_| {
            t.cmd(&["-r"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for out in &outputs {
        assert_exit(out, 0);
        t.assert_no_leak(&out.stderr);
        assert_eq!(stdout(out), format!("{}\n", jwt_like(1)));
    }
    assert_eq!(t.server.token_requests().len(), 1);
}

#[test]
fn held_lock_makes_callers_wait_then_exit_6() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("expired-access", 4000, 3600)));
    let _lock = t.hold_lock();
    let start = Instant::now();
    let out = t.run(&["--lock-timeout", "1.5"]);
    assert_exit(&out, 6);
    assert!(start.elapsed() >= Duration::from_millis(1500));
    let err = stderr(&out);
    assert!(err.contains("waiting for another lightfi-token"), "{err}");
    assert!(err.contains("--lock-timeout"), "{err}");
    assert_eq!(t.server.requests().len(), 0);
    // The cached path never takes the lock.
    t.seed(Some("refresh-0"), Some(("fresh-access", 0, 3600)));
    assert_exit(&t.run(&["--lock-timeout", "0"]), 0);
}

#[test]
fn waiting_caller_uses_the_token_the_lock_holder_stored() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("expired-access", 4000, 3600)));
    let lock = t.hold_lock();
    let mut child = t
        .cmd(&["-r"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It says when it waits for the lock: then, not after a guessed delay,
    // another process finishes a refresh.
    let (said, rest) = stderr_once_it_says(&mut child, "waiting for another lightfi-token");
    assert!(
        said,
        "the caller never said it waits for the lock: did not answer within 60 s"
    );
    t.seed(Some("refresh-0"), Some(("from-the-other-process", 0, 3600)));
    drop(lock);
    let out = child.wait_with_output().unwrap();
    let err = rest.join().unwrap();
    t.assert_no_leak(err.as_bytes());
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "from-the-other-process\n");
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn status_shows_the_login_but_never_a_token() {
    let t = TestEnv::new();
    let out = t.run(&["status"]);
    assert_exit(&out, 3);
    assert!(stdout(&out).contains("refresh token: none"), "{}", stdout(&out));

    t.seed(Some("refresh-0"), Some((&jwt_like(7), 60, 3600)));
    let out = t.run(&["status"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    t.assert_no_leak(text.as_bytes());
    assert!(text.contains("profile:       default"), "{text}");
    assert!(text.contains("refresh token: stored"), "{text}");
    assert!(text.contains("user:          alice"), "{text}");
    assert!(text.contains("scopes:        aws.cognito.signin.user.admin"), "{text}");
    assert!(text.contains(&t.store_path().display().to_string()), "{text}");

    let out = t.run(&["status", "--json"]);
    assert_exit(&out, 0);
    t.assert_no_leak(&out.stdout);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["refresh_token"], "store");
    assert_eq!(v["user"], "alice");
    assert_eq!(v["access_token"]["valid"], true);
    assert_eq!(v["access_token"]["expires_at"], t.store()["access"]["expires_at"]);
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn logout_revokes_then_deletes() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 0, 3600)));
    t.server.fallback(Reply::status(200));
    let out = t.run(&["logout"]);
    assert_exit(&out, 0);
    let reqs = t.server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/oauth2/revoke");
    assert_eq!(reqs[0].field("token"), Some("refresh-0"));
    assert_eq!(
        reqs[0].header("Authorization"),
        Some(basic(CLIENT_ID, CLIENT_SECRET).as_str())
    );
    assert!(!t.store_path().exists());
    assert!(stderr(&out).contains("revoked"));
    assert_exit(&t.run(&["--non-interactive"]), 3);
}

#[test]
fn logout_deletes_even_when_revocation_fails() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.server.fallback(Reply::status(500));
    let out = t.run(&["logout"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(!t.store_path().exists());

    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    assert_exit(&t.run(&["logout", "--no-revoke"]), 0);
    assert_eq!(t.server.requests().len(), 0);
    assert!(!t.store_path().exists());
}

#[test]
fn imported_refresh_token_is_validated_then_stored() {
    let t = TestEnv::new();
    t.forbid("imported-refresh");
    let mut cmd = t.cmd(&["login", "--refresh-token-stdin"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"imported-refresh\n").unwrap();
    let out = child.wait_with_output().unwrap();
    t.assert_no_leak(&out.stderr);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
    assert_eq!(t.server.requests()[0].field("refresh_token"), Some("imported-refresh"));
    assert_eq!(t.store()["refresh_token"], "imported-refresh");
    assert_eq!(stdout(&t.run(&["-r"])), format!("{}\n", jwt_like(1)));

    // A rejected one is not stored, and the existing login is kept.
    t.server.fallback(Reply::oauth_error(400, "invalid_grant"));
    let mut cmd = t.cmd(&["login", "--refresh-token-stdin"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"bad-refresh").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("nothing was stored"));
    assert_eq!(t.store()["refresh_token"], "imported-refresh");
}

#[test]
fn missing_client_id_exits_4_with_how_to_set_it() {
    let t = TestEnv::new();
    let mut cmd = t.cmd(&[]);
    cmd.env_remove("LIGHTFI_CLIENT_ID");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(
        err.contains("no client id") && err.contains("LIGHTFI_CLIENT_ID"),
        "{err}"
    );
}

#[test]
fn seed_script_client_variables_are_accepted() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let mut cmd = t.cmd(&[]);
    cmd.env_remove("LIGHTFI_CLIENT_ID").env_remove("LIGHTFI_CLIENT_SECRET");
    cmd.env("CLIENT_ID", CLIENT_ID).env("CLIENT_SECRET", CLIENT_SECRET);
    assert_exit(&t.run_cmd(cmd), 0);
    assert_eq!(
        t.server.requests()[0].header("Authorization"),
        Some(basic(CLIENT_ID, CLIENT_SECRET).as_str())
    );
}

#[test]
fn malformed_config_exits_4_naming_file_and_line() {
    let t = TestEnv::new();
    std::fs::write(
        t.home().join("config.toml"),
        "[default]\nclient_id = \"x\"\nscope = [1,\n",
    )
    .unwrap();
    let out = t.run(&[]);
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(err.contains("config.toml") && err.contains("line "), "{err}");
}

#[test]
fn config_file_supplies_the_profile() {
    let t = TestEnv::new();
    std::fs::write(
        t.home().join("config.toml"),
        format!("[staging]\nclient_id = \"{CLIENT_ID}\"\nscope = \"openid\"\n"),
    )
    .unwrap();
    let mut cmd = t.cmd(&["--profile", "staging"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID")
        .env("LIGHTFI_REFRESH_TOKEN", "ci-refresh");
    t.forbid("ci-refresh");
    assert_exit(&t.run_cmd(cmd), 0);
    let stores: Vec<String> = std::fs::read_dir(t.home().join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("staging@") && n.ends_with(".json"))
        .collect();
    assert_eq!(stores.len(), 1, "{stores:?}");
    assert_eq!(t.server.requests().len(), 1);
    assert_eq!(t.server.token_requests()[0].field("client_id"), Some(CLIENT_ID));
}

#[test]
fn the_ci_refresh_token_is_never_sent_to_a_profile_tables_server() {
    let t = TestEnv::new();
    std::fs::write(
        t.home().join("config.toml"),
        format!(
            "[staging]\nclient_id = \"{CLIENT_ID}\"\noauth_url = \"{}\"\n",
            t.server.url
        ),
    )
    .unwrap();
    let mut cmd = t.cmd(&["--profile", "staging"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID")
        .env_remove("LIGHTFI_OAUTH_URL")
        .env("LIGHTFI_REFRESH_TOKEN", "ci-refresh");
    t.forbid("ci-refresh");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(
        err.contains("LIGHTFI_REFRESH_TOKEN") && err.contains("[staging]"),
        "{err}"
    );
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn an_exported_legacy_secret_never_goes_with_a_profiles_client() {
    let t = TestEnv::new();
    std::fs::write(
        t.home().join("config.toml"),
        format!(
            "[staging]\nclient_id = \"staging-id\"\noauth_url = \"{}\"\n",
            t.server.url
        ),
    )
    .unwrap();
    let mut cmd = t.cmd(&["--profile", "staging", "login", "--refresh-token-stdin"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID")
        .env_remove("LIGHTFI_CLIENT_SECRET")
        .env_remove("LIGHTFI_OAUTH_URL")
        .env("CLIENT_SECRET", "prod-secret")
        .stdin(std::process::Stdio::piped());
    t.forbid("prod-secret");
    t.forbid("rt-staging");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"rt-staging\n").unwrap();
    let out = child.wait_with_output().unwrap();
    t.assert_no_leak(&out.stderr);
    assert_exit(&out, 0);
    let sent = t.server.token_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].field("client_id"), Some("staging-id"));
    assert_eq!(
        sent[0].header("Authorization"),
        None,
        "no Basic auth with another client's secret"
    );
}

#[test]
fn usage_errors_exit_2() {
    let t = TestEnv::new();
    assert_exit(&t.run(&["--format", "yaml"]), 2);
    assert_exit(&t.run(&["--no-such-flag"]), 2);
    assert_exit(&t.run(&["-r", "status"]), 2);
}

#[test]
fn token_that_expires_during_the_retries_is_not_printed() {
    let t = TestEnv::new();
    // 1 s left; the retries' backoff alone takes 1.5 s.
    t.seed(Some("refresh-0"), Some(("dying-access", 3599, 3600)));
    t.server.fallback(Reply::status(503));
    let out = t.run(&["-r"]);
    assert_exit(&out, 5);
    assert_eq!(stdout(&out), "");
}

#[test]
fn basic_credentials_are_form_urlencoded() {
    let mut t = TestEnv::new();
    t.secret = Some("s3cr3t+with/odd%chars".into());
    t.forbid("s3cr3t+with/odd%chars");
    t.seed(Some("refresh-0"), None);
    assert_exit(&t.run(&[]), 0);
    // RFC 6749 §2.3.1: urlencode, then Base64.
    let expected = basic(CLIENT_ID, "s3cr3t%2Bwith%2Fodd%25chars");
    assert_eq!(t.server.requests()[0].header("Authorization"), Some(expected.as_str()));
}

#[test]
fn bare_401_means_the_client_was_rejected() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.server.fallback(Reply::status(401));
    let out = t.run(&[]);
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("invalid_client"), "{}", stderr(&out));
    assert_eq!(t.server.requests().len(), 1);
}

#[test]
fn access_token_that_could_inject_headers_is_refused() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.forbid("evil-token");
    t.server.fallback(Reply::json(
        200,
        r#"{"access_token":"evil-token\r\nX-Injected: 1","token_type":"Bearer","expires_in":3600}"#,
    ));
    let out = t.run(&["--format", "header"]);
    assert_exit(&out, 5);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("RFC 6750"), "{}", stderr(&out));
}

#[test]
fn response_without_expires_in_uses_the_jwt_exp() {
    use base64::Engine;
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 1800;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp}}}"#));
    let token = format!("eyJhbGciOiJub25lIn0.{payload}.sig");
    t.forbid(&token);
    t.server.fallback(Reply::json(
        200,
        &format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#),
    ));
    let out = t.run(&["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{token}\n"));
}

#[test]
fn config_errors_never_print_the_secret() {
    let t = TestEnv::new();
    std::fs::write(
        t.home().join("config.toml"),
        "client_secret = \"topsecret-in-config\"\n",
    )
    .unwrap();
    t.forbid("topsecret-in-config");
    let out = t.run(&["status"]);
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
}

#[cfg(unix)]
#[test]
fn non_utf8_home_is_an_error_not_the_default_store() {
    use std::os::unix::ffi::OsStrExt;
    let t = TestEnv::new();
    let mut cmd = t.cmd(&["status"]);
    cmd.env("LIGHTFI_TOKEN_HOME", std::ffi::OsStr::from_bytes(b"/tmp/h\xff"));
    let out = t.run_cmd(cmd);
    assert_exit(&out, 4);
    assert!(
        stderr(&out).contains("LIGHTFI_TOKEN_HOME is not valid UTF-8"),
        "{}",
        stderr(&out)
    );
}

#[cfg(unix)]
#[test]
fn closed_stdout_never_receives_the_store_or_writes_the_token_into_it() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 4000, 3600)));
    // Expired, so the store is rewritten while fd 1 is closed.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", r#"exec 1>&-; exec "$0" -r"#]).arg(bin());
    let base = t.cmd(&[]);
    cmd.env_clear().envs(base.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    let store = t.store();
    assert_eq!(store["access"]["token"], jwt_like(1));
    assert_eq!(store["refresh_token"], "refresh-0");
    assert_eq!(
        std::fs::read(t.lock_path()).unwrap(),
        b"",
        "the token went to no file but the store"
    );
}

#[test]
fn verbose_shows_each_exchange_without_any_secret() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-old-1", 4000, 3600)));
    let out = t.run(&["-v", "-r"]);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("debug: POST") && err.contains("/oauth2/token") && err.contains("HTTP 200"),
        "{err}"
    );
    assert!(err.contains("refresh_token") && err.contains("locked"), "{err}");
    // One readable line per request: field names and client authentication, no Rust Debug.
    assert!(
        err.contains("[client_id grant_type refresh_token, Basic auth] → HTTP 200 ("),
        "{err}"
    );
    assert!(!err.contains("FormPost") && !err.contains("Some("), "{err}");
    // run() already checked: no token, refresh token or client secret in it.
    let mut cmd = t.cmd(&["-r", "--force-refresh"]);
    cmd.env("LIGHTFI_LOG", "debug");
    assert!(stderr(&t.run_cmd(cmd)).contains("debug: POST"));
}

#[test]
fn quiet_keeps_warnings_off_and_errors_on() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-margin-1", 3500, 3600)));
    t.server.fallback(Reply::status(503));
    let out = t.run(&["-q", "-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "tok-margin-1\n");
    assert_eq!(stderr(&out), "", "no warning with -q");
    let out = t.run(&["-q", "-r", "--profile", "none", "--home", "/nonexistent-lightfi"]);
    assert!(stderr(&out).contains("error:"), "errors stay");
}

#[test]
fn status_all_lists_every_profile_and_its_login() {
    let t = TestEnv::new();
    std::fs::write(
        t.home().join("config.toml"),
        format!("[default]\nclient_id = \"{CLIENT_ID}\"\n[staging]\nclient_id = \"staging-id\"\n[broken]\n"),
    )
    .unwrap();
    t.seed(Some("refresh-0"), Some(("tok-status-all", 60, 3600)));
    let mut cmd = t.cmd(&["status", "--all", "--json"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID").env_remove("LIGHTFI_CLIENT_SECRET");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    t.assert_no_leak(&out.stdout);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["profile"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("default")["logged_in"], true);
    assert_eq!(row("staging")["logged_in"], false);
    assert_eq!(row("staging")["client_id"], "staging-id");
    assert!(
        row("broken")["problem"].as_str().unwrap().contains("no client id"),
        "{rows}"
    );
    let mut cmd = t.cmd(&["status", "--all"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID").env_remove("LIGHTFI_CLIENT_SECRET");
    let text = stdout(&t.run_cmd(cmd));
    assert!(
        text.lines().any(|l| l.starts_with("default") && l.contains(" yes ")),
        "{text}"
    );
}
