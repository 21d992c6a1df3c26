//! Crash safety: `kill -9` in each window of a refresh where a death could
//! do harm. Whatever the window, the store always parses, a refresh token is
//! never lost (without rotation), the lock is never left stuck, no temporary
//! file survives the next run, and a reader never sees half a file.
//!
//! The kills are placed by events, not by timers, so each lands in its
//! window by construction, and the tests count that it did:
//! - in flight: the fake endpoint has the refresh request and holds its
//!   answer until the process is dead;
//! - during a write: a temporary store file exists. The process runs under
//!   `strace`, which holds every `fsync` (the one after writing the
//!   temporary file included) for 10 s, so the file stays there until the
//!   kill; the file still there after the death proves where it landed.
//!
//! Rounds: `LIGHTFI_CRASH_ROUNDS` (default 20; `.ci/run` runs 200), half in
//! each window.

#![cfg(unix)]

mod common;

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

fn rounds() -> usize {
    std::env::var("LIGHTFI_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// How long a step may take before the test gives up: far more than any
/// step needs (a refresh against loopback takes milliseconds).
const PATIENCE: Duration = Duration::from_secs(60);

/// What the rounds aimed at, and where the kills landed.
#[derive(Debug, Default)]
struct Tally {
    aimed_in_flight: usize,
    killed_in_flight: usize,
    aimed_during_write: usize,
    killed_during_write: usize,
    /// Token requests the server received (each from a process killed later).
    requests: usize,
    /// Reads of the store by the reader that ran alongside.
    reads: usize,
}

/// The temporary store files in the tokens folder.
fn temp_files(tokens: &Path) -> HashSet<String> {
    std::fs::read_dir(tokens)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("tmp"))
                .collect()
        })
        .unwrap_or_default()
}

fn kill_9(pid: i32) {
    // SAFETY: kill has no memory preconditions; a stale pid only fails.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill -9 {pid}");
}

fn spawn_refresh(t: &TestEnv) -> Child {
    t.cmd(&["-r", "--force-refresh"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A refresh whose answer the endpoint holds; killed once the endpoint has
/// the request. True when the kill landed there: the process died of it
/// while the answer was still held.
fn kill_in_flight(t: &TestEnv, rotate: bool) -> bool {
    let gate = Gate::new();
    t.server.fallback(Reply::Held(
        gate.clone(),
        Box::new(Reply::Fresh {
            expires_in: 3600,
            rotate,
        }),
    ));
    let mut child = spawn_refresh(t);
    let arrived = gate.wait_arrivals(1, PATIENCE);
    let _ = child.kill();
    let status = child.wait().unwrap();
    gate.open();
    assert!(
        arrived,
        "the refresh request did not arrive: did not answer within {PATIENCE:?}"
    );
    status.signal() == Some(libc::SIGKILL)
}

/// A refresh run under strace, which holds each `fsync` for 10 s; killed as
/// soon as a new temporary store file appears. True when the kill landed
/// while the file existed: the process died and left the file behind.
fn kill_during_write(t: &TestEnv, rotate: bool) -> bool {
    t.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate,
    });
    let tokens = t.home().join("tokens");
    let before = temp_files(&tokens);
    let pid_file = t.home().join("refresh.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut strace = t
        .tool("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync"])
        .args(["-e", "inject=fsync:delay_enter=10s", "--", "sh", "-c"])
        .arg(r#"echo $$ > "$0"; exec "$@""#)
        .arg(&pid_file)
        .arg(bin())
        .args(["-r", "--force-refresh"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let new_temp = loop {
        if let Some(name) = temp_files(&tokens).difference(&before).next() {
            break Some(name.clone());
        }
        if started.elapsed() > PATIENCE || strace.try_wait().unwrap().is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let Some(name) = new_temp else {
        let _ = strace.kill();
        let status = strace.wait().unwrap();
        panic!("no temporary store file appeared: did not answer within {PATIENCE:?} (strace: {status})");
    };
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    kill_9(pid);
    // strace would sit out the rest of its delay; the process is dead already.
    let _ = strace.kill();
    let _ = strace.wait();
    wait_until_dead(pid);
    // Had the write gone on, the file would have been renamed away.
    tokens.join(name).exists()
}

/// Wait until `pid` has exited (gone, or a zombie no one reaped yet).
fn wait_until_dead(pid: i32) {
    let started = Instant::now();
    loop {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return,
            // The state follows the command name in parentheses.
            Ok(stat)
                if stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with(['Z', 'X'])) =>
            {
                return;
            }
            Ok(_) => {}
        }
        assert!(
            started.elapsed() < PATIENCE,
            "process {pid} did not die of kill -9: did not answer within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Run `rounds` rounds on an expired token, alternating the two windows.
/// `check` looks at the store after each round.
fn crash_rounds(t: &TestEnv, rotate: bool, rounds: usize, check: impl Fn(&serde_json::Value)) -> Tally {
    TestTools::Apt(&["strace"]).ensure();
    let reads = Arc::new(AtomicUsize::new(0));
    let corrupt = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // A reader that never stops looking while the rounds rewrite the store.
    let reader = {
        let (reads, corrupt, done, path) = (reads.clone(), corrupt.clone(), done.clone(), t.store_path());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok(bytes) = std::fs::read(&path) {
                    reads.fetch_add(1, Ordering::Relaxed);
                    if serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
                        corrupt.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let mut tally = Tally::default();
    for round in 0..rounds {
        if round % 2 == 0 {
            tally.aimed_in_flight += 1;
            tally.killed_in_flight += usize::from(kill_in_flight(t, rotate));
        } else {
            tally.aimed_during_write += 1;
            tally.killed_during_write += usize::from(kill_during_write(t, rotate));
        }
        let store = t.store();
        check(&store);
        assert!(
            store["refresh_token"].is_string(),
            "round {round}: the refresh token was lost: {store}"
        );
    }
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    tally.reads = reads.load(Ordering::Relaxed);
    tally.requests = t.server.token_requests().len();
    eprintln!("{tally:?}");
    assert_eq!(corrupt.load(Ordering::Relaxed), 0, "a reader saw half a file");
    assert_eq!(
        tally.killed_in_flight, tally.aimed_in_flight,
        "kills that landed while the request was in flight: {tally:?}"
    );
    assert_eq!(
        tally.killed_during_write, tally.aimed_during_write,
        "kills that landed while a temporary store file existed: {tally:?}"
    );
    tally
}

/// After the rounds: the next caller gets a token at once (the lock is not
/// stuck) and no temporary file is left.
fn next_run_is_clean(t: &TestEnv) {
    t.server.fallback(Reply::fresh());
    let out = t.run(&["-r", "--force-refresh", "--lock-timeout", "5"]);
    assert_exit(&out, 0);
    let leftovers = temp_files(&t.home().join("tokens"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn kill_9_during_refresh_never_loses_the_login() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    let tally = crash_rounds(&t, false, rounds(), |store| {
        assert_eq!(store["refresh_token"], "refresh-0", "without rotation it never changes");
    });
    // Every round reached the endpoint: the write window comes after the answer.
    assert_eq!(tally.requests, rounds());
    next_run_is_clean(&t);
}

#[test]
fn kill_9_during_a_rotating_refresh_keeps_a_parseable_store() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    // A rotation the store has seen, so refreshes are marked while in flight
    // (every round is killed, so none would store one).
    t.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate: true,
    });
    assert_exit(&t.run(&["-r", "--force-refresh"]), 0);
    assert_eq!(t.store()["refresh_token"], "rotated-refresh-1");
    crash_rounds(&t, true, rounds(), |_| {});
    next_run_is_clean(&t);
}
