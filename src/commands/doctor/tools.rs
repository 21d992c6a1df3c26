//! git and kubectl: found, which version, and whether they are set up to
//! get their tokens from lightfi-token. Both are optional: a tool that is
//! not installed is reported, not failed.

use std::io;
use std::process::Output;

use serde_json::Value;

use crate::commands::setup::{self, git::is_ours};
use crate::process;
use crate::report;

use super::Findings;

/// Run `program args` (through the scrubbed environment); None when it is not installed.
fn run(program: &str, args: &[&str]) -> io::Result<Option<Output>> {
    match process::command(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn git(findings: &mut Findings) {
    let version = match run("git", &["--version"]) {
        Ok(Some(out)) if out.status.success() => report::sanitize(String::from_utf8_lossy(&out.stdout).trim()),
        Ok(None) => return findings.ok("git", "git not found on PATH (needed only for the git integration)"),
        Ok(Some(out)) => {
            return findings.warn(
                "git",
                format!("`git --version` failed ({})", out.status),
                "check the git installation",
            );
        }
        Err(e) => return findings.warn("git", format!("cannot run git: {e}"), "check the git installation"),
    };
    let old = git_version(&version).is_some_and(|v| v < (2, 46));
    let note = if old {
        "\nolder than 2.46: git sends the token as the password of HTTP Basic (user oauth2), not as Bearer"
    } else {
        ""
    };
    // Every helper git would see from here (system, global, and this folder's repository).
    let out = run("git", &["config", "-z", "--get-regexp", r"^credential\.(.*\.)?helper$"]);
    let entries = match out {
        Ok(Some(out)) => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => String::new(),
    };
    let mut urls = vec![];
    let mut everywhere = false;
    let mut by_name = false;
    for entry in entries.split_terminator('\0') {
        let (name, value) = entry.split_once('\n').unwrap_or((entry, ""));
        if !is_ours(value) {
            continue;
        }
        by_name |= value.starts_with("!lightfi-token ");
        match name.strip_prefix("credential.").and_then(|r| r.strip_suffix(".helper")) {
            Some(url) => urls.push(url.to_string()),
            None => everywhere = true,
        }
    }
    if everywhere {
        return findings.warn(
            "git",
            format!("{version}; lightfi-token is a plain `credential.helper`: git offers the token to every server"),
            "scope it to your git server: `git config --global --unset-all credential.helper` (or remove that line \
             where `git config --show-origin --get-all credential.helper` says), then `lightfi-token setup git --host URL`",
        );
    }
    if urls.is_empty() {
        return findings.ok(
            "git",
            format!("{version}; lightfi-token is not git's credential helper for any URL (`lightfi-token setup git` sets it up){note}"),
        );
    }
    let message = format!(
        "{version}; lightfi-token is the credential helper for {}{note}",
        urls.join(", ")
    );
    if by_name && !setup::on_path("lightfi-token") {
        return findings.warn(
            "git",
            format!("{message}\ngit runs `lightfi-token` by name, and it is not on PATH"),
            "install it (`cargo install --locked --path .`) or add its folder to PATH",
        );
    }
    findings.ok("git", message);
}

/// `git version 2.47.3` → (2, 47).
fn git_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(2)?;
    let mut parts = version.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

pub fn kubectl(findings: &mut Findings) {
    let version = match run("kubectl", &["version", "--client", "-o", "json"]) {
        Ok(Some(out)) if out.status.success() => serde_json::from_slice::<Value>(&out.stdout)
            .ok()
            .and_then(|v| v["clientVersion"]["gitVersion"].as_str().map(report::sanitize))
            .unwrap_or_else(|| "unknown version".into()),
        Ok(None) => {
            return findings.ok(
                "kubectl",
                "kubectl not found on PATH (needed only for the Kubernetes integration)",
            );
        }
        Ok(Some(out)) => {
            return findings.warn(
                "kubectl",
                format!("`kubectl version --client` failed ({})", out.status),
                "check the kubectl installation",
            );
        }
        Err(e) => {
            return findings.warn(
                "kubectl",
                format!("cannot run kubectl: {e}"),
                "check the kubectl installation",
            );
        }
    };
    // Without --raw, kubectl redacts the kubeconfig's secrets.
    let config = match run("kubectl", &["config", "view", "-o", "json"]) {
        Ok(Some(out)) if out.status.success() => serde_json::from_slice::<Value>(&out.stdout).unwrap_or_default(),
        _ => {
            return findings.warn(
                "kubectl",
                format!("kubectl {version}; cannot read the kubeconfig"),
                "run `kubectl config view` to see what is wrong with it",
            );
        }
    };
    let ours: Vec<(String, String)> = config["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|user| {
            let command = user["user"]["exec"]["command"].as_str()?;
            setup::kubectl::is_ours(user).then(|| {
                (
                    report::sanitize(user["name"].as_str().unwrap_or("?")),
                    command.to_string(),
                )
            })
        })
        .collect();
    if ours.is_empty() {
        return findings.ok(
            "kubectl",
            format!(
                "kubectl {version}; no kubeconfig user runs lightfi-token (`lightfi-token setup kubectl` adds one)"
            ),
        );
    }
    let names: Vec<&str> = ours.iter().map(|(name, _)| name.as_str()).collect();
    let message = format!(
        "kubectl {version}; kubeconfig users running lightfi-token: {}",
        names.join(", ")
    );
    let missing: Vec<String> = ours
        .iter()
        .filter(|(_, command)| {
            let path = std::path::Path::new(command);
            if path.is_absolute() {
                !path.is_file()
            } else {
                !setup::on_path(command)
            }
        })
        .map(|(name, command)| format!("user `{name}` runs {}, which is not there", report::sanitize(command)))
        .collect();
    if missing.is_empty() {
        findings.ok("kubectl", message);
    } else {
        findings.warn(
            "kubectl",
            format!("{message}\n{}", missing.join("\n")),
            "run `lightfi-token setup kubectl --cluster NAME` again with the lightfi-token you use now",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_versions_are_read() {
        assert_eq!(git_version("git version 2.47.3"), Some((2, 47)));
        assert_eq!(git_version("git version 2.39.5 (Apple Git-154)"), Some((2, 39)));
        assert_eq!(git_version("nonsense"), None);
    }
}
