//! `lightfi-token setup git|kubectl|postman`: configure a tool to get its
//! tokens from lightfi-token.
//!
//! git and kubectl are configured through their own commands (`git config
//! --global`, `kubectl config`), never by editing their files, so their
//! locking, file locations (`KUBECONFIG`, `XDG_CONFIG_HOME`) and formats stay
//! theirs. Each run reads the current state first and changes only what
//! differs: a second run changes nothing. `--dry-run` prints the commands
//! that would change something, on stdout, and runs only the ones that read.
//! `--remove` takes out lightfi-token's entries and nothing else.
//!
//! Every program is started through [`crate::process::command`], so none
//! inherits the client secret or a refresh token from our environment.

pub mod git;
pub mod kubectl;
pub mod postman;

use std::io;
use std::process::Output;

use crate::error::{Error, Result};
use crate::process;
use crate::report;

/// Runs a tool's commands, or prints the ones that change something.
struct Runner {
    dry_run: bool,
}

impl Runner {
    fn new(dry_run: bool) -> Runner {
        Runner { dry_run }
    }

    /// Run a command that only reads (also under `--dry-run`); its output,
    /// whatever its exit status.
    fn read(&self, program: &str, args: &[&str]) -> Result<Output> {
        process::command(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| cannot_run(program, &e))
    }

    /// Run a command that changes the tool's configuration; under
    /// `--dry-run`, print it instead. The tool's own chatter ("User set.")
    /// is not passed on; its stderr is, when it fails.
    fn change(&self, program: &str, args: &[String]) -> Result<()> {
        if self.dry_run {
            return report::print(format!("{}\n", shell_line(program, args)).as_bytes());
        }
        let out = process::command(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| cannot_run(program, &e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::config(
            format!(
                "`{}` failed ({}): {}",
                shell_line(program, args),
                out.status,
                said(&out.stderr)
            ),
            format!("fix what {program} says, then run the same `lightfi-token setup` again"),
        ))
    }
}

fn cannot_run(program: &str, err: &io::Error) -> Error {
    if err.kind() == io::ErrorKind::NotFound {
        Error::config(
            format!("cannot run `{program}`: not found on PATH"),
            format!("install {program}, or put it on PATH"),
        )
    } else {
        Error::unexpected(format!("cannot run `{program}`: {err}"))
    }
}

/// The first lines of what a tool wrote on stderr, without control characters.
fn said(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .map(report::sanitize)
        .collect();
    if lines.is_empty() {
        "no message".into()
    } else {
        lines.join(" / ")
    }
}

/// `program args…` as a POSIX shell would take it: words with characters
/// a shell treats specially are single-quoted.
fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(shell_word)
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Whether `program` is found on PATH (as git and kubectl would find it).
pub(crate) fn on_path(program: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(program);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(&candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        #[cfg(not(unix))]
        {
            candidate.is_file() || candidate.with_extension("exe").is_file()
        }
    })
}

/// Whether a command line (a helper value, an exec plugin's command) runs
/// lightfi-token: its program's file name is `lightfi-token`.
pub(crate) fn runs_lightfi_token(program: &str) -> bool {
    std::path::Path::new(program.trim_matches(['"', '\'']))
        .file_stem()
        .is_some_and(|stem| stem == "lightfi-token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_lines_quote_what_a_shell_would_take_apart() {
        let args: Vec<String> = [
            "config",
            "--global",
            "--add",
            "credential.https://x.example.helper",
            "",
            "!lightfi-token git-credential",
            "it's",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            shell_line("git", &args),
            r"git config --global --add credential.https://x.example.helper '' '!lightfi-token git-credential' 'it'\''s'"
        );
    }

    #[test]
    fn lightfi_token_is_recognised_by_its_file_name() {
        assert!(runs_lightfi_token("lightfi-token"));
        assert!(runs_lightfi_token("/usr/local/bin/lightfi-token"));
        assert!(runs_lightfi_token("\"C:/tools/lightfi-token.exe\""));
        assert!(!runs_lightfi_token("lightfi-token-no-authtype"));
        assert!(!runs_lightfi_token("store"));
    }
}
