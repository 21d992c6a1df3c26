//! The key `serve` requires: 32 random bytes, base64url, in a 0600 file
//! next to the tokens, created on first use and handed out only on request
//! (`serve --show-key`). `serve --rotate-key` replaces it; a running server
//! notices the new file on its next request ([`Watched`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::secret::ServeKey;
use crate::store::Store;

/// The key's file, in the store folder next to the profiles' tokens.
const KEY_FILE: &str = "serve.key";

/// The key and its file, created when missing.
pub fn load_or_create(settings: &Settings) -> Result<(ServeKey, PathBuf)> {
    let store = Store::new(settings);
    let (path, bytes) = store.read_or_create(KEY_FILE, new_key)?;
    Ok((parse(&path, &bytes)?, path))
}

/// Replace the key with a new random one, atomically; returns the file.
pub fn rotate(settings: &Settings) -> Result<PathBuf> {
    Store::new(settings).replace_private(KEY_FILE, &new_key()?)
}

fn new_key() -> Result<Vec<u8>> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|e| Error::unexpected(format!("cannot get random bytes for the serve key: {e}")))?;
    Ok(format!("{}\n", URL_SAFE_NO_PAD.encode(random)).into_bytes())
}

fn parse(path: &Path, bytes: &[u8]) -> Result<ServeKey> {
    let text = String::from_utf8_lossy(bytes);
    let key = text.trim();
    if key.len() < 32 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::config(
            format!("the serve key file {} is malformed", path.display()),
            "replace it: `lightfi-token serve --rotate-key` writes a new key",
        ));
    }
    Ok(ServeKey::new(key))
}

/// The key as the file holds it now, re-read only when the file changed:
/// one `stat` per request.
pub struct Watched {
    path: PathBuf,
    stamp: Option<Stamp>,
    /// None while the file is missing or malformed: every key is refused.
    key: Option<ServeKey>,
}

/// What tells a replaced file from the one read before.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: (u64, u64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        },
    })
}

impl Watched {
    /// Watch `path`, whose content is `key` now.
    pub fn new(path: PathBuf, key: ServeKey) -> Watched {
        Watched {
            stamp: stamp(&path),
            path,
            key: Some(key),
        }
    }

    /// The current key; re-read first if the file changed since the last
    /// look. Returns also a note for the log when it was re-read or is unusable.
    pub fn current(&mut self) -> (Option<&ServeKey>, Option<String>) {
        let now = stamp(&self.path);
        if now == self.stamp {
            return (self.key.as_ref(), None);
        }
        self.stamp = now;
        // A regular file only: a FIFO put in its place must not hang requests.
        let read = crate::platform::read_regular(&self.path)
            .and_then(|bytes| bytes.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound)))
            .map_err(|e| Error::io("cannot read", &self.path, e))
            .and_then(|bytes| parse(&self.path, &bytes));
        let note = match read {
            Ok(key) => {
                let changed = self.key.as_ref() != Some(&key);
                self.key = Some(key);
                changed.then(|| {
                    format!(
                        "the key in {} changed: the new one is required from now on",
                        self.path.display()
                    )
                })
            }
            Err(e) => {
                self.key = None;
                Some(format!(
                    "{e}: refusing every request until `lightfi-token serve --rotate-key` writes a new key"
                ))
            }
        };
        (self.key.as_ref(), note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(watched: &mut Watched) -> (Option<String>, Option<String>) {
        let (key, note) = watched.current();
        (key.map(|k| k.expose().to_string()), note)
    }

    #[test]
    fn a_rotated_key_is_picked_up_and_a_broken_file_refuses_all() {
        let home = tempfile::tempdir().unwrap();
        let settings = Settings::for_tests(home.path(), "https://idp.example/oauth2");
        let (first, path) = load_or_create(&settings).unwrap();
        let first = first.expose().to_string();
        let mut watched = Watched::new(path.clone(), ServeKey::new(&first));
        assert_eq!(shown(&mut watched), (Some(first.clone()), None));
        assert_eq!(rotate(&settings).unwrap(), path);
        let second = load_or_create(&settings).unwrap().0.expose().to_string();
        assert_ne!(second, first);
        let (key, note) = shown(&mut watched);
        assert_eq!(key.as_deref(), Some(second.as_str()));
        assert!(note.unwrap().contains("changed"));
        assert_eq!(shown(&mut watched), (Some(second), None), "no re-read without a change");
        std::fs::write(&path, "short\n").unwrap();
        let (key, note) = shown(&mut watched);
        assert!(key.is_none());
        assert!(note.unwrap().contains("malformed"));
        std::fs::remove_file(&path).unwrap();
        assert!(shown(&mut watched).0.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_in_place_of_the_key_refuses_all_without_blocking() {
        let home = tempfile::tempdir().unwrap();
        let settings = Settings::for_tests(home.path(), "https://idp.example/oauth2");
        let (key, path) = load_or_create(&settings).unwrap();
        let mut watched = Watched::new(path.clone(), key);
        std::fs::remove_file(&path).unwrap();
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        let (done, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(shown(&mut watched));
        });
        let (key, note) = answer
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("reading a FIFO key did not answer within 20 s");
        assert!(key.is_none());
        assert!(note.unwrap().contains("not a regular file"));
    }
}
