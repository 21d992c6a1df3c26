//! Every public type that can hold a secret, formatted with `{:?}` and
//! `{:#?}`: a planted secret never shows.

use std::fmt::Debug;

use time::OffsetDateTime;

use crate::config::{Settings, TokenKind};
use crate::oauth::{self, Answer};
use crate::secret::{AccessToken, ClientSecret, IdToken, RefreshToken, ServeKey};
use crate::store::{Access, Store};

const PLANTED: &str = "planted-secret-7f3a";

/// Neither as text nor as a list of bytes (a derived `Debug` of a `Vec<u8>`).
fn assert_hidden(what: &str, value: &impl Debug) {
    let bytes = format!("{:?}", PLANTED.as_bytes()).replace(' ', "");
    let bytes = bytes.trim_matches(['[', ']']);
    for shown in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(!shown.contains(PLANTED), "{what} shows the secret: {shown}");
        let compact: String = shown.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(!compact.contains(bytes), "{what} shows the secret's bytes: {shown}");
    }
}

fn token_body() -> String {
    format!(
        r#"{{"access_token":"{PLANTED}a","token_type":"Bearer","expires_in":3600,"refresh_token":"{PLANTED}r","id_token":"{PLANTED}i"}}"#
    )
}

#[test]
fn no_secret_reaches_debug_output() {
    let answer = Answer {
        status: 200,
        retry_after: None,
        body: token_body().into_bytes(),
    };
    assert_hidden("oauth::Answer", &answer);
    let response = oauth::parse_token_response(&answer.body).unwrap();
    assert_eq!(
        response.access_token.expose(),
        format!("{PLANTED}a"),
        "the body was parsed"
    );
    assert_hidden("TokenResponse", &response);

    let now = OffsetDateTime::now_utc();
    let access = Access {
        token: AccessToken::new(format!("{PLANTED}a")),
        token_type: "Bearer".into(),
        obtained_at: now,
        expires_at: now + time::Duration::hours(1),
        scope: None,
        env_refresh_digest: None,
        id_token: Some(IdToken::new(format!("{PLANTED}i"))),
        id_expires_at: None,
    };
    for kind in [TokenKind::Access, TokenKind::Id] {
        let handed = access.handed(kind).unwrap();
        assert_hidden("Handed", &handed);
        assert_hidden("git::Answer", &crate::git::answer(handed, true));
        assert_hidden("git::Answer", &crate::git::answer(handed, false));
    }

    let home = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_tests(home.path(), "https://idp.example/oauth2");
    settings.client.secret = Some(ClientSecret::new(PLANTED));
    settings.env_refresh_token = Some(RefreshToken::new(PLANTED));
    assert_hidden("Settings", &settings);
    assert_hidden("Client", &settings.client);

    let mut tokens = Store::new(&settings).empty();
    tokens.refresh_token = Some(RefreshToken::new(format!("{PLANTED}r")));
    tokens.access = Some(access);
    assert_hidden("Tokens", &tokens);

    assert_hidden("ServeKey", &ServeKey::new(PLANTED));
    let post = oauth::refresh_request(&settings.client, &RefreshToken::new(PLANTED));
    assert_hidden("FormPost", &post);
}
