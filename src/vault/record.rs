//! The shared login as it lives in the KV secret, and who may refresh it.
//!
//! Field names are user-facing: agent templates read them
//! (`{{ .Data.data.access_token }}`, `{{ .Data.data.expires_at }}`), so they
//! are plain JSON strings, times in RFC 3339.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::secret::{AccessToken, IdToken, RefreshToken};

/// One version of the shared login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub access_token: AccessToken,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub obtained_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub id_expires_at: Option<OffsetDateTime>,
    /// Absent for logins without one (client credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub logged_in_at: Option<OffsetDateTime>,
    /// The engine's record of the last failed attempt, kept as the object it
    /// wrote: its shape belongs to the engine, not to this storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

/// The right to refresh, held by one machine until `deadline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Who holds it: an id unique to one process on one machine.
    pub holder: String,
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
}

/// Who may refresh the record now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// No lease, or one past its deadline: anyone may take it.
    Free,
    HeldByMe,
    HeldByOther {
        until: OffsetDateTime,
    },
}

/// The state of `record`'s lease at `now`, seen by the holder id `me`.
/// A lease past its deadline is free even when it is ours: a holder that
/// stalled that long must take it again, with check-and-set, before it writes.
pub fn lease_state(record: &Record, now: OffsetDateTime, me: &str) -> LeaseState {
    match &record.lease {
        Some(lease) if lease.deadline > now => {
            if lease.holder == me {
                LeaseState::HeldByMe
            } else {
                LeaseState::HeldByOther { until: lease.deadline }
            }
        }
        _ => LeaseState::Free,
    }
}

/// Whether `a` and `b` differ at most in their lease: a waiter seeing such a
/// new version keeps waiting, since no new token came with it.
pub fn same_but_lease(a: &Record, b: &Record) -> bool {
    let unleased = |r: &Record| Record {
        lease: None,
        ..r.clone()
    };
    unleased(a) == unleased(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn record() -> Record {
        Record {
            access_token: AccessToken::new("at-secret"),
            expires_at: datetime!(2026-12-04 13:00 UTC),
            obtained_at: datetime!(2026-12-04 12:00 UTC),
            id_token: None,
            id_expires_at: None,
            refresh_token: Some(RefreshToken::new("rt-secret")),
            logged_in_at: Some(datetime!(2026-12-01 09:00 UTC)),
            failure: None,
            lease: None,
        }
    }

    fn leased(holder: &str, deadline: OffsetDateTime) -> Record {
        Record {
            lease: Some(Lease {
                holder: holder.into(),
                deadline,
            }),
            ..record()
        }
    }

    #[test]
    fn record_fields_are_plain_strings_for_agent_templates() {
        let json = serde_json::to_value(leased("m1", datetime!(2026-12-04 12:01:30 UTC))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "access_token": "at-secret",
                "expires_at": "2026-12-04T13:00:00Z",
                "obtained_at": "2026-12-04T12:00:00Z",
                "refresh_token": "rt-secret",
                "logged_in_at": "2026-12-01T09:00:00Z",
                "lease": {"holder": "m1", "deadline": "2026-12-04T12:01:30Z"},
            })
        );
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, leased("m1", datetime!(2026-12-04 12:01:30 UTC)));
    }

    #[test]
    fn debug_shows_no_token() {
        let shown = format!("{:?}", record());
        assert!(!shown.contains("at-secret") && !shown.contains("rt-secret"), "{shown}");
    }

    #[test]
    fn lease_is_free_absent_or_expired_and_otherwise_held() {
        let now = datetime!(2026-12-04 12:00 UTC);
        assert_eq!(lease_state(&record(), now, "me"), LeaseState::Free);
        let until = datetime!(2026-12-04 12:01 UTC);
        assert_eq!(lease_state(&leased("me", until), now, "me"), LeaseState::HeldByMe);
        assert_eq!(
            lease_state(&leased("other", until), now, "me"),
            LeaseState::HeldByOther { until }
        );
        assert_eq!(lease_state(&leased("me", now), now, "me"), LeaseState::Free);
        assert_eq!(lease_state(&leased("other", now), now, "me"), LeaseState::Free);
    }

    #[test]
    fn versions_that_change_only_the_lease_are_the_same_login() {
        let until = datetime!(2026-12-04 12:01 UTC);
        assert!(same_but_lease(&record(), &leased("m1", until)));
        assert!(same_but_lease(&leased("m1", until), &leased("m2", until)));
        let refreshed = Record {
            access_token: AccessToken::new("at-2"),
            ..leased("m1", until)
        };
        assert!(!same_but_lease(&leased("m1", until), &refreshed));
        let failed = Record {
            failure: Some(Map::from_iter([("kind".into(), "unavailable".into())])),
            ..record()
        };
        assert!(!same_but_lease(&record(), &failed));
    }
}
