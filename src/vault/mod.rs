//! The shared login of a fleet, kept in a HashiCorp Vault or OpenBao KV
//! version 2 secret (the same HTTP API on both): read it, write it with
//! check-and-set, delete it, and ask what the Vault token may do there.
//!
//! Writes carry `options.cas`: 0 writes only if the secret does not exist,
//! N only if the current version is N, so of machines that read the same
//! version exactly one writes the next. The client is built on the first
//! request; nothing here retries: the engine decides what a failure means.

mod record;

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

pub use record::{Lease, LeaseState, Record, lease_state, same_but_lease};

use crate::error::{Error, Result};
use crate::secret::VaultToken;

/// The most of an answer we read: a record is a few KiB.
const MAX_BODY: u64 = 1 << 20;
/// What KV version 2 says when `cas` is not the current version.
const CAS_MISMATCH: &str = "check-and-set parameter did not match";

/// Where the shared login lives and how to reach it, as resolved by the
/// configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `VAULT_ADDR`: `https://vault.example:8200`.
    pub addr: String,
    /// `VAULT_NAMESPACE`, sent as `X-Vault-Namespace` (Vault Enterprise, OpenBao).
    pub namespace: Option<String>,
    /// `VAULT_CACERT`: a PEM file of CA certificates trusted besides the system's.
    pub cacert: Option<PathBuf>,
    pub token: VaultToken,
    /// The KV version 2 mount (`secret`) and the secret's path below it (`lightfi-token/ci`).
    pub mount: String,
    pub path: String,
    pub timeout: Duration,
}

/// A value with the KV version it was read at or written as.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub version: u64,
    pub value: T,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    Written {
        version: u64,
    },
    /// Someone wrote first: the version was not the one given.
    Conflict,
}

/// The token's capabilities on the secret's two paths (`sys/capabilities-self`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// On `<mount>/data/<path>`: `read`, `update` for a runner; `create` to seed.
    pub data: Vec<String>,
    /// On `<mount>/metadata/<path>`: `delete` to log out (removes every version).
    pub metadata: Vec<String>,
}

/// An answer: the status and at most [`MAX_BODY`] bytes of body.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

pub struct Vault {
    settings: Settings,
    client: OnceLock<Result<Client, String>>,
}

impl Vault {
    pub fn new(settings: Settings) -> Vault {
        Vault {
            settings,
            client: OnceLock::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `<mount>/data/<path>`, as policies and messages name it.
    pub fn data_path(&self) -> String {
        format!("{}/data/{}", self.settings.mount, self.settings.path)
    }

    /// `<mount>/metadata/<path>`.
    pub fn metadata_path(&self) -> String {
        format!("{}/metadata/{}", self.settings.mount, self.settings.path)
    }

    /// The current version, or None when there is none (never written, or
    /// deleted with [`Vault::delete_all`]).
    pub fn read(&self) -> Result<Option<Versioned<Record>>> {
        let path = self.data_path();
        let answer = self.send(self.request(reqwest::Method::GET, &path)?, &path)?;
        match answer.status {
            200 => self.parse_read(&answer.body).map(Some),
            // `{"errors":[]}`: no such secret. A route error is a wrong mount.
            404 if server_errors(&answer.body).is_empty() => Ok(None),
            _ => Err(self.refused(&answer, &path, "read")),
        }
    }

    /// Write `record` as the next version if the current one is `cas` (0:
    /// only if there is none).
    pub fn write_cas(&self, record: &Record, cas: u64) -> Result<CasOutcome> {
        let path = self.data_path();
        let data = serde_json::to_value(record)
            .map_err(|e| Error::unexpected(format!("cannot write the login for {path}: {e}")))?;
        let body = json!({ "options": { "cas": cas }, "data": data });
        let answer = self.send(with_json(self.request(reqwest::Method::POST, &path)?, &body), &path)?;
        let capability = if cas == 0 { "create" } else { "update" };
        match answer.status {
            200 | 204 => {
                let version = serde_json::from_slice::<Value>(&answer.body)
                    .ok()
                    .and_then(|v| v["data"]["version"].as_u64())
                    .ok_or_else(|| self.nonsense(&path, "a write answer without the new version"))?;
                Ok(CasOutcome::Written { version })
            }
            400 if server_errors(&answer.body).iter().any(|e| e.contains(CAS_MISMATCH)) => Ok(CasOutcome::Conflict),
            _ => Err(self.refused(&answer, &path, capability)),
        }
    }

    /// Remove the secret with every version and its metadata.
    pub fn delete_all(&self) -> Result<()> {
        let path = self.metadata_path();
        let answer = self.send(self.request(reqwest::Method::DELETE, &path)?, &path)?;
        match answer.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(self.refused(&answer, &path, "delete")),
        }
    }

    /// What the Vault token may do on the secret's data and metadata paths.
    pub fn capabilities(&self) -> Result<Capabilities> {
        let (data, metadata) = (self.data_path(), self.metadata_path());
        let path = "sys/capabilities-self";
        let request = with_json(
            self.request(reqwest::Method::POST, path)?,
            &json!({ "paths": [&data, &metadata] }),
        );
        let answer = self.send(request, path)?;
        if answer.status != 200 {
            return Err(self.refused(&answer, path, "update"));
        }
        let value: Value =
            serde_json::from_slice(&answer.body).map_err(|_| self.nonsense(path, "an answer that is not JSON"))?;
        let listed = |p: &str| -> Vec<String> {
            value["data"][p]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        };
        Ok(Capabilities {
            data: listed(&data),
            metadata: listed(&metadata),
        })
    }

    fn client(&self) -> Result<&Client> {
        self.client
            .get_or_init(|| {
                let roots = match &self.settings.cacert {
                    Some(file) => read_roots(file)?,
                    None => Vec::new(),
                };
                crate::net::client(self.settings.timeout, roots)
            })
            .as_ref()
            .map_err(|msg| Error::config(msg.clone(), "check VAULT_CACERT (or vault_cacert in config.toml)"))
    }

    /// A request to `/v1/<api_path>` with the token and namespace headers.
    fn request(&self, method: reqwest::Method, api_path: &str) -> Result<RequestBuilder> {
        let url = self.url(api_path)?;
        let mut request = self
            .client()?
            .request(method, url)
            .header("X-Vault-Token", self.settings.token.expose())
            .header("X-Vault-Request", "true");
        if let Some(namespace) = &self.settings.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        Ok(request)
    }

    fn url(&self, api_path: &str) -> Result<url::Url> {
        let bad = |why: String| {
            Error::config(
                why,
                "set VAULT_ADDR to the server's URL, such as https://vault.example:8200",
            )
        };
        let mut url = url::Url::parse(&self.settings.addr)
            .map_err(|e| bad(format!("VAULT_ADDR {:?} is not a URL: {e}", self.settings.addr)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!(
                "VAULT_ADDR {:?} is not an http(s) URL",
                self.settings.addr
            )));
        }
        url.path_segments_mut()
            .map_err(|()| bad(format!("VAULT_ADDR {:?} cannot take a path", self.settings.addr)))?
            .pop_if_empty()
            .push("v1")
            .extend(api_path.split('/'));
        Ok(url)
    }

    fn send(&self, request: RequestBuilder, path: &str) -> Result<Answer> {
        let response = request
            .send()
            .map_err(|e| self.unavailable(&crate::net::describe(&e.without_url())))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        response
            .take(MAX_BODY)
            .read_to_end(&mut body)
            .map_err(|e| self.unavailable(&format!("reading the answer for {path} failed: {e}")))?;
        crate::report::debug(|| format!("Vault {path} → HTTP {status} ({} bytes)", body.len()));
        if status == 429 || status >= 500 {
            let words = server_errors(&body).join("; ");
            return Err(self.unavailable(&format!("HTTP {status} {}", crate::report::sanitize(&words))));
        }
        Ok(Answer { status, body })
    }

    fn parse_read(&self, body: &[u8]) -> Result<Versioned<Record>> {
        let path = self.data_path();
        let value: Value =
            serde_json::from_slice(body).map_err(|_| self.nonsense(&path, "an answer that is not JSON"))?;
        let version = value["data"]["metadata"]["version"]
            .as_u64()
            .ok_or_else(|| self.nonsense(&path, "a secret without a version (is the mount KV version 2?)"))?;
        let record = serde_json::from_value::<Record>(value["data"]["data"].clone()).map_err(|e| {
            Error::config(
                format!(
                    "the secret {path} (version {version}) is not a lightfi-token login: {}",
                    field_problem(&e)
                ),
                "point vault_path at a secret of its own, written by `lightfi-token login --storage vault`",
            )
        })?;
        Ok(Versioned { version, value: record })
    }

    fn unavailable(&self, why: &str) -> Error {
        Error::VaultUnavailable {
            msg: format!(
                "Vault/OpenBao at {} is unreachable or sealed: {why}",
                self.settings.addr
            ),
            hint: "check VAULT_ADDR and that the server is up and unsealed (`bao status` or `vault status`)".into(),
        }
    }

    fn nonsense(&self, path: &str, what: &str) -> Error {
        self.unavailable(&format!("{path} answered with {what}"))
    }

    /// A 4xx answer for `path`, where the token needed `capability`.
    fn refused(&self, answer: &Answer, path: &str, capability: &str) -> Error {
        let words = crate::report::sanitize(&server_errors(&answer.body).join("; "));
        match answer.status {
            401 | 403 => Error::VaultDenied {
                msg: format!(
                    "Vault/OpenBao at {} denied access to {path}: the Vault token needs the `{capability}` capability there",
                    self.settings.addr
                ),
                hint: format!(
                    "add `capabilities = [\"{capability}\"]` on path \"{path}\" to the token's policy \
                     (integrations/vault/ has ready-made policies), or renew the Vault token if it has \
                     expired (VAULT_TOKEN, vault_token_file or ~/.vault-token); check VAULT_NAMESPACE too"
                ),
            },
            404 => Error::config(
                format!(
                    "Vault/OpenBao at {} has no KV version 2 secrets engine for {path}: {words}",
                    self.settings.addr
                ),
                "the first segment of vault_path names the mount (such as `secret` in secret/lightfi-token/ci); \
                 enable one with `bao secrets enable -version=2 -path=secret kv`",
            ),
            status => Error::config(
                format!(
                    "Vault/OpenBao at {} refused the request for {path}: HTTP {status} {words}",
                    self.settings.addr
                ),
                "check vault_path and that its mount is a KV version 2 secrets engine",
            ),
        }
    }
}

fn with_json(request: RequestBuilder, body: &Value) -> RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// The PEM certificates in `file`, to trust besides the system's roots.
fn read_roots(file: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read the CA file {}: {e}", file.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("the CA file {} is not PEM certificates: {e}", file.display()))?;
    if roots.is_empty() {
        return Err(format!("the CA file {} holds no certificate", file.display()));
    }
    Ok(roots)
}

/// Vault's `{"errors":[…]}`, empty when the body has none.
fn server_errors(body: &[u8]) -> Vec<String> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    value["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(|s| s.chars().take(300).collect()))
        .collect()
}

/// What is wrong with a record, without quoting a value (it could be a token).
fn field_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.find("missing field") {
        Some(at) => text[at..].split(" at line").next().unwrap_or("").to_string(),
        None => "a field has the wrong type".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(addr: &str) -> Vault {
        Vault::new(Settings {
            addr: addr.into(),
            namespace: None,
            cacert: None,
            token: VaultToken::new("hvs.secret"),
            mount: "secret".into(),
            path: "lightfi-token/ci".into(),
            timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn urls_follow_the_address_with_or_without_a_slash() {
        for addr in ["http://127.0.0.1:8200", "http://127.0.0.1:8200/"] {
            let v = vault(addr);
            assert_eq!(
                v.url(&v.data_path()).unwrap().as_str(),
                "http://127.0.0.1:8200/v1/secret/data/lightfi-token/ci"
            );
        }
        let v = vault("https://proxy.example/vault");
        assert_eq!(
            v.url(&v.metadata_path()).unwrap().as_str(),
            "https://proxy.example/vault/v1/secret/metadata/lightfi-token/ci"
        );
    }

    #[test]
    fn a_bad_address_is_a_configuration_error() {
        for addr in ["vault:8200", "ftp://vault", ""] {
            let err = vault(addr).read().unwrap_err();
            assert_eq!(err.exit_code(), 4, "{addr}: {err}");
        }
    }

    #[test]
    fn settings_debug_hides_the_token() {
        let shown = format!("{:?}", vault("http://x").settings());
        assert!(!shown.contains("hvs.secret"), "{shown}");
    }

    #[test]
    fn a_malformed_record_is_named_by_field_not_by_value() {
        let v = vault("http://x");
        let body =
            br#"{"data":{"data":{"access_token":"tok-value","expires_at":"soon-tok"},"metadata":{"version":3}}}"#;
        let err = v.parse_read(body).unwrap_err().to_string();
        assert!(!err.contains("tok-value") && !err.contains("soon-tok"), "{err}");
        assert!(err.contains("version 3"), "{err}");
        let body = br#"{"data":{"data":{"expires_at":"2026-12-04T13:00:00Z"},"metadata":{"version":1}}}"#;
        let err = v.parse_read(body).unwrap_err().to_string();
        assert!(err.contains("missing field `access_token`"), "{err}");
    }
}
