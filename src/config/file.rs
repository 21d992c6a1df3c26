//! Trusted reading of `config.toml`: one table per profile.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{Storage, TokenKind};
use crate::error::{Error, Result};
use crate::secret::ClientSecret;

/// One `[profile]` table of `config.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProfileTable {
    pub(super) oauth_url: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<ClientSecret>,
    /// Two (or more) secrets while the app client's secret is rotated: the
    /// new one first. Instead of `client_secret`.
    pub(super) client_secrets: Option<Vec<ClientSecret>>,
    pub(super) redirect_uri: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) token: Option<TokenKind>,
    pub(super) storage: Option<Storage>,
    pub(super) grant: Option<super::Grant>,
    pub(super) token_file: Option<std::path::PathBuf>,
    /// `storage = "vault"`: the KV version 2 secret (`MOUNT/PATH`) and the server.
    pub(super) vault_path: Option<String>,
    pub(super) vault_addr: Option<String>,
    pub(super) vault_namespace: Option<String>,
    pub(super) vault_cacert: Option<std::path::PathBuf>,
    pub(super) vault_token_file: Option<std::path::PathBuf>,
    /// The app client's refresh-token validity ("30d"): when a login ends.
    pub(super) refresh_token_validity: Option<String>,
}

/// Every table of `config.toml`; a missing file has none. A file that
/// another user could have written is refused, as ssh refuses such keys: its
/// `oauth_url` would receive the client secret and refresh token.
pub(super) fn read_config(path: &Path, warnings: &mut Vec<String>) -> Result<BTreeMap<String, ProfileTable>> {
    let (text, mode) = match crate::platform::read_trusted(path) {
        Ok(Some(read)) => read,
        Ok(None) => return Ok(BTreeMap::new()),
        Err(crate::platform::Untrusted::Io(e)) => {
            return Err(Error::config(
                format!("cannot read {}: {e}", path.display()),
                "fix the file's permissions, or point LIGHTFI_TOKEN_HOME (--home) elsewhere",
            ));
        }
        Err(crate::platform::Untrusted::Because(why)) => {
            return Err(Error::config(
                format!("refusing to use {}: {why}", path.display()),
                "make the file and its folder yours and writable only by you (chmod 600 config.toml; chmod 700 its folder; \
                 setfacl -b removes an ACL)",
            ));
        }
    };
    let tables: BTreeMap<String, ProfileTable> = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(", line {l}")).unwrap_or_default();
        Error::config(
            format!("malformed config file {}{at}: {}", path.display(), without_values(e.message())),
            "each profile is a table such as [default] with keys oauth_url, client_id, client_secret (or client_secrets), redirect_uri, scope, token, storage, refresh_token_validity, grant, token_file, vault_path, vault_addr, vault_namespace, vault_cacert, vault_token_file",
        )
    })?;
    if let Some(open) = path.parent().and_then(crate::platform::writable_ancestor) {
        warnings.push(format!(
            "{} is in {}, a folder every user may write: another user could replace the folder holding it",
            path.display(),
            open.display()
        ));
    }
    if mode & 0o044 != 0
        && tables
            .values()
            .any(|t| t.client_secret.is_some() || t.client_secrets.is_some())
    {
        warnings.push(format!(
            "{} holds a client secret and is readable by other users: run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(tables)
}

/// A TOML or serde message without the offending value: "invalid type:
/// string \"hunter2\", expected …" would print a client secret.
fn without_values(message: &str) -> String {
    let message = message.trim_end().replace("struct ProfileTable", "a [profile] table");
    for kind in ["invalid type", "invalid value", "invalid length"] {
        if message.starts_with(kind) {
            return match message.rsplit_once(", expected ") {
                Some((_, expected)) => format!("{kind}, expected {expected}"),
                None => kind.to_string(),
            };
        }
    }
    // Parse errors name what was expected and, at most, one offending character.
    message.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn malformed_config_names_file_and_line() {
        let home = home_with("[default]\nclient_id = \"a\"\nclient_secrt = \"typo\"\n");
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let msg = err.to_string();
        assert!(msg.contains("config.toml") && msg.contains("line 3"), "{msg}");
        let home = home_with("[default\n");
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn secret_from_config_file_is_redacted_in_debug() {
        let home = home_with("[default]\nclient_id = \"a\"\nclient_secret = \"hunter2\"\n");
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn config_errors_never_quote_a_value() {
        for config in [
            "client_secret = \"topsecret\"\n",
            "[default]\nclient_secret = 123456789012\n",
            "[default]\nclient_secret = topsecret\n",
            "[default]\nclient_secret = \"top\\qsecret\"\n",
            "[default]\nclient_secret = 'topsecret\n",
            "[default]\nclient_secret = \"topsecret\" trailing\n",
            "[default]\nclient_secret = [\"topsecret\"]\n",
            "default = \"topsecret\"\n",
        ] {
            let home = home_with(config);
            let h = home.path().to_str().unwrap();
            let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
            let msg = err.to_string();
            assert_eq!(err.exit_code(), 4, "{config}: {msg}");
            assert!(msg.contains("line "), "{config}: {msg}");
            assert!(
                !msg.contains("topsecret") && !msg.contains("1234567"),
                "{config}: {msg}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_config_file_others_could_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let home = home_with("[default]\nclient_id = \"a\"\n");
        let h = home.path().to_str().unwrap();
        let config = home.path().join("config.toml");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("writable by every user"), "{err}");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert!(
            err.to_string().contains("its folder is writable by every user"),
            "{err}"
        );
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_config_with_a_secret_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let home = home_with("[default]\nclient_id = \"a\"\nclient_secret = \"s\"\n");
        let h = home.path().to_str().unwrap();
        let config = home.path().join("config.toml");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let said = warnings(&args(&[]), &[("LIGHTFI_TOKEN_HOME", h)]);
        assert!(said.iter().any(|w| w.contains("chmod 600")), "{said:?}");
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(warnings(&args(&[]), &[("LIGHTFI_TOKEN_HOME", h)]).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_the_config_does_not_block() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("config.toml");
        let status = std::process::Command::new("mkfifo").arg(&config).status().unwrap();
        assert!(status.success());
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
