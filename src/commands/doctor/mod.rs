//! `lightfi-token doctor [--json] [--refresh]`: check everything a token
//! depends on, each finding `ok`, `warn` or `fail` with its fix.
//!
//! - [`local`]: the config file and where each setting came from, the token
//!   store's folder and file modes, the stored login, the profile's lock, the
//!   login callback's port.
//! - [`remote`]: the authorize and token endpoints answering, the clock
//!   against the server's `Date`, and (only with `--refresh`) one real refresh.
//! - [`tools`]: git and kubectl, and whether they are set up to use lightfi-token.
//!
//! Nothing is created or changed, except by `--refresh`, which stores what
//! the refresh returns as any refresh does. No token, refresh token, client
//! secret or serve key is ever printed: findings name files, settings' layers
//! and HTTP statuses, never a value of those. Exits 0 when no check fails,
//! 1 when one does.

mod local;
mod remote;
mod tools;
mod vault;

use serde::Serialize;

use crate::config::{self, Flags};
use crate::error::{Error, Result};
use crate::report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

/// One finding.
#[derive(Debug, Serialize)]
struct Check {
    /// A stable name: `config`, `settings`, `store`, `login`, `lock`,
    /// `callback_port`, `vault`, `vault_capabilities`, `authorize`, `token_endpoint`, `clock`, `refresh`,
    /// `git`, `kubectl`.
    check: &'static str,
    status: Status,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

/// The findings so far.
#[derive(Debug, Default)]
struct Findings(Vec<Check>);

impl Findings {
    fn ok(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(check, Status::Ok, message.into(), None);
    }
    fn warn(&mut self, check: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Status::Warn, message.into(), Some(fix.into()));
    }
    fn fail(&mut self, check: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Status::Fail, message.into(), Some(fix.into()));
    }
    fn push(&mut self, check: &'static str, status: Status, message: String, fix: Option<String>) {
        self.0.push(Check {
            check,
            status,
            message,
            fix,
        });
    }
    fn count(&self, status: Status) -> usize {
        self.0.iter().filter(|c| c.status == status).count()
    }
}

pub fn run(flags: &Flags, json: bool, refresh: bool) -> Result<()> {
    let mut findings = Findings::default();
    match config::resolve_quietly(flags) {
        Ok((settings, warnings)) => {
            local::config(&mut findings, &settings, &warnings);
            local::settings(&mut findings, &settings);
            local::store(&mut findings, &settings);
            local::login(&mut findings, &settings);
            local::keyring(&mut findings, &settings);
            local::lock(&mut findings, &settings);
            local::callback_port(&mut findings, &settings);
            vault::check(&mut findings, &settings);
            remote::check(&mut findings, &settings, refresh);
        }
        Err(e) => findings.fail(
            "config",
            format!("{e} (the checks that need the settings were skipped)"),
            e.hint(),
        ),
    }
    tools::git(&mut findings);
    tools::kubectl(&mut findings);

    let text = if json {
        render_json(&findings)?
    } else {
        render_text(&findings)
    };
    report::print(text.as_bytes())?;
    let failed: Vec<&str> = findings
        .0
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.check)
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::ChecksFailed {
        msg: format!("doctor: {} check(s) failed: {}", failed.len(), failed.join(", ")),
        hint: "apply the fix given with each failed check, then run `lightfi-token doctor` again".into(),
    })
}

fn render_json(findings: &Findings) -> Result<String> {
    #[derive(Serialize)]
    struct Out<'a> {
        ok: bool,
        failed: usize,
        warnings: usize,
        checks: &'a [Check],
    }
    let out = Out {
        ok: findings.count(Status::Fail) == 0,
        failed: findings.count(Status::Fail),
        warnings: findings.count(Status::Warn),
        checks: &findings.0,
    };
    serde_json::to_string_pretty(&out)
        .map(|text| text + "\n")
        .map_err(|e| Error::unexpected(format!("cannot encode the findings: {e}")))
}

/// `ok    name: message`, continuation lines and `fix:` indented below.
fn render_text(findings: &Findings) -> String {
    const INDENT: &str = "      ";
    let mut out = String::new();
    for check in &findings.0 {
        let status = match check.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        };
        let mut lines = check.message.lines();
        out += &format!("{status:<5} {}: {}\n", check.check, lines.next().unwrap_or_default());
        for line in lines {
            out += &format!("{INDENT}{line}\n");
        }
        if let Some(fix) = &check.fix {
            out += &format!("{INDENT}fix: {fix}\n");
        }
    }
    let (failed, warned) = (findings.count(Status::Fail), findings.count(Status::Warn));
    out += &match (failed, warned) {
        (0, 0) => "all checks passed\n".to_string(),
        (0, w) => format!("no failures, {w} warning(s)\n"),
        (f, w) => format!("{f} failed, {w} warning(s)\n"),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_puts_fixes_and_continuations_under_their_check() {
        let mut findings = Findings::default();
        findings.ok("settings", "profile default\nclient id x");
        findings.warn("store", "too open", "chmod 700 d");
        findings.fail("authorize", "cannot reach", "check the network");
        let text = render_text(&findings);
        assert_eq!(
            text,
            "ok    settings: profile default\n      client id x\n\
             warn  store: too open\n      fix: chmod 700 d\n\
             FAIL  authorize: cannot reach\n      fix: check the network\n\
             1 failed, 1 warning(s)\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&findings).unwrap()).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["status"], "warn");
        assert!(json["checks"][0].get("fix").is_none());
    }
}
