//! `lightfi-token exec -- CMD`: the token reaches CMD's environment and
//! nobody's argv; CMD's exit status and signals come back unchanged.

#![cfg(unix)]

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use common::*;

fn sh(t: &TestEnv, script: &str) -> std::process::Output {
    t.run(&["exec", "--", "sh", "-c", script])
}

#[test]
fn token_and_expiry_are_in_the_environment() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let expires_at = t.store()["access"]["expires_at"].as_str().unwrap().to_string();
    let out = sh(
        &t,
        r#"printf '%s\n%s\n' "$LIGHTFI_ACCESS_TOKEN" "$LIGHTFI_TOKEN_EXPIRES_AT""#,
    );
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("seeded-tok\n{expires_at}\n"));
    assert_eq!(stderr(&out), "");
    assert_eq!(t.server.requests().len(), 0);
}

#[test]
fn expired_token_is_refreshed_before_the_command_runs() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("old-tok", 4000, 3600)));
    let out = sh(&t, r#"printf '%s' "$LIGHTFI_ACCESS_TOKEN""#);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), jwt_like(1));
    assert_eq!(t.server.token_requests().len(), 1);
}

#[test]
fn exit_status_is_forwarded() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    for code in [0, 1, 3, 7, 255] {
        assert_exit(&sh(&t, &format!("exit {code}")), code);
    }
}

#[test]
fn death_by_signal_is_forwarded() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    // Not SIGINT: a shell started in the background may inherit it ignored.
    for (name, number) in [
        ("TERM", libc::SIGTERM),
        ("USR1", libc::SIGUSR1),
        ("KILL", libc::SIGKILL),
    ] {
        let out = sh(&t, &format!("kill -{name} $$"));
        assert_eq!(out.status.signal(), Some(number), "SIG{name}: {:?}", out.status);
    }
}

#[test]
fn stdin_and_arguments_pass_through_untouched() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let mut cmd = t.cmd(&[
        "exec",
        "--",
        "sh",
        "-c",
        r#"cat; printf '|%s' "$@""#,
        "sh",
        "--format",
        "-r",
        "a b",
    ]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"from stdin").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "from stdin|--format|-r|a b");
}

#[test]
fn token_is_in_no_process_argv() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("argv-probe-token", 60, 3600)));
    // Every process's argv while CMD runs, as `ps` would show it.
    let out = sh(
        &t,
        r#"for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f" 2>/dev/null; echo; done"#,
    );
    assert_exit(&out, 0);
    let listing = stdout(&out);
    assert!(
        listing.contains("sh -c for f in"),
        "the listing saw CMD itself: {listing}"
    );
    assert!(!listing.contains("argv-probe-token"), "{listing}");
}

#[test]
fn missing_command_exits_127_and_unrunnable_126() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let out = t.run(&["exec", "--", "no-such-command-lightfi"]);
    assert_exit(&out, 127);
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(
        err.contains("cannot run `no-such-command-lightfi`: command not found"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");

    let script = t.home().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    let out = t.run(&["exec", "--", script.to_str().unwrap()]);
    assert_exit(&out, 126);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("cannot run"), "{}", stderr(&out));
}

#[test]
fn not_logged_in_exits_3_without_running_the_command() {
    let t = TestEnv::new();
    let marker = t.home().join("ran");
    let out = sh(&t, &format!("touch '{}'", marker.display()));
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("lightfi-token login"), "{}", stderr(&out));
    assert!(!marker.exists());
}

#[test]
fn a_command_is_required() {
    let t = TestEnv::new();
    assert_exit(&t.run(&["exec"]), 2);
    assert_exit(&t.run(&["exec", "--"]), 2);
}

#[test]
fn long_lived_secrets_are_not_passed_to_the_command() {
    let t = TestEnv::new();
    t.forbid("ci-refresh-token");
    let mut cmd = t.cmd(&[
        "exec",
        "--",
        "sh",
        "-c",
        r#"printf '[%s][%s]' "${LIGHTFI_REFRESH_TOKEN-unset}" "${LIGHTFI_CLIENT_SECRET-unset}""#,
    ]);
    cmd.env("LIGHTFI_REFRESH_TOKEN", "ci-refresh-token");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "[unset][unset]");
}

#[test]
fn min_valid_makes_a_long_command_start_with_a_longer_lived_token() {
    let t = TestEnv::new();
    // 20 minutes left: enough for the default margin, not for --min-valid 1800.
    t.seed(Some("refresh-0"), Some(("tok-20min-left", 2400, 3600)));
    let out = t.run(&["exec", "--", "sh", "-c", "echo $LIGHTFI_ACCESS_TOKEN"]);
    assert_eq!(stdout(&out), "tok-20min-left\n");
    let out = t.run(&[
        "exec",
        "--min-valid",
        "1800",
        "--",
        "sh",
        "-c",
        "echo $LIGHTFI_ACCESS_TOKEN",
    ]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
}
