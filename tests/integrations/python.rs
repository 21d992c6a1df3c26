//! `integrations/python/lightfi_auth.py` with the real requests and httpx
//! (sync and async), and `integrations/httpie/` with the real httpie and xh,
//! all from the venv `.ci/run` creates, against the API stub.

use std::process::Output;

use crate::common::*;
use crate::support::*;

const TOKEN: &str = "python-access-token";
const KINDS: [&str; 3] = ["requests", "httpx", "httpx-async"];

/// Run `drive_python.py KIND URL N` with lightfi-token behind a counting shim.
fn drive(t: &TestEnv, shim: &CountingShim, kind: &str, url: &str, n: usize) -> Output {
    let driver = repo().join("tests/integrations/drive_python.py");
    let mut cmd = tool(t, venv_bin("python"), &[&shim.dir]);
    cmd.env("PYTHONPATH", snippet_path("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(driver)
        .args([kind, url, &n.to_string()]);
    run_ok(t, cmd)
}

#[test]
fn python_helpers_send_the_token_and_reuse_it() {
    for kind in KINDS {
        let t = TestEnv::new();
        t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
        let shim = CountingShim::new(&t);
        let api = ApiStub::start(&[TOKEN]);
        let out = drive(&t, &shim, kind, &format!("{}/v1/sites", api.url), 3);
        assert_eq!(statuses(&out), [200, 200, 200], "{kind}");
        assert_eq!(api.authorizations(), vec![bearer(TOKEN); 3], "{kind}");
        assert!(api.seen().iter().all(|s| s.body.contains(r#""n""#)), "{kind}");
        assert_eq!(shim.runs(), 1, "{kind}: one lightfi-token run for three requests");
    }
}

#[test]
fn python_helpers_refetch_once_after_a_401() {
    for kind in KINDS {
        let t = TestEnv::new();
        // The API no longer takes the cached token (revoked, say); the
        // token endpoint's next one (jwt_like(1)) is accepted.
        t.seed(Some("refresh-0"), Some(("revoked-access", 60, 3600)));
        let shim = CountingShim::new(&t);
        let api = ApiStub::start(&[&jwt_like(1)]);
        let out = drive(&t, &shim, kind, &format!("{}/v1/sites", api.url), 2);
        assert_eq!(statuses(&out), [200, 200], "{kind}");
        assert_eq!(
            api.authorizations(),
            [bearer("revoked-access"), bearer(&jwt_like(1)), bearer(&jwt_like(1))],
            "{kind}"
        );
        let seen = api.seen();
        assert_eq!(seen[0].body, seen[1].body, "{kind}: the retry sends the same body");
        assert_eq!(shim.runs(), 2, "{kind}: one more run, with --force-refresh");
        assert_eq!(t.server.token_requests().len(), 1, "{kind}");
    }
}

#[test]
fn python_helpers_do_not_refresh_again_when_the_api_keeps_saying_401() {
    for kind in KINDS {
        let t = TestEnv::new();
        t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
        let shim = CountingShim::new(&t);
        let api = ApiStub::start(&[]);
        let out = drive(&t, &shim, kind, &format!("{}/v1/sites", api.url), 3);
        assert_eq!(statuses(&out), [401, 401, 401], "{kind}");
        // First request: cached token, then one forced refresh and a retry.
        // Later ones: no new refresh so soon after the last one.
        assert_eq!(api.seen().len(), 4, "{kind}");
        assert_eq!(t.server.token_requests().len(), 1, "{kind}");
        assert_eq!(shim.runs(), 2, "{kind}");
    }
}

#[test]
fn python_helpers_do_not_keep_a_token_inside_the_expiry_margin() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), None);
    // A 30 s token: lightfi-token keeps serving it (its margin is capped at
    // half the lifetime), but the helper's 60 s margin must not reuse it.
    t.server.fallback(Reply::Fresh {
        expires_in: 30,
        rotate: false,
    });
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[&jwt_like(1), &jwt_like(2)]);
    let out = drive(&t, &shim, "requests", &format!("{}/v1/sites", api.url), 2);
    assert_eq!(statuses(&out), [200, 200]);
    assert_eq!(shim.runs(), 2, "asked lightfi-token again for the second request");
}

#[test]
fn python_helper_reports_login_required() {
    let t = TestEnv::new();
    let shim = CountingShim::new(&t);
    let api = ApiStub::start(&[TOKEN]);
    let mut cmd = tool(&t, venv_bin("python"), &[&shim.dir]);
    cmd.env("PYTHONPATH", snippet_path("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(repo().join("tests/integrations/drive_python.py"))
        .args(["requests", &format!("{}/v1/sites", api.url), "1"]);
    let out = cmd.output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("LightfiTokenError"), "{err}");
    assert!(err.contains("lightfi-token exited with status 3"), "{err}");
    assert!(err.contains("run `lightfi-token login`"), "{err}");
    assert_eq!(api.seen().len(), 0);
}

/// Run `line` in bash with `lightfi-httpie.sh` sourced and the venv's `http`
/// and `xh` on PATH.
fn httpie_bash(t: &TestEnv, line: &str) -> Output {
    let venv = venv_bin("http").parent().unwrap().to_path_buf();
    venv_bin("xh");
    let script = format!(
        "set -o pipefail\n. '{}'\n{line}\n",
        snippet_path("httpie/lightfi-httpie.sh").display()
    );
    let mut cmd = tool(t, system_tool("bash"), &[&venv]);
    cmd.arg("-c").arg(script);
    let out = cmd.output().expect("run bash");
    t.assert_no_leak(&out.stderr);
    out
}

#[test]
fn httpie_and_xh_readme_commands_send_the_token() {
    const PROD_API: &str = "https://api.lightfi.example";
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let mut ran = 0;
    for line in sh_lines(&snippet("httpie/README.md")) {
        if line.starts_with(". ") {
            assert!(line.ends_with("/lightfi-httpie.sh"), "{line}");
            continue;
        }
        assert!(line.contains(PROD_API), "every example targets the API: {line}");
        let api = ApiStub::start(&[TOKEN]);
        let out = httpie_bash(&t, &line.replace(PROD_API, &api.url));
        assert_exit(&out, 0);
        assert!(stdout(&out).contains(r#""ok""#), "{line}\n{}", stdout(&out));
        let seen = api.seen();
        if line.contains("/v1/files/") {
            assert_eq!(seen.len(), 2, "{line}: {seen:?}");
            assert_eq!(seen[0].authorization, bearer(TOKEN), "{line}");
            assert_eq!(seen[1].path, "/after-redirect");
            assert_eq!(
                seen[1].authorization, None,
                "{line}: dropped on the redirect to another host"
            );
        } else {
            assert_eq!(api.authorizations(), vec![bearer(TOKEN)], "{line}");
        }
        if line.contains("name=Depot") {
            assert_eq!(seen[0].method, "POST");
            assert!(seen[0].body.contains("Depot"), "{line}: {}", seen[0].body);
        }
        ran += 1;
    }
    assert!(ran >= 9, "the README's examples were found and run ({ran})");
}

#[test]
fn lhttp_and_lxh_when_logged_out_exit_3() {
    let t = TestEnv::new();
    let api = ApiStub::start(&[TOKEN]);
    for function in ["lhttp", "lxh"] {
        let out = httpie_bash(&t, &format!("{function} --ignore-stdin {}/v1/sites", api.url));
        assert_exit(&out, 3);
        assert!(stderr(&out).contains("lightfi-token login"), "{}", stderr(&out));
    }
    assert_eq!(api.seen().len(), 0);
}

#[test]
fn python_helpers_do_not_send_the_token_across_hosts_on_a_redirect() {
    for kind in KINDS {
        let t = TestEnv::new();
        t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
        let shim = CountingShim::new(&t);
        let api = ApiStub::start(&[TOKEN]);
        let out = drive(&t, &shim, kind, &format!("{}/v1/files/latest", api.url), 1);
        assert_eq!(statuses(&out), [200], "{kind}");
        let seen = api.seen();
        assert_eq!(seen.len(), 2, "{kind}: {seen:?}");
        assert_eq!(seen[0].authorization, bearer(TOKEN), "{kind}");
        assert_eq!(seen[1].path, "/after-redirect", "{kind}");
        assert_eq!(seen[1].authorization, None, "{kind}: dropped for the other host");
    }
}

#[test]
fn python_helpers_do_not_answer_another_hosts_401_with_the_token() {
    for kind in KINDS {
        let t = TestEnv::new();
        t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
        let shim = CountingShim::new(&t);
        let api = ApiStub::start(&[TOKEN]);
        let out = drive(&t, &shim, kind, &format!("{}/v1/protected-files/latest", api.url), 1);
        assert_eq!(statuses(&out), [401], "{kind}");
        for s in api.seen() {
            if s.host.starts_with("localhost") {
                assert_eq!(
                    s.authorization, None,
                    "{kind}: the other host never gets the token: {s:?}"
                );
            }
        }
        assert_eq!(
            t.server.token_requests().len(),
            0,
            "{kind}: no refresh for another host's 401"
        );
    }
}
