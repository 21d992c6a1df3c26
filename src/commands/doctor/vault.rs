//! For `storage = "vault"`: the shared login's record and what the Vault
//! token may do there.

use crate::config::Settings;
use crate::token::shared_view;

use super::Findings;

pub fn check(findings: &mut Findings, s: &Settings) {
    if s.vault.is_none() {
        return;
    }
    match shared_view::inspect(s) {
        Ok(view) => match view.version {
            Some(version) => {
                let lease = view
                    .lease_holder
                    .map(|h| format!(", lease held by {h}"))
                    .unwrap_or_default();
                findings.ok(
                    "vault",
                    format!("{} at {}: version {version}{lease}", view.path, view.addr),
                );
            }
            None => findings.fail(
                "vault",
                format!("{} at {} holds no login", view.path, view.addr),
                "seed it once: `lightfi-token login --storage vault` (or --refresh-token-stdin)",
            ),
        },
        Err(e) => findings.fail("vault", e.to_string(), e.hint()),
    }
    let (data, metadata, caps) = match shared_view::capabilities(s) {
        Ok(found) => found,
        Err(e) => return findings.fail("vault_capabilities", e.to_string(), e.hint()),
    };
    let has = |list: &[String], c: &str| list.iter().any(|x| x == c || x == "root");
    let missing: Vec<&str> = ["read", "update"].into_iter().filter(|c| !has(&caps.data, c)).collect();
    if !missing.is_empty() {
        return findings.fail(
            "vault_capabilities",
            format!("the Vault token lacks {} on {data}", missing.join(", ")),
            format!("add capabilities = [\"read\", \"update\"] on path \"{data}\" to its policy (integrations/vault/)"),
        );
    }
    if !has(&caps.data, "create") || !has(&caps.metadata, "delete") {
        return findings.warn(
            "vault_capabilities",
            format!("the Vault token may read and refresh {data}, but not seed it (create) or log out (delete on {metadata})"),
            "fine for a runner; seed and log out with a token whose policy has those",
        );
    }
    findings.ok(
        "vault_capabilities",
        format!("the Vault token may read, update, create {data} and delete {metadata}"),
    );
}
