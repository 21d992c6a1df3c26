//! The `get` output formats: exactly one line each.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::TokenKind;
use crate::error::{Error, Result};
use crate::store::Handed;
pub use crate::timestamp::rfc3339;

/// How `get` prints the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// {"access_token":…,"token_type":"Bearer","expires_at":…,"expires_in":…}
    Json,
    /// The bare token and a newline
    Raw,
    /// `Authorization: Bearer <token>`, for `curl -H @-`
    Header,
    /// A Kubernetes ExecCredential (client.authentication.k8s.io/v1 or v1beta1)
    ExecCredential,
}

/// `client.authentication.k8s.io` versions whose ExecCredential we can write.
const EXEC_API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// The token in `format`, ending in a newline. `exec_info` is the value of
/// `KUBERNETES_EXEC_INFO`, if set. The JSON format names the field after the
/// kind of token (`access_token` or `id_token`).
pub fn render(format: Format, handed: Handed<'_>, now: OffsetDateTime, exec_info: Option<&str>) -> Result<String> {
    let token = handed.token.expose();
    let mut out = match format {
        Format::Raw => token.to_string(),
        Format::Header => format!("Authorization: Bearer {token}"),
        Format::Json => {
            let fields = JsonToken {
                token,
                token_type: "Bearer",
                expires_at: rfc3339(handed.expires_at),
                expires_in: handed.seconds_left(now).max(0),
            };
            match handed.kind() {
                TokenKind::Access => to_json(&AccessJson(fields)),
                TokenKind::Id => to_json(&IdJson(fields)),
            }
        }
        Format::ExecCredential => to_json(&ExecCredential {
            api_version: exec_api_version(exec_info)?,
            kind: "ExecCredential",
            status: ExecStatus {
                token,
                expiration_timestamp: rfc3339(handed.expires_at),
            },
        }),
    };
    out.push('\n');
    Ok(out)
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("plain structs of strings and numbers always serialize")
}

struct JsonToken<'a> {
    token: &'a str,
    token_type: &'a str,
    expires_at: String,
    expires_in: i64,
}

/// `{"access_token":…,"token_type":…,"expires_at":…,"expires_in":…}`
#[derive(Serialize)]
struct AccessJson<'a>(#[serde(with = "as_access")] JsonToken<'a>);
/// The same with `id_token` as the first field's name.
#[derive(Serialize)]
struct IdJson<'a>(#[serde(with = "as_id")] JsonToken<'a>);

/// Serialize a [`JsonToken`] with its first field named `$name`.
macro_rules! named_token {
    ($module:ident, $name:literal) => {
        mod $module {
            use serde::ser::{SerializeStruct, Serializer};
            pub fn serialize<S: Serializer>(t: &super::JsonToken<'_>, s: S) -> Result<S::Ok, S::Error> {
                let mut out = s.serialize_struct("Token", 4)?;
                out.serialize_field($name, t.token)?;
                out.serialize_field("token_type", t.token_type)?;
                out.serialize_field("expires_at", &t.expires_at)?;
                out.serialize_field("expires_in", &t.expires_in)?;
                out.end()
            }
        }
    };
}
named_token!(as_access, "access_token");
named_token!(as_id, "id_token");

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential<'a> {
    api_version: &'a str,
    kind: &'a str,
    status: ExecStatus<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecStatus<'a> {
    token: &'a str,
    expiration_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecInfo {
    api_version: Option<String>,
    #[serde(default)]
    spec: ExecInfoSpec,
}

#[derive(Deserialize, Default)]
struct ExecInfoSpec {
    interactive: Option<bool>,
}

/// The apiVersion to answer with: the one in `KUBERNETES_EXEC_INFO`, else v1.
pub fn exec_api_version(exec_info: Option<&str>) -> Result<&'static str> {
    let Some(info) = exec_info.filter(|s| !s.trim().is_empty()) else {
        return Ok(EXEC_API_VERSIONS[0]);
    };
    let parsed: ExecInfo = serde_json::from_str(info).map_err(|e| {
        Error::config(
            format!(
                "KUBERNETES_EXEC_INFO is not valid ExecCredential JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
            "unset it, or run lightfi-token from a kubeconfig `exec` section",
        )
    })?;
    let Some(wanted) = parsed.api_version else {
        return Ok(EXEC_API_VERSIONS[0]);
    };
    EXEC_API_VERSIONS.into_iter().find(|v| *v == wanted).ok_or_else(|| {
        Error::config(
            format!("the kubeconfig asks for ExecCredential {wanted}, which lightfi-token does not speak"),
            "set `apiVersion: client.authentication.k8s.io/v1` in the kubeconfig's exec section",
        )
    })
}

/// `KUBERNETES_EXEC_INFO`'s `spec.interactive`: false means client-go has no
/// terminal for us, so a browser login must not start.
pub fn exec_info_forbids_interaction(exec_info: Option<&str>) -> bool {
    exec_info
        .and_then(|s| serde_json::from_str::<ExecInfo>(s).ok())
        .and_then(|i| i.spec.interactive)
        == Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AccessToken;
    use crate::store::Access;
    use time::macros::datetime;

    fn token() -> Access {
        Access {
            token: AccessToken::new("tok"),
            token_type: "Bearer".into(),
            obtained_at: datetime!(2026-11-26 09:27:28.5 UTC),
            expires_at: datetime!(2026-11-26 10:27:28.5 UTC),
            scope: None,
            env_refresh_digest: None,
            id_token: Some(crate::secret::IdToken::new("idt")),
            id_expires_at: Some(datetime!(2026-11-26 10:00:00 UTC)),
        }
    }

    #[test]
    fn every_format_is_exact() {
        let now = datetime!(2026-11-26 09:28:28.5 UTC);
        let access = token();
        let t = access.handed(TokenKind::Access).unwrap();
        assert_eq!(render(Format::Raw, t, now, None).unwrap(), "tok\n");
        assert_eq!(
            render(Format::Header, t, now, None).unwrap(),
            "Authorization: Bearer tok\n"
        );
        assert_eq!(
            render(Format::Json, t, now, None).unwrap(),
            "{\"access_token\":\"tok\",\"token_type\":\"Bearer\",\"expires_at\":\"2026-11-26T10:27:28Z\",\"expires_in\":3540}\n"
        );
        assert_eq!(
            render(Format::ExecCredential, t, now, None).unwrap(),
            "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\
             \"status\":{\"token\":\"tok\",\"expirationTimestamp\":\"2026-11-26T10:27:28Z\"}}\n"
        );
    }

    #[test]
    fn the_id_token_is_named_as_such_and_has_its_own_expiry() {
        let now = datetime!(2026-11-26 09:28:28 UTC);
        let access = token();
        let id = access.handed(TokenKind::Id).unwrap();
        assert_eq!(
            render(Format::Json, id, now, None).unwrap(),
            "{\"id_token\":\"idt\",\"token_type\":\"Bearer\",\"expires_at\":\"2026-11-26T10:00:00Z\",\"expires_in\":1892}\n"
        );
        assert_eq!(
            render(Format::Header, id, now, None).unwrap(),
            "Authorization: Bearer idt\n"
        );
    }

    #[test]
    fn exec_credential_answers_the_requested_version() {
        let info = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}}"#;
        assert_eq!(
            exec_api_version(Some(info)).unwrap(),
            "client.authentication.k8s.io/v1beta1"
        );
        assert!(exec_info_forbids_interaction(Some(info)));
        assert!(!exec_info_forbids_interaction(None));
        let alpha = r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1","kind":"ExecCredential"}"#;
        assert_eq!(exec_api_version(Some(alpha)).unwrap_err().exit_code(), 4);
        assert_eq!(exec_api_version(Some("{")).unwrap_err().exit_code(), 4);
    }
}
