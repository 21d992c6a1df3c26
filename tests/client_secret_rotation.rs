//! Two client secrets during a rotation (`client_secrets = ["new", "old"]`):
//! a login and a refresh try the next one when the server refuses one, and
//! `status` and `doctor` say which one works. Against the test IdP, whose
//! client secret changes between runs.

#![cfg(target_os = "linux")] // shares the Linux helpers with tests/e2e_idp.rs

mod common;
#[path = "common/idp.rs"]
mod idp;
#[path = "common/interactive.rs"]
mod interactive;

use std::process::{Command, Output};

use common::*;
use idp::{Idp, idp_dir};
use interactive::free_port;

/// A profile in config.toml whose client has `secrets`, at `idp`.
fn configure(t: &TestEnv, idp: &Idp, port: u16, secrets: &[&str]) {
    let list: Vec<String> = secrets.iter().map(|s| format!("\"{s}\"")).collect();
    let text = format!(
        "[default]\nclient_id = \"{CLIENT_ID}\"\nclient_secrets = [{}]\noauth_url = \"{}\"\n\
         redirect_uri = \"http://localhost:{port}\"\n",
        list.join(", "),
        idp.oauth_url
    );
    let path = t.home().join("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// `lightfi-token ARGS` with the client from config.toml and the scripted browser.
fn cmd(t: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = t.cmd(args);
    cmd.env_remove("LIGHTFI_CLIENT_ID")
        .env_remove("LIGHTFI_OAUTH_URL")
        .env("BROWSER", idp_dir().join("browser.sh"));
    cmd
}

fn run(t: &TestEnv, args: &[&str]) -> Output {
    t.run_cmd(cmd(t, args))
}

#[test]
fn the_next_secret_is_tried_and_the_working_one_is_named() {
    let port = free_port();
    let t = TestEnv::public();
    t.forbid("secret-new");
    t.forbid("secret-old");

    // Before the rotation: the server still has the old secret.
    let idp = Idp::start_with_secret(port, false, 60, "secret-old");
    configure(&t, &idp, port, &["secret-new", "secret-old"]);
    let out = run(&t, &["login"]);
    assert_exit(&out, 0);
    let out = run(&t, &["status"]);
    assert!(
        stdout(&out).contains("the server accepted client_secrets[1] last"),
        "{}",
        stdout(&out)
    );
    let out = run(&t, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["client_secret_in_use"], 1);
    drop(idp);

    // The administrator switched to the new secret.
    let idp = Idp::start_with_secret(port, false, 60, "secret-new");
    configure(&t, &idp, port, &["secret-new", "secret-old"]);
    assert_exit(&run(&t, &["login"]), 0);
    let out = run(&t, &["status"]);
    assert!(
        stdout(&out).contains("the server accepted client_secrets[0] last"),
        "{}",
        stdout(&out)
    );
    // A refresh is refused with the first secret and goes on with the next.
    configure(&t, &idp, port, &["secret-old", "secret-new"]);
    let out = run(&t, &["--force-refresh"]);
    assert_exit(&out, 0);
    let out = run(&t, &["doctor"]);
    assert!(
        stdout(&out).contains("the server accepted client_secrets[1] last"),
        "{}",
        stdout(&out)
    );
    // Only the stale one left: exit 4 before any browser, naming the client.
    configure(&t, &idp, port, &["secret-old", "secret-older"]);
    let out = run(&t, &["login"]);
    assert_exit(&out, 4);
    assert!(
        stderr(&out).contains("none of the client_secrets given is right"),
        "{}",
        stderr(&out)
    );
}
