//! `lightfi-token completions SHELL`: the shell's completion script on
//! stdout, generated from the command line definition (`cli`), so it always
//! offers exactly the commands and options this build has. Reads no setting.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::Result;
use crate::report;

pub fn run(shell: Shell) -> Result<()> {
    report::print(&script(shell))
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lightfi-token", &mut out);
    if shell == Shell::Bash {
        // clap_complete 4.6's bash script names the state of a hyphenated
        // program's subcommands in two spellings: its loop computes
        // `lightfi__token__subcmd__login`, its case labels say
        // `lightfi__subcmd__token__subcmd__login`, so no subcommand's options
        // would ever complete. Spell the labels as the loop does.
        let fixed = String::from_utf8_lossy(&out).replace("lightfi__subcmd__token", "lightfi__token");
        out = fixed.into_bytes();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_every_command() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish] {
            let script = String::from_utf8(script(shell)).unwrap();
            for command in crate::cli::subcommand_names() {
                assert!(script.contains(&command), "{shell}: no `{command}`");
            }
        }
    }

    #[test]
    fn options_of_deferred_subcommands_are_completed() {
        let bash = String::from_utf8(script(Shell::Bash)).unwrap();
        assert!(bash.contains("--no-browser"), "login's options");
        assert!(bash.contains("--show-key"), "serve's options");
    }

    #[test]
    fn bash_case_labels_match_the_state_its_loop_computes() {
        let bash = String::from_utf8(script(Shell::Bash)).unwrap();
        assert!(
            bash.contains("cmd=\"lightfi__token__subcmd__login\""),
            "the loop's spelling"
        );
        assert!(
            bash.contains("\n        lightfi__token__subcmd__login)\n"),
            "a label in the same spelling"
        );
        assert!(!bash.contains("__subcmd__token"), "no label in the other spelling");
    }
}
