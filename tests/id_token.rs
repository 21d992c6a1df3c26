//! `--token id`: the ID token instead of the access token, in every format
//! and command, with its own expiry; a login without one says how to get one.

#![cfg(unix)]

mod common;

use common::*;

#[test]
fn every_format_hands_out_the_id_token() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let out = t.run(&["--token", "id", "-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "id-token-1\n");
    // Cached now: the same, without a request.
    let out = t.run(&["--token", "id"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id_token"], "id-token-1");
    assert!(v.get("access_token").is_none(), "{v}");
    assert_eq!(v["token_type"], "Bearer");
    let mut cmd = t.cmd(&["--format", "header"]);
    cmd.env("LIGHTFI_TOKEN_KIND", "id");
    assert_eq!(stdout(&t.run_cmd(cmd)), "Authorization: Bearer id-token-1\n");
    // The access token is still what a plain call prints.
    assert_eq!(stdout(&t.run(&["-r"])), format!("{}\n", jwt_like(1)));
    assert_eq!(t.server.token_requests().len(), 1);
}

#[test]
fn exec_sets_lightfi_id_token() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let out = t.run(&[
        "--token",
        "id",
        "exec",
        "--",
        "sh",
        "-c",
        "echo \"$LIGHTFI_ID_TOKEN|${LIGHTFI_ACCESS_TOKEN:-none}\"",
    ]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "id-token-1|none\n");
}

#[test]
fn the_config_file_can_ask_for_the_id_token() {
    let t = TestEnv::new();
    std::fs::write(t.home().join("config.toml"), "[default]\ntoken = \"id\"\n").unwrap();
    t.seed(Some("refresh-0"), None);
    let out = t.run(&["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "id-token-1\n");
    let out = t.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sources"]["token_kind"], "config.toml [default]");
}

#[test]
fn a_login_without_an_id_token_says_to_add_openid() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.server.fallback(Reply::json(
        200,
        r#"{"access_token":"tok-only-access","token_type":"Bearer","expires_in":3600}"#,
    ));
    t.forbid("tok-only-access");
    let out = t.run(&["--token", "id", "-r"]);
    assert_exit(&out, 4);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("openid"), "{}", stderr(&out));
    let mut cmd = t.cmd(&["-r"]);
    cmd.env("LIGHTFI_TOKEN_KIND", "refresh");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("LIGHTFI_TOKEN_KIND"), "{}", stderr(&out));
}
