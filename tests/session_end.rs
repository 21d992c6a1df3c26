//! A login that says when it ends: the login's time is recorded, `status`
//! shows the end (counted from an import "at the latest", unknown with
//! LIGHTFI_REFRESH_TOKEN), the last day is warned about on stderr once a
//! day (never in exec-credential output), and a refresh token refused after
//! the end is a session that ended, not a failure.

mod common;

use std::process::{Output, Stdio};

use common::*;

fn import(t: &TestEnv, refresh: &str) -> Output {
    t.forbid(refresh);
    let mut cmd = t.cmd(&["login", "--refresh-token-stdin"]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), refresh.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    t.assert_no_leak(&out.stderr);
    out
}

fn validity(t: &TestEnv, value: &str) {
    std::fs::write(
        t.home().join("config.toml"),
        format!("[default]\nrefresh_token_validity = \"{value}\"\n"),
    )
    .unwrap();
}

fn edit_store(t: &TestEnv, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut store = t.store();
    edit(&mut store);
    std::fs::write(t.store_path(), store.to_string()).unwrap();
}

#[test]
fn status_shows_when_the_session_ends() {
    let t = TestEnv::new();
    assert_exit(&import(&t, "imported-refresh"), 0);
    assert!(t.store()["logged_in_at"].is_string(), "{}", t.store());
    let out = t.run(&["status"]);
    assert!(
        stdout(&out).contains("session:       ends at the latest in 29 d 23 h (20"),
        "{}",
        stdout(&out)
    );
    // A browser login's end is exact.
    edit_store(&t, |s| {
        s.as_object_mut().unwrap().remove("imported");
    });
    validity(&t, "3650d");
    let out = t.run(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        status["session"].as_str().unwrap().starts_with("ends in 3649 d 23 h"),
        "{status}"
    );
    assert!(status["session_ends_at"].is_string());

    let mut cmd = t.cmd(&["status"]);
    cmd.env("LIGHTFI_REFRESH_TOKEN", "ci-refresh");
    t.forbid("ci-refresh");
    let out = t.run_cmd(cmd);
    assert!(
        stdout(&out).contains("session:       end unknown (LIGHTFI_REFRESH_TOKEN"),
        "{}",
        stdout(&out)
    );

    // A store written before the time was recorded is still a login.
    edit_store(&t, |s| {
        s.as_object_mut().unwrap().remove("logged_in_at");
    });
    let out = t.run(&["status"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("session:       end unknown"), "{}", stdout(&out));
}

#[test]
fn the_last_day_is_warned_about_once_a_day_on_stderr_only() {
    let t = TestEnv::new();
    assert_exit(&import(&t, "imported-refresh"), 0);
    validity(&t, "12h");
    let out = t.run(&[]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("the session of profile `default` ends at the latest in 0 d 11 h"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("session"), "stdout carries only the token");
    let out = t.run(&[]);
    assert!(!stderr(&out).contains("session"), "once a day: {}", stderr(&out));
    // Never through exec-credential, even when not said yet today.
    std::fs::remove_file(t.home().join("tokens").join("default.session-end")).unwrap();
    let out = t.run(&["--format", "exec-credential"]);
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("session"), "{}", stderr(&out));
}

#[test]
fn a_refusal_after_the_end_says_the_session_ended() {
    let t = TestEnv::new();
    assert_exit(&import(&t, "imported-refresh"), 0);
    validity(&t, "12h");
    edit_store(&t, |s| {
        s["logged_in_at"] = "2020-01-01T00:00:00Z".into();
        s["access"]["expires_at"] = "2020-01-01T01:00:00Z".into();
    });
    t.server.script([Reply::oauth_error(400, "invalid_grant")]);
    let out = t.run(&[]);
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains("the session of profile `default` ended at 2020-01-01T12:00:00Z"),
        "{err}"
    );
    assert!(!err.contains("rejected"), "{err}");
}
