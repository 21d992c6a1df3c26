//! A login that cannot reach the server says "your stored login was kept"
//! only when there is a stored login: a first login has none to keep.

mod common;

use common::*;

/// An OAuth URL on a loopback port nobody listens on.
fn unreachable_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/oauth2")
}

#[test]
fn only_a_stored_login_is_said_to_be_kept() {
    let t = TestEnv::new();
    t.set_oauth_url(&unreachable_url());
    let out = t.run(&["login", "--no-browser"]);
    assert_exit(&out, 5);
    let err = stderr(&out);
    assert!(err.contains("cannot start the login"), "{err}");
    assert!(!err.contains("kept"), "nothing was stored: {err}");

    t.seed(Some("stored-refresh"), None);
    let out = t.run(&["login", "--no-browser"]);
    assert_exit(&out, 5);
    assert!(stderr(&out).contains("your stored login was kept"), "{}", stderr(&out));
    assert_eq!(t.store()["refresh_token"], "stored-refresh");
}
