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

// ---------------------------------------------------------------------------
// `lightfi-token setup kubectl`, then the real kubectl with what it wrote.

/// A kubeconfig of the test's own, named by KUBECONFIG for every program.
struct Kube<'a> {
    t: &'a TestEnv,
    config: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl<'a> Kube<'a> {
    fn new(t: &'a TestEnv) -> Kube<'a> {
        let dir = t.home().join("kube");
        std::fs::create_dir_all(&dir).unwrap();
        Kube {
            t,
            config: dir.join("config"),
            dir,
        }
    }

    fn kubectl(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = tool(self.t, system_tool("kubectl"), &[]);
        cmd.env("KUBECONFIG", &self.config)
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .args(args);
        let out = cmd.output().expect("run kubectl");
        self.t.assert_no_leak(&out.stderr);
        out
    }

    fn setup(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.t.cmd(&["setup", "kubectl"]);
        cmd.args(args).env("KUBECONFIG", &self.config);
        let out = self.t.run_cmd(cmd);
        self.t.assert_no_leak(&out.stdout);
        out
    }

    fn view(&self) -> serde_json::Value {
        let out = self.kubectl(&["config", "view", "-o", "json"]);
        assert_exit(&out, 0);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn named<'v>(config: &'v serde_json::Value, kind: &str, name: &str) -> Option<&'v serde_json::Value> {
    config[kind].as_array()?.iter().find(|e| e["name"] == name)
}

#[test]
fn setup_kubectl_adds_a_user_and_context_that_kubectl_then_uses() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let stub = TlsApiStub::start(&[TOKEN]);
    let kube = Kube::new(&t);
    // The cluster is there already, with its CA: setup must leave it so.
    let ca = kube.dir.join("ca.pem");
    std::fs::write(&ca, &stub.ca_pem).unwrap();
    let server = format!("--server={}", stub.url);
    let ca_flag = format!("--certificate-authority={}", ca.display());
    assert_exit(
        &kube.kubectl(&["config", "set-cluster", "lightfi-test", &server, &ca_flag]),
        0,
    );
    let before = std::fs::read_to_string(&kube.config).unwrap();

    // --dry-run prints the kubectl commands and changes nothing.
    let out = kube.setup(&["--cluster", "lightfi-test", "--dry-run"]);
    assert_exit(&out, 0);
    let bin = std::fs::canonicalize(&*BIN).unwrap();
    assert_eq!(
        stdout(&out),
        format!(
            "kubectl config set-credentials lightfi --exec-api-version=client.authentication.k8s.io/v1 \
             --exec-command={} --exec-arg=--format --exec-arg=exec-credential --exec-interactive-mode=IfAvailable \
             --exec-provide-cluster-info=false\n\
             kubectl config set-context lightfi@lightfi-test --cluster=lightfi-test --user=lightfi\n",
            bin.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&kube.config).unwrap(), before);

    // Twice: the second run changes nothing. --server for an existing cluster is not used.
    let out = kube.setup(&[
        "--cluster",
        "lightfi-test",
        "--server",
        "https://elsewhere.example:6443",
    ]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("left as it is"), "{}", stderr(&out));
    let after_first = std::fs::read_to_string(&kube.config).unwrap();
    let out = kube.setup(&["--cluster", "lightfi-test"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("nothing to change"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&kube.config).unwrap(), after_first);

    let config = kube.view();
    let exec = &named(&config, "users", "lightfi").unwrap()["user"]["exec"];
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(std::fs::canonicalize(exec["command"].as_str().unwrap()).unwrap(), bin);
    assert_eq!(exec["args"], serde_json::json!(["--format", "exec-credential"]));
    assert_eq!(exec["interactiveMode"], "IfAvailable");
    assert_eq!(exec["provideClusterInfo"], false);
    let cluster = &named(&config, "clusters", "lightfi-test").unwrap()["cluster"];
    assert_eq!(cluster["server"], stub.url.as_str());
    // kubectl writes the CA's path relative to the kubeconfig.
    let ca_path = cluster["certificate-authority"].as_str().unwrap();
    assert!(ca_path.ends_with("ca.pem"), "the CA is kept: {cluster}");
    assert_eq!(config["current-context"], "", "the current context is not changed");

    // kubectl sends our token through the plugin.
    let out = kube.kubectl(&["--context", "lightfi@lightfi-test", "get", "--raw", "/version"]);
    assert_exit(&out, 0);
    let auths = stub.authorizations();
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(auths.last().unwrap().as_deref(), Some(&*bearer));
    // (A kubectl that picks its version by the server's asks for /version
    // itself, before the user exists: without a token.)
    assert!(
        auths.iter().all(|a| a.is_none() || a.as_deref() == Some(&*bearer)),
        "{auths:?}"
    );

    // --remove: our user and context go, the cluster stays as it was.
    let out = kube.setup(&["--cluster", "lightfi-test", "--remove"]);
    assert_exit(&out, 0);
    assert_eq!(std::fs::read_to_string(&kube.config).unwrap(), before);
    let out = kube.setup(&["--cluster", "lightfi-test", "--remove"]);
    assert!(stderr(&out).contains("nothing to remove"), "{}", stderr(&out));
}

#[test]
fn setup_kubectl_adds_a_missing_cluster_and_never_takes_over_other_entries() {
    let t = TestEnv::new();
    let kube = Kube::new(&t);
    // Loopback, where nothing listens: some kubectl builds ask the current
    // cluster for its version, and tests touch only loopback.
    let server = format!("https://127.0.0.1:{}", free_port());
    // A new cluster needs an https server.
    let out = kube.setup(&["--cluster", "prod"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--server"), "{}", stderr(&out));
    assert_exit(
        &kube.setup(&["--cluster", "prod", "--server", "http://127.0.0.1:6443"]),
        2,
    );
    assert!(!kube.config.exists(), "nothing written");

    // Another profile: its own user name, and --profile for the plugin.
    let out = kube.setup(&["--cluster", "prod", "--server", &server, "--profile", "staging"]);
    assert_exit(&out, 0);
    let config = kube.view();
    assert_eq!(
        named(&config, "clusters", "prod").unwrap()["cluster"]["server"],
        server.as_str()
    );
    let exec = &named(&config, "users", "lightfi-staging").unwrap()["user"]["exec"];
    assert_eq!(
        exec["args"],
        serde_json::json!(["--format", "exec-credential", "--profile", "staging"])
    );
    let context = &named(&config, "contexts", "lightfi-staging@prod").unwrap()["context"];
    assert_eq!(
        (&context["cluster"], &context["user"]),
        (&"prod".into(), &"lightfi-staging".into())
    );

    // A user of the same name that is not ours is neither overwritten nor removed.
    assert_exit(
        &kube.kubectl(&["config", "set-credentials", "admin", "--username=admin"]),
        0,
    );
    let before = std::fs::read_to_string(&kube.config).unwrap();
    let out = kube.setup(&["--cluster", "prod", "--user", "admin"]);
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("does not run lightfi-token"), "{}", stderr(&out));
    let out = kube.setup(&["--cluster", "prod", "--user", "admin", "--remove"]);
    assert_exit(&out, 0);
    assert_eq!(std::fs::read_to_string(&kube.config).unwrap(), before);
}
