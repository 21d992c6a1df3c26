//! Where a login's refresh token lives: in the token file, or in the OS
//! keyring with the file pointing at it; moving it where `storage` wants it,
//! and saying how to remove a leftover entry.

use crate::config::{Settings, Storage};
use crate::error::{Error, Result};
use crate::keyring;
use crate::report;
use crate::secret::RefreshToken;
use crate::store::{RefreshTokenIn, Store, Tokens};

use super::{Held, Kind};

/// The refresh token `tokens` point at: in the file, or read from the
/// keyring. None when there is none — also when the keyring answered that it
/// has no entry; an error when the keyring did not answer, which ends with
/// `outcome` (what became of the login).
pub(in crate::token) fn stored_refresh_token(
    store: &Store,
    tokens: &Tokens,
    outcome: &str,
) -> Result<Option<RefreshToken>> {
    if tokens.refresh_token_in == RefreshTokenIn::File {
        return Ok(tokens.refresh_token.clone());
    }
    match keyring::read(&store.keyring_account()) {
        Ok(Some(token)) => Ok(Some(token)),
        Ok(None) => {
            report::warn(&format!(
                "the token store says this login's refresh token is in the keyring ({}), but the keyring has no entry \
                 for service `{}` account `{}` (removed outside lightfi-token?)",
                keyring::backend(),
                keyring::SERVICE,
                store.keyring_account()
            ));
            Ok(None)
        }
        Err(failure) => Err(keyring_error(store, "read the refresh token from", &failure, outcome)),
    }
}

/// The refresh token to refresh with, as [`stored_refresh_token`] — except
/// that a keyring answering "no such entry" while the store says the token
/// is there is an error (exit 5), not "logged out": the keyring answering is
/// likely not the one that holds this login (another KeePassXC database
/// open, a daemon restarted with another keyring), and a new login would
/// orphan the entry. `lightfi-token login` still replaces it.
pub(in crate::token) fn refresh_token_to_use(store: &Store, tokens: &Tokens) -> Result<Option<RefreshToken>> {
    if tokens.refresh_token_in == RefreshTokenIn::File {
        return Ok(tokens.refresh_token.clone());
    }
    match keyring::read(&store.keyring_account()) {
        Ok(Some(token)) => Ok(Some(token)),
        Ok(None) => Err(Error::KeyringUnavailable {
            msg: format!(
                "the token store says this login's refresh token is in the keyring ({}), but the keyring answering has \
                 no entry for service `{}` account `{}`: the keyring that holds this login is not the one answering; \
                 the stored login was kept",
                keyring::backend(),
                keyring::SERVICE,
                store.keyring_account()
            ),
            hint: "open or unlock the keyring that holds it (e.g. the KeePassXC database, or the keyring the Secret \
                   Service daemon was started with) and try again; or run `lightfi-token login` to log in anew"
                .into(),
        }),
        Err(failure) => Err(keyring_error(
            store,
            "read the refresh token from",
            &failure,
            "the stored login was kept",
        )),
    }
}

/// After the server rejected `sent`: the refresh token the store holds now,
/// when it is another one — a process whose lock file was deleted under it
/// refreshed meanwhile and stored its rotated answer, which must not be
/// wiped with the rejected one.
pub(in crate::token) fn newer_than(store: &Store, sent: &RefreshToken) -> Option<(Tokens, RefreshToken)> {
    let tokens = store.load().ok()?;
    let stored = stored_refresh_token(store, &tokens, "the stored login was kept").ok()??;
    (stored != *sent).then_some((tokens, stored))
}

/// The keyring error that names the entry and the fix.
fn keyring_error(store: &Store, what: &str, failure: &keyring::Failure, outcome: &str) -> Error {
    Error::KeyringUnavailable {
        msg: format!(
            "cannot {what} the keyring ({}, service `{}`, account `{}`): {}; {outcome}",
            keyring::backend(),
            keyring::SERVICE,
            store.keyring_account(),
            failure.describe()
        ),
        hint: format!(
            "{}; `lightfi-token status` shows where the login is kept",
            keyring::way_out()
        ),
    }
}

/// Whether the stored refresh token is somewhere else than `storage` wants
/// it: in the file with `auto` or `keyring` (so a refresh moves it into the
/// keyring), or in the keyring with `file`.
pub(super) fn misplaced(settings: &Settings, tokens: &Tokens) -> bool {
    match (settings.storage, tokens.refresh_token_in) {
        (Storage::File, RefreshTokenIn::Keyring) => true,
        (Storage::Auto | Storage::Keyring, RefreshTokenIn::File) => tokens.refresh_token.is_some(),
        _ => false,
    }
}

/// Put `token` where `storage` says, ready for the caller to save `tokens`.
/// Into the keyring first, read back, and only then does the file (once
/// saved) point at it and hold no copy. When the keyring cannot take it, the
/// token goes to the file (a refresh's token must never be lost; `auto` says
/// so once per profile, `keyring` every time) — except a new login with
/// `storage = "keyring"`, which fails and stores nothing. Returns whether
/// the keyring's entry is to be deleted once the file is saved (moved to the file).
pub(super) fn place(at: &Held, tokens: &mut Tokens, token: RefreshToken, kind: Kind) -> Result<bool> {
    let Held { settings, store, lock } = *at;
    let was_in_keyring = tokens.refresh_token_in == RefreshTokenIn::Keyring;
    if settings.storage == Storage::File {
        tokens.refresh_token = Some(token);
        tokens.refresh_token_in = RefreshTokenIn::File;
        return Ok(was_in_keyring);
    }
    match keyring::write(&store.keyring_account(), &token) {
        Ok(()) => {
            report::debug(|| format!("the refresh token is in the keyring ({})", keyring::backend()));
            tokens.refresh_token = None;
            tokens.refresh_token_in = RefreshTokenIn::Keyring;
            store.forget_warning(lock);
            Ok(false)
        }
        Err(failure) if settings.storage == Storage::Keyring && kind == Kind::Login => Err(keyring_error(
            store,
            "store the refresh token in",
            &failure,
            "storage is `keyring`, so this login was not stored",
        )),
        Err(failure) => {
            tokens.refresh_token = Some(token);
            tokens.refresh_token_in = RefreshTokenIn::File;
            let path = store.path().display();
            let why = failure.describe();
            let backend = keyring::backend();
            let mode = crate::platform::PRIVATE_FILE;
            if settings.storage == Storage::Keyring {
                report::warn(&format!(
                    "storage is `keyring`, but the {backend} cannot take the refresh token ({why}); it is kept in the \
                     plaintext file {path} ({mode}) until the keyring answers at a later refresh"
                ));
            } else {
                store.warn_once_per_profile(
                    &format!(
                        "no OS keyring answered ({backend}: {why}): the refresh token went to the file {path} ({mode}); \
                         storage = \"file\" in config.toml keeps it there without this line (said once)"
                    ),
                    lock,
                );
            }
            Ok(false)
        }
    }
}

/// Delete the keyring entry of a login whose file no longer points at it
/// (best effort: a leftover is said, with how to remove it).
pub(in crate::token) fn delete_keyring_entry(store: &Store) {
    if let Err(failure) = keyring::delete(&store.keyring_account()) {
        report::warn(&format!(
            "could not delete the old refresh token from the keyring ({}); {}",
            failure.describe(),
            removal_hint(store)
        ));
    }
}

/// How to remove this login's keyring entry by hand.
pub(super) fn removal_hint(store: &Store) -> String {
    let account = store.keyring_account();
    let service = keyring::SERVICE;
    if cfg!(target_os = "macos") {
        format!("remove it with `security delete-generic-password -s {service} -a {account}`")
    } else if cfg!(windows) {
        format!("remove it with `cmdkey /delete:{account}.{service}`")
    } else {
        format!("remove it with `secret-tool clear service {service} username {account}`")
    }
}

/// With `storage = "keyring"`, fail before a login when the keyring does not
/// answer: the login could not be stored.
pub(super) fn check_keyring_for_login(settings: &Settings, store: &Store) -> Result<()> {
    if settings.storage != Storage::Keyring {
        return Ok(());
    }
    keyring::read(&store.keyring_account()).map(|_| ()).map_err(|failure| {
        keyring_error(
            store,
            "reach",
            &failure,
            "storage is `keyring`, so no login was started",
        )
    })
}

/// The stored refresh token a new login replaces, to revoke it: None when
/// there is none, or it is in a keyring that does not answer (said).
pub(super) fn replaceable(store: &Store, tokens: &Tokens) -> Option<RefreshToken> {
    stored_refresh_token(store, tokens, "it stays in the keyring").unwrap_or_else(|e| {
        report::warn(&format!("cannot revoke the refresh token this login replaces: {e}"));
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn settings(home: &std::path::Path) -> Settings {
        Settings::for_tests(home, "http://127.0.0.1:9/oauth2")
    }

    #[test]
    fn a_refresh_token_moves_only_when_storage_wants_it_elsewhere() {
        let home = tempfile::tempdir().unwrap();
        let mut s = settings(home.path());
        let store = Store::new(&s);
        let mut in_file = store.empty();
        in_file.refresh_token = Some(RefreshToken::new("r"));
        let mut in_keyring = store.empty();
        in_keyring.refresh_token_in = RefreshTokenIn::Keyring;
        for (storage, tokens, moves) in [
            (Storage::Auto, &in_file, true),
            (Storage::Keyring, &in_file, true),
            (Storage::File, &in_file, false),
            (Storage::Auto, &in_keyring, false),
            (Storage::Keyring, &in_keyring, false),
            (Storage::File, &in_keyring, true),
            (Storage::Auto, &store.empty(), false),
        ] {
            s.storage = storage;
            assert_eq!(
                misplaced(&s, tokens),
                moves,
                "{storage:?} {:?}",
                tokens.refresh_token_in
            );
        }
    }
}
