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

use std::ffi::OsString;
use std::io::Write;

use lightfi_token::cli::Cli;
use lightfi_token::commands;

#[cfg(all(target_os = "linux", not(test)))]
#[unsafe(no_mangle)]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    start();
    // The arguments come from `argv`, not std: std learns them from glibc's
    // init_array, which musl does not call.
    let args = (0..usize::try_from(argc).unwrap_or(0)).map(|i| {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: the C runtime passes `argc` valid NUL-terminated strings in `argv`.
        let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
        std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
    });
    std::ffi::c_int::from(lightfi_token(args.collect()))
}

#[cfg(not(all(target_os = "linux", not(test))))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(lightfi_token(std::env::args_os().collect()))
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
    let code = match parse_args(args).and_then(Cli::into_command) {
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
    };
    // Nothing flushes stdout after a C `main` returns.
    let _ = std::io::stdout().flush();
    code
}
