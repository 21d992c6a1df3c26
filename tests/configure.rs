//! `lightfi-token configure`: answers piped or typed at a terminal, flags,
//! `--client-secret-stdin`; config.toml edited in place (comments, other
//! profiles and key order kept), defaults not written, `--force`, nothing
//! rewritten for the same values, 0600 in 0700; `--show`; and the client
//! check against the fake endpoint and the test IdP.

#![cfg(target_os = "linux")] // the terminal test uses the Linux pty helpers

mod common;
#[path = "common/idp.rs"]
mod idp;
#[path = "common/interactive.rs"]
mod interactive;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use idp::Idp;
use interactive::{Pty, free_port};

/// `lightfi-token configure ARGS` in `t`'s scrubbed environment, without
/// the client id and OAuth URL `t` exports (configure writes what it is
/// given, and `--show` must read the file).
fn configure(t: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = t.cmd(&["configure"]);
    cmd.args(args)
        .env_remove("LIGHTFI_CLIENT_ID")
        .env_remove("LIGHTFI_OAUTH_URL")
        .env_remove("LIGHTFI_CLIENT_SECRET");
    cmd
}

/// Run with `input` piped to stdin; no secret of `t` may reach stderr.
fn run_with_input(t: &TestEnv, mut cmd: Command, input: &str) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    t.assert_no_leak(&out.stderr);
    out
}

fn config_path(t: &TestEnv) -> PathBuf {
    t.home().join("config.toml")
}

fn config_text(t: &TestEnv) -> String {
    std::fs::read_to_string(config_path(t)).unwrap()
}

/// A test env whose fake endpoint answers every token request as a token
/// endpoint answers an unknown code from an authenticated client.
fn env_refusing_codes() -> TestEnv {
    let t = TestEnv::public();
    t.server.fallback(Reply::oauth_error(400, "invalid_grant"));
    t
}

#[test]
fn piped_answers_write_only_what_differs_from_the_defaults() {
    let t = env_refusing_codes();
    t.forbid("piped-secret");
    let url = t.oauth_url();
    // Questions without --oauth-url: client id, secret, OAuth URL, redirect URI, scope.
    let out = run_with_input(
        &t,
        configure(&t, &[]),
        &format!("piped-client\npiped-secret\n{url}\n\nopenid email\n"),
    );
    assert_exit(&out, 0);
    assert_eq!(
        config_text(&t),
        format!(
            "[default]\nclient_id = \"piped-client\"\nclient_secret = \"piped-secret\"\n\
             oauth_url = \"{url}\"\nscope = \"openid email\"\n"
        )
    );
    // The check: an authorization-code exchange with the client's authentication.
    let requests = t.server.client_checks();
    assert_eq!(requests.len(), 1, "one check");
    let check = &requests[0];
    assert_eq!(check.field("grant_type"), Some("authorization_code"));
    assert_eq!(check.field("client_id"), Some("piped-client"));
    assert_eq!(check.field("redirect_uri"), Some("http://localhost:3000"));
    assert!(check.field("code").is_some_and(|c| !c.is_empty()));
    assert_eq!(
        check.header("Authorization"),
        Some(basic("piped-client", "piped-secret").as_str())
    );
    assert!(stderr(&out).contains("accepts client piped-client"), "{}", stderr(&out));
}

#[test]
fn flags_alone_need_no_answers_and_defaults_are_not_written() {
    let t = env_refusing_codes();
    let url = t.oauth_url();
    let mut cmd = configure(
        &t,
        &[
            "--client-id",
            "flag-client",
            "--oauth-url",
            &url,
            "--redirect-uri",
            "http://localhost:3000",
            "--scope",
            "aws.cognito.signin.user.admin",
        ],
    );
    cmd.stdin(Stdio::null());
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    assert_eq!(
        config_text(&t),
        format!("[default]\nclient_id = \"flag-client\"\noauth_url = \"{url}\"\n")
    );
    let check = &t.server.client_checks()[0];
    assert_eq!(
        check.header("Authorization"),
        None,
        "a public client sends no Basic auth"
    );
}

#[test]
fn an_empty_or_missing_answer_takes_the_default() {
    let t = env_refusing_codes();
    let url = t.oauth_url();
    // Only the client id; the rest of stdin is missing.
    let out = run_with_input(&t, configure(&t, &["--oauth-url", &url]), "only-id\n");
    assert_exit(&out, 0);
    assert_eq!(
        config_text(&t),
        format!("[default]\nclient_id = \"only-id\"\noauth_url = \"{url}\"\n")
    );
}

#[test]
fn no_client_id_is_exit_4_and_writes_nothing() {
    let t = env_refusing_codes();
    let out = run_with_input(&t, configure(&t, &[]), "\n\n");
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("no client id given"), "{}", stderr(&out));
    assert!(!config_path(&t).exists());
    assert!(t.server.client_checks().is_empty());
}

#[test]
fn the_secret_from_stdin_is_taken_and_nothing_is_asked() {
    let t = env_refusing_codes();
    t.forbid("stdin-secret");
    let url = t.oauth_url();
    let out = run_with_input(
        &t,
        configure(&t, &["--client-id", "c", "--oauth-url", &url, "--client-secret-stdin"]),
        // A second line would be an answer if anything were asked.
        "stdin-secret\n",
    );
    assert_exit(&out, 0);
    assert_eq!(
        config_text(&t),
        format!("[default]\nclient_id = \"c\"\nclient_secret = \"stdin-secret\"\noauth_url = \"{url}\"\n")
    );
    let check = &t.server.client_checks()[0];
    assert_eq!(check.header("Authorization"), Some(basic("c", "stdin-secret").as_str()));
    // A secret on two lines is refused without being shown.
    let out = run_with_input(
        &t,
        configure(
            &t,
            &[
                "--client-id",
                "c",
                "--oauth-url",
                &url,
                "--client-secret-stdin",
                "--force",
            ],
        ),
        "stdin-secret\nsecond-line\n",
    );
    assert_exit(&out, 2);
    assert!(!stderr(&out).contains("second-line"));
}

const HAND_WRITTEN: &str = "\
# lightfi-token settings, kept by hand
[staging] # the staging pool
scope = \"openid\"   # narrow on purpose
client_id = \"staging-id\"

# production
[default]
client_id = \"old-id\"
";

#[test]
fn a_new_profile_keeps_the_file_as_it_was_and_goes_last() {
    let t = env_refusing_codes();
    std::fs::write(config_path(&t), HAND_WRITTEN).unwrap();
    std::fs::set_permissions(config_path(&t), std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = t.oauth_url();
    let mut cmd = configure(&t, &["--profile", "dev", "--client-id", "dev-id", "--oauth-url", &url]);
    cmd.stdin(Stdio::null());
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    assert_eq!(
        config_text(&t),
        format!("{HAND_WRITTEN}\n[dev]\nclient_id = \"dev-id\"\noauth_url = \"{url}\"\n")
    );
}

#[test]
fn a_profile_with_other_values_changes_only_with_force() {
    let t = env_refusing_codes();
    std::fs::write(config_path(&t), HAND_WRITTEN).unwrap();
    std::fs::set_permissions(config_path(&t), std::fs::Permissions::from_mode(0o600)).unwrap();
    let url = t.oauth_url();
    let args = [
        "--profile",
        "staging",
        "--client-id",
        "staging-id",
        "--oauth-url",
        &url,
        "--scope",
        "openid email",
    ];
    let mut cmd = configure(&t, &args);
    cmd.stdin(Stdio::null());
    let out = t.run_cmd(cmd);
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(err.contains("has other values for oauth_url, scope"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert_eq!(config_text(&t), HAND_WRITTEN, "nothing written");
    assert!(t.server.client_checks().is_empty(), "nothing checked");

    let mut cmd = configure(&t, &[&args[..], &["--force"]].concat());
    cmd.stdin(Stdio::null());
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    // The value changes in its place, its comment stays; the new key goes last.
    assert_eq!(
        config_text(&t),
        HAND_WRITTEN
            .replace("scope = \"openid\"   #", "scope = \"openid email\"   #")
            .replace(
                "client_id = \"staging-id\"\n",
                &format!("client_id = \"staging-id\"\noauth_url = \"{url}\"\n")
            )
    );
}

#[test]
fn the_same_values_again_rewrite_nothing() {
    let t = env_refusing_codes();
    let url = t.oauth_url();
    let args = ["--client-id", "same", "--oauth-url", &url];
    let mut cmd = configure(&t, &args);
    cmd.stdin(Stdio::null());
    assert_exit(&t.run_cmd(cmd), 0);
    let before = std::fs::metadata(config_path(&t)).unwrap();
    let mut cmd = configure(&t, &args);
    cmd.stdin(Stdio::null());
    let out = t.run_cmd(cmd);
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("nothing to change"), "{}", stderr(&out));
    let after = std::fs::metadata(config_path(&t)).unwrap();
    // A rewrite renames a new file into place: another inode.
    assert_eq!(
        (before.ino(), before.mtime(), before.mtime_nsec()),
        (after.ino(), after.mtime(), after.mtime_nsec())
    );
    assert_eq!(t.server.client_checks().len(), 2, "the client is checked each time");
}

#[test]
fn the_file_is_0600_in_a_new_0700_folder() {
    let t = env_refusing_codes();
    let home = t.home().join("new").join("home");
    let url = t.oauth_url();
    let mut cmd = configure(&t, &["--client-id", "c", "--oauth-url", &url]);
    cmd.env("LIGHTFI_TOKEN_HOME", &home).stdin(Stdio::null());
    assert_exit(&t.run_cmd(cmd), 0);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.join("config.toml")), 0o600);
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(home.parent().unwrap()), 0o700);
    let strays: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(strays, ["config.toml"], "no temporary file left");
}

#[test]
fn show_names_sources_and_never_the_secret() {
    let t = env_refusing_codes();
    t.forbid("shown-never");
    let url = t.oauth_url();
    let out = run_with_input(
        &t,
        configure(&t, &["--client-id", "c", "--oauth-url", &url, "--client-secret-stdin"]),
        "shown-never\n",
    );
    assert_exit(&out, 0);
    let out = t.run_cmd(configure(&t, &["--show"]));
    assert_exit(&out, 0);
    let text = stdout(&out);
    t.assert_no_leak(&out.stdout);
    assert!(text.contains("client id:     c  (config.toml [default])"), "{text}");
    assert!(text.contains("client secret: set  (config.toml [default])"), "{text}");
    assert!(
        text.contains("scope:         aws.cognito.signin.user.admin  (default)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("oauth url:     {url}  (config.toml [default])")),
        "{text}"
    );
}

#[test]
fn a_bare_401_means_the_secret_is_wrong() {
    let t = TestEnv::public();
    t.server.check_reply(Reply::status(401));
    let url = t.oauth_url();
    let mut cmd = configure(&t, &["--client-id", "c", "--oauth-url", &url]);
    cmd.stdin(Stdio::null());
    let out = t.run_cmd(cmd);
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(
        err.contains("the client secret is missing or wrong for client c"),
        "{err}"
    );
    assert!(err.contains("was saved"), "{err}");
    assert!(config_path(&t).exists());
}

/// `configure` against the test IdP: its confidential client (`CLIENT_ID`,
/// `CLIENT_SECRET`) and its public one (`CLIENT_ID-public`).
fn against_idp(idp: &Idp, port: u16, client_id: &str, secret: Option<&str>) -> (TestEnv, Output) {
    let t = TestEnv::public();
    let redirect = format!("http://localhost:{port}");
    let mut args = vec![
        "--client-id",
        client_id,
        "--oauth-url",
        &idp.oauth_url,
        "--redirect-uri",
        &redirect,
    ];
    if let Some(secret) = secret {
        args.push("--client-secret-stdin");
        t.forbid(secret);
    }
    let out = run_with_input(&t, configure(&t, &args), secret.unwrap_or(""));
    (t, out)
}

#[test]
fn the_client_check_against_the_test_idp() {
    let port = free_port();
    let idp = Idp::start(port, false, 60);
    let public = format!("{CLIENT_ID}-public");

    let (_, out) = against_idp(&idp, port, &public, None);
    assert_exit(&out, 0);

    let (t, out) = against_idp(&idp, port, CLIENT_ID, None);
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("the client secret is missing or wrong for client {CLIENT_ID}")),
        "{err}"
    );
    assert!(err.contains("was saved"), "{err}");
    assert!(config_text(&t).contains(CLIENT_ID), "saved all the same");

    let (_, out) = against_idp(&idp, port, CLIENT_ID, Some("not-the-secret"));
    assert_exit(&out, 4);
    assert!(stderr(&out).contains("missing or wrong"), "{}", stderr(&out));

    let (_, out) = against_idp(&idp, port, CLIENT_ID, Some(CLIENT_SECRET));
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains(&format!("accepts client {CLIENT_ID}")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreachable_server_is_exit_5_after_saving() {
    let t = TestEnv::public();
    // A port nobody listens on: bound, then closed.
    let url = format!("http://127.0.0.1:{}/oauth2", free_port());
    let mut cmd = configure(&t, &["--client-id", "c", "--oauth-url", &url, "--http-timeout", "5"]);
    cmd.stdin(Stdio::null());
    let out = t.run_cmd(cmd);
    assert_exit(&out, 5);
    let err = stderr(&out);
    assert!(err.contains("could not be checked"), "{err}");
    assert!(err.contains("the profile `default` was saved"), "{err}");
    assert!(config_text(&t).contains("client_id = \"c\""));
}

/// Wait until `pty` shows `text` after what it showed before (`seen` bytes).
fn wait_for(pty: &Pty, seen: &mut usize, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = pty.output();
        if let Some(at) = output.get(*seen..).and_then(|rest| rest.find(text)) {
            *seen += at + text.len();
            return;
        }
        assert!(Instant::now() < deadline, "did not answer: no {text:?} in {output:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn at_a_terminal_it_asks_and_the_secret_is_not_echoed() {
    let t = env_refusing_codes();
    t.forbid("typed-secret-42");
    let pty = Pty::open();
    let url = t.oauth_url();
    let mut cmd = configure(&t, &["--oauth-url", &url]);
    cmd.stdin(pty.slave()).stdout(pty.slave()).stderr(pty.slave());
    // The terminal becomes the child's controlling terminal (/dev/tty), as
    // in a login shell: the hidden prompt reads from there.
    // SAFETY: setsid and ioctl are async-signal-safe and touch no memory of ours.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut seen = 0;
    wait_for(&pty, &mut seen, "Client id: ");
    pty.type_text("typed-client\n");
    wait_for(&pty, &mut seen, "Client secret (hidden; empty for a public client): ");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pty.echoes() {
        assert!(Instant::now() < deadline, "did not answer: echo stayed on");
        std::thread::sleep(Duration::from_millis(10));
    }
    pty.type_text("typed-secret-42\n");
    wait_for(&pty, &mut seen, "Redirect URI [http://localhost:3000]: ");
    pty.type_text("\n");
    wait_for(&pty, &mut seen, "Scope [aws.cognito.signin.user.admin]: ");
    pty.type_text("openid\n");
    wait_for(&pty, &mut seen, "Log in now? [y/N] ");
    pty.type_text("n\n");
    assert!(child.wait().unwrap().success(), "{}", pty.output());
    let shown = pty.output();
    assert!(shown.contains("typed-client"), "the client id is echoed: {shown}");
    t.assert_no_leak(shown.as_bytes());
    assert!(
        !shown.contains("OAuth URL ["),
        "a value a flag gave is not asked: {shown}"
    );
    assert_eq!(
        config_text(&t),
        format!(
            "[default]\nclient_id = \"typed-client\"\nclient_secret = \"typed-secret-42\"\n\
             oauth_url = \"{url}\"\nscope = \"openid\"\n"
        )
    );
}

#[test]
fn status_without_a_client_id_points_to_configure() {
    let t = TestEnv::public();
    let out = t.run_cmd(configure_less(&t, &["status"]));
    assert_exit(&out, 4);
    assert!(
        stderr(&out).contains("hint: run `lightfi-token configure`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_command_without_a_client_id_points_to_configure() {
    let t = TestEnv::public();
    let out = t.run_cmd(configure_less(&t, &[]));
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(err.contains("no client id for profile `default`"), "{err}");
    assert!(err.contains("hint: run `lightfi-token configure` to save"), "{err}");
    let out = t.run_cmd(configure_less(&t, &["--profile", "staging"]));
    assert!(
        stderr(&out).contains("run `lightfi-token configure --profile staging`"),
        "{}",
        stderr(&out)
    );
    let out = t.run_cmd(configure_less(&t, &["doctor"]));
    assert_exit(&out, 1);
    assert_eq!(
        stdout(&out).matches("lightfi-token configure").count(),
        1,
        "{}",
        stdout(&out)
    );
}

/// `lightfi-token ARGS` with no client id from anywhere.
fn configure_less(t: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = t.cmd(args);
    cmd.env_remove("LIGHTFI_CLIENT_ID");
    cmd
}

#[test]
fn a_newcomer_gets_a_token_with_piped_answers_and_no_export() {
    let port = free_port();
    let idp = Idp::start(port, false, 60);
    let t = TestEnv::public();
    t.forbid(CLIENT_SECRET);
    let answers = format!(
        "{CLIENT_ID}\n{CLIENT_SECRET}\n{}\nhttp://localhost:{port}\n\n",
        idp.oauth_url
    );
    let out = run_with_input(&t, configure(&t, &[]), &answers);
    assert_exit(&out, 0);
    // From here on, only what config.toml says: no client id, URL or secret in the environment.
    let mut login = configure_less(&t, &["login"]);
    login
        .env_remove("LIGHTFI_OAUTH_URL")
        .env("BROWSER", idp::idp_dir().join("browser.sh"));
    assert_exit(&t.run_cmd(login), 0);
    let mut get = configure_less(&t, &["-r"]);
    get.env_remove("LIGHTFI_OAUTH_URL");
    let out = t.run_cmd(get);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim().split('.').count(), 3, "a JWT access token");
}
