//! `lightfi-token`: parse the command line, run the command, and turn an
//! error into `lightfi-token: error: …` + `hint: …` on stderr and the
//! contract's exit code. stdout carries only the requested output.

use std::ffi::OsString;

use lightfi_token::cli::Cli;
use lightfi_token::commands;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(lightfi_token(std::env::args_os().collect()))
}

/// `Cli::try_parse` without freeing clap's command tree, which the process
/// is about to drop wholesale at exit: freeing it costs as much as the rest
/// of the cached path. The values are taken out of the matches
/// (`from_arg_matches_mut`) rather than out of a copy of them.
fn parse_args(args: Vec<OsString>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    if let Some(cli) = Cli::plain(args.get(1..).unwrap_or_default()) {
        return Ok(cli);
    }
    let command = std::mem::ManuallyDrop::new(Cli::command());
    let mut command = command;
    let mut matches = std::mem::ManuallyDrop::new(command.try_get_matches_from_mut(args)?);
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
}

/// Parse, run, report; returns the exit code.
fn lightfi_token(args: Vec<OsString>) -> u8 {
    match parse_args(args).and_then(Cli::into_command) {
        Err(e) => {
            let _ = e.print();
            e.exit_code().clamp(0, 255) as u8
        }
        Ok((command, flags)) => match commands::run(command, flags) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("lightfi-token: error: {e}\nhint: {}", e.hint());
                e.exit_code()
            }
        },
    }
}
