//! The OAuth client resolved as one unit: its id and secret from one layer,
//! the secret sent only to its own server, and `LIGHTFI_REFRESH_TOKEN` never
//! sent to a server a profile's table names (see the README's "Which
//! settings belong together").

use super::checks::check_oauth_url;
use super::{Client, DEFAULT_OAUTH_URL, Endpoints, Layers, Source, layered};
use crate::error::{Error, Result};
use crate::secret::{ClientSecret, RefreshToken};

/// The client and where its parts came from.
pub(super) struct Resolved {
    pub client: Client,
    pub id_source: Source,
    /// None when there is no client secret.
    pub secret_source: Option<Source>,
    pub url_source: Source,
    pub env_refresh_token: Option<RefreshToken>,
}

impl Resolved {
    /// No client: for a profile that never talks to a server (`token_file`).
    pub fn unused() -> Resolved {
        Resolved {
            client: Client {
                id: String::new(),
                secret: None,
                spare_secrets: Vec::new(),
                endpoints: Endpoints {
                    base: DEFAULT_OAUTH_URL.into(),
                },
            },
            id_source: Source::Default,
            secret_source: None,
            url_source: Source::Default,
            env_refresh_token: None,
        }
    }
}

/// The client, or None when no layer gives a client id.
pub(super) fn resolve(layers: &Layers, warnings: &mut Vec<String>) -> Result<Option<Resolved>> {
    let Some(id) = id_and_secret(layers) else {
        return Ok(None);
    };
    if layers.file.client_secret.is_some() && layers.file.client_secrets.is_some() {
        return Err(Error::config(
            format!(
                "config.toml [{}] has both client_secret and client_secrets",
                layers.profile
            ),
            "keep one: client_secrets = [\"new\", \"old\"] during a rotation, client_secret otherwise",
        ));
    }
    if let Some(warning) = unused_secret(layers, id.source) {
        warnings.push(warning);
    }
    let secret_source = id.secret.as_ref().map(|_| id.secret_source);
    let (url, url_source) = oauth_url(layers, secret_source)?;
    if let Some(source) = secret_source {
        env_secret_stays_off_the_tables_server(layers, source, &url, url_source)?;
    }
    let env_refresh_token = (layers.env)("LIGHTFI_REFRESH_TOKEN").map(RefreshToken::new);
    if env_refresh_token.is_some() && url_source == Source::File {
        return Err(Error::config(
            format!(
                "LIGHTFI_REFRESH_TOKEN is not sent to the oauth_url of config.toml [{}]",
                layers.profile
            ),
            "pass the OAuth URL with --oauth-url or LIGHTFI_OAUTH_URL (or use the default one) when using LIGHTFI_REFRESH_TOKEN",
        ));
    }
    Ok(Some(Resolved {
        client: Client {
            id: id.id,
            secret: id.secret,
            spare_secrets: id.spare_secrets,
            endpoints: Endpoints { base: url },
        },
        id_source: id.source,
        secret_source,
        url_source,
        env_refresh_token,
    }))
}

/// A client id, the secret given the same way, and where each came from.
struct Id {
    id: String,
    source: Source,
    secret: Option<ClientSecret>,
    spare_secrets: Vec<ClientSecret>,
    secret_source: Source,
}

/// The first layer's client id, with that layer's secret: flag and
/// `LIGHTFI_CLIENT_ID` take `LIGHTFI_CLIENT_SECRET`, the table its own
/// `client_secret`, and the legacy `CLIENT_ID` comes last with `CLIENT_SECRET`.
fn id_and_secret(layers: &Layers) -> Option<Id> {
    let env = layers.env;
    let env_secret = || env("LIGHTFI_CLIENT_SECRET").map(ClientSecret::new);
    let with_env_secret = |id, source| Id {
        id,
        source,
        secret: env_secret(),
        spare_secrets: vec![],
        secret_source: Source::Env("LIGHTFI_CLIENT_SECRET"),
    };
    if let Some(id) = layers.args.client_id.clone() {
        return Some(with_env_secret(id, Source::Flag("--client-id")));
    }
    if let Some(id) = env("LIGHTFI_CLIENT_ID") {
        return Some(with_env_secret(id, Source::Env("LIGHTFI_CLIENT_ID")));
    }
    if let Some(id) = layers.file.client_id.clone() {
        let mut secrets = layers.file.client_secrets.clone().unwrap_or_default().into_iter();
        return Some(Id {
            id,
            source: Source::File,
            secret: layers.file.client_secret.clone().or_else(|| secrets.next()),
            spare_secrets: secrets.collect(),
            secret_source: Source::File,
        });
    }
    env("CLIENT_ID").map(|id| Id {
        id,
        source: Source::Env("CLIENT_ID"),
        secret: env("CLIENT_SECRET").map(ClientSecret::new),
        spare_secrets: vec![],
        secret_source: Source::Env("CLIENT_SECRET"),
    })
}

/// A secret given for another layer's client id is not used: the warning that says so.
fn unused_secret(layers: &Layers, id_source: Source) -> Option<String> {
    let unused = match id_source {
        Source::File => (layers.env)("LIGHTFI_CLIENT_SECRET").map(|_| "LIGHTFI_CLIENT_SECRET"),
        _ => (layers.file.client_secret.is_some() || layers.file.client_secrets.is_some())
            .then_some("client_secret in config.toml"),
    }?;
    Some(format!(
        "{unused} is not used: the client id comes from {}, and a secret is only sent with the client id given the same way",
        id_source.describe(layers.profile)
    ))
}

/// The OAuth base URL, checked, and where it came from; refused when it
/// would take the table's client secret to another server than the table's.
fn oauth_url(layers: &Layers, secret_source: Option<Source>) -> Result<(String, Source)> {
    let (url, source) = layered(
        ("--oauth-url", layers.args.oauth_url.clone()),
        ("LIGHTFI_OAUTH_URL", (layers.env)("LIGHTFI_OAUTH_URL")),
        layers.file.oauth_url.clone(),
        DEFAULT_OAUTH_URL,
    );
    let url = check_oauth_url(&url)?;
    if secret_source == Some(Source::File) && matches!(source, Source::Flag(_) | Source::Env(_)) {
        let own = check_oauth_url(layers.file.oauth_url.as_deref().unwrap_or(DEFAULT_OAUTH_URL))?;
        if own != url {
            let by = source.describe(layers.profile);
            return Err(Error::config(
                format!(
                    "{by} would send the client secret of config.toml [{}] to another OAuth server than its own",
                    layers.profile
                ),
                format!(
                    "give the client id and secret the same way as the OAuth URL (LIGHTFI_CLIENT_ID and LIGHTFI_CLIENT_SECRET), or drop {by}"
                ),
            ));
        }
    }
    Ok((url, source))
}

/// A secret from the environment (`LIGHTFI_CLIENT_SECRET`, or the legacy
/// `CLIENT_SECRET`) is sent only to a URL given the same way (flag or
/// environment) or to the default URL, never to another server that a
/// profile's table names.
fn env_secret_stays_off_the_tables_server(
    layers: &Layers,
    secret: Source,
    url: &str,
    url_source: Source,
) -> Result<()> {
    if secret == Source::File || url_source != Source::File || url == check_oauth_url(DEFAULT_OAUTH_URL)? {
        return Ok(());
    }
    let Source::Env(name) = secret else {
        return Ok(());
    };
    let table = format!("config.toml [{}]", layers.profile);
    Err(Error::config(
        format!("{name} is not sent to the oauth_url of {table} ({url})"),
        format!(
            "pass the OAuth URL the same way as the secret (--oauth-url or LIGHTFI_OAUTH_URL), or put client_id and client_secret in {table}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{DEFAULT_OAUTH_URL, Source};

    #[test]
    fn seed_script_variables_are_accepted_after_lightfi_ones() {
        let home = home_with("");
        let h = home.path().to_str().unwrap();
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("CLIENT_ID", "seed"),
            ("CLIENT_SECRET", "shh"),
        ];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "seed");
        assert_eq!(s.client.secret.unwrap().expose(), "shh");
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("CLIENT_ID", "seed"),
            ("LIGHTFI_CLIENT_ID", "new"),
        ];
        assert_eq!(resolved(&args(&[]), env_of(&env)).unwrap().client.id, "new");
    }

    #[test]
    fn a_legacy_secret_never_joins_a_profile_tables_client() {
        let home = home_with(STAGING);
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("CLIENT_SECRET", "prod-secret")];
        let s = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "staging-id");
        assert!(s.client.secret.is_none());
        // Nor does CLIENT_ID replace the table's own client.
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("CLIENT_ID", "other"),
            ("CLIENT_SECRET", "x"),
        ];
        let s = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap();
        assert_eq!(
            (s.client.id.as_str(), s.sources.client_id),
            ("staging-id", Source::File)
        );
        assert!(s.client.secret.is_none());
    }

    #[test]
    fn the_secret_comes_from_the_layer_of_the_client_id() {
        let home = home_with("[default]\nclient_id = \"file-id\"\nclient_secret = \"file-secret\"\n");
        let h = home.path().to_str().unwrap();
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("LIGHTFI_CLIENT_ID", "env-id"),
            ("LIGHTFI_CLIENT_SECRET", "env-secret"),
        ];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(s.client.secret.unwrap().expose(), "env-secret");
        let s = resolved(&args(&["--client-id", "flag-id"]), env_of(&env[..2])).unwrap();
        assert!(
            s.client.secret.is_none(),
            "the table's secret is not the flag's client's"
        );
        let s = resolved(&args(&[]), env_of(&[env[0], env[2]])).unwrap();
        assert_eq!(s.client.secret.unwrap().expose(), "file-secret");
        let said = warnings(&args(&[]), &[env[0], env[2]]);
        assert!(
            said.iter().any(|w| w.contains("LIGHTFI_CLIENT_SECRET is not used")),
            "{said:?}"
        );
    }

    #[test]
    fn client_secrets_follow_the_rules_of_the_single_secret() {
        let home = home_with("[default]\nclient_id = \"id\"\nclient_secrets = [\"new\", \"old\"]\n");
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        let each: Vec<_> = s
            .client
            .with_each_secret()
            .into_iter()
            .map(|c| c.secret.unwrap())
            .collect();
        assert_eq!(each.iter().map(|c| c.expose()).collect::<Vec<_>>(), ["new", "old"]);
        // Another layer's client id takes none of them.
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_CLIENT_ID", "env-id")];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert!(s.client.secret.is_none() && s.client.spare_secrets.is_empty());
        // Nor do they go to another server.
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("LIGHTFI_OAUTH_URL", "https://evil.example/oauth2"),
        ];
        assert_eq!(resolved(&args(&[]), env_of(&env)).unwrap_err().exit_code(), 4);
        let both = home_with("[default]\nclient_id = \"id\"\nclient_secret = \"a\"\nclient_secrets = [\"b\"]\n");
        let env = [("LIGHTFI_TOKEN_HOME", both.path().to_str().unwrap())];
        let err = resolved(&args(&[]), env_of(&env)).unwrap_err();
        assert!(
            err.to_string().contains("both client_secret and client_secrets"),
            "{err}"
        );
    }

    #[test]
    fn a_tables_secret_never_goes_to_another_server() {
        let home = home_with("[default]\nclient_id = \"id\"\nclient_secret = \"s\"\n");
        let h = home.path().to_str().unwrap();
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("LIGHTFI_OAUTH_URL", "https://evil.example/oauth2"),
        ];
        let err = resolved(&args(&[]), env_of(&env)).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(
            err.to_string().contains("LIGHTFI_OAUTH_URL") && err.to_string().contains("[default]"),
            "{err}"
        );
        let err = resolved(
            &args(&["--oauth-url", "https://evil.example/oauth2"]),
            env_of(&env[..1]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("--oauth-url"), "{err}");
        // The same URL as the table's (here the default) is fine.
        let same = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_OAUTH_URL", DEFAULT_OAUTH_URL)];
        assert!(resolved(&args(&[]), env_of(&same)).is_ok());
    }

    #[test]
    fn an_environment_secret_never_goes_to_a_tables_server() {
        let home = home_with("[staging]\noauth_url = \"https://staging.example/oauth2\"\n");
        let h = home.path().to_str().unwrap();
        for (id, secret) in [
            ("LIGHTFI_CLIENT_ID", "LIGHTFI_CLIENT_SECRET"),
            ("CLIENT_ID", "CLIENT_SECRET"),
        ] {
            let env = [("LIGHTFI_TOKEN_HOME", h), (id, "prod-id"), (secret, "prod-secret")];
            let err = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap_err();
            assert_eq!(err.exit_code(), 4, "{err}");
            let msg = err.to_string();
            assert!(msg.contains(secret) && msg.contains("[staging]"), "{msg}");
            assert!(!msg.contains("prod-secret"), "{msg}");
            // The URL given the same way as the secret is fine.
            let env = [
                env[0],
                env[1],
                env[2],
                ("LIGHTFI_OAUTH_URL", "https://prod.example/oauth2"),
            ];
            let s = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap();
            assert_eq!(s.client.endpoints.base, "https://prod.example/oauth2");
        }
        // Without a secret, a public client may use the table's server.
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_CLIENT_ID", "public-id")];
        assert!(resolved(&args(&["--profile", "staging"]), env_of(&env)).is_ok());
        // A table that names the default URL sends nothing anywhere new.
        let home = home_with(&format!("[default]\noauth_url = \"{DEFAULT_OAUTH_URL}\"\n"));
        let env = [
            ("LIGHTFI_TOKEN_HOME", home.path().to_str().unwrap()),
            ("LIGHTFI_CLIENT_ID", "id"),
            ("LIGHTFI_CLIENT_SECRET", "s"),
        ];
        assert!(resolved(&args(&[]), env_of(&env)).is_ok());
    }

    #[test]
    fn the_ci_refresh_token_never_goes_to_a_tables_server() {
        let home = home_with(STAGING);
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_REFRESH_TOKEN", "rt")];
        let err = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(
            err.to_string().contains("LIGHTFI_REFRESH_TOKEN") && err.to_string().contains("[staging]"),
            "{err}"
        );
        // A table with only a client id and the default URL, as the README's CI example.
        let home = home_with("[default]\nclient_id = \"id\"\n");
        let env = [
            ("LIGHTFI_TOKEN_HOME", home.path().to_str().unwrap()),
            ("LIGHTFI_REFRESH_TOKEN", "rt"),
        ];
        assert!(resolved(&args(&[]), env_of(&env)).is_ok());
    }
}
