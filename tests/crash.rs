//! Crash safety: `kill -9` at random moments during refresh and write.
//! Whatever the moment, the store always parses, a refresh token is never
//! lost (without rotation), the lock is never left stuck, no temporary file
//! survives the next run, and a reader never sees half a file.
//!
//! Rounds: `LIGHTFI_CRASH_ROUNDS` (default 20; `.ci/run` runs 200).

#![cfg(unix)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

fn rounds() -> usize {
    std::env::var("LIGHTFI_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// A random number below `n`.
fn random_below(n: u64) -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes) % n
}

/// What the rounds saw.
#[derive(Debug, Default)]
struct Tally {
    killed: usize,
    finished: usize,
    /// Token requests the server answered (some to processes killed before storing).
    requests: usize,
    reads: usize,
}

/// Run `rounds` rounds: an expired token, a refresh answered after a random
/// delay, and a `kill -9` after another random delay. `check` looks at the
/// store after each round.
fn crash_rounds(t: &TestEnv, rotate: bool, rounds: usize, check: impl Fn(&serde_json::Value)) -> Tally {
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
        t.server.fallback(Reply::Delay(
            Duration::from_millis(random_below(30)),
            Box::new(Reply::Fresh {
                expires_in: 3600,
                rotate,
            }),
        ));
        let mut child = t
            .cmd(&["-r", "--force-refresh"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(random_below(250)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.signal() == Some(9) {
            tally.killed += 1;
        } else {
            tally.finished += 1;
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
    assert_eq!(corrupt.load(Ordering::Relaxed), 0, "a reader saw half a file");
    tally
}

/// After the rounds: the next caller gets a token at once (the lock is not
/// stuck) and no temporary file is left.
fn next_run_is_clean(t: &TestEnv) {
    t.server.fallback(Reply::fresh());
    let out = t.run(&["-r", "--force-refresh", "--lock-timeout", "5"]);
    assert_exit(&out, 0);
    let leftovers: Vec<String> = std::fs::read_dir(t.home().join("tokens"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn kill_9_during_refresh_never_loses_the_login() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    let tally = crash_rounds(&t, false, rounds(), |store| {
        assert_eq!(store["refresh_token"], "refresh-0", "without rotation it never changes");
    });
    eprintln!("{tally:?}");
    next_run_is_clean(&t);
}

#[test]
fn kill_9_during_a_rotating_refresh_keeps_a_parseable_store() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    // A rotation the store has seen, so refreshes are marked while in flight.
    let tally = crash_rounds(&t, true, rounds(), |_| {});
    eprintln!("{tally:?}");
    next_run_is_clean(&t);
}
