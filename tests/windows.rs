//! The Windows build (`x86_64-pc-windows-gnu`), run for real under wine:
//! the same `.exe` the archives ship, against the fake token endpoint on the
//! host's loopback (wine's sockets are the host's).
//!
//! One wine prefix in a temporary folder serves the whole suite; the tests
//! take turns (wine starts slowly, and one wineserver serves them all). The
//! `.exe` is `LIGHTFI_TEST_WINDOWS_EXE` when set (CI passes the shipped
//! build), else a debug build made here, in a target folder of its own (the
//! `cargo test` that runs this suite holds the lock on the main one). wine 8
//! lacks `bcryptprimitives.dll!ProcessPrng`, which Rust's std calls for
//! random bytes: `tests/windows/bcryptprimitives.c`, built with mingw, goes
//! beside the `.exe` — a test aid, never shipped. What cannot run under wine
//! is listed in tests/RELIABILITY.md.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, mpsc};
use std::time::Duration;

use common::*;

const TARGET: &str = "x86_64-pc-windows-gnu";
/// What a wine start may take on a loaded 2-core machine, times ten.
const PATIENCE: Duration = Duration::from_secs(120);

/// The suite's wine prefix and the `.exe` with its stub DLL, made once.
struct Wine {
    dir: tempfile::TempDir,
    exe: PathBuf,
    /// Never waited for: it outlives the suite by its minute.
    _server: std::process::Child,
}

static WINE: OnceLock<Wine> = OnceLock::new();
static TURN: Mutex<()> = Mutex::new(());

/// The suite's wine, and this test's turn at it.
fn wine() -> (&'static Wine, MutexGuard<'static, ()>) {
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (WINE.get_or_init(Wine::set_up), turn)
}

impl Wine {
    fn set_up() -> Wine {
        TestTools::Apt(&["wine", "gcc-mingw-w64-x86-64"]).ensure();
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let exe = bin.join("lightfi-token.exe");
        std::fs::copy(windows_exe(), &exe).expect("copy the Windows build");
        let sources = repo_root().join("tests/windows");
        run_ok(
            Command::new("x86_64-w64-mingw32-gcc")
                .args(["-shared", "-O2", "-o"])
                .args([
                    bin.join("bcryptprimitives.dll"),
                    sources.join("bcryptprimitives.c"),
                    sources.join("bcryptprimitives.def"),
                    "-ladvapi32".into(),
                ]),
        );
        // One wineserver for the suite, started here with no pipe of ours:
        // a server that a `wine` run started would inherit that run's
        // stdout and stderr and hold them open. It stays up while programs
        // come and go, and ends a minute after the last (`-p60`).
        std::fs::create_dir(dir.path().join("prefix")).unwrap();
        let server = wine_env(&mut Command::new("wineserver"), dir.path())
            .args(["-f", "-p60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wineserver");
        let wine = Wine {
            dir,
            exe,
            _server: server,
        };
        // The prefix is created once (about 20 s).
        let booted = wine
            .env(&mut Command::new("wineboot"))
            .arg("-i")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run wineboot");
        assert!(booted.success(), "wineboot -i failed: {booted}");
        wine
    }

    fn prefix(&self) -> PathBuf {
        self.dir.path().join("prefix")
    }

    fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        wine_env(cmd, self.dir.path())
    }

    /// `lightfi-token.exe ARGS` with the test's environment: the home as a
    /// Windows path (drive Z: is the host's root).
    fn cmd(&self, t: &TestEnv, args: &[&str]) -> Command {
        let mut cmd = Command::new("wine");
        self.env(&mut cmd).arg(&self.exe).args(args).stdin(Stdio::null());
        for (key, value) in t.cmd(&[]).get_envs() {
            let (Some(key), Some(value)) = (key.to_str(), value) else {
                continue;
            };
            match key {
                "PATH" | "HOME" | "XDG_RUNTIME_DIR" => {}
                "LIGHTFI_TOKEN_HOME" => {
                    cmd.env(key, windows_path(Path::new(value)));
                }
                _ => {
                    cmd.env(key, value);
                }
            }
        }
        cmd
    }

    fn run(&self, t: &TestEnv, args: &[&str]) -> Output {
        t.run_cmd(self.cmd(t, args))
    }

    /// `%APPDATA%` of the prefix's user, on the host.
    fn appdata(&self) -> PathBuf {
        let users = self.prefix().join("drive_c/users/tester");
        users.join("AppData/Roaming")
    }
}

/// The Windows build to test: `LIGHTFI_TEST_WINDOWS_EXE`, or a debug build
/// made now under the main target folder.
fn windows_exe() -> PathBuf {
    if let Some(exe) = std::env::var_os("LIGHTFI_TEST_WINDOWS_EXE").filter(|e| !e.is_empty()) {
        return PathBuf::from(exe);
    }
    let target_dir = Path::new(env!("CARGO_BIN_EXE_lightfi-token"))
        .ancestors()
        .nth(2)
        .unwrap()
        .join("windows-suite");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let rustup = Command::new("rustup").args(["target", "add", TARGET]).output();
    assert!(
        rustup.is_ok_and(|o| o.status.success()),
        "the Rust target is missing: rustup target add {TARGET}"
    );
    run_ok(
        Command::new(cargo)
            .args(["build", "--locked", "--bin", "lightfi-token", "--target", TARGET])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(repo_root()),
    );
    target_dir.join(TARGET).join("debug/lightfi-token.exe")
}

/// Wine's own variables on `cmd`, for the suite's folder `dir` (the prefix
/// is `dir/prefix`), in an otherwise empty environment.
fn wine_env<'c>(cmd: &'c mut Command, dir: &Path) -> &'c mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("USER", "tester")
        .env("WINEPREFIX", dir.join("prefix"))
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", stderr(&out));
}

/// `/tmp/x/y` as Windows sees it under wine: `Z:\tmp\x\y`.
fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// Run `cmd` with `input` on stdin.
fn with_stdin(t: &TestEnv, mut cmd: Command, input: &str) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run wine");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    t.assert_no_leak(&out.stderr);
    out
}

#[test]
fn version_names_the_windows_target() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    let out = wine.run(&t, &["--version"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("lightfi-token {} ({TARGET}, ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
}

#[test]
fn every_output_format_comes_from_the_cache() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let raw = wine.run(&t, &["-r"]);
    assert_exit(&raw, 0);
    assert_eq!(stdout(&raw), "seeded-tok\n");
    let header = wine.run(&t, &["--format", "header"]);
    assert_eq!(stdout(&header), "Authorization: Bearer seeded-tok\n");
    let json: serde_json::Value = serde_json::from_slice(&wine.run(&t, &["--format", "json"]).stdout).unwrap();
    assert_eq!(json["access_token"], "seeded-tok");
    let exec = wine.run(&t, &["--format", "exec-credential"]);
    let exec: serde_json::Value = serde_json::from_slice(&exec.stdout).unwrap();
    assert_eq!(exec["status"]["token"], "seeded-tok");
    assert_eq!(t.server.requests().len(), 0, "all from the cache");
}

#[test]
fn an_expired_token_is_refreshed_over_loopback() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 4000, 3600)));
    let out = wine.run(&t, &["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
    let sent = t.server.token_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].field("refresh_token"), Some("refresh-0"));
    assert_eq!(t.store()["access"]["token"], jwt_like(1));
}

#[test]
fn sixteen_callers_on_an_expired_token_make_one_request() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 4000, 3600)));
    // Slow enough that the callers overlap at the lock.
    t.server
        .fallback(Reply::Delay(Duration::from_millis(500), Box::new(Reply::fresh())));
    let children: Vec<_> = (0..16)
        .map(|_| {
            wine.cmd(&t, &["-r"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
    }
    assert_eq!(
        t.server.token_requests().len(),
        1,
        "one refresh for all 16 (LockFileEx)"
    );
}

#[test]
fn git_credential_answers_over_stdin_and_stdout_with_crlf_too() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    for newline in ["\n", "\r\n"] {
        let input = [
            "capability[]=authtype",
            "protocol=https",
            "host=api.lightfi.example",
            "",
            "",
        ]
        .join(newline);
        let out = with_stdin(&t, wine.cmd(&t, &["git-credential", "get"]), &input);
        assert_exit(&out, 0);
        assert_eq!(
            stdout(&out),
            "capability[]=authtype\nauthtype=Bearer\ncredential=seeded-tok\nephemeral=true\n",
            "input with {newline:?}"
        );
    }
}

#[test]
fn serve_answers_with_its_key() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let key = stdout(&wine.run(&t, &["serve", "--show-key"])).trim_end().to_string();
    assert_eq!(key.len(), 43, "{key}");
    t.forbid(&key);
    let mut serve = wine
        .cmd(&t, &["serve", "--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ports, port) = mpsc::channel();
    let pipe = serve.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(" at http://127.0.0.1:").nth(1) {
                let _ = ports.send(rest.split('/').next().unwrap().parse::<u16>().unwrap());
            }
        }
    });
    let port = port.recv_timeout(PATIENCE).expect("serve did not answer");
    let ask = |key: &str| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let head = format!(
            "GET /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Lightfi-Key: {key}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let good = ask(&key);
    let bad = ask("not-the-key");
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(
        good.starts_with("HTTP/1.1 200") && good.contains("seeded-tok"),
        "{good}"
    );
    assert!(bad.starts_with("HTTP/1.1 401") && !bad.contains("seeded-tok"), "{bad}");
}

#[test]
fn exec_passes_the_token_not_the_secrets_and_returns_the_exit_code() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some(("seeded-tok", 60, 3600)));
    let out = wine.run(&t, &["exec", "--", "cmd", "/c", "set"]);
    assert_exit(&out, 0);
    let env = stdout(&out);
    assert!(env.contains("LIGHTFI_ACCESS_TOKEN=seeded-tok"), "{env}");
    assert!(env.contains("LIGHTFI_TOKEN_EXPIRES_AT="), "{env}");
    for secret in [CLIENT_SECRET, "refresh-0"] {
        assert!(!env.contains(secret), "the child saw {secret}: {env}");
    }
    assert_exit(&wine.run(&t, &["exec", "--", "cmd", "/c", "exit 7"]), 7);
    assert_exit(&wine.run(&t, &["exec", "--", "no-such-program-here"]), 127);
}

#[test]
fn the_refresh_token_goes_to_the_credential_manager_or_the_file() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    let login = |storage: &str| {
        let mut cmd = wine.cmd(&t, &["login", "--refresh-token-stdin"]);
        cmd.env("LIGHTFI_STORAGE", storage);
        with_stdin(&t, cmd, "refresh-typed\n")
    };
    t.forbid("refresh-typed");
    assert_exit(&login("keyring"), 0);
    assert!(
        t.store().get("refresh_token").is_none(),
        "not in the file: {}",
        t.store()
    );
    let mut status = wine.cmd(&t, &["status"]);
    status.env("LIGHTFI_STORAGE", "keyring");
    let text = stdout(&t.run_cmd(status));
    assert!(text.contains("Windows Credential Manager"), "{text}");
    // A refresh reads it back from there.
    let mut refresh = wine.cmd(&t, &["-r", "--force-refresh"]);
    refresh.env("LIGHTFI_STORAGE", "keyring");
    assert_exit(&t.run_cmd(refresh), 0);
    let sent = t.server.token_requests();
    assert_eq!(sent.last().unwrap().field("refresh_token"), Some("refresh-typed"));

    // The file fallback, said plainly: no "0600" on Windows.
    let t = TestEnv::new();
    t.forbid("refresh-typed");
    let mut cmd = wine.cmd(&t, &["login", "--refresh-token-stdin"]);
    cmd.env("LIGHTFI_STORAGE", "file");
    assert_exit(&with_stdin(&t, cmd, "refresh-typed\n"), 0);
    assert_eq!(t.store()["refresh_token"], "refresh-typed");
    let text = stdout(&wine.run(&t, &["status"]));
    assert!(text.contains("stored in the plaintext file"), "{text}");
    assert!(!text.contains("0600"), "{text}");
}

#[test]
fn the_default_home_is_under_appdata() {
    let (wine, _turn) = wine();
    let t = TestEnv::new();
    let mut cmd = wine.cmd(&t, &["login", "--refresh-token-stdin"]);
    cmd.env_remove("LIGHTFI_TOKEN_HOME");
    t.forbid("refresh-appdata");
    assert_exit(&with_stdin(&t, cmd, "refresh-appdata\n"), 0);
    let tokens = wine.appdata().join("lightfi-token").join("tokens");
    let stores: Vec<_> = std::fs::read_dir(&tokens)
        .unwrap_or_else(|e| panic!("{}: {e}", tokens.display()))
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    assert!(!stores.is_empty(), "no store in {}", tokens.display());
    assert!(!t.home().join("tokens").exists());
}
