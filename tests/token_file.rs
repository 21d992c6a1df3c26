//! `token_file`: a token another program keeps fresh (a Vault or OpenBao
//! Agent template, a mounted Secret), served as it is in every format:
//! no client, no server, no store; its expiry from the JSON or the JWT.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A JWT-shaped token with these claims (unsigned: nothing here verifies it).
fn jwt(claims: &str) -> String {
    format!("eyJhbGciOiJub25lIn0.{}.sig", URL_SAFE_NO_PAD.encode(claims))
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A home with `content` in `agent/token` (outside the store folder).
fn with_file(content: &str) -> (TestEnv, PathBuf) {
    let t = TestEnv::new();
    let dir = t.home().join("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("token");
    std::fs::write(&path, content).unwrap();
    (t, path)
}

/// `lightfi-token ARGS` with only the token file: no client id, secret or
/// OAuth URL anywhere.
fn served(t: &TestEnv, path: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = t.cmd(args);
    cmd.env_remove("LIGHTFI_CLIENT_ID")
        .env_remove("LIGHTFI_CLIENT_SECRET")
        .env_remove("LIGHTFI_OAUTH_URL")
        .env("LIGHTFI_TOKEN_FILE", path);
    cmd
}

fn run(t: &TestEnv, path: &std::path::Path, args: &[&str]) -> Output {
    t.run_cmd(served(t, path, args))
}

/// Nothing was asked of a server, and no token store was written.
#[track_caller]
fn assert_untouched(t: &TestEnv) {
    assert!(t.server.requests().is_empty());
    let stored: Vec<_> = std::fs::read_dir(t.home().join("tokens"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        stored.iter().all(|name| name == "serve.key"),
        "the store was written: {stored:?}"
    );
}

#[test]
fn json_with_expires_at_is_served_without_a_client() {
    let at = rfc3339(now() + 3600);
    let (t, path) = with_file(&format!(
        "{{\"access_token\":\"opaque-rendered\",\"expires_at\":\"{at}\"}}\n"
    ));
    t.forbid("opaque-rendered");
    let out = run(&t, &path, &["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "opaque-rendered\n");
    assert_eq!(stderr(&out), "");
    let json: serde_json::Value = serde_json::from_slice(&run(&t, &path, &[]).stdout).unwrap();
    assert_eq!(json["expires_at"], at.as_str());
    let status = run(&t, &path, &["status", "--json"]);
    assert_exit(&status, 0);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["token_file"], path.to_str().unwrap());
    assert_eq!(status["access_token"]["expires_at"], at.as_str());
    assert_untouched(&t);
}

#[test]
fn the_flag_and_the_config_key_name_the_file_too() {
    let (t, path) = with_file(&jwt(&format!(r#"{{"exp":{}}}"#, now() + 3600)));
    let mut cmd = t.cmd(&["-r", "--token-file", path.to_str().unwrap()]);
    cmd.env_remove("LIGHTFI_CLIENT_ID");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    std::fs::write(
        t.home().join("config.toml"),
        format!("[ci]\ntoken_file = \"{}\"\n", path.display()),
    )
    .unwrap();
    let mut cmd = t.cmd(&["-r", "--profile", "ci"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID").env_remove("LIGHTFI_OAUTH_URL");
    let by_config = t.run_cmd(cmd);
    assert_exit(&by_config, 0);
    assert_eq!(stdout(&by_config), stdout(&out));
    assert_untouched(&t);
}

#[test]
fn expires_in_counts_from_the_files_modification_time() {
    let (t, path) = with_file("{\"access_token\":\"tok\",\"expires_in\":3600}");
    let touch = |age: i64| {
        let status = Command::new("touch")
            .args(["-d", &format!("@{}", now() - age)])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
    };
    touch(60);
    let json: serde_json::Value = serde_json::from_slice(&run(&t, &path, &[]).stdout).unwrap();
    let left = json["expires_in"].as_i64().unwrap();
    assert!((3400..=3540).contains(&left), "{json}");
    // Written 3500 s ago: inside the 300 s margin, served with a warning.
    touch(3500);
    let out = run(&t, &path, &["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "tok\n");
    assert!(stderr(&out).contains("expires in"), "{}", stderr(&out));
    // Written two hours ago: expired.
    touch(7200);
    let out = run(&t, &path, &["-r"]);
    assert_exit(&out, 5);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("the token file {} expired at", path.display()))
            && err.contains("is the agent that renders it running?"),
        "{err}"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn a_raw_jwt_takes_its_expiry_from_exp_and_an_opaque_one_cannot_be_served() {
    let exp = now() + 1800;
    let token = jwt(&format!(r#"{{"sub":"machine","exp":{exp}}}"#));
    let (t, path) = with_file(&format!("\n  {token}\n\n"));
    t.forbid(&token);
    let out = run(&t, &path, &[]);
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["access_token"].as_str(), json["expires_at"].as_str()),
        (Some(token.as_str()), Some(rfc3339(exp).as_str()))
    );

    std::fs::write(&path, "opaque-without-expiry\n").unwrap();
    t.forbid("opaque-without-expiry");
    let out = run(&t, &path, &["-r"]);
    assert_exit(&out, 5);
    assert!(
        stderr(&out).contains(&format!("cannot tell when the token in {} expires", path.display())),
        "{}",
        stderr(&out)
    );
    // A JWT past its exp is expired, near it is warned about.
    std::fs::write(&path, jwt(&format!(r#"{{"exp":{}}}"#, now() - 5))).unwrap();
    assert_exit(&run(&t, &path, &["-r"]), 5);
    std::fs::write(&path, jwt(&format!(r#"{{"exp":{}}}"#, now() + 100))).unwrap();
    let near = run(&t, &path, &["-r", "--min-valid", "600"]);
    assert_exit(&near, 0);
    assert!(stderr(&near).contains("expires in"), "{}", stderr(&near));
    assert_untouched(&t);
}

#[test]
fn every_output_format_serves_the_file() {
    let at = rfc3339(now() + 3600);
    let (t, path) = with_file(&format!("{{\"access_token\":\"file-tok\",\"expires_at\":\"{at}\"}}"));
    t.forbid("file-tok");
    assert_eq!(stdout(&run(&t, &path, &["-r"])), "file-tok\n");
    assert_eq!(
        stdout(&run(&t, &path, &["--format", "header"])),
        "Authorization: Bearer file-tok\n"
    );
    let cred: serde_json::Value =
        serde_json::from_slice(&run(&t, &path, &["--format", "exec-credential"]).stdout).unwrap();
    assert_eq!(
        (
            cred["status"]["token"].as_str(),
            cred["status"]["expirationTimestamp"].as_str()
        ),
        (Some("file-tok"), Some(at.as_str()))
    );
    let mut git = served(&t, &path, &["git-credential", "get"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    git.stdin
        .take()
        .unwrap()
        .write_all(b"protocol=https\nhost=api.lightfi.example\n\n")
        .unwrap();
    let git = git.wait_with_output().unwrap();
    assert_exit(&git, 0);
    assert!(stdout(&git).contains("password=file-tok\n"), "{}", stdout(&git));
    let exec = run(
        &t,
        &path,
        &[
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$LIGHTFI_ACCESS_TOKEN $LIGHTFI_TOKEN_EXPIRES_AT\"",
        ],
    );
    assert_eq!(stdout(&exec), format!("file-tok {at}\n"), "{}", stderr(&exec));
    assert_eq!(serve_once(&t, &path)["access_token"], "file-tok");
    assert_untouched(&t);
}

/// Start `serve` on the token file, ask it for the token once, stop it.
fn serve_once(t: &TestEnv, path: &std::path::Path) -> serde_json::Value {
    let key_out = run(t, path, &["serve", "--show-key"]);
    assert_exit(&key_out, 0);
    let key = stdout(&key_out).trim_end().to_string();
    t.forbid(&key);
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = served(t, path, &["serve", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains(" at http://127.0.0.1:"));
    assert!(listening, "serve did not answer");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let request =
        format!("GET /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Lightfi-Key: {key}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    serde_json::from_str(body).unwrap()
}

#[test]
fn never_a_refresh_or_a_login() {
    let (t, path) = with_file(&jwt(&format!(r#"{{"exp":{}}}"#, now() - 60)));
    let out = run(&t, &path, &["-r", "--force-refresh"]);
    assert_exit(&out, 5);
    let out = run(&t, &path, &["login"]);
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("does not apply"), "{}", stderr(&out));
    assert_untouched(&t);
}

#[test]
fn a_missing_fifo_or_oversized_file_is_refused() {
    let (t, path) = with_file("");
    // Empty: nothing to serve.
    assert_exit(&run(&t, &path, &["-r"]), 5);
    let missing = t.home().join("agent/absent");
    let out = run(&t, &missing, &["-r"]);
    assert_exit(&out, 5);
    assert!(stderr(&out).contains("cannot read the token file"), "{}", stderr(&out));
    // A FIFO would block a reader forever: refused without opening it for long.
    let fifo = t.home().join("agent/fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = output_within(served(&t, &fifo, &["-r"]), Duration::from_secs(60));
    assert_exit(&out, 5);
    assert!(stderr(&out).contains("not a regular file"), "{}", stderr(&out));
    let big = format!("{{\"access_token\":\"{}\",\"expires_in\":60}}", "a".repeat(70 * 1024));
    std::fs::write(&path, big).unwrap();
    let out = run(&t, &path, &["-r"]);
    assert_exit(&out, 5);
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    assert_untouched(&t);
}
