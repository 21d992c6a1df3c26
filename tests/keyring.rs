//! The refresh token in the OS keyring, with the real binary and a real
//! Secret Service: Debian's gnome-keyring on a private D-Bus session bus
//! that each test starts (and stops) itself. Entries are read back with
//! `secret-tool`, not with lightfi-token's own code. Also: a bus with no
//! Secret Service, no bus at all, and a Secret Service that never answers.
//!
//! Hermetic: temporary folders, a private bus, the fake token endpoint on
//! 127.0.0.1; never the developer's keyring or session bus.

#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// What these tests run: dbus-daemon, gnome-keyring-daemon, secret-tool,
/// and python3-dbus (with GLib's main loop) for the Secret Service that
/// never answers.
const PACKAGES: &[&str] = &["dbus", "gnome-keyring", "libsecret-tools", "python3-dbus", "python3-gi"];

/// A private D-Bus session bus, and what runs on it; all stopped on drop.
struct Bus {
    dir: tempfile::TempDir,
    /// None: no bus at all.
    address: Option<String>,
    /// The bus daemon first, then the services on it.
    children: Vec<Child>,
}

impl Bus {
    /// A bus with nothing on it (no service is activated on demand either).
    fn empty() -> Bus {
        TestTools::Apt(PACKAGES).ensure();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let config = dir.path().join("bus.conf");
        // No <servicedir>: nothing starts by itself, unlike a desktop session bus.
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )
        .unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {address:?}");
        Bus {
            dir,
            address: Some(address),
            children: vec![daemon],
        }
    }

    /// A bus with gnome-keyring's Secret Service on it, unlocked.
    fn with_keyring() -> Bus {
        let mut bus = Bus::empty();
        let mut keyring = bus
            .tool("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon");
        // --unlock reads the login keyring's password from stdin, to its end.
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(b"test-keyring-password")
            .unwrap();
        bus.children.push(keyring);
        bus.wait_for_secrets();
        bus
    }

    /// A bus where a process owns org.freedesktop.secrets and never answers.
    /// It writes down the name of each method called on it (see [`Bus::calls`]).
    fn hung() -> Bus {
        let mut bus = Bus::empty();
        // Every call is taken as handled, and none is ever answered.
        let script = "import dbus, dbus.lowlevel, dbus.mainloop.glib, sys\n\
                      from gi.repository import GLib\n\
                      dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)\n\
                      calls = open(sys.argv[1], 'a', buffering=1)\n\
                      def record(connection, message):\n\
                      \x20   if isinstance(message, dbus.lowlevel.MethodCallMessage):\n\
                      \x20       calls.write(message.get_member() + '\\n')\n\
                      \x20   return dbus.lowlevel.HANDLER_RESULT_HANDLED\n\
                      bus = dbus.SessionBus()\n\
                      bus.add_message_filter(record)\n\
                      bus.request_name('org.freedesktop.secrets', dbus.bus.NAME_FLAG_DO_NOT_QUEUE)\n\
                      print('ready', flush=True)\n\
                      GLib.MainLoop().run()\n";
        let mut hung = bus
            .tool("/usr/bin/python3")
            .args(["-c", script])
            .arg(bus.calls_file())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the hung Secret Service");
        let mut line = String::new();
        BufReader::new(hung.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        bus.children.push(hung);
        bus
    }

    fn calls_file(&self) -> PathBuf {
        self.dir.path().join("secret-service-calls")
    }

    /// The methods called on the hung Secret Service so far (but the
    /// markers). A marker call sent now, and waited for, comes after every
    /// call made before.
    fn calls(&self) -> Vec<String> {
        static MARKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let marker = format!("Marker{}", MARKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let sent = self
            .tool("dbus-send")
            .args([
                "--session",
                "--type=method_call",
                "--dest=org.freedesktop.secrets",
                "/marker",
            ])
            .arg(format!("org.test.Marker.{marker}"))
            .status()
            .unwrap();
        assert!(sent.success(), "dbus-send");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let calls: Vec<String> = std::fs::read_to_string(self.calls_file())
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            if let Some(end) = calls.iter().position(|c| *c == marker) {
                return calls[..end]
                    .iter()
                    .filter(|c| !c.starts_with("Marker"))
                    .cloned()
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "the hung Secret Service did not answer within 60 s (the marker call never arrived)"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait until the Secret Service owns its name (at most 10 s).
    fn wait_for_secrets(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self
                .tool("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return;
            }
            assert!(Instant::now() < deadline, "the Secret Service did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A program on this bus only, with a home of its own.
    fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let home = self.dir.path().join("home");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            .stdin(Stdio::null());
        if let Some(address) = &self.address {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", address);
        }
        cmd
    }

    /// lightfi-token on this bus, with the storage setting left to the test.
    fn on(&self, mut cmd: Command) -> Command {
        cmd.env("XDG_RUNTIME_DIR", self.runtime_dir())
            .env_remove("LIGHTFI_STORAGE");
        if let Some(address) = &self.address {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", address);
        }
        cmd
    }

    /// The secret of `account`'s entry, as `secret-tool` reads it.
    fn lookup(&self, account: &str) -> Option<String> {
        let out = self
            .tool("secret-tool")
            .args(["lookup", "service", "lightfi-token", "username", account])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The keyring account of the test login: `<profile>@<identity hash>`,
/// the store file's name without `.json`.
fn account(t: &TestEnv) -> String {
    t.store_path().file_stem().unwrap().to_string_lossy().into_owned()
}

/// Run `cmd` with `stdin` as its input; no secret may reach stderr.
fn run_with_stdin(t: &TestEnv, mut cmd: Command, stdin: &str) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    t.assert_no_leak(&out.stderr);
    out
}

/// `login --refresh-token-stdin` on `bus`, importing `refresh`.
fn import(t: &TestEnv, bus: &Bus, extra: &[&str], refresh: &str) -> Output {
    t.forbid(refresh);
    let mut args = extra.to_vec();
    args.extend(["login", "--refresh-token-stdin"]);
    run_with_stdin(t, bus.on(t.cmd(&args)), refresh)
}

/// `lightfi-token ARGS` on `bus`.
fn run_on(t: &TestEnv, bus: &Bus, args: &[&str]) -> Output {
    t.run_cmd(bus.on(t.cmd(args)))
}

fn store_text(t: &TestEnv) -> String {
    std::fs::read_to_string(t.store_path()).unwrap()
}

/// Make the stored access token expired, as time would.
fn expire_access(t: &TestEnv) {
    let mut store = t.store();
    store["access"]["obtained_at"] = "2020-01-01T00:00:00Z".into();
    store["access"]["expires_at"] = "2020-01-01T01:00:00Z".into();
    std::fs::write(t.store_path(), serde_json::to_vec_pretty(&store).unwrap()).unwrap();
}

/// A store whose refresh token is in the keyring, with an access token
/// `(token, age, lifetime)`, written as lightfi-token writes it.
fn seed_in_keyring(t: &TestEnv, access: (&str, i64, i64)) {
    t.seed(None, Some(access));
    let mut store = t.store();
    store["version"] = 2.into();
    store["refresh_token_in"] = "keyring".into();
    std::fs::write(t.store_path(), serde_json::to_vec_pretty(&store).unwrap()).unwrap();
}

fn revoked(t: &TestEnv) -> Vec<String> {
    t.server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/revoke"))
        .map(|r| r.field("token").unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_login_goes_to_the_keyring_and_the_cached_path_never_asks_it() {
    let bus = Bus::with_keyring();
    let t = TestEnv::new();
    let out = import(&t, &bus, &[], "refresh-imported");
    assert_exit(&out, 0);
    assert_eq!(stderr(&out).matches("warning").count(), 0, "{}", stderr(&out));
    assert_eq!(bus.lookup(&account(&t)).as_deref(), Some("refresh-imported"));
    let store = t.store();
    assert_eq!(store["refresh_token_in"], "keyring");
    assert_eq!(store["version"], 2);
    assert!(store.get("refresh_token").is_none(), "{store}");
    assert!(!store_text(&t).contains("refresh-imported"));

    let out = t.run_cmd(bus.on(t.cmd(&["status"])));
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("refresh token: stored in the keyring (Secret Service: service lightfi-token, account ")
            && text.contains(&account(&t)),
        "{text}"
    );
    assert!(text.contains("storage:       auto  (default)"), "{text}");
    let out = t.run_cmd(bus.on(t.cmd(&["status", "--json"])));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["refresh_token_in"]["kind"], "keyring");
    assert_eq!(v["refresh_token_in"]["backend"], "Secret Service");
    assert_eq!(v["refresh_token_in"]["account"], account(&t).as_str());
    assert_eq!(v["sources"]["storage"], "default");

    // The cached path reads the file only: a keyring that hangs is not asked.
    drop(bus);
    let hung = Bus::hung();
    let requests = t.server.token_requests().len();
    let out = run_on(&t, &hung, &["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(1)));
    assert_eq!(hung.calls(), Vec::<String>::new(), "the cached path asked the keyring");
    assert_eq!(t.server.token_requests().len(), requests);
}

#[test]
fn a_refresh_reads_the_keyring_and_rotation_updates_its_entry() {
    let bus = Bus::with_keyring();
    let t = TestEnv::new();
    t.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate: true,
    });
    // The import's check already rotates.
    assert_exit(&import(&t, &bus, &[], "refresh-0"), 0);
    assert_eq!(bus.lookup(&account(&t)).as_deref(), Some("rotated-refresh-1"));
    let out = run_on(&t, &bus, &["--force-refresh", "-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), format!("{}\n", jwt_like(2)));
    let sent = t.server.token_requests();
    assert_eq!(sent[1].field("refresh_token"), Some("rotated-refresh-1"));
    assert_eq!(bus.lookup(&account(&t)).as_deref(), Some("rotated-refresh-2"));
    assert_eq!(t.store()["refresh_token_in"], "keyring");
    assert!(!store_text(&t).contains("rotated-refresh"));
}

#[test]
fn logout_revokes_and_deletes_the_keyring_entry() {
    let bus = Bus::with_keyring();
    let t = TestEnv::new();
    assert_exit(&import(&t, &bus, &[], "refresh-to-revoke"), 0);
    let out = run_on(&t, &bus, &["logout"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("revoked and deleted"), "{}", stderr(&out));
    assert_eq!(revoked(&t), ["refresh-to-revoke"]);
    assert_eq!(bus.lookup(&account(&t)), None);
    assert!(!t.store_path().exists());
    let out = run_on(&t, &bus, &["status"]);
    assert_exit(&out, 3);
}

#[test]
fn a_new_login_replaces_the_entry_and_revokes_the_old_token() {
    let bus = Bus::with_keyring();
    let t = TestEnv::new();
    assert_exit(&import(&t, &bus, &[], "refresh-old"), 0);
    assert_exit(&import(&t, &bus, &[], "refresh-new"), 0);
    assert_eq!(revoked(&t), ["refresh-old"]);
    assert_eq!(bus.lookup(&account(&t)).as_deref(), Some("refresh-new"));
}

#[test]
fn a_keyring_without_the_logins_entry_is_not_taken_for_logged_out() {
    // The store says the refresh token is in the keyring; the keyring that
    // answers (another database, another daemon) has no such entry.
    let bus = Bus::with_keyring();
    let t = TestEnv::new();
    seed_in_keyring(&t, ("expired-access", 4000, 3600));
    let out = run_on(&t, &bus, &["-r"]);
    assert_exit(&out, 5);
    let err = stderr(&out);
    assert!(
        err.contains("not the one answering") && err.contains("lightfi-token login"),
        "{err}"
    );
    assert_eq!(t.server.token_requests().len(), 0);
    assert_eq!(t.store()["refresh_token_in"], "keyring", "the login is kept");
    // `login` still replaces it.
    assert_exit(&import(&t, &bus, &[], "refresh-new"), 0);
    assert_eq!(bus.lookup(&account(&t)).as_deref(), Some("refresh-new"));
    assert_exit(&run_on(&t, &bus, &["-r"]), 0);
}

#[test]
fn a_file_stored_login_moves_into_the_keyring_at_the_next_refresh() {
    let bus = Bus::with_keyring();
    let t = TestEnv::new();
    // As an earlier version wrote it: no version, the refresh token in the file.
    t.seed(Some("refresh-from-file"), Some(("tok-old", 60, 3600)));
    // The cached path leaves it alone…
    let out = run_on(&t, &bus, &["-r"]);
    assert_exit(&out, 0);
    assert_eq!(t.store()["refresh_token"], "refresh-from-file");
    assert_eq!(bus.lookup(&account(&t)), None);
    // …the next refresh moves it, and loses nothing.
    let out = run_on(&t, &bus, &["--force-refresh", "-r"]);
    assert_exit(&out, 0);
    assert_eq!(stderr(&out), "", "moved silently");
    assert_eq!(
        t.server.token_requests()[0].field("refresh_token"),
        Some("refresh-from-file")
    );
    assert_eq!(bus.lookup(&account(&t)).as_deref(), Some("refresh-from-file"));
    assert_eq!(t.store()["refresh_token_in"], "keyring");
    assert!(!store_text(&t).contains("refresh-from-file"), "removed from the file");
    // And it keeps working from there.
    let out = run_on(&t, &bus, &["--force-refresh", "-r"]);
    assert_exit(&out, 0);
    assert_eq!(
        t.server.token_requests()[1].field("refresh_token"),
        Some("refresh-from-file")
    );

    // storage = "file" moves it back, and the keyring entry goes.
    std::fs::write(
        t.home().join("config.toml"),
        format!("[default]\nclient_id = \"{CLIENT_ID}\"\nstorage = \"file\"\n"),
    )
    .unwrap();
    let out = run_on(&t, &bus, &["--force-refresh", "-r"]);
    assert_exit(&out, 0);
    assert_eq!(t.store()["refresh_token"], "refresh-from-file");
    assert!(t.store().get("refresh_token_in").is_none());
    assert_eq!(bus.lookup(&account(&t)), None);
    let out = run_on(&t, &bus, &["status"]);
    assert!(
        stdout(&out).contains("storage:       file  (config.toml [default])"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("stored in the plaintext file"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn without_a_secret_service_the_file_is_used_and_that_is_said_once() {
    let why = [
        (Bus::empty(), "no Secret Service is running on the D-Bus session bus"),
        (Bus::none(), "there is no D-Bus session bus to ask"),
    ];
    for (bus, why) in why {
        let t = TestEnv::new();
        let out = import(&t, &bus, &[], "refresh-in-file");
        assert_exit(&out, 0);
        let err = stderr(&out);
        assert_eq!(err.matches("warning").count(), 1, "{err}");
        assert!(err.contains(why), "{err}");
        assert!(
            err.contains("no OS keyring answered") && err.contains("storage = \"file\""),
            "{err}"
        );
        assert!(err.contains(&t.store_path().display().to_string()), "{err}");
        assert_eq!(t.store()["refresh_token"], "refresh-in-file");
        // Said once per profile: not at the next refresh, nor the next login.
        let out = run_on(&t, &bus, &["--force-refresh", "-r"]);
        assert_exit(&out, 0);
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
        assert_exit(&import(&t, &bus, &[], "refresh-in-file-2"), 0);
        assert_eq!(t.store()["refresh_token"], "refresh-in-file-2");
        let out = run_on(&t, &bus, &["status"]);
        assert!(
            stdout(&out).contains("stored in the plaintext file"),
            "{}",
            stdout(&out)
        );

        // storage = "file" never asks the keyring, and says nothing.
        let t = TestEnv::new();
        let out = import(&t, &bus, &["--storage", "file"], "refresh-quiet");
        assert_exit(&out, 0);
        assert_eq!(stderr(&out).matches("warning").count(), 0, "{}", stderr(&out));
    }
}

impl Bus {
    /// No bus at all: no DBUS_SESSION_BUS_ADDRESS, and no socket in
    /// XDG_RUNTIME_DIR, where a bus would be looked for then.
    fn none() -> Bus {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        Bus {
            dir,
            address: None,
            children: vec![],
        }
    }
}

#[test]
fn storage_keyring_without_a_keyring_fails_and_loses_nothing() {
    for bus in [Bus::empty(), Bus::none()] {
        let t = TestEnv::new();
        t.seed(Some("refresh-kept"), Some(("tok-kept", 4000, 3600)));
        let before = std::fs::read(t.store_path()).unwrap();
        let out = import(&t, &bus, &["--storage", "keyring"], "refresh-new");
        assert_exit(&out, 5);
        let err = stderr(&out);
        assert!(
            err.contains("cannot reach the keyring (Secret Service, service `lightfi-token`")
                && err.contains("no login was started"),
            "{err}"
        );
        assert!(err.contains("hint: unlock the Secret Service in this session"), "{err}");
        assert_eq!(std::fs::read(t.store_path()).unwrap(), before, "nothing changed");
        assert_eq!(t.server.requests().len(), 0, "the server was not asked");

        // A refresh of a login already in the file goes on, kept in the file, said each time.
        let out = t.run_cmd(bus.on(t.cmd(&["--storage", "keyring", "-r"])));
        assert_exit(&out, 0);
        assert!(stderr(&out).contains("storage is `keyring`, but the Secret Service cannot take"));
        assert_eq!(t.store()["refresh_token"], "refresh-kept");
    }
}

#[test]
fn a_hung_secret_service_is_asked_once_and_never_costs_a_login() {
    let bus = Bus::hung();
    let t = TestEnv::new();
    seed_in_keyring(&t, ("tok-expired", 4000, 3600));
    let before = std::fs::read(t.store_path()).unwrap();
    let out = run_on(&t, &bus, &["-r"]);
    assert_exit(&out, 5);
    let err = stderr(&out);
    assert!(
        err.contains("cannot read the refresh token from the keyring") && err.contains("did not answer within 2 s"),
        "{err}"
    );
    assert!(err.contains("the stored login was kept"), "{err}");
    let asked = bus.calls();
    assert!(!asked.is_empty());
    assert_eq!(t.server.requests().len(), 0);
    let store = t.store();
    assert_eq!(store["refresh_token_in"], "keyring", "the login is kept");
    assert_eq!(
        store["access"],
        serde_json::from_slice::<serde_json::Value>(&before).unwrap()["access"]
    );

    // Callers right after it get the same answer without asking again.
    let out = run_on(&t, &bus, &["-r"]);
    assert_exit(&out, 5);
    assert_eq!(bus.calls(), asked, "a caller right after asked the hung keyring again");

    // Logout does not delete what it cannot revoke.
    let out = run_on(&t, &bus, &["logout"]);
    assert_exit(&out, 5);
    assert!(
        stderr(&out).contains("nothing was revoked or deleted"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.store()["refresh_token_in"], "keyring");

    // A valid cached token is still handed out, with a warning.
    let t = TestEnv::new();
    seed_in_keyring(&t, ("tok-in-margin", 3500, 3600));
    let out = run_on(&t, &bus, &["-r"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "tok-in-margin\n");
    assert!(
        stderr(&out).contains("using the cached access token"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_hung_secret_service_under_many_callers_is_bounded() {
    let bus = Bus::hung();
    let t = TestEnv::new();
    seed_in_keyring(&t, ("tok-expired", 4000, 3600));
    let children: Vec<_> = (0..16)
        .map(|_| {
            bus.on(t.cmd(&["-r"]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Bounded: every caller ends, though the service never answers; how
    // long that takes is a benchmark's figure.
    let (done, outputs) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        let _ = done.send(outputs);
    });
    let outputs = outputs
        .recv_timeout(Duration::from_secs(120))
        .expect("16 callers on a hung Secret Service did not answer within 120 s");
    for out in &outputs {
        assert_exit(out, 5);
        t.assert_no_leak(&out.stderr);
    }
    assert_eq!(t.server.requests().len(), 0);
    assert_eq!(t.store()["refresh_token_in"], "keyring");
}

#[test]
fn a_hung_secret_service_leaves_a_file_login_in_the_file() {
    let bus = Bus::hung();
    let t = TestEnv::new();
    t.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate: true,
    });
    t.seed(Some("refresh-0"), Some(("tok-expired", 4000, 3600)));
    let out = run_on(&t, &bus, &["-r"]);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("did not answer within 2 s"), "{}", stderr(&out));
    // It was asked (what the CI refresh token test counts as zero).
    assert!(!bus.calls().is_empty());
    // The rotated token went where the old one was: nothing lost.
    assert_eq!(t.store()["refresh_token"], "rotated-refresh-1");
    assert!(t.store().get("refresh_token_in").is_none());
}

#[test]
fn the_ci_refresh_token_touches_no_storage() {
    let bus = Bus::with_keyring();
    let t = TestEnv::new();
    let mut cmd = bus.on(t.cmd(&["-r"]));
    cmd.env("LIGHTFI_REFRESH_TOKEN", "ci-refresh");
    t.forbid("ci-refresh");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    assert_eq!(t.server.token_requests()[0].field("refresh_token"), Some("ci-refresh"));
    assert_eq!(bus.lookup(&account(&t)), None);
    let store = t.store();
    assert!(
        store.get("refresh_token").is_none() && store.get("refresh_token_in").is_none(),
        "{store}"
    );
    // Not even a hung keyring is asked.
    let hung = Bus::hung();
    let mut cmd = hung.on(t.cmd(&["--force-refresh", "-r"]));
    cmd.env("LIGHTFI_REFRESH_TOKEN", "ci-refresh");
    assert_exit(&t.run_cmd(cmd), 0);
    assert_eq!(hung.calls(), Vec::<String>::new());
}

#[test]
fn sixty_four_concurrent_refreshes_make_one_token_request() {
    let bus = Bus::with_keyring();
    let t = TestEnv::new();
    assert_exit(&import(&t, &bus, &[], "refresh-shared"), 0);
    expire_access(&t);
    let children: Vec<_> = (0..64)
        .map(|_| {
            bus.on(t.cmd(&["-r"]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        t.assert_no_leak(&out.stderr);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), format!("{}\n", jwt_like(2)));
    }
    let sent = t.server.token_requests();
    assert_eq!(sent.len(), 2, "the import's check and one refresh");
    assert_eq!(sent[1].field("refresh_token"), Some("refresh-shared"));
    assert_eq!(bus.lookup(&account(&t)).as_deref(), Some("refresh-shared"));
}

#[test]
fn over_ssh_a_keyring_login_names_the_way_out() {
    let t = TestEnv::new();
    seed_in_keyring(&t, ("tok-old", 4000, 3600));
    let bus = Bus::empty();
    let way_out = "run `LIGHTFI_STORAGE=file lightfi-token login` for a login of this session's own";
    let mut cmd = bus.on(t.cmd(&["-r"]));
    cmd.env("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22");
    let out = t.run_cmd(cmd);
    assert_exit(&out, 5);
    let err = stderr(&out);
    assert!(err.contains("hint: over SSH the desktop's keyring"), "{err}");
    assert!(err.contains("unlock the Secret Service in this session"), "{err}");
    assert!(err.contains(way_out), "{err}");

    let mut cmd = bus.on(t.cmd(&["doctor"]));
    cmd.env("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22");
    let out = t.run_cmd(cmd);
    assert!(stdout(&out).contains(way_out), "{}", stdout(&out));

    // The way out works: a login of this session's own, in the file.
    let mut cmd = bus.on(t.cmd(&["login", "--refresh-token-stdin"]));
    cmd.env("LIGHTFI_STORAGE", "file");
    t.forbid("refresh-of-this-session");
    let out = run_with_stdin(&t, cmd, "refresh-of-this-session");
    assert_exit(&out, 0);
    assert_eq!(t.store()["refresh_token"], "refresh-of-this-session");
}

#[test]
fn doctor_says_which_keyring_answers_and_where_the_token_is() {
    let t = TestEnv::new();
    let bus = Bus::with_keyring();
    assert_exit(&import(&t, &bus, &[], "refresh-doctor"), 0);
    let doctor = |bus: &Bus| {
        let out = t.run_cmd(bus.on(t.cmd(&["doctor", "--json"])));
        t.assert_no_leak(&out.stdout);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let check = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "keyring")
            .cloned()
            .expect("a keyring check");
        (out.status.code(), check)
    };
    let (_, check) = doctor(&bus);
    assert_eq!(check["status"], "ok", "{check}");
    assert!(check["message"].as_str().unwrap().contains("Secret Service"), "{check}");
    // The login lives in the keyring, which stops answering: a failure.
    drop(bus);
    let (code, check) = doctor(&Bus::hung());
    assert_eq!(check["status"], "fail", "{check}");
    assert_eq!(code, Some(1));
}
