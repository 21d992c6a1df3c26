//! `integrations/cargo/config.toml`: the real cargo fetches a crate from a
//! local sparse registry that requires authentication (`auth-required`),
//! getting the token through `cargo:token-from-stdout lightfi-token -r`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use sha2::Digest;

use crate::common::*;
use crate::support::*;

const TOKEN: &str = "cargo-access-token";
const CRATE: &str = "lightfi-demo";

/// Path and `Authorization` header of a request to the registry.
type Hit = (String, Option<String>);

/// A sparse registry on 127.0.0.1: `index/config.json` (with
/// `auth-required`), the index file of one crate and its `.crate`, each
/// answered only when `Authorization` is exactly `expected`.
struct Registry {
    index_url: String,
    seen: Arc<Mutex<Vec<Hit>>>,
    server: Arc<tiny_http::Server>,
}

impl Registry {
    fn start(expected: String, crate_file: Vec<u8>) -> Registry {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let base = format!("http://127.0.0.1:{}", server.server_addr().to_ip().unwrap().port());
        let seen = Arc::new(Mutex::new(vec![]));
        let cksum = hex(&sha2::Sha256::digest(&crate_file));
        let (srv, log, root) = (server.clone(), seen.clone(), base.clone());
        std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let auth = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string());
                log.lock().unwrap().push((request.url().to_string(), auth.clone()));
                let response = if auth.as_deref() != Some(expected.as_str()) {
                    tiny_http::Response::from_data(b"{\"errors\":[{\"detail\":\"unauthorized\"}]}".to_vec())
                        .with_status_code(401)
                        .with_header(
                            "WWW-Authenticate: Cargo login_url=\"https://cargo.lightfi.example/me\""
                                .parse::<tiny_http::Header>()
                                .unwrap(),
                        )
                } else {
                    match request.url() {
                        "/index/config.json" => tiny_http::Response::from_data(
                            format!(r#"{{"dl":"{root}/dl/{{crate}}/{{version}}/download","api":"{root}","auth-required":true}}"#)
                                .into_bytes(),
                        ),
                        "/index/li/gh/lightfi-demo" => tiny_http::Response::from_data(
                            format!(r#"{{"name":"{CRATE}","vers":"0.1.0","deps":[],"cksum":"{cksum}","features":{{}},"yanked":false}}"#)
                                .into_bytes(),
                        ),
                        "/dl/lightfi-demo/0.1.0/download" => tiny_http::Response::from_data(crate_file.clone()),
                        _ => tiny_http::Response::from_data(b"not found".to_vec()).with_status_code(404),
                    }
                };
                let _ = request.respond(response);
            }
        });
        Registry {
            index_url: format!("sparse+{base}/index/"),
            seen,
            server,
        }
    }

    fn seen(&self) -> Vec<Hit> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cargo and rustc that run these tests, so no rustup proxy (and no
/// real CARGO_HOME or HOME) is involved.
fn cargo(t: &TestEnv, cargo_home: &Path) -> Command {
    let cargo = PathBuf::from(env!("CARGO"));
    let mut cmd = tool(t, &cargo, &[]);
    cmd.env("CARGO_HOME", cargo_home)
        .env("RUSTC", cargo.with_file_name("rustc"))
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_NET_OFFLINE", "false");
    cmd
}

/// A real `.crate` of a one-file library, made by `cargo package`.
fn package_demo_crate(t: &TestEnv, cargo_home: &Path) -> Vec<u8> {
    let dir = t.home().join("demo-crate");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{CRATE}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             description = \"test crate\"\nlicense = \"MIT\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
    let mut cmd = cargo(t, cargo_home);
    cmd.current_dir(&dir)
        .args(["package", "--no-verify", "--allow-dirty", "--quiet"]);
    run_ok(t, cmd);
    std::fs::read(dir.join(format!("target/package/{CRATE}-0.1.0.crate"))).expect("cargo package made the .crate")
}

/// A project depending on the crate from registry `lightfi`, configured by
/// `config` (the snippet, with the index URL pointed at the stub); runs
/// `cargo fetch`.
fn fetch_with(t: &TestEnv, config: &str, expected_authorization: String) -> (std::process::Output, Registry) {
    let cargo_home = t.home().join("cargo-home");
    let crate_file = package_demo_crate(t, &cargo_home);
    let registry = Registry::start(expected_authorization, crate_file);

    let project = t.home().join("consumer");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::create_dir_all(project.join(".cargo")).unwrap();
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\n{CRATE} = {{ version = \"0.1\", registry = \"lightfi\" }}\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(project.join("src/lib.rs"), "").unwrap();
    let prod = "sparse+https://cargo.lightfi.example/index/";
    assert!(config.contains(prod));
    std::fs::write(
        project.join(".cargo/config.toml"),
        config.replace(prod, &registry.index_url),
    )
    .unwrap();

    let mut cmd = cargo(t, &cargo_home);
    cmd.current_dir(&project).arg("fetch");
    let out = cmd.output().expect("run cargo fetch");
    t.assert_no_leak(&out.stderr);
    (out, registry)
}

fn assert_fetched_with(out: &std::process::Output, registry: &Registry, authorization: &str) {
    assert_exit(out, 0);
    let seen = registry.seen();
    for path in [
        "/index/config.json",
        "/index/li/gh/lightfi-demo",
        "/dl/lightfi-demo/0.1.0/download",
    ] {
        assert!(
            seen.iter()
                .any(|(p, a)| p == path && a.as_deref() == Some(authorization)),
            "{path} fetched with the token: {seen:?}"
        );
    }
}

#[test]
fn cargo_fetches_from_an_authenticated_registry_with_the_token() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let (out, registry) = fetch_with(&t, &snippet("cargo/config.toml"), TOKEN.to_string());
    assert_fetched_with(&out, &registry, TOKEN);
}

#[test]
fn cargo_bearer_variant_sends_bearer_token() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    let snippet = snippet("cargo/config.toml");
    let commented = snippet
        .lines()
        .find(|l| l.starts_with("# credential-provider = ["))
        .expect("the Bearer variant, commented out");
    let active = snippet
        .lines()
        .find(|l| l.starts_with("credential-provider = "))
        .unwrap();
    let config = snippet.replace(active, &commented[2..]).replace(commented, "");
    let (out, registry) = fetch_with(&t, &config, format!("Bearer {TOKEN}"));
    assert_fetched_with(&out, &registry, &format!("Bearer {TOKEN}"));
}

#[test]
fn cargo_logged_out_shows_the_login_hint() {
    let t = TestEnv::new();
    let (out, registry) = fetch_with(&t, &snippet("cargo/config.toml"), TOKEN.to_string());
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(err.contains("run `lightfi-token login`"), "{err}");
    assert!(registry.seen().iter().all(|(_, a)| a.is_none()), "no token was sent");
}
