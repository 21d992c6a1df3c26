//! The token store: one JSON file per profile and identity in
//! `<home>/tokens/`, mode 0600 in a 0700 folder, replaced atomically (a
//! randomly named temporary file, fsync, rename), plus a separate lock file
//! per profile.
//!
//! The identity is the client id, the OAuth URL and the requested scope set:
//! `<profile>@<16 hex digits of their SHA-256>.json`, as kubelogin keys its
//! cache. A login of another identity on the same profile gets its own file
//! and never reads, overwrites or deletes this one. Profile names cannot
//! contain `@`, so no two profiles' names collide, nor with the files of
//! earlier versions (`<profile>.json`), which are read when the new file is
//! absent and moved by the next write.
//!
//! Why a separate lock file: the token file is replaced by rename, so a lock
//! on it would lock an inode that the next writer throws away. The lock file
//! is never replaced; holding it (fs4, exclusive) across re-read → refresh or
//! login → write makes N concurrent callers cause exactly one token request.
//! Readers on the cached path take no lock: rename makes every read see a
//! whole file, old or new.
//!
//! The refresh token is in the file or in the OS keyring (`refresh_token_in`,
//! see `crate::keyring`); the access token is always in the file, so the cached
//! path reads one file and never talks to the keyring.

mod files;
mod format;
mod lock;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::report;

pub use format::{Access, Attempt, AttemptKind, Bearer, FORMAT_VERSION, Handed, RefreshTokenIn, Requests, Tokens};

/// Who the tokens are for: the client, its server and the scope set asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    client_id: String,
    oauth_url: String,
    scope: String,
}

/// Paths of one profile's and identity's store. Creating it does no I/O.
pub struct Store {
    dir: PathBuf,
    profile: String,
    path: PathBuf,
    /// `<profile>.json`, written by versions before identities.
    legacy_path: PathBuf,
    lock_path: PathBuf,
    identity: Identity,
}

/// Holds the profile's exclusive lock until dropped.
pub struct Lock {
    _file: File,
    _in_process: lock::InProcessLock,
    /// How long taking it may wait, also when taking it again.
    timeout: std::time::Duration,
}

/// Another identity's login stored for the same profile.
#[derive(Debug)]
pub struct OtherLogin {
    pub path: PathBuf,
    pub client_id: String,
    pub oauth_url: String,
    pub scope: Option<String>,
}

impl Store {
    pub fn new(settings: &Settings) -> Self {
        let dir = settings.home.join("tokens");
        let profile = &settings.profile;
        let identity = Identity {
            client_id: settings.client.id.clone(),
            oauth_url: settings.client.endpoints.base.clone(),
            scope: scope_set(&settings.scope),
        };
        Store {
            path: dir.join(format!("{profile}@{}.json", identity.hash())),
            legacy_path: dir.join(format!("{profile}.json")),
            lock_path: dir.join(format!("{profile}.lock")),
            profile: profile.clone(),
            identity,
            dir,
        }
    }

    /// No tokens yet, for this store's identity.
    pub fn empty(&self) -> Tokens {
        Tokens {
            version: FORMAT_VERSION,
            client_id: self.identity.client_id.clone(),
            oauth_url: self.identity.oauth_url.clone(),
            scope: Some(self.identity.scope.clone()),
            refresh_token: None,
            refresh_token_in: RefreshTokenIn::File,
            access: None,
            last_failure: None,
            rotates: false,
            refresh_started: None,
            requests: None,
            logged_in_at: None,
            imported: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keyring entry's account for this profile and identity:
    /// `<profile>@<identity hash>`, the store file's name without `.json`.
    pub fn keyring_account(&self) -> String {
        format!("{}@{}", self.profile, self.identity.hash())
    }

    /// The identity's tokens, or empty ones when there are none, or the file
    /// is unreadable (reported as a warning: a corrupt store must never stop
    /// the user from logging in again). Without a file of its own, the
    /// profile's file of an earlier version, if it is this identity's. A
    /// file written by a newer lightfi-token is an error: it is not ours to
    /// overwrite.
    pub fn load(&self) -> Result<Tokens> {
        match format::read(&self.path)? {
            Some(tokens) if tokens.belongs_to(&self.identity) => Ok(tokens),
            Some(_) => Ok(self.empty()),
            None => Ok(self.legacy()?.unwrap_or_else(|| self.empty())),
        }
    }

    /// The profile's file of an earlier version, if it holds this identity's tokens.
    fn legacy(&self) -> Result<Option<Tokens>> {
        Ok(format::read(&self.legacy_path)?.filter(|t| t.belongs_to(&self.identity)))
    }

    /// Logins of other identities stored for this profile.
    pub fn others(&self) -> Vec<OtherLogin> {
        let prefix = format!("{}@", self.profile);
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return vec![];
        };
        let mut others: Vec<OtherLogin> = entries
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let name = path.file_name()?.to_str()?;
                if !(name.starts_with(&prefix) && name.ends_with(".json")) || path == self.path {
                    return None;
                }
                let tokens = format::read(&path).ok()??;
                Some(OtherLogin {
                    client_id: tokens.client_id,
                    oauth_url: tokens.oauth_url,
                    scope: tokens.scope,
                    path,
                })
            })
            .collect();
        others.sort_by(|a, b| a.path.cmp(&b.path));
        others
    }

    /// Replace the identity's file atomically: a uniquely named temporary
    /// file in the same folder (0600), fsynced, renamed over the old one.
    /// Then the profile's file of an earlier version goes, if it held this
    /// identity's tokens, and so do temporary files that killed writers of
    /// this profile left behind. Call with the lock held.
    pub fn save(&self, tokens: &Tokens, lock: &Lock) -> Result<()> {
        self.ensure_dir()?;
        let _current = self.lock_still_current(lock)?;
        self.remove_stale_temp_files();
        let json = format::encode(tokens)?;
        report::debug(|| format!("writing {}", self.path.display()));
        self.replace(&self.path, &self.temp_prefix(), &json)
            .map_err(|e| Error::io("cannot write the token store", &self.path, e))?;
        if self.legacy()?.is_some() {
            let _ = fs::remove_file(&self.legacy_path);
        }
        self.sync_dir();
        Ok(())
    }

    /// The store folder, `<home>/tokens`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The profile's lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Delete the identity's tokens (also from a file of an earlier version).
    /// Call with the lock held. Returns whether there was a file.
    pub fn delete(&self, _lock: &Lock) -> Result<bool> {
        let mut deleted = false;
        let legacy = self.legacy()?.is_some();
        for path in std::iter::once(&self.path).chain(legacy.then_some(&self.legacy_path)) {
            match fs::remove_file(path) {
                Ok(()) => deleted = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("cannot delete", path, e)),
            }
        }
        self.sync_dir();
        Ok(deleted)
    }

    /// Make a rename or link in the store folder durable (best effort).
    fn sync_dir(&self) {
        #[cfg(unix)]
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
    }

    /// Create `<home>/tokens` as 0700 (and `<home>` when missing), and tighten
    /// the tokens folder if something loosened it.
    fn ensure_dir(&self) -> Result<()> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| Error::io("cannot create", &self.dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(&self.dir).map_err(|e| Error::io("cannot inspect", &self.dir, e))?;
            let linked = fs::symlink_metadata(&self.dir).is_ok_and(|m| m.file_type().is_symlink());
            if linked && meta.permissions().mode() & 0o077 != 0 {
                // chmod follows the link: it would change a folder elsewhere.
                return Err(Error::config(
                    format!(
                        "{} is a symbolic link to a folder others can open (mode {:o}); lightfi-token does not change \
                         the permissions of a folder through a link",
                        self.dir.display(),
                        meta.permissions().mode() & 0o7777
                    ),
                    "replace the link with a folder, or make the folder it points to private yourself (chmod 700)",
                ));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| Error::io("cannot restrict the permissions of", &self.dir, e))?;
            }
        }
        Ok(())
    }
}

/// Scopes as a set: sorted, each once, space-separated.
pub fn scope_set(scope: &str) -> String {
    let mut scopes: Vec<&str> = scope.split_whitespace().collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes.join(" ")
}

impl Identity {
    /// 16 hex digits (8 bytes) of SHA-256 over the identity's parts, each ended by a
    /// NUL (which none of them can contain), so no two identities share an input.
    fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in [&self.client_id, &self.oauth_url, &self.scope] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        format!("{:.16x}", hash.finalize())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secret::RefreshToken;

    fn settings(home: &Path) -> Settings {
        Settings::for_tests(home, "https://idp.example/oauth2")
    }

    #[test]
    fn files_carry_a_version_and_older_ones_are_read() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let mut tokens = store.empty();
        tokens.refresh_token = Some(RefreshToken::new("r"));
        store.save(&tokens, &lock).unwrap();
        let saved: serde_json::Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(saved["version"], FORMAT_VERSION);
        // Written before versions existed: no `version` key.
        let legacy = r#"{"client_id":"client","oauth_url":"https://idp.example/oauth2","refresh_token":"old"}"#;
        fs::write(store.path(), legacy).unwrap();
        assert_eq!(store.load().unwrap().refresh_token, Some(RefreshToken::new("old")));
    }

    #[test]
    fn where_the_refresh_token_is_is_recorded_and_absent_means_the_file() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let v1 = r#"{"version":1,"client_id":"client","oauth_url":"https://idp.example/oauth2","refresh_token":"r"}"#;
        fs::write(store.path(), v1).unwrap();
        let mut tokens = store.load().unwrap();
        assert_eq!(tokens.refresh_token_in, RefreshTokenIn::File);
        store.save(&tokens, &lock).unwrap();
        let saved: serde_json::Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        assert!(saved.get("refresh_token_in").is_none(), "{saved}");
        assert_eq!(saved["refresh_token"], "r");
        // In the keyring: the file says so and holds no copy.
        tokens.refresh_token_in = RefreshTokenIn::Keyring;
        store.save(&tokens, &lock).unwrap();
        let saved: serde_json::Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(saved["refresh_token_in"], "keyring");
        assert!(saved.get("refresh_token").is_none(), "{saved}");
        assert_eq!(saved["version"], 2);
        assert_eq!(store.keyring_account(), format!("default@{}", store.identity.hash()));
        assert!(store.path().ends_with(format!("{}.json", store.keyring_account())));
    }

    #[test]
    fn a_newer_format_is_refused_and_never_overwritten() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let newer =
            r#"{"version":99,"client_id":"client","oauth_url":"https://idp.example/oauth2","refresh_token":"r"}"#;
        fs::write(store.path(), newer).unwrap();
        let err = store.load().unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("version 99"), "{err}");
        assert_eq!(fs::read_to_string(store.path()).unwrap(), newer);
        drop(lock);
    }

    fn with_refresh(store: &Store, refresh: &str) -> Tokens {
        let mut tokens = store.empty();
        tokens.refresh_token = Some(RefreshToken::new(refresh));
        tokens
    }

    #[test]
    fn identities_of_one_profile_have_their_own_files() {
        let home = tempfile::tempdir().unwrap();
        let a = settings(home.path());
        let mut b = settings(home.path());
        b.client.id = "other-client".into();
        let mut c = settings(home.path());
        c.scope = "openid email".into();
        let lock = Store::new(&a).lock(Duration::from_secs(1)).unwrap();
        for (s, rt) in [(&a, "ra"), (&b, "rb"), (&c, "rc")] {
            let store = Store::new(s);
            store.save(&with_refresh(&store, rt), &lock).unwrap();
        }
        for (s, rt) in [(&a, "ra"), (&b, "rb"), (&c, "rc")] {
            assert_eq!(Store::new(s).load().unwrap().refresh_token, Some(RefreshToken::new(rt)));
        }
        // The scope set, not its spelling, is the identity.
        let mut c2 = c.clone();
        c2.scope = " email openid openid".into();
        assert_eq!(Store::new(&c2).path(), Store::new(&c).path());
        assert!(Store::new(&a).delete(&lock).unwrap());
        assert!(!Store::new(&a).delete(&lock).unwrap(), "nothing left for this identity");
        assert_eq!(
            Store::new(&b).load().unwrap().refresh_token,
            Some(RefreshToken::new("rb"))
        );
        let others = Store::new(&a).others();
        assert_eq!(others.len(), 2, "{others:?}");
        assert!(others.iter().any(|o| o.client_id == "other-client"));
    }

    #[test]
    fn profile_names_never_share_a_file() {
        let home = tempfile::tempdir().unwrap();
        let mut seen = std::collections::HashSet::new();
        for profile in ["a", "a-b", "a.b", "a-b-c", "a@x", "default", "default.json"] {
            let mut s = settings(home.path());
            s.profile = profile.into();
            let store = Store::new(&s);
            assert!(seen.insert(store.path().to_path_buf()), "{profile}");
            assert!(seen.insert(store.legacy_path.clone()), "{profile}");
        }
    }

    #[test]
    fn a_file_of_an_earlier_version_is_read_then_moved_by_the_next_write() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let legacy = r#"{"client_id":"client","oauth_url":"https://idp.example/oauth2","refresh_token":"old"}"#;
        fs::write(&store.legacy_path, legacy).unwrap();
        let tokens = store.load().unwrap();
        assert_eq!(tokens.refresh_token, Some(RefreshToken::new("old")));
        store.save(&tokens, &lock).unwrap();
        assert!(!store.legacy_path.exists());
        assert_eq!(store.load().unwrap().refresh_token, Some(RefreshToken::new("old")));
        // Another identity's old file stays where it is.
        fs::write(&store.legacy_path, legacy.replace("\"client\"", "\"someone\"")).unwrap();
        store.save(&tokens, &lock).unwrap();
        assert!(store.legacy_path.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_the_store_reads_as_empty_without_blocking() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        store.ensure_dir().unwrap();
        let made = std::process::Command::new("mkfifo").arg(store.path()).status().unwrap();
        assert!(made.success());
        assert!(store.load().unwrap().refresh_token.is_none());
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        store.save(&with_refresh(&store, "r"), &lock).unwrap();
        assert!(fs::metadata(store.path()).unwrap().is_file());
    }

    #[test]
    fn the_identity_hash_names_the_same_file_as_before() {
        let identity = Identity {
            client_id: "c".into(),
            oauth_url: "u".into(),
            scope: "s".into(),
        };
        // The first 8 bytes of SHA-256 over "c\0u\0s\0": changing it would
        // lose every stored login.
        assert_eq!(identity.hash(), "9da15e990b96517a");
    }
}
