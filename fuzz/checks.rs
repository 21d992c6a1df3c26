//! The properties the fuzz targets check, one function per target. The
//! targets (`fuzz_targets/`) and `tests/fuzz_regressions.rs` both include this
//! file, so every input saved under `regressions/` is checked again by a plain
//! `cargo test`, on stable.
//!
//! Beyond "no panic", each check asks that no message (an error, a hint, a
//! `Debug`) carries a secret from the input. A message may contain the same
//! characters by coincidence ("token" in a refresh token of `token`), so a
//! value counts as leaked only when the message follows it: it contains the
//! value, and the message for the same input with that value changed
//! ([`shifted`]) contains the changed value instead.
#![allow(dead_code)] // each fuzz target uses one check

use std::fs;
use std::ops::Range;
use std::path::Path;

use lightfi_token::config::{self, Flags, Settings};
use lightfi_token::git::{self, ProtocolError};
use lightfi_token::login::{self, Callback};
use lightfi_token::oauth::{self, Answer};
use lightfi_token::secret::{AccessToken, IdToken, RefreshToken};
use lightfi_token::store::{self, Access, Attempt, Store, Tokens};
use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Secrets shorter than this are not looked for: any message holds such strings.
const MIN_SECRET: usize = 4;

/// `text` with each ASCII letter and digit moved on by one (a→b, z→a, 9→0):
/// a value of the same shape (a valid token stays valid), but another one.
pub fn shifted(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            'a'..='y' | 'A'..='Y' | '0'..='8' => (c as u8 + 1) as char,
            c => c,
        })
        .collect()
}

/// Whether `secret` went into `message`: see the top of this file.
/// `message_for_shifted` is the message for the input with `secret`
/// replaced by `shifted(secret)`, or None when that input gave no message.
pub fn leaked(secret: &str, message: &str, message_for_shifted: Option<&str>) -> bool {
    secret.chars().count() >= MIN_SECRET
        && message.contains(secret)
        && message_for_shifted.is_some_and(|m| !m.contains(secret) && m.contains(&shifted(secret)))
}

// ---------------------------------------------------------------- git credential

/// `git::read_attributes` on any bytes: it fails only with a fixed message
/// (never a value), and what it reads is written back by `write_attributes`
/// and read again unchanged, unless the protocol cannot carry it.
pub fn git_credential(data: &[u8]) {
    let attrs = match git::read_attributes(data) {
        Ok(attrs) => attrs,
        Err(e) => {
            let msg = e.to_string();
            assert!(is_fixed_protocol_message(&msg), "the message quotes the input: {msg:?}");
            return;
        }
    };
    let pairs = attrs.pairs();
    for (key, value) in pairs {
        assert!(
            !key.is_empty() && !key.contains(['=', '\n', '\0']),
            "read a bad key {key:?}"
        );
        assert!(!value.contains(['\n', '\0']), "read a value with a newline or NUL");
        if key.ends_with("[]") {
            assert!(!value.is_empty(), "an empty `{key}` clears the list, it is not kept");
        }
    }
    let keys: Vec<&String> = pairs.iter().map(|(k, _)| k).collect();
    assert_eq!(format!("{attrs:?}"), format!("{keys:?}"), "Debug shows the keys only");
    if let Some((key, value)) = pairs.last() {
        assert_eq!(attrs.get(key), Some(value.as_str()), "the last value of a key wins");
    }
    let _ = git::check_destination(&attrs);

    let borrowed: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut out = Vec::new();
    match git::write_attributes(&mut out, &borrowed) {
        Ok(()) => {
            let back = git::read_attributes(&out[..]).expect("our own output reads back");
            assert!(back == attrs, "write then read changed the attributes");
        }
        Err(ProtocolError::Unencodable { key, .. }) => {
            assert!(out.is_empty(), "nothing is written before the check");
            let refused = pairs.iter().any(|(k, v)| *k == key && !git_can_carry(k, v));
            assert!(refused, "refused `{key}`, which the protocol can carry");
        }
        Err(e) => panic!("writing to a Vec failed: {e}"),
    }
}

/// Whether a `key=value` line survives git's reader: no newline or NUL, no
/// `\r` at the end (git drops it), and at most 65535 bytes with its newline.
pub fn git_can_carry(key: &str, value: &str) -> bool {
    !key.is_empty()
        && !key.contains(['=', '\n', '\0'])
        && !value.contains(['\n', '\0'])
        && !value.ends_with('\r')
        && key.len() + value.len() + 2 <= 65535
}

/// `line N why`, with one of the reader's fixed reasons.
fn is_fixed_protocol_message(msg: &str) -> bool {
    const WHY: [&str; 5] = [
        "is not `key=value`",
        "has an empty key",
        "contains a NUL byte",
        "is longer than 65535 bytes",
        "is past the limit of 1024 lines",
    ];
    let Some(rest) = msg.strip_prefix("line ") else {
        return false;
    };
    let Some((number, why)) = rest.split_once(' ') else {
        return false;
    };
    number.parse::<usize>().is_ok() && WHY.contains(&why)
}

// ---------------------------------------------------------------- login callback

/// The login callback's query on any text. The input's first line is the
/// login's `state`, the rest a pasted line (or a query). A code is accepted
/// only with exactly that state; an error is reported as the server sent it;
/// and a redirect built from any code and state gives that code back.
pub fn callback_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (state, line) = text.split_once('\n').unwrap_or(("", &text));
    classified_as_the_query_says(line, state);
    if let Some(query) = login::pasted_query(line) {
        assert!(query.contains("code=") || query.contains("error="));
        classified_as_the_query_says(&query, state);
    }

    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", line)
        .append_pair("state", state)
        .append_pair("iss", "https://cognito-idp.eu-west-2.amazonaws.com/x")
        .finish();
    let redirect = format!("http://localhost:3000/?{query}");
    let pasted = login::pasted_query(&redirect).expect("a redirect with a code is recognised");
    match login::parse_callback_query(&pasted, state) {
        Callback::Code(code) => assert_eq!(code.expose(), line, "the code changed on the way"),
        Callback::Error { error, .. } => {
            assert!(
                line.is_empty() && error == "invalid_request",
                "a redirect with a code and its state failed"
            );
        }
        Callback::Foreign => panic!("a redirect with the login's own state was called foreign"),
    }
}

/// `parse_callback_query(query, state)` against what the query's parameters say.
fn classified_as_the_query_says(query: &str, state: &str) {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let last = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match login::parse_callback_query(query, state) {
        Callback::Code(code) => {
            assert_eq!(
                last("state"),
                Some(state),
                "a code was accepted without the exact state"
            );
            assert_eq!(last("error"), None, "a code was accepted next to an error");
            assert_eq!(Some(code.expose()), last("code"));
            assert!(!code.expose().is_empty());
        }
        Callback::Error { error, description } => {
            assert_eq!(last("state"), Some(state), "an error was taken without the exact state");
            match last("error") {
                Some(sent) => {
                    assert_eq!(error, sent);
                    assert_eq!(description.as_deref(), last("error_description"));
                }
                None => {
                    assert_eq!(error, "invalid_request");
                    assert!(last("code").is_none_or(str::is_empty));
                }
            }
        }
        Callback::Foreign => assert_ne!(last("state"), Some(state), "the exact state was called foreign"),
    }
}

// ---------------------------------------------------------------- config.toml

/// `config.toml` holding any bytes, resolved for profile `default` with no
/// other setting: a failure is a configuration error (exit 4) whose message
/// and hint never contain the value of a `client_secret`; a success has
/// endpoints that are https, or http on loopback only, and neither its
/// warnings nor its `Debug` contain the secret.
pub fn config_toml(data: &[u8]) {
    let resolved = resolve_config(data);
    match &resolved {
        Ok((settings, _)) => {
            let endpoints = &settings.client.endpoints;
            for endpoint in [endpoints.authorize(), endpoints.token(), endpoints.revoke()] {
                let url = url::Url::parse(&endpoint).expect("an accepted OAuth URL gives valid endpoints");
                let loopback_http = url.scheme() == "http" && config::is_loopback(&url);
                assert!(
                    url.scheme() == "https" || loopback_http,
                    "secrets would go to {endpoint}"
                );
            }
        }
        Err(e) => assert_eq!(e.exit_code(), 4, "config.toml problems are configuration errors: {e}"),
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return; // read_to_string refuses it before any value is parsed
    };
    // Only a document that parses has values: toml's syntax errors are fixed texts.
    let message = shown(&resolved);
    let secrets = secret_values(text);
    for (secret, _, _) in &secrets {
        if !message.contains(secret.as_str()) {
            continue;
        }
        let changed = with_secret_shifted(text, &secrets, secret);
        let message_for_changed = shown(&resolve_config(changed.as_bytes()));
        assert!(
            !leaked(secret, &message, Some(&message_for_changed)),
            "the client secret {secret:?} is in: {message}"
        );
    }
}

/// Profile `default` of a `config.toml` holding `data`, with no other setting.
fn resolve_config(data: &[u8]) -> lightfi_token::error::Result<(Settings, Vec<String>)> {
    let home = tempfile::tempdir().expect("a temporary folder");
    fs::write(home.path().join("config.toml"), data).expect("write config.toml");
    let home_str = home.path().to_str().expect("a UTF-8 temporary path").to_string();
    let env = |name: &str| (name == "LIGHTFI_TOKEN_HOME").then(|| home_str.clone());
    config::resolve_with(&Flags::default(), env)
}

/// What a user can see of a resolution: the warnings and the settings'
/// `Debug`, or the error and its hint.
fn shown(resolved: &lightfi_token::error::Result<(Settings, Vec<String>)>) -> String {
    match resolved {
        Ok((settings, warnings)) => format!("{warnings:?}\n{settings:?}"),
        Err(e) => format!("{e}\n{}", e.hint()),
    }
}

/// The values of the `client_secret` keys of a TOML document (at any depth,
/// and what is inside them): each value as text, the span of its source,
/// and whether it is a string.
fn secret_values(text: &str) -> Vec<(String, Range<usize>, bool)> {
    fn table(table: &DeTable<'_>, secret: bool, out: &mut Vec<(String, Range<usize>, bool)>) {
        for (key, value) in table.iter() {
            item(value, secret || key.get_ref() == "client_secret", out);
        }
    }
    fn item(value: &Spanned<DeValue<'_>>, secret: bool, out: &mut Vec<(String, Range<usize>, bool)>) {
        let leaf = match value.get_ref() {
            DeValue::Table(t) => return table(t, secret, out),
            DeValue::Array(items) => return items.iter().for_each(|v| item(v, secret, out)),
            DeValue::String(s) => (s.to_string(), true),
            DeValue::Integer(i) => (i.as_str().to_string(), false),
            DeValue::Float(f) => (f.as_str().to_string(), false),
            DeValue::Boolean(b) => (b.to_string(), false),
            DeValue::Datetime(d) => (d.to_string(), false),
        };
        if secret {
            out.push((leaf.0, value.span(), leaf.1));
        }
    }
    let mut out = Vec::new();
    if let Ok(document) = DeTable::parse(text) {
        table(document.get_ref(), false, &mut out);
    }
    out
}

/// `text` with each `client_secret` value equal to `secret` replaced by a
/// value of the same kind holding `shifted(secret)`.
fn with_secret_shifted(text: &str, secrets: &[(String, Range<usize>, bool)], secret: &str) -> String {
    let mut spans: Vec<&(String, Range<usize>, bool)> = secrets.iter().filter(|(v, _, _)| v == secret).collect();
    spans.sort_by_key(|(_, span, _)| std::cmp::Reverse(span.start));
    let mut changed = text.to_string();
    for (_, span, is_string) in spans {
        let replacement = if *is_string {
            toml_string(&shifted(secret))
        } else {
            shifted(&text[span.clone()])
        };
        changed.replace_range(span.clone(), &replacement);
    }
    changed
}

/// `value` as a TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- store file

pub const STORE_CLIENT_ID: &str = "client";
pub const STORE_OAUTH_URL: &str = "https://idp.example/oauth2";

/// A token store file holding any bytes. What parses writes and parses back
/// equal in every field, with a `Debug` that shows no token; and
/// `Store::load` agrees: the same tokens when they are this client's, empty
/// ones when they are another's or the file is corrupt, and an error (exit 4,
/// no token in it) only for a newer format.
pub fn store_file(data: &[u8]) {
    let parsed = serde_json::from_slice::<Tokens>(data);
    if let Ok(tokens) = &parsed {
        let json = serde_json::to_vec_pretty(tokens).expect("what was read can be written");
        let back: Tokens = serde_json::from_slice(&json).expect("what was written can be read");
        assert!(tokens_eq(tokens, &back), "write then read changed the tokens");
        for secret in token_values(tokens) {
            let changed = with_tokens_shifted(tokens, &secret);
            let debug = format!("{tokens:?}");
            assert!(
                !leaked(&secret, &debug, Some(&format!("{changed:?}"))),
                "Debug shows a token: {debug}"
            );
        }
    }

    let home = tempfile::tempdir().expect("a temporary folder");
    let settings = store_settings(home.path());
    let store = Store::new(&settings);
    let load = |bytes: &[u8]| {
        fs::create_dir_all(store.path().parent().unwrap()).unwrap();
        fs::write(store.path(), bytes).unwrap();
        store.load()
    };
    let empty = store.empty();
    match (&parsed, load(data)) {
        (Ok(tokens), Err(e)) => {
            assert!(
                tokens.version > store::FORMAT_VERSION,
                "refused a file of a known version: {e}"
            );
            assert_eq!(e.exit_code(), 4);
            let message = format!("{e}\n{}", e.hint());
            for secret in token_values(tokens) {
                let changed = serde_json::to_vec(&with_tokens_shifted(tokens, &secret)).unwrap();
                let message_for_changed = load(&changed).err().map(|e| format!("{e}\n{}", e.hint()));
                assert!(
                    !leaked(&secret, &message, message_for_changed.as_deref()),
                    "a token is in: {message}"
                );
            }
        }
        (Ok(tokens), Ok(loaded)) => {
            assert!(tokens.version <= store::FORMAT_VERSION, "accepted a newer format");
            let ours = tokens.client_id == empty.client_id
                && tokens.oauth_url == empty.oauth_url
                && tokens.scope.as_ref().is_none_or(|s| Some(s) == empty.scope.as_ref());
            let expected = if ours { tokens } else { &empty };
            assert!(tokens_eq(&loaded, expected), "load changed the tokens");
        }
        (Err(_), Ok(loaded)) => assert!(tokens_eq(&loaded, &empty), "a corrupt file reads as empty"),
        (Err(_), Err(e)) => panic!("a corrupt file must read as empty, not fail: {e}"),
    }
}

/// Settings whose store is in `home`, for client [`STORE_CLIENT_ID`] at [`STORE_OAUTH_URL`].
pub fn store_settings(home: &Path) -> Settings {
    Settings::for_tests(home, STORE_OAUTH_URL)
}

/// Equal in every field, offsets of the times included (`==` on a time
/// compares the instant only).
pub fn tokens_eq(a: &Tokens, b: &Tokens) -> bool {
    let Tokens {
        version,
        client_id,
        oauth_url,
        scope,
        refresh_token,
        refresh_token_in,
        access,
        last_failure,
        rotates,
        refresh_started,
        requests,
        logged_in_at,
        imported,
    } = a;
    let refresh = |r: &Option<RefreshToken>| r.as_ref().map(|r| r.expose().to_string());
    *version == b.version
        && *client_id == b.client_id
        && *oauth_url == b.oauth_url
        && *scope == b.scope
        && refresh(refresh_token) == refresh(&b.refresh_token)
        && *refresh_token_in == b.refresh_token_in
        && match (access, &b.access) {
            (None, None) => true,
            (Some(x), Some(y)) => access_eq(x, y),
            _ => false,
        }
        && match (last_failure, &b.last_failure) {
            (None, None) => true,
            (Some(x), Some(y)) => attempt_eq(x, y),
            _ => false,
        }
        && *rotates == b.rotates
        && same_time(refresh_started, &b.refresh_started)
        && *requests == b.requests
        && same_time(logged_in_at, &b.logged_in_at)
        && *imported == b.imported
}

fn attempt_eq(a: &Attempt, b: &Attempt) -> bool {
    let Attempt {
        ended_at,
        kind,
        message,
        hint,
        retry_after,
    } = a;
    same_time(&Some(*ended_at), &Some(b.ended_at))
        && *kind == b.kind
        && *message == b.message
        && *hint == b.hint
        && *retry_after == b.retry_after
}

/// The same instant with the same offset.
fn same_time(a: &Option<time::OffsetDateTime>, b: &Option<time::OffsetDateTime>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b && a.offset() == b.offset(),
        _ => false,
    }
}

fn access_eq(a: &Access, b: &Access) -> bool {
    let Access {
        token,
        token_type,
        obtained_at,
        expires_at,
        scope,
        env_refresh_digest,
        id_token,
        id_expires_at,
    } = a;
    let id = |t: &Option<IdToken>| t.as_ref().map(|t| t.expose().to_string());
    token.expose() == b.token.expose()
        && *token_type == b.token_type
        && same_time(&Some(*obtained_at), &Some(b.obtained_at))
        && same_time(&Some(*expires_at), &Some(b.expires_at))
        && *scope == b.scope
        && *env_refresh_digest == b.env_refresh_digest
        && id(id_token) == id(&b.id_token)
        && same_time(id_expires_at, &b.id_expires_at)
}

/// The refresh, access and ID token values of `tokens`.
fn token_values(tokens: &Tokens) -> Vec<String> {
    let refresh = tokens.refresh_token.as_ref().map(|r| r.expose().to_string());
    let access = tokens.access.as_ref().map(|a| a.token.expose().to_string());
    let id = tokens
        .access
        .as_ref()
        .and_then(|a| a.id_token.as_ref())
        .map(|t| t.expose().to_string());
    refresh.into_iter().chain(access).chain(id).collect()
}

/// `tokens` with each token equal to `secret` replaced by `shifted(secret)`.
fn with_tokens_shifted(tokens: &Tokens, secret: &str) -> Tokens {
    let mut changed = tokens.clone();
    if let Some(r) = &changed.refresh_token
        && r.expose() == secret
    {
        changed.refresh_token = Some(RefreshToken::new(shifted(secret)));
    }
    if let Some(a) = &mut changed.access {
        if a.token.expose() == secret {
            a.token = AccessToken::new(shifted(secret));
        }
        if a.id_token.as_ref().is_some_and(|t| t.expose() == secret) {
            a.id_token = Some(IdToken::new(shifted(secret)));
        }
    }
    changed
}

// ---------------------------------------------------------------- token response

pub const TOKEN_URL: &str = "https://idp.example/oauth2/token";
/// The answers' statuses tried with each body.
const STATUSES: [u16; 8] = [200, 201, 204, 400, 401, 404, 429, 503];

/// A token endpoint's answer with any body: a success is a Bearer token as
/// the body says, safe for a header; a failure's message (and the error it
/// becomes) never contains the body's access, refresh or ID token.
pub fn token_response(body: &[u8]) {
    let parsed = oauth::parse_token_response(body);
    if let Ok(response) = &parsed {
        let value: Value = serde_json::from_slice(body).expect("accepted a body that is not JSON");
        let token = response.access_token.expose();
        assert_eq!(value["access_token"].as_str(), Some(token), "the access token changed");
        let b64token = token.trim_end_matches('=');
        assert!(
            !b64token.is_empty()
                && b64token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)),
            "an access token that is not an RFC 6750 b64token"
        );
        assert_eq!(response.token_type, "Bearer");
        assert!((1..=oauth::MAX_EXPIRES_IN).contains(&response.expires_in));
        let refresh = response.refresh_token.as_ref().map(RefreshToken::expose);
        assert_eq!(refresh, value["refresh_token"].as_str(), "the refresh token changed");
        let id = response.id_token.as_ref().map(IdToken::expose);
        assert_eq!(id, value["id_token"].as_str(), "the ID token changed");
    }
    if let Err(msg) = &parsed {
        no_token_in(body, msg, |changed| oauth::parse_token_response(changed).err());
    }
    for status in STATUSES {
        let message = |body: &[u8]| {
            let answer = Answer {
                status,
                retry_after: None,
                body: body.to_vec(),
            };
            let post = oauth::FormPost {
                url: TOKEN_URL.into(),
                form: vec![],
                basic: None,
            };
            match oauth::token_answer(&post, &answer) {
                Ok(_) => None,
                Err(failure) => {
                    let shown = failure.describe();
                    let error = failure.into_refresh_error();
                    Some(format!("{shown}\n{error}\n{}", error.hint()))
                }
            }
        };
        let success = (200..300).contains(&status);
        match message(body) {
            None => assert!(success && parsed.is_ok(), "HTTP {status} gave tokens"),
            Some(msg) => {
                assert!(!success || parsed.is_err(), "HTTP {status} refused a good body: {msg}");
                no_token_in(body, &msg, message);
            }
        }
    }
}

/// Assert that `msg`, made from `body`, contains none of the body's tokens;
/// `message_for` makes the message for another body.
fn no_token_in(body: &[u8], msg: &str, message_for: impl Fn(&[u8]) -> Option<String>) {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    for key in ["access_token", "refresh_token", "id_token"] {
        let Some(Value::String(secret)) = map.get(key) else {
            continue;
        };
        if !msg.contains(secret.as_str()) {
            continue;
        }
        let mut changed = map.clone();
        changed.insert(key.into(), Value::String(shifted(secret)));
        let changed = serde_json::to_vec(&Value::Object(changed)).unwrap();
        assert!(
            !leaked(secret, msg, message_for(&changed).as_deref()),
            "the {key} is in: {msg}"
        );
    }
}
