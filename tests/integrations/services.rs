//! `integrations/systemd/` and `integrations/launchd/`: the files that keep
//! `serve` running. The systemd unit passes `systemd-analyze verify`; the
//! plist is read as launchd reads it (`plutil -lint` where it exists, Python's
//! plistlib everywhere); and each file's command line, run as the service
//! manager would run it, serves the stored token.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{TestEnv, TestTools, assert_exit, stderr, stdout};
use crate::support::{BIN, Serve, http_request, snippet, snippet_path};

const TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzZXJ2aWNlIn0.service-token";

/// A home as `cargo install` leaves it: the binary at `.cargo/bin/lightfi-token`.
fn cargo_installed(t: &TestEnv) -> PathBuf {
    let bin = t.home().join(".cargo/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let installed = bin.join("lightfi-token");
    if !installed.exists() {
        std::os::unix::fs::symlink(&*BIN, &installed).unwrap();
    }
    installed
}

/// `(section, key, value)` of each setting of a unit file, in order.
fn unit_settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut settings = vec![];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not a setting: {line}"));
        settings.push((section.clone(), key.trim().to_string(), value.trim().to_string()));
    }
    settings
}

fn unit_value<'a>(settings: &'a [(String, String, String)], section: &str, key: &str) -> &'a str {
    settings
        .iter()
        .rev()
        .find(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key}= in [{section}]"))
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    TestTools::Apt(&["systemd", "man-db"]).ensure();
    let t = TestEnv::new();
    cargo_installed(&t);
    // The page `Documentation=man:lightfi-token(1)` names, where the README
    // installs it; man finds ~/.local/share/man through ~/.local/bin on PATH.
    let home = t.home();
    let man1 = home.join(".local/share/man/man1");
    std::fs::create_dir_all(&man1).unwrap();
    std::fs::create_dir_all(home.join(".local/bin")).unwrap();
    let page = t.run(&["man"]);
    assert_exit(&page, 0);
    std::fs::write(man1.join("lightfi-token.1"), &page.stdout).unwrap();
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let unit = home.join("lightfi-token-serve.service");
    std::fs::copy(snippet_path("systemd/lightfi-token-serve.service"), &unit).unwrap();

    let mut path = std::ffi::OsString::from(home.join(".local/bin"));
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let verify = |unit: &Path| {
        t.tool("systemd-analyze")
            .env("PATH", &path)
            .env("XDG_RUNTIME_DIR", &runtime)
            .args(["--user", "verify"])
            .arg(unit)
            .output()
            .expect("run systemd-analyze")
    };
    let out = verify(&unit);
    assert_exit(&out, 0);
    assert_eq!(stderr(&out), "", "systemd-analyze's warnings");

    // The same check sees a mistake when there is one.
    let broken = home.join("broken.service");
    std::fs::write(
        &broken,
        snippet("systemd/lightfi-token-serve.service").replace("Restart=on-failure", "Restart=on-failur"),
    )
    .unwrap();
    assert!(
        stderr(&verify(&broken)).contains("on-failur"),
        "no warning for a bad Restart="
    );
}

#[test]
fn systemd_unit_has_the_keys_this_readme_promises() {
    let settings = unit_settings(&snippet("systemd/lightfi-token-serve.service"));
    let get = |section, key| unit_value(&settings, section, key);
    assert_eq!(get("Service", "ExecStart"), "%h/.cargo/bin/lightfi-token serve");
    assert_eq!(get("Service", "Restart"), "on-failure");
    assert_eq!(get("Service", "RestartPreventExitStatus"), "2 4");
    assert_eq!(get("Service", "UMask"), "0077");
    assert_eq!(get("Service", "NoNewPrivileges"), "yes");
    assert_eq!(get("Service", "PrivateTmp"), "yes");
    assert_eq!(get("Unit", "Documentation"), "man:lightfi-token(1)");
    assert_eq!(get("Install", "WantedBy"), "default.target");
    // Nothing that only a system unit can apply.
    for (_, key, _) in &settings {
        assert!(
            ![
                "User",
                "Group",
                "ProtectSystem",
                "CapabilityBoundingSet",
                "IPAddressDeny"
            ]
            .contains(&key.as_str()),
            "{key}= needs root"
        );
    }
}

/// GET /token from a running serve with its key: the stored token.
fn assert_serves_the_token(url: &str, key: &str) {
    let (status, body) = http_request("GET", &format!("{url}/token"), &[("X-Lightfi-Key".into(), key.into())]);
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["access_token"], TOKEN);
}

#[test]
fn systemd_unit_command_serves_tokens() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    cargo_installed(&t);
    let settings = unit_settings(&snippet("systemd/lightfi-token-serve.service"));
    // %h is the user's home, as the user manager expands it.
    let exec_start = unit_value(&settings, "Service", "ExecStart").replace("%h", &t.home().to_string_lossy());
    let words: Vec<&str> = exec_start.split_whitespace().collect();
    let mut command = t.tool(words[0]);
    command.args(&words[1..]).args(["--port", "0"]);
    let serve = Serve::spawn(&t, command);
    assert_serves_the_token(&serve.url, &serve.key);
    let log = serve.log_with("GET /token → 200");
    assert!(log.contains("GET /token → 200"), "{log}");
    t.assert_no_leak(serve.log().as_bytes());
}

/// The plist as JSON, read by Python's plistlib (launchd's format, XML).
fn plist() -> serde_json::Value {
    TestTools::Apt(&["python3"]).ensure();
    let out = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))",
        ])
        .arg(snippet_path("launchd/com.lightfi.token-serve.plist"))
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn launchd_plist_is_valid_with_the_keys_this_readme_promises() {
    let path = snippet_path("launchd/com.lightfi.token-serve.plist");
    if Path::new("/usr/bin/plutil").exists() {
        let out = std::process::Command::new("/usr/bin/plutil")
            .arg("-lint")
            .arg(&path)
            .output()
            .unwrap();
        assert_exit(&out, 0);
    }
    let plist = plist();
    assert_eq!(
        format!("{}.plist", plist["Label"].as_str().unwrap()),
        path.file_name().unwrap().to_string_lossy()
    );
    let arguments = plist["ProgramArguments"].as_array().expect("ProgramArguments");
    assert_eq!(arguments[0], "/bin/sh");
    assert!(
        arguments[2]
            .as_str()
            .unwrap()
            .starts_with("exec \"$HOME/.cargo/bin/lightfi-token\" serve \"$@\""),
        "{arguments:?}"
    );
    assert_eq!(plist["RunAtLoad"], true);
    assert_eq!(plist["KeepAlive"], serde_json::json!({ "SuccessfulExit": false }));
    assert_eq!(plist["Umask"], 0o077);
}

#[test]
fn launchd_plist_command_serves_tokens() {
    let t = TestEnv::new();
    t.seed(Some("refresh-0"), Some((TOKEN, 60, 3600)));
    cargo_installed(&t);
    let logs = t.home().join("Library/Logs");
    std::fs::create_dir_all(&logs).unwrap();
    let shown = t.run(&["serve", "--show-key"]);
    assert_exit(&shown, 0);
    let key = stdout(&shown).trim().to_string();

    // As launchd runs it: the program and its arguments, with the user's
    // HOME; the two more arguments reach serve through "$@".
    let plist = plist();
    let arguments: Vec<&str> = plist["ProgramArguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mut child = t
        .tool(arguments[0])
        .args(&arguments[1..])
        .args(["--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = logs.join("lightfi-token-serve.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(rest) = text.split("http://127.0.0.1:").nth(1) {
            break rest.chars().take_while(char::is_ascii_digit).collect::<String>();
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("serve did not start; log:\n{text}\nstderr:\n{}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_serves_the_token(&format!("http://127.0.0.1:{port}"), &key);
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stderr(&out), "", "everything goes to the log file");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("GET /token → 200"), "{text}");
    t.assert_no_leak(text.as_bytes());
}
