//! `integrations/kubernetes/kubeconfig.yaml`: the real kubectl runs
//! lightfi-token as its exec credential plugin against a local HTTPS API
//! server that answers `/version` only for the right bearer token.

use crate::common::*;
use crate::support::*;

const TOKEN: &str = "kube-access-token";

/// `kubectl --kubeconfig <the snippet, pointed at the stub> get --raw /version`,
/// with lightfi-token found on PATH as the snippet expects, and kubectl's
/// HOME and cache in the test's temp folder.
fn kubectl_version(t: &TestEnv, stub: &TlsApiStub) -> std::process::Output {
    let dir = t.home().join("kube");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &stub.ca_pem).unwrap();
    let kubeconfig = snippet("kubernetes/kubeconfig.yaml");
    for placeholder in ["https://k8s.lightfi.example:6443", "/path/to/lightfi-cluster-ca.pem"] {
        assert!(kubeconfig.contains(placeholder), "{placeholder}");
    }
    let kubeconfig = kubeconfig
        .replace("https://k8s.lightfi.example:6443", &stub.url)
        .replace("/path/to/lightfi-cluster-ca.pem", ca.to_str().unwrap());
    let path = dir.join("kubeconfig.yaml");
    std::fs::write(&path, kubeconfig).unwrap();
    let mut cmd = tool(t, system_tool("kubectl"), &[]);
    cmd.env("KUBECACHEDIR", dir.join("cache"))
        .arg("--kubeconfig")
        .arg(&path)
        .args(["get", "--raw", "/version"]);
    let out = cmd.output().expect("run kubectl");
    t.assert_no_leak(&out.stderr);
    out
}

#[test]
fn kubectl_gets_the_token_from_the_exec_plugin() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let stub = TlsApiStub::start(&[TOKEN]);
    let out = kubectl_version(&t, &stub);
    assert_exit(&out, 0);
    let version: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kubectl printed the JSON");
    assert_eq!(version["gitVersion"], "v1.32.0");
    let auths = stub.authorizations();
    assert!(!auths.is_empty());
    assert!(
        auths.iter().all(|a| a.as_deref() == Some(&*format!("Bearer {TOKEN}"))),
        "{auths:?}"
    );
    assert_eq!(t.server.requests().len(), 0, "served from the cache");
}

#[test]
fn kubectl_refreshes_an_expired_token_through_the_plugin() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("expired-access", 4000, 3600)));
    let stub = TlsApiStub::start(&[&jwt_like(1)]);
    let out = kubectl_version(&t, &stub);
    assert_exit(&out, 0);
    assert_eq!(t.server.token_requests().len(), 1);
    assert_eq!(
        stub.authorizations().last().unwrap().as_deref(),
        Some(&*format!("Bearer {}", jwt_like(1)))
    );
}

#[test]
fn kubectl_logged_out_fails_with_the_login_hint() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let stub = TlsApiStub::start(&[TOKEN]);
    assert_exit(&kubectl_version(&t, &stub), 0);
    std::fs::remove_file(t.store_path()).unwrap();
    let out = kubectl_version(&t, &stub);
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("run `lightfi-token login`"),
        "kubectl shows our hint:\n{err}"
    );
    assert!(
        err.contains("exit code 3"),
        "kubectl reports the plugin's exit code:\n{err}"
    );
}
