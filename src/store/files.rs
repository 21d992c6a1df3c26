//! Files in the store folder: atomic replacement, the temporary files a
//! killed writer leaves, private files of other parts (the `serve` key), and
//! the marker that a warning was given.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{Lock, Store};
use crate::error::{Error, Result};
use crate::report;

impl Store {
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
            crate::timestamp::rfc3339(time::OffsetDateTime::now_utc()),
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

    /// Say `msg` unless this profile's `name` marker (next to the lock file)
    /// says it was said in the last day; the marker then records it.
    pub fn warn_at_most_daily(&self, name: &str, msg: &str) {
        let file = format!("{}.{name}", self.profile);
        let said_today = fs::metadata(self.dir.join(&file))
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|ago| ago.as_secs() < 24 * 3600));
        if said_today || !report::warnings_shown() {
            return;
        }
        report::warn(msg);
        let note = format!(
            "lightfi-token warned on {}; it says it again a day later. Delete this file to hear it at the next call.\n",
            crate::timestamp::rfc3339(time::OffsetDateTime::now_utc())
        );
        let _ = self.replace_private(&file, note.as_bytes());
    }

    /// Remember which of the profile's client secrets (from 0) the server
    /// accepted last, so `status` and `doctor` can say which one is stale.
    /// Best effort: only a hint is lost when it cannot be written.
    pub fn note_working_secret(&self, index: usize) {
        if self.working_secret() != Some(index) {
            let _ = self.replace_private(
                &format!("{}.client-secret", self.profile),
                format!("{index}\n").as_bytes(),
            );
        }
    }

    /// The client secret the server accepted last, as noted.
    pub fn working_secret(&self) -> Option<usize> {
        let text = fs::read_to_string(self.dir.join(format!("{}.client-secret", self.profile))).ok()?;
        text.trim().parse().ok()
    }

    /// The keyring answered again: a later fallback is worth a warning again.
    pub fn forget_warning(&self, _lock: &Lock) {
        let _ = fs::remove_file(self.dir.join(format!("{}.keyring-fallback", self.profile)));
    }

    /// Replace `path` in the store folder with `bytes` atomically: a
    /// temporary file named `prefix` and random characters (0600, fsynced),
    /// renamed over it, so a reader sees the old content or the new one.
    pub(super) fn replace(&self, path: &Path, prefix: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_temp(prefix, bytes)
            .and_then(|tmp| tmp.persist(path).map_err(|e| e.error))
            .map(|_| ())
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
    pub(super) fn temp_prefix(&self) -> String {
        format!(".{}@tmp-", self.profile)
    }

    /// Remove temporary files of this profile's writers: with the lock held,
    /// none is being written, so any there was left by a killed process.
    /// Also those of earlier versions (`.<profile>.json.<pid>.tmp`).
    pub(super) fn remove_stale_temp_files(&self) {
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
        // Like the store: a regular file only; a FIFO in its place is refused
        // without blocking on it.
        match crate::platform::read_regular(&path) {
            Ok(Some(bytes)) => {
                restrict_to_owner(&path)?;
                return Ok((path, bytes));
            }
            Ok(None) => {}
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
        let bytes = crate::platform::read_regular(&path)
            .and_then(|bytes| bytes.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound)))
            .map_err(|e| Error::io("cannot read", &path, e))?;
        Ok((path, bytes))
    }

    /// Replace `name`, a private file next to the profiles' tokens, with
    /// `content` atomically: a temporary file (0600, fsynced) renamed over it,
    /// so a reader sees the old content or the new one, never a mix.
    pub fn replace_private(&self, name: &str, content: &[u8]) -> Result<PathBuf> {
        let path = self.dir.join(name);
        self.ensure_dir()?;
        self.replace(&path, &format!(".{name}@tmp-"), content)
            .map_err(|e| Error::io("cannot write", &path, e))?;
        self.sync_dir();
        Ok(path)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Settings;

    fn settings(home: &Path) -> Settings {
        Settings::for_tests(home, "https://idp.example/oauth2")
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
    fn a_fifo_in_place_of_a_private_file_is_refused_without_blocking() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(&settings(home.path()));
        store.ensure_dir().unwrap();
        let fifo = home.path().join("tokens/serve.key");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = store.read_or_create("serve.key", || Ok(b"new".to_vec())).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
