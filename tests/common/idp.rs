//! The test IdP (`tests/idp`: panva's oidc-provider configured like the
//! Cognito hosted UI) as a child process of a test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::common::{CLIENT_ID, CLIENT_SECRET, TestTools};

/// The test IdP, stopped (stdin closed, then waited for) on drop.
pub struct Idp {
    child: Child,
    stdin: Option<ChildStdin>,
    pub oauth_url: String,
}

pub fn idp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("idp")
}

impl Idp {
    pub fn start(redirect_port: u16, rotate: bool, access_ttl: u64) -> Idp {
        Idp::start_with_secret(redirect_port, rotate, access_ttl, CLIENT_SECRET)
    }

    /// As [`Idp::start`], with `secret` as the confidential client's secret
    /// (a rotation: the administrator changed it).
    pub fn start_with_secret(redirect_port: u16, rotate: bool, access_ttl: u64, secret: &str) -> Idp {
        TestTools::Idp.ensure();
        let dir = idp_dir();
        let mut child = Command::new("node")
            .arg(dir.join("server.js"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("IDP_REDIRECT_URI", format!("http://localhost:{redirect_port}"))
            .env("IDP_CLIENT_ID", CLIENT_ID)
            .env("IDP_CLIENT_SECRET", secret)
            .env("IDP_ROTATE", if rotate { "1" } else { "0" })
            .env("IDP_ACCESS_TTL", access_ttl.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node (is Node.js installed?)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("the IdP did not start: {line:?}"));
        let oauth_url = ready["oauth_url"].as_str().unwrap().to_string();
        Idp {
            stdin: child.stdin.take(),
            child,
            oauth_url,
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
