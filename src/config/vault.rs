//! Where a `storage = "vault"` profile's shared login lives: the KV version 2
//! secret `vault_path` names, the server, and where the Vault token comes from.
//! The Vault token itself is read only when Vault is asked, never on the
//! cached path.

use std::path::PathBuf;

use super::Layers;
use crate::error::{Error, Result};
use crate::secret::VaultToken;

/// The shared login's place, resolved from the environment and the profile's table.
#[derive(Debug, Clone)]
pub struct VaultAt {
    /// `VAULT_ADDR`, else `vault_addr`.
    pub addr: String,
    pub namespace: Option<String>,
    pub cacert: Option<PathBuf>,
    /// The KV version 2 mount: `vault_path`'s first segment.
    pub mount: String,
    /// The secret below the mount: the rest of `vault_path`.
    pub path: String,
    pub token: VaultTokenFrom,
}

/// `VAULT_TOKEN`, else the file an agent's auto-auth sink keeps fresh
/// (`vault_token_file`), else `~/.vault-token`.
#[derive(Debug, Clone)]
pub enum VaultTokenFrom {
    Env(VaultToken),
    File(PathBuf),
}

impl VaultAt {
    /// `<mount>/<path>`, as `vault_path` names it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.mount, self.path)
    }
}

/// The `vault_*` settings of a vault-stored profile.
pub(super) fn resolve(layers: &Layers) -> Result<VaultAt> {
    let env = layers.env;
    let file = layers.file;
    let pick = |var: &str, key: &Option<String>| env(var).or_else(|| key.clone());
    let vault_path = pick("LIGHTFI_VAULT_PATH", &file.vault_path).ok_or_else(|| {
        Error::config(
            format!(
                "profile `{}` keeps its login in Vault but names no vault_path",
                layers.profile
            ),
            "add vault_path = \"secret/lightfi-token/ci\" (mount, then path) to the profile, or set LIGHTFI_VAULT_PATH",
        )
    })?;
    let (mount, path) = split_path(&vault_path)?;
    let addr = pick("VAULT_ADDR", &file.vault_addr).ok_or_else(|| {
        Error::config(
            "no Vault/OpenBao address for storage `vault`",
            "set VAULT_ADDR (or vault_addr in config.toml) to the server's URL, such as https://vault.example:8200",
        )
    })?;
    let token = match env("VAULT_TOKEN") {
        Some(token) => VaultTokenFrom::Env(VaultToken::new(token)),
        None => VaultTokenFrom::File(match &file.vault_token_file {
            Some(path) => path.clone(),
            None => dirs::home_dir().unwrap_or_default().join(".vault-token"),
        }),
    };
    Ok(VaultAt {
        addr,
        namespace: pick("VAULT_NAMESPACE", &file.vault_namespace),
        cacert: env("VAULT_CACERT")
            .map(PathBuf::from)
            .or_else(|| file.vault_cacert.clone()),
        mount,
        path,
        token,
    })
}

/// `secret/lightfi-token/ci` → (`secret`, `lightfi-token/ci`).
fn split_path(vault_path: &str) -> Result<(String, String)> {
    let trimmed = vault_path.trim_matches('/');
    match trimmed.split_once('/') {
        Some((mount, path)) if !mount.is_empty() && !path.is_empty() && !path.split('/').any(str::is_empty) => {
            Ok((mount.to_string(), path.to_string()))
        }
        _ => Err(Error::config(
            format!("vault_path `{vault_path}` does not name a secret below a mount"),
            "write it as MOUNT/PATH, such as secret/lightfi-token/ci (the KV version 2 mount `secret`)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Storage;
    use super::super::test_support::{args, env_of, home_with, resolved};
    use super::*;

    #[test]
    fn vault_path_splits_into_mount_and_path() {
        assert_eq!(
            split_path("secret/lightfi-token/ci").unwrap(),
            ("secret".into(), "lightfi-token/ci".into())
        );
        for bad in ["secret", "secret/", "/x", "a//b", ""] {
            assert_eq!(split_path(bad).unwrap_err().exit_code(), 4, "{bad}");
        }
    }

    #[test]
    fn a_vault_profile_takes_the_environment_over_its_table() {
        let home = home_with(
            "[default]\nclient_id = \"a\"\nstorage = \"vault\"\nvault_path = \"kv/team/ci\"\n\
             vault_addr = \"http://file:8200\"\nvault_token_file = \"/run/agent/token\"\n",
        );
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert_eq!(s.storage, Storage::Vault);
        let at = s.vault.unwrap();
        assert_eq!(
            (at.addr.as_str(), at.mount.as_str(), at.path.as_str()),
            ("http://file:8200", "kv", "team/ci")
        );
        assert!(matches!(at.token, VaultTokenFrom::File(ref p) if p == &PathBuf::from("/run/agent/token")));
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("VAULT_ADDR", "http://env:8200"),
            ("VAULT_TOKEN", "hvs.x"),
        ];
        let at = resolved(&args(&[]), env_of(&env)).unwrap().vault.unwrap();
        assert_eq!(at.addr, "http://env:8200");
        assert!(matches!(at.token, VaultTokenFrom::Env(_)));
    }

    #[test]
    fn a_vault_profile_without_a_path_or_address_is_refused() {
        let home = home_with("[default]\nclient_id = \"a\"\nstorage = \"vault\"\n");
        let env = [
            ("LIGHTFI_TOKEN_HOME", home.path().to_str().unwrap()),
            ("VAULT_ADDR", "http://x"),
        ];
        let err = resolved(&args(&[]), env_of(&env)).unwrap_err();
        assert!(err.to_string().contains("vault_path"), "{err}");
        let env = [
            ("LIGHTFI_TOKEN_HOME", home.path().to_str().unwrap()),
            ("LIGHTFI_VAULT_PATH", "secret/x"),
        ];
        let err = resolved(&args(&[]), env_of(&env)).unwrap_err();
        assert!(err.hint().contains("VAULT_ADDR"), "{err}");
    }
}
