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
//!
//! Runs at the same time (dotfile managers and provisioning scripts start
//! several) take turns: a lock file beside the git config held from the
//! read to the check after the last change. [`plan`] orders the changes so
//! that a run killed between two of them leaves every helper of the user's.

mod plan;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
    // --dry-run changes nothing, so it waits for no one.
    let lock = if args.dry_run { None } else { Lock::take()? };
    let values = helpers(&runner, &key)?;
    let found = plan::theirs(&values, is_ours);
    let ours_wanted = (!args.remove).then_some(ours.as_str());
    let (theirs, steps) = match lock.as_ref().and_then(|l| l.recorded(&key)) {
        Some(recorded) if recorded != found => {
            let steps = plan::restore(&values, &recorded, ours_wanted, is_ours);
            (recorded, steps)
        }
        _ if args.remove => (found, plan::remove(&values, is_ours)),
        _ => (found, plan::setup(&values, &ours, is_ours)),
    };
    let mut wanted = theirs.clone();
    wanted.extend(ours_wanted.into_iter().flat_map(|o| [String::new(), o.to_string()]));
    if steps.is_empty() {
        report::note(&if args.remove {
            format!("the global git config has no lightfi-token helper for {url}; nothing to remove")
        } else {
            format!("git already asks lightfi-token for the credentials of {url}; nothing to change")
        });
        return Ok(());
    }
    if let Some(lock) = &lock {
        lock.record(&key, &theirs)?;
    }
    for step in &steps {
        runner.change("git", &step.args(&key))?;
    }
    let Some(lock) = lock else {
        return Ok(());
    };
    // Every change was made: nothing is left for a next run to finish.
    lock.done();
    if helpers(&runner, &key)? != wanted {
        return Err(Error::config(
            format!(
                "the credential helpers for {url} are not what this run wrote: another program changed the \
                 global git config at the same time"
            ),
            format!(
                "run the same `lightfi-token setup git` again (`git config --global --get-all {key}` shows the list)"
            ),
        ));
    }
    if args.remove {
        report::note(&format!(
            "removed lightfi-token's credential helper for {url} from the global git config"
        ));
        return Ok(());
    }
    report::note(&format!(
        "git now gets the credentials of {url} from `{}` (global git config: \
         `git config --global --get-all {key}` shows it; `lightfi-token setup git --host {url} --remove` undoes it)",
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
                "(not shown: it has an @)".to_string()
            } else {
                report::sanitize(raw)
            }
        ),
        hint: format!("give the git server's URL, e.g. --host {}", config::DEFAULT_GIT_HOST),
    };
    // The URL parser drops tabs and newlines anywhere: `git.example\n.evil`
    // would become another host.
    if raw.chars().any(char::is_control) {
        return Err(bad("it has a control character (a tab or newline?)"));
    }
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

/// The file `git config --global` writes (git-config(1), FILES):
/// `GIT_CONFIG_GLOBAL`; else `~/.gitconfig`, unless only
/// `$XDG_CONFIG_HOME/git/config` exists. Through symlinks, as git writes
/// it: two homes may share one file.
fn global_config() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let path = match var("GIT_CONFIG_GLOBAL") {
        Some(path) => path,
        None => {
            let home = var("HOME").or_else(dirs::home_dir)?;
            let dotfile = home.join(".gitconfig");
            let xdg = var("XDG_CONFIG_HOME")
                .unwrap_or_else(|| home.join(".config"))
                .join("git")
                .join("config");
            if !dotfile.exists() && xdg.exists() {
                xdg
            } else {
                dotfile
            }
        }
    };
    if let Ok(real) = std::fs::canonicalize(&path) {
        return Some(real);
    }
    let dir = std::fs::canonicalize(path.parent()?).ok()?;
    Some(dir.join(path.file_name()?))
}

/// `<git config>.lightfi-token.lock`, held from the read to the check
/// after the last change. Not git's own `<config>.lock`, which git takes for
/// each single write and will not wait for. It also records the user's
/// helper list before the first change, for a run after one killed midway.
struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Take the lock, waiting for another setup that holds it (released
    /// when its holder exits or dies). None when there is no home: git
    /// then says what is wrong.
    fn take() -> Result<Option<Lock>> {
        let Some(config) = global_config() else {
            return Ok(None);
        };
        let mut name = config.file_name().unwrap_or_default().to_os_string();
        name.push(".lightfi-token.lock");
        let path = config.with_file_name(name);
        let file = open_lock(&path).map_err(|e| Error::io("cannot open the lock file", &path, e))?;
        let lock = Lock { file, path };
        match fs4::fs_std::FileExt::try_lock_exclusive(&lock.file) {
            Ok(true) => {}
            Ok(false) => {
                report::note(&format!(
                    "waiting for another `lightfi-token setup git` to finish (it holds {})…",
                    lock.path.display()
                ));
                fs4::fs_std::FileExt::lock_exclusive(&lock.file).map_err(|e| lock.failed(e))?;
            }
            Err(e) => return Err(lock.failed(e)),
        }
        Ok(Some(lock))
    }

    fn failed(&self, e: std::io::Error) -> Error {
        Error::io("cannot lock", &self.path, e)
    }

    /// The user's list for `key` that a run killed midway recorded.
    fn recorded(&self, key: &str) -> Option<Vec<String>> {
        let mut text = String::new();
        (&self.file).read_to_string(&mut text).ok()?;
        let mut parts = text.split_terminator('\0');
        (parts.next()? == key).then(|| parts.map(str::to_string).collect())
    }

    /// `key` and the user's list, NUL-separated, as the whole file.
    fn record(&self, key: &str, theirs: &[String]) -> Result<()> {
        let mut text = format!("{key}\0");
        for value in theirs {
            text.push_str(value);
            text.push('\0');
        }
        let mut file = &self.file;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(text.as_bytes()))
            .map_err(|e| Error::io("cannot write", &self.path, e))
    }

    /// The change is complete: nothing to finish for the next run.
    fn done(&self) {
        let _ = self.file.set_len(0);
    }
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).read(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
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

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "!lightfi-token git-credential";

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
        for raw in [
            "https://api.lightfi.example\n.evil.example",
            "https://api.lightfi.ex\tample",
            "https://x.example\r",
        ] {
            let err = normalize_url(raw).unwrap_err();
            assert!(err.to_string().contains("control character"), "{err}");
        }
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
