//! `integrations/postman/`: newman (the Postman collection runner) runs the
//! collection and its pre-request script against `lightfi-token serve`, and
//! the request reaches the API stub with the right token.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::support::*;

const TOKEN: &str = "postman-access-token";

/// The environment file from the snippet, with serve's URL and key filled in,
/// written next to the test's home (the key stays out of newman's argv).
fn environment(t: &TestEnv, serve_url: &str, key: &str) -> PathBuf {
    let mut env: serde_json::Value =
        serde_json::from_str(&snippet("postman/lightfi.postman_environment.json")).expect("environment JSON");
    for value in env["values"].as_array_mut().unwrap() {
        match value["key"].as_str().unwrap() {
            "lightfi_token_url" => {
                assert_eq!(value["value"], "http://127.0.0.1:8787/token");
                value["value"] = format!("{serve_url}/token").into();
            }
            "lightfi_key" => value["value"] = key.into(),
            other => panic!("unexpected variable {other}"),
        }
    }
    let path = t.home().join("postman-environment.json");
    std::fs::write(&path, env.to_string()).unwrap();
    path
}

fn newman(t: &TestEnv, environment: &PathBuf, api: &ApiStub) -> std::process::Output {
    newman_with(
        t,
        &snippet_path("postman/lightfi.postman_collection.json"),
        environment,
        api,
    )
}

fn newman_with(t: &TestEnv, collection: &Path, environment: &PathBuf, api: &ApiStub) -> std::process::Output {
    let mut cmd = tool(t, node_tool("newman"), &[]);
    cmd.arg("run")
        .arg(collection)
        .arg("--environment")
        .arg(environment)
        .args(["--env-var", &format!("base_url={}", api.url)])
        .args(["--reporters", "cli", "--color", "off", "--disable-unicode"]);
    let out = cmd.output().expect("run newman");
    t.assert_no_leak(&out.stdout);
    t.assert_no_leak(&out.stderr);
    out
}

#[test]
fn collection_script_is_the_snippet_file() {
    let collection: serde_json::Value =
        serde_json::from_str(&snippet("postman/lightfi.postman_collection.json")).expect("collection JSON");
    let event = &collection["event"][0];
    assert_eq!(event["listen"], "prerequest");
    let exec: Vec<&str> = event["script"]["exec"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        exec.join("\n"),
        snippet("postman/pre-request.js").trim_end(),
        "the collection embeds pre-request.js as it is"
    );
}

#[test]
fn newman_runs_the_collection_with_a_token_from_serve() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let serve = Serve::start(&t);
    let api = ApiStub::start(&[TOKEN]);
    let env = environment(&t, &serve.url, &serve.key);
    let out = newman(&t, &env, &api);
    assert_exit(&out, 0);
    assert_eq!(api.authorizations(), vec![Some(format!("Bearer {TOKEN}"))]);
    assert_eq!(api.seen()[0].path, "/v1/sites");
    let log = serve.log_with("GET /token → 200");
    assert!(log.contains("GET /token → 200"), "{log}");
    t.assert_no_leak(serve.log().as_bytes());
}

#[test]
fn newman_with_a_wrong_key_says_what_serve_answered() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let serve = Serve::start(&t);
    let api = ApiStub::start(&[TOKEN]);
    let env = environment(&t, &serve.url, "not-the-key-not-the-key-not-the-key");
    let out = newman(&t, &env, &api);
    assert_ne!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("lightfi-token serve answered 401"), "{text}");
    assert!(text.contains("--show-key"), "the hint names the fix:\n{text}");
    assert_eq!(api.seen().len(), 0, "the request was not sent without a token");
}

#[test]
fn newman_when_logged_out_says_to_log_in() {
    let t = TestEnv::new();
    let serve = Serve::start(&t);
    let api = ApiStub::start(&[TOKEN]);
    let env = environment(&t, &serve.url, &serve.key);
    let out = newman(&t, &env, &api);
    assert_ne!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("lightfi-token serve answered 503"), "{text}");
    assert!(text.contains("lightfi-token login"), "{text}");
    assert_eq!(api.seen().len(), 0, "the request was not sent without a token");
}

#[test]
fn newman_without_serve_says_to_start_it() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let serve = Serve::start(&t);
    let key = serve.key.clone();
    drop(serve);
    let api = ApiStub::start(&[TOKEN]);
    let nothing_there = format!("http://127.0.0.1:{}", free_port());
    let env = environment(&t, &nothing_there, &key);
    let out = newman(&t, &env, &api);
    assert_ne!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("cannot reach"), "{text}");
    assert!(text.contains("start `lightfi-token serve`"), "{text}");
    assert_eq!(api.seen().len(), 0, "the request was not sent without a token");
}

#[test]
fn setup_postman_refuses_port_0() {
    let t = TestEnv::new();
    let out_dir = t.home().join("postman");
    let out = t.run(&["setup", "postman", "--out", out_dir.to_str().unwrap(), "--port", "0"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--port 0"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "nothing written");
}

#[test]
fn setup_postman_writes_files_newman_uses_and_a_rotated_key_locks_them_out() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let serve = Serve::start(&t);
    t.forbid(&serve.key);
    let api = ApiStub::start(&[TOKEN]);
    let port = serve.url.rsplit(':').next().unwrap().to_string();
    let out_dir = t.home().join("postman");
    let setup = || {
        let out = t.run(&["setup", "postman", "--out", out_dir.to_str().unwrap(), "--port", &port]);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), "", "messages go to stderr");
        let err = stderr(&out);
        assert!(err.contains("sync") && err.contains("serve --rotate-key"), "{err}");
        t.assert_no_leak(err.as_bytes());
    };
    setup();

    let env_file = out_dir.join("lightfi.postman_environment.json");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env_file), 0o600, "it holds the key");
    let env: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    let value = |name: &str| {
        env["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == name)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(value("lightfi_token_url"), format!("{}/token", serve.url).as_str());
    assert_eq!(value("lightfi_key"), serve.key.as_str());
    assert_eq!(
        std::fs::read_to_string(out_dir.join("pre-request.js")).unwrap(),
        snippet("postman/pre-request.js")
    );
    let collection = out_dir.join("lightfi.postman_collection.json");
    assert_eq!(
        std::fs::read_to_string(&collection).unwrap(),
        snippet("postman/lightfi.postman_collection.json")
    );

    // The files as written, run against the real serve: the API gets the token.
    let out = newman_with(&t, &collection, &env_file, &api);
    assert_exit(&out, 0);
    assert_eq!(api.authorizations(), vec![Some(format!("Bearer {TOKEN}"))]);

    // After --rotate-key, the running serve refuses the old key at once.
    assert_exit(&t.run(&["serve", "--rotate-key"]), 0);
    let out = newman_with(&t, &collection, &env_file, &api);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("lightfi-token serve answered 401"),
        "{}",
        stdout(&out)
    );
    assert_eq!(api.seen().len(), 1, "no request without a token");
    let log = serve.log_with("GET /token → 401");
    assert!(log.contains("GET /token → 401"), "{log}");

    // Written again, with the new key: it works again.
    setup();
    let new_key: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&env_file).unwrap()).unwrap();
    let new_key = new_key["values"][1]["value"].as_str().unwrap().to_string();
    assert_ne!(new_key, serve.key);
    t.forbid(&new_key);
    let out = newman_with(&t, &collection, &env_file, &api);
    assert_exit(&out, 0);
    assert_eq!(api.seen().len(), 2);
    t.assert_no_leak(serve.log().as_bytes());
}
