//! The git credential helper protocol (gitcredentials(7); git-credential(1),
//! "INPUT/OUTPUT FORMAT" and "CAPABILITY INPUT/OUTPUT FORMAT"), read and
//! written over `impl Read` / `impl Write`.
//!
//! git runs the helper with one action and writes `key=value` lines to its
//! stdin, ended by a blank line or EOF:
//! - `get`: answer with the token. When git offers `capability[]=authtype`
//!   (git 2.46+), as `authtype=Bearer` + `credential=…` + `ephemeral=true`, so
//!   git sends `Authorization: Bearer …`; otherwise as `username=oauth2` +
//!   `password=…` + `password_expiry_utc`, for HTTP Basic.
//! - `erase`: git's server rejected the token; forget the cached access token
//!   (not the refresh token), so the next `get` refreshes.
//! - `capability`: `version 0` and the capabilities, one a line.
//! - `store` and anything else: nothing to do; git ignores the answer.
//!
//! Which URLs get the token: those git asks about, which the
//! `credential.<url>.helper` setting scopes (integrations/git). The helper
//! itself knows no API host list, but never hands the token to anything but
//! `https`, or plain `http` on loopback, where it would travel in clear text
//! or to another protocol's server (`git send-email` asks helpers for SMTP).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};

use crate::error::{Error, Result};
use crate::store::Handed;

/// The longest line git-credential(1) allows, newline included.
const MAX_LINE: usize = 65535;
/// More than any real credential description; stops a runaway writer.
const MAX_LINES: usize = 1024;

/// The answer to `capability`: git-credential(1)'s own format, not `key=value`.
pub fn capabilities() -> Vec<u8> {
    b"version 0\ncapability authtype\n".to_vec()
}

/// The answer to `get`: the token in the form git asked for. The token stays
/// in its secret type until [`Answer::write`]; `Debug` shows no value.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    handed: Handed<'a>,
    authtype: bool,
}

/// The answer to `get` with `handed`; `authtype`: git offered `capability[]=authtype`.
pub fn answer(handed: Handed<'_>, authtype: bool) -> Answer<'_> {
    Answer { handed, authtype }
}

impl Answer<'_> {
    /// Write the answer's attributes (see [`write_attributes`]).
    pub fn write(&self, out: &mut impl Write) -> Result<(), ProtocolError> {
        let token = self.handed.token.expose().to_string();
        let attrs = if self.authtype {
            vec![
                ("capability[]", "authtype".into()),
                ("authtype", "Bearer".into()),
                ("credential", token),
                // A bearer token expires: storage helpers must not keep it.
                ("ephemeral", "true".into()),
            ]
        } else {
            vec![
                ("username", "oauth2".into()),
                ("password", token),
                // git 2.41+ does not reuse the password after this instant.
                (
                    "password_expiry_utc",
                    self.handed.expires_at.unix_timestamp().to_string(),
                ),
            ]
        };
        write_attributes(out, &attrs)
    }
}

/// A credential description as git sent it: attributes in order, values as
/// given (no quoting exists). `Debug` shows keys only: values include tokens.
#[derive(Default, PartialEq, Eq)]
pub struct Attributes(Vec<(String, String)>);

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

impl Attributes {
    /// The value of a single-valued key; a later line overrides an earlier one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether git announced `capability[]=name`.
    pub fn has_capability(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == "capability[]" && v == name)
    }

    /// Every attribute, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// Why git's input or our output does not fit the protocol.
#[derive(Debug)]
pub enum ProtocolError {
    Io(io::Error),
    /// Line `line` (1-based) is not `key=value`, or is too long.
    Malformed {
        line: usize,
        why: &'static str,
    },
    /// The attribute `key` cannot be sent so that git reads it back as written.
    Unencodable {
        key: String,
        why: &'static str,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Io(e) => write!(f, "{e}"),
            ProtocolError::Malformed { line, why } => write!(f, "line {line} {why}"),
            ProtocolError::Unencodable { key, why } => write!(f, "cannot send `{key}`: {why}"),
        }
    }
}

/// Read a credential description: `key=value` lines up to a blank line or
/// EOF. Keys ending in `[]` may repeat; an empty value for one clears its
/// earlier values (git-credential(1)). A trailing `\r` is dropped, as git does.
pub fn read_attributes(input: impl Read) -> Result<Attributes, ProtocolError> {
    let mut input = BufReader::new(input.take(((MAX_LINE + 1) * MAX_LINES) as u64));
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(ProtocolError::Io)?;
        let malformed = |why| ProtocolError::Malformed { line: number, why };
        if read == 0 {
            break;
        }
        if read > MAX_LINE {
            return Err(malformed("is longer than 65535 bytes"));
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            break;
        }
        if number > MAX_LINES {
            return Err(malformed("is past the limit of 1024 lines"));
        }
        if line.contains(&0) {
            return Err(malformed("contains a NUL byte"));
        }
        let text = String::from_utf8_lossy(&line);
        let Some((key, value)) = text.split_once('=') else {
            return Err(malformed("is not `key=value`"));
        };
        if key.is_empty() {
            return Err(malformed("has an empty key"));
        }
        if key.ends_with("[]") && value.is_empty() {
            attrs.retain(|(k, _)| k != key);
            continue;
        }
        attrs.push((key.to_string(), value.to_string()));
    }
    Ok(Attributes(attrs))
}

/// Write `attrs` as `key=value` lines. Every key and value is checked before
/// anything is written: a value with a newline would let its tail be read as
/// another attribute.
pub fn write_attributes(out: &mut impl Write, attrs: &[(&str, String)]) -> Result<(), ProtocolError> {
    let mut text = String::new();
    for (key, value) in attrs {
        if let Some(why) = unencodable(key, value) {
            return Err(ProtocolError::Unencodable {
                key: key.to_string(),
                why,
            });
        }
        text.push_str(key);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(ProtocolError::Io)
}

/// Why the line `key=value` would not reach git as written, if it would not.
fn unencodable(key: &str, value: &str) -> Option<&'static str> {
    if key.is_empty() || key.contains(['=', '\n', '\0']) {
        Some("the key is empty or contains `=`, a newline or a NUL byte")
    } else if value.contains(['\n', '\0']) {
        Some("the value contains a newline or a NUL byte")
    } else if value.ends_with('\r') {
        // git drops a `\r` before the newline, as read_attributes does.
        Some("the value ends with a carriage return")
    } else if key.len() + value.len() + 2 > MAX_LINE {
        Some("the line would be longer than 65535 bytes")
    } else {
        None
    }
}

/// Refuse to answer for a destination that must not see a LightFi token.
pub fn check_destination(request: &Attributes) -> Result<()> {
    let protocol = request.get("protocol").unwrap_or("");
    let host = request.get("host").unwrap_or("");
    let loopback = || url::Url::parse(&format!("http://{host}/")).is_ok_and(|url| crate::config::is_loopback(&url));
    match protocol {
        "https" if !host.is_empty() => Ok(()),
        "http" if loopback() => Ok(()),
        _ => Err(Error::config(
            format!(
                "refusing to give the LightFi token to `{protocol}://{host}`: only https URLs (or http on localhost) get it"
            ),
            "configure the helper for the LightFi API's https URL only: \
             `git config --global credential.https://HOST.helper '!lightfi-token git-credential'` (see integrations/git)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    use crate::config::TokenKind;
    use crate::secret::AccessToken;
    use crate::store::Access;

    fn access(token: &str) -> Access {
        Access {
            token: AccessToken::new(token),
            token_type: "Bearer".into(),
            obtained_at: datetime!(2026-11-26 09:27:28 UTC),
            expires_at: datetime!(2026-11-26 10:27:28 UTC),
            scope: None,
            env_refresh_digest: None,
            id_token: None,
            id_expires_at: None,
        }
    }

    fn answered(access: &Access, authtype: bool) -> String {
        let mut out = Vec::new();
        answer(access.handed(TokenKind::Access).unwrap(), authtype)
            .write(&mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    fn written(attrs: &[(&str, String)]) -> String {
        let mut out = Vec::new();
        write_attributes(&mut out, attrs).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reads_until_the_blank_line_and_keeps_order() {
        let input =
            "protocol=https\r\nhost=api.lightfi.example\ncapability[]=authtype\ncapability[]=state\n\nignored=after\n";
        let attrs = read_attributes(input.as_bytes()).unwrap();
        assert_eq!(attrs.get("protocol"), Some("https"));
        assert_eq!(attrs.get("host"), Some("api.lightfi.example"));
        assert!(attrs.has_capability("authtype") && attrs.has_capability("state"));
        assert_eq!(attrs.get("ignored"), None);
        assert_eq!(
            format!("{attrs:?}"),
            r#"["protocol", "host", "capability[]", "capability[]"]"#
        );
    }

    #[test]
    fn reads_to_eof_values_with_equals_and_later_keys_win() {
        let attrs = read_attributes("url=https://x/?a=b\nusername=a\nusername=b".as_bytes()).unwrap();
        assert_eq!(attrs.get("url"), Some("https://x/?a=b"));
        assert_eq!(attrs.get("username"), Some("b"));
        assert_eq!(read_attributes(&b""[..]).unwrap(), Attributes::default());
    }

    #[test]
    fn empty_array_value_resets_the_list() {
        let attrs = read_attributes("capability[]=authtype\ncapability[]=\ncapability[]=state\n".as_bytes()).unwrap();
        assert!(!attrs.has_capability("authtype"));
        assert!(attrs.has_capability("state"));
    }

    #[test]
    fn malformed_input_is_refused_naming_the_line() {
        let err = |input: &[u8]| read_attributes(input).unwrap_err().to_string();
        assert_eq!(err(b"protocol=https\nnonsense\n"), "line 2 is not `key=value`");
        assert_eq!(err(b"=value\n"), "line 1 has an empty key");
        assert_eq!(err(b"host=a\0b\n"), "line 1 contains a NUL byte");
        let long = format!("path={}\n", "x".repeat(MAX_LINE));
        assert_eq!(err(long.as_bytes()), "line 1 is longer than 65535 bytes");
        let many = "k=v\n".repeat(MAX_LINES + 1);
        assert_eq!(err(many.as_bytes()), "line 1025 is past the limit of 1024 lines");
    }

    #[test]
    fn authtype_answer_is_exact() {
        assert_eq!(
            answered(&access("tok"), true),
            "capability[]=authtype\nauthtype=Bearer\ncredential=tok\nephemeral=true\n"
        );
    }

    #[test]
    fn password_answer_is_exact() {
        // 2026-11-26T10:27:28Z
        assert_eq!(
            answered(&access("tok"), false),
            "username=oauth2\npassword=tok\npassword_expiry_utc=1795688848\n"
        );
    }

    #[test]
    fn capability_answer_follows_git_credential_1() {
        assert_eq!(capabilities(), b"version 0\ncapability authtype\n");
    }

    #[test]
    fn unencodable_values_write_nothing() {
        for bad in ["tok\nusername=evil", "tok\0"] {
            let mut out = Vec::new();
            let attrs = [("username", "oauth2".to_string()), ("password", bad.to_string())];
            let err = write_attributes(&mut out, &attrs).unwrap_err();
            assert!(matches!(err, ProtocolError::Unencodable { ref key, .. } if key == "password"));
            assert!(out.is_empty(), "nothing is written before the check");
        }
        // git would read these back otherwise: without the `\r`, or not at all.
        let long = "x".repeat(MAX_LINE - "password=\n".len() + 1);
        for bad in ["tok\r".to_string(), long] {
            let mut out = Vec::new();
            let err = write_attributes(&mut out, &[("password", bad)]).unwrap_err();
            assert!(matches!(err, ProtocolError::Unencodable { .. }), "{err}");
            assert!(out.is_empty());
        }
        let longest = "x".repeat(MAX_LINE - "password=\n".len());
        assert_eq!(written(&[("password", longest.clone())]).len(), MAX_LINE);
        assert_eq!(written(&[("password", "a\rb".into())]), "password=a\rb\n");
        let mut out = Vec::new();
        assert!(write_attributes(&mut out, &[("a=b", "v".into())]).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn only_https_or_loopback_http_gets_the_token() {
        let attrs = |text: &str| read_attributes(text.as_bytes()).unwrap();
        assert!(check_destination(&attrs("protocol=https\nhost=api.lightfi.example\n")).is_ok());
        assert!(check_destination(&attrs("protocol=http\nhost=127.0.0.1:8080\n")).is_ok());
        assert!(check_destination(&attrs("protocol=http\nhost=[::1]:8080\n")).is_ok());
        assert!(check_destination(&attrs("protocol=http\nhost=localhost\n")).is_ok());
        for refused in [
            "protocol=http\nhost=api.lightfi.example\n",
            "protocol=smtp\nhost=mail.example\n",
            "protocol=https\n",
            "host=api.lightfi.example\n",
        ] {
            let err = check_destination(&attrs(refused)).unwrap_err();
            assert_eq!(err.exit_code(), 4, "{refused}");
        }
    }
}
