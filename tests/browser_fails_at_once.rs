//! A `$BROWSER` that exits non-zero at once opened nothing: the login says
//! so and shows the address again, then keeps waiting for the callback
//! (a browser opened by hand still finishes it).

#![cfg(unix)]

mod common;

use std::process::Stdio;

use common::*;

#[test]
fn a_browser_that_fails_at_once_is_reported_with_the_address() {
    let t = TestEnv::new();
    let mut cmd = t.cmd(&["login"]);
    cmd.env("BROWSER", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (said, reader) = stderr_once_it_says(&mut child, "the browser command `false` failed");
    let still_waiting = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let err = reader.join().unwrap();
    assert!(said, "did not answer: {err}");
    assert!(still_waiting, "the login goes on waiting for the callback: {err}");
    let address = format!("{}/authorize?", t.oauth_url());
    assert_eq!(err.matches(&address).count(), 2, "the address again: {err}");
    t.assert_no_leak(err.as_bytes());
}
