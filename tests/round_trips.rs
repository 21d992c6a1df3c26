//! Round trips of the formats lightfi-token both writes and reads, for any
//! content (proptest): the token store file, and the git credential
//! attributes it answers git with.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::time::Duration;

use lightfi_token::git;
use lightfi_token::secret::{AccessToken, IdToken, RefreshToken};
use lightfi_token::store::{self, Access, Attempt, AttemptKind, RefreshTokenIn, Requests, Store, Tokens};
use proptest::option;
use proptest::prelude::*;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Any instant RFC 3339 can write: years 0000–9999, offsets in whole minutes
/// under a day, nanoseconds.
fn instant() -> impl Strategy<Value = OffsetDateTime> {
    (
        0i32..=9999,
        1u16..=365,
        0u8..24,
        0u8..60,
        0u8..60,
        0u32..1_000_000_000,
        -1439i32..=1439,
    )
        .prop_map(|(year, day, hour, minute, second, nano, offset_minutes)| {
            let date = Date::from_ordinal_date(year, day).unwrap();
            let time = Time::from_hms_nano(hour, minute, second, nano).unwrap();
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            PrimitiveDateTime::new(date, time).assume_offset(offset)
        })
}

fn access() -> impl Strategy<Value = Access> {
    (
        any::<String>(),
        any::<String>(),
        instant(),
        instant(),
        option::of(any::<String>()),
        option::of(any::<String>()),
        option::of(any::<String>()),
        option::of(instant()),
    )
        .prop_map(
            |(token, token_type, obtained_at, expires_at, scope, env_refresh_digest, id_token, id_expires_at)| Access {
                token: AccessToken::new(token),
                token_type,
                obtained_at,
                expires_at,
                scope,
                env_refresh_digest,
                id_token: id_token.map(IdToken::new),
                id_expires_at,
            },
        )
}

fn attempt() -> impl Strategy<Value = Attempt> {
    let kind = prop_oneof![
        Just(AttemptKind::Unavailable),
        Just(AttemptKind::Configuration),
        Just(AttemptKind::Login),
        Just(AttemptKind::Keyring),
    ];
    (
        instant(),
        kind,
        any::<String>(),
        any::<String>(),
        option::of(any::<u64>()),
    )
        .prop_map(|(ended_at, kind, message, hint, retry_after)| Attempt {
            ended_at,
            kind,
            message,
            hint,
            retry_after,
        })
}

fn requests() -> impl Strategy<Value = Requests> {
    (any::<String>(), any::<u64>(), any::<String>(), any::<u64>()).prop_map(|(day, today, month, this_month)| {
        Requests {
            day,
            today,
            month,
            this_month,
        }
    })
}

fn tokens() -> impl Strategy<Value = Tokens> {
    (
        any::<u32>(),
        any::<String>(),
        any::<String>(),
        option::of(any::<String>()),
        option::of(any::<String>()),
        prop_oneof![Just(RefreshTokenIn::File), Just(RefreshTokenIn::Keyring)],
        option::of(access()),
        option::of(attempt()),
        any::<bool>(),
        option::of(instant()),
        (option::of(requests()), option::of(instant()), any::<bool>()),
    )
        .prop_map(
            |(
                version,
                client_id,
                oauth_url,
                scope,
                refresh_token,
                refresh_token_in,
                access,
                last_failure,
                rotates,
                refresh_started,
                (requests, logged_in_at, imported),
            )| {
                Tokens {
                    version,
                    client_id,
                    oauth_url,
                    scope,
                    refresh_token: refresh_token.map(RefreshToken::new),
                    refresh_token_in,
                    access,
                    last_failure,
                    rotates,
                    refresh_started,
                    requests,
                    logged_in_at,
                    imported,
                }
            },
        )
}

proptest! {
    #[test]
    fn store_json_gives_back_every_field(tokens in tokens()) {
        let json = serde_json::to_vec_pretty(&tokens).unwrap();
        let back: Tokens = serde_json::from_slice(&json).unwrap();
        prop_assert!(checks::tokens_eq(&tokens, &back), "{}", String::from_utf8_lossy(&json));
    }

    #[test]
    fn git_attributes_read_back_as_written(
        attrs in prop::collection::vec(("[^=\n\0]{1,12}(\\[\\])?", "[^\n\0]{0,12}\r?"), 0..12)
    ) {
        let borrowed: Vec<(&str, String)> = attrs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut out = Vec::new();
        let written = git::write_attributes(&mut out, &borrowed);
        if attrs.iter().any(|(k, v)| !checks::git_can_carry(k, v)) {
            prop_assert!(written.is_err() && out.is_empty());
            return Ok(());
        }
        prop_assert!(written.is_ok());
        // What git makes of the lines: an empty value of a `[]` key clears that list.
        let mut expected: Vec<(String, String)> = Vec::new();
        for (key, value) in &attrs {
            if key.ends_with("[]") && value.is_empty() {
                expected.retain(|(k, _)| k != key);
            } else {
                expected.push((key.clone(), value.clone()));
            }
        }
        let back = git::read_attributes(&out[..]).unwrap();
        prop_assert_eq!(back.pairs(), &expected[..]);
    }
}

proptest! {
    // Each case writes, fsyncs and renames a file.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn store_save_then_load_gives_back_every_field(tokens in tokens()) {
        let home = tempfile::tempdir().unwrap();
        let settings = checks::store_settings(home.path());
        let store = Store::new(&settings);
        let tokens = Tokens {
            version: store::FORMAT_VERSION,
            client_id: checks::STORE_CLIENT_ID.into(),
            oauth_url: checks::STORE_OAUTH_URL.into(),
            scope: store.empty().scope,
            ..tokens
        };
        let lock = store.lock(Duration::from_secs(5)).unwrap();
        store.save(&tokens, &lock).unwrap();
        let loaded = store.load().unwrap();
        // A refresh token kept in the keyring has no copy in the file.
        let expected = match tokens.refresh_token_in {
            RefreshTokenIn::Keyring => Tokens { refresh_token: None, ..tokens },
            RefreshTokenIn::File => tokens,
        };
        prop_assert!(checks::tokens_eq(&expected, &loaded));
    }
}
