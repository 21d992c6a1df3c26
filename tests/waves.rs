//! Under a failing server: one request per wave. 64 callers that find the
//! token expired at once cause one caller's tries (at most 3 token
//! requests), and all of them end the same way, none on the lock timeout.

#![cfg(unix)]

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;

const CALLERS: usize = 64;

/// `lightfi-token -r ARGS` run by [`CALLERS`] processes at once.
fn wave(t: &TestEnv, args: &[&str]) -> Vec<Output> {
    let mut argv = vec!["-r"];
    argv.extend_from_slice(args);
    let children: Vec<_> = (0..CALLERS)
        .map(|_| {
            t.cmd(&argv)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run lightfi-token")
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            t.assert_no_leak(&out.stderr);
            out
        })
        .collect()
}

/// At most one caller's three tries reached the server.
#[track_caller]
fn assert_one_callers_tries(t: &TestEnv) {
    let made = t.server.token_requests().len();
    assert!(made <= 3, "{made} token requests");
}

fn codes(outs: &[Output]) -> Vec<Option<i32>> {
    let mut codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
    codes.dedup();
    codes
}

#[test]
fn a_failing_server_gets_one_callers_tries_per_wave() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    t.server.fallback(Reply::status(503));
    let outs = wave(&t, &[]);
    assert_eq!(codes(&outs), [Some(5)], "{}", stderr(&outs[0]));
    assert_one_callers_tries(&t);
    assert_eq!(t.store()["refresh_token"], "refresh-0", "the login is kept");
}

#[test]
fn a_hanging_server_gets_one_callers_tries_per_wave() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    t.server
        .fallback(Reply::Delay(Duration::from_millis(2500), Box::new(Reply::fresh())));
    let outs = wave(&t, &["--http-timeout", "2", "--lock-timeout", "60"]);
    assert_eq!(codes(&outs), [Some(5)], "{}", stderr(&outs[0]));
    assert_one_callers_tries(&t);
}

#[test]
fn a_busy_server_with_retry_after_gets_one_callers_tries_per_wave() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    t.server.fallback(Reply::Raw {
        status: 429,
        headers: vec![("Retry-After".into(), "1".into())],
        body: String::new(),
    });
    let outs = wave(&t, &[]);
    assert_eq!(codes(&outs), [Some(5)], "{}", stderr(&outs[0]));
    assert_one_callers_tries(&t);
}

#[test]
fn while_the_token_is_still_valid_every_caller_gets_it_with_a_warning() {
    let t = TestEnv::new();
    // Inside the 300 s margin, not yet expired.
    t.seed(Some("refresh-0"), Some(("tok-margin", 3500, 3600)));
    t.server.fallback(Reply::status(503));
    let outs = wave(&t, &[]);
    assert_eq!(codes(&outs), [Some(0)]);
    assert!(outs.iter().all(|o| stdout(o) == "tok-margin\n"));
    assert!(outs.iter().all(|o| stderr(o).contains("using the cached access token")));
    assert_one_callers_tries(&t);
}

#[test]
fn a_caller_soon_after_a_failure_does_not_ask_again() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    t.server.fallback(Reply::status(503));
    assert_exit(&t.run(&["-r"]), 5);
    let asked = t.server.token_requests().len();
    for _ in 0..10 {
        assert_exit(&t.run(&["-r"]), 5);
    }
    assert_eq!(t.server.token_requests().len(), asked, "no request during the back-off");
    // Unless a person asks for one.
    assert_exit(&t.run(&["-r", "--force-refresh"]), 5);
    assert!(t.server.token_requests().len() > asked, "--force-refresh asks now");
    let asked = t.server.token_requests().len();
    assert_exit(&t.run(&["-r"]), 5);
    assert_eq!(t.server.token_requests().len(), asked);
    // The server is back: after the back-off, the next caller gets a token.
    t.server.fallback(Reply::fresh());
    std::thread::sleep(Duration::from_secs(6));
    let out = t.run(&["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
}
