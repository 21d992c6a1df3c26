//! `integrations/curl/`: the README's command lines and the `lcurl` function,
//! run by the real curl against the API stub.

use crate::common::*;
use crate::support::*;

const TOKEN: &str = "curl-access-token";
const PROD_API: &str = "https://api.lightfi.example";

fn logged_in() -> TestEnv {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    t
}

/// Run `line` in `shell` with `lightfi-curl.sh` sourced, as a user's shell would.
fn run_in(t: &TestEnv, shell: &str, line: &str) -> std::process::Output {
    let script = format!(". '{}'\n{line}\n", snippet_path("curl/lightfi-curl.sh").display());
    let mut cmd = tool(t, system_tool(shell), &[]);
    cmd.arg("-c").arg(script);
    let out = cmd.output().expect("run the shell");
    t.assert_no_leak(&out.stderr);
    out
}

fn curl_version() -> (u32, u32) {
    let out = std::process::Command::new(system_tool("curl"))
        .arg("--version")
        .output()
        .unwrap();
    let text = stdout(&out);
    let v = text.split_whitespace().nth(1).expect("curl --version");
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn curl_readme_commands_send_the_token() {
    let t = logged_in();
    let lines = sh_lines(&snippet("curl/README.md"));
    let mut ran = 0;
    for line in &lines {
        if line.starts_with(". ") {
            assert!(line.ends_with("/lightfi-curl.sh"), "{line}");
            continue;
        }
        assert!(line.contains(PROD_API), "every example targets the API: {line}");
        if line.contains("--variable") && curl_version() < (8, 3) {
            // Documented as "needs curl ≥ 8.3, not tested here".
            continue;
        }
        let api = ApiStub::start(&[TOKEN]);
        let out = run_in(
            &t,
            "bash",
            &format!("set -o pipefail\n{}", line.replace(PROD_API, &api.url)),
        );
        assert_exit(&out, 0);
        assert!(stdout(&out).contains(r#""ok":true"#), "{line}\n{}", stdout(&out));
        let bearer = Some(format!("Bearer {TOKEN}"));
        if line.contains("/v1/files/") {
            // The stub redirects /v1/files/ to itself under the name localhost:
            // another host for curl.
            let seen = api.seen();
            assert_eq!(seen.len(), 2, "{line}: {seen:?}");
            assert_eq!(seen[0].authorization, bearer, "{line}");
            assert_eq!(seen[1].path, "/after-redirect");
            let expected = if line.contains("--location-trusted") {
                bearer
            } else {
                None
            };
            assert_eq!(seen[1].authorization, expected, "{line}");
        } else {
            assert_eq!(api.authorizations(), vec![bearer], "{line}");
        }
        ran += 1;
    }
    assert!(ran >= 5, "the README's examples were found and run ({ran})");
    assert_eq!(t.server.requests().len(), 0, "the cached token was used");
}

#[test]
fn lcurl_function_sends_the_token_in_bash_and_dash() {
    let t = logged_in();
    for shell in ["bash", "dash"] {
        let api = ApiStub::start(&[TOKEN]);
        let out = run_in(&t, shell, &format!("lcurl -sS {}/v1/sites", api.url));
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), r#"{"ok":true,"path":"/v1/sites"}"#);
        assert_eq!(api.authorizations(), vec![Some(format!("Bearer {TOKEN}"))], "{shell}");
    }
}

#[test]
fn lcurl_when_logged_out_exits_3_without_sending_a_request() {
    let t = TestEnv::new();
    let api = ApiStub::start(&[TOKEN]);
    let out = run_in(&t, "bash", &format!("lcurl -sS {}/v1/sites", api.url));
    assert_exit(&out, 3);
    assert!(stderr(&out).contains("lightfi-token login"), "{}", stderr(&out));
    assert_eq!(api.seen().len(), 0);
}
