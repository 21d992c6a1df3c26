//! `storage = "vault"` against a real OpenBao dev server: machines (separate
//! homes) × callers (processes) on one shared login make one token request
//! per wave, keep a rotating refresh token in Vault only, survive the lease
//! holder's death, and fall back on their cached token when Vault fails.

#![cfg(unix)]

#[path = "common/bao.rs"]
mod bao;
mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use bao::Bao;
use common::{Gate, Reply, TestEnv, assert_exit, stderr, stdout};

const VAULT_PATH: &str = "secret/lightfi-token/ci";
const SEEDED_REFRESH: &str = "seeded-refresh-never-printed";
/// Far more than any caller takes: a caller still running then has hung.
const LIMIT: Duration = Duration::from_secs(120);

/// A fleet: one fake token endpoint, one OpenBao, and machines given by their homes.
struct Fleet {
    env: TestEnv,
    bao: Bao,
    machines: Vec<tempfile::TempDir>,
}

impl Fleet {
    fn new(machines: usize) -> Fleet {
        let env = TestEnv::new();
        env.forbid(SEEDED_REFRESH);
        Fleet {
            env,
            bao: Bao::start(),
            machines: (0..machines).map(|_| tempfile::tempdir().unwrap()).collect(),
        }
    }

    /// `lightfi-token ARGS` on machine `m`, storing in Vault as root.
    fn cmd(&self, m: usize, args: &[&str]) -> Command {
        let home = self.machines[m].path();
        let mut cmd = self.env.cmd(args);
        cmd.env("HOME", home)
            .env("XDG_RUNTIME_DIR", home)
            .env("LIGHTFI_TOKEN_HOME", home)
            .env("LIGHTFI_STORAGE", "vault")
            .env("LIGHTFI_VAULT_PATH", VAULT_PATH)
            .env("VAULT_ADDR", &self.bao.addr)
            .env("VAULT_TOKEN", bao::ROOT_TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, m: usize, args: &[&str]) -> Output {
        let out = common::output_within(self.cmd(m, args), LIMIT);
        self.env.assert_no_leak(&out.stderr);
        out
    }

    /// Write the record as a seeding would, with an access token expiring in `expires_in` s.
    fn seed(&self, expires_in: i64) {
        let now = time::OffsetDateTime::now_utc();
        let at = |secs: i64| common_rfc3339(now + time::Duration::seconds(secs));
        self.bao.cli(&[
            "kv",
            "put",
            "-mount=secret",
            "lightfi-token/ci",
            "access_token=seeded-access",
            &format!("expires_at={}", at(expires_in)),
            &format!("obtained_at={}", at(expires_in - 3600)),
            &format!("refresh_token={SEEDED_REFRESH}"),
        ]);
    }

    /// Make the shared token and every machine's cache stale.
    fn expire(&self) {
        let past = common_rfc3339(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
        self.bao.cli(&[
            "kv",
            "patch",
            "-mount=secret",
            "lightfi-token/ci",
            &format!("expires_at={past}"),
        ]);
        for home in &self.machines {
            let _ = std::fs::remove_dir_all(home.path().join("tokens"));
        }
    }

    /// The record as OpenBao holds it (`data.data`), and its version.
    fn record(&self) -> Option<(serde_json::Value, u64)> {
        let out = self.bao.cli_as(
            bao::ROOT_TOKEN,
            &["kv", "get", "-format=json", "-mount=secret", "lightfi-token/ci"],
            "",
        );
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        Some((
            v["data"]["data"].clone(),
            v["data"]["metadata"]["version"].as_u64().unwrap(),
        ))
    }

    /// `callers` processes on each machine at once; their outputs.
    fn wave(&self, callers: usize, args: &[&str]) -> Vec<Output> {
        let children: Vec<Child> = (0..self.machines.len())
            .flat_map(|m| (0..callers).map(move |_| m))
            .map(|m| self.cmd(m, args).spawn().unwrap())
            .collect();
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                self.env.assert_no_leak(&out.stderr);
                out
            })
            .collect()
    }

    /// Whether `needle` is in any file under any machine's home.
    fn in_machine_files(&self, needle: &str) -> bool {
        self.machines.iter().any(|home| contains(home.path(), needle))
    }
}

fn contains(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            contains(&path, needle)
        } else {
            std::fs::read(&path).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle))
        }
    })
}

fn common_rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn eight_machines_of_eight_callers_make_one_token_request_per_wave_with_rotation() {
    let fleet = Fleet::new(8);
    fleet.env.server.fallback(Reply::Fresh {
        expires_in: 3600,
        rotate: true,
    });
    fleet.seed(-60);
    let mut used = vec![];
    for wave in 1..=10 {
        if wave > 1 {
            fleet.expire();
        }
        let outs = fleet.wave(8, &["-r"]);
        for out in &outs {
            assert_exit(out, 0);
        }
        let first = stdout(&outs[0]);
        assert!(
            outs.iter().all(|o| stdout(o) == first),
            "wave {wave}: one token for all"
        );
        let requests = fleet.env.server.token_requests();
        assert_eq!(requests.len(), wave, "wave {wave}: one token request per wave");
        used.push(requests[wave - 1].field("refresh_token").unwrap().to_string());
    }
    // Rotation: each refresh used the refresh token the one before it got, so
    // no refresh token was used twice (which a rotating server rejects).
    assert_eq!(used[0], SEEDED_REFRESH);
    for (n, token) in used.iter().enumerate().skip(1) {
        assert_eq!(token, &format!("rotated-refresh-{n}"), "{used:?}");
    }
    let (record, _) = fleet.record().unwrap();
    assert_eq!(record["refresh_token"], "rotated-refresh-10");
    assert!(
        record.get("lease").is_none_or(|l| l.is_null()),
        "the last holder released it: {record}"
    );
    for token in used.iter().chain([&"rotated-refresh-10".to_string()]) {
        assert!(!fleet.in_machine_files(token), "{token} is in a machine's files");
    }
}

#[test]
fn the_lease_holder_killed_mid_refresh_leaves_one_refresh_after_its_lease() {
    let fleet = Fleet::new(3);
    fleet.seed(-60);
    let gate = Gate::new();
    fleet
        .env
        .server
        .script([Reply::Held(gate.clone(), Box::new(Reply::fresh()))]);
    // A 1 s HTTP timeout makes a 13 s lease.
    let mut holder = fleet.cmd(0, &["-r", "--http-timeout", "1"]).spawn().unwrap();
    assert!(gate.wait_arrivals(1, LIMIT), "the holder's refresh did not answer");
    holder.kill().unwrap();
    holder.wait().unwrap();
    gate.open();
    let (record, leased) = fleet.record().unwrap();
    assert!(record["lease"]["holder"].is_string(), "{record}");
    let outs: Vec<Output> = fleet.wave(4, &["-r", "--http-timeout", "1"])[4..].to_vec();
    for out in &outs {
        assert_exit(out, 0);
    }
    let requests = fleet.env.server.token_requests();
    // The killed holder's (and its retries at the gate) and one more.
    let after: Vec<_> = requests.iter().filter(|r| r.at > requests[0].at).collect();
    assert_eq!(
        requests.len() - gate.arrivals(),
        1,
        "one refresh after the lease expired: {after:?}"
    );
    assert_eq!(requests.last().unwrap().field("refresh_token"), Some(SEEDED_REFRESH));
    let (record, version) = fleet.record().unwrap();
    assert!(version > leased);
    assert_eq!(record["refresh_token"], SEEDED_REFRESH, "without rotation it is kept");
    assert!(
        record["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{record}"
    );
}

#[test]
fn a_stopped_or_sealed_vault_serves_the_cached_token_while_it_is_valid() {
    for seal in [false, true] {
        let mut fleet = Fleet::new(2);
        // Valid for 100 s: stale for the default --min-valid (300 s).
        fleet.seed(100);
        assert_exit(&fleet.run(0, &["-r", "--min-valid", "10"]), 0);
        if seal {
            fleet.bao.seal();
        } else {
            fleet.bao.stop();
        }
        let out = fleet.run(0, &["-r"]);
        assert_exit(&out, 0);
        assert_eq!(stdout(&out).trim(), "seeded-access");
        assert!(
            stderr(&out).contains("using the cached access token"),
            "{}",
            stderr(&out)
        );
        let out = fleet.run(1, &["-r"]);
        assert_exit(&out, 5);
        assert!(stderr(&out).contains("unreachable or sealed"), "{}", stderr(&out));
        assert!(fleet.env.server.token_requests().is_empty());
    }
}

#[test]
fn a_vault_token_without_permission_is_exit_4_naming_the_path() {
    let fleet = Fleet::new(1);
    fleet.seed(-60);
    let token = fleet.bao.token_create(&["default"]);
    let mut cmd = fleet.cmd(0, &["-r"]);
    cmd.env("VAULT_TOKEN", &token);
    let out = common::output_within(cmd, LIMIT);
    assert_exit(&out, 4);
    assert!(
        stderr(&out).contains("secret/data/lightfi-token/ci"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("`read`"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(&token));
}

#[test]
fn seeding_from_stdin_puts_the_login_in_vault_only_and_logout_deletes_it() {
    let fleet = Fleet::new(2);
    let mut seed = fleet.cmd(0, &["login", "--refresh-token-stdin"]);
    seed.stdin(Stdio::piped());
    let mut child = seed.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), SEEDED_REFRESH.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let (record, _) = fleet.record().unwrap();
    assert_eq!(record["refresh_token"], SEEDED_REFRESH);
    assert!(!fleet.in_machine_files(SEEDED_REFRESH));
    // Another machine gets the token from the record, without a request.
    let out = fleet.run(1, &["-r"]);
    assert_exit(&out, 0);
    assert_eq!(fleet.env.server.token_requests().len(), 1);
    assert_exit(&fleet.run(0, &["logout"]), 0);
    assert!(fleet.record().is_none(), "the record is deleted");
    let revoked = fleet.env.server.revoke_requests();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].field("token"), Some(SEEDED_REFRESH));
}

#[test]
fn status_and_doctor_show_the_record_and_check_the_capabilities() {
    let fleet = Fleet::new(1);
    fleet.seed(-60);
    assert_exit(&fleet.run(0, &["-r"]), 0);
    let out = fleet.run(0, &["status"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("storage:       vault"), "{text}");
    assert!(
        text.contains(&format!(
            "vault:         secret/data/lightfi-token/ci at {}: version 3",
            fleet.bao.addr
        )),
        "seeded, leased, refreshed: {text}"
    );
    let out = fleet.run(0, &["doctor", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |name: &str| {
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {json}"))
            .clone()
    };
    assert_eq!(check("vault")["status"], "ok", "{json}");
    assert_eq!(check("vault_capabilities")["status"], "ok", "{json}");
    // A runner's policy: read and update only.
    let policy = fleet.env.home().join("runner.hcl");
    std::fs::write(
        &policy,
        "path \"secret/data/lightfi-token/ci\" { capabilities = [\"read\", \"update\"] }\n",
    )
    .unwrap();
    fleet.bao.policy_write("runner", &policy);
    let token = fleet.bao.token_create(&["runner"]);
    let mut cmd = fleet.cmd(0, &["doctor", "--json"]);
    cmd.env("VAULT_TOKEN", &token);
    let json: serde_json::Value = serde_json::from_slice(&common::output_within(cmd, LIMIT).stdout).unwrap();
    let caps = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "vault_capabilities")
        .unwrap()
        .clone();
    assert_eq!(caps["status"], "warn", "{json}");
}

#[test]
fn exec_keeps_the_vault_token_from_the_command() {
    let fleet = Fleet::new(1);
    fleet.seed(3000);
    let out = fleet.run(0, &["exec", "--", "sh", "-c", "echo \"[${VAULT_TOKEN:-unset}]\""]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out).trim(), "[unset]");
}
