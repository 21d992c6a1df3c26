//! The OS keyring, where a login's refresh token is kept when one answers:
//! the Secret Service on Linux and the BSDs (over the D-Bus session bus, in
//! pure Rust), the Keychain on macOS, the Credential Manager on Windows — all
//! through the `keyring` crate. One entry per login: service
//! [`SERVICE`], account `<profile>@<identity hash>` (`Store::keyring_account`).
//!
//! Only the refresh token goes there, and only the engine calls this, when a
//! refresh or a login needs it: the cached path never does.
//!
//! Every call runs on a helper thread and waits at most [`TIMEOUT`]: a
//! keyring that hangs (a Secret Service that never answers, an unlock prompt
//! nobody sees) costs that much once per process. After a timeout the thread
//! is abandoned (the process ends soon after, and the thread with it) and
//! later calls of this process fail at once, as they would only queue behind it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::report;
use crate::secret::RefreshToken;

/// The service name of every entry.
pub const SERVICE: &str = "lightfi-token";

/// How long one keyring call may take before it counts as unanswered.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Why the keyring could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It answered no: none running, none on the bus, locked, refused.
    Unavailable(String),
    /// No answer within [`TIMEOUT`].
    TimedOut,
}

impl Failure {
    /// For messages: never a secret.
    pub fn describe(&self) -> String {
        match self {
            Failure::Unavailable(why) => why.clone(),
            Failure::TimedOut => format!("it did not answer within {} s", TIMEOUT.as_secs()),
        }
    }
}

/// The keyring this build uses, for messages and `status`. Only the Secret
/// Service is tested; the others come from the `keyring` crate.
pub fn backend() -> &'static str {
    if cfg!(target_os = "macos") {
        "macOS Keychain"
    } else if cfg!(windows) {
        "Windows Credential Manager"
    } else {
        "Secret Service"
    }
}

/// What to do when the keyring holding a login does not answer. Over SSH
/// that is the rule, not a fault: the desktop's keyring is locked or not on
/// this session's bus, and only a login of the session's own gets past it.
pub fn way_out() -> String {
    let over_ssh = ["SSH_CONNECTION", "SSH_TTY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    let why = if over_ssh {
        "over SSH the desktop's keyring is usually locked or out of reach: "
    } else {
        ""
    };
    format!(
        "{why}unlock the {} in this session (on Linux: a Secret Service such as gnome-keyring on the D-Bus session \
         bus, DBUS_SESSION_BUS_ADDRESS), or run `LIGHTFI_STORAGE=file lightfi-token login` for a login of this \
         session's own, kept in the token file",
        backend()
    )
}

/// The refresh token stored for `account`; None when the keyring answered
/// and has no such entry (never when it did not answer).
pub fn read(account: &str) -> Result<Option<RefreshToken>, Failure> {
    call("read", account, |entry| match entry.get_password() {
        Ok(value) => Ok(Some(RefreshToken::new(value))),
        Err(::keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(unavailable(&e)),
    })
}

/// Store `token` as `account`'s entry (replacing it), then read it back:
/// Ok only when the keyring returns exactly what was written.
pub fn write(account: &str, token: &RefreshToken) -> Result<(), Failure> {
    let written = token.clone();
    call("write", account, move |entry| {
        entry.set_password(written.expose()).map_err(|e| unavailable(&e))
    })?;
    match read(account)? {
        Some(back) if back == *token => Ok(()),
        Some(_) => Err(Failure::Unavailable(
            "reading the entry back gave another value than was written".into(),
        )),
        None => Err(Failure::Unavailable("reading the entry back found none".into())),
    }
}

/// Delete `account`'s entry; whether there was one.
pub fn delete(account: &str) -> Result<bool, Failure> {
    call("delete", account, |entry| match entry.delete_credential() {
        Ok(()) => Ok(true),
        Err(::keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(unavailable(&e)),
    })
}

/// Set when a call timed out: its thread may still hold the keyring's
/// connection, so later calls would only wait behind it.
static GAVE_UP: AtomicBool = AtomicBool::new(false);

/// Run `op` on `account`'s entry on a helper thread, waiting at most
/// [`TIMEOUT`] (which includes connecting to the keyring on first use).
fn call<T: Send + 'static>(
    what: &'static str,
    account: &str,
    op: impl FnOnce(&::keyring::Entry) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    if GAVE_UP.load(Ordering::Relaxed) {
        report::debug(|| format!("keyring {what}: skipped, an earlier call did not answer"));
        return Err(Failure::TimedOut);
    }
    let account = account.to_string();
    let (sender, receiver) = mpsc::sync_channel(1);
    let started = Instant::now();
    let spawned = std::thread::Builder::new()
        .name(format!("keyring {what}"))
        .spawn(move || {
            let result = ::keyring::Entry::store_status()
                .as_ref()
                .map_err(unavailable)
                .and_then(|()| ::keyring::Entry::new(SERVICE, &account).map_err(|e| unavailable(&e)))
                .and_then(|entry| op(&entry));
            // The caller may have stopped waiting: nothing to do then.
            let _ = sender.send(result);
        });
    if let Err(e) = spawned {
        return Err(Failure::Unavailable(format!("cannot start a thread for it: {e}")));
    }
    let result = match receiver.recv_timeout(TIMEOUT) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            GAVE_UP.store(true, Ordering::Relaxed);
            Err(Failure::TimedOut)
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Failure::Unavailable("its call failed".into())),
    };
    report::debug(|| {
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(f) => f.describe(),
        };
        format!(
            "keyring {what} ({}, service {SERVICE}): {outcome} after {} ms",
            backend(),
            started.elapsed().as_millis()
        )
    });
    result
}

/// A keyring error as a message that names no secret: the variants that
/// carry the entry's data are described, never shown.
fn unavailable(e: &::keyring::Error) -> Failure {
    use ::keyring::Error as E;
    let why = match e {
        E::BadEncoding(_) | E::BadDataFormat(..) => "its entry holds something lightfi-token did not write".to_string(),
        E::Ambiguous(_) => "several of its entries match this login".to_string(),
        E::NoDefaultStore => format!("no {} is available", backend()),
        other => {
            let text = report::sanitize(&other.to_string());
            report::debug(|| format!("keyring: {text}"));
            plainly(&text).map_or(text, str::to_string)
        }
    };
    Failure::Unavailable(why)
}

/// The Secret Service's two usual "not here" errors, said plainly.
fn plainly(text: &str) -> Option<&'static str> {
    if text.contains("org.freedesktop.DBus.Error.ServiceUnknown") {
        Some("no Secret Service is running on the D-Bus session bus")
    } else if text.contains("Failed to connect to address") {
        Some("there is no D-Bus session bus to ask (DBUS_SESSION_BUS_ADDRESS unset, or its socket is gone)")
    } else {
        None
    }
}
