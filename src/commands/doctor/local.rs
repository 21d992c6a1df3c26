//! Checks on this machine: the config file, the settings' layers, the token
//! store, the stored login, the lock, the callback port.

use time::OffsetDateTime;

use crate::config::Settings;
use crate::login;
use crate::output::rfc3339;
use crate::platform;
use crate::store::Store;

use super::Findings;

/// `config.toml`: read and trusted (else `resolve` failed before this), and
/// what resolving the settings had to say.
pub fn config(findings: &mut Findings, settings: &Settings, warnings: &[String]) {
    let path = settings.home.join("config.toml");
    let found = match std::fs::metadata(&path) {
        Ok(meta) => format!("{} ({})", path.display(), mode(&meta)),
        Err(_) => format!(
            "no {} (settings come from flags, the environment and the defaults)",
            path.display()
        ),
    };
    if warnings.is_empty() {
        findings.ok("config", found);
    } else {
        findings.warn(
            "config",
            format!("{found}\n{}", warnings.join("\n")),
            "see each warning above: it names what to change",
        );
    }
}

/// Which layer each setting comes from (`status` shows the same).
pub fn settings(findings: &mut Findings, s: &Settings) {
    let from = |source: crate::config::Source| source.describe(&s.profile);
    let src = &s.sources;
    let secret = match src.client_secret {
        Some(source) => format!("set ({})", from(source)),
        None => "none (a public client)".into(),
    };
    let mut message = format!(
        "profile {} ({}), home {} ({})\n\
         client id {} ({}), client secret {secret}\n\
         oauth url {} ({})\n\
         redirect uri {} ({}), scope {} ({})",
        s.profile,
        from(src.profile),
        s.home.display(),
        from(src.home),
        s.client.id,
        from(src.client_id),
        s.client.endpoints.base,
        from(src.oauth_url),
        s.redirect_uri,
        from(src.redirect_uri),
        s.scope,
        from(src.scope),
    );
    if s.env_refresh_token.is_some() {
        message += "\nrefresh token from LIGHTFI_REFRESH_TOKEN (the stored one is not used)";
    }
    if let Some((_, rotation)) = crate::token::secret_in_use(s) {
        message += &format!("\n{rotation}");
    }
    findings.ok("settings", message);
}

/// The store folder is 0700 and ours; the files in it are 0600 and ours.
pub fn store(findings: &mut Findings, s: &Settings) {
    let store = Store::new(s);
    let dir = store.dir();
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return findings.ok(
                "store",
                format!(
                    "{} does not exist yet (the first login creates it, 0700)",
                    dir.display()
                ),
            );
        }
        Err(e) => {
            return findings.fail(
                "store",
                format!("cannot inspect {}: {e}", dir.display()),
                "fix the permissions of its parent folders, or point LIGHTFI_TOKEN_HOME (--home) elsewhere",
            );
        }
    };
    if !meta.is_dir() {
        return findings.fail(
            "store",
            format!("{} is not a folder", dir.display()),
            format!(
                "move it away: lightfi-token keeps its tokens in a folder there ({})",
                dir.display()
            ),
        );
    }
    if !platform::is_mine(&meta) {
        return findings.fail(
            "store",
            format!("{} belongs to another user", dir.display()),
            "point LIGHTFI_TOKEN_HOME (--home) at a folder of your own",
        );
    }
    let mut problems = vec![];
    let mut fixes = vec![];
    if group_or_others(&meta) {
        problems.push(format!("{} is {}, open to other users", dir.display(), mode(&meta)));
        fixes.push(format!("chmod 700 {}", dir.display()));
    }
    let mut files = 0;
    let mut foreign = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            if meta.file_type().is_symlink() || !meta.is_dir() {
                problems.push(format!("{} is not a regular file", path.display()));
                fixes.push(format!("remove {}", path.display()));
            }
            continue;
        }
        files += 1;
        if !platform::is_mine(&meta) {
            foreign.push(path.display().to_string());
        } else if group_or_others(&meta) {
            problems.push(format!(
                "{} is {}, readable by other users",
                path.display(),
                mode(&meta)
            ));
            fixes.push(format!("chmod 600 {}", path.display()));
        }
    }
    if !foreign.is_empty() {
        return findings.fail(
            "store",
            format!("files in the store belong to another user: {}", foreign.join(", ")),
            "remove them (they were not written by you), then log in again if needed",
        );
    }
    if problems.is_empty() {
        findings.ok(
            "store",
            format!(
                "{} ({}), {files} file(s), none open to other users",
                dir.display(),
                mode(&meta)
            ),
        );
    } else {
        findings.warn("store", problems.join("\n"), fixes.join("; "));
    }
}

/// What is stored for these settings: a refresh token, an access token, a
/// recorded failure (never a value).
pub fn login(findings: &mut Findings, s: &Settings) {
    let store = Store::new(s);
    let tokens = match store.load() {
        Ok(tokens) => tokens,
        Err(e) => return findings.fail("login", e.to_string(), e.hint()),
    };
    let now = OffsetDateTime::now_utc();
    let access = match &tokens.access {
        Some(a) if a.seconds_left(now) > 0 => format!("access token valid until {}", rfc3339(a.expires_at)),
        Some(a) => format!("access token expired at {}", rfc3339(a.expires_at)),
        None => "no access token cached".into(),
    };
    let refresh = if s.env_refresh_token.is_some() {
        Some("refresh token from LIGHTFI_REFRESH_TOKEN")
    } else if s.vault.is_some() {
        Some("refresh token kept in Vault (the `vault` check reads it); access token cached")
    } else {
        tokens.refresh_token.as_ref().map(|_| "refresh token stored")
    };
    let Some(refresh) = refresh else {
        let others = store.others().len();
        let more = if others > 0 {
            format!(
                " ({others} login(s) of this profile with another client id, OAuth URL or scopes: \
                 `lightfi-token status` lists them)"
            )
        } else {
            String::new()
        };
        return findings.warn(
            "login",
            format!("not logged in with these settings{more}; {access}"),
            "run `lightfi-token login`",
        );
    };
    let message = format!("{refresh} in {}; {access}", store.path().display());
    if tokens.refresh_started.is_some() {
        return findings.warn(
            "login",
            format!(
                "{message}\na refresh of this rotating login was cut short (the process died before storing \
                 the answer): the stored refresh token may no longer work"
            ),
            "run `lightfi-token doctor --refresh` to try it; if it is rejected, `lightfi-token login`",
        );
    }
    match &tokens.last_failure {
        Some(attempt) => findings.warn(
            "login",
            format!(
                "{message}\nthe last attempt to get a token failed at {}: {}",
                rfc3339(attempt.ended_at),
                attempt.message
            ),
            if attempt.hint.is_empty() {
                "run `lightfi-token doctor --refresh` to try again".to_string()
            } else {
                attempt.hint.clone()
            },
        ),
        None => findings.ok("login", message),
    }
}

/// Whether another process holds the profile's lock now (asked without waiting).
pub fn lock(findings: &mut Findings, s: &Settings) {
    let store = Store::new(s);
    let path = store.lock_path();
    match store.lock_is_held() {
        Ok(None) => findings.ok("lock", format!("no lock file yet ({})", path.display())),
        Ok(Some(false)) => findings.ok("lock", format!("{} is free", path.display())),
        Ok(Some(true)) => {
            let holder = platform::lock_holder(path)
                .map(|(pid, name)| format!(" by `{name}` (process {pid})"))
                .unwrap_or_default();
            findings.warn(
                "lock",
                format!(
                    "{} is held{holder}: a login or refresh of this profile is under way, and other \
                     callers wait for it (up to --lock-timeout)",
                    path.display()
                ),
                "let it finish (a browser login may take 5 minutes), or stop that process",
            );
        }
        Err(e) => findings.warn(
            "lock",
            format!("cannot try the lock {}: {e}", path.display()),
            "check the store folder's permissions",
        ),
    }
}

/// Whether a login could listen on the redirect URI's port now.
pub fn callback_port(findings: &mut Findings, s: &Settings) {
    match login::check_callback_port(s) {
        Ok(()) => findings.ok(
            "callback_port",
            format!(
                "a login can receive its callback at {} (the port is free)",
                s.redirect_uri
            ),
        ),
        Err(e) => findings.fail("callback_port", e.to_string(), e.hint()),
    }
}

/// `0700`-style permission bits (empty where there are none).
fn mode(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        format!("mode {:04o}", meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        "permissions not checked here".into()
    }
}

/// Whether the group or others have any access (Unix).
fn group_or_others(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o077 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// The OS keyring: which one, whether it answers (one read, within the
/// keyring's own time limit), and where the refresh token is. Never a secret:
/// only whether an entry is there.
pub fn keyring(findings: &mut Findings, s: &Settings) {
    use crate::config::Storage;
    use crate::store::RefreshTokenIn;
    let store = Store::new(s);
    let backend = crate::keyring::backend();
    let account = store.keyring_account();
    let in_keyring = store
        .load()
        .is_ok_and(|t| t.refresh_token_in == RefreshTokenIn::Keyring);
    if s.storage == Storage::Vault && !in_keyring {
        return findings.ok("keyring", "not used (storage = vault): the refresh token is in Vault");
    }
    if s.storage == Storage::File && !in_keyring {
        return findings.ok(
            "keyring",
            format!(
                "not used (storage = file): the refresh token is in the plaintext file {}",
                store.path().display()
            ),
        );
    }
    match crate::keyring::read(&account) {
        Ok(Some(_)) => findings.ok(
            "keyring",
            format!("the {backend} answers and holds this login's refresh token (account `{account}`)"),
        ),
        Ok(None) if in_keyring => findings.fail(
            "keyring",
            format!("the store says the refresh token is in the {backend}, which has no entry `{account}`"),
            "run `lightfi-token login`",
        ),
        Ok(None) => findings.ok(
            "keyring",
            format!("the {backend} answers; the next login or refresh stores the refresh token there"),
        ),
        Err(e) if in_keyring || s.storage == Storage::Keyring => findings.fail(
            "keyring",
            format!("the {backend} does not answer: {}", e.describe()),
            crate::keyring::way_out(),
        ),
        Err(e) => findings.warn(
            "keyring",
            format!(
                "the {backend} does not answer ({}): the refresh token is kept in the plaintext file {}",
                e.describe(),
                store.path().display()
            ),
            "start a Secret Service (e.g. gnome-keyring) in your session, or set storage = \"file\" to say this is meant",
        ),
    }
}
