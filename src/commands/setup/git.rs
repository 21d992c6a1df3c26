//! `lightfi-token setup git [--host URL]`: make lightfi-token git's
//! credential helper for one URL, in the global git config, as the
//! `[credential "URL"]` section of integrations/git/gitconfig does:
//!
//! ```ini
//! [credential "https://api.lightfi.example"]
//!     helper =
//!     helper = !lightfi-token git-credential
//! ```
//!
//! The empty value resets the helper list for that URL, so no helper
//! configured before (`store`, `cache`, a keychain) is asked for or handed
//! the token. lightfi-token is named, not given by path, as in the snippet:
//! git finds it on PATH, so an upgrade or a move needs no new setup.
//!
//! Our entries are the helper values that run lightfi-token's
//! `git-credential`, each with the empty value just before it. A second run
//! changes nothing; one with another profile replaces ours; `--remove` takes
//! ours out and leaves every other helper as it was, in its order.

use crate::cli::SetupGitArgs;
use crate::config::{self, DEFAULT_PROFILE};
use crate::error::{Error, Result};
use crate::report;

use super::{Runner, on_path, runs_lightfi_token};

pub fn run(args: &SetupGitArgs, profile: &str) -> Result<()> {
    let url = normalize_url(&args.host)?;
    let key = format!("credential.{url}.helper");
    let ours = helper_value(profile);
    let runner = Runner::new(args.dry_run);
    let values = helpers(&runner, &key)?;
    let steps = if args.remove {
        plan_remove(&values)
    } else {
        plan_setup(&values, &ours)
    };
    if steps.is_empty() {
        report::note(&if args.remove {
            format!("the global git config has no lightfi-token helper for {url}; nothing to remove")
        } else {
            format!("git already asks lightfi-token for the credentials of {url}; nothing to change")
        });
        return Ok(());
    }
    for step in &steps {
        runner.change("git", &step.args(&key))?;
    }
    if args.dry_run {
        return Ok(());
    }
    if args.remove {
        report::note(&format!(
            "removed lightfi-token's credential helper for {url} from the global git config"
        ));
        return Ok(());
    }
    report::note(&format!(
        "git now gets the credentials of {url} from `{}` (global git config: \
         `git config --global --get-all {key}` shows it; `lightfi-token setup git --remove` undoes it)",
        ours.trim_start_matches('!')
    ));
    if !on_path("lightfi-token") {
        report::warn(
            "git runs `lightfi-token` by name, and it is not on PATH: install it (`cargo install --locked --path .`) \
             or add its folder to PATH",
        );
    }
    if helper_after(&runner, &url)? {
        report::warn(&format!(
            "a plain `credential.helper` comes after this section in the global git config, so git also hands \
             it the credentials of {url}: move it above the section (`git config --global --list --show-origin`)"
        ));
    }
    Ok(())
}

/// `!lightfi-token git-credential`, with `--profile` when it is not the default one.
fn helper_value(profile: &str) -> String {
    if profile == DEFAULT_PROFILE {
        "!lightfi-token git-credential".into()
    } else {
        format!("!lightfi-token --profile {profile} git-credential")
    }
}

/// Whether a helper value is one of ours: `!lightfi-token … git-credential`,
/// or lightfi-token given by its absolute path.
pub(crate) fn is_ours(value: &str) -> bool {
    let command = match value.strip_prefix('!') {
        Some(command) => command,
        None if std::path::Path::new(value.split_whitespace().next().unwrap_or_default()).is_absolute() => value,
        None => return false,
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    words.len() >= 2 && runs_lightfi_token(words[0]) && words.last() == Some(&"git-credential")
}

/// The URL as the section names it: `scheme://host[:port][/path]`, without
/// a trailing slash. https only, or http on loopback (where the helper
/// answers at all).
fn normalize_url(raw: &str) -> Result<String> {
    let bad = |why: &str| Error::Usage {
        msg: format!(
            "invalid --host `{}`: {why}",
            if raw.contains('@') {
                "(not shown: it has an @)"
            } else {
                raw
            }
        ),
        hint: format!("give the git server's URL, e.g. --host {}", config::DEFAULT_GIT_HOST),
    };
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => {}
        "http" if config::is_loopback(&url) => {}
        _ => return Err(bad("the helper answers only for https URLs (or http on localhost)")),
    }
    let host = url.host_str().ok_or_else(|| bad("it has no host"))?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!(
        "{}://{host}{port}{}",
        url.scheme(),
        url.path().trim_end_matches('/')
    ))
}

/// One change to the helper list, as a `git config --global` command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Append a value.
    Add(String),
    /// Remove every value.
    UnsetAll,
    /// Remove every value equal to this one.
    Unset(String),
}

impl Step {
    fn args(&self, key: &str) -> Vec<String> {
        let mut args: Vec<String> = vec!["config".into(), "--global".into()];
        match self {
            Step::Add(value) => args.extend(["--add".into(), key.into(), value.clone()]),
            Step::UnsetAll => args.extend(["--unset-all".into(), key.into()]),
            // --fixed-value (git 2.30): the value is compared as it is, not as a regex.
            Step::Unset(value) => {
                args.extend(["--fixed-value".into(), "--unset-all".into(), key.into(), value.clone()])
            }
        }
        args
    }
}

/// The helper values for `key` in the global config, in order.
fn helpers(runner: &Runner, key: &str) -> Result<Vec<String>> {
    let out = runner.read("git", &["config", "--global", "-z", "--get-all", key])?;
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout)
            .split_terminator('\0')
            .map(str::to_string)
            .collect()),
        // No such key.
        Some(1) => Ok(vec![]),
        _ => Err(Error::config(
            format!("cannot read the global git config: {}", super::said(&out.stderr)),
            "fix what git says (`git config --global --list` shows the same), then run this again",
        )),
    }
}

/// A plain `credential.helper` that comes after our section for `url` in
/// the global config: git hands it the credentials our helper gave.
fn helper_after(runner: &Runner, url: &str) -> Result<bool> {
    let out = runner.read("git", &["config", "--global", "-z", "--list"])?;
    if !out.status.success() {
        return Ok(false);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `name\nvalue\0` each; git prints section and key names in lower case,
    // the URL as written.
    let entries: Vec<(&str, &str)> = text
        .split_terminator('\0')
        .map(|entry| entry.split_once('\n').unwrap_or((entry, "")))
        .collect();
    let ours = |name: &str| {
        name.strip_prefix("credential.")
            .and_then(|rest| rest.strip_suffix(".helper"))
            == Some(url)
    };
    let Some(last) = entries.iter().rposition(|(name, _)| ours(name)) else {
        return Ok(false);
    };
    // Its value is not shown: a helper command line may hold a password.
    Ok(entries[last + 1..]
        .iter()
        .any(|(name, value)| *name == "credential.helper" && !value.is_empty()))
}

/// The steps that take our entries out of `values`, leaving the others in their order.
fn plan_remove(values: &[String]) -> Vec<Step> {
    let mut drop = vec![false; values.len()];
    for (i, value) in values.iter().enumerate() {
        if is_ours(value) {
            drop[i] = true;
            if i > 0 && values[i - 1].is_empty() && !is_ours(&values[i - 1]) {
                drop[i - 1] = true;
            }
        }
    }
    if !drop.contains(&true) {
        return vec![];
    }
    let remaining: Vec<&String> = values.iter().zip(&drop).filter(|(_, d)| !**d).map(|(v, _)| v).collect();
    if remaining.is_empty() {
        return vec![Step::UnsetAll];
    }
    // Remove by value where that removes exactly ours; otherwise (an empty
    // value of someone else's stays) write the list anew, in its order.
    let mut dropped: Vec<&String> = values.iter().zip(&drop).filter(|(_, d)| **d).map(|(v, _)| v).collect();
    dropped.sort();
    dropped.dedup();
    if dropped.iter().all(|v| !remaining.contains(v)) {
        dropped.into_iter().map(|v| Step::Unset(v.clone())).collect()
    } else {
        std::iter::once(Step::UnsetAll)
            .chain(remaining.into_iter().map(|v| Step::Add(v.clone())))
            .collect()
    }
}

/// The steps from `values` to a list ending in the reset and `ours`, with
/// no other entry of ours: none when it is so already.
fn plan_setup(values: &[String], ours: &str) -> Vec<Step> {
    let done = values.len() >= 2
        && values[values.len() - 2].is_empty()
        && values[values.len() - 1] == ours
        && values.iter().filter(|v| is_ours(v)).count() == 1;
    if done {
        return vec![];
    }
    let mut steps = plan_remove(values);
    steps.extend([Step::Add(String::new()), Step::Add(ours.to_string())]);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "!lightfi-token git-credential";

    fn list(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn setup_adds_the_reset_and_the_helper_once() {
        let add = [Step::Add(String::new()), Step::Add(OURS.into())];
        assert_eq!(plan_setup(&[], OURS), add);
        assert_eq!(plan_setup(&list(&["", OURS]), OURS), []);
        assert_eq!(plan_setup(&list(&["cache", "", OURS]), OURS), []);
        // Another helper after ours: ours goes to the end again.
        let mut expected = vec![Step::Unset(String::new()), Step::Unset(OURS.into())];
        expected.extend(add.clone());
        assert_eq!(plan_setup(&list(&["", OURS, "cache"]), OURS), expected);
        // Another profile's helper is replaced.
        let staging = "!lightfi-token --profile staging git-credential";
        assert_eq!(plan_setup(&list(&["", staging]), OURS)[0], Step::UnsetAll);
        assert_eq!(plan_setup(&list(&["", staging]), OURS)[1..], add);
    }

    #[test]
    fn remove_takes_out_only_ours() {
        assert_eq!(plan_remove(&list(&["cache"])), []);
        assert_eq!(plan_remove(&list(&["", OURS])), [Step::UnsetAll]);
        assert_eq!(
            plan_remove(&list(&["cache", "", OURS])),
            [Step::Unset(String::new()), Step::Unset(OURS.into())]
        );
        // Someone else's reset stays, so the list is written anew.
        assert_eq!(
            plan_remove(&list(&["", "cache", "", OURS])),
            [Step::UnsetAll, Step::Add(String::new()), Step::Add("cache".into())]
        );
        assert_eq!(
            plan_remove(&list(&["/opt/bin/lightfi-token git-credential"])),
            [Step::UnsetAll]
        );
        assert_eq!(plan_remove(&list(&["lightfi-token git-credential"])), []);
    }

    #[test]
    fn urls_are_normalised_and_checked() {
        assert_eq!(
            normalize_url("https://api.lightfi.example/").unwrap(),
            "https://api.lightfi.example"
        );
        assert_eq!(
            normalize_url("https://git.example:8443/org/").unwrap(),
            "https://git.example:8443/org"
        );
        assert_eq!(normalize_url("http://127.0.0.1:9418").unwrap(), "http://127.0.0.1:9418");
        assert!(normalize_url("http://git.example").is_err());
        let err = normalize_url("https://me:hunter2@git.example").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(normalize_url("git.example").is_err());
    }

    #[test]
    fn the_helper_names_a_profile_other_than_the_default() {
        assert_eq!(helper_value("default"), OURS);
        assert_eq!(
            helper_value("staging"),
            "!lightfi-token --profile staging git-credential"
        );
        assert!(is_ours(&helper_value("staging")));
    }
}
