//! The key `serve` requires: 32 random bytes, base64url, in a 0600 file
//! next to the tokens, created on first use and handed out only on request
//! (`serve --show-key`).

use std::path::PathBuf;

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
    let (path, bytes) = store.read_or_create(KEY_FILE, || {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|e| Error::unexpected(format!("cannot get random bytes for the serve key: {e}")))?;
        Ok(format!("{}\n", URL_SAFE_NO_PAD.encode(random)).into_bytes())
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let key = text.trim();
    if key.len() < 32 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::config(
            format!("the serve key file {} is malformed", path.display()),
            "delete it: `lightfi-token serve` creates a new key on its next start",
        ));
    }
    Ok((ServeKey::new(key), path))
}
