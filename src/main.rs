//! `lightfi-token`: parse the command line, run the command, and turn an
//! error into `lightfi-token: error: …` + `hint: …` on stderr and the
//! contract's exit code. stdout carries only the requested output.
//!
//! On Linux the program starts at a C `main` instead of Rust's: std's
//! runtime set-up probes the main thread's stack by parsing /proc/self/maps,
//! which costs more than the whole cached path: skipping it took
//! `lightfi-token -r` from about 1.45x to 1.25x the time of `cat` on the
//! store (benches/cached.sh). The two things of that set-up that matter here
//! are done by [`start`]: ignore SIGPIPE, and make sure fds 0–2 are open.
#![cfg_attr(all(target_os = "linux", not(test)), no_main)]

mod cli;
mod config;
mod error;
mod exec;
mod git;
mod jwt;
mod login;
mod oauth;
mod output;
mod secret;
mod serve;
mod status;
mod store;
mod token;

use std::io::{Read, Write};

use time::OffsetDateTime;

use crate::cli::{Cli, Command, Format, GetArgs, GlobalArgs};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::secret::Secret;

#[cfg(all(target_os = "linux", not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    start();
    // std still has argv: on Linux it takes it from glibc's init_array.
    std::ffi::c_int::from(lightfi_token())
}

#[cfg(not(all(target_os = "linux", not(test))))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(lightfi_token())
}

/// What std's runtime would do before `main`, as far as it matters here.
#[cfg(all(target_os = "linux", not(test)))]
fn start() {
    // SAFETY: fcntl, open and signal with constant arguments, before any
    // other thread exists.
    unsafe {
        // A closed stdout must not become the store file's descriptor, or the
        // token would be written into it: occupy closed 0–2 with /dev/null.
        for fd in 0..3 {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            }
        }
        // A closed pipe is an error to report (EPIPE), not a silent death.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// `Cli::try_parse` without freeing clap's command tree, which the process
/// is about to drop wholesale at exit: freeing it costs as much as the rest
/// of the cached path.
fn parse_args() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let command = std::mem::ManuallyDrop::new(Cli::command());
    let mut command = command;
    let matches = std::mem::ManuallyDrop::new(command.try_get_matches_from_mut(std::env::args_os())?);
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
}

/// Parse, run, report; returns the exit code.
fn lightfi_token() -> u8 {
    let code = match parse_args().and_then(Cli::into_command) {
        Err(e) => {
            let _ = e.print();
            e.exit_code().clamp(0, 255) as u8
        }
        Ok((command, global)) => match run(command, global) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("lightfi-token: error: {e}\nhint: {}", e.hint());
                e.exit_code()
            }
        },
    };
    // Nothing flushes stdout after a C `main` returns.
    let _ = std::io::stdout().flush();
    code
}

/// Print a warning on stderr (never a token: callers pass only `Secret`-free text).
pub fn warn(msg: &str) {
    eprintln!("lightfi-token: warning: {msg}");
}

fn run(command: Command, global: GlobalArgs) -> Result<()> {
    let settings = || config::resolve(&global);
    match command {
        // git asks helpers for `capability` and sends `store` after every
        // success: those answer even before a client id is configured.
        Command::GitCredential { action, .. } => git::run(&action, settings),
        Command::Get { args, .. } => get(&settings()?, &args),
        Command::Login { args, .. } if args.refresh_token_stdin => import(&settings()?),
        Command::Login { args, .. } => {
            let options = login::LoginOptions {
                no_browser: args.no_browser,
                timeout: args.timeout,
            };
            login::login_command(&settings()?, options).map(|_| ())
        }
        Command::Logout { no_revoke, .. } => token::logout(&settings()?, !no_revoke),
        Command::Status { json, .. } => show_status(&settings()?, json),
        Command::Exec { command, .. } => exec::run(&settings()?, &command),
        Command::Serve { port, show_key, .. } => serve::run(&settings()?, port, show_key),
    }
}

/// `status`: exit 3 when not logged in, so scripts can ask.
fn show_status(settings: &Settings, json: bool) -> Result<()> {
    let status = status::status(settings);
    let text = if json {
        serde_json::to_string(&status).map_err(|e| Error::unexpected(e.to_string()))? + "\n"
    } else {
        status::render_text(&status)
    };
    print(&text)?;
    if status.logged_in() {
        Ok(())
    } else {
        Err(Error::LoginRequired {
            msg: format!("not logged in (profile `{}`)", settings.profile),
        })
    }
}

fn get(settings: &Settings, args: &GetArgs) -> Result<()> {
    let format = args.format();
    let exec_info = match format {
        Format::ExecCredential => std::env::var("KUBERNETES_EXEC_INFO").ok(),
        _ => None,
    };
    let want = token::Want {
        min_valid: args.min_valid,
        force_refresh: args.force_refresh,
        may_interact: !output::exec_info_forbids_interaction(exec_info.as_deref()),
    };
    // Check the requested ExecCredential version before any network work.
    if format == Format::ExecCredential {
        output::exec_api_version(exec_info.as_deref())?;
    }
    let access = token::obtain(settings, want)?;
    print(&output::render(
        format,
        &access,
        OffsetDateTime::now_utc(),
        exec_info.as_deref(),
    )?)
}

fn import(settings: &Settings) -> Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Error::unexpected(format!("cannot read the refresh token from stdin: {e}")))?;
    let refresh_token = input.trim();
    if refresh_token.is_empty() || refresh_token.contains(char::is_whitespace) {
        return Err(Error::Usage {
            msg: "expected one refresh token on stdin".into(),
            hint: "pipe it in, e.g. `lightfi-token login --refresh-token-stdin < refresh-token.txt`".into(),
        });
    }
    let access = token::import(settings, Secret::new(refresh_token))?;
    eprintln!(
        "lightfi-token: refresh token stored for profile `{}`; access token valid until {}",
        settings.profile,
        output::rfc3339(access.expires_at)
    );
    Ok(())
}

/// Write to stdout in one piece.
fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::unexpected(format!("cannot write to stdout: {e}")))
}
