//! `lightfi-token doctor`: each check against the fake token endpoint and a
//! temporary home, what it finds when something is wrong, and that no
//! secret the test made ever reaches its output.

#![cfg(unix)]

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use common::*;

/// `lightfi-token doctor ARGS` with a callback port that is free and the
/// token endpoint's probe answered as a Cognito token endpoint answers it.
fn doctor_cmd(t: &TestEnv, args: &[&str]) -> Command {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = t.cmd(&["doctor"]);
    cmd.args(args)
        .env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{port}"));
    cmd
}

fn run(t: &TestEnv, cmd: Command) -> Output {
    let out = t.run_cmd(cmd);
    t.assert_no_leak(&out.stdout);
    out
}

fn doctor(t: &TestEnv, args: &[&str]) -> Output {
    run(t, doctor_cmd(t, args))
}

/// The findings of `doctor --json`.
fn findings(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The finding named `check`.
fn finding<'a>(json: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {json}"))
}

#[track_caller]
fn assert_finding(json: &serde_json::Value, check: &str, status: &str, says: &str) {
    let f = finding(json, check);
    assert_eq!(f["status"], status, "{f}");
    let text = format!(
        "{} {}",
        f["message"].as_str().unwrap(),
        f["fix"].as_str().unwrap_or_default()
    );
    assert!(text.contains(says), "{check} should say {says:?}: {text}");
}

/// What a token endpoint answers a request without credentials.
fn answers_like_a_token_endpoint(t: &TestEnv) {
    t.server.script([Reply::oauth_error(400, "invalid_request")]);
}

#[test]
fn a_healthy_setup_passes_and_names_where_each_setting_came_from() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    // As lightfi-token writes them (the test seeds them with the umask's modes).
    std::fs::set_permissions(t.home().join("tokens"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(t.store_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    // The serve key exists too, and must not be shown either.
    let key = t.run(&["serve", "--show-key"]);
    t.forbid(stdout(&key).trim());
    answers_like_a_token_endpoint(&t);

    let out = doctor(&t, &[]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for line in [
        "ok    config: no ",
        "ok    settings: profile default (default)",
        &format!("client id {CLIENT_ID} (LIGHTFI_CLIENT_ID), client secret set (LIGHTFI_CLIENT_SECRET)"),
        &format!("oauth url {} (LIGHTFI_OAUTH_URL)", t.oauth_url()),
        "ok    store: ",
        "ok    login: refresh token stored",
        "ok    lock: ",
        "ok    callback_port: ",
        "ok    authorize: ",
        "ok    token_endpoint: ",
        "`invalid_request`",
        "ok    clock: this machine's clock is",
        "ok    git: git version",
        "ok    kubectl: kubectl",
        "all checks passed",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(!text.contains("refresh:"), "no refresh without --refresh:\n{text}");
    // The probe of the token endpoint carried no credential.
    let probes = t.server.token_requests();
    assert_eq!(probes.len(), 1);
    assert_eq!(probes[0].header("Authorization"), None);
    assert_eq!(probes[0].field("refresh_token"), None);
    assert_eq!(probes[0].field("grant_type"), Some("refresh_token"));

    answers_like_a_token_endpoint(&t);
    let out = doctor(&t, &["--json"]);
    assert_exit(&out, 0);
    let json = findings(&out);
    assert_eq!((json["ok"].as_bool(), json["failed"].as_u64()), (Some(true), Some(0)));
    let names: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "config",
            "settings",
            "store",
            "login",
            "keyring",
            "lock",
            "callback_port",
            "authorize",
            "token_endpoint",
            "clock",
            "git",
            "kubectl"
        ]
    );
    // Nothing was created or changed.
    assert!(!t.lock_path().exists());
}

#[test]
fn refresh_makes_one_real_refresh_and_reports_a_rejected_login() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    answers_like_a_token_endpoint(&t);
    let out = doctor(&t, &["--json", "--refresh"]);
    let json = findings(&out);
    assert_finding(&json, "refresh", "ok", "the server accepted the refresh token");
    assert_exit(&out, 0);
    let refreshes = t.server.token_requests();
    assert_eq!(refreshes.len(), 2, "the probe, then one refresh");
    assert_eq!(refreshes[1].field("refresh_token"), Some("refresh-0"));
    assert_eq!(
        t.store()["access"]["token"],
        jwt_like(1).as_str(),
        "stored as any refresh is"
    );

    answers_like_a_token_endpoint(&t);
    t.server.script([Reply::oauth_error(400, "invalid_grant")]);
    let out = doctor(&t, &["--refresh"]);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("FAIL  refresh: the server rejected the stored refresh token"),
        "{text}"
    );
    assert!(text.contains("fix: run `lightfi-token login`"), "{text}");
    let err = stderr(&out);
    assert!(
        err.contains("lightfi-token: error: doctor: 1 check(s) failed: refresh"),
        "{err}"
    );
}

#[test]
fn a_failing_refresh_is_a_failure_even_while_the_cached_token_works() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    answers_like_a_token_endpoint(&t);
    t.server.fallback(Reply::status(503));
    let out = doctor(&t, &["--json", "--refresh"]);
    assert_exit(&out, 1);
    let json = findings(&out);
    assert_finding(&json, "refresh", "fail", "the cached access token still works until");
    assert_finding(&json, "refresh", "fail", "503");
}

#[test]
fn loose_modes_and_a_held_lock_are_warnings_with_the_command_that_fixes_them() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let tokens = t.home().join("tokens");
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(t.store_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let _lock = t.hold_lock();
    answers_like_a_token_endpoint(&t);
    let out = doctor(&t, &["--json"]);
    assert_exit(&out, 0);
    let json = findings(&out);
    assert_finding(&json, "store", "warn", &format!("chmod 700 {}", tokens.display()));
    assert_finding(
        &json,
        "store",
        "warn",
        &format!("chmod 600 {}", t.store_path().display()),
    );
    assert_finding(&json, "lock", "warn", "is held by `");
    assert_finding(&json, "lock", "warn", &format!("process {}", std::process::id()));
    assert_finding(&json, "login", "ok", "refresh token stored");
    assert_eq!(json["warnings"], 2);
}

#[test]
fn a_taken_callback_port_a_wrong_url_and_a_far_clock_are_named() {
    let t = TestEnv::new();
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    t.server.script([Reply::status(404)]);
    t.server.authorize_date("Sun, 06 Nov 1994 08:49:37 GMT");
    let mut cmd = doctor_cmd(&t, &["--json"]);
    cmd.env("LIGHTFI_REDIRECT_URI", format!("http://localhost:{port}"));
    let out = run(&t, cmd);
    assert_exit(&out, 1);
    let json = findings(&out);
    assert_finding(&json, "callback_port", "fail", &format!("127.0.0.1:{port}"));
    assert_finding(
        &json,
        "callback_port",
        "fail",
        &format!("process {}", std::process::id()),
    );
    assert_finding(&json, "token_endpoint", "fail", "answered HTTP 404");
    assert_finding(&json, "token_endpoint", "fail", "check the OAuth URL");
    assert_finding(&json, "clock", "warn", "ahead of the server's");
    assert_finding(&json, "login", "warn", "lightfi-token login");
    assert_eq!(json["failed"], 2);
    assert!(
        stderr(&out).contains("2 check(s) failed: callback_port, token_endpoint"),
        "{}",
        stderr(&out)
    );
    drop(holder);
}

#[test]
fn an_unreachable_server_names_the_proxy_settings_without_their_passwords() {
    let t = TestEnv::new();
    let nothing = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = nothing.local_addr().unwrap().port();
    drop(nothing);
    t.set_oauth_url(&format!("http://127.0.0.1:{port}/oauth2"));
    t.forbid("proxy-password");
    let mut cmd = doctor_cmd(&t, &[]);
    cmd.env("HTTPS_PROXY", "http://someone:proxy-password@127.0.0.1:9")
        .env("NO_PROXY", "localhost");
    let out = run(&t, cmd);
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("FAIL  authorize: cannot reach"), "{text}");
    assert!(text.contains("FAIL  token_endpoint: cannot reach"), "{text}");
    assert!(
        text.contains("HTTPS_PROXY=http://127.0.0.1:9 (with credentials, not shown), NO_PROXY=localhost"),
        "{text}"
    );
    assert!(
        text.contains("clock: not compared: the authorization server could not be reached"),
        "{text}"
    );
    assert!(!text.contains("state="), "no authorize query in messages: {text}");
}

#[test]
fn a_profile_without_a_client_id_is_pointed_to_configure() {
    let t = TestEnv::new();
    let mut cmd = doctor_cmd(&t, &["--json"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID");
    let out = run(&t, cmd);
    assert_exit(&out, 1);
    let json = findings(&out);
    assert_finding(&json, "config", "fail", "no client id");
    let fix = finding(&json, "config")["fix"].as_str().unwrap_or_default().to_string();
    assert!(fix.contains("lightfi-token configure"), "{json}");
}

#[test]
fn a_config_problem_fails_and_the_tools_are_still_checked() {
    let t = TestEnv::new();
    let config = t.home().join("config.toml");
    std::fs::write(
        &config,
        "[default]\nclient_id = \"x\"\nclient_secret = \"file-secret\"\ncolor = 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    t.forbid("file-secret");
    let mut cmd = doctor_cmd(&t, &["--json"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID").env_remove("LIGHTFI_CLIENT_SECRET");
    let out = run(&t, cmd);
    assert_exit(&out, 1);
    let json = findings(&out);
    assert_finding(&json, "config", "fail", "line 4");
    assert_eq!(
        json["checks"].as_array().unwrap().len(),
        3,
        "config, git, kubectl: {json}"
    );
    assert_eq!(finding(&json, "git")["status"], "ok");

    // Readable by others, with a secret: a warning with the chmod to run.
    std::fs::write(
        &config,
        format!(
            "[default]\nclient_id = \"x\"\nclient_secret = \"file-secret\"\noauth_url = \"{}\"\n",
            t.oauth_url()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    answers_like_a_token_endpoint(&t);
    let mut cmd = doctor_cmd(&t, &["--json"]);
    cmd.env_remove("LIGHTFI_CLIENT_ID")
        .env_remove("LIGHTFI_CLIENT_SECRET")
        .env_remove("LIGHTFI_OAUTH_URL");
    let out = run(&t, cmd);
    assert_exit(&out, 0);
    let json = findings(&out);
    assert_finding(&json, "config", "warn", &format!("chmod 600 {}", config.display()));
    assert_finding(&json, "settings", "ok", "client secret set (config.toml [default])");
    assert_finding(&json, "token_endpoint", "ok", "invalid_request");

    // Writable by others: refused, as every command refuses it.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = doctor(&t, &["--json"]);
    assert_exit(&out, 1);
    assert_finding(&findings(&out), "config", "fail", "writable by every user");
}

#[test]
fn git_and_kubectl_set_up_by_setup_are_recognised() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    let kubeconfig = t.home().join("kubeconfig");
    // Loopback, where nothing listens (tests touch only loopback).
    let kube_server = format!(
        "https://127.0.0.1:{}",
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let bin = bin();
    let bin_dir = bin.parent().unwrap();
    // The build under test first on PATH, as after an install; nothing else
    // named lightfi-token (an installed one is taken off).
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&path_without_lightfi_token())),
    )
    .unwrap();
    for args in [
        &["setup", "git", "--host", "https://git.lightfi.example"][..],
        &["setup", "kubectl", "--cluster", "c", "--server", kube_server.as_str()][..],
    ] {
        let mut cmd = t.cmd(args);
        cmd.env("KUBECONFIG", &kubeconfig).env("PATH", &path);
        assert_exit(&t.run_cmd(cmd), 0);
    }
    answers_like_a_token_endpoint(&t);
    let mut cmd = doctor_cmd(&t, &["--json"]);
    cmd.env("KUBECONFIG", &kubeconfig).env("PATH", &path);
    let out = run(&t, cmd);
    let json = findings(&out);
    assert_finding(&json, "git", "ok", "credential helper for https://git.lightfi.example");
    assert_finding(
        &json,
        "kubectl",
        "ok",
        "kubeconfig users running lightfi-token: lightfi",
    );

    // lightfi-token no longer on git's PATH (even where one is installed:
    // this PATH has none): said, with the fix.
    answers_like_a_token_endpoint(&t);
    let mut cmd = doctor_cmd(&t, &["--json"]);
    cmd.env("KUBECONFIG", &kubeconfig)
        .env("PATH", path_without_lightfi_token());
    let json = findings(&run(&t, cmd));
    assert_finding(&json, "git", "warn", "not on PATH");
}

#[test]
fn doctor_starts_git_and_kubectl_without_the_secrets_in_their_environment() {
    let t = TestEnv::new();
    let tools = EnvRecordingTools::new(&t, &[("git", "echo '{}'; exit 0"), ("kubectl", "echo '{}'; exit 0")]);
    t.forbid("legacy-secret-value");
    t.forbid("ci-refresh-token-value");
    answers_like_a_token_endpoint(&t);
    let mut cmd = doctor_cmd(&t, &[]);
    cmd.env("PATH", &tools.path)
        .env("CLIENT_SECRET", "legacy-secret-value")
        .env("LIGHTFI_REFRESH_TOKEN", "ci-refresh-token-value");
    let out = run(&t, cmd);
    assert!(
        stdout(&out).contains("refresh token from LIGHTFI_REFRESH_TOKEN"),
        "{}",
        stdout(&out)
    );
    let dumped = tools.runs();
    for tool in ["git.", "kubectl."] {
        assert!(
            dumped.iter().any(|(name, _)| name.starts_with(tool)),
            "{tool} was run: {dumped:?}"
        );
    }
    for (name, env) in &dumped {
        assert!(
            env.contains("LIGHTFI_CLIENT_ID="),
            "{name}: the environment was passed on"
        );
        for var in ["CLIENT_SECRET=", "LIGHTFI_CLIENT_SECRET=", "LIGHTFI_REFRESH_TOKEN="] {
            assert!(!env.lines().any(|l| l.starts_with(var)), "{var} reached {name}");
        }
        t.assert_no_leak(env.as_bytes());
    }
}
