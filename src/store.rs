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

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::Settings;
use crate::config::TokenKind;
use crate::error::{Error, Result};
use crate::report;
use crate::secret::{AccessToken, IdToken, RefreshToken};

/// The store file format this binary writes. Files without a version were
/// written before versions existed and read as this one; a file with a newer
/// version is refused and never overwritten. Version 2 added
/// `refresh_token_in`: a version 1 reader would take a file whose refresh
/// token is in the keyring for "not logged in", so it must refuse the file.
pub const FORMAT_VERSION: u32 = 2;

/// Where a login's refresh token is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshTokenIn {
    /// In this file's `refresh_token` (also: files of version 1, which lack the field).
    #[default]
    File,
    /// In the OS keyring, under the store's [`Store::keyring_account`]; the
    /// file has no `refresh_token` then.
    Keyring,
}

impl RefreshTokenIn {
    fn is_file(&self) -> bool {
        *self == RefreshTokenIn::File
    }
}

/// What one profile's file holds. Tokens are bound to the client id and OAuth
/// URL they were issued for; a file for another client or URL reads as empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    #[serde(default)]
    pub version: u32,
    pub client_id: String,
    pub oauth_url: String,
    /// The scopes the login asked for (absent in files of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// Where the refresh token is: absent means this file.
    #[serde(default, skip_serializing_if = "RefreshTokenIn::is_file")]
    pub refresh_token_in: RefreshTokenIn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// How the last refresh or login that failed ended: callers that waited
    /// for it, and callers soon after it, answer the same instead of asking
    /// the server again (one request per wave, also when it fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Attempt>,
    /// The server has rotated this login's refresh token before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotates: bool,
    /// Set while a refresh of a rotating login is under way: if it is still
    /// set when the next process reads the store, the process that sent it
    /// died before storing the answer, and the refresh token it had may be gone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub refresh_started: Option<OffsetDateTime>,
}

/// A failed attempt to get tokens, as recorded in the store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    pub kind: AttemptKind,
    /// The error's message and hint, as the caller that made the attempt reported them.
    pub message: String,
    #[serde(default)]
    pub hint: String,
    /// The server's `Retry-After`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    /// The server was unreachable or failing (exit 5).
    Unavailable,
    /// The server refused our client, or the URL is wrong (exit 4).
    Configuration,
    /// A browser login was cancelled, refused or timed out (exit 3).
    Login,
    /// The keyring holding the refresh token did not answer (exit 5).
    Keyring,
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
    /// The ID token that came with the access token (for the `openid` scope),
    /// and its own expiry (its `exp` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub id_expires_at: Option<OffsetDateTime>,
}

/// The token a command hands out, of the kind it was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Handed<'a> {
    pub kind: TokenKind,
    /// The value itself, for the few places that print or send it.
    pub value: &'a str,
    pub obtained_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Handed<'_> {
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

impl Access {
    /// Seconds of validity left at `now` (negative once expired).
    pub fn seconds_left(&self, now: OffsetDateTime) -> i64 {
        (self.expires_at - now).whole_seconds()
    }

    /// The token of `kind`, if one was issued.
    pub fn handed(&self, kind: TokenKind) -> Option<Handed<'_>> {
        let (value, expires_at) = match kind {
            TokenKind::Access => (self.token.expose(), self.expires_at),
            TokenKind::Id => (
                self.id_token.as_ref()?.expose(),
                self.id_expires_at.unwrap_or(self.expires_at),
            ),
        };
        Some(Handed {
            kind,
            value,
            obtained_at: self.obtained_at,
            expires_at,
        })
    }

    /// Whether the token of `kind` is there and fresh enough (see [`Handed::is_fresh`]).
    pub fn is_fresh(&self, kind: TokenKind, now: OffsetDateTime, min_valid: u64) -> bool {
        self.handed(kind).is_some_and(|h| h.is_fresh(now, min_valid))
    }
}

/// Who the tokens are for: the client, its server and the scope set asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    client_id: String,
    oauth_url: String,
    scope: String,
}

impl Tokens {
    /// Whether these tokens are `identity`'s. A file of an earlier version
    /// names no scopes: it is taken for the scopes asked now.
    fn belongs_to(&self, identity: &Identity) -> bool {
        self.client_id == identity.client_id
            && self.oauth_url == identity.oauth_url
            && self.scope.as_ref().is_none_or(|s| *s == identity.scope)
    }
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
    _in_process: InProcessLock,
    waited: bool,
}

impl Lock {
    /// Whether another process held the lock when we asked for it.
    pub fn waited(&self) -> bool {
        self.waited
    }
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

    /// Say `msg` unless it was said for this profile before: a small file
    /// next to the lock file records that it was (under the lock).
    pub fn warn_once_per_profile(&self, msg: &str, _lock: &Lock) {
        let marker = self.dir.join(format!("{}.keyring-fallback", self.profile));
        if !report::warnings_shown() || fs::symlink_metadata(&marker).is_ok() {
            return;
        }
        report::warn(msg);
        let note = format!(
            "lightfi-token warned on {} that no OS keyring answered, so the refresh token of profile `{}` is kept \
             in its token file. Delete this file to be warned again.\n",
            crate::output::rfc3339(time::OffsetDateTime::now_utc()),
            self.profile
        );
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        if let Ok(mut file) = options.open(&marker) {
            let _ = file.write_all(note.as_bytes());
        }
    }

    /// The keyring answered again: a later fallback is worth a warning again.
    pub fn forget_warning(&self, _lock: &Lock) {
        let _ = fs::remove_file(self.dir.join(format!("{}.keyring-fallback", self.profile)));
    }

    /// The identity's tokens, or empty ones when there are none, or the file
    /// is unreadable (reported as a warning: a corrupt store must never stop
    /// the user from logging in again). Without a file of its own, the
    /// profile's file of an earlier version, if it is this identity's. A
    /// file written by a newer lightfi-token is an error: it is not ours to
    /// overwrite.
    pub fn load(&self) -> Result<Tokens> {
        match self.read(&self.path)? {
            Some(tokens) if tokens.belongs_to(&self.identity) => Ok(tokens),
            Some(_) => Ok(self.empty()),
            None => Ok(self.legacy()?.unwrap_or_else(|| self.empty())),
        }
    }

    /// The profile's file of an earlier version, if it holds this identity's tokens.
    fn legacy(&self) -> Result<Option<Tokens>> {
        Ok(self.read(&self.legacy_path)?.filter(|t| t.belongs_to(&self.identity)))
    }

    /// The tokens in `path`: None when it is missing or unreadable.
    fn read(&self, path: &Path) -> Result<Option<Tokens>> {
        static WARNED: AtomicBool = AtomicBool::new(false);
        let bytes = match crate::platform::read_regular(path) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            Err(e) => {
                report::warn_once(
                    &WARNED,
                    &format!("cannot read {}: {e}; treating it as empty", path.display()),
                );
                return Ok(None);
            }
        };
        match serde_json::from_slice::<Tokens>(&bytes) {
            Ok(tokens) if tokens.version > FORMAT_VERSION => Err(Error::config(
                format!(
                    "the token store {} has format version {}, newer than this lightfi-token knows ({FORMAT_VERSION})",
                    path.display(),
                    tokens.version
                ),
                "upgrade lightfi-token (a newer version wrote this file), or use another --home",
            )),
            Ok(tokens) => Ok(Some(tokens)),
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
                        path.display(),
                        e.line(),
                        e.column()
                    ),
                );
                Ok(None)
            }
        }
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
                let tokens = self.read(&path).ok()??;
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

    /// Take the profile's exclusive lock, waiting up to `timeout`. Says so on
    /// stderr once the wait passes a second, so a user knows why nothing happens.
    ///
    /// Two threads of one process first queue on an in-process lock: where
    /// `flock` is emulated per process (NFS), the file lock alone would let
    /// both in. After locking, the path must still name the locked file: if
    /// someone deleted or replaced it meanwhile, another process can lock the
    /// new one, so start again.
    pub fn lock(&self, timeout: Duration) -> Result<Lock> {
        self.ensure_dir()?;
        let start = Instant::now();
        let timed_out = || Error::LockTimeout {
            path: self.lock_path.clone(),
            waited: timeout,
        };
        let (in_process, mut contended) = InProcessLock::acquire(&self.lock_path, timeout).ok_or_else(timed_out)?;
        let mut announced = false;
        let mut pause = Duration::from_millis(5);
        loop {
            let file = self.open_lock_file()?;
            loop {
                match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
                    Ok(true) => break,
                    Ok(false) => contended = true,
                    Err(e) => return Err(Error::io("cannot lock", &self.lock_path, e)),
                }
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(timed_out());
                }
                if !announced && waited >= Duration::from_secs(1) {
                    report::note(&format!(
                        "waiting for another lightfi-token process using this profile (up to {} s more)…",
                        (timeout - waited).as_secs()
                    ));
                    announced = true;
                }
                std::thread::sleep(pause.min(timeout - waited));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            if same_file(&file, &self.lock_path) {
                report::debug(|| {
                    format!(
                        "locked {} after {} ms{}",
                        self.lock_path.display(),
                        start.elapsed().as_millis(),
                        if contended { " (another process held it)" } else { "" }
                    )
                });
                return Ok(Lock {
                    _file: file,
                    _in_process: in_process,
                    waited: contended,
                });
            }
            contended = true;
        }
    }

    fn open_lock_file(&self) -> Result<File> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&self.lock_path)
            .map_err(|e| Error::io("cannot open the lock file", &self.lock_path, e))
    }

    /// Replace the identity's file atomically: a uniquely named temporary
    /// file in the same folder (0600), fsynced, renamed over the old one.
    /// Then the profile's file of an earlier version goes, if it held this
    /// identity's tokens, and so do temporary files that killed writers of
    /// this profile left behind. Call with the lock held.
    pub fn save(&self, tokens: &Tokens, _lock: &Lock) -> Result<()> {
        self.ensure_dir()?;
        self.remove_stale_temp_files();
        let mut tokens = tokens.clone();
        tokens.version = FORMAT_VERSION;
        // Never both: a refresh token in the keyring has no copy in the file.
        if tokens.refresh_token_in == RefreshTokenIn::Keyring {
            tokens.refresh_token = None;
        }
        let json =
            serde_json::to_vec_pretty(&tokens).map_err(|e| Error::unexpected(format!("cannot encode tokens: {e}")))?;
        report::debug(|| format!("writing {}", self.path.display()));
        let written = self
            .write_temp(&self.temp_prefix(), &json)
            .and_then(|tmp| tmp.persist(&self.path).map_err(|e| e.error));
        written.map_err(|e| Error::io("cannot write the token store", &self.path, e))?;
        if self.legacy()?.is_some() {
            let _ = fs::remove_file(&self.legacy_path);
        }
        self.sync_dir();
        Ok(())
    }

    /// `bytes` in a new private temporary file in the store folder, fsynced.
    /// Its name is `prefix` and random characters, so no process finds it taken.
    fn write_temp(&self, prefix: &str, bytes: &[u8]) -> io::Result<tempfile::NamedTempFile> {
        // tempfile creates it 0600 on Unix.
        let mut tmp = tempfile::Builder::new().prefix(prefix).tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        Ok(tmp)
    }

    /// `.<profile>@tmp-`: `@` cannot be in a profile's name, so this prefix
    /// names this profile's temporary files and no other's.
    fn temp_prefix(&self) -> String {
        format!(".{}@tmp-", self.profile)
    }

    /// Remove temporary files of this profile's writers: with the lock held,
    /// none is being written, so any there was left by a killed process.
    /// Also those of earlier versions (`.<profile>.json.<pid>.tmp`).
    fn remove_stale_temp_files(&self) {
        let ours = self.temp_prefix();
        let legacy = format!(".{}.json.", self.profile);
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let legacy_pid = name
                .strip_prefix(&legacy)
                .and_then(|rest| rest.strip_suffix(".tmp"))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            if name.starts_with(&ours) || legacy_pid {
                let _ = fs::remove_file(entry.path());
            }
        }
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
            .write_temp(&format!(".{name}@tmp-"), &content)
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

    /// Replace `name`, a private file next to the profiles' tokens, with
    /// `content` atomically: a temporary file (0600, fsynced) renamed over it,
    /// so a reader sees the old content or the new one, never a mix.
    pub fn replace_private(&self, name: &str, content: &[u8]) -> Result<PathBuf> {
        let path = self.dir.join(name);
        self.ensure_dir()?;
        self.write_temp(&format!(".{name}@tmp-"), content)
            .and_then(|tmp| tmp.persist(&path).map_err(|e| e.error))
            .map_err(|e| Error::io("cannot write", &path, e))?;
        self.sync_dir();
        Ok(path)
    }

    /// The store folder, `<home>/tokens`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The profile's lock file.
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Whether another process holds the profile's lock now, asked without
    /// waiting and without creating anything: None when there is no lock file.
    pub fn lock_is_held(&self) -> io::Result<Option<bool>> {
        let file = match File::open(&self.lock_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let free = fs4::fs_std::FileExt::try_lock_exclusive(&file)?;
        // Dropping the file releases the lock we may have just taken.
        Ok(Some(!free))
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

/// Scopes as a set: sorted, each once, space-separated.
pub fn scope_set(scope: &str) -> String {
    let mut scopes: Vec<&str> = scope.split_whitespace().collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes.join(" ")
}

impl Identity {
    /// 16 hex digits of SHA-256 over the identity's parts, each ended by a
    /// NUL (which none of them can contain), so no two identities share an input.
    fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in [&self.client_id, &self.oauth_url, &self.scope] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        hash.finalize()[..8]
            .iter()
            .flat_map(|b| {
                [
                    char::from(HEX[usize::from(b >> 4)]),
                    char::from(HEX[usize::from(b & 15)]),
                ]
            })
            .collect()
    }
}

/// Whether the open `file` is the one `path` names now.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// The in-process half of the profile lock: one thread of this process at a
/// time per lock file, released on drop.
struct InProcessLock(PathBuf);

static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
static RELEASED: std::sync::Condvar = std::sync::Condvar::new();

impl InProcessLock {
    /// The lock for `path`, and whether another thread held it first; None
    /// after `timeout`.
    fn acquire(path: &Path, timeout: Duration) -> Option<(InProcessLock, bool)> {
        let deadline = Instant::now() + timeout;
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        let mut contended = false;
        while held.iter().any(|p| p == path) {
            contended = true;
            let left = deadline.checked_duration_since(Instant::now())?;
            held = RELEASED.wait_timeout(held, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        held.push(path.to_path_buf());
        Some((InProcessLock(path.to_path_buf()), contended))
    }
}

impl Drop for InProcessLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|p| *p != self.0);
        RELEASED.notify_all();
    }
}

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
            id_token: None,
            id_expires_at: None,
        }
    }

    #[test]
    fn min_valid_is_capped_at_half_the_lifetime() {
        let t0 = datetime!(2026-11-26 10:00 UTC);
        // A 5-minute token with the 300 s default: fresh for its first half.
        let a = TokenKind::Access;
        let short = token(t0, t0 + Duration::from_secs(300));
        assert!(short.is_fresh(a, t0 + Duration::from_secs(100), 300));
        assert!(!short.is_fresh(a, t0 + Duration::from_secs(160), 300));
        // A 1-hour token: refreshed when less than 300 s are left.
        let long = token(t0, t0 + Duration::from_secs(3600));
        assert!(long.is_fresh(a, t0 + Duration::from_secs(3200), 300));
        assert!(!long.is_fresh(a, t0 + Duration::from_secs(3400), 300));
        assert!(!long.is_fresh(a, t0 + Duration::from_secs(4000), 0));
        // No ID token: never fresh as one. One with its own, shorter life.
        assert!(!long.is_fresh(TokenKind::Id, t0, 0));
        let mut with_id = long.clone();
        with_id.id_token = Some(IdToken::new("i"));
        with_id.id_expires_at = Some(t0 + Duration::from_secs(600));
        assert!(with_id.is_fresh(TokenKind::Id, t0 + Duration::from_secs(200), 300));
        assert!(!with_id.is_fresh(TokenKind::Id, t0 + Duration::from_secs(400), 300));
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

    #[test]
    fn saving_leaves_no_temporary_file() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        store.save(&store.empty(), &lock).unwrap();
        store.save(&store.empty(), &lock).unwrap();
        let names: Vec<String> = fs::read_dir(home.path().join("tokens"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("@tmp-")), "{names:?}");
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
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

    #[test]
    fn the_next_writer_removes_temporary_files_killed_writers_left() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let store = Store::new(&s);
        let lock = store.lock(Duration::from_secs(1)).unwrap();
        let dir = home.path().join("tokens");
        for stale in [
            ".default@tmp-AbC123",
            ".default.json.4242.tmp",
            ".other@tmp-x",
            ".default.json.x.tmp",
        ] {
            fs::write(dir.join(stale), "{}").unwrap();
        }
        store.save(&store.empty(), &lock).unwrap();
        let names = names_in(&dir);
        assert!(
            !names
                .iter()
                .any(|n| n == ".default@tmp-AbC123" || n == ".default.json.4242.tmp"),
            "{names:?}"
        );
        // Another profile's, and what is not a temporary file of ours, stay.
        assert!(names.iter().any(|n| n == ".other@tmp-x") && names.iter().any(|n| n == ".default.json.x.tmp"));
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
    fn threads_of_one_process_take_the_lock_in_turn() {
        let home = tempfile::tempdir().unwrap();
        let s = settings(home.path());
        let inside = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let _lock = Store::new(&s).lock(Duration::from_secs(10)).unwrap();
                    assert_eq!(inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0);
                    std::thread::sleep(Duration::from_millis(5));
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
    }
}
