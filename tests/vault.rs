//! The Vault/OpenBao client against a real OpenBao dev server, in process:
//! reads, check-and-set writes and their races, denied and unreachable
//! servers; and the `integrations/vault/` policies and agent template
//! applied to that server.

#![cfg(unix)]

#[path = "common/bao.rs"]
mod bao;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bao::Bao;
use lightfi_token::secret::{AccessToken, RefreshToken, VaultToken};
use lightfi_token::vault::{CasOutcome, Record, Settings, Vault, Versioned};
use time::OffsetDateTime;
use time::macros::datetime;

const MOUNT: &str = "secret";
const PATH: &str = "lightfi-token/ci";

fn vault(bao: &Bao, token: &str) -> Vault {
    Vault::new(Settings {
        addr: bao.addr.clone(),
        namespace: None,
        cacert: None,
        token: VaultToken::new(token),
        mount: MOUNT.into(),
        path: PATH.into(),
        timeout: Duration::from_secs(10),
    })
}

fn record(access: &str) -> Record {
    Record {
        access_token: AccessToken::new(access),
        expires_at: datetime!(2026-12-04 13:00 UTC),
        obtained_at: datetime!(2026-12-04 12:00 UTC),
        id_token: None,
        id_expires_at: None,
        refresh_token: Some(RefreshToken::new("refresh-never-printed")),
        logged_in_at: None,
        failure: None,
        lease: None,
    }
}

fn snippet(name: &str) -> PathBuf {
    common::repo_root().join("integrations/vault").join(name)
}

#[test]
fn a_missing_secret_reads_as_none() {
    let bao = Bao::start();
    assert_eq!(vault(&bao, bao::ROOT_TOKEN).read().unwrap(), None);
}

#[test]
fn cas_zero_creates_once_and_a_stale_version_conflicts() {
    let bao = Bao::start();
    let v = vault(&bao, bao::ROOT_TOKEN);
    assert_eq!(
        v.write_cas(&record("a1"), 0).unwrap(),
        CasOutcome::Written { version: 1 }
    );
    assert_eq!(v.write_cas(&record("a-other"), 0).unwrap(), CasOutcome::Conflict);
    assert_eq!(
        v.write_cas(&record("a2"), 1).unwrap(),
        CasOutcome::Written { version: 2 }
    );
    assert_eq!(v.write_cas(&record("a-stale"), 1).unwrap(), CasOutcome::Conflict);
    assert_eq!(
        v.read().unwrap(),
        Some(Versioned {
            version: 2,
            value: record("a2")
        })
    );
    v.delete_all().unwrap();
    assert_eq!(v.read().unwrap(), None);
    assert_eq!(
        v.write_cas(&record("a3"), 0).unwrap(),
        CasOutcome::Written { version: 1 }
    );
}

#[test]
fn sixteen_writers_on_one_version_one_wins() {
    let bao = Bao::start();
    let v = Arc::new(vault(&bao, bao::ROOT_TOKEN));
    v.write_cas(&record("start"), 0).unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let (v, barrier) = (v.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (i, v.write_cas(&record(&format!("racer-{i}")), 1).unwrap())
            })
        })
        .collect();
    let outcomes: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| *o == CasOutcome::Written { version: 2 })
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|(_, o)| *o == CasOutcome::Conflict).count(), 15);
    let stored = v.read().unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.value, record(&format!("racer-{}", winners[0].0)));
}

#[test]
fn a_token_without_permission_is_exit_4_naming_the_path_and_capability() {
    let bao = Bao::start();
    let token = bao.token_create(&["default"]);
    let err = vault(&bao, &token).read().unwrap_err();
    assert_eq!(err.exit_code(), 4, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("secret/data/lightfi-token/ci") && msg.contains("`read`"),
        "{msg}"
    );
    assert!(!msg.contains(&token) && !err.hint().contains(&token));
    assert!(err.hint().contains("policy"), "{}", err.hint());
    let err = vault(&bao, "not-a-token").write_cas(&record("x"), 0).unwrap_err();
    assert_eq!(err.exit_code(), 4, "{err}");
    assert!(err.to_string().contains("`create`"), "{err}");
}

#[test]
fn a_sealed_server_is_exit_5() {
    let bao = Bao::start();
    let v = vault(&bao, bao::ROOT_TOKEN);
    v.write_cas(&record("a1"), 0).unwrap();
    bao.seal();
    let err = v.read().unwrap_err();
    assert_eq!(err.exit_code(), 5, "{err}");
    assert!(err.to_string().contains("unreachable or sealed"), "{err}");
    assert!(err.to_string().contains(&bao.addr), "{err}");
}

#[test]
fn a_stopped_server_is_exit_5() {
    let mut bao = Bao::start();
    let v = vault(&bao, bao::ROOT_TOKEN);
    bao.stop();
    for err in [
        v.read().unwrap_err(),
        v.write_cas(&record("a"), 0).unwrap_err(),
        v.delete_all().unwrap_err(),
    ] {
        assert_eq!(err.exit_code(), 5, "{err}");
        assert!(err.to_string().contains("is unreachable or sealed"), "{err}");
    }
}

#[test]
fn a_missing_mount_is_a_configuration_error() {
    let bao = Bao::start();
    let v = Vault::new(Settings {
        mount: "nomount".into(),
        ..vault(&bao, bao::ROOT_TOKEN).settings().clone()
    });
    let err = v.read().unwrap_err();
    assert_eq!(err.exit_code(), 4, "{err}");
    assert!(err.to_string().contains("nomount/data/lightfi-token/ci"), "{err}");
    bao.secrets_enable_kv2("nomount");
    assert_eq!(v.read().unwrap(), None);
}

#[test]
fn capabilities_are_listed_for_root_and_a_runner() {
    let bao = Bao::start();
    assert_eq!(
        vault(&bao, bao::ROOT_TOKEN).capabilities().unwrap(),
        lightfi_token::vault::Capabilities {
            data: vec!["root".into()],
            metadata: vec!["root".into()],
        }
    );
    bao.policy_write("runner", &snippet("runner.hcl"));
    let mut caps = vault(&bao, &bao.token_create(&["runner"])).capabilities().unwrap();
    caps.data.sort();
    assert_eq!(caps.data, ["read", "update"]);
    assert_eq!(caps.metadata, ["deny"]);
}

#[test]
fn the_runner_policy_reads_and_updates_but_never_creates_or_deletes() {
    let bao = Bao::start();
    bao.policy_write("runner", &snippet("runner.hcl"));
    let runner = vault(&bao, &bao.token_create(&["runner"]));
    let err = runner.write_cas(&record("a1"), 0).unwrap_err();
    assert_eq!(err.exit_code(), 4, "{err}");
    assert!(err.to_string().contains("`create`"), "{err}");

    vault(&bao, bao::ROOT_TOKEN).write_cas(&record("a1"), 0).unwrap();
    assert_eq!(runner.read().unwrap().unwrap().version, 1);
    assert_eq!(
        runner.write_cas(&record("a2"), 1).unwrap(),
        CasOutcome::Written { version: 2 }
    );
    let err = runner.delete_all().unwrap_err();
    assert_eq!(err.exit_code(), 4, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("secret/metadata/lightfi-token/ci") && msg.contains("`delete`"),
        "{msg}"
    );
    assert_eq!(runner.read().unwrap().unwrap().version, 2);
}

#[test]
fn the_seeding_policy_creates_and_deletes() {
    let bao = Bao::start();
    bao.policy_write("seed", &snippet("seed.hcl"));
    let seeder = vault(&bao, &bao.token_create(&["seed"]));
    assert_eq!(
        seeder.write_cas(&record("a1"), 0).unwrap(),
        CasOutcome::Written { version: 1 }
    );
    assert_eq!(
        seeder.write_cas(&record("a2"), 1).unwrap(),
        CasOutcome::Written { version: 2 }
    );
    seeder.delete_all().unwrap();
    assert_eq!(seeder.read().unwrap(), None);
}

/// The agent example, its paths moved into a temporary folder, logs in with
/// an AppRole bound to the runner policy and renders the template once.
#[test]
fn the_agent_example_renders_the_token_file_from_the_record() {
    let bao = Bao::start();
    bao.policy_write("lightfi-token-runner", &snippet("runner.hcl"));
    bao.cli(&["auth", "enable", "approle"]);
    bao.cli(&[
        "write",
        "auth/approle/role/lightfi-runner",
        "token_policies=lightfi-token-runner",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let role_id = bao.cli(&["read", "-field=role_id", "auth/approle/role/lightfi-runner/role-id"]);
    let secret_id = bao.cli(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/lightfi-runner/secret-id",
    ]);
    std::fs::write(at("role-id"), role_id).unwrap();
    std::fs::write(at("secret-id"), secret_id).unwrap();
    std::fs::copy(snippet("token.json.ctmpl"), at("token.json.ctmpl")).unwrap();
    let folder = format!("{}/", dir.path().display());
    let config = std::fs::read_to_string(snippet("agent.hcl"))
        .unwrap()
        .replace("/etc/lightfi-token/", &folder)
        .replace("/run/lightfi-token/", &folder)
        // Render once and exit, instead of running as a service.
        + "\nexit_after_auth = true\ntemplate_config {\n  exit_on_retry_failure = true\n}\n";
    std::fs::write(at("agent.hcl"), config).unwrap();

    let mut written = record("agent-access-token");
    written.expires_at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + Duration::from_secs(3600);
    vault(&bao, bao::ROOT_TOKEN).write_cas(&written, 0).unwrap();

    run_agent(&bao, &at("agent.hcl"));
    let rendered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(at("token.json")).expect("the agent rendered no file")).unwrap();
    assert_eq!(
        rendered,
        serde_json::json!({
            "access_token": "agent-access-token",
            "expires_at": lightfi_token::output::rfc3339(written.expires_at),
        })
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(at("token.json")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(at("vault-token").exists(), "the sink file for vault_token_file");
}

/// `bao agent -config=CONFIG` until it exits; fails the test if it fails or
/// is still running after a generous limit.
fn run_agent(bao: &Bao, config: &Path) {
    let log = bao.dir.path().join("agent.log");
    let mut child = Command::new(bao::bao_bin())
        .args(["agent", &format!("-config={}", config.display())])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", bao.dir.path())
        .env("VAULT_ADDR", &bao.addr)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::options().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bao agent did not answer:\n{}", std::fs::read_to_string(&log).unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "bao agent failed ({status}):\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn an_https_server_is_trusted_through_its_ca_file_only() {
    let bao = Bao::start_tls();
    let with_ca = Vault::new(Settings {
        cacert: Some(bao.cacert()),
        ..vault(&bao, bao::ROOT_TOKEN).settings().clone()
    });
    assert_eq!(
        with_ca.write_cas(&record("a1"), 0).unwrap(),
        CasOutcome::Written { version: 1 }
    );
    let err = vault(&bao, bao::ROOT_TOKEN).read().unwrap_err();
    assert_eq!(err.exit_code(), 5, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    let not_pem = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_pem.path(), "not a certificate").unwrap();
    let err = Vault::new(Settings {
        cacert: Some(not_pem.path().to_path_buf()),
        ..with_ca.settings().clone()
    })
    .read()
    .unwrap_err();
    assert_eq!(err.exit_code(), 4, "{err}");
    assert!(err.hint().contains("VAULT_CACERT"), "{}", err.hint());
}
