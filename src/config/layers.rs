//! The layers put together: each setting from the first of flag,
//! environment, the profile's table and the default, and what to warn about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::beyond::{self, Grant};
use super::checks::check_profile_name;
use super::file::{ProfileTable, read_config};
use super::flags::Flags;
use super::{
    DEFAULT_HTTP_TIMEOUT, DEFAULT_LOCK_TIMEOUT, DEFAULT_PROFILE, DEFAULT_REDIRECT_URI, DEFAULT_SCOPE, Layers, Settings,
    Source, Sources, client, layered,
};
use crate::error::{Error, Result};

/// As [`resolve`](super::resolve), with the environment given as a lookup
/// (so precedence is unit-testable). An empty variable counts as unset.
/// Returns the settings and the warnings to print about how they were resolved.
pub fn resolve_with(args: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<(Settings, Vec<String>)> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let mut warnings = Vec::new();

    let (profile, profile_source) = layered(
        ("--profile", args.profile.clone()),
        ("LIGHTFI_PROFILE", env("LIGHTFI_PROFILE")),
        None,
        DEFAULT_PROFILE,
    );
    check_profile_name(&profile)?;
    let (home, home_source) = home(args, env("LIGHTFI_TOKEN_HOME"))?;
    let config_path = home.join("config.toml");
    let mut config = read_config(&config_path, &mut warnings)?;
    let table = config.remove(&profile);
    let table_given = table.is_some();
    let file = table.unwrap_or_default();
    let layers = Layers {
        args,
        env: &env,
        profile: &profile,
        file: &file,
    };

    let (grant, grant_source) = chosen(
        ("--grant", args.grant),
        ("LIGHTFI_GRANT", env("LIGHTFI_GRANT")),
        file.grant,
        "a grant",
    )?;
    let token_file = beyond::token_file(&layers);
    let client = match client::resolve(&layers, &mut warnings)? {
        Some(client) => client,
        // A token file is served as it is: no client is ever used.
        None if token_file.is_some() => client::Resolved::unused(),
        None => {
            let named = profile_source != Source::Default && !table_given;
            return Err(no_client_id(&profile, named.then_some(&config), &config_path));
        }
    };
    let (redirect_uri, redirect_uri_source) = layered(
        ("--redirect-uri", args.redirect_uri.clone()),
        ("LIGHTFI_REDIRECT_URI", env("LIGHTFI_REDIRECT_URI")),
        file.redirect_uri.clone(),
        DEFAULT_REDIRECT_URI,
    );
    let (scope, scope_source) = layered(
        ("--scope", args.scope.clone()),
        ("LIGHTFI_SCOPE", env("LIGHTFI_SCOPE")),
        file.scope.clone(),
        // Without a scope, a client-credentials request gets the client's
        // configured scopes; the user-login default would be refused.
        if grant == Grant::ClientCredentials {
            ""
        } else {
            DEFAULT_SCOPE
        },
    );
    let (token_kind, token_kind_source) = chosen(
        ("--token", args.token_kind),
        ("LIGHTFI_TOKEN_KIND", env("LIGHTFI_TOKEN_KIND")),
        file.token,
        "a kind of token",
    )?;
    let (storage, storage_source) = chosen(
        ("--storage", args.storage),
        ("LIGHTFI_STORAGE", env("LIGHTFI_STORAGE")),
        file.storage,
        "a storage",
    )?;
    let vault = match storage {
        super::Storage::Vault => Some(super::vault::resolve(&layers)?),
        _ => None,
    };

    let sources = Sources {
        profile: profile_source,
        home: home_source,
        oauth_url: client.url_source,
        client_id: client.id_source,
        client_secret: client.secret_source,
        redirect_uri: redirect_uri_source,
        scope: scope_source,
        token_kind: token_kind_source,
        storage: storage_source,
        grant: grant_source,
    };
    let settings = Settings {
        profile,
        home,
        client: client.client,
        redirect_uri,
        scope,
        token_kind,
        storage,
        vault,
        // A machine has no refresh token: one in the environment would only
        // keep the cached token from matching, and cost a request each call.
        env_refresh_token: client.env_refresh_token.filter(|_| grant == Grant::AuthorizationCode),
        http_timeout: args.http_timeout.unwrap_or(DEFAULT_HTTP_TIMEOUT),
        lock_timeout: args.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT),
        refresh_token_validity: match &file.refresh_token_validity {
            Some(raw) => super::checks::parse_validity(raw)?,
            None => super::DEFAULT_REFRESH_TOKEN_VALIDITY,
        },
        non_interactive: args.non_interactive,
        grant,
        token_file,
        sources,
    };
    warnings.extend(overridden(&settings, &file));
    Ok((settings, warnings))
}

/// The folder holding `config.toml` and the store, and where that came from.
pub(super) fn home(args: &Flags, env_home: Option<String>) -> Result<(PathBuf, Source)> {
    match (args.home.clone(), env_home) {
        (Some(home), _) => Ok((home, Source::Flag("--home"))),
        (None, Some(home)) => Ok((PathBuf::from(home), Source::Env("LIGHTFI_TOKEN_HOME"))),
        (None, None) => {
            let home = dirs::config_dir().map(|d| d.join("lightfi-token")).ok_or_else(|| {
                Error::config(
                    "cannot find a configuration folder for this user",
                    "set LIGHTFI_TOKEN_HOME (or --home) to a folder for lightfi-token's settings and tokens",
                )
            })?;
            Ok((home, Source::Default))
        }
    }
}

/// No layer gives a client id. `tables` is the file's other tables when the
/// profile was named and has none of its own: most likely a misspelt name.
fn no_client_id(profile: &str, tables: Option<&BTreeMap<String, ProfileTable>>, config_path: &Path) -> Error {
    if let Some(tables) = tables {
        let known: Vec<String> = tables.keys().map(|k| format!("`{k}`")).collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        return Error::config(
            format!(
                "profile `{profile}` has no table in {} (profiles there: {known})",
                config_path.display()
            ),
            format!(
                "check the profile's name, or run `lightfi-token configure{}` to save its settings \
                 (or pass --client-id / LIGHTFI_CLIENT_ID)",
                profile_flag(profile)
            ),
        );
    }
    Error::config(
        format!("no client id for profile `{profile}`"),
        format!(
            "run `lightfi-token configure{}` to save the profile's settings, or export LIGHTFI_CLIENT_ID=<id>, \
             pass --client-id <id>, or add client_id = \"<id>\" under [{profile}] in {}",
            profile_flag(profile),
            config_path.display()
        ),
    )
}

/// ` --profile NAME` for a profile other than the default, as a command the hint shows.
fn profile_flag(profile: &str) -> String {
    match profile {
        super::DEFAULT_PROFILE => String::new(),
        other => format!(" --profile {other}"),
    }
}

/// A setting with a few possible values, as [`layered`]: the variable's
/// value is matched ignoring case, and one that is none of them is refused
/// (`what` names what it should have been: "a storage").
fn chosen<T: ValueEnum + Default>(
    flag: (&'static str, Option<T>),
    env: (&'static str, Option<String>),
    file: Option<T>,
    what: &str,
) -> Result<(T, Source)> {
    match (flag.1, env.1, file) {
        (Some(value), _, _) => Ok((value, Source::Flag(flag.0))),
        (None, Some(raw), _) => match T::from_str(&raw, true) {
            Ok(value) => Ok((value, Source::Env(env.0))),
            Err(_) => {
                let name = env.0;
                let names: Vec<String> = T::value_variants()
                    .iter()
                    .filter_map(|v| v.to_possible_value())
                    .map(|v| format!("`{}`", v.get_name()))
                    .collect();
                let choices = match names.split_last() {
                    Some((last, [])) => last.clone(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                };
                Err(Error::config(
                    format!("{name} is `{raw}`, which is not {what}"),
                    format!("set {name} to {choices}, or unset it"),
                ))
            }
        },
        (None, None, Some(value)) => Ok((value, Source::File)),
        (None, None, None) => Ok((T::default(), Source::Default)),
    }
}

/// The environment overriding the profile's own table with another value:
/// one warning each.
fn overridden(settings: &Settings, file: &ProfileTable) -> Vec<String> {
    let sources = &settings.sources;
    let values = [
        (
            "oauth_url",
            sources.oauth_url,
            file.oauth_url.as_deref(),
            settings.client.endpoints.base.as_str(),
        ),
        (
            "client_id",
            sources.client_id,
            file.client_id.as_deref(),
            settings.client.id.as_str(),
        ),
        (
            "redirect_uri",
            sources.redirect_uri,
            file.redirect_uri.as_deref(),
            settings.redirect_uri.as_str(),
        ),
        ("scope", sources.scope, file.scope.as_deref(), settings.scope.as_str()),
    ];
    let mut warnings = Vec::new();
    for (key, source, in_file, value) in values {
        if let (Source::Env(name), Some(in_file)) = (source, in_file)
            && in_file.trim_end_matches('/') != value
        {
            warnings.push(format!(
                "{name} overrides {key} of config.toml [{}], which is set to another value",
                settings.profile
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{DEFAULT_OAUTH_URL, Source, Storage};

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let home = home_with(
            "[default]\nclient_id = \"file\"\nscope = \"file-scope\"\nredirect_uri = \"http://localhost:4000\"\n",
        );
        let h = home.path().to_str().unwrap();
        let env = [
            ("LIGHTFI_TOKEN_HOME", h),
            ("LIGHTFI_CLIENT_ID", "env"),
            ("LIGHTFI_SCOPE", "env-scope"),
        ];
        let s = resolved(&args(&["--client-id", "flag"]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "flag");
        assert_eq!(s.scope, "env-scope");
        assert_eq!(s.redirect_uri, "http://localhost:4000");
        assert_eq!(s.client.endpoints.base, DEFAULT_OAUTH_URL);
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(s.client.id, "env");
    }

    #[test]
    fn profile_selects_its_table() {
        let home = home_with(
            "[default]\nclient_id = \"a\"\n[staging]\nclient_id = \"b\"\noauth_url = \"https://x.example/oauth2/\"\n",
        );
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&["--profile", "staging"]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert_eq!(s.client.id, "b");
        assert_eq!(s.client.endpoints.base, "https://x.example/oauth2");
        assert_eq!(s.client.endpoints.token(), "https://x.example/oauth2/token");
    }

    #[test]
    fn missing_client_id_is_a_config_error_that_says_how() {
        let home = home_with("");
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(err.hint().contains("LIGHTFI_CLIENT_ID"));
    }

    #[test]
    fn a_named_profile_without_a_table_lists_the_profiles() {
        let home = home_with(&format!("[default]\nclient_id = \"a\"\n{STAGING}"));
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&["--profile", "stagng"]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert_eq!(err.exit_code(), 4);
        let msg = err.to_string();
        assert!(
            msg.contains("`stagng`") && msg.contains("`default`, `staging`"),
            "{msg}"
        );
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_PROFILE", "stagng")];
        assert_eq!(resolved(&args(&[]), env_of(&env)).unwrap_err().exit_code(), 4);
        // With a client id from the environment, any profile name works.
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_CLIENT_ID", "x")];
        assert!(resolved(&args(&["--profile", "stagng"]), env_of(&env)).is_ok());
    }

    #[test]
    fn the_environment_overriding_a_table_is_said() {
        let home = home_with(STAGING);
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_CLIENT_ID", "other")];
        let said = warnings(&args(&["--profile", "staging"]), &env);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("LIGHTFI_CLIENT_ID") && said[0].contains("client_id of config.toml [staging]"));
        // The same value, or a flag: nothing to say.
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_CLIENT_ID", "staging-id")];
        assert!(warnings(&args(&["--profile", "staging"]), &env).is_empty());
        let flags = args(&["--profile", "staging", "--client-id", "other"]);
        assert!(warnings(&flags, &env[..1]).is_empty());
    }

    #[test]
    fn sources_are_recorded() {
        let home = home_with(STAGING);
        let h = home.path().to_str().unwrap();
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_SCOPE", "openid")];
        let s = resolved(&args(&["--profile", "staging"]), env_of(&env)).unwrap();
        assert_eq!(s.sources.profile.describe("staging"), "--profile");
        assert_eq!(s.sources.home.describe("staging"), "LIGHTFI_TOKEN_HOME");
        assert_eq!(s.sources.oauth_url.describe("staging"), "config.toml [staging]");
        assert_eq!(s.sources.scope.describe("staging"), "LIGHTFI_SCOPE");
        assert_eq!(s.sources.redirect_uri.describe("staging"), "default");
        assert_eq!(s.sources.client_secret, None);
    }

    #[test]
    fn storage_is_layered_and_checked() {
        let home = home_with("[default]\nclient_id = \"a\"\nstorage = \"file\"\n");
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert_eq!((s.storage, s.sources.storage), (Storage::File, Source::File));
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_STORAGE", "Keyring")];
        let s = resolved(&args(&[]), env_of(&env)).unwrap();
        assert_eq!(
            (s.storage, s.sources.storage),
            (Storage::Keyring, Source::Env("LIGHTFI_STORAGE"))
        );
        let s = resolved(&args(&["--storage", "auto"]), env_of(&env)).unwrap();
        assert_eq!(
            (s.storage, s.sources.storage),
            (Storage::Auto, Source::Flag("--storage"))
        );
        let env = [("LIGHTFI_TOKEN_HOME", h), ("LIGHTFI_STORAGE", "safe")];
        assert_eq!(resolved(&args(&[]), env_of(&env)).unwrap_err().exit_code(), 4);
        let home = home_with("[default]\nclient_id = \"a\"\nstorage = \"safe\"\n");
        let h = home.path().to_str().unwrap();
        let err = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let home = home_with("[default]\nclient_id = \"a\"\n");
        let h = home.path().to_str().unwrap();
        let s = resolved(&args(&[]), env_of(&[("LIGHTFI_TOKEN_HOME", h)])).unwrap();
        assert_eq!((s.storage, s.sources.storage), (Storage::Auto, Source::Default));
    }
}
