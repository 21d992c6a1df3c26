//! The engine's path for `storage = "vault"`: one login shared by a fleet,
//! kept in a Vault/OpenBao KV version 2 secret. Each machine caches the
//! access token in its own store (the cached path stays a file read); a
//! stale token is taken from the record when another machine refreshed it,
//! else refreshed by the one machine holding the record's lease, which
//! writes the new record with check-and-set on the version it leased.
//! Everything here runs with the machine's profile lock held, so one process
//! per machine talks to Vault.

pub(in crate::token) mod seed;
pub mod view;

use std::time::{Duration, Instant};

use serde_json::Value;
use time::OffsetDateTime;

use crate::config::{Settings, VaultTokenFrom};
use crate::error::{Error, Result};
use crate::oauth::{self, Failure, TokenResponse, Transport};
use crate::report;
use crate::secret::{RefreshToken, VaultToken};
use crate::store::{Access, Attempt, Lock, Store, Tokens};
use crate::vault::{self, CasOutcome, Lease, LeaseState, Record, Vault, Versioned};

use super::{Want, attempts};

/// How often a waiter reads the record while another machine refreshes.
const POLL: Duration = Duration::from_millis(200);

/// One caller's work on the shared login, with the machine's lock held.
pub(in crate::token) struct Shared<'a> {
    pub settings: &'a Settings,
    pub transport: &'a dyn Transport,
    pub store: &'a Store,
    pub lock: &'a Lock,
    pub want: Want,
}

/// What the record says to do next.
enum Step {
    Serve(Access),
    /// Another machine holds the lease until then: wait for its record.
    Wait(OffsetDateTime),
    /// The lease is free: take it, then refresh.
    Take,
}

/// The Vault client for the profile: the Vault token is read now, not on
/// the cached path.
pub(in crate::token) fn connect(settings: &Settings) -> Result<Vault> {
    let at = settings.vault.as_ref().ok_or_else(|| {
        Error::config(
            "this profile does not keep its login in Vault",
            "set storage = \"vault\" and vault_path in the profile",
        )
    })?;
    let token = match &at.token {
        VaultTokenFrom::Env(token) => token.clone(),
        VaultTokenFrom::File(path) => match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => VaultToken::new(text.trim()),
            _ => {
                return Err(Error::VaultDenied {
                    msg: format!(
                        "no Vault token: VAULT_TOKEN is unset and {} is missing or empty",
                        path.display()
                    ),
                    hint: "set VAULT_TOKEN, or vault_token_file to the file a Vault/OpenBao Agent's auto-auth sink \
                           writes, or log in with `bao login` / `vault login`"
                        .into(),
                });
            }
        },
    };
    Ok(Vault::new(vault::Settings {
        addr: at.addr.clone(),
        namespace: at.namespace.clone(),
        cacert: at.cacert.clone(),
        token,
        mount: at.mount.clone(),
        path: at.path.clone(),
        timeout: settings.http_timeout,
    }))
}

/// How long a lease lasts: the token request's tries with their pauses,
/// three times the HTTP timeout and some.
pub(in crate::token) fn lease_length(settings: &Settings) -> Duration {
    settings.http_timeout * 3 + Duration::from_secs(10)
}

/// Who takes a lease: this process on this machine, unique per attempt.
fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "host".into());
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    format!("{}:{}:{}", host.trim(), std::process::id(), u32::from_be_bytes(random))
}

/// The access token a record holds, as the local cache keeps it.
pub(in crate::token) fn access_of(record: &Record) -> Access {
    Access {
        token: record.access_token.clone(),
        token_type: "Bearer".into(),
        obtained_at: record.obtained_at,
        expires_at: record.expires_at,
        scope: None,
        env_refresh_digest: None,
        id_token: record.id_token.clone(),
        id_expires_at: record.id_expires_at,
    }
}

/// The record a token response makes; `refresh_token` is kept when the
/// response brings no new one.
pub(in crate::token) fn record_of(response: TokenResponse, refresh_token: Option<RefreshToken>) -> Record {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let expires_at = now + time::Duration::seconds(response.expires_in.min(i32::MAX as u64) as i64);
    let id_expires_at = response.id_token.as_ref().map(|id| {
        crate::jwt::claims(id.expose())
            .and_then(|c| c.get("exp")?.as_i64())
            .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok())
            .map_or(expires_at, |exp| exp.min(expires_at + time::Duration::days(1)))
    });
    Record {
        access_token: response.access_token,
        expires_at,
        obtained_at: now,
        id_token: response.id_token,
        id_expires_at,
        refresh_token: response.refresh_token.or(refresh_token),
        logged_in_at: None,
        failure: None,
        lease: None,
    }
}

impl Shared<'_> {
    /// A fresh access token from the shared login, refreshing it if this
    /// machine gets the lease. `tokens` is the machine's cache, updated.
    pub(in crate::token) fn obtain(&self, tokens: &mut Tokens) -> Result<Access> {
        let vault = connect(self.settings)?;
        let me = holder_id();
        let started = OffsetDateTime::now_utc();
        let give_up = Instant::now() + lease_length(self.settings) * 2 + self.settings.http_timeout;
        let mut first: Option<Record> = None;
        loop {
            let current = match vault.read() {
                Ok(Some(current)) => current,
                Ok(None) => return Err(not_seeded(&vault)),
                Err(e) => return self.or_cached(tokens, e),
            };
            let baseline = first.get_or_insert_with(|| current.value.clone());
            let forced = self.want.force_refresh && vault::same_but_lease(baseline, &current.value);
            match self.step(&current.value, forced, started, tokens, &me)? {
                Step::Serve(access) => return self.cache(tokens, access),
                Step::Wait(until) => {
                    if let Err(e) = self.wait(&vault, &current, until, give_up) {
                        return self.or_cached(tokens, e);
                    }
                }
                Step::Take => {
                    let deadline = OffsetDateTime::now_utc() + lease_length(self.settings);
                    let leased = Record {
                        lease: Some(Lease {
                            holder: me.clone(),
                            deadline,
                        }),
                        ..current.value
                    };
                    match vault.write_cas(&leased, current.version) {
                        Ok(CasOutcome::Written { version }) => {
                            return self.refresh(&vault, tokens, Versioned { version, value: leased });
                        }
                        Ok(CasOutcome::Conflict) => {}
                        Err(e) => return self.or_cached(tokens, e),
                    }
                }
            }
            if Instant::now() > give_up {
                return self.or_cached(tokens, gave_up(&vault));
            }
        }
    }

    /// What to do about the record as read: serve its token, answer with its
    /// recorded failure, wait for the lease holder, or take the lease.
    fn step(&self, record: &Record, forced: bool, started: OffsetDateTime, tokens: &Tokens, me: &str) -> Result<Step> {
        let now = OffsetDateTime::now_utc();
        let access = access_of(record);
        if !forced && access.is_fresh(self.want.kind, now, self.want.min_valid) {
            return Ok(Step::Serve(access));
        }
        if record.refresh_token.is_none() {
            return Err(Error::LoginRequired {
                msg: format!(
                    "the shared login in Vault has no refresh token (rejected or logged out; profile `{}`)",
                    self.settings.profile
                ),
            });
        }
        if let Some(attempt) = failure_of(record).filter(|a| !forced && attempts::still_applies(a, started, now)) {
            let fallback = self.fallback(tokens, record, now);
            return attempts::repeat(&attempt, fallback, now, false).map(Step::Serve);
        }
        Ok(match vault::lease_state(record, now, me) {
            LeaseState::HeldByOther { until } => Step::Wait(until),
            LeaseState::Free | LeaseState::HeldByMe => Step::Take,
        })
    }

    /// Wait until the record changes in more than its lease, the lease ends,
    /// or `give_up`.
    fn wait(&self, vault: &Vault, seen: &Versioned<Record>, until: OffsetDateTime, give_up: Instant) -> Result<()> {
        report::debug(|| "another machine is refreshing the shared login; waiting for its record".into());
        while OffsetDateTime::now_utc() < until && Instant::now() < give_up {
            std::thread::sleep(oauth::jitter(POLL));
            match vault.read()? {
                Some(now) if now.version != seen.version && !vault::same_but_lease(&now.value, &seen.value) => {
                    return Ok(());
                }
                Some(_) => {}
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// Refresh with the record's refresh token while holding its lease, and
    /// write the result on top of the leased version only.
    fn refresh(&self, vault: &Vault, tokens: &mut Tokens, leased: Versioned<Record>) -> Result<Access> {
        let Versioned { version, value: record } = leased;
        let Some(refresh_token) = record.refresh_token.clone() else {
            return Err(not_seeded(vault));
        };
        report::debug(|| format!("refreshing the shared login (record version {version})"));
        let request = oauth::refresh_request(&self.settings.client, &refresh_token);
        match oauth::token(self.transport, &request) {
            Ok(response) => {
                let next = Record {
                    logged_in_at: record.logged_in_at,
                    ..record_of(response, Some(refresh_token))
                };
                self.publish(vault, &next, version);
                self.cache(tokens, access_of(&next))
            }
            Err(Failure::OAuth(e)) if e.error == "invalid_grant" => {
                let dead = Record {
                    refresh_token: None,
                    lease: None,
                    failure: None,
                    ..record
                };
                self.publish(vault, &dead, version);
                Err(Error::RefreshRejected(e))
            }
            Err(failure) => {
                let (kind, err, retry_after) = attempts::classify(failure);
                let attempt = attempts::failed(kind, &err, retry_after);
                let failed = Record {
                    failure: serde_json::to_value(&attempt).ok().and_then(|v| match v {
                        Value::Object(map) => Some(map),
                        _ => None,
                    }),
                    lease: None,
                    ..record.clone()
                };
                self.publish(vault, &failed, version);
                let now = OffsetDateTime::now_utc();
                attempts::repeat(&attempt, self.fallback(tokens, &record, now), now, true)
            }
        }
    }

    /// Write `next` on top of `version`. A rotated refresh token exists only
    /// in this process until this succeeds, so a failing Vault is tried
    /// again (as long as the lease lasts); a conflict means the lease was
    /// lost to a machine that waited it out, and its record stands.
    fn publish(&self, vault: &Vault, next: &Record, version: u64) {
        let until = Instant::now() + lease_length(self.settings);
        loop {
            match vault.write_cas(next, version) {
                Ok(CasOutcome::Written { .. }) => return,
                Ok(CasOutcome::Conflict) => {
                    report::warn(
                        "this machine's lease on the shared login ran out before its refresh was written; \
                         another machine's record was kept",
                    );
                    return;
                }
                Err(e) if Instant::now() < until && matches!(e, Error::VaultUnavailable { .. }) => {
                    report::debug(|| format!("writing the refreshed login failed, trying again: {e}"));
                    std::thread::sleep(oauth::jitter(Duration::from_secs(1)));
                }
                Err(e) => {
                    report::warn(&format!("the refreshed login could not be written to Vault: {e}"));
                    return;
                }
            }
        }
    }

    /// Keep `access` in the machine's cache (never the refresh token).
    fn cache(&self, tokens: &mut Tokens, access: Access) -> Result<Access> {
        tokens.access = Some(access.clone());
        tokens.refresh_token = None;
        tokens.last_failure = None;
        self.store.save(tokens, self.lock)?;
        Ok(access)
    }

    /// The unexpired token to serve while the refresh fails: the record's or the cache's.
    fn fallback(&self, tokens: &Tokens, record: &Record, now: OffsetDateTime) -> Option<Access> {
        let from_record = Some(access_of(record));
        [from_record, tokens.access.clone()]
            .into_iter()
            .flatten()
            .find(|a| a.is_fresh(self.want.kind, now, 0))
    }

    /// Vault failed: the cached token while it has not expired, with a
    /// warning; else the error.
    fn or_cached(&self, tokens: &Tokens, err: Error) -> Result<Access> {
        let now = OffsetDateTime::now_utc();
        if let Error::VaultUnavailable { .. } = err
            && let Some(access) = tokens.access.as_ref().filter(|a| a.is_fresh(self.want.kind, now, 0))
        {
            report::warn(&format!(
                "{err}; using the cached access token, which expires in {} s",
                access.seconds_left(now)
            ));
            return Ok(access.clone());
        }
        Err(err)
    }
}

/// The record's failure, as the engine wrote it.
fn failure_of(record: &Record) -> Option<Attempt> {
    let map = record.failure.clone()?;
    serde_json::from_value(Value::Object(map)).ok()
}

fn not_seeded(vault: &Vault) -> Error {
    Error::LoginRequired {
        msg: format!(
            "no login in Vault at {} (run `lightfi-token login --storage vault` once, on a workstation)",
            vault.data_path()
        ),
    }
}

fn gave_up(vault: &Vault) -> Error {
    Error::VaultUnavailable {
        msg: format!(
            "the shared login at {} was not refreshed in time by the machine holding its lease",
            vault.data_path()
        ),
        hint: "run the command again; `lightfi-token status` shows the lease holder".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AccessToken;
    use crate::store::AttemptKind;

    fn response(refresh: Option<&str>) -> TokenResponse {
        TokenResponse {
            access_token: AccessToken::new("a1"),
            token_type: "Bearer".into(),
            expires_in: 3600,
            refresh_token: refresh.map(RefreshToken::new),
            scope: None,
            id_token: None,
        }
    }

    #[test]
    fn a_refresh_keeps_the_refresh_token_unless_it_rotated() {
        let kept = record_of(response(None), Some(RefreshToken::new("r0")));
        assert_eq!(kept.refresh_token, Some(RefreshToken::new("r0")));
        let rotated = record_of(response(Some("r1")), Some(RefreshToken::new("r0")));
        assert_eq!(rotated.refresh_token, Some(RefreshToken::new("r1")));
        assert!(rotated.lease.is_none() && rotated.failure.is_none());
        assert_eq!((rotated.expires_at - rotated.obtained_at).whole_seconds(), 3600);
    }

    #[test]
    fn a_recorded_failure_reads_back_as_the_attempt() {
        let attempt = attempts::failed(
            AttemptKind::Unavailable,
            &Error::ServerUnavailable { msg: "down".into() },
            None,
        );
        let map = match serde_json::to_value(&attempt).unwrap() {
            Value::Object(map) => map,
            other => panic!("{other}"),
        };
        let record = Record {
            failure: Some(map),
            ..record_of(response(None), None)
        };
        let back = failure_of(&record).unwrap();
        assert_eq!((back.kind, back.message), (AttemptKind::Unavailable, attempt.message));
    }

    #[test]
    fn the_lease_outlasts_the_token_request_with_its_retries() {
        let home = tempfile::tempdir().unwrap();
        let mut settings = Settings::for_tests(home.path(), "http://127.0.0.1:9/oauth2");
        settings.http_timeout = Duration::from_secs(30);
        assert!(lease_length(&settings) >= settings.http_timeout * 3);
    }
}
