//! What `status` and `doctor` show of a vault-stored profile's shared
//! login: where it is, its version, who holds its lease. Never a token.

use serde::Serialize;

use crate::config::Settings;
use crate::error::Result;
use crate::vault::Capabilities;

use super::connect;

/// The shared record as seen from this machine.
#[derive(Debug, Serialize)]
pub struct SharedView {
    /// `VAULT_ADDR`.
    pub addr: String,
    /// `<mount>/data/<path>`.
    pub path: String,
    /// The record's version; None when there is no record.
    pub version: Option<u64>,
    pub has_refresh_token: bool,
    /// When the shared access token expires (RFC 3339).
    pub expires_at: Option<String>,
    pub lease_holder: Option<String>,
    pub lease_until: Option<String>,
}

/// Read the record (a Vault call: never on the cached path).
pub fn inspect(settings: &Settings) -> Result<SharedView> {
    let vault = connect(settings)?;
    let current = vault.read()?;
    let record = current.as_ref().map(|c| &c.value);
    let lease = record.and_then(|r| r.lease.as_ref());
    Ok(SharedView {
        addr: vault.settings().addr.clone(),
        path: vault.data_path(),
        version: current.as_ref().map(|c| c.version),
        has_refresh_token: record.is_some_and(|r| r.refresh_token.is_some()),
        expires_at: record.map(|r| crate::timestamp::rfc3339(r.expires_at)),
        lease_holder: lease.map(|l| l.holder.clone()),
        lease_until: lease.map(|l| crate::timestamp::rfc3339(l.deadline)),
    })
}

/// What the Vault token may do on the record's paths.
pub fn capabilities(settings: &Settings) -> Result<(String, String, Capabilities)> {
    let vault = connect(settings)?;
    let capabilities = vault.capabilities()?;
    Ok((vault.data_path(), vault.metadata_path(), capabilities))
}
