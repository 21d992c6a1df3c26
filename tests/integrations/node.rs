//! `integrations/node/lightfi-fetch.mjs` with the machine's Node.js fetch,
//! against the API stub, lightfi-token behind a counting shim.

use std::process::Output;

use crate::common::*;
use crate::support::*;

const TOKEN: &str = "node-access-token";

fn drive(t: &TestEnv, shim: &CountingShim, url: &str, n: usize, mode: &str) -> Output {
    let mut cmd = tool(t, system_tool("node"), &[&shim.dir]);
    cmd.arg(repo().join("tests/integrations/drive_node.mjs"))
        .arg(snippet_path("node/lightfi-fetch.mjs"))
        .args([url, &n.to_string(), mode]);
    run_ok(t, cmd)
}

#[test]
fn node_fetch_sends_the_token_and_reuses_it() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[TOKEN]);
    let out = drive(&t, &shim, &format!("{}/v1/sites", api.url), 3, "sequential");
    assert_eq!(statuses(&out), [200, 200, 200]);
    assert_eq!(api.authorizations(), vec![bearer(TOKEN); 3]);
    assert!(api.seen().iter().all(|s| s.body == r#"{"n":1}"#));
    assert_eq!(shim.runs(), 1, "one lightfi-token run for three requests");
}

#[test]
fn node_fetch_parallel_requests_share_one_run() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[TOKEN]);
    let out = drive(&t, &shim, &format!("{}/v1/sites", api.url), 8, "parallel");
    assert_eq!(statuses(&out), [200; 8]);
    assert_eq!(shim.runs(), 1);
}

#[test]
fn node_fetch_refetches_once_after_a_401() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("revoked-access", 60, 3600)));
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[&jwt_like(1)]);
    let out = drive(&t, &shim, &format!("{}/v1/sites", api.url), 2, "sequential");
    assert_eq!(statuses(&out), [200, 200]);
    assert_eq!(
        api.authorizations(),
        [bearer("revoked-access"), bearer(&jwt_like(1)), bearer(&jwt_like(1))]
    );
    assert!(
        api.seen().iter().all(|s| s.body == r#"{"n":1}"#),
        "the retry sends the body again"
    );
    assert_eq!(shim.runs(), 2);
    assert_eq!(t.server.token_requests().len(), 1);
}

#[test]
fn node_fetch_does_not_refresh_again_when_the_api_keeps_saying_401() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[]);
    let out = drive(&t, &shim, &format!("{}/v1/sites", api.url), 3, "sequential");
    assert_eq!(statuses(&out), [401, 401, 401]);
    assert_eq!(api.seen().len(), 4);
    assert_eq!(shim.runs(), 2);
    assert_eq!(t.server.token_requests().len(), 1);
}

#[test]
fn node_fetch_does_not_keep_a_token_inside_the_expiry_margin() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    t.server.fallback(Reply::Fresh {
        expires_in: 30,
        rotate: false,
    });
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[&jwt_like(1), &jwt_like(2)]);
    let out = drive(&t, &shim, &format!("{}/v1/sites", api.url), 2, "sequential");
    assert_eq!(statuses(&out), [200, 200]);
    assert_eq!(shim.runs(), 2);
}

#[test]
fn node_fetch_reports_login_required() {
    let t = TestEnv::new();
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[TOKEN]);
    let mut cmd = tool(&t, system_tool("node"), &[&shim.dir]);
    cmd.arg(repo().join("tests/integrations/drive_node.mjs"))
        .arg(snippet_path("node/lightfi-fetch.mjs"))
        .args([&format!("{}/v1/sites", api.url), "1", "sequential"]);
    let out = cmd.output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("LightfiTokenError"), "{err}");
    assert!(err.contains("run `lightfi-token login`"), "{err}");
    assert_eq!(api.seen().len(), 0);
}

#[test]
fn node_fetch_does_not_send_the_token_across_hosts_on_a_redirect() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[TOKEN]);
    let out = drive(&t, &shim, &format!("{}/v1/files/latest", api.url), 1, "sequential");
    assert_eq!(statuses(&out), [200]);
    let seen = api.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].authorization, bearer(TOKEN));
    assert_eq!(seen[1].path, "/after-redirect");
    assert_eq!(seen[1].authorization, None, "dropped for the other host");
}

#[test]
fn node_fetch_does_not_answer_another_hosts_401_with_the_token() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[TOKEN]);
    let out = drive(
        &t,
        &shim,
        &format!("{}/v1/protected-files/latest", api.url),
        1,
        "sequential",
    );
    assert_eq!(statuses(&out), [401]);
    let seen = api.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].host, format!("localhost:{}", api.port));
    assert_eq!(seen[1].authorization, None);
    assert_eq!(shim.runs(), 1, "no refresh for another host's 401");
}
