//! Starting the user's browser on the authorization URL.
//!
//! `$BROWSER` is a list of commands separated by `:`, as xdg-utils reads it
//! (`firefox:chromium`): the first that starts is used. In each, `%s` is
//! replaced by the URL, else the URL is appended. Without `$BROWSER`, the
//! platform's opener; under WSL, where `xdg-open` often has no browser to
//! hand the page to, Windows' own first (`wslview`, then `cmd.exe`). The browser runs with the tool's secret-bearing
//! variables removed from its environment (`process::command`), and never
//! on our stdout or stderr.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::process;
use crate::report;

/// Open `url`. Failure is only a warning: the URL is already on stderr.
pub fn open(url: &str) {
    let commands = match std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        Some(list) => list
            .split(':')
            .filter_map(|entry| from_browser_entry(entry, url))
            .collect(),
        None => platform_openers(url),
    };
    let mut last_error = None;
    for mut command in commands {
        // The browser must not write to our stdout: it carries only the token.
        // Nor hold our stderr open: a caller reading it to the end would wait
        // until the browser quits.
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        match command.spawn() {
            Ok(child) => {
                report_quick_failure(child, &command, url);
                return;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let why = last_error.map_or_else(|| "$BROWSER names no command".to_string(), |e| e.to_string());
    report::warn(&format!(
        "could not open a browser ({why}); open the address above yourself"
    ));
}

/// How long a launcher that fails at once gets to say so: long enough for
/// `false` or a missing display, short next to a login.
const QUICK_EXIT: Duration = Duration::from_secs(1);

/// Wait a moment for the launcher: one that exits non-zero at once opened
/// nothing, and the login would otherwise wait out its timeout in silence.
/// Either way it is reaped whenever it ends, without holding up the login.
fn report_quick_failure(mut child: Child, command: &Command, url: &str) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    if let Ok(Ok(status)) = rx.recv_timeout(QUICK_EXIT)
        && !status.success()
    {
        report::warn(&format!(
            "the browser command `{}` failed ({status}); open this address yourself:\n\n    {url}\n",
            command.get_program().to_string_lossy()
        ));
    }
}

/// One `$BROWSER` entry as a command, or None when it is blank.
fn from_browser_entry(entry: &str, url: &str) -> Option<Command> {
    let mut words: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        return None;
    }
    if words.iter().any(|w| w.contains("%s")) {
        words.iter_mut().for_each(|w| *w = w.replace("%s", url));
    } else {
        words.push(url.to_string());
    }
    let mut command = process::command(&words[0]);
    command.args(&words[1..]);
    Some(command)
}

/// The openers to try in turn when `$BROWSER` is not set.
fn platform_openers(url: &str) -> Vec<Command> {
    let opener = |program: &str, args: &[&str]| {
        let mut command = process::command(program);
        command.args(args);
        command
    };
    if cfg!(target_os = "macos") {
        vec![opener("open", &[url])]
    } else if cfg!(windows) {
        // Not `cmd /c start`: cmd would split the URL at `&`.
        vec![opener("rundll32", &["url.dll,FileProtocolHandler", url])]
    } else if is_wsl() {
        let for_cmd = cmd_escaped(url);
        vec![
            opener("wslview", &[url]),
            opener("cmd.exe", &["/c", "start", "", &for_cmd]),
            opener("xdg-open", &[url]),
        ]
    } else {
        vec![opener("xdg-open", &[url])]
    }
}

/// Whether this Linux runs under WSL: its launcher sets `WSL_DISTRO_NAME`,
/// and its kernels name themselves `…-microsoft-standard-WSL2` (WSL 2) or
/// `…-Microsoft` (WSL 1).
fn is_wsl() -> bool {
    let distro = std::env::var_os("WSL_DISTRO_NAME");
    let osrelease = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    wsl_signs(distro.as_deref(), &osrelease)
}

fn wsl_signs(distro: Option<&std::ffi::OsStr>, osrelease: &str) -> bool {
    distro.is_some_and(|d| !d.is_empty()) || osrelease.to_ascii_lowercase().contains("microsoft")
}

/// `url` as one word of cmd.exe's command line. WSL joins a Windows
/// program's arguments into its command line the way the C runtime splits
/// them (quotes only around words with blanks; a URL has none), and
/// `cmd /c` then reads that line itself: an unquoted `&` would end the
/// `start` command there. `^` makes each of cmd's special characters plain
/// (`=` and `%XX` are left as they are: cmd keeps them in a word, and leaves
/// a `%NAME%` that names no variable alone).
fn cmd_escaped(url: &str) -> String {
    let mut out = String::with_capacity(url.len() + 8);
    for c in url.chars() {
        if matches!(c, '&' | '|' | '<' | '>' | '^' | '(' | ')') {
            out.push('^');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(command: &Command) -> Vec<String> {
        std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn browser_entries_take_the_url_at_percent_s_or_at_the_end() {
        let url = "https://idp.example/authorize?a=1&b=2";
        assert_eq!(
            argv(&from_browser_entry("firefox --new-tab", url).unwrap()),
            ["firefox", "--new-tab", url]
        );
        assert_eq!(
            argv(&from_browser_entry("open -a %s", url).unwrap()),
            ["open", "-a", url]
        );
        assert!(from_browser_entry("  ", url).is_none());
    }

    #[test]
    fn wsl_is_told_by_its_distro_variable_or_its_kernel() {
        use std::ffi::OsStr;
        assert!(wsl_signs(Some(OsStr::new("Ubuntu")), "6.1.0-28-amd64"));
        assert!(wsl_signs(None, "5.15.167.4-microsoft-standard-WSL2\n"));
        assert!(wsl_signs(None, "4.4.0-19041-Microsoft"));
        assert!(!wsl_signs(Some(OsStr::new("")), "6.1.0-28-amd64"));
        assert!(!wsl_signs(None, ""));
    }

    #[test]
    fn cmd_reads_every_character_of_the_url_as_plain() {
        assert_eq!(
            cmd_escaped("https://idp.example/authorize?a=1&b=x%20y&c=(^|<>)"),
            "https://idp.example/authorize?a=1^&b=x%20y^&c=^(^^^|^<^>^)"
        );
    }

    #[test]
    fn browsers_never_inherit_secrets() {
        let command = from_browser_entry("firefox", "u").unwrap();
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for name in crate::variables::secrets() {
            assert!(removed.iter().any(|r| r == name), "{name}");
        }
    }
}
