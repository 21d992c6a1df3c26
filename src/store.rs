//! The token store: one JSON file per profile in `<home>/tokens/`, mode 0600
//! in a 0700 folder, replaced atomically (temp file, fsync, rename), plus a
//! separate lock file per profile.
//!
//! Why a separate lock file: the token file is replaced by rename, so a lock
//! on it would lock an inode that the next writer throws away. The lock file
//! is never replaced; holding it (fs4, exclusive) across re-read → refresh or
//! login → write makes N concurrent callers cause exactly one token request.
//! Readers on the cached path take no lock: rename makes every read see a
//! whole file, old or new.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::report;
use crate::secret::{AccessToken, RefreshToken};

/// The store file format this binary writes. Files without a version were
/// written before versions existed and read as this one; a file with a newer
/// version is refused and never overwritten.
pub const FORMAT_VERSION: u32 = 1;

/// What one profile's file holds. Tokens are bound to the client id and OAuth
/// URL they were issued for; a file for another client or URL reads as empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    #[serde(default)]
    pub version: u32,
    pub client_id: String,
    pub oauth_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// An access token and what we know about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Access {
    pub token: AccessToken,
    pub token_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub obtained_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Set when the token was refreshed with `LIGHTFI_REFRESH_TOKEN`: a digest
    /// of that token, so the cached access token is reused only with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_refresh_digest: Option<String>,
}

impl Access {
    /// Seconds of validity left at `now` (negative once expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> i64 {
        (self.expires_at - now).whole_seconds()
    }

    /// Usable without a refresh: more than `min_valid` seconds left, where the
    /// margin is capped at half the token's lifetime — otherwise a token that
    /// lives 5 minutes would be refreshed on every call with the 300 s default.
    pub fn is_fresh(&self, now: OffsetDateTime, min_valid: u64) -> bool {
        let lifetime = (self.expires_at - self.obtained_at).whole_seconds().max(0);
        let margin = (min_valid.min(i64::MAX as u64) as i64).min(lifetime / 2);
        self.seconds_left(now) > margin
    }
}

impl Tokens {
    pub fn empty(settings: &Settings) -> Self {
        Tokens {
            version: FORMAT_VERSION,
            client_id: settings.client.id.clone(),
            oauth_url: settings.client.endpoints.base.clone(),
            refresh_token: None,
            access: None,
        }
    }

    fn belongs_to(&self, settings: &Settings) -> bool {
        self.client_id == settings.client.id && self.oauth_url == settings.client.endpoints.base
    }
}

/// Paths of one profile's store. Creating it does no I/O.
pub struct Store {
    dir: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
}

/// Holds the profile's exclusive lock until dropped.
pub struct Lock {
    _file: File,
    waited: bool,
}

impl Lock {
    /// Whether another process held the lock when we asked for it.
    pub fn waited(&self) -> bool {
        self.waited
    }
}

impl Store {
    pub fn new(settings: &Settings) -> Self {
        let dir = settings.home.join("tokens");
        Store {
            path: dir.join(format!("{}.json", settings.profile)),
            lock_path: dir.join(format!("{}.lock", settings.profile)),
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The profile's tokens, or empty ones when there are none, they belong to
    /// another client, or the file is unreadable (reported as a warning:
    /// a corrupt store must never stop the user from logging in again).
    /// A file written by a newer lightfi-token is an error: it is not ours to
    /// overwrite.
    pub fn load(&self, settings: &Settings) -> Result<Tokens> {
        static WARNED: AtomicBool = AtomicBool::new(false);
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Tokens::empty(settings)),
            Err(e) => {
                report::warn_once(
                    &WARNED,
                    &format!("cannot read {}: {e}; treating it as empty", self.path.display()),
                );
                return Ok(Tokens::empty(settings));
            }
        };
        match serde_json::from_slice::<Tokens>(&bytes) {
            Ok(tokens) if tokens.version > FORMAT_VERSION => Err(Error::config(
                format!(
                    "the token store {} has format version {}, newer than this lightfi-token knows ({FORMAT_VERSION})",
                    self.path.display(),
                    tokens.version
                ),
                "upgrade lightfi-token (a newer version wrote this file), or use another --home",
            )),
            Ok(tokens) if tokens.belongs_to(settings) => Ok(tokens),
            Ok(_) => Ok(Tokens::empty(settings)),
            Err(e) => {
                // serde_json's message names a line and column and the expected
                // type, never the file's content.
                let what = if e.is_data() {
                    "unexpected content"
                } else {
                    "not valid JSON"
                };
                report::warn_once(
                    &WARNED,
                    &format!(
                        "the token store {} is corrupt ({what} at line {}, column {}); treating it as empty",
                        self.path.display(),
                        e.line(),
                        e.column()
                    ),
                );
                Ok(Tokens::empty(settings))
            }
        }
    }

    /// Take the profile's exclusive lock, waiting up to `timeout`. Says so on
    /// stderr once the wait passes a second, so a user knows why nothing happens.
    pub fn lock(&self, timeout: Duration) -> Result<Lock> {
        self.ensure_dir()?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&self.lock_path)
            .map_err(|e| Error::io("cannot open the lock file", &self.lock_path, e))?;

        let start = Instant::now();
        let mut announced = false;
        let mut contended = false;
        let mut pause = Duration::from_millis(5);
        loop {
            match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
                Ok(true) => {
                    return Ok(Lock {
                        _file: file,
                        waited: contended,
                    });
                }
                Ok(false) => contended = true,
                Err(e) => return Err(Error::io("cannot lock", &self.lock_path, e)),
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::LockTimeout {
                    path: self.lock_path.clone(),
                    waited: timeout,
                });
            }
            if !announced && waited >= Duration::from_secs(1) {
                eprintln!(
                    "lightfi-token: waiting for another lightfi-token process using this profile (up to {} s more)…",
                    (timeout - waited).as_secs()
                );
                announced = true;
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Replace the profile's file atomically: a uniquely named temporary file
    /// in the same folder (0600), fsynced, renamed over the old one. Call with
    /// the lock held.
    pub fn save(&self, tokens: &Tokens, _lock: &Lock) -> Result<()> {
        self.ensure_dir()?;
        let mut tokens = tokens.clone();
        tokens.version = FORMAT_VERSION;
        let json =
            serde_json::to_vec_pretty(&tokens).map_err(|e| Error::unexpected(format!("cannot encode tokens: {e}")))?;
        let written = self
            .write_temp(&json)
            .and_then(|tmp| tmp.persist(&self.path).map_err(|e| e.error));
        written.map_err(|e| Error::io("cannot write the token store", &self.path, e))?;
        self.sync_dir();
        Ok(())
    }

    /// `bytes` in a new private temporary file in the store folder, fsynced.
    /// Its name is random (`.tmp-XXXXXX`), so no process can find it taken.
    fn write_temp(&self, bytes: &[u8]) -> io::Result<tempfile::NamedTempFile> {
        // tempfile creates it 0600 on Unix.
        let mut tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        Ok(tmp)
    }

    /// The content of `name`, a private file next to the profiles' tokens,
    /// created with `create()` when missing. It is written to a temporary file
    /// (0600, fsynced) and hard-linked into place, which fails when the name
    /// exists: two processes creating it at once agree on one content, and no
    /// reader ever sees half a file.
    pub fn read_or_create(&self, name: &str, create: impl FnOnce() -> Result<Vec<u8>>) -> Result<(PathBuf, Vec<u8>)> {
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => {
                restrict_to_owner(&path)?;
                return Ok((path, bytes));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        }
        let content = create()?;
        self.ensure_dir()?;
        let tmp = self
            .write_temp(&content)
            .map_err(|e| Error::io("cannot write in", &self.dir, e))?;
        // Link, not rename: linking fails when the name exists, so two
        // processes creating it at once agree on one content.
        match tmp.persist_noclobber(&path) {
            Ok(_) => {}
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("cannot write", &path, e.error)),
        }
        self.sync_dir();
        let bytes = fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        Ok((path, bytes))
    }

    /// Delete the profile's tokens. Call with the lock held. Returns whether there was a file.
    pub fn delete(&self, _lock: &Lock) -> Result<bool> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("cannot delete", &self.path, e)),
        }
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
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                    .map_err(|e| Error::io("cannot restrict the permissions of", &self.dir, e))?;
            }
        }
        Ok(())
    }
}

/// Make `path` readable by its owner only, if something loosened it.
fn restrict_to_owner(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::metadata(path).map_err(|e| Error::io("cannot inspect", path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("cannot restrict the permissions of", path, e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Temporary files in the store folder start with this.
const TEMP_PREFIX: &str = ".tmp-";

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn token(obtained: OffsetDateTime, expires: OffsetDateTime) -> Access {
        Access {
            token: AccessToken::new("t"),
            token_type: "Bearer".into(),
            obtained_at: obtained,
            expires_at: expires,
            scope: None,
            env_refresh_digest: None,
        }
    }

    #[test]
    fn min_valid_is_capped_at_half_the_lifetime() {
        let t0 = datetime!(2026-11-26 10:00 UTC);
        // A 5-minute token with the 300 s default: fresh for its first half.
        let short = token(t0, t0 + Duration::from_secs(300));
        assert!(short.is_fresh(t0 + Duration::from_secs(100), 300));
        assert!(!short.is_fresh(t0 + Duration::from_secs(160), 300));
        // A 1-hour token: refreshed when less than 300 s are left.
        let long = token(t0, t0 + Duration::from_secs(3600));
        assert!(long.is_fresh(t0 + Duration::from_secs(3200), 300));
        assert!(!long.is_fresh(t0 + Duration::from_secs(3400), 300));
        assert!(!long.is_fresh(t0 + Duration::from_secs(4000), 0));
    }

    fn settings(home: &Path) -> Settings {
        Settings::for_tests(home, "https://idp.example/oauth2")
    }

    #[test]
    fn files_carry_a_version_and_older_ones_are_read() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let mut tokens = Tokens::empty(&s);
        tokens.refresh_token = Some(RefreshToken::new("r"));
        store.save(&tokens, &lock).unwrap();
        let saved: serde_json::Value = serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(saved["version"], FORMAT_VERSION);
        // Written before versions existed: no `version` key.
        let legacy = r#"{"client_id":"client","oauth_url":"https://idp.example/oauth2","refresh_token":"old"}"#;
        fs::write(store.path(), legacy).unwrap();
        assert_eq!(store.load(&s).unwrap().refresh_token, Some(RefreshToken::new("old")));
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
        let err = store.load(&s).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("version 99"), "{err}");
        assert_eq!(fs::read_to_string(store.path()).unwrap(), newer);
        drop(lock);
    }

    #[test]
    fn saving_leaves_no_temporary_file() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        store.save(&Tokens::empty(&s), &lock).unwrap();
        store.save(&Tokens::empty(&s), &lock).unwrap();
        let names: Vec<String> = fs::read_dir(home.path().join("tokens"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(TEMP_PREFIX)), "{names:?}");
    }
}
